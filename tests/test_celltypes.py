"""Regional cell-type maps and their comparison with a map, against loops and scipy."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import celltypes
from itx.association import fdr_bh
from itx.genesets import read_gene_sets

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "genesets").is_dir(),
                                reason="../shared/data not available")


def _expression(seed=0, n_regions=25, n_genes=40):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(n_genes)]
    x = pd.DataFrame(rng.normal(size=(n_regions, n_genes)) * rng.uniform(0.5, 3, n_genes)
                     + rng.uniform(-2, 5, n_genes), columns=genes,
                     index=pd.Index([f"R{i}" for i in range(n_regions)], name="region"))
    return x


def test_zscore_matches_scipy_with_missing_regions_and_constant_gene():
    x = _expression()
    x.iloc[3, :] = np.nan          # a region without samples
    x.iloc[7, 5] = np.nan          # one missing value
    x["G9"] = 4.2                  # constant gene
    z = celltypes.zscore_regions(x.reset_index())  # 'region' column accepted
    assert list(z.index) == list(x.index) and list(z.columns) == list(x.columns)
    for g in x.columns:
        if g == "G9":
            assert z[g].isna().all()
            continue
        expect = stats.zscore(x[g].to_numpy(), nan_policy="omit")
        np.testing.assert_allclose(z[g].to_numpy(), expect, rtol=1e-12, atol=1e-12, equal_nan=True)
    assert z.iloc[3].isna().all()


def test_celltype_maps_match_a_loop():
    x = _expression(1)
    x["G0"] = 1.0  # a constant marker: no z, left out of its set's mean
    x.iloc[2, 4] = np.nan
    sets = {
        "A": ["G0", "G1", "G2", "g3", "NOPE"],   # constant, case variant, unknown gene
        "B": ["G4", "G5", "G6", "G4"],            # duplicate
        "C": ["OLD7", "G8", "G9"],                # OLD7 is an alias of G7
        "Tiny": ["G10", "XX"],
    }
    res = celltypes.celltype_maps(x, sets, min_genes=3, aliases={"OLD7": "G7"})
    assert list(res.table.columns) == ["A", "B", "C"] and res.table.index.name == "region"
    rep = res.sets.set_index("set")
    assert rep.loc["A", "n_genes_found"] == 4 and rep.loc["A", "n_genes_used"] == 3
    assert rep.loc["A", "n_missing"] == 1 and rep.loc["C", "n_found_alias"] == 1
    assert not rep.loc["Tiny", "kept"] and rep.loc["Tiny", "n_genes_used"] == 0
    # independent: z per gene with scipy, mean over markers region by region
    markers = {"A": ["G1", "G2", "G3"], "B": ["G4", "G5", "G6"], "C": ["G7", "G8", "G9"]}
    for c, genes in markers.items():
        for i, region in enumerate(x.index):
            zs = [stats.zscore(x[g].to_numpy(), nan_policy="omit")[i] for g in genes]
            zs = [v for v in zs if np.isfinite(v)]
            assert res.table.loc[region, c] == pytest.approx(np.mean(zs), rel=1e-12, abs=1e-12)
    with pytest.raises(ValueError, match="no cell type"):
        celltypes.celltype_maps(x, {"S": ["Q1", "Q2"]}, min_genes=1)


def _brute_p(x, other, nulls, tol=1e-9):
    r = stats.spearmanr(x, other)[0]
    null_r = []
    for k in range(nulls.shape[1]):
        ok = np.isfinite(nulls[:, k])
        null_r.append(stats.spearmanr(nulls[ok, k], other[ok])[0])
    null_r = np.array(null_r)
    null_r = null_r[np.isfinite(null_r)]
    return r, (1 + np.sum(np.abs(null_r) >= abs(r) - tol)) / (1 + null_r.size)


def test_compare_celltypes_matches_scipy_and_brute_force():
    rng = np.random.default_rng(3)
    x = _expression(2, n_regions=30)
    sets = {"A": ["G1", "G2", "G3", "G4"], "B": ["G10", "G11", "G12"], "C": ["G20", "G21", "G22"]}
    table = celltypes.celltype_maps(x, sets, min_genes=3).table
    y = table["A"].to_numpy() + rng.normal(scale=0.3, size=30)
    n_perm = 150
    idx = np.stack([rng.permutation(30) for _ in range(n_perm)], axis=1)
    nulls = y[idx]
    nulls[0, :10] = np.nan  # spins that move a region without data
    out = celltypes.compare_celltypes(pd.Series(y, index=table.index).iloc[::-1], table, nulls,
                                      map_name="disease")
    assert list(out.columns) == ["map", "celltype", "r", "p_spin", "q_spin", "p_naive", "n_regions"]
    assert list(out["celltype"]) == ["A", "B", "C"] and (out["map"] == "disease").all()
    for j, c in enumerate(table.columns):
        r, p = _brute_p(y, table[c].to_numpy(), nulls)
        assert out["r"][j] == pytest.approx(r, abs=1e-12)
        assert out["p_spin"][j] == pytest.approx(p)
        assert out["p_naive"][j] == pytest.approx(stats.spearmanr(y, table[c])[1])
        assert out["n_regions"][j] == 30
    np.testing.assert_allclose(out["q_spin"], fdr_bh(out["p_spin"].to_numpy()))
    assert out["p_spin"][0] < 0.05


def test_compare_celltypes_nan_column_and_errors():
    table = pd.DataFrame({"A": np.arange(6.0), "B": [1, 2, np.nan, 4, 5, 6.0]},
                         index=pd.Index(list("abcdef"), name="region"))
    y = np.array([0.1, 0.5, 0.2, 0.9, 0.4, 1.0])
    nulls = np.stack([np.roll(y, k) for k in range(1, 6)], axis=1)
    out = celltypes.compare_celltypes(y, table, nulls)
    assert np.isfinite(out["r"][0]) and np.isnan(out["r"][1]) and out["n_regions"][1] == 0
    with pytest.raises(ValueError, match="lacks"):
        celltypes.compare_celltypes(pd.Series(y[:5], index=list("abcde")), table, nulls)
    with pytest.raises(ValueError, match="null_maps"):
        celltypes.compare_celltypes(y, table, nulls[:4])


@needs_data
def test_real_seidlitz_classes_on_real_expression():
    expr = DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv"
    if not expr.is_file():
        pytest.skip("AHBA expression table not available")
    df = pd.read_csv(expr, encoding="utf-8-sig").drop(columns="label").set_index("Region")
    df = df.loc[:, ~df.columns.duplicated(keep=False)]  # spreadsheet-mangled duplicates
    cortex = df.loc[df.index.str.startswith("L_")].iloc[:34]
    res = celltypes.celltype_maps(cortex, read_gene_sets(DATA / "genesets" / "celltypes_PSP.csv"),
                                  min_genes=20)
    assert res.table.shape == (34, 7) and np.isfinite(res.table.to_numpy()).all()
    # each class map is a mean of z-scores: centred on 0 over the regions
    np.testing.assert_allclose(res.table.mean(axis=0), 0, atol=1e-9)
    # neuronal classes co-vary across cortex more with each other than with oligodendrocytes
    corr = res.table.corr(method="spearman")
    assert corr.loc["Neuro-Ex", "Neuro-In"] > corr.loc["Neuro-Ex", "Oligo"]


def test_figures(tmp_path):
    from itx import figures

    x = _expression(4, n_regions=34)
    res = celltypes.celltype_maps(x, {"A": ["G1", "G2", "G3"], "B": ["G4", "G5", "G6"]},
                                  min_genes=3)
    out = figures.plot_celltype_maps(res.table, tmp_path / "maps.png", title="demo")
    assert out.stat().st_size > 1000
    table = pd.DataFrame({"celltype": ["A", "B", "C"], "r": [0.5, -0.2, np.nan],
                          "p_spin": [0.001, 0.4, np.nan], "q_spin": [0.003, 0.4, np.nan]})
    out = figures.plot_celltype_comparison(table, tmp_path / "cmp.png")
    assert out.stat().st_size > 1000
    with pytest.raises(ValueError, match="missing"):
        figures.plot_celltype_comparison(table.drop(columns="q_spin"), tmp_path / "x.png")
    with pytest.raises(ValueError, match="finite"):
        figures.plot_celltype_maps(res.table * np.nan, tmp_path / "y.png")


def test_map_celltype_maps_are_zscored_over_the_maps_regions():
    rng = np.random.default_rng(3)
    regions = [f"r{i}" for i in range(12)]
    expr = pd.DataFrame(rng.normal(size=(12, 30)), columns=[f"g{j}" for j in range(30)])
    expr.insert(0, "region", regions)
    sets = {"a": [f"g{j}" for j in range(10)], "b": [f"g{j}" for j in range(10, 25)]}
    used = ["r7", "r2", "r3", "r11", "r0", "r5"]
    got = celltypes.map_celltype_maps(expr, used, sets, 5)
    # independent: z-score each gene over the used regions only (scipy), average per set
    sub = expr.set_index("region").loc[used]
    z = pd.DataFrame(stats.zscore(sub.to_numpy()), index=sub.index, columns=sub.columns)
    for name, genes in sets.items():
        np.testing.assert_allclose(got.table[name].to_numpy(), z[genes].mean(axis=1).to_numpy(),
                                   atol=1e-12)
    assert list(got.table.index) == used
