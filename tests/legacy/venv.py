"""Build (once) and find the legacy reference venv of tests/legacy/requirements.txt.

Used by tests/test_legacy_reference.py; runnable by hand to pre-build it::

    python tests/legacy/venv.py          # prints the venv's python

The venv lives outside the repo, at ``$ITX_LEGACY_VENV`` or
``~/.cache/itx/legacy-<first 12 hex of sha256(requirements.txt)>``, so editing
the pins builds a new one. It is built in a temporary sibling folder and
renamed into place once pip and the version check succeeded, then marked
complete (``.itx-legacy-complete``); a half-built venv is never reused.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
MARKER = ".itx-legacy-complete"
PY_VERSION = "3.11"
EXPECT = {"pandas": "1.5.3", "numpy": "1.26.4", "abagen": "0.1.3", "nilearn": "0.10.4"}

_CHECK = """
import json, sys, importlib.metadata as md
import pkg_resources  # unpatched abagen imports it
import numpy, pandas, abagen
print(json.dumps({"python": sys.version.split()[0],
                  "pandas": pandas.__version__, "numpy": numpy.__version__,
                  "abagen": md.version("abagen"), "nilearn": md.version("nilearn"),
                  "setuptools": md.version("setuptools"),
                  "snakemake": md.version("snakemake")}))
"""


class Unavailable(RuntimeError):
    """No Python 3.11 to build the legacy venv with (tests skip)."""


def requirements_hash() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]


def venv_path() -> Path:
    env = os.environ.get("ITX_LEGACY_VENV")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "itx" / f"legacy-{requirements_hash()}"


def find_python311() -> str:
    """A Python 3.11 interpreter: python3.11 on PATH, else pyenv's 3.11.7."""
    candidates = []
    exe = shutil.which(f"python{PY_VERSION}")
    if exe:
        candidates.append([exe])
    if shutil.which("pyenv"):
        try:
            out = subprocess.run(["pyenv", "which", f"python{PY_VERSION}"], capture_output=True,
                                 text=True, timeout=30,
                                 env={**os.environ, "PYENV_VERSION": "3.11.7"})
            if out.returncode == 0 and out.stdout.strip():
                candidates.append([out.stdout.strip()])
        except (OSError, subprocess.TimeoutExpired):
            pass
    for cmd in candidates:
        try:
            # a pyenv shim on PATH may point at another version: ask it
            res = subprocess.run([*cmd, "-c", "import sys; print(sys.executable);"
                                  "print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        lines = res.stdout.split()
        if res.returncode == 0 and len(lines) == 2 and lines[1] == PY_VERSION:
            return lines[0]
    raise Unavailable(f"no Python {PY_VERSION} interpreter found (python{PY_VERSION} on PATH, "
                      f"or PYENV_VERSION=3.11.7 pyenv which python{PY_VERSION}); the legacy "
                      f"reference stack (tests/legacy/requirements.txt) needs one")


def _python(venv: Path) -> Path:
    return venv / "bin" / "python"


def check(venv: Path) -> dict:
    """Versions inside the venv; raises if they are not the legacy ones."""
    res = subprocess.run([str(_python(venv)), "-c", _CHECK], capture_output=True, text=True,
                         timeout=300)
    if res.returncode != 0:
        raise RuntimeError(f"legacy venv {venv} is broken:\n{res.stderr[-3000:]}")
    versions = json.loads(res.stdout.strip().splitlines()[-1])
    wrong = {k: (versions.get(k), v) for k, v in EXPECT.items() if versions.get(k) != v}
    if wrong or not versions["python"].startswith(PY_VERSION + "."):
        raise RuntimeError(f"legacy venv {venv} has wrong versions (found, expected): {wrong}, "
                           f"python {versions['python']}")
    return versions


def ensure() -> tuple[Path, dict]:
    """The complete legacy venv (built if needed) and its versions.

    Returns ``(venv, info)``; ``info`` holds the versions, ``built`` (bool) and
    ``seconds`` spent in this call.
    """
    t0 = time.perf_counter()
    venv = venv_path()
    marker = venv / MARKER
    if marker.is_file():
        info = check(venv)
        return venv, {**info, "built": False, "seconds": time.perf_counter() - t0}
    python = find_python311()
    venv.parent.mkdir(parents=True, exist_ok=True)
    if venv.exists():  # renamed into place but not completed: never reused
        if "ITX_LEGACY_VENV" in os.environ and not (venv / "pyvenv.cfg").is_file():
            raise RuntimeError(f"ITX_LEGACY_VENV={venv} exists and is not a venv; "
                               "point it at a new folder")
        shutil.rmtree(venv)
    for stale in venv.parent.glob(f".{venv.name}.building-*"):  # killed builds
        if time.time() - stale.stat().st_mtime > 6 * 3600:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{venv.name}.building-", dir=venv.parent))
    try:
        # the venv is built where it will live (console scripts hard-code the
        # interpreter path), under a temporary name first
        subprocess.run([python, "-m", "venv", "--prompt", venv.name, str(tmp)], check=True,
                       capture_output=True, timeout=600)
        pip = [str(_python(tmp)), "-m", "pip", "--disable-pip-version-check"]
        # --no-compile: .pyc files written now would name the temporary folder
        # in tracebacks; they are written on first import, at the final path
        res = subprocess.run([*pip, "install", "--quiet", "--no-compile", "-r",
                              str(REQUIREMENTS)],
                             capture_output=True, text=True, timeout=3600)
        if res.returncode != 0:
            raise RuntimeError("pip install -r tests/legacy/requirements.txt failed:\n"
                               + res.stdout[-2000:] + res.stderr[-4000:])
        try:
            tmp.rename(venv)
        except OSError:  # another process finished first
            if (venv / MARKER).is_file():
                shutil.rmtree(tmp, ignore_errors=True)
                info = check(venv)
                return venv, {**info, "built": False, "seconds": time.perf_counter() - t0}
            raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    # scripts point at <tmp>/bin/python: rewrite their shebangs to the final path
    _relocate(venv, tmp)
    info = check(venv)
    (venv / MARKER).write_text(json.dumps({**info, "requirements_sha256_12": requirements_hash(),
                                           "base_python": python}, indent=1) + "\n")
    return venv, {**info, "built": True, "seconds": time.perf_counter() - t0}


def _relocate(venv: Path, old: Path) -> None:
    """Point the venv's scripts and pyvenv.cfg at its final folder."""
    old_s, new_s = str(old).encode(), str(venv).encode()
    for f in (venv / "bin").iterdir():
        if f.is_symlink() or not f.is_file():
            continue
        data = f.read_bytes()
        if old_s in data[:4096]:
            f.write_bytes(data.replace(old_s, new_s))
    cfg = venv / "pyvenv.cfg"
    cfg.write_bytes(cfg.read_bytes().replace(old_s, new_s))
    # pip compiled itself while it ran from the temporary folder
    for cache in (venv / "lib").glob("python*/site-packages/pip/**/__pycache__"):
        shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    v, i = ensure()
    print(_python(v))
    print(json.dumps(i), file=sys.stderr)
