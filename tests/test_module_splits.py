"""itx.dense and itx.demo are split into one module per concern; the two
names stay the entry points, and the library digest still covers every part."""

from pathlib import Path

import pytest

from itx import demo, dense, provenance

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts"


@pytest.mark.parametrize("module", [dense, demo])
def test_facade_exports_resolve(module):
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert not missing


@pytest.mark.parametrize("script, prefix", [
    ("rule_dense_maps.py", "dense_"),
    ("rule_demo_donors.py", "demo_"),
    ("rule_demo_rnaseq.py", "demo_"),
])
def test_library_digest_covers_every_part(script, prefix):
    """A rule's digest (provenance.library_modules) follows the facade's imports
    into each part, so a fix in any part reruns the rule."""
    parts = {p.name for p in (SCRIPTS / "itx").glob(f"{prefix}*.py")}
    assert parts
    used = {p.name for p in provenance.library_modules(SCRIPTS / "rules" / script,
                                                         SCRIPTS / "itx")}
    assert parts <= used, sorted(parts - used)


def test_one_seed_check():
    """dense and demo refuse the same seeds with itx.checks' message."""
    for bad in (-1, True, 1.5, None):
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            dense.fit_interpolator([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [0.0, 1.0, 2.0],
                                   "nearest", bad)
        with pytest.raises(ValueError, match="seed must be a non-negative integer"):
            demo.disease_field_params(bad)
