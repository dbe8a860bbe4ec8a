# The offline demo: AHBA-format donors with a planted signal, a disease map on
# Desikan-Killiany (volume + region table) and demo gene sets. Only used when
# ahba.source is "demo" or when the maps sheet / gene sets point at these files.


rule demo_donors:
    output:
        files=[
            f"{DEMO_DIR}/source/microarray/normalized_microarray_donor{d}/{f}"
            for d in DONORS
            for f in AHBA_FILES
        ],
        truth=f"{DEMO_DIR}/truth.json",
    log:
        "logs/demo_donors.log",
    group:
        "demo"
    conda:
        "../../envs/demo.yaml"
    threads: rule_threads("demo_donors")
    resources:
        mem_mb=rule_mem_mb("demo_donors"),
        runtime=rule_runtime("demo_donors"),
    params:
        library=library("rule_demo_donors.py"),
        seed=config["demo"]["seed"],
        samples_per_donor=config["demo"]["samples_per_donor"],
        donors=DONORS,
    script:
        "../../scripts/rules/rule_demo_donors.py"


rule demo_map:
    output:
        nifti=f"{DEMO_DIR}/demo_map.nii.gz",
        table=f"{DEMO_DIR}/demo_map.tsv",
    log:
        "logs/demo_map.log",
    group:
        "demo"
    conda:
        "../../envs/demo.yaml"
    threads: rule_threads("demo_map")
    resources:
        mem_mb=rule_mem_mb("demo_map"),
        runtime=rule_runtime("demo_map"),
    params:
        library=library("rule_demo_map.py"),
        seed=config["demo"]["seed"],
    script:
        "../../scripts/rules/rule_demo_map.py"


rule demo_genesets:
    output:
        f"{DEMO_DIR}/genesets.gmt",
    log:
        "logs/demo_genesets.log",
    group:
        "demo"
    conda:
        "../../envs/demo.yaml"
    threads: rule_threads("demo_genesets")
    resources:
        mem_mb=rule_mem_mb("demo_genesets"),
        runtime=rule_runtime("demo_genesets"),
    params:
        library=library("rule_demo_genesets.py"),
        seed=config["demo"]["seed"],
    script:
        "../../scripts/rules/rule_demo_genesets.py"


# RNA-seq for demo donors 9861 / 10021, generated from the same gene values as the
# demo microarray (only with ahba.rnaseq; rule fetch_rnaseq reads it like a mirror)
rule demo_rnaseq:
    output:
        [f"{DEMO_DIR}/source/rnaseq/rnaseq_donor{{donor}}/{f}" for f in RNASEQ_FILES],
    log:
        "logs/demo_rnaseq_{donor}.log",
    wildcard_constraints:
        donor="|".join(RNASEQ_DONOR_IDS),
    group:
        "demo"
    conda:
        "../../envs/demo.yaml"
    threads: rule_threads("demo_rnaseq")
    resources:
        mem_mb=rule_mem_mb("demo_rnaseq"),
        runtime=rule_runtime("demo_rnaseq"),
    params:
        library=library("rule_demo_rnaseq.py"),
        seed=config["demo"]["seed"],
        samples_per_donor=config["demo"]["samples_per_donor"],
    script:
        "../../scripts/rules/rule_demo_rnaseq.py"
