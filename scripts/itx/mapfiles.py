"""Checks of the map files the maps sheet names, with messages that say how to fix them.

A map file is read twice in a run: by the DAG, before any job starts
(:func:`check_map_file`, so a bad file stops the run at once instead of
after the expression stages), and by the parcellate job
(:mod:`itx.parcellate`), because the file may have changed in between. Both
read it through the functions here, so they report the same problems in the
same words.

Problems come in three tiers:

* **file problems**: unreadable, truncated, not the declared format, wrong
  shape or vertex count, text in the value column, infinite values,
  duplicated regions. No value read from such a file can be trusted, so the
  readers (:func:`load_volume`, :func:`load_vertex_values`,
  :func:`load_surface_pair`, :func:`read_map_table`) always raise them.
* **content problems**: the file reads, but the map cannot give a
  correlation (no value at all, one value everywhere, fewer than
  :data:`MIN_REGIONS` values, an atlas label file given as a map). The
  readers raise them with ``content=True``, as :func:`check_map_file` and
  :func:`itx.parcellate.parcellate_map` ask; the lower-level parcellation
  functions accept such maps, as they always have.
* **atlas problems**: region names the atlas does not have, a field of view
  outside the atlas, too few or all-equal parcel values. Only parcellation
  sees them (:func:`check_parcellated`); the DAG check needs no atlas.

Every message starts with the file's path, so a list of them can be read
without knowing which check produced which.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "CHECKS_VERSION", "DENSITIES", "FORMATS", "MIN_REGIONS", "REGION_COLUMNS", "MapInputError",
    "MapTable",
    "check_map_file", "check_parcellated", "load_surface_pair", "load_vertex_values",
    "load_volume", "read_map_table", "table_separator",
]

#: Map formats the maps sheet accepts.
FORMATS = ("nifti", "gifti", "table")

#: Column names taken as the region column of a region table, in order.
REGION_COLUMNS = ("region", "Structure", "label", "name", "id")

#: Vertices per hemisphere of each fsaverage density.
DENSITIES = {"fsaverage5": 10242, "fsaverage6": 40962, "fsaverage7": 163842}

#: Version of the checks: a cache of :func:`check_map_file` results (keyed by
#: file size and mtime) should include it, so that changed checks rerun.
CHECKS_VERSION = 1

#: Fewest regions with a value a map needs: a correlation over fewer is
#: meaningless (two points always fit a line), and nulls cannot be drawn.
MIN_REGIONS = 3

# examples quoted per problem: enough to see the pattern, short enough to read
_EXAMPLES = 3

_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx and .ods workbooks are zip archives
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls workbooks
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# GIFTI intents that mark a file as something other than a map of values
_INTENT_LABEL, _INTENT_POINTSET, _INTENT_TRIANGLE = 1002, 1008, 1009


class MapInputError(ValueError):
    """A map file cannot be used; the message names the file and the fix.

    Parameters
    ----------
    problems : str or list of str
        One sentence per problem.

    Attributes
    ----------
    problems : list of str
        Every problem found, in the order the checks ran.
    """

    def __init__(self, problems):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = list(problems)
        super().__init__(_join(self.problems))


def _exc(exc):
    """An exception as one line (nibabel's messages span several)."""
    return " ".join(str(exc).split())


def _join(problems):
    if len(problems) == 1:
        return problems[0]
    return f"{len(problems)} problems:\n" + "\n".join(f"  - {p}" for p in problems)


def _raise_if(problems):
    # the same problem can be found twice (one file given for both hemispheres)
    unique = list(dict.fromkeys(problems))
    if unique:
        raise MapInputError(unique)


# ---------------------------------------------------------------------------
# files
# ---------------------------------------------------------------------------

def _file_problem(path, what):
    """Why `path` cannot be read as a file, or None."""
    p = Path(path)
    if not p.exists():
        if p.is_symlink():
            return (f"{path}: is a broken symbolic link (its target is missing); fix the link or "
                    "the 'path' of this map in the maps sheet")
        return (f"{path}: does not exist; fix the 'path' of this map in the maps sheet (relative "
                "paths start at the working directory)")
    if p.is_dir():
        return (f"{path}: is a directory, not {what}; give the file itself in the 'path' of this "
                "map in the maps sheet")
    if not p.is_file():
        return f"{path}: is not a regular file (a pipe or device?); give {what}"
    return None


def _read_bytes(path):
    """(bytes, None) or (None, problem)."""
    try:
        return Path(path).read_bytes(), None
    except PermissionError:
        return None, f"{path}: cannot be read (permission denied); make it readable (chmod a+r)"
    except OSError as exc:
        return None, f"{path}: cannot be read ({exc}); check the file system and the file"


def _gunzip(raw, path):
    """Fully decompress gzip bytes: (bytes, None) or (None, problem).

    The whole stream is read so that the CRC and length in the trailer are
    checked: a download cut short by a few bytes still yields every voxel
    through nibabel, which stops reading at the last voxel.
    """
    try:
        return gzip.decompress(raw), None
    except EOFError:
        why = "the compressed data ends early"
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        why = f"gzip reports: {_exc(exc)}"
    return None, (f"{path}: is truncated or corrupt ({why}); download or export the file again "
                  "(and compare its size or checksum with the source)")


def _is_text(head):
    """Whether the first bytes of a file look like text (no NUL, decodable)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # a multi-byte character cut by the sample's end is still text
        if exc.start < len(head) - 4:
            try:
                head.decode("cp1252")
            except UnicodeDecodeError:
                return False
    return True


def _nifti_header_size(head):
    """348 (NIfTI-1/Analyze) or 540 (NIfTI-2) if `head` starts like one, else None."""
    if len(head) < 4:
        return None
    for order in "<>":
        size = int(np.frombuffer(head[:4], dtype=f"{order}i4")[0])
        if size in (348, 540):
            return size
    return None


def _what_file_is(raw, path):
    """A phrase naming what a file that failed to parse actually is, or None."""
    head = raw[:4096]
    if head.startswith(_GZIP_MAGIC):
        inner, _ = _gunzip(raw, path)
        if inner is not None and _nifti_header_size(inner[:4]):
            return "a gzip-compressed NIfTI image"
        return "a gzip-compressed file"
    if head.startswith(_ZIP_MAGIC):
        return "a zip archive (an Excel .xlsx or LibreOffice .ods workbook?)"
    if head.startswith(_OLE_MAGIC):
        return "an Excel .xls workbook"
    stripped = head.lstrip()
    if stripped.startswith(b"<?xml") or b"<GIFTI" in head:
        return "a GIFTI (XML) file"
    if _nifti_header_size(head) and len(raw) >= 348:
        return "a NIfTI image"
    if _is_text(head):
        return "a text file"
    return None


# ---------------------------------------------------------------------------
# NIfTI volumes
# ---------------------------------------------------------------------------

def _unreadable_nifti(path, exc):
    """The clearest message for a file nibabel could not open as an image."""
    raw, problem = _read_bytes(path)
    if problem:
        return problem
    if not raw:
        return f"{path}: is empty (0 bytes); export or download the map again"
    if raw.startswith(_GZIP_MAGIC):
        inner, problem = _gunzip(raw, path)
        if problem:
            return problem
        if not str(path).lower().endswith(".gz") and _nifti_header_size(inner[:4]):
            return (f"{path}: is a gzip-compressed NIfTI image but its name does not end in "
                    "'.gz', so it cannot be read; rename it to '.nii.gz'")
    kind = _what_file_is(raw, path)
    if kind == "a NIfTI image" and str(path).lower().endswith(".gz"):
        return (f"{path}: is an uncompressed NIfTI image but its name ends in '.gz', so it "
                "cannot be read; rename it to '.nii' (or gzip it)")
    if kind == "a GIFTI (XML) file":
        return (f"{path}: is a GIFTI surface file, not a NIfTI volume; set this map's format to "
                "'gifti' and give its path as 'left.gii,right.gii'")
    if kind == "a text file":
        return (f"{path}: is a text file (a region table?), not a NIfTI image; set this map's "
                "format to 'table', or give the map as a .nii/.nii.gz volume")
    if kind in ("an Excel .xls workbook", "a zip archive (an Excel .xlsx or LibreOffice .ods "
                "workbook?)"):
        return (f"{path}: is {kind}, not a NIfTI image; export the sheet as CSV/TSV and set this "
                "map's format to 'table'")
    if len(raw) < 348:
        return (f"{path}: is {len(raw)} bytes, too short for a NIfTI image (a header alone is 348 "
                "bytes); the file is truncated: download or export it again")
    return (f"{path}: is not a readable NIfTI image ({type(exc).__name__}: {_exc(exc)}); give "
            "an MNI152 volume as .nii or .nii.gz (convert other formats with nibabel or FSL/AFNI "
            "tools)")


def _volume_content(name, data):
    """Content problems of a volume's voxel values."""
    finite = np.isfinite(data)
    nonzero = data[finite & (data != 0)]
    if nonzero.size == 0:
        return [f"{name}: has no voxel with a nonzero finite value (every voxel is 0 or NaN), so "
                "it holds no map; export the map again (check that the statistic volume itself "
                "was saved, not an empty template)"]
    if nonzero.min() == nonzero.max():
        return [f"{name}: every nonzero voxel holds the same value ({nonzero.flat[0]:g}), so it "
                "is a mask, not a map of values: a constant map cannot be correlated with gene "
                "expression; give a map whose values vary across the brain"]
    return []


def _inspect_nifti(source):
    """(image or None, file problems, content problems) of a NIfTI map."""
    import nibabel as nib

    problems = []
    if isinstance(source, nib.spatialimages.SpatialImage):
        name, lazy, from_disk = "map image", source, False
    else:
        name, from_disk = str(source), True
        problem = _file_problem(name, "a NIfTI image")
        if problem:
            return None, [problem], []
        try:
            lazy = nib.load(name)
        except Exception as exc:  # nibabel raises many types for unreadable files
            return None, [_unreadable_nifti(name, exc)], []
    if isinstance(lazy, nib.gifti.GiftiImage):
        return None, [f"{name}: is a GIFTI surface file, not a NIfTI volume; set this map's "
                      "format to 'gifti' and give its path as 'left.gii,right.gii'"], []
    if not isinstance(lazy, nib.spatialimages.SpatialImage):
        return None, [f"{name}: is a {type(lazy).__name__}, not a NIfTI volume; give the map as a "
                      ".nii/.nii.gz file in MNI152 space"], []
    shape = tuple(lazy.shape)
    # checked from the header alone: a 4D series is never decompressed
    if not (len(shape) == 3 or (len(shape) == 4 and shape[3] == 1)):
        vols = f" ({shape[3]} volumes)" if len(shape) == 4 else ""
        return None, [f"{name}: expected a 3D volume, got shape {shape}{vols}; give one map per "
                      "file (split a 4D series, e.g. with nilearn.image.index_img or fslsplit, "
                      "and add one row per map to the maps sheet)"], []
    dtype = lazy.get_data_dtype()
    if dtype.kind not in "biuf" or dtype.names:
        return None, [f"{name}: has voxel data type {dtype} (complex or RGB), not one real "
                      "number per voxel; save the map as float32"], []
    img = lazy
    try:
        if from_disk and isinstance(lazy, (nib.Nifti1Image, nib.Nifti2Image)):
            raw, problem = _read_bytes(name)
            if raw is not None and raw.startswith(_GZIP_MAGIC):
                raw, problem = _gunzip(raw, name)
            if problem:
                return None, [problem], []
            if raw[:4] == lazy.header.binaryblock[:4]:
                # the image is parsed from the bytes just checked, so the job
                # uses exactly what was checked and reads the file once
                img = type(lazy).from_bytes(raw)
        data = np.asanyarray(img.dataobj)
    except Exception as exc:
        return None, [f"{name}: is truncated or corrupt (its voxel data cannot be read: "
                      f"{_exc(exc)}); download or export the file again"], []
    data = data.reshape(shape[:3])
    affine = img.affine
    why = ("missing" if affine is None else "not finite" if not np.all(np.isfinite(affine))
           else "singular (an axis of zero length)"
           if abs(np.linalg.det(affine[:3, :3])) < 1e-9 else None)
    if why:
        problems.append(f"{name}: its affine (the voxel-to-MNI matrix in the header) is {why}; "
                        "fix the header's sform/qform so the map sits in MNI152 space (e.g. copy "
                        "them from the template the map was made on)")
    if data.dtype.kind == "f":
        inf = np.isinf(data)
        if inf.any():
            first = tuple(int(i) for i in np.argwhere(inf)[0])
            sign = "+inf" if data[first] > 0 else "-inf"
            problems.append(
                f"{name}: has {int(inf.sum())} infinite voxel value(s) ({sign} at voxel {first}); "
                "infinities are not read as missing: set them to NaN where the map has no data "
                "(e.g. data[np.isinf(data)] = np.nan) or to finite values")
    content = [] if problems else _volume_content(name, data)
    return img, problems, content


def load_volume(source, *, content=False):
    """Read a NIfTI map, checked, for parcellation.

    Parameters
    ----------
    source : str, os.PathLike or nibabel image
        The map file (or an image already in memory).
    content : bool
        Also raise the content problems (no nonzero value, constant map).

    Returns
    -------
    nibabel.spatialimages.SpatialImage
        The image, 3D or 4D with one volume; for a NIfTI file, parsed from
        the bytes that were checked (the file is read once).

    Raises
    ------
    MapInputError
        Every problem found, each naming the file and the fix.
    """
    img, problems, extra = _inspect_nifti(source)
    _raise_if(problems + (extra if content else []))
    return img


# ---------------------------------------------------------------------------
# GIFTI surfaces
# ---------------------------------------------------------------------------

def _density_name(n):
    return next((name for name, count in DENSITIES.items() if count == n), None)


def _inspect_gifti(source):
    """(values or None, file problems, content problems) of one hemisphere's GIFTI."""
    import nibabel as nib

    if isinstance(source, nib.gifti.GiftiImage):
        name, img = "GIFTI image", source
    else:
        name = str(source)
        problem = _file_problem(name, "a GIFTI file")
        if problem:
            return None, [problem], []
        try:
            img = nib.load(name)
        except Exception as exc:  # XML, base64 and zlib errors alike
            raw, problem = _read_bytes(name)
            if problem:
                return None, [problem], []
            if not raw:
                return None, [f"{name}: is empty (0 bytes); export or download the map again"], []
            kind = _what_file_is(raw, name)
            if kind in ("a NIfTI image", "a gzip-compressed NIfTI image"):
                return None, [f"{name}: is a NIfTI volume, not a GIFTI surface file; set this "
                              "map's format to 'nifti'"], []
            if kind == "a GIFTI (XML) file":
                return None, [f"{name}: is not a readable GIFTI file ({type(exc).__name__}: "
                              f"{_exc(exc)}); if it was cut short or damaged, export or download "
                              "it again"], []
            return None, [f"{name}: is not a readable GIFTI file ({type(exc).__name__}: "
                          f"{_exc(exc)}); give a .func.gii/.shape.gii file with one value per "
                          "vertex (convert FreeSurfer curv/mgh files with mris_convert or "
                          "nibabel)"], []
    if not isinstance(img, nib.gifti.GiftiImage):
        if isinstance(img, nib.spatialimages.SpatialImage):
            return None, [f"{name}: is a NIfTI volume, not a GIFTI surface file; set this map's "
                          "format to 'nifti'"], []
        return None, [f"{name}: not a GIFTI file; surface maps are (left, right) "
                      ".func.gii/.shape.gii pairs"], []
    arrays = img.darrays
    if not arrays:
        return None, [f"{name}: holds no data array; give a GIFTI file with one value per "
                      "vertex"], []
    intents = {int(a.intent) for a in arrays}
    if intents & {_INTENT_POINTSET, _INTENT_TRIANGLE}:
        return None, [f"{name}: is a surface mesh (vertex coordinates and triangles), not a map; "
                      "give the .func.gii/.shape.gii file holding the map's values on the "
                      "fsaverage mesh"], []
    if len(arrays) != 1:
        return None, [f"{name}: {len(arrays)} data arrays; give one map per file (one value per "
                      "vertex: split a series or several maps into files, one row per map in "
                      "the maps sheet)"], []
    data = np.asarray(arrays[0].data)
    if data.ndim == 2 and 1 in data.shape:
        data = data.ravel()
    if data.ndim != 1:
        return None, [f"{name}: expected one value per vertex, got shape {data.shape}; give "
                      "one map per file"], []
    if data.dtype.kind not in "biuf":
        return None, [f"{name}: has data type {data.dtype}, not one real number per vertex; "
                      "save the map as float32"], []
    if _density_name(data.size) is None:
        return None, [f"{name}: {data.size} vertices is not an fsaverage mesh (fsaverage5: "
                      "10,242, fsaverage6: 40,962, fsaverage/fsaverage7: 163,842 per "
                      "hemisphere); resample the map to fsaverage (e.g. with "
                      "neuromaps.transforms) first"], []
    values = data.astype(float)
    problems, content = [], []
    inf = np.isinf(values)
    if inf.any():
        first = int(np.flatnonzero(inf)[0])
        problems.append(
            f"{name}: has {int(inf.sum())} infinite value(s) ({'+' if values[first] > 0 else '-'}"
            f"inf at vertex {first}); infinities are not read as missing: set them to NaN where "
            "the map has no data (e.g. the medial wall) or to finite values")
    if int(arrays[0].intent) == _INTENT_LABEL:
        content.append(f"{name}: is a label GIFTI (parcel ids, an atlas?), not a map of values; "
                       "give a .func.gii/.shape.gii map, or declare the label pair as an atlas "
                       "(atlases.<name>.surface in the config)")
    return values, problems, content


def load_vertex_values(source, *, content=False):
    """One value per vertex of one hemisphere's GIFTI map, checked.

    Parameters
    ----------
    source : str, os.PathLike or nibabel.gifti.GiftiImage
    content : bool
        Also raise the content problems (a label GIFTI given as a map).

    Returns
    -------
    numpy.ndarray of float
        One value per vertex of an fsaverage5, 6 or 7 mesh.

    Raises
    ------
    MapInputError
        The file cannot be read, is not a one-array GIFTI, its vertex count
        is not an fsaverage mesh, or it has infinite values.
    """
    values, problems, extra = _inspect_gifti(source)
    _raise_if(problems + (extra if content else []))
    return values


# hemisphere words in file names (lh.thickness.func.gii, hemi-R_..., map_left...)
_LEFT_WORDS, _RIGHT_WORDS = {"lh", "left", "l"}, {"rh", "right", "r"}


def _hemisphere_of(path):
    words = {w.lower() for w in re.split(r"[._\-/\\]+", Path(str(path)).name) if w}
    left, right = bool(words & _LEFT_WORDS), bool(words & _RIGHT_WORDS)
    return "L" if left and not right else "R" if right and not left else None


def _inspect_gifti_pair(paths):
    """((left, right) or None, file problems, content problems) of a GIFTI pair."""
    paths = list(paths)
    if len(paths) != 2:
        return None, [f"{', '.join(map(str, paths)) or 'no file'}: surface maps are (left, right) "
                      f"GIFTI pairs, got {len(paths)} file(s); give the map's path as "
                      "'left.gii,right.gii' in the maps sheet"], []
    found = [_inspect_gifti(p) for p in paths]
    problems = [p for _, probs, _ in found for p in probs]
    content = [p for _, _, extra in found for p in extra]
    values = [v for v, _, _ in found]
    names = [str(p) if not hasattr(p, "darrays") else f"{h} GIFTI image"
             for p, h in zip(paths, ("left", "right"))]
    if all(v is not None for v in values) and values[0].size != values[1].size:
        problems.append(
            f"{names[0]} has {values[0].size} vertices ({_density_name(values[0].size)}) but "
            f"{names[1]} has {values[1].size} ({_density_name(values[1].size)}); both "
            "hemispheres must be on the same mesh (left first): resample one to the other's "
            "density")
    if all(isinstance(p, (str, os.PathLike)) for p in paths):
        if os.path.realpath(paths[0]) == os.path.realpath(paths[1]):
            content.append(f"{names[0]}: is given for both hemispheres; give the left and the "
                           "right hemisphere's files, as 'left.gii,right.gii'")
        elif _hemisphere_of(paths[0]) == "R" and _hemisphere_of(paths[1]) == "L":
            content.append(f"{names[0]},{names[1]}: the names say right hemisphere first; the "
                           "pair is swapped: give the left hemisphere's file first, as "
                           "'left.gii,right.gii'")
    if not problems and all(v is not None for v in values):
        both = np.concatenate(values)
        nonzero = both[np.isfinite(both) & (both != 0)]
        pair = f"{names[0]},{names[1]}"
        if nonzero.size == 0:
            content.append(f"{pair}: no vertex has a nonzero finite value (all 0 or NaN), so the "
                           "pair holds no map; export the map again")
        elif nonzero.min() == nonzero.max():
            content.append(f"{pair}: every nonzero vertex holds the same value "
                           f"({nonzero[0]:g}), so it is a mask, not a map of values: a constant "
                           "map cannot be correlated with gene expression; give a map whose "
                           "values vary across the cortex")
    return (values if not problems else None), problems, content


def load_surface_pair(paths, *, content=False):
    """The (left, right) vertex values of a GIFTI map pair, checked.

    Parameters
    ----------
    paths : sequence of str, os.PathLike or nibabel.gifti.GiftiImage
        Left then right hemisphere.
    content : bool
        Also raise the content problems (one file for both hemispheres, a
        swapped pair, no nonzero value, a constant map, a label GIFTI).

    Returns
    -------
    list of numpy.ndarray
        Left and right values (float), on the same fsaverage density.

    Raises
    ------
    MapInputError
        Not a pair, a file that cannot be used (see
        :func:`load_vertex_values`), or hemispheres on different meshes.
    """
    values, problems, extra = _inspect_gifti_pair(paths)
    _raise_if(problems + (extra if content else []))
    return values


# ---------------------------------------------------------------------------
# region tables
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class MapTable:
    """A region table as read, with its region and value columns chosen.

    Attributes
    ----------
    path : str
    table : pandas.DataFrame
        The rows as pandas read them (column names stripped; rows with every
        cell blank dropped).
    region_column, column : str
        The region column and the value column.
    keys : pandas.Series
        Region names or integer ids, one per row.
    values : pandas.Series of float
        The value column as numbers (NaN where the cell is blank).
    """

    path: str
    table: pd.DataFrame
    region_column: str
    column: str
    keys: pd.Series
    values: pd.Series


_SEPARATOR_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon"}


def table_separator(path):
    """Separator of a region table by its name: tab for ``.tsv``/``.txt``, else comma.

    A ``.gz`` ending is looked through (``map.tsv.gz`` is tab-separated).
    """
    suffixes = [s.lower() for s in Path(str(path)).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return "\t" if suffixes and suffixes[-1] in (".tsv", ".txt") else ","


def _cell_list(cells, rows, limit=_EXAMPLES):
    shown = [f"{c!r} in {r}" for c, r in list(zip(cells, rows))[:limit]]
    more = f" and {len(cells) - limit} more" if len(cells) > limit else ""
    return ", ".join(shown) + more


_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+\.\d*")


def _numeric_after_comma_fix(cells):
    """Share of non-blank cells that are numbers once a decimal comma is a point."""
    text = cells.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return 0.0
    fixed = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    return float(fixed.notna().mean())


def _table_text(path):
    """(bytes, None) of a readable UTF-8 text table, or (None, problem)."""
    raw, problem = _read_bytes(path)
    if problem:
        return None, problem
    if raw.startswith(_GZIP_MAGIC):
        kind = _what_file_is(raw, path)
        if kind == "a gzip-compressed NIfTI image":
            return None, (f"{path}: is a NIfTI image, not a region table; set this map's format "
                          "to 'nifti'")
        if not str(path).lower().endswith(".gz"):
            return None, (f"{path}: is gzip-compressed but its name does not end in '.gz'; "
                          "decompress it, or name it '.csv.gz'/'.tsv.gz'")
        raw, problem = _gunzip(raw, path)
        if problem:
            return None, problem
    if not raw.strip():
        return None, (f"{path}: is empty; give a table with a header line (e.g. "
                      "'region<TAB>value') and one row per region")
    if raw.startswith(_UTF16_BOMS):
        return None, (f"{path}: is UTF-16 text (e.g. Excel's 'Unicode text'), not UTF-8; save it "
                      "as 'CSV UTF-8' (comma-separated) or as UTF-8 tab-separated text")
    kind = _what_file_is(raw, path)
    if kind in ("a NIfTI image", "a gzip-compressed NIfTI image"):
        return None, (f"{path}: is a NIfTI image, not a region table; set this map's format to "
                      "'nifti'")
    if kind == "a GIFTI (XML) file":
        return None, (f"{path}: is a GIFTI surface file, not a region table; set this map's "
                      "format to 'gifti' and give its path as 'left.gii,right.gii'")
    if kind is not None and kind != "a text file":
        return None, (f"{path}: is {kind}, not a text table; export the sheet as CSV "
                      "(comma-separated) or TSV (tab-separated) text, UTF-8")
    if b"\x00" in raw:
        return None, (f"{path}: is a binary file, not a text table; give a CSV (comma-separated) "
                      "or TSV (tab-separated) file of region values")
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        guess = bytes([byte]).decode("cp1252", errors="replace")
        return None, (f"{path}: is not UTF-8 text (byte 0x{byte:02x} on line {line}, {guess!r} "
                      "in Windows-1252/Latin-1); save it as UTF-8 (Excel: 'CSV UTF-8'; or "
                      "iconv -f latin1 -t utf-8)")
    return raw, None


def _header_fields(raw, sep):
    """Fields of the first non-blank line, as the csv module splits them."""
    text = raw.decode("utf-8-sig")
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return line, next(csv.reader([line], delimiter=sep), [])


def _row_names(keys, positions):
    """'row 'L_bankssts'' where the region is named, else 'data row 7' (header not counted)."""
    names = []
    for pos in positions:
        key = keys.iloc[pos]
        if isinstance(key, str) and key.strip():
            names.append(f"row {key.strip()!r}")
        elif not isinstance(key, str) and pd.notna(key):
            names.append(f"row {key}")
        else:
            names.append(f"data row {int(keys.index[pos]) + 1}")
    return names


def _parse_table(name, raw, sep):
    """(table, header line, header fields) as pandas reads them, or (None, problem, None)."""
    sep_name = _SEPARATOR_NAMES[sep]
    line, header = _header_fields(raw, sep)
    try:
        table = pd.read_csv(io.BytesIO(raw), sep=sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return None, (f"{name}: is empty; give a table with a header line and one row per "
                      "region"), None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = (f"line {m.group(2)} has {m.group(3)} fields but the header has {m.group(1)}"
                 if m else f"it cannot be parsed ({_exc(exc)})")
        why = ("a decimal comma, or a comma inside a name?" if sep == ","
               else "a tab inside a cell?")
        return None, (f"{name}: {where} ({sep_name}-separated, from the file name); a cell "
                      f"holds a {sep_name} ({why}): quote such cells, write decimal points, "
                      "or save the table tab-separated as .tsv"), None
    except Exception as exc:
        return None, (f"{name}: cannot be read as a {sep_name}-separated table "
                      f"({type(exc).__name__}: {_exc(exc)}); give a CSV or TSV file"), None
    table.columns = [str(c).strip() for c in table.columns]
    if len(table.columns) == 1:
        # one column: the file is separated by something else than its name says
        others = [s for s in ("\t", ";", ",") if s != sep and s in line]
        if others:
            other = _SEPARATOR_NAMES[others[0]]
            fix = {"tab": "rename it to .tsv",
                   "comma": "rename it to .csv",
                   "semicolon": "save it comma-separated (.csv) or tab-separated (.tsv), with "
                                "decimal points (a European spreadsheet export uses ';' and "
                                "decimal commas)"}[other]
            ending = "".join(Path(name).suffixes[-2:]) or "no extension"
            return None, (f"{name}: its header {line.strip()!r} is {other}-separated but the "
                          f"file is read as {sep_name}-separated (its name ends in {ending}); "
                          f"{fix}"), None
    if not isinstance(table.index, pd.RangeIndex):
        # pandas takes a first column the header lacks as row names; R's
        # write.table does that (row names 1..n) and is fine, anything else is
        # an extra field in every row, e.g. unquoted decimal commas
        idx = pd.Index(table.index)
        if idx.astype(str).tolist() != [str(i) for i in range(1, len(idx) + 1)]:
            return None, (f"{name}: every data row has more fields than the header "
                          f"({sep_name}-separated; e.g. {str(idx[0])!r} is read as a row "
                          "name): decimal commas in a comma-separated file? write numbers with "
                          "a decimal point, e.g. 0.12, or save the table tab-separated as "
                          ".tsv"), None
    return table, line, header


def _choose_column(name, table, region_col, column):
    """(value column, numeric columns) by the blank-column rule, or (None, problem)."""
    numeric = [c for c in table.columns if c != region_col
               and pd.api.types.is_numeric_dtype(table[c])]
    if column is None:
        if "value" in table.columns:
            return "value", numeric
        if len(numeric) == 1:
            return numeric[0], numeric
        # no numeric column: the one column of numbers written with decimal
        # commas (or with a stray word) is still the value column, so its
        # cells are reported rather than a vague "cannot tell"
        almost = [c for c in table.columns if c != region_col and not numeric
                  and _numeric_after_comma_fix(table[c]) >= 0.5]
        if len(almost) == 1:
            return almost[0], numeric
        return None, (f"{name}: cannot tell which column holds the values (numeric columns: "
                      f"{numeric}); set the 'column' field of this map in the maps sheet")
    if column not in table.columns:
        near = [c for c in table.columns if c.lower() == str(column).strip().lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return None, (f"{name}: no column {column!r} (columns: {list(table.columns)}); fix the "
                      f"'column' field of this map in the maps sheet{hint}")
    if column == region_col:
        return None, (f"{name}: column {column!r} is the region column, not values; set the "
                      f"'column' field of this map to the value column (numeric columns: "
                      f"{numeric})")
    return column, numeric


def _check_keys(name, keys, region_col):
    """(keys, problems): blank regions, fractional ids, regions listed twice."""
    index = keys.index
    blank = keys.isna() | (keys.astype(str).str.strip() == "")
    if blank.any():
        pos = np.flatnonzero(blank.to_numpy())
        rows = ", ".join(str(int(index[p]) + 1) for p in pos[:_EXAMPLES])
        more = " ..." if len(pos) > _EXAMPLES else ""
        # duplicates among the rest would only repeat the fix
        return keys, [f"{name}: data row(s) {rows}{more} have no region in column "
                      f"{region_col!r}; fill them in or delete those rows"]
    problems = []
    if pd.api.types.is_float_dtype(keys):
        frac = keys != np.round(keys)
        if frac.any():
            problems.append(f"{name}: region column {region_col!r} holds ids that are not "
                            f"whole numbers (e.g. {keys[frac].iloc[0]:g}); give atlas ids "
                            "(integers) or region names")
        else:
            # ids read as floats only because blank lines were in the file
            keys = keys.astype(np.int64)
    norm = (keys if pd.api.types.is_numeric_dtype(keys)
            else keys.astype(str).str.strip().str.lower())
    dup = norm.duplicated(keep=False).to_numpy()
    if dup.any():
        groups = pd.Series(np.flatnonzero(dup)).groupby(norm.to_numpy()[dup]).apply(list)
        listed = "; ".join(
            f"{keys.iloc[pos[0]]!r} (data rows {', '.join(str(int(index[p]) + 1) for p in pos)})"
            for pos in list(groups)[:_EXAMPLES])
        problems.append(f"{name}: region(s) listed twice or more: {listed}; keep one row per "
                        "region")
    return keys, problems


def _check_values(name, cells, values, keys, use, column, numeric):
    """Problems of the value column's cells: text, decimal commas, thousands, infinities."""
    problems = []
    text = cells.astype(str).str.strip()
    blank = cells.isna().to_numpy() | (text == "").to_numpy()
    bad = use & ~blank & values.isna().to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        shown = text.iloc[pos]
        rows = _row_names(keys, pos)
        comma = shown.str.fullmatch(_DECIMAL_COMMA.pattern).to_numpy()
        thousands = shown.str.fullmatch(_THOUSANDS.pattern).to_numpy() & ~comma
        other = ~comma & ~thousands
        n_cells = int((use & ~blank).sum())
        if comma.any():
            first = int(np.flatnonzero(comma)[0])
            ex = shown.iloc[first]
            problems.append(
                f"{name}: holds decimal commas ({ex!r} in {rows[first]}, column {column!r}; "
                f"{int(comma.sum())} of {n_cells} cells): write numbers with a decimal point, "
                f"e.g. {ex.replace(',', '.').lstrip('+')} (in a spreadsheet, export with '.' as "
                "the decimal separator)")
        if thousands.any():
            first = int(np.flatnonzero(thousands)[0])
            ex = shown.iloc[first]
            problems.append(
                f"{name}: column {column!r} holds thousands separators ({ex!r} in "
                f"{rows[first]}): write numbers without them, e.g. {ex.replace(',', '')}")
        if other.any():
            where = [rows[i] for i in np.flatnonzero(other)]
            if int(other.sum()) == n_cells:
                problems.append(
                    f"{name}: column {column!r} is not numeric (no cell is a number, e.g. "
                    f"{shown[other].iloc[0]!r} in {where[0]}); set the 'column' field of this "
                    f"map to the column of values (numeric columns: {numeric})")
            else:
                problems.append(
                    f"{name}: column {column!r} has {int(other.sum())} cell(s) that are not "
                    f"numbers: {_cell_list(shown[other].tolist(), where)}; write a number, or "
                    "leave the cell blank (or NA) for a region without a value")
    inf = use & np.isinf(values.to_numpy(dtype=float))
    if inf.any():
        pos = np.flatnonzero(inf)
        listed = _cell_list(text.iloc[pos].tolist(), _row_names(keys, pos))
        problems.append(
            f"{name}: column {column!r} holds infinite values ({listed}); infinities are not "
            "read as missing: write a finite number, or leave the cell blank (or NA) for a "
            "region without a value")
    return problems


def _table_content(name, values, use, column, numeric):
    """Content problems of a readable value column: no, too few or all-equal values."""
    finite = values.to_numpy(dtype=float)[use]
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return [f"{name}: column {column!r} has no values (every cell is blank); set the "
                "'column' field of this map to the column holding the map (columns with "
                f"numbers: {numeric})"]
    if finite.size < MIN_REGIONS:
        return [f"{name}: column {column!r} has values in only {finite.size} row(s); a map "
                f"needs values in at least {MIN_REGIONS} regions to be correlated with gene "
                "expression: give a value for every region you have"]
    if finite.min() == finite.max():
        return [f"{name}: column {column!r} holds the same value ({finite[0]:g}) in every row, "
                "so the map has no spatial pattern to correlate with gene expression; check "
                "the 'column' field (e.g. 'd_icv', not 'n_controls')"]
    return []


def _inspect_table(path, column=None):
    """(MapTable or None, file problems, content problems) of a region table."""
    from .regions import ENIGMA_NO_PARCEL

    name = str(path)
    column = column if column not in ("", None) else None
    problem = _file_problem(name, "a CSV/TSV table")
    if problem:
        return None, [problem], []
    raw, problem = _table_text(name)
    if problem:
        return None, [problem], []
    table, line, header = _parse_table(name, raw, table_separator(name))
    if table is None:
        return None, [line], []
    region_col = next((c for c in REGION_COLUMNS if c in table.columns), None)
    if region_col is None:
        canonical = {r.lower(): r for r in REGION_COLUMNS}
        near = [c for c in table.columns if c.lower() in canonical]
        hint = f": rename {near[0]!r} to {canonical[near[0].lower()]!r}" if near else ""
        return None, [f"{name}: no region column (columns: {list(table.columns)[:8]}); name it "
                      f"one of {list(REGION_COLUMNS)}{hint}"], []
    # rows with every cell blank (spreadsheet exports end with ',,,' lines) hold nothing
    table = table.loc[~table.isna().all(axis=1)]
    if table.empty:
        return None, [f"{name}: has a header but no data rows; add one row per region "
                      f"(columns: {list(table.columns)[:8]})"], []

    problems = []
    stripped = [h.strip() for h in header]
    twice = sorted({h for h in stripped if h and stripped.count(h) > 1})
    if twice:
        problems.append(f"{name}: its header names {', '.join(repr(c) for c in twice)} more "
                        "than once; give every column its own name")
    column, numeric = _choose_column(name, table, region_col, column)
    if column is None:
        return None, problems + [numeric], []
    cells = table[column]
    if isinstance(cells, pd.DataFrame):  # a duplicated name: reported above
        return None, problems, []
    # columns the user could have meant, for the hints
    numeric = [c for c in numeric if c != column and table[c].notna().any()]
    keys, key_problems = _check_keys(name, table[region_col], region_col)
    problems += key_problems
    # the value column exactly as parcellation reads it
    values = pd.to_numeric(cells, errors="coerce")
    # ENIGMA's lateral-ventricle rows are skipped by parcellation, so their
    # cells do not matter here either
    use = ~keys.astype(str).str.strip().str.lower().isin(ENIGMA_NO_PARCEL).to_numpy()
    value_problems = _check_values(name, cells, values, keys, use, column, numeric)
    problems += value_problems
    content = [] if value_problems else _table_content(name, values, use, column, numeric)
    if problems:
        return None, problems, content
    found = MapTable(path=name, table=table, region_column=region_col, column=column,
                     keys=keys, values=values)
    return found, problems, content


def read_map_table(path, column=None, *, content=False):
    """Read a region table, checked (atlas matching: :func:`itx.parcellate.read_region_table`).

    The value column is `column`, else ``value``, else the only numeric
    column besides the region column (:data:`REGION_COLUMNS` names it). The
    separator is a tab for ``.tsv``/``.txt`` and a comma otherwise; a
    ``.gz`` file is decompressed; a UTF-8 byte-order mark is accepted.
    Blank cells (or ``NA``, ``nan``...) are regions without a value.

    Parameters
    ----------
    path : str or os.PathLike
    column : str, optional
    content : bool
        Also raise the content problems (no value, fewer than
        :data:`MIN_REGIONS` values, one value in every row).

    Returns
    -------
    MapTable

    Raises
    ------
    MapInputError
        Every problem found: unreadable, empty, binary or not UTF-8; no
        region or value column; rows with no region or a region listed
        twice; cells that are not numbers (decimal commas explained);
        infinite values.
    """
    found, problems, extra = _inspect_table(path, column)
    _raise_if(problems + (extra if content else []))
    return found


# ---------------------------------------------------------------------------
# the maps sheet's check and the parcellated map's
# ---------------------------------------------------------------------------

def check_map_file(paths, fmt, *, column=None):
    """Every problem of one map of the maps sheet that needs no atlas to see.

    Cheap enough to run for every row before the DAG starts any job (a 1 mm
    MNI152 volume takes a fraction of a second: one decompression, a few
    passes over the voxels). Nothing is written.

    NIfTI: the file loads and its data fully decompresses (gzip CRC
    included), one 3D volume (or 4D with one volume), a usable affine, no
    infinite voxel, some nonzero finite voxel, not one value at every
    nonzero voxel. GIFTI: two files, each a parsable one-array GIFTI with
    one value per vertex of fsaverage5/6/7, both on the same density,
    finite or NaN, not one value at every nonzero vertex, not a label or
    mesh file, not the same file twice or a swapped pair. Table: readable
    UTF-8 text, not empty, a region column, the value column (`column`,
    else ``value`` or the only numeric column), numbers only (decimal
    commas explained), no infinite value, no region twice, at least
    :data:`MIN_REGIONS` values, not one value in every row.

    Parameters
    ----------
    paths : str, os.PathLike or sequence of them
        The map's file; for ``gifti`` the (left, right) pair (a string is
        split at commas, as the maps sheet's ``path``).
    fmt : {'nifti', 'gifti', 'table'}
    column : str, optional
        Value column of a table (blank or None: the default rule).

    Returns
    -------
    list of str
        One message per problem, each naming the file, where in it (row,
        column, voxel, vertex, volume) and the fix; empty if none.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = str(paths).split(",") if fmt == "gifti" else [paths]
    paths = [str(p).strip() for p in paths]
    if fmt not in FORMATS:
        return [f"{', '.join(paths)}: unknown map format {fmt!r}; set the 'format' of this map "
                f"to one of {list(FORMATS)}"]
    if fmt != "gifti" and len(paths) != 1:
        return [f"{', '.join(paths)}: a {fmt} map is one file, got {len(paths)}; only 'gifti' "
                "maps take two ('left.gii,right.gii')"]
    try:
        if fmt == "nifti":
            _, problems, content = _inspect_nifti(paths[0])
        elif fmt == "gifti":
            _, problems, content = _inspect_gifti_pair(paths)
        else:
            _, problems, content = _inspect_table(paths[0], column)
    except Exception as exc:  # an exotic file must not stop the DAG with a traceback
        return [f"{', '.join(paths)}: could not be checked ({type(exc).__name__}: "
                f"{_exc(exc)}); check that it is a valid {fmt} map file"]
    return list(dict.fromkeys(problems + content))


def check_parcellated(values, source, atlas_name, fmt):
    """Raise if a parcellated map cannot be correlated: too few or all-equal region values.

    Parameters
    ----------
    values : pandas.Series
        The map's value per atlas region (NaN = none), before its sign.
    source : str, os.PathLike or sequence
        The map file(s), for the message.
    atlas_name : str
    fmt : {'nifti', 'gifti', 'table'}

    Raises
    ------
    MapInputError
        Fewer than :data:`MIN_REGIONS` regions with a finite value, or the
        same value in every region with one.
    """
    if isinstance(source, (list, tuple)):
        source = ",".join(str(s) for s in source)
    v = np.asarray(values, dtype=float)
    finite = v[np.isfinite(v)]
    few_fix = {
        "nifti": "check that the map is in MNI152 space and has finite values inside the "
                 "atlas's parcels (its field of view must cover them)",
        "gifti": "check that the map has values (not NaN) on the cortex and that the atlas's "
                 "surface parcels cover it",
        "table": "check that the table names this atlas's regions (limit a table to its own "
                 "atlas with the maps sheet's 'atlas' column) and has values for them",
    }.get(fmt, "check the map")
    if finite.size < MIN_REGIONS:
        raise MapInputError(
            f"{source}: after parcellation onto atlas {atlas_name!r}, only {finite.size} of "
            f"{v.size} regions have a value; a map needs at least {MIN_REGIONS} to be correlated "
            f"with gene expression: {few_fix}")
    spread = finite.max() - finite.min()
    # parcel means of a constant map differ by rounding only
    if spread <= 1e-9 * max(np.abs(finite).max(), np.finfo(float).tiny):
        raise MapInputError(
            f"{source}: after parcellation onto atlas {atlas_name!r}, all {finite.size} regions "
            f"with a value have the same value ({finite[0]:.6g}), so the map has no spatial "
            "pattern to correlate with gene expression: check that the right file (not a mask) "
            "was given, and for a table its 'column'")
