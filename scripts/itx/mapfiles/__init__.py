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

Modules: :mod:`~itx.mapfiles.problems` (the error and shared constants),
:mod:`~itx.mapfiles.files` (what a file is, from its bytes),
:mod:`~itx.mapfiles.volumes`, :mod:`~itx.mapfiles.surfaces` and
:mod:`~itx.mapfiles.tables` (one reader per map format); this module holds
the checks the DAG and the parcellation call.
"""

from __future__ import annotations

import os

import numpy as np

from ..catalog import DENSITIES
from .problems import (
    CHECKS_VERSION,
    FORMATS,
    MIN_REGIONS,
    REGION_COLUMNS,
    MapInputError,
    _exc,
)
from .surfaces import _inspect_gifti_pair, load_surface_pair, load_vertex_values
from .tables import MapTable, _inspect_table, read_map_table, table_separator
from .volumes import _inspect_nifti, load_volume

__all__ = [
    "CHECKS_VERSION", "DENSITIES", "FORMATS", "MIN_REGIONS", "REGION_COLUMNS", "MapInputError",
    "MapTable",
    "check_map_file", "check_parcellated", "load_surface_pair", "load_vertex_values",
    "load_volume", "read_map_table", "table_separator",
]


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
