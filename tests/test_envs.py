"""The conda envs in envs/ pin exactly what requirements.txt pins."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI names
CONDA_TO_PYPI = {}
NOT_IN_REQUIREMENTS = {"python", "pip"}
# the Pythons the pinned stack is tested on (.ci/run); a conda env takes one
SUPPORTED_PYTHONS = ("3.11", "3.12", "3.13")


def requirement_pins():
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
        assert m, f"requirements.txt: {line!r} is not an exact pin (name==version)"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def env_pins(path):
    spec = yaml.safe_load(path.read_text())
    assert spec["channels"][:2] == ["conda-forge", "bioconda"], f"{path.name}: channels"
    assert "nodefaults" in spec["channels"], f"{path.name}: add nodefaults"
    pins = {}
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            for pipdep in dep["pip"]:
                name, version = pipdep.split("==")
                pins[name.lower()] = version
        else:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)=([^=\s]+)", dep)
            assert m, f"{path.name}: {dep!r} is not an exact pin (name=version)"
            pins[CONDA_TO_PYPI.get(m.group(1), m.group(1)).lower()] = m.group(2)
    return pins


ENVS = sorted((ROOT / "envs").glob("*.yaml"))


@pytest.mark.parametrize("env", ENVS, ids=[e.stem for e in ENVS])
def test_env_matches_requirements(env):
    req = requirement_pins()
    pins = env_pins(env)
    assert pins.get("python") in SUPPORTED_PYTHONS, f"{env.name}: python={pins.get('python')}"
    for name, version in pins.items():
        if name in NOT_IN_REQUIREMENTS:
            continue
        assert name in req, f"{env.name} pins {name} but requirements.txt does not"
        assert req[name] == version, (
            f"{env.name} pins {name}={version} but requirements.txt has {req[name]}"
        )


def test_every_rule_with_a_script_has_a_conda_env():
    for smk in (ROOT / "workflow" / "rules").glob("*.smk"):
        blocks = re.split(r"^\s*rule ", smk.read_text(), flags=re.M)[1:]
        for block in blocks:
            name = block.split(":", 1)[0]
            if "script:" in block or "shell:" in block:
                m = re.search(r'conda:\s*\n\s*"([^"]+)"', block)
                assert m, f"rule {name} in {smk.name} has no conda: directive"
                env = (smk.parent / m.group(1)).resolve()
                assert env.exists(), f"rule {name}: {env} missing"
