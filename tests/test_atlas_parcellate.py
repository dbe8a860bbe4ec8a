"""Atlas region tables and map parcellation against independent computations."""
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from itx import atlas as atlases
from itx import parcellate

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def dk():
    return atlases.load_atlas("dk", "desikan_killiany")


def test_dk_region_names(dk):
    info = dk.info
    assert len(info) == 83 and info["region"].is_unique
    assert info.loc[info["id"] == 1, "region"].item() == "L_bankssts"
    assert info.loc[info["id"] == 75, "region"].item() == "R_insula"
    left = atlases.scope_regions(info, "left_cortex")
    assert len(left) == 34 and set(left["hemisphere"]) == {"L"}
    assert len(atlases.scope_regions(info, "cortex")) == 68
    assert len(atlases.scope_regions(info, "cortex_subcortex")) == 83


def test_bad_atlas_inputs():
    with pytest.raises(ValueError, match="unknown built-in atlas"):
        atlases.load_atlas("x", "nope")
    with pytest.raises(ValueError, match="lacks column"):
        atlases.add_region_names(pd.DataFrame({"id": [1], "label": ["a"]}))
    with pytest.raises(ValueError, match="repeats parcel id"):
        atlases.add_region_names(pd.DataFrame(
            {"id": [1, 1], "label": ["a", "b"], "hemisphere": "L", "structure": "cortex"}))
    info = atlases.add_region_names(pd.DataFrame(
        {"id": [2, 1], "label": ["b", "a"], "hemisphere": "L", "structure": "cortex"}))
    assert info["region"].tolist() == ["a", "b"]  # unique labels kept, id order
    with pytest.raises(ValueError, match="unknown scope"):
        atlases.scope_regions(info, "brain")


def test_volume_parcellation_matches_nilearn(dk, tmp_path):
    from nilearn.regions import img_to_signals_labels

    atlas_img = nib.load(dk.volume)
    rng = np.random.default_rng(0)
    data = rng.normal(size=atlas_img.shape).astype(np.float32)
    img = nib.Nifti1Image(data, atlas_img.affine)
    path = tmp_path / "map.nii.gz"
    img.to_filename(path)
    ours = parcellate.parcellate_volume(path, dk.volume, dk.info)
    img4d = nib.Nifti1Image(data[..., None], atlas_img.affine)
    signals, labels = img_to_signals_labels(img4d, atlas_img, background_label=0,
                                            strategy="mean")[:2]
    ref = pd.Series(signals[0], index=np.asarray(labels).astype(int))
    np.testing.assert_allclose(ours.to_numpy(), ref.loc[dk.info["id"]].to_numpy(), rtol=1e-6)
    # a brute-force mean of one parcel
    lab = np.asarray(atlas_img.dataobj)
    assert ours["L_insula"] == pytest.approx(data[lab == 34].mean(dtype=np.float64), rel=1e-6)


def test_volume_parcellation_resamples_and_ignores_nan(dk, tmp_path):

    atlas_img = nib.load(dk.volume)
    lab = np.asarray(atlas_img.dataobj).astype(int)
    truth = dk.info.set_index("region")["id"].astype(float)
    # a map equal to the parcel id inside each parcel; one parcel all NaN
    data = lab.astype(np.float32)
    data[lab == 5] = np.nan
    img = nib.Nifti1Image(data, atlas_img.affine)
    exact = parcellate.parcellate_volume(img, dk.volume, dk.info)
    nan_region = dk.info.loc[dk.info["id"] == 5, "region"].item()
    assert np.isnan(exact[nan_region])
    np.testing.assert_allclose(exact.drop(nan_region), truth.drop(nan_region))
    # a smooth map (MNI y + 2 z, in mm) given on a 2 mm grid is resampled
    # onto the atlas grid and gives the parcel means of the same function
    coarse_aff = atlas_img.affine @ np.diag([2, 2, 2, 1])
    shape = tuple(int(np.ceil(n / 2)) for n in atlas_img.shape)
    ijk = np.indices(shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(coarse_aff, ijk)
    field = (xyz[:, 1] + 2 * xyz[:, 2]).reshape(shape).astype(np.float32)
    path = tmp_path / "coarse.nii.gz"
    nib.Nifti1Image(field, coarse_aff).to_filename(path)
    resampled = parcellate.parcellate_volume(path, dk.volume, dk.info)
    fine = nib.affines.apply_affine(atlas_img.affine, np.indices(lab.shape).reshape(3, -1).T)
    f_fine = fine[:, 1] + 2 * fine[:, 2]
    flat = lab.ravel()
    expect = pd.Series([f_fine[flat == i].mean() for i in dk.info["id"]], index=truth.index)
    np.testing.assert_allclose(resampled, expect, atol=0.5)


def test_surface_parcellation_against_loop(dk, tmp_path):
    rng = np.random.default_rng(1)
    paths = []
    raw = []
    for hemi, lpath in zip("LR", dk.surface):
        n = nib.load(lpath).agg_data().shape[0]
        values = rng.normal(size=n).astype(np.float32)
        values[:10] = np.nan
        raw.append(values)
        g = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(values)])
        p = tmp_path / f"map_{hemi}.func.gii"
        nib.save(g, p)
        paths.append(p)
    ours = parcellate.parcellate_surface(paths, dk.surface, dk.info)
    labels = [np.asarray(nib.load(p).agg_data()).astype(int) for p in dk.surface]
    allv, alll = np.concatenate(raw), np.concatenate(labels)
    for rid, region in zip(dk.info["id"], dk.info["region"]):
        sel = (alll == rid) & np.isfinite(allv)
        expect = allv[sel].astype(float).mean() if sel.any() else np.nan
        assert ours[region] == pytest.approx(expect, rel=1e-9, nan_ok=True)
    # subcortical DK regions have no surface vertices
    assert np.isnan(ours["L_thalamusproper"])
    bad = tmp_path / "short.func.gii"
    nib.save(nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(np.zeros(5, np.float32))]), bad)
    with pytest.raises(ValueError, match="vertices"):
        parcellate.parcellate_surface([bad, paths[1]], dk.surface, dk.info)


def test_region_table_by_name_and_id(dk, tmp_path):
    t = tmp_path / "t.tsv"
    pd.DataFrame({"region": ["L_insula", "l_BANKSSTS"], "value": [1.0, 2.0]}).to_csv(
        t, sep="\t", index=False)
    s = parcellate.read_region_table(t, dk.info)
    assert s["L_insula"] == 1.0 and s["L_bankssts"] == 2.0 and s.isna().sum() == 81
    t2 = tmp_path / "ids.csv"
    pd.DataFrame({"id": [34, 1], "thickness": [1.0, 2.0]}).to_csv(t2, index=False)
    s2 = parcellate.read_region_table(t2, dk.info)
    assert s2["L_insula"] == 1.0 and s2["L_bankssts"] == 2.0


def test_region_table_errors(dk, tmp_path):
    t = tmp_path / "bad.tsv"
    pd.DataFrame({"region": ["L_nowhere"], "value": [1.0]}).to_csv(t, sep="\t", index=False)
    with pytest.raises(ValueError, match="not in the atlas.*L_nowhere"):
        parcellate.read_region_table(t, dk.info)
    pd.DataFrame({"region": ["L_insula", "L_insula"], "value": [1.0, 2]}).to_csv(
        t, sep="\t", index=False)
    with pytest.raises(ValueError, match="twice"):
        parcellate.read_region_table(t, dk.info)
    pd.DataFrame({"where": ["L_insula"], "value": [1.0]}).to_csv(t, sep="\t", index=False)
    with pytest.raises(ValueError, match="no region column"):
        parcellate.read_region_table(t, dk.info)
    pd.DataFrame({"region": ["L_insula"], "a": [1.0], "b": [2.0]}).to_csv(t, sep="\t", index=False)
    with pytest.raises(ValueError, match="'column' field"):
        parcellate.read_region_table(t, dk.info)
    with pytest.raises(ValueError, match="no column 'c'"):
        parcellate.read_region_table(t, dk.info, column="c")


@pytest.mark.skipif(not SHARED.exists(), reason="shared data not present")
def test_enigma_table_and_sign(dk):
    path = SHARED / "enigma" / "summary_statistics" / "mddadult_case-controls_CortThick.csv"
    raw = pd.read_csv(path)
    s = parcellate.parcellate_map(path, "table", dk, column="d_icv", sign=-1)
    assert s.notna().sum() == 68
    assert s["L_bankssts"] == pytest.approx(-raw.set_index("Structure").loc["L_bankssts", "d_icv"])
    table = parcellate.map_table(s, dk.info)
    assert list(table.columns) == ["region", "id", "hemisphere", "structure", "value"]
