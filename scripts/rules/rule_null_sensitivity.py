"""Rule null_sensitivity: one map's results under every null, side by side."""
import logging

from itx import sensitivity, sensitivity_page
from itx.tables import log_to_file, read_tsv, write_text, write_tsv

if snakemake.log:
    log_to_file(snakemake.log[0])
p = snakemake.params
nulls, genesets = list(p.nulls), list(p.genesets)
# cell-type comparisons exist for cell-type collections only (not e.g. GO categories)
celltype_sets = list(p.get("celltype_sets", genesets))
alpha = float(p.get("alpha", 0.05))
inp = snakemake.input


def tables(paths, names):
    """Null-major paths -> {null: {collection: table}}."""
    split = sensitivity.split_null_major(list(paths), nulls, names)
    return {n: {c: read_tsv(f) for c, f in per.items()} for n, per in split.items()}


fpr = sensitivity.fpr_lookup(read_tsv(inp.calibration), p.atlas_key, p.hemispheres, nulls,
                             alpha=alpha)
logging.info("calibrated FPR per null:\n%s", fpr.to_string(index=False))
pls = [read_tsv(f) for f in inp.pls] if inp.get("pls") else None
summary = sensitivity.summarise(
    nulls, nulls[0], [read_tsv(f) for f in inp.genes], tables(inp.get("enrichment", []), genesets),
    tables(inp.get("celltypes", []), celltype_sets), pls, fpr, alpha=alpha, n_perm=p.n_perm)
verdicts = sensitivity.verdicts(summary, alpha=alpha)
write_tsv(summary, snakemake.output.table)
sensitivity_page.plot_sensitivity(summary, snakemake.output.figure, alpha=alpha,
                                  title=f"{snakemake.wildcards.map}: null sensitivity")
page = sensitivity_page.sensitivity_html(summary, verdicts, snakemake.wildcards.map, alpha=alpha,
                                         atlas=snakemake.wildcards.atlas)
write_text(page, snakemake.output.html)
