"""Rule celltype_compare: one map against every cell-type map of a collection."""
from itx import analysis, celltypes, figures, genesets, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
null = nullmaps.load_null_maps(snakemake.input.nulls)
expression = read_tsv(snakemake.input.expression)
aligned = analysis.align(expression, read_tsv(snakemake.input.map), null.values, null.regions,
                         name=snakemake.wildcards.map)
# cell-type maps z-scored over exactly the regions of this map's tests
maps = celltypes.map_celltype_maps(expression, aligned.regions,
                                   genesets.read_gene_sets(snakemake.input.genesets), p.min_genes,
                                   aliases=aliases)
table = celltypes.compare_celltypes(aligned.y, maps.table, aligned.nulls, method=p.method,
                                    map_name=snakemake.wildcards.map, tail=p.tail)
write_tsv(table, snakemake.output.table)
figures.plot_celltype_comparison(table, snakemake.output.figure,
                                 title=(f"{snakemake.wildcards.map} vs "
                                        f"{snakemake.wildcards.geneset}"))
