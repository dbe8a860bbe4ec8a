"""The config and maps sheet are validated before any job runs."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def dry_run(*args, cwd=ROOT):
    return subprocess.run(SNAKEMAKE + ["-n", "--cores", "1", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def test_default_config_dry_run_plans_every_stage():
    res = dry_run("--forceall")
    assert res.returncode == 0, res.stderr
    for rule in ("demo_donors", "fetch_donor", "expression", "parcellate", "spins",
                 "association", "enrichment", "map_figures", "enrichment_figures"):
        assert rule in res.stdout


@pytest.mark.parametrize("yaml_text, expect", [
    ("nulls:\n  methd: vasa\n", "nulls: unknown key(s) 'methd' (did you mean 'method'?)"),
    ("nulls:\n  method: vasaa\n", "nulls.method: 'vasaa' is not allowed; choose one of"),
    ("nulls:\n  n_perm: 0\n", "nulls.n_perm: 0 is less than the minimum of 1"),
    ("scope: brain\n", "scope: 'brain' is not allowed"),
    ("expression:\n  tolerence: 2\n", "'tolerence' (did you mean 'tolerance'?)"),
    ("ahba:\n  donors: ['1234']\n", "ahba.donors.0: '1234' is not allowed"),
])
def test_bad_config_fails_naming_the_key(tmp_path, yaml_text, expect):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml_text)
    res = dry_run("--configfile", str(cfg))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "the config is not valid" in out
    assert expect in out
    # one line per problem, not jsonschema's dump of the schema
    assert "On schema" not in out and len(out.splitlines()) < 40, out


def test_bad_maps_sheet_fails_naming_the_field(tmp_path):
    sheet = tmp_path / "maps.tsv"
    sheet.write_text("map\tpath\tformat\nx\ty.nii\tniftii\n")
    res = dry_run("--config", f"maps={sheet}")
    assert res.returncode != 0
    assert "format 'niftii' is not one of nifti, gifti, table" in res.stdout + res.stderr
    sheet.write_text("map\tpath\tformat\nx\ty.nii\tnifti\nx\tz.nii\tnifti\n")
    res = dry_run("--config", f"maps={sheet}")
    assert res.returncode != 0 and "appear more than once" in res.stdout + res.stderr


def test_lint_is_clean():
    res = subprocess.run(SNAKEMAKE + ["--lint"], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "Congratulations" in res.stdout + res.stderr
