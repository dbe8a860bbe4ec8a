"""Bring a disease map onto an atlas: volumes, fsaverage GIFTI pairs, region tables.

Every reader returns a :class:`pandas.Series` indexed by the atlas's region
names (all regions, NaN where the map has no data), so later stages never need
to know which format the map came in.

Map files are read through :mod:`itx.mapfiles`, which the DAG also uses to
check them before any job: a bad file fails here with the same
:class:`~itx.mapfiles.MapInputError` message, even if it changed after the
DAG's check.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from . import mapfiles
from .mapfiles import DENSITIES, FORMATS, REGION_COLUMNS, MapInputError  # noqa: F401 (API)


def _parcel_means(values, labels, ids):
    """NaN-aware mean of `values` within each label in `ids` (NaN if none)."""
    values = np.asarray(values, dtype=float).ravel()
    labels = np.asarray(labels).ravel()
    ok = np.isfinite(values) & np.isin(labels, ids)
    # bincount over positions in `ids` keeps this one vectorised pass
    pos = np.searchsorted(np.sort(ids), labels[ok])
    order = np.argsort(ids)
    sums = np.bincount(pos, weights=values[ok], minlength=len(ids))
    counts = np.bincount(pos, minlength=len(ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        means_sorted = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    means = np.empty(len(ids))
    means[order] = means_sorted
    return means


def _map_coverage(img, atlas_affine, labels):
    """Fraction of the atlas's labelled voxels inside the map's field of view."""
    ijk = np.column_stack(np.nonzero(labels > 0))
    if ijk.size == 0:
        return 0.0
    # atlas voxel -> world -> map voxel, for a thinned set of voxels (a few
    # thousand are plenty for a fraction and keep this cheap on 1 mm atlases)
    ijk = ijk[:: max(1, len(ijk) // 20000)]
    world = ijk @ atlas_affine[:3, :3].T + atlas_affine[:3, 3]
    inv = np.linalg.inv(img.affine)
    vox = world @ inv[:3, :3].T + inv[:3, 3]
    inside = np.all((vox > -0.5) & (vox < np.array(img.shape[:3]) - 0.5), axis=1)
    return float(inside.mean())


def parcellate_volume(map_img, atlas_img, info, *, min_coverage=0.5):
    """Mean of a volumetric map within each parcel of a volumetric atlas.

    The map may be on any grid (1, 2, 3 mm, cropped, other orientation) as
    long as it is in MNI152 world coordinates: when grids differ it is
    resampled onto the atlas grid with nilearn (continuous interpolation;
    atlas voxels outside the map's field of view get NaN, not 0, so they
    do not pull parcel means towards zero). Voxels that are NaN in the map
    are ignored, so a parcel with no finite voxel gets NaN.

    Parameters
    ----------
    map_img : str, os.PathLike or nibabel image
        3D map in MNI152 space.
    atlas_img : str, os.PathLike or nibabel image
        3D integer label image in MNI152 space.
    info : pandas.DataFrame
        Region table with ``id`` and ``region``.
    min_coverage : float
        Smallest fraction of the atlas's labelled voxels the map's field of
        view must cover; less means the map is not in MNI152 space (or its
        affine is wrong) and is an error.

    Returns
    -------
    pandas.Series
        Parcel means indexed by region.

    Raises
    ------
    MapInputError
        The file cannot be read or is truncated, is not one 3D volume, has
        infinite voxels (:func:`itx.mapfiles.load_volume`), does not overlap
        the atlas enough (wrong space or affine), or gives no finite value
        in any parcel.
    """
    from nilearn import image

    if isinstance(map_img, (str, os.PathLike)):
        src = str(map_img)
    else:
        src = "map image"
        import nibabel as nib

        if not isinstance(map_img, nib.spatialimages.SpatialImage):
            map_img = image.load_img(map_img)
    img = mapfiles.load_volume(map_img)
    return _parcellate_volume_image(img, src, atlas_img, info, min_coverage=min_coverage)


def _parcellate_volume_image(img, src, atlas_img, info, *, min_coverage=0.5):
    """:func:`parcellate_volume` of an image already read and checked."""
    from nilearn import image

    img = image.load_img(img)
    atlas = image.load_img(atlas_img)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = image.index_img(img, 0)
    labels = np.asarray(atlas.dataobj).astype(int)
    if labels.ndim == 4:
        labels = labels[..., 0]
    same_grid = img.shape == atlas.shape[:3] and np.allclose(img.affine, atlas.affine)
    if not same_grid:
        coverage = _map_coverage(img, atlas.affine, labels)
        if coverage < min_coverage:
            raise MapInputError(
                f"{src}: its field of view covers {coverage:.0%} of the atlas's parcels, so it "
                "is not in MNI152 space (or its affine is wrong); register the map to MNI152 "
                "(e.g. MNI152NLin2009cAsym or FSL's MNI152) before using it"
            )
        # force_resample: nilearn 0.10.4's shortcut for grids that differ by a
        # whole-voxel shift copies the map without the shift (a map on a 1 mm
        # grid with another origin lands tens of mm off), and fills with 0
        img = image.resample_to_img(img, atlas, interpolation="continuous",
                                    fill_value=np.nan, force_resample=True)
    data = np.asarray(img.get_fdata(dtype=np.float64))
    ids = info["id"].to_numpy(int)
    values = _parcel_means(data, labels, ids)
    if not np.isfinite(values).any():
        raise MapInputError(
            f"{src}: no parcel of the atlas has a finite map value (all NaN or outside the "
            "map); check that the map is in MNI152 space and not empty"
        )
    return pd.Series(values, index=pd.Index(info["region"], name="region"), name="value")


def _load_labels(path):
    """One integer label per vertex of an atlas's label GIFTI (path or image).

    The atlas was checked when it was loaded (:func:`itx.atlas.load_atlas`).
    """
    import nibabel as nib

    img = path if isinstance(path, nib.gifti.GiftiImage) else nib.load(str(path))
    if not isinstance(img, nib.gifti.GiftiImage) or len(img.darrays) != 1:
        raise ValueError(f"{path}: not a one-array label GIFTI")
    data = np.asarray(img.darrays[0].data)
    if data.ndim == 2 and 1 in data.shape:
        data = data.ravel()
    return data.astype(np.int64)


def vertex_values(path):
    """One value per vertex of a GIFTI map, its vertex count checked (fsaverage5/6/7).

    Parameters
    ----------
    path : path-like or nibabel.gifti.GiftiImage

    Returns
    -------
    numpy.ndarray of float

    Raises
    ------
    MapInputError
        See :func:`itx.mapfiles.load_vertex_values`.
    """
    return mapfiles.load_vertex_values(path)


def parcellate_surface(map_giftis, label_giftis, info):
    """Mean of a surface map (left, right GIFTI pair) within each surface parcel.

    Map and atlas may be on different fsaverage densities (5, 6 or 7). The
    meshes are nested (the first 10,242 vertices of fsaverage6/7 are the
    fsaverage5 vertices, the first 40,962 of fsaverage7 the fsaverage6
    ones), so both are taken at the coarser of the two densities: its
    vertices exist on both meshes, and the map's values and the atlas's
    labels there are exact (no interpolation). A parcel too small to keep a
    vertex at the coarser density gets NaN.

    Parameters
    ----------
    map_giftis : tuple of str or os.PathLike
        (left, right) func/shape GIFTIs with one value per vertex.
    label_giftis : tuple of str, os.PathLike or GiftiImage
        (left, right) label GIFTIs of the atlas on an fsaverage mesh.
    info : pandas.DataFrame
        Region table with ``id`` and ``region``.

    Returns
    -------
    pandas.Series
        Parcel means indexed by region.

    Raises
    ------
    MapInputError
        Not pairs; a file that cannot be read or is not a one-array GIFTI;
        vertex counts that are not fsaverage5/6/7 or differ between the two
        hemispheres; infinite values (:func:`itx.mapfiles.load_surface_pair`).
    """
    if len(map_giftis) != 2 or len(label_giftis) != 2:
        raise MapInputError("surface maps and atlases are (left, right) GIFTI pairs; give the "
                            "map's path as 'left.gii,right.gii'")
    maps = mapfiles.load_surface_pair(map_giftis)
    return _parcellate_surface_values(maps, label_giftis, info)


def _parcellate_surface_values(maps, label_giftis, info):
    """:func:`parcellate_surface` of (left, right) values already read and checked."""
    labs = [_load_labels(p) for p in label_giftis]
    n = min(maps[0].size, labs[0].size)
    values = np.concatenate([m[:n] for m in maps])
    labels = np.concatenate([lab[:n] for lab in labs])
    means = _parcel_means(values, labels, info["id"].to_numpy(int))
    return pd.Series(means, index=pd.Index(info["region"], name="region"), name="value")


def read_region_table(path, info, column=None):
    """Read a table of region values and align it with an atlas.

    Regions are matched by name (case-insensitive, against the atlas's
    ``region``, a ``label`` unique in the atlas, and ENIGMA's subcortical
    abbreviations: :func:`itx.regions.name_lookup`) or by integer id. ENIGMA
    summary-statistic tables (``Structure`` + ``d_icv``, cortical or
    subcortical) work as they are.

    Parameters
    ----------
    path : str or os.PathLike
        CSV or TSV file.
    info : pandas.DataFrame
        Region table with ``id``, ``label`` and ``region``.
    column : str, optional
        Value column; default the only numeric column besides the region
        column, else ``value``.

    Returns
    -------
    pandas.Series
        Values for every atlas region (NaN where the table has none).

    Raises
    ------
    MapInputError
        The file problems of :func:`itx.mapfiles.read_map_table`, regions
        the atlas does not have, or two rows naming one atlas region.
    """
    return _align_table(mapfiles.read_map_table(path, column), info)


def _align_table(found, info):
    """Values per atlas region of a read and checked :class:`itx.mapfiles.MapTable`."""
    path, keys, values = found.path, found.keys, found.values
    if pd.api.types.is_integer_dtype(keys):
        lookup = dict(zip(info["id"].astype(int), info["region"]))
        regions = keys.map(lookup)
    else:
        from .regions import ENIGMA_NO_PARCEL, name_lookup

        # region names, labels unique in the atlas (brainstem), ENIGMA's Laccumb...
        lower = keys.astype(str).str.strip().str.lower()
        skip = lower.isin(ENIGMA_NO_PARCEL)
        if skip.any():
            logging.getLogger(__name__).warning(
                "%s: skipped ENIGMA row(s) %s (lateral ventricles: no parcel of the atlas)",
                path, keys[skip].tolist())
            keys, values, lower = keys[~skip], values[~skip], lower[~skip]
        regions = lower.map(name_lookup(info))
    unknown = keys[regions.isna()].tolist()
    if unknown:
        raise MapInputError(
            f"{path}: {len(unknown)} region(s) not in the atlas: {unknown[:10]}; "
            f"atlas regions look like {info['region'].head(3).tolist()} (or integer ids): "
            "rename the rows, or limit this map to the atlas it was made for (the maps "
            "sheet's 'atlas' column)"
        )
    if regions.duplicated().any():
        dup = keys[regions.duplicated(keep=False)].tolist()
        raise MapInputError(f"{path}: rows {dup} name the same atlas region, so it is listed "
                            "twice; keep one row per region")
    series = pd.Series(values.to_numpy(float), index=regions.to_numpy())
    out = series.reindex(info["region"].to_numpy())
    out.index.name = "region"
    out.name = "value"
    return out


def parcellate_map(path, fmt, atlas, *, column=None, sign=1.0):
    """Parcellate one map of the maps sheet onto an atlas.

    The file gets every check of :func:`itx.mapfiles.check_map_file` (the
    DAG's, repeated because the file may have changed since), and the
    parcellated map must have at least :data:`itx.mapfiles.MIN_REGIONS`
    regions with a value, not all equal
    (:func:`itx.mapfiles.check_parcellated`).

    Parameters
    ----------
    path : str or tuple
        File (``nifti``, ``table``) or (left, right) files (``gifti``).
    fmt : {'nifti', 'gifti', 'table'}
        Map format.
    atlas : itx.atlas.Atlas
        Target atlas.
    column : str, optional
        Value column of a region table.
    sign : float
        Multiplier applied to the values (e.g. -1 so that atrophy is positive).

    Returns
    -------
    pandas.Series
        Values indexed by region, all atlas regions.

    Raises
    ------
    MapInputError
        A problem of the map file, or of the map on this atlas; the message
        names the file and the fix.
    ValueError
        An unknown format, or an atlas without the volume or surface the
        format needs.
    """
    if fmt == "nifti":
        if atlas.volume is None:
            raise ValueError(
                f"atlas {atlas.name!r} has no volume, so the NIfTI map {path} cannot be "
                "parcellated on it; give the map as a GIFTI pair, or limit it to another "
                "atlas (the maps sheet's 'atlas' column)"
            )
        img = mapfiles.load_volume(path, content=True)
        values = _parcellate_volume_image(img, str(path), atlas.volume, atlas.info)
    elif fmt == "gifti":
        if atlas.surface is None:
            raise ValueError(
                f"atlas {atlas.name!r} has no surface, so the GIFTI map {path} cannot be "
                "parcellated on it; give the map as a NIfTI volume, or limit it to another "
                "atlas (the maps sheet's 'atlas' column)"
            )
        maps = mapfiles.load_surface_pair(path, content=True)
        values = _parcellate_surface_values(maps, atlas.surface, atlas.info)
    elif fmt == "table":
        values = _align_table(mapfiles.read_map_table(path, column, content=True), atlas.info)
    else:
        raise ValueError(f"unknown map format {fmt!r}; choose one of {FORMATS}")
    mapfiles.check_parcellated(values, path, atlas.name, fmt)
    return values * float(sign)


def map_table(values, info):
    """Tidy table of a parcellated map: ``region, id, hemisphere, structure, value``.

    Parameters
    ----------
    values : pandas.Series
        Indexed by region (from :func:`parcellate_map`).
    info : pandas.DataFrame
        Region table of the atlas.

    Returns
    -------
    pandas.DataFrame
    """
    table = info.loc[:, ["region", "id", "hemisphere", "structure"]].copy()
    table["value"] = values.reindex(info["region"]).to_numpy(float)
    return table
