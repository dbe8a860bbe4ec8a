# Checks before any job (itx.preflight), after every stage is defined: every file
# a result depends on exists, and results made with other choices (the null
# method first; provenance.json of rules/provenance.smk) are never silently
# overwritten. The config and the sheet themselves are checked in common.smk.
import json
from types import SimpleNamespace

from itx.genesets import builtin_name


def _declared_files():
    """(where, path, kind) of every input file the user names."""
    entries = []
    sheet = config["maps"]
    for m, row in MAPS.iterrows():
        for p in map_files(SimpleNamespace(map=m)):
            entries.append((f"maps sheet {sheet}, map {m!r} (column path)", p, "file"))
    for g, spec in config["genesets"].items():
        if builtin_name(spec) is None:
            entries.append((f"genesets.{g}", spec, "file"))
        elif isinstance(spec, dict) and spec.get("source") and "://" not in spec["source"]:
            entries.append((f"genesets.{g}.source", spec["source"], "any"))
    for a, spec in config["atlases"].items():
        for k in ("volume", "table"):
            if spec.get(k):
                entries.append((f"atlases.{a}.{k}", spec[k], "file"))
        for p in spec.get("surface") or []:
            entries.append((f"atlases.{a}.surface", p, "file"))
        if spec.get("source") and "://" not in spec["source"]:
            entries.append((f"atlases.{a}.source", spec["source"], "any"))
    if PRECOMPUTED:
        for a in ATLASES:
            entries.append(
                (f"expression.precomputed.{a}", config["expression"]["precomputed"][a], "file")
            )
    if config["dense"]["enabled"] and not PRECOMPUTED:
        for c, p in config["dense"]["external"].items():
            entries.append((f"dense.external.{c}", p, "file"))
    src = config["ahba"]["source"]
    if src not in ("demo", "allen") and "://" not in src:
        entries.append(("ahba.source", src, "any"))
    return entries


# the demo's generated inputs (rules/demo.smk) need not exist yet
_DEMO_PRODUCED = [
    f"{DEMO_DIR}/demo_map.nii.gz",
    f"{DEMO_DIR}/demo_map.tsv",
    f"{DEMO_DIR}/genesets.gmt",
]


def _check_declared_files():
    return preflight.missing_files(_declared_files(), producible=_DEMO_PRODUCED)


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
    here so that a bad file stops the run before any job. Results are cached per
    file (path, size, mtime) in .snakemake/, so large maps are read once."""
    from itx.mapfiles import CHECKS_VERSION, check_map_file

    cache_file = Path(".snakemake/itx/mapcheck.json")
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    problems, fresh = [], {}
    for m, row in MAPS.iterrows():
        paths = map_files(SimpleNamespace(map=m))
        if not all(Path(p).is_file() for p in paths):
            continue  # reported by _check_declared_files (or made by the demo rules)
        key = json.dumps(
            [
                [str(Path(p).resolve()), Path(p).stat().st_size, Path(p).stat().st_mtime_ns]
                for p in paths
            ]
            + [row["format"], row["column"], CHECKS_VERSION]
        )
        found = cache.get(key)
        if found is None:
            found = check_map_file(
                paths if row["format"] == "gifti" else paths[0],
                row["format"],
                column=row["column"] or None,
            )
        fresh[key] = found
        problems += [f"maps sheet {config['maps']}, map {m!r}: {p}" for p in found]
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        cache_file.write_text(json.dumps(fresh))
    except OSError:
        pass  # a read-only working directory only loses the cache
    return problems


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
            # a collection added or dropped overwrites nothing; one whose file changed does
            old_sets, new_sets = recorded.get("genesets", {}), current.get("genesets", {})
            recorded = dict(recorded, genesets={k: v for k, v in old_sets.items() if k in new_sets})
            current = dict(current, genesets={k: v for k, v in new_sets.items() if k in old_sets})
            changed = preflight.changed_choices(recorded, current)
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
