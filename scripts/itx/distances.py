"""Distances between parcels, the per-atlas input of the distance-based nulls.

The variogram and Moran nulls (:mod:`itx.surrogates`) work from a
parcel-by-parcel distance matrix (:func:`parcel_distance_matrix`): geodesic
along the fsaverage5 mesh for cortical surface parcels (one hemisphere at a
time), Euclidean between parcel centroids in MNI millimetres for volumetric
parcels and the subcortex. Pairs that share no meaningful distance (the two
cortical hemispheres, cortex vs subcortex) are ``inf``; the surrogates treat
each finite block (:func:`distance_blocks`) independently, as neuromaps does
for hemispheres. Parcel-level distances are what keep this fast; neuromaps'
voxel-by-voxel route for volumetric parcellations runs out of disk or takes
hours (neuromaps issues 119 and 171).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "distance_blocks",
    "euclidean_centroid_distance",
    "parcel_distance_matrix",
    "surface_parcel_distance",
    "volume_centroids",
]

#: Mesh names accepted by :func:`parcel_distance_matrix` -> nilearn's keys.
MESHES = {"pial": "pial", "white": "white", "inflated": "infl",
          "sphere": "sphere"}


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


