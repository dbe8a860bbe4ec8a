"""Rule parcellate: one map of the maps sheet onto one atlas."""
import sys

from itx import atlas as atlases
from itx import parcellate
from itx.mapfiles import MapInputError
from itx.tables import log_to_file, write_tsv

log_to_file(snakemake.log[0])
atlas = atlases.load_atlas(snakemake.wildcards.atlas, snakemake.params.atlas)
files = list(snakemake.input.maps)
try:
    values = parcellate.parcellate_map(
        files if snakemake.params.fmt == "gifti" else files[0],
        snakemake.params.fmt,
        atlas,
        column=snakemake.params.column or None,
        sign=float(snakemake.params.sign or 1),
    )
except MapInputError as err:
    # a bad map file is the user's to fix, not a bug: its message (the file and
    # the fix) goes to the log and to the terminal without a traceback to bury it
    message = f"map {snakemake.wildcards.map!r} on atlas {snakemake.wildcards.atlas!r}: {err}"
    print(message, file=sys.stderr, flush=True)
    if sys.__stderr__ is not None and sys.__stderr__ is not sys.stderr:
        print(message, file=sys.__stderr__, flush=True)
    sys.exit(1)
write_tsv(parcellate.map_table(values, atlas.info), snakemake.output[0])
