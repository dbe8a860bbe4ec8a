"""Rule partial_genes: every gene's partial correlation with a map given covariate maps."""
from itx import analysis, nullmaps, partial
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
wc = snakemake.wildcards
null = nullmaps.load_null_maps(snakemake.input.nulls)
aligned = analysis.align(read_tsv(snakemake.input.expression), read_tsv(snakemake.input.map),
                         null.values, null.regions, name=wc.map)
covariates = partial.covariate_table([read_tsv(f) for f in snakemake.input.covariates],
                                     list(p.covariates), aligned.regions)
table = partial.partial_genes(aligned, covariates, method=p.method)
write_tsv(table, snakemake.output.table)
partial.plot_partial_vs_plain(table, read_tsv(snakemake.input.genes), snakemake.output.figure,
                              title=f"{wc.map} given {', '.join(p.covariates)}")
