# Stage 0: atlases. Built-ins that must be downloaded (Schaefer) are fetched once
# into <resources_dir>/atlases/<builtin>/ and checked there; user atlases are read where
# they are. Every rule that loads an atlas takes atlas_inputs as an input, so it
# waits for the download and reruns when a user's atlas files change.


rule fetch_atlas:
    output:
        [f"{ATLAS_ROOT}/{{builtin}}/{f}" for f in FETCHED_ATLAS_FILES],
    log:
        "logs/fetch_atlas_{builtin}.log",
    wildcard_constraints:
        builtin="|".join(FETCHED_BUILTINS),
    conda:
        "../../envs/fetch.yaml"
    threads: rule_threads("fetch_atlas")
    resources:
        mem_mb=rule_mem_mb("fetch_atlas"),
        runtime=rule_runtime("fetch_atlas"),
    params:
        atlas=lambda wc: {"builtin": wc.builtin, "source": FETCHED_ATLAS_SOURCES.get(wc.builtin)},
        lock=ATLAS_LOCK,
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    script:
        "../../scripts/rules/rule_fetch_atlas.py"


# Downloads run where Snakemake runs (a login node on a cluster), as fetch_donor.
localrules:
    fetch_atlas,
