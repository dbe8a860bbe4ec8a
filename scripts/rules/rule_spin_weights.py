"""Rule spin_weights: cornblath averaging weights over the cortical scope regions."""
from itx import atlas as atlases
from itx import nullmaps, vertexspins
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
cortex = scope[nullmaps.is_cortex(scope)]
rotations = vertexspins.vertex_rotations(p.n_perm, nullmaps.derive_seed(p.seed, "cortex"))
weights = vertexspins.spin_weights(
    atlases.fsaverage5_surface(atlas), cortex["id"].tolist(), rotations
)
nullmaps.save_weights(snakemake.output[0], weights, cortex["region"].tolist())
