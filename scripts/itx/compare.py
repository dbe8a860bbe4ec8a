"""Map-to-map comparison with the same spatial nulls as the gene tests.

Two brain maps over the same regions (a disease map against a cell-type
abundance map, or two disease maps) are correlated, and the correlation is
tested against null versions of the first map (spins), exactly as a gene is
tested in :mod:`itx.association`: the second map plays the part of a gene.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import association, tailp

__all__ = ["compare_maps"]


def compare_maps(x, others, null_maps, *, method="spearman", names=None, tail="none"):
    """Correlate a map with one or more other maps; p values from nulls of `x`.

    Parameters
    ----------
    x : array_like, shape (n_regions,)
        The map whose null versions are given (e.g. the disease map).
    others : array_like, shape (n_regions,) or (n_regions, n_maps)
        Maps to compare with `x`, over the same regions in the same order.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of `x` (e.g. ``x[spin_idx]``).
    method : {'spearman', 'pearson'}
        Correlation.
    names : sequence of str, optional
        Names of the maps in `others` (default ``map_1``...).
    tail : {'none', 'gpd'}
        ``'gpd'`` also keeps each map's largest null ``|r|`` and adds
        ``p_gpd, tail_method`` after ``p_spin``: p values beyond the
        permutation floor from a generalised Pareto fit (:mod:`itx.tailp`).

    Returns
    -------
    pandas.DataFrame
        ``map, r, p_spin, p_naive, n_regions`` (with ``tail='gpd'``:
        ``map, r, p_spin, p_gpd, tail_method, p_naive, n_regions``), one row
        per map of `others`.
    """
    others = np.asarray(others, dtype=np.float64)
    if others.ndim == 1:
        others = others[:, None]
    if names is None:
        names = [f"map_{i + 1}" for i in range(others.shape[1])]
    if len(names) != others.shape[1]:
        raise ValueError(f"{len(names)} names for {others.shape[1]} maps")
    null_maps = np.asarray(null_maps, dtype=np.float64)
    gpd = tailp.check_tail(tail) == "gpd"
    keep = int(tailp.tail_size(null_maps.shape[1])) + 1 if gpd and null_maps.ndim == 2 else 0
    res = association.correlate_genes(others, np.asarray(x, dtype=np.float64), null_maps,
                                      method=method, keep_tail=keep)
    out = pd.DataFrame({"map": list(names), "r": res.r, "p_spin": res.p_spin,
                        "p_naive": res.p_naive, "n_regions": res.n_regions})
    if gpd:
        gp = tailp.gpd_pvalues(np.abs(res.r), res.null_tail, res.n_valid_null, res.n_exceed,
                               res.p_spin)
        at = out.columns.get_loc("p_spin") + 1
        out.insert(at, "p_gpd", gp.p)
        out.insert(at + 1, "tail_method", np.asarray(gp.method).astype(str))
    return out
