"""Competitive rank test and top-k overlap against exact computations."""
import itertools
import math

import numpy as np
import pandas as pd
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


# --------------------------------------------------------------------------
# the same statistics against scipy and brute-force loops over the same draws
# --------------------------------------------------------------------------


def _draws(seed, n, sizes, n_random):
    """The random sets the tests draw for each set size (same stream, same order)."""
    rng = np.random.default_rng(seed)
    return {int(k): np.concatenate(list(enrichment._random_tuple_blocks(rng, n, int(k), n_random)))
            for k in np.unique(sizes[sizes > 0])}


def _toy(seed=7, n=300):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=n)
    scores[[5, 17]] = np.nan  # genes without a ranking value
    member = np.zeros((n, 4))
    order = np.argsort(-np.nan_to_num(scores, nan=-np.inf))
    member[order[:12], 0] = 1                                   # top genes
    member[rng.choice(n, 25, replace=False), 1] = 1             # random
    member[order[-40:-28], 2] = 1                               # bottom genes, size 12 as set 0
    member[np.r_[order[:5], rng.choice(n, 10, replace=False)], 3] = 1
    return scores, member


@pytest.mark.parametrize("alternative", ["two-sided", "less", "greater"])
def test_rank_enrichment_equals_loop_over_same_draws(alternative):
    scores, member = _toy()
    n_random = 500
    res = enrichment.rank_enrichment(scores, member, n_random, seed=11, alternative=alternative)
    ok = np.isfinite(scores)
    ranks = stats.rankdata(-scores[ok])
    m = member[ok] > 0
    sizes = m.sum(axis=0)
    draws = _draws(11, ok.sum(), sizes, n_random)
    for j in range(m.shape[1]):
        obs = np.median(ranks[m[:, j]])
        null = [np.median(ranks[row]) for row in draws[int(sizes[j])]]
        ge = sum(v >= obs - 1e-9 for v in null)
        le = sum(v <= obs + 1e-9 for v in null)
        p_g, p_l = (1 + ge) / (1 + n_random), (1 + le) / (1 + n_random)
        expect = {"greater": p_g, "less": p_l, "two-sided": min(1, 2 * min(p_g, p_l))}[alternative]
        assert res["median_rank"][j] == obs
        assert res["p_rank"][j] == pytest.approx(expect, abs=1e-15)


@pytest.mark.parametrize("tail", ["top", "bottom"])
def test_overlap_equals_scipy_and_loop_over_same_draws(tail):
    scores, member = _toy(8)
    n_random = 400
    res = enrichment.overlap_enrichment(scores, member, fraction=0.15, tail=tail,
                                        n_random=n_random, seed=13)
    ok = np.isfinite(scores)
    s = scores[ok]
    n = s.size
    n_list = int(np.ceil(0.15 * n))
    in_list = np.zeros(n, bool)
    in_list[np.argsort(-s if tail == "top" else s, kind="stable")[:n_list]] = True
    m = member[ok] > 0
    sizes = m.sum(axis=0)
    draws = _draws(13, n, sizes, n_random)
    for j in range(m.shape[1]):
        x = int((m[:, j] & in_list).sum())
        assert res["overlap"][j] == x and res["n_list"][j] == n_list
        # P(X >= x), X ~ hypergeometric(population n, K set genes, n_list draws)
        assert res["p_hypergeom"][j] == pytest.approx(
            stats.hypergeom(n, sizes[j], n_list).sf(x - 1), rel=1e-12)
        null = [in_list[row].sum() for row in draws[int(sizes[j])]]
        assert res["p_perm"][j] == (1 + sum(v >= x for v in null)) / (1 + n_random)
    if tail == "top":
        assert res["p_hypergeom"][0] < 1e-6
    else:
        assert res["p_hypergeom"][2] < 1e-6


# --------------------------------------------------------------------------
# wired into the per-map enrichment table (itx.analysis.set_enrichment)
# --------------------------------------------------------------------------


def _aligned(seed=0, n_regions=34, n_genes=120, n_perm=60):
    from itx.analysis import Aligned

    rng = np.random.default_rng(seed)
    latent = rng.normal(size=n_regions)
    expr = rng.normal(size=(n_regions, n_genes))
    expr[:, :10] += 2 * latent[:, None]  # a planted set that follows the map
    y = latent + rng.normal(scale=0.3, size=n_regions)
    idx = np.stack([rng.permutation(n_regions) for _ in range(n_perm)], axis=1)
    return Aligned(expression=expr, y=y, nulls=y[idx], genes=[f"G{i}" for i in range(n_genes)],
                   regions=[f"R{i}" for i in range(n_regions)], excluded=None)


def test_set_enrichment_table_carries_rank_and_overlap_columns():
    from itx import analysis, association

    al = _aligned()
    sets = {"up": [f"G{i}" for i in range(10)], "other": [f"G{i}" for i in range(50, 70)],
            "alias": ["OLD1", "G80", "G81", "G82", "G83"]}
    res = analysis.set_enrichment(al, sets, min_genes=5, n_random=300, seed=5,
                                  aliases={"OLD1": "G84"}, rank_alternative="top",
                                  overlap_fraction=0.1)
    t = res.table.set_index("set")
    assert list(res.table.columns) == [
        "set", "n_genes", "score", "p_spatial", "q_spatial", "p_random", "q_random",
        "median_rank", "p_rank", "q_rank", "n_list",
        "overlap_top", "expected_top", "odds_ratio_top", "p_hypergeom_top", "q_hypergeom_top",
        "p_perm_top", "q_perm_top",
        "overlap_bottom", "expected_bottom", "odds_ratio_bottom", "p_hypergeom_bottom",
        "q_hypergeom_bottom", "p_perm_bottom", "q_perm_bottom"]
    assert res.sets.set_index("set").loc["alias", "n_found_alias"] == 1
    # the same numbers as the stage functions with the documented streams
    r = association.correlate_genes(al.expression, al.y, al.nulls).r
    names = ["up", "other", "alias"]
    member = np.zeros((120, 3))
    member[:10, 0] = 1
    member[50:70, 1] = 1
    member[[80, 81, 82, 83, 84], 2] = 1
    rank = enrichment.rank_enrichment(r, member, 300, np.random.SeedSequence([5, 1]),
                                      alternative="less")
    top = enrichment.overlap_enrichment(r, member, 0.1, "top", 300, np.random.SeedSequence([5, 2]))
    bottom = enrichment.overlap_enrichment(r, member, 0.1, "bottom", 300,
                                           np.random.SeedSequence([5, 3]))
    np.testing.assert_array_equal(t.loc[names, "p_rank"], rank["p_rank"])
    np.testing.assert_array_equal(t.loc[names, "median_rank"], rank["median_rank"])
    np.testing.assert_array_equal(t.loc[names, "p_perm_top"], top["p_perm"])
    np.testing.assert_array_equal(t.loc[names, "p_hypergeom_bottom"], bottom["p_hypergeom"])
    np.testing.assert_allclose(t.loc[names, "q_rank"],
                               association.fdr_bh(rank["p_rank"].to_numpy()))
    assert t.loc["up", "p_rank"] < 0.01 and t.loc["up", "overlap_top"] >= 5
    # same seed -> identical table; the tail choice changes only the rank test
    again = analysis.set_enrichment(al, sets, min_genes=5, n_random=300, seed=5,
                                    aliases={"OLD1": "G84"}, rank_alternative="top")
    pd.testing.assert_frame_equal(res.table, again.table)
    two = analysis.set_enrichment(al, sets, min_genes=5, n_random=300, seed=5,
                                  aliases={"OLD1": "G84"}).table.set_index("set")
    pd.testing.assert_frame_equal(two.drop(columns=["p_rank", "q_rank"]),
                                  t.drop(columns=["p_rank", "q_rank"]))
    with pytest.raises(ValueError, match="rank_alternative"):
        analysis.set_enrichment(al, sets, rank_alternative="less")
    with pytest.raises(ValueError, match="ranking"):
        analysis.set_enrichment(al, sets, ranking=np.zeros(3))
