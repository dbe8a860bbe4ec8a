"""Spins of every sphere vertex: rotations of fsaverage, and the nulls made from them.

The vertex-level half of the spin nulls (:mod:`itx.nulls` has the
parcel-centroid methods, the spin files and :func:`itx.nulls.spin_nulls`):

* :func:`vertex_rotations`: for each random rotation (the right hemisphere
  by its mirror image, as neuromaps), the source vertex of every vertex;
* ``baum``: each parcel takes the parcel most of its rotated vertices land
  in (resampling indices, made in :func:`itx.nulls.spin_nulls`);
* ``cornblath``: each parcel takes the mean of the parcel values its
  rotated vertices land on, kept as sparse weights (:func:`spin_weights`,
  :func:`apply_weights`, :func:`cornblath_nulls`);
* ``vertex_spin``: a vertex-level map rotated, then parcellated
  (:func:`spin_vertex_map`); the map-independent part is kept once per atlas
  (:func:`make_vertex_spins`, :class:`VertexSpins`) so that each map costs a
  gather and a parcel mean (:func:`apply_vertex_spins`).

Every method works per hemisphere on any label ids, is vectorised over blocks
of rotations, and is tested equal to neuromaps (``tests/test_nulls.py``).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple, Optional, Sequence

import numpy as np

from .checks import check_positive_int, check_seed
from .nulls import _MAX_CELLS, _check_region_ids, _hemisphere_label_ids, _pair, fsaverage5_spheres

if TYPE_CHECKING:
    import scipy.sparse

__all__ = [
    "VertexSpins",
    "apply_vertex_spins",
    "apply_weights",
    "cornblath_nulls",
    "load_vertex_spins",
    "make_vertex_spins",
    "save_vertex_spins",
    "spin_vertex_map",
    "spin_weights",
    "vertex_parcel_means",
    "vertex_rotations",
]


_HEMIS = {"both": (0, 1), "left": (0,), "right": (1,)}


def _sphere_vertices(sphere) -> np.ndarray:
    """Vertex coordinates of a sphere GIFTI, loaded as neuromaps loads them.

    Same loader and dtype (float32 for FreeSurfer spheres) as neuromaps'
    ``get_parcel_centroids``, so rotated coordinates are bit-identical.
    """
    from neuromaps.images import load_gifti

    return load_gifti(sphere).agg_data("pointset")


def _label_values(label_gifti) -> np.ndarray:
    from neuromaps.images import load_gifti

    return np.asarray(load_gifti(label_gifti).agg_data()).astype(np.int64)


def _iter_vertex_spins(coords: Sequence[np.ndarray], hemis: Sequence[int],
                       n_perm: int, seed: int, check_duplicates: bool = True,
                       block: int = 500):
    """neuromaps' ``gen_spinsamples(method='original')`` on vertices, in blocks.

    Draws the same rotations from the same ``RandomState`` stream and
    matches vertices with the same ``cKDTree`` query, so the concatenated
    blocks equal neuromaps' output for the same seed. neuromaps compares
    each new resampling with every earlier one (O(n_perm^2 x n_vertices):
    hours for 10,000 vertex spins); here earlier resamplings are kept as
    128-bit BLAKE2 digests, which takes the same redraw decisions (a digest
    collision between different resamplings is not a practical event) in
    O(n_perm x n_vertices) time and without keeping earlier blocks.

    Parameters
    ----------
    coords : sequence of (n_h, 3) arrays
        Vertex coordinates of each hemisphere used, in output row order.
    hemis : sequence of {0, 1}
        Hemisphere of each entry of `coords`: 0 is rotated by the left
        rotation, 1 by its mirror image (neuromaps' ``_gen_rotation``).
    block : int
        Rotations per yielded array.

    Yields
    ------
    start : int
        Index of the first rotation of the block.
    spins : (n_vertices, b) numpy.ndarray of int32
    """
    from neuromaps.nulls.spins import _gen_rotation
    from scipy.spatial import cKDTree

    sizes = [len(c) for c in coords]
    offsets = np.cumsum([0] + sizes)
    n = int(offsets[-1])
    rs = np.random.RandomState(seed)
    seen = {hashlib.blake2b(np.arange(n, dtype=np.int32).tobytes(),
                            digest_size=16).digest()}  # the identity
    warned = False
    for start in range(0, n_perm, block):
        out = np.empty((n, min(block, n_perm - start)), dtype=np.int32)
        for j in range(out.shape[1]):
            col = out[:, j]
            for _ in range(500):
                rotations = _gen_rotation(rs)
                for h, c, off in zip(hemis, coords, offsets):
                    _, nearest = cKDTree(c @ rotations[h]).query(c, 1)
                    col[off:off + len(c)] = nearest + off
                if not check_duplicates:
                    break
                key = hashlib.blake2b(col.tobytes(), digest_size=16).digest()
                if key not in seen:
                    break
            else:  # pragma: no cover - needs a mesh with very few vertices
                if not warned:
                    warnings.warn("Duplicate rotations used: 500 draws gave "
                                  "no new resampling", stacklevel=3)
                    warned = True
            if check_duplicates:
                seen.add(key)
        yield start, out


def _vertex_spins(coords, hemis, n_perm, seed, check_duplicates=True):
    """All blocks of :func:`_iter_vertex_spins` in one array."""
    return np.concatenate([b for _, b in _iter_vertex_spins(
        coords, hemis, n_perm, seed, check_duplicates)], axis=1)


def _density_spheres(density: str) -> tuple:
    if density == "fsaverage5":
        return fsaverage5_spheres()
    from nilearn import datasets

    try:
        fs = datasets.fetch_surf_fsaverage(density)
    except Exception as err:  # nilearn downloads meshes other than fsaverage5
        raise ValueError(f"cannot get the {density!r} spheres from nilearn "
                         f"({err}); use density='fsaverage5' or give "
                         "sphere_giftis") from err
    return str(fs["sphere_left"]), str(fs["sphere_right"])


def vertex_rotations(n_perm: int, seed: int, density: str = "fsaverage5", *,
                     hemispheres: str = "both", sphere_giftis=None,
                     check_duplicates: bool = True) -> np.ndarray:
    """Vertex resampling arrays from random rotations of the sphere.

    The rotations neuromaps' ``baum``, ``cornblath`` and vertex-level
    ``alexander_bloch`` use: one random rotation per permutation for the
    left hemisphere, its mirror image for the right one, each vertex
    matched to the nearest rotated vertex (neuromaps' ``gen_spinsamples``
    on all vertices; equal to it for the same seed).

    Parameters
    ----------
    n_perm : int
        Number of rotations (>= 1).
    seed : int
        Seed of the ``numpy.random.RandomState`` drawing the rotations.
    density : str, optional
        nilearn fsaverage mesh whose spheres are rotated; 'fsaverage5'
        (10,242 vertices per hemisphere, bundled with nilearn) works
        offline. Ignored when `sphere_giftis` is given.
    hemispheres : {'both', 'left', 'right'}, optional
        Rows to return. The same seed gives the same rotations whatever the
        choice, so 'left' is the upper block of 'both' and 'right' its lower
        block minus the number of left vertices.
    sphere_giftis : (2,) sequence of path-like or GiftiImage, optional
        (left, right) spheres to use instead of `density`.
    check_duplicates : bool, optional
        Redraw a rotation whose resampling repeats an earlier one (as
        neuromaps does; with thousands of vertices this never happens, so it
        does not change the output).

    Returns
    -------
    rotations : (n_vertices, n_perm) numpy.ndarray of int32
        Rows are the vertices of the chosen hemispheres (left then right);
        rotated map ``j`` of a vertex map ``v`` (same rows) is
        ``v[rotations[:, j]]``. About 82 MB per 1,000 rotations of both
        fsaverage5 hemispheres; about 15 s per 1,000 on one core.
    """
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    if hemispheres not in _HEMIS:
        raise ValueError(f"hemispheres must be one of {sorted(_HEMIS)}, got "
                         f"{hemispheres!r}")
    spheres = (_density_spheres(density) if sphere_giftis is None
               else _pair(sphere_giftis, "sphere_giftis"))
    hemis = _HEMIS[hemispheres]
    coords = [_sphere_vertices(spheres[h]) for h in hemis]
    return _vertex_spins(coords, hemis, n_perm, seed, check_duplicates)


class _Hemi(NamedTuple):
    """Parcels of one hemisphere, as the vertex methods need them."""

    hemi: int           # 0 left, 1 right
    offset: int         # first row of this hemisphere in the rotation array
    n_vertices: int
    column: np.ndarray  # vertex -> parcel column (sorted label ids), -1 none
    row_of_column: np.ndarray  # parcel column -> region row, -1 not asked
    targets: np.ndarray  # region rows of this hemisphere (asked parcels)
    target_of_vertex: np.ndarray  # vertex -> index into targets, -1 none


def _parcel_layout(label_giftis, region_ids, n_rows: Optional[int] = None,
                   what: str = "rotations") -> tuple[list, int]:
    """Check region ids against the labels and lay out the hemispheres.

    Parcels are the label values other than 0 and the medial-wall /
    unknown names in ``neuromaps.images.PARCIGNORE``; vertices of any other
    label are "no value".

    Parameters
    ----------
    n_rows : int, optional
        Rows of a vertex array (rotations or data) to lay out: the vertices
        of both hemispheres (left then right), or of the one hemisphere that
        holds all `region_ids`. None: only the hemispheres in use.

    Returns
    -------
    hemis : list of _Hemi
        The hemispheres holding at least one region.
    n_rows : int
    """
    label_giftis = _pair(label_giftis, "label_giftis")
    region_ids = _check_region_ids(region_ids)
    labels = [_label_values(lab) for lab in label_giftis]
    parcels = [_hemisphere_label_ids(lab).astype(np.int64)
               for lab in label_giftis]
    row = {r: i for i, r in enumerate(region_ids)}
    missing = [r for r in region_ids if not any(r in p for p in parcels)]
    if missing:
        raise ValueError(
            f"region ids {missing} are not parcels in the label GIFTIs "
            f"(available: {sorted(set(np.concatenate(parcels).tolist()))}); "
            "medial-wall/unknown labels are excluded")
    both = [r for r in region_ids if r in parcels[0] and r in parcels[1]]
    if both:
        raise ValueError(f"region ids {both} occur in both hemispheres; "
                         "give each hemisphere distinct label values")
    used = [h for h in (0, 1) if any(r in row for r in parcels[h].tolist())]
    sizes = [len(lab) for lab in labels]
    if n_rows is None:
        # compact layout: only the hemispheres in use
        offs = np.cumsum([0] + [sizes[h] for h in used])
        layout = dict(zip(used, offs[:-1].tolist()))
        n_rows = int(offs[-1])
    elif n_rows == sum(sizes):
        layout = {0: 0, 1: sizes[0]}
    elif len(used) == 1 and n_rows == sizes[used[0]]:
        layout = {used[0]: 0}
    else:
        raise ValueError(
            f"{what} have {n_rows} rows but the labels have {sizes[0]} + "
            f"{sizes[1]} vertices; give them for both hemispheres (left "
            "then right) or, if all regions are in one hemisphere, for that "
            "hemisphere only, on the mesh of the labels")
    hemis = []
    for h in used:
        ids = parcels[h]
        # vertex -> position in the sorted parcel ids; -1 for non-parcels
        pos = np.searchsorted(ids, labels[h])
        pos = np.minimum(pos, len(ids) - 1)
        column = np.where(ids[pos] == labels[h], pos, -1)
        row_of_column = np.array([row.get(int(i), -1) for i in ids])
        targets = row_of_column[row_of_column >= 0]
        tpos = np.full(len(ids), -1)
        tpos[row_of_column >= 0] = np.arange(targets.size)
        target_of_vertex = np.where(column >= 0, tpos[column], -1)
        hemis.append(_Hemi(h, layout[h], sizes[h], column, row_of_column,
                           targets, target_of_vertex))
    return hemis, n_rows


def _check_rotations(rotations, n_rows_expected=None) -> np.ndarray:
    rot = np.asarray(rotations)
    if rot.ndim != 2 or rot.shape[1] < 1 or rot.dtype.kind not in "iu":
        raise ValueError("rotations must be an integer array (n_vertices, "
                         f"n_perm >= 1), e.g. from vertex_rotations; got "
                         f"{rot.dtype} {rot.shape}")
    if rot.size and (rot.min() < 0 or rot.max() >= rot.shape[0]):
        raise ValueError("rotations index vertices outside their own rows")
    return rot


def _overlap_blocks(hemi: _Hemi, rot: np.ndarray):
    """Yield ``(start, counts)`` over blocks of rotations.

    ``counts[b, t, c]`` is the number of vertices of target parcel ``t``
    (index into ``hemi.targets``) whose rotated source vertex, in rotation
    ``start + b``, lies in parcel column ``c``. The whole of baum (modal
    source) and cornblath (mean over sources) follows from these counts.
    """
    n_t = hemi.targets.size
    n_c = hemi.row_of_column.size
    tv = np.flatnonzero(hemi.target_of_vertex >= 0)
    tgt = hemi.target_of_vertex[tv]
    block = max(1, min(256, _MAX_CELLS // max(1, n_t * n_c)))
    n_perm = rot.shape[1]
    for start in range(0, n_perm, block):
        stop = min(n_perm, start + block)
        # rotated source vertex of every target vertex, local to the hemi
        src = rot[hemi.offset + tv, start:stop].astype(np.int64) - hemi.offset
        if src.size and (src.min() < 0 or src.max() >= hemi.n_vertices):
            raise ValueError("rotations move vertices across hemispheres; "
                             "use vertex_rotations")
        src = hemi.column[src]
        b = stop - start
        flat = ((np.arange(b) * n_t)[None, :] + tgt[:, None]) * n_c + src
        counts = np.bincount(flat[src >= 0], minlength=b * n_t * n_c)
        yield start, counts.reshape(b, n_t, n_c)


def _baum_indices(label_giftis, region_ids, rotations) -> np.ndarray:
    rot = _check_rotations(rotations)
    hemis, _ = _parcel_layout(label_giftis, region_ids, rot.shape[0])
    idx = np.full((len(region_ids), rot.shape[1]), -1, dtype=np.int64)
    for hemi in hemis:
        for start, counts in _overlap_blocks(hemi, rot):
            # argmax takes the first maximum, i.e. the smallest label value
            # on ties, as neuromaps' np.unique + argmax does
            best = counts.argmax(axis=2)
            got = np.take_along_axis(counts, best[..., None], 2)[..., 0] > 0
            src_rows = np.where(got, hemi.row_of_column[best], -1)
            idx[hemi.targets, start:start + counts.shape[0]] = src_rows.T
    return idx


def spin_weights(label_giftis: Sequence, region_ids: Sequence[int],
                 rotations) -> "scipy.sparse.csr_matrix":
    """``cornblath`` nulls as sparse, map-independent averaging weights.

    neuromaps' ``cornblath`` projects parcel values to the vertices, rotates
    them and re-averages within each parcel, so null ``j`` of parcel ``i``
    is a weighted mean of parcel values: the weight of parcel ``k`` is the
    number of vertices of ``i`` whose rotated source lies in ``k``. These
    counts do not depend on the map, so they are made once per atlas.

    Parameters
    ----------
    label_giftis : (2,) sequence of path-like or GiftiImage
        (left, right) label GIFTIs on the mesh of `rotations`.
    region_ids : sequence of int
        Label values of the regions, in row order.
    rotations : (n_vertices, n_perm) array_like of int
        From :func:`vertex_rotations` (both hemispheres, or only the one
        holding all regions).

    Returns
    -------
    scipy.sparse.csr_matrix, shape (n_perm * n_regions, n_regions)
        Row ``j * n_regions + i`` holds the vertex counts for region ``i`` in
        null ``j``. Vertices whose source is the medial wall or a parcel not
        in `region_ids` carry no weight. Apply with :func:`apply_weights`;
        store with ``scipy.sparse.save_npz``.
    """
    from scipy import sparse

    rot = _check_rotations(rotations)
    hemis, _ = _parcel_layout(label_giftis, region_ids, rot.shape[0])
    n_reg, n_perm = len(region_ids), rot.shape[1]
    rows, cols, vals = [], [], []
    for hemi in hemis:
        for start, counts in _overlap_blocks(hemi, rot):
            counts = counts[:, :, hemi.row_of_column >= 0]
            src_rows = hemi.row_of_column[hemi.row_of_column >= 0]
            b, t, k = np.nonzero(counts)
            rows.append((start + b) * n_reg + hemi.targets[t])
            cols.append(src_rows[k])
            vals.append(counts[b, t, k].astype(np.float64))
    rows, cols, vals = (np.concatenate(a) for a in (rows, cols, vals))
    return sparse.csr_matrix((vals, (rows, cols)), shape=(n_perm * n_reg, n_reg))


def apply_weights(values, weights) -> np.ndarray:
    """Null maps from :func:`spin_weights`: NaN-aware weighted parcel means.

    Parameters
    ----------
    values : (n_regions,) array_like
        Parcel values in the row order of the weights; NaN = no value (left
        out of every mean, as neuromaps' ``vertices_to_parcels`` does).
    weights : scipy.sparse matrix, shape (n_perm * n_regions, n_regions)

    Returns
    -------
    (n_regions, n_perm) numpy.ndarray
        NaN where a null parcel has no source with a value.
    """
    v = np.asarray(values, dtype=np.float64)
    n_reg = weights.shape[1]
    if v.shape != (n_reg,):
        raise ValueError(f"values must have shape ({n_reg},) to fit the "
                         f"weights, got {v.shape}")
    if weights.shape[0] % n_reg:
        raise ValueError(f"weights of shape {weights.shape} are not "
                         "(n_perm * n_regions, n_regions)")
    finite = np.isfinite(v)
    num = weights @ np.where(finite, v, 0.0)
    den = weights @ finite.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den > 0, num / den, np.nan)
    return out.reshape(-1, n_reg).T


def cornblath_nulls(values, label_giftis: Sequence, region_ids: Sequence[int],
                    rotations) -> np.ndarray:
    """neuromaps' ``cornblath`` null maps of a parcellated map.

    Same values as ``neuromaps.nulls.cornblath`` given the same rotations
    (checked to 1e-12), for any label ids and about 100x faster.

    Parameters
    ----------
    values : (n_regions,) array_like
        Parcel values, rows of `region_ids`; NaN = no value.
    label_giftis, region_ids, rotations
        See :func:`spin_weights`.

    Returns
    -------
    (n_regions, n_perm) numpy.ndarray
        NaN where a parcel rotated wholly onto the medial wall / parcels
        without a value.
    """
    return apply_weights(values, spin_weights(label_giftis, region_ids,
                                              rotations))


def _vertex_data(vertex_data_pair, hemis, n_rows) -> np.ndarray:
    """Concatenate vertex maps into the row layout of the rotations."""
    from neuromaps.images import load_gifti

    pair = _pair(vertex_data_pair, "vertex_data_pair")
    out = np.full(n_rows, np.nan)
    for hemi in hemis:
        d = pair[hemi.hemi]
        side = "left" if hemi.hemi == 0 else "right"
        if d is None:
            raise ValueError(f"the {side} vertex map is None but regions of "
                             "that hemisphere are asked for")
        if isinstance(d, (str, os.PathLike)) or hasattr(d, "darrays"):
            d = load_gifti(d).agg_data()
        d = np.asarray(d, dtype=np.float64)
        if d.shape != (hemi.n_vertices,):
            raise ValueError(f"the {side} vertex map has shape {d.shape}; the "
                             f"labels have {hemi.n_vertices} vertices")
        if np.isinf(d).any():
            raise ValueError(f"the {side} vertex map has infinite values "
                             "(NaN marks vertices without data)")
        out[hemi.offset:hemi.offset + hemi.n_vertices] = d
    return out


def _parcel_matrix(hemis, n_regions, n_rows):
    """Sparse (n_regions, n_rows) indicator of each region's vertices."""
    from scipy import sparse

    r, c = [], []
    for hemi in hemis:
        v = np.flatnonzero(hemi.target_of_vertex >= 0)
        r.append(hemi.targets[hemi.target_of_vertex[v]])
        c.append(hemi.offset + v)
    r, c = np.concatenate(r), np.concatenate(c)
    return sparse.csr_matrix((np.ones(r.size), (r, c)),
                             shape=(n_regions, n_rows))


def _nan_means(pm, data: np.ndarray) -> np.ndarray:
    finite = np.isfinite(data)
    num = pm @ np.where(finite, data, 0.0)
    den = pm @ finite.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / den, np.nan)


def vertex_parcel_means(vertex_data_pair, label_gifti_pair,
                        region_ids: Sequence[int]) -> np.ndarray:
    """Parcellate a vertex map: NaN-aware mean over each region's vertices.

    Parameters
    ----------
    vertex_data_pair : (2,) sequence
        (left, right) vertex maps: arrays, GIFTI paths or images; None for a
        hemisphere without regions in `region_ids`. NaN = no data.
    label_gifti_pair : (2,) sequence of path-like or GiftiImage
    region_ids : sequence of int

    Returns
    -------
    (n_regions,) numpy.ndarray
        NaN for a region with no finite vertex.
    """
    hemis, n_rows = _parcel_layout(label_gifti_pair, region_ids)
    data = _vertex_data(vertex_data_pair, hemis, n_rows)
    pm = _parcel_matrix(hemis, len(region_ids), n_rows)
    return _nan_means(pm, data)


def spin_vertex_map(vertex_data_pair, label_gifti_pair,
                    region_ids: Sequence[int], rotations) -> np.ndarray:
    """Null parcel values from spinning a vertex-level map, then parcellating.

    The null that keeps the map's spatial autocorrelation exactly (it is
    the observed map, rotated) and the best calibrated one we measured: use
    it whenever the map exists at vertex level. Null ``j`` is
    :func:`vertex_parcel_means` of ``v[rotations[:, j]]``. Vertices of the
    map that rotate into a parcel carry their values with them, medial wall
    included; set vertices without data to NaN.

    The same as :func:`make_vertex_spins` (the map-independent part, made
    once per atlas in the workflow) followed by :func:`apply_vertex_spins`.

    Parameters
    ----------
    vertex_data_pair : (2,) sequence
        (left, right) vertex maps (arrays, GIFTI paths or images; None for a
        hemisphere without regions), on the mesh of the labels.
    label_gifti_pair : (2,) sequence of path-like or GiftiImage
        (left, right) label GIFTIs.
    region_ids : sequence of int
        Label values of the regions, in row order.
    rotations : (n_vertices, n_perm) array_like of int
        From :func:`vertex_rotations` (both hemispheres, or only the one
        holding all regions).

    Returns
    -------
    (n_regions, n_perm) numpy.ndarray
        NaN where a null parcel received no finite vertex value.
    """
    spins = make_vertex_spins(label_gifti_pair, region_ids, rotations=rotations)
    return apply_vertex_spins(vertex_data_pair, spins)


class VertexSpins(NamedTuple):
    """The map-independent part of ``vertex_spin`` nulls (one atlas, one scope).

    Spinning a vertex map needs, for each rotation, the vertex whose value
    lands on each vertex of the parcels; that depends on the rotations and
    the labels only, so the workflow makes it once per atlas (rule
    vertex_spins) and every GIFTI map then costs a gather and a parcel mean
    (:func:`apply_vertex_spins`) instead of 10,000 nearest-vertex searches.

    Attributes
    ----------
    regions : list
        Region labels of the rows (the workflow: cortical scope regions).
    vertex : (n_used,) numpy.ndarray of int32
        Rows, in the vertex layout (left then right hemisphere), of the
        vertices of the regions, increasing.
    parcel : (n_used,) numpy.ndarray of int32
        Region row of each of them.
    source : (n_used, n_perm) numpy.ndarray of int16 or int32
        ``source[k, j]``: the layout row whose value lands on ``vertex[k]``
        in rotation ``j`` (``rotations[vertex[k], j]``); int16 while the
        layout fits (fsaverage5: 20,484 rows), halving the file.
    n_vertices : (2,) numpy.ndarray of int64
        Vertices of the left and right labels (0 for a hemisphere without
        regions).
    offsets : (2,) numpy.ndarray of int64
        First layout row of each hemisphere (-1 for a hemisphere without
        regions).
    seed : int
        Seed of the rotations (-1 when made from given rotations).
    """

    regions: list
    vertex: np.ndarray
    parcel: np.ndarray
    source: np.ndarray
    n_vertices: np.ndarray
    offsets: np.ndarray
    seed: int = -1

    @property
    def n_perm(self) -> int:
        """Number of rotations (columns of `source`)."""
        return int(self.source.shape[1])


class _Span(NamedTuple):
    """A hemisphere's place in a vertex layout (what :func:`_vertex_data` reads)."""

    hemi: int
    offset: int
    n_vertices: int


def make_vertex_spins(label_giftis: Sequence, region_ids: Sequence[int],
                      n_perm: Optional[int] = None, seed: Optional[int] = None, *,
                      rotations=None, sphere_giftis=None,
                      regions: Optional[Sequence] = None) -> VertexSpins:
    """The map-independent part of ``vertex_spin`` nulls.

    Draws the rotations of :func:`vertex_rotations` (both hemispheres, same
    random stream, so the same rotations for the same seed) block by block
    and keeps, for each rotation, the source vertex of every vertex of the
    regions; or takes given `rotations`.

    Parameters
    ----------
    label_giftis : (2,) sequence of path-like or GiftiImage
        (left, right) label GIFTIs on the mesh of the spheres.
    region_ids : sequence of int
        Label values of the regions, in row order.
    n_perm, seed : int
        Number of rotations and their seed (without `rotations`).
    rotations : (n_vertices, n_perm) array_like of int, optional
        Precomputed :func:`vertex_rotations` (both hemispheres, or only the
        one holding all regions); then `n_perm` and `seed` are not used.
    sphere_giftis : (2,) sequence, optional
        Spheres to rotate (default nilearn's fsaverage5).
    regions : sequence, optional
        Row labels to record (default `region_ids`).

    Returns
    -------
    VertexSpins
    """
    from scipy import sparse

    region_ids = _check_region_ids(region_ids)
    labels = _pair(label_giftis, "label_giftis")
    if rotations is not None:
        rot = _check_rotations(rotations)
        hemis, n_rows = _parcel_layout(labels, region_ids, rot.shape[0])
        blocks = [(0, rot)]
        n_perm, seed = rot.shape[1], -1
    else:
        n_perm = check_positive_int(n_perm, "n_perm")
        seed = check_seed(seed)
        spheres = (fsaverage5_spheres() if sphere_giftis is None
                   else _pair(sphere_giftis, "sphere_giftis"))
        coords = [_sphere_vertices(spheres[h]) for h in (0, 1)]
        hemis, n_rows = _parcel_layout(labels, region_ids,
                                       sum(len(c) for c in coords))
        # as vertex_rotations(hemispheres='both'), without holding all of it
        blocks = _iter_vertex_spins(coords, (0, 1), n_perm, seed)
    pm = _parcel_matrix(hemis, len(region_ids), n_rows)
    # only the vertices of the regions are read after rotation
    used = np.unique(pm.indices)
    parcel = np.empty(used.size, dtype=np.int32)
    cols = sparse.coo_matrix(pm[:, used])
    parcel[cols.col] = cols.row
    dtype = np.int16 if n_rows <= np.iinfo(np.int16).max else np.int32
    source = np.empty((used.size, n_perm), dtype=dtype)
    for start, block in blocks:
        source[:, start:start + block.shape[1]] = block[used]
    n_vertices = np.zeros(2, dtype=np.int64)
    offsets = np.full(2, -1, dtype=np.int64)
    for hemi in hemis:
        n_vertices[hemi.hemi] = hemi.n_vertices
        offsets[hemi.hemi] = hemi.offset
    return VertexSpins(regions=list(region_ids if regions is None else regions),
                       vertex=used.astype(np.int32), parcel=parcel, source=source,
                       n_vertices=n_vertices, offsets=offsets, seed=int(seed))


def apply_vertex_spins(vertex_data_pair, spins: VertexSpins,
                       max_cells: int = 4_000_000) -> np.ndarray:
    """Null parcel values of a vertex map from :func:`make_vertex_spins`.

    A gather (``v[source]``) and a NaN-aware parcel mean, over blocks of
    rotations so that at most `max_cells` vertex values are held at once;
    equal, to the last bit, to :func:`vertex_parcel_means` of each rotated
    map.

    Parameters
    ----------
    vertex_data_pair : (2,) sequence
        (left, right) vertex maps (arrays, GIFTI paths or images; None for a
        hemisphere without regions) on the mesh of the labels.
    spins : VertexSpins
    max_cells : int, optional
        Vertex values gathered per block.

    Returns
    -------
    (n_regions, n_perm) numpy.ndarray
        NaN where a null parcel received no finite vertex value.
    """
    from scipy import sparse

    spans = [_Span(h, int(spins.offsets[h]), int(spins.n_vertices[h]))
             for h in (0, 1) if spins.offsets[h] >= 0]
    n_rows = max(s.offset + s.n_vertices for s in spans)
    data = _vertex_data(vertex_data_pair, spans, n_rows)
    n_used, n_reg = spins.vertex.size, len(spins.regions)
    # the parcel matrix of spin_vertex_map's old per-map code, restricted to
    # the used vertices (same entries, same order: bit-identical sums)
    pm = sparse.csr_matrix((np.ones(n_used), (spins.parcel, np.arange(n_used))),
                           shape=(n_reg, n_used))
    n_perm = spins.n_perm
    out = np.empty((n_reg, n_perm))
    block = max(1, min(n_perm, int(max_cells) // max(1, n_used)))
    for start in range(0, n_perm, block):
        spun = data[spins.source[:, start:start + block]]
        out[:, start:start + block] = _nan_means(pm, spun)
    return out


def save_vertex_spins(path, spins: VertexSpins) -> Path:
    """Write :class:`VertexSpins` (kind ``vertex_spins`` of :mod:`itx.nullfiles`).

    Uncompressed: the source indices hardly compress, and every GIFTI map
    reads the file (about 190 MB per 10,000 rotations of one fsaverage5
    hemisphere's cortex).
    """
    from . import nullfiles

    return nullfiles.save(
        path, "vertex_spins", spins.regions, vertex=np.asarray(spins.vertex, dtype=np.int32),
        parcel=np.asarray(spins.parcel, dtype=np.int32), source=np.asarray(spins.source),
        n_vertices=np.asarray(spins.n_vertices, dtype=np.int64),
        offsets=np.asarray(spins.offsets, dtype=np.int64),
        seed=np.array(int(spins.seed), dtype=np.int64),
        n_perm=np.array(spins.n_perm, dtype=np.int64))


def load_vertex_spins(path, regions: Optional[Sequence] = None) -> VertexSpins:
    """Read :func:`save_vertex_spins`; `regions` (optional) must match its rows."""
    from . import nullfiles

    z = nullfiles.load(path, "vertex_spins", regions)
    spins = VertexSpins(regions=z["regions"], vertex=z["vertex"], parcel=z["parcel"],
                        source=z["source"], n_vertices=z["n_vertices"],
                        offsets=z["offsets"], seed=int(z["seed"]))
    if spins.source.shape != (spins.vertex.size, int(z["n_perm"])):
        raise nullfiles.NullFileError(f"{path}: source of shape {spins.source.shape} does not "
                                      "fit its vertices; delete it and rerun vertex_spins")
    return spins


