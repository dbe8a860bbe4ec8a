"""How distorted is a spin? A per-rotation medial-wall measure, and dropping the worst rotations.

A spin null reads the map at rotated positions of the sphere. The medial wall
has no cortex (and no data), so a rotation that carries much of it onto the
cortex gives a null map in which many parcels take their values from the
wall (no value, or the value of whatever parcel happens to be nearest): the
null is a distorted copy of the map rather than a relocated one. Bazinet et
al. (2025) report that such badly distorted spins inflate false positives and
that discarding them helps. The measure here depends on the rotation and the
atlas's medial wall only, not on any map:

``medial_wall_fraction``
    the fraction of the cortical (parcel) vertices of a hemisphere whose
    value, under the rotation, comes from a medial-wall vertex, i.e. how much
    of the cortex the rotation fills with the wall.

Rotations are those of :mod:`itx.vertexspins` / :mod:`itx.nulls`: each draw
of neuromaps' ``_gen_rotation`` from ``numpy.random.RandomState(seed)`` gives
the left rotation and its mirror image for the right hemisphere
(:func:`rotation_matrices`); a vertex's value after rotation ``R`` comes from
the vertex whose rotated position ``c @ R`` is nearest to it
(:func:`vertex_sources`, equal to :func:`itx.vertexspins.vertex_rotations`
for the same draws). :func:`keep_least_distorted` picks the rotations to
keep.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from .checks import check_positive_int, check_seed

__all__ = [
    "keep_least_distorted",
    "medial_wall_fraction",
    "n_draws_needed",
    "rotation_matrices",
    "vertex_sources",
]


def rotation_matrices(n_rot: int, seed: int) -> np.ndarray:
    """The first `n_rot` rotation draws of the spins for `seed`.

    Parameters
    ----------
    n_rot : int
        Number of draws (>= 1).
    seed : int
        Seed of the ``numpy.random.RandomState`` (as the spins use it).

    Returns
    -------
    (n_rot, 2, 3, 3) numpy.ndarray
        ``[j, 0]`` rotates the left hemisphere in draw ``j`` (``c @ R``),
        ``[j, 1]`` the right one (its mirror image across the Y-Z plane).
        Draw ``j`` is the rotation of null ``j`` of
        :func:`itx.vertexspins.vertex_rotations` (no duplicate is ever redrawn
        on a mesh of thousands of vertices) and of
        :func:`itx.nulls.spin_indices` with ``check_duplicates=False``.
    """
    from neuromaps.nulls.spins import _gen_rotation

    n_rot = check_positive_int(n_rot, "n_rot")
    rs = np.random.RandomState(check_seed(seed))
    return np.array([np.stack(_gen_rotation(rs)) for _ in range(n_rot)])


def _check_matrices(matrices) -> np.ndarray:
    m = np.asarray(matrices, dtype=np.float64)
    if m.ndim != 4 or m.shape[1:] != (2, 3, 3):
        raise ValueError("matrices must have shape (n_rot, 2, 3, 3) as rotation_matrices "
                         f"returns, got {m.shape}")
    return m


def vertex_sources(coords: Sequence, hemis: Sequence[int], matrices) -> np.ndarray:
    """For each rotation, the vertex whose value lands on every vertex.

    The computation of :func:`itx.vertexspins.vertex_rotations` (nearest
    vertex of the rotated sphere, per hemisphere) for given rotation matrices,
    so that a chosen subset of draws can be turned into vertex rotations
    without drawing all the others.

    Parameters
    ----------
    coords : sequence of (n_h, 3) array_like
        Sphere vertex coordinates of each hemisphere used, in row order
        (as loaded by neuromaps: float32 for GIFTI spheres).
    hemis : sequence of {0, 1}
        Hemisphere of each entry of `coords` (which matrix rotates it).
    matrices : (n_rot, 2, 3, 3) array_like
        From :func:`rotation_matrices` (or a subset of its draws).

    Returns
    -------
    (n_vertices, n_rot) numpy.ndarray of int32
        Rotated map ``j`` of a vertex map ``v`` (rows: the hemispheres of
        `coords`, concatenated) is ``v[out[:, j]]``.
    """
    from scipy.spatial import cKDTree

    m = _check_matrices(matrices)
    coords = [np.asarray(c) for c in coords]
    if len(coords) != len(hemis) or any(h not in (0, 1) for h in hemis):
        raise ValueError("give one hemisphere id (0 left, 1 right) per coordinate array")
    offsets = np.cumsum([0] + [len(c) for c in coords])
    out = np.empty((int(offsets[-1]), len(m)), dtype=np.int32)
    for j in range(len(m)):
        for h, c, off in zip(hemis, coords, offsets):
            # the same query as itx.vertexspins, so the same ties are broken the same way
            _, nearest = cKDTree(c @ m[j, h]).query(c, 1)
            out[off:off + len(c), j] = nearest + off
    return out


def medial_wall_fraction(coords, cortex, matrices, *, hemi: int = 0,
                         n_sample: Optional[int] = None, seed: int = 0,
                         block: int = 64) -> np.ndarray:
    """Fraction of a hemisphere's cortex whose rotated value comes from the medial wall.

    Parameters
    ----------
    coords : (n_vertices, 3) array_like
        Sphere vertices of the hemisphere.
    cortex : (n_vertices,) array_like of bool
        True for vertices of a parcel, False for the medial wall (and any
        other non-parcel vertex).
    matrices : (n_rot, 2, 3, 3) array_like
        From :func:`rotation_matrices`.
    hemi : {0, 1}
        Which rotation of each draw applies (0 left, 1 right).
    n_sample : int, optional
        Measure on a seeded random subset of this many cortical vertices
        (the sampling error of a fraction p is sqrt(p(1-p)/n_sample)); None:
        all of them, the exact fraction.
    seed : int
        Seed of the subset.
    block : int
        Rotations queried at once.

    Returns
    -------
    (n_rot,) numpy.ndarray of float
        Per rotation, the fraction in [0, 1]; 0 for the identity.

    Notes
    -----
    The source of vertex ``v`` is the vertex ``i`` nearest to ``c[v]`` among
    the rotated ``c @ R``; as ``R`` is orthogonal, that is the vertex nearest
    to ``c[v] @ R.T`` among the unrotated ones, so one tree serves every
    rotation.
    """
    from scipy.spatial import cKDTree

    m = _check_matrices(matrices)
    c = np.asarray(coords, dtype=np.float64)
    cortex = np.asarray(cortex, dtype=bool)
    if c.ndim != 2 or c.shape[1] != 3 or cortex.shape != (len(c),):
        raise ValueError(f"coords must be (n, 3) and cortex (n,) booleans; got {c.shape} and "
                         f"{cortex.shape}")
    if hemi not in (0, 1):
        raise ValueError(f"hemi must be 0 (left) or 1 (right), got {hemi!r}")
    idx = np.flatnonzero(cortex)
    if idx.size == 0:
        raise ValueError("cortex marks no vertex: give True for the parcel vertices")
    if n_sample is not None and check_positive_int(n_sample, "n_sample") < idx.size:
        rng = np.random.default_rng(check_seed(seed))
        idx = np.sort(rng.choice(idx, int(n_sample), replace=False))
    tree = cKDTree(c)
    pts = c[idx]
    out = np.empty(len(m))
    block = check_positive_int(block, "block")
    for start in range(0, len(m), block):
        rots = m[start:start + block, hemi]                # (b, 3, 3)
        q = np.einsum("vk,blk->bvl", pts, rots)           # c[v] @ R.T for each R
        _, src = tree.query(q.reshape(-1, 3), 1)
        wall = ~cortex[src.reshape(len(rots), -1)]
        out[start:start + len(rots)] = wall.mean(axis=1)
    return out


def n_draws_needed(n_keep: int, drop: float, margin: float = 1.15) -> int:
    """Rotations to draw so that dropping the `drop` most distorted fraction leaves `n_keep`.

    With a margin for the sampling of the quantile (and for duplicates
    removed afterwards).
    """
    n_keep = check_positive_int(n_keep, "n_keep")
    if not 0 <= drop < 1:
        raise ValueError(f"drop must be in [0, 1), got {drop!r}")
    return int(np.ceil(n_keep / (1.0 - drop) * margin)) + 20


def keep_least_distorted(distortion, drop: float, n_keep: Optional[int] = None) -> np.ndarray:
    """Draws to keep: those at or below the ``1 - drop`` quantile of the distortion.

    Parameters
    ----------
    distortion : (n_rot,) array_like of float
        Per-draw distortion (e.g. :func:`medial_wall_fraction`).
    drop : float in [0, 1)
        Fraction of the draws to drop, the most distorted ones; 0 keeps all.
    n_keep : int, optional
        Return only the first `n_keep` kept draws (ValueError if fewer are
        kept: draw more, see :func:`n_draws_needed`).

    Returns
    -------
    numpy.ndarray of int
        Indices of the kept draws, in draw order (so the first ``n`` kept are
        a fixed function of the seed).
    """
    d = np.asarray(distortion, dtype=np.float64)
    if d.ndim != 1 or d.size == 0 or not np.isfinite(d).all():
        raise ValueError("distortion must be a non-empty 1-D array of finite values")
    if not 0 <= drop < 1:
        raise ValueError(f"drop must be in [0, 1), got {drop!r}")
    kept = (np.arange(d.size) if drop == 0
            else np.flatnonzero(d <= np.quantile(d, 1.0 - drop)))
    if n_keep is not None:
        n_keep = check_positive_int(n_keep, "n_keep")
        if kept.size < n_keep:
            raise ValueError(f"only {kept.size} of {d.size} draws are kept after dropping "
                             f"{drop:g} of them; draw n_draws_needed({n_keep}, {drop:g}) = "
                             f"{n_draws_needed(n_keep, drop)}")
        kept = kept[:n_keep]
    return kept
