"""Shared test set-up: abagen and brainsmash run through itx.compat.

The adaptations are applied once, explicitly, for the whole session, as the
workflow's own modules apply them before they use either package;
tests/test_compat.py checks each adaptation in a fresh interpreter.
"""

from itx import compat


def pytest_configure(config):
    compat.patch_abagen()
    compat.patch_brainsmash()
