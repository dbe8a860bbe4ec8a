"""Tests of itx.enrichment against loops and exact enumerations."""

import collections
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx.association import correlate_genes, fdr_bh
from itx.enrichment import (
    _random_set_groups,
    _random_tuple_blocks,
    enrichment_table,
    random_gene_enrichment,
    set_scores,
    spatial_enrichment,
)

ATOL = 1e-9


def _loop_p(obs, null, alternative, atol=ATOL):
    """Monte-Carlo p value of one statistic, by a plain loop (NaN nulls skipped)."""
    hits = n = 0
    for v in null:
        if np.isnan(v):
            continue
        n += 1
        if alternative == "two-sided":
            hits += abs(v) >= abs(obs) - atol
        elif alternative == "greater":
            hits += v >= obs - atol
        else:
            hits += v <= obs + atol
    return (1 + hits) / (1 + n)


def _membership(n_genes=40, seed=0):
    rng = np.random.default_rng(seed)
    w = np.zeros((n_genes, 4))
    w[:5, 0] = 1
    w[10:22, 1] = 1
    w[rng.choice(n_genes, 7, replace=False), 2] = 1
    w[:, 3] = np.where(rng.random(n_genes) < 0.3, rng.random(n_genes), 0.0)  # weights
    return w


def test_set_scores_match_loop_and_skip_nan():
    rng = np.random.default_rng(1)
    r = rng.uniform(-1, 1, 40)
    r[[0, 11]] = np.nan
    w = _membership()
    got = set_scores(r, w)
    for s in range(w.shape[1]):
        num = den = 0.0
        for g in range(len(r)):
            if w[g, s] > 0 and not np.isnan(r[g]):
                num += w[g, s] * r[g]
                den += w[g, s]
        assert got[s] == pytest.approx(num / den, abs=1e-14)
    # DataFrame + Series are aligned by gene name
    genes = [f"g{i}" for i in range(40)]
    df = pd.DataFrame(w, index=genes)
    shuffled = pd.Series(r, index=genes).iloc[::-1]
    np.testing.assert_allclose(set_scores(shuffled, df), got)
    # a set without any finite gene has an undefined score
    w0 = np.zeros((40, 1))
    w0[[0, 11], 0] = 1
    assert np.isnan(set_scores(r, w0)[0])


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_spatial_enrichment_matches_loop_with_ties(alternative):
    rng = np.random.default_rng(2)
    r = rng.uniform(-1, 1, 40)
    w = _membership()
    obs = set_scores(r, w)
    null = rng.normal(0, 0.3, size=(200, w.shape[1]))
    # exact ties (up to rounding) with the observed scores, both signs
    null[:10] = obs + 1e-13
    null[10:20] = -obs - 1e-13
    null[20:25] = np.nan
    got = spatial_enrichment(r, w, null, alternative)
    for s in range(w.shape[1]):
        assert got[s] == _loop_p(obs[s], null[:, s], alternative)
    # the ties are counted: at least the 10 tied values on the observed side
    assert np.all(got >= 11 / 176)


def test_spatial_enrichment_errors():
    w = _membership()
    r = np.zeros(40)
    with pytest.raises(ValueError, match="null_set_scores"):
        spatial_enrichment(r, w, np.zeros((10, 3)))
    with pytest.raises(ValueError, match="alternative"):
        spatial_enrichment(r, w, np.zeros((10, 4)), "both")


def test_ensemble_null_end_to_end_matches_loop():
    """correlate_genes -> null set scores -> p_spatial equals a scipy loop."""
    rng = np.random.default_rng(3)
    n, n_genes, n_perm = 12, 40, 25
    y = rng.normal(size=n)
    x = rng.normal(size=(n, n_genes)) + np.outer(y, np.linspace(-1, 1, n_genes))
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    w = _membership(n_genes)
    res = correlate_genes(x, y, nulls, set_matrix=w, block_size=6)
    got = spatial_enrichment(res.r, w, res.null_set_scores)
    r_obs = np.array([stats.spearmanr(x[:, g], y)[0] for g in range(n_genes)])
    r_null = np.array(
        [[stats.spearmanr(x[:, g], nulls[:, j])[0] for g in range(n_genes)] for j in range(n_perm)]
    )
    for s in range(w.shape[1]):
        obs = np.sum(w[:, s] * r_obs) / w[:, s].sum()
        null = [np.sum(w[:, s] * r_null[j]) / w[:, s].sum() for j in range(n_perm)]
        # scores agree to rounding; counts use the same tolerance
        assert set_scores(res.r, w)[s] == pytest.approx(obs, abs=1e-12)
        assert got[s] == _loop_p(obs, null, "two-sided")


@pytest.mark.parametrize("n, k", [(6, 2), (6, 3), (6, 4), (6, 6)])
def test_random_tuples_are_uniform(n, k):
    """Both samplers (k <= n/2: redraws; k > n/2: random keys) are uniform."""
    rng = np.random.default_rng(4)
    n_rows = 30000
    rows = np.concatenate(list(_random_tuple_blocks(rng, n, k, n_rows)))
    assert rows.shape == (n_rows, k)
    assert np.all(np.diff(np.sort(rows, axis=1), axis=1) > 0)  # distinct within a row
    counts = collections.Counter(map(tuple, rows))
    n_tuples = len(list(itertools.permutations(range(n), k)))
    assert len(counts) == n_tuples
    observed = np.array(list(counts.values()))
    # ordered tuples uniform: chi-square goodness of fit
    assert stats.chisquare(observed).pvalue > 1e-3


def test_random_tuples_large_and_blocked():
    rng = np.random.default_rng(5)
    blocks = list(_random_tuple_blocks(rng, 15000, 900, 300))
    rows = np.concatenate(blocks)
    assert rows.shape == (300, 900) and len(blocks) > 1
    assert np.all(np.diff(np.sort(rows, axis=1), axis=1) > 0)
    assert rows.min() >= 0 and rows.max() < 15000


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_random_gene_enrichment_matches_loop(alternative):
    """Same draws (same seed, same generator) scored and counted by a loop."""
    rng = np.random.default_rng(6)
    r = rng.uniform(-0.5, 0.8, 40)
    r[7] = np.nan
    w = _membership()
    w[:, 2] = 0
    w[10:22, 2] = 1  # same size as set 1: shares its draws
    big = np.zeros((40, 1))
    big[5:35] = 1  # 30 of 39 background genes: the random-key sampler
    w = np.hstack([w, big])
    n_random, seed = 500, 123
    got = random_gene_enrichment(r, w, n_random, seed, alternative)

    finite = np.isfinite(r)
    bg = r[finite]
    obs = set_scores(r, w)
    expect = np.full(w.shape[1], np.nan)
    gen = np.random.default_rng(seed)
    for weights, cols in _random_set_groups(w[finite]):
        idx = np.concatenate(list(_random_tuple_blocks(gen, bg.size, weights.size, n_random)))
        null = [sum(wi * bg[i] for wi, i in zip(weights, row)) / weights.sum() for row in idx]
        for s in cols:
            if alternative == "two-sided":
                pg = _loop_p(obs[s], null, "greater")
                pl = _loop_p(obs[s], null, "less")
                expect[s] = min(1.0, 2 * min(pg, pl))
            else:
                expect[s] = _loop_p(obs[s], null, alternative)
    np.testing.assert_allclose(got, expect, rtol=1e-12)


def test_random_gene_enrichment_matches_exact_enumeration():
    """Against the exact p over all C(10, 3) subsets (Monte-Carlo tolerance)."""
    r = np.array([0.9, 0.7, 0.1, -0.2, 0.3, -0.5, 0.0, 0.4, -0.1, 0.2])
    w = np.zeros((10, 1))
    w[[0, 1, 4], 0] = 1
    obs = r[[0, 1, 4]].mean()
    subsets = np.array(list(itertools.combinations(range(10), 3)))
    scores = r[subsets].mean(axis=1)
    exact = np.mean(scores >= obs - ATOL)
    n_random = 20000
    got = random_gene_enrichment(r, w, n_random, seed=9, alternative="greater")[0]
    se = np.sqrt(exact * (1 - exact) / n_random)
    assert abs(got - exact) < 5 * se + 1 / n_random


def test_random_gene_enrichment_seed():
    rng = np.random.default_rng(7)
    r = rng.normal(0, 0.3, 300)
    w = np.zeros((300, 2))
    w[:20, 0] = 1
    w[50:90, 1] = 1
    r[:20] += 0.05  # a weak signal, so p values are not at their floor
    a = random_gene_enrichment(r, w, 2000, seed=1)
    b = random_gene_enrichment(r, w, 2000, seed=1)
    c = random_gene_enrichment(r, w, 2000, seed=2)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # set order does not change a set's p value for a given seed
    d = random_gene_enrichment(r, w[:, ::-1], 2000, seed=1)
    np.testing.assert_array_equal(d[::-1], a)
    with pytest.raises(ValueError, match="n_random"):
        random_gene_enrichment(r, w, 0, seed=1)


def test_planted_set_is_enriched_random_sets_are_not():
    """A set whose genes follow the map has small p_spatial; random sets do not."""
    rng = np.random.default_rng(2024)
    n, n_genes, n_perm = 40, 300, 499
    y = rng.normal(size=n)
    x = rng.normal(size=(n, n_genes))
    planted = np.arange(15)
    x[:, planted] += 0.8 * y[:, None]
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    sets = {"planted": planted}
    for i in range(6):
        sets[f"random{i}"] = rng.choice(np.arange(15, n_genes), 15, replace=False)
    w = pd.DataFrame(0.0, index=[f"g{i}" for i in range(n_genes)], columns=list(sets))
    for name, idx in sets.items():
        w.iloc[idx, w.columns.get_loc(name)] = 1.0
    res = correlate_genes(x, y, nulls, set_matrix=w.to_numpy())
    table = enrichment_table(res.r, w, res.null_set_scores, n_random=2000, seed=0).set_index("set")
    assert table.loc["planted", "p_spatial"] <= 2 / (n_perm + 1)
    assert table.loc["planted", "p_random"] <= 2 / 2001
    randoms = table.drop(index="planted")
    assert randoms["p_spatial"].min() > 0.01
    assert randoms["p_spatial"].median() > 0.1
    assert table.index[0] == "planted"


def test_enrichment_table_columns_order_and_q():
    rng = np.random.default_rng(8)
    r = rng.uniform(-1, 1, 40)
    w = pd.DataFrame(_membership(), columns=["A", "B", "C", "D"])
    null = rng.normal(0, 0.3, size=(100, 4))
    t = enrichment_table(r, w, null, n_random=300, seed=3)
    assert list(t.columns) == ["set", "n_genes", "score", "p_spatial", "q_spatial",
                               "p_random", "q_random"]
    assert sorted(t["set"]) == ["A", "B", "C", "D"]
    key = list(zip(t["p_spatial"], -t["score"].abs()))
    assert key == sorted(key)
    by = t.set_index("set").loc[["A", "B", "C", "D"]]
    np.testing.assert_allclose(by["score"], set_scores(r, w))
    np.testing.assert_allclose(by["p_spatial"], spatial_enrichment(r, w, null))
    np.testing.assert_allclose(by["q_spatial"], fdr_bh(by["p_spatial"].to_numpy()))
    np.testing.assert_allclose(by["p_random"], random_gene_enrichment(r, w, 300, 3))
    np.testing.assert_allclose(by["q_random"], fdr_bh(by["p_random"].to_numpy()))
    assert list(by["n_genes"]) == list((w.to_numpy() > 0).sum(axis=0))
    # no random null requested
    t0 = enrichment_table(r, w.to_numpy(), null, n_random=0, set_names=list("ABCD"))
    assert t0["p_random"].isna().all() and t0["q_random"].isna().all()
    with pytest.raises(ValueError, match="set_names"):
        enrichment_table(r, w.to_numpy(), null)
