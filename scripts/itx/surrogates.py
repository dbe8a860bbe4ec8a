"""Map-dependent spatial nulls (variogram, Moran) and within-group permutations.

Spin nulls (:mod:`itx.nulls`) need the map on a sphere. This module adds the
null families that work from a parcel-by-parcel distance matrix instead, so
they serve volumetric atlases and the subcortex too:

* **variogram-matched surrogates** (Burt et al. 2020, BrainSMASH ``Base``):
  randomly permuted values, smoothed and rescaled so that their variogram
  matches the map's;
* **Moran spectral randomisation** (Wagner & Dray 2015; the ``moran`` null
  of neuromaps, after BrainSpace): the map's projections on the
  eigenvectors of a doubly centred inverse-distance weight matrix get
  random signs, which keeps the map's mean, variance and Moran's I exactly;
* **permutation within groups** (e.g. structure class x hemisphere for
  subcortical regions): a plain shuffle inside each group, never resampling
  with replacement.

Distances come from :func:`parcel_distance_matrix`: geodesic along the
fsaverage5 mesh for cortical surface parcels (one hemisphere at a time),
Euclidean between parcel centroids in MNI millimetres for volumetric parcels
and the subcortex. Pairs that share no meaningful distance (the two cortical
hemispheres, cortex vs subcortex) are ``inf``; the surrogate functions treat
each finite block of the matrix (a connected component) independently, as
neuromaps does for hemispheres. Parcel-level distances are what keep this
fast; neuromaps' voxel-by-voxel route for volumetric parcellations runs out
of disk or takes hours (neuromaps issues 119 and 171).

Conventions (shared with :mod:`itx.nulls`):

* map-independent nulls are integer index arrays ``idx`` of shape
  ``(n_regions, n_perm)``, ``-1`` meaning "no value"; null map ``j`` of
  ``y`` is ``y[idx[:, j]]``;
* map-dependent nulls are float arrays of null values, shape
  ``(n_regions, n_perm)``, NaN where the map has no value;
* rows are always in the caller's region order.

Calibration on real AHBA genes (``null-calibration.md``): at alpha 0.05 the
variogram null rejected 7.9-8.6% and Moran 6.6-7.2% of independent smooth
fields (nominal 5%), both growing more liberal with smoothness; parcel spins
(``alexander_bloch``) were at 5.8%. Prefer spins where the atlas allows them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import compat

# the same argument checks as every stage
from .checks import check_positive_int, check_seed

__all__ = [
    "distance_blocks",
    "euclidean_centroid_distance",
    "moran_surrogates",
    "parcel_distance_matrix",
    "permute_within",
    "plot_variogram",
    "smoothed_variogram",
    "surface_parcel_distance",
    "variogram_diagnostic",
    "variogram_surrogates",
    "volume_centroids",
]

#: Mesh names accepted by :func:`parcel_distance_matrix` -> nilearn's keys.
MESHES = {"pial": "pial", "white": "white", "inflated": "infl",
          "sphere": "sphere"}

#: Smallest block (connected set of regions with finite values) for which a
#: map-dependent surrogate is attempted.
MIN_BLOCK = 3


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------


def _check_values_dist(values, dist) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape "
                         f"{values.shape}")
    dist = np.asarray(dist, dtype=float)
    n = values.size
    if dist.shape != (n, n):
        raise ValueError(f"dist must have shape ({n}, {n}) to match values, "
                         f"got {dist.shape}")
    if np.isnan(dist).any():
        raise ValueError("dist contains NaN; use inf for pairs with no "
                         "distance (e.g. across hemispheres)")
    if not np.array_equal(dist, dist.T):
        if not np.allclose(dist, dist.T, rtol=1e-10, atol=1e-12,
                           equal_nan=False):
            raise ValueError("dist must be symmetric")
        dist = (dist + dist.T) / 2
    if np.any(np.diag(dist) != 0):
        raise ValueError("dist must have a zero diagonal")
    off = dist[~np.eye(n, dtype=bool)]
    if np.any(off <= 0):
        raise ValueError("dist has zero or negative off-diagonal entries; "
                         "two regions at the same place (duplicate "
                         "centroids?) cannot be told apart")
    return values, dist


def _block_seed(seed: int, block: int) -> int:
    """Seed of the `block`-th distance block.

    Block 0 uses `seed` itself, so a one-block map reproduces BrainSMASH /
    neuromaps for the same seed and a left-hemisphere map gets the same
    nulls whether or not the right hemisphere is analysed too. Later blocks
    get independent streams derived from (seed, block); neuromaps instead
    reuses one seed for both hemispheres, which makes equal-sized
    hemispheres share their random permutation.
    """
    if block == 0:
        return seed
    return int(np.random.SeedSequence([seed, block]).generate_state(1)[0])


# ---------------------------------------------------------------------------
# distances
# ---------------------------------------------------------------------------


def _mesh_graph(vertices, faces, keep):
    """Sparse symmetric graph of mesh edges between kept vertices."""
    from scipy import sparse

    faces = np.asarray(faces, dtype=np.int64)
    edges = np.vstack([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    # Paths may not run through excluded vertices (the medial wall), as in
    # neuromaps' get_surface_distance.
    edges = edges[keep[edges].all(axis=1)]
    length = np.linalg.norm(vertices[edges[:, 0]] - vertices[edges[:, 1]],
                            axis=1)
    n = len(vertices)
    graph = sparse.coo_matrix((length, (edges[:, 0], edges[:, 1])),
                              shape=(n, n)).tocsr()
    # Each interior edge appears in two faces (once per direction); the
    # maximum keeps one copy of its length and makes the graph symmetric.
    return graph.maximum(graph.T)


def _centroid_vertices(labels, region_ids, centroid_coords):
    """Index of the centroid vertex of each parcel (see surface_parcel_distance)."""
    out = np.empty(len(region_ids), dtype=np.int64)
    for k, rid in enumerate(region_ids):  # one pass per parcel, not per vertex
        verts = np.flatnonzero(labels == rid)
        if verts.size == 0:
            raise ValueError(f"region id {rid} has no vertex in the labels")
        xyz = centroid_coords[verts]
        mean = xyz.mean(axis=0)
        out[k] = verts[np.argmin(np.sum((xyz - mean) ** 2, axis=1))]
    return out


def surface_parcel_distance(vertices, faces, labels, region_ids,
                            centroid_coords=None, exclude=(0,)):
    """Geodesic distance between parcel centroid vertices along a mesh.

    Parcel-to-parcel distance is the shortest path along mesh edges
    (Dijkstra, :func:`scipy.sparse.csgraph.dijkstra`) between the two
    parcels' centroid vertices. The centroid vertex of a parcel is the
    parcel's own vertex closest to the mean of the parcel's
    `centroid_coords` (use the sphere: the mean of sphere coordinates is the
    spherical centre of the parcel, independent of folding); restricting the
    choice to the parcel's vertices keeps the centroid inside a concave
    parcel.

    Why centroids rather than the mean distance over all vertex pairs (what
    neuromaps' ``get_surface_distance`` computes): it needs one Dijkstra run
    per parcel instead of one per vertex (34 instead of about 9,000 per
    DK hemisphere; 0.06-0.1 s instead of minutes), it is a metric (zero
    self-distance without overriding, triangle inequality), and BrainSMASH
    only uses the distances to rank neighbours and to bin the variogram, for
    which the spacing of parcel centres is what matters. The two definitions
    differ by about a parcel radius for neighbouring parcels.

    Parameters
    ----------
    vertices : (V, 3) array_like
        Mesh coordinates in mm along which path lengths are measured (e.g.
        the fsaverage5 pial surface).
    faces : (F, 3) array_like of int
        Triangles of the mesh.
    labels : (V,) array_like of int
        Parcel label of each vertex.
    region_ids : sequence of int
        Labels of the parcels wanted, in the order wanted for the rows.
    centroid_coords : (V, 3) array_like, optional
        Coordinates used to choose the centroid vertex (e.g. the sphere of
        the same mesh). Default: `vertices`.
    exclude : sequence of int, optional
        Labels whose vertices are removed from the graph (medial wall,
        unknown); paths may not cross them. Default: label 0.

    Returns
    -------
    dist : (n_regions, n_regions) numpy.ndarray
        Symmetric, zero diagonal; ``inf`` between parcels that no path
        connects.

    Raises
    ------
    ValueError
        For mismatched shapes, a repeated or excluded region id, or a region
        id with no vertex.
    """
    from scipy.sparse.csgraph import dijkstra

    vertices = np.asarray(vertices, dtype=float)
    faces = np.asarray(faces)
    labels = np.asarray(labels).ravel()
    if vertices.ndim != 2 or vertices.shape[1] != 3:
        raise ValueError(f"vertices must have shape (V, 3), got "
                         f"{vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"faces must have shape (F, 3), got {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError("faces refer to vertices that do not exist")
    if labels.shape != (len(vertices),):
        raise ValueError(f"labels must have one value per vertex "
                         f"({len(vertices)}), got {labels.shape}")
    centroid_coords = (vertices if centroid_coords is None
                       else np.asarray(centroid_coords, dtype=float))
    if centroid_coords.shape != vertices.shape:
        raise ValueError(f"centroid_coords must have shape {vertices.shape} "
                         f"(same mesh), got {centroid_coords.shape}")
    region_ids = [int(r) for r in np.asarray(region_ids).ravel()]
    if len(set(region_ids)) != len(region_ids):
        raise ValueError("region_ids contains repeated ids")
    excluded = sorted(set(region_ids) & {int(e) for e in exclude})
    if excluded:
        raise ValueError(f"region ids {excluded} are excluded labels "
                         "(medial wall / unknown), not parcels")
    keep = ~np.isin(labels, np.asarray(list(exclude), dtype=labels.dtype))
    graph = _mesh_graph(vertices, faces, keep)
    cv = _centroid_vertices(labels, region_ids, centroid_coords)
    # the graph is symmetric already, so the directed search is the same and
    # skips scipy's per-call symmetrisation
    dist = dijkstra(graph, directed=True, indices=cv)[:, cv]
    # Dijkstra sums the same edges both ways; floating-point order can
    # differ by an ulp, so symmetrise exactly.
    dist = np.minimum(dist, dist.T)
    np.fill_diagonal(dist, 0.0)
    return dist


def volume_centroids(volume, region_ids) -> np.ndarray:
    """Centre of mass of each parcel of a label volume, in world mm.

    Parameters
    ----------
    volume : path-like or nibabel image
        Integer label image (e.g. an MNI152 parcellation).
    region_ids : sequence of int
        Labels wanted, in row order.

    Returns
    -------
    (n_regions, 3) numpy.ndarray
        Mean voxel position of each parcel, mapped through the affine.

    Raises
    ------
    ValueError
        If a region id has no voxel in the image.
    """
    import nibabel as nib

    img = nib.load(str(volume)) if not hasattr(volume, "affine") else volume
    data = np.asarray(img.dataobj)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"label volume {volume} must be 3-D, got shape "
                         f"{data.shape}")
    if np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)) or np.any(data != np.round(data)):
            raise ValueError(f"label volume {volume} holds non-integer "
                             "values; give a label image")
    region_ids = np.array([int(r) for r in np.asarray(region_ids).ravel()],
                          dtype=np.int64)
    if np.unique(region_ids).size != region_ids.size:
        raise ValueError("region_ids contains repeated ids")
    # One pass over the labelled voxels; bincount sums the voxel
    # coordinates per requested parcel.
    ijk_all = np.nonzero(np.isin(data, region_ids))
    lab = data[ijk_all].astype(np.int64)
    slot = np.searchsorted(np.sort(region_ids), lab)
    rank = np.argsort(region_ids)  # sorted position -> caller's row
    row = rank[slot]
    counts = np.bincount(row, minlength=region_ids.size)
    empty = region_ids[counts == 0].tolist()
    if empty:
        raise ValueError(f"region ids {empty} have no voxel in the label "
                         f"volume {volume}")
    ijk = np.column_stack([np.bincount(row, weights=c, minlength=region_ids.size)
                           for c in ijk_all]) / counts[:, None]
    return ijk @ img.affine[:3, :3].T + img.affine[:3, 3]


def euclidean_centroid_distance(volume, region_ids) -> np.ndarray:
    """Euclidean distance (mm) between parcel centroids of a label volume.

    Parameters
    ----------
    volume : path-like or nibabel image
        Integer label image in MNI space.
    region_ids : sequence of int
        Labels wanted, in row order.

    Returns
    -------
    (n_regions, n_regions) numpy.ndarray
    """
    from scipy.spatial.distance import cdist

    xyz = volume_centroids(volume, region_ids)
    dist = cdist(xyz, xyz)
    np.fill_diagonal(dist, 0.0)
    return dist


def _fsaverage5_mesh(mesh: str, hemi: str):
    import nibabel as nib
    from nilearn import datasets

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    side = "left" if hemi == "L" else "right"
    vertices, faces = nib.load(fs[f"{MESHES[mesh]}_{side}"]).agg_data()
    sphere = nib.load(fs[f"sphere_{side}"]).agg_data()[0]
    return vertices, faces, sphere


def _label_gifti(path):
    """Labels of a GIFTI and the ids neuromaps treats as non-parcels."""
    import nibabel as nib
    from neuromaps.images import PARCIGNORE

    img = nib.load(str(path))
    labels = np.asarray(img.agg_data()).astype(np.int64).ravel()
    table = img.labeltable.get_labels_as_dict()
    ignore = {0} | {int(k) for k, name in table.items() if name in PARCIGNORE}
    return labels, ignore


def parcel_distance_matrix(atlas, region_ids, kind="auto", mesh="pial"):
    """Parcel-by-parcel distance matrix for the nulls of this module.

    Parameters
    ----------
    atlas : itx.atlas.Atlas
        Atlas with an ``info`` table (``id, hemisphere, structure``), a
        label ``volume`` and/or a ``surface`` pair of fsaverage5 label
        GIFTIs.
    region_ids : sequence of int
        Parcel ids (``info.id``, the label values) in the order wanted for
        the rows.
    kind : {'auto', 'geodesic', 'euclidean'}, optional
        'geodesic': every region must be a parcel of the surface GIFTIs;
        geodesic distance along the fsaverage5 `mesh` between parcel
        centroid vertices (:func:`surface_parcel_distance`), per hemisphere,
        ``inf`` between hemispheres. 'euclidean': distance between parcel
        centroids of the label volume (:func:`volume_centroids`), all
        regions in one block. 'auto' (default): cortical regions
        (``structure == 'cortex'``) geodesic when the atlas has a surface,
        otherwise Euclidean (both hemispheres in one block, as distances
        through the volume are meaningful across the midline); all other
        regions (subcortex, brainstem) Euclidean in one block of their own;
        ``inf`` between cortex and the rest, so that cortex and subcortex
        nulls are fitted separately and paired column by column
        (:func:`itx.nullmaps.null_maps`).
    mesh : {'pial', 'white', 'inflated', 'sphere'}, optional
        fsaverage5 mesh (bundled with nilearn, offline) along which geodesic
        distances are measured. The centroid vertex is always chosen on the
        sphere.

    Returns
    -------
    dist : (n_regions, n_regions) numpy.ndarray
        Symmetric, zero diagonal, mm; ``inf`` between blocks.

    Raises
    ------
    ValueError
        For an unknown `kind` / `mesh`, ids missing from the atlas table, or
        an atlas lacking the surface / volume the chosen kind needs.
    """
    if kind not in ("auto", "geodesic", "euclidean"):
        raise ValueError(f"kind must be 'auto', 'geodesic' or 'euclidean', "
                         f"got {kind!r}")
    if mesh not in MESHES:
        raise ValueError(f"mesh must be one of {sorted(MESHES)}, got "
                         f"{mesh!r}")
    region_ids = [int(r) for r in np.asarray(region_ids).ravel()]
    if not region_ids:
        raise ValueError("region_ids is empty")
    if len(set(region_ids)) != len(region_ids):
        raise ValueError("region_ids contains repeated ids")
    info = atlas.info.set_index(atlas.info["id"].astype(int))
    missing = [r for r in region_ids if r not in info.index]
    if missing:
        raise ValueError(f"region ids {missing} are not in the table of "
                         f"atlas {atlas.name!r}")
    is_cortex = np.array([info.at[r, "structure"] == "cortex"
                          for r in region_ids])

    n = len(region_ids)
    dist = np.full((n, n), np.inf)
    if kind == "geodesic":
        surface_rows = np.arange(n)
    elif kind == "euclidean":
        surface_rows = np.array([], dtype=int)
    else:
        surface_rows = (np.flatnonzero(is_cortex) if atlas.surface is not None
                        else np.array([], dtype=int))
    volume_rows = np.setdiff1d(np.arange(n), surface_rows)

    if surface_rows.size:
        if atlas.surface is None:
            raise ValueError(f"atlas {atlas.name!r} has no surface label "
                             "GIFTIs; use kind='euclidean'")
        todo = set(surface_rows.tolist())
        for hemi, path in zip(("L", "R"), atlas.surface):
            labels, ignore = _label_gifti(path)
            present = set(np.unique(labels).tolist()) - ignore
            rows = [k for k in sorted(todo) if region_ids[k] in present]
            if not rows:
                continue
            vertices, faces, sphere = _fsaverage5_mesh(mesh, hemi)
            if len(vertices) != len(labels):
                raise ValueError(
                    f"{path} has {len(labels)} vertices but fsaverage5 has "
                    f"{len(vertices)}; surface labels must be on fsaverage5")
            sub = surface_parcel_distance(
                vertices, faces, labels, [region_ids[k] for k in rows],
                centroid_coords=sphere, exclude=sorted(ignore))
            dist[np.ix_(rows, rows)] = sub
            todo -= set(rows)
        if todo:
            bad = [region_ids[k] for k in sorted(todo)]
            raise ValueError(f"region ids {bad} are not parcels of the "
                             f"surface label GIFTIs of atlas {atlas.name!r}")

    if volume_rows.size:
        if atlas.volume is None:
            raise ValueError(f"atlas {atlas.name!r} has no label volume; "
                             "Euclidean centroid distances need one")
        xyz = volume_centroids(atlas.volume,
                               [region_ids[k] for k in volume_rows])
        from scipy.spatial.distance import cdist

        if kind == "euclidean":
            groups = [np.arange(volume_rows.size)]
        else:
            groups = [np.flatnonzero(is_cortex[volume_rows]),
                      np.flatnonzero(~is_cortex[volume_rows])]
        for g in groups:
            rows = volume_rows[g]
            dist[np.ix_(rows, rows)] = cdist(xyz[g], xyz[g])
    np.fill_diagonal(dist, 0.0)
    return dist


def distance_blocks(dist) -> np.ndarray:
    """Label the connected blocks of a distance matrix.

    Two regions are in the same block when a chain of finite distances links
    them (:func:`scipy.sparse.csgraph.connected_components`). Blocks are
    numbered in the order of their first row.

    Parameters
    ----------
    dist : (n, n) array_like
        Distances, ``inf`` between blocks.

    Returns
    -------
    (n,) numpy.ndarray of int
    """
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    dist = np.asarray(dist, dtype=float)
    finite = np.isfinite(dist)
    _, comp = connected_components(sparse.csr_matrix(finite), directed=False)
    # renumber by first appearance, so block 0 holds row 0
    _, first = np.unique(comp, return_index=True)
    order = np.argsort(first)
    relabel = np.empty_like(order)
    relabel[order] = np.arange(order.size)
    return relabel[comp]


def _iter_blocks(values, dist):
    """Yield (block number, row indices) of finite values per distance block."""
    ok = np.isfinite(values)
    blocks = distance_blocks(dist)
    for b in range(blocks.max() + 1):
        rows = np.flatnonzero((blocks == b) & ok)
        if rows.size == 0:
            continue
        sub = dist[np.ix_(rows, rows)]
        if not np.isfinite(sub).all():
            raise ValueError(
                f"distance block {b} is not complete (some pairs inf while "
                "connected through others); give a full block of finite "
                "distances per hemisphere / structure")
        yield b, rows


# ---------------------------------------------------------------------------
# variogram surrogates (Burt et al. 2020)
# ---------------------------------------------------------------------------


def variogram_surrogates(values, dist, n_perm, seed, batch_size=50,
                         **brainsmash_kwargs):
    """Variogram-matched surrogate maps (BrainSMASH ``Base``), per block.

    Each finite block of `dist` (hemisphere, subcortex) gets its own
    :class:`brainsmash.mapgen.Base` fitted on the block's finite values;
    regions with NaN values stay NaN in every surrogate. For one block the
    output equals ``Base(values, dist, seed=seed, **kwargs)(n_perm,
    batch_size).T`` (what neuromaps' ``burt2020`` does for parcellated
    data, batch size 50); see :func:`_block_seed` for later blocks.

    Parameters
    ----------
    values : (n,) array_like
        Parcellated map; NaN = no value.
    dist : (n, n) array_like
        Distances from :func:`parcel_distance_matrix` (``inf`` between
        blocks).
    n_perm : int
        Number of surrogates.
    seed : int
        Seed; the same seed gives identical surrogates.
    batch_size : int, optional
        Surrogates drawn per random stream by BrainSMASH (its output depends
        on it). Default 50, as in neuromaps.
    **brainsmash_kwargs
        Passed to ``Base``: ``deltas``, ``kernel``, ``pv``, ``nh``,
        ``resample``, ``b``, ``n_jobs``. When `deltas` is not given, the
        default ``0.1, ..., 0.9`` is restricted per block to the proportions
        that select at least one neighbour (small blocks such as one
        hemisphere's subcortex would otherwise smooth with zero
        neighbours).

    Returns
    -------
    (n, n_perm) numpy.ndarray of float
        Surrogate values; with ``resample=False`` (BrainSMASH's default)
        each block's surrogates are de-meaned, so compare them with
        rank or Pearson correlations, not raw values.

    Raises
    ------
    ValueError
        For malformed inputs, a block with fewer than 3 finite values, or a
        reserved keyword (``seed``).
    """
    compat.patch_brainsmash()
    from brainsmash.mapgen import Base

    values, dist = _check_values_dist(values, dist)
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    if "seed" in brainsmash_kwargs:
        raise ValueError("pass the seed as the `seed` argument")
    out = np.full((values.size, n_perm), np.nan)
    for b, rows in _iter_blocks(values, dist):
        if rows.size < MIN_BLOCK:
            raise ValueError(
                f"distance block {b} has {rows.size} region(s) with values; "
                f"variogram surrogates need at least {MIN_BLOCK} (use a "
                "within-group permutation for so few regions)")
        kwargs = dict(brainsmash_kwargs)
        if "deltas" not in kwargs:
            deltas = np.linspace(0.1, 0.9, 9)
            kwargs["deltas"] = deltas[(deltas * rows.size).astype(int) >= 1]
        gen = Base(values[rows], dist[np.ix_(rows, rows)],
                   seed=_block_seed(seed, b), **kwargs)
        surr = np.asarray(gen(n_perm, batch_size), dtype=float)
        out[rows] = surr.reshape(n_perm, rows.size).T
    return out


def smoothed_variogram(values, dist, pv=25, nh=25, b=None):
    """Gaussian-smoothed variogram as BrainSMASH fits it.

    For every pair ``i < j`` with finite distance below the `pv`-th
    percentile of those distances and finite values, the semivariance
    ``(x_i - x_j)^2 / 2`` is averaged with Gaussian weights
    ``exp(-(2.68 |u_ij - h| / b)^2 / 2)`` at `nh` evenly spaced distances
    ``h``; `b` defaults to three bin spacings (BrainSMASH's rule).

    Parameters
    ----------
    values : (n,) or (n, m) array_like
        One map or `m` maps (columns) sharing `dist`.
    dist : (n, n) array_like
        Distances; ``inf`` pairs are ignored.
    pv : float, optional
        Percentile of the finite pairwise distances at which to truncate.
    nh : int, optional
        Number of distances at which the variogram is evaluated.
    b : float, optional
        Kernel bandwidth.

    Returns
    -------
    h : (nh,) numpy.ndarray
        Distances.
    gamma : (nh,) or (nh, m) numpy.ndarray
        Smoothed semivariance.
    """
    x = np.asarray(values, dtype=float)
    one = x.ndim == 1
    x = x[:, None] if one else x
    dist = np.asarray(dist, dtype=float)
    if dist.shape != (x.shape[0],) * 2:
        raise ValueError(f"dist must have shape ({x.shape[0]}, "
                         f"{x.shape[0]}), got {dist.shape}")
    # Rows with a NaN in any column drop out of every pair (the surrogates
    # keep the map's NaNs, so this is the same set of rows for all columns;
    # variogram_diagnostic handles null maps with gaps of their own).
    ok = np.isfinite(x).all(axis=1)
    iu, ju, h, w = _variogram_kernel(ok, dist, pv, nh, b)
    gamma = np.empty((h.size, x.shape[1]))
    step = max(1, int(2e7 // max(iu.size, 1)))  # bound the pair x map block
    for s in range(0, x.shape[1], step):
        v = 0.5 * np.square(x[iu, s:s + step] - x[ju, s:s + step])
        gamma[:, s:s + step] = w @ v
    return h, (gamma[:, 0] if one else gamma)


def _variogram_kernel(ok, dist, pv, nh, b):
    """Pairs and Gaussian kernel weights of :func:`smoothed_variogram`.

    Pairs ``i < j`` of rows with ``ok`` and a finite distance below the
    `pv`-th percentile; returns their rows ``iu, ju``, the distances ``h``
    and the weights ``w`` (nh x pairs, rows summing to 1).
    """
    iu, ju = np.triu_indices(ok.shape[0], k=1)
    u = dist[iu, ju]
    pair = np.isfinite(u) & ok[iu] & ok[ju]
    iu, ju, u = iu[pair], ju[pair], u[pair]
    if u.size == 0:
        raise ValueError("no pair of regions with finite distance and values")
    keep = u < np.percentile(u, pv)
    if not keep.any():  # all distances equal
        keep[:] = True
    iu, ju, u = iu[keep], ju[keep], u[keep]
    h = np.linspace(u.min(), u.max(), int(nh))
    if b is None:
        b = 3.0 * (h[1] - h[0]) if nh > 1 else 1.0
    w = np.exp(-np.square(2.68 * np.abs(u - h[:, None]) / b) / 2)
    w /= w.sum(axis=1, keepdims=True)
    return iu, ju, h, w


def _gapped_variograms(surrogates, ok, dist, pv, nh, b):
    """Variograms of null maps that lack values in some of the map's rows.

    Every null map is measured on the map's pairs and distances (the kernel
    of the map's own variogram), each over the pairs where it has both
    values: a pair the null map lacks is left out of its weighted means,
    which are renormalised over the pairs it has. NaN at a distance where a
    null map has no pair with weight.
    """
    iu, ju, h, w = _variogram_kernel(ok, dist, pv, nh, b)
    x = surrogates
    gamma = np.empty((h.size, x.shape[1]))
    step = max(1, int(4e6 // max(iu.size, 1)))  # bound the pair x map block (a few arrays)
    for s in range(0, x.shape[1], step):
        v = 0.5 * np.square(x[iu, s:s + step] - x[ju, s:s + step])
        has = np.isfinite(v)
        num = w @ np.where(has, v, 0.0)
        den = w @ has.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma[:, s:s + step] = np.where(den > 0, num / den, np.nan)
    return gamma


#: Fewest regions with a value for a variogram (map or null map).
MIN_VARIOGRAM_REGIONS = 3


def variogram_diagnostic(values, dist, surrogates, pv=25, nh=25, *, name=None):
    """Empirical vs surrogate variograms, as a tidy table for the report.

    Parameters
    ----------
    values : (n,) array_like
        The map; NaN = no value (the region is left out).
    dist : (n, n) array_like
        The distances the surrogates were made with.
    surrogates : (n, n_perm) array_like
        Null values (any family: variogram, Moran, permutation, spins);
        NaN = no value.
    pv, nh : optional
        As in :func:`smoothed_variogram` (BrainSMASH's defaults).
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    pandas.DataFrame
        One row per distance: ``distance, empirical, surrogate_mean,
        surrogate_p2.5, surrogate_p97.5``. A well-fitted null has the
        empirical curve inside the band and close to the mean.
        ``attrs["n_null"]`` holds the number of null maps in the band.

    Raises
    ------
    ValueError
        When the map has values in fewer than 3 regions.

    Notes
    -----
    The empirical variogram uses every region with a map value. A null map
    with a value wherever the map has one is measured over the same pairs
    (as BrainSMASH does); a null map lacking values in some of those regions
    (a spin that moved a region without data, or a parcel into the medial
    wall) is measured over the map's pairs where it has both values, so no
    null map is dropped for a gap and no region is dropped from the other
    null maps. Null maps with values in fewer than 3 of the map's regions,
    or without a pair at some distance, are left out of the band; with none
    left the band is NaN (and a :class:`itx.association.NullMapWarning`
    says why).
    """
    values = np.asarray(values, dtype=float)
    surrogates = np.asarray(surrogates, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if surrogates.ndim != 2 or surrogates.shape[0] != values.size:
        raise ValueError(f"surrogates must have shape ({values.size}, "
                         f"n_perm), got {surrogates.shape}")
    label = f"map {name!r}" if name is not None else "the map"
    ok = np.isfinite(values)
    if ok.sum() < MIN_VARIOGRAM_REGIONS:
        raise ValueError(
            f"{label} has values in {int(ok.sum())} region(s), too few for a variogram (at "
            f"least {MIN_VARIOGRAM_REGIONS} needed); give the map values in more regions of the "
            "analysis scope")
    n_perm = surrogates.shape[1]
    if np.isfinite(surrogates[ok]).all():
        # every null map has a value wherever the map has one: the same rows
        # for map and surrogates, as BrainSMASH measures them
        masked = np.where(ok, values, np.nan)
        h, emp = smoothed_variogram(masked, dist, pv=pv, nh=nh)
        _, sur = smoothed_variogram(np.where(ok[:, None], surrogates, np.nan),
                                    dist, pv=pv, nh=nh)
    else:
        h, emp = smoothed_variogram(np.where(ok, values, np.nan), dist, pv=pv, nh=nh)
        sur = _gapped_variograms(np.where(ok[:, None], surrogates, np.nan), ok,
                                 np.asarray(dist, dtype=float), pv, nh, None)
        enough = np.isfinite(surrogates[ok]).sum(axis=0) >= MIN_VARIOGRAM_REGIONS
        sur = sur[:, enough & np.isfinite(sur).all(axis=0)]
    if sur.shape[1]:
        lo, hi = np.percentile(sur, [2.5, 97.5], axis=1)
        mean = sur.mean(axis=1)
    else:
        import warnings

        from .association import NullMapWarning

        warnings.warn(
            f"variogram of {label}: none of the {n_perm} null maps has values in at least "
            f"{MIN_VARIOGRAM_REGIONS} of the {int(ok.sum())} regions where the map has values, "
            "so the null band is left empty (n_null 0). This happens when the map lacks values "
            "in many scope regions and a spin null moves those gaps onto the others; fill in "
            "the map's missing regions, or give the map a null made over its own regions "
            "(nulls.method or the maps sheet's null_method: burt2020 or moran).",
            NullMapWarning, stacklevel=2)
        lo = hi = mean = np.full(h.size, np.nan)
    out = pd.DataFrame({
        "distance": h,
        "empirical": emp,
        "surrogate_mean": mean,
        "surrogate_p2.5": lo,
        "surrogate_p97.5": hi,
    })
    out.attrs["n_null"] = int(sur.shape[1])
    return out


def plot_variogram(diag, path, title=None):
    """Draw a variogram diagnostic (:func:`variogram_diagnostic`) to a PNG.

    Parameters
    ----------
    diag : pandas.DataFrame
        Output of :func:`variogram_diagnostic`.
    path : path-like
        Output ``.png``; written atomically.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    from .figures import new_figure, save_png  # matplotlib only when plotting

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"variogram plot must be a .png file, got {path}")
    need = {"distance", "empirical", "surrogate_mean", "surrogate_p2.5",
            "surrogate_p97.5"}
    if not need <= set(diag.columns):
        raise ValueError(f"diag lacks columns {sorted(need - set(diag.columns))}"
                         "; pass the output of variogram_diagnostic")
    fig = new_figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(diag["distance"], diag["surrogate_p2.5"],
                    diag["surrogate_p97.5"], color="0.8",
                    label="surrogates 95%")
    ax.plot(diag["distance"], diag["surrogate_mean"], color="0.35", lw=1.5,
            label="surrogate mean")
    ax.plot(diag["distance"], diag["empirical"], color="C3", lw=2,
            label="empirical")
    ax.set_xlabel("distance (mm)")
    ax.set_ylabel("semivariance (smoothed)")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


# ---------------------------------------------------------------------------
# Moran spectral randomisation
# ---------------------------------------------------------------------------


def _moran_eigenvectors(dist):
    """Eigenvectors of the doubly centred inverse-distance weight matrix.

    Returns all ``n - 1`` eigenvectors orthogonal to the constant, sorted by
    decreasing eigenvalue (BrainSpace's order). Working in an orthonormal
    basis of the complement of the constant removes the constant exactly,
    instead of finding it among eigenvalues below a tolerance (BrainSpace's
    float32 route can keep or drop the wrong vector).
    """
    n = dist.shape[0]
    with np.errstate(divide="ignore"):
        w = 1.0 / dist
    # No self-weight: Moran's weight convention. neuromaps sets the diagonal
    # to 1; after double centring that only adds 1 to every eigenvalue but
    # the constant's, which leaves the eigenvectors and their order alone.
    np.fill_diagonal(w, 0.0)
    # Orthonormal basis of the vectors orthogonal to 1 (Householder-free:
    # QR of [1 | I] gives 1/sqrt(n) first, the rest complete the basis).
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, :n - 1]]))
    basis = q[:, 1:n]
    ev, u = np.linalg.eigh(basis.T @ w @ basis)
    order = np.argsort(ev)[::-1]
    return ev[order], basis @ u[:, order]


def moran_surrogates(values, dist, n_perm, seed):
    """Moran spectral randomisation (singleton procedure), per block.

    Within each finite block of `dist`, the map is expanded on the
    eigenvectors ``v_k`` of the doubly centred inverse-distance weight
    matrix (Moran eigenvector maps); a surrogate flips the sign of each
    coefficient at random: ``mean + sum_k s_k v_k (v_k . (x - mean))`` with
    ``s_k = +-1``. Every surrogate has exactly the map's mean, variance and
    Moran's I (for the inverse-distance weights), i.e. the same Moran
    spectrum; the null is map-dependent. This is neuromaps' ``moran`` null
    (BrainSpace ``MoranRandomization`` with ``joint=True``,
    ``procedure='singleton'``) computed in float64; the signs are drawn as
    BrainSpace draws them (``RandomState(seed).choice([-1., 1.], size=
    (n_perm, n_block - 1, 1))``), so surrogates agree with neuromaps' up to
    BrainSpace's float32 eigenvectors whenever it finds exactly one zero
    eigenvalue. neuromaps needs BrainSpace (and VTK), which is not in this
    workflow's stack.

    Parameters
    ----------
    values : (n,) array_like
        Parcellated map; NaN = no value (kept NaN in every surrogate).
    dist : (n, n) array_like
        Distances (``inf`` between blocks), e.g. from
        :func:`parcel_distance_matrix`.
    n_perm : int
        Number of surrogates.
    seed : int
        Seed; see :func:`_block_seed` for blocks after the first.

    Returns
    -------
    (n, n_perm) numpy.ndarray of float
    """
    values, dist = _check_values_dist(values, dist)
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    out = np.full((values.size, n_perm), np.nan)
    for b, rows in _iter_blocks(values, dist):
        if rows.size < MIN_BLOCK:
            raise ValueError(
                f"distance block {b} has {rows.size} region(s) with values; "
                f"Moran surrogates need at least {MIN_BLOCK}")
        x = values[rows]
        _, mem = _moran_eigenvectors(dist[np.ix_(rows, rows)])
        rs = np.random.RandomState(_block_seed(seed, b))
        signs = rs.choice([-1.0, 1.0], size=(n_perm, mem.shape[1], 1))
        mean = x.mean()
        coef = mem.T @ (x - mean)
        out[rows] = mean + mem @ (coef[:, None] * signs[:, :, 0].T)
    return out


# ---------------------------------------------------------------------------
# permutations within groups
# ---------------------------------------------------------------------------


def permute_within(groups, n_perm, seed) -> np.ndarray:
    """Random permutations that keep every region inside its group.

    Each column is a uniformly drawn permutation of the rows within each
    group (e.g. structure class x hemisphere for subcortical regions), never
    a draw with replacement; groups are permuted independently.

    Parameters
    ----------
    groups : (n,) sequence
        Group label of each region (any hashable values; ``None`` or NaN
        marks a region left out: its row is -1 and no other row draws it).
    n_perm : int
        Number of permutations.
    seed : int
        Seed of ``numpy.random.default_rng``; same seed, same output.

    Returns
    -------
    idx : (n, n_perm) numpy.ndarray of int64
        Null ``j`` of ``y`` is ``y[idx[:, j]]``.
    """
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    labels = pd.Series(list(groups), dtype=object)
    if labels.empty:
        raise ValueError("groups is empty")
    codes, _ = pd.factorize(labels)  # NaN/None -> -1
    rng = np.random.default_rng(seed)
    idx = np.full((labels.size, n_perm), -1, dtype=np.int64)
    # Arg-sorting iid uniform keys gives a uniformly random permutation;
    # one draw per group covers all permutations at once.
    for g in range(codes.max() + 1):
        rows = np.flatnonzero(codes == g)
        keys = rng.random((rows.size, n_perm))
        idx[rows] = rows[np.argsort(keys, axis=0)]
    return idx
