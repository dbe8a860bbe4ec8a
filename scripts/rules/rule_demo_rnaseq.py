"""Rule demo_rnaseq: AHBA-format RNA-seq for one demo donor (9861 or 10021)."""
from pathlib import Path

from itx import demo
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
# <demo>/source/rnaseq/rnaseq_donor{id}/<file>: write_rnaseq_donor makes that folder
out_dir = Path(snakemake.output[0]).parents[2]
demo.write_rnaseq_donor(out_dir, snakemake.wildcards.donor, seed=snakemake.params.seed,
                        samples_per_donor=snakemake.params.samples_per_donor)
