"""Rule fetch_genesets: a built-in gene-set collection, checksum-verified."""
from itx import genesets
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
genesets.fetch_collection(snakemake.wildcards.collection, snakemake.output[0], source=p.source,
                          retries=p.retries, timeout=p.timeout)
