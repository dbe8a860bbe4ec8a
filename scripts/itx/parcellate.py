"""Bring a disease map onto an atlas: volumes, fsaverage GIFTI pairs, region tables.

Every reader returns a :class:`pandas.Series` indexed by the atlas's region
names (all regions, NaN where the map has no data), so later stages never need
to know which format the map came in.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

#: Map formats the maps sheet accepts.
FORMATS = ("nifti", "gifti", "table")

#: Column names taken as the region column of a region table, in order.
REGION_COLUMNS = ("region", "Structure", "label", "name", "id")


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
    ValueError
        The map is not one 3D volume, does not overlap the atlas enough
        (wrong space or affine), or gives no finite value in any parcel.
    """
    from nilearn import image

    src = str(map_img) if isinstance(map_img, (str, Path)) else "map image"
    img = image.load_img(map_img)
    atlas = image.load_img(atlas_img)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = image.index_img(img, 0)
    if len(img.shape) != 3:
        raise ValueError(
            f"{src}: expected a 3D volume, got shape {img.shape}; give one map per file "
            "(split a 4D series, e.g. with nilearn.image.index_img)"
        )
    labels = np.asarray(atlas.dataobj).astype(int)
    if labels.ndim == 4:
        labels = labels[..., 0]
    same_grid = img.shape == atlas.shape[:3] and np.allclose(img.affine, atlas.affine)
    if not same_grid:
        coverage = _map_coverage(img, atlas.affine, labels)
        if coverage < min_coverage:
            raise ValueError(
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
        raise ValueError(
            f"{src}: no parcel of the atlas has a finite map value (all NaN or outside the "
            "map); check that the map is in MNI152 space and not empty"
        )
    return pd.Series(values, index=pd.Index(info["region"], name="region"), name="value")


#: Vertices per hemisphere of each fsaverage density.
DENSITIES = {"fsaverage5": 10242, "fsaverage6": 40962, "fsaverage7": 163842}


def _density(n, path):
    for name, count in DENSITIES.items():
        if count == n:
            return name
    raise ValueError(
        f"{path}: {n} vertices is not an fsaverage mesh (fsaverage5: 10,242, fsaverage6: "
        "40,962, fsaverage/fsaverage7: 163,842 per hemisphere); resample the map to "
        "fsaverage (e.g. with neuromaps.transforms) first"
    )


def _load_vertex_values(path, dtype=float):
    """One value per vertex from a GIFTI (path or image)."""
    import nibabel as nib

    img = path if isinstance(path, nib.gifti.GiftiImage) else nib.load(str(path))
    if not isinstance(img, nib.gifti.GiftiImage):
        raise ValueError(f"{path}: not a GIFTI file; surface maps are (left, right) "
                         ".func.gii/.shape.gii pairs")
    if len(img.darrays) != 1:
        raise ValueError(f"{path}: {len(img.darrays)} data arrays; give one map per file "
                         "(one value per vertex)")
    data = np.asarray(img.darrays[0].data)
    if data.ndim == 2 and 1 in data.shape:
        data = data.ravel()
    if data.ndim != 1:
        raise ValueError(f"{path}: expected one value per vertex, got shape {data.shape}")
    return data.astype(dtype)


def vertex_values(path):
    """One value per vertex of a GIFTI map, its vertex count checked (fsaverage5/6/7).

    Parameters
    ----------
    path : path-like or nibabel.gifti.GiftiImage

    Returns
    -------
    numpy.ndarray of float
    """
    data = _load_vertex_values(path)
    _density(data.size, path)
    return data


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
    ValueError
        Not pairs; a file that is not a one-array GIFTI; vertex counts that
        are not fsaverage5/6/7 or differ between the two hemispheres.
    """
    if len(map_giftis) != 2 or len(label_giftis) != 2:
        raise ValueError("surface maps and atlases are (left, right) GIFTI pairs; give the "
                         "map's path as 'left.gii,right.gii'")
    maps = [_load_vertex_values(p) for p in map_giftis]
    labs = [_load_vertex_values(p, dtype=np.int64) for p in label_giftis]
    if maps[0].size != maps[1].size:
        raise ValueError(
            f"{map_giftis[0]} has {maps[0].size} vertices but {map_giftis[1]} has "
            f"{maps[1].size}; both hemispheres must be on the same mesh (left first)"
        )
    for mpath, lpath, data, lab in zip(map_giftis, label_giftis, maps, labs):
        if data.size != lab.size:
            # both must be fsaverage meshes for the nested-vertex rule to apply
            _density(data.size, mpath)
            _density(lab.size, lpath)
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
    """
    path = Path(path)
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    table = pd.read_csv(path, sep=sep, encoding="utf-8-sig")
    table.columns = [str(c).strip() for c in table.columns]
    region_col = next((c for c in REGION_COLUMNS if c in table.columns), None)
    if region_col is None:
        raise ValueError(
            f"{path}: no region column; name it one of {list(REGION_COLUMNS)}"
        )
    if column is None:
        numeric = [c for c in table.columns if c != region_col
                   and pd.api.types.is_numeric_dtype(table[c])]
        if "value" in table.columns:
            column = "value"
        elif len(numeric) == 1:
            column = numeric[0]
        else:
            raise ValueError(
                f"{path}: cannot tell which column holds the values ({numeric}); "
                "set the 'column' field of this map in the maps sheet"
            )
    if column not in table.columns:
        raise ValueError(
            f"{path}: no column {column!r} (columns: {list(table.columns)}); "
            "fix the 'column' field of this map in the maps sheet"
        )
    values = pd.to_numeric(table[column], errors="coerce")

    keys = table[region_col]
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
        raise ValueError(
            f"{path}: {len(unknown)} region(s) not in the atlas: {unknown[:10]}; "
            f"atlas regions look like {info['region'].head(3).tolist()}"
        )
    if regions.duplicated().any():
        dup = keys[regions.duplicated()].tolist()
        raise ValueError(f"{path}: region(s) listed twice: {dup}")
    series = pd.Series(values.to_numpy(float), index=regions.to_numpy())
    out = series.reindex(info["region"].to_numpy())
    out.index.name = "region"
    out.name = "value"
    return out


def parcellate_map(path, fmt, atlas, *, column=None, sign=1.0):
    """Parcellate one map of the maps sheet onto an atlas.

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
    """
    if fmt == "nifti":
        if atlas.volume is None:
            raise ValueError(
                f"atlas {atlas.name!r} has no volume, so the NIfTI map {path} cannot be "
                "parcellated on it; give the map as a GIFTI pair, or limit it to another "
                "atlas (the maps sheet's 'atlas' column)"
            )
        values = parcellate_volume(path, atlas.volume, atlas.info)
    elif fmt == "gifti":
        if atlas.surface is None:
            raise ValueError(
                f"atlas {atlas.name!r} has no surface, so the GIFTI map {path} cannot be "
                "parcellated on it; give the map as a NIfTI volume, or limit it to another "
                "atlas (the maps sheet's 'atlas' column)"
            )
        values = parcellate_surface(path, atlas.surface, atlas.info)
    elif fmt == "table":
        values = read_region_table(path, atlas.info, column=column)
    else:
        raise ValueError(f"unknown map format {fmt!r}; choose one of {FORMATS}")
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
