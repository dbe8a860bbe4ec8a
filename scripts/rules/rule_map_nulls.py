"""Rule map_nulls: the null maps of one map over the analysis scope."""
import numpy as np

from itx import atlas as atlases
from itx import nullmaps, nulls, parcellate
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
inp = snakemake.input
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
regions = scope["region"].astype(str).tolist()
values = read_tsv(inp.map).set_index("region")["value"].astype(float).reindex(regions).to_numpy()
nullmaps.check_map_in_scope(values, p.scope, name=snakemake.wildcards.map)


def _rows_match(file_regions, what):
    if [str(r) for r in file_regions] != regions:
        raise ValueError(f"{what} was made for other regions than this atlas and scope; "
                         "delete it and rerun")


index = dist = vertex_nulls = weights = None
if "spins" in inp.keys():
    spins = nulls.load_spins(inp.spins)
    _rows_match(spins.regions, inp.spins)
    index = spins.idx
if "weights" in inp.keys():
    weights, weight_regions = nullmaps.load_weights(inp.weights)
    cortex_regions = scope.loc[nullmaps.is_cortex(scope), "region"].astype(str).tolist()
    if weight_regions != cortex_regions:
        raise ValueError(f"{inp.weights} was made for other regions; delete it and rerun")
if "distance" in inp.keys():
    with np.load(inp.distance, allow_pickle=False) as z:
        _rows_match(z["regions"].tolist(), inp.distance)
        dist = z["dist"]
if p.method == "vertex_spin":
    cortex = scope[nullmaps.is_cortex(scope)]
    rotations = nulls.vertex_rotations(p.n_perm, nullmaps.derive_seed(p.seed, "cortex"))
    # fsaverage6/7 atlases and maps are spun at their fsaverage5 vertices: the meshes
    # are nested, so the first 10,242 vertices of a finer mesh are fsaverage5's
    # the sheet's sign applies to the vertex map as to its parcellated values
    data = [float(p.sign or 1) * parcellate.vertex_values(f)[:10242] for f in inp.vertex]
    vertex_nulls = nulls.spin_vertex_map(data, atlases.fsaverage5_surface(atlas),
                                         cortex["id"].tolist(), rotations)
null = nullmaps.null_maps(values, scope, p.method, p.n_perm, p.seed,
                          subcortex_method=p.subcortex_method, index=index, dist=dist,
                          vertex_nulls=vertex_nulls, weights=weights,
                          name=snakemake.wildcards.map)
nullmaps.save_null_maps(snakemake.output[0], null, regions, p.method, p.seed)
