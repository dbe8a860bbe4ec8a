"""Rule fetch_donor: one AHBA donor into the abagen data directory."""
from pathlib import Path

from itx import fetch
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
# .../<data_dir>/microarray/normalized_microarray_donor{id}/<file>
data_dir = Path(snakemake.output[0]).parents[2]
source = snakemake.params.source
if snakemake.input:  # the demo: its generated donors are a local source folder
    source = Path(snakemake.input[0]).parents[2]
elif source == "allen":
    source = None
fetch.fetch_donor(
    snakemake.wildcards.donor,
    data_dir,
    source,
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
    progress=True,
    # sizes + SHA-256 of the archives, recorded on first verified fetch
    # (resources/ahba/<source>/ahba.lock.json); later fetches must match
    lock_file=data_dir / "ahba.lock.json",
    # the demo's files are this rule's inputs: copy them (itx.fetch.fetch_donor, link)
    link=not snakemake.input,
)
