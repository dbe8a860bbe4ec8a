"""Dense maps on the MNI152 grey-matter grid, as NIfTI (part of :mod:`itx.dense`)."""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from .checks import check_positive_int
from .dense_interpolate import DEFAULT_BLOCK_SIZE, _check_coords, _score_frame, interpolate_scores
from .tables import atomic_path, write_tsv

#: Default grid of the output maps (mm), as nilearn's 2 mm MNI152 template.
DEFAULT_RESOLUTION_MM = 2


@functools.lru_cache(maxsize=4)
def _gm_mask(resolution_mm):
    from nilearn.datasets import load_mni152_gm_mask

    img = load_mni152_gm_mask(resolution=resolution_mm)
    data = (np.asarray(img.dataobj) > 0).astype(np.uint8)
    data.flags.writeable = False   # shared by every call: nobody may change it
    return data, img.affine.copy()


def grey_matter_mask(resolution_mm=DEFAULT_RESOLUTION_MM):
    """nilearn's bundled MNI152 grey-matter mask (offline) at `resolution_mm`.

    Parameters
    ----------
    resolution_mm : int, optional
        Isotropic voxel size; nilearn resamples its 1 mm template (about a
        second, so the result is cached per resolution).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask (1 = grey matter, thresholded at 0.2 and closed, nilearn's
        defaults).
    """
    data, affine = _gm_mask(check_positive_int(resolution_mm, "resolution_mm"))
    return nib.Nifti1Image(data.copy(), affine.copy())


def _load_mask(mask_img, resolution_mm):
    if mask_img is None:
        return grey_matter_mask(resolution_mm)
    img = nib.load(str(mask_img)) if isinstance(mask_img, (str, Path)) else mask_img
    if len(img.shape) != 3:
        raise ValueError(f"mask_img must be a 3D image, got shape {img.shape}")
    data = np.asarray(img.dataobj)
    if not np.any(data > 0):
        raise ValueError("mask_img has no voxel > 0")
    return nib.Nifti1Image((data > 0).astype(np.uint8), img.affine)


def mask_coordinates(mask_img):
    """Voxel indices (C order) and MNI centres (mm) of the voxels of a mask.

    Returns
    -------
    ijk : (m, 3) numpy.ndarray of int
    xyz : (m, 3) numpy.ndarray of float
    """
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    return ijk, nib.affines.apply_affine(mask_img.affine, ijk)


@dataclass
class DenseMaps:
    """Dense maps on a voxel grid.

    Attributes
    ----------
    maps : nibabel.Nifti1Image
        4D float32, one volume per cell type (in `celltypes` order), 0
        outside the mask.
    sd : nibabel.Nifti1Image or None
        4D float32 GP predictive SD (same layout); ``None`` for 'nearest'.
    mask : nibabel.Nifti1Image
        The mask the maps cover.
    celltypes : list of str
    params : pandas.DataFrame
        Per cell type: ``volume`` (0-based index in the 4D files) and the
        interpolation parameters.
    """

    maps: nib.Nifti1Image
    sd: nib.Nifti1Image | None
    mask: nib.Nifti1Image
    celltypes: list
    params: pd.DataFrame

    def volume(self, celltype, sd=False) -> nib.Nifti1Image:
        """The 3D map (or SD map) of one cell type."""
        img = self.sd if sd else self.maps
        if img is None:
            raise ValueError("these maps have no uncertainty (method 'nearest')")
        k = self.celltypes.index(celltype)
        return nib.Nifti1Image(np.asarray(img.dataobj)[..., k], img.affine)


def _volume4d(values, ijk, shape, affine):
    data = np.zeros(tuple(shape) + (values.shape[1],), dtype=np.float32)
    data[tuple(ijk.T)] = values.astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.float32)
    img.header.set_slope_inter(1.0, 0.0)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=4)   # 4 = MNI152
    img.header.set_sform(affine, code=4)
    return img


def dense_maps(coords, scores, *, mask_img=None, resolution_mm=DEFAULT_RESOLUTION_MM,
               method="gp", seed=0, uncertainty=True, block_size=DEFAULT_BLOCK_SIZE,
               **fit_options) -> DenseMaps:
    """Interpolate sample scores to every voxel of a (grey-matter) mask.

    Parameters
    ----------
    coords : (n, 3) array_like
        Sample MNI coordinates (mm).
    scores : (n, K) array_like or pandas.DataFrame
        One column per cell type (column names become the cell-type names).
    mask_img : niimg-like or path, optional
        3D mask in MNI152 space; default nilearn's bundled MNI152
        grey-matter mask at `resolution_mm` (:func:`grey_matter_mask`).
    resolution_mm : int, optional
        Voxel size of the default mask (ignored when `mask_img` is given).
    method : {'gp', 'nearest'}, optional
    seed : int, optional
    uncertainty : bool, optional
        Also compute the GP predictive SD map (about 3x the time of the mean).
    block_size : int, optional
        Voxels per prediction block.
    **fit_options
        Passed to :func:`fit_interpolator`.

    Returns
    -------
    DenseMaps
    """
    mask = _load_mask(mask_img, resolution_mm)
    ijk, xyz = mask_coordinates(mask)
    frame = _score_frame(scores, len(_check_coords(coords, "coords")))
    interp = interpolate_scores(coords, frame, xyz, method, seed, return_std=uncertainty,
                                block_size=block_size, **fit_options)
    params = interp.params.copy()
    params.insert(0, "volume", np.arange(len(params)))
    maps = _volume4d(interp.mean, ijk, mask.shape, mask.affine)
    sd = None if interp.sd is None else _volume4d(interp.sd, ijk, mask.shape, mask.affine)
    return DenseMaps(maps, sd, mask, list(frame.columns), params)


def _write_nifti(img, path):
    """NIfTI to `path` atomically; gzip with mtime 0 and no name (reproducible bytes)."""
    path = Path(path)
    raw = img.to_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(raw)
    return path


def write_dense_maps(dense: DenseMaps, out_dir, *, uncertainty=True) -> dict:
    """Write the maps of :func:`dense_maps` into a folder.

    Files: ``maps.nii.gz`` (4D float32, volume k = row k of ``celltypes.tsv``),
    ``uncertainty.nii.gz`` (same layout, GP predictive SD; only if the maps
    have one and `uncertainty`), ``mask.nii.gz`` (uint8, the voxels covered)
    and ``celltypes.tsv`` (``volume, celltype`` and the interpolation
    parameters). Every file is written atomically.

    Returns
    -------
    dict of str -> pathlib.Path
    """
    out = Path(out_dir)
    paths = {"maps": _write_nifti(dense.maps, out / "maps.nii.gz"),
             "mask": _write_nifti(dense.mask, out / "mask.nii.gz")}
    if uncertainty and dense.sd is not None:
        paths["uncertainty"] = _write_nifti(dense.sd, out / "uncertainty.nii.gz")
    write_tsv(dense.params, out / "celltypes.tsv")
    paths["celltypes"] = out / "celltypes.tsv"
    return paths
