"""itx.robustness: donor subsets against the expression rule, pandas and brute-force loops."""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import build_demo_cache
from itx import analysis, robustness
from itx.association import correlate_genes
from itx.tables import read_tsv, write_tsv

DONORS = ["9861", "10021", "12876", "14380", "15496"]
N_PERM = 199


def _brute_aggregate(tables, donors, metric):
    """The across-donor step of itx.expression._process, on the region-indexed tables."""
    frames = [tables[d].set_index("region") for d in donors]
    agg = pd.concat(frames).groupby(level=0, sort=False).agg(metric)
    agg = agg.reindex(frames[0].index)
    drop = agg.dropna(axis=0, how="all").isna().any(axis=0)
    return agg.drop(columns=drop[drop].index)


@pytest.fixture(scope="module")
def synthetic():
    """Five donors over 16 scope regions (+4 outside) and 30 genes with planted gaps."""
    rng = np.random.default_rng(7)
    regions = [f"L_r{i}" for i in range(16)] + [f"R_r{i}" for i in range(4)]
    genes = [f"G{i}" for i in range(30)]
    base = rng.normal(size=(len(regions), len(genes)))
    tables = {}
    for k, d in enumerate(DONORS):
        values = base + 0.7 * rng.normal(size=base.shape)
        missing = rng.random(len(regions)) < 0.15
        if k == 0:
            missing = np.arange(len(regions)) >= 5  # covers only 5 regions: excluded alone
        values[missing] = np.nan
        tables[d] = pd.DataFrame(values, columns=genes).assign(region=regions)[["region"] + genes]
    for d in DONORS:
        tables[d].loc[tables[d]["region"] == "L_r15", genes] = np.nan  # no sample in any donor
    # a region only donor 10021 covers, where it lacks gene G3: G3 leaves the subsets with 10021
    for d in DONORS:
        if d != "10021":
            tables[d].loc[tables[d]["region"] == "L_r14", genes] = np.nan
    tables["10021"].loc[tables["10021"]["region"] == "L_r14", genes] = 0.5
    tables["10021"].loc[tables["10021"]["region"] == "L_r14", "G3"] = np.nan
    scope = regions[:16]
    y = rng.normal(size=len(regions)) + base[:, :5].mean(axis=1)
    y[regions.index("L_r2")] = np.nan  # no map value
    map_values = pd.DataFrame({"region": regions, "value": y})
    y_scope = y[:16]
    perms = np.stack([rng.permutation(16) for _ in range(N_PERM)], axis=1)
    nulls = y_scope[perms]  # float null maps over the scope, NaN carried along
    sets = {"first": ["G0", "G1", "G2", "G3", "G4", "G5"], "second": genes[10:22],
            "small": ["G25", "G26", "X1"], "aliased": ["g7", "G8", "G9", "G10", "G11"]}
    return dict(tables=tables, map=map_values, nulls=nulls, scope=scope,
                collections={"c1": sets}, genes=genes)


def _run(s, **kw):
    kw = {"min_genes": 3, "min_fraction": 0.5, **kw}
    return robustness.donor_robustness(s["tables"], s["map"], s["nulls"], s["scope"],
                                       s["collections"], **kw)


@pytest.mark.parametrize("metric", ["mean", "median"])
def test_subset_aggregation_equals_pandas_groupby(synthetic, metric):
    tables = synthetic["tables"]
    subsets = robustness.donor_subsets(tables, metric, min_fraction=0.01)
    assert [s.name for s in subsets] == (["all"] + [f"without_{d}" for d in DONORS]
                                         + [f"only_{d}" for d in DONORS])
    for s in subsets:
        want = _brute_aggregate(tables, list(s.donors), metric)
        got = robustness.aggregate_donors(tables, metric, s.donors).set_index("region")
        assert list(got.columns) == list(want.columns)
        np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-13, atol=1e-15)
        if s.included:
            pd.testing.assert_frame_equal(s.expression, got.reset_index())
    # G3 is dropped exactly where 10021 (the only donor at L_r14, without G3) is aggregated
    by = {s.name: s for s in subsets}
    assert "G3" not in by["all"].expression.columns
    assert "G3" in robustness.aggregate_donors(tables, metric, ["9861", "12876"]).columns
    assert "G3" in by["without_10021"].expression.columns


def test_leave_one_out_is_a_loop_over_the_other_donors(synthetic):
    tables = synthetic["tables"]
    for left in DONORS:
        got = robustness.aggregate_donors(tables, "mean", [d for d in DONORS if d != left])
        got = got.set_index("region")
        for region in got.index:
            for gene in got.columns:
                vals = [tables[d].set_index("region").at[region, gene]
                        for d in DONORS if d != left]
                vals = [v for v in vals if np.isfinite(v)]
                want = np.mean(vals) if vals else np.nan
                assert got.at[region, gene] == pytest.approx(want, rel=1e-13, nan_ok=True)


@pytest.fixture(scope="module")
def demo_tables(tmp_path_factory):
    """The expression rule's tables on small demo donors, written and read back as files."""
    from itx import atlas as atlases
    from itx import demo, expression

    data = tmp_path_factory.mktemp("ahba")
    demo.generate_donors(data, seed=3, samples_per_donor=60)
    dk = atlases.load_atlas("dk", "desikan_killiany")
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    res = expression.process_ahba(dk.volume, info, cache_dir=build_demo_cache(data))
    tables = expression.output_tables(res, dk.info)
    out = tmp_path_factory.mktemp("results")
    write_tsv(tables["expression"], out / "expression.tsv")
    for d, t in tables["donors"].items():
        write_tsv(t, out / f"expression_{d}.tsv")
    files = {d: read_tsv(out / f"expression_{d}.tsv") for d in tables["donors"]}
    return tables, files, read_tsv(out / "expression.tsv")


def test_all_donor_matrix_reproduces_the_expression_rule(demo_tables):
    tables, files, written = demo_tables
    # in memory: the rule's own frames
    agg = robustness.aggregate_donors(tables["donors"], "mean")
    want = tables["expression"]
    assert list(agg.columns) == list(want.columns)
    assert agg["region"].tolist() == want["region"].tolist()
    np.testing.assert_allclose(agg.iloc[:, 1:].to_numpy(float), want.iloc[:, 1:].to_numpy(float),
                               rtol=1e-12, atol=1e-15)
    # from the files, as the rule reads them (10 significant digits)
    robustness.check_matches_expression(robustness.aggregate_donors(files, "mean"), written)
    bad = written.copy()
    bad.iloc[3, 5] += 1e-3
    with pytest.raises(ValueError, match="differs from expression.tsv"):
        robustness.check_matches_expression(robustness.aggregate_donors(files, "mean"), bad)
    with pytest.raises(ValueError, match="different genes"):
        robustness.check_matches_expression(robustness.aggregate_donors(files, "mean"),
                                            written.drop(columns=written.columns[7]))


def test_gene_r_and_p_equal_correlate_genes_on_brute_force_matrices(synthetic):
    res = _run(synthetic)
    y_all = synthetic["map"].set_index("region")["value"]
    for s in res.subsets:
        if not s.included:
            continue
        m = _brute_aggregate(synthetic["tables"], list(s.donors), "mean")
        m = m.loc[synthetic["scope"]]
        used = m.notna().all(axis=1).to_numpy() & np.isfinite(y_all.loc[synthetic["scope"]])
        used = np.asarray(used, bool)
        ref = correlate_genes(m.to_numpy()[used], y_all.loc[synthetic["scope"]].to_numpy()[used],
                              synthetic["nulls"][used])
        got = res.gene_tables[s.name].set_index("gene").loc[list(m.columns)]
        np.testing.assert_allclose(got["r"], ref.r, rtol=1e-12)
        np.testing.assert_array_equal(got["p_spin"], ref.p_spin)
        assert s.n_regions == used.sum()
        # r itself against scipy
        col = m.columns[0]
        rho = stats.spearmanr(m[col].to_numpy()[used],
                              y_all.loc[synthetic["scope"]].to_numpy()[used])[0]
        assert got.at[col, "r"] == pytest.approx(rho, abs=1e-12)
    # the summary columns, recomputed
    all_r = res.gene_tables["all"].set_index("gene")["r"]
    for _, row in res.genes[res.genes["included"]].iterrows():
        g = res.gene_tables[row["subset"]].set_index("gene")
        common = g.index.intersection(all_r.index)
        assert row["r_vs_all"] == pytest.approx(
            stats.pearsonr(g.loc[common, "r"], all_r.loc[common])[0], abs=1e-12)
        assert row["frac_p05"] == pytest.approx(np.mean(g["p_spin"] < 0.05))
        assert row["n_genes"] == len(g)
    assert res.genes.loc[res.genes["subset"] == "all", "r_vs_all"].item() == pytest.approx(1.0)


def _loop_spearman_null(x, nulls):
    """Null correlations of one gene with every null map, over each map's finite rows."""
    out = np.full(nulls.shape[1], np.nan)
    for j in range(nulls.shape[1]):
        ok = np.isfinite(nulls[:, j])
        if ok.sum() >= 3 and np.ptp(x[ok]) > 0:
            out[j] = stats.spearmanr(x[ok], nulls[ok, j])[0]
    return out


def test_set_scores_and_p_equal_member_means_and_a_loop(synthetic):
    res = _run(synthetic)
    table = res.sets["c1"]
    y_all = synthetic["map"].set_index("region")["value"].loc[synthetic["scope"]].to_numpy()
    for name in ("all", "without_12876", "only_12876"):
        s = next(x for x in res.subsets if x.name == name)
        m = _brute_aggregate(synthetic["tables"], list(s.donors), "mean").loc[synthetic["scope"]]
        used = m.notna().all(axis=1).to_numpy() & np.isfinite(y_all)
        r = res.gene_tables[name].set_index("gene")["r"]
        rows = table[table["subset"] == name].set_index("set")
        for set_name, members in synthetic["collections"]["c1"].items():
            found = [g for g in m.columns if g.casefold() in {x.casefold() for x in members}]
            if len(found) < 3:
                assert set_name not in rows.index or np.isnan(rows.at[set_name, "score"])
                continue
            score = np.mean([r[g] for g in found])
            assert rows.at[set_name, "score"] == pytest.approx(score, abs=1e-12)
            assert rows.at[set_name, "n_genes"] == len(found)
            null = np.nanmean([_loop_spearman_null(m[g].to_numpy()[used],
                                                   synthetic["nulls"][used]) for g in found],
                              axis=0)
            ok = np.isfinite(null)
            p = (1 + np.sum(np.abs(null[ok]) >= abs(score) - 1e-9)) / (1 + ok.sum())
            assert rows.at[set_name, "p_spatial"] == pytest.approx(p, abs=1e-12)
    # the alias-free case-insensitive match found g7 -> G7
    assert table.loc[table["set"] == "aliased", "n_genes"].iloc[0] == 5
    # all-donor columns, deltas and agreement
    ref = table[table["subset"] == "all"].set_index("set")
    for _, row in table.iterrows():
        assert row["score_all"] == ref.at[row["set"], "score"]
        assert row["delta_score"] == pytest.approx(row["score"] - row["score_all"])
        assert row["agrees"] == ((row["p_spatial"] < 0.05) == (row["p_spatial_all"] < 0.05))
    assert (ref["delta_score"] == 0).all() and ref["agrees"].all()
    assert set(table["subset"]) == {s.name for s in res.subsets if s.included}
    assert "small" not in set(table["set"])  # 2 genes found: below min_genes everywhere


def test_all_donor_sets_equal_the_enrichment_stage(synthetic):
    res = _run(synthetic)
    full = robustness.aggregate_donors(synthetic["tables"])
    aligned = analysis.align(full, synthetic["map"], synthetic["nulls"], synthetic["scope"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        enr = analysis.set_enrichment(aligned, synthetic["collections"]["c1"], min_genes=3,
                                      n_random=10).table.set_index("set")
    mine = res.sets["c1"][res.sets["c1"]["subset"] == "all"].set_index("set")
    np.testing.assert_allclose(mine["score"], enr.loc[mine.index, "score"], rtol=1e-12)
    np.testing.assert_array_equal(mine["p_spatial"], enr.loc[mine.index, "p_spatial"])
    genes = analysis.gene_association(aligned)
    pd.testing.assert_frame_equal(res.gene_tables["all"], genes[res.gene_tables["all"].columns])


def test_subsets_with_too_few_regions_are_excluded(synthetic):
    res = _run(synthetic)
    g = res.genes.set_index("subset")
    assert not g.at["only_9861", "included"]
    assert "fewer than" in g.at["only_9861", "reason"]
    assert np.isnan(g.at["only_9861", "r_vs_all"])
    assert "only_9861" not in set(res.sets["c1"]["subset"])
    assert g.at["all", "included"] and g.at["without_9861", "included"]
    n_all = g.at["all", "n_regions"]
    for name in g.index[g["included"].to_numpy(bool)]:
        assert g.at[name, "n_regions"] >= 0.5 * n_all
    # every subset must cover every region: only those that lose none stay
    strict = _run(synthetic, min_fraction=1.0).genes.set_index("subset")
    kept = strict.index[strict["included"].to_numpy(bool)]
    assert (strict.loc[kept, "n_regions"] == n_all).all()
    assert len(kept) < len(g)


def test_deterministic_and_bad_input(synthetic, tmp_path):
    a, b = _run(synthetic), _run(synthetic)
    pd.testing.assert_frame_equal(a.genes, b.genes)
    pd.testing.assert_frame_equal(a.sets["c1"], b.sets["c1"])
    tables = dict(synthetic["tables"])
    with pytest.raises(ValueError, match="agg_metric"):
        robustness.aggregate_donors(tables, "max")
    with pytest.raises(ValueError, match="min_fraction"):
        robustness.donor_subsets(tables, min_fraction=0)
    tables["15496"] = tables["15496"].drop(columns="G29")
    with pytest.raises(ValueError, match="different genes"):
        robustness.aggregate_donors(tables)
    with pytest.raises(ValueError, match="no 'region' column"):
        robustness.aggregate_donors({"1": synthetic["tables"]["9861"].drop(columns="region")})


def test_figure(synthetic, tmp_path):
    res = _run(synthetic)
    out = robustness.plot_donor_robustness(res.sets["c1"], tmp_path / "donors.png", title="t")
    assert out.exists() and out.stat().st_size > 5000
    with pytest.raises(ValueError, match="missing columns"):
        robustness.plot_donor_robustness(res.genes, tmp_path / "x.png")
