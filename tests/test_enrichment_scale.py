"""Gene-set enrichment at GO scale: the streamed spatial null against brute force.

The spatial ensemble null of a set is scored by projecting the expression onto
the sets and counted while the null maps stream past
(itx.association.correlate_genes); these tests compare it with a plain loop
over null maps (scipy correlation of every gene, weighted mean per set), with
NaN null maps, constant genes, weighted sets and sets that lose every gene in
a NaN pattern; and check that sparse and dense memberships give the same
numbers in every test of itx.enrichment.
"""

import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse, stats

from conftest import load_tool
from itx import analysis, enrichment, figures, genesets, tailp
from itx.association import SetNullCounts, correlate_genes, null_set_scores
from test_enrichment import _loop_p as loop_p

ATOL = 1e-9
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITX_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _r(method, a, b):
    return (stats.spearmanr(a, b) if method == "spearman" else stats.pearsonr(a, b))[0]


def _brute_null_scores(x, nulls, w, method):
    """Loop over null maps: correlate each gene on the finite rows, average per set."""
    n_perm, n_sets = nulls.shape[1], w.shape[1]
    out = np.full((n_perm, n_sets), np.nan)
    for j in range(n_perm):
        ok = np.isfinite(nulls[:, j])
        if ok.sum() < 3 or np.ptp(nulls[ok, j]) == 0:
            continue  # undefined null map: no null score
        rn = np.array([_r(method, x[ok, g], nulls[ok, j]) if np.ptp(x[ok, g]) > 0 else np.nan
                       for g in range(x.shape[1])])
        for s in range(n_sets):
            num = den = 0.0
            for g in range(x.shape[1]):
                if w[g, s] > 0 and np.isfinite(rn[g]):
                    num += w[g, s] * rn[g]
                    den += w[g, s]
            if den > 0:
                out[j, s] = num / den
    return out


def _loop_p(obs, null, alternative, atol=ATOL):
    """test_enrichment's loop p, NaN when there is nothing to compare."""
    if np.isnan(obs) or not np.isfinite(null).any():
        return np.nan
    return loop_p(obs, null, alternative, atol)


def _hard_case(seed=0, n=12, n_genes=30, n_perm=40):
    """Data exercising every special case of the set null.

    NaN patterns shared by fewer null maps than they have rows take the
    direct route of the set scores, the others the projection; both appear
    with and without genes undefined in the pattern.
    """
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    x = rng.normal(size=(n, n_genes)) + np.outer(y, np.linspace(-1.5, 1.5, n_genes))
    x[:, ::4] = np.round(x[:, ::4])  # ties
    x[:, 3] = 2.0  # a constant gene
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    nulls[0, [1, 2, 3]] = np.nan  # a shared NaN pattern (direct route)
    nulls[[4, 5], 6] = np.nan  # a pattern of its own
    nulls[2:, 7] = np.nan  # 2 finite rows: undefined
    nulls[:, 8] = np.nan  # all NaN
    nulls[:, 9] = 1.0  # constant null map
    nulls[6:, [10, 11, 24, 25, 26, 27, 28, 29, 30, 31]] = np.nan  # rows 0-5, 10 maps: projection
    x[:6, [0, 1]] = 0.5  # ... where genes 0 and 1 are constant
    nulls[8:, 12] = np.nan  # rows 0-7, one map: direct route ...
    x[:8, 2] = 0.7  # ... where gene 2 is constant
    w = np.zeros((n_genes, 8))
    w[:8, 0] = 1  # contains the constant gene 3
    w[10:22, 1] = 1
    w[[0, 1], 2] = 1  # loses all its genes in rows 0-5
    w[[0, 1, 3], 3] = 1  # and the constant gene: undefined there too
    w[:, 4] = np.where(rng.random(n_genes) < 0.5, rng.random(n_genes), 0.0)  # weighted
    w[[0, 5, 12], 5] = [0.2, 1.0, 3.0]  # weighted, loses gene 0 in rows 0-5
    w[3, 6] = 1  # only the constant gene: undefined score
    w[2, 7] = 2.5  # loses its only gene in rows 0-7 (and 0-5)
    return x, y, nulls, w


@pytest.mark.parametrize("method", ["spearman", "pearson"])
def test_streamed_set_null_matches_brute_force(method):
    x, y, nulls, w = _hard_case()
    expect = _brute_null_scores(x, nulls, w, method)
    assert np.isnan(expect[[7, 8, 9]]).all()  # undefined null maps
    assert np.isnan(expect[[10, 11, 24], 2]).all() and np.isfinite(expect[[0, 12], 2]).all()
    assert np.isnan(expect[12, 7]) and np.isfinite(expect[0, 7])
    ref = correlate_genes(x, y, nulls, method=method)
    for fmt in (np.asarray, sparse.csc_array):
        for block, set_block in ((256, None), (3, 1), (7, 2)):
            res = correlate_genes(x, y, nulls, method=method, set_matrix=fmt(w),
                                  block_size=block, set_block_size=set_block)
            np.testing.assert_allclose(res.null_set_scores, expect, rtol=0, atol=1e-12)
            assert np.array_equal(np.isnan(res.null_set_scores), np.isnan(expect))
            np.testing.assert_array_equal(res.null_set_columns, np.arange(w.shape[1]))
            assert isinstance(res.set_null, SetNullCounts)
            # the gene results are those without sets
            np.testing.assert_array_equal(res.p_spin, ref.p_spin)
            score = enrichment.set_scores(res.r, fmt(w))
            np.testing.assert_array_equal(res.set_null.score, score)
            assert np.isnan(score[6]) and np.isnan(res.set_null.p[6])
            np.testing.assert_array_equal(res.set_null.n_null, np.isfinite(expect).sum(axis=0))
            want = [_loop_p(score[s], expect[:, s], "two-sided") for s in range(w.shape[1])]
            np.testing.assert_array_equal(res.set_null.p, want)
        # the second pass gives the same null scores for any few sets
        some = [4, 2, 0]
        again = null_set_scores(x, y, nulls, fmt(w)[:, some], method=method, block_size=5)
        np.testing.assert_allclose(again, expect[:, some], rtol=0, atol=1e-12)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_counts_follow_alternative_with_ties(alternative):
    x, y, nulls, w = _hard_case(seed=3)
    # the identity permutation gives null scores equal to the observed ones
    # (up to rounding): ties must be counted whatever the summation order
    nulls[:, 20:23] = y[:, None]
    res = correlate_genes(x, y, nulls, set_matrix=sparse.csc_array(w),
                          set_alternative=alternative, block_size=4)
    full = correlate_genes(x, y, nulls, set_matrix=w)
    np.testing.assert_array_equal(
        res.set_null.p, enrichment.spatial_enrichment(res.r, w, full.null_set_scores, alternative))
    score = res.set_null.score
    want = [_loop_p(score[s], full.null_set_scores[:, s], alternative) for s in range(w.shape[1])]
    np.testing.assert_array_equal(res.set_null.p, want)
    assert np.all(res.set_null.n_exceed[np.isfinite(score)] >= 3)


def test_keep_set_nulls_subsets_and_memory_bound():
    import tracemalloc

    rng = np.random.default_rng(5)
    n, n_genes, n_perm, n_sets = 20, 400, 3000, 1500
    x, y = rng.normal(size=(n, n_genes)), rng.normal(size=n)
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    w = sparse.random_array((n_genes, n_sets), density=0.05, rng=rng, format="csc")
    full = correlate_genes(x, y, nulls[:, :300], set_matrix=w)
    part = correlate_genes(x, y, nulls[:, :300], set_matrix=w, keep_set_nulls=[7, 3])
    np.testing.assert_array_equal(part.null_set_scores, full.null_set_scores[:, [7, 3]])
    np.testing.assert_array_equal(part.set_null.p, full.set_null.p)
    none = correlate_genes(x, y, nulls[:, :300], set_matrix=w, keep_set_nulls=False)
    assert none.null_set_scores is None and none.null_set_columns.size == 0
    # no n_perm x n_sets matrix (36 MB here) is held when the nulls are not kept
    tracemalloc.start()
    correlate_genes(x, y, nulls, set_matrix=w, keep_set_nulls=False, set_block_size=100)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 0.35 * n_perm * n_sets * 8
    for bad in ([1, 1], [n_sets], [[1]], ["a"]):
        with pytest.raises(ValueError, match="keep_set_nulls"):
            correlate_genes(x, y, nulls[:, :5], set_matrix=w, keep_set_nulls=bad)
    with pytest.raises(ValueError, match="set_alternative"):
        correlate_genes(x, y, nulls[:, :5], set_matrix=w, set_alternative="both")
    with pytest.raises(ValueError, match="non-negative"):
        correlate_genes(x, y, nulls[:, :5], set_matrix=-w)
    with pytest.raises(ValueError, match="shape"):
        correlate_genes(x, y, nulls[:, :5], set_matrix=w[:10])


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_enrichment_table_from_counts_equals_full_nulls(alternative):
    """p_spatial and the GPD tail from streamed counts = from all null scores."""
    rng = np.random.default_rng(7)
    n, n_genes, n_perm = 30, 200, 800
    y = rng.normal(size=n)
    x = rng.normal(size=(n, n_genes))
    # sets of graded strength, both signs
    x[:, :36] += np.linspace(0.1, 1.2, 36) * y[:, None]
    x[:, 36:72] -= np.linspace(0.1, 1.2, 36) * y[:, None]
    nulls = y[np.argsort(rng.random((n, n_perm)), axis=0)]
    nulls[3, :50] = np.nan
    w = np.zeros((n_genes, 12))
    for s in range(12):
        w[s * 6:s * 6 + 6, s] = 1
    k = int(tailp.tail_size(n_perm)) + 1
    res = correlate_genes(x, y, nulls, set_matrix=sparse.csc_array(w), keep_set_nulls=False,
                          set_alternative=alternative, keep_set_tail=k, block_size=64)
    full = correlate_genes(x, y, nulls, set_matrix=w)
    names = [f"s{i}" for i in range(12)]
    a = enrichment.enrichment_table(res.r, sparse.csc_array(w), res.set_null, n_random=0,
                                    alternative=alternative, set_names=names, tail="gpd")
    b = enrichment.enrichment_table(full.r, w, full.null_set_scores, n_random=0,
                                    alternative=alternative, set_names=names, tail="gpd")
    assert (a["tail_method"] == "gpd").any()  # the tail is exercised
    pd.testing.assert_frame_equal(a.drop(columns=["p_gpd", "q_gpd"]),
                                  b.drop(columns=["p_gpd", "q_gpd"]))
    np.testing.assert_allclose(a["p_gpd"], b["p_gpd"], rtol=1e-9)
    # the counts must be those of the table
    with pytest.raises(ValueError, match="alternative"):
        enrichment.enrichment_table(res.r, w, res.set_null, n_random=0, set_names=names,
                                    alternative="greater" if alternative != "greater" else "less")
    with pytest.raises(ValueError, match="other set scores"):
        enrichment.enrichment_table(res.r, w[:, ::-1], res.set_null, n_random=0,
                                    alternative=alternative, set_names=names)
    plain = correlate_genes(x, y, nulls, set_matrix=w, set_alternative=alternative)
    with pytest.raises(ValueError, match="keep_set_tail"):
        enrichment.enrichment_table(res.r, w, plain.set_null, n_random=0, set_names=names,
                                    alternative=alternative, tail="gpd")


def _go_like(seed=0, n_genes=600, n_sets=300):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 60, n_sets)
    w = np.zeros((n_genes, n_sets))
    for j, k in enumerate(sizes):
        w[rng.choice(n_genes, k, replace=False), j] = 1.0
    w[:, 7] = np.where(rng.random(n_genes) < 0.05, rng.random(n_genes), 0.0)  # weighted
    w[:, 8] = w[:, 9]  # same size and genes: share a random draw
    r = rng.normal(0, 0.2, n_genes)
    r[[2, 40, 41]] = np.nan
    return r, np.asfortranarray(w)


def test_sparse_and_dense_membership_give_identical_numbers():
    r, w = _go_like()
    ws = sparse.csc_array(w)
    np.testing.assert_array_equal(enrichment.set_scores(r, ws[:, :256]),
                                  enrichment.set_scores(r, w[:, :256]))
    np.testing.assert_allclose(enrichment.set_scores(r, ws), enrichment.set_scores(r, w),
                               rtol=0, atol=1e-14)
    for alt in ("two-sided", "greater", "less"):
        np.testing.assert_array_equal(enrichment.random_gene_enrichment(r, ws, 300, 1, alt),
                                      enrichment.random_gene_enrichment(r, w, 300, 1, alt))
        pd.testing.assert_frame_equal(enrichment.rank_enrichment(r, ws, 300, 2, alt),
                                      enrichment.rank_enrichment(r, w, 300, 2, alt))
    for side in ("top", "bottom"):
        pd.testing.assert_frame_equal(enrichment.overlap_enrichment(r, ws, 0.1, side, 300, 3),
                                      enrichment.overlap_enrichment(r, w, 0.1, side, 300, 3))


def test_median_ranks_equal_numpy_median_per_set():
    r, w = _go_like(seed=2)
    ranks = enrichment.gene_ranks(r)
    got = enrichment.rank_enrichment(r, sparse.csc_array(w), 10, 0)["median_rank"].to_numpy()
    want = [np.median(ranks[(w[:, j] > 0) & np.isfinite(ranks)]) for j in range(w.shape[1])]
    np.testing.assert_array_equal(got, want)


def _aligned(seed=0, n_regions=24, n_genes=300, n_perm=200):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n_regions)
    x = rng.normal(size=(n_regions, n_genes))
    x[:, :30] += y[:, None]
    nulls = y[np.argsort(rng.random((n_regions, n_perm)), axis=0)]
    nulls[rng.integers(0, n_regions, n_perm), np.arange(n_perm)] = np.nan  # 1 gap each
    return analysis.Aligned(expression=x, y=y, nulls=nulls, genes=[f"G{i}" for i in range(n_genes)],
                            regions=[f"R{i}" for i in range(n_regions)],
                            excluded=pd.DataFrame(columns=["region", "reason"]), name="m")


def test_set_enrichment_keeps_nulls_of_the_top_sets(monkeypatch):
    al = _aligned()
    rng = np.random.default_rng(1)
    sets = {f"S{j}": [f"G{g}" for g in rng.choice(300, rng.integers(5, 40), replace=False)]
            for j in range(40)}
    sets["planted"] = [f"G{g}" for g in range(25)]
    sets["tiny"] = ["G1", "G2"]  # skipped (min_genes)
    monkeypatch.setattr(analysis, "_MATCH_BLOCK", 7)  # matching in blocks
    top = analysis.set_enrichment(al, sets, min_genes=5, n_random=100, seed=3, n_null_sets=6,
                                  tail="gpd")
    every = analysis.set_enrichment(al, sets, min_genes=5, n_random=100, seed=3,
                                    n_null_sets=None, tail="gpd")
    pd.testing.assert_frame_equal(top.table, every.table)  # the table does not depend on it
    assert top.table["set"].iloc[0] == "planted" and len(top.table) == 41
    assert list(top.null_scores.columns) == list(top.table["set"][:6])
    np.testing.assert_allclose(top.null_scores, every.null_scores[top.null_scores.columns],
                               rtol=0, atol=1e-12)
    assert list(every.null_scores.columns) == list(sets)[:41]  # collection order
    # the matching report is the matcher's, in one piece
    _, report = genesets.match_gene_sets(sets, al.genes, 5)
    pd.testing.assert_frame_equal(top.sets, report)
    # a collection no larger than n_null_sets keeps every set, in its order
    small = {k: sets[k] for k in ("S3", "planted", "S1")}
    res = analysis.set_enrichment(al, small, min_genes=5, n_random=100, seed=3, n_null_sets=3)
    assert list(res.null_scores.columns) == ["S3", "planted", "S1"]
    with pytest.raises(ValueError, match="n_null_sets"):
        analysis.set_enrichment(al, small, n_null_sets=0)


def test_matching_in_blocks_warns_once(monkeypatch):
    genes = ["A", "B", "B", "C", "D", "E", "F"]
    sets = {f"s{j}": ["A", "C", "D", "E", "F"] for j in range(5)}
    monkeypatch.setattr(analysis, "_MATCH_BLOCK", 2)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        member, names, report = analysis._match_sparse(sets, genes, 5, None, None)
    assert sum("more than once" in str(w.message) for w in caught) == 1
    with pytest.warns(UserWarning, match="more than once"):
        dense, want = genesets.match_gene_sets(sets, genes, 5)
    np.testing.assert_array_equal(member.toarray(), dense.to_numpy())
    assert names == list(dense.columns)
    pd.testing.assert_frame_equal(report, want)


def test_figures_show_the_top_sets(tmp_path):
    rng = np.random.default_rng(4)
    names = [f"set{i}" for i in range(30)]
    table = pd.DataFrame({"set": names, "score": rng.normal(size=30),
                          "p_spatial": rng.uniform(size=30)})
    table["q_spatial"] = table["p_spatial"]
    table.loc[5, "p_spatial"] = table["p_spatial"].min()  # a tie: larger |score| first
    order = np.lexsort((np.arange(30), -table["score"].abs(), table["p_spatial"]))
    top = [names[i] for i in order[:8]]
    assert figures._top_sets(names, table["score"], table["p_spatial"], 8) == top
    nulls = pd.DataFrame(rng.normal(size=(100, 8)), columns=top)  # the top sets only
    obs = table.set_index("set")["score"]
    p = table.set_index("set")["p_spatial"]
    figures.plot_null_distributions(obs, nulls, tmp_path / "n.png", p_values=p, max_sets=8)
    with pytest.raises(ValueError, match="missing from null_scores"):
        figures.plot_null_distributions(obs, nulls, tmp_path / "n.png", p_values=p, max_sets=9)
    with pytest.raises(ValueError, match="max_sets"):
        figures.plot_null_distributions(obs, nulls, tmp_path / "n.png", max_sets=0)
    a = figures.plot_enrichment_bars(table, tmp_path / "a.png", max_sets=8)
    b = figures.plot_enrichment_bars(table, tmp_path / "b.png")
    from PIL import Image

    assert Image.open(a).size[1] < Image.open(b).size[1]  # 8 bars, not 30


@pytest.mark.skipif(not (DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv").exists()
                    or not (DATA / "genesets" / "celltypes_PSP.csv").exists(),
                    reason="../shared/data not available")
def test_real_dk_table_and_seidlitz_classes_match_dense_reference():
    """15,633 real genes x 7 cell classes: streamed counts = the dense null-score route."""
    from itx.association import _set_means, _standardise

    expr = pd.read_csv(DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv",
                       encoding="utf-8-sig").set_index("Region").drop(columns=["label"])
    expr = expr.loc[[r for r in expr.index if r.startswith("L_")]].dropna()
    expr = expr.loc[:, ~expr.columns.duplicated(keep=False)]
    rng = np.random.default_rng(0)
    n = len(expr)
    y = expr.iloc[:, :50].mean(axis=1).to_numpy() + rng.normal(0, 0.01, n)
    nulls = y[np.argsort(rng.random((n, 400)), axis=0)]
    nulls[rng.integers(0, n, 100), np.arange(100)] = np.nan  # 100 null maps with a gap
    sets = genesets.read_gene_sets(DATA / "genesets" / "celltypes_PSP.csv")
    member, _ = genesets.match_gene_sets(sets, list(expr.columns), 5)
    x = expr.to_numpy(float)
    res = correlate_genes(x, y, nulls, set_matrix=sparse.csc_array(member.to_numpy()),
                          keep_set_nulls=False)
    # the dense route: every null gene correlation, then set means (finite nulls only)
    full = np.isfinite(nulls).all(axis=0)
    zx, _ = _standardise(x, True)
    zb, _ = _standardise(nulls[:, full], True)
    ref = _set_means(zx.T @ zb, member.to_numpy(float))
    dense = correlate_genes(x, y, nulls, set_matrix=member.to_numpy(float))
    np.testing.assert_allclose(dense.null_set_scores[full], ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(
        res.set_null.p, enrichment.spatial_enrichment(res.r, member, dense.null_set_scores))
    np.testing.assert_array_equal(res.set_null.score, enrichment.set_scores(res.r, member))


def test_benchmark_runs_tiny():
    bench = load_tool("bench_enrichment_go")
    out = bench.main(["--genes", "300", "--sets", "40", "--nulls", "120", "--regions", "20",
                      "--n-random", "50", "--max-size", "30", "--top", "5", "--gaps", "1"])
    assert out["n_sets"] == 40 and len(out["null_columns"]) == 5
    assert out["t_spatial"] > 0 and out["ratio"] > 0 and out["peak_whole_mib"] > 0
    assert isinstance(out, dict) and set(out) >= {"t_mm", "t_random", "t_rank", "t_overlap"}


def _run_rule(script, smk):
    import runpy
    import sys

    stderr = sys.stderr
    try:
        runpy.run_path(str(ROOT / "scripts" / "rules" / script), init_globals={"snakemake": smk})
    finally:
        sys.stderr = stderr  # log_to_file redirects it


@pytest.mark.parametrize("n_null_sets", [None, 4])
def test_rule_scripts_write_and_draw_the_top_sets(tmp_path, n_null_sets):
    from snakemake.iocontainers import Namedlist

    from itx import nullmaps
    from itx.tables import write_tsv

    al = _aligned(n_perm=120)
    rng = np.random.default_rng(2)
    write_tsv(pd.DataFrame(al.expression, columns=al.genes).assign(region=al.regions)
              [["region"] + al.genes], tmp_path / "expression.tsv")
    write_tsv(pd.DataFrame({"region": al.regions, "value": al.y}), tmp_path / "map.tsv")
    nullmaps.save_null_maps(tmp_path / "nulls.npz", al.nulls, al.regions, "vasa", 1)
    big = {f"S{j}": list(rng.choice(al.genes, 12, replace=False)) for j in range(25)}
    small = {k: big[k] for k in ("S0", "S1", "S2")}
    for name, sets in (("big", big), ("small", small)):
        (tmp_path / f"{name}.gmt").write_text(
            "".join(f"{k}\tna\t" + "\t".join(v) + "\n" for k, v in sets.items()))
        out = tmp_path / name
        params = dict(method="spearman", min_genes=5, n_random=50, alternative="two-sided",
                      seed=1, rank_alternative="two-sided", overlap_fraction=0.1, tail="none")
        if n_null_sets is not None:
            params["n_null_sets"] = n_null_sets
        smk = type("Snakemake", (), {})()
        smk.input = Namedlist(fromdict={"expression": str(tmp_path / "expression.tsv"),
                                        "map": str(tmp_path / "map.tsv"),
                                        "nulls": str(tmp_path / "nulls.npz"),
                                        "genesets": str(tmp_path / f"{name}.gmt"),
                                        "aliases": []})
        smk.output = Namedlist(fromdict={"table": str(out / "t.tsv"), "sets": str(out / "s.tsv"),
                                         "nulls": str(out / "n.tsv.gz")})
        smk.params = Namedlist(fromdict=params)
        smk.wildcards = Namedlist(fromdict={"map": "m"})
        smk.log = [str(tmp_path / "rule.log")]
        _run_rule("rule_enrichment.py", smk)
        table = pd.read_csv(out / "t.tsv", sep="\t")
        nulls = pd.read_csv(out / "n.tsv.gz", sep="\t")
        n = 20 if n_null_sets is None else n_null_sets
        if len(sets) <= n:
            assert list(nulls.columns) == list(sets)  # every set, collection order
        else:
            assert list(nulls.columns) == list(table["set"][:n])
        assert len(table) == len(sets) and len(nulls) == 120
        smk.input = Namedlist(fromdict={"table": str(out / "t.tsv"),
                                        "nulls": str(out / "n.tsv.gz")})
        smk.output = Namedlist(fromdict={"bars": str(out / "bars.png"),
                                         "nulls": str(out / "nulls.png")})
        _run_rule("rule_enrichment_figures.py", smk)
        assert (out / "bars.png").stat().st_size > 0 and (out / "nulls.png").stat().st_size > 0
