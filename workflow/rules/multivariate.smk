# Stage 7c: joint models of each map on the regional cell-type maps of a collection
# (multiple regression, dominance analysis), every gene's partial correlation with a
# map given the covariate maps of its sheet row, and the page of top gene sets.


rule multivariate:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        genesets=geneset_path,
        aliases=gene_alias_input,
    output:
        terms="results/{atlas}/{map}/multivariate_{geneset}.tsv",
        dominance="results/{atlas}/{map}/dominance_{geneset}.tsv",
        figure=report(
            "results/{atlas}/{map}/figures/multivariate_{geneset}.png",
            caption="../report/multivariate.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"map": "{map}", "gene sets": "{geneset}", "figure": "joint model"},
        ),
    log:
        "logs/multivariate_{atlas}_{map}_{geneset}.log",
    group:
        "per_map"
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("multivariate")
    resources:
        mem_mb=rule_mem_mb("multivariate"),
        runtime=rule_runtime("multivariate"),
    params:
        library=library("rule_multivariate.py"),
        min_genes=config["celltypes"]["min_genes"],
        max_predictors=config["multivariate"]["max_predictors"],
    script:
        "../../scripts/rules/rule_multivariate.py"


rule partial_genes:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        covariates=covariate_maps,
        genes="results/{atlas}/{map}/genes.tsv",
    output:
        table="results/{atlas}/{map}/partial_genes.tsv",
        figure=report(
            "results/{atlas}/{map}/figures/partial_genes.png",
            caption="../report/partial_genes.rst",
            category="Genes",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "figure": "partial correlations"},
        ),
    log:
        "logs/partial_genes_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/association.yaml"
    threads: rule_threads("partial_genes")
    resources:
        mem_mb=rule_mem_mb("partial_genes"),
        runtime=rule_runtime("partial_genes"),
    params:
        library=library("rule_partial_genes.py"),
        method=config["association"]["method"],
        covariates=map_covariates,
    script:
        "../../scripts/rules/rule_partial_genes.py"


rule enrichment_top:
    input:
        tables=expand("results/{{atlas}}/{{map}}/enrichment_{geneset}.tsv", geneset=GENESETS),
    output:
        report(
            "results/{atlas}/{map}/enrichment_top.html",
            caption="../report/enrichment_top.rst",
            category="Gene sets",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "file": "top gene sets"},
        ),
    log:
        "logs/enrichment_top_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("enrichment_top")
    resources:
        mem_mb=rule_mem_mb("enrichment_top"),
        runtime=rule_runtime("enrichment_top"),
    params:
        library=library("rule_enrichment_top.py"),
        genesets=GENESETS,
        n_top=config["report"]["n_top_sets"],
    script:
        "../../scripts/rules/rule_enrichment_top.py"
