"""Rule fetch_rnaseq: one AHBA donor's RNA-seq into the abagen data directory."""
from pathlib import Path

from itx import fetch
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
# .../<data_dir>/rnaseq/rnaseq_donor{id}/<file>
data_dir = Path(snakemake.output[0]).parents[2]
donor = snakemake.wildcards.donor
source = snakemake.params.source
options = dict(
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
    progress=True,
    # sizes + SHA-256 of the archives, recorded on first verified fetch
    # (key rnaseq/<donor>); later fetches must match
    lock_file=data_dir / "ahba.lock.json",
    # the demo's files are this rule's inputs: copy them (itx.fetch.fetch_donor, link)
    link=not snakemake.input,
)
if snakemake.input:
    # the demo: RNA-seq generated to match the demo donor (rule demo_rnaseq), in
    # <demo>/source/rnaseq/rnaseq_donor{id}/: a local source folder, same checks
    source = Path(snakemake.input[0]).parents[2]
elif source == "allen":
    source = None
fetch.fetch_rnaseq(donor, data_dir, source, **options)
