"""Competitive rank test and top-k overlap against exact computations."""
import itertools
import math

import numpy as np
import pytest
from scipy import stats

from itx import enrichment


def test_gene_ranks_match_scipy():
    s = np.array([0.3, np.nan, -0.1, 0.3, 0.9])
    ranks = enrichment.gene_ranks(s)
    ok = ~np.isnan(s)
    np.testing.assert_array_equal(ranks[ok], stats.rankdata(-s[ok]))
    assert np.isnan(ranks[1]) and ranks[4] == 1


def exact_median_rank_p(n, set_ranks, tail):
    """Exact p of a set's median rank over every k-subset of ranks 1..n."""
    k = len(set_ranks)
    obs = np.median(set_ranks)
    meds = np.array([np.median(c) for c in itertools.combinations(range(1, n + 1), k)])
    if tail == "less":
        return np.mean(meds <= obs + 1e-9)
    return np.mean(meds >= obs - 1e-9)


@pytest.mark.parametrize("alternative", ["less", "greater"])
def test_rank_enrichment_matches_exact_null(alternative):
    n = 24
    scores = np.linspace(1, -1, n)  # gene i has rank i + 1
    member = np.zeros((n, 2))
    member[[0, 2, 5, 9, 14], 0] = 1          # towards the top
    member[[3, 8, 12, 19, 23], 1] = 1        # spread / bottom
    res = enrichment.rank_enrichment(scores, member, n_random=40000, seed=1,
                                     alternative=alternative)
    for j in range(2):
        ranks = np.flatnonzero(member[:, j]) + 1
        assert res["median_rank"][j] == np.median(ranks)
        exact = exact_median_rank_p(n, ranks, alternative)
        # Monte Carlo p = (1 + hits) / (1 + n): within 4 binomial SEs of exact
        se = math.sqrt(exact * (1 - exact) / 40000) + 1e-4
        assert abs(res["p_rank"][j] - exact) < 4 * se + 1 / 40001


def test_rank_enrichment_two_sided_and_seed():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=500)
    member = np.zeros((500, 3))
    top = np.argsort(-scores)[:20]
    member[top, 0] = 1
    member[rng.choice(500, 30, replace=False), 1] = 1
    member[rng.choice(500, 20, replace=False), 2] = 1
    a = enrichment.rank_enrichment(scores, member, 2000, seed=5)
    b = enrichment.rank_enrichment(scores, member, 2000, seed=5)
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())
    assert a["p_rank"][0] < 0.01 and a["p_rank"][1] > 0.01
    less = enrichment.rank_enrichment(scores, member, 2000, seed=5, alternative="less")
    greater = enrichment.rank_enrichment(scores, member, 2000, seed=5, alternative="greater")
    np.testing.assert_allclose(a["p_rank"], np.minimum(1, 2 * np.minimum(less["p_rank"],
                                                                         greater["p_rank"])))


def test_overlap_hypergeometric_matches_combinatorics():
    rng = np.random.default_rng(2)
    n = 200
    scores = rng.normal(size=n)
    member = np.zeros((n, 2))
    top20 = np.argsort(-scores)[:20]
    member[top20[:8], 0] = 1
    member[rng.choice(np.setdiff1d(np.arange(n), top20), 12, replace=False), 0] = 1
    member[rng.choice(n, 15, replace=False), 1] = 1
    res = enrichment.overlap_enrichment(scores, member, fraction=0.1, tail="top",
                                        n_random=20000, seed=3)
    assert (res["n_list"] == 20).all()
    for j in range(2):
        K = int(member[:, j].sum())
        x = int(np.isin(np.flatnonzero(member[:, j]), top20).sum())
        assert res["overlap"][j] == x
        exact = sum(math.comb(K, i) * math.comb(n - K, 20 - i)
                    for i in range(x, min(K, 20) + 1)) / math.comb(n, 20)
        assert res["p_hypergeom"][j] == pytest.approx(exact, rel=1e-9)
        assert res["expected"][j] == pytest.approx(K * 20 / n)
        # the permutation p estimates the same tail probability
        assert abs(res["p_perm"][j] - exact) < 4 * math.sqrt(exact * (1 - exact) / 20000) + 1e-3
    a, b = 8, 12
    c, d = 20 - 8, n - 20 - 12
    assert res["odds_ratio"][0] == pytest.approx(a * d / (b * c))


def test_overlap_bottom_tail_and_errors():
    scores = np.arange(10.0)
    member = np.zeros((10, 1))
    member[[0, 1], 0] = 1  # the two lowest scores
    res = enrichment.overlap_enrichment(scores, member, fraction=0.2, tail="bottom")
    assert res["overlap"][0] == 2 and np.isnan(res["p_perm"][0])
    with pytest.raises(ValueError, match="fraction"):
        enrichment.overlap_enrichment(scores, member, fraction=1.5)
    with pytest.raises(ValueError, match="tail"):
        enrichment.overlap_enrichment(scores, member, tail="middle")
    with pytest.raises(ValueError, match="n_random"):
        enrichment.rank_enrichment(scores, member, 0, seed=0)
