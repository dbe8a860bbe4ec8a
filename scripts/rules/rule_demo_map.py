"""Rule demo_map: the demo disease map as an MNI152 volume and a DK region table."""
from itx import demo
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
demo.write_demo_map(snakemake.output.nifti, snakemake.output.table, seed=snakemake.params.seed)
