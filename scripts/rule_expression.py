"""Rule expression: abagen processing of the AHBA for one atlas."""
from pathlib import Path

from itx import atlas as atlases
from itx import expression
from itx.tables import log_to_file, write_text, write_tsv

log_to_file(snakemake.log[0])
cfg = snakemake.params.atlas
atlas = atlases.load_atlas(snakemake.wildcards.atlas, cfg["builtin"])
image = atlas.volume if cfg.get("matching", "volume") == "volume" else atlas.surface
# .../<AHBA dir>/selection/<file>: the atlas-independent probe selection
result = expression.process_ahba(
    image, atlas.info, selection=Path(snakemake.input.selection[0]).parent,
    donors=list(snakemake.params.donors), **snakemake.params.options,
)
tables = expression.output_tables(result, atlas.info)
out = snakemake.output
write_tsv(tables["expression"], out.expression)
write_tsv(tables["probes"], out.probes)
write_tsv(tables["samples"], out.samples)
write_tsv(tables["counts"], out.counts)
write_tsv(tables["stability"], out.stability)
for path in out.donors:
    donor = Path(path).stem.split("_")[-1]
    write_tsv(tables["donors"][donor], path)
write_text(result.report, out.methods)
