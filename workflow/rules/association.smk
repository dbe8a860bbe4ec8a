# Stage 6: every gene against every map, with spatial-null p values.


rule association:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
    output:
        "results/{atlas}/{map}/genes.tsv",
    log:
        "logs/association_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/association.yaml"
    threads: rule_threads("association")
    resources:
        mem_mb=rule_mem_mb("association"),
        runtime=rule_runtime("association"),
    params:
        library=library("rule_association.py"),
        method=config["association"]["method"],
        tail=config["nulls"]["tail"],
    script:
        "../../scripts/rules/rule_association.py"


# Which regions enter the tests for this map, and why the others do not.
rule coverage:
    input:
        unpack(coverage_inputs),
    output:
        report(
            "results/{atlas}/{map}/coverage.tsv",
            caption="../report/coverage.rst",
            category="Coverage",
            subcategory="{atlas}",
            labels={"map": "{map}", "atlas": "{atlas}", "table": "regions used"},
        ),
    log:
        "logs/coverage_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/association.yaml"
    threads: rule_threads("coverage")
    resources:
        mem_mb=rule_mem_mb("coverage"),
        runtime=rule_runtime("coverage"),
    params:
        library=library("rule_coverage.py"),
    script:
        "../../scripts/rules/rule_coverage.py"


# PLS regression of the map on all genes; variance explained tested on the nulls.
rule pls:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
    output:
        components="results/{atlas}/{map}/pls.tsv",
        genes="results/{atlas}/{map}/pls_genes.tsv",
        scores="results/{atlas}/{map}/pls_scores.tsv",
    log:
        "logs/pls_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/association.yaml"
    threads: rule_threads("pls")
    resources:
        mem_mb=rule_mem_mb("pls"),
        runtime=rule_runtime("pls"),
    params:
        library=library("rule_pls.py"),
        n_components=config["pls"]["n_components"],
        n_boot=config["pls"]["n_boot"],
        seed=config["pls"]["seed"],
    script:
        "../../scripts/rules/rule_pls.py"


# Every map of an atlas against every other, each tested on its own nulls.
rule compare_maps:
    input:
        maps=lambda wc: [f"results/{wc.atlas}/{m}/map.tsv" for m in maps_for_atlas(wc.atlas)],
        nulls=lambda wc: [f"results/{wc.atlas}/{m}/nulls.npz" for m in maps_for_atlas(wc.atlas)],
    output:
        "results/{atlas}/compare_maps.tsv",
    log:
        "logs/compare_maps_{atlas}.log",
    conda:
        "../../envs/association.yaml"
    threads: rule_threads("compare_maps")
    resources:
        mem_mb=rule_mem_mb("compare_maps"),
        runtime=rule_runtime("compare_maps"),
    params:
        library=library("rule_compare_maps.py"),
        maps=lambda wc: maps_for_atlas(wc.atlas),
        method=config["association"]["method"],
    script:
        "../../scripts/rules/rule_compare_maps.py"
