"""Rule fetch_rnaseq: one AHBA donor's RNA-seq into the abagen data directory."""
import tempfile
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
)
if snakemake.input:
    # the demo: RNA-seq made to match the generated microarray donor (the input)
    # is written to a temporary folder that stands in for the server, so it
    # goes through the same checks and hard-linking as a real local source
    from itx import demo

    with tempfile.TemporaryDirectory(dir=data_dir, prefix=".demo_rnaseq_") as tmp:
        demo.write_rnaseq_donor(tmp, donor, seed=snakemake.params.demo_seed,
                                samples_per_donor=snakemake.params.demo_samples_per_donor)
        # an unpacked folder: hard-linked after checking, nothing pinned in the lock file
        fetch.fetch_rnaseq(donor, data_dir, tmp, **options)
else:
    fetch.fetch_rnaseq(donor, data_dir, None if source == "allen" else source, **options)
