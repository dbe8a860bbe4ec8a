"""What a file is, from its bytes: readable, compressed, text, NIfTI, workbook."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from .problems import _exc

# file signatures (magic bytes)
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = b"PK\x03\x04"  # .xlsx and .ods workbooks are zip archives
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls workbooks
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


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

