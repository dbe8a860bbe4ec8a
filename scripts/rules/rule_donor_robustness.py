"""Rule donor_robustness: a map's gene and gene-set results with each AHBA donor
left out and each donor alone (itx.robustness)."""
import logging

from itx import genesets, nullmaps, robustness
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
out = snakemake.output

donors = {str(d): read_tsv(f) for d, f in zip(p.donors, snakemake.input.donors)}
# alias -> reannotated symbol (rule gene_aliases), when the matrix uses reannotated symbols
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
collections = {g: genesets.read_gene_sets(f)
               for g, f in zip(p.genesets, snakemake.input.genesets)}
null = nullmaps.load_null_maps(snakemake.input.nulls)
# region_agg: samples pools the samples of all donors: not a donor aggregate to check
expression = read_tsv(snakemake.input.expression) if p.region_agg == "donors" else None
if expression is None:
    logging.getLogger("rule_donor_robustness").warning(
        "expression.region_agg is %r: the all-donor subset aggregates donors and differs "
        "from expression.tsv", p.region_agg)
res = robustness.donor_robustness(
    donors, read_tsv(snakemake.input.map), null.values, null.regions, collections,
    agg_metric=p.agg_metric, min_fraction=p.min_fraction, method=p.method,
    min_genes=p.min_genes, alternative=p.alternative, aliases=aliases,
    expression=expression, name=snakemake.wildcards.map,
)
write_tsv(res.genes, out.genes)
for g, path in zip(p.genesets, out.sets):
    write_tsv(res.sets[g], path)
