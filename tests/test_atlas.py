"""Atlases (built-in Schaefer fetch, user volume/GIFTI atlases, their checks) and
map formats (NIfTI on any MNI grid, GIFTI on fsaverage5/6/7).

Everything runs offline: Schaefer-like files are generated here (100 parcels on
nilearn's fsaverage5 sphere and on a 2 mm MNI grid, named as CBIG names them)
and served from a throwaway HTTP server on 127.0.0.1.
"""
from __future__ import annotations

import copy
import gzip
import hashlib
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import yaml
from scipy.spatial import cKDTree

from fileserver import FileServer
from itx import atlas as atlases
from itx import catalog, parcellate, schaefer
from itx.atlas import AtlasError
from itx.download import ChecksumError, DownloadError

ROOT = Path(__file__).resolve().parents[1]
N5 = 10242
FAST = dict(retries=0, timeout=10, backoff=0)


# ---------------------------------------------------------------------------
# generated Schaefer-like files
# ---------------------------------------------------------------------------


def fs5_spheres():
    from nilearn import datasets, surface

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    return [surface.load_surf_mesh(fs[f"sphere_{h}"])[0] for h in ("left", "right")]


def nearest_seed_labels(points, n, rng, eligible):
    """Label every point with its nearest of n seeds drawn from `eligible` (1..n)."""
    seeds = rng.choice(np.flatnonzero(eligible), n, replace=False)
    _, nearest = cKDTree(points[seeds]).query(points)
    return nearest + 1


def schaefer_names(n):
    half = n // 2
    return ([f"7Networks_LH_Net{1 + i % 7}_{i + 1}" for i in range(half)]
            + [f"7Networks_RH_Net{1 + i % 7}_{i + 1}" for i in range(half)])


def make_schaefer_files(n=100, seed=0):
    """CBIG-like file contents (relative path -> bytes) and the truth behind them."""
    rng = np.random.default_rng(seed)
    half = n // 2
    names = schaefer_names(n)
    table = "".join(f"{i + 1}\t{name}\t{i % 255}\t{(3 * i) % 255}\t{(7 * i) % 255}\t0\n"
                    for i, name in enumerate(names))
    # 2 mm MNI grid, an ellipsoid "brain" split at the midline
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = [-60, -84, -48]
    shape = (61, 72, 60)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    brain = (xyz[:, 0] / 55) ** 2 + ((xyz[:, 1] + 13) / 70) ** 2 + ((xyz[:, 2] - 11) / 58) ** 2 < 1
    vol = np.zeros(len(xyz), np.int16)
    for offset, side in ((0, xyz[:, 0] < 0), (half, xyz[:, 0] > 0)):
        sel = brain & side
        vol[sel] = nearest_seed_labels(xyz[sel], half, rng, np.ones(sel.sum(), bool)) + offset
    img = nib.Nifti1Image(vol.reshape(shape), affine)
    img.set_qform(affine, code=4)
    img.set_sform(affine, code=4)
    files = {
        "MNI/Schaefer2018_100Parcels_7Networks_order_FSLMNI152_1mm.nii.gz":
            gzip.compress(img.to_bytes(), mtime=0),
        "MNI/Schaefer2018_100Parcels_7Networks_order.txt": table.encode(),
    }
    truth = {"names": names, "volume": vol.reshape(shape)}
    import tempfile

    for k, (h, sphere) in enumerate(zip(("lh", "rh"), fs5_spheres())):
        cap = sphere[:, 2] > 95  # a "medial wall": background
        idx = nearest_seed_labels(sphere, half, rng, ~cap)
        idx[cap] = 0
        ctab = np.array([[25, 5, 25, 0]] + [[(i * 5) % 255, (i * 11) % 255, (i * 17) % 255, 0]
                                           for i in range(1, half + 1)], np.int32)
        annot_names = ["Background+FreeSurfer_Defined_Medial_Wall"] + names[k * half:(k + 1) * half]
        with tempfile.TemporaryDirectory() as tmp:
            p = Path(tmp) / "x.annot"
            nib.freesurfer.write_annot(str(p), idx, ctab, annot_names, fill_ctab=True)
            files["FreeSurfer5.3/fsaverage5/label/"
                  f"{h}.Schaefer2018_100Parcels_7Networks_order.annot"] = p.read_bytes()
        truth[h] = np.where(idx > 0, idx + k * half, 0)
    return files, truth


@pytest.fixture(scope="module")
def schaefer_files():
    return make_schaefer_files()


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def serve(server, files, prefix="/cbig"):
    """Serve ``files`` (relative path -> bytes) under ``prefix`` like a plain
    static server: no ETag, no Range support."""
    for rel, body in files.items():
        server.add(f"{prefix}/{rel}", body, ranges=False, etag=None)
    return server.base + prefix


# ---------------------------------------------------------------------------
# Schaefer fetch
# ---------------------------------------------------------------------------


def test_schaefer_files_are_pinned():
    files = catalog.schaefer_files(200)
    assert files["volume"] == "MNI/Schaefer2018_200Parcels_7Networks_order_FSLMNI152_1mm.nii.gz"
    assert files["lh"] == ("FreeSurfer5.3/fsaverage5/label/"
                           "lh.Schaefer2018_200Parcels_7Networks_order.annot")
    assert len(catalog.CBIG_COMMIT) == 40 and catalog.CBIG_COMMIT in catalog.CBIG_URL
    assert "/master/" not in catalog.CBIG_URL
    assert set(atlases.BUILTIN) == {"desikan_killiany", "schaefer100", "schaefer200", "schaefer400"}
    with pytest.raises(ValueError, match="choose one of"):
        catalog.schaefer_files(300)


def test_fetch_schaefer_from_pinned_url(server, schaefer_files, tmp_path, monkeypatch):
    files, truth = schaefer_files
    base = serve(server, files)
    monkeypatch.setattr(schaefer, "CBIG_URL", base)
    lock = tmp_path / "atlases.lock.json"
    dest = tmp_path / "atlases" / "sch"
    schaefer.fetch_schaefer(100, dest, lock_file=lock, **FAST)
    for f in atlases.ATLAS_FILES:
        assert (dest / f).is_file()
    atlas = atlases.load_atlas("sch", {"builtin": "schaefer100", "matching": "volume"},
                               root=tmp_path / "atlases")
    info = atlas.info
    assert len(info) == 100 and info["region"].is_unique
    assert info["region"].tolist() == truth["names"]  # Schaefer labels are unique: kept
    assert set(info.loc[info["id"] <= 50, "hemisphere"]) == {"L"}
    assert (set(info.loc[info["id"] > 50, "hemisphere"]) == {"R"}
            and set(info["structure"]) == {"cortex"})
    # annotation -> GIFTI: rh parcels renumbered 51..100 by name, background 0
    for h, path in zip(("lh", "rh"), atlas.surface):
        np.testing.assert_array_equal(nib.load(path).agg_data(), truth[h])
    np.testing.assert_array_equal(np.asarray(nib.load(atlas.volume).dataobj), truth["volume"])
    # lock file: size + SHA-256 of exactly the served bytes
    entries = schaefer.read_atlas_lock(lock)
    assert set(entries) == {f"schaefer/{rel}" for rel in files}
    for rel, body in files.items():
        e = entries[f"schaefer/{rel}"]
        assert e["size"] == len(body) and e["sha256"] == hashlib.sha256(body).hexdigest()
        assert e["url"] == f"{base}/{rel}"
    # a second fetch reuses the verified downloads
    n = len(server.requested)
    schaefer.fetch_schaefer(100, dest, lock_file=lock, **FAST)
    assert len(server.requested) == n


def test_fetch_schaefer_lock_mismatch_leaves_nothing(server, schaefer_files, tmp_path):
    files, _ = schaefer_files
    lock = tmp_path / "lock.json"
    base = serve(server, files)
    schaefer.fetch_schaefer(100, tmp_path / "a", base, lock_file=lock, **FAST)
    before = lock.read_text()
    # the server now serves another table: same name, different bytes
    rel = "MNI/Schaefer2018_100Parcels_7Networks_order.txt"
    server.routes[f"/cbig/{rel}"].body = files[rel].replace(b"Net1_1", b"Net9_1")
    with pytest.raises(ChecksumError, match=r"SHA-256|bytes"):
        schaefer.fetch_schaefer(100, tmp_path / "b", base, lock_file=lock, **FAST)
    assert not any((tmp_path / "b" / f).exists() for f in atlases.ATLAS_FILES)
    assert lock.read_text() == before
    # a local copy that differs from the lock is refused too, naming the file
    local = tmp_path / "local"
    local.mkdir()
    for r, body in files.items():
        (local / Path(r).name).write_bytes(body)
    (local / Path(rel).name).write_bytes(b"1\tx\t0\t0\t0\t0\n")
    with pytest.raises(ChecksumError, match="order.txt does not match"):
        schaefer.fetch_schaefer(100, tmp_path / "c", local, lock_file=lock)
    assert not any((tmp_path / "c" / f).exists() for f in atlases.ATLAS_FILES)


@pytest.mark.parametrize("layout", ["flat", "cbig"])
def test_fetch_schaefer_from_local_folder_offline(schaefer_files, tmp_path, monkeypatch, layout):
    files, truth = schaefer_files
    # any network access would fail loudly
    monkeypatch.setattr(schaefer, "CBIG_URL", "http://127.0.0.1:9/nowhere")
    src = tmp_path / "mirror"
    for rel, body in files.items():
        p = src / (Path(rel).name if layout == "flat" else rel)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(body)
    dest = tmp_path / "out"
    schaefer.fetch_schaefer(100, dest, str(src), lock_file=tmp_path / "lock.json")
    atlas = atlases.load_atlas_folder("s", dest)
    np.testing.assert_array_equal(nib.load(atlas.surface[1]).agg_data(), truth["rh"])
    assert "sha256" in (dest / "provenance.json").read_text()
    (src / (Path(next(iter(files))).name if layout == "flat" else next(iter(files)))).unlink()
    with pytest.raises(FileNotFoundError, match="not in the atlas source folder"):
        schaefer.fetch_schaefer(100, tmp_path / "out2", src)


def test_fetch_schaefer_errors(server, schaefer_files, tmp_path):
    files, _ = schaefer_files
    base = serve(server, {k: v for k, v in files.items() if not k.endswith(".txt")})
    with pytest.raises(DownloadError, match="404"):
        schaefer.fetch_schaefer(100, tmp_path / "x", base, **FAST)
    # an annotation whose names the table does not know
    bad = dict(files)
    rel = "MNI/Schaefer2018_100Parcels_7Networks_order.txt"
    bad[rel] = files[rel].replace(b"7Networks_LH_Net1_1\t", b"7Networks_LH_Other_1\t")
    base = serve(server, bad, prefix="/bad")
    with pytest.raises(AtlasError, match="not in the label table"):
        schaefer.fetch_schaefer(100, tmp_path / "y", base, **FAST)
    assert not any((tmp_path / "y" / f).exists() for f in atlases.ATLAS_FILES)


def test_unfetched_builtin_says_how_to_fetch(tmp_path):
    with pytest.raises(FileNotFoundError, match="fetch_atlas"):
        atlases.load_atlas("s", {"builtin": "schaefer400"}, root=tmp_path)
    with pytest.raises(AtlasError, match="cannot be combined"):
        atlases.load_atlas("s", {"builtin": "schaefer400", "table": "t.tsv"}, root=tmp_path)


def test_spins_run_on_fetched_schaefer(server, schaefer_files, tmp_path):
    from itx import nulls

    schaefer.fetch_schaefer(100, tmp_path / "s", serve(server, schaefer_files[0]), **FAST)
    atlas = atlases.load_atlas_folder("s", tmp_path / "s")
    ids = atlas.info["id"].tolist()
    idx = nulls.spin_nulls(atlases.fsaverage5_surface(atlas), nulls.fsaverage5_spheres(), ids,
                           n_perm=20, method="alexander_bloch", seed=1)
    assert idx.shape == (100, 20)
    again = nulls.spin_nulls(atlas.surface, nulls.fsaverage5_spheres(), ids,
                             n_perm=20, method="alexander_bloch", seed=1)
    np.testing.assert_array_equal(idx, again)


# ---------------------------------------------------------------------------
# user volume atlases and their checks
# ---------------------------------------------------------------------------


def mni_affine(mm=2.0, origin=(-60, -84, -48)):
    aff = np.diag([mm, mm, mm, 1.0])
    aff[:3, 3] = origin
    return aff


def write_volume_atlas(tmp_path, data=None, affine=None, rows=None, name="atlas"):
    """A 4-parcel MNI atlas (2 left, 2 right) and its table; returns (volume, table)."""
    if data is None:
        data = np.zeros((61, 72, 60), np.int16)
        data[10:25, 20:35, 20:40] = 1   # x -40..-12: left
        data[10:25, 35:50, 20:40] = 2
        data[36:51, 20:35, 20:40] = 3   # x 12..40: right
        data[36:51, 35:50, 20:40] = 4
    vol = tmp_path / f"{name}.nii.gz"
    nib.Nifti1Image(data, mni_affine() if affine is None else affine).to_filename(vol)
    if rows is None:
        rows = [(1, "front", "L", "cortex"), (2, "back", "L", "cortex"),
                (3, "front", "R", "cortex"), (4, "back", "R", "cortex")]
    table = tmp_path / f"{name}.tsv"
    pd.DataFrame(rows, columns=["id", "label", "hemisphere", "structure"]).to_csv(
        table, sep="\t", index=False)
    return vol, table


def test_user_volume_atlas(tmp_path, monkeypatch):
    write_volume_atlas(tmp_path)
    monkeypatch.chdir(tmp_path)  # config paths are relative to the working directory
    atlas = atlases.load_atlas("mine", {"volume": "atlas.nii.gz", "table": "atlas.tsv",
                                        "matching": "volume"})
    assert atlas.surface is None and atlas.volume == Path("atlas.nii.gz")
    assert atlas.info["region"].tolist() == ["L_front", "L_back", "R_front", "R_back"]
    with pytest.raises(AtlasError, match="no surface.*burt2020 or moran"):
        atlases.require_surface(atlas)
    with pytest.raises(AtlasError, match="no surface"):
        atlases.fsaverage5_surface(atlas)


def _expect(tmp_path, match, **kw):
    vol, table = write_volume_atlas(tmp_path, **kw)
    with pytest.raises(AtlasError, match=match) as err:
        atlases.user_atlas("mine", table, volume=vol)
    return str(err.value)


def test_volume_label_not_in_table(tmp_path):
    rows = [(1, "front", "L", "cortex"), (2, "back", "L", "cortex"), (3, "front", "R", "cortex")]
    msg = _expect(tmp_path, r"label\(s\) \[4\] are in .*atlas.nii.gz but not in .*atlas.tsv",
                  rows=rows)
    assert "add a row" in msg


def test_volume_empty_parcel(tmp_path):
    rows = [(1, "front", "L", "cortex"), (2, "back", "L", "cortex"), (3, "front", "R", "cortex"),
            (4, "back", "R", "cortex"), (9, "ghost", "R", "cortex")]
    msg = _expect(tmp_path, r"parcel\(s\) \[9\] of .*atlas.tsv have no voxel", rows=rows)
    assert "empty parcels" in msg and "remove them from the table" in msg


def test_volume_non_integer_labels(tmp_path):
    data = np.zeros((61, 72, 60), np.float32)
    data[10:25, 20:35, 20:40] = 1.5
    msg = _expect(tmp_path, r"atlas.nii.gz: the label image has non-integer labels \(e.g. 1.5\)",
                  data=data)
    assert "nearest-neighbour" in msg


def test_volume_wrong_shape(tmp_path):
    data = np.ones((10, 10, 10, 3), np.int16)
    _expect(tmp_path, r"atlas.nii.gz: shape \(10, 10, 10, 3\) is not a 3D label image", data=data)


def test_volume_not_in_mni_space(tmp_path):
    # voxel coordinates as world coordinates (identity affine): a classic export bug
    _expect(tmp_path, r"atlas.nii.gz: labelled voxels span x 40..200.*outside MNI152 space",
            affine=np.diag([4.0, 4.0, 4.0, 1.0]))


def test_volume_hemisphere_mixup(tmp_path):
    rows = [(1, "front2", "R", "cortex"), (2, "back", "L", "cortex"), (3, "front", "R", "cortex"),
            (4, "back", "R", "cortex")]
    _expect(tmp_path, r"parcel\(s\) \[1\] are on the other side of the midline", rows=rows)


def test_volume_several_problems_in_one_message(tmp_path):
    rows = [(1, "front", "L", "cortex"), (7, "ghost", "L", "cortex")]
    msg = _expect(tmp_path, "volume atlas check failed", rows=rows)
    assert "[2, 3, 4] are in" in msg and "[7] of" in msg


@pytest.mark.parametrize("rows, columns, match", [
    ([(1, "a", "L")], ["id", "label", "hemisphere"], r"lacks column\(s\) \['structure'\]"),
    ([(1.5, "a", "L", "cortex")], None, "not integers"),
    ([(0, "a", "L", "cortex")], None, "id 0"),
    ([(1, "a", "middle", "cortex")], None, r"hemisphere value\(s\) \['middle'\]"),
    ([(1, "a", "L", "cortexx")], None, r"structure value\(s\) \['cortexx'\]"),
    ([(1, "a", "L", "cortex"), (1, "b", "L", "cortex")], None, "repeats parcel id"),
])
def test_bad_tables(tmp_path, rows, columns, match):
    table = tmp_path / "t.tsv"
    pd.DataFrame(rows, columns=columns or ["id", "label", "hemisphere", "structure"]).to_csv(
        table, sep="\t", index=False)
    with pytest.raises(AtlasError, match=match) as err:
        atlases.read_atlas_table(table)
    assert str(table) in str(err.value)


def test_table_spellings_are_normalised(tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("id,label,hemisphere,structure\n2,b,rh,subcortex\n1,a,left,Cortex\n")
    info = atlases.read_atlas_table(table)
    assert info["hemisphere"].tolist() == ["L", "R"]
    assert info["structure"].tolist() == ["cortex", "subcortex/brainstem"]


def test_dk_passes_every_check():
    dk = atlases.load_atlas("dk", "desikan_killiany")
    atlases.check_atlas(dk)
    assert atlases.fsaverage5_surface(dk) == dk.surface


# ---------------------------------------------------------------------------
# user surface atlases (fsaverage5/6/7)
# ---------------------------------------------------------------------------


def label_gifti(labels, names=None):
    darr = nib.gifti.GiftiDataArray(np.asarray(labels, np.int32), intent="NIFTI_INTENT_LABEL",
                                    datatype="NIFTI_TYPE_INT32")
    table = nib.gifti.GiftiLabelTable()
    for key, name in (names or {}).items():
        lab = nib.gifti.GiftiLabel(key, 0.5, 0.5, 0.5, 1.0)
        lab.label = name
        table.labels.append(lab)
    return nib.gifti.GiftiImage(darrays=[darr], labeltable=table)


def nested_labels(fs5, n_total, rng):
    """Labels on a finer fsaverage mesh whose first 10,242 vertices are `fs5`."""
    extra = rng.choice(np.unique(fs5), n_total - N5)
    return np.concatenate([fs5, extra])


@pytest.fixture(scope="module")
def fs5_parcels():
    """6 parcels per hemisphere on fsaverage5 (ids 1-6 left, 11-16 right), 0 = a cap."""
    rng = np.random.default_rng(3)
    out = []
    for offset, sphere in zip((0, 10), fs5_spheres()):
        cap = sphere[:, 2] > 95
        lab = nearest_seed_labels(sphere, 6, rng, ~cap) + offset
        lab[cap] = 0
        out.append(lab)
    return out


def write_surface_atlas(tmp_path, lh, rh, rows=None, names=None):
    paths = []
    for h, lab in (("lh", lh), ("rh", rh)):
        p = tmp_path / f"{h}.label.gii"
        nib.save(label_gifti(lab, names), p)
        paths.append(p)
    rows = rows or ([(i, f"p{i}", "L", "cortex") for i in range(1, 7)]
                    + [(i, f"p{i}", "R", "cortex") for i in range(11, 17)])
    table = tmp_path / "surf.tsv"
    pd.DataFrame(rows, columns=["id", "label", "hemisphere", "structure"]).to_csv(
        table, sep="\t", index=False)
    return paths, table


@pytest.mark.parametrize("density", ["fsaverage5", "fsaverage6", "fsaverage7"])
def test_user_surface_atlas_each_density(tmp_path, fs5_parcels, density):
    rng = np.random.default_rng(4)
    n = atlases.DENSITIES[density]
    lh, rh = (nested_labels(p, n, rng) if n > N5 else p for p in fs5_parcels)
    (lpath, rpath), table = write_surface_atlas(tmp_path, lh, rh)
    atlas = atlases.load_atlas("s", {"surface": [str(lpath), str(rpath)], "table": str(table),
                                     "matching": "surface"})
    assert atlas.density == density and atlas.volume is None
    # spins and abagen get the labels at the nested fsaverage5 vertices
    five = atlases.fsaverage5_surface(atlas, tmp_path / "fs5")
    for path, expect in zip(five, fs5_parcels):
        np.testing.assert_array_equal(nib.load(path).agg_data(), expect)
    # the declared density must agree with the files
    other = "fsaverage6" if density != "fsaverage6" else "fsaverage7"
    with pytest.raises(AtlasError, match=f"atlas says density {other}.*fix the 'density'"):
        atlases.user_atlas("s", table, surface=[lpath, rpath], density=other)


def test_fsaverage7_parcel_lost_on_fsaverage5(tmp_path, fs5_parcels):
    lh = np.concatenate([fs5_parcels[0], np.full(atlases.DENSITIES["fsaverage7"] - N5, 1)])
    lh[N5:N5 + 50] = 7  # a parcel that lives only between fsaverage5 vertices
    rh = nested_labels(fs5_parcels[1], atlases.DENSITIES["fsaverage7"], np.random.default_rng(0))
    rows = [(i, f"p{i}", "L", "cortex") for i in range(1, 8)] + \
        [(i, f"p{i}", "R", "cortex") for i in range(11, 17)]
    paths, table = write_surface_atlas(tmp_path, lh, rh, rows=rows)
    atlas = atlases.user_atlas("s", table, surface=paths)
    with pytest.raises(AtlasError, match=r"\['p7'\] have no vertex among the 10,242"):
        atlases.fsaverage5_surface(atlas)


def _surface_error(tmp_path, lh, rh, match, rows=None, names=None, density=None):
    paths, table = write_surface_atlas(tmp_path, lh, rh, rows=rows, names=names)
    with pytest.raises(AtlasError, match=match) as err:
        atlases.user_atlas("s", table, surface=paths, density=density)
    return str(err.value)


def test_surface_vertex_counts(tmp_path, fs5_parcels):
    lh, rh = fs5_parcels
    msg = _surface_error(tmp_path, lh[:10000], rh, r"lh.label.gii: 10000 vertices is not an "
                         "fsaverage mesh")
    assert "mri_surf2surf" in msg
    big = nested_labels(rh, atlases.DENSITIES["fsaverage6"], np.random.default_rng(0))
    _surface_error(tmp_path, lh, big, "is fsaverage5 but .* is fsaverage6")


def test_surface_label_not_in_table_and_empty_parcel(tmp_path, fs5_parcels):
    lh, rh = fs5_parcels
    rows = [(i, f"p{i}", "L", "cortex") for i in range(1, 6)] + \
        [(i, f"p{i}", "R", "cortex") for i in range(11, 18)]
    msg = _surface_error(tmp_path, lh, rh, "surface atlas check failed", rows=rows)
    assert "label(s) [6] are in" in msg and "lh.label.gii" in msg
    assert "parcel(s) [17] of" in msg and "empty parcels" in msg


def test_surface_hemisphere_problems(tmp_path, fs5_parcels):
    lh, rh = fs5_parcels
    # right file reusing left ids (as .annot files do): both hemispheres + wrong side
    msg = _surface_error(tmp_path, lh, np.where(rh > 0, rh - 10, 0), "surface atlas check failed",
                         rows=[(i, f"p{i}", "L", "cortex") for i in range(1, 7)])
    assert "appear in both" in msg and "right hemisphere file" in msg


def test_surface_background_names_and_non_integer(tmp_path, fs5_parcels):
    lh, rh = fs5_parcels
    # a medial wall labelled 99 but named as such is background, not a missing parcel
    lh = np.where(lh == 0, 99, lh)
    paths, table = write_surface_atlas(tmp_path, lh, rh, names={99: "Medial_wall"})
    atlases.user_atlas("s", table, surface=paths)
    g = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.full(N5, 1.25, np.float32))])
    nib.save(g, paths[0])
    with pytest.raises(AtlasError, match="lh.label.gii: the surface label file has "
                                         "non-integer labels"):
        atlases.user_atlas("s", table, surface=paths)


def test_surface_only_atlas_needs_every_parcel_on_the_surface(tmp_path, fs5_parcels):
    rows = [(i, f"p{i}", "L", "cortex") for i in range(1, 7)] + \
        [(i, f"p{i}", "R", "cortex") for i in range(11, 17)] + [(20, "thal", "L", "subcortex")]
    _surface_error(tmp_path, *fs5_parcels, r"parcel\(s\) \[20\] of", rows=rows)


def test_volume_and_surface_atlas(tmp_path, fs5_parcels):
    """Subcortical parcels need no vertex when the atlas has a volume (as DK)."""
    data = np.zeros((61, 72, 60), np.int16)
    for k, i in enumerate(range(1, 7)):
        data[10 + 2 * k:12 + 2 * k, 20:30, 20:30] = i
    for k, i in enumerate(range(11, 17)):
        data[40 + 2 * k:42 + 2 * k, 20:30, 20:30] = i
    data[28:30, 30:34, 30:34] = 20  # x -4..-2: left subcortex
    rows = [(i, f"p{i}", "L", "cortex") for i in range(1, 7)] + \
        [(i, f"p{i}", "R", "cortex") for i in range(11, 17)] + [(20, "thal", "L", "subcortex")]
    vol, _ = write_volume_atlas(tmp_path, data=data, rows=rows)
    paths, table = write_surface_atlas(tmp_path, *fs5_parcels, rows=rows)
    atlas = atlases.load_atlas("both", {"volume": str(vol), "surface": [str(p) for p in paths],
                                        "table": str(table)})
    assert atlas.volume is not None and atlas.surface is not None


# ---------------------------------------------------------------------------
# NIfTI maps on any grid; GIFTI maps on fsaverage5/6/7
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dk():
    return atlases.load_atlas("dk", "desikan_killiany")


@pytest.fixture(scope="module")
def dk_truth(dk):
    """Exact parcel means of f(x, y, z) = x + 2y - z over the DK voxels (pandas groupby)."""
    img = nib.load(dk.volume)
    lab = np.asarray(img.dataobj).astype(int).ravel()
    xyz = nib.affines.apply_affine(img.affine, np.indices(img.shape).reshape(3, -1).T)
    f = xyz[:, 0] + 2 * xyz[:, 1] - xyz[:, 2]
    means = pd.Series(f[lab > 0]).groupby(lab[lab > 0]).mean()
    return pd.Series(means.loc[dk.info["id"]].to_numpy(), index=dk.info["region"].to_numpy())


def field_map(path, affine, shape):
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(affine, ijk)
    f = (xyz[:, 0] + 2 * xyz[:, 1] - xyz[:, 2]).reshape(shape).astype(np.float32)
    nib.Nifti1Image(f, affine).to_filename(path)
    return path


@pytest.mark.parametrize("mm, flip", [(1.0, False), (2.0, False), (3.0, False), (2.5, True)])
def test_nifti_map_any_resolution(dk, dk_truth, tmp_path, mm, flip):
    # a field of view larger than the atlas's, on another grid (and, for 2.5 mm,
    # stored x-flipped: LPS-like voxel order, as some tools write it)
    lo, hi = np.array([-100.0, -140.0, -100.0]), np.array([100.0, 110.0, 110.0])
    shape = tuple(int(np.ceil((h - l) / mm)) + 1 for l, h in zip(lo, hi))
    aff = np.diag([mm, mm, mm, 1.0])
    aff[:3, 3] = lo
    if flip:
        aff[0, 0], aff[0, 3] = -mm, hi[0]
    path = field_map(tmp_path / "map.nii.gz", aff, shape)
    got = parcellate.parcellate_volume(path, dk.volume, dk.info)
    # cubic-spline resampling reproduces a linear field exactly inside the grid
    np.testing.assert_allclose(got.to_numpy(), dk_truth.to_numpy(), atol=1e-2)


def test_nifti_map_fsl_2mm_grid(dk, dk_truth, tmp_path):
    """FSL's MNI152 2 mm grid (91 x 109 x 91), the commonest published map shape."""
    aff = np.diag([-2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [90, -126, -72]
    path = field_map(tmp_path / "fsl.nii.gz", aff, (91, 109, 91))
    got = parcellate.parcellate_volume(path, dk.volume, dk.info)
    np.testing.assert_allclose(got.to_numpy(), dk_truth.to_numpy(), atol=0.5)


def test_nifti_map_partial_field_of_view_is_not_zero_filled(dk, tmp_path):
    """Atlas voxels outside the map are ignored (NaN), not counted as 0."""
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = [-100, -140, -100]
    shape = (50, 126, 106)  # x -100..-2: the left hemisphere only
    path = tmp_path / "left.nii.gz"
    nib.Nifti1Image(np.full(shape, 5.0, np.float32), aff).to_filename(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = parcellate.parcellate_volume(path, dk.volume, dk.info, min_coverage=0.3)
    left_cortex = dk.info.loc[(dk.info["hemisphere"] == "L") & (dk.info["structure"] == "cortex"),
                              "region"]
    np.testing.assert_allclose(got[left_cortex].dropna(), 5.0, rtol=1e-6)
    assert got[left_cortex].notna().sum() >= 30
    right = dk.info.loc[dk.info["hemisphere"] == "R", "region"]
    assert got[right].isna().all()


def test_nifti_map_wrong_space_or_shape(dk, tmp_path):
    # voxel indices as world coordinates: the map sits beside the brain
    path = tmp_path / "vox.nii.gz"
    nib.Nifti1Image(np.ones((91, 109, 91), np.float32), np.eye(4)).to_filename(path)
    with pytest.raises(ValueError, match=r"vox.nii.gz: its field of view covers \d+% .*"
                                         "not in MNI152 space"):
        parcellate.parcellate_volume(path, dk.volume, dk.info)
    path4d = tmp_path / "series.nii.gz"
    nib.Nifti1Image(np.ones((10, 10, 10, 3), np.float32), mni_affine()).to_filename(path4d)
    with pytest.raises(ValueError, match=r"series.nii.gz: expected a 3D volume.*one map per file"):
        parcellate.parcellate_volume(path4d, dk.volume, dk.info)
    empty = tmp_path / "nan.nii.gz"
    img = nib.load(dk.volume)
    nib.Nifti1Image(np.full(img.shape, np.nan, np.float32), img.affine).to_filename(empty)
    with pytest.raises(ValueError, match="no parcel of the atlas has a finite map value"):
        parcellate.parcellate_volume(empty, dk.volume, dk.info)


def func_gifti(path, values):
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(
        np.asarray(values, np.float32))]), path)
    return path


@pytest.mark.parametrize("density", ["fsaverage5", "fsaverage6", "fsaverage7"])
def test_gifti_map_each_density_on_fs5_atlas(dk, tmp_path, density):
    rng = np.random.default_rng(7)
    n = atlases.DENSITIES[density]
    values = [rng.normal(size=n) for _ in range(2)]
    paths = [func_gifti(tmp_path / f"{h}.func.gii", v) for h, v in zip("LR", values)]
    got = parcellate.parcellate_surface(paths, dk.surface, dk.info)
    # brute force: the map at the fsaverage5 vertices, averaged per DK parcel
    labels = [np.asarray(nib.load(p).agg_data()) for p in dk.surface]
    for rid, region in zip(dk.info["id"], dk.info["region"]):
        vals = np.concatenate([v[:N5][lab == rid] for v, lab in zip(values, labels)])
        expect = vals.astype(np.float32).astype(float).mean() if vals.size else np.nan
        assert got[region] == pytest.approx(expect, rel=1e-9, nan_ok=True)


def test_gifti_map_fs5_on_fs7_atlas(tmp_path, fs5_parcels):
    rng = np.random.default_rng(8)
    n7 = atlases.DENSITIES["fsaverage7"]
    lh, rh = (nested_labels(p, n7, rng) for p in fs5_parcels)
    paths, table = write_surface_atlas(tmp_path, lh, rh)
    atlas = atlases.user_atlas("s", table, surface=paths)
    values = [rng.normal(size=N5) for _ in range(2)]
    maps = [func_gifti(tmp_path / f"{h}.func.gii", v) for h, v in zip("LR", values)]
    got = parcellate.parcellate_map(maps, "gifti", atlas)
    allv = np.concatenate(values).astype(np.float32).astype(float)
    alll = np.concatenate(fs5_parcels)
    expect = [allv[alll == i].mean() for i in atlas.info["id"]]
    np.testing.assert_allclose(got.to_numpy(), expect, rtol=1e-9)


def test_gifti_map_errors(dk, tmp_path):
    ok = func_gifti(tmp_path / "ok.func.gii", np.zeros(N5))
    odd = func_gifti(tmp_path / "odd.func.gii", np.zeros(12345))
    with pytest.raises(ValueError, match="odd.func.gii: 12345 vertices is not an fsaverage mesh"):
        parcellate.parcellate_surface([odd, odd], dk.surface, dk.info)
    fs6 = func_gifti(tmp_path / "fs6.func.gii", np.zeros(atlases.DENSITIES["fsaverage6"]))
    with pytest.raises(ValueError, match="both hemispheres must be on the same mesh"):
        parcellate.parcellate_surface([ok, fs6], dk.surface, dk.info)
    two = tmp_path / "two.func.gii"
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(N5, np.float32))] * 2),
             two)
    with pytest.raises(ValueError, match="two.func.gii: 2 data arrays; give one map per file"):
        parcellate.parcellate_surface([two, ok], dk.surface, dk.info)
    with pytest.raises(ValueError, match="pairs"):
        parcellate.parcellate_surface([ok], dk.surface, dk.info)


def test_map_format_needs_matching_atlas_part(tmp_path):
    write_volume_atlas(tmp_path)
    vol_only = atlases.user_atlas("v", tmp_path / "atlas.tsv", volume=tmp_path / "atlas.nii.gz")
    with pytest.raises(ValueError, match="has no surface, so the GIFTI map .* NIfTI volume"):
        parcellate.parcellate_map(["a", "b"], "gifti", vol_only)


# ---------------------------------------------------------------------------
# config schema
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("atlases_cfg, valid", [
    ({"dk": {"builtin": "desikan_killiany"}}, True),
    ({"s": {"builtin": "schaefer400", "source": "/data/cbig"}}, True),
    ({"v": {"volume": "a.nii.gz", "table": "a.tsv"}}, True),
    ({"s": {"surface": ["l.gii", "r.gii"], "table": "t.tsv", "density": "fsaverage6",
            "matching": "surface"}}, True),
    ({"dk": {"builtin": "desikan_killiany"}, "s": {"builtin": "schaefer100"},
      "v": {"volume": "a.nii.gz", "table": "a.tsv"}}, True),
    ({"x": {"builtin": "schaefer300"}}, False),
    ({"x": {"builtin": "schaefer100", "table": "t.tsv"}}, False),
    ({"x": {"volume": "a.nii.gz"}}, False),
    ({"x": {"table": "t.tsv"}}, False),
    ({"x": {"volume": "a", "table": "t", "source": "/x"}}, False),
    ({"x": {"surface": ["l.gii"], "table": "t"}}, False),
    ({"x": {"surface": ["l", "r"], "table": "t", "density": "fsaverage4"}}, False),
])
def test_config_schema_atlas_forms(atlases_cfg, valid):
    from snakemake.utils import validate

    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg = copy.deepcopy(cfg)
    cfg["atlases"] = atlases_cfg
    schema = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")
    if valid:
        validate(cfg, schema)
    else:
        with pytest.raises(Exception, match="Error validating"):
            validate(cfg, schema)
