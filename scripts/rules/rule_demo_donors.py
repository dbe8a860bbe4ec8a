"""Rule demo_donors: AHBA-format demo donors with a planted signal."""
from pathlib import Path

from itx import demo
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
demo.generate_donors(
    Path(snakemake.output.files[0]).parents[2],
    seed=snakemake.params.seed,
    samples_per_donor=snakemake.params.samples_per_donor,
    truth_path=snakemake.output.truth,
)
