"""Rule spins: map-independent resampling indices over the scope of one atlas."""
from itx import atlas as atlases
from itx import nullmaps, nulls
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas["builtin"])
scope = atlases.scope_regions(atlas.info, p.scope)
idx = nullmaps.scope_index(atlas, scope, p.method, p.n_perm, p.seed)
nulls.save_spins(snakemake.output[0], idx, scope["region"].tolist(), p.method, p.seed)
