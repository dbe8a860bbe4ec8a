"""Rule gene_aliases: alias -> reannotated symbol pairs from the AHBA probes and abagen."""
from itx import genesets
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
write_tsv(genesets.alias_table(snakemake.input[0]), snakemake.output[0])
