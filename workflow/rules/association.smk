# Stage 6: every gene against every map, with spatial-null p values.


rule association:
    input:
        expression="results/{atlas}/expression.tsv",
        map="results/{atlas}/{map}/map.tsv",
        nulls="results/{atlas}/{map}/nulls.npz",
    output:
        "results/{atlas}/{map}/genes.tsv",
    params:
        method=config["association"]["method"],
    log:
        "logs/association_{atlas}_{map}.log",
    group:
        "per_map"
    threads: rule_threads("association")
    resources:
        mem_mb=rule_mem_mb("association"),
        runtime=rule_runtime("association"),
    conda:
        "../../envs/association.yaml"
    script:
        "../../scripts/rule_association.py"


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
    threads: rule_threads("coverage")
    resources:
        mem_mb=rule_mem_mb("coverage"),
        runtime=rule_runtime("coverage"),
    conda:
        "../../envs/association.yaml"
    script:
        "../../scripts/rule_coverage.py"
