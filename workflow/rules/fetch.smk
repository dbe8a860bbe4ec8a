# Stage 1: AHBA donors into the layout abagen reads, verified, never half-written.


rule fetch_donor:
    input:
        fetch_input,
    output:
        [f"{AHBA_DIR}/microarray/normalized_microarray_donor{{donor}}/{f}" for f in AHBA_FILES],
    log:
        "logs/fetch_donor_{donor}.log",
    conda:
        "../../envs/fetch.yaml"
    threads: rule_threads("fetch_donor")
    resources:
        mem_mb=rule_mem_mb("fetch_donor"),
        runtime=rule_runtime("fetch_donor"),
    params:
        # with the demo, the generated donors (the input) stand in for the server
        source=config["ahba"]["source"],
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    script:
        "../../scripts/rules/rule_fetch_donor.py"


# RNA-seq of donor 9861 or 10021 (ahba.rnaseq) into <AHBA_DIR>/rnaseq/rnaseq_donor{id}/,
# where abagen's probe_selection "rnaseq" reads it; same source, checks and lock
# file as the microarray. With the demo, the RNA-seq generated to match the demo
# donor (rule demo_rnaseq) stands in for the server, as for fetch_donor.
rule fetch_rnaseq:
    input:
        fetch_rnaseq_input,
    output:
        [f"{AHBA_DIR}/rnaseq/rnaseq_donor{{donor}}/{f}" for f in RNASEQ_FILES],
    log:
        "logs/fetch_rnaseq_{donor}.log",
    wildcard_constraints:
        donor="|".join(RNASEQ_DONOR_IDS),
    conda:
        "../../envs/fetch.yaml"
    threads: rule_threads("fetch_rnaseq")
    resources:
        mem_mb=rule_mem_mb("fetch_rnaseq"),
        runtime=rule_runtime("fetch_rnaseq"),
    params:
        source=config["ahba"]["source"],
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    script:
        "../../scripts/rules/rule_fetch_rnaseq.py"


# downloads, like fetch_donor (listed in the Snakefile): never in cluster jobs
localrules:
    fetch_rnaseq,


# `snakemake --cores 1 fetch`: download on a login node, run the rest offline
# (with ahba.rnaseq, the RNA-seq of donors 9861 and 10021 too)
rule fetch:
    input:
        all_donor_files(),
        all_rnaseq_files() if config["ahba"].get("rnaseq", False) else [],
        fetched_atlas_files(),
        fetched_geneset_files(),
