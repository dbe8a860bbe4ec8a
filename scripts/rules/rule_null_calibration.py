"""Rule null_calibration: the calibration study's false-positive rates for one atlas."""
from itx import calibration
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
table = calibration.atlas_calibration(snakemake.input.calibration, p.atlas_key, p.hemispheres,
                                      default=p.default, used=p.used)
write_tsv(table, snakemake.output.table)
calibration.plot_atlas_calibration(
    table, snakemake.output.figure,
    title=f"{snakemake.wildcards.atlas}: how often each null rejects unrelated maps")
