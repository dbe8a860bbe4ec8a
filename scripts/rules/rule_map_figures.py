"""Rule map_figures: the map on the brain and the top genes' scatter plots."""
from itx import atlas as atlases
from itx import figures
from itx.coverage import region_use
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas)
table = read_tsv(snakemake.input.map)
genes = read_tsv(snakemake.input.genes)
expression = read_tsv(snakemake.input.expression).set_index("region")
values = table.set_index("id")["value"]
if atlas.surface is not None:
    # fsaverage6/7 atlases are drawn at their fsaverage5 vertices (nested meshes)
    figures.plot_region_map(values, atlases.fsaverage5_surface(atlas), snakemake.output.map,
                            ignore_absent=True, title=snakemake.wildcards.map)
else:
    figures.plot_volume_map(values, atlas.volume, snakemake.output.map,
                            title=snakemake.wildcards.map)
# only the regions that entered the test: in scope, with expression and a value
scope = atlases.scope_regions(atlas.info, snakemake.params.scope)["region"]
by_region = table.set_index("region")["value"]
use = region_use(scope, by_region, expression)
used = by_region.loc[use.index[use["used"]]]
top = genes.head(snakemake.params.n_top)["gene"].tolist()
figures.plot_gene_scatter(used, expression.loc[used.index], top, snakemake.output.genes,
                          stats=genes)
