"""Rule variogram: empirical vs null-map variograms of one map (null fit diagnostic)."""
import numpy as np

from itx import nullmaps, surrogates
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
inp = snakemake.input
null = nullmaps.load_null_maps(inp.nulls)
# the distance file must be made for the regions of the null maps
dist = nullmaps.load_distance(inp.distance, null.regions)
values = read_tsv(inp.map).set_index("region")["value"].astype(float).reindex(null.regions)
values = values.to_numpy()
rows = np.isfinite(values)
# a null map with gaps over the map's regions (a region without a value spun onto
# one with a value, a parcel spun into the medial wall) is measured over the pairs it
# has; n_null counts the null maps in the band (0: band empty, with a warning)
diag = surrogates.variogram_diagnostic(values[rows], dist[np.ix_(rows, rows)],
                                       null.values[rows], name=snakemake.wildcards.map)
diag.insert(0, "method", null.method)
diag["n_null"] = int(diag.attrs["n_null"])
write_tsv(diag, snakemake.output.table)
surrogates.plot_variogram(diag, snakemake.output.figure,
                          title=f"{snakemake.wildcards.map}: {null.method} nulls")
