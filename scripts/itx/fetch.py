"""AHBA donor archives: find, download, verify and unpack them where abagen reads them.

abagen can download the AHBA itself, but it does not check what it gets: a
truncated 400 MB zip only surfaces later as "unknown archive file format", and
an interrupted extraction leaves a half-filled donor folder that abagen then
treats as present. This module fetches the archives itself (through the
download client :mod:`itx.download`) and only ever puts a *complete* donor
folder where abagen looks for it::

    <data_dir>/microarray/normalized_microarray_donor{id}/
        MicroarrayExpression.csv  PACall.csv  Probes.csv
        SampleAnnot.csv  Ontology.csv

The donors, their Allen file ids and archive sizes and the file names are in
:mod:`itx.catalog` (re-exported here). Every step writes to a temporary name
beside its destination and renames into place only when the result has been
verified, so an interrupted run leaves either nothing or a finished result.
Each donor is handled under an exclusive lock; after a hard kill (SIGKILL,
power loss) the next run, holding the lock, resumes the hidden partial
download (``.<zip>.part``, HTTP Range with If-Range) or deletes it, and
deletes any other leftover temporary file or folder of that donor.

An optional lock file (JSON, e.g. ``resources/ahba/allen/ahba.lock.json``,
:class:`itx.download.LockFile`) records the size and SHA-256 of each archive
the first time it is fetched and verified; later fetches must match it (see
:func:`fetch_donor`).

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

import logging
import os
import shutil
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Optional, Union

from .catalog import (
    AHBA_FILES,
    AHBA_URL,
    DATASETS,
    DONOR_IDS,
    DONORS,
    RNASEQ_DONOR_IDS,
    RNASEQ_FILES,
    Donor,
)
from .download import (
    ChecksumError,
    DownloadError,
    LockFile,
    download,
    exclusive_lock,
    file_matches,
    is_url,
    read_lock_file,
    remove_path,
    staged_dir,
)

if TYPE_CHECKING:
    import requests

__all__ = [
    "AHBA_URL",
    "AHBA_FILES",
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

#: The five CSVs abagen reads from each donor folder (:data:`itx.catalog.AHBA_FILES`).
EXPECTED_FILES = AHBA_FILES

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK = 1 << 20  # 1 MiB blocks when extracting

#: ``comment`` of the AHBA lock file (kept verbatim: existing lock files have it).
_LOCK_COMMENT = ("AHBA archive sizes and SHA-256, recorded on first verified fetch "
                 "(itx.fetch); later fetches must match")


class DonorArchiveError(ValueError):
    """A donor zip is not a usable AHBA microarray archive."""


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
        kind = "RNA-seq donor" if self.dataset == "rnaseq" else "donor"
        return f"AHBA {kind} {self.id}"


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
    with staged_dir(target) as tmpdir, zipfile.ZipFile(zip_path) as zf:
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
    return target


# ---------------------------------------------------------------------------
# fetch_donor
# ---------------------------------------------------------------------------


def _link_or_copy_dir(src: Path, target: Path, files: tuple = EXPECTED_FILES,
                      link: bool = True) -> None:
    """Hard-link (or, with ``link=False``, copy) the files of ``src`` into a new
    ``target`` folder."""
    with staged_dir(target) as tmpdir:
        for name in files:
            if link:
                try:
                    # A hard link costs no space for multi-GB CSVs; abagen only reads.
                    os.link(src / name, tmpdir / name)
                    continue
                except OSError:
                    pass  # across filesystems (EXDEV) or where links are not allowed
            shutil.copy2(src / name, tmpdir / name)


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
    link: bool = True,
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
    link : bool, default True
        Hard-link the CSVs of an unpacked local folder (no copy of
        multi-GB files); False copies them. Copy when the folder's files
        are inputs of the calling Snakemake rule (the demo): Snakemake
        touches each output after the job, and an output sharing its inode
        with an input would then look older than the inputs touched after it.
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
    with exclusive_lock(target.parent / f".{a.folder_name}.lock"):
        if is_donor_complete(target, dataset):  # another process finished it meanwhile
            return target
        _remove_stale(target)
        return _fetch_donor_locked(a, target, source, retries=retries, timeout=timeout,
                                   progress=progress, backoff=backoff, keep_zip=keep_zip,
                                   session=session, link=link,
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
        remove_path(p)


def _fetch_donor_locked(a: _Archive, target: Path, source, *, retries, timeout, progress,
                        backoff, keep_zip, session, lock_file, link=True) -> Path:
    src = "allen" if source is None else source
    if isinstance(src, str) and (src.strip().lower() == "allen" or is_url(src)):
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
    return _fetch_local(a, target, Path(src).expanduser(), lock_file, link=link)


def _lock(lock_file: Path) -> LockFile:
    return LockFile(lock_file, _LOCK_COMMENT)


def _record_in_lock(lock_file: Path, a: _Archive, archive: Path, origin: str) -> None:
    """Add the archive's size and SHA-256 to the lock file (if not there yet)."""
    _lock(lock_file).record(a.lock_key, archive, origin)


def _check_against_lock(lock_file: Optional[Path], a: _Archive, archive: Path) -> None:
    """Raise ChecksumError if `archive` differs from its lock-file entry."""
    if lock_file is None:
        return
    entry = _lock(lock_file).get(a.lock_key)
    if entry is not None and not file_matches(archive, entry["size"], entry["sha256"]):
        raise ChecksumError(
            f"{a.label}: {archive} does not match the size/SHA-256 recorded in "
            f"{lock_file} (from {entry.get('url')}, {entry.get('recorded')}). If the "
            "archive really changed, delete that entry (or the lock file) and fetch again"
        )


def _fetch_remote(a: _Archive, target: Path, url: str, size: Optional[int], *,
                  retries, timeout, progress, backoff, keep_zip, session,
                  lock_file: Optional[Path] = None) -> Path:
    zip_path = target.parent / f"{a.folder_name}.zip"
    entry = _lock(lock_file).get(a.lock_key) if lock_file else None
    if entry is not None:
        size = entry["size"]  # the recorded archive, whatever the source
    sha256 = entry["sha256"] if entry is not None else None
    if zip_path.is_file():
        # A zip from an earlier run (e.g. keep_zip, or extraction interrupted)
        # saves a 400 MB download if it is intact.
        try:
            if not file_matches(zip_path, size, sha256):
                raise DonorArchiveError(f"{zip_path} has the wrong size or SHA-256")
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


def _fetch_local(a: _Archive, target: Path, src: Path, lock_file: Optional[Path] = None,
                 link: bool = True) -> Path:
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
        _link_or_copy_dir(folder, target, a.files, link=link)
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
