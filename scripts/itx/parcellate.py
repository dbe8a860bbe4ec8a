"""Bring a disease map onto an atlas: volumes, fsaverage GIFTI pairs, region tables.

Every reader returns a :class:`pandas.Series` indexed by the atlas's region
names (all regions, NaN where the map has no data), so later stages never need
to know which format the map came in.
"""

from __future__ import annotations

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


def parcellate_volume(map_img, atlas_img, info):
    """Mean of a volumetric map within each parcel of a volumetric atlas.

    The map is resampled onto the atlas grid with nilearn (continuous
    interpolation) when grids differ; voxels that are NaN in the map are
    ignored, so a parcel with no finite voxel gets NaN.

    Parameters
    ----------
    map_img : str, os.PathLike or nibabel image
        3D map in MNI152 space.
    atlas_img : str, os.PathLike or nibabel image
        3D integer label image in MNI152 space.
    info : pandas.DataFrame
        Region table with ``id`` and ``region``.

    Returns
    -------
    pandas.Series
        Parcel means indexed by region.
    """
    from nilearn import image

    src = str(map_img) if isinstance(map_img, (str, Path)) else "map image"
    img = image.load_img(map_img)
    atlas = image.load_img(atlas_img)
    if len(img.shape) == 4 and img.shape[3] == 1:
        img = image.index_img(img, 0)
    if len(img.shape) != 3:
        raise ValueError(f"{src}: expected a 3D volume, got shape {img.shape}")
    if img.shape != atlas.shape or not np.allclose(img.affine, atlas.affine):
        img = image.resample_to_img(img, atlas, interpolation="continuous")
    data = np.asarray(img.get_fdata(dtype=np.float64))
    labels = np.asarray(atlas.dataobj).astype(int)
    ids = info["id"].to_numpy(int)
    values = _parcel_means(data, labels, ids)
    return pd.Series(values, index=pd.Index(info["region"], name="region"), name="value")


def parcellate_surface(map_giftis, label_giftis, info):
    """Mean of a surface map (left, right GIFTI pair) within each surface parcel.

    Parameters
    ----------
    map_giftis : tuple of str or os.PathLike
        (left, right) func/shape GIFTIs with one value per vertex.
    label_giftis : tuple of str or os.PathLike
        (left, right) label GIFTIs of the atlas on the same mesh.
    info : pandas.DataFrame
        Region table with ``id`` and ``region``.

    Returns
    -------
    pandas.Series
        Parcel means indexed by region.
    """
    import nibabel as nib

    if len(map_giftis) != 2 or len(label_giftis) != 2:
        raise ValueError("surface maps and atlases are (left, right) GIFTI pairs")
    values, labels = [], []
    for hemi, mpath, lpath in zip("LR", map_giftis, label_giftis):
        data = np.asarray(nib.load(str(mpath)).agg_data(), dtype=float)
        lab = np.asarray(nib.load(str(lpath)).agg_data()).astype(int)
        if data.ndim != 1:
            raise ValueError(f"{mpath}: expected one value per vertex, got shape {data.shape}")
        if data.shape != lab.shape:
            raise ValueError(
                f"{mpath}: {data.size} vertices but the atlas's {hemi} hemisphere "
                f"({lpath}) has {lab.size}; give the map on the atlas's mesh"
            )
        values.append(data)
        labels.append(lab)
    means = _parcel_means(np.concatenate(values), np.concatenate(labels), info["id"].to_numpy(int))
    return pd.Series(means, index=pd.Index(info["region"], name="region"), name="value")


def read_region_table(path, info, column=None):
    """Read a table of region values and align it with an atlas.

    Regions are matched by name (case-insensitive, against the atlas's
    ``region`` and, where unique, ``label``) or by integer id. ENIGMA
    summary-statistic tables (``Structure`` + ``d_icv``) work as they are.

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
        lookup = {str(r).lower(): r for r in info["region"]}
        if info["label"].astype(str).is_unique:
            lookup.update({str(l).lower(): r for l, r in zip(info["label"], info["region"])})
        regions = keys.astype(str).str.strip().str.lower().map(lookup)
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
            raise ValueError(f"atlas {atlas.name!r} has no volume to parcellate {path}")
        values = parcellate_volume(path, atlas.volume, atlas.info)
    elif fmt == "gifti":
        if atlas.surface is None:
            raise ValueError(f"atlas {atlas.name!r} has no surface to parcellate {path}")
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
