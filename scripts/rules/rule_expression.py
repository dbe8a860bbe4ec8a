"""Rule expression: abagen processing of the AHBA for one atlas."""
import tempfile
from pathlib import Path

from itx import atlas as atlases
from itx import expression
from itx.tables import log_to_file, write_text, write_tsv

log_to_file(snakemake.log[0])
cfg = snakemake.params.atlas
atlas = atlases.load_atlas(snakemake.wildcards.atlas, cfg)
matching = cfg.get("matching", "volume")
if matching == "volume" and atlas.volume is None:
    raise ValueError(
        f"atlas {atlas.name!r} has no volume to match tissue samples to; set "
        f"atlases.{atlas.name}.matching to 'surface' (or give the atlas a 'volume')"
    )
if matching != "volume":
    atlases.require_surface(atlas, "surface matching of tissue samples")
with tempfile.TemporaryDirectory(prefix="itx_atlas_") as scratch:
    # abagen matches samples to fsaverage5 vertices; a finer atlas is taken at
    # the nested fsaverage5 vertices (itx.atlas.fsaverage5_surface)
    image = atlas.volume if matching == "volume" else atlases.fsaverage5_surface(atlas, scratch)
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
