"""Tidy TSV input/output shared by every stage.

Outputs are written to a temporary file beside the target and renamed into
place, so an interrupted job never leaves a half-written table that a later
run could mistake for a finished one.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pandas as pd


@contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    Parameters
    ----------
    path : str or os.PathLike
        Final destination.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    # mkstemp makes the file private (0600); outputs get the usual umask mode
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_tsv(frame, path, *, float_format="%.10g", index=False):
    """Write a DataFrame as a tab-separated table, atomically.

    Parameters
    ----------
    frame : pandas.DataFrame
        Table to write.
    path : str or os.PathLike
        Destination; ``.gz`` compresses.
    float_format : str
        printf format for floats (10 significant digits keeps files
        byte-stable across runs and platforms without losing precision that
        matters for r or p).
    index : bool
        Write the index as the first column.
    """
    path = Path(path)
    compression = "gzip" if path.suffix == ".gz" else None
    with atomic_path(path) as tmp:
        if compression:
            # no file name and a fixed mtime in the gzip header keep the
            # output byte-identical between runs (pandas would store the
            # temporary file's name)
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                      mtime=0) as gz, \
                    io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                frame.to_csv(text, sep="\t", index=index, float_format=float_format)
        else:
            frame.to_csv(tmp, sep="\t", index=index, float_format=float_format)


def write_text(text, path):
    """Write text to `path` atomically; return the path."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def read_tsv(path, **kwargs):
    """Read a TSV written by :func:`write_tsv`."""
    return pd.read_csv(path, sep="\t", **kwargs)


def log_to_file(path):
    """Send this process's logging and warnings to a rule's log file.

    Parameters
    ----------
    path : str or os.PathLike
        The rule's ``log`` file.
    """
    handle = open(path, "w")
    sys.stderr = handle
    logging.basicConfig(stream=handle, level=logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True)
    logging.captureWarnings(True)
    return handle
