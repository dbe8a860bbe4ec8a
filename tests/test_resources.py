"""Every rule declares threads, mem_mb and runtime; config `resources:` overrides them;
per-map rules form one group; the SLURM profile is valid."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
PER_MAP = {"parcellate", "map_nulls", "association", "coverage", "pls", "variogram", "enrichment",
           "map_figures", "enrichment_figures", "donor_robustness",
           "donor_robustness_figure", "multivariate", "partial_genes", "enrichment_top"}


def rule_blocks():
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")):
        # rules may sit inside an `if` (rules/precomputed.smk): allow indentation
        for block in re.split(r"^\s*rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0]
            if "script:" in block or "shell:" in block:
                yield name, block


def test_every_rule_declares_threads_mem_and_runtime():
    names = []
    for name, block in rule_blocks():
        names.append(name)
        assert f'threads: rule_threads("{name}")' in block, f"rule {name}: threads"
        assert f'mem_mb=rule_mem_mb("{name}")' in block, f"rule {name}: mem_mb"
        assert f'runtime=rule_runtime("{name}")' in block, f"rule {name}: runtime"
        group = re.search(r'group:\s*\n\s*"([^"]+)"', block)
        if name in PER_MAP:
            assert group and group.group(1) == "per_map", f"rule {name}: group per_map"
        elif group:
            assert group.group(1) != "per_map", f"rule {name} is not per map"
    assert PER_MAP <= set(names)
    # the config schema accepts overrides for exactly these rules
    schema = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())
    assert set(schema["properties"]["resources"]["propertyNames"]["enum"]) == set(names)
    smk = (ROOT / "workflow" / "rules" / "resources.smk").read_text()
    for name in names:
        assert f'"{name}": dict(' in smk, f"rule {name} has no defaults in resources.smk"


def dry_run(*args, cwd=ROOT):
    return subprocess.run(SNAKEMAKE + ["-n", "--forceall", "--cores", "2", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def resources_of(stdout, rule):
    """resources line of the first job of a rule in a dry run."""
    block = re.split(rf"^\s*(?:local)?rule {rule}:\s*$", stdout, flags=re.M)[1]
    line = re.search(r"^\s*resources: (.*)$", block, flags=re.M).group(1)
    return dict(kv.split("=", 1) for kv in line.split(", "))


def test_defaults_are_small_per_map_and_overridable(tmp_path):
    res = dry_run()
    assert res.returncode == 0, res.stderr
    for rule in ("parcellate", "association", "enrichment", "map_figures", "enrichment_figures"):
        r = resources_of(res.stdout, rule)
        assert int(r["mem_mb"]) <= 2000 and int(r["runtime"]) <= 15, (rule, r)
    r = resources_of(res.stdout, "expression")
    assert int(r["mem_mb"]) >= 1000 and int(r["runtime"]) >= 10
    cfg = tmp_path / "res.yaml"
    cfg.write_text("resources:\n  expression: {mem_mb: 12345, runtime: 99, threads: 2}\n")
    res = dry_run("--configfile", str(cfg))
    assert res.returncode == 0, res.stderr
    r = resources_of(res.stdout, "expression")
    assert (r["mem_mb"], r["runtime"]) == ("12345", "99")
    block = re.split(r"^\s*rule expression:\s*$", res.stdout, flags=re.M)[1].split("\n\n")[0]
    assert "threads: 2" in block


@pytest.mark.parametrize("yaml_text, expect", [
    ("resources:\n  expresion: {mem_mb: 10}\n", "resources: 'expresion' is not allowed"),
    ("resources:\n  expression: {memory: 10}\n", "resources.expression: unknown key(s) 'memory'"),
    ("resources:\n  expression: {runtime: 0}\n", "0 is less than the minimum of 1"),
])
def test_bad_resources_config_fails(tmp_path, yaml_text, expect):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    res = dry_run("--configfile", str(cfg))
    assert res.returncode != 0
    assert expect in res.stdout + res.stderr


def test_slurm_profile_is_valid_and_groups_per_map():
    profile = yaml.safe_load((ROOT / "workflow" / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert profile["group-components"]["per_map"] > 1
    res = dry_run("--workflow-profile", "workflow/profiles/slurm")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Using workflow specific profile workflow/profiles/slurm" in res.stdout + res.stderr
