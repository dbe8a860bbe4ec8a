"""Rule donor_robustness_figure: one collection's set scores and p per donor subset."""
from itx import robustness
from itx.tables import log_to_file, read_tsv

log_to_file(snakemake.log[0])
robustness.plot_donor_robustness(
    read_tsv(snakemake.input.table, keep_default_na=True, dtype={"donor": str}),
    snakemake.output.figure,
    title=f"{snakemake.wildcards.map}: {snakemake.wildcards.geneset} by donor",
)
