"""The demo through a real SLURM cluster (Debian's slurm-wlm + slurmdbd on this machine).

tests/slurm/cluster.sh installs the Debian packages (apt-get, root), starts munged,
MariaDB, slurmdbd, slurmctld and slurmd, and stops exactly the PIDs it recorded.
The workflow runs with the project's own SLURM profile (workflow/profiles/slurm),
as docs/cluster.md "Running on a cluster" says, in temporary copies of the repository, next
to a local run of the same copy; the results must be byte-identical. A broken map
run through the executor must fail, and fail in sacct too.

Needs root (or an already running cluster from `tests/slurm/cluster.sh start`);
otherwise skipped, unless ITX_REQUIRE_SLURM=1 (CI) turns the skip into a failure.
"""
import fcntl
import getpass
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import copy_checkout

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "tests" / "slurm" / "cluster.sh"
BASE = Path(os.environ.get("ITX_SLURM_BASE", "/tmp/itx-slurm"))
PER_MAP_RULES = {"parcellate", "association", "enrichment", "map_figures", "enrichment_figures"}

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _unavailable(reason):
    if os.environ.get("ITX_REQUIRE_SLURM") == "1":
        pytest.fail(f"SLURM test required (ITX_REQUIRE_SLURM=1) but {reason}")
    pytest.skip(reason)


def _cluster(cmd, env, timeout=600):
    return subprocess.run(["bash", str(CLUSTER), cmd], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def cluster():
    """SLURM_CONF environment of a running cluster; started (and stopped) here if needed."""
    env = dict(os.environ, ITX_SLURM_BASE=str(BASE), SLURM_CONF=str(BASE / "etc" / "slurm.conf"))
    env.setdefault("USER", getpass.getuser())
    # one test session at a time per cluster: another session could stop it under us
    BASE.mkdir(parents=True, exist_ok=True)
    with open(BASE / "test.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield from _cluster_session(env)


def _cluster_session(env):
    if _cluster("status", env).returncode == 0:
        yield env          # someone else's running cluster: use it, leave it running
        return
    if os.geteuid() != 0:
        _unavailable("starting a SLURM cluster needs root")
    res = _cluster("install", env)
    assert res.returncode == 0, res.stdout + res.stderr
    res = _cluster("start", env)
    pids = {}
    if (BASE / "pids").exists():
        for line in (BASE / "pids").read_text().splitlines():
            name, pid = line.split()
            pids[name] = int(pid)
    try:
        assert res.returncode == 0, res.stdout + res.stderr
        assert {"mariadbd", "slurmdbd", "slurmctld", "slurmd"} <= set(pids), pids
        yield env
    finally:
        res = _cluster("stop", env)
        assert res.returncode == 0, res.stdout + res.stderr
        still = {n: p for n, p in pids.items() if _alive(p)}
        assert not still, f"daemons still running after stop: {still}"
        assert not (BASE / "pids").exists()


def _copy(tmp, name):
    work = tmp / name
    return copy_checkout(work)


def _snakemake(work, env, *args):
    log = open(work / "snakemake.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", *args], cwd=work, env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    return proc, log


# The README's cluster command. The profile keeps the plugin's status-polling
# defaults for real clusters (base interval 40 s); on this idle one-node cluster
# a 1 s base interval (the minimum) is harmless and keeps the demo's wall time
# close to a local run: plugin 2.8.0 polls again this long after a round in which
# a job finished (+10 s per round without). sacct stays the status command, so a
# failed job is reported with its sacct state.
SLURM_ARGS = ["--workflow-profile", "workflow/profiles/slurm",
              "--default-resources", "slurm_account=root", "slurm_partition=debug",
              "--slurm-init-seconds-before-status-checks", "1",
              "--slurm-status-command", "sacct"]


@pytest.fixture(scope="module")
def runs(cluster, tmp_path_factory):
    """Local run, SLURM run and a failing SLURM run, side by side (SLURM runs mostly wait)."""
    tmp = tmp_path_factory.mktemp("slurm")
    local, slurm, broken = _copy(tmp, "local"), _copy(tmp, "slurm"), _copy(tmp, "broken")
    # a valid NIfTI with values in 27 voxels only: the checks before any job pass
    # (they need no atlas), its parcellate job (group per_map) must fail on SLURM
    # (only 2 DK regions get a value)
    import nibabel as nib
    import numpy as np

    data = np.full((91, 109, 91), np.nan, np.float32)
    data[64:67, 52:55, 60:63] = np.arange(27).reshape(3, 3, 3) + 1
    affine = np.array([[-2.0, 0, 0, 90], [0, 2, 0, -126], [0, 0, 2, -72], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(data, affine), broken / "bad_map.nii.gz")
    (broken / "bad_maps.tsv").write_text("map\tpath\tformat\nbad\tbad_map.nii.gz\tnifti\n")
    start = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(time.time() - 5))
    t0 = time.monotonic()
    procs = {
        "local": _snakemake(local, cluster, "--cores", "2"),
        "slurm": _snakemake(slurm, cluster, *SLURM_ARGS),
        "broken": _snakemake(broken, cluster, *SLURM_ARGS, "--config", "maps=bad_maps.tsv",
                             "--", "results/dk/bad/map.tsv"),
    }
    seen_in_squeue = {}
    deadline = time.monotonic() + 900
    while any(p.poll() is None for p, _ in procs.values()):
        if time.monotonic() > deadline:
            for p, _ in procs.values():
                p.kill()
            pytest.fail("workflow runs did not finish within 15 minutes")
        out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%Z"], env=cluster,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            jobid, state, workdir = line.split("|", 2)
            seen_in_squeue[jobid] = (state, workdir)
        time.sleep(1)
    for _, log in procs.values():
        log.close()
    result = {name: (p.returncode, (work / "snakemake.out").read_text())
              for (name, (p, _)), work in zip(procs.items(), (local, slurm, broken))}
    result["elapsed"] = time.monotonic() - t0
    sacct = subprocess.run(["sacct", "-X", "-n", "--parsable2", "-S", start,
                            "-o", "JobID,State,ExitCode,Comment%200,WorkDir%500"],
                           env=cluster, capture_output=True, text=True)
    assert sacct.returncode == 0, sacct.stderr
    jobs = []
    for line in sacct.stdout.splitlines():
        jobid, state, code, comment, workdir = line.split("|", 4)
        jobs.append(dict(id=jobid, state=state, exit=code, comment=comment, workdir=workdir))
    return dict(dirs=dict(local=local, slurm=slurm, broken=broken), out=result, sacct=jobs,
                squeue=seen_in_squeue)


def _jobs_of(runs, name):
    work = str(runs["dirs"][name])
    return [j for j in runs["sacct"] if j["workdir"] == work]


def _submitted_ids(stdout):
    return set(re.findall(r"submitted with SLURM jobid (\d+)", stdout))


def test_slurm_run_is_byte_identical_to_local_run(runs):
    for name in ("local", "slurm"):
        code, out = runs["out"][name]
        assert code == 0, f"{name} run failed:\n{out[-6000:]}"
    local, slurm = runs["dirs"]["local"] / "results", runs["dirs"]["slurm"] / "results"
    files = sorted(p.relative_to(local) for p in local.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(slurm) for p in slurm.rglob("*") if p.is_file())
    assert any(f.suffix == ".tsv" for f in files) and any(f.suffix == ".png" for f in files)
    # every output, TSVs, gzipped nulls, spins.npz and PNG figures included, is
    # byte-identical: nothing legitimately differs (no timestamps are written)
    differ = [str(f) for f in files if (local / f).read_bytes() != (slurm / f).read_bytes()]
    assert not differ, differ


def test_jobs_went_through_slurm_grouped_per_map(runs):
    code, out = runs["out"]["slurm"]
    assert code == 0, out[-6000:]
    jobs = _jobs_of(runs, "slurm")
    submitted = _submitted_ids(out)
    assert submitted and submitted == {j["id"] for j in jobs}, (submitted, jobs)
    assert all(j["state"] == "COMPLETED" and j["exit"] == "0:0" for j in jobs), jobs
    # squeue saw them while they were queued or running
    in_squeue = {i for i, (_, wd) in runs["squeue"].items() if wd == str(runs["dirs"]["slurm"])}
    assert in_squeue and in_squeue <= submitted
    comments = [j["comment"] for j in jobs]
    assert any(c.startswith("rule_expression") for c in comments), comments
    # the per-map rules went as one group job (both maps, group-components per_map: 5),
    # never as single-rule jobs; the downloads stayed local
    assert not [c for c in comments if c.split("_wildcards_")[0][5:] in PER_MAP_RULES], comments
    assert "Group job per_map" in out
    assert sum("per_map" in c for c in comments) == 1, comments
    assert not any("fetch_donor" in c for c in comments), comments
    assert "localrule fetch_donor" in out


def test_failing_job_is_reported_failed(runs):
    code, out = runs["out"]["broken"]
    assert code != 0, out[-6000:]
    jobs = _jobs_of(runs, "broken")
    assert len(jobs) == 1 and jobs[0]["id"] in _submitted_ids(out), jobs
    assert jobs[0]["state"] == "FAILED" and jobs[0]["exit"] != "0:0", jobs
    # Snakemake names the failed group job, its SLURM log, and (show-failed-logs) the error
    assert "Error in group per_map" in out, out[-6000:]
    assert f"slurm_logs/group_per_map_parcellate/{jobs[0]['id']}.log" in out, out[-6000:]
    assert "only 2 of 83 regions have a value" in out
    assert "Exiting because a job execution failed" in out


def test_slurm_runs_take_minutes_not_more(runs):
    assert runs["out"]["elapsed"] < 600, runs["out"]["elapsed"]
