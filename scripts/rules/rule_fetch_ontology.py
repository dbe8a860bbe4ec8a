"""Rule fetch_ontology: a pinned ontology file (GO), checksum-verified."""
from itx import ontology
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
p = snakemake.params
ontology.fetch_ontology(snakemake.wildcards.ontology, snakemake.output[0], source=p.source,
                        retries=p.retries, timeout=p.timeout)
