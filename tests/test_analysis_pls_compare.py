"""PLS and map comparison as the workflow runs them (itx.analysis)."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import analysis, pls


def _aligned(n=30, g=40, n_perm=200, seed=0, nan_cols=()):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, g))
    y = 2 * X[:, :3].sum(axis=1) + 0.5 * rng.normal(size=n)
    nulls = np.stack([rng.permutation(y) for _ in range(n_perm)], axis=1)
    for j in nan_cols:
        nulls[0, j] = np.nan
    return analysis.Aligned(expression=X, y=y, nulls=nulls, genes=[f"G{i}" for i in range(g)],
                            regions=[f"r{i}" for i in range(n)],
                            excluded=pd.DataFrame(columns=["region", "reason"]))


def test_pls_analysis_p_matches_brute_force_and_refits_gapped_nulls():
    a = _aligned(nan_cols=(3, 7))
    res = analysis.pls_analysis(a, n_components=2, n_boot=50, seed=1)
    fit = pls.pls_fit(a.expression, a.y, 2)
    np.testing.assert_allclose(res.components["explained"], fit.explained)
    exceed = np.zeros(2)
    for j in range(a.nulls.shape[1]):  # refit PLS on each null map over the regions it has
        ok = np.isfinite(a.nulls[:, j])
        exceed += (pls.pls_fit(a.expression[ok], a.nulls[ok, j], 2).explained
                   >= fit.explained - 1e-12)
    n = a.nulls.shape[1]
    np.testing.assert_allclose(res.components["p_spin"], (1 + exceed) / (1 + n))
    assert res.components["n_null"].tolist() == [n] * 2
    assert res.components["p_spin"].iloc[0] < 0.05  # a planted signal
    assert res.genes["rank"].tolist() == list(range(1, 41))
    assert res.genes.set_index("gene").loc[["G0", "G1", "G2"], "rank"].max() <= 5
    w, sd, z = pls.bootstrap_weights(a.expression, a.y, n_boot=50, seed=1)
    np.testing.assert_allclose(res.genes.set_index("gene").loc[a.genes, "z"], z)


def test_compare_all_pairs_against_scipy_and_brute_force():
    rng = np.random.default_rng(2)
    regions = [f"r{i}" for i in range(12)]
    maps = {m: pd.DataFrame({"region": regions, "value": rng.normal(size=12)}) for m in "abc"}
    maps["c"].loc[4, "value"] = np.nan
    nulls = {m: (np.stack([rng.permutation(maps[m]["value"].to_numpy()) for _ in range(99)], 1),
                 regions) for m in "ab"}
    out = analysis.compare_all(maps, nulls)
    assert sorted(zip(out["map"], out["other"])) == [("a", "b"), ("a", "c"), ("b", "a"), ("b", "c")]
    row = out[(out["map"] == "a") & (out["other"] == "c")].iloc[0]
    used = np.isfinite(maps["c"]["value"].to_numpy())
    x, o = maps["a"]["value"].to_numpy()[used], maps["c"]["value"].to_numpy()[used]
    assert row["n_regions"] == 11
    assert row["r"] == pytest.approx(stats.spearmanr(x, o)[0], abs=1e-12)
    null_r = np.array([stats.spearmanr(nulls["a"][0][used, j], o)[0] for j in range(99)])
    p = (1 + np.sum(np.abs(null_r) >= abs(row["r"]) - 1e-12)) / 100
    assert row["p_spin"] == pytest.approx(p)
