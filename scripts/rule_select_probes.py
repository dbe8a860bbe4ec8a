"""Rule select_probes: atlas-independent probe filtering and selection, saved once."""
from pathlib import Path

from itx import expression
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
selection = expression.select_probes(
    # .../<AHBA dir>/cache/donor{id}/<file>: the parsed-CSV cache, never the CSVs
    cache_dir=Path(snakemake.input.cache[0]).parents[1],
    donors=list(snakemake.params.donors), **snakemake.params.options,
)
expression.write_selection(selection, Path(snakemake.output[0]).parent)
