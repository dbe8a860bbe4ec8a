# Stage 8: figures for `snakemake --report`, package versions, methods text.


rule map_figures:
    input:
        atlas=atlas_inputs,
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        genes="results/{atlas}/{map}/genes.tsv",
    output:
        map=report(
            "results/{atlas}/{map}/figures/map.png",
            caption="../report/map.rst",
            category="Maps",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "figure": "map on the brain"},
        ),
        genes=report(
            "results/{atlas}/{map}/figures/top_genes.png",
            caption="../report/top_genes.rst",
            category="Genes",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "figure": "top genes"},
        ),
    log:
        "logs/map_figures_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("map_figures")
    resources:
        mem_mb=rule_mem_mb("map_figures"),
        runtime=rule_runtime("map_figures"),
    params:
        library=library("rule_map_figures.py"),
        atlas=atlas_param,
        scope=config["scope"],
        n_top=config["report"]["n_top_genes"],
    script:
        "../../scripts/rules/rule_map_figures.py"


rule enrichment_figures:
    input:
        table="results/{atlas}/{map}/enrichment_{geneset}.tsv",
        nulls="results/{atlas}/{map}/enrichment_{geneset}_nulls.tsv.gz",
    output:
        bars=report(
            "results/{atlas}/{map}/figures/enrichment_{geneset}.png",
            caption="../report/enrichment.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"map": "{map}", "gene sets": "{geneset}", "figure": "scores"},
        ),
        nulls=report(
            "results/{atlas}/{map}/figures/nulls_{geneset}.png",
            caption="../report/nulls.rst",
            category="Cell types",
            subcategory="{atlas}",
            labels={"map": "{map}", "gene sets": "{geneset}", "figure": "null distributions"},
        ),
    log:
        "logs/enrichment_figures_{atlas}_{map}_{geneset}.log",
    group:
        "per_map"
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("enrichment_figures")
    resources:
        mem_mb=rule_mem_mb("enrichment_figures"),
        runtime=rule_runtime("enrichment_figures"),
    params:
        library=library("rule_enrichment_figures.py"),
        n_null_sets=config["enrichment"]["n_null_sets"],
    script:
        "../../scripts/rules/rule_enrichment_figures.py"


rule versions:
    output:
        report(
            "results/versions.tsv",
            caption="../report/versions.rst",
            category="Methods",
            labels={"file": "package versions"},
        ),
    log:
        "logs/versions.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("versions")
    resources:
        mem_mb=rule_mem_mb("versions"),
        runtime=rule_runtime("versions"),
    params:
        library=library("rule_versions.py"),
    script:
        "../../scripts/rules/rule_versions.py"


rule methods:
    input:
        "results/{atlas}/methods.txt",
    output:
        report(
            "results/{atlas}/methods.html",
            caption="../report/methods.rst",
            category="Methods",
            labels={"atlas": "{atlas}", "file": "abagen methods text"},
        ),
    log:
        "logs/methods_{atlas}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("methods")
    resources:
        mem_mb=rule_mem_mb("methods"),
        runtime=rule_runtime("methods"),
    params:
        library=library("rule_methods.py"),
    script:
        "../../scripts/rules/rule_methods.py"
