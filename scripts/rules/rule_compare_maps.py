"""Rule compare_maps: every map of an atlas against every other, with spatial nulls."""
from itx import analysis, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
names = list(snakemake.params.maps)
maps = {m: read_tsv(f) for m, f in zip(names, snakemake.input.maps)}
nulls = {}
for m, f in zip(names, snakemake.input.nulls):
    null = nullmaps.load_null_maps(f)
    nulls[m] = (null.values, null.regions)
write_tsv(analysis.compare_all(maps, nulls, method=snakemake.params.method), snakemake.output[0])
