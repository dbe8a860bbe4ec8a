#!/usr/bin/env python3
"""Create a study folder for the imaging transcriptomics workflow.

A study is a folder: ``config/config.yaml`` (every key commented, from the
template ``config/study.yaml`` of this checkout), an empty maps sheet
``config/maps.tsv``, a ``data/`` folder for the study's maps and a short
``README.md``. Run it from the checkout with
``.venv/bin/snakemake --cores N --directory <study>``; results, logs and the
report stay inside the study folder, while downloads and caches go to the
checkout's ``resources/`` folder, which every study on the machine shares.

With ``--from`` the config folder of another study is copied instead of the
template (two variants of one study side by side, e.g. two null methods);
relative paths in the copied config and maps sheet that point at files of
the other study are rewritten so that they still do. With ``--module`` the
study also gets ``workflow/Snakefile``, which uses this checkout's workflow as
a Snakemake module (the layout ``snakedeploy deploy-workflow`` writes).

Only the standard library is used, so ``make study`` works before the
workflow's virtual environment exists.

Examples
--------
::

    make study NAME=mdd                           # studies/mdd
    make study NAME=mdd_vasa FROM=studies/mdd     # a variant of it
    python3 scripts/tools/new_study.py /data/projects/mdd --module
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import sys
from pathlib import Path

#: the checkout this script belongs to
CHECKOUT = Path(__file__).resolve().parents[2]
#: the fully commented template of a study's config
TEMPLATE = CHECKOUT / "config" / "study.yaml"
#: columns of the maps sheet, in the order of config/README.md ("Maps sheet")
SHEET_COLUMNS = ("map", "path", "format", "column", "atlas", "sign", "description",
                 "null_method", "null_sensitivity", "covariates")
#: ahba.source values that are keywords, never paths
SOURCE_KEYWORDS = ("allen", "demo")


class StudyError(Exception):
    """A study folder cannot be made; the message says why and what to do."""


def display(path: Path) -> str:
    """`path` relative to the current directory when it is inside it, else absolute.

    Parameters
    ----------
    path : Path

    Returns
    -------
    str
    """
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def snakemake_command(study: Path) -> str:
    """How to run `study` from the checkout.

    Parameters
    ----------
    study : Path
        The study folder.

    Returns
    -------
    str
        The command, with paths relative to the checkout where possible.
    """
    study = Path(os.path.abspath(study))
    try:
        where = str(study.relative_to(CHECKOUT))
    except ValueError:
        where = str(study)
    return f".venv/bin/snakemake --cores 4 --directory {where}"


def render_config(template: str, resources_dir: Path) -> str:
    """The template with ``resources_dir`` set to an absolute folder.

    Parameters
    ----------
    template : str
        Text of ``config/study.yaml``.
    resources_dir : Path
        Absolute folder of downloads and caches.

    Returns
    -------
    str

    Raises
    ------
    StudyError
        If the template has no top-level ``resources_dir:`` line.
    """
    line = re.compile(r"^resources_dir:[^\n]*$", re.MULTILINE)
    if len(line.findall(template)) != 1:
        raise StudyError(f"{TEMPLATE}: expected one top-level 'resources_dir:' line")
    return line.sub(lambda _: f"resources_dir: {yaml_string(str(resources_dir))}", template)


def yaml_string(text: str) -> str:
    """`text` as a YAML scalar: plain when that is safe, else double-quoted.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
    """
    if re.fullmatch(r"[A-Za-z0-9_./+-][A-Za-z0-9_./+ -]*", text) and not text.endswith(" "):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def module_snakefile(checkout: Path) -> str:
    """``workflow/Snakefile`` of a study that uses the workflow as a module.

    Parameters
    ----------
    checkout : Path
        The workflow checkout whose ``workflow/Snakefile`` the module loads.

    Returns
    -------
    str
    """
    snakefile = checkout / "workflow" / "Snakefile"
    return f'''# This study uses the imaging transcriptomics workflow as a Snakemake module, as
# `snakedeploy deploy-workflow` sets it up (written by scripts/tools/new_study.py).
# Run it from the study folder:  {checkout}/.venv/bin/snakemake --cores 4
# The config below is the study's own; the module does not read another.

configfile: "config/config.yaml"


module itx:
    # the workflow's entry point: a local checkout here; snakedeploy writes a
    # remote source instead, e.g.
    #   github("<owner>/<repo>", path="workflow/Snakefile", tag="v1.0.0")
    snakefile:
        "{snakefile}"
    config:
        config


use rule * from itx
'''


def write_module(study: Path) -> None:
    """Write `study`'s ``workflow/Snakefile`` (the checkout's workflow as a module)
    and its default profile (a copy of the checkout's, which Snakemake applies only
    to runs of the checkout's own Snakefile).

    Parameters
    ----------
    study : Path
    """
    folder = study / "workflow"
    folder.mkdir()
    (folder / "Snakefile").write_text(module_snakefile(CHECKOUT), encoding="utf-8")
    profile = CHECKOUT / "workflow" / "profiles" / "default" / "config.yaml"
    if profile.is_file():
        (folder / "profiles" / "default").mkdir(parents=True)
        shutil.copy2(profile, folder / "profiles" / "default" / "config.yaml")


def study_readme(study: Path, module: bool, origin: Path | None) -> str:
    """A short ``README.md`` for a new study: what is where and how to run it.

    Parameters
    ----------
    study : Path
        The study folder.
    module : bool
        Whether the study has a module ``workflow/Snakefile``.
    origin : Path or None
        The study the config was copied from (``--from``).

    Returns
    -------
    str
    """
    name = study.name
    run = snakemake_command(study)
    target = run.split("--directory ", 1)[1]
    copied = (f"\nThe config and maps sheet were copied from `{origin}`; its data files are "
              "referred to, not copied.\n" if origin else "")
    if module:
        how = f"""This study deploys the workflow as a Snakemake module (`workflow/Snakefile`
loads `{CHECKOUT}/workflow/Snakefile`). Run it from this folder:

```bash
{CHECKOUT}/.venv/bin/snakemake --cores 4
{CHECKOUT}/.venv/bin/snakemake --report results/report.html
```
"""
    else:
        how = f"""Run it from the workflow checkout (`{CHECKOUT}`):

```bash
{run}
.venv/bin/snakemake --directory {target} --report results/report.html
```

`--report` is read inside the study folder: the report is `results/report.html` here.
"""
    return f"""# Study {name}

Imaging transcriptomics study made with `make study` (scripts/tools/new_study.py).
{copied}
- `config/config.yaml`: the study's choices; every key is commented there.
- `config/maps.tsv`: one row per brain map (the workflow's config/README.md, "Maps sheet");
  put the maps in `data/` and give their paths relative to this folder.
- `results/`, `logs/` and `.snakemake/` appear here when the study runs. Downloads
  and caches (the AHBA, atlases, gene sets) go to `resources_dir` of the config,
  shared by every study on the machine.

{how}
After an interrupted run, Snakemake may say that the directory is locked: add
`--unlock` to the same command once, then run it again. See the workflow's
README, "Your own study".
"""


def _relative_target(value: str, origin: Path, study: Path) -> str | None:
    """Where a relative path of `origin` points, seen from `study` (None: leave it).

    A value is rewritten when it is a relative path to something that exists in
    `origin` outside its ``config/`` folder (which is copied along).

    Parameters
    ----------
    value : str
    origin, study : Path
        Absolute folders of the copied study and of the new one.

    Returns
    -------
    str or None
    """
    value = value.strip()
    if (not value or value in SOURCE_KEYWORDS or os.path.isabs(value) or "://" in value
            or ("/" not in value and "." not in value)):
        return None
    target = Path(os.path.normpath(origin / value))
    if not target.exists():
        return None
    try:
        target.relative_to(origin / "config")
        return None
    except ValueError:
        pass
    new = os.path.relpath(target, study)
    if value.endswith("/") and not new.endswith("/"):
        new += "/"
    return new


def rewrite_sheet(text: str, origin: Path, study: Path) -> tuple[str, list[str]]:
    """The maps sheet with paths of `origin`'s files made valid from `study`.

    Parameters
    ----------
    text : str
        The sheet (tab-separated, header row first; ``#`` lines are comments).
    origin, study : Path

    Returns
    -------
    text : str
    changed : list of str
        ``old -> new`` for every rewritten path.
    """
    lines = text.splitlines(keepends=True)
    if not lines:
        return text, []
    header = next(csv.reader([lines[0]], delimiter="\t"))
    if "path" not in header:
        return text, []
    col = header.index("path")
    out, changed = [lines[0]], []
    for line in lines[1:]:
        if not line.strip() or line.lstrip().startswith("#"):
            out.append(line)
            continue
        end = line[len(line.rstrip("\r\n")):]
        cells = line.rstrip("\r\n").split("\t")
        if col < len(cells):
            parts = cells[col].split(",")
            new_parts = []
            for part in parts:
                new = _relative_target(part, origin, study)
                if new is not None:
                    changed.append(f"{part.strip()} -> {new}")
                new_parts.append(part if new is None else new)
            cells[col] = ",".join(new_parts)
        out.append("\t".join(cells) + end)
    return "".join(out), changed


# a scalar value in a YAML line: after "key: ", "- ", "[", "{" or ",", optionally
# quoted, up to the end of the line, a "," or a closing bracket (never a "key: ")
_SCALAR = re.compile(
    r"""(?P<lead>^\s*-\s+|:\s+|[\[{,]\s*)(?P<q>['"]?)"""
    r"""(?P<val>(?:[^\s'",\[\]{}#:]|:(?!\s))(?:[^'",\[\]{}#:]|:(?!\s))*?)(?P=q)"""
    r"""(?=\s*(?:$|,|\]|\}))""")


def rewrite_config(text: str, origin: Path, study: Path) -> tuple[str, list[str]]:
    """The config with relative paths to `origin`'s files made valid from `study`.

    Works on the text, so comments and layout stay; only scalar values that are
    relative paths to existing files or folders of `origin` (outside its
    ``config/``) change.

    Parameters
    ----------
    text : str
        The YAML config.
    origin, study : Path

    Returns
    -------
    text : str
    changed : list of str
        ``old -> new`` for every rewritten path.
    """
    out, changed = [], []

    def repl(match):
        new = _relative_target(match.group("val"), origin, study)
        if new is None:
            return match.group(0)
        changed.append(f"{match.group('val')} -> {new}")
        q = match.group("q")
        return match.group("lead") + (f"{q}{new}{q}" if q else yaml_string(new))

    for line in text.splitlines(keepends=True):
        content = line.rstrip("\r\n")
        newline = line[len(content):]
        if content.lstrip().startswith("#"):
            out.append(line)
            continue
        # a comment starts at a "#" after whitespace; it is left alone
        m = re.search(r"\s#", content)
        body, comment = (content[: m.start()], content[m.start():]) if m else (content, "")
        out.append(_SCALAR.sub(repl, body) + comment + newline)
    return "".join(out), changed


def create_study(study: Path, origin: Path | None = None, module: bool = False,
                 resources_dir: Path | None = None) -> list[str]:
    """Create a study folder.

    Parameters
    ----------
    study : Path
        The new folder; it must not exist.
    origin : Path, optional
        A study folder whose ``config/`` (config and maps sheet) is copied
        instead of the template; a module ``workflow/Snakefile`` of it is copied
        too.
    module : bool
        Write ``workflow/Snakefile`` using the checkout's workflow as a module.
    resources_dir : Path, optional
        Folder of downloads and caches (default: the checkout's ``resources/``),
        written as an absolute path. Ignored with `origin`, whose value is kept.

    Returns
    -------
    list of str
        What was done, one line each (paths rewritten by `origin`).

    Raises
    ------
    StudyError
        If `study` exists, or `origin` is not a study folder.
    """
    study = Path(os.path.abspath(study))
    if study.exists() or study.is_symlink():
        raise StudyError(
            f"{display(study)} already exists; a study folder is never overwritten. "
            f"Choose another NAME (or DIR), or remove the folder first "
            f"(rm -r {display(study)}) if you really mean to start it again")
    notes: list[str] = []
    if origin is not None:
        origin = Path(os.path.abspath(origin))
        if not (origin / "config" / "config.yaml").is_file():
            raise StudyError(
                f"{display(origin)} is not a study folder: it has no config/config.yaml "
                "(FROM must name a folder made by `make study`)")
        if origin == study:
            raise StudyError("FROM and the new study are the same folder")
    else:
        if not TEMPLATE.is_file():
            raise StudyError(f"the template {TEMPLATE} is missing from the checkout")
    config_dir = study / "config"
    try:
        study.parent.mkdir(parents=True, exist_ok=True)
        study.mkdir()
    except OSError as err:
        raise StudyError(f"cannot create {display(study)}: {err.strerror}") from None
    try:
        (study / "data").mkdir()
        if origin is None:
            config_dir.mkdir()
            folder = Path(os.path.abspath(resources_dir or CHECKOUT / "resources"))
            (config_dir / "config.yaml").write_text(
                render_config(TEMPLATE.read_text(encoding="utf-8"), folder), encoding="utf-8")
            (config_dir / "maps.tsv").write_text("\t".join(SHEET_COLUMNS) + "\n", encoding="utf-8")
            if module:
                write_module(study)
        else:
            shutil.copytree(origin / "config", config_dir, symlinks=True)
            for name in sorted(p.name for p in config_dir.iterdir() if p.is_file()):
                path = config_dir / name
                if name.endswith((".yaml", ".yml")):
                    text, changed = rewrite_config(path.read_text(encoding="utf-8"), origin, study)
                elif name.endswith((".tsv", ".csv", ".txt")):
                    text, changed = rewrite_sheet(path.read_text(encoding="utf-8"), origin, study)
                else:
                    continue
                if changed:
                    path.write_text(text, encoding="utf-8")
                    notes += [f"config/{name}: {c}" for c in changed]
            if (origin / "workflow" / "Snakefile").is_file() and not module:
                # a module deployment stays one: its Snakefile (and profiles) as they are
                shutil.copytree(origin / "workflow", study / "workflow", symlinks=True)
                module = True
            elif module:
                write_module(study)
        (study / "README.md").write_text(
            study_readme(study, module, display(origin) if origin else None), encoding="utf-8")
    except BaseException:
        shutil.rmtree(study, ignore_errors=True)
        raise
    return notes


def main(argv=None) -> int:
    """Command line: ``new_study.py STUDY [--from OTHER] [--module]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0, or 1 with a message on stderr.
    """
    parser = argparse.ArgumentParser(
        description="Create a study folder (config with every key commented, empty maps "
                    "sheet, README) for the imaging transcriptomics workflow.",
        epilog="Run a study from the checkout: .venv/bin/snakemake --cores N --directory STUDY")
    parser.add_argument("study", type=Path,
                        help="the new study folder, e.g. studies/mdd (must not exist)")
    parser.add_argument("--from", dest="origin", type=Path, metavar="OTHER",
                        help="copy the config and maps sheet of this study folder instead of "
                             "the template (a second variant of a study)")
    parser.add_argument("--module", action="store_true",
                        help="also write workflow/Snakefile using this checkout's workflow as "
                             "a Snakemake module (as snakedeploy deploy-workflow does)")
    args = parser.parse_args(argv)
    try:
        notes = create_study(args.study, origin=args.origin, module=args.module)
    except StudyError as err:
        print(f"new_study.py: {err}", file=sys.stderr)
        return 1
    study = Path(os.path.abspath(args.study))
    shown = display(study)
    print(f"Created study {shown}/"
          + (f" (config and maps sheet copied from {display(args.origin)})" if args.origin else ""))
    for note in notes:
        print(f"  rewrote {note}")
    is_module = (study / "workflow" / "Snakefile").is_file()
    print(f"  {shown}/config/config.yaml   the study's choices (every key commented)")
    print(f"  {shown}/config/maps.tsv      maps sheet: add one row per map (maps go in "
          f"{shown}/data/)")
    print("Run it with:")
    if is_module:
        print(f"  cd {shown} && {CHECKOUT}/.venv/bin/snakemake --cores 4")
    else:
        print(f"  {snakemake_command(study)}   (from {CHECKOUT})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
