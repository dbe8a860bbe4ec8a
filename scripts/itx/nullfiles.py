"""One file format for everything the null stage writes.

Every file of the null stage is a numpy archive (``.npz``, no pickles, so it
loads with ``allow_pickle=False``) holding named arrays, among them the
``regions`` its rows belong to and a ``format`` tag that names what the file
is (its *kind*) and the version of its layout. One writer, :func:`save`,
and one reader, :func:`load`, serve every kind; the reader checks the tag
(a file of another kind or an older layout is refused with the rule that
remakes it) and, when asked, the regions (a file made for another atlas or
scope is refused: delete it and rerun).

Kinds (:data:`KINDS`), their arrays in the order they are written:

``spins``         ``idx, regions, method, seed, n_perm, format``
    Map-independent resampling indices over a scope (rule spins).
``weights``       ``data, indices, indptr, shape, regions, format``
    ``cornblath`` averaging weights, a CSR matrix (rule spin_weights).
``distance``      ``dist, regions``
    Parcel distance matrix over a scope (rule null_distance).
``vertex_spins``  ``format, regions, vertex, parcel, source, n_vertices, offsets, seed, n_perm``
    For each rotation, the source vertex of every vertex of the cortical
    parcels (rule vertex_spins; :func:`itx.vertexspins.make_vertex_spins`).
``null_maps``     ``values, regions, method, seed, format``
    The null maps of one map over the scope (rule map_nulls); every test
    reads them.

Why the layouts of ``spins``, ``distance`` and ``null_maps`` are what they
are: ``np.savez`` output is a pure function of the key order, the dtypes and
the values (zip members carry numpy's fixed 1980 timestamp), and these files
are outputs of the demo whose bytes are pinned, so their keys, key order and
dtypes are kept exactly. That is also why ``distance`` has no ``format``
key: its files predate the tag. Its reader accepts exactly the untagged
``dist, regions`` layout; to give it a tag, set its ``tag`` below (files
then change bytes and are remade once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

__all__ = ["KINDS", "NullFileError", "NullFileKind", "check_regions", "load", "regions_array",
           "save"]


class NullFileError(ValueError):
    """A null-stage file of the wrong kind, version or regions."""


@dataclass(frozen=True)
class NullFileKind:
    """The layout of one kind of null-stage file.

    Attributes
    ----------
    name : str
        The kind (``'spins'``, ``'distance'``...).
    tag : str or None
        ``format`` value written; None for the untagged legacy layout
        (``distance``).
    keys : tuple of str
        Arrays in the order they are written (``regions`` and, when tagged,
        ``format`` included).
    rule : str
        The workflow rule that writes such files (named in messages).
    label : str
        What the file is, in messages ("spin file").
    readable : tuple of str
        Older tags still read (same keys).
    compressed : bool
        ``np.savez_compressed`` (small, slower) or ``np.savez`` (vertex
        spins: hundreds of MB of nearly incompressible indices, read by
        every map, so reading fast matters more).
    """

    name: str
    tag: Optional[str]
    keys: Tuple[str, ...]
    rule: str
    label: str
    readable: Tuple[str, ...] = ()
    compressed: bool = True


#: Every kind of file the null stage writes.
KINDS: Dict[str, NullFileKind] = {k.name: k for k in (
    NullFileKind("spins", "itx-spins-2",
                 ("idx", "regions", "method", "seed", "n_perm", "format"), "spins", "spin",
                 readable=("itx-spins-1",)),
    NullFileKind("weights", "itx-nullmaps-1-weights",
                 ("data", "indices", "indptr", "shape", "regions", "format"), "spin_weights",
                 "spin-weights"),
    NullFileKind("distance", None, ("dist", "regions"), "null_distance", "distance"),
    NullFileKind("vertex_spins", "itx-vertex-spins-1",
                 ("format", "regions", "vertex", "parcel", "source", "n_vertices", "offsets",
                  "seed", "n_perm"), "vertex_spins", "vertex-spin", compressed=False),
    NullFileKind("null_maps", "itx-nullmaps-1",
                 ("values", "regions", "method", "seed", "format"), "map_nulls", "null-map"),
)}


def _kind(kind: str) -> NullFileKind:
    try:
        return KINDS[kind]
    except KeyError:
        raise ValueError(f"unknown null file kind {kind!r}; one of {sorted(KINDS)}") from None


def regions_array(regions: Sequence) -> np.ndarray:
    """Region labels as stored: ints stay ints, everything else unicode."""
    arr = np.asarray(list(regions))
    if arr.ndim != 1:
        raise ValueError("regions must be one-dimensional")
    if arr.dtype.kind not in "iuU":
        arr = arr.astype(str)
    return arr


def save(path, kind: str, regions: Sequence, **arrays) -> Path:
    """Write one null-stage file atomically.

    Parameters
    ----------
    path : path-like
        Output file; must end in ``.npz`` (numpy would otherwise append it
        and the workflow would miss its declared output). Parent folders
        are created.
    kind : str
        One of :data:`KINDS`.
    regions : sequence
        Labels of the rows (ints or names).
    **arrays
        The kind's other arrays (every key of the kind but ``regions`` and
        ``format``), stored as given: callers fix the dtypes.

    Returns
    -------
    pathlib.Path
    """
    from .tables import atomic_path

    spec = _kind(kind)
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{kind} file must end in .npz, got {path}")
    given = dict(arrays, regions=regions_array(regions))
    if spec.tag is not None:
        given["format"] = np.array(spec.tag)
    if set(given) != set(spec.keys):
        raise ValueError(f"a {kind} file holds {list(spec.keys)}, got {sorted(given)}")
    # the kind's key order, always: the bytes of np.savez depend on it
    ordered = {k: given[k] for k in spec.keys}
    write = np.savez_compressed if spec.compressed else np.savez
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh, **ordered)
    return path


def load(path, kind: str, regions: Optional[Sequence] = None) -> dict:
    """Read one null-stage file, checking its kind and (optionally) regions.

    Parameters
    ----------
    path : path-like
    kind : str
        The kind expected, one of :data:`KINDS`.
    regions : sequence, optional
        The regions the file must be made for, in row order (compared as
        strings); None skips the check.

    Returns
    -------
    dict
        Every array of the file; ``regions`` as a list.

    Raises
    ------
    NullFileError
        Not a file of this kind (names the rule that makes one), or made for
        other regions (delete it and rerun).
    """
    spec = _kind(kind)
    with np.load(path, allow_pickle=False) as z:
        files = set(z.files)
        missing = [k for k in spec.keys if k not in files]
        if missing:
            raise NullFileError(f"{path} is not an itx {spec.label} file (missing {missing}); "
                                f"delete it and rerun the {spec.rule} rule")
        if spec.tag is None:
            extra = sorted(files - set(spec.keys))
            if extra:
                raise NullFileError(f"{path} is not an itx {spec.label} file (unexpected {extra}); "
                                    f"delete it and rerun the {spec.rule} rule")
        else:
            tag = str(z["format"])
            if tag != spec.tag and tag not in spec.readable:
                raise NullFileError(f"{path}: unsupported {spec.label} file format {tag!r} (this "
                                    f"version writes {spec.tag!r}); delete it and rerun the "
                                    f"{spec.rule} rule")
        out = {k: z[k] for k in z.files}
    out["regions"] = out["regions"].tolist()
    if regions is not None:
        check_regions(path, out["regions"], regions, kind)
    return out


def check_regions(path, file_regions: Sequence, regions: Sequence, kind: str = "null") -> None:
    """Refuse a file made for other regions than the ones in use.

    Raises
    ------
    NullFileError
        Naming the file, the first difference, and the fix.
    """
    got = [str(r) for r in file_regions]
    want = [str(r) for r in regions]
    if got == want:
        return
    spec = KINDS.get(kind)
    rule = f" the {spec.rule} rule" if spec is not None else ""
    if len(got) != len(want):
        diff = f"{len(got)} regions, not {len(want)}"
    else:
        k = next(i for i, (a, b) in enumerate(zip(got, want)) if a != b)
        diff = f"row {k} is {got[k]!r}, not {want[k]!r}"
    raise NullFileError(f"{path} was made for other regions than this atlas and scope ({diff}); "
                        f"delete it and rerun{rule}")
