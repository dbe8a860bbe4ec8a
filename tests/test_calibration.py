"""Null calibration study (scripts/tools/calibrate_nulls.py) on a tiny setting."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import load_tool

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ITX_SHARED_DATA", ROOT.parent / "shared" / "data"))
EXPRESSION = DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv"
needs_data = pytest.mark.skipif(not EXPRESSION.is_file(),
                                reason="../shared/data not available")


def _load_script():
    return load_tool("calibrate_nulls")


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
    # an older table without the key columns is DK left, no drop
    assert set(s.atlas) == {"desikan_killiany"} and set(s.hemispheres) == {"left"}
    assert set(s.drop_distorted) == {0.0}


def test_summarise_keeps_settings_apart():
    base = {"sigma": [35] * 2, "field": [0, 1], "n_genes": [100, 100],
            "n_reject_0.05": [5, 5], "n_reject_0.01": [1, 1]}
    parts = []
    for atlas, hemi, drop, k in [("schaefer100", "left", 0.0, 5), ("schaefer100", "both", 0.0, 9),
                                 ("schaefer100", "both", 0.5, 7)]:
        d = pd.DataFrame(base | {"n_reject_0.05": [k, k]})
        d.insert(0, "method", "baum")
        d.insert(0, "drop_distorted", drop)
        d.insert(0, "hemispheres", hemi)
        d.insert(0, "atlas", atlas)
        parts.append(d)
    s = cal.summarise(pd.concat(parts), n_perm=10, n_boot=50)
    assert list(s.columns[:4]) == ["atlas", "hemispheres", "drop_distorted", "method"]
    pooled = s[(s.sigma == "all") & (s.alpha == 0.05)].set_index(
        ["hemispheres", "drop_distorted"]).fpr
    assert pooled[("left", 0.0)] == 0.05 and pooled[("both", 0.0)] == 0.09
    assert pooled[("both", 0.5)] == 0.07


def test_drop_effect_is_a_paired_difference():
    rows = []
    for drop, k in ((0.0, [10, 20, 30]), (0.5, [8, 20, 26])):
        for f, kk in enumerate(k):
            rows.append(["schaefer100", "left", drop, "vasa", 35, f, 100, kk, 1])
    rows.append(["schaefer100", "left", 0.0, "naive", 35, 0, 100, 50, 9])
    fields = pd.DataFrame(rows, columns=cal.FIELD_COLUMNS)
    e = cal.drop_effect(fields, n_boot=300, seed=1)
    assert list(e.columns) == cal.DROP_COLUMNS
    row = e[e.alpha == 0.05].iloc[0]
    assert (row.method, row.drop_distorted, row.n_fields) == ("vasa", 0.5, 3)
    assert row.fpr_all == pytest.approx(0.2) and row.fpr_kept == pytest.approx(0.18)
    assert row.difference == pytest.approx(-0.02)
    # paired: the field-wise differences are -2, 0, -4 points, never positive
    assert -0.04 <= row.ci_low <= row.difference <= row.ci_high <= 0.0


def test_main_writes_a_table_the_workflow_can_read(tmp_path):
    """<prefix>.tsv has one pooled row per atlas, hemispheres, method and alpha
    (the drop variants go to <prefix>_drop.tsv), as itx.sensitivity reads it."""
    from itx.sensitivity import fpr_lookup

    rows = []
    for hemi in ("left", "both"):
        for drop, method in ((0.0, "baum"), (0.5, "baum"), (0.0, "vertex_spin")):
            for sigma in (15, 35):
                for f in range(3):
                    rows.append(["schaefer200", hemi, drop, method, sigma, f, 50,
                                 3 + f + int(10 * drop), 1])
    p = tmp_path / "in.tsv"
    pd.DataFrame(rows, columns=cal.FIELD_COLUMNS).to_csv(p, sep="\t", index=False)
    cal.main(["--from-fields", str(p), "--out", str(tmp_path / "out"), "--n-perm", "100"])
    table = pd.read_csv(tmp_path / "out" / "calibration.tsv", sep="\t")
    assert list(table.columns) == cal.TABLE_COLUMNS
    got = fpr_lookup(table, "schaefer200", "both", ["baum", "vertex_spin"])
    assert got.fpr.tolist() == pytest.approx([24 / 300, 24 / 300])
    drop = pd.read_csv(tmp_path / "out" / "calibration_drop.tsv", sep="\t")
    assert set(drop.method) == {"baum"} and (drop[drop.alpha == 0.05].difference > 0).all()
    assert (tmp_path / "out" / "calibration.png").is_file()


@needs_data
@pytest.mark.slow      # ~15 s alone, 30 s on a busy 2-core machine
def test_tiny_calibration_naive_liberal_spin_nominal(tmp_path):
    fields, timing = cal.run_calibration(
        EXPRESSION, n_fields=12, sigmas=(35, 60), n_genes=300, n_perm=200,
        methods=["naive", "alexander_bloch", "vertex_spin"], seed=3)
    assert list(fields.columns) == cal.FIELD_COLUMNS
    assert len(fields) == 3 * 2 * 12
    assert (fields.n_genes == 300).all()
    assert "vertex rotations (both hemispheres)" in timing
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
    expr = pd.DataFrame({"G": np.arange(34.0)}, index=list(cal.LEFT_DK))
    made = cal._Nulls(cal.dk_setting(expr, "left"), methods, n_perm, seed)
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
        np.testing.assert_array_equal(made.null_values(m, y, (field, None), 99), expect[m],
                                      err_msg=m)


# ----------------------------------------------------- tiny synthetic atlases


def _sphere(n, radius=100.0):
    """A Fibonacci sphere as a GIFTI surface (faces from its convex hull)."""
    import nibabel as nib
    from scipy.spatial import ConvexHull

    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5 ** 0.5) * k
    xyz = radius * np.c_[np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi),
                         np.cos(phi)]
    img = nib.gifti.GiftiImage()
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        xyz.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        ConvexHull(xyz).simplices.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
    return img


def _sector_labels(img, first_id, n_parcels):
    """Parcels = longitude sectors; a cap around +x is the medial wall (0)."""
    xyz = img.agg_data("pointset").astype(float)
    lon = np.arctan2(xyz[:, 1], xyz[:, 2]) + np.pi
    lab = first_id + np.minimum((lon / (2 * np.pi) * n_parcels).astype(int), n_parcels - 1)
    lab[xyz[:, 0] > 70] = 0
    return lab


N_TINY = 24     # 12 parcels per hemisphere


def _fake_brainspace(tmp_path, swap=False):
    spheres = (_sphere(500), _sphere(460))
    half = N_TINY // 2
    lab = [_sector_labels(spheres[0], 1, half), _sector_labels(spheres[1], half + 1, half)]
    if swap:
        lab = [np.where(lab[0] > 0, lab[0] + half, 0), np.where(lab[1] > 0, lab[1] - half, 0)]
    wheel = tmp_path / ("swapped.whl" if swap else "brainspace-0.3.0-py3-none-any.whl")
    import zipfile
    with zipfile.ZipFile(wheel, "w") as z:
        for h, img in zip(("lh", "rh"), spheres):
            z.writestr(cal._BS_SPHERE.format(h=h), img.to_bytes())
        z.writestr(cal._BS_PARC.format(n=N_TINY),
                   "\n".join(str(v) for v in np.concatenate(lab)) + "\n")
    return wheel, lab


def _fake_schaefer_csv(tmp_path, n=N_TINY, seed=0):
    half = n // 2
    names = [f"7Networks_LH_Vis_{k}" for k in range(1, half + 1)] + [
        f"7Networks_RH_Vis_{k}" for k in range(1, half + 1)] + ["Lthal", "Rthal"]
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(rng.standard_normal((len(names), 40)),
                      columns=[f"G{k}" for k in range(40)])
    df.insert(0, "label", names)
    df.iloc[half + 2, 1:] = np.nan            # a right region without expression
    df.loc[1, "G3"] = np.nan                  # a gene missing in one region
    p = tmp_path / f"schaefer_{n}.csv"
    df.to_csv(p, index=False)
    return p


def test_load_dk_both_hemispheres_in_id_order(tmp_path):
    rows = list(range(83, 0, -1))
    df = pd.DataFrame({"label": rows, "Region": [f"r{i}" for i in rows],
                       "G1": np.arange(83.0)})
    p = tmp_path / "dk.csv"
    df.to_csv(p, index=False)
    got = cal.load_dk(p, "both")
    assert list(got.index) == list(cal.LEFT_DK + cal.RIGHT_DK)
    with pytest.raises(ValueError, match="hemispheres"):
        cal.load_dk(p, "right")


def test_load_schaefer_expression_drops_empty_regions_and_genes(tmp_path):
    p = _fake_schaefer_csv(tmp_path)
    left = cal.load_schaefer_expression(p, N_TINY, "left")
    assert list(left.index) == list(range(1, 13))
    assert "G3" not in left.columns and left.shape[1] == 39
    both = cal.load_schaefer_expression(p, N_TINY, "both")
    assert list(both.index) == [i for i in range(1, 25) if i != 15]   # row 15: no data
    assert both.notna().all().all()
    bad = tmp_path / "bad.csv"
    pd.read_csv(p).iloc[::-1].to_csv(bad, index=False)
    with pytest.raises(ValueError, match="left then right"):
        cal.load_schaefer_expression(bad, N_TINY, "left")


def test_read_brainspace_from_wheel_and_folder(tmp_path):
    wheel, lab = _fake_brainspace(tmp_path)
    labels, spheres = cal.read_brainspace(wheel, N_TINY)
    for h in (0, 1):
        np.testing.assert_array_equal(labels[h].agg_data(), lab[h])
        assert spheres[h].agg_data("pointset").shape == (500 if h == 0 else 460, 3)
    names = labels[0].labeltable.get_labels_as_dict()
    assert names[0] == "Medial_Wall" and set(names) == set(range(13))
    import zipfile
    folder = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(folder)
    labels2, _ = cal.read_brainspace(folder, N_TINY)
    np.testing.assert_array_equal(labels2[1].agg_data(), lab[1])
    swapped, _ = _fake_brainspace(tmp_path, swap=True)
    with pytest.raises(ValueError, match="left vertices first"):
        cal.read_brainspace(swapped, N_TINY)
    with pytest.raises(ValueError, match="schaefer_100"):
        cal.read_brainspace(wheel, 100)


def test_fetch_brainspace_uses_the_pinned_wheel(tmp_path, monkeypatch):
    from itx import download

    seen = {}
    monkeypatch.setattr(download, "download",
                        lambda url, dest, **kw: seen.update(url=url, dest=dest, **kw) or dest)
    got = cal.fetch_brainspace(tmp_path)
    assert seen["url"] == cal.BRAINSPACE_URL and seen["sha256"] == cal.BRAINSPACE_SHA256
    assert seen["expected_size"] == cal.BRAINSPACE_SIZE
    assert got == tmp_path / "brainspace-0.3.0-py3-none-any.whl"


def test_smooth_fields_right_hemisphere_independent_and_sources():
    img = _sphere(400)
    a = cal.smooth_fields(35, 3, seed=2, sphere=img)
    b = cal.smooth_fields(35, 3, seed=2, sphere=img, hemi=1)
    assert a.shape == b.shape == (400, 3)
    assert abs(np.corrcoef(a[:, 0], b[:, 0])[0, 1]) < 0.9
    c = cal.smooth_fields(35, 3, seed=2, sphere=img, n_sources=100)
    np.testing.assert_array_equal(c, cal.smooth_fields(35, 3, seed=2, sphere=img,
                                                       n_sources=100))
    assert not np.allclose(a, c)


@pytest.fixture(scope="module")
def tiny_setting(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    wheel, _ = _fake_brainspace(tmp)
    return lambda hemi: cal.schaefer_setting(N_TINY, wheel, _fake_schaefer_csv(tmp), hemi)


@pytest.mark.parametrize("hemi", ["left", "both"])
def test_tiny_synthetic_atlas_runs_every_setting_seeded(tiny_setting, hemi):
    setting = tiny_setting(hemi)
    assert setting.atlas == "schaefer24" and setting.mesh == "conte69"
    methods = ["naive", "vertex_spin", "alexander_bloch", "baum", "cornblath", "hungarian",
               "vasa"]
    kw = dict(n_fields=3, sigmas=(35,), n_perm=10, methods=methods, seed=1, drops=(0.5,))
    fields, timing = cal.run_calibration(setting, **kw)
    assert list(fields.columns) == cal.FIELD_COLUMNS
    assert set(fields.atlas) == {"schaefer24"} and set(fields.hemispheres) == {hemi}
    assert len(fields) == 3 * (len(methods) + len(cal.DROP_METHODS))
    dropped = fields[fields.drop_distorted == 0.5]
    assert set(dropped.method) == set(cal.DROP_METHODS)
    assert (fields.n_genes == setting.expression.shape[1]).all()
    again, _ = cal.run_calibration(setting, **kw)
    pd.testing.assert_frame_equal(fields, again)
    s = cal.summarise(fields, n_perm=10, n_boot=50)
    assert len(s) == len(methods + list(cal.DROP_METHODS)) * 2 * 2


def test_dropped_spins_are_the_least_distorted_rotations(tiny_setting):
    """The drop variants equal each family computed by hand from the kept rotations."""
    from scipy.spatial import cKDTree

    from itx import nulls, spindistortion, vertexspins

    s = tiny_setting("both")
    n_perm, seed, drop = 10, 3, 0.5
    made = cal._Nulls(s, ["alexander_bloch", "baum"], n_perm, seed, drops=(drop,),
                      drop_methods=("alexander_bloch", "baum"))
    n_draws = spindistortion.n_draws_needed(n_perm, drop)
    mats = spindistortion.rotation_matrices(n_draws, seed)
    coords = [vertexspins._sphere_vertices(x) for x in s.spheres]
    cortex = np.isin(s.labels[0].agg_data(), s.cortex_ids)
    d = spindistortion.medial_wall_fraction(coords[0], cortex, mats, n_sample=4000, seed=seed)
    np.testing.assert_array_equal(made.distortion, d)
    kept = np.flatnonzero(d <= np.median(d))
    assert kept.size >= n_perm
    # alexander_bloch by hand: nearest rotated centroid within each hemisphere
    xyz, hemiid = nulls.sphere_centroids(s.labels, s.spheres, s.region_ids)
    cols = []
    for j in kept:
        idx = np.empty(len(xyz), dtype=np.int64)
        for h in (0, 1):
            rows = np.flatnonzero(hemiid == h)
            _, near = cKDTree(xyz[rows] @ mats[j, h]).query(xyz[rows], 1)
            idx[rows] = rows[near]
        if (idx != np.arange(len(idx))).any() and not any((idx == c).all() for c in cols):
            cols.append(idx)
    np.testing.assert_array_equal(made.artefact[("alexander_bloch", drop)],
                                  np.array(cols[:n_perm]).T)
    # baum from the vertex rotations of the first n_perm kept draws
    rot = spindistortion.vertex_sources(coords, (0, 1), mats[kept[:n_perm]])
    np.testing.assert_array_equal(
        made.artefact[("baum", drop)],
        nulls.spin_nulls(s.labels, s.spheres, s.region_ids, n_perm, "baum", seed,
                         rotations=rot))
    # the variant differs from the plain family (other rotations)
    assert not np.array_equal(made.artefact[("baum", drop)], made.artefact[("baum", 0.0)])
