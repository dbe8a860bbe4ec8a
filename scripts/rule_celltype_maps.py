"""Rule celltype_maps: regional abundance of each cell type of a collection, for one atlas."""
from itx import celltypes, figures, genesets
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
expression = read_tsv(snakemake.input.expression).set_index("region")
# z-scores over the regions with expression (regions without samples carry no information)
expression = expression.loc[expression.notna().all(axis=1)]
res = celltypes.celltype_maps(expression, genesets.read_gene_sets(snakemake.input.genesets),
                              snakemake.params.min_genes, aliases=aliases)
write_tsv(res.table.reset_index(), snakemake.output.table)
write_tsv(res.sets, snakemake.output.sets)
figures.plot_celltype_maps(res.table, snakemake.output.figure,
                           title=f"{snakemake.wildcards.geneset} ({snakemake.wildcards.atlas})")
