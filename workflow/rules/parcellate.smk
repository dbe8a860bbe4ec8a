# Stage 4: each map of the maps sheet onto each atlas.


rule parcellate:
    input:
        maps=map_files,
        # the fetched built-in or the user's atlas files (rules/atlas.smk)
        atlas=atlas_inputs,
    output:
        "results/{atlas}/{map}/map.tsv",
    log:
        "logs/parcellate_{atlas}_{map}.log",
    group:
        "per_map"
    conda:
        "../../envs/parcellate.yaml"
    threads: rule_threads("parcellate")
    resources:
        mem_mb=rule_mem_mb("parcellate"),
        runtime=rule_runtime("parcellate"),
    params:
        library=library("rule_parcellate.py"),
        fmt=lambda wc: map_row(wc)["format"],
        column=lambda wc: map_row(wc)["column"],
        sign=lambda wc: map_row(wc)["sign"],
        atlas=atlas_param,
    script:
        "../../scripts/rules/rule_parcellate.py"
