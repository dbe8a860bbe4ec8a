"""Rule enrichment_figures: set scores and their spatial null distributions (top sets)."""
from itx import figures
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
table = read_tsv(snakemake.input.table)
nulls = read_tsv(snakemake.input.nulls)
# the nulls file holds the top n_null_sets sets (rule enrichment), or every set of a
# collection no larger; the figures show the same sets, titled "top N of M" when some are left out
n_sets = min(int(snakemake.params.get("n_null_sets", 20)), nulls.shape[1])
figures.plot_enrichment_bars(table, snakemake.output.bars, max_sets=n_sets)
figures.plot_null_distributions(table.set_index("set")["score"], nulls, snakemake.output.nulls,
                                p_values=table.set_index("set")["p_spatial"], max_sets=n_sets)
