"""Rule spins: spatial nulls for the scope regions of one atlas."""
from itx import atlas as atlases
from itx import nulls
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas["builtin"])
scope = atlases.scope_regions(atlas.info, snakemake.params.scope)
idx = nulls.spin_nulls(
    atlas.surface, nulls.fsaverage5_spheres(), scope["id"].tolist(),
    n_perm=snakemake.params.n_perm, method=snakemake.params.method, seed=snakemake.params.seed,
)
nulls.save_spins(snakemake.output[0], idx, scope["region"].tolist(),
                 snakemake.params.method, snakemake.params.seed)
