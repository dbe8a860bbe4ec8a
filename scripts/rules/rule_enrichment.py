"""Rule enrichment: one gene-set collection against one map."""
from itx import analysis, genesets, nullmaps
from itx.tables import log_to_file, read_tsv, write_tsv

log_to_file(snakemake.log[0])
p = snakemake.params
# alias -> reannotated symbol (rule gene_aliases), when the matrix uses reannotated symbols
aliases = (read_tsv(snakemake.input.aliases[0], dtype=str, keep_default_na=False)
           if snakemake.input.get("aliases") else None)
null = nullmaps.load_null_maps(snakemake.input.nulls)
aligned = analysis.align(read_tsv(snakemake.input.expression), read_tsv(snakemake.input.map),
                         null.values, null.regions, name=snakemake.wildcards.map)
ranking = None
if snakemake.input.get("ranking"):
    # bootstrapped PLS1 Z of each gene (rule pls), in the gene order of the matrix
    z = read_tsv(snakemake.input.ranking[0]).set_index("gene")["z"]
    ranking = z.reindex(aligned.genes).to_numpy(float)
res = analysis.set_enrichment(
    aligned, genesets.read_gene_sets(snakemake.input.genesets), method=p.method,
    min_genes=p.min_genes, n_random=p.n_random, alternative=p.alternative, seed=p.seed,
    aliases=aliases, rank_alternative=p.rank_alternative, overlap_fraction=p.overlap_fraction,
    ranking=ranking, tail=p.tail, max_genes=p.get("max_genes"),
    # null scores of the top sets only (every set of a collection this small or smaller)
    n_null_sets=p.get("n_null_sets", 20),
)
write_tsv(res.table, snakemake.output.table)
write_tsv(res.sets, snakemake.output.sets)
write_tsv(res.null_scores, snakemake.output.nulls)
