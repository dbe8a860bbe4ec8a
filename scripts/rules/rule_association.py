"""Rule association: every gene against one map, with spin p values."""
from itx import analysis, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
null = nullmaps.load_null_maps(snakemake.input.nulls)
aligned = analysis.align(read_tsv(snakemake.input.expression), read_tsv(snakemake.input.map),
                         null.values, null.regions, name=snakemake.wildcards.map)
write_tsv(analysis.gene_association(aligned, method=snakemake.params.method,
                                    tail=snakemake.params.tail), snakemake.output[0])
