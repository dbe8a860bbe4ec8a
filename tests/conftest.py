"""Shared test set-up: abagen and brainsmash run through itx.compat.

The adaptations are applied once, explicitly, for the whole session, as the
workflow's own modules apply them before they use either package;
tests/test_compat.py checks each adaptation in a fresh interpreter.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from itx import cache, compat, demo

ROOT = Path(__file__).resolve().parents[1]
#: names a copy of the checkout never takes, wherever they are
_NEVER_COPIED = {".venv", ".git", "results", ".snakemake", "logs", "studies", "__pycache__",
                 ".pytest_cache"}
#: folders of resources/ a run makes (downloads, caches, the generated demo inputs)
_MADE_RESOURCES = {"ahba", "demo", "atlases", "genesets"}


def pytest_configure(config):
    compat.patch_abagen()
    compat.patch_brainsmash()


def build_demo_cache(data_dir):
    """The parsed-CSV cache (itx.cache) of the demo donors in `data_dir`."""
    root = data_dir / "cache"
    for d in demo.DONOR_IDS:
        cache.build_donor_cache(data_dir / "microarray" / f"normalized_microarray_donor{d}",
                                cache.donor_cache_dir(root, d))
    return root


def copy_checkout(dest, *, resources=True, venv=False):
    """A copy of the checkout at `dest`, without outputs, caches or downloads.

    Parameters
    ----------
    dest : pathlib.Path
        Folder to create.
    resources : bool
        Copy ``resources/`` (its bundled files, never what a run made there);
        False leaves it out altogether.
    venv : bool
        Link the suite's ``.venv`` into the copy (for commands such as make).
    """
    made = {ROOT / "resources" / d for d in _MADE_RESOURCES}

    def ignore(folder, names):
        folder = Path(folder)
        skip = {n for n in names if n in _NEVER_COPIED or folder / n in made}
        if folder == ROOT and not resources:
            skip.add("resources")
        return skip

    dest = Path(dest)
    shutil.copytree(ROOT, dest, ignore=ignore)
    if venv:
        (dest / ".venv").symlink_to(ROOT / ".venv")
    return dest


def load_tool(name):
    """A script of scripts/tools/ as a module (the tools are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "tools" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    # registered before it runs: dataclasses and pickling look the module up by name
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def run_snakemake(workdir, *args, cores=2, snakemake=None, env=None, timeout=1200):
    """Run Snakemake in `workdir` (this Python's, or the `snakemake` executable given)."""
    cmd = [str(snakemake)] if snakemake else [sys.executable, "-m", "snakemake"]
    return subprocess.run([*cmd, "--cores", str(cores), *args], cwd=workdir,
                          capture_output=True, text=True, timeout=timeout, env=env)


def job_counts(output):
    """Rule -> job count from Snakemake's 'Job stats' table (the run's plan).

    `output`: Snakemake's printed output, or the finished process (stdout and
    stderr are searched)."""
    if not isinstance(output, str):
        output = output.stdout + output.stderr
    assert "Job stats:" in output or "Nothing to be done" in output, output[-3000:]
    counts = {}
    for line in output.split("Job stats:", 1)[-1].splitlines():
        m = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if m and m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
        elif counts and not line.strip():
            break
    return counts


@pytest.fixture(scope="session")
def demo_checkout(tmp_path_factory):
    """A copy of the checkout with the demo run once (current stack) for the whole
    session: tests/test_workflow.py and the legacy comparison share it. Tests may
    rerun rules in it but must leave its results/ as the demo made them."""
    import time

    work = copy_checkout(tmp_path_factory.mktemp("demo") / "repo")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ABAGEN_DATA")}
    start = time.perf_counter()
    res = run_snakemake(work, env=env, timeout=2400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-6000:]
    work.joinpath(".demo_seconds").write_text(f"{time.perf_counter() - start:.1f}")
    return work
