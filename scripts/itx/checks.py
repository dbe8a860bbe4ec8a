"""Argument checks shared by every stage.

One definition of what a valid seed or count is, so a value refused by one
stage is refused by all of them, with the same message.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_positive_int", "check_seed"]


def _is_int(value) -> bool:
    # bool is an int subclass; True as a seed or a count is a config mistake
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def check_seed(seed) -> int:
    """`seed` as an ``int``; a non-negative integer is required.

    None is refused: it would give irreproducible results, and the workflow
    always passes a seed.

    Raises
    ------
    ValueError
        If `seed` is not a non-negative integer.
    """
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def check_positive_int(value, name: str) -> int:
    """`value` as an ``int`` >= 1.

    Parameters
    ----------
    value : int
        The value to check.
    name : str
        Its name in the error message.

    Raises
    ------
    ValueError
        If `value` is not an integer >= 1.
    """
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)
