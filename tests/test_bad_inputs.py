"""Bad input, table-driven: each case ends at a known moment with a message naming
the file, the key or row and the fix, and leaves no partial output behind.

A case is one row of ``CASES`` (or ``STALE_CASES``, for a study that already
ran): a name, a function that spoils a working study folder, the moment the run
must fail, and a regex the message must match. The moment is ``"before"`` (the
DAG refuses: no job starts, nothing is written under results/ or the shared
resources) or the name of the rule whose job fails (then that job's outputs
must not exist). To add a case, write its spoiler and append a row.

The study is small and real: the built-in Desikan-Killiany atlas, a precomputed
region x gene table (no AHBA stages), a region-table map and a GMT collection,
run with ``snakemake --directory`` exactly as a user runs a study folder.
"""
from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "workflow" / "Snakefile"


def snakemake(study, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE),
                           "--directory", str(study), "--cores", "2", *args],
                          capture_output=True, text=True, timeout=timeout)


def dk_regions():
    from itx import atlas

    return atlas.load_atlas("dk", {"builtin": "desikan_killiany"}).info


# --- the working study every case spoils --------------------------------------------

def make_study(folder: Path, resources: Path) -> Path:
    """A small, complete study folder (config, sheet, map, expression, gene sets)."""
    info = dk_regions()
    rng = np.random.default_rng(7)
    genes = [f"GENE{i}" for i in range(120)]
    expr = pd.DataFrame(rng.normal(size=(len(info), len(genes))), columns=genes)
    expr.insert(0, "region", info["region"].to_numpy())
    (folder / "data").mkdir(parents=True)
    (folder / "config").mkdir()
    expr.to_csv(folder / "data" / "expression.csv", index=False)
    left = info[(info["hemisphere"] == "L") & (info["structure"] == "cortex")]
    # a smooth-ish map: a gradient along the label order plus noise
    vals = np.linspace(-1, 1, len(left)) + rng.normal(scale=0.3, size=len(left))
    pd.DataFrame({"region": left["region"], "d_icv": np.round(vals, 4)}).to_csv(
        folder / "data" / "map.csv", index=False)
    with open(folder / "data" / "sets.gmt", "w") as fh:
        fh.write("setA\tna\t" + "\t".join(genes[:10]) + "\n")
        fh.write("setB\tna\t" + "\t".join(genes[10:25]) + "\n")
    config = {
        "maps": "config/maps.tsv",
        "resources_dir": str(resources),
        "atlases": {"dk": {"builtin": "desikan_killiany"}},
        "scope": "left_cortex",
        "expression": {"source": "precomputed", "precomputed": {"dk": "data/expression.csv"}},
        "nulls": {"method": "alexander_bloch", "n_perm": 40, "seed": 1},
        "pls": {"n_components": 2, "n_boot": 20},
        "genesets": {"mine": "data/sets.gmt"},
        "enrichment": {"n_random": 40, "min_genes": 5},
        "celltypes": {"min_genes": 5},
        "dense": {"enabled": False},
    }
    write_config(folder, config)
    write_sheet(folder, [{"map": "mdd", "path": "data/map.csv", "format": "table",
                          "column": "d_icv", "atlas": "dk", "sign": "-1",
                          "description": "test map"}])
    return folder


def read_config(study):
    return yaml.safe_load((study / "config" / "config.yaml").read_text())


def write_config(study, config):
    (study / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def edit_config(study, **changes):
    """Set dotted keys, e.g. edit_config(s, **{"nulls.method": "vasa"})."""
    config = read_config(study)
    for dotted, value in changes.items():
        node = config
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    write_config(study, config)


def read_sheet(study):
    return pd.read_csv(study / "config" / "maps.tsv", sep="\t", dtype=str).fillna("")


def write_sheet(study, rows):
    cols = ["map", "path", "format", "column", "atlas", "sign", "description"]
    frame = pd.DataFrame(rows)
    frame = frame[[c for c in cols if c in frame.columns]
                  + [c for c in frame.columns if c not in cols]]
    frame.to_csv(study / "config" / "maps.tsv", sep="\t", index=False)


def edit_row(study, **cells):
    sheet = read_sheet(study)
    for k, v in cells.items():
        sheet.loc[0, k] = v
    write_sheet(study, sheet.to_dict("records"))


def map_table(study):
    return pd.read_csv(study / "data" / "map.csv")


def set_map_cells(study, values, rows=(0,), column="d_icv"):
    text = (study / "data" / "map.csv").read_text().splitlines()
    header = text[0].split(",")
    j = header.index(column)
    for i, v in zip(rows, values if isinstance(values, list) else [values] * len(rows)):
        cells = text[i + 1].split(",")
        cells[j] = v
        text[i + 1] = ",".join(cells)
    (study / "data" / "map.csv").write_text("\n".join(text) + "\n")


# NIfTI / GIFTI map files ---------------------------------------------------------

def write_nifti(study, data=None, name="map.nii.gz"):
    """A 2 mm MNI152 volume map (or `data` of that grid)."""
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    if data is None:
        grid = np.indices((91, 109, 91)).astype(np.float32)
        data = (grid[0] + 0.5 * grid[1] - 0.2 * grid[2]) / 100
    nib.save(nib.Nifti1Image(np.asarray(data, dtype=np.float32), affine), study / "data" / name)
    return f"data/{name}"


def use_nifti(study, data=None, name="map.nii.gz"):
    path = write_nifti(study, data, name)
    write_sheet(study, [{"map": "vol", "path": path, "format": "nifti", "column": "",
                         "atlas": "dk", "sign": "1", "description": ""}])
    return study / path


def write_gifti(study, values, name):
    arr = nib.gifti.GiftiDataArray(np.asarray(values, dtype=np.float32),
                                   intent="NIFTI_INTENT_SHAPE", datatype="NIFTI_TYPE_FLOAT32")
    nib.save(nib.GiftiImage(darrays=[arr]), study / "data" / name)
    return f"data/{name}"


def use_gifti(study, left=10242, right=10242, spoil=None):
    rng = np.random.default_rng(3)
    lv, rv = rng.normal(size=left), rng.normal(size=right)
    if spoil:
        spoil(lv)
    lp, rp = write_gifti(study, lv, "lh.gii"), write_gifti(study, rv, "rh.gii")
    write_sheet(study, [{"map": "surf", "path": f"{lp},{rp}", "format": "gifti", "column": "",
                         "atlas": "dk", "sign": "1", "description": ""}])


def _truncate(path):
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _all_nan():
    return np.full((91, 109, 91), np.nan, dtype=np.float32)


def _with_inf():
    grid = np.indices((91, 109, 91)).astype(np.float32)
    data = grid[0] / 100
    data[40:50, 50:60, 40:50] = np.inf
    return data


def _constant():
    return np.full((91, 109, 91), 0.7, dtype=np.float32)


def _four_d():
    grid = np.indices((91, 109, 91)).astype(np.float32)
    return np.stack([grid[0], grid[1]], axis=-1)


# --- the cases ----------------------------------------------------------------------

@dataclass
class Case:
    name: str
    spoil: Callable[[Path], object]
    moment: str  # "before", or the rule whose job fails
    message: str  # regex (case-insensitive, dot matches newline)


def _config_text(text):
    return lambda s: (s / "config" / "config.yaml").write_text(text)


def _yaml_indent(s):
    lines = (s / "config" / "config.yaml").read_text().splitlines()
    i = next(k for k, line in enumerate(lines) if line.strip().startswith("n_perm"))
    lines[i] = "   " + lines[i]
    (s / "config" / "config.yaml").write_text("\n".join(lines) + "\n")


def _yaml_tab(s):
    text = (s / "config" / "config.yaml").read_text().replace("  method: alexander_bloch",
                                                              "\tmethod: alexander_bloch")
    (s / "config" / "config.yaml").write_text(text)


def _sheet_text(text):
    return lambda s: (s / "config" / "maps.tsv").write_text(text)


def _rename_map(s):
    (s / "data" / "map.csv").rename(s / "data" / "map_renamed.csv")


CASES = [
    # the config file
    Case("yaml_bad_indent", _yaml_indent, "before", r"config/config.yaml, line \d+, column \d+: "
         r"YAML syntax error.*indentation"),
    Case("yaml_tab_indent", _yaml_tab, "before", r"line \d+.*tabs are not allowed"),
    Case("config_empty", _config_text(""), "before", r"config.yaml: the file is empty"),
    Case("config_a_list", _config_text("- maps\n- nulls\n"), "before",
         r"top level must be a mapping"),
    Case("config_missing", lambda s: (s / "config" / "config.yaml").unlink(), "before",
         r"no config/config.yaml in .*--directory studies/<name>"),
    Case("key_typo", lambda s: edit_config(s, **{"nulls.nperm": 10}), "before",
         r"nulls: unknown key\(s\) 'nperm' \(did you mean 'n_perm'\?\)"),
    Case("top_key_typo", lambda s: edit_config(s, genesett={"x": "y"}), "before",
         r"unknown key\(s\) 'genesett' \(did you mean 'genesets'\?\)"),
    Case("null_method_typo", lambda s: edit_config(s, **{"nulls.method": "vassa"}), "before",
         r"nulls.method: 'vassa' is not allowed; choose one of .*did you mean 'vasa'"),
    Case("n_perm_text", lambda s: edit_config(s, **{"nulls.n_perm": "many"}), "before",
         r"nulls.n_perm: 'many' is a str, expected integer"),
    Case("n_perm_zero", lambda s: edit_config(s, **{"nulls.n_perm": 0}), "before",
         r"nulls.n_perm: .*0"),
    Case("scope_typo", lambda s: edit_config(s, scope="left"), "before",
         r"scope: 'left' is not allowed; choose one of"),
    Case("atlas_builtin_and_files",
         lambda s: edit_config(s, atlases={"dk": {"builtin": "desikan_killiany",
                                                  "table": "x.tsv"}}),
         "before", r"atlases.dk: give either `builtin:`.*not a mix"),
    Case("atlas_unknown_builtin", lambda s: edit_config(s, atlases={"dk": {"builtin": "dk40"}}),
         "before", r"atlases.dk.builtin: 'dk40' is not allowed"),
    Case("geneset_unknown_builtin",
         lambda s: edit_config(s, genesets={"cells": {"builtin": "seidlitz"}}), "before",
         r"genesets.cells.builtin: 'seidlitz' is not allowed"),
    Case("resources_unknown_rule",
         lambda s: edit_config(s, resources={"expresion": {"mem_mb": 10}}), "before",
         r"resources: 'expresion' is not allowed|resources.*expresion"),
    Case("precomputed_no_table_for_atlas",
         lambda s: edit_config(s, **{"expression.precomputed": {"other": "data/expression.csv"}}),
         "before", r"expression.precomputed names no table for atlas\(es\) \['dk'\]"),
    Case("rnaseq_without_switch",
         lambda s: edit_config(s, expression={"source": "ahba", "probe_selection": "rnaseq"}),
         "before", r"probe_selection is 'rnaseq' but ahba.rnaseq is false"),
    Case("two_problems_at_once",
         lambda s: edit_config(s, scope="x", **{"nulls.method": "y"}), "before",
         r"2 problem\(s\) to fix.*nulls.method.*scope"),
    # the maps sheet
    Case("sheet_missing", lambda s: (s / "config" / "maps.tsv").unlink(), "before",
         r"maps sheet config/maps.tsv \(config key `maps`\) does not exist"),
    Case("sheet_empty_file", _sheet_text(""), "before", r"maps sheet .*: the file is empty"),
    Case("sheet_commas", _sheet_text("map,path,format\nmdd,data/map.csv,table\n"), "before",
         r"must be tab-separated"),
    Case("sheet_no_format_column", _sheet_text("map\tpath\nmdd\tdata/map.csv\n"), "before",
         r"missing column\(s\) \['format'\]"),
    Case("sheet_unknown_column",
         lambda s: write_sheet(s, [dict(read_sheet(s).loc[0], **{"null-method": "vasa"})]),
         "before", r"unknown column 'null-method' \(did you mean 'null_method'\?\)"),
    Case("sheet_ragged_row", _sheet_text("map\tpath\tformat\nmdd\tdata/map.csv\ttable\textra\t1\n"),
         "before", r"line\(s\) \[2\] have more tab-separated cells than the header"),
    Case("map_name_dotdot", lambda s: edit_row(s, map=".."), "before",
         r"row 1 \(map '..'\): .*may not start with '.'"),
    Case("map_name_slash", lambda s: edit_row(s, map="a/b"), "before",
         r"map 'a/b'.*only letters, digits and _.-"),
    Case("map_name_duplicate",
         lambda s: write_sheet(s, [dict(read_sheet(s).loc[0])] * 2), "before",
         r"map name\(s\) \['mdd'\] appear more than once"),
    Case("sheet_atlas_not_configured", lambda s: edit_row(s, atlas="dk2"), "before",
         r"map 'mdd'\): atlas 'dk2' is not configured.*did you mean 'dk'"),
    Case("sheet_bad_format", lambda s: edit_row(s, format="csv"), "before",
         r"format 'csv' is not one of nifti, gifti, table"),
    Case("sheet_bad_sign", lambda s: edit_row(s, sign="minus"), "before",
         r"sign 'minus' must be 1 or -1"),
    Case("sheet_gifti_one_file", lambda s: edit_row(s, format="gifti", column=""), "before",
         r"a gifti map needs two files"),
    Case("sheet_column_on_nifti", lambda s: edit_row(s, format="nifti"), "before",
         r"`column` applies to region tables only"),
    Case("sheet_null_method_typo", lambda s: edit_row(s, null_method="spin"), "before",
         r"null_method 'spin' is not one of"),
    Case("sheet_vertex_spin_for_table", lambda s: edit_row(s, null_method="vertex_spin"),
         "before", r"map 'mdd'.*vertex_spin"),
    # files named in the config or the sheet
    Case("map_file_missing", lambda s: edit_row(s, path="data/nope.csv"), "before",
         r"map 'mdd' \(column path\): data/nope.csv \(relative to .*\) does not exist"),
    Case("map_path_is_folder", lambda s: edit_row(s, path="data"), "before",
         r"map 'mdd' \(column path\): data is a folder"),
    Case("geneset_file_missing", lambda s: edit_config(s, genesets={"mine": "data/sets.gmx"}),
         "before", r"genesets.mine: data/sets.gmx .* does not exist"),
    Case("precomputed_table_missing",
         lambda s: edit_config(s, **{"expression.precomputed": {"dk": "data/expr.csv"}}),
         "before", r"expression.precomputed.dk: data/expr.csv .* does not exist"),
    Case("user_atlas_table_missing",
         lambda s: edit_config(s, atlases={"dk": {"volume": "data/atlas.nii.gz",
                                                  "table": "data/atlas.tsv"}}),
         "before", r"atlases.dk.volume: data/atlas.nii.gz .*does not exist.*"
                   r"atlases.dk.table: data/atlas.tsv .*does not exist"),
    Case("ahba_mirror_folder_missing",
         lambda s: edit_config(s, ahba={"source": "/nonexistent/ahba"},
                               expression={"source": "ahba"}), "before",
         r"ahba.source: /nonexistent/ahba does not exist"),
    # map file contents (itx.mapfiles)
    Case("table_decimal_commas",
         lambda s: (s / "data" / "map.csv").write_text(
             map_table(s).assign(d_icv=lambda d: d["d_icv"].map(lambda v: f"{v:.3f}".replace(
                 ".", ","))).to_csv(sep=";", index=False)), "before", r"decimal comma"),
    Case("table_text_value", lambda s: set_map_cells(s, "n/a?", rows=(3,)), "before",
         r"map 'mdd'.*data/map.csv.*not numbers: 'n/a\?' in row"),
    Case("table_inf_value", lambda s: set_map_cells(s, "inf", rows=(2,)), "before",
         r"map 'mdd'.*inf"),
    Case("table_empty_file", lambda s: (s / "data" / "map.csv").write_text(""), "before",
         r"map 'mdd'.*data/map.csv.*empty"),
    Case("table_header_only", lambda s: (s / "data" / "map.csv").write_text("region,d_icv\n"),
         "before", r"map 'mdd'.*data/map.csv.*(no rows|no data|empty)"),
    Case("table_column_missing", lambda s: edit_row(s, column="cohen_d"), "before",
         r"map 'mdd'.*cohen_d"),
    Case("table_constant", lambda s: (s / "data" / "map.csv").write_text(
        map_table(s).assign(d_icv=0.25).to_csv(index=False)), "before",
         r"map 'mdd'.*(constant|same value)"),
    Case("table_duplicate_region", lambda s: (s / "data" / "map.csv").write_text(
        pd.concat([map_table(s), map_table(s).iloc[:1]]).to_csv(index=False)), "before",
         r"map 'mdd'.*listed twice or more: 'L_bankssts'"),
    Case("table_binary_file",
         lambda s: (s / "data" / "map.csv").write_bytes(gzip.compress(b"region,d_icv\n" * 50)),
         "before", r"map 'mdd'.*data/map.csv"),
    Case("nifti_truncated", lambda s: _truncate(use_nifti(s)), "before",
         r"map 'vol'.*map.nii.gz.*(truncat|corrupt|cannot be read)"),
    Case("nifti_not_an_image",
         lambda s: use_nifti(s).write_bytes(gzip.compress(b"not an image at all")), "before",
         r"map 'vol'.*map.nii.gz"),
    Case("nifti_inf_voxels", lambda s: use_nifti(s, _with_inf()), "before",
         r"map 'vol'.*inf"),
    Case("nifti_all_nan", lambda s: use_nifti(s, _all_nan()), "before",
         r"map 'vol'.*(no finite|all .*(zero|NaN)|empty)"),
    Case("nifti_constant", lambda s: use_nifti(s, _constant()), "before",
         r"map 'vol'.*(constant|same value)"),
    Case("nifti_4d", lambda s: use_nifti(s, _four_d()), "before",
         r"map 'vol'.*(4D|volumes)"),
    Case("gifti_wrong_vertex_count", lambda s: use_gifti(s, left=5000, right=5000), "before",
         r"map 'surf'.*5000"),
    Case("gifti_hemispheres_differ", lambda s: use_gifti(s, left=10242, right=40962), "before",
         r"map 'surf'.*(densit|vertex|vertices)"),
    Case("gifti_broken_xml",
         lambda s: (use_gifti(s), (s / "data" / "lh.gii").write_text("<GIFTI><DataArray>")),
         "before", r"map 'surf'.*lh.gii"),
    Case("gifti_inf", lambda s: use_gifti(s, spoil=lambda v: v.__setitem__(slice(0, 10), np.inf)),
         "before", r"map 'surf'.*inf"),
    # in a job: what only the atlas or the expression table can tell
    Case("table_regions_not_in_atlas",
         lambda s: (s / "data" / "map.csv").write_text(
             map_table(s).assign(region=lambda d: "X_" + d["region"]).to_csv(index=False)),
         "parcellate", r"X_bankssts|not in the atlas|no region"),
    Case("table_too_few_regions",
         lambda s: (s / "data" / "map.csv").write_text(map_table(s).iloc[:2].to_csv(index=False)),
         "before", r"map 'mdd'.*values in only 2 row"),
    Case("table_regions_outside_scope",
         lambda s: (s / "data" / "map.csv").write_text(map_table(s).iloc[:5].assign(
             region=lambda d: d["region"].str.replace("L_", "R_")).to_csv(index=False)),
         "map_nulls", r"map 'mdd' has a value in 0 of the 34 regions of the analysis scope "
                      r"'left_cortex', too few to test"),
    Case("precomputed_region_not_in_atlas",
         lambda s: (s / "data" / "expression.csv").write_text(
             (s / "data" / "expression.csv").read_text().replace("L_bankssts", "L_bankstss")),
         "expression_precomputed", r"L_bankstss"),
]


@pytest.fixture(scope="module")
def base_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_inputs")
    return make_study(root / "study", root / "shared_resources")


def fresh_copy(base, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(base, study, symlinks=True)
    return study


def outputs_written(study):
    results = study / "results"
    return sorted(str(p.relative_to(study)) for p in results.rglob("*") if p.is_file()) \
        if results.exists() else []


def job_outputs(stdout_err, rule):
    """Output files of the failed job of `rule`, from Snakemake's job listing."""
    block = re.findall(rf"rule {rule}:\n(.*?)(?:\n\n|\Z)", stdout_err, flags=re.S)
    files = []
    for b in block:
        m = re.search(r"output: (.*)", b)
        if m:
            files += [f.strip() for f in m.group(1).split(",")]
    return files


#: Snakemake runs at once for the cases that stop before any job: each is mostly
#: interpreter start-up and DAG building, so a few in parallel keep both cores busy
PARALLEL_RUNS = 3


def run_cases(cases, source, root):
    """Copy `source`, spoil it and run Snakemake, for every case; name -> (study, result).

    Cases that must stop before any job run side by side (they never start a
    job, so they cannot disturb each other); the others one after another.
    """
    def run(case):
        study = root / case.name / "study"
        shutil.copytree(source, study, symlinks=True)
        case.spoil(study)
        return case.name, (study, snakemake(study))

    before = [c for c in cases if c.moment == "before"]
    with ThreadPoolExecutor(max_workers=PARALLEL_RUNS) as pool:
        runs = dict(pool.map(run, before))
    runs.update(run(c) for c in cases if c.moment != "before")
    return runs


def resource_files(resources):
    return sorted(str(p) for p in resources.rglob("*")) if resources.exists() else []


@pytest.fixture(scope="module")
def case_runs(base_study, tmp_path_factory):
    resources = Path(read_config(base_study)["resources_dir"])
    before = resource_files(resources)
    runs = run_cases(CASES, base_study, tmp_path_factory.mktemp("cases"))
    return runs, before, resource_files(resources)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case, case_runs):
    runs, resources_before, resources_after = case_runs
    study, res = runs[case.name]
    text = res.stdout + res.stderr
    assert res.returncode != 0, f"{case.name}: the run did not fail\n{text[-3000:]}"
    if case.moment == "before":
        assert "Job stats" not in text, text[-3000:]
        assert not re.search(r"^\s*rule \w+:", text, flags=re.M), \
            f"{case.name}: a job started\n{text[-3000:]}"
        assert outputs_written(study) == [], outputs_written(study)
        assert not (study / "logs").exists()
        assert "Traceback" not in text, text[-3000:]
    else:
        failed = re.search(rf"Error in rule {case.moment}:", text)
        assert failed, f"{case.name}: expected rule {case.moment} to fail\n{text[-4000:]}"
        logs = "\n".join(p.read_text(errors="replace") for p in (study / "logs").glob("*.log"))
        text = text + "\n" + logs
        for f in job_outputs(res.stdout + res.stderr, case.moment):
            assert not (study / f).exists(), f"{case.name}: partial output {f} left behind"
    # no case wrote into the shared downloads and caches
    assert resources_after == resources_before
    assert re.search(case.message, text, flags=re.I | re.S), \
        f"{case.name}: message not found: {case.message!r}\n{text[-4000:]}"


def test_there_are_at_least_50_cases():
    assert len(CASES) + len(STALE_CASES) >= 50
    assert len({c.name for c in CASES + STALE_CASES}) == len(CASES) + len(STALE_CASES)


# --- after a finished run: stale results must not pass as valid ----------------------

STALE_CASES = [
    Case("renamed_map_file", _rename_map, "before",
         r"map 'mdd' \(column path\): data/map.csv .* does not exist"),
    Case("mistyped_geneset_path", lambda s: edit_config(s, genesets={"mine": "data/set.gmt"}),
         "before", r"genesets.mine: data/set.gmt .* does not exist"),
    Case("other_null_method", lambda s: edit_config(s, **{"nulls.method": "vasa"}), "before",
         r"results/dk/mdd/ was made with other choices .*null_method: 'alexander_bloch' -> "
         r"'vasa'.*make study NAME=<new> FROM=.*replace_results=true"),
    Case("other_null_method_in_sheet", lambda s: edit_row(s, null_method="hungarian"), "before",
         r"null_method: 'alexander_bloch' -> 'hungarian'"),
    Case("other_scope", lambda s: edit_config(s, scope="cortex"), "before",
         r"scope: 'left_cortex' -> 'cortex'"),
    Case("other_association_method",
         lambda s: edit_config(s, **{"association.method": "pearson"}), "before",
         r"association_method: 'spearman' -> 'pearson'"),
    Case("other_geneset_file", lambda s: (
        shutil.copy(s / "data" / "sets.gmt", s / "data" / "sets2.gmt"),
        edit_config(s, genesets={"mine": "data/sets2.gmt"})),
        "before", r"genesets.mine: 'data/sets.gmt' -> 'data/sets2.gmt'"),
    Case("other_expression_table", lambda s: (
        shutil.copy(s / "data" / "expression.csv", s / "data" / "expression2.csv"),
        edit_config(s, **{"expression.precomputed": {"dk": "data/expression2.csv"}})),
        "before", r"expression.table: 'data/expression.csv' -> 'data/expression2.csv'"),
]


@pytest.fixture(scope="module")
def finished_study(base_study, tmp_path_factory):
    study = tmp_path_factory.mktemp("finished") / "study"
    shutil.copytree(base_study, study)
    res = snakemake(study)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
    return study


@pytest.fixture(scope="module")
def stale_runs(finished_study, tmp_path_factory):
    root = tmp_path_factory.mktemp("stale")
    before = {f: (finished_study / f).read_bytes() for f in outputs_written(finished_study)}
    return run_cases(STALE_CASES, finished_study, root), before


@pytest.mark.slow
@pytest.mark.parametrize("case", STALE_CASES, ids=[c.name for c in STALE_CASES])
def test_stale_results_are_refused(case, stale_runs):
    runs, before = stale_runs
    study, res = runs[case.name]
    text = res.stdout + res.stderr
    assert res.returncode != 0, f"{case.name}: the run did not fail\n{text[-3000:]}"
    assert not re.search(r"^\s*rule \w+:", text, flags=re.M), text[-3000:]
    assert re.search(case.message, text, flags=re.I | re.S), \
        f"{case.name}: message not found: {case.message!r}\n{text[-4000:]}"
    # the earlier results are untouched
    assert {f: (study / f).read_bytes() for f in outputs_written(study)} == before


@pytest.mark.slow
def test_replace_results_reruns_with_the_new_choice(finished_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(finished_study, study)
    edit_config(study, replace_results=True, **{"nulls.method": "vasa"})
    res = snakemake(study, "-n")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "map_nulls" in res.stdout


@pytest.mark.slow
def test_adding_a_collection_overwrites_nothing_and_is_allowed(finished_study, tmp_path):
    study = tmp_path / "study"
    shutil.copytree(finished_study, study)
    shutil.copy(study / "data" / "sets.gmt", study / "data" / "more.gmt")
    edit_config(study, genesets={"mine": "data/sets.gmt", "more": "data/more.gmt"})
    res = snakemake(study, "-n")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "enrichment_more.tsv" in res.stdout


@pytest.mark.slow
def test_finished_study_records_its_provenance(finished_study):
    import json

    rec = json.loads((finished_study / "results" / "dk" / "mdd" / "provenance.json").read_text())
    assert rec["choices"]["null_method"] == "alexander_bloch"
    assert rec["settings"]["nulls"] == {"n_perm": 40, "seed": 1, "sensitivity": [],
                                        "tail": "none"}
    import hashlib
    assert rec["inputs"]["map"][0]["sha256"] == hashlib.sha256(
        (finished_study / "data" / "map.csv").read_bytes()).hexdigest()
    assert rec["versions"]["numpy"] == np.__version__
    # a rerun with nothing changed does nothing
    res = snakemake(finished_study, "-n")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr


@pytest.mark.slow
def test_map_with_missing_regions_runs_end_to_end(base_study, tmp_path):
    """Supported input: 10 of the 34 left-cortex regions have no value."""
    study = fresh_copy(base_study, tmp_path)
    table = map_table(study)
    table.loc[table.index[::3][:10], "d_icv"] = np.nan
    table.to_csv(study / "data" / "map.csv", index=False)
    for method in ("alexander_bloch", "burt2020"):
        edit_config(study, replace_results=True, **{"nulls.method": method})
        res = snakemake(study)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-5000:]
        out = study / "results" / "dk" / "mdd"
        genes = pd.read_csv(out / "genes.tsv", sep="\t")
        assert genes["r"].notna().all() and genes["p_spin"].between(0, 1).all()
        cov = pd.read_csv(out / "coverage.tsv", sep="\t")
        assert int(cov["used"].sum()) == 24
        pls = pd.read_csv(out / "pls.tsv", sep="\t")
        assert (pls["n_null"] > 0).all() and pls["p_spin"].between(0, 1).all()
        vario = pd.read_csv(out / "variogram.tsv", sep="\t")
        assert len(vario) > 0
