"""NIfTI volume maps: load one 3D volume and say what is wrong with it."""

from __future__ import annotations

import numpy as np

from .files import (
    _GZIP_MAGIC,
    _file_problem,
    _gunzip,
    _nifti_header_size,
    _read_bytes,
    _what_file_is,
)
from .problems import _exc, _raise_if


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

