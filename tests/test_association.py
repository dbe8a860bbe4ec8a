"""Tests of itx.association against independent per-gene scipy computations."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx.association import (
    AssociationResult,
    _average_ranks,
    _subset_ranks,
    correlate_genes,
    fdr_bh,
    gene_table,
)

ATOL = 1e-9


def _scipy_r(method, a, b):
    if method == "spearman":
        res = stats.spearmanr(a, b)
    else:
        res = stats.pearsonr(a, b)
    return float(res[0]), float(res[1])


def _brute_force(expression, y, nulls, method, atol=ATOL):
    """Per-gene, per-null loop with scipy: r, naive p, p_spin, n_valid."""
    n_genes = expression.shape[1]
    r = np.full(n_genes, np.nan)
    p_naive = np.full(n_genes, np.nan)
    p_spin = np.full(n_genes, np.nan)
    n_valid = np.zeros(n_genes, dtype=int)
    for g in range(n_genes):
        x = expression[:, g]
        if np.ptp(x) == 0:
            continue
        r[g], p_naive[g] = _scipy_r(method, x, y)
        hits = 0
        for j in range(nulls.shape[1]):
            ok = np.isfinite(nulls[:, j])
            xs, ns = x[ok], nulls[ok, j]
            if ok.sum() < 3 or np.ptp(xs) == 0 or np.ptp(ns) == 0:
                continue
            rn, _ = _scipy_r(method, xs, ns)
            n_valid[g] += 1
            hits += abs(rn) >= abs(r[g]) - atol
        p_spin[g] = (1 + hits) / (1 + n_valid[g])
    return r, p_naive, p_spin, n_valid


def _data(seed=0, n=14, n_genes=12, n_perm=30, ties=True):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, n_genes))
    if ties:
        x[:, ::3] = np.round(x[:, ::3])  # tied values in some genes
    # genes correlated with the map so that p values are spread out
    y = rng.normal(size=n)
    x[:, :4] += 2.0 * y[:, None]
    perms = np.argsort(rng.random((n, n_perm)), axis=0)
    return x, y, y[perms]


def test_average_ranks_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(25, 30)).astype(float)
    a[:, 0] = 1.0  # all tied
    a[:, 1] = rng.normal(size=25)  # no ties
    np.testing.assert_array_equal(_average_ranks(a), stats.rankdata(a, axis=0))


def test_subset_ranks_match_scipy():
    """Ranks over the rows kept by a NaN pattern, updated from the full ranks."""
    rng = np.random.default_rng(2)
    a = rng.integers(0, 5, size=(20, 40)).astype(float)
    a[:, 1] = rng.normal(size=20)
    full = _average_ranks(a)
    for n_drop in (1, 3, 8, 17):
        rows = np.ones(20, dtype=bool)
        rows[rng.choice(20, n_drop, replace=False)] = False
        np.testing.assert_array_equal(
            _subset_ranks(a, full, rows), stats.rankdata(a[rows], axis=0)
        )


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_r_p_naive_and_p_spin_match_scipy_loop(method):
    x, y, nulls = _data()
    res = correlate_genes(x, y, nulls, method=method)
    r, p_naive, p_spin, n_valid = _brute_force(x, y, nulls, method)
    assert isinstance(res, AssociationResult)
    assert res.method == method and res.n_regions == x.shape[0] and res.n_perm == nulls.shape[1]
    np.testing.assert_allclose(res.r, r, rtol=0, atol=1e-12)
    np.testing.assert_allclose(res.p_naive, p_naive, rtol=1e-8, atol=1e-300)
    np.testing.assert_array_equal(res.p_spin, p_spin)
    np.testing.assert_array_equal(res.n_valid_null, n_valid)
    assert res.null_set_scores is None


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_p_spin_exact_ties(method):
    """Integer maps over 10 regions: many null r equal the observed r exactly."""
    rng = np.random.default_rng(7)
    n = 10
    y = rng.integers(0, 4, size=n).astype(float)
    x = rng.integers(0, 3, size=(n, 15)).astype(float)
    x[:, 0] = y  # |r| = 1, tied by the identity and the mirrored nulls
    x[:, 1] = y[::-1]
    perms = [np.arange(n), np.arange(n)[::-1]]
    perms += [rng.permutation(n) for _ in range(40)]
    nulls = y[np.stack(perms, axis=1)]
    nulls = np.concatenate([nulls, -nulls[:, :5]], axis=1)  # sign flips: |r| ties
    res = correlate_genes(x, y, nulls, method=method)
    _, _, p_spin, _ = _brute_force(x, y, nulls, method)
    np.testing.assert_array_equal(res.p_spin, p_spin)

    # the case is real: there are nulls whose |r| equals |r_obs| (to rounding)
    n_ties = 0
    for g in range(x.shape[1]):
        ro, _ = _scipy_r(method, x[:, g], y)
        for j in range(nulls.shape[1]):
            rn, _ = _scipy_r(method, x[:, g], nulls[:, j])
            n_ties += abs(abs(rn) - abs(ro)) < 1e-12
    assert n_ties > 20


def test_block_size_invariance():
    x, y, nulls = _data(seed=3, n_perm=23)
    nulls = nulls.copy()
    nulls[0, 5] = nulls[3, 9] = nulls[3, 11] = np.nan  # exercise the NaN path too
    w = np.zeros((x.shape[1], 3))
    w[:5, 0] = 1
    w[3:9, 1] = 1
    w[:, 2] = np.linspace(0, 1, x.shape[1])
    results = [
        correlate_genes(x, y, nulls, set_matrix=w, block_size=b) for b in (1, 7, nulls.shape[1])
    ]
    ref = results[0]
    for res in results[1:]:
        np.testing.assert_array_equal(res.r, ref.r)
        np.testing.assert_array_equal(res.p_spin, ref.p_spin)
        np.testing.assert_array_equal(res.n_valid_null, ref.n_valid_null)
        np.testing.assert_allclose(res.null_set_scores, ref.null_set_scores, rtol=0, atol=1e-14)


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_nan_null_columns_match_scipy_on_finite_rows(method):
    x, y, nulls = _data(seed=5, n=15, n_perm=20)
    nulls = nulls.copy()
    nulls[0, [1, 2, 3]] = np.nan  # one shared pattern (3 columns)
    nulls[[4, 5], 6] = np.nan  # a pattern of its own
    nulls[2:, 7] = np.nan  # only 2 finite rows: undefined
    nulls[:, 8] = np.nan  # all NaN
    nulls[1:, 9] = np.nan  # 1 finite row
    nulls[5:, 10] = np.nan
    x[:5, 0] = 0.25  # gene 0 constant on the finite rows of null 10
    res = correlate_genes(x, y, nulls, method=method, block_size=2)
    r, _, p_spin, n_valid = _brute_force(x, y, nulls, method)
    np.testing.assert_allclose(res.r, r, atol=1e-12)
    np.testing.assert_array_equal(res.p_spin, p_spin)
    np.testing.assert_array_equal(res.n_valid_null, n_valid)
    assert n_valid[1] == nulls.shape[1] - 3  # nulls 7, 8, 9 are undefined
    assert n_valid[0] == nulls.shape[1] - 4  # ... and null 10 for gene 0


def test_constant_gene_and_null_give_nan_not_crash():
    x, y, nulls = _data(seed=2)
    x[:, 3] = 1.5
    nulls = np.concatenate([nulls, np.full((x.shape[0], 1), 2.0)], axis=1)
    w = np.zeros((x.shape[1], 1))
    w[[2, 3, 4], 0] = 1
    res = correlate_genes(x, y, nulls, set_matrix=w)
    assert np.isnan(res.r[3]) and np.isnan(res.p_spin[3]) and np.isnan(res.p_naive[3])
    assert np.all(np.isfinite(np.delete(res.r, 3)))
    # the constant null is left out of every gene's count
    assert np.all(res.n_valid_null[np.arange(x.shape[1]) != 3] == nulls.shape[1] - 1)
    assert np.isnan(res.null_set_scores[-1, 0])
    # the constant gene is left out of set means: mean over genes 2 and 4
    j = 0
    expect = np.mean([stats.spearmanr(x[:, g], nulls[:, j])[0] for g in (2, 4)])
    assert res.null_set_scores[j, 0] == pytest.approx(expect, abs=1e-12)


def test_constant_map_gives_all_nan():
    x, y, nulls = _data(seed=2)
    res = correlate_genes(x, np.full_like(y, 3.0), nulls, set_matrix=np.ones((x.shape[1], 1)))
    assert (np.all(np.isnan(res.r)) and np.all(np.isnan(res.p_spin))
            and np.all(np.isnan(res.p_naive)))
    assert np.all(np.isnan(res.null_set_scores))


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_null_set_scores_match_loop(method):
    x, y, nulls = _data(seed=11, n_perm=15)
    nulls = nulls.copy()
    nulls[[0, 1], 4] = np.nan
    rng = np.random.default_rng(0)
    w = (rng.random((x.shape[1], 4)) < 0.4).astype(float)
    w[:, 3] = rng.random(x.shape[1])  # weights
    w[:, 2] = 0
    w[[0, 5], 2] = 1
    res = correlate_genes(x, y, nulls, method=method, set_matrix=w, block_size=4)
    assert res.null_set_scores.shape == (nulls.shape[1], w.shape[1])
    for j in range(nulls.shape[1]):
        ok = np.isfinite(nulls[:, j])
        rn = np.array([_scipy_r(method, x[ok, g], nulls[ok, j])[0] for g in range(x.shape[1])])
        for s in range(w.shape[1]):
            expect = np.sum(w[:, s] * rn) / np.sum(w[:, s])
            assert res.null_set_scores[j, s] == pytest.approx(expect, abs=1e-12)


def test_accepts_pandas_and_is_deterministic():
    x, y, nulls = _data(seed=4)
    a = correlate_genes(pd.DataFrame(x), pd.Series(y), nulls)
    b = correlate_genes(x, y, nulls)
    np.testing.assert_array_equal(a.r, b.r)
    np.testing.assert_array_equal(a.p_spin, b.p_spin)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.zeros(5)), "y must be"),
        (dict(null_maps=np.zeros((5, 3))), "null_maps must be"),
        (dict(null_maps=np.zeros(14)), "null_maps must be"),
        (dict(expression=np.zeros(14)), "expression must be 2-D"),
        (dict(method="kendall"), "unknown method"),
        (dict(block_size=0), "block_size"),
        (dict(set_matrix=np.ones((3, 2))), "set_matrix"),
        (dict(set_matrix=-np.ones((12, 2))), "non-negative"),
        (dict(atol=-1.0), "atol"),
    ],
)
def test_input_errors(kwargs, match):
    x, y, nulls = _data()
    args = dict(expression=x, y=y, null_maps=nulls)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        correlate_genes(args.pop("expression"), args.pop("y"), args.pop("null_maps"), **args)


def test_nonfinite_inputs_rejected():
    x, y, nulls = _data()
    bad_x = x.copy()
    bad_x[0, 0] = np.nan
    with pytest.raises(ValueError, match="expression contains NaN"):
        correlate_genes(bad_x, y, nulls)
    bad_y = y.copy()
    bad_y[1] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        correlate_genes(x, bad_y, nulls)
    bad_n = nulls.copy()
    bad_n[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        correlate_genes(x, y, bad_n)
    with pytest.raises(ValueError, match="at least 3 regions"):
        correlate_genes(x[:2], y[:2], nulls[:2])


def test_fdr_bh_matches_scipy_and_keeps_nan():
    rng = np.random.default_rng(0)
    p = rng.random(200) ** 3
    p[[3, 50, 51]] = np.nan
    p[10] = p[11]  # ties
    q = fdr_bh(p)
    ok = ~np.isnan(p)
    assert np.all(np.isnan(q[~ok]))
    np.testing.assert_allclose(q[ok], stats.false_discovery_control(p[ok], method="bh"), rtol=1e-12)
    assert np.all(np.isnan(fdr_bh([np.nan, np.nan])))
    assert fdr_bh([]).shape == (0,)
    with pytest.raises(ValueError):
        fdr_bh([0.5, 1.5])


def test_gene_table_columns_and_order():
    x, y, nulls = _data(seed=8, n_perm=10)
    x[:, 5] = 0.0  # undefined gene goes last
    res = correlate_genes(x, y, nulls)
    genes = [f"G{i}" for i in range(x.shape[1])]
    df = gene_table(genes, res)
    assert list(df.columns) == ["gene", "r", "p_spin", "q_spin", "p_naive", "q_naive"]
    assert len(df) == len(genes) and df["gene"].iloc[-1] == "G5"
    body = df.iloc[:-1]
    key = list(zip(body["p_spin"], -body["r"].abs()))
    assert key == sorted(key)
    by_gene = df.set_index("gene")
    np.testing.assert_array_equal(by_gene.loc[genes, "r"].to_numpy(), res.r)
    np.testing.assert_allclose(by_gene.loc[genes, "q_spin"].to_numpy(), fdr_bh(res.p_spin))
    with pytest.raises(ValueError):
        gene_table(genes[:-1], res)
