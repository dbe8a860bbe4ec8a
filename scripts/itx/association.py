"""Gene-map correlations with spatial-permutation ("spin") null p values.

The core routine, :func:`correlate_genes`, correlates every gene of a
region x gene expression matrix with a brain map and with each null version
of that map, counting for each gene how often a null correlation is at
least as extreme as the observed one. Everything is done with matrix
products on standardised (ranked, for Spearman) columns, and the null maps
are processed in blocks so memory scales with ``n_genes x block_size``,
never with ``n_genes x n_perm``.

The same pass over the null maps gives the null distribution of gene-set
scores used by the spatial ensemble null of Fulcher et al. (2021, Nat
Commun 12:2669): each null map yields a null correlation for every gene, and
a set's null score is the (weighted) mean of those null correlations over
the set's genes. As a null gene correlation is a dot product of two
standardised columns, ``zx[:, g] . zb[:, p]``, the set's null score is
``zb[:, p] . (zx @ w)[:, s] / den[s]``: the expression is projected onto the
sets once (n_regions x n_sets) and each null map costs one short dot product
per set, so thousands of sets (GO collections) cost little more than seven
(``scripts/tools/bench_enrichment_go.py``).
Exceedances are counted per set as the null maps stream past, like the
genes' ``p_spin``; the null scores themselves are kept only for the sets
asked for (:func:`null_set_scores` recomputes them for a few sets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import sparse, stats

from . import tailp

__all__ = [
    "AssociationResult",
    "NullMapWarning",
    "SetNullCounts",
    "correlate_genes",
    "fdr_bh",
    "gene_table",
    "null_set_scores",
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

#: Cap on the null set scores held at once: a block of null maps times a block
#: of sets, float64 (2**21 elements = 16 MB; with the temporaries of the counts
#: the set path stays under about 64 MB whatever the number of sets).
SET_BLOCK_ELEMENTS = 1 << 21

#: Sets whose observed scores are computed in one dense (n_genes x k) product
#: when the membership is sparse. A collection of up to this many sets gets
#: exactly the numbers of the dense membership of :func:`itx.genesets.match_gene_sets`
#: (same BLAS call on the same Fortran-ordered matrix); 256 columns of 15,633
#: genes are 32 MB.
_DENSE_SET_COLUMNS = 256

_ALTERNATIVES = ("two-sided", "greater", "less")


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
    null_set_scores : numpy.ndarray, shape (n_perm, n_kept), or None
        Only when ``set_matrix`` was given and ``keep_set_nulls`` asked for
        null scores: for each null map, the (weighted) mean null correlation
        of the genes of each kept set (columns ``null_set_columns``); NaN
        where undefined.
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
    set_null : SetNullCounts or None
        Only when ``set_matrix`` was given: the sets' observed scores and
        their spatial p values, counted over every null map.
    null_set_columns : numpy.ndarray of int or None
        Sets (columns of ``set_matrix``) whose null scores are the columns of
        ``null_set_scores``.
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
    set_null: Optional["SetNullCounts"] = None
    null_set_columns: Optional[np.ndarray] = None


@dataclass(frozen=True)
class SetNullCounts:
    """Spatial ensemble null of gene sets, counted while the null maps stream past.

    Attributes
    ----------
    score : numpy.ndarray, shape (n_sets,)
        Observed set scores, :func:`itx.enrichment.set_scores` of ``r`` and
        the set matrix (NaN for a set without a gene of defined ``r``).
    n_exceed : numpy.ndarray of int, shape (n_sets,)
        Null scores at least as extreme as the observed one, in the
        direction of ``alternative``: ``|null| >= |score| - atol``
        (two-sided), ``null >= score - atol`` (greater), ``null <= score +
        atol`` (less).
    n_null : numpy.ndarray of int, shape (n_sets,)
        Null maps that gave the set a null score (defined null map, and at
        least one of the set's genes with a null correlation).
    p : numpy.ndarray, shape (n_sets,)
        ``(1 + n_exceed) / (1 + n_null)``; NaN where ``score`` is NaN or
        ``n_null`` is 0. The p value of
        :func:`itx.enrichment.spatial_enrichment` on the full null scores.
    alternative : str
        Direction of the counts.
    atol : float
        Tie tolerance of the counts.
    top : numpy.ndarray, shape (n_sets, keep_set_tail), or None
        With ``keep_set_tail``: the largest null scores of each set oriented
        by ``alternative`` (``|null|``, ``null``, ``-null``), descending,
        ``-inf`` padded, for the generalised Pareto tail
        (:func:`itx.tailp.gpd_pvalues`); NaN rows for sets with
        ``n_exceed >= tail_min_exceedances``.
    tail_min_exceedances : int
        See :func:`correlate_genes`.
    """

    score: np.ndarray
    n_exceed: np.ndarray
    n_null: np.ndarray
    p: np.ndarray
    alternative: str
    atol: float
    top: Optional[np.ndarray] = None
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


def _set_means(values: np.ndarray, weights) -> np.ndarray:
    """Weighted mean of ``values`` over each set, ignoring NaN values.

    Parameters
    ----------
    values : ndarray, shape (n_genes,) or (n_genes, k)
    weights : ndarray or scipy.sparse matrix, shape (n_genes, n_sets), non-negative

    Returns
    -------
    ndarray, shape (n_sets,) or (k, n_sets)
        ``sum_g w_gs v_g / sum_g w_gs`` over genes with finite ``v_g``; NaN
        where a set has no weight on finite values.
    """
    if sparse.issparse(weights):
        # dense blocks of sets, Fortran-ordered as a DataFrame's values are:
        # the same BLAS call as for the dense membership, so the same bits
        n_sets = weights.shape[1]
        parts = [_set_means(values, weights[:, a:a + _DENSE_SET_COLUMNS].toarray(order="F"))
                 for a in range(0, n_sets, _DENSE_SET_COLUMNS)]
        if not parts:
            return np.empty(np.shape(values)[1:] + (0,))
        return np.concatenate(parts, axis=-1)
    finite = np.isfinite(values)
    num = np.where(finite, values, 0.0).T @ weights
    den = finite.astype(np.float64).T @ weights
    with np.errstate(divide="ignore", invalid="ignore"):
        out = num / den
    return np.where(den > 0, out, np.nan)


def _check_set_matrix(set_matrix, n_genes: int):
    """Validated set matrix: a float64 array, or a CSC matrix for sparse input."""
    if sparse.issparse(set_matrix):
        w = sparse.csc_array(set_matrix, dtype=np.float64)
        if w.ndim != 2 or w.shape[0] != n_genes:
            raise ValueError(
                f"set_matrix must have shape (n_genes, n_sets) = ({n_genes}, n_sets); "
                f"got {w.shape}"
            )
        if not np.all(np.isfinite(w.data)):
            raise ValueError("set_matrix contains NaN or infinite values")
        if np.any(w.data < 0):
            raise ValueError("set_matrix weights must be non-negative")
        w = w.copy()
        w.eliminate_zeros()
        w.sort_indices()
        return w
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


def _oriented(values, alternative: str):
    """Statistic oriented so that large = extreme: ``|v|``, ``v`` or ``-v``."""
    if alternative == "two-sided":
        return np.abs(values)
    return values if alternative == "greater" else -values


def _check_alternative(alternative: str) -> str:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"unknown set_alternative {alternative!r}; expected one of "
                         f"{_ALTERNATIVES}")
    return alternative


def _check_count(name: str, v, low: int) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {v!r}")
    return int(v)


def _kept_sets(keep, n_sets: int) -> np.ndarray:
    """Columns whose null scores are kept: all (True), none (False) or those listed."""
    if isinstance(keep, (bool, np.bool_)):
        return np.arange(n_sets) if keep else np.arange(0)
    idx = np.asarray(keep)
    if idx.ndim != 1 or (idx.size and idx.dtype.kind not in "iu"):
        raise ValueError("keep_set_nulls must be True, False or a 1-D list of set column "
                         f"indices; got {keep!r}")
    idx = idx.astype(np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_sets):
        raise ValueError(f"keep_set_nulls lists columns outside 0..{n_sets - 1}")
    if np.unique(idx).size != idx.size:
        raise ValueError("keep_set_nulls lists a set column more than once")
    return idx


def _check_inputs(expression, y, null_maps):
    """Validated float64 expression, map and null maps (see :func:`correlate_genes`)."""
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
    if nulls.shape[1] < 1:
        raise ValueError("null_maps has no columns (n_perm = 0)")
    if not np.all(np.isfinite(x)):
        raise ValueError("expression contains NaN or infinite values; drop or impute them first")
    if not np.all(np.isfinite(yv)):
        raise ValueError("y contains NaN or infinite values; restrict to regions with data first")
    if np.any(np.isinf(nulls)):
        raise ValueError("null_maps contains infinite values (NaN is allowed, inf is not)")
    return x, yv, nulls


def _observed(x: np.ndarray, yv: np.ndarray, rank: bool):
    """Ranks, standardised expression, defined genes and observed r."""
    x_ranks = _average_ranks(x) if rank else None
    zx, gene_ok = _standardise(x, rank, None if x_ranks is None else x_ranks.copy())
    zy, y_ok = _standardise(yv[:, None], rank)
    r = np.clip(zx.T @ zy[:, 0], -1.0, 1.0)
    if not y_ok[0]:
        gene_ok = np.zeros(x.shape[1], dtype=bool)  # constant map: nothing defined
    r[~gene_ok] = np.nan
    return x_ranks, zx, gene_ok, r


def _null_groups(x, x_ranks, zx, gene_ok, nulls, rank: bool):
    """Null maps grouped by the rows where they are finite.

    Yields ``(zx_g, ok_g, cols, rows)``: the expression standardised over
    ``rows`` (``None`` = all rows, the null maps without NaN), the genes
    defined there, and the null columns of the group. Patterns with fewer
    than 3 rows are skipped (no correlation defined).
    """
    finite = np.isfinite(nulls)
    col_complete = finite.all(axis=0)
    cols_full = np.flatnonzero(col_complete)
    if cols_full.size:
        yield zx, gene_ok, cols_full, None
    cols_nan = np.flatnonzero(~col_complete)
    if not cols_nan.size:
        return
    patterns, inverse = np.unique(finite[:, cols_nan].T, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    # columns of each pattern in their original order (a stable sort, not a
    # scan of all columns per pattern: null maps may have thousands of patterns)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    for k, rows in enumerate(patterns):
        cols = cols_nan[order[bounds[k]:bounds[k + 1]]]
        if rows.sum() < 3:
            continue  # too few regions: undefined, left out of the counts
        sub_ranks = None
        if rank and (~rows).sum() <= _MAX_DROPPED_FOR_UPDATE:
            sub_ranks = _subset_ranks(x, x_ranks, rows)
        zx_k, ok_k = _standardise(x[rows], rank, sub_ranks)
        yield zx_k, ok_k & gene_ok, cols, rows


def _null_blocks(nulls, cols, rows, rank: bool, block_size: int):
    """Standardised blocks ``(bcols, zb)`` of the null columns of one group.

    Constant null maps (no correlation defined) are left out.
    """
    for start in range(0, cols.size, block_size):
        bcols = cols[start:start + block_size]
        block = nulls[:, bcols] if rows is None else nulls[np.ix_(rows, bcols)]
        zb, col_ok = _standardise(block, rank)
        if not np.all(col_ok):
            bcols, zb = bcols[col_ok], zb[:, col_ok]
            if bcols.size == 0:
                continue
        yield bcols, zb


class _SetNullStream:
    """Null scores of gene sets from blocks of standardised null maps.

    A set's null score for null map p is ``sum_g w_gs r_gp / den_s`` with
    ``r_gp = zx_g[:, g] . zb[:, p]`` over the genes ``g`` defined in the
    group of ``p`` (weights of undefined genes are zeroed, and ``den_s``
    sums the remaining weights). Per group of null maps (one NaN pattern)
    the product is associated the cheaper way:

    * projection (the usual case: at least as many null maps as rows): the
      expression is projected onto the sets once, ``profiles[s] = sum_g
      w_gs zx_g[:, g]`` (n_sets x n_rows), and a block of null maps costs one
      (b x n_rows) @ (n_rows x n_sets) product;
    * a group of fewer null maps than rows (a rare NaN pattern) sums the null
      gene correlations of its few maps over each set's genes instead
      (n_sets x n_genes sparse @ n_genes x b), which costs less than the
      projection it would need.

    Both give the same numbers up to rounding in the last bits. Sets are
    taken a block at a time, so memory is bounded by ``block_size x
    set_block`` float64 whatever the number of sets.

    Parameters
    ----------
    weights : scipy.sparse.csc_array, shape (n_genes, n_sets)
    score : ndarray, shape (n_sets,), or None
        Observed set scores to count exceedances against (None: no counts).
    n_perm : int
    alternative : str
    atol : float
    keep : ndarray of int
        Sets whose null scores are stored.
    keep_tail : int
        Largest oriented null scores kept per set (0: none).
    tail_min_exceedances : int
    set_block : int
        Sets per block.
    """

    def __init__(self, weights, score, n_perm: int, *, alternative: str, atol: float,
                 keep: np.ndarray, keep_tail: int, tail_min_exceedances: int, set_block: int):
        n_sets = weights.shape[1]
        wt = sparse.csr_array(weights.T)  # row s: the weights of set s
        self.blocks = [slice(a, min(a + set_block, n_sets)) for a in range(0, n_sets, set_block)]
        self.wt = [wt[blk] for blk in self.blocks]
        self.den_all = [np.asarray(w @ np.ones(w.shape[1])) for w in self.wt]
        self.alternative = alternative
        self.tail_min = tail_min_exceedances
        self.keep_tail = keep_tail
        self.pos = np.full(n_sets, -1, dtype=np.int64)
        self.pos[keep] = np.arange(keep.size)
        self.null = np.full((n_perm, keep.size), np.nan) if keep.size else None
        self.count = score is not None
        if self.count:
            self.thr = _oriented(score, alternative) - atol
            self.n_exceed = np.zeros(n_sets, dtype=np.int64)
            self.n_null = np.zeros(n_sets, dtype=np.int64)
        self.tops = ([tailp.TopTail(b.stop - b.start, keep_tail) for b in self.blocks]
                     if keep_tail and self.count else None)

    def start_group(self, zx_g: np.ndarray, ok_g: np.ndarray, n_cols: int) -> None:
        """Prepare the sets for a group of ``n_cols`` null maps with expression ``zx_g``."""
        # genes without a null correlation in this group are left out of the means
        self.mask = None if ok_g.all() else ok_g.astype(np.float64)
        self.den = (self.den_all if self.mask is None
                    else [np.asarray(w @ self.mask) for w in self.wt])
        self.has = [d > 0 for d in self.den]
        self.direct = n_cols < zx_g.shape[0]
        if self.direct:
            self.zx = zx_g
        else:
            zm = zx_g if self.mask is None else zx_g * self.mask
            self.profiles = [np.asarray(w @ zm.T) for w in self.wt]  # (sets, n_rows)

    def add(self, bcols: np.ndarray, zb: np.ndarray, rb: Optional[np.ndarray] = None) -> None:
        """Null scores of the null maps ``bcols``.

        ``zb``: their standardised columns; ``rb``: the genes' null
        correlations ``zx_g.T @ zb`` when the caller has them.
        """
        if self.direct:
            if rb is None:
                rb = self.zx.T @ zb
            if self.mask is not None:
                rb = rb * self.mask[:, None]
        for k, blk in enumerate(self.blocks):
            den, has = self.den[k], self.has[k]
            prod = (self.wt[k] @ rb).T if self.direct else zb.T @ self.profiles[k].T
            with np.errstate(divide="ignore", invalid="ignore"):
                s = prod / den
            s = np.where(has, s, np.nan)  # (b, sets of the block)
            pos = self.pos[blk]
            if self.null is not None and (pos >= 0).any():
                sel = np.flatnonzero(pos >= 0)
                self.null[np.ix_(bcols, pos[sel])] = s[:, sel]
            if not self.count:
                continue
            o = _oriented(s, self.alternative)
            # NaN (set undefined here) compares False: not counted
            hits = (o >= self.thr[blk]).sum(axis=0)
            n_exceed = self.n_exceed[blk]
            if self.tops is not None:
                # counts only grow: a set at the limit never needs its tail again
                rows = has & (n_exceed < self.tail_min)
                if rows.any():
                    self.tops[k].add(o.T, rows)
            n_exceed += hits
            self.n_null[blk] += bcols.size * has

    def counts(self, score: np.ndarray, atol: float) -> SetNullCounts:
        """The per-set counts and p values once every null map has passed."""
        p = (1.0 + self.n_exceed) / (1.0 + self.n_null)
        # no null score at all: no null distribution to compare with
        p = np.where(np.isnan(score) | (self.n_null == 0), np.nan, p)
        top = None
        if self.tops is not None:
            top = (np.concatenate([t.sorted() for t in self.tops]) if self.tops
                   else np.empty((0, self.keep_tail)))
            top[self.n_exceed >= self.tail_min] = np.nan
        return SetNullCounts(score=score, n_exceed=self.n_exceed, n_null=self.n_null, p=p,
                             alternative=self.alternative, atol=atol, top=top,
                             tail_min_exceedances=self.tail_min)


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
    set_alternative: str = "two-sided",
    keep_set_nulls=True,
    keep_set_tail: int = 0,
    set_block_size: Optional[int] = None,
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
    set_matrix : array_like or scipy.sparse matrix, shape (n_genes, n_sets), optional
        Gene-set membership (0/1) or non-negative weights; sparse (e.g. CSC)
        for large collections. When given, the result carries ``set_null``
        (observed set scores, exceedance counts and p values of the spatial
        ensemble null of Fulcher et al. 2021, counted over every null map)
        and, for the sets of ``keep_set_nulls``, ``null_set_scores``: for
        each null map, the weighted mean of the genes' null correlations.
    block_size : int
        Number of null maps processed at once; peak memory is about
        ``n_genes * block_size`` float64. Results do not depend on it (up to
        floating-point rounding of the last bit, absorbed by ``atol``).
    atol : float
        Tolerance for "as extreme as": a null correlation counts when
        ``|r_null| >= |r| - atol``. Spearman correlations over a few dozen
        regions take discrete values, so null values equal the observed one
        exactly in theory but differ in the last bits in floating point;
        the tolerance makes the count independent of rounding. The set
        counts use the same tolerance.
    keep_tail : int
        When positive, also keep the ``keep_tail`` largest ``|r_null|`` of
        every gene (``null_tail``) and the exceedance counts (``n_exceed``),
        for p values beyond the permutation floor (:func:`gene_table` with
        ``tail="gpd"``). Memory ``n_genes x keep_tail``, merged block by
        block; 0 (default) keeps nothing and changes nothing.
    tail_min_exceedances : int
        With ``keep_tail`` (or ``keep_set_tail``): a gene (set) whose count
        of null values at least as extreme as its own reaches this number
        uses the permutation p (Knijnenburg et al.'s rule,
        :func:`itx.tailp.gpd_pvalues`), so its tail stops being tracked;
        this keeps the cost of the tails to the few tests with small p (a
        few percent extra run time instead of several-fold).
    set_alternative : {"two-sided", "greater", "less"}
        Direction of the set counts (see :class:`SetNullCounts`), as the
        ``alternative`` of :func:`itx.enrichment.spatial_enrichment`.
    keep_set_nulls : bool or sequence of int
        Sets whose null scores are returned in ``null_set_scores``: all
        (True, default; ``n_perm x n_sets`` float64), none (False), or the
        listed columns of ``set_matrix`` in that order. The p values do not
        need them.
    keep_set_tail : int
        When positive, ``set_null.top`` keeps the ``keep_set_tail`` largest
        null scores of each set (oriented by ``set_alternative``) for the
        generalised Pareto tail of :func:`itx.enrichment.enrichment_table`
        (``tail="gpd"``, ``keep_set_tail = tail_size(n_perm) + 1``).
    set_block_size : int, optional
        Sets scored at once; default ``SET_BLOCK_ELEMENTS // block_size``
        (8,192 with the default block), which bounds the null scores held at
        once to 16 MB. Results do not depend on it.

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
    is one re-ranking of the expression matrix (and one projection onto the
    sets) per distinct NaN pattern plus the usual matrix products. A null
    column with fewer than 3 finite rows is treated as undefined. A gene
    that is constant on the finite rows of a null map has no null
    correlation for that map (not counted for that gene, and left out of
    that map's set means: its weight is zeroed and the set's denominator
    is the sum of the remaining weights; a set left without genes has no
    null score for that map).

    *Sets.* A set's null score is ``zb . (zx @ w)[:, s] / den[s]``: the
    expression is projected onto the sets once per group of null maps
    sharing a NaN pattern (a pattern shared by fewer null maps than it has
    rows sums those maps' null gene correlations over each set instead,
    which is cheaper there). Either equals the weighted mean of the genes'
    null correlations up to rounding in the last bits (summation order),
    far below ``atol``. Memory of the set path: the projection (``n_sets x
    n_regions``), the set matrix, and one block of null scores
    (``block_size x set_block_size``); never ``n_perm x n_sets`` unless
    ``keep_set_nulls`` asks for it. Cost: about one extra matrix product of
    ``block_size x n_regions x n_sets`` per block (a fraction of the genes'
    own) plus a sparse product per NaN pattern.

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
    keep_tail = _check_count("keep_tail", keep_tail, 0)
    tail_min_exceedances = _check_count("tail_min_exceedances", tail_min_exceedances, 1)
    keep_set_tail = _check_count("keep_set_tail", keep_set_tail, 0)
    _check_alternative(set_alternative)
    if set_block_size is not None:
        set_block_size = _check_count("set_block_size", set_block_size, 1)

    x, yv, nulls = _check_inputs(expression, y, null_maps)
    n, n_genes = x.shape
    n_perm = nulls.shape[1]
    weights = None if set_matrix is None else _check_set_matrix(set_matrix, n_genes)
    rank = method == "spearman"

    # --- observed correlations ------------------------------------------
    x_ranks, zx, gene_ok, r = _observed(x, yv, rank)
    # Threshold for "at least as extreme"; NaN for undefined genes makes every
    # comparison False, and those genes get p = NaN at the end anyway.
    thr = np.abs(r) - atol

    counts = np.zeros(n_genes, dtype=np.int64)
    n_valid = np.zeros(n_genes, dtype=np.int64)
    top = tailp.TopTail(n_genes, keep_tail) if keep_tail else None
    sets = set_score = keep = None
    if weights is not None:
        # the observed scores exactly as itx.enrichment.set_scores gives them
        set_score = _set_means(r, weights)
        keep = _kept_sets(keep_set_nulls, weights.shape[1])
        sets = _SetNullStream(
            sparse.csc_array(weights), set_score, n_perm, alternative=set_alternative,
            atol=atol, keep=keep, keep_tail=keep_set_tail,
            tail_min_exceedances=tail_min_exceedances,
            set_block=set_block_size or max(1, SET_BLOCK_ELEMENTS // block_size))

    for zx_g, ok_g, cols, rows in _null_groups(x, x_ranks, zx, gene_ok, nulls, rank):
        if sets is not None:
            sets.start_group(zx_g, ok_g, cols.size)
        for bcols, zb in _null_blocks(nulls, cols, rows, rank, block_size):
            rb = zx_g.T @ zb  # (n_genes, b) null correlations
            if sets is not None:
                sets.add(bcols, zb, rb)
            np.abs(rb, out=rb)
            # (bool).sum is faster than np.count_nonzero(axis=1) here
            hits = (rb >= thr[:, None]).sum(axis=1)
            if top is not None:
                # counts only grow: a gene at the limit never needs its tail again
                top.add(rb, ok_g & (counts < tail_min_exceedances))
            counts[ok_g] += hits[ok_g]
            n_valid[ok_g] += bcols.size

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
        null_set_scores=None if sets is None else sets.null,
        atol=atol,
        n_exceed=counts if keep_tail else None,
        null_tail=null_tail,
        tail_min_exceedances=int(tail_min_exceedances),
        set_null=None if sets is None else sets.counts(set_score, atol),
        null_set_columns=keep,
    )


def null_set_scores(expression, y, null_maps, set_matrix, *, method: str = "spearman",
                    block_size: int = DEFAULT_BLOCK_SIZE,
                    set_block_size: Optional[int] = None) -> np.ndarray:
    """Spatial ensemble null scores of a few gene sets, without the gene tests.

    The second, cheap pass of a large collection: :func:`correlate_genes`
    counts every set's p value without storing its null scores; this gives
    the null scores of the sets to be shown (e.g. the top 20), by the same
    projection, re-standardising only the genes of those sets.

    Parameters
    ----------
    expression, y, null_maps, method, block_size, set_block_size
        As for :func:`correlate_genes` (the same ``expression``, ``y`` and
        ``null_maps``).
    set_matrix : array_like or scipy.sparse matrix, shape (n_genes, n_sets)
        The sets (e.g. columns of the matrix given to
        :func:`correlate_genes`).

    Returns
    -------
    numpy.ndarray, shape (n_perm, n_sets)
        Null scores, equal to ``correlate_genes(..., set_matrix=set_matrix)
        .null_set_scores`` up to rounding in the last bits; NaN where
        undefined.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {_METHODS}")
    block_size = _check_count("block_size", block_size, 1)
    if set_block_size is not None:
        set_block_size = _check_count("set_block_size", set_block_size, 1)
    x, yv, nulls = _check_inputs(expression, y, null_maps)
    w = sparse.csc_array(_check_set_matrix(set_matrix, x.shape[1]))
    n_perm, n_sets = nulls.shape[1], w.shape[1]
    genes = np.unique(w.indices)  # genes of some set; the others add nothing
    if not genes.size:
        return np.full((n_perm, n_sets), np.nan)
    x, w = x[:, genes], w[genes, :]
    rank = method == "spearman"
    x_ranks, zx, gene_ok, _ = _observed(x, yv, rank)
    sets = _SetNullStream(w, None, n_perm, alternative="two-sided", atol=0.0,
                          keep=np.arange(n_sets), keep_tail=0, tail_min_exceedances=1,
                          set_block=set_block_size or max(1, SET_BLOCK_ELEMENTS // block_size))
    for zx_g, ok_g, cols, rows in _null_groups(x, x_ranks, zx, gene_ok, nulls, rank):
        sets.start_group(zx_g, ok_g, cols.size)
        for bcols, zb in _null_blocks(nulls, cols, rows, rank, block_size):
            sets.add(bcols, zb)
    return sets.null if sets.null is not None else np.full((n_perm, 0), np.nan)


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
