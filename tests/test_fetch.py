"""Offline tests for itx.fetch against a throwaway HTTP server on 127.0.0.1."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import stat
import time
import zipfile
from pathlib import Path

import pytest

from fileserver import FileServer
from itx import fetch
from itx.fetch import (
    DONORS,
    EXPECTED_FILES,
    DonorArchiveError,
    DownloadError,
    download,
    extract_donor_zip,
    fetch_donor,
    verify_donor_zip,
)

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def csv_payload(donor: str) -> dict:
    """Five tiny CSVs whose contents identify the donor."""
    return {
        "MicroarrayExpression.csv": f"1058685,{donor}.1,2.5\n1058686,3.0,4.0\n",
        "PACall.csv": "1058685,1,0\n1058686,1,1\n",
        "Probes.csv": "probe_id,probe_name,gene_id,gene_symbol,gene_name,entrez_id,chromosome\n"
        "1058685,A_23_P20713,729,C8G,complement,733,9\n",
        "SampleAnnot.csv": "structure_id,slab_num,well_id\n4080,1,594\n",
        "Ontology.csv": "id,acronym,name,parent_structure_id,hemisphere\n4080,CA1,CA1,4079,L\n",
    }


def make_zip(donor="12876", folder=None, extra=None, drop=(),
             compression=zipfile.ZIP_DEFLATED) -> bytes:
    """Bytes of a donor zip; members at top level or under ``folder``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as zf:
        for name, text in csv_payload(donor).items():
            if name in drop:
                continue
            zf.writestr(f"{folder}/{name}" if folder else name, text)
        for info, data in (extra or []):
            zf.writestr(info, data)
    return buf.getvalue()


def all_files(root: Path) -> list:
    """Every file and folder under root, relative, sorted (hidden ones too)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def assert_donor(folder: Path, donor: str) -> None:
    assert sorted(os.listdir(folder)) == sorted(EXPECTED_FILES)
    for name, text in csv_payload(donor).items():
        assert (folder / name).read_text() == text


@pytest.fixture
def server():
    with FileServer() as srv:
        yield srv


FAST = dict(backoff=0, timeout=5)

# ---------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------


def test_constants():
    assert list(DONORS) == ["9861", "10021", "12876", "14380", "15496", "15697"]
    assert DONORS["9861"].size == 425_988_059 and DONORS["10021"].size == 400_957_002
    assert all(DONORS[i].size is None for i in ("12876", "14380", "15496", "15697"))
    assert DONORS["15697"].file_id == 178236545 and DONORS["10021"].uid == "H0351.2002"
    assert fetch.AHBA_URL.format(file_id=1) == (
        "https://human.brain-map.org/api/v2/well_known_file_download/1")
    assert len(EXPECTED_FILES) == 5


def test_get_donor_by_id_int_and_uid():
    assert fetch.get_donor(9861) is DONORS["9861"]
    assert fetch.get_donor("h0351.1009") is DONORS["12876"]
    with pytest.raises(ValueError, match=r"unknown AHBA donor '1234'.*9861"):
        fetch.get_donor("1234")


def test_unknown_donor_in_fetch(tmp_path):
    with pytest.raises(ValueError, match="1234"):
        fetch_donor("1234", tmp_path, source=tmp_path)


# ---------------------------------------------------------------------------
# download()
# ---------------------------------------------------------------------------


def test_download_ok(server, tmp_path):
    body = os.urandom(300_000)
    server.add("/f", body)
    dest = tmp_path / "sub" / "f.zip"
    assert download(server.url("/f"), dest, expected_size=len(body),
                    sha256=hashlib.sha256(body).hexdigest(), **FAST) == dest
    assert dest.read_bytes() == body
    assert all_files(tmp_path) == ["sub", "sub/f.zip"]


def test_download_resumes_with_range(server, tmp_path):
    body = os.urandom(200_001)
    route = server.add("/f", body, truncate=1)
    dest = tmp_path / "f.zip"
    download(server.url("/f"), dest, expected_size=len(body), **FAST)
    assert dest.read_bytes() == body
    assert route.hits == 2
    # The second request asked only for the missing tail.
    assert route.range_headers == [None, f"bytes={len(body) // 2}-"]
    assert route.if_range_headers == [None, '"v1"']  # resume only the same file version
    assert all_files(tmp_path) == ["f.zip"]


def test_download_restarts_when_range_ignored(server, tmp_path):
    body = os.urandom(150_000)
    route = server.add("/f", body, truncate=1, ranges=False)
    dest = tmp_path / "f.zip"
    download(server.url("/f"), dest, **FAST)
    assert dest.read_bytes() == body  # the 200 body replaced, not appended to, the partial
    assert route.hits == 2 and route.range_headers[1] is not None
    assert all_files(tmp_path) == ["f.zip"]


def test_download_always_truncated_fails_cleanly(server, tmp_path):
    route = server.add("/f", os.urandom(100_000), then="truncate")
    url = server.url("/f")
    with pytest.raises(DownloadError) as err:
        download(url, tmp_path / "f.zip", retries=2, **FAST)
    assert url in str(err.value) and "3 attempt" in str(err.value)
    assert route.hits == 3
    assert all_files(tmp_path) == []


def test_download_404_is_not_retried(server, tmp_path):
    route = server.add("/missing", b"", then=404)
    url = server.url("/missing")
    with pytest.raises(DownloadError, match=re.escape(url) + ".*404"):
        download(url, tmp_path / "f.zip", **FAST)
    assert route.hits == 1
    assert all_files(tmp_path) == []


def test_download_retries_server_error(server, tmp_path):
    body = b"x" * 1000
    route = server.add("/f", body, fail=1)
    download(server.url("/f"), tmp_path / "f", **FAST)
    assert (tmp_path / "f").read_bytes() == body and route.hits == 2


def test_download_retries_after_read_timeout(server, tmp_path):
    body = b"y" * 5000
    route = server.add("/f", body, plan=["stall"])
    download(server.url("/f"), tmp_path / "f", timeout=0.3, backoff=0)
    assert (tmp_path / "f").read_bytes() == body and route.hits == 2


def test_download_size_mismatch_fails_before_body(server, tmp_path):
    server.add("/f", b"z" * 100)
    with pytest.raises(DownloadError, match="100 bytes.*expected 999"):
        download(server.url("/f"), tmp_path / "f", expected_size=999, **FAST)
    assert all_files(tmp_path) == []


def test_download_sha256_mismatch_rejected(server, tmp_path):
    server.add("/f", b"content")
    dest = tmp_path / "f"
    dest.write_bytes(b"old")  # an existing file survives a failed replacement
    with pytest.raises(DownloadError, match="SHA-256"):
        download(server.url("/f"), dest, sha256="0" * 64, **FAST)
    assert all_files(tmp_path) == ["f"] and dest.read_bytes() == b"old"


def test_download_progress_on_stderr(server, tmp_path, capsys):
    server.add("/f", b"p" * 4000)
    download(server.url("/f"), tmp_path / "f", progress=True, **FAST)
    err = capsys.readouterr().err
    assert "f: 4.0 KB / 4.0 KB (100%)" in err


def test_download_connection_refused(tmp_path):
    # A port nobody listens on: bind, note, close.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    url = f"http://127.0.0.1:{port}/f"
    with pytest.raises(DownloadError, match=re.escape(url) + ".*connection failed"):
        download(url, tmp_path / "f", retries=1, **FAST)
    assert all_files(tmp_path) == []


# ---------------------------------------------------------------------------
# verify_donor_zip() / extract_donor_zip()
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("folder", [None, "normalized_microarray_donor12876"])
def test_verify_and_extract(tmp_path, folder):
    z = tmp_path / "d.zip"
    z.write_bytes(make_zip(folder=folder, extra=[("Readme.txt", "hello")]))
    members = verify_donor_zip(z)
    assert set(members) == set(EXPECTED_FILES)
    out = extract_donor_zip(z, tmp_path / "out" / "donor")
    assert_donor(out, "12876")
    assert all_files(tmp_path / "out") == sorted(["donor"] + [f"donor/{n}" for n in EXPECTED_FILES])


def test_verify_missing_member(tmp_path):
    z = tmp_path / "d.zip"
    z.write_bytes(make_zip(drop=("PACall.csv",)))
    with pytest.raises(DonorArchiveError, match=re.escape(str(z)) + ".*missing PACall.csv"):
        verify_donor_zip(z)


def test_verify_not_a_zip(tmp_path):
    z = tmp_path / "d.zip"
    z.write_bytes(b"<html>Service unavailable</html>")
    with pytest.raises(DonorArchiveError, match=re.escape(str(z)) + ".*not a valid zip"):
        verify_donor_zip(z)


def test_verify_truncated_zip(tmp_path):
    data = make_zip()
    z = tmp_path / "d.zip"
    z.write_bytes(data[: len(data) - 30])
    with pytest.raises(DonorArchiveError, match="not a valid zip"):
        verify_donor_zip(z)


def test_verify_spread_over_folders(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (name, text) in enumerate(csv_payload("1").items()):
            zf.writestr(f"{'a' if i else 'b'}/{name}", text)
    z = tmp_path / "d.zip"
    z.write_bytes(buf.getvalue())
    with pytest.raises(DonorArchiveError, match="several folders"):
        verify_donor_zip(z)


@pytest.mark.parametrize("name, why", [
    ("../evil", "path traversal"),
    ("sub/../../evil.csv", "path traversal"),
    ("/etc/evil", "absolute path"),
])
def test_unsafe_member_rejected(tmp_path, name, why):
    z = tmp_path / "d.zip"
    z.write_bytes(make_zip(extra=[(zipfile.ZipInfo(name), "pwned")]))
    with pytest.raises(DonorArchiveError, match=why):
        extract_donor_zip(z, tmp_path / "out" / "donor")
    assert not (tmp_path / "evil").exists()
    assert all_files(tmp_path) == ["d.zip"]


def test_symlink_member_rejected(tmp_path):
    info = zipfile.ZipInfo("Probes.csv")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in csv_payload("1").items():
            if name != "Probes.csv":
                zf.writestr(name, text)
        zf.writestr(info, "/etc/passwd")
    z = tmp_path / "d.zip"
    z.write_bytes(buf.getvalue())
    with pytest.raises(DonorArchiveError, match="symbolic link"):
        extract_donor_zip(z, tmp_path / "donor")
    assert all_files(tmp_path) == ["d.zip"]


def test_corrupt_member_leaves_nothing(tmp_path):
    data = bytearray(make_zip(compression=zipfile.ZIP_STORED))
    i = data.index(b"1058686,3.0")  # inside MicroarrayExpression.csv's stored data
    data[i] ^= 0xFF
    z = tmp_path / "d.zip"
    z.write_bytes(bytes(data))
    verify_donor_zip(z)  # the directory is fine...
    with pytest.raises(DonorArchiveError, match="corrupt"):  # ...the CRC is not
        extract_donor_zip(z, tmp_path / "donor")
    assert all_files(tmp_path) == ["d.zip"]


def test_extract_replaces_incomplete_folder(tmp_path):
    z = tmp_path / "d.zip"
    z.write_bytes(make_zip())
    target = tmp_path / "donor"
    target.mkdir()
    (target / "Probes.csv").write_text("half")
    extract_donor_zip(z, target)
    assert_donor(target, "12876")
    expected = ["d.zip", "donor"] + [f"donor/{n}" for n in EXPECTED_FILES]
    assert all_files(tmp_path) == sorted(expected)


# ---------------------------------------------------------------------------
# fetch_donor(): remote
# ---------------------------------------------------------------------------


def donor_files(data_dir: Path, donor: str) -> list:
    return sorted(["microarray", f"microarray/normalized_microarray_donor{donor}"]
                  + [f"microarray/normalized_microarray_donor{donor}/{n}" for n in EXPECTED_FILES])


def test_fetch_mirror_template_then_no_refetch(server, tmp_path):
    route = server.add("/m/donor14380.zip", make_zip("14380"))
    src = server.base + "/m/donor{donor}.zip"
    out = fetch_donor(14380, tmp_path, src, **FAST)
    assert out == tmp_path / "microarray" / "normalized_microarray_donor14380"
    assert_donor(out, "14380")
    assert all_files(tmp_path) == donor_files(tmp_path, "14380")  # zip removed, no temp
    assert fetch_donor("14380", tmp_path, src, **FAST) == out
    assert route.hits == 1


def test_fetch_mirror_file_id_and_keep_zip(server, tmp_path):
    d = DONORS["15496"]
    route = server.add(f"/wkf/{d.file_id}", make_zip("15496", folder="x"))
    out = fetch_donor("15496", tmp_path, server.base + "/wkf/{file_id}", keep_zip=True, **FAST)
    assert_donor(out, "15496")
    zip_path = tmp_path / "microarray" / "normalized_microarray_donor15496.zip"
    assert zip_path.is_file()
    # Donor folder lost, zip kept: the intact zip is reused, not downloaded again.
    import shutil

    shutil.rmtree(out)
    fetch_donor("15496", tmp_path, server.base + "/wkf/{file_id}", **FAST)
    assert_donor(out, "15496")
    assert route.hits == 1 and not zip_path.exists()


def test_fetch_allen_url_and_known_size(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "AHBA_URL", server.base + "/api/{file_id}")
    server.add(f"/api/{DONORS['12876'].file_id}", make_zip("12876"))
    assert_donor(fetch_donor("12876", tmp_path, **FAST), "12876")
    # 9861 has a known size, which the tiny test zip does not match.
    route = server.add(f"/api/{DONORS['9861'].file_id}", make_zip("9861"))
    with pytest.raises(DownloadError, match=r"donor 9861.*expected 425988059") as err:
        fetch_donor("9861", tmp_path / "other", "allen", **FAST)
    assert server.url(f"/api/{DONORS['9861'].file_id}") in str(err.value)
    assert route.hits == 1
    assert all_files(tmp_path / "other") == ["microarray"]


def test_fetch_truncated_once_succeeds(server, tmp_path):
    body = make_zip("15697")
    route = server.add("/d/15697", body, truncate=1)
    assert_donor(fetch_donor("15697", tmp_path, server.base + "/d/{donor}", **FAST), "15697")
    assert route.hits == 2


def test_fetch_always_truncated_leaves_nothing(server, tmp_path):
    server.add("/d/15697", make_zip("15697"), then="truncate")
    url = server.url("/d/15697")
    with pytest.raises(DownloadError, match=r"donor 15697.*" + re.escape(url)):
        fetch_donor("15697", tmp_path, server.base + "/d/{donor}", retries=1, **FAST)
    assert all_files(tmp_path) == ["microarray"]


def test_fetch_404_names_donor_and_url(server, tmp_path):
    server.add("/d/12876", b"", then=404)
    url = server.url("/d/12876")
    with pytest.raises(DownloadError) as err:
        fetch_donor("12876", tmp_path, server.base + "/d/{donor}", **FAST)
    msg = str(err.value)
    assert "12876" in msg and url in msg and "404" in msg and "ahba.source" in msg
    assert all_files(tmp_path) == ["microarray"]


def test_fetch_corrupt_body_deleted(server, tmp_path):
    route = server.add("/d/12876", b"<html>maintenance</html>" * 10)
    with pytest.raises(DonorArchiveError, match=r"donor 12876.*twice.*deleted.*not a valid zip"):
        fetch_donor("12876", tmp_path, server.base + "/d/{donor}", **FAST)
    assert route.hits == 2  # deleted and fetched once more before giving up
    assert all_files(tmp_path) == ["microarray"]
    # A rerun fetches again (the bad zip is not reused).
    route.body = make_zip("12876")
    assert_donor(fetch_donor("12876", tmp_path, server.base + "/d/{donor}", **FAST), "12876")
    assert route.hits == 3


def test_download_interrupt_removes_temp(tmp_path):
    class Boom:
        def get(self, *a, **k):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download("http://127.0.0.1:9/f", tmp_path / "f", session=Boom(), **FAST)
    assert all_files(tmp_path) == []


def test_fetch_unsupported_scheme(tmp_path):
    with pytest.raises(ValueError, match="ftp://.*ahba.source"):
        fetch_donor("12876", tmp_path, "ftp://mirror.invalid/{donor}.zip")


def test_fetch_mirror_without_placeholder(tmp_path):
    with pytest.raises(ValueError, match="placeholder"):
        fetch_donor("12876", tmp_path, "https://mirror.invalid/ahba.zip")
    with pytest.raises(ValueError, match="invalid"):
        fetch_donor("12876", tmp_path, "https://mirror.invalid/{donor}/{bogus}")


# ---------------------------------------------------------------------------
# fetch_donor(): local sources
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "normalized_microarray_donor{id}.zip", "{file_id}.zip", "{file_id}",
])
def test_fetch_local_zip(tmp_path, name):
    src = tmp_path / "src"
    src.mkdir()
    d = DONORS["10021"]
    (src / name.format(id=d.id, file_id=d.file_id)).write_bytes(make_zip("10021"))
    data = tmp_path / "data"
    assert_donor(fetch_donor("10021", data, src), "10021")
    assert all_files(data) == donor_files(data, "10021")
    assert len(os.listdir(src)) == 1  # the user's zip is left alone


def _unpacked(root: Path, donor: str) -> Path:
    folder = root / f"normalized_microarray_donor{donor}"
    folder.mkdir(parents=True)
    for name, text in csv_payload(donor).items():
        (folder / name).write_text(text)
    return folder


def test_fetch_local_unpacked_is_hard_linked(tmp_path):
    src_folder = _unpacked(tmp_path / "src", "9861")
    out = fetch_donor(9861, tmp_path / "data", tmp_path / "src")
    assert_donor(out, "9861")
    assert (out / "Probes.csv").stat().st_ino == (src_folder / "Probes.csv").stat().st_ino


def test_fetch_local_link_false_copies(tmp_path):
    """The demo's donor files are inputs of rule fetch_donor: copies, not links,
    so that Snakemake touching the outputs cannot change the inputs' times."""
    src_folder = _unpacked(tmp_path / "src", "9861")
    before = {f.name: f.stat().st_mtime_ns for f in src_folder.iterdir()}
    out = fetch_donor(9861, tmp_path / "data", tmp_path / "src", link=False)
    assert_donor(out, "9861")
    for f in out.iterdir():
        assert f.stat().st_ino != (src_folder / f.name).stat().st_ino
        f.touch()  # what Snakemake does to every output after the job
    assert {f.name: f.stat().st_mtime_ns for f in src_folder.iterdir()} == before


def test_fetch_local_abagen_data_dir(tmp_path):
    _unpacked(tmp_path / "abagen-data" / "microarray", "14380")
    # A zip for the same donor is there too: the unpacked folder wins.
    (tmp_path / "abagen-data" / "normalized_microarray_donor14380.zip").write_bytes(b"junk")
    out = fetch_donor("14380", tmp_path / "data", str(tmp_path / "abagen-data"))
    assert_donor(out, "14380")


def test_fetch_local_copy_fallback(tmp_path, monkeypatch):
    src_folder = _unpacked(tmp_path / "src", "9861")

    def no_link(*a, **k):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(fetch.os, "link", no_link)
    out = fetch_donor("9861", tmp_path / "data", tmp_path / "src")
    assert_donor(out, "9861")
    assert (out / "Probes.csv").stat().st_ino != (src_folder / "Probes.csv").stat().st_ino


def test_fetch_local_missing_donor(tmp_path):
    (tmp_path / "src").mkdir()
    with pytest.raises(FileNotFoundError) as err:
        fetch_donor("15496", tmp_path / "data", tmp_path / "src")
    msg = str(err.value)
    assert "15496" in msg and str(tmp_path / "src") in msg and "ahba.source" in msg
    assert not (tmp_path / "data" / "microarray" / "normalized_microarray_donor15496").exists()


def test_fetch_local_source_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"15496.*does not exist.*ahba.source"):
        fetch_donor("15496", tmp_path / "data", tmp_path / "nope")


def test_fetch_local_incomplete_folder_reported(tmp_path):
    folder = _unpacked(tmp_path / "src", "15496")
    (folder / "PACall.csv").write_text("")
    with pytest.raises(FileNotFoundError, match="PACall.csv"):
        fetch_donor("15496", tmp_path / "data", tmp_path / "src")


def test_fetch_local_bad_zip_kept_and_reported(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    bad = src / "normalized_microarray_donor15496.zip"
    bad.write_bytes(make_zip("15496", drop=("Ontology.csv",)))
    with pytest.raises(DonorArchiveError, match=r"15496.*Ontology.csv"):
        fetch_donor("15496", tmp_path / "data", src)
    assert bad.exists()
    # only the (empty) folder that held the donor lock: no partial donor
    assert all_files(tmp_path / "data") == ["microarray"]


def test_fetch_replaces_incomplete_donor_folder(tmp_path):
    _unpacked(tmp_path / "src", "12876")
    target = tmp_path / "data" / "microarray" / "normalized_microarray_donor12876"
    target.mkdir(parents=True)
    (target / "MicroarrayExpression.csv").write_text("partial from an earlier abagen run")
    assert_donor(fetch_donor("12876", tmp_path / "data", tmp_path / "src"), "12876")
    assert all_files(tmp_path / "data") == donor_files(tmp_path / "data", "12876")


def test_fetch_complete_folder_needs_no_source(tmp_path):
    _unpacked(tmp_path / "data" / "microarray", "12876")
    # The source does not exist: it must not even be looked at.
    out = fetch_donor("12876", tmp_path / "data", tmp_path / "nope")
    assert_donor(out, "12876")


# ---------------------------------------------------------------------------
# the demo's AHBA-format donors, zipped and served like the Allen server
# ---------------------------------------------------------------------------


def test_fetch_demo_donors_over_http(server, tmp_path):
    import zipfile

    import abagen

    from itx import demo

    src = tmp_path / "src"
    demo.generate_donors(src, seed=1, samples_per_donor=12)
    routes = {}
    for d in fetch.DONOR_IDS:
        folder = src / "microarray" / f"normalized_microarray_donor{d}"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
            for name in fetch.EXPECTED_FILES:
                zf.write(folder / name, name)
        # one donor's first response is cut mid-file, as a dropped connection would
        cut = 1 if d == "12876" else 0
        routes[d] = server.add(f"/ahba/{fetch.DONORS[d].file_id}", buf.getvalue(), truncate=cut)
    data_dir = tmp_path / "data"
    for d in fetch.DONOR_IDS:
        out = fetch.fetch_donor(d, data_dir, server.url("/ahba/{file_id}"), **FAST)
        for name in fetch.EXPECTED_FILES:
            assert (out / name).read_bytes() == (
                src / "microarray" / f"normalized_microarray_donor{d}" / name).read_bytes()
    assert routes["12876"].hits == 2 and routes["9861"].hits == 1
    assert not [p for p in all_files(data_dir) if p.endswith((".part", ".zip"))]
    # abagen finds all six donors where the workflow put them (no download)
    files = abagen.datasets.fetch_microarray(data_dir=str(data_dir), donors="all", verbose=0)
    assert sorted(files) == sorted(fetch.DONOR_IDS)


# ---------------------------------------------------------------------------
# hard kills, stale temporaries, lock file
# ---------------------------------------------------------------------------


def big_zip(donor="12876") -> bytes:
    """A donor zip over 2 MiB (stored random member), so that half of it
    reaches the disk before the client is killed (it writes 1 MiB blocks)."""
    info = zipfile.ZipInfo("notes/extra.bin")
    info.compress_type = zipfile.ZIP_STORED
    return make_zip(donor, extra=[(info, os.urandom(3 << 20))])


def test_sigkill_mid_download_then_rerun_resumes_and_leaves_nothing(server, tmp_path):
    import signal
    import subprocess
    import sys

    body = big_zip()
    route = server.add("/d/12876", body, plan=["hang"])
    data = tmp_path / "data"
    part = data / "microarray" / ".normalized_microarray_donor12876.zip.part"
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from itx.fetch import fetch_donor; "
            "fetch_donor('12876', sys.argv[2], sys.argv[3], retries=0, timeout=60, backoff=0)")
    scripts = Path(fetch.__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", code, str(scripts), str(data),
                             server.base + "/d/{donor}"])
    try:
        deadline = time.monotonic() + 30
        while not (part.is_file() and part.stat().st_size >= 1 << 20):
            assert time.monotonic() < deadline, "the download never started"
            assert proc.poll() is None, "the download ended before it could be killed"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert part.is_file()  # what a hard kill leaves behind...
    have = part.stat().st_size
    folder = fetch_donor("12876", data, server.base + "/d/{donor}", **FAST)
    assert_donor(folder, "12876")
    # ...is resumed (Range from the bytes on disk, If-Range against a change)
    assert route.range_headers[-1] == f"bytes={have}-"
    assert route.if_range_headers[-1] == '"v1"'
    assert all_files(data) == donor_files(data, "12876")  # no stale part, lock or sidecar


def test_stale_temporaries_of_killed_runs_are_removed(server, tmp_path):
    server.add("/d/12876", make_zip("12876"))
    micro = tmp_path / "microarray"
    micro.mkdir()
    # what a SIGKILL during extraction / folder replacement / an old version leaves
    (micro / ".normalized_microarray_donor12876.1234.abcd.part").mkdir()
    (micro / ".normalized_microarray_donor12876.1234.abcd.part" / "PACall.csv").write_text("1")
    (micro / ".normalized_microarray_donor12876.99.ffff.old").mkdir()
    (micro / ".normalized_microarray_donor12876.zip.77.beef.part").write_bytes(b"PK")
    # a partial download without resume information cannot be trusted: restarted
    (micro / ".normalized_microarray_donor12876.zip.part").write_bytes(b"junk")
    # another donor's temporaries are not this run's business
    other = micro / ".normalized_microarray_donor9861.5.aaaa.part"
    other.mkdir()
    assert_donor(fetch_donor("12876", tmp_path, server.base + "/d/{donor}", **FAST), "12876")
    assert all_files(tmp_path) == sorted(donor_files(tmp_path, "12876")
                                         + [str(other.relative_to(tmp_path))])


def test_corrupt_download_is_refetched(server, tmp_path):
    route = server.add("/d/12876", make_zip("12876", compression=zipfile.ZIP_STORED) * 1,
                       plan=["corrupt"])
    assert_donor(fetch_donor("12876", tmp_path, server.base + "/d/{donor}", **FAST), "12876")
    assert route.hits == 2
    assert all_files(tmp_path) == donor_files(tmp_path, "12876")


def test_lock_file_records_then_verifies(server, tmp_path):
    body = make_zip("12876")
    route = server.add("/d/12876", body)
    lock = tmp_path / "ahba.lock.json"
    data = tmp_path / "data"
    fetch_donor("12876", data, server.base + "/d/{donor}", lock_file=lock, **FAST)
    entry = fetch.read_lock_file(lock)["microarray/12876"]
    assert entry["size"] == len(body)
    assert entry["sha256"] == hashlib.sha256(body).hexdigest()
    assert entry["url"] == server.base + "/d/12876"
    assert not [p for p in all_files(tmp_path) if p.startswith(".")]

    # the server now serves a different (valid) archive: refused, nothing left
    shutil_rm = __import__("shutil").rmtree
    shutil_rm(data)
    route.body = make_zip("12876", folder="x")
    with pytest.raises(DownloadError, match=r"donor 12876.*ahba.lock.json.*delete that entry"):
        fetch_donor("12876", data, server.base + "/d/{donor}", lock_file=lock, **FAST)
    assert all_files(data) == ["microarray"]
    # a local zip is held to the same record
    src = tmp_path / "src"
    src.mkdir()
    (src / "normalized_microarray_donor12876.zip").write_bytes(route.body)
    with pytest.raises(DownloadError, match="does not match"):
        fetch_donor("12876", data, src, lock_file=lock)
    (src / "normalized_microarray_donor12876.zip").write_bytes(body)
    assert_donor(fetch_donor("12876", data, src, lock_file=lock), "12876")


def test_lock_file_unreadable_is_reported(tmp_path):
    lock = tmp_path / "ahba.lock.json"
    lock.write_text("{not json")
    with pytest.raises(ValueError, match="ahba.lock.json is not valid JSON"):
        fetch.read_lock_file(lock)
