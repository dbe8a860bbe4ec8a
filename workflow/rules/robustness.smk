# Donor robustness: each map's gene and gene-set results recomputed with each AHBA
# donor left out and with each donor alone (itx.robustness). Needs the per-donor
# matrices of the expression rule, so only with expression.source: ahba.


# One job per map: one pass over the null maps per donor subset serves the genes
# and every gene-set collection.
rule donor_robustness:
    input:
        donors=expand("results/{{atlas}}/donors/expression_{donor}.tsv", donor=DONORS),
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
        genesets=lambda wc: geneset_files(CELLTYPE_SETS),
        aliases=gene_alias_input,
    output:
        genes="results/{atlas}/{map}/donors_genes.tsv",
        sets=expand("results/{{atlas}}/{{map}}/donors_{geneset}.tsv", geneset=CELLTYPE_SETS),
    log:
        "logs/donor_robustness_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/enrichment.yaml"
    threads: rule_threads("donor_robustness")
    resources:
        mem_mb=rule_mem_mb("donor_robustness"),
        runtime=rule_runtime("donor_robustness"),
    params:
        library=library("rule_donor_robustness.py"),
        donors=DONORS,
        genesets=CELLTYPE_SETS,
        agg_metric=config["expression"]["agg_metric"],
        region_agg=config["expression"]["region_agg"],
        min_fraction=config["robustness"]["min_region_fraction"],
        method=config["association"]["method"],
        min_genes=config["enrichment"]["min_genes"],
        alternative=config["enrichment"]["alternative"],
    script:
        "../../scripts/rules/rule_donor_robustness.py"


rule donor_robustness_figure:
    input:
        table="results/{atlas}/{map}/donors_{geneset}.tsv",
    output:
        figure=report(
            "results/{atlas}/{map}/figures/donors_{geneset}.png",
            caption="../report/donor_robustness.rst",
            category="Robustness",
            subcategory="{atlas}",
            labels={"map": "{map}", "gene sets": "{geneset}", "figure": "donor robustness"},
        ),
    log:
        "logs/donor_robustness_figure_{atlas}_{map}_{geneset}.log",
    group:
        "per_map"
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("donor_robustness_figure")
    resources:
        mem_mb=rule_mem_mb("donor_robustness_figure"),
        runtime=rule_runtime("donor_robustness_figure"),
    params:
        library=library("rule_donor_robustness_figure.py"),
    script:
        "../../scripts/rules/rule_donor_robustness_figure.py"
