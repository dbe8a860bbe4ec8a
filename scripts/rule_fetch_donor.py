"""Rule fetch_donor: one AHBA donor into the abagen data directory."""
from itx import fetch
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
source = snakemake.params.source
fetch.fetch_donor(
    snakemake.wildcards.donor,
    snakemake.params.data_dir,
    None if source == "allen" else source,
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
    progress=True,
)
