"""The one download client of the workflow: fetch a file safely, or not at all.

Every resource the workflow fetches (AHBA donor archives, :mod:`itx.fetch`;
Schaefer atlas files, :mod:`itx.schaefer`; gene-set collections,
:mod:`itx.genesets`) goes through this module, so they share one behaviour:

- HTTP GET with retries and exponential backoff on transient failures
  (connection errors, timeouts, truncated bodies, HTTP 5xx/408/429); a
  permanent error (e.g. 404) fails at once (:func:`download`);
- resume of a partial body with an HTTP ``Range`` request guarded by
  ``If-Range``, also after a hard kill (the partial file and its validator
  stay beside the destination);
- an exclusive per-destination lock (``fcntl.flock`` on a hidden ``.lock``
  file, removed on release), so two processes never download the same file
  at once (:func:`exclusive_lock`);
- size and SHA-256 verification, and an optional caller check, before the
  file takes its final name: an interrupted or rejected download leaves
  either the old file or nothing;
- a progress line on stderr;
- local sources: a file, or a mirror folder searched for candidate names,
  copied atomically (:func:`fetch_file`);
- atomic placement of folders built beside their destination
  (:func:`staged_dir`);
- lock files that record the size and SHA-256 of each file on its first
  verified fetch, which every later fetch must match (:class:`LockFile`).
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
import secrets
import shutil
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence, Union

from .tables import atomic_path

if TYPE_CHECKING:  # imported where used: only the fetch rules' env has requests
    import requests

__all__ = [
    "DownloadError",
    "ChecksumError",
    "download",
    "fetch_file",
    "find_in_folder",
    "is_url",
    "sha256_file",
    "file_matches",
    "exclusive_lock",
    "temp_name",
    "remove_path",
    "staged_dir",
    "read_lock_file",
    "LockFile",
]

log = logging.getLogger(__name__)

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20  # 1 MiB: large enough for throughput, small enough for progress


class DownloadError(OSError):
    """A download failed for good (after retries, or with a permanent error)."""


class ChecksumError(DownloadError):
    """A complete download (or a local copy) has the wrong size or SHA-256."""


# ---------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------


def is_url(source) -> bool:
    """Whether `source` is an ``http://`` or ``https://`` URL (case-insensitive).

    Parameters
    ----------
    source : object
        A source as given in the config (URL, path or anything else).

    Returns
    -------
    bool
    """
    return isinstance(source, str) and source.strip().lower().startswith(("http://", "https://"))


def sha256_file(path: PathLike) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_matches(path: PathLike, size: Optional[int] = None,
                 sha256: Optional[str] = None) -> bool:
    """Whether the file at `path` has the given size and SHA-256.

    Parameters
    ----------
    path : path-like
        An existing file.
    size : int, optional
        Required size in bytes (``None``: any).
    sha256 : str, optional
        Required SHA-256 hex digest (``None``: any).

    Returns
    -------
    bool
    """
    path = Path(path)
    if size is not None and path.stat().st_size != size:
        return False  # the cheap check first: no hashing of a wrong-sized file
    return sha256 is None or sha256_file(path) == sha256.lower().strip()


def temp_name(dest: PathLike, suffix: str = ".part") -> Path:
    """A hidden, unique temporary name beside `dest`.

    Parameters
    ----------
    dest : path-like
        The final path.
    suffix : str, default ".part"

    Returns
    -------
    pathlib.Path
        ``.<name>.<pid>.<random><suffix>`` in the folder of `dest`.
    """
    dest = Path(dest)
    # Hidden and unique per call: parallel jobs (or a leftover from a killed
    # run) never share a temp file, and abagen never mistakes it for data.
    return dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def remove_path(path: PathLike) -> None:
    """Delete a file, symlink or folder tree if it exists.

    Parameters
    ----------
    path : path-like
    """
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def exclusive_lock(lock: PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on `lock`, deleting the file on release.

    Waiting processes re-check after locking that the file they locked is
    still the one at `lock` (it may have been deleted and re-created by the
    previous holder), so deleting it on release is safe and no lock files
    pile up.

    Parameters
    ----------
    lock : path-like
        The lock file (created, with its folder, if needed).
    """
    lock = Path(lock)
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


def _dest_lock(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.lock")


def _install_dir(tmpdir: Path, target: Path) -> None:
    """Rename a finished temp folder to ``target``, replacing an old one.

    A folder rename is atomic, but POSIX will not rename onto a non-empty
    folder, so an existing (incomplete or stale) ``target`` is first moved
    aside and removed afterwards; a reader never sees a half-filled folder.
    """
    try:
        os.rename(tmpdir, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST) or not target.exists():
            raise
    stale = temp_name(target, ".old")
    os.rename(target, stale)
    log.warning("replaced incomplete folder %s", target)
    os.rename(tmpdir, target)
    shutil.rmtree(stale, ignore_errors=True)


@contextlib.contextmanager
def staged_dir(target: PathLike) -> Iterator[Path]:
    """Build a folder under a hidden temporary name; rename it to `target` on success.

    The folder is created beside `target` (same filesystem, so the rename is
    atomic); on any exception it is deleted, so `target` is either the old
    folder or the complete new one. An existing `target` is replaced.

    Parameters
    ----------
    target : path-like
        The final folder.

    Yields
    ------
    pathlib.Path
        The temporary folder to fill.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = temp_name(target)
    tmpdir.mkdir()
    try:
        yield tmpdir
        _install_dir(tmpdir, target)
    except BaseException:
        shutil.rmtree(tmpdir, ignore_errors=True)
        raise


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


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


def download(
    url: str,
    dest: PathLike,
    *,
    expected_size: Optional[int] = None,
    sha256: Optional[str] = None,
    verify: Optional[Callable[[Path], None]] = None,
    reuse: bool = False,
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
    is renamed to ``dest``. The whole download holds an exclusive lock on
    ``dest`` (a hidden ``.<name>.lock`` beside it), so a second process
    waits for the first instead of fetching the same file.

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
    verify : callable, optional
        Called with the path of the complete temporary file after the size
        and SHA-256 checks; raise (e.g. :class:`ChecksumError`) to reject
        it. The temporary file is then deleted and ``dest`` left as it was.
    reuse : bool, default False
        Keep an existing ``dest`` that passes the same checks instead of
        downloading it again (one that fails them is deleted first). Checked
        under the lock: a process that waited for another one downloading
        the same file finds it there.
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
        When the file could not be fetched completely or the server answered
        with a permanent HTTP error (e.g. 404). The message names the URL and
        the cause; no temporary file is left behind.
    ChecksumError
        When the size or SHA-256 does not match (a :class:`DownloadError`).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(_dest_lock(dest)):
        if reuse and dest.is_file():
            if _passes(dest, expected_size, sha256, verify):
                log.info("%s: reusing %s", url, dest)
                return dest
            dest.unlink()  # a changed or corrupt earlier download: fetch it again
        return _download_locked(url, dest, expected_size, sha256, verify, retries, timeout,
                                progress, backoff, session)


def _passes(path: Path, expected_size, sha256, verify) -> bool:
    """Whether an existing file passes the checks of a download."""
    if not file_matches(path, expected_size, sha256):
        return False
    if verify is not None:
        try:
            verify(path)
        except ChecksumError:
            return False
    return True


def _download_locked(url, dest: Path, expected_size, sha256, verify, retries, timeout,
                     progress, backoff, session) -> Path:
    """:func:`download` while holding the lock of `dest`."""
    # One fixed temp name per destination (the lock makes it exclusive): a
    # partial file left by a killed run is found again, resumed or deleted.
    tmp = dest.with_name(f".{dest.name}.part")
    meta = dest.with_name(f".{dest.name}.part.json")
    for stale in dest.parent.glob(f".{dest.name}.*.part"):
        remove_path(stale)  # random-named temp files of older versions of this client
    import requests

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
                got = sha256_file(tmp)
                if got != sha256:
                    raise ChecksumError(
                        f"download of {url} has SHA-256 {got}, expected {sha256}; "
                        "the server or mirror serves a different or corrupted file"
                    )
            if verify is not None:
                verify(tmp)
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
    import requests

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
# any source: URL, mirror folder URL, local file, local mirror folder
# ---------------------------------------------------------------------------


def find_in_folder(folder: PathLike, names: Sequence[str]) -> Optional[Path]:
    """The first of `names` (relative paths) that is a file in `folder`, or None.

    Parameters
    ----------
    folder : path-like
        A local mirror folder.
    names : sequence of str
        Candidate relative paths, in order of preference.

    Returns
    -------
    pathlib.Path or None
    """
    folder = Path(folder)
    return next((folder / n for n in names if (folder / n).is_file()), None)


def fetch_file(
    source: PathLike,
    dest: PathLike,
    *,
    names: Sequence[str] = (),
    expected_size: Optional[int] = None,
    sha256: Optional[str] = None,
    verify: Optional[Callable[[Path], None]] = None,
    reuse: bool = False,
    what: str = "file",
    where: str = "source folder",
    hint: str = "",
    mismatch: str = "",
    retries: int = 3,
    timeout: float = 60,
    progress: bool = False,
    backoff: float = 2.0,
    session: Optional[requests.Session] = None,
) -> str:
    """Put one file at `dest`, from a URL, a mirror URL, a local file or a mirror folder.

    - an http(s) URL ending in ``/`` with `names`: a mirror folder on a
      server; ``source + names[0]`` is downloaded (:func:`download`);
    - any other http(s) URL: the file itself, downloaded;
    - a local folder (`names` required): the first of `names` found in it
      (:func:`find_in_folder`), checked, then copied to `dest` atomically;
    - a local file (no `names`): the file itself, checked and copied.

    Parameters
    ----------
    source : str or path-like
        See above.
    dest : path-like
        Final file; written only once the content has been verified.
    names : sequence of str, optional
        Candidate relative paths in a mirror folder.
    expected_size, sha256 : optional
        Required size and SHA-256 (``None``: not checked).
    verify : callable, optional
        Further check of the complete file (given its path); raise to reject.
    reuse : bool, default False
        For a URL: keep an existing `dest` that matches `expected_size`/
        `sha256` (and passes `verify`) instead of downloading it again
        (see :func:`download`).
    what : str
        How messages name the file (e.g. ``"Schaefer file x.annot"``).
    where : str
        How messages name a local folder source (``"source folder"``).
    hint : str
        What to do about a file missing from a folder, appended to that
        message.
    mismatch : str
        Where `expected_size`/`sha256` come from and what to do, appended to
        the message of a local file that does not match them.
    retries, timeout, progress, backoff, session
        Passed to :func:`download`.

    Returns
    -------
    str
        Where the file came from: the URL or the local path.

    Raises
    ------
    DownloadError, ChecksumError
        A failed download, or content that does not match.
    FileNotFoundError
        A local source without the file.
    """
    dest = Path(dest)
    src = str(source).strip()
    if is_url(src):
        url = src + names[0] if (names and src.endswith("/")) else src
        download(url, dest, expected_size=expected_size, sha256=sha256, verify=verify,
                 reuse=reuse, retries=retries, timeout=timeout, progress=progress,
                 backoff=backoff, session=session)
        return url
    path = Path(src).expanduser()
    if names:
        found = find_in_folder(path, names)
        if found is None:
            looked = " and ".join(str(path / n) for n in names)
            raise FileNotFoundError(
                f"{what} is not in the {where} {path} (looked for {looked})"
                + (f"; {hint}" if hint else "")
            )
    elif path.is_file():
        found = path
    else:
        raise FileNotFoundError(
            f"{what}: source {path} is neither a file, a folder nor an http(s) URL"
        )
    if not file_matches(found, expected_size, sha256):
        raise ChecksumError(
            f"{found} does not match the size/SHA-256 "
            + (mismatch or f"expected ({expected_size} bytes, SHA-256 {sha256})")
        )
    if verify is not None:
        verify(found)
    with atomic_path(dest) as tmp:
        shutil.copyfile(found, tmp)
    return str(found)


# ---------------------------------------------------------------------------
# lock files: sizes and SHA-256 recorded on the first verified fetch
# ---------------------------------------------------------------------------


def read_lock_file(path: PathLike) -> dict:
    """Entries of a lock file (``{}`` if it does not exist).

    Parameters
    ----------
    path : path-like
        The JSON lock file: ``{"comment": ..., "archives": {key: entry}}``.

    Returns
    -------
    dict
        key -> ``{"size", "sha256", "url", "recorded"}``.

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


class LockFile:
    """A JSON file of file sizes and SHA-256, recorded on first verified fetch.

    No public source lists checksums of the AHBA archives or the Schaefer
    files, so the first fetch that passes every other check records what it
    got, and every later fetch (any source) must match it: a changed or
    corrupted server file is caught before it is used.

    Parameters
    ----------
    path : path-like
        The lock file (created on the first record).
    comment : str
        Written as the file's ``comment`` (what it holds and who writes it).
    """

    def __init__(self, path: PathLike, comment: str):
        self.path = Path(path)
        self.comment = comment

    def entries(self) -> dict:
        """All entries (:func:`read_lock_file`)."""
        return read_lock_file(self.path)

    def get(self, key: str) -> Optional[dict]:
        """The entry of `key`, or None."""
        return self.entries().get(key)

    def matches(self, key: str, path: PathLike) -> bool:
        """Whether `path` matches the entry of `key` (True without an entry)."""
        entry = self.get(key)
        return entry is None or file_matches(path, entry["size"], entry["sha256"])

    def record(self, key: str, path: PathLike, origin: str) -> None:
        """Add the size and SHA-256 of `path` under `key`, unless `key` is there.

        Parameters
        ----------
        key : str
            Entry name (e.g. ``microarray/9861``).
        path : path-like
            The verified file.
        origin : str
            Where it came from (URL or local path), for the messages.
        """
        # a lock of its own: parallel fetch jobs share one lock file
        with exclusive_lock(self.path.with_name(f".{self.path.name}.lock")):
            entries = self.entries()
            if key in entries:
                return
            entries[key] = {
                "size": Path(path).stat().st_size,
                "sha256": sha256_file(path),
                "url": origin,
                "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(
                    timespec="seconds"),
            }
            text = json.dumps({"comment": self.comment,
                               "archives": dict(sorted(entries.items()))}, indent=1) + "\n"
            with atomic_path(self.path) as tmp:
                tmp.write_text(text)
