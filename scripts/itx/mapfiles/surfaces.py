"""GIFTI surface maps: one value per fsaverage vertex, a left and a right file."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..catalog import DENSITIES
from .files import _file_problem, _read_bytes, _what_file_is
from .problems import _exc, _raise_if

# GIFTI intents that mark a file as something other than a map of values
_INTENT_LABEL, _INTENT_POINTSET, _INTENT_TRIANGLE = 1002, 1008, 1009


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

