"""Gene-set (cell-type) enrichment of gene-map correlations.

A set's score is the mean correlation of its genes with the map. Two nulls
are offered:

* the spatial ensemble null (Fulcher et al. 2021, Nat Commun 12:2669): the
  set score recomputed for every spatial null map (spins), from the null
  gene correlations produced by :func:`itx.association.correlate_genes`
  with ``set_matrix``. It keeps both the spatial autocorrelation of the map
  and the co-expression of the set's genes, and is the one to report;
* the random-gene null: the score of size-matched random gene sets. It
  ignores gene-gene co-expression and spatial autocorrelation and is known
  to be anti-conservative; it is given for comparison.

Every function takes the set matrix dense (array, DataFrame) or sparse
(``scipy.sparse``, e.g. CSC): a GO collection of thousands of sets over
15,633 genes is 625 MB dense and a few MB sparse. The numbers do not depend
on the format (set scores of up to 256 sets are bitwise those of the dense
matrix; counts, ranks and random draws are exact).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd
from scipy import sparse

from . import tailp
from .association import SetNullCounts, _check_set_matrix, _oriented, _set_means, fdr_bh

__all__ = [
    "set_scores",
    "spatial_enrichment",
    "random_gene_enrichment",
    "enrichment_table",
    "gene_ranks",
    "rank_enrichment",
    "overlap_enrichment",
]

_ALTERNATIVES = ("two-sided", "greater", "less")

#: Upper bound on the number of float64 elements of one block of random-key
#: draws in :func:`random_gene_enrichment` (about 32 MB).
_MAX_BLOCK_ELEMENTS = 1 << 22
#: Size of the (rows x n_genes) int64 scratch table of the sparse sampler.
_SCRATCH_ELEMENTS = 1 << 20


def _as_r(r, n_genes: Optional[int] = None) -> np.ndarray:
    r = np.asarray(r, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"r must be 1-D (n_genes,), got shape {r.shape}")
    if n_genes is not None and r.shape[0] != n_genes:
        raise ValueError(f"r has {r.shape[0]} genes but membership has {n_genes} rows")
    if np.any(np.isinf(r)):
        raise ValueError("r contains infinite values")
    return r


def _as_weights(membership, r=None):
    """Weights (array, or sparse as given) and the r vector aligned to them.

    A DataFrame membership and a Series r are aligned by gene index.
    """
    if isinstance(membership, pd.DataFrame) and isinstance(r, pd.Series):
        missing = membership.index.difference(r.index)
        if len(missing):
            raise ValueError(f"r lacks {len(missing)} genes of membership, "
                             f"e.g. {list(missing[:5])}")
        r = r.reindex(membership.index)
    if sparse.issparse(membership):
        return membership, r
    w = np.asarray(membership, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    return w, r


def _members(w) -> sparse.csc_array:
    """Boolean CSC matrix of the non-zero weights (genes x sets)."""
    m = sparse.csc_array(w > 0) if sparse.issparse(w) else sparse.csc_array(np.asarray(w) > 0)
    m.eliminate_zeros()
    m.sort_indices()
    return m


def _rows(w, keep: np.ndarray):
    """Rows ``keep`` (boolean mask) of a dense or sparse matrix."""
    return w[np.flatnonzero(keep), :] if sparse.issparse(w) else w[keep]


def _member_counts(m: sparse.csc_array, rows: np.ndarray) -> np.ndarray:
    """Members of each set among ``rows`` (boolean mask), as int64."""
    return np.asarray(m.T.astype(np.int64) @ rows.astype(np.int64), dtype=np.int64)


def _column_medians(values: np.ndarray, m: sparse.csc_array) -> np.ndarray:
    """Median of ``values`` over the members of each set (NaN values left out).

    Equal to ``np.median`` per set (the middle value, or the mean of the two
    middle values, ``(a + b) / 2``), computed for all sets with one sort.
    """
    col = np.repeat(np.arange(m.shape[1]), np.diff(m.indptr))
    v = values[m.indices]
    ok = np.isfinite(v)
    col, v = col[ok], v[ok]
    order = np.lexsort((v, col))
    v = v[order]
    size = np.bincount(col, minlength=m.shape[1])
    start = np.concatenate([[0], np.cumsum(size)[:-1]]).astype(np.int64)
    out = np.full(m.shape[1], np.nan)
    has = size > 0
    lo = v[start[has] + (size[has] - 1) // 2]
    hi = v[start[has] + size[has] // 2]
    out[has] = (lo + hi) / 2.0
    return out


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"unknown alternative {alternative!r}; expected one of {_ALTERNATIVES}")


def set_scores(r, membership) -> np.ndarray:
    """Mean correlation of each set's genes.

    Parameters
    ----------
    r : array_like, shape (n_genes,)
        Gene correlations with the map (e.g. ``AssociationResult.r``). NaN
        (undefined, constant gene) entries are left out of the means.
    membership : array_like or pandas.DataFrame, shape (n_genes, n_sets)
        0/1 membership or non-negative weights (weighted mean). A
        DataFrame with a pandas Series ``r`` is aligned by gene index.

    Returns
    -------
    numpy.ndarray, shape (n_sets,)
        ``sum_g w_gs r_g / sum_g w_gs`` over genes with finite ``r_g``; NaN
        for a set without any such gene. This is the statistic whose null
        :func:`itx.association.correlate_genes` returns as
        ``null_set_scores``.
    """
    w, r = _as_weights(membership, r)
    r = _as_r(r)
    w = _check_set_matrix(w, r.shape[0])
    return _set_means(r, w)


def _tail_p(obs: np.ndarray, null: np.ndarray, alternative: str, atol: float) -> np.ndarray:
    """Monte-Carlo p value per column, ignoring NaN null values.

    ``obs`` has shape (n_sets,), ``null`` (n_null, n_sets). The tolerance
    counts null values equal to the observed one (up to rounding) as at
    least as extreme. A column without any non-NaN null value gets NaN.
    """
    valid = ~np.isnan(null)
    n_valid = valid.sum(axis=0)
    with np.errstate(invalid="ignore"):
        if alternative == "two-sided":
            hit = np.abs(null) >= np.abs(obs) - atol
        elif alternative == "greater":
            hit = null >= obs - atol
        else:
            hit = null <= obs + atol
    k = (hit & valid).sum(axis=0)
    p = (1.0 + k) / (1.0 + n_valid)
    # no null value at all: no p (rather than (1 + 0) / (1 + 0) = 1)
    return np.where(np.isnan(obs) | (n_valid == 0), np.nan, p)


def spatial_enrichment(
    r,
    membership,
    null_set_scores,
    alternative: str = "two-sided",
    *,
    atol: float = 1e-9,
) -> np.ndarray:
    """Set p values from the spatial ensemble null.

    Parameters
    ----------
    r : array_like, shape (n_genes,)
        Observed gene correlations.
    membership : array_like, shape (n_genes, n_sets)
        The same set matrix that was passed to
        :func:`itx.association.correlate_genes` as ``set_matrix``.
    null_set_scores : array_like, shape (n_perm, n_sets)
        ``AssociationResult.null_set_scores``; NaN rows (undefined null
        maps) are ignored.
    alternative : {"two-sided", "greater", "less"}
        ``"two-sided"``: ``(1 + #{|null| >= |obs| - atol}) / (1 + n)``;
        ``"greater"``: ``#{null >= obs - atol}``; ``"less"``:
        ``#{null <= obs + atol}``, where ``n`` counts non-NaN null scores.
        The two-sided form compares magnitudes, i.e. it takes the null as
        centred on zero, which holds for spin nulls (rotating the map
        decorrelates it from the genes on average).
    atol : float
        Tolerance for ties between null and observed scores.

    Returns
    -------
    numpy.ndarray, shape (n_sets,)
        p values; NaN for a set whose observed score is undefined or that
        has no non-NaN null score (no usable null map).
    """
    _check_alternative(alternative)
    w, r = _as_weights(membership, r)
    obs = set_scores(r, w)
    null = np.asarray(null_set_scores, dtype=np.float64)
    if null.ndim != 2 or null.shape[1] != obs.shape[0]:
        raise ValueError(
            f"null_set_scores must have shape (n_perm, n_sets={obs.shape[0]}), got {null.shape}"
        )
    if null.shape[0] < 1:
        raise ValueError("null_set_scores has no rows")
    return _tail_p(obs, null, alternative, float(atol))


def _random_tuple_blocks(rng: np.random.Generator, n: int, k: int, n_rows: int):
    """Yield blocks of rows, each row a uniformly random k-tuple of distinct ints.

    Every row is uniform over the ``n! / (n - k)!`` ordered tuples of
    distinct values in ``range(n)``: as an unordered set, a uniform
    ``k``-subset, and its order is a uniform random order. Rows are
    independent. Blocks together have ``n_rows`` rows; memory per block is
    bounded by ``_MAX_BLOCK_ELEMENTS``.

    Two samplers, chosen by ``k`` (the choice depends only on ``n`` and
    ``k``, so a seed always gives the same output):

    * ``k <= n // 2``: draw ``k`` values with replacement and redraw the
      positions that repeat a value, until all are distinct. Duplicates are
      resolved by a label-free rule (the lowest position keeps the value,
      via ``np.minimum.at``) and redraws are uniform, so the procedure is
      invariant under relabelling of ``range(n)``; as relabellings act
      transitively on distinct tuples, the output is uniform. Cost is
      O(k) per row (plus a few rounds of redraws), instead of O(n) for
      sorting random keys - the difference that makes 10,000 random sets of
      15,000 genes take a fraction of a second per set size.
    * ``k > n // 2``: the ``k`` smallest of ``n`` i.i.d. uniform keys
      (``argpartition``), put in key order; redraws would need many rounds
      here.
    """
    if 2 * k <= n:
        # The scratch table is rows x n; keeping it near L2/L3-cache size
        # (1M entries) measured fastest for its random access.
        rows = max(1, min(n_rows, _SCRATCH_ELEMENTS // n))
        free = np.iinfo(np.int64).max
        scratch = np.full(rows * n, free, dtype=np.int64)  # (row, value) -> owner
        done = 0
        while done < n_rows:
            b = min(rows, n_rows - done)
            vals = rng.integers(0, n, size=b * k)
            row_off = np.repeat(np.arange(b) * n, k)
            pending = np.arange(b * k)
            while pending.size:
                slot = row_off[pending] + vals[pending]
                open_ = scratch[slot] == free  # value not yet taken in that row
                cand, cslot = pending[open_], slot[open_]
                np.minimum.at(scratch, cslot, cand)
                won = scratch[cslot] == cand
                pending = np.concatenate([pending[~open_], cand[~won]])
                pending.sort()  # fixed order of redraws -> reproducible
                vals[pending] = rng.integers(0, n, size=pending.size)
            scratch[row_off + vals] = free  # reset only the touched slots
            yield vals.reshape(b, k)
            done += b
    else:
        rows = max(1, min(n_rows, _MAX_BLOCK_ELEMENTS // n))
        done = 0
        while done < n_rows:
            b = min(rows, n_rows - done)
            keys = rng.random((b, n))
            if k < n:
                idx = np.argpartition(keys, k - 1, axis=1)[:, :k]
            else:
                idx = np.broadcast_to(np.arange(n), (b, n))
            order = np.argsort(np.take_along_axis(keys, idx, axis=1), axis=1)
            yield np.take_along_axis(idx, order, axis=1)
            done += b


def _random_set_groups(w_finite):
    """Group sets sharing a null: same number of genes and same weights.

    Returns a list of ``(weights, set_columns)`` in a fixed order (sorted by
    size, then weights), so the random stream is used identically whatever
    the set order. ``w_finite`` may be dense or sparse.
    """
    w = sparse.csc_array(w_finite)
    w.sort_indices()
    groups = {}
    for j in range(w.shape[1]):
        wj = w.data[w.indptr[j]:w.indptr[j + 1]]
        nz = np.sort(wj[wj > 0])
        if nz.size:
            groups.setdefault((nz.size, nz.tobytes()), []).append(j)
    return [(np.frombuffer(key[1], dtype=np.float64), groups[key]) for key in sorted(groups)]


def random_gene_enrichment(
    r,
    membership,
    n_random: int,
    seed,
    alternative: str = "two-sided",
    *,
    atol: float = 1e-9,
) -> np.ndarray:
    """Set p values against size-matched random gene sets.

    Parameters
    ----------
    r : array_like, shape (n_genes,)
        Observed gene correlations; genes with NaN ``r`` are neither counted
        in a set nor drawn into random sets.
    membership : array_like or scipy.sparse matrix, shape (n_genes, n_sets)
        0/1 membership or non-negative weights.
    n_random : int
        Number of random sets per set.
    seed : int or numpy.random.SeedSequence
        Seed of ``numpy.random.default_rng``; the same seed gives identical
        p values.
    alternative : {"two-sided", "greater", "less"}
        ``"greater"``: ``(1 + #{null >= obs - atol}) / (1 + n_random)``,
        ``"less"`` likewise with ``<=``. ``"two-sided"`` is the equal-tailed
        ``min(1, 2 * min(p_greater, p_less))``: random-gene set scores are
        centred on the mean correlation of all genes, not on zero, so
        comparing magnitudes (as the spatial null does) would be wrong here.
    atol : float
        Tolerance for ties between random and observed scores.

    Returns
    -------
    numpy.ndarray, shape (n_sets,)
        p values; NaN for sets with no gene of finite ``r``.

    Notes
    -----
    A set with ``k`` genes of finite ``r`` is compared with ``n_random``
    random sets of ``k`` distinct genes drawn uniformly from all genes with
    finite ``r`` (the whole background, set genes included); a random set's
    score is the mean of its genes' ``r`` (with weights: the set's weights
    assigned to the drawn genes in random order). Sets with the same size
    and weights (e.g. 0/1 sets of equal size) share one draw of random
    sets; each set's null is still exactly the size-matched one. Draws are
    vectorised and blocked so memory stays bounded (see
    ``_random_tuple_blocks``).
    """
    _check_alternative(alternative)
    if (isinstance(n_random, (bool, np.bool_))
            or not isinstance(n_random, (int, np.integer)) or n_random < 1):
        raise ValueError(f"n_random must be a positive integer, got {n_random!r}")
    w, r = _as_weights(membership, r)
    r = _as_r(r, w.shape[0])
    w = _check_set_matrix(w, r.shape[0])
    atol = float(atol)

    finite = np.isfinite(r)
    bg = r[finite]  # background: genes with a defined correlation
    obs = _set_means(r, w)
    rng = np.random.default_rng(seed)
    p = np.full(w.shape[1], np.nan)

    for weights_k, cols in _random_set_groups(_rows(w, finite)):
        k = weights_k.size
        binary = bool(np.all(weights_k == weights_k[0]))
        null = np.empty(n_random)
        done = 0
        for idx in _random_tuple_blocks(rng, bg.size, k, n_random):
            vals = bg[idx]
            b = idx.shape[0]
            if binary:
                null[done:done + b] = vals.mean(axis=1)
            else:
                null[done:done + b] = vals @ weights_k / weights_k.sum()
            done += b
        o = obs[cols]
        nulls = np.broadcast_to(null[:, None], (n_random, len(cols)))
        if alternative == "two-sided":
            pg = _tail_p(o, nulls, "greater", atol)
            pl = _tail_p(o, nulls, "less", atol)
            p[cols] = np.minimum(1.0, 2.0 * np.minimum(pg, pl))
        else:
            p[cols] = _tail_p(o, nulls, alternative, atol)
    return p


def enrichment_table(
    r,
    membership: pd.DataFrame,
    null_set_scores,
    *,
    n_random: int = 10000,
    seed=0,
    alternative: str = "two-sided",
    atol: float = 1e-9,
    set_names: Optional[Sequence[str]] = None,
    tail: str = "none",
) -> pd.DataFrame:
    """Tabulate set scores with spatial and random-gene p and q values.

    Parameters
    ----------
    r : array_like, shape (n_genes,)
        Observed gene correlations, in the row order of ``membership``.
    membership : pandas.DataFrame, array_like or scipy.sparse matrix, shape (n_genes, n_sets)
        Kept sets only (as returned by
        :func:`itx.genesets.match_gene_sets`); sets skipped there are not in
        this table - write the match report separately.
    null_set_scores : array_like, shape (n_perm, n_sets), or SetNullCounts
        From :func:`itx.association.correlate_genes` run with
        ``set_matrix=membership``: its ``null_set_scores`` (all sets kept),
        or its ``set_null`` (the counts made while the null maps streamed
        past; same ``alternative`` and ``atol``, and with ``tail="gpd"``
        ``keep_set_tail = tail_size(n_perm) + 1``). Both give the same
        ``p_spatial`` and ``p_gpd``.
    n_random : int
        Random gene sets per set; 0 skips the random-gene null (NaN
        ``p_random``/``q_random``).
    seed : int
        Seed for the random-gene null.
    alternative : {"two-sided", "greater", "less"}
        See :func:`spatial_enrichment` and :func:`random_gene_enrichment`.
    atol : float
        Tie tolerance.
    set_names : sequence of str, optional
        Needed only when ``membership`` is not a DataFrame.
    tail : {"none", "gpd"}
        ``"gpd"`` adds ``p_gpd, q_gpd, tail_method`` after ``q_spatial``:
        the spatial p with a generalised Pareto tail where fewer than 10
        null scores are as extreme (:func:`itx.tailp.tail_pvalues`, same
        ``alternative`` and ``atol``; ``p_gpd`` equals ``p_spatial`` where
        ``tail_method`` is ``permutation`` or ``no_fit``).

    Returns
    -------
    pandas.DataFrame
        Columns ``set, n_genes, score, p_spatial, q_spatial, p_random,
        q_random`` (with ``tail="gpd"``, ``p_gpd, q_gpd, tail_method`` after
        ``q_spatial``); ``n_genes`` is the number of member genes with a defined
        (finite) ``r``; q values are Benjamini-Hochberg across the sets of
        this table. Sorted by ``p_spatial`` ascending, then by ``|score|``
        descending, then input order (NaN last).
    """
    if isinstance(membership, pd.DataFrame):
        names = [str(c) for c in membership.columns]
    elif set_names is None:
        raise ValueError("set_names is required when membership is not a DataFrame")
    else:
        names = list(set_names)
    w, r = _as_weights(membership, r)
    r = _as_r(r, w.shape[0])
    w = _check_set_matrix(w, r.shape[0])
    if len(names) != w.shape[1]:
        raise ValueError(f"{len(names)} set names for {w.shape[1]} sets")
    tailp.check_tail(tail)
    score = _set_means(r, w)
    n_genes = _member_counts(_members(w), np.isfinite(r))
    counted = isinstance(null_set_scores, SetNullCounts)
    if counted:
        p_spatial = _counted_p(null_set_scores, score, alternative, float(atol), tail)
    else:
        p_spatial = spatial_enrichment(r, w, null_set_scores, alternative, atol=atol)
    if n_random:
        p_random = random_gene_enrichment(r, w, n_random, seed, alternative, atol=atol)
    else:
        p_random = np.full(w.shape[1], np.nan)
    df = pd.DataFrame(
        {
            "set": names,
            "n_genes": n_genes.astype(np.int64),
            "score": score,
            "p_spatial": p_spatial,
            "q_spatial": fdr_bh(p_spatial),
            "p_random": p_random,
            "q_random": fdr_bh(p_random),
        }
    )
    if tail == "gpd":
        if counted:
            c = null_set_scores
            gp = tailp.gpd_pvalues(_oriented(score, alternative), c.top, c.n_null, c.n_exceed,
                                   c.p)
        else:
            gp = tailp.tail_pvalues(score, np.asarray(null_set_scores, dtype=np.float64),
                                    alternative, atol=atol)
        at = df.columns.get_loc("q_spatial") + 1
        df.insert(at, "p_gpd", gp.p)
        df.insert(at + 1, "q_gpd", fdr_bh(gp.p))
        df.insert(at + 2, "tail_method", gp.method)
    order = np.lexsort((np.arange(len(df)), -np.abs(score), p_spatial))
    return df.iloc[order].reset_index(drop=True)


def _counted_p(counts: SetNullCounts, score: np.ndarray, alternative: str, atol: float,
               tail: str) -> np.ndarray:
    """``p_spatial`` from counts streamed by correlate_genes, checked against the table."""
    if counts.alternative != alternative or counts.atol != atol:
        raise ValueError(
            f"the set null was counted with alternative={counts.alternative!r}, "
            f"atol={counts.atol}; the table asks for alternative={alternative!r}, atol={atol}: "
            "pass the same to correlate_genes (set_alternative, atol)")
    if counts.score.shape != score.shape or not np.array_equal(counts.score, score,
                                                                equal_nan=True):
        raise ValueError("the set null was counted for other set scores: pass enrichment_table "
                         "the r and set matrix given to correlate_genes")
    if tail == "gpd":
        if counts.top is None:
            raise ValueError("tail='gpd' needs the sets' null tails: run correlate_genes with "
                             "keep_set_tail = tail_size(n_perm) + 1 (e.g. 251)")
        if counts.tail_min_exceedances < 10:
            raise ValueError("tail='gpd' needs the null tails of sets with up to 10 "
                             "exceedances; run correlate_genes with tail_min_exceedances >= 10")
    return counts.p


def _binary_membership(membership, n_genes: int) -> sparse.csc_array:
    """Membership (non-zero weight) as a boolean CSC matrix, validated."""
    w = membership
    if not sparse.issparse(w):
        w = np.asarray(membership, dtype=np.float64)
        if w.ndim == 1:
            w = w[:, None]
    return _members(_check_set_matrix(w, n_genes))


def gene_ranks(scores) -> np.ndarray:
    """Rank genes by score, 1 = highest; ties get their average rank.

    Parameters
    ----------
    scores : array_like, shape (n_genes,)
        A gene ranking statistic (e.g. r with the map, or PLS1 weights);
        NaN genes get NaN rank and are left out of every test.

    Returns
    -------
    numpy.ndarray, shape (n_genes,)
    """
    from scipy.stats import rankdata

    s = _as_r(scores)
    ranks = np.full(s.shape, np.nan)
    ok = np.isfinite(s)
    ranks[ok] = rankdata(-s[ok], method="average")
    return ranks


def rank_enrichment(scores, membership, n_random: int, seed, alternative: str = "two-sided",
                    *, atol: float = 1e-9) -> pd.DataFrame:
    """Competitive rank test: a set's median gene rank against random sets.

    As in Seidlitz et al. (2020, Nat Commun): genes are ranked by `scores`
    (1 = most positive), a set's statistic is the median rank of its genes,
    and its null is the median rank of size-matched random gene sets drawn
    from all ranked genes.

    Parameters
    ----------
    scores : array_like, shape (n_genes,)
        Gene ranking statistic.
    membership : array_like or scipy.sparse matrix, shape (n_genes, n_sets)
        Set membership (non-zero = member).
    n_random : int
        Random sets per set size.
    seed : int
        Seed of the random sets.
    alternative : {"two-sided", "greater", "less"}
        ``"less"``: the set ranks nearer the top (smaller median rank) than
        random sets, i.e. enriched among the highest scores; ``"greater"``:
        nearer the bottom; ``"two-sided"``: equal-tailed
        ``min(1, 2 * min(p_less, p_greater))``.
    atol : float
        Tolerance for ties between random and observed medians.

    Returns
    -------
    pandas.DataFrame
        ``median_rank`` and ``p_rank``, one row per set (input order).
    """
    _check_alternative(alternative)
    if (isinstance(n_random, (bool, np.bool_))
            or not isinstance(n_random, (int, np.integer)) or n_random < 1):
        raise ValueError(f"n_random must be a positive integer, got {n_random!r}")
    ranks = gene_ranks(scores)
    member = _binary_membership(membership, ranks.shape[0])
    ok = np.isfinite(ranks)
    bg = ranks[ok]
    sizes = _member_counts(member, ok)
    obs = _column_medians(ranks, member)
    p = np.full(member.shape[1], np.nan)
    rng = np.random.default_rng(seed)
    # one null per distinct set size, sizes in sorted order so the random
    # stream does not depend on the order of the sets
    for k in np.unique(sizes[sizes > 0]):
        null = np.concatenate([np.median(bg[idx], axis=1)
                               for idx in _random_tuple_blocks(rng, bg.size, int(k), n_random)])
        cols = np.flatnonzero(sizes == k)
        nulls = np.broadcast_to(null[:, None], (n_random, cols.size))
        if alternative == "two-sided":
            pg = _tail_p(obs[cols], nulls, "greater", atol)
            pl = _tail_p(obs[cols], nulls, "less", atol)
            p[cols] = np.minimum(1.0, 2.0 * np.minimum(pg, pl))
        else:
            p[cols] = _tail_p(obs[cols], nulls, alternative, atol)
    return pd.DataFrame({"median_rank": obs, "p_rank": p})


def overlap_enrichment(scores, membership, fraction: float = 0.1, tail: str = "top",
                       n_random: int = 0, seed=0) -> pd.DataFrame:
    """Overlap of the top (or bottom) fraction of genes with each set.

    As in Li et al. (2021, Nat Commun): the genes whose score is in the top
    (bottom) `fraction` are compared with each set; the one-sided p of an
    overlap at least as large is hypergeometric (genes as draws without
    replacement), and optionally also a permutation p from size-matched
    random sets.

    Parameters
    ----------
    scores : array_like, shape (n_genes,)
        Gene ranking statistic; NaN genes are left out.
    membership : array_like or scipy.sparse matrix, shape (n_genes, n_sets)
        Set membership (non-zero = member).
    fraction : float
        Share of ranked genes in the list, in (0, 1); the list holds
        ``ceil(fraction * n)`` genes, ties at the cut broken by gene order.
    tail : {"top", "bottom"}
        Highest or lowest scores.
    n_random : int
        Random sets for the permutation p (0 = skip, NaN column).
    seed : int
        Seed of the random sets.

    Returns
    -------
    pandas.DataFrame
        ``n_list``, ``overlap``, ``expected``, ``odds_ratio``,
        ``p_hypergeom``, ``p_perm``, one row per set (input order).
    """
    from scipy.stats import hypergeom

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if tail not in ("top", "bottom"):
        raise ValueError(f"tail must be 'top' or 'bottom', got {tail!r}")
    s = _as_r(scores)
    member = _binary_membership(membership, s.shape[0])
    ok = np.isfinite(s)
    n = int(ok.sum())
    n_list = int(np.ceil(fraction * n))
    order = np.argsort(-s[ok] if tail == "top" else s[ok], kind="stable")
    in_list = np.zeros(n, dtype=bool)
    in_list[order[:n_list]] = True
    m = _members(_rows(member, ok))
    sizes = _member_counts(m, np.ones(n, dtype=bool))
    overlap = _member_counts(m, in_list)
    expected = sizes * n_list / n
    # odds ratio of the 2x2 table (in set x in list), +0.5 where a cell is 0
    a = overlap.astype(float)
    b = sizes - a
    c = n_list - a
    d = n - n_list - b
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    odds = np.where(zero, ((a + .5) * (d + .5)) / ((b + .5) * (c + .5)),
                    (a * d) / np.where(zero, 1, b * c))
    p_h = hypergeom.sf(overlap - 1, n, sizes, n_list)
    p_perm = np.full(m.shape[1], np.nan)
    if n_random:
        rng = np.random.default_rng(seed)
        flag = in_list.astype(np.int64)
        for k in np.unique(sizes[sizes > 0]):
            null = np.concatenate([flag[idx].sum(axis=1)
                                   for idx in _random_tuple_blocks(rng, n, int(k), n_random)])
            cols = np.flatnonzero(sizes == k)
            p_perm[cols] = (1.0 + (null[:, None] >= overlap[cols]).sum(axis=0)) / (1.0 + n_random)
    return pd.DataFrame({"n_list": n_list, "overlap": overlap, "expected": expected,
                         "odds_ratio": odds, "p_hypergeom": p_h, "p_perm": p_perm})
