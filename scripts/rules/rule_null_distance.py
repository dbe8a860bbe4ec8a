"""Rule null_distance: parcel distance matrix over the scope of one atlas."""
from itx import atlas as atlases
from itx import distances, nullmaps
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
dist = distances.parcel_distance_matrix(atlas, scope["id"].tolist())
nullmaps.save_distance(snakemake.output[0], dist, scope["region"].astype(str).tolist())
