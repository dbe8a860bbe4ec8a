# What made each map's results: results/{atlas}/{map}/provenance.json, written
# after every other output of the map (rules/preflight.smk compares it with the
# next run's choices before any job).


rule provenance:
    input:
        outputs=lambda wc: map_result_files(wc.atlas, wc.map),
        map=map_files,
        expression="results/{atlas}/expression.tsv",
        genesets=geneset_files(),
        versions="results/versions.tsv",
    output:
        "results/{atlas}/{map}/provenance.json",
    log:
        "logs/provenance_{atlas}_{map}.log",
    conda:
        "../../envs/report.yaml"
    threads: rule_threads("provenance")
    resources:
        mem_mb=rule_mem_mb("provenance"),
        runtime=rule_runtime("provenance"),
    params:
        library=library("rule_provenance.py"),
        choices=lambda wc: map_choices(wc.atlas, wc.map),
        settings=lambda wc: map_settings(wc.atlas, wc.map),
    script:
        "../../scripts/rules/rule_provenance.py"


# seconds of hashing: not worth a cluster job
localrules:
    provenance,
