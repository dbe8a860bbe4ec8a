"""Rule vertex_spins: the map-independent part of vertex_spin nulls, once per atlas.

For each rotation (the rotations every vertex-level null of the workflow uses:
fsaverage5, seed derived for the cortex) the source vertex of every vertex of
the cortical scope parcels; each GIFTI map then only gathers and averages
(itx.vertexspins.apply_vertex_spins) instead of redoing the rotations.
"""
from itx import atlas as atlases
from itx import nullmaps, vertexspins
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
cortex = scope[nullmaps.is_cortex(scope)]
atlases.require_surface(atlas, "vertex_spin nulls of its cortical parcels")
# fsaverage6/7 atlases are spun at their (nested) fsaverage5 vertices
spins = vertexspins.make_vertex_spins(atlases.fsaverage5_surface(atlas), cortex["id"].tolist(),
                                p.n_perm, nullmaps.derive_seed(p.seed, "cortex"),
                                regions=cortex["region"].astype(str).tolist())
vertexspins.save_vertex_spins(snakemake.output[0], spins)
