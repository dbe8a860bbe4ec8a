"""Joint models of a map on its cell-type maps (itx.celltype_models) and partial
correlations given covariate maps (itx.partial): the workflow's wrappers."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import analysis, celltype_models, partial


def _problem(n=40, k=4, n_perm=200, seed=0):
    rng = np.random.default_rng(seed)
    regions = [f"r{i}" for i in range(n)]
    x = pd.DataFrame(rng.normal(size=(n, k)), index=regions,
                     columns=[f"type{j}" for j in range(k)])
    y = pd.Series(x.to_numpy() @ np.arange(1, k + 1) * 0.5 + rng.normal(size=n), index=regions)
    nulls = np.column_stack([rng.permutation(y.to_numpy()) for _ in range(n_perm)])
    return y, x, nulls


def _z(a):
    a = np.asarray(a, float)
    return (a - a.mean(0)) / a.std(0, ddof=1)


def test_models_match_least_squares_and_fill_every_row():
    y, x, nulls = _problem()
    terms, dom = celltype_models.celltype_models(y, x, nulls, map_name="m", collection="c")
    assert list(terms.columns) == celltype_models.TERM_COLUMNS
    assert list(dom.columns) == celltype_models.DOMINANCE_COLUMNS
    assert terms["term"].tolist() == ["intercept"] + list(x.columns)
    # independent: standardised betas and R2 by lstsq
    design = np.column_stack([np.ones(len(y)), _z(x)])
    beta, *_ = np.linalg.lstsq(design, _z(y), rcond=None)
    np.testing.assert_allclose(terms["beta"].to_numpy()[1:], beta[1:], atol=1e-12)
    resid = _z(y) - design @ beta
    r2 = 1 - resid @ resid / (_z(y) @ _z(y))
    np.testing.assert_allclose(terms["model_r2"], r2, atol=1e-12)
    np.testing.assert_allclose(dom["dominance"].sum(), r2, atol=1e-12)
    np.testing.assert_allclose(dom["share"].sum(), 100, atol=1e-9)
    # brute-force null p of R2: refit on every null map
    r2_null = []
    for j in range(nulls.shape[1]):
        b, *_ = np.linalg.lstsq(design, _z(nulls[:, j]), rcond=None)
        e = _z(nulls[:, j]) - design @ b
        r2_null.append(1 - e @ e / (_z(nulls[:, j]) @ _z(nulls[:, j])))
    p = (1 + np.sum(np.array(r2_null) >= r2 - 1e-9)) / (1 + nulls.shape[1])
    np.testing.assert_allclose(terms["model_p_spin"], p)
    assert (terms["note"] == "").all() and (dom["note"] == "").all()
    assert set(terms["map"]) == {"m"} and set(dom["collection"]) == {"c"}


def test_notes_instead_of_failures():
    y, x, nulls = _problem(k=5)
    # more cell types than max_predictors: regression yes, dominance no
    terms, dom = celltype_models.celltype_models(y, x, nulls, map_name="m", collection="c",
                                                 max_predictors=3)
    assert np.isfinite(terms["beta"].iloc[1:]).all()
    assert dom["dominance"].isna().all()
    assert dom["note"].iloc[0].startswith("dominance not computed: 5 cell types > "
                                          "multivariate.max_predictors (3; 31 models)")
    # a collinear cell type: both models say why
    xc = x.assign(type4=x["type0"] + x["type1"])
    terms, dom = celltype_models.celltype_models(y, xc, nulls, map_name="m", collection="c")
    assert terms["beta"].isna().all() and "regression not fitted" in terms["note"].iloc[0]
    assert "linear combination" in terms["note"].iloc[0]
    assert "dominance not computed" in dom["note"].iloc[0]
    # a cell type without values in some regions is left out and named
    xn = x.copy()
    xn.iloc[3, 2] = np.nan
    terms, dom = celltype_models.celltype_models(y, xn, nulls, map_name="m", collection="c")
    assert "type2" not in terms["term"].tolist()
    assert "left out (no value in some regions): type2" in terms["note"].iloc[0]
    assert np.isfinite(dom["dominance"]).all()
    # too few regions for the cell types
    small = celltype_models.celltype_models(y.iloc[:5], x.iloc[:5], nulls[:5], map_name="m",
                                            collection="c")[0]
    assert "regression not fitted" in small["note"].iloc[0]


def test_figure_written_for_models_and_for_notes(tmp_path):
    y, x, nulls = _problem()
    terms, dom = celltype_models.celltype_models(y, x, nulls, map_name="m", collection="c")
    out = celltype_models.plot_celltype_models(terms, dom, tmp_path / "a.png", title="m ~ c")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    terms, dom = celltype_models.celltype_models(y, x.assign(t=x["type0"] * 2), nulls,
                                                 map_name="m", collection="c")
    assert celltype_models.plot_celltype_models(terms, dom, tmp_path / "b.png").stat().st_size


def _aligned(n=30, genes=50, n_perm=100, seed=1):
    rng = np.random.default_rng(seed)
    expr = rng.normal(size=(n, genes))
    y = expr[:, 0] + rng.normal(size=n)
    nulls = np.column_stack([rng.permutation(y) for _ in range(n_perm)])
    return analysis.Aligned(expression=expr, y=y, nulls=nulls,
                            genes=[f"g{i}" for i in range(genes)],
                            regions=[f"r{i}" for i in range(n)], excluded=pd.DataFrame(),
                            name="m")


def test_partial_genes_leaves_out_regions_without_covariates():
    a = _aligned()
    rng = np.random.default_rng(5)
    cov_map = pd.DataFrame({"region": a.regions[::-1] + ["extra"],
                            "value": list(rng.normal(size=len(a.regions))) + [9.0]})
    cov_map.loc[cov_map["region"] == "r3", "value"] = np.nan
    cov = partial.covariate_table([cov_map], ["area"], a.regions)
    assert list(cov.index) == a.regions and cov.loc["r3", "area"] != cov.loc["r3", "area"]
    table = partial.partial_genes(a, cov, method="pearson")
    keep = np.array([r != "r3" for r in a.regions])
    assert (table["n_regions"] == keep.sum()).all()
    # independent: residual regression on the kept regions, then pearsonr
    c = cov["area"].to_numpy()[keep]
    design = np.column_stack([np.ones(keep.sum()), c])

    def resid(v):
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    ry = resid(a.y[keep])
    for g in (0, 7, 33):
        r, _ = stats.pearsonr(resid(a.expression[keep, g]), ry)
        np.testing.assert_allclose(table["r_partial"].iloc[g], r, atol=1e-12)
    with pytest.raises(ValueError, match="only 3 regions have the map"):
        partial.partial_genes(a, cov.where(np.arange(len(cov))[:, None] < 4), method="pearson")
    with pytest.raises(ValueError, match="rows of aligned.regions"):
        partial.partial_genes(a, cov.iloc[::-1], method="pearson")


def test_partial_figure(tmp_path):
    a = _aligned()
    cov = pd.DataFrame({"area": np.linspace(0, 1, len(a.regions))}, index=a.regions)
    table = partial.partial_genes(a, cov)
    genes = pd.DataFrame({"gene": a.genes, "r": np.linspace(-0.5, 0.5, len(a.genes))})
    out = partial.plot_partial_vs_plain(table, genes, tmp_path / "p.png", title="m given area")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
