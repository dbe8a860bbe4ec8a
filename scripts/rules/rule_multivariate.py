"""Rule multivariate: a map's joint models on the cell-type maps of one collection."""
from itx import analysis, celltype_models, celltypes, genesets, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
wc = snakemake.wildcards
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
null = nullmaps.load_null_maps(snakemake.input.nulls)
expression = read_tsv(snakemake.input.expression)
aligned = analysis.align(expression, read_tsv(snakemake.input.map), null.values, null.regions,
                         name=wc.map)
# cell-type maps z-scored over exactly the regions of this map's tests
maps = celltypes.map_celltype_maps(expression, aligned.regions,
                                   genesets.read_gene_sets(snakemake.input.genesets), p.min_genes,
                                   aliases=aliases)
terms, dominance = celltype_models.celltype_models(
    aligned.y, maps.table, aligned.nulls, map_name=wc.map, collection=wc.geneset,
    max_predictors=p.max_predictors)
write_tsv(terms, snakemake.output.terms)
write_tsv(dominance, snakemake.output.dominance)
celltype_models.plot_celltype_models(terms, dominance, snakemake.output.figure,
                                     title=f"{wc.map} ~ {wc.geneset} cell types")
