"""Rule parcellate: one map of the maps sheet onto one atlas."""
from itx import atlas as atlases
from itx import parcellate
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas)
files = list(snakemake.input.maps)
values = parcellate.parcellate_map(
    files if snakemake.params.fmt == "gifti" else files[0],
    snakemake.params.fmt,
    atlas,
    column=snakemake.params.column or None,
    sign=float(snakemake.params.sign or 1),
)
write_tsv(parcellate.map_table(values, atlas.info), snakemake.output[0])
