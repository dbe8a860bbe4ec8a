"""Parse each AHBA donor's CSVs once into a binary (numpy ``.npy``) cache.

abagen parses every donor's ``MicroarrayExpression.csv`` and ``PACall.csv``
again on every call: about 4 GB of text for the six real donors, roughly a
third of a default ``abagen.get_expression_data`` run, repeated for every
atlas and every option. This module parses them once per donor and stores
the parsed values, so every later stage (any atlas, any option) memory-maps
them instead::

    <cache_dir>/donor{id}/
        microarray.npy   float64 (probes, samples): MicroarrayExpression.csv
        pacall.npy       uint8   (probes, samples): PACall.csv (0/1)
        probe_ids.npy    int64   (probes,): column 0 of both matrices
        Probes.csv  SampleAnnot.csv  Ontology.csv   (copied; small, read by abagen)
        cache.json       format version, shapes, source sizes (written last)

Exactness: the matrices are parsed by the same pandas call abagen makes
(``pandas.read_csv(header=None, index_col=0)``, in row chunks to bound
memory) and stored as float64, so the cached values are bit for bit what
abagen would compute from the CSVs. float32 would not do: the real files
print about 15 significant digits, which float32 cannot hold.

Every file is written under a temporary name and renamed into place
(:func:`itx.tables.atomic_path`), and ``cache.json`` comes last, so an
interrupted build never looks complete.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .tables import atomic_path, write_text

__all__ = [
    "CACHE_VERSION",
    "CACHE_FILES",
    "AHBA_CACHE_FILES",
    "SMALL_TABLES",
    "donor_cache_dir",
    "build_donor_cache",
    "read_donor_cache",
    "is_cache_complete",
    "read_rows",
]

#: Bumped whenever the layout or the parsing changes (old caches are rebuilt).
CACHE_VERSION = 1

#: The small tables, copied as they are: abagen reads them itself.
SMALL_TABLES = ("Probes.csv", "SampleAnnot.csv", "Ontology.csv")

#: Every file of a complete donor cache (``cache.json`` is written last).
CACHE_FILES = ("microarray.npy", "pacall.npy", "probe_ids.npy") + SMALL_TABLES + ("cache.json",)

#: The same, under the name the workflow's DAG uses (``<ahba>/cache/donor{id}/<file>``).
AHBA_CACHE_FILES = CACHE_FILES

_CHUNK_ROWS = 2048  # rows per read_csv chunk: ~16 MB of float64 for 1,000 samples


def donor_cache_dir(cache_dir, donor) -> Path:
    """Return ``<cache_dir>/donor{id}``.

    Parameters
    ----------
    cache_dir : str or os.PathLike
        Root of the cache.
    donor : str or int
        AHBA donor id.

    Returns
    -------
    pathlib.Path
    """
    return Path(cache_dir) / f"donor{donor}"


def _count_rows(csv: Path) -> int:
    """Number of lines (a last line without a newline counts too)."""
    n, last = 0, b"\n"
    with open(csv, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _parse_matrix(csv: Path, out: Path, dtype, n_samples: int, kind: str) -> np.ndarray:
    """Parse an AHBA probe x sample CSV into ``out`` (.npy), chunk by chunk.

    Returns the probe ids (column 0).
    """
    # counting lines first (a fast byte scan) fixes the .npy shape, so parsed
    # chunks go straight to their final place and memory stays at one chunk
    n_rows = _count_rows(csv)
    ids = np.empty(n_rows, np.int64)
    with atomic_path(out) as tmp:
        mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=(n_rows, n_samples))
        done = 0
        for chunk in pd.read_csv(csv, header=None, index_col=0, chunksize=_CHUNK_ROWS):
            if chunk.shape[1] != n_samples:
                raise ValueError(
                    f"{csv}: {chunk.shape[1]} sample columns but SampleAnnot.csv has "
                    f"{n_samples} rows; the donor folder mixes files from different "
                    "downloads. Delete it and fetch it again"
                )
            values = chunk.to_numpy()
            if kind == "pacall":
                if values.dtype.kind not in "iu" or not np.isin(values, (0, 1)).all():
                    raise ValueError(
                        f"{csv}: present/absent calls must be 0 or 1; the file is "
                        "corrupt. Delete the donor folder and fetch it again"
                    )
            elif values.dtype.kind not in "fiu":
                raise ValueError(
                    f"{csv}: non-numeric expression values (column dtype "
                    f"{values.dtype}); the file is corrupt. Delete the donor folder "
                    "and fetch it again"
                )
            if done + len(chunk) > n_rows:
                raise ValueError(f"{csv} changed while it was being read")
            mm[done:done + len(chunk)] = values  # int -> float64 is exact here
            ids[done:done + len(chunk)] = chunk.index.to_numpy(np.int64)
            done += len(chunk)
        if done != n_rows:
            # e.g. blank lines, which read_csv skips: refuse rather than guess
            raise ValueError(
                f"{csv}: {n_rows} lines but {done} data rows; the file is malformed. "
                "Delete the donor folder and fetch it again"
            )
        mm.flush()
        del mm  # the map is closed before the file takes its final name
    return ids


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array)


def _copy(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def build_donor_cache(donor_folder, out_dir) -> Path:
    """Parse one donor folder into a cache folder.

    Parameters
    ----------
    donor_folder : str or os.PathLike
        ``normalized_microarray_donor{id}/`` with the five AHBA CSVs.
    out_dir : str or os.PathLike
        Cache folder of this donor (e.g. from :func:`donor_cache_dir`);
        created if needed, existing cache files are replaced.

    Returns
    -------
    pathlib.Path
        `out_dir`.

    Raises
    ------
    FileNotFoundError
        If a CSV is missing.
    ValueError
        If the matrices disagree with each other or with SampleAnnot.csv,
        or hold non-numeric values (the message names the file).
    """
    src = Path(donor_folder)
    out = Path(out_dir)
    for name in ("MicroarrayExpression.csv", "PACall.csv") + SMALL_TABLES:
        if not (src / name).is_file():
            raise FileNotFoundError(
                f"{src / name} is missing; fetch the donor again (snakemake fetch)"
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / "cache.json").unlink(missing_ok=True)  # not complete until rewritten
    n_samples = len(pd.read_csv(src / "SampleAnnot.csv"))
    ids = _parse_matrix(src / "MicroarrayExpression.csv", out / "microarray.npy",
                        np.float64, n_samples, "microarray")
    pa_ids = _parse_matrix(src / "PACall.csv", out / "pacall.npy", np.uint8, n_samples, "pacall")
    if not np.array_equal(ids, pa_ids):
        for name in ("microarray.npy", "pacall.npy"):
            (out / name).unlink(missing_ok=True)
        raise ValueError(
            f"{src}: MicroarrayExpression.csv and PACall.csv list different probes "
            "(column 0); the donor folder mixes files from different downloads. "
            "Delete it and fetch it again"
        )
    _save_npy(out / "probe_ids.npy", ids)
    for name in SMALL_TABLES:
        _copy(src / name, out / name)
    meta = {
        "version": CACHE_VERSION,
        "n_probes": int(len(ids)),
        "n_samples": int(n_samples),
        "microarray_dtype": "float64",
        "pacall_dtype": "uint8",
        "source": {name: (src / name).stat().st_size
                   for name in ("MicroarrayExpression.csv", "PACall.csv") + SMALL_TABLES},
    }
    write_text(json.dumps(meta, indent=1) + "\n", out / "cache.json")
    return out


def is_cache_complete(folder) -> bool:
    """Whether ``folder`` holds a complete cache of the current version.

    Parameters
    ----------
    folder : str or os.PathLike
        A donor cache folder.

    Returns
    -------
    bool
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / "cache.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("version") == CACHE_VERSION and all(
        (folder / name).is_file() for name in CACHE_FILES)


def _read_npy_header(fh, path):
    """Shape, Fortran order and dtype from an open ``.npy`` file's header.

    Only numpy's public header readers (format versions 1.0 and 2.0, which
    are all that ``open_memmap`` writes for plain dtypes); the private
    ``_read_array_header`` moved in numpy 2.
    """
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(fh)
    raise ValueError(f"{path}: .npy format version {version} is not supported; "
                     "delete the cache folder to rebuild it")


def read_rows(path, rows, block_rows=4096) -> np.ndarray:
    """Rows `rows` of a 2-D ``.npy`` file, read block by block.

    Plain reads rather than a memory map: mapped pages count towards the
    process's resident memory (and its measured peak) although only a
    fraction of them is needed; here only the selected rows are kept.

    Parameters
    ----------
    path : str or os.PathLike
        A C-order 2-D ``.npy`` file.
    rows : array_like of int
        Row positions, in any order (duplicates allowed).
    block_rows : int, optional
        Rows read per block (bounds the scratch memory).

    Returns
    -------
    numpy.ndarray
        ``(len(rows), n_columns)``, the file's dtype.
    """
    rows = np.asarray(rows, dtype=np.int64)
    with open(path, "rb") as fh:
        shape, fortran, dtype = _read_npy_header(fh, path)
        if fortran or len(shape) != 2:
            raise ValueError(f"{path}: expected a C-order 2-D array")
        offset = fh.tell()
        n_rows, n_cols = shape
        if rows.size and (rows.min() < 0 or rows.max() >= n_rows):
            raise IndexError(f"{path}: row positions outside 0..{n_rows - 1}")
        out = np.empty((len(rows), n_cols), dtype)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        row_bytes = n_cols * dtype.itemsize
        # only the blocks that hold a wanted row are read
        for block in np.unique(sorted_rows // block_rows):
            lo = int(block) * block_rows
            hi = min(lo + block_rows, n_rows)
            fh.seek(offset + lo * row_bytes)
            data = np.fromfile(fh, dtype=dtype, count=(hi - lo) * n_cols).reshape(hi - lo, n_cols)
            a, b = np.searchsorted(sorted_rows, [lo, hi])
            out[order[a:b]] = data[sorted_rows[a:b] - lo]
    return out


def read_donor_cache(folder) -> dict:
    """Check and open one donor's cache (the matrices are not read yet).

    Parameters
    ----------
    folder : str or os.PathLike
        A donor cache folder written by :func:`build_donor_cache`.

    Returns
    -------
    dict
        Paths of ``microarray`` (float64, probes x samples) and ``pacall``
        (uint8) for :func:`read_rows`, ``probe_ids`` (int64 array), and the
        paths ``probes``,
        ``annotation`` and ``ontology`` of the small CSVs (as abagen's
        ``fetch_microarray`` returns them).

    Raises
    ------
    ValueError
        If the cache is incomplete, of another version, or inconsistent.
    """
    folder = Path(folder)
    if not is_cache_complete(folder):
        raise ValueError(
            f"{folder} is not a complete AHBA cache of version {CACHE_VERSION}; delete "
            "it and rebuild it (snakemake rebuilds it from the donor CSVs)"
        )
    meta = json.loads((folder / "cache.json").read_text())
    micro = np.load(folder / "microarray.npy", mmap_mode="r")
    pacall = np.load(folder / "pacall.npy", mmap_mode="r")
    ids = np.load(folder / "probe_ids.npy")
    shape = (meta["n_probes"], meta["n_samples"])
    if micro.shape != shape or pacall.shape != shape or ids.shape != shape[:1] \
            or micro.dtype != np.float64 or pacall.dtype != np.uint8:
        raise ValueError(
            f"{folder}: cache files disagree with cache.json (expected {shape}); delete "
            "the folder and rebuild it"
        )
    del micro, pacall  # shapes checked; the data are read with read_rows
    return {
        "microarray": str(folder / "microarray.npy"),
        "pacall": str(folder / "pacall.npy"),
        "probe_ids": ids,
        "probes": str(folder / "Probes.csv"),
        "annotation": str(folder / "SampleAnnot.csv"),
        "ontology": str(folder / "Ontology.csv"),
    }
