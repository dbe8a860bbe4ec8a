# Stage 7: gene-set (cell-type) enrichment: spatial ensemble null, random-gene null,
# competitive rank test and top/bottom overlap (alias table: rules/celltypes.smk).


rule enrichment:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        genesets=geneset_path,
        aliases=gene_alias_input,
        ranking=lambda wc: (
            f"results/{wc.atlas}/{wc.map}/pls_genes.tsv"
            if config["enrichment"]["ranking"] == "pls1"
            else []
        ),
    output:
        table="results/{atlas}/{map}/enrichment_{geneset}.tsv",
        sets="results/{atlas}/{map}/enrichment_{geneset}_sets.tsv",
        nulls="results/{atlas}/{map}/enrichment_{geneset}_nulls.tsv.gz",
    log:
        "logs/enrichment_{atlas}_{map}_{geneset}.log",
    group:
        "per_map"
    conda:
        "../../envs/enrichment.yaml"
    threads: rule_threads("enrichment")
    resources:
        mem_mb=rule_mem_mb("enrichment"),
        runtime=rule_runtime("enrichment"),
    params:
        library=library("rule_enrichment.py"),
        method=config["association"]["method"],
        min_genes=lambda wc: geneset_sizes(wc)[0],
        max_genes=lambda wc: geneset_sizes(wc)[1],
        n_null_sets=config["enrichment"]["n_null_sets"],
        n_random=config["enrichment"]["n_random"],
        alternative=config["enrichment"]["alternative"],
        seed=config["enrichment"]["seed"],
        rank_alternative=config["enrichment"]["rank_alternative"],
        overlap_fraction=config["enrichment"]["overlap_fraction"],
        tail=config["nulls"]["tail"],
    script:
        "../../scripts/rules/rule_enrichment.py"
