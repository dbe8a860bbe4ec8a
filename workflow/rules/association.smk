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
