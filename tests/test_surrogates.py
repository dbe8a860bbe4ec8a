"""Tests of itx.surrogates against independent computations.

Distances: brute-force Floyd-Warshall on tiny meshes, voxel loops for
centroids. Variogram surrogates: BrainSMASH ``Base`` itself for the same seed
and the variogram fit on a smooth field. Moran: exact invariants (mean,
variance, Moran's I) and a from-scratch re-derivation of BrainSpace's
algorithm as neuromaps calls it. Permutations: structure checks and a
chi-square test of uniformity.
"""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import distances as D
from itx import surrogates as S
from itx.atlas import Atlas, add_region_names

# ---------------------------------------------------------------------------
# helpers (independent implementations)
# ---------------------------------------------------------------------------


def grid_mesh(nx, ny, spacing=1.0):
    """Triangulated planar grid: vertex (i, j) at (i, j, 0) * spacing."""
    ii, jj = np.meshgrid(np.arange(nx), np.arange(ny), indexing="ij")
    verts = np.column_stack([ii.ravel(), jj.ravel(), np.zeros(ii.size)]) * spacing
    vid = np.arange(nx * ny).reshape(nx, ny)
    faces = []
    for i in range(nx - 1):
        for j in range(ny - 1):
            a, b, c, d = vid[i, j], vid[i + 1, j], vid[i, j + 1], vid[i + 1, j + 1]
            faces += [(a, b, d), (a, d, c)]
    return verts, np.array(faces), ii.ravel(), jj.ravel()


def floyd_warshall(verts, faces, keep):
    """All-pairs shortest paths along edges between kept vertices (O(V^3))."""
    n = len(verts)
    d = np.full((n, n), np.inf)
    np.fill_diagonal(d, 0.0)
    for f in faces:
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            if keep[a] and keep[b]:
                w = float(np.sqrt(np.sum((verts[a] - verts[b]) ** 2)))
                d[a, b] = d[b, a] = min(d[a, b], w)
    for k in range(n):
        d = np.minimum(d, d[:, [k]] + d[[k], :])
    return d


def centroid_vertex_loop(labels, rid, coords):
    best, best_d = None, np.inf
    members = [v for v in range(len(labels)) if labels[v] == rid]
    mean = np.mean([coords[v] for v in members], axis=0)
    for v in members:
        dv = float(np.sum((coords[v] - mean) ** 2))
        if dv < best_d:
            best, best_d = v, dv
    return best


def morans_i(x, w):
    """Moran's I with weight matrix w (zero diagonal), textbook formula."""
    z = x - x.mean()
    return len(x) / w.sum() * (z @ w @ z) / (z @ z)


def brainspace_moran_reference(x, dist, n_perm, seed, tol=1e-6):
    """Re-derivation of neuromaps' moran for one block (BrainSpace algorithm).

    neuromaps: inverse distance with diagonal 1; BrainSpace: double centring,
    eigh, descending order, drop |eigenvalue| < tol, correlation of x with
    each eigenvector, random signs from RandomState(seed).choice, back-
    projection scaled by sqrt(n-1) * std(ddof=1).
    """
    w = dist.astype(float).copy()
    np.fill_diagonal(w, 1.0)
    w = 1.0 / w
    m = w.mean(axis=0, keepdims=True)
    wc = w.mean() - m - m.T + w
    ev, mem = np.linalg.eigh(wc)
    ev, mem = ev[::-1], mem[:, ::-1]
    mem = mem[:, np.abs(ev) >= tol]
    n = len(x)
    xc = x - x.mean()
    rxv = np.array([np.corrcoef(x, mem[:, k])[0, 1] for k in range(mem.shape[1])])
    rs = np.random.RandomState(seed)
    signs = rs.choice([-1.0, 1.0], size=(n_perm, mem.shape[1], 1))
    sims = []
    for j in range(n_perm):
        sims.append(x.mean() + mem @ (rxv * signs[j, :, 0]) * np.sqrt(n - 1) * x.std(ddof=1))
    assert np.isclose(np.sqrt(n - 1) * x.std(ddof=1), np.linalg.norm(xc))
    return np.column_stack(sims)


def plane_points(n, seed, size=200.0):
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, size, size=(n, 2))
    dist = np.sqrt(((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1))
    return xy, dist


def smooth_field(xy, seed, scale=60.0):
    rng = np.random.default_rng(seed)
    centres = rng.uniform(0, 200, size=(6, 2))
    amp = rng.normal(size=6)
    d2 = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
    return (amp * np.exp(-d2 / (2 * scale ** 2))).sum(1) + 0.05 * rng.normal(size=len(xy))


@pytest.fixture(scope="module")
def dk():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from itx.atlas import desikan_killiany
        return desikan_killiany()


# ---------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------


def test_surface_distance_matches_floyd_warshall():
    verts, faces, ii, jj = grid_mesh(7, 6, spacing=2.0)
    # jitter z so edge lengths differ and shortest paths are unique-ish
    verts = verts + np.column_stack([np.zeros((len(verts), 2)),
                                     np.random.default_rng(0).uniform(0, 1.5, len(verts))])
    labels = np.where(ii < 3, np.where(jj < 3, 1, 2), np.where(jj < 3, 3, 4))
    # a wall of excluded vertices (label 0) that paths must go around
    labels[(ii == 3) & (jj >= 1)] = 0
    ids = [4, 1, 3, 2]  # caller's order, not sorted
    got = D.surface_parcel_distance(verts, faces, labels, ids)
    full = floyd_warshall(verts, faces, labels != 0)
    cv = [centroid_vertex_loop(labels, r, verts) for r in ids]
    want = full[np.ix_(cv, cv)]
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)
    # without the wall paths are shorter for some pair crossing it
    free = D.surface_parcel_distance(verts, faces, labels, ids, exclude=())
    assert np.all(free <= got + 1e-12) and np.any(free < got - 1e-9)


def test_surface_distance_centroid_coords_and_disconnected():
    verts, faces, ii, jj = grid_mesh(6, 5)
    labels = np.where(ii < 2, 1, np.where(ii > 3, 2, 0))
    # a full wall: the two parcels are not connected
    d = D.surface_parcel_distance(verts, faces, labels, [1, 2])
    assert np.isinf(d[0, 1]) and d[0, 0] == 0
    # centroid chosen on other coordinates (a "sphere")
    sphere = verts[:, [1, 0, 2]] * np.array([3.0, 1.0, 1.0])
    labels2 = np.where(ii < 3, 1, 2)
    d2 = D.surface_parcel_distance(verts, faces, labels2, [1, 2], centroid_coords=sphere)
    full = floyd_warshall(verts, faces, np.ones(len(verts), bool))
    cv = [centroid_vertex_loop(labels2, r, sphere) for r in (1, 2)]
    assert d2[0, 1] == pytest.approx(full[cv[0], cv[1]], rel=1e-12)


@pytest.mark.parametrize("bad, msg", [
    (dict(region_ids=[1, 1]), "repeated"),
    (dict(region_ids=[0, 1]), "excluded"),
    (dict(region_ids=[9]), "no vertex"),
])
def test_surface_distance_bad_input(bad, msg):
    verts, faces, ii, jj = grid_mesh(4, 4)
    labels = np.where(ii < 2, 1, 2)
    kwargs = dict(region_ids=[1, 2])
    kwargs.update(bad)
    with pytest.raises(ValueError, match=msg):
        D.surface_parcel_distance(verts, faces, labels, **kwargs)


def _label_volume(tmp_path):
    rng = np.random.default_rng(1)
    data = np.zeros((9, 8, 7), dtype=np.int16)
    data[1:4, 1:3, 1:5] = 5
    data[5:8, 4:7, 2:3] = 2
    data[2, 6, 6] = 9
    data[rng.integers(0, 9, 4), rng.integers(0, 8, 4), 0] = 7
    affine = np.array([[-2.0, 0.1, 0, 30], [0, 2.0, 0, -40], [0, 0.2, 2.5, -20], [0, 0, 0, 1]])
    path = tmp_path / "labels.nii.gz"
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path, data, affine


def test_volume_centroids_vs_voxel_loop(tmp_path):
    path, data, affine = _label_volume(tmp_path)
    ids = [9, 2, 7, 5]
    got = D.volume_centroids(path, ids)
    for k, rid in enumerate(ids):
        vox = np.argwhere(data == rid)
        world = [affine[:3, :3] @ v + affine[:3, 3] for v in vox]
        np.testing.assert_allclose(got[k], np.mean(world, axis=0), atol=1e-10)
    d = D.euclidean_centroid_distance(path, ids)
    for a, b in itertools.combinations(range(4), 2):
        assert d[a, b] == pytest.approx(np.linalg.norm(got[a] - got[b]), rel=1e-12)
    with pytest.raises(ValueError, match="no voxel"):
        D.volume_centroids(path, [5, 3])
    with pytest.raises(ValueError, match="repeated"):
        D.volume_centroids(path, [5, 5])


def test_parcel_distance_matrix_dk(dk):
    info = dk.info
    ids = info["id"].tolist()
    d = D.parcel_distance_matrix(dk, ids)
    n = len(ids)
    assert d.shape == (n, n)
    assert np.array_equal(d, d.T) and np.all(np.diag(d) == 0)
    hemi = info["hemisphere"].to_numpy()
    cortex = (info["structure"] == "cortex").to_numpy()
    cl, cr = cortex & (hemi == "L"), cortex & (hemi == "R")
    # geodesic blocks per hemisphere, inf across hemispheres and to subcortex
    assert np.isinf(d[np.ix_(cl, cr)]).all()
    assert np.isinf(d[np.ix_(cortex, ~cortex)]).all()
    assert np.isfinite(d[np.ix_(cl, cl)]).all() and np.isfinite(d[np.ix_(cr, cr)]).all()
    assert np.isfinite(d[np.ix_(~cortex, ~cortex)]).all()
    blocks = D.distance_blocks(d)
    assert len(set(blocks)) == 3 and blocks[0] == 0
    # subcortex block = Euclidean centroid distance of the volume
    sub = [r for r, c in zip(ids, cortex) if not c]
    np.testing.assert_allclose(d[np.ix_(~cortex, ~cortex)],
                               D.euclidean_centroid_distance(dk.volume, sub))
    # plausible mm scale on the pial surface; off-diagonal strictly positive
    left = d[np.ix_(cl, cl)][~np.eye(cl.sum(), dtype=bool)]
    assert left.min() > 3 and 150 < left.max() < 400


def test_parcel_distance_geodesic_vs_chord_and_order(dk):
    from nilearn import datasets

    left = dk.info.query("hemisphere == 'L' and structure == 'cortex'")["id"].tolist()
    d = D.parcel_distance_matrix(dk, left, kind="geodesic")
    # a path along the mesh is never shorter than the straight line between
    # its ends: recompute the centroid vertices independently
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    pial = nib.load(fs["pial_left"]).agg_data()[0]
    sphere = nib.load(fs["sphere_left"]).agg_data()[0]
    labels = nib.load(str(dk.surface[0])).agg_data()
    cv = [centroid_vertex_loop(labels, r, sphere) for r in left]
    chord = np.sqrt(((pial[cv][:, None] - pial[cv][None]) ** 2).sum(-1))
    assert np.all(d >= chord - 1e-9)
    assert np.median(d[d > 0] / chord[d > 0]) < 2.5
    # caller order is respected
    perm = np.random.default_rng(0).permutation(len(left))
    d2 = D.parcel_distance_matrix(dk, [left[k] for k in perm], kind="geodesic")
    np.testing.assert_allclose(d2, d[np.ix_(perm, perm)])
    # sphere mesh: geodesic close to the great-circle distance (radius 100)
    ds = D.parcel_distance_matrix(dk, left, kind="geodesic", mesh="sphere")
    xyz = sphere[cv]
    cosang = np.clip((xyz @ xyz.T) / np.outer(np.linalg.norm(xyz, axis=1),
                                                np.linalg.norm(xyz, axis=1)), -1, 1)
    arc = 100.0 * np.arccos(cosang)
    off = ~np.eye(len(left), dtype=bool)
    ratio = ds[off] / arc[off]
    assert np.all(ratio >= 0.999) and np.median(ratio) < 1.15


def test_parcel_distance_kinds_and_errors(dk):
    ids = dk.info["id"].tolist()
    de = D.parcel_distance_matrix(dk, ids, kind="euclidean")
    assert np.isfinite(de).all()
    np.testing.assert_allclose(de, D.euclidean_centroid_distance(dk.volume, ids))
    with pytest.raises(ValueError, match="not parcels of the surface"):
        D.parcel_distance_matrix(dk, [1, 35], kind="geodesic")
    with pytest.raises(ValueError, match="not in the table"):
        D.parcel_distance_matrix(dk, [1, 999])
    with pytest.raises(ValueError, match="kind"):
        D.parcel_distance_matrix(dk, [1, 2], kind="spherical")
    vol_only = Atlas(name="v", info=dk.info, volume=dk.volume, surface=None)
    dv = D.parcel_distance_matrix(vol_only, ids)
    cortex = (dk.info["structure"] == "cortex").to_numpy()
    # without a surface, cortex is one Euclidean block across hemispheres
    assert np.isfinite(dv[np.ix_(cortex, cortex)]).all()
    assert np.isinf(dv[np.ix_(cortex, ~cortex)]).all()
    surf_only = Atlas(name="s", info=dk.info, volume=None, surface=dk.surface)
    with pytest.raises(ValueError, match="no label volume"):
        D.parcel_distance_matrix(surf_only, ids)


def test_distance_blocks():
    d = np.full((5, 5), np.inf)
    for grp in ([0, 3], [1, 2, 4]):
        d[np.ix_(grp, grp)] = 1.0
    np.fill_diagonal(d, 0)
    assert D.distance_blocks(d).tolist() == [0, 1, 1, 0, 1]


# ---------------------------------------------------------------------------
# variogram surrogates
# ---------------------------------------------------------------------------


def test_variogram_surrogates_equal_brainsmash_base():
    from brainsmash.mapgen import Base

    xy, dist = plane_points(40, seed=2)
    x = smooth_field(xy, seed=3)
    ours = S.variogram_surrogates(x, dist, 60, seed=11)
    theirs = Base(x, dist, seed=11)(60, 50).T
    np.testing.assert_array_equal(ours, theirs)
    kw = dict(kernel="gaussian", pv=40, nh=15)
    np.testing.assert_array_equal(
        S.variogram_surrogates(x, dist, 30, seed=5, batch_size=7, **kw),
        Base(x, dist, seed=5, **kw)(30, 7).T)
    # resample=True keeps the map's values, only their places change
    res = S.variogram_surrogates(x, dist, 10, seed=5, resample=True)
    np.testing.assert_allclose(np.sort(res, axis=0), np.sort(x)[:, None].repeat(10, 1))
    # n_perm = 1 keeps the 2-D shape
    assert S.variogram_surrogates(x, dist, 1, seed=5).shape == (40, 1)


def test_variogram_surrogates_blocks_nan_and_seed():
    from brainsmash.mapgen import Base

    xy, dist_a = plane_points(30, seed=4)
    xy_b, dist_b = plane_points(25, seed=5)
    x = np.concatenate([smooth_field(xy, 6), smooth_field(xy_b, 7)])
    x[[3, 40]] = np.nan
    dist = np.full((55, 55), np.inf)
    dist[:30, :30] = dist_a
    dist[30:, 30:] = dist_b
    out = S.variogram_surrogates(x, dist, 40, seed=3)
    assert out.shape == (55, 40)
    assert np.isnan(out[[3, 40]]).all() and np.isfinite(np.delete(out, [3, 40], 0)).all()
    # block 0 = Base on its finite values with the seed itself
    ok = np.flatnonzero(np.isfinite(x[:30]))
    np.testing.assert_array_equal(out[ok], Base(x[ok], dist_a[np.ix_(ok, ok)], seed=3)(40, 50).T)
    # block 1 = Base with the derived seed
    okb = 30 + np.flatnonzero(np.isfinite(x[30:]))
    np.testing.assert_array_equal(
        out[okb], Base(x[okb], dist[np.ix_(okb, okb)], seed=S._block_seed(3, 1))(40, 50).T)
    np.testing.assert_array_equal(out, S.variogram_surrogates(x, dist, 40, seed=3))
    other = S.variogram_surrogates(x, dist, 40, seed=4)
    assert not np.allclose(np.nan_to_num(other), np.nan_to_num(out))


def test_variogram_small_block_deltas_and_errors():
    xy, dist = plane_points(7, seed=8)
    x = smooth_field(xy, 9)
    out = S.variogram_surrogates(x, dist, 20, seed=0)  # deltas 0.1 dropped
    assert np.isfinite(out).all()
    with pytest.raises(ValueError, match="at least 3"):
        S.variogram_surrogates(x[:2], dist[:2, :2], 5, seed=0)
    with pytest.raises(ValueError, match="seed"):
        S.variogram_surrogates(x, dist, 5, seed=-1)
    with pytest.raises(ValueError, match="shape"):
        S.variogram_surrogates(x, dist[:5, :5], 5, seed=0)
    bad = dist.copy()
    bad[0, 1] += 1
    with pytest.raises(ValueError, match="symmetric"):
        S.variogram_surrogates(x, bad, 5, seed=0)


def test_smoothed_variogram_equals_brainsmash():
    from brainsmash.mapgen import Base

    xy, dist = plane_points(35, seed=10)
    x = smooth_field(xy, 11)
    base = Base(x, dist, seed=0)
    h, g = S.smoothed_variogram(x, dist)
    want, hb = base.compute_smooth_variogram(x, return_h=True)
    np.testing.assert_allclose(h, hb, rtol=1e-12)
    np.testing.assert_allclose(g, want, rtol=1e-10)
    # several maps at once = one at a time
    y = np.column_stack([x, x[::-1], 2 * x])
    _, gy = S.smoothed_variogram(y, dist)
    np.testing.assert_allclose(gy[:, 2], 4 * g, rtol=1e-10)
    np.testing.assert_allclose(gy[:, 1], S.smoothed_variogram(x[::-1], dist)[1], rtol=1e-12)


def test_variogram_fit_on_smooth_field(tmp_path):
    # A field of Gaussian bumps plus a nugget: the regime BrainSMASH fits.
    # (On much smoother fields Base overshoots the short-range variogram:
    # its fitted intercept is negative and Base adds sqrt(|alpha|) noise;
    # the diagnostic exists to show that.)
    n = 120
    xy, dist = plane_points(n, seed=12)
    rng = np.random.default_rng(13)
    centres, amp = rng.uniform(0, 200, size=(30, 2)), rng.normal(size=30)
    d2 = ((xy[:, None, :] - centres[None]) ** 2).sum(-1)
    x = (amp * np.exp(-d2 / (2 * 15.0 ** 2))).sum(1) + 0.2 * rng.normal(size=n)
    surr = S.variogram_surrogates(x, dist, 200, seed=2)
    diag = S.variogram_diagnostic(x, dist, surr)
    assert list(diag.columns) == ["distance", "empirical", "surrogate_mean",
                                  "surrogate_p2.5", "surrogate_p97.5"]
    assert len(diag) == 25
    rel = np.abs(diag["surrogate_mean"] - diag["empirical"]) / diag["empirical"]
    assert rel.mean() < 0.35, rel.describe()
    inside = ((diag["empirical"] >= diag["surrogate_p2.5"])
              & (diag["empirical"] <= diag["surrogate_p97.5"]))
    assert inside.mean() >= 0.85
    # a plain shuffle does not keep the variogram: flat, 3x too high at
    # short range, and much further off overall
    shuf = x[np.argsort(np.random.default_rng(0).random((n, 200)), axis=0)]
    dshuf = S.variogram_diagnostic(x, dist, shuf)
    assert (dshuf["surrogate_mean"].iloc[:5] > 2.5 * diag["empirical"].iloc[:5]).all()
    rel_shuf = np.abs(dshuf["surrogate_mean"] - diag["empirical"]) / diag["empirical"]
    assert rel_shuf.mean() > 3 * rel.mean()
    png = S.plot_variogram(diag, tmp_path / "fig" / "variogram.png", title="test")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="png"):
        S.plot_variogram(diag, tmp_path / "v.pdf")


# ---------------------------------------------------------------------------
# Moran spectral randomisation
# ---------------------------------------------------------------------------


def test_moran_preserves_spectrum_invariants():
    xy, dist = plane_points(50, seed=14)
    x = smooth_field(xy, 15)
    out = S.moran_surrogates(x, dist, 200, seed=2)
    w = 1.0 / np.where(np.eye(50, dtype=bool), np.inf, dist)
    i0 = morans_i(x, w)
    i_null = np.array([morans_i(out[:, j], w) for j in range(200)])
    np.testing.assert_allclose(i_null, i0, rtol=1e-9)
    np.testing.assert_allclose(out.mean(0), x.mean(), atol=1e-12)
    np.testing.assert_allclose(out.std(0), x.std(), rtol=1e-10)
    # projections on each Moran eigenvector keep their magnitude, not sign
    _, mem = S._moran_eigenvectors(dist)
    c0 = mem.T @ (x - x.mean())
    c = mem.T @ (out - x.mean())
    np.testing.assert_allclose(np.abs(c), np.broadcast_to(np.abs(c0)[:, None], c.shape),
                               atol=1e-10)
    assert np.mean(np.sign(c) == np.sign(c0)[:, None]) == pytest.approx(0.5, abs=0.03)
    # the nulls are not the map
    assert np.median(np.corrcoef(np.column_stack([x, out]).T)[0, 1:]) < 0.5


def test_moran_equals_brainspace_algorithm():
    xy, dist = plane_points(30, seed=16)
    x = smooth_field(xy, 17)
    ref = brainspace_moran_reference(x, dist, 50, seed=9)
    assert ref.shape == (30, 50)
    np.testing.assert_allclose(S.moran_surrogates(x, dist, 50, seed=9), ref, atol=1e-9)


def test_moran_equals_neuromaps_if_available():
    pytest.importorskip("brainspace")
    xy, dist = plane_points(30, seed=18)
    x = smooth_field(xy, 19)
    from brainspace.null_models.moran import MoranRandomization

    w = dist.copy()
    np.fill_diagonal(w, 1)
    w **= -1
    mrs = MoranRandomization(joint=True, tol=1e-6, n_rep=40, random_state=4)
    ref = mrs.fit(w).randomize(x).T
    np.testing.assert_allclose(S.moran_surrogates(x, dist, 40, seed=4), ref, atol=1e-4)


def test_moran_blocks_nan_seed():
    xy, da = plane_points(20, seed=20)
    xyb, db = plane_points(15, seed=21)
    x = np.concatenate([smooth_field(xy, 22), smooth_field(xyb, 23)])
    x[5] = np.nan
    d = np.full((35, 35), np.inf)
    d[:20, :20], d[20:, 20:] = da, db
    out = S.moran_surrogates(x, d, 30, seed=1)
    assert np.isnan(out[5]).all() and np.isfinite(np.delete(out, 5, 0)).all()
    ok = np.delete(np.arange(20), 5)
    np.testing.assert_allclose(out[ok], S.moran_surrogates(x[ok], da[np.ix_(ok, ok)], 30, 1))
    np.testing.assert_array_equal(out, S.moran_surrogates(x, d, 30, seed=1))
    assert not np.allclose(out[20:], S.moran_surrogates(x, d, 30, seed=2)[20:])
    np.testing.assert_allclose(out[20:].mean(0), x[20:].mean(), atol=1e-12)


# ---------------------------------------------------------------------------
# permutations within groups
# ---------------------------------------------------------------------------


def test_permute_within_structure():
    groups = ["L|sub", "R|sub", "L|sub", "B|bs", "R|sub", "L|sub", None, "R|sub"]
    idx = S.permute_within(groups, 500, seed=3)
    assert idx.shape == (8, 500) and idx.dtype == np.int64
    g = np.array([str(x) for x in groups])
    assert (idx[6] == -1).all() and not (idx == 6).any()
    for j in range(500):
        col = idx[:, j]
        valid = col[col >= 0]
        assert sorted(valid) == sorted(set(range(8)) - {6})  # a permutation
        assert (g[col[col >= 0]] == g[col >= 0]).all()  # group kept
    assert (idx[3] == 3).all()  # singleton group
    np.testing.assert_array_equal(idx, S.permute_within(groups, 500, seed=3))
    assert not np.array_equal(idx, S.permute_within(groups, 500, seed=4))
    with pytest.raises(ValueError, match="n_perm"):
        S.permute_within(groups, 0, seed=1)


def test_permute_within_uniform():
    # group of 3 -> 6 permutations; group of 2 -> 2; all 12 combos reachable
    groups = ["a", "b", "a", "a", "b"]
    n_perm = 12000
    idx = S.permute_within(groups, n_perm, seed=7)
    keys = [tuple(idx[:, j]) for j in range(n_perm)]
    counts = pd.Series(keys).value_counts()
    assert len(counts) == 12
    chi = stats.chisquare(counts.to_numpy())
    assert chi.pvalue > 1e-3
    # each region equally likely at each position of its group
    for r in (0, 2, 3):
        frac = np.mean(idx[0] == r)
        assert frac == pytest.approx(1 / 3, abs=0.02)


def test_add_region_names_roundtrip_for_groups(dk):
    # the group labels the lead will use for subcortex: hemisphere x structure
    info = add_region_names(dk.info[["id", "label", "hemisphere", "structure"]])
    sub = info[info["structure"] != "cortex"]
    groups = (sub["hemisphere"] + "|" + sub["structure"]).tolist()
    idx = S.permute_within(groups, 50, seed=0)
    hem = sub["hemisphere"].to_numpy()
    assert (hem[idx] == hem[:, None]).all()


# ---------------------------------------------------------------------------
# real data: ENIGMA schizophrenia cortical thickness on DK
# ---------------------------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
ENIGMA = DATA / "enigma" / "summary_statistics"
needs_data = pytest.mark.skipif(not ENIGMA.is_dir(), reason="../shared/data not available")


@needs_data
def test_real_enigma_thickness_cortex_subcortex(dk):
    thick = pd.read_csv(ENIGMA / "scz_case-controls_CortThick.csv").set_index("Structure")["d_icv"]
    subvol = pd.read_csv(ENIGMA / "scz_case-controls_SubVol.csv").set_index("Structure")["d_icv"]
    info = dk.info
    ctx = info[info["structure"] == "cortex"]
    x = thick.reindex(ctx["region"]).to_numpy()
    assert np.isfinite(x).all()
    d = D.parcel_distance_matrix(dk, ctx["id"].tolist())
    surr = S.variogram_surrogates(x, d, 200, seed=0)
    diag = S.variogram_diagnostic(x, d, surr)
    inside = ((diag["empirical"] >= diag["surrogate_p2.5"])
              & (diag["empirical"] <= diag["surrogate_p97.5"]))
    assert inside.all()
    rel = np.abs(diag["surrogate_mean"] - diag["empirical"]) / diag["empirical"]
    assert rel.mean() < 0.5
    mor = S.moran_surrogates(x, d, 200, seed=0)
    left = (ctx["hemisphere"] == "L").to_numpy()
    np.testing.assert_allclose(mor[left].std(0), x[left].std(), rtol=1e-10)
    # subcortex (ENIGMA names: Lthal, Rhippo, ...): permutation within hemisphere
    names = {"thalamusproper": "thal", "caudate": "caud", "putamen": "put", "pallidum": "pal",
             "accumbensarea": "accumb", "hippocampus": "hippo", "amygdala": "amyg"}
    sub = info[(info["structure"] != "cortex") & info["label"].isin(list(names))]
    y_sub = subvol.reindex([h + names[lab] for h, lab in zip(sub["hemisphere"], sub["label"])])
    assert y_sub.notna().all()
    idx_sub = S.permute_within(sub["hemisphere"].tolist(), 200, seed=1)
    null_sub = y_sub.to_numpy()[idx_sub]
    # cortex and subcortex null columns paired, rows in atlas order
    order = info["region"][info["region"].isin(set(ctx["region"]) | set(sub["region"]))].tolist()
    pos = {r: k for k, r in enumerate(order)}
    both = np.full((len(order), 200), np.nan)
    both[[pos[r] for r in ctx["region"]]] = surr
    both[[pos[r] for r in sub["region"]]] = null_sub
    assert both.shape == (82, 200) and np.isfinite(both).all()
    k = order.index("R_hippocampus")
    j = sub["region"].tolist().index("R_hippocampus")
    np.testing.assert_array_equal(both[k], null_sub[j])
    # each subcortical null column holds the right hemisphere's values only
    right = (sub["hemisphere"] == "R").to_numpy()
    for col in null_sub[right].T[:20]:
        assert sorted(col) == sorted(y_sub.to_numpy()[right])
