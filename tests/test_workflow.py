"""End to end: the demo DAG runs offline, recovers the planted truth, caches per map."""
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import job_counts, run_snakemake

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def snakemake(workdir, *args, timeout=1200):
    return run_snakemake(workdir, *args, timeout=timeout)


@pytest.fixture(scope="module")
def demo_run(demo_checkout):
    return demo_checkout


def test_outputs_follow_the_contract(demo_run):
    r = demo_run / "results" / "dk"
    expr = pd.read_csv(r / "expression.tsv", sep="\t")
    assert expr.columns[0] == "region" and len(expr) == 83
    for m in ("demo_volume", "demo_table"):
        genes = pd.read_csv(r / m / "genes.tsv", sep="\t")
        assert list(genes.columns[:4]) == ["gene", "r", "p_spin", "q_spin"]
        assert len(genes) == expr.shape[1] - 1
        enr = pd.read_csv(r / m / "enrichment_demo.tsv", sep="\t")
        assert list(enr.columns[:7]) == ["set", "n_genes", "score", "p_spatial", "q_spatial",
                                     "p_random", "q_random"]
        for fig in ("map", "top_genes", "enrichment_demo", "nulls_demo", "multivariate_demo"):
            assert (r / m / "figures" / f"{fig}.png").stat().st_size > 1000
        terms = pd.read_csv(r / m / "multivariate_demo.tsv", sep="\t")
        dom = pd.read_csv(r / m / "dominance_demo.tsv", sep="\t")
        assert terms["term"].iloc[0] == "intercept" and len(dom) == len(terms) - 1
        assert np.isclose(dom["dominance"].sum(), terms["model_r2"].iloc[0])
        assert "top gene sets" in (r / m / "enrichment_top.html").read_text()
    for f in ("probes.tsv", "samples.tsv", "sample_counts.tsv", "stability.tsv", "methods.txt"):
        assert (r / f).stat().st_size > 0
    assert len(list((r / "donors").glob("expression_*.tsv"))) == 6


@pytest.mark.parametrize("m", ["demo_volume", "demo_table"])
def test_planted_truth_is_recovered(demo_run, m):
    truth = json.loads((demo_run / "resources" / "demo" / "truth.json").read_text())
    planted_set = truth["planted_set"]
    planted = set(truth["planted_genes"])
    r = demo_run / "results" / "dk" / m
    enr = pd.read_csv(r / "enrichment_demo.tsv", sep="\t")
    assert enr.iloc[0]["set"] == planted_set
    assert enr.iloc[0]["p_spatial"] < 0.05
    assert (enr.iloc[0]["score"] > 0) == (truth["sign"] > 0)
    others = enr[enr["set"] != planted_set]
    assert (others["q_spatial"] >= 0.05).all()
    genes = pd.read_csv(r / "genes.tsv", sep="\t")
    found = planted & set(genes["gene"])
    assert len(found) >= 0.9 * len(planted)
    # genes.tsv is sorted by p_spin, then |r|: the planted genes lead it
    top = set(genes["gene"].head(len(found)))
    assert len(top & found) >= 0.75 * len(found)
    ranks = genes.index[genes["gene"].isin(found)]
    assert pd.Series(ranks).median() < 0.01 * len(genes)
    assert (genes.loc[genes["gene"].isin(found), "r"] > 0).all() == (truth["sign"] > 0)
    # the joint model on the demo cell-type maps: the planted set's map dominates
    dom = pd.read_csv(r / "dominance_demo.tsv", sep="\t")
    assert dom.loc[dom["dominance"].idxmax(), "predictor"] == planted_set


def test_report_builds(demo_run):
    res = snakemake(demo_run, "--report", "report.html")
    assert res.returncode == 0, res.stderr[-3000:]
    html = (demo_run / "report.html").read_text(errors="replace")
    assert "top_genes.png" in html and "enrichment_demo.png" in html


def test_same_seeds_give_identical_bytes(demo_run):
    # rerun every seeded statistical stage and compare outputs byte for byte
    outs = sorted((demo_run / "results" / "dk").rglob("*.tsv*")) + \
        sorted((demo_run / "results" / "dk").rglob("*.npz"))
    before = {p: p.read_bytes() for p in outs}
    res = snakemake(demo_run, "--forcerun", "spins", "parcellate")
    assert res.returncode == 0, res.stderr[-3000:]
    changed = [str(p) for p, b in before.items() if p.read_bytes() != b]
    assert not changed, changed


def test_changing_one_map_reruns_only_that_map(demo_run):
    res = snakemake(demo_run, "-n")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr
    table = demo_run / "resources" / "demo" / "demo_map.tsv"
    df = pd.read_csv(table, sep="\t")
    df.loc[0, "value"] += 1.0
    df.to_csv(table, sep="\t", index=False)
    res = snakemake(demo_run, "-n")
    assert res.returncode == 0, res.stderr[-3000:]
    jobs = job_counts(res.stdout)
    assert jobs.pop("all") == 1
    # the map's own chain, and the comparison of every map of the atlas with every other
    assert jobs == {"parcellate": 1, "map_nulls": 1, "association": 1, "coverage": 1, "pls": 1,
                    "variogram": 1, "enrichment": 1, "celltype_compare": 1, "map_figures": 1,
                    "enrichment_figures": 1, "compare_maps": 1, "provenance": 1,
                    "null_sensitivity": 1, "donor_robustness": 1,
                    "donor_robustness_figure": 1, "multivariate": 1, "enrichment_top": 1}, jobs
    outputs = [line for line in res.stdout.splitlines() if line.strip().startswith("output:")]
    assert outputs and all("results/dk/demo_table/" in line or "results/dk/compare_maps.tsv" in line
                           for line in outputs), outputs


def test_a_further_null_is_kept_apart_and_is_that_null(demo_run):
    # null sensitivity: the map's vasa results in their own folder, next to the
    # primary (alexander_bloch) ones, made by the same rules; nothing else reruns
    # (demo_volume: test_changing_one_map_reruns_only_that_map edits demo_table's input)
    base = demo_run / "results" / "dk" / "demo_volume"
    sens = base / "sensitivity" / "vasa"
    try:
        res = snakemake(demo_run, str(sens.relative_to(demo_run) / "genes.tsv"),
                        str(sens.relative_to(demo_run) / "enrichment_demo.tsv"))
        assert res.returncode == 0, res.stderr[-3000:]
        assert set(job_counts(res)) <= {"spins", "map_nulls_sensitivity", "association_sensitivity",
                                        "enrichment_sensitivity"}, job_counts(res)
        # the null maps are the vasa spins of this map: y[idx], no value where idx is -1
        spins = np.load(demo_run / "results" / "dk" / "nulls" / "spins_vasa.npz")
        nulls = np.load(sens / "nulls.npz")
        assert str(nulls["method"]) == "vasa"
        assert list(nulls["regions"]) == list(spins["regions"])
        y = pd.read_csv(base / "map.tsv", sep="\t").set_index("region")["value"]
        y = y.reindex(spins["regions"]).to_numpy(float)
        idx = spins["idx"]
        expected = np.where(idx >= 0, y[np.clip(idx, 0, None)], np.nan)
        np.testing.assert_array_equal(nulls["values"], expected)
        # same map and genes, so the same r; other nulls, so other p values
        ours = pd.read_csv(sens / "genes.tsv", sep="\t").set_index("gene")
        primary = pd.read_csv(base / "genes.tsv", sep="\t").set_index("gene")
        pd.testing.assert_series_equal(ours["r"], primary.loc[ours.index, "r"])
        assert not np.array_equal(ours["p_spin"], primary.loc[ours.index, "p_spin"])
        truth = json.loads((demo_run / "resources" / "demo" / "truth.json").read_text())
        enr = pd.read_csv(sens / "enrichment_demo.tsv", sep="\t")
        assert enr.iloc[0]["set"] == truth["planted_set"] and enr.iloc[0]["p_spatial"] < 0.05
    finally:
        # the demo's results/ stay as the demo made them
        shutil.rmtree(base / "sensitivity", ignore_errors=True)


def test_null_sensitivity_page_states_the_permutation_floor(demo_run):
    base = demo_run / "results" / "dk" / "demo_table"
    table = pd.read_csv(base / "null_sensitivity.tsv", sep="\t")
    assert set(table["null"]) == {"alexander_bloch"}  # nulls.sensitivity is empty in the demo
    floor = table[(table["test"] == "genes") & (table["item"] == "p floor")]["statistic"]
    assert floor.iloc[0] == pytest.approx(1 / 1001)
    html = (base / "null_sensitivity.html").read_text()
    assert "smallest attainable q" in html.lower()
    assert (demo_run / "results" / "dk" / "figures" / "null_calibration.png").stat().st_size > 1000


def test_covariates_give_partial_correlations(demo_run):
    """A map's `covariates` cell: every gene's partial correlation given another map,
    equal to Spearman of the residualised ranks (independent computation)."""
    from scipy import stats

    sheet_path = demo_run / "config" / "maps.tsv"
    sheet = sheet_path.read_text()
    base = demo_run / "results" / "dk"
    regions = pd.read_csv(base / "demo_table" / "map.tsv", sep="\t")["region"]
    rng = np.random.default_rng(7)
    cov_file = demo_run / "resources" / "demo" / "demo_cov.tsv"
    pd.DataFrame({"region": regions, "value": rng.normal(size=len(regions))}).to_csv(
        cov_file, sep="\t", index=False)
    try:
        rows = sheet.rstrip("\n").split("\n")
        head = rows[0] + "\tcovariates"
        body = [r + ("\tdemo_cov" if r.startswith("demo_table\t") else "\t") for r in rows[1:]]
        body.append("demo_cov\tresources/demo/demo_cov.tsv\ttable\tvalue\tdk\t1\tcovariate\t")
        sheet_path.write_text("\n".join([head] + body) + "\n")
        target = "results/dk/demo_table/partial_genes.tsv"
        res = snakemake(demo_run, target)
        assert res.returncode == 0, res.stderr[-3000:]
        part = pd.read_csv(demo_run / target, sep="\t").set_index("gene")
        assert list(part.columns) == ["r_partial", "p_spin", "q_spin", "p_param", "n_regions"]
        assert (base / "demo_table" / "figures" / "partial_genes.png").stat().st_size > 1000
        expr = pd.read_csv(base / "expression.tsv", sep="\t").set_index("region")
        used = pd.read_csv(base / "demo_table" / "coverage.tsv", sep="\t")
        used = used.loc[used["used"], "region"].tolist()
        y = pd.read_csv(base / "demo_table" / "map.tsv", sep="\t").set_index("region")["value"]
        c = pd.read_csv(cov_file, sep="\t").set_index("region")["value"]
        design = np.column_stack([np.ones(len(used)), stats.rankdata(c[used])])

        def resid(v):
            v = stats.rankdata(v)
            return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

        for g in part.index[:5].tolist() + part.index[-3:].tolist():
            r, _ = stats.pearsonr(resid(expr.loc[used, g]), resid(y[used]))
            assert np.isclose(part.loc[g, "r_partial"], r, atol=1e-10), g
        assert part["p_spin"].between(0, 1).all() and (part["n_regions"] == len(used)).all()
    finally:
        sheet_path.write_text(sheet)
        cov_file.unlink(missing_ok=True)
        shutil.rmtree(base / "demo_cov", ignore_errors=True)
        for f in ("partial_genes.tsv", "figures/partial_genes.png"):
            (base / "demo_table" / f).unlink(missing_ok=True)
