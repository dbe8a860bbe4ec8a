"""Gene-map correlations with spatial-permutation ("spin") null p values.

The core routine, :func:`correlate_genes`, correlates every gene of a
region x gene expression matrix with a brain map and with each null version
of that map, counting for each gene how often a null correlation is at
least as extreme as the observed one. Everything is done with matrix
products on standardised (ranked, for Spearman) columns, and the null maps
are processed in blocks so memory scales with ``n_genes x block_size``,
never with ``n_genes x n_perm``.

The same null correlations give, at no extra pass over the data, the null
distribution of gene-set scores used by the spatial ensemble null of
Fulcher et al. (2021, Nat Commun 12:2669): each null map yields a null
correlation for every gene, and a set's null score is the mean of those
null correlations over the set's genes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import tailp

__all__ = [
    "AssociationResult",
    "NullMapWarning",
    "correlate_genes",
    "fdr_bh",
    "gene_table",
    "report_null_use",
    "usable_nulls",
]

#: Default number of null maps correlated per block. 256 columns keep the
#: block (n_genes x 256 float64, 32 MB for 15,633 genes) in a size where the
#: matrix product runs at full BLAS speed without large temporaries.
DEFAULT_BLOCK_SIZE = 256

_METHODS = ("spearman", "pearson")

#: For a null map with NaN rows, Spearman ranks of the expression over the
#: remaining rows are updated from the full ranks when at most this many rows
#: are dropped (cost ~ dropped rows x matrix), else recomputed by sorting.
_MAX_DROPPED_FOR_UPDATE = 8


@dataclass(frozen=True)
class AssociationResult:
    """Result of :func:`correlate_genes`.

    Attributes
    ----------
    r : numpy.ndarray, shape (n_genes,)
        Observed correlation of each gene with the map (NaN for a gene that
        is constant across regions).
    p_spin : numpy.ndarray, shape (n_genes,)
        Two-sided spatial-null p value,
        ``(1 + #{|r_null| >= |r| - atol}) / (1 + n_valid_null)``; NaN when
        ``n_valid_null`` is 0 (no null map gave a correlation: a p value
        from no null is not a number).
    p_naive : numpy.ndarray, shape (n_genes,)
        Parametric two-sided p value from the t distribution with
        ``n_regions - 2`` degrees of freedom, as ``scipy.stats.spearmanr`` /
        ``scipy.stats.pearsonr`` report it. It ignores spatial
        autocorrelation and is given for comparison only.
    n_regions : int
        Number of regions (rows) used for the observed correlations.
    n_perm : int
        Number of null maps supplied.
    method : str
        ``"spearman"`` or ``"pearson"``.
    n_valid_null : numpy.ndarray of int, shape (n_genes,)
        Number of null maps that gave a defined null correlation for each
        gene; the denominator of ``p_spin`` is ``1 + n_valid_null``. Equal
        to ``n_perm`` unless a null map is constant (or has fewer than 3
        finite regions) or a gene is constant on the finite regions of a
        null map that contains NaN.
    null_set_scores : numpy.ndarray, shape (n_perm, n_sets), or None
        Only when ``set_matrix`` was given: for each null map, the (weighted)
        mean null correlation of each set's genes; NaN where undefined.
    atol : float
        Tolerance used when comparing null and observed correlations.
    n_exceed : numpy.ndarray of int, shape (n_genes,), or None
        Only when ``keep_tail`` was given: ``k`` of ``p_spin``, the number
        of null correlations at least as extreme as the observed one.
    null_tail : numpy.ndarray, shape (n_genes, keep_tail), or None
        Only when ``keep_tail`` was given: the ``keep_tail`` largest
        ``|r_null|`` of each gene, descending (``-inf`` padded), for the
        generalised Pareto tail of :func:`itx.tailp.gpd_pvalues`; NaN rows
        for genes with ``n_exceed >= tail_min_exceedances`` (their tail is
        not needed and not kept).
    tail_min_exceedances : int
        See :func:`correlate_genes`.
    """

    r: np.ndarray
    p_spin: np.ndarray
    p_naive: np.ndarray
    n_regions: int
    n_perm: int
    method: str
    n_valid_null: np.ndarray
    null_set_scores: Optional[np.ndarray] = None
    atol: float = 1e-9
    n_exceed: Optional[np.ndarray] = None
    null_tail: Optional[np.ndarray] = None
    tail_min_exceedances: int = 10


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------


def _average_ranks(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties get the mean rank) down the columns.

    Equivalent to ``scipy.stats.rankdata(a, method="average", axis=0)`` for
    finite input, but several times faster on wide matrices because it is a
    single sort plus a few vectorised passes; the speed matters because the
    expression matrix is re-ranked once per distinct NaN pattern of the null
    maps.
    """
    n = a.shape[0]
    # Stability is not needed: tied values receive the same average rank
    # whatever their order within the tie group.
    order = np.argsort(a, axis=0)
    srt = np.take_along_axis(a, order, axis=0)
    idx = np.arange(n).reshape((n,) + (1,) * (a.ndim - 1))
    # A tie group spans sorted positions [start, end]; every member gets
    # rank (start + end) / 2 + 1.
    is_start = np.ones(a.shape, dtype=bool)
    is_start[1:] = srt[1:] != srt[:-1]
    is_end = np.ones(a.shape, dtype=bool)
    is_end[:-1] = is_start[1:]
    start = np.maximum.accumulate(np.where(is_start, idx, 0), axis=0)
    end = np.minimum.accumulate(np.where(is_end, idx, n - 1)[::-1], axis=0)[::-1]
    avg = (start + end) / 2.0 + 1.0
    ranks = np.empty(a.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, avg, axis=0)
    return ranks


def _subset_ranks(x: np.ndarray, full_ranks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Average ranks of ``x[rows]`` within those rows, from ranks over all rows.

    The average rank of value v among a set S is
    ``#{s in S: x_s < v} + (#{s in S: x_s == v} + 1) / 2``, so dropping a row
    d lowers it by ``[x_d < v] + [x_d == v] / 2``. For the few rows a spin
    typically leaves without data this is exact (half-integers are exact in
    float) and much cheaper than sorting the expression matrix again.
    """
    out = full_ranks[rows]
    xs = x[rows]
    for d in np.flatnonzero(~rows):  # loop over dropped rows only
        xd = x[d]
        np.subtract(out, xd < xs, out=out)
        eq = xd == xs
        if eq.any():  # ties are rare in expression data: touch only them
            out[eq] -= 0.5
    return out


def _standardise(a: np.ndarray, rank: bool, ranks: Optional[np.ndarray] = None):
    """Centre columns and scale them to unit Euclidean norm.

    With unit-norm centred columns the Pearson correlation of two columns is
    their dot product, so a whole correlation matrix is one matrix product.

    Returns
    -------
    z : ndarray
        Standardised columns; constant columns are all zero (so they add
        nothing to matrix products) and must be masked by the caller.
    ok : ndarray of bool
        False for constant columns (correlation undefined).
    """
    # Constancy is judged on the raw values, exactly (max == min): the
    # standard deviation of a constant float column can come out as a tiny
    # non-zero number through rounding of the mean.
    ok = np.ptp(a, axis=0) > 0
    if not rank:
        x = np.array(a, dtype=np.float64, copy=True)
    elif ranks is not None:
        x = ranks  # precomputed by the caller, owned by us
    else:
        x = _average_ranks(a)
    x -= x.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", x, x))
    scale = np.zeros_like(norm)
    scale[ok] = 1.0 / norm[ok]
    x *= scale
    return x, ok


def _parametric_p(r: np.ndarray, n: int) -> np.ndarray:
    """Two-sided p value of a correlation from the t distribution (df = n - 2)."""
    df = n - 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    p = 2.0 * stats.t.sf(np.abs(t), df)
    # |r| == 1 gives t = +-inf and p = 0, as scipy reports.
    return np.where(np.isnan(r), np.nan, np.minimum(p, 1.0))


def _set_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted mean of ``values`` over each set, ignoring NaN values.

    Parameters
    ----------
    values : ndarray, shape (n_genes,) or (n_genes, k)
    weights : ndarray, shape (n_genes, n_sets), non-negative

    Returns
    -------
    ndarray, shape (n_sets,) or (k, n_sets)
        ``sum_g w_gs v_g / sum_g w_gs`` over genes with finite ``v_g``; NaN
        where a set has no weight on finite values.
    """
    finite = np.isfinite(values)
    num = np.where(finite, values, 0.0).T @ weights
    den = finite.astype(np.float64).T @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(den > 0, out, np.nan)


def _check_set_matrix(set_matrix, n_genes: int) -> np.ndarray:
    w = np.asarray(set_matrix, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] != n_genes:
        raise ValueError(
            f"set_matrix must have shape (n_genes, n_sets) = ({n_genes}, n_sets); "
            f"got {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("set_matrix contains NaN or infinite values")
    if np.any(w < 0):
        raise ValueError("set_matrix weights must be non-negative")
    return w


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


def correlate_genes(
    expression,
    y,
    null_maps,
    *,
    method: str = "spearman",
    set_matrix=None,
    block_size: int = DEFAULT_BLOCK_SIZE,
    atol: float = 1e-9,
    keep_tail: int = 0,
    tail_min_exceedances: int = 10,
) -> AssociationResult:
    """Correlate every gene with a brain map and with spatial null maps.

    Parameters
    ----------
    expression : array_like, shape (n_regions, n_genes)
        Region x gene expression; must be finite.
    y : array_like, shape (n_regions,)
        The brain map (e.g. case-control effect sizes); must be finite.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of ``y``, one per column (e.g. ``y[spin_indices]``).
        May contain NaN (see Notes); infinite values are rejected.
    method : {"spearman", "pearson"}
        Correlation. Spearman is Pearson on average ranks (ties share the
        mean rank, as ``scipy.stats.rankdata``).
    set_matrix : array_like, shape (n_genes, n_sets), optional
        Gene-set membership (0/1) or non-negative weights. When given, the
        result carries ``null_set_scores``: for each null map, the weighted
        mean of the genes' null correlations per set (the spatial ensemble
        null of Fulcher et al. 2021).
    block_size : int
        Number of null maps processed at once; peak memory is about
        ``n_genes * block_size`` float64. Results do not depend on it (up to
        floating-point rounding of the last bit, absorbed by ``atol``).
    atol : float
        Tolerance for "as extreme as": a null correlation counts when
        ``|r_null| >= |r| - atol``. Spearman correlations over a few dozen
        regions take discrete values, so null values equal the observed one
        exactly in theory but differ in the last bits in floating point;
        the tolerance makes the count independent of rounding.
    keep_tail : int
        When positive, also keep the ``keep_tail`` largest ``|r_null|`` of
        every gene (``null_tail``) and the exceedance counts (``n_exceed``),
        for p values beyond the permutation floor (:func:`gene_table` with
        ``tail="gpd"``). Memory ``n_genes x keep_tail``, merged block by
        block; 0 (default) keeps nothing and changes nothing.
    tail_min_exceedances : int
        With ``keep_tail``: a gene whose count of null correlations at least
        as extreme as its own reaches this number uses the permutation p
        (Knijnenburg et al.'s rule, :func:`itx.tailp.gpd_pvalues`), so its
        tail stops being tracked; this keeps the cost of the tails to the
        few genes with small p (a few percent extra run time instead of
        several-fold).

    Returns
    -------
    AssociationResult

    Raises
    ------
    ValueError
        On shape mismatches, non-finite ``expression`` or ``y``, infinite
        null values, fewer than 3 regions, an unknown ``method``, a
        non-positive ``block_size`` or a negative ``atol``.

    Notes
    -----
    *Constant columns.* A gene that is constant across regions has an
    undefined correlation: its ``r``, ``p_spin`` and ``p_naive`` are NaN and
    it is left out of set means. A constant null map gives no null
    correlation and is left out of the counts (see ``n_valid_null``); its
    row of ``null_set_scores`` is NaN.

    *NaN in null maps.* A spin can move a region without data onto a region
    with data, so a null map may have NaN rows. Such a null column is
    correlated exactly as ``scipy.stats.spearmanr`` / ``pearsonr`` would on
    the rows where it is finite: both the expression and the null map are
    re-ranked (Spearman) and re-standardised over those rows only. Null
    columns sharing the same NaN pattern are processed together, so the cost
    is one re-ranking of the expression matrix per distinct NaN pattern plus
    the usual matrix products. A null column with fewer than 3 finite rows is
    treated as undefined. A gene that is constant on the finite rows of a
    null map has no null correlation for that map (not counted for that
    gene, and left out of that map's set means).

    *p values.* ``p_spin = (1 + k) / (1 + n_valid_null)`` where ``k`` counts
    null correlations with ``|r_null| >= |r| - atol``; the ``+1`` keeps the
    estimate valid (never 0) as recommended by Phipson & Smyth (2010). A
    gene without any null correlation (``n_valid_null == 0``, e.g. every
    null map has fewer than 3 finite rows) gets ``p_spin = NaN``, never
    ``(1 + 0) / (1 + 0) = 1``.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {_METHODS}")
    if (isinstance(block_size, (bool, np.bool_))
            or not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    atol = float(atol)
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    for name, v, low in (("keep_tail", keep_tail, 0),
                         ("tail_min_exceedances", tail_min_exceedances, 1)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")

    x = np.asarray(expression, dtype=np.float64)
    yv = np.asarray(y, dtype=np.float64)
    nulls = np.asarray(null_maps, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expression must be 2-D (n_regions, n_genes), got shape {x.shape}")
    n, n_genes = x.shape
    if yv.ndim != 1 or yv.shape[0] != n:
        raise ValueError(
            f"y must be 1-D with n_regions={n} values (rows of expression), got shape {yv.shape}"
        )
    if nulls.ndim != 2 or nulls.shape[0] != n:
        raise ValueError(
            f"null_maps must be 2-D (n_regions={n}, n_perm), got shape {nulls.shape}"
        )
    if n < 3:
        raise ValueError(f"need at least 3 regions to correlate, got {n}")
    if n_genes < 1:
        raise ValueError("expression has no genes (columns)")
    n_perm = nulls.shape[1]
    if n_perm < 1:
        raise ValueError("null_maps has no columns (n_perm = 0)")
    if not np.all(np.isfinite(x)):
        raise ValueError("expression contains NaN or infinite values; drop or impute them first")
    if not np.all(np.isfinite(yv)):
        raise ValueError("y contains NaN or infinite values; restrict to regions with data first")
    if np.any(np.isinf(nulls)):
        raise ValueError("null_maps contains infinite values (NaN is allowed, inf is not)")
    weights = None if set_matrix is None else _check_set_matrix(set_matrix, n_genes)

    rank = method == "spearman"

    # --- observed correlations ------------------------------------------
    x_ranks = _average_ranks(x) if rank else None
    zx, gene_ok = _standardise(x, rank, None if x_ranks is None else x_ranks.copy())
    zy, y_ok = _standardise(yv[:, None], rank)
    r = np.clip(zx.T @ zy[:, 0], -1.0, 1.0)
    if not y_ok[0]:
        gene_ok = np.zeros(n_genes, dtype=bool)  # constant map: nothing defined
    r[~gene_ok] = np.nan
    # Threshold for "at least as extreme"; NaN for undefined genes makes every
    # comparison False, and those genes get p = NaN at the end anyway.
    thr = np.abs(r) - atol

    counts = np.zeros(n_genes, dtype=np.int64)
    n_valid = np.zeros(n_genes, dtype=np.int64)
    null_set = None
    if weights is not None:
        null_set = np.full((n_perm, weights.shape[1]), np.nan)
    top = tailp.TopTail(n_genes, keep_tail) if keep_tail else None

    def run_group(zx_g, ok_g, cols, rows=None):
        """Correlate null columns ``cols`` that share their finite ``rows``."""
        # Weights of genes undefined in this group are zeroed so the set
        # means use only genes with a null correlation.
        w_g = None
        den = None
        if weights is not None:
            w_g = weights * ok_g[:, None]
            den = w_g.sum(axis=0)
        for start in range(0, cols.size, block_size):
            bcols = cols[start:start + block_size]
            block = nulls[:, bcols] if rows is None else nulls[np.ix_(rows, bcols)]
            zb, col_ok = _standardise(block, rank)
            if not np.all(col_ok):
                # constant null maps: no correlation defined, leave them out
                bcols, zb = bcols[col_ok], zb[:, col_ok]
                if bcols.size == 0:
                    continue
            rb = zx_g.T @ zb  # (n_genes, b) null correlations
            if w_g is not None:
                with np.errstate(divide="ignore", invalid="ignore"):
                    s = (rb.T @ w_g) / den
                null_set[bcols] = np.where(den > 0, s, np.nan)
            np.abs(rb, out=rb)
            # (bool).sum is faster than np.count_nonzero(axis=1) here
            hits = (rb >= thr[:, None]).sum(axis=1)
            if top is not None:
                # counts only grow: a gene at the limit never needs its tail again
                top.add(rb, ok_g & (counts < tail_min_exceedances))
            counts[ok_g] += hits[ok_g]
            n_valid[ok_g] += bcols.size

    finite = np.isfinite(nulls)
    col_complete = finite.all(axis=0)

    # --- fast path: null maps without NaN ----------------------------------
    cols_full = np.flatnonzero(col_complete)
    if cols_full.size:
        run_group(zx, gene_ok, cols_full)

    # --- null maps with NaN: group by identical NaN pattern ----------------
    cols_nan = np.flatnonzero(~col_complete)
    if cols_nan.size:
        patterns, inverse = np.unique(finite[:, cols_nan].T, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        for k, rows in enumerate(patterns):
            cols = cols_nan[inverse == k]
            if rows.sum() < 3:
                continue  # too few regions: undefined, left out of the counts
            sub_ranks = None
            if rank and (~rows).sum() <= _MAX_DROPPED_FOR_UPDATE:
                sub_ranks = _subset_ranks(x, x_ranks, rows)
            zx_k, ok_k = _standardise(x[rows], rank, sub_ranks)
            ok_k &= gene_ok
            run_group(zx_k, ok_k, cols, rows)

    null_tail = None
    if top is not None:
        null_tail = top.sorted()
        null_tail[counts >= tail_min_exceedances] = np.nan
    p_spin = (1.0 + counts) / (1.0 + n_valid)
    # no null correlation at all: there is no null distribution to compare with
    p_spin[~gene_ok | (n_valid == 0)] = np.nan
    p_naive = _parametric_p(r, n)

    return AssociationResult(
        r=r,
        p_spin=p_spin,
        p_naive=p_naive,
        n_regions=n,
        n_perm=n_perm,
        method=method,
        n_valid_null=n_valid,
        null_set_scores=null_set,
        atol=atol,
        n_exceed=counts if keep_tail else None,
        null_tail=null_tail,
        tail_min_exceedances=int(tail_min_exceedances),
    )


class NullMapWarning(UserWarning):
    """A null p value rests on no null map (left empty) or on fewer than were made."""


def usable_nulls(null_maps, min_rows: int = 3) -> np.ndarray:
    """Which null maps can give a null statistic over the rows they have.

    Parameters
    ----------
    null_maps : array_like, shape (n_regions, n_perm)
        Null maps restricted to the regions of a test; NaN = no value.
    min_rows : int
        Fewest finite rows a null map needs (3 for a correlation, 4 for PLS).

    Returns
    -------
    numpy.ndarray of bool, shape (n_perm,)
        True for null maps with at least `min_rows` finite values that are
        not all equal.
    """
    v = np.asarray(null_maps, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"null_maps must be 2-D (n_regions, n_perm), got shape {v.shape}")
    finite = np.isfinite(v)
    enough = finite.sum(axis=0) >= int(min_rows)
    if not v.size:
        return enough
    hi = np.where(finite, v, -np.inf).max(axis=0)
    lo = np.where(finite, v, np.inf).min(axis=0)
    return enough & (hi > lo)


def report_null_use(n_null, n_perm: int, *, what: str, name, n_regions=None,
                    defined=None, min_rows: int = 3, logger=None) -> None:
    """Warn about tests whose p value has no null map, or rests on few of them.

    A p value is left empty (NaN) where no null map gave a null statistic;
    this puts the reason and the remedy into the rule's log
    (:class:`NullMapWarning`, which :func:`itx.tables.log_to_file` captures).
    When tests use fewer null maps than were made, the log says how many:
    a warning when some use fewer than half (their smallest possible p is
    ``1 / (1 + n_null)``), an INFO line otherwise.

    Parameters
    ----------
    n_null : array_like of int
        Null maps used by each test (gene, set, cell type, component...).
    n_perm : int
        Null maps made.
    what : str
        The table, e.g. ``'genes'`` or ``'PLS'``.
    name : str or None
        The map, for the message.
    n_regions : int, optional
        Regions of the test.
    defined : array_like of bool, optional
        Tests whose observed statistic is defined (others have no p anyway
        and are not counted).
    min_rows : int
        Fewest regions with a value a null map needs for this test.
    logger : logging.Logger, optional
        Where the INFO line goes (default ``itx.nulls``).
    """
    import logging
    import warnings

    n_null = np.atleast_1d(np.asarray(n_null, dtype=np.int64))
    ok = np.ones(n_null.shape, dtype=bool) if defined is None else np.asarray(defined, dtype=bool)
    if not ok.any():
        return
    used = n_null[ok]
    n_perm = int(n_perm)
    label = f"map {name!r}" if name is not None else "the map"
    regions = "the regions tested" if n_regions is None else f"the {int(n_regions)} regions tested"
    cause = ("This happens when the map lacks values in many scope regions and a spin null moves "
             "those gaps onto the regions tested. Fill in the map's missing regions, or give the "
             "map a null made over its own regions (nulls.method or the maps sheet's null_method: "
             "burt2020 or moran).")
    zero = int((used == 0).sum())
    if zero:
        warnings.warn(
            f"{what} of {label}: {zero} of {used.size} test(s) have no usable null map, so their p "
            f"(and q) values are left empty: none of the {n_perm} null maps has values in at "
            f"least {int(min_rows)} of {regions} (and varies over them). {cause}",
            NullMapWarning, stacklevel=3)
    partial = used[(used > 0) & (used < n_perm)]
    if not partial.size:
        return
    lo, hi = int(partial.min()), int(partial.max())
    if 2 * lo < n_perm:
        warnings.warn(
            f"{what} of {label}: {partial.size} test(s) rest on only {lo}-{hi} of the {n_perm} "
            f"null maps (smallest possible p {1 / (1 + lo):.2g}); the other null maps have values "
            f"in fewer than {int(min_rows)} of {regions} or are constant there. {cause}",
            NullMapWarning, stacklevel=3)
    else:
        (logger or logging.getLogger("itx.nulls")).info(
            "%s of %s: %d test(s) use %d-%d of the %d null maps (the others have values in "
            "fewer than %d of %s or are constant there)", what, label, partial.size, lo, hi,
            n_perm, int(min_rows), regions)


def fdr_bh(p) -> np.ndarray:
    """Benjamini-Hochberg adjusted p values (q values), NaN-aware.

    Parameters
    ----------
    p : array_like, 1-D
        p values in [0, 1]; NaN entries are allowed.

    Returns
    -------
    numpy.ndarray
        q values in the input order. NaN inputs stay NaN and are not counted
        in the number of tests ``m``. Matches
        ``scipy.stats.false_discovery_control(p, method="bh")`` on the
        non-NaN entries.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p.shape}")
    q = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    pv = p[ok]
    if pv.size == 0:
        return q
    if np.any((pv < 0) | (pv > 1)):
        raise ValueError("p values must lie in [0, 1]")
    m = pv.size
    order = np.argsort(pv, kind="stable")
    scaled = pv[order] * m / np.arange(1, m + 1)
    # step-up: q_(i) = min_{j >= i} p_(j) m / j
    scaled = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(scaled, 1.0)
    q[ok] = out
    return q


def gene_table(genes: Sequence[str], result: AssociationResult, *, tail: str = "none",
               **tail_options) -> pd.DataFrame:
    """Tabulate per-gene results with BH q values.

    Parameters
    ----------
    genes : sequence of str, length n_genes
        Gene symbols in the column order of the expression matrix.
    result : AssociationResult
    tail : {"none", "gpd"}
        ``"gpd"`` adds ``p_gpd, q_gpd, tail_method`` after ``q_spin``: p
        values beyond the permutation floor from a generalised Pareto fit to
        each gene's largest null ``|r|`` (:func:`itx.tailp.gpd_pvalues`);
        ``result`` must come from :func:`correlate_genes` with
        ``keep_tail = n_tail + 1`` (see :func:`itx.tailp.tail_size`).
    **tail_options
        Passed to :func:`itx.tailp.gpd_pvalues` (``min_exceedances``,
        ``n_tail``, ``step``, ``min_tail``, ``fit_alpha``).

    Returns
    -------
    pandas.DataFrame
        Columns ``gene, r, p_spin, q_spin, p_naive, q_naive`` (with
        ``tail="gpd"``: ``gene, r, p_spin, q_spin, p_gpd, q_gpd,
        tail_method, p_naive, q_naive``; ``tail_method`` is one of
        :data:`itx.tailp.METHODS`, ``p_gpd`` equals ``p_spin`` except where
        it is ``gpd``/``gpd_bound``). Rows are
        sorted by ``p_spin`` ascending, then by ``|r|`` descending (so among
        genes with equal spatial p the strongest correlations come first),
        then by input order; genes with undefined ``r`` (NaN) come last.
        q values are Benjamini-Hochberg over the genes with a defined p.
    """
    genes = list(genes)
    if len(genes) != result.r.shape[0]:
        raise ValueError(
            f"got {len(genes)} gene names for {result.r.shape[0]} correlations"
        )
    df = pd.DataFrame(
        {
            "gene": genes,
            "r": result.r,
            "p_spin": result.p_spin,
            "q_spin": fdr_bh(result.p_spin),
            "p_naive": result.p_naive,
            "q_naive": fdr_bh(result.p_naive),
        }
    )
    if tailp.check_tail(tail) == "gpd":
        if result.null_tail is None or result.n_exceed is None:
            raise ValueError("tail='gpd' needs the null tails: run correlate_genes with "
                             "keep_tail = n_tail + 1 (e.g. 251)")
        if tail_options.get("min_exceedances", 10) > result.tail_min_exceedances:
            raise ValueError(
                f"min_exceedances={tail_options['min_exceedances']} needs the null tails of genes "
                f"with up to that many exceedances; run correlate_genes with "
                f"tail_min_exceedances >= {tail_options['min_exceedances']}")
        gp = tailp.gpd_pvalues(np.abs(result.r), result.null_tail, result.n_valid_null,
                               result.n_exceed, result.p_spin, **tail_options)
        at = df.columns.get_loc("q_spin") + 1
        df.insert(at, "p_gpd", gp.p)
        df.insert(at + 1, "q_gpd", fdr_bh(gp.p))
        df.insert(at + 2, "tail_method", gp.method)
    # lexsort: last key is primary; NaN sorts last; ties keep input order.
    order = np.lexsort((np.arange(len(df)), -np.abs(result.r), result.p_spin))
    return df.iloc[order].reset_index(drop=True)
