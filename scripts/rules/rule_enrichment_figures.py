"""Rule enrichment_figures: set scores and their spatial null distributions."""
from itx import figures
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
table = read_tsv(snakemake.input.table)
nulls = read_tsv(snakemake.input.nulls)
figures.plot_enrichment_bars(table, snakemake.output.bars)
figures.plot_null_distributions(table.set_index("set")["score"], nulls, snakemake.output.nulls,
                                p_values=table.set_index("set")["p_spatial"])
