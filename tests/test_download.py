"""The download client (itx.download) against a throwaway HTTP server on 127.0.0.1.

tests/test_fetch.py covers the AHBA donor archives built on it; here the client
itself: retries, resume, checksums, the per-destination lock, local and mirror
sources, lock files and atomic folder placement.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fileserver import FileServer
from itx import download as dl
from itx.download import (
    ChecksumError,
    DownloadError,
    LockFile,
    download,
    exclusive_lock,
    fetch_file,
    read_lock_file,
    staged_dir,
)

FAST = dict(backoff=0, timeout=5)


def all_files(root: Path) -> list:
    """Every file and folder under root, relative, sorted (hidden ones too)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------------------
# download()
# ---------------------------------------------------------------------------


def test_retries_after_server_errors(server, tmp_path):
    body = os.urandom(50_000)
    route = server.add("/f", body, fail=2)
    dest = tmp_path / "f.bin"
    download(server.base + "/f", dest, sha256=sha(body), retries=2, **FAST)
    assert dest.read_bytes() == body and route.hits == 3
    assert all_files(tmp_path) == ["f.bin"]


def test_gives_up_after_the_retries(server, tmp_path):
    route = server.add("/f", b"x" * 100, fail=5)
    with pytest.raises(DownloadError, match=r"/f after 2 attempt\(s\): HTTP 503"):
        download(server.base + "/f", tmp_path / "f", retries=1, **FAST)
    assert route.hits == 2 and all_files(tmp_path) == []


def test_backoff_doubles(server, tmp_path, monkeypatch):
    waits = []
    # the client's clock only (the test server sleeps too)
    monkeypatch.setattr(dl, "time", SimpleNamespace(sleep=waits.append, monotonic=time.monotonic))
    server.add("/f", b"x" * 100, fail=3)
    download(server.base + "/f", tmp_path / "f", retries=3, backoff=0.5, timeout=5)
    assert waits == [0.5, 1.0, 2.0]


def test_resumes_a_truncated_transfer(server, tmp_path):
    body = os.urandom(300_001)
    route = server.add("/f", body, truncate=1)
    dest = tmp_path / "f.bin"
    download(server.base + "/f", dest, expected_size=len(body), sha256=sha(body), **FAST)
    assert dest.read_bytes() == body
    # the second request asks only for the missing tail, of the same version
    assert route.resume_headers == [(None, None), (f"bytes={len(body) // 2}-", '"v1"')]
    assert all_files(tmp_path) == ["f.bin"]


def test_restarts_when_the_server_ignores_range(server, tmp_path):
    body = os.urandom(100_000)
    route = server.add("/f", body, truncate=1, ranges=False)
    dest = tmp_path / "f.bin"
    download(server.base + "/f", dest, **FAST)
    assert dest.read_bytes() == body and route.hits == 2


def test_resumes_a_partial_file_left_by_a_killed_run(server, tmp_path):
    body = os.urandom(80_000)
    route = server.add("/f", body)
    dest = tmp_path / "f.bin"
    # what a SIGKILL leaves: the partial body and what is needed to resume it
    (tmp_path / ".f.bin.part").write_bytes(body[:30_000])
    (tmp_path / ".f.bin.part.json").write_text(
        json.dumps({"url": server.base + "/f", "validator": '"v1"'}))
    download(server.base + "/f", dest, sha256=sha(body), **FAST)
    assert dest.read_bytes() == body
    assert route.resume_headers == [("bytes=30000-", '"v1"')]
    assert all_files(tmp_path) == ["f.bin"]


def test_checksum_mismatch_leaves_no_file(server, tmp_path):
    body = b"served bytes"
    route = server.add("/f", body)
    dest = tmp_path / "f.bin"
    with pytest.raises(ChecksumError, match="SHA-256 .*expected 0000"):
        download(server.base + "/f", dest, sha256="0" * 64, **FAST)
    assert all_files(tmp_path) == []
    with pytest.raises(ChecksumError, match="12 bytes, expected 13"):
        # the server announced no size mismatch up front: a short body
        download(server.base + "/f", dest, expected_size=13, retries=0,
                 session=_NoLength(), **FAST)
    assert all_files(tmp_path) == []
    # an existing file survives a rejected replacement
    dest.write_bytes(b"old")
    with pytest.raises(ChecksumError):
        download(server.base + "/f", dest, sha256="1" * 64, **FAST)
    assert dest.read_bytes() == b"old" and all_files(tmp_path) == ["f.bin"]
    assert route.hits == 3  # checksum failures are not retried


class _NoLength:
    """A requests session whose responses carry no Content-Length."""

    def get(self, url, **kwargs):
        import requests

        resp = requests.get(url, **kwargs)
        del resp.headers["Content-Length"]
        return resp


def test_size_announced_by_the_server_fails_before_the_body(server, tmp_path):
    server.add("/f", b"z" * 100)
    with pytest.raises(DownloadError, match="100 bytes according to the server, expected 99"):
        download(server.base + "/f", tmp_path / "f", expected_size=99, **FAST)
    assert all_files(tmp_path) == []


def test_verify_hook_rejects_and_leaves_the_old_file(server, tmp_path):
    server.add("/f", b"not what we want")
    dest = tmp_path / "f"
    dest.write_bytes(b"old")

    def verify(path):
        assert Path(path) != dest  # called before the file takes its final name
        raise ChecksumError("rejected by the caller")

    with pytest.raises(ChecksumError, match="rejected by the caller"):
        download(server.base + "/f", dest, verify=verify, **FAST)
    assert dest.read_bytes() == b"old" and all_files(tmp_path) == ["f"]


def test_permanent_error_is_not_retried(server, tmp_path):
    route = server.add("/f", b"", then=404)
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(server.base + "/f", tmp_path / "f", retries=3, **FAST)
    assert route.hits == 1 and all_files(tmp_path) == []


def test_progress_line(server, tmp_path, capsys):
    server.add("/f", b"p" * 2500)
    download(server.base + "/f", tmp_path / "f.zip", progress=True, **FAST)
    assert "f.zip: 2.5 KB / 2.5 KB (100%)" in capsys.readouterr().err


def test_lock_makes_a_second_download_wait(server, tmp_path):
    body = os.urandom(20_000)
    route = server.add("/f", body, delay=0.3)
    dest = tmp_path / "f.bin"
    with exclusive_lock(tmp_path / ".f.bin.lock"):
        # another process holds the destination: the download waits for it
        t = threading.Thread(target=download, args=(server.base + "/f", dest), kwargs=FAST)
        t.start()
        time.sleep(0.4)
        assert t.is_alive() and route.hits == 0
    t.join(10)
    assert dest.read_bytes() == body and route.hits == 1


def test_concurrent_downloads_of_one_file_fetch_it_once(server, tmp_path):
    body = os.urandom(40_000)
    route = server.add("/f", body, delay=0.3)
    dest = tmp_path / "f.bin"
    errors = []

    def run():
        try:
            download(server.base + "/f", dest, sha256=sha(body), reuse=True, **FAST)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors and dest.read_bytes() == body
    # never two at once, and the waiting ones found the verified file
    assert route.max_active == 1 and route.hits == 1
    assert all_files(tmp_path) == ["f.bin"]


def test_reuse_replaces_a_mismatching_file(server, tmp_path):
    body = b"new content"
    route = server.add("/f", body)
    dest = tmp_path / "f"
    dest.write_bytes(b"stale")
    download(server.base + "/f", dest, sha256=sha(body), reuse=True, **FAST)
    assert dest.read_bytes() == body and route.hits == 1
    download(server.base + "/f", dest, sha256=sha(body), reuse=True, **FAST)
    assert route.hits == 1  # the verified file is kept


# ---------------------------------------------------------------------------
# fetch_file(): URL, mirror folder URL, local file, local mirror folder
# ---------------------------------------------------------------------------


def test_fetch_file_from_a_mirror_folder_url(server, tmp_path):
    body = b"gene\tset\n"
    server.add("/mirror/sets.tsv", body)
    origin = fetch_file(server.base + "/mirror/", tmp_path / "out" / "s.tsv",
                        names=("sets.tsv", "other.tsv"), sha256=sha(body), **FAST)
    assert origin == server.base + "/mirror/sets.tsv"
    assert (tmp_path / "out" / "s.tsv").read_bytes() == body


def test_fetch_file_from_a_local_mirror_folder(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "MNI").mkdir(parents=True)
    (mirror / "MNI" / "a.txt").write_bytes(b"nested")
    (mirror / "a.txt").write_bytes(b"flat")
    dest = tmp_path / "out" / "a.txt"
    # candidates in order of preference
    assert fetch_file(mirror, dest, names=("MNI/a.txt", "a.txt")) == str(mirror / "MNI" / "a.txt")
    assert dest.read_bytes() == b"nested"
    assert fetch_file(mirror, dest, names=("x/a.txt", "a.txt")) == str(mirror / "a.txt")
    assert dest.read_bytes() == b"flat"
    with pytest.raises(FileNotFoundError,
                       match=r"thing is not in the mirror folder .*mirror \(looked for .*b.txt "
                             r"and .*c.txt\); put it there"):
        fetch_file(mirror, dest, names=("b.txt", "c.txt"), what="thing", where="mirror folder",
                   hint="put it there")
    assert all_files(tmp_path / "out") == ["a.txt"]


def test_fetch_file_from_a_local_file_is_checked(tmp_path):
    src = tmp_path / "src.bin"
    src.write_bytes(b"local")
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(ChecksumError, match="src.bin does not match the size/SHA-256 recorded"):
        fetch_file(src, dest, sha256="0" * 64, mismatch="recorded somewhere")
    assert not dest.exists()
    assert fetch_file(src, dest, expected_size=5, sha256=sha(b"local")) == str(src)
    assert dest.read_bytes() == b"local" and src.read_bytes() == b"local"
    assert all_files(tmp_path / "out") == ["dest.bin"]
    with pytest.raises(FileNotFoundError, match="neither a file, a folder nor an http"):
        fetch_file(tmp_path / "nope", dest, what="thing")


# ---------------------------------------------------------------------------
# lock files, folders
# ---------------------------------------------------------------------------


def test_lock_file_records_once_and_checks(tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"first")
    lock = LockFile(tmp_path / "sub" / "x.lock.json", "sizes and SHA-256 of x")
    assert lock.entries() == {} and lock.matches("k", a)  # nothing recorded: anything goes
    lock.record("k", a, "http://example/a")
    entry = read_lock_file(lock.path)["k"]
    assert entry["size"] == 5 and entry["sha256"] == sha(b"first")
    assert entry["url"] == "http://example/a"
    data = json.loads(lock.path.read_text())
    assert data["comment"] == "sizes and SHA-256 of x" and list(data) == ["comment", "archives"]
    a.write_bytes(b"other")
    assert not lock.matches("k", a)
    lock.record("k", a, "elsewhere")  # the first record stays
    assert read_lock_file(lock.path)["k"]["sha256"] == sha(b"first")
    assert all_files(tmp_path / "sub") == ["x.lock.json"]  # no temp or lock left


def test_lock_file_errors(tmp_path):
    bad = tmp_path / "l.json"
    bad.write_text("[]")
    with pytest.raises(ValueError, match="no 'archives' mapping"):
        read_lock_file(bad)
    bad.write_text("{")
    with pytest.raises(ValueError, match="is not valid JSON"):
        read_lock_file(bad)


def test_staged_dir_is_all_or_nothing(tmp_path):
    target = tmp_path / "donor"
    with pytest.raises(RuntimeError):
        with staged_dir(target) as tmp:
            (tmp / "a.csv").write_text("1")
            raise RuntimeError("killed half-way")
    assert all_files(tmp_path) == []
    target.mkdir()
    (target / "half.csv").write_text("old")
    with staged_dir(target) as tmp:
        (tmp / "a.csv").write_text("1")
    assert all_files(tmp_path) == ["donor", "donor/a.csv"]  # replaced, nothing left aside
