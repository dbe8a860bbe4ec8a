"""Rule versions: the package versions this run used."""
from itx import report
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
write_tsv(report.package_versions(), snakemake.output[0])
