"""Writing the demo's files in the AHBA CSV layout (part of :mod:`itx.demo`).

Every file is written atomically (:func:`itx.tables.atomic_path`: a
temporary file in the same folder, then ``os.replace``), so a killed run
leaves either the old file or the complete new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .demo_common import _VALUE_RANGE
from .tables import atomic_path


def _write_bytes(path, data: bytes) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def _write_frame(path, df: pd.DataFrame, **kwargs) -> Path:
    text = df.to_csv(index=False, lineterminator="\n", **kwargs)
    return _write_bytes(path, text.encode("utf-8"))


_ID_WIDTH = 7  # demo probe ids are 1,000,000 + index: always seven digits


def _ascii_rows(ids: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Assemble CSV rows ``<id>,<cell>,...,<cell>\\n`` as one uint8 array.

    `cells` is (rows, cols, width) of ASCII codes; every cell has the same
    width, so the whole block is built by array assignment, no per-value
    string formatting (``np.savetxt`` managed ~2.5 M values/s, too slow for
    the full-size demo).
    """
    n_row, n_col, width = cells.shape
    out = np.empty((n_row, _ID_WIDTH + 1 + n_col * (width + 1)), np.uint8)
    digits = ids[:, None] // 10 ** np.arange(_ID_WIDTH - 1, -1, -1) % 10
    out[:, :_ID_WIDTH] = digits + ord("0")
    out[:, _ID_WIDTH] = ord(",")
    body = np.empty((n_row, n_col, width + 1), np.uint8)
    body[:, :, :width] = cells
    body[:, :, width] = ord(",")
    body[:, -1, width] = ord("\n")
    out[:, _ID_WIDTH + 1:] = body.reshape(n_row, -1)
    return out


def _format_pacall(block: np.ndarray) -> np.ndarray:
    """0/1 calls -> one ASCII digit per cell."""
    return (block.astype(np.uint8) + ord("0"))[:, :, None]


def _format_expression(block: np.ndarray, digits: int = 4) -> np.ndarray:
    """Intensities in [1, 16) -> `digits` significant digits, fixed width.

    Values below 10 print as ``d.ddd`` and values from 10 as ``dd.dd``
    (for ``digits=4``): a fixed number of significant digits in a fixed width
    (``digits + 1`` characters), which is what lets :func:`_ascii_rows`
    vectorise the CSV. (Trailing zeros are kept, e.g. ``7.250``; any CSV
    reader parses that the same as ``7.25``.) ``digits=15`` mimics the real
    AHBA files, whose values print with about 15 significant digits, so that
    parse times measured on generated data are realistic.
    """
    lo, hi = _VALUE_RANGE
    # compared as Python floats: under numpy 2's promotion rules (NEP 50) a
    # float32 max would be compared in float32, where 15.99 rounds to itself
    if block.size and (float(block.min()) < lo or float(block.max()) >= hi):
        raise AssertionError("expression outside the printable range")
    if not 2 <= digits <= 15:  # 16 digits no longer fit a float64 exactly
        raise ValueError(f"digits must be between 2 and 15, got {digits!r}")
    values = block.astype(np.float64)
    q_small = np.rint(values * 10.0 ** (digits - 1)).astype(np.int64)
    # rounding can carry 9.9999 up to 10.000: such values take the dd.d form
    small = q_small < 10 ** digits
    q = np.where(small, q_small,
                 np.rint(values * 10.0 ** (digits - 2)).astype(np.int64))
    d = (q[..., None] // 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
         % 10 + ord("0")).astype(np.uint8)
    cells = np.empty(block.shape + (digits + 1,), np.uint8)
    dot = np.uint8(ord("."))
    cells[..., 0] = d[..., 0]
    cells[..., 1] = np.where(small, dot, d[..., 1])
    cells[..., 2] = np.where(small, d[..., 1], dot)
    cells[..., 3:] = d[..., 2:]
    return cells


def _write_matrix(path, ids: np.ndarray, values: np.ndarray,
                  formatter: Callable, chunk: int = 4096) -> Path:
    """Write an AHBA probe x sample matrix: no header, probe id then values.

    Rows are formatted in chunks to bound memory on full-size donors.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.min() < 10 ** (_ID_WIDTH - 1) or ids.max() >= 10 ** _ID_WIDTH:
        raise AssertionError("probe ids must have exactly seven digits")

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        for start in range(0, len(ids), chunk):
            sl = slice(start, start + chunk)
            fh.write(_ascii_rows(ids[sl], formatter(values[sl])).tobytes())
    return path


def _write_gene_matrix(path, genes: np.ndarray, values: np.ndarray,
                       fmt: str) -> Path:
    """Gene x sample matrix as AHBA prints it: no header, symbol in column 0."""
    frame = pd.DataFrame(values, index=genes)
    text = frame.to_csv(header=False, lineterminator="\n", float_format=fmt)
    return _write_bytes(path, text.encode("utf-8"))


def _same_mtime(paths) -> None:
    """Give the files of a donor one modification time, the latest of them.

    The workflow hard-links demo donors into the AHBA folder, so each output
    shares its input's timestamp; Snakemake refuses a job whose output is
    older than one of its inputs, which files written a few milliseconds
    apart would otherwise be (a spurious "clock skew" error).
    """
    paths = [Path(p) for p in paths if Path(p).is_file()]
    if paths:
        latest = max(p.stat().st_mtime_ns for p in paths)
        for p in paths:
            os.utime(p, ns=(latest, latest))
