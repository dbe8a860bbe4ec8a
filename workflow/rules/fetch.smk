# Stage 1: AHBA donors into the layout abagen reads, verified, never half-written.


rule fetch_donor:
    input:
        fetch_input,
    output:
        [
            f"{AHBA_DIR}/microarray/normalized_microarray_donor{{donor}}/{f}"
            for f in AHBA_FILES
        ],
    params:
        # with the demo, the generated donors (the input) stand in for the server
        source=config["ahba"]["source"],
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    log:
        "logs/fetch_donor_{donor}.log",
    threads: rule_threads("fetch_donor")
    resources:
        mem_mb=rule_mem_mb("fetch_donor"),
        runtime=rule_runtime("fetch_donor"),
    conda:
        "../../envs/fetch.yaml"
    script:
        "../../scripts/rule_fetch_donor.py"


# `snakemake --cores 1 fetch`: download on a login node, run the rest offline
rule fetch:
    input:
        all_donor_files(),
