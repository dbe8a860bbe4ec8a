"""GPD tail p values (itx.tailp) against scipy, analytic tails and brute-force loops."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import load_tool
from itx import analysis, celltypes, tailp
from itx.association import correlate_genes, fdr_bh, gene_table
from itx.enrichment import _tail_p, enrichment_table

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------
# the distribution and the fit
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("xi", [-0.4, -0.15, 0.0, 0.25])
def test_pwm_recovers_known_parameters(xi):
    rng = np.random.default_rng(1)
    x = stats.genpareto.rvs(xi, scale=1.7, size=(4, 100_000), random_state=rng)
    shape, scale = tailp.gpd_fit_pwm(x)
    np.testing.assert_allclose(shape, xi, atol=0.02)
    np.testing.assert_allclose(scale, 1.7, rtol=0.02)
    # the axis argument: samples down the columns give the same fit
    s2, c2 = tailp.gpd_fit_pwm(x.T, axis=0)
    np.testing.assert_allclose(s2, shape, rtol=1e-12)
    np.testing.assert_allclose(c2, scale, rtol=1e-12)


def test_pwm_matches_hosking_wallis_formula_by_loop():
    """Unbiased PWM estimates b0, b1 by an explicit loop, then H&W's k and sigma."""
    rng = np.random.default_rng(2)
    x = rng.exponential(size=37) ** 1.3
    xs = sorted(x)
    n = len(xs)
    b0 = sum(xs) / n
    b1 = sum(xs[j - 1] * (n - j) / (n - 1) for j in range(1, n + 1)) / n
    k = b0 / (b0 - 2 * b1) - 2
    sigma = 2 * b0 * b1 / (b0 - 2 * b1)
    shape, scale = tailp.gpd_fit_pwm(rng.permutation(x))
    assert shape == pytest.approx(-k, rel=1e-12)
    assert scale == pytest.approx(sigma, rel=1e-12)
    # degenerate samples: no fit
    assert np.isnan(tailp.gpd_fit_pwm(np.zeros(10))[0])
    assert np.isnan(tailp.gpd_fit_pwm(np.full(10, 3.0))[0])
    with pytest.raises(ValueError, match="at least 2"):
        tailp.gpd_fit_pwm([1.0])


def test_pwm_close_to_scipy_ml_fit():
    """Independent estimator: scipy's maximum likelihood on the same data."""
    rng = np.random.default_rng(3)
    x = stats.genpareto.rvs(-0.2, scale=0.5, size=5000, random_state=rng)
    c, _, s = stats.genpareto.fit(x, floc=0)
    shape, scale = tailp.gpd_fit_pwm(x)
    assert shape == pytest.approx(c, abs=0.05)
    assert scale == pytest.approx(s, rel=0.05)


def test_sf_and_cdf_match_scipy():
    x = np.linspace(-1, 12, 131)
    for xi in (-0.8, -0.3, -1e-12, 0.0, 1e-12, 0.2, 0.45):
        for s in (0.3, 2.0):
            np.testing.assert_allclose(tailp.gpd_sf(x, xi, s),
                                       stats.genpareto.sf(x, xi, scale=s), rtol=1e-9, atol=1e-300)
            np.testing.assert_allclose(tailp.gpd_cdf(x, xi, s),
                                       stats.genpareto.cdf(x, xi, scale=s), rtol=1e-9, atol=1e-15)


def test_anderson_darling_matches_scipy_goodness_of_fit():
    rng = np.random.default_rng(4)
    x = stats.genpareto.rvs(-0.2, scale=1.0, size=(3, 60), random_state=rng)
    shape, scale = np.array([-0.2, -0.1, 0.1]), np.array([1.0, 1.2, 0.8])
    a2 = tailp.anderson_darling_gpd(x, shape, scale)
    for i in range(3):
        res = stats.goodness_of_fit(stats.genpareto, x[i], statistic="ad", n_mc_samples=9,
                                    known_params={"c": shape[i], "loc": 0.0, "scale": scale[i]},
                                    rng=0)
        assert a2[i] == pytest.approx(res.statistic, rel=1e-9)


@pytest.mark.parametrize("n", [40, 250])
def test_ad_test_has_its_nominal_level(n):
    """GPD samples (a seed other than the table's) are rejected about 5% of the time."""
    rng = np.random.default_rng(5)
    rates = []
    for xi in (-0.3, 0.0, 0.2):
        x = stats.genpareto.rvs(xi, scale=1.0, size=(1000, n), random_state=rng)
        shape, scale = tailp.gpd_fit_pwm(x)
        a2 = tailp.anderson_darling_gpd(x, shape, scale)
        rates.append(np.mean(a2 > tailp.ad_critical_value(n, shape, 0.05)))
    assert all(0.025 < r < 0.085 for r in rates), rates
    # and a clearly non-GPD tail (a two-point mixture) is rejected
    x = np.concatenate([rng.exponential(size=(200, n // 2)),
                        5 + rng.exponential(0.1, size=(200, n - n // 2))], axis=1)
    shape, scale = tailp.gpd_fit_pwm(x)
    a2 = tailp.anderson_darling_gpd(x, shape, scale)
    assert np.mean(a2 > tailp.ad_critical_value(n, shape)) > 0.9


def test_ad_critical_values_are_reproducible():
    a = tailp.ad_critical_value(120, [-0.2, 0.1])
    tailp._ad_table.cache_clear()
    np.testing.assert_array_equal(tailp.ad_critical_value(120, [-0.2, 0.1]), a)
    with pytest.raises(ValueError, match="alpha"):
        tailp.ad_critical_value(120, 0.0, alpha=1.5)


# ---------------------------------------------------------------------------
# p values
# ---------------------------------------------------------------------------


def _perm_p(obs, null, alternative):
    return _tail_p(np.asarray(obs, float), np.asarray(null, float), alternative, 1e-9)


@pytest.mark.parametrize("dist", ["normal", "t5"])
def test_tail_p_of_known_null_distributions(dist):
    """Nulls from a distribution with an analytic tail: GPD p near the true p."""
    rng = np.random.default_rng(6)
    n_null, n_tests = 10_000, 400
    if dist == "normal":
        null, sf, obs = rng.standard_normal((n_null, n_tests)), stats.norm.sf, (3.4, 4.4)
    else:
        null, sf, obs = rng.standard_t(5, (n_null, n_tests)), stats.t(5).sf, (6.0, 10.0)
    t = np.linspace(*obs, n_tests)
    res = tailp.tail_pvalues(t, null, "greater")
    true = sf(t)
    fitted = res.used_gpd
    assert fitted.mean() > 0.8
    assert (res.p[fitted] < 1 / (n_null + 1)).any()   # below the permutation floor
    err = np.abs(np.log10(res.p[fitted] / true[fitted]))
    # median-unbiased, but estimates from 250 exceedances extrapolated up to 50x beyond
    # 1/N scatter; the normal tail (light, fitted shapes near -0.15) scatters most: a
    # fitted end point just beyond t gives far too small a p (see the module docstring)
    assert abs(np.median(np.log10(res.p[fitted] / true[fitted]))) < 0.1
    within = {"normal": {3: 0.55, 10: 0.78}, "t5": {2: 0.75, 5: 0.93}}[dist]
    for factor, share in within.items():
        assert np.mean(err < np.log10(factor)) > share, (factor, np.mean(err < np.log10(factor)))
    # two-sided: |t| against |null|, true p doubles
    res2 = tailp.tail_pvalues(t, np.abs(null) * rng.choice([-1, 1], null.shape), "two-sided")
    err2 = np.log10(res2.p[res2.used_gpd] / (2 * true[res2.used_gpd]))
    assert abs(np.median(err2)) < 0.2


def test_enough_exceedances_return_exactly_the_permutation_p():
    rng = np.random.default_rng(7)
    null = rng.normal(size=(2000, 50))
    obs = np.linspace(-4, 4, 50)
    for alt in ("two-sided", "greater", "less"):
        res = tailp.tail_pvalues(obs, null, alt)
        perm = _perm_p(obs, null, alt)
        keep = res.n_exceed >= 10
        assert keep.any() and (~keep).any()
        np.testing.assert_array_equal(res.p[keep], perm[keep])
        assert set(res.method[keep]) == {"permutation"}
        assert set(res.method[~keep]) <= {"gpd", "gpd_bound", "no_fit"}
        np.testing.assert_array_equal(res.p[res.method == "no_fit"],
                                      perm[res.method == "no_fit"])


def test_vectorised_equals_per_test_loop_and_alternatives_agree():
    rng = np.random.default_rng(8)
    null = rng.standard_t(4, size=(3000, 30))
    null[rng.random(null.shape) < 0.05] = np.nan   # missing null values
    obs = rng.uniform(-9, 9, 30)
    obs[3] = np.nan
    full = tailp.tail_pvalues(obs, null, "two-sided")
    for j in range(30):
        one = tailp.tail_pvalues(obs[j:j + 1], null[:, j:j + 1], "two-sided")
        np.testing.assert_array_equal(one.p, full.p[j:j + 1])  # bitwise, not just close
        assert one.method[0] == full.method[j]
    assert np.isnan(full.p[3]) and full.method[3] == "na"
    # 'less' is 'greater' on the negated statistic; two-sided is 'greater' on |t|
    less = tailp.tail_pvalues(obs, null, "less")
    greater = tailp.tail_pvalues(-obs, -null, "greater")
    np.testing.assert_array_equal(less.p, greater.p)
    two = tailp.tail_pvalues(np.abs(obs), np.abs(null), "greater")
    np.testing.assert_array_equal(two.p, full.p)
    # deterministic: the same input gives the same output, even with a cold cache
    tailp._ad_table.cache_clear()
    np.testing.assert_array_equal(tailp.tail_pvalues(obs, null, "two-sided").p, full.p)


def test_fit_close_to_scipy_ml_on_the_same_exceedances():
    """Independent check of threshold, exceedances and fit: scipy's ML fit."""
    rng = np.random.default_rng(9)
    null = rng.standard_normal((10_000, 8))
    t = np.linspace(3.6, 4.0, 8)
    res = tailp.tail_pvalues(t, null, "greater")
    fitted = np.flatnonzero(res.method == "gpd")
    assert fitted.size >= 6
    for j in fitted:
        s = np.sort(null[:, j])[::-1]
        n_exc = res.n_tail[j]
        u = s[n_exc]
        assert res.threshold[j] == u
        c, _, sc = stats.genpareto.fit(s[:n_exc] - u, floc=0)
        assert res.shape[j] == pytest.approx(c, abs=0.15)
        assert res.scale[j] == pytest.approx(sc, rel=0.15)
        p_pwm = n_exc / 10_000 * stats.genpareto.sf(t[j] - u, res.shape[j], scale=res.scale[j])
        assert res.p[j] == pytest.approx(p_pwm, rel=1e-9)


def test_min_shape_floor_extrapolates_with_the_mean_excess():
    rng = np.random.default_rng(16)
    null = stats.genpareto.rvs(-0.3, size=(10_000, 3), random_state=rng)
    t = np.array([3.0, 3.05, 3.1])                      # inside the tail, below its end 3.33
    free = tailp.tail_pvalues(t, null, "greater")
    expo = tailp.tail_pvalues(t, null, "greater", min_shape=0.0)
    assert (free.shape < 0).all() and (expo.shape == 0).all()
    for j in range(3):
        s = np.sort(null[:, j])[::-1]
        n_exc = expo.n_tail[j]
        mean_excess = np.mean(s[:n_exc] - s[n_exc])
        assert expo.scale[j] == pytest.approx(mean_excess, rel=1e-12)
        assert expo.p[j] == pytest.approx(n_exc / 10_000 * np.exp(-(t[j] - s[n_exc])
                                                                  / mean_excess), rel=1e-12)
    assert (expo.p > free.p).all()                       # a floor at 0 is conservative here


def test_bounded_tail_and_failed_fits():
    rng = np.random.default_rng(10)
    # a GPD with xi = -0.3 ends at 1 / 0.3; an observed value beyond the end point
    null = stats.genpareto.rvs(-0.3, size=(10_000, 1), random_state=rng)
    res = tailp.tail_pvalues([5.0], null, "greater")
    assert res.method[0] == "gpd_bound"
    assert 0 < res.p[0] <= 1 / 10_001
    # a tail made of ties (integers): no fit is accepted, the permutation p stays
    null = rng.integers(0, 5, size=(5000, 2)).astype(float)
    res = tailp.tail_pvalues([10.0, 10.0], null, "greater")
    assert list(res.method) == ["no_fit", "no_fit"]
    np.testing.assert_array_equal(res.p, 1 / 5001)
    # too few nulls for min_tail exceedances: permutation p
    res = tailp.tail_pvalues([10.0], rng.normal(size=(50, 1)), "greater")
    assert res.method[0] == "no_fit" and res.p[0] == 1 / 51
    # no null value at all
    res = tailp.tail_pvalues([1.0], np.full((20, 1), np.nan))
    assert np.isnan(res.p[0]) and res.method[0] == "na"


def test_bad_arguments():
    with pytest.raises(ValueError, match="alternative"):
        tailp.tail_pvalues([1.0], np.ones((5, 1)), "both")
    with pytest.raises(ValueError, match="n_null, n_tests=2"):
        tailp.tail_pvalues([1.0, 2.0], np.ones((5, 1)))
    with pytest.raises(ValueError, match="min_tail"):
        tailp.tail_pvalues([1.0], np.ones((5, 1)), min_tail=1)
    with pytest.raises(ValueError, match="nulls.tail"):
        tailp.check_tail("pareto")
    with pytest.raises(ValueError, match="n_tail"):
        tailp.gpd_pvalues([1.0], np.ones((1, 3)), [1000], [0], [0.001])


def test_top_tail_streaming_equals_full_sort():
    rng = np.random.default_rng(11)
    v = rng.normal(size=(40, 700))
    keep = tailp.TopTail(40, 25)
    rows = rng.random((40, 7)) < 0.7
    rows[:, 0] = True
    for b in range(7):
        keep.add(v[:, b * 100:(b + 1) * 100], rows[:, b])
    masked = np.where(np.repeat(rows, 100, axis=1), v, -np.inf)
    np.testing.assert_array_equal(keep.sorted(), -np.sort(-masked, axis=1)[:, :25])
    # fewer values than k: padded with -inf
    np.testing.assert_array_equal(tailp.top_values(np.array([[1.0], [np.nan], [3.0]]), 4),
                                  [[3.0, 1.0, -np.inf, -np.inf]])


# ---------------------------------------------------------------------------
# the tables
# ---------------------------------------------------------------------------


def _gene_data(seed=12, n=20, n_genes=30, n_perm=400):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    x = rng.normal(size=(n, n_genes))
    x[:, :6] += np.linspace(1, 4, 6) * y[:, None]    # a range of strong genes
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    nulls[0, :40] = np.nan                           # spins with a missing region
    return x, y, nulls


def test_correlate_genes_keeps_the_null_tails():
    x, y, nulls = _gene_data()
    plain = correlate_genes(x, y, nulls)
    res = correlate_genes(x, y, nulls, keep_tail=101, block_size=64)
    np.testing.assert_array_equal(res.p_spin, plain.p_spin)
    assert plain.null_tail is None and plain.n_exceed is None
    for g in range(x.shape[1]):
        r_null = []
        for j in range(nulls.shape[1]):
            ok = np.isfinite(nulls[:, j])
            r_null.append(abs(stats.spearmanr(x[ok, g], nulls[ok, j])[0]))
        r_null = np.array(r_null)
        m = int((r_null >= abs(res.r[g]) - 1e-9).sum())
        assert res.n_exceed[g] == m
        if m < 10:  # only genes that can need a tail keep it
            np.testing.assert_allclose(res.null_tail[g], np.sort(r_null)[::-1][:101],
                                       atol=1e-12)
        else:
            assert np.isnan(res.null_tail[g]).all()
    with pytest.raises(ValueError, match="keep_tail"):
        correlate_genes(x, y, nulls, keep_tail=-1)


def test_gene_table_gains_gpd_columns_only_when_asked():
    x, y, nulls = _gene_data()
    genes = [f"g{i}" for i in range(x.shape[1])]
    base = gene_table(genes, correlate_genes(x, y, nulls))
    res = correlate_genes(x, y, nulls, keep_tail=101)
    pd.testing.assert_frame_equal(gene_table(genes, res, tail="none"), base)
    t = gene_table(genes, res, tail="gpd")
    assert list(t.columns) == ["gene", "r", "p_spin", "q_spin", "p_gpd", "q_gpd", "tail_method",
                               "p_naive", "q_naive"]
    pd.testing.assert_frame_equal(t.drop(columns=["p_gpd", "q_gpd", "tail_method"]), base)
    perm = t["tail_method"].isin(["permutation", "no_fit"])
    np.testing.assert_array_equal(t.loc[perm, "p_gpd"], t.loc[perm, "p_spin"])
    assert (t["tail_method"] == "gpd").any()
    assert t.loc[t["tail_method"] == "gpd", "p_gpd"].min() < 1 / 401
    np.testing.assert_allclose(t["q_gpd"], fdr_bh(t["p_gpd"].to_numpy()))
    with pytest.raises(ValueError, match="keep_tail"):
        gene_table(genes, correlate_genes(x, y, nulls), tail="gpd")
    with pytest.raises(ValueError, match="tail"):
        gene_table(genes, res, tail="yes")


def _aligned():
    x, y, nulls = _gene_data(n_genes=40)
    genes = [f"g{i}" for i in range(x.shape[1])]
    return analysis.Aligned(expression=x, y=y, nulls=nulls, genes=genes,
                            regions=[f"r{i}" for i in range(len(y))],
                            excluded=pd.DataFrame(columns=["region", "reason"]), name="m")


def test_analysis_tables_with_and_without_tail():
    al = _aligned()
    g0 = analysis.gene_association(al)
    g1 = analysis.gene_association(al, tail="gpd")
    pd.testing.assert_frame_equal(g1.drop(columns=["p_gpd", "q_gpd", "tail_method"]), g0)
    assert list(g1.columns[3:7]) == ["q_spin", "p_gpd", "q_gpd", "tail_method"]
    sets = {"strong": al.genes[:6], "rest": al.genes[10:25], "other": al.genes[20:40]}
    e0 = analysis.set_enrichment(al, sets, min_genes=5, n_random=200, seed=1)
    e1 = analysis.set_enrichment(al, sets, min_genes=5, n_random=200, seed=1, tail="gpd")
    pd.testing.assert_frame_equal(e1.table.drop(columns=["p_gpd", "q_gpd", "tail_method"]),
                                  e0.table)
    cols = list(e1.table.columns)
    assert cols[cols.index("q_spatial") + 1:cols.index("q_spatial") + 4] == [
        "p_gpd", "q_gpd", "tail_method"]
    # the set p is the tail p of the spatial null scores, same alternative
    tp = tailp.tail_pvalues(e1.table["score"], e1.null_scores[e1.table["set"]].to_numpy())
    np.testing.assert_array_equal(e1.table["p_gpd"], tp.p)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_enrichment_table_tail_follows_alternative(alternative):
    rng = np.random.default_rng(13)
    r = rng.uniform(-1, 1, 60)
    w = pd.DataFrame((rng.random((60, 5)) < 0.3).astype(float), columns=list("ABCDE"))
    null = rng.normal(0, 0.05, size=(2000, 5))
    t0 = enrichment_table(r, w, null, n_random=0, alternative=alternative)
    t1 = enrichment_table(r, w, null, n_random=0, alternative=alternative, tail="gpd")
    pd.testing.assert_frame_equal(t1.drop(columns=["p_gpd", "q_gpd", "tail_method"]), t0)
    tp = tailp.tail_pvalues(t1["score"], null[:, [list("ABCDE").index(s) for s in t1["set"]]],
                            alternative)
    np.testing.assert_array_equal(t1["p_gpd"], tp.p)


def test_compare_celltypes_tail():
    rng = np.random.default_rng(14)
    n = 25
    y = rng.normal(size=n)
    table = pd.DataFrame({"A": y + rng.normal(size=n) * 1.2, "B": rng.normal(size=n),
                          "C": np.r_[np.nan, rng.normal(size=n - 1)]},
                         index=pd.Index([f"R{i}" for i in range(n)], name="region"))
    nulls = y[np.argsort(rng.random((n, 1000)), axis=0)]
    c0 = celltypes.compare_celltypes(y, table, nulls)
    c1 = celltypes.compare_celltypes(y, table, nulls, tail="gpd")
    pd.testing.assert_frame_equal(c1.drop(columns=["p_gpd", "q_gpd", "tail_method"]), c0)
    assert list(c1.columns) == ["map", "celltype", "r", "p_spin", "q_spin", "p_gpd", "q_gpd",
                                "tail_method", "p_naive", "n_regions"]
    by = c1.set_index("celltype")
    assert by.loc["A", "tail_method"] == "gpd" and by.loc["A", "p_gpd"] < by.loc["A", "p_spin"]
    assert by.loc["B", "tail_method"] == "permutation"
    assert by.loc["B", "p_gpd"] == by.loc["B", "p_spin"]
    assert by.loc["C", "tail_method"] == "na" and np.isnan(by.loc["C", "p_gpd"])
    # the same cell type against a brute-force |r| null of scipy
    r_null = np.abs([stats.spearmanr(table["A"], nulls[:, j])[0] for j in range(1000)])
    ref = tailp.tail_pvalues([abs(by.loc["A", "r"])], r_null[:, None], "greater")
    assert by.loc["A", "p_gpd"] == pytest.approx(ref.p[0], rel=1e-9)


# ---------------------------------------------------------------------------
# the validation tool (its functions; the study itself is not a test)
# ---------------------------------------------------------------------------


def _load_tool():
    return load_tool("validate_tailp")


def test_validation_tool_spins_and_summary():
    tool = _load_tool()
    rng = np.random.default_rng(15)
    rot = tool.random_rotations(rng, 500)
    np.testing.assert_allclose(rot @ rot.transpose(0, 2, 1), np.broadcast_to(np.eye(3), rot.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-12)
    coords = rng.normal(size=(12, 3))
    coords *= 100 / np.linalg.norm(coords, axis=1, keepdims=True)
    blocks = list(tool.spin_blocks(coords, 250, 3, block=100))
    assert [b.shape for b in blocks] == [(12, 100), (12, 100), (12, 50)]
    again = np.concatenate(list(tool.spin_blocks(coords, 250, 3, block=250)), axis=1)
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), again)
    # nearest rotated centroid, by a loop
    rng2 = np.random.default_rng(3)
    r0 = tool.random_rotations(rng2, 100)[0]
    rotated = coords @ r0
    expect = [np.argmin(np.linalg.norm(rotated - c, axis=1)) for c in coords]
    np.testing.assert_array_equal(blocks[0][:, 0], expect)
    # null r equals scipy
    x, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    nr = tool.null_r(x, y, blocks[0][:, :5])
    assert nr[2, 1] == pytest.approx(stats.spearmanr(y[blocks[0][:, 2]], x[:, 1])[0])
    fields = pd.DataFrame({"sigma": 1, "field": range(4), "n_tests": 100, "n_gpd": 2,
                           "n_gpd_xi0": 2, "permutation_0.05": [5, 6, 4, 5],
                           "gpd_0.05": [5, 6, 4, 5], "gpd_xi0_0.05": [5, 6, 4, 5],
                           "permutation_0.001": [0, 1, 0, 0], "gpd_0.001": [0, 1, 1, 0],
                           "gpd_xi0_0.001": [0, 0, 0, 0]})
    s = tool.summarise_fpr(fields, n_boot=200, alphas=(0.05, 0.001)).set_index(["p", "alpha"])
    assert s.loc[("permutation", 0.05), "fpr"] == pytest.approx(0.05)
    assert s.loc[("gpd", 0.001), "fpr"] == pytest.approx(0.005)
