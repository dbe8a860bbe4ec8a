"""abagen 0.1.3's own test suite passes on the current stack through itx.compat.

abagen's tests (``abagen/tests/`` in its PyPI sdist) are downloaded with a
pinned hash, unpacked to a temporary directory and run by this interpreter,
in a subprocess, against the *installed* abagen, with
``tests/abagen_suite/itx_abagen_plugin.py`` loaded: it applies
``itx.compat.patch_abagen()`` before abagen's conftest imports abagen, blocks
the network and deselects the tests listed, with their reasons, in
``tests/abagen_suite/deselected.toml``.  Every other test must pass, and the
number that ran must be the number expected, so a suite that shrinks fails.
Without the compatibility module the suite cannot even be collected.

The sdist is cached in ``$XDG_CACHE_HOME/itx/abagen-0.1.3/`` (default
``~/.cache``); it and its tests are never copied into the repository.
"""

from __future__ import annotations

import filecmp
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = Path(__file__).resolve().with_name("abagen_suite")
LIST_FILE = SUITE / "deselected.toml"

VERSION = "0.1.3"
SDIST = f"abagen-{VERSION}.tar.gz"
# PyPI's published sha256 of abagen-0.1.3.tar.gz
# (https://pypi.org/simple/abagen/), checked again by pip --require-hashes
SDIST_SHA256 = "22225ce661d082cdbeeee131da2187b4c942d7b610c5a2b312140ab127aaaee6"
CACHE = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
         / "itx" / f"abagen-{VERSION}")

# pytest collects 216 of abagen 0.1.3's tests (two mouse modules that query
# the network at import are not imported at all); 127 need the network and
# are deselected; the other 89 must all run (and pass, or fail strictly while
# listed in [pending_compat]).
EXPECTED_RUN = 89
EXPECTED_DESELECTED = 127
TIMEOUT = 600


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _deselect_list():
    with open(LIST_FILE, "rb") as fh:
        data = tomllib.load(fh)
    return data["network"], data.get("pending_compat", {})


def _installed_abagen():
    # where `import abagen` goes, found without importing it (that needs
    # itx.compat on this stack)
    spec = importlib.util.find_spec("abagen")
    assert spec is not None and spec.origin, "abagen is not installed"
    return Path(spec.origin).resolve().parent


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    """Path of the verified sdist in the cache, downloaded if needed."""
    path = CACHE / SDIST
    if path.exists() and _sha256(path) == SDIST_SHA256:
        return path
    path.unlink(missing_ok=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    tmp = tmp_path_factory.mktemp("abagen-sdist")
    req = tmp / "requirements.txt"
    req.write_text(f"abagen=={VERSION} --hash=sha256:{SDIST_SHA256}\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary",
         ":all:", "--require-hashes", "-r", str(req), "-d", str(tmp / "dl")],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 0, f"pip download failed:\n{proc.stdout}\n{proc.stderr}"
    got = tmp / "dl" / SDIST
    assert _sha256(got) == SDIST_SHA256
    shutil.move(got, path.with_suffix(".part"))
    os.replace(path.with_suffix(".part"), path)
    return path


@pytest.fixture(scope="module")
def unpacked(sdist, tmp_path_factory):
    """(sdist tree, run directory holding abagen_tests/ and setup.cfg)."""
    base = tmp_path_factory.mktemp("abagen-suite")
    with tarfile.open(sdist) as tar:
        tar.extractall(base / "sdist", filter="data")
    tree = base / "sdist" / f"abagen-{VERSION}"
    run = base / "run"
    # abagen/tests/ is a subpackage of abagen; run it as a top-level package
    # so that pytest puts `run`, not the sdist tree, on sys.path and
    # `import abagen` finds the installed abagen
    shutil.copytree(tree / "abagen" / "tests", run / "abagen_tests")
    shutil.copy(tree / "setup.cfg", run / "setup.cfg")  # abagen's [tool:pytest]
    return tree, run


def _run_suite(run, tmp, *, compat, args=()):
    (tmp / "abagen-data").mkdir()  # abagen's tests take it as an existing --data-dir
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "ITX_ABAGEN_"))}
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "scripts"), str(SUITE)]),
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        ITX_ABAGEN_COMPAT="1" if compat else "0",
        ITX_ABAGEN_REPORT=str(tmp / "report.json"),
        ABAGEN_DATA=str(tmp / "abagen-data"),  # not ~/abagen-data
        OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    cmd = [sys.executable, "-m", "pytest", "-p", "itx_abagen_plugin",
           "-p", "no:cacheprovider", "--rootdir", str(run),
           "-c", str(run / "setup.cfg"), "-q", "-rfEX",
           f"--junitxml={tmp / 'junit.xml'}", *args, "abagen_tests"]
    return subprocess.run(cmd, cwd=run, env=env, capture_output=True,
                          text=True, timeout=TIMEOUT)


def _outcomes(junit):
    out = {"passed": [], "failed": [], "error": [], "skipped": [], "xfailed": []}
    for case in ET.parse(junit).iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        nodeid = f"{module}.py::{case.get('name')}"
        if case.find("error") is not None:
            out["error"].append(nodeid)
        elif case.find("failure") is not None:
            out["failed"].append(nodeid)
        elif (skip := case.find("skipped")) is not None:
            kind = "xfailed" if skip.get("type") == "pytest.xfail" else "skipped"
            out[kind].append(nodeid)
        else:
            out["passed"].append(nodeid)
    return out


def test_deselection_list_is_explicit():
    network, pending = _deselect_list()
    assert network, "no network tests listed"
    for nodeid, reason in network.items():
        assert nodeid.startswith("abagen/tests/"), nodeid
        assert nodeid.split("::")[0].endswith(".py"), nodeid
        assert isinstance(reason, str) and reason.strip(), nodeid
    for nodeid, info in pending.items():
        assert nodeid.startswith("abagen/tests/") and "::" in nodeid, nodeid
        assert info["adaptation"].strip() and info["why"].strip(), nodeid
    assert not set(network) & set(pending)


@pytest.mark.slow
def test_installed_abagen_is_the_sdist(unpacked):
    # the suite runs against the installed abagen: show it is the sdist's code
    tree, _ = unpacked
    installed = _installed_abagen()
    src = tree / "abagen"
    files = [p for p in src.rglob("*") if p.is_file()]
    assert len(files) > 50
    missing = [str(p.relative_to(src)) for p in files
               if not (installed / p.relative_to(src)).is_file()]
    assert not missing, f"not in installed abagen ({installed}): {missing}"
    differ = [str(p.relative_to(src)) for p in files
              if not filecmp.cmp(p, installed / p.relative_to(src), shallow=False)]
    assert not differ, f"installed abagen ({installed}) differs from {SDIST}: {differ}"


@pytest.mark.slow
def test_abagen_suite_passes_with_compat(unpacked, tmp_path):
    tree, run = unpacked
    proc = _run_suite(run, tmp_path, compat=True)
    log = proc.stdout[-6000:] + proc.stderr[-3000:]
    assert (tmp_path / "junit.xml").exists(), log
    report = json.loads((tmp_path / "report.json").read_text())
    res = _outcomes(tmp_path / "junit.xml")

    # the installed abagen, patched, was the one tested
    abagen_file = Path(report["abagen_file"]).resolve()
    assert abagen_file.parent == _installed_abagen(), report["abagen_file"]
    assert tree not in abagen_file.parents and run not in abagen_file.parents
    assert "pkg_resources" in report["applied"], report["applied"]

    # exactly the listed tests were left out, and every entry was used
    network, pending = _deselect_list()
    assert report["unmatched_entries"] == [], report["unmatched_entries"]
    modules = sorted(k.replace("abagen/tests/", "abagen_tests/")
                     for k in network if "::" not in k)
    assert report["ignored_modules"] == modules
    assert len(report["deselected"]) == EXPECTED_DESELECTED, report["deselected"]

    # every other test passed; pending ones (waiting for an itx.compat
    # adaptation) failed as expected, strictly
    assert res["failed"] == [] and res["error"] == [], log
    assert res["skipped"] == [], res["skipped"]
    assert sorted(res["xfailed"]) == report["pending_xfail"], log
    assert len(res["passed"]) + len(res["xfailed"]) == EXPECTED_RUN, log
    assert proc.returncode == 0, log


@pytest.mark.slow
def test_abagen_suite_fails_without_compat(unpacked, tmp_path):
    # sanity: the same suite, with itx.compat left out, cannot import abagen
    _, run = unpacked
    proc = _run_suite(run, tmp_path, compat=False, args=["--collect-only"])
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "ModuleNotFoundError: No module named 'pkg_resources'" in out, out[-3000:]
