"""Rule association: every gene against one map, with spin p values."""
from itx import analysis, nulls
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
spins = nulls.load_spins(snakemake.input.spins)
aligned = analysis.align(read_tsv(snakemake.input.expression), read_tsv(snakemake.input.map),
                         spins.idx, spins.regions)
write_tsv(analysis.gene_association(aligned, method=snakemake.params.method), snakemake.output[0])
