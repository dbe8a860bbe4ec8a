"""Rule ahba_cache: parse one AHBA donor's CSVs once into the binary cache."""
from pathlib import Path

from itx import cache
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
cache.build_donor_cache(Path(snakemake.input[0]).parent, Path(snakemake.output[0]).parent)
