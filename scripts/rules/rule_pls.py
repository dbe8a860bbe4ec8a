"""Rule pls: PLS regression of one map on all genes, with spatial-null p values."""
from itx import analysis, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
null = nullmaps.load_null_maps(snakemake.input.nulls)
aligned = analysis.align(read_tsv(snakemake.input.expression), read_tsv(snakemake.input.map),
                         null.values, null.regions, name=snakemake.wildcards.map)
res = analysis.pls_analysis(aligned, n_components=p.n_components, n_boot=p.n_boot, seed=p.seed)
write_tsv(res.components, snakemake.output.components)
write_tsv(res.genes, snakemake.output.genes)
write_tsv(res.scores, snakemake.output.scores)
