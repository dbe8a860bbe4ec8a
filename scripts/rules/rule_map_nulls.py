"""Rule map_nulls: the null maps of one map over the analysis scope.

What each null family reads is declared once, in itx.nullmodels.REGISTRY: the
DAG gives this job exactly those files (map_null_inputs), and map_nulls reads
them (checking they were made for this atlas and scope) and makes the nulls.
"""
from itx import atlas as atlases
from itx import nullmaps, nullmodels
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
atlas = atlases.load_atlas(snakemake.wildcards.atlas, p.atlas)
scope = atlases.scope_regions(atlas.info, p.scope)
regions = scope["region"].astype(str).tolist()
values = read_tsv(snakemake.input.map).set_index("region")["value"].astype(float)
values = values.reindex(regions).to_numpy()
nullmaps.check_map_in_scope(values, p.scope, name=snakemake.wildcards.map)
null = nullmodels.map_nulls(values, scope, p.method, p.subcortex_method, p.n_perm, p.seed,
                            dict(snakemake.input.items()), sign=p.sign,
                            name=snakemake.wildcards.map)
nullmaps.save_null_maps(snakemake.output[0], null, regions, p.method, p.seed)
