"""Download, verify and unpack Allen Human Brain Atlas (AHBA) donor archives.

abagen can download the AHBA itself, but it does not check what it gets: a
truncated 400 MB zip only surfaces later as "unknown archive file format", and
an interrupted extraction leaves a half-filled donor folder that abagen then
treats as present. This module does the download itself and only ever puts a
*complete* donor folder where abagen looks for it::

    <data_dir>/microarray/normalized_microarray_donor{id}/
        MicroarrayExpression.csv  PACall.csv  Probes.csv
        SampleAnnot.csv  Ontology.csv

Every step writes to a temporary name beside its destination and renames into
place only when the result has been verified, so an interrupted run leaves
either nothing or a finished result. Each donor is handled under an
exclusive lock (``fcntl.flock`` on a hidden ``.lock`` file, removed on
release); after a hard kill (SIGKILL, power loss) the next run, holding the
lock, resumes the hidden partial download (``.<zip>.part``, HTTP Range with
If-Range) or deletes it, and deletes any other leftover temporary file or
folder of that donor.

An optional lock file (JSON, e.g. ``resources/ahba/allen/ahba.lock.json``)
records the size and SHA-256 of each archive the first time it is fetched
and verified; later fetches must match it (see :func:`fetch_donor`).

The donor data can come from the Allen API (default), from a mirror URL
template, or from a local folder holding zips or unpacked donors
(see :func:`fetch_donor`).

Two datasets are handled the same way: the microarray (all six donors, the
default) and the RNA-seq of the two donors that have it (9861 and 10021),
which abagen's ``probe_selection='rnaseq'`` reads from::

    <data_dir>/rnaseq/rnaseq_donor{id}/
        Genes.csv  Ontology.csv  RNAseqCounts.csv  RNAseqTPM.csv  SampleAnnot.csv

(``fetch_donor(..., dataset="rnaseq")`` or :func:`fetch_rnaseq`).
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import logging
import os
import shutil
import secrets
import stat
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Mapping, Optional, Union

import requests

__all__ = [
    "AHBA_URL",
    "DONORS",
    "DONOR_IDS",
    "EXPECTED_FILES",
    "Donor",
    "DownloadError",
    "DonorArchiveError",
    "get_donor",
    "donor_dir",
    "is_donor_complete",
    "download",
    "verify_donor_zip",
    "extract_donor_zip",
    "fetch_donor",
    "read_lock_file",
    "ChecksumError",
    "DATASETS",
    "RNASEQ_FILES",
    "RNASEQ_DONOR_IDS",
    "dataset_files",
    "fetch_rnaseq",
]

log = logging.getLogger(__name__)

#: Official download URL; ``{file_id}`` is the donor's well-known-file id.
AHBA_URL = "https://human.brain-map.org/api/v2/well_known_file_download/{file_id}"

#: The five CSVs abagen reads from each donor folder.
EXPECTED_FILES = (
    "MicroarrayExpression.csv",
    "PACall.csv",
    "Probes.csv",
    "SampleAnnot.csv",
    "Ontology.csv",
)

#: The five CSVs abagen's RNA-seq reader expects in each RNA-seq donor folder
#: (abagen 0.1.3 ``datasets.fetch_rnaseq``; its ``rnaseq`` probe selection
#: reads RNAseqTPM.csv and SampleAnnot.csv, the rest must merely exist).
RNASEQ_FILES = (
    "Genes.csv",
    "Ontology.csv",
    "RNAseqCounts.csv",
    "RNAseqTPM.csv",
    "SampleAnnot.csv",
)

#: The AHBA datasets this module fetches: dataset name -> its member CSVs.
DATASETS: Mapping[str, tuple] = MappingProxyType({
    "microarray": EXPECTED_FILES,
    "rnaseq": RNASEQ_FILES,
})

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough for progress


@dataclass(frozen=True)
class Donor:
    """One AHBA donor and its microarray archive.

    Attributes
    ----------
    id : str
        Donor id as abagen uses it (e.g. ``"9861"``).
    uid : str
        Allen donor UID (e.g. ``"H0351.2001"``).
    file_id : int
        Allen well-known-file id of the normalized microarray zip.
    size : int or None
        Size of the official zip in bytes, where known; used to reject a
        wrong or truncated download before it is unpacked.
    rnaseq_file_id : int or None
        Allen well-known-file id of the RNA-seq zip (only donors 9861 and
        10021 were sequenced).
    rnaseq_size : int or None
        Size of the official RNA-seq zip in bytes, where known.
    """

    id: str
    uid: str
    file_id: int
    size: Optional[int] = None
    rnaseq_file_id: Optional[int] = None
    rnaseq_size: Optional[int] = None

    @property
    def folder_name(self) -> str:
        """Name of the donor folder abagen expects."""
        return f"normalized_microarray_donor{self.id}"

    @property
    def has_rnaseq(self) -> bool:
        """Whether the Allen Institute published RNA-seq for this donor."""
        return self.rnaseq_file_id is not None


#: The six AHBA donors, keyed by donor id. RNA-seq file ids as in abagen
#: 0.1.3 (``datasets.fetch_rnaseq``); the RNA-seq zip sizes are not known
#: here, so they are checked only against the lock file (first fetch records).
DONORS: Mapping[str, Donor] = MappingProxyType({
    d.id: d
    for d in (
        Donor("9861", "H0351.2001", 178238387, 425_988_059, rnaseq_file_id=278447594),
        Donor("10021", "H0351.2002", 178238373, 400_957_002, rnaseq_file_id=278448166),
        Donor("12876", "H0351.1009", 178238359),
        Donor("14380", "H0351.1012", 178238316),
        Donor("15496", "H0351.1015", 178238266),
        Donor("15697", "H0351.1016", 178236545),
    )
})

#: Donor ids in the conventional order.
DONOR_IDS = tuple(DONORS)

#: The donors with RNA-seq data.
RNASEQ_DONOR_IDS = tuple(d.id for d in DONORS.values() if d.has_rnaseq)


class DownloadError(OSError):
    """A download failed for good (after retries, or with a permanent error)."""


class DonorArchiveError(ValueError):
    """A donor zip is not a usable AHBA microarray archive."""


class ChecksumError(DownloadError):
    """A complete download has the wrong size or SHA-256."""


# ---------------------------------------------------------------------------
# donors and folders
# ---------------------------------------------------------------------------


def get_donor(donor: Union[str, int, Donor]) -> Donor:
    """Look up a donor by id (``9861`` or ``"9861"``) or UID (``"H0351.2001"``).

    Parameters
    ----------
    donor : str, int or Donor
        Donor id, UID or an existing :class:`Donor`.

    Returns
    -------
    Donor

    Raises
    ------
    ValueError
        If the donor is not one of the six AHBA donors.
    """
    if isinstance(donor, Donor):
        return donor
    key = str(donor).strip()
    if key in DONORS:
        return DONORS[key]
    for d in DONORS.values():
        if d.uid.lower() == key.lower():
            return d
    raise ValueError(
        f"unknown AHBA donor {donor!r}; known donor ids are "
        f"{', '.join(DONOR_IDS)} (or UIDs {', '.join(d.uid for d in DONORS.values())})"
    )


def dataset_files(dataset: str = "microarray") -> tuple:
    """The CSVs abagen reads from each donor folder of `dataset`.

    Parameters
    ----------
    dataset : {'microarray', 'rnaseq'}
        AHBA dataset.

    Returns
    -------
    tuple of str
        :data:`EXPECTED_FILES` or :data:`RNASEQ_FILES`.

    Raises
    ------
    ValueError
        If `dataset` is not one of :data:`DATASETS`.
    """
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown AHBA dataset {dataset!r}; expected one of {', '.join(DATASETS)}"
        ) from None


@dataclass(frozen=True)
class _Archive:
    """One donor's archive of one dataset: everything that differs by dataset."""

    donor: Donor
    dataset: str

    @property
    def id(self) -> str:
        return self.donor.id

    @property
    def uid(self) -> str:
        return self.donor.uid

    @property
    def files(self) -> tuple:
        return DATASETS[self.dataset]

    @property
    def subdir(self) -> str:
        # abagen's dataset folder names equal the dataset names
        return self.dataset

    @property
    def folder_name(self) -> str:
        if self.dataset == "rnaseq":
            return f"rnaseq_donor{self.id}"
        return self.donor.folder_name

    @property
    def file_id(self) -> int:
        return self.donor.rnaseq_file_id if self.dataset == "rnaseq" else self.donor.file_id

    @property
    def size(self) -> Optional[int]:
        return self.donor.rnaseq_size if self.dataset == "rnaseq" else self.donor.size

    @property
    def lock_key(self) -> str:
        return f"{self.dataset}/{self.id}"

    @property
    def label(self) -> str:
        """How messages name it (``AHBA donor 9861``, ``AHBA RNA-seq donor 9861``)."""
        return f"AHBA RNA-seq donor {self.id}" if self.dataset == "rnaseq" else f"AHBA donor {self.id}"


def _archive(donor: Union[str, int, Donor], dataset: str = "microarray") -> _Archive:
    """The archive of `donor` in `dataset`; a clear error if it does not exist."""
    dataset_files(dataset)  # validates the name
    d = get_donor(donor)
    if dataset == "rnaseq" and not d.has_rnaseq:
        raise ValueError(
            f"AHBA donor {d.id} ({d.uid}) has no RNA-seq data: only donors "
            f"{' and '.join(RNASEQ_DONOR_IDS)} were sequenced. Fetch RNA-seq for those "
            "donors only (ahba.donors must include 9861 and/or 10021 when ahba.rnaseq is "
            "true or expression.probe_selection is 'rnaseq')"
        )
    return _Archive(d, dataset)


def donor_dir(data_dir: PathLike, donor: Union[str, int, Donor],
              dataset: str = "microarray") -> Path:
    """Return the donor folder abagen reads for `dataset`.

    ``<data_dir>/microarray/normalized_microarray_donor{id}`` or
    ``<data_dir>/rnaseq/rnaseq_donor{id}``.

    Parameters
    ----------
    data_dir : path-like
        abagen data directory.
    donor : str, int or Donor
        Donor id or UID.
    dataset : {'microarray', 'rnaseq'}, default 'microarray'
        AHBA dataset.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    ValueError
        Unknown donor or dataset, or RNA-seq for a donor that has none.
    """
    a = _archive(donor, dataset)
    return Path(data_dir) / a.subdir / a.folder_name


def _missing_files(folder: Path, files: tuple = EXPECTED_FILES) -> list:
    """Names of expected files that are absent, not regular files, or empty."""
    missing = []
    for name in files:
        p = folder / name
        try:
            st = p.stat()
        except OSError:
            missing.append(name)
            continue
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            missing.append(name)
    return missing


def is_donor_complete(folder: PathLike, dataset: str = "microarray") -> bool:
    """Whether ``folder`` holds the five expected CSVs, each non-empty.

    Parameters
    ----------
    folder : path-like
        A donor folder.
    dataset : {'microarray', 'rnaseq'}, default 'microarray'
        Which CSVs to expect (:func:`dataset_files`).

    Returns
    -------
    bool
    """
    files = dataset_files(dataset)
    folder = Path(folder)
    return folder.is_dir() and not _missing_files(folder, files)


# ---------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------


def _temp_name(dest: Path, suffix: str = ".part") -> Path:
    # Hidden and unique per call: parallel jobs (or a leftover from a killed
    # run) never share a temp file, and abagen never mistakes it for data.
    return dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


@contextlib.contextmanager
def _exclusive(lock: Path):
    """Hold an exclusive ``flock`` on `lock`, deleting the file on release.

    Waiting processes re-check after locking that the file they locked is
    still the one at `lock` (it may have been deleted and re-created by the
    previous holder), so deleting it on release is safe and no lock files
    pile up.
    """
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            mine = os.fstat(fd)
            try:
                now = os.stat(lock)
            except FileNotFoundError:
                now = None
        except BaseException:
            os.close(fd)
            raise
        if now is not None and (now.st_ino, now.st_dev) == (mine.st_ino, mine.st_dev):
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            os.unlink(lock)
        except FileNotFoundError:
            pass
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # pragma: no cover


class _Progress:
    """A single self-overwriting progress line on stderr, throttled."""

    def __init__(self, label: str, enabled: bool):
        self.label = label
        self.enabled = enabled
        self._last = 0.0
        self._shown = False

    def update(self, done: int, total: Optional[int], force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        if total:
            pct = 100 * done / total
            msg = f"{self.label}: {_fmt_bytes(done)} / {_fmt_bytes(total)} ({pct:.0f}%)"
        else:
            msg = f"{self.label}: {_fmt_bytes(done)}"
        sys.stderr.write("\r" + msg.ljust(70))
        sys.stderr.flush()
        self._shown = True

    def note(self, msg: str) -> None:
        if not self.enabled:
            return
        self.end()
        sys.stderr.write(f"{self.label}: {msg}\n")
        sys.stderr.flush()

    def end(self) -> None:
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()
            self._shown = False


class _Retry(Exception):
    """Internal: this attempt failed in a way another attempt may fix."""


def _parse_content_range(value: Optional[str]):
    """Parse ``bytes start-end/total`` into (start, total-or-None), or None."""
    if not value:
        return None
    try:
        unit, rng = value.strip().split(" ", 1)
        span, total = rng.split("/", 1)
        start = int(span.split("-", 1)[0])
        return start, (None if total.strip() == "*" else int(total))
    except ValueError:
        return None


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def download(
    url: str,
    dest: PathLike,
    *,
    expected_size: Optional[int] = None,
    sha256: Optional[str] = None,
    retries: int = 3,
    timeout: float = 60,
    progress: bool = False,
    backoff: float = 2.0,
    session: Optional[requests.Session] = None,
) -> Path:
    """Download ``url`` to ``dest`` safely: retry, resume, verify, then rename.

    The body is streamed to a hidden temporary file beside ``dest``. After a
    connection error, timeout, truncated body or HTTP 5xx/408/429 the download
    is retried with exponential backoff; when some bytes have arrived it asks
    for the rest with an HTTP ``Range`` request (guarded by ``If-Range`` so a
    file that changed on the server is not spliced), and starts over if the
    server answers ``200`` instead of ``206``. Only a complete, verified file
    is renamed to ``dest``.

    Parameters
    ----------
    url : str
        http(s) URL to fetch.
    dest : path-like
        Final file path; its folder is created if needed. An existing file
        is replaced only after the new one has been verified.
    expected_size : int, optional
        Required size in bytes. A server announcing a different size fails
        at once (no point fetching hundreds of MB of the wrong file).
    sha256 : str, optional
        Required SHA-256 hex digest of the complete file.
    retries : int, default 3
        Further attempts after the first (so ``retries + 1`` at most).
    timeout : float, default 60
        Seconds to wait to connect and between received bytes (not a limit
        on the whole transfer).
    progress : bool, default False
        Show a progress line on stderr.
    backoff : float, default 2.0
        Wait ``backoff * 2**k`` seconds before retry ``k`` (0-based); tests
        use 0.
    session : requests.Session, optional
        Session to use (connection reuse, proxies, test doubles).

    Returns
    -------
    pathlib.Path
        ``dest``.

    Raises
    ------
    DownloadError
        When the file could not be fetched completely, the server answered
        with a permanent HTTP error (e.g. 404), or the size/checksum does not
        match. The message names the URL and the cause; no temporary file is
        left behind.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.with_name(f".{dest.name}.lock")):
        return _download_locked(url, dest, expected_size, sha256, retries, timeout,
                                progress, backoff, session)


def _download_locked(url, dest: Path, expected_size, sha256, retries, timeout, progress,
                     backoff, session) -> Path:
    """:func:`download` while holding the lock of `dest`."""
    # One fixed temp name per destination (the lock makes it exclusive): a
    # partial file left by a killed run is found again, resumed or deleted.
    tmp = dest.with_name(f".{dest.name}.part")
    meta = dest.with_name(f".{dest.name}.part.json")
    for stale in dest.parent.glob(f".{dest.name}.*.part"):
        _remove(stale)  # random-named temp files of older versions of this module
    own_session = session is None
    sess = session or requests.Session()
    bar = _Progress(dest.name, progress)
    sha256 = sha256.lower().strip() if sha256 else None
    attempts = max(0, int(retries)) + 1
    # ETag / Last-Modified of the partial body, kept across attempts so a
    # resume can send If-Range (the server then restarts if the file changed).
    state = {"validator": None, "meta": meta, "url": url}
    last_error = "no attempt made"
    try:
        previous = None
        if tmp.is_file():
            try:
                previous = json.loads(meta.read_text())
            except (OSError, ValueError):
                previous = None
        if previous and previous.get("url") == url and previous.get("validator"):
            # left by a killed run: resume, guarded by If-Range with the
            # validator of those bytes (the server restarts if the file changed)
            state["validator"] = previous["validator"]
            log.info("resuming %s from %d bytes left by an earlier run", url, tmp.stat().st_size)
        else:
            # Create (or empty) the temp file so "append" below always has a target.
            open(tmp, "wb").close()
            meta.unlink(missing_ok=True)
        for attempt in range(attempts):
            if attempt:
                delay = backoff * 2 ** (attempt - 1)
                bar.note(f"retry {attempt}/{attempts - 1} in {delay:.0f} s ({last_error})")
                log.info("retrying %s in %.1f s: %s", url, delay, last_error)
                if delay > 0:
                    time.sleep(delay)
            try:
                _attempt(sess, url, tmp, expected_size, timeout, bar, state)
            except _Retry as exc:
                last_error = str(exc)
                continue
            # Complete transfer: verify before it may take the final name.
            size = tmp.stat().st_size
            if expected_size is not None and size != expected_size:
                raise ChecksumError(
                    f"download of {url} has {size} bytes, expected {expected_size}; "
                    "the server or mirror serves a different file"
                )
            if sha256 is not None:
                got = _sha256_file(tmp)
                if got != sha256:
                    raise ChecksumError(
                        f"download of {url} has SHA-256 {got}, expected {sha256}; "
                        "the server or mirror serves a different or corrupted file"
                    )
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())  # data on disk before the name says "done"
            os.replace(tmp, dest)
            meta.unlink(missing_ok=True)
            bar.end()
            return dest
        raise DownloadError(
            f"could not download {url} after {attempts} attempt(s): {last_error}"
        )
    except BaseException:
        # Includes KeyboardInterrupt: never leave a partial file behind.
        bar.end()
        tmp.unlink(missing_ok=True)
        meta.unlink(missing_ok=True)
        raise
    finally:
        if own_session:
            sess.close()


def _attempt(sess, url, tmp: Path, expected_size, timeout, bar, state: dict) -> None:
    """One HTTP request writing or appending the body to ``tmp``.

    ``state["validator"]`` is read for If-Range and updated from the response.

    Raises ``_Retry`` for transient failures and ``DownloadError`` for
    permanent ones.
    """
    have = tmp.stat().st_size
    # identity: byte counts must match Content-Length and the file on disk.
    headers = {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
        if state["validator"]:
            headers["If-Range"] = state["validator"]
    try:
        resp = sess.get(url, stream=True, timeout=timeout, headers=headers,
                        allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retry(f"connection failed: {exc}") from exc
    except requests.RequestException as exc:
        raise DownloadError(f"could not request {url}: {exc}") from exc

    with resp:
        status = resp.status_code
        if status in (408, 429) or status >= 500:
            raise _Retry(f"HTTP {status} {resp.reason}")
        if status == 416 and have:
            # Our partial file does not fit the server's view; start over.
            tmp.write_bytes(b"")
            raise _Retry("server refused the resume range (HTTP 416); restarting")
        if status not in (200, 206):
            raise DownloadError(
                f"could not download {url}: HTTP {status} {resp.reason}"
            )

        total = None
        length = resp.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if status == 206:
            cr = _parse_content_range(resp.headers.get("Content-Range"))
            if not have or cr is None or cr[0] != have:
                # A range we did not ask for: safest is to start over.
                tmp.write_bytes(b"")
                raise _Retry("server sent an unexpected byte range; restarting")
            total = cr[1]
            if total is None and length is not None:
                total = have + length
            mode = "ab"
        else:
            if have:
                log.info("server ignored the Range request for %s; restarting", url)
                bar.note("server does not support resume; restarting from 0")
            have = 0
            total = length
            mode = "wb"

        if expected_size is not None and total is not None and total != expected_size:
            # not worth a second fetch: the server says outright it is another file
            raise DownloadError(
                f"{url} is {total} bytes according to the server, expected "
                f"{expected_size}; the server or mirror serves a different file"
            )

        new_validator = resp.headers.get("ETag") or resp.headers.get("Last-Modified")
        if new_validator and new_validator.startswith("W/"):
            new_validator = None  # weak ETags are not allowed in If-Range
        if status == 200 or new_validator:
            # A 200 starts a new body: an old validator no longer describes it.
            state["validator"] = new_validator
        if "meta" in state:
            # what a later run needs to resume these bytes after a hard kill
            if state["validator"]:
                state["meta"].write_text(json.dumps({"url": state["url"],
                                                     "validator": state["validator"]}))
            else:
                state["meta"].unlink(missing_ok=True)

        # With a Content-Encoding the body we store is decoded, so the byte
        # count cannot be checked against Content-Length.
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        # Let a short body end normally instead of raising inside urllib3:
        # that way the bytes that did arrive are kept for the resume, and
        # the length is checked below against the announced total.
        if hasattr(resp.raw, "enforce_content_length"):
            resp.raw.enforce_content_length = False
        done = have
        try:
            with open(tmp, mode) as fh:
                for block in resp.iter_content(_CHUNK):
                    fh.write(block)
                    done += len(block)
                    bar.update(done, total)
        except (requests.ConnectionError, requests.Timeout,
                requests.exceptions.ChunkedEncodingError) as exc:
            bar.update(done, total, force=True)
            raise _Retry(
                f"connection broken after {done} of {'?' if total is None else total} "
                f"bytes: {exc}"
            ) from exc
        bar.update(done, total, force=True)
        if not encoded and total is not None and done != total:
            raise _Retry(f"received {done} of {total} bytes (truncated)")


# ---------------------------------------------------------------------------
# zips
# ---------------------------------------------------------------------------


def _unsafe_reason(info: zipfile.ZipInfo) -> Optional[str]:
    """Why a member must never be extracted, or None if its name is safe."""
    name = info.filename
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    parts = name.replace("\\", "/").split("/")
    if ".." in parts:
        return "'..' in path (path traversal)"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symbolic link"
    return None


def verify_donor_zip(path: PathLike, dataset: str = "microarray") -> dict:
    """Check that ``path`` is a zip holding the five AHBA donor CSVs.

    The members may be at the top level or all inside one folder. Any
    member with an absolute path, a ``..`` component or a symlink type
    makes the whole archive suspect, so it is rejected even if that member
    is not one we would extract. Member contents (CRCs) are checked while
    extracting rather than here, because reading ~4 GB twice is slow.

    Parameters
    ----------
    path : path-like
        The zip file.
    dataset : {'microarray', 'rnaseq'}, default 'microarray'
        Which five CSVs it must hold (:func:`dataset_files`); other members
        (e.g. the ``Contents.txt`` of the Allen zips) are ignored.

    Returns
    -------
    dict
        Expected file name -> member name inside the zip.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DonorArchiveError
        If it is not a readable zip (e.g. truncated download or HTML error
        page), has unsafe members, or lacks expected members.
    """
    files = dataset_files(dataset)
    kind = "RNA-seq donor" if dataset == "rnaseq" else "donor"
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} archive {path} does not exist")
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise DonorArchiveError(
            f"{path} is not a valid zip archive ({exc}); it may be truncated or an "
            "error page saved as a zip. Delete it and fetch it again"
        ) from exc

    for info in infos:
        reason = _unsafe_reason(info)
        if reason:
            raise DonorArchiveError(
                f"{path} contains an unsafe member {info.filename!r} ({reason}); refusing it"
            )

    found: dict = {}
    for info in infos:
        if info.is_dir():
            continue
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if len(parts) > 2 or parts[-1] not in files:
            continue
        found.setdefault(parts[-1], []).append((parts[:-1], info))

    dupes = sorted(k for k, v in found.items() if len(v) > 1)
    if dupes:
        raise DonorArchiveError(
            f"{path} holds more than one copy of {', '.join(dupes)}; cannot tell which to use"
        )
    missing = [n for n in files if n not in found]
    if missing:
        raise DonorArchiveError(
            f"{path} is not an AHBA {kind} archive: missing {', '.join(missing)} "
            f"(expected {', '.join(files)} at the top level or in one folder)"
        )
    folders = {v[0][0] for v in found.values()}
    if len(folders) > 1:
        raise DonorArchiveError(
            f"{path} has the donor files spread over several folders "
            f"({', '.join('/'.join(f) or '<top level>' for f in sorted(folders))})"
        )
    empty = [n for n, v in found.items() if v[0][1].file_size == 0]
    if empty:
        raise DonorArchiveError(f"{path} has empty member(s): {', '.join(sorted(empty))}")
    return {name: v[0][1].filename for name, v in found.items()}


def _install_dir(tmpdir: Path, target: Path) -> None:
    """Rename a finished temp folder to ``target``, replacing an old one.

    A folder rename is atomic, but POSIX will not rename onto a non-empty
    folder, so an existing (incomplete or stale) ``target`` is first moved
    aside and removed afterwards; abagen never sees a half-filled folder.
    """
    try:
        os.rename(tmpdir, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.exists():
            raise
    stale = _temp_name(target, ".old")
    os.rename(target, stale)
    log.warning("replaced incomplete donor folder %s", target)
    os.rename(tmpdir, target)
    shutil.rmtree(stale, ignore_errors=True)


def extract_donor_zip(zip_path: PathLike, donor_dir: PathLike,
                      dataset: str = "microarray") -> Path:
    """Extract the five donor CSVs of a verified zip into ``donor_dir``.

    Only the five expected members are read, and they are written under
    their fixed names (never under the member path), into a hidden temp
    folder beside ``donor_dir`` that is renamed into place once every file
    has been written and CRC-checked. On any error the temp folder is
    removed, so no partial donor folder is ever left.

    Parameters
    ----------
    zip_path : path-like
        Donor zip (checked with :func:`verify_donor_zip` first).
    donor_dir : path-like
        Destination folder, e.g.
        ``<data_dir>/microarray/normalized_microarray_donor9861``. An
        existing folder there is replaced.
    dataset : {'microarray', 'rnaseq'}, default 'microarray'
        Which five CSVs to extract (:func:`dataset_files`).

    Returns
    -------
    pathlib.Path
        ``donor_dir``.

    Raises
    ------
    DonorArchiveError
        If the archive fails verification or a member is corrupt (bad CRC,
        wrong size).
    """
    zip_path = Path(zip_path)
    target = Path(donor_dir)
    members = verify_donor_zip(zip_path, dataset)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = _temp_name(target)
    tmpdir.mkdir()
    try:
        with zipfile.ZipFile(zip_path) as zf:
            for name in dataset_files(dataset):
                info = zf.getinfo(members[name])
                out = tmpdir / name
                try:
                    with zf.open(info) as src, open(out, "xb") as dst:
                        # ZipExtFile checks the CRC when the member is read to the end.
                        shutil.copyfileobj(src, dst, _CHUNK)
                except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                    raise DonorArchiveError(
                        f"{zip_path}: member {info.filename!r} is corrupt ({exc})"
                    ) from exc
                if out.stat().st_size != info.file_size:
                    raise DonorArchiveError(
                        f"{zip_path}: member {info.filename!r} extracted to "
                        f"{out.stat().st_size} bytes, expected {info.file_size}"
                    )
        _install_dir(tmpdir, target)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise
    return target


# ---------------------------------------------------------------------------
# fetch_donor
# ---------------------------------------------------------------------------


def _link_or_copy_dir(src: Path, target: Path, files: tuple = EXPECTED_FILES) -> None:
    """Hard-link the five files of ``src`` into a new ``target`` folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = _temp_name(target)
    tmpdir.mkdir()
    try:
        for name in files:
            try:
                # A hard link costs no space for multi-GB CSVs; abagen only reads.
                os.link(src / name, tmpdir / name)
            except OSError:
                # Across filesystems (EXDEV) or where links are not allowed.
                shutil.copy2(src / name, tmpdir / name)
        _install_dir(tmpdir, target)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise


def _is_url(source: str) -> bool:
    return source.lower().startswith(("http://", "https://"))


def _mirror_url(template: str, d: Union[Donor, _Archive]) -> str:
    a = d if isinstance(d, _Archive) else _Archive(d, "microarray")
    if not any(k in template for k in ("{file_id}", "{donor}", "{uid}", "{folder}", "{dataset}")):
        raise ValueError(
            f"mirror URL {template!r} has no placeholder, so every donor would get the "
            "same file; set ahba.source to a template such as "
            "'https://mirror.example/ahba/{file_id}' or "
            "'.../normalized_microarray_donor{donor}.zip'"
        )
    if a.dataset != "microarray" and not any(
            k in template for k in ("{file_id}", "{folder}", "{dataset}")):
        # {donor}/{uid} alone name the donor, not the dataset: the RNA-seq
        # fetch would get the (400 MB) microarray zip of the same donor
        raise ValueError(
            f"mirror URL template {template!r} gives {a.label} the same URL as its "
            "microarray archive (it only has {donor}/{uid}); use {file_id} (the Allen file "
            "id of each archive), {folder} (normalized_microarray_donor9861 / "
            "rnaseq_donor9861) or {dataset} (microarray / rnaseq) in ahba.source"
        )
    try:
        return template.format(file_id=a.file_id, donor=a.id, uid=a.uid,
                               folder=a.folder_name, dataset=a.dataset)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"mirror URL template {template!r} is invalid ({exc!r}); the allowed "
            "placeholders are {file_id}, {donor}, {uid}, {folder} and {dataset}"
        ) from exc


def fetch_donor(
    donor: Union[str, int, Donor],
    data_dir: PathLike,
    source: Optional[PathLike] = None,
    *,
    retries: int = 3,
    timeout: float = 60,
    progress: bool = False,
    backoff: float = 2.0,
    keep_zip: bool = False,
    session: Optional[requests.Session] = None,
    lock_file: Optional[PathLike] = None,
    dataset: str = "microarray",
) -> Path:
    """Make sure one complete AHBA donor folder exists under ``data_dir``.

    If ``<data_dir>/microarray/normalized_microarray_donor{id}/`` already
    holds the five non-empty CSVs it is returned at once. Otherwise the
    donor is taken from ``source``:

    - ``None`` or ``"allen"``: the official Allen API URL (:data:`AHBA_URL`),
      with the known archive size checked where known.
    - an ``http(s)://`` string with ``{file_id}``, ``{donor}``, ``{uid}``,
      ``{folder}`` (the donor folder name) or ``{dataset}`` placeholders: a
      mirror URL template (size not assumed: a mirror may repack; the zip is
      still verified).
    - a local folder, searched in this order: an unpacked
      ``normalized_microarray_donor{id}/`` (also under ``microarray/``, i.e.
      another abagen data_dir), hard-linked into place (copied across
      filesystems) after checking the five files; or a zip named
      ``normalized_microarray_donor{id}.zip``, ``{file_id}.zip`` or
      ``{file_id}``, verified and extracted.

    Downloads go to ``<data_dir>/microarray/normalized_microarray_donor{id}.zip``;
    a complete, valid zip left there by an earlier run is reused. A
    downloaded zip that fails verification is deleted and fetched once more
    (a second failure is an error; nothing is left behind) and the zip is
    removed after extraction unless ``keep_zip``.

    With ``dataset="rnaseq"`` everything is the same for the donor's RNA-seq
    archive: folder ``<data_dir>/rnaseq/rnaseq_donor{id}/`` (the five
    :data:`RNASEQ_FILES`), Allen file id ``Donor.rnaseq_file_id``, local
    names ``rnaseq_donor{id}/`` (also under ``rnaseq/``),
    ``rnaseq_donor{id}.zip``, ``{file_id}.zip`` or ``{file_id}``, and
    lock-file key ``rnaseq/<id>``. Only donors 9861 and 10021 have RNA-seq.

    The whole step runs under an exclusive per-donor lock; on entry it
    deletes temporary files and folders a killed run may have left for this
    donor (a partial download is resumed instead, when the server supports
    it).

    With `lock_file`, the size and SHA-256 of every archive used (downloaded
    or a local zip) are recorded there the first time it verifies and
    unpacks, and every later archive for that donor must match them, so a
    changed or corrupted server file is caught before it is unpacked.

    Parameters
    ----------
    donor : str, int or Donor
        Donor id (``9861``) or UID (``"H0351.2001"``).
    data_dir : path-like
        abagen data directory.
    source : str or path-like, optional
        Where to get the donor from (see above).
    retries, timeout, progress, backoff, session
        Passed to :func:`download`.
    keep_zip : bool, default False
        Keep a downloaded zip after extraction.
    lock_file : path-like, optional
        JSON lock file of archive sizes and checksums (created if absent).
    dataset : {'microarray', 'rnaseq'}, default 'microarray'
        Which AHBA archive of the donor to fetch.

    Returns
    -------
    pathlib.Path
        The complete donor folder.

    Raises
    ------
    ValueError
        Unknown donor or dataset, RNA-seq requested for a donor without it,
        or malformed ``source``.
    FileNotFoundError
        ``source`` is a folder without this donor.
    DownloadError
        The download failed (message names donor and URL).
    DonorArchiveError
        The archive is not a valid donor zip.
    """
    a = _archive(donor, dataset)
    target = donor_dir(data_dir, a.donor, dataset)
    if is_donor_complete(target, dataset):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.parent / f".{a.folder_name}.lock"):
        if is_donor_complete(target, dataset):  # another process finished it meanwhile
            return target
        _remove_stale(target)
        return _fetch_donor_locked(a, target, source, retries=retries, timeout=timeout,
                                   progress=progress, backoff=backoff, keep_zip=keep_zip,
                                   session=session,
                                   lock_file=None if lock_file is None else Path(lock_file))


def fetch_rnaseq(
    donor: Union[str, int, Donor],
    data_dir: PathLike,
    source: Optional[PathLike] = None,
    **kwargs,
) -> Path:
    """Make sure one complete AHBA RNA-seq donor folder exists under ``data_dir``.

    ``fetch_donor(donor, data_dir, source, dataset="rnaseq", **kwargs)``:
    ``<data_dir>/rnaseq/rnaseq_donor{id}/`` with :data:`RNASEQ_FILES`, where
    abagen's ``probe_selection='rnaseq'`` looks for them (with
    ``$ABAGEN_DATA`` pointing at `data_dir`).

    Parameters
    ----------
    donor : str, int or Donor
        ``9861`` or ``10021`` (the only donors with RNA-seq), or their UIDs.
    data_dir : path-like
        abagen data directory.
    source : str or path-like, optional
        As for :func:`fetch_donor`; a mirror template must tell the RNA-seq
        archive from the microarray one (``{file_id}``, ``{folder}`` or
        ``{dataset}``).
    **kwargs
        Other keyword arguments of :func:`fetch_donor`.

    Returns
    -------
    pathlib.Path
        The complete RNA-seq donor folder.

    Raises
    ------
    ValueError
        For a donor without RNA-seq (the message names the two that have it).
    """
    if "dataset" in kwargs:
        raise TypeError("fetch_rnaseq() fetches dataset 'rnaseq'; use fetch_donor() for others")
    return fetch_donor(donor, data_dir, source, dataset="rnaseq", **kwargs)


def _remove_stale(target: Path) -> None:
    """Delete leftovers of killed runs for this donor (caller holds its lock).

    Everything hidden whose name starts with ``.<donor folder>`` is a
    temporary of this module (extraction folders, replaced folders, old
    random-named partial downloads), except lock files and the resumable
    partial download of the zip, which :func:`download` resumes or deletes.
    """
    keep = {f".{target.name}.zip.part", f".{target.name}.zip.part.json"}
    for p in target.parent.glob(f".{target.name}*"):
        if p.name in keep or p.name.endswith(".lock"):
            continue
        log.warning("removing %s left by an interrupted run", p)
        _remove(p)


def _fetch_donor_locked(a: _Archive, target: Path, source, *, retries, timeout, progress,
                        backoff, keep_zip, session, lock_file) -> Path:
    src = "allen" if source is None else source
    if isinstance(src, str) and (src.strip().lower() == "allen" or _is_url(src.strip())):
        src = src.strip()
        if src.lower() == "allen":
            url, size = AHBA_URL.format(file_id=a.file_id), a.size
        else:
            url, size = _mirror_url(src, a), None
        return _fetch_remote(a, target, url, size, retries=retries, timeout=timeout,
                             progress=progress, backoff=backoff, keep_zip=keep_zip,
                             session=session, lock_file=lock_file)
    if isinstance(src, str) and "://" in src:
        raise ValueError(
            f"{a.label}: unsupported source {src!r}; set ahba.source to 'allen', "
            "an http(s):// mirror URL template with {file_id} or {donor}, or a local folder"
        )
    return _fetch_local(a, target, Path(src).expanduser(), lock_file)


def read_lock_file(path: PathLike) -> dict:
    """Entries of an archive lock file (``{}`` if it does not exist).

    Parameters
    ----------
    path : path-like
        The JSON lock file.

    Returns
    -------
    dict
        ``"microarray/<donor id>"`` or ``"rnaseq/<donor id>"`` ->
        ``{"size", "sha256", "url", "recorded"}``.

    Raises
    ------
    ValueError
        If the file is not a lock file written by this module.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise ValueError(
            f"{path} is not valid JSON ({exc}); fix it or delete it (it is re-created "
            "from the next verified downloads)"
        ) from exc
    if not isinstance(data, dict) or not isinstance(data.get("archives"), dict):
        raise ValueError(f"{path} has no 'archives' mapping; delete it to re-create it")
    return data["archives"]


def _lock_key(d: Union[Donor, _Archive]) -> str:
    a = d if isinstance(d, _Archive) else _Archive(d, "microarray")
    return a.lock_key


def _record_in_lock(lock_file: Path, a: _Archive, archive: Path, origin: str) -> None:
    """Add the archive's size and SHA-256 to the lock file (if not there yet)."""
    with _exclusive(lock_file.with_name(f".{lock_file.name}.lock")):
        archives = read_lock_file(lock_file)
        if a.lock_key in archives:
            return
        archives[a.lock_key] = {
            "size": archive.stat().st_size,
            "sha256": _sha256_file(archive),
            "url": origin,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }
        text = json.dumps({"comment": "AHBA archive sizes and SHA-256, recorded on first "
                                      "verified fetch (itx.fetch); later fetches must match",
                           "archives": dict(sorted(archives.items()))}, indent=1) + "\n"
        tmp = lock_file.with_name(f".{lock_file.name}.tmp")
        tmp.write_text(text)
        os.replace(tmp, lock_file)


def _check_against_lock(lock_file: Optional[Path], a: _Archive, archive: Path) -> None:
    """Raise ChecksumError if `archive` differs from its lock-file entry."""
    if lock_file is None:
        return
    entry = read_lock_file(lock_file).get(a.lock_key)
    if entry is None:
        return
    size = archive.stat().st_size
    if size != entry["size"] or _sha256_file(archive) != entry["sha256"]:
        raise ChecksumError(
            f"{a.label}: {archive} does not match the size/SHA-256 recorded in "
            f"{lock_file} (from {entry.get('url')}, {entry.get('recorded')}). If the "
            "archive really changed, delete that entry (or the lock file) and fetch again"
        )


def _fetch_remote(a: _Archive, target: Path, url: str, size: Optional[int], *,
                  retries, timeout, progress, backoff, keep_zip, session,
                  lock_file: Optional[Path] = None) -> Path:
    zip_path = target.parent / f"{a.folder_name}.zip"
    entry = read_lock_file(lock_file).get(a.lock_key) if lock_file else None
    if entry is not None:
        size = entry["size"]  # the recorded archive, whatever the source
    sha256 = entry["sha256"] if entry is not None else None
    if zip_path.is_file():
        # A zip from an earlier run (e.g. keep_zip, or extraction interrupted)
        # saves a 400 MB download if it is intact.
        try:
            if size is not None and zip_path.stat().st_size != size:
                raise DonorArchiveError(f"{zip_path} has the wrong size")
            if sha256 is not None and _sha256_file(zip_path) != sha256:
                raise DonorArchiveError(f"{zip_path} has the wrong SHA-256")
            verify_donor_zip(zip_path, a.dataset)
            log.info("%s: reusing %s", a.label, zip_path)
        except DonorArchiveError:
            zip_path.unlink()
    hint = (f" The lock file {lock_file} says it should be {size} bytes with SHA-256 "
            f"{sha256}; if the file on the server really changed, delete that entry and "
            "fetch again." if entry is not None else "")
    # a corrupt archive is deleted and fetched once more; twice is an error
    for attempt in (1, 2):
        if not zip_path.is_file():
            try:
                download(url, zip_path, expected_size=size, sha256=sha256, retries=retries,
                         timeout=timeout, progress=progress, backoff=backoff, session=session)
            except ChecksumError as exc:
                if attempt == 1:
                    log.warning("%s: %s; fetching it again", a.label, exc)
                    continue
                raise ChecksumError(f"{a.label} ({a.uid}): {exc}.{hint}") from exc
            except DownloadError as exc:
                raise DownloadError(
                    f"{a.label} ({a.uid}): {exc}.{hint} Check the network, or set "
                    f"ahba.source to a folder containing {a.folder_name}.zip (or the "
                    "unpacked folder) or to a mirror URL template"
                ) from exc
        try:
            extract_donor_zip(zip_path, target, a.dataset)
        except DonorArchiveError as exc:
            # A bad archive would fail the same way next time: delete it and
            # download it again (once).
            zip_path.unlink(missing_ok=True)
            if attempt == 1:
                log.warning("%s: archive from %s unusable (%s); fetching it again",
                            a.label, url, exc)
                continue
            raise DonorArchiveError(
                f"{a.label}: the archive downloaded from {url} is unusable (twice) "
                f"and was deleted: {exc}"
            ) from exc
        break
    if lock_file is not None:
        _record_in_lock(lock_file, a, zip_path, url)
    if not keep_zip:
        zip_path.unlink(missing_ok=True)
    return target


def _fetch_local(a: _Archive, target: Path, src: Path, lock_file: Optional[Path] = None) -> Path:
    hint = (
        f"set ahba.source to a folder containing {a.folder_name}/ (unpacked, or under "
        f"{a.subdir}/ as in an abagen data_dir) or {a.folder_name}.zip or {a.file_id}.zip, "
        "or to 'allen' to download"
    )
    if not src.is_dir():
        raise FileNotFoundError(
            f"{a.label}: source folder {src} does not exist or is not a folder; {hint}"
        )
    problems = []
    for folder in (src / a.folder_name, src / a.subdir / a.folder_name):
        if not folder.is_dir():
            continue
        missing = _missing_files(folder, a.files)
        if missing:
            problems.append(f"{folder} lacks or has empty {', '.join(missing)}")
            continue
        if folder.resolve() == target.resolve():
            return target  # pragma: no cover - complete target returned earlier
        _link_or_copy_dir(folder, target, a.files)
        return target
    for zip_path in (src / f"{a.folder_name}.zip", src / f"{a.file_id}.zip", src / str(a.file_id)):
        if zip_path.is_file():
            _check_against_lock(lock_file, a, zip_path)
            try:
                extract_donor_zip(zip_path, target, a.dataset)
            except DonorArchiveError as exc:
                # The user's own file: report it, never delete it.
                raise DonorArchiveError(f"{a.label}: {exc}; {hint}") from exc
            if lock_file is not None:
                _record_in_lock(lock_file, a, zip_path, str(zip_path))
            return target
    detail = f" ({'; '.join(problems)})" if problems else ""
    raise FileNotFoundError(
        f"{a.label}: nothing usable for it in {src}{detail}; {hint}"
    )
