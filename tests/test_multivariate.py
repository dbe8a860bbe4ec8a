"""Joint models of a map on several maps, against statsmodels, scipy and brute-force loops."""
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import association
from itx import multivariate as mv

TOL = 1e-9


def _zscore(a):
    return (a - a.mean(axis=0)) / a.std(axis=0, ddof=1)


def _data(seed=0, n=30, k=3, n_perm=120):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, k))
    x[:, 1] += 0.6 * x[:, 0]  # correlated predictors, as cell-type maps are
    y = x @ np.linspace(0.6, -0.3, k) + rng.normal(size=n)
    nulls = y[np.stack([rng.permutation(n) for _ in range(n_perm)], axis=1)]
    return x, y, nulls


def _nan_nulls(nulls, k):
    """Null maps with NaN rows: two usable groups, one with too few rows, one constant."""
    nulls = nulls.copy()
    nulls[0, 0:15] = np.nan                       # a medial-wall spin: one row missing
    nulls[[2, 5, 7], 15:30] = np.nan               # another NaN pattern
    nulls[k + 1:, 30:35] = np.nan                  # k + 1 rows left: below k + 2, unusable
    nulls[:, 35] = 1.0                             # constant: unusable
    return nulls


def _brute_fit(y, x, standardise=True):
    """R2 and slopes of an OLS fit with intercept, by numpy.linalg.lstsq."""
    if standardise:
        y, x = _zscore(y), _zscore(x)
    design = np.column_stack([np.ones(len(y)), x])
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    rss = np.sum((y - design @ coef) ** 2)
    return 1 - rss / np.sum((y - y.mean()) ** 2), coef[1:]


def _extreme(null, obs):
    null = np.asarray(null)
    return np.sum(null >= obs - TOL * max(1.0, obs))


# --- multiple regression ------------------------------------------------------------


@pytest.mark.parametrize("standardise", [True, False])
def test_regression_matches_statsmodels(standardise):
    # statsmodels is a test requirement (requirements-test.txt), imported here only
    import statsmodels.api as sm
    from statsmodels.stats.outliers_influence import variance_inflation_factor

    x, y, nulls = _data()
    res = mv.multiple_regression(y, x, nulls, standardise=standardise, names=["a", "b", "c"])
    yf, xf = (_zscore(y), _zscore(x)) if standardise else (y, x)
    design = sm.add_constant(xf)
    fit = sm.OLS(yf, design).fit()
    co = res.coefficients
    assert list(co.columns) == ["term", "beta", "se", "t", "p_param", "p_spin", "vif"]
    assert list(co["term"]) == ["intercept", "a", "b", "c"]
    np.testing.assert_allclose(co["beta"], fit.params, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(co["se"], fit.bse, rtol=1e-10)
    np.testing.assert_allclose(co["t"], fit.tvalues, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(co["p_param"], fit.pvalues, rtol=1e-8)
    vif = [variance_inflation_factor(design, j) for j in range(1, 4)]
    np.testing.assert_allclose(co["vif"].iloc[1:], vif, rtol=1e-10)
    assert np.isnan(co["p_spin"][0]) and np.isnan(co["vif"][0])
    m = res.model.iloc[0]
    assert list(res.model.columns) == ["r2", "adj_r2", "F", "df_model", "df_resid", "p_param",
                                       "p_spin", "n_regions", "n_predictors", "n_null"]
    assert m["r2"] == pytest.approx(fit.rsquared, rel=1e-12)
    assert m["adj_r2"] == pytest.approx(fit.rsquared_adj, rel=1e-12)
    assert m["F"] == pytest.approx(fit.fvalue, rel=1e-10)
    assert m["p_param"] == pytest.approx(fit.f_pvalue, rel=1e-8)
    assert (m["df_model"], m["df_resid"], m["n_regions"], m["n_predictors"]) == (3, 26, 30, 3)
    assert m["n_null"] == nulls.shape[1]


@pytest.mark.parametrize("standardise", [True, False])
def test_regression_p_spin_matches_per_null_refits(standardise):
    x, y, nulls = _data(1, n_perm=150)
    x[:3, 2] += 5.0  # on rows 3.. this predictor alone ...
    x[3:, 2] = 0.0   # ... is constant: null maps without rows 0-2 cannot be fitted
    nulls = _nan_nulls(nulls, 3)
    nulls[[0, 1, 2], 40:45] = np.nan
    res = mv.multiple_regression(y, x, nulls, standardise=standardise)
    r2_obs, beta_obs = _brute_fit(y, x, standardise)
    r2_null, beta_null = [], []
    for j in range(nulls.shape[1]):
        rows = np.isfinite(nulls[:, j])
        if rows.sum() < 5 or np.ptp(nulls[rows, j]) == 0:
            continue
        if np.linalg.matrix_rank(np.column_stack([np.ones(rows.sum()), x[rows]])) < 4:
            continue
        r2, beta = _brute_fit(nulls[rows, j], x[rows], standardise)
        r2_null.append(r2)
        beta_null.append(beta)
    beta_null = np.abs(np.array(beta_null))
    n_null = len(r2_null)
    assert n_null == nulls.shape[1] - 5 - 1 - 5  # too few rows, constant, collinear
    assert res.model["n_null"][0] == n_null
    assert res.model["r2"][0] == pytest.approx(r2_obs)
    expect = (1 + _extreme(r2_null, r2_obs)) / (1 + n_null)
    assert res.model["p_spin"][0] == pytest.approx(expect, rel=1e-12)
    for i in range(3):
        b = abs(beta_obs[i])
        expect = (1 + _extreme(beta_null[:, i], b)) / (1 + n_null)
        assert res.coefficients["p_spin"][i + 1] == pytest.approx(expect, rel=1e-12)
        assert res.coefficients["beta"][i + 1] == pytest.approx(beta_obs[i], rel=1e-9)


def test_regression_aligns_series_and_is_deterministic():
    x, y, nulls = _data(2)
    idx = pd.Index([f"R{i}" for i in range(30)], name="region")
    frame = pd.DataFrame(x, index=idx, columns=["Astro", "Micro", "Oligo"])
    a = mv.multiple_regression(pd.Series(y, index=idx).iloc[::-1], frame, nulls)
    b = mv.multiple_regression(y, x, nulls, names=["Astro", "Micro", "Oligo"], block_size=7)
    pd.testing.assert_frame_equal(a.coefficients, b.coefficients, rtol=1e-12)
    pd.testing.assert_frame_equal(a.model, b.model, rtol=1e-12)
    c = mv.multiple_regression(pd.Series(y, index=idx).iloc[::-1], frame, nulls)
    pd.testing.assert_frame_equal(a.coefficients, c.coefficients, check_exact=True)
    pd.testing.assert_frame_equal(a.model, c.model, check_exact=True)


def test_no_usable_null_map_gives_nan_p_and_a_warning():
    x, y, nulls = _data(3, n_perm=10)
    nulls[4:] = np.nan  # 4 rows left for 3 predictors: no null map can be fitted
    with pytest.warns(association.NullMapWarning, match="no usable null map"):
        res = mv.multiple_regression(y, x, nulls, name="mdd")
    assert res.coefficients["p_spin"].isna().all() and np.isnan(res.model["p_spin"][0])
    assert res.model["n_null"][0] == 0 and np.isfinite(res.model["p_param"][0])
    with pytest.warns(association.NullMapWarning, match="no usable null map"):
        dom = mv.dominance_analysis(y, x, nulls)
    assert dom.table["p_spin"].isna().all() and dom.table["q_spin"].isna().all()


def test_regression_errors():
    x, y, nulls = _data(3)
    with pytest.raises(ValueError, match="too few .* need at least 5"):
        mv.multiple_regression(y[:4], x[:4], nulls[:4])
    dup = np.column_stack([x, x[:, 0] + 2 * x[:, 2]])
    with pytest.raises(ValueError, match=r"collinear .*'d' = a linear combination of .*'a'"):
        mv.multiple_regression(y, dup, nulls, names=list("abcd"))
    const = x.copy()
    const[:, 1] = 3.0
    with pytest.raises(ValueError, match=r"\['b'\] are constant"):
        mv.multiple_regression(y, const, nulls, names=list("abc"))
    bad = y.copy()
    bad[4] = np.nan
    with pytest.raises(ValueError, match="y has 1 NaN"):
        mv.multiple_regression(bad, x, nulls)
    xb = x.copy()
    xb[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"predictors has NaN .*\['x_2'\]"):
        mv.multiple_regression(y, xb, nulls)
    with pytest.raises(ValueError, match="null_maps must have shape"):
        mv.multiple_regression(y, x, nulls[:-1])
    with pytest.raises(ValueError, match="2 names for the 3 columns"):
        mv.multiple_regression(y, x, nulls, names=["a", "b"])
    with pytest.raises(ValueError, match="constant across regions"):
        mv.multiple_regression(np.ones(30), x, nulls)


# --- dominance analysis ------------------------------------------------------------------


def _brute_dominance(y, x):
    """General, conditional and complete dominance by looping over subsets with lstsq."""
    k = x.shape[1]
    r2 = {(): 0.0}
    for s in range(1, k + 1):
        for sub in combinations(range(k), s):
            r2[sub] = _brute_fit(y, x[:, list(sub)], standardise=False)[0]
    cond = np.zeros((k, k))
    for j in range(k):
        others = [i for i in range(k) if i != j]
        for s in range(k):
            gains = [r2[tuple(sorted(t + (j,)))] - r2[t] for t in combinations(others, s)]
            cond[j, s] = np.mean(gains)
    complete = np.zeros((k, k), dtype=bool)
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            rest = [m for m in range(k) if m not in (i, j)]
            complete[i, j] = all(r2[tuple(sorted(t + (i,)))] > r2[tuple(sorted(t + (j,)))]
                                 for s in range(k - 1) for t in combinations(rest, s))
    return cond.mean(axis=1), cond, complete, r2[tuple(range(k))]


def test_dominance_matches_subset_loop():
    x, y, nulls = _data(4, k=4, n_perm=20)
    res = mv.dominance_analysis(y, x, nulls, names=list("abcd"))
    dom, cond, complete, r2 = _brute_dominance(y, x)
    t = res.table
    assert list(t.columns) == ["predictor", "dominance", "share", "p_spin", "q_spin", "rank",
                               "completely_dominates"]
    np.testing.assert_allclose(t["dominance"], dom, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(res.conditional.to_numpy(), cond, rtol=1e-10, atol=1e-14)
    np.testing.assert_array_equal(res.complete.to_numpy(), complete)
    assert t["dominance"].sum() == pytest.approx(r2, rel=1e-12)
    assert res.model["r2"][0] == pytest.approx(r2, rel=1e-12)
    assert t["share"].sum() == pytest.approx(100.0)
    np.testing.assert_allclose(t["share"], 100 * dom / r2, rtol=1e-10)
    assert list(t["rank"]) == list(stats.rankdata(-dom).astype(int))
    for i, row in t.iterrows():
        assert row["completely_dominates"] == ";".join(
            n for n, c in zip("abcd", complete[i]) if c)
    full = mv.multiple_regression(y, x, nulls)
    assert res.model["r2"][0] == pytest.approx(full.model["r2"][0], rel=1e-12)


def test_dominance_two_predictors_by_hand():
    x, y, nulls = _data(5, k=2, n_perm=10)
    r1 = np.corrcoef(y, x[:, 0])[0, 1]
    r2 = np.corrcoef(y, x[:, 1])[0, 1]
    r12 = np.corrcoef(x[:, 0], x[:, 1])[0, 1]
    full = (r1 ** 2 + r2 ** 2 - 2 * r1 * r2 * r12) / (1 - r12 ** 2)
    expect = [(r1 ** 2 + full - r2 ** 2) / 2, (r2 ** 2 + full - r1 ** 2) / 2]
    res = mv.dominance_analysis(y, x, nulls)
    np.testing.assert_allclose(res.table["dominance"], expect, rtol=1e-10)
    np.testing.assert_allclose(res.conditional.to_numpy(),
                               [[r1 ** 2, full - r2 ** 2], [r2 ** 2, full - r1 ** 2]], rtol=1e-10)
    # with 2 predictors the only subset of the others is the empty one
    assert res.complete.iloc[0, 1] == (r1 ** 2 > r2 ** 2)
    assert res.complete.iloc[1, 0] == (r2 ** 2 > r1 ** 2)
    assert res.complete.to_numpy().sum() == 1


def test_dominance_p_spin_matches_per_null_loop():
    x, y, nulls = _data(6, k=3, n_perm=60)
    nulls = _nan_nulls(nulls, 3)
    res = mv.dominance_analysis(y, x, nulls, block_size=16)
    dom, _, _, r2 = _brute_dominance(y, x)
    null_dom, null_r2 = [], []
    for j in range(nulls.shape[1]):
        rows = np.isfinite(nulls[:, j])
        if rows.sum() < 5 or np.ptp(nulls[rows, j]) == 0:
            continue
        d, _, _, r = _brute_dominance(nulls[rows, j], x[rows])
        null_dom.append(d)
        null_r2.append(r)
    null_dom = np.array(null_dom)
    n_null = len(null_r2)
    assert n_null == 60 - 5 - 1 and res.model["n_null"][0] == n_null
    for i in range(3):
        expect = (1 + _extreme(null_dom[:, i], dom[i])) / (1 + n_null)
        assert res.table["p_spin"][i] == pytest.approx(expect, rel=1e-12)
    assert res.model["p_spin"][0] == pytest.approx((1 + _extreme(null_r2, r2)) / (1 + n_null))
    np.testing.assert_allclose(res.table["q_spin"], association.fdr_bh(res.table["p_spin"]))
    again = mv.dominance_analysis(y, x, nulls)
    pd.testing.assert_frame_equal(res.table, again.table, check_exact=True)


def test_dominance_limits_and_errors():
    x, y, nulls = _data(7, n=40, k=5, n_perm=5)
    with pytest.raises(ValueError, match=r"2\^5 - 1 = 31 subset models.*at most 4"):
        mv.dominance_analysis(y, x, nulls, max_predictors=4)
    with pytest.raises(ValueError, match="collinear"):
        mv.dominance_analysis(y, np.column_stack([x, x[:, 0] - x[:, 1]]), nulls)
    with pytest.raises(ValueError, match="max_predictors must be a positive integer"):
        mv.dominance_analysis(y, x, nulls, max_predictors=0)


# --- partial correlations -----------------------------------------------------------------


def _genes(seed=8, n=30, n_genes=25, c=2, n_perm=80):
    rng = np.random.default_rng(seed)
    cov = rng.normal(size=(n, c))
    y = cov @ np.ones(c) + rng.normal(size=n)
    expr = rng.normal(size=(n, n_genes)) + 0.5 * y[:, None] + cov[:, :1]
    expr[:, 0] = np.round(expr[:, 0])  # ties, for the ranks
    nulls = y[np.stack([rng.permutation(n) for _ in range(n_perm)], axis=1)]
    return expr, y, cov, nulls


def _rank(a):
    return stats.rankdata(a, axis=0)


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_partial_matches_precision_matrix_and_residual_regression(method):
    expr, y, cov, nulls = _genes()
    out = mv.partial_correlation_genes(expr, y, cov, nulls, method=method)
    assert list(out.columns) == ["gene", "r_partial", "p_spin", "q_spin", "p_param"]
    assert out["gene"][3] == "gene_4"
    prep = _rank if method == "spearman" else (lambda a: a)
    design = np.column_stack([np.ones(30), prep(cov)])
    y_res = prep(y) - design @ np.linalg.lstsq(design, prep(y), rcond=None)[0]
    df = 30 - 2 - 2
    for g in range(expr.shape[1]):
        prec = np.linalg.inv(np.corrcoef(np.column_stack([prep(expr[:, g]), prep(y),
                                                          prep(cov)]), rowvar=False))
        r_prec = -prec[0, 1] / np.sqrt(prec[0, 0] * prec[1, 1])
        assert out["r_partial"][g] == pytest.approx(r_prec, abs=1e-12)
        e = prep(expr[:, g])
        e_res = e - design @ np.linalg.lstsq(design, e, rcond=None)[0]
        assert out["r_partial"][g] == pytest.approx(stats.pearsonr(e_res, y_res)[0], abs=1e-12)
        t = r_prec * np.sqrt(df / (1 - r_prec ** 2))
        assert out["p_param"][g] == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    np.testing.assert_allclose(out["q_spin"], association.fdr_bh(out["p_spin"].to_numpy()))


def test_partial_p_spin_matches_per_null_loop():
    expr, y, cov, nulls = _genes(9, n_perm=70)
    nulls[0, :20] = np.nan
    nulls[[1, 4], 20:30] = np.nan
    nulls[[3, 8, 9, 10, 11, 12, 14, 15, 16, 17], 30:35] = np.nan  # > 8 dropped: ranks resorted
    nulls[4:, 35:38] = np.nan  # 4 rows < c + 3 = 5: unusable
    out = mv.partial_correlation_genes(expr, y, cov, nulls, block_size=9)

    def partial(e, v, c):
        e, v, c = _rank(e), _rank(v), _rank(c)
        d = np.column_stack([np.ones(len(v)), c])
        res = [a - d @ np.linalg.lstsq(d, a, rcond=None)[0] for a in (e, v)]
        return stats.pearsonr(*res)[0]

    for g in (0, 1, 7):
        r = partial(expr[:, g], y, cov)
        null_r = []
        for j in range(nulls.shape[1]):
            rows = np.isfinite(nulls[:, j])
            if rows.sum() < 5:
                continue
            null_r.append(partial(expr[rows, g], nulls[rows, j], cov[rows]))
        null_r = np.abs(null_r)
        assert len(null_r) == 67
        expect = (1 + np.sum(null_r >= abs(r) - TOL)) / (1 + len(null_r))
        assert out["r_partial"][g] == pytest.approx(r, abs=1e-12)
        assert out["p_spin"][g] == pytest.approx(expect, rel=1e-12)


def test_partial_without_covariates_is_correlate_genes():
    expr, y, _, nulls = _genes(10)
    nulls[2, :10] = np.nan
    out = mv.partial_correlation_genes(expr, y, None, nulls)
    ref = association.correlate_genes(expr, y, nulls)
    np.testing.assert_allclose(out["r_partial"], ref.r, atol=1e-12)
    np.testing.assert_allclose(out["p_spin"], ref.p_spin, rtol=1e-12)
    np.testing.assert_allclose(out["p_param"], ref.p_naive, rtol=1e-9)


def test_partial_undefined_genes_blocks_and_repeat():
    expr, y, cov, nulls = _genes(11)
    expr[:, 2] = 7.0                               # constant
    expr[:, 3] = 2 * cov[:, 0] - cov[:, 1] + 1.0   # explained by the covariates
    frame = pd.DataFrame(expr, columns=[f"G{i}" for i in range(expr.shape[1])])
    a = mv.partial_correlation_genes(frame, y, cov, nulls, method="pearson")
    shuffled = pd.DataFrame(cov, index=frame.index, columns=["thick", "myelin"]).iloc[::-1]
    aligned = mv.partial_correlation_genes(frame, pd.Series(y).iloc[::-1], shuffled, nulls,
                                           method="pearson")
    pd.testing.assert_frame_equal(a, aligned, rtol=1e-12)
    with pytest.raises(ValueError, match="covariates lack 1 regions"):
        mv.partial_correlation_genes(frame, y, shuffled.iloc[1:], nulls)
    assert a["r_partial"][[2, 3]].isna().all() and a["p_spin"][[2, 3]].isna().all()
    assert a["q_spin"][[2, 3]].isna().all() and a["p_param"][[2, 3]].isna().all()
    assert a["r_partial"].drop([2, 3]).notna().all() and a["gene"][2] == "G2"
    b = mv.partial_correlation_genes(frame, y, cov, nulls, method="pearson", block_size=5)
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)
    c = mv.partial_correlation_genes(frame, y, cov, nulls, method="pearson")
    pd.testing.assert_frame_equal(a, c, check_exact=True)


def test_partial_errors():
    expr, y, cov, nulls = _genes(12)
    with pytest.raises(ValueError, match="unknown method"):
        mv.partial_correlation_genes(expr, y, cov, nulls, method="kendall")
    with pytest.raises(ValueError, match="too few .* need at least 5"):
        mv.partial_correlation_genes(expr[:4], y[:4], cov[:4], nulls[:4])
    with pytest.raises(ValueError, match="covariates are collinear"):
        mv.partial_correlation_genes(expr, y, np.column_stack([cov, cov[:, 0]]), nulls,
                                     method="pearson")
    with pytest.raises(ValueError, match="linear combination of the covariates"):
        mv.partial_correlation_genes(expr, cov[:, 0] + cov[:, 1], cov, nulls, method="pearson")
    bad = expr.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="expression has NaN"):
        mv.partial_correlation_genes(bad, y, cov, nulls)
    with pytest.raises(ValueError, match="covariates have 29 rows"):
        mv.partial_correlation_genes(expr, y, cov[:-1], nulls)
