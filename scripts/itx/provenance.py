"""What made a results folder: choices, settings, input checksums, versions.

A map's results folder (``results/{atlas}/{map}/``) ends with
``provenance.json``, written after every other output of the map. It records
the choices a user compares between runs (the null method first), every other
setting and seed, the SHA-256 of each input file (the map, the expression
matrix, the gene-set files), the package versions and a digest of the
library code. Before any job, the workflow compares the recorded choices with
the current ones and refuses to overwrite results made with other choices
(:func:`itx.preflight.changed_choices`).

The record holds no timestamps and no absolute paths, so that the same inputs
give the same bytes on a laptop and on a cluster.
"""

from __future__ import annotations

import ast
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping

from .download import sha256_file
from .tables import write_text

RECORD_FORMAT = "itx-provenance-1"


def library_modules(script, package_dir) -> list[Path]:
    """The library modules a rule script uses, transitively.

    Parameters
    ----------
    script : path-like
        A rule script (``scripts/rules/rule_*.py``).
    package_dir : path-like
        The library package folder (``scripts/itx``).

    Returns
    -------
    list of Path
        Sorted paths of the ``itx`` modules `script` imports, directly or
        through other ``itx`` modules.

    Notes
    -----
    Snakemake reruns a job when its rule script changes, but it does not see
    the modules the script imports; a digest of these (:func:`library_digest`)
    as a rule parameter makes a library fix rerun exactly the rules it affects.
    """
    package_dir = Path(package_dir)
    seen: set[Path] = set()
    todo = [Path(script)]
    while todo:
        path = todo.pop()
        stat = path.stat()
        for parts in _imported_modules(path, package_dir, (stat.st_mtime_ns, stat.st_size)):
            for module in _module_files(package_dir, parts):
                if module not in seen:
                    seen.add(module)
                    todo.append(module)
    init = package_dir / "__init__.py"
    if seen and init.exists():
        seen.add(init)
    return sorted(seen)


def _module_files(package_dir: Path, parts: tuple) -> list[Path]:
    """Files Python runs to import the library module `parts` (``("mapfiles",
    "tables")``): the module, and the ``__init__.py`` of each package on the way."""
    files = []
    for n in range(1, len(parts) + 1):
        folder = package_dir.joinpath(*parts[:n])
        if (folder / "__init__.py").exists():
            files.append(folder / "__init__.py")
        elif n == len(parts) and folder.with_suffix(".py").exists():
            files.append(folder.with_suffix(".py"))
        else:
            break
    return files


@lru_cache(maxsize=None)
def _imported_modules(path: Path, package_dir: Path, stamp: tuple) -> tuple:
    """Library modules one file imports, as name parts below the package (cached:
    every rule of a workflow asks for the same modules when Snakemake builds the
    DAG). A name imported from a module may be a submodule: both are listed,
    and only those that exist count."""
    package = package_dir.name
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    try:  # the package (as parts below the library) a relative import starts from
        here = path.parent.relative_to(package_dir).parts
    except ValueError:
        here = None  # a rule script: outside the library, no relative imports
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if here is None or node.level - 1 > len(here):
                    continue
                base = here[: len(here) - (node.level - 1)]
                module = base + tuple(node.module.split(".") if node.module else ())
            elif node.module == package or (node.module or "").startswith(package + "."):
                module = tuple(node.module.split(".")[1:])  # from itx[.x] import y
            else:
                continue
            found += [module] + [module + (a.name,) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [tuple(a.name.split(".")[1:]) for a in node.names
                      if a.name.startswith(package + ".")]
    return tuple(f for f in found if f)


def library_digest(script, package_dir) -> str:
    """SHA-256 over the source of the library modules a rule script uses."""
    h = hashlib.sha256()
    package_dir = Path(package_dir)
    for module in library_modules(script, package_dir):
        h.update(module.relative_to(package_dir).as_posix().encode())
        h.update(b"\0")
        h.update(module.read_bytes())
    return h.hexdigest()[:16]


def package_versions(table) -> dict:
    """``{package: version}`` from the workflow's ``versions.tsv``."""
    versions = {}
    for line in Path(table).read_text(encoding="utf-8").splitlines()[1:]:
        if "\t" in line:
            name, version = line.split("\t", 1)
            versions[name] = version
    return versions


def map_record(*, choices: Mapping, settings: Mapping, inputs: Mapping[str, Iterable],
               versions: Mapping, library: str) -> dict:
    """The provenance record of one map's results folder.

    Parameters
    ----------
    choices : mapping
        The choices compared between runs (null method, scope, ...).
    settings : mapping
        Every other setting of the map's stages (null counts, seeds, ...).
    inputs : mapping of str to iterable of path
        Role -> input files; each is recorded with its SHA-256 and size.
    versions : mapping
        Package versions.
    library : str
        Digest of the library code.
    """
    files = {}
    for role, paths in inputs.items():
        files[role] = [{"file": Path(p).name, "sha256": sha256_file(p),
                        "bytes": Path(p).stat().st_size} for p in paths]
    return {"format": RECORD_FORMAT, "choices": dict(choices), "settings": dict(settings),
            "inputs": files, "versions": dict(versions), "library": library}


def write_record(record: Mapping, path) -> Path:
    """Write a record as sorted, indented JSON (atomically)."""
    return write_text(json.dumps(record, indent=2, sort_keys=True, default=str) + "\n", path)


def read_choices(path):
    """The recorded choices of a results folder, or None without a readable record."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        return None
    return record.get("choices")
