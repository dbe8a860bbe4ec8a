"""Null calibration study (scripts/tools/calibrate_nulls.py) on a tiny setting."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXPRESSION = Path("/work/shared/data/ahba_parcellated/"
                  "dk83_genes15633_abagen.csv")
needs_data = pytest.mark.skipif(not EXPRESSION.is_file(),
                                reason="../shared/data not available")


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "calibrate_nulls", ROOT / "scripts" / "tools" / "calibrate_nulls.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["calibrate_nulls"] = mod
    spec.loader.exec_module(mod)
    return mod


cal = _load_script()


def test_load_left_dk_reads_bom_and_orders_rows(tmp_path):
    rows = list(range(83, 0, -1))               # shuffled order on disk
    df = pd.DataFrame({"label": rows, "Region": [f"r{i}" for i in rows],
                       "G1": np.arange(83.0), "G2": np.nan})
    df.loc[0, "G1"] = 1.5
    p = tmp_path / "dk.csv"
    p.write_bytes(b"\xef\xbb\xbf" + df.to_csv(index=False).encode())
    got = cal.load_left_dk(p)
    assert list(got.index) == list(range(1, 35))
    assert list(got.columns) == ["G1"]           # all-NaN gene dropped
    np.testing.assert_array_equal(got["G1"], 83 - np.arange(1, 35))
    with pytest.raises(ValueError, match="missing"):
        bad = tmp_path / "bad.csv"
        df[df.label != 7].to_csv(bad, index=False)
        cal.load_left_dk(bad)


def test_smooth_fields_seeded_and_smoother_with_sigma():
    a = cal.smooth_fields(15, 3, seed=1)
    np.testing.assert_array_equal(a, cal.smooth_fields(15, 3, seed=1))
    assert a.shape == (10242, 3)
    # the fields of one sigma do not depend on which other sigmas are run
    b = cal.smooth_fields(60, 3, seed=1)
    import nibabel as nib

    from itx import nulls
    faces = nib.load(nulls.fsaverage5_spheres()[0]).agg_data()[1]
    e = faces[:, :2]

    def edge_corr(f):   # correlation of values across mesh edges
        return np.mean([np.corrcoef(f[e[:, 0], k], f[e[:, 1], k])[0, 1]
                        for k in range(f.shape[1])])

    assert 0.9 < edge_corr(a) < edge_corr(b) < 1.0


def test_summarise_matches_hand_computation():
    fields = pd.DataFrame({
        "method": ["m"] * 4, "sigma": [15, 15, 35, 35], "field": [0, 1, 0, 1],
        "n_genes": [100, 100, 100, 100], "n_reject_0.05": [5, 15, 0, 10],
        "n_reject_0.01": [1, 3, 0, 0]})
    s = cal.summarise(fields, n_perm=50, n_boot=500, seed=0)
    assert list(s.columns) == cal.SUMMARY_COLUMNS
    row = s[(s.sigma == "all") & (s.alpha == 0.05)].iloc[0]
    assert row.fpr == pytest.approx(30 / 400)
    assert row.ci_low <= row.fpr <= row.ci_high
    assert 0.0 <= row.ci_low and row.ci_high <= 0.15
    assert s[(s.sigma == "15") & (s.alpha == 0.01)].fpr.iloc[0] == 0.02
    assert set(s.n_perm) == {50} and set(s.n_fields) == {2, 4}


@needs_data
@pytest.mark.slow      # ~15 s alone, 30 s on a busy 2-core machine
def test_tiny_calibration_naive_liberal_spin_nominal(tmp_path):
    fields, timing = cal.run_calibration(
        EXPRESSION, n_fields=12, sigmas=(35, 60), n_genes=300, n_perm=200,
        methods=["naive", "alexander_bloch", "vertex_spin"], seed=3)
    assert list(fields.columns) == cal.FIELD_COLUMNS
    assert len(fields) == 3 * 2 * 12
    assert (fields.n_genes == 300).all()
    assert "vertex_rotations" in timing
    s = cal.summarise(fields, n_perm=200, seed=0)
    assert len(s) == 3 * 3 * 2                  # methods x (2 sigmas + all) x alphas
    pooled = s[(s.sigma == "all") & (s.alpha == 0.05)].set_index("method")
    # naive p ignores spatial autocorrelation: clearly liberal
    assert pooled.fpr["naive"] > 0.10
    assert pooled.fpr["naive"] > 2 * pooled.fpr["alexander_bloch"]
    # spins near nominal (wide bounds: 24 fields, genes are correlated)
    for m in ("alexander_bloch", "vertex_spin"):
        assert 0.01 < pooled.fpr[m] < 0.10, (m, pooled.fpr[m])
    assert (s.ci_low <= s.fpr).all() and (s.fpr <= s.ci_high).all()
    png = cal.plot_calibration(s, tmp_path / "cal.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dispatch_through_the_registry_equals_each_family():
    """calibrate_nulls makes every null through its registry entry's make();
    the null maps are those of each family's own functions."""
    import warnings

    from itx import compat, nullmodels, nulls, surrogates, vertexspins

    assert set(cal.ALL_METHODS) == {"naive", "permutation"} | set(
        nullmodels.names(part="cortex"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = compat.patch_abagen().fetch_desikan_killiany(surface=True)["image"]
    spheres = nulls.fsaverage5_spheres()
    n_perm, seed = 8, 5
    methods = [m for m in cal.ALL_METHODS if m != "naive"]
    made = cal._Nulls(methods, n_perm, seed, labels, spheres, cal.LEFT_DK)
    field = cal.smooth_fields(35, 1, seed=0, sphere=spheres[0])[:, 0]
    y = vertexspins.vertex_parcel_means((field, None), labels, cal.LEFT_DK)
    rot = vertexspins.vertex_rotations(n_perm, seed, hemispheres="left", sphere_giftis=spheres)
    expect = {
        "permutation": nulls.apply_index(y, np.argsort(
            np.random.default_rng(seed).random((34, n_perm)), 0)),
        "baum": nulls.apply_index(y, nulls.spin_nulls(labels, spheres, cal.LEFT_DK, n_perm,
                                                      "baum", seed, rotations=rot)),
        "cornblath": vertexspins.cornblath_nulls(y, labels, cal.LEFT_DK, rot),
        "vertex_spin": vertexspins.spin_vertex_map((field, None), labels, cal.LEFT_DK, rot),
        "burt2020": surrogates.variogram_surrogates(y, made.dist, n_perm, 99),
        "moran": surrogates.moran_surrogates(y, made.dist, n_perm, 99),
    }
    for m in ("alexander_bloch", "vasa", "hungarian"):
        expect[m] = nulls.apply_index(y, nulls.spin_nulls(labels, spheres, cal.LEFT_DK, n_perm,
                                                          m, seed))
    for m in methods:
        np.testing.assert_array_equal(made.null_values(m, y, field, 99), expect[m], err_msg=m)
