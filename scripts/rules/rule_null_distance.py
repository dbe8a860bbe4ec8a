"""Rule null_distance: parcel distance matrix over the scope of one atlas."""
import numpy as np

from itx import atlas as atlases
from itx import surrogates
from itx.tables import atomic_path, log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
dist = surrogates.parcel_distance_matrix(atlas, scope["id"].tolist())
with atomic_path(snakemake.output[0]) as tmp, open(tmp, "wb") as fh:
    np.savez_compressed(fh, dist=np.asarray(dist, dtype=np.float64),
                        regions=np.asarray(scope["region"].astype(str).tolist()))
