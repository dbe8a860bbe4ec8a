# Stage 1: AHBA donors into the layout abagen reads, verified, never half-written.


def fetch_input(wildcards):
    # the demo's generated donors stand in for the Allen server
    if IS_DEMO:
        return [
            f"{DEMO_DIR}/source/microarray/normalized_microarray_donor{wildcards.donor}/{f}"
            for f in AHBA_FILES
        ]
    return []


rule fetch_donor:
    input:
        fetch_input,
    output:
        [
            f"{AHBA_DIR}/microarray/normalized_microarray_donor{{donor}}/{f}"
            for f in AHBA_FILES
        ],
    params:
        data_dir=AHBA_DIR,
        source=f"{DEMO_DIR}/source" if IS_DEMO else config["ahba"]["source"],
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    log:
        "logs/fetch_donor_{donor}.log",
    conda:
        "../../envs/fetch.yaml"
    script:
        "../../scripts/rule_fetch_donor.py"


# `snakemake --cores 1 fetch`: download on a login node, run the rest offline
rule fetch:
    input:
        all_donor_files(),
