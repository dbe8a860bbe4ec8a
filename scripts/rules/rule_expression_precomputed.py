"""Rule expression_precomputed: a published region x gene table, matched to the atlas."""
import hashlib

from itx import atlas as atlases
from itx import expression
from itx.tables import log_to_file, write_text, write_tsv

log_to_file(snakemake.log[0])
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas)
path = snakemake.input.table
table, notes = expression.read_precomputed(path, atlas.info)
with open(path, "rb") as fh:
    sha = hashlib.sha256(fh.read()).hexdigest()
write_tsv(table, snakemake.output.expression)
write_text(
    "Regional gene expression was not computed by this workflow: it was read from a "
    f"precomputed region x gene table ({path}, sha256 {sha}) and matched to the "
    f"{snakemake.wildcards.atlas} atlas by region name or id. "
    + " ".join(n.rstrip(".") + "." for n in notes) + "\n",
    snakemake.output.methods,
)
