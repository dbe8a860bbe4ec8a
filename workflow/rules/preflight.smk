# Checks before any job (itx.preflight), after every stage is defined: every file
# a result depends on exists, and results made with other choices (the null
# method first; provenance.json of rules/provenance.smk) are never silently
# overwritten. The config and the sheet themselves are checked in common.smk.
import json
from types import SimpleNamespace

# the demo's generated inputs (rules/demo.smk) need not exist yet
_DEMO_PRODUCED = [
    f"{DEMO_DIR}/demo_map.nii.gz",
    f"{DEMO_DIR}/demo_map.tsv",
    f"{DEMO_DIR}/genesets.gmt",
]


def _check_declared_files():
    return preflight.missing_files(
        preflight.declared_files(config, MAPS), producible=_DEMO_PRODUCED
    )


def _check_null_methods():
    """Each map's null method is possible for its input and atlas (e.g. vertex_spin
    needs a GIFTI map, spins need an atlas with a surface)."""
    problems = []
    for atlas in ATLASES:
        for m in maps_for_atlas(atlas):
            try:
                map_null_method(SimpleNamespace(atlas=atlas, map=m))
            except ValueError as err:
                problems.append(str(err))
    return problems


def _check_map_contents():
    """Every map file is readable and holds usable values (itx.mapfiles), checked
    here so that a bad file stops the run before any job; cached in .snakemake/."""
    return preflight.map_file_problems(MAPS, config["maps"], ".snakemake/itx/mapcheck.json")


def _check_choices():
    """Results folders whose recorded choices differ from this run's."""
    problems = []
    for atlas in ATLASES:
        for m in maps_for_atlas(atlas):
            record = f"results/{atlas}/{m}/provenance.json"
            recorded = provenance.read_choices(record)
            if recorded is None:
                continue
            current = json.loads(json.dumps(map_choices(atlas, m), default=str))
            changed = preflight.choice_changes(recorded, current)
            if changed:
                problems.append(
                    f"results/{atlas}/{m}/ was made with other choices (recorded in "
                    f"{record}): " + "; ".join(changed)
                )
    return problems


try:
    preflight.raise_if(_check_declared_files(), "input files are missing")
    preflight.raise_if(_check_null_methods(), "null methods cannot run on these maps")
    preflight.raise_if(_check_map_contents(), "map files have problems")
except preflight.PreflightError as err:
    _stop(err)
if not config["replace_results"]:
    _changed = _check_choices()
    if _changed:
        _stop(
            preflight.PreflightError(
                _changed
                + [
                    "to keep both results: add a second row for the map with another name (and its own "
                    "null_method), or copy the study (`make study NAME=<new> FROM=<this study folder>`; "
                    "the AHBA downloads and caches are shared); to replace them: rerun with "
                    "`--config replace_results=true` (or delete those folders)"
                ],
                "these results would be overwritten by a run with other choices",
            )
        )
