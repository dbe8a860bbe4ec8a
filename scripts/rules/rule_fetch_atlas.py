"""Rule fetch_atlas: a downloaded built-in atlas (Schaefer) into
<resources_dir>/atlases/{builtin}/."""
from pathlib import Path

from itx import schaefer
from itx.tables import log_to_file

log_to_file(snakemake.log[0])
spec = snakemake.params.atlas
builtin = spec.get("builtin", "")
if not builtin.startswith("schaefer"):
    raise ValueError(f"atlas {snakemake.wildcards.builtin!r}: {builtin!r} is not a downloaded "
                     "built-in atlas; nothing to fetch")
schaefer.fetch_schaefer(
    int(builtin[len("schaefer"):]),
    Path(snakemake.output[0]).parent,
    # blank: the pinned CBIG commit; else a local folder (offline) or a mirror URL
    spec.get("source") or None,
    lock_file=snakemake.params.lock,
    retries=snakemake.params.retries,
    timeout=snakemake.params.timeout,
    progress=True,
)
