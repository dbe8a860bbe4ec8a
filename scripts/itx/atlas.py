"""Parcellations: built-in and user atlases, their checks and region tables.

An atlas here is a label image in MNI152 space and/or a pair of fsaverage
label GIFTIs (fsaverage5, 6 or 7 density), plus a table with one row per
parcel (``id, label, hemisphere, structure``) in abagen's ``atlas_info``
convention. Every output of the workflow names regions by a unique
``region`` string derived from that table (``L_bankssts``, as ENIGMA tables
do; Schaefer labels such as ``7Networks_LH_Vis_1`` are unique already), so
tables from different sources can be matched by name.

Built-in atlases:

- ``desikan_killiany``: bundled with abagen (volume + fsaverage5), offline.
- ``schaefer100``, ``schaefer200``, ``schaefer400``: Schaefer et al. (2018),
  7 networks, FSL MNI152 1 mm volume + fsaverage5 surface, fetched from the
  CBIG repository at a pinned commit or from a local folder / mirror by
  :func:`itx.schaefer.fetch_schaefer` (names in :mod:`itx.catalog`), then
  loaded from that folder here (:func:`load_atlas_folder`).

User atlases (:func:`user_atlas`): a NIfTI label volume and/or a pair of
GIFTI label files on fsaverage5/6/7, with a label table. :func:`check_atlas`
rejects labels missing from the table (and table parcels missing from the
image), non-integer labels, wrong shapes or vertex counts, images not in
MNI152 space and left/right mix-ups, naming the file and the fix.

fsaverage meshes are nested: the first 10,242 vertices of fsaverage6
(40,962) and fsaverage (fsaverage7, 163,842) are the fsaverage5 vertices,
in the same order. :func:`fsaverage5_surface` uses that to give spins and
abagen's surface matching fsaverage5 labels for a finer atlas (checked on
real Schaefer-100 fsaverage labels: 90% of fsaverage5 mesh edges join
vertices of the same parcel after taking the first 10,242 labels, against
3% for a random subset).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from . import catalog, compat
from .catalog import DENSITIES

log = logging.getLogger(__name__)

#: Analysis scopes and the (hemisphere, structure) pairs each keeps.
SCOPES = {
    # 4 of the 6 AHBA donors have only left-hemisphere samples, hence the default
    "left_cortex": {("L", "cortex")},
    "cortex": {("L", "cortex"), ("R", "cortex")},
    "left_cortex_subcortex": {("L", "cortex"), ("L", "subcortex/brainstem")},
    "cortex_subcortex": {
        ("L", "cortex"), ("R", "cortex"),
        ("L", "subcortex/brainstem"), ("R", "subcortex/brainstem"),
        ("B", "subcortex/brainstem"),
    },
}

INFO_COLUMNS = ("id", "label", "hemisphere", "structure")

#: Values abagen accepts (``abagen.images.check_atlas_info``) and common spellings.
HEMISPHERES = ("L", "R", "B")
STRUCTURES = ("cortex", "subcortex/brainstem", "cerebellum", "white matter", "other")
_HEMI_SWAP = {"lh": "L", "l": "L", "left": "L", "rh": "R", "r": "R", "right": "R",
              "bilateral": "B", "b": "B"}
_STRUCT_SWAP = {"subcortex": "subcortex/brainstem", "brainstem": "subcortex/brainstem"}

#: Surface label names that mean "no parcel" (neuromaps' PARCIGNORE: spins skip them).
BACKGROUND_NAMES = frozenset({
    "unknown", "corpuscallosum", "Background+FreeSurfer_Defined_Medial_Wall",
    "???", "Unknown", "Medial_wall", "Medial wall", "medial_wall",
})

# World-coordinate box (mm) that every labelled voxel of an MNI152 atlas lies
# in, with a margin: FSL's MNI152 grid spans x -90..91, y -126..91, z -72..109.
_MNI_BOX = np.array([[-100.0, 100.0], [-140.0, 110.0], [-90.0, 125.0]])


class AtlasError(ValueError):
    """An atlas's files or table are not usable; the message says how to fix them."""


@dataclass(frozen=True)
class Atlas:
    """A parcellation with its region table.

    Attributes
    ----------
    name : str
        Short name used in output paths (``results/{name}/...``).
    info : pandas.DataFrame
        One row per parcel with columns ``id, label, hemisphere, structure,
        region``; ``region`` is unique.
    volume : pathlib.Path or None
        Label image in MNI152 space.
    surface : tuple of pathlib.Path or None
        (left, right) label GIFTIs on the fsaverage mesh of `density`.
    density : str
        fsaverage density of `surface` (a key of :data:`DENSITIES`).
    """

    name: str
    info: pd.DataFrame
    volume: Path | None = None
    surface: tuple[Path, Path] | None = None
    density: str = "fsaverage5"


def add_region_names(info):
    """Return `info` with a unique ``region`` column.

    Labels that are unique already are kept as they are; otherwise (as in
    Desikan-Killiany, where both hemispheres share label names) the region is
    ``{hemisphere}_{label}``, the naming ENIGMA summary statistics use.

    Parameters
    ----------
    info : pandas.DataFrame
        Table with at least ``id, label, hemisphere, structure``.

    Returns
    -------
    pandas.DataFrame
        Copy of `info` sorted by id, with a ``region`` column.
    """
    missing = [c for c in INFO_COLUMNS if c not in info.columns]
    if missing:
        raise ValueError(
            f"atlas table lacks column(s) {missing}; it needs "
            f"{', '.join(INFO_COLUMNS)} (one row per parcel)"
        )
    info = info.loc[:, list(INFO_COLUMNS)].copy()
    info["id"] = info["id"].astype(int)
    info = info.sort_values("id").reset_index(drop=True)
    if info["id"].duplicated().any():
        dup = info.loc[info["id"].duplicated(), "id"].tolist()
        raise ValueError(f"atlas table repeats parcel id(s) {dup}; ids must be unique")
    labels = info["label"].astype(str)
    if labels.is_unique:
        info["region"] = labels
    else:
        info["region"] = info["hemisphere"].astype(str) + "_" + labels
    if not info["region"].is_unique:
        dup = info.loc[info["region"].duplicated(), "region"].tolist()
        raise ValueError(f"atlas table has duplicate region names {dup}")
    return info


def read_atlas_table(path):
    """Read a user atlas's label table and return it with region names.

    Parameters
    ----------
    path : str or os.PathLike
        CSV (``.csv``) or tab-separated file with columns ``id, label,
        hemisphere, structure`` (one row per parcel; background 0 not listed).
        Hemispheres ``L/R/B`` (or lh/rh/left/right/bilateral); structures
        as abagen names them (``cortex``, ``subcortex/brainstem``,
        ``cerebellum``, ``white matter``, ``other``; ``subcortex`` is accepted).

    Returns
    -------
    pandas.DataFrame
        As :func:`add_region_names` returns it.

    Raises
    ------
    AtlasError
        Missing columns, non-integer or repeated ids, id 0, unknown
        hemisphere or structure values; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise AtlasError(f"atlas table {path} does not exist; fix the 'table' path of this atlas")
    sep = "," if path.suffix.lower() == ".csv" else "\t"
    try:
        table = pd.read_csv(path, sep=sep, encoding="utf-8-sig", dtype=str).fillna("")
    except (ValueError, pd.errors.ParserError) as exc:
        raise AtlasError(f"atlas table {path} cannot be read ({exc}); write it as "
                         "a tab-separated (or .csv) table with a header") from exc
    table.columns = [str(c).strip().lower() for c in table.columns]
    missing = [c for c in INFO_COLUMNS if c not in table.columns]
    if missing:
        raise AtlasError(
            f"atlas table {path} lacks column(s) {missing} (has {list(table.columns)}); "
            f"it needs {', '.join(INFO_COLUMNS)}, one row per parcel"
        )
    ids = pd.to_numeric(table["id"].str.strip(), errors="coerce")
    bad = table.loc[ids.isna() | (ids != ids.round()), "id"].tolist()
    if bad:
        raise AtlasError(f"atlas table {path}: id(s) {bad[:10]} are not integers; "
                         "ids are the integer labels of the image")
    table["id"] = ids.astype(int)
    if (table["id"] <= 0).any():
        raise AtlasError(f"atlas table {path}: id 0 (or negative) is the background, not a "
                         "parcel; remove that row")
    hemi = table["hemisphere"].str.strip()
    hemi = hemi.map(lambda h: _HEMI_SWAP.get(h.lower(), h))
    bad = sorted(set(hemi) - set(HEMISPHERES))
    if bad:
        raise AtlasError(f"atlas table {path}: hemisphere value(s) {bad} are not one of "
                         f"{list(HEMISPHERES)} (L, R or B for bilateral)")
    struct = table["structure"].str.strip().map(lambda s: _STRUCT_SWAP.get(s.lower(), s.lower()))
    bad = sorted(set(struct) - set(STRUCTURES))
    if bad:
        raise AtlasError(f"atlas table {path}: structure value(s) {bad} are not one of "
                         f"{list(STRUCTURES)}")
    table["hemisphere"], table["structure"] = hemi, struct
    table["label"] = table["label"].str.strip()
    try:
        return add_region_names(table)
    except ValueError as exc:
        raise AtlasError(f"atlas table {path}: {exc}") from exc


# ---------------------------------------------------------------------------
# checks
# ---------------------------------------------------------------------------


def _fmt_ids(ids, limit=10):
    ids = [int(i) for i in ids]
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"{ids[:limit]}{more}"


def _integer_labels(data, path, what):
    """`data` as int64 labels, or an AtlasError naming `path` if not integral."""
    data = np.asarray(data)
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            raise AtlasError(f"{path}: the {what} has NaN or infinite values; a label "
                             "image holds integer parcel ids (0 = background)")
        frac = data != np.round(data)
        if frac.any():
            example = float(data[frac].flat[0])
            raise AtlasError(
                f"{path}: the {what} has non-integer labels (e.g. {example:g}); save it "
                "with integer parcel ids, and resample label images with nearest-neighbour "
                "interpolation (never linear/continuous)"
            )
    elif data.dtype.kind not in "iub":
        raise AtlasError(f"{path}: the {what} has data type {data.dtype}, not integer labels")
    return data.astype(np.int64)


def load_label_volume(volume):
    """Load a label volume: (affine, int64 3D labels), checked for shape and type.

    Parameters
    ----------
    volume : str or os.PathLike
        NIfTI label image.

    Returns
    -------
    affine : (4, 4) numpy.ndarray
    labels : 3D numpy.ndarray of int64

    Raises
    ------
    AtlasError
        If the file cannot be read, is not a single 3D volume, or its labels
        are not integers.
    """
    import nibabel as nib

    try:
        img = nib.load(str(volume))
    except FileNotFoundError:
        raise AtlasError(f"atlas volume {volume} does not exist; fix the 'volume' path") from None
    except Exception as exc:  # nibabel raises several types for unreadable files
        raise AtlasError(f"{volume}: not a readable NIfTI label image ({exc})") from exc
    shape = img.shape
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        raise AtlasError(
            f"{volume}: shape {img.shape} is not a 3D label image; give one 3D volume "
            "whose voxels hold parcel ids (a 4D file of probability maps is not an atlas)"
        )
    data = np.asanyarray(img.dataobj).reshape(shape)
    return img.affine, _integer_labels(data, volume, "label image")


def check_volume_atlas(volume, info, *, table=None):
    """Check a volumetric atlas against its region table.

    Parameters
    ----------
    volume : str or os.PathLike
        3D integer label image in MNI152 space (0 = background).
    info : pandas.DataFrame
        Region table (``id, hemisphere, ...``).
    table : str, optional
        Where `info` came from, for the messages.

    Returns
    -------
    numpy.ndarray
        Voxel counts per row of `info`.

    Raises
    ------
    AtlasError
        Listing every problem found: labels in the image but not in the
        table, table parcels with no voxel (empty parcels), labelled voxels
        outside the MNI152 field (wrong space or affine), and parcels whose
        table hemisphere is on the other side of the midline.
    """
    affine, labels = load_label_volume(volume)
    table = table or "the atlas table"
    ids = info["id"].to_numpy(int)
    problems = []
    if labels.min() < 0:
        problems.append(f"{volume} has negative labels; ids must be positive integers "
                        "(0 = background)")
    flat = labels.ravel()
    nz = np.flatnonzero(flat > 0)
    present = np.unique(flat[nz])
    extra = np.setdiff1d(present, ids)
    if extra.size:
        problems.append(
            f"label(s) {_fmt_ids(extra)} are in {volume} but not in {table}; add a row "
            "(id, label, hemisphere, structure) for each, or set those voxels to 0"
        )
    counts = np.zeros(len(ids), dtype=np.int64)
    if nz.size:
        ijk = np.column_stack(np.unravel_index(nz, labels.shape)).astype(float)
        lab = flat[nz]
        known = np.isin(lab, ids)
        pos = np.searchsorted(np.sort(ids), lab[known])
        order = np.argsort(ids)
        counts_sorted = np.bincount(pos, minlength=len(ids))
        counts[order] = counts_sorted
        lo = nib_apply(affine, ijk.min(axis=0), ijk.max(axis=0))
        outside = (lo[0] < _MNI_BOX[:, 0]) | (lo[1] > _MNI_BOX[:, 1])
        if outside.any():
            span = ", ".join(f"{a} {lo[0][k]:.0f}..{lo[1][k]:.0f}" for k, a in enumerate("xyz"))
            problems.append(
                f"{volume}: labelled voxels span {span} mm, outside MNI152 space; the image "
                "must be in MNI152 world coordinates (check its affine, or register it to "
                "MNI152 first)"
            )
        else:
            # centroid x per parcel from one weighted bincount (no loop over parcels)
            x = affine[0, :3] @ ijk[known].T + affine[0, 3]
            sums = np.bincount(pos, weights=x, minlength=len(ids))
            cx = np.full(len(ids), np.nan)
            cx[order] = np.where(counts_sorted > 0, sums / np.maximum(counts_sorted, 1), np.nan)
            hemi = info["hemisphere"].to_numpy()
            # 2 mm margin: medial parcels sit close to the midline
            wrong = ((hemi == "L") & (cx > 2)) | ((hemi == "R") & (cx < -2))
            if wrong.any():
                problems.append(
                    f"parcel(s) {_fmt_ids(ids[wrong])} are on the other side of the midline in "
                    f"{volume} than the hemisphere {table} gives them (x > 0 is right in "
                    "MNI152); fix the table's hemisphere column, or the image orientation"
                )
    empty = ids[counts == 0]
    if empty.size:
        problems.append(
            f"parcel(s) {_fmt_ids(empty)} of {table} have no voxel in {volume} (empty "
            "parcels); remove them from the table, or use the image they belong to"
        )
    if problems:
        raise AtlasError("volume atlas check failed:\n - " + "\n - ".join(problems))
    return counts


def nib_apply(affine, lo_ijk, hi_ijk):
    """World bounding box (min, max) of the voxel box lo_ijk..hi_ijk."""
    corners = np.array([[a, b, c] for a in (lo_ijk[0], hi_ijk[0])
                        for b in (lo_ijk[1], hi_ijk[1]) for c in (lo_ijk[2], hi_ijk[2])])
    xyz = corners @ affine[:3, :3].T + affine[:3, 3]
    return xyz.min(axis=0), xyz.max(axis=0)


def density_of(n_vertices, path=None):
    """fsaverage density name for a per-hemisphere vertex count.

    Raises
    ------
    AtlasError
        If `n_vertices` is not an fsaverage5/6/7 vertex count.
    """
    for name, n in DENSITIES.items():
        if n == n_vertices:
            return name
    where = f"{path}: " if path else ""
    raise AtlasError(
        f"{where}{n_vertices} vertices is not an fsaverage mesh (fsaverage5: 10,242, "
        "fsaverage6: 40,962, fsaverage/fsaverage7: 163,842 per hemisphere); resample "
        "the file to one of them (e.g. with neuromaps or FreeSurfer's mri_surf2surf)"
    )


def load_label_gifti(path):
    """Integer labels and label names of one label GIFTI.

    Parameters
    ----------
    path : str, os.PathLike or nibabel.gifti.GiftiImage

    Returns
    -------
    labels : (n_vertices,) numpy.ndarray of int64
    names : dict
        Label key -> name from the GIFTI label table (may be empty).
    """
    import nibabel as nib

    if isinstance(path, nib.gifti.GiftiImage):
        img, path = path, "label GIFTI"
    else:
        try:
            img = nib.load(str(path))
        except FileNotFoundError:
            raise AtlasError(f"surface label file {path} does not exist; fix the 'surface' "
                             "paths of this atlas") from None
        except Exception as exc:
            raise AtlasError(f"{path}: not a readable GIFTI file ({exc})") from exc
        if not isinstance(img, nib.gifti.GiftiImage):
            raise AtlasError(f"{path}: not a GIFTI file; surface atlases are .label.gii pairs "
                             "(convert a FreeSurfer .annot with nibabel or mris_convert)")
    if len(img.darrays) != 1:
        raise AtlasError(f"{path}: {len(img.darrays)} data arrays; a label GIFTI has one "
                         "(one parcel id per vertex)")
    data = np.asarray(img.darrays[0].data)
    if data.ndim != 1:
        data = data.squeeze()
    if data.ndim != 1:
        raise AtlasError(f"{path}: data of shape {img.darrays[0].data.shape}; expected one "
                         "label per vertex")
    names = {int(k): v for k, v in img.labeltable.get_labels_as_dict().items()}
    return _integer_labels(data, path, "surface label file"), names


def check_surface_atlas(surface, info, *, density=None, table=None, all_parcels=False):
    """Check a (left, right) pair of label GIFTIs against the region table.

    Vertices labelled 0, negative, or with a label whose GIFTI name means
    "no parcel" (medial wall, 'unknown': :data:`BACKGROUND_NAMES`) and that
    is not in the table are background.

    Parameters
    ----------
    surface : (2,) sequence of path-like
        Left and right label GIFTIs.
    info : pandas.DataFrame
        Region table.
    density : str, optional
        Expected fsaverage density; default: inferred from the vertex count.
    table : str, optional
        Where `info` came from, for the messages.
    all_parcels : bool
        Every table parcel must have vertices (a surface-only atlas);
        otherwise only ``cortex`` parcels must.

    Returns
    -------
    str
        The fsaverage density of the files.

    Raises
    ------
    AtlasError
        Listing every problem: wrong or unequal vertex counts, labels not in
        the table, table parcels without vertices, parcels on both
        hemispheres or on the wrong one.
    """
    if isinstance(surface, (str, os.PathLike)) or len(surface) != 2:
        raise AtlasError(f"surface {surface!r} must be a (left, right) pair of label GIFTIs")
    if density is not None and density not in DENSITIES:
        raise AtlasError(f"density {density!r} is not one of {list(DENSITIES)}")
    table = table or "the atlas table"
    ids = info["id"].to_numpy(int)
    hemi_of = dict(zip(ids, info["hemisphere"]))
    problems, present, dens = [], {}, []
    for hemi, path in zip("LR", surface):
        labels, names = load_label_gifti(path)
        try:
            dens.append(density_of(labels.size, path))
        except AtlasError as exc:
            problems.append(str(exc))
            continue
        values = np.unique(labels)
        background = {v for v in values if v <= 0
                      or (v not in hemi_of and names.get(int(v)) in BACKGROUND_NAMES)}
        values = np.array([v for v in values if v not in background], dtype=int)
        extra = np.setdiff1d(values, ids)
        if extra.size:
            problems.append(
                f"label(s) {_fmt_ids(extra)} are in {path} but not in {table}; add a row for "
                "each, or relabel those vertices 0 (background)"
            )
        other = [v for v in values if hemi_of.get(v) not in (None, hemi, "B")]
        if other:
            problems.append(
                f"parcel(s) {_fmt_ids(other)} are in the {'left' if hemi == 'L' else 'right'} "
                f"hemisphere file {path} but {table} says hemisphere "
                f"{'R' if hemi == 'L' else 'L'}; swap the files or fix the table"
            )
        present[hemi] = set(values.tolist())
    if len(dens) == 2 and dens[0] != dens[1]:
        problems.append(f"{surface[0]} is {dens[0]} but {surface[1]} is {dens[1]}; both "
                        "hemispheres must be on the same mesh")
    elif dens and density is not None and dens[0] != density:
        problems.append(f"{surface[0]} has {DENSITIES[dens[0]]} vertices ({dens[0]}), but the "
                        f"atlas says density {density}; fix the 'density' of this atlas")
    if len(present) == 2:
        both = sorted(present["L"] & present["R"])
        if both:
            problems.append(
                f"parcel(s) {_fmt_ids(both)} appear in both {surface[0]} and {surface[1]}; "
                "each parcel belongs to one hemisphere (give right-hemisphere parcels "
                "their own ids, as the table does)"
            )
        on_surface = present["L"] | present["R"]
        need = np.ones(len(ids), bool) if all_parcels else \
            (info["structure"] == "cortex").to_numpy()
        empty = [i for i, n in zip(ids, need) if n and i not in on_surface]
        if empty:
            problems.append(
                f"parcel(s) {_fmt_ids(empty)} of {table} have no vertex in {surface[0]} or "
                f"{surface[1]} (empty parcels); remove them from the table, or use the "
                "label files they belong to"
            )
    if problems:
        raise AtlasError("surface atlas check failed:\n - " + "\n - ".join(problems))
    return dens[0]


def check_atlas(atlas, *, table=None):
    """Check an atlas's volume and/or surface against its region table.

    Parameters
    ----------
    atlas : Atlas
    table : str, optional
        Path of the table, for the messages.

    Returns
    -------
    Atlas
        `atlas`, unchanged (for chaining).

    Raises
    ------
    AtlasError
        With every problem found; the message names the atlas, the files and
        the fix.
    """
    if atlas.volume is None and atlas.surface is None:
        raise AtlasError(f"atlas {atlas.name!r} has neither a volume nor a surface; give "
                         "'volume' (NIfTI) and/or 'surface' (left, right label GIFTIs)")
    try:
        if atlas.volume is not None:
            check_volume_atlas(atlas.volume, atlas.info, table=table)
        if atlas.surface is not None:
            check_surface_atlas(atlas.surface, atlas.info, density=atlas.density, table=table,
                                all_parcels=atlas.volume is None)
    except AtlasError as exc:
        raise AtlasError(f"atlas {atlas.name!r}: {exc}") from None
    return atlas


# ---------------------------------------------------------------------------
# surfaces for spins and abagen
# ---------------------------------------------------------------------------


def require_surface(atlas, purpose="spin nulls"):
    """Raise a clear error if `atlas` has no surface.

    Parameters
    ----------
    atlas : Atlas
    purpose : str
        What needs the surface, for the message.
    """
    if atlas.surface is None:
        raise AtlasError(
            f"atlas {atlas.name!r} has no surface (a volume-only atlas), so {purpose} cannot "
            "run: spins rotate parcels on the fsaverage sphere. Set nulls.method to a "
            "variogram-based null that works from volume distances (burt2020 or moran), "
            "or give the atlas a 'surface' pair of label GIFTIs"
        )


def fsaverage5_surface(atlas, folder=None):
    """The atlas's surface labels on fsaverage5 (what spins and abagen use).

    fsaverage5 atlases are returned as they are. For fsaverage6/7 atlases the
    labels of the first 10,242 vertices are taken: fsaverage meshes are
    nested, so these are the labels at the fsaverage5 vertices themselves
    (point sampling, no interpolation between parcels).

    Parameters
    ----------
    atlas : Atlas
    folder : path-like, optional
        Write the fsaverage5 labels of a finer atlas there
        (``{name}_lh.fsaverage5.label.gii``, ``..._rh...``) and return their
        paths; needed where a tool only takes files (abagen tells surfaces
        from volumes by file suffix).

    Returns
    -------
    tuple
        (left, right): paths (fsaverage5 atlases, or `folder` given) or
        in-memory :class:`nibabel.gifti.GiftiImage` label images.

    Raises
    ------
    AtlasError
        If the atlas has no surface, or a cortical parcel is too small to
        keep a vertex on fsaverage5 (its name and the fix are given).
    """
    import nibabel as nib

    require_surface(atlas)
    if atlas.density == "fsaverage5":
        return atlas.surface
    n5 = DENSITIES["fsaverage5"]
    out, kept = [], set()
    for path in atlas.surface:
        src = nib.load(str(path))
        labels = np.asarray(src.darrays[0].data)[:n5].astype(np.int32)
        kept.update(np.unique(labels).tolist())
        darr = nib.gifti.GiftiDataArray(labels, intent="NIFTI_INTENT_LABEL",
                                        datatype="NIFTI_TYPE_INT32")
        out.append(nib.gifti.GiftiImage(darrays=[darr], labeltable=src.labeltable))
    cortex = atlas.info.loc[atlas.info["structure"] == "cortex"]
    lost = cortex.loc[~cortex["id"].isin(kept), "region"].tolist()
    if lost:
        raise AtlasError(
            f"atlas {atlas.name!r} ({atlas.density}): parcel(s) {lost[:10]} have no vertex "
            "among the 10,242 fsaverage5 vertices, so spins (and abagen's surface matching) "
            "cannot place them; use a coarser atlas, or a variogram null (nulls.method "
            "burt2020 or moran)"
        )
    if folder is None:
        return tuple(out)
    from itx.tables import atomic_path

    paths = []
    for hemi, img in zip(("lh", "rh"), out):
        path = Path(folder) / f"{atlas.name}_{hemi}.fsaverage5.label.gii"
        with atomic_path(path) as tmp:
            tmp.write_bytes(img.to_bytes())
        paths.append(path)
    return tuple(paths)


# ---------------------------------------------------------------------------
# built-in atlases
# ---------------------------------------------------------------------------


def desikan_killiany(name="dk"):
    """The Desikan-Killiany atlas bundled with abagen (83 parcels).

    Parameters
    ----------
    name : str
        Name to give the atlas in outputs.

    Returns
    -------
    Atlas
    """
    abagen = compat.patch_abagen()

    vol = abagen.fetch_desikan_killiany()
    surf = abagen.fetch_desikan_killiany(surface=True)
    info = add_region_names(pd.read_csv(vol["info"]))
    return Atlas(
        name=name,
        info=info,
        volume=Path(vol["image"]),
        surface=tuple(Path(p) for p in surf["image"]),
        density="fsaverage5",
    )


# The Schaefer names live in the catalog (the DAG imports them without this
# module); fetching them is itx.schaefer's job.
#: Schaefer resolutions offered as built-ins (7-network order).
SCHAEFER_PARCELS = catalog.SCHAEFER_PARCELS
#: Files of a fetched built-in atlas folder (written by :func:`itx.schaefer.fetch_schaefer`).
ATLAS_FILES = catalog.FETCHED_ATLAS_FILES


def load_atlas_folder(name, folder, *, check=True):
    """Load an atlas folder written by :func:`itx.schaefer.fetch_schaefer`.

    Parameters
    ----------
    name : str
    folder : path-like
    check : bool
        Run :func:`check_atlas` (cheap; catches a damaged folder).

    Returns
    -------
    Atlas
    """
    folder = Path(folder)
    missing = [f for f in ATLAS_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"atlas {name!r}: {', '.join(missing)} missing in {folder}; fetch it first "
            "(the workflow's fetch_atlas rule, or itx.schaefer.fetch_schaefer)"
        )
    info = add_region_names(pd.read_csv(folder / "info.tsv", sep="\t"))
    atlas = Atlas(name=name, info=info, volume=folder / "volume.nii.gz",
                  surface=(folder / "lh.label.gii", folder / "rh.label.gii"),
                  density="fsaverage5")
    return check_atlas(atlas, table=str(folder / "info.tsv")) if check else atlas


# ---------------------------------------------------------------------------
# user atlases and the config entry point
# ---------------------------------------------------------------------------


def _surface_pair(surface):
    if isinstance(surface, str):
        surface = [s.strip() for s in surface.split(",")]
    surface = list(surface)
    if len(surface) != 2:
        raise AtlasError(f"surface {surface!r}: give two label GIFTIs, [left, right]")
    return Path(surface[0]), Path(surface[1])


def user_atlas(name, table, volume=None, surface=None, density=None):
    """An atlas from the user's files, checked.

    Parameters
    ----------
    name : str
        Atlas name in outputs.
    table : path-like
        Label table (:func:`read_atlas_table`).
    volume : path-like, optional
        NIfTI label volume in MNI152 space.
    surface : (2,) sequence of path-like or "left,right" str, optional
        Label GIFTIs on fsaverage5/6/7.
    density : {'fsaverage5', 'fsaverage6', 'fsaverage7'}, optional
        Mesh of `surface`; default: inferred from the vertex count (and
        checked against it when given).

    Returns
    -------
    Atlas

    Raises
    ------
    AtlasError
        See :func:`check_atlas`.
    """
    if volume is None and surface is None:
        raise AtlasError(f"atlas {name!r} has a table but neither 'volume' nor 'surface'; "
                         "give a NIfTI label volume and/or a [left, right] GIFTI pair")
    if density == "fsaverage":
        density = "fsaverage7"
    info = read_atlas_table(table)
    pair = _surface_pair(surface) if surface is not None else None
    if pair is not None and density is None:
        density = density_of(load_label_gifti(pair[0])[0].size, pair[0])
    atlas = Atlas(name=name, info=info, volume=None if volume is None else Path(volume),
                  surface=pair, density=density or "fsaverage5")
    return check_atlas(atlas, table=str(table))


#: Built-in atlas keys (``atlases.<name>.builtin`` in the config).
BUILTIN = ("desikan_killiany",) + tuple(f"schaefer{n}" for n in SCHAEFER_PARCELS)
_USER_KEYS = ("volume", "surface", "table", "density")


def load_atlas(name, spec, root="resources/atlases"):
    """Load the atlas one ``atlases:`` entry of the config describes.

    Parameters
    ----------
    name : str
        Name the atlas carries in outputs.
    spec : str or mapping
        A built-in key, or the config mapping: ``{builtin, matching, source}``
        or ``{volume and/or surface, table, density, matching}``. Paths are
        relative to the working directory. The workflow adds ``folder``, the
        fetched files of a downloaded built-in, when they live outside `root`
        (a study's shared ``resources_dir``).
    root : path-like
        Folder of fetched built-in atlases (``<root>/<name>/``).

    Returns
    -------
    Atlas
    """
    if isinstance(spec, str):
        spec = {"builtin": spec}
    if not isinstance(spec, Mapping):
        raise AtlasError(f"atlas {name!r}: expected a mapping, got {spec!r}")
    spec = dict(spec)
    if "builtin" in spec:
        key = spec["builtin"]
        clash = [k for k in _USER_KEYS if spec.get(k) not in (None, "")]
        if spec.get("folder") and key == "desikan_killiany":
            clash.append("folder")
        if clash:
            raise AtlasError(f"atlas {name!r}: 'builtin' cannot be combined with {clash}; "
                             "either name a built-in atlas or give your own files")
        if key == "desikan_killiany":
            if spec.get("source"):
                raise AtlasError(f"atlas {name!r}: desikan_killiany ships with abagen; "
                                 "remove 'source'")
            return desikan_killiany(name)
        if key in BUILTIN:
            return load_atlas_folder(name, Path(spec.get("folder") or Path(root) / name))
        raise ValueError(
            f"unknown built-in atlas {key!r} for atlas {name!r}; choose one of {list(BUILTIN)}"
        )
    if spec.get("source"):
        raise AtlasError(f"atlas {name!r}: 'source' only applies to built-in atlases")
    if not spec.get("table"):
        raise AtlasError(f"atlas {name!r}: give 'builtin', or 'table' with 'volume' and/or "
                         "'surface'")
    return user_atlas(name, spec["table"], volume=spec.get("volume"),
                      surface=spec.get("surface"), density=spec.get("density"))


def scope_regions(info, scope):
    """Rows of `info` that belong to an analysis scope.

    Parameters
    ----------
    info : pandas.DataFrame
        Region table from :func:`add_region_names`.
    scope : str
        Key of :data:`SCOPES`.

    Returns
    -------
    pandas.DataFrame
        The selected rows, in id order.
    """
    try:
        keep = SCOPES[scope]
    except KeyError:
        raise ValueError(f"unknown scope {scope!r}; choose one of {sorted(SCOPES)}") from None
    pairs = list(zip(info["hemisphere"], info["structure"]))
    mask = np.array([p in keep for p in pairs], dtype=bool)
    if not mask.any():
        raise ValueError(f"scope {scope!r} selects no region of this atlas")
    return info.loc[mask].reset_index(drop=True)
