"""Shared test set-up: abagen and brainsmash run through itx.compat.

The adaptations are applied once, explicitly, for the whole session, as the
workflow's own modules apply them before they use either package;
tests/test_compat.py checks each adaptation in a fresh interpreter.
"""

from itx import cache, compat, demo


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
