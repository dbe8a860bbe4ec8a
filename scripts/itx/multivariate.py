"""Joint models of a brain map on several maps, with spatial-null p values.

A disease map is often compared with each cell-type map one at a time
(:func:`itx.celltypes.compare_celltypes`). Cell-type maps are strongly
correlated with each other, so these one-at-a-time correlations do not say
which cell types explain the map jointly. This module fits the joint models:

* :func:`multiple_regression`: ordinary least squares of the map on the
  predictor maps (standardised betas by default), with parametric and
  spatial-null p values for every beta and for the model R2;
* :func:`dominance_analysis`: general dominance of Azen & Budescu (2003), the
  share of the model R2 that each predictor accounts for, averaged over all
  subsets of the other predictors (it is defined even when the predictors are
  correlated, where the betas are not a decomposition of R2);
* :func:`partial_correlation_genes`: every gene's partial correlation with
  the map, controlling for covariate maps.

Spatial nulls are handled as in :mod:`itx.association`: the null maps are
null versions of the map (spins, surrogates); the predictors, covariates and
expression stay fixed, and every statistic is recomputed on every null map.
This is the usual spin test of a regression model (Hansen et al. 2022, Nat
Neurosci 25:1569, used the same for dominance analysis). A null map without a
value in some rows (a parcel rotated onto the medial wall) is refitted over
the rows it has: null maps with the same NaN pattern form a group, and each
group costs one factorisation of its design, after which all its null maps
are fitted at once by matrix products.

References
----------
Azen R, Budescu DV (2003). The dominance analysis approach for comparing
predictors in multiple regression. Psychological Methods 8:129-148.
Budescu DV (1993). Dominance analysis: a new approach to the problem of
relative importance of predictors in multiple regression. Psychological
Bulletin 114:542-551.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import comb
from typing import Iterator, Optional, Sequence

import numpy as np
import pandas as pd
from scipy import linalg, stats

from .association import (
    _MAX_DROPPED_FOR_UPDATE,
    _average_ranks,
    _subset_ranks,
    fdr_bh,
    report_null_use,
    usable_nulls,
)

__all__ = [
    "DominanceResult",
    "RegressionResult",
    "dominance_analysis",
    "multiple_regression",
    "partial_correlation_genes",
]

#: Null maps fitted per block (memory ~ n_genes x block for partial correlations).
DEFAULT_BLOCK_SIZE = 256
#: Tolerance of "at least as extreme", relative to the observed statistic when
#: it exceeds 1 (permutation nulls reproduce the observed value up to rounding).
DEFAULT_ATOL = 1e-9
#: A centred unit-norm column whose residual on the other columns is shorter
#: than this is a linear combination of them (1 - R2 < 1e-14, VIF > 1e14).
_RANK_TOL = 1e-7
#: A column whose centred norm is below this fraction of its largest value
#: (times sqrt(n_regions)) is constant up to rounding.
_FLAT_TOL = 1e-12
_METHODS = ("spearman", "pearson")
#: Elements of the stacked subset designs and projections of dominance
#: analysis factorised at once (16 MB of float64).
_CHUNK_ELEMENTS = 2 ** 21


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RegressionResult:
    """Result of :func:`multiple_regression`.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        One row per term, ``intercept`` first: ``term, beta, se, t, p_param,
        p_spin, vif``.
    model : pandas.DataFrame
        One row: ``r2, adj_r2, F, df_model, df_resid, p_param, p_spin,
        n_regions, n_predictors, n_null``.
    """

    coefficients: pd.DataFrame
    model: pd.DataFrame


@dataclass(frozen=True)
class DominanceResult:
    """Result of :func:`dominance_analysis`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per predictor: ``predictor, dominance, share, p_spin, q_spin,
        rank, completely_dominates``.
    model : pandas.DataFrame
        One row: ``r2, p_spin, n_regions, n_predictors, n_subsets, n_null``.
    conditional : pandas.DataFrame
        Conditional dominance: predictors x number of other predictors already
        in the model (0 .. k-1); the mean R2 increment from adding the
        predictor to the models of that size. Row means are the general
        dominances.
    complete : pandas.DataFrame
        Predictors x predictors, bool: ``complete.loc[i, j]`` is True when
        adding ``i`` raises R2 more than adding ``j`` to every subset of the
        other predictors (``i`` completely dominates ``j``).
    """

    table: pd.DataFrame
    model: pd.DataFrame
    conditional: pd.DataFrame
    complete: pd.DataFrame


# ---------------------------------------------------------------------------
# input checks
# ---------------------------------------------------------------------------


def _as_maps(a, what: str, names=None, prefix: str = "x"):
    """A (n_regions, k) float array and its column names; a 1-D input is one map."""
    index = None
    if isinstance(a, pd.DataFrame):
        index = a.index
        if names is None:
            names = [str(c) for c in a.columns]
        a = a.apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
    elif isinstance(a, pd.Series):
        index = a.index
        if names is None and a.name is not None:
            names = [str(a.name)]
        a = pd.to_numeric(a, errors="coerce").to_numpy(np.float64)
    v = np.asarray(a, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    if v.ndim != 2:
        raise ValueError(f"{what} must be 2-D (n_regions, n_maps), got shape {v.shape}")
    if names is None:
        names = [f"{prefix}_{i + 1}" for i in range(v.shape[1])]
    names = [str(n) for n in names]
    if len(names) != v.shape[1]:
        raise ValueError(f"{len(names)} names for the {v.shape[1]} columns of {what}")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"{what} has duplicated names {dup}; give each column its own name")
    bad = ~np.isfinite(v)
    if bad.any():
        cols = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
        raise ValueError(f"{what} has NaN or infinite values in {int(bad.sum())} cell(s), in "
                         f"column(s) {cols[:10]}; restrict to regions with values in every "
                         "map first")
    return v, names, index


def _as_map(y, index, n: int, what: str = "y") -> np.ndarray:
    """The map as a finite 1-D array over the `n` rows (a Series aligned to `index`)."""
    if isinstance(y, pd.Series) and index is not None:
        missing = pd.Index(index).difference(y.index)
        if len(missing):
            raise ValueError(f"{what} lacks {len(missing)} regions of the predictors, "
                             f"e.g. {list(missing[:5])}")
        y = y.reindex(index)
    v = np.asarray(y, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] != n:
        raise ValueError(f"{what} must be 1-D with one value per region ({n}), got shape "
                         f"{v.shape}")
    if not np.isfinite(v).all():
        raise ValueError(f"{what} has {int((~np.isfinite(v)).sum())} NaN or infinite "
                         "value(s); restrict to regions with a value first")
    if np.ptp(v) == 0:
        raise ValueError(f"{what} is constant across regions: nothing to model")
    return v


def _check_nulls(null_maps, n: int) -> np.ndarray:
    v = np.asarray(null_maps, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] != n:
        raise ValueError(f"null_maps must have shape (n_regions={n}, n_perm), got {v.shape}")
    if v.shape[1] < 1:
        raise ValueError("null_maps has no columns (n_perm = 0)")
    if np.isinf(v).any():
        raise ValueError("null_maps contains infinite values (NaN is allowed, inf is not)")
    return v


def _check_atol(atol) -> float:
    atol = float(atol)
    if not atol >= 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    return atol


def _check_block(block_size) -> int:
    if (isinstance(block_size, (bool, np.bool_))
            or not isinstance(block_size, (int, np.integer)) or block_size < 1):
        raise ValueError(f"block_size must be a positive integer, got {block_size!r}")
    return int(block_size)


def _check_regions(n: int, k: int, what: str) -> None:
    # a residual degree of freedom is needed for standard errors and F
    if n <= k + 1:
        raise ValueError(f"{n} regions are too few for {k} {what} and an intercept: need at "
                         f"least {k + 2} (n_regions > n_predictors + 1); use fewer {what} or "
                         "more regions")


# ---------------------------------------------------------------------------
# linear algebra shared by the three models
# ---------------------------------------------------------------------------


def _centre_unit(a: np.ndarray):
    """Centred columns scaled to unit Euclidean norm, and the centred norms.

    With unit-norm centred columns a least-squares fit with intercept is a fit
    without one, and the slopes are standardised betas (the z-scores' sd
    cancels between map and predictors).
    """
    c = a - a.mean(axis=0)
    norm = np.sqrt(np.einsum("ij,ij->j", c, c))
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.where(_flat(a, norm), 0.0, c / norm)
    return u, norm


def _flat(a: np.ndarray, centred_norm: np.ndarray) -> np.ndarray:
    """Columns that are constant up to rounding (their unit-norm version would be noise)."""
    scale = np.abs(a).max(axis=0, initial=0.0) * np.sqrt(a.shape[0])
    return centred_norm <= _FLAT_TOL * scale


def _full_rank(r: np.ndarray) -> bool:
    """A QR factor of unit-norm columns: no column a combination of the earlier ones."""
    return bool(np.all(np.abs(np.diag(r)) > _RANK_TOL))


def _explain_collinear(x: np.ndarray, names: Sequence[str], what: str) -> None:
    """Raise a ValueError naming constant or collinear columns of `x` (if any)."""
    u, norm = _centre_unit(x)
    flat = _flat(x, norm)
    if flat.any():
        raise ValueError(f"{what} {[names[j] for j in np.flatnonzero(flat)]} are constant "
                         "across the regions: they cannot be told apart from the intercept; "
                         "drop them")
    _, r, piv = linalg.qr(u, mode="economic", pivoting=True)
    rank = int(np.sum(np.abs(np.diag(r)) > _RANK_TOL))
    if rank == x.shape[1]:
        return
    basis = piv[:rank]
    parts = []
    for d in piv[rank:]:
        coef = np.linalg.lstsq(u[:, basis], u[:, d], rcond=None)[0]
        used = [names[basis[i]] for i in np.flatnonzero(np.abs(coef) > 1e-6)]
        parts.append(f"{names[d]!r} = a linear combination of {used}")
    raise ValueError(f"{what} are collinear (rank {rank} of {x.shape[1]} columns after "
                     f"centring): {'; '.join(parts)}; drop or combine one of each group")


def _null_groups(nulls: np.ndarray, usable: np.ndarray) -> Iterator:
    """Usable null columns grouped by their finite rows.

    Yields ``(rows, cols)``: ``rows`` is None for null maps without NaN, else
    the boolean mask of the rows the group's null maps have.
    """
    finite = np.isfinite(nulls)
    complete = finite.all(axis=0)
    cols = np.flatnonzero(complete & usable)
    if cols.size:
        yield None, cols
    partial = np.flatnonzero(~complete & usable)
    if partial.size:
        patterns, inverse = np.unique(finite[:, partial].T, axis=0, return_inverse=True)
        inverse = np.asarray(inverse).reshape(-1)
        for g, rows in enumerate(patterns):
            yield rows, partial[inverse == g]


def _blocks(cols: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, cols.size, size):
        yield cols[start:start + size]


def _extreme(null_stat: np.ndarray, observed: np.ndarray, atol: float) -> np.ndarray:
    """Count, per row, null values at least as extreme as the observed one."""
    thr = observed - atol * np.maximum(1.0, np.abs(observed))
    return (null_stat >= thr[:, None]).sum(axis=1)


def _null_p(hits: np.ndarray, n_valid) -> np.ndarray:
    n_valid = np.asarray(n_valid)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = (1.0 + hits) / (1.0 + n_valid)
    return np.where(n_valid > 0, p, np.nan)


def _slopes(xu: np.ndarray, yu: np.ndarray):
    """Standardised slopes and R2 of unit-norm responses `yu` on unit-norm `xu`."""
    q, r = np.linalg.qr(xu)
    qty = q.T @ yu
    beta = linalg.solve_triangular(r, qty)
    r2 = np.einsum("ij,ij->j", qty, qty)
    return beta, np.clip(r2, 0.0, 1.0), r


# ---------------------------------------------------------------------------
# multiple regression
# ---------------------------------------------------------------------------


def _ols(design: np.ndarray, y: np.ndarray):
    """OLS as statsmodels reports it: coefficients, their se, RSS, TSS and (R^T R)^-1 diag."""
    q, r = np.linalg.qr(design)
    coef = linalg.solve_triangular(r, q.T @ y)
    resid = y - design @ coef
    rss = float(resid @ resid)
    rinv = linalg.solve_triangular(r, np.eye(r.shape[0]))
    df_resid = design.shape[0] - design.shape[1]
    se = np.sqrt(rss / df_resid * np.einsum("ij,ij->i", rinv, rinv))
    tss = float(((y - y.mean()) ** 2).sum())
    return coef, se, rss, tss


def multiple_regression(y, predictors, null_maps, *, standardise: bool = True, names=None,
                        atol: float = DEFAULT_ATOL, block_size: int = 4096,
                        name: Optional[str] = None) -> RegressionResult:
    """Ordinary least squares of a map on predictor maps, with spatial-null p values.

    Parameters
    ----------
    y : array_like or pandas.Series, shape (n_regions,)
        The map (e.g. case-control effect sizes); a Series is aligned to the
        index of `predictors` when that is a DataFrame.
    predictors : array_like or pandas.DataFrame, shape (n_regions, k)
        Predictor maps (e.g. the cell-type maps of
        :func:`itx.celltypes.celltype_maps`), finite, not collinear.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of `y`, rows as `predictors`; NaN marks a row a null map
        has no value for.
    standardise : bool
        Z-score `y` and every predictor before fitting (over the rows of each
        fit), so the betas are standardised betas. R2, F and every t and p
        value are the same either way.
    names : sequence of str, optional
        Predictor names (default: the DataFrame's columns, else ``x_1``...).
    atol : float
        A null statistic counts as at least as extreme when it is
        ``>= observed - atol * max(1, observed)``.
    block_size : int
        Null maps fitted at once.
    name : str, optional
        The map's name, for warnings about unusable null maps.

    Returns
    -------
    RegressionResult
        ``coefficients``: ``term, beta, se, t, p_param, p_spin, vif`` (the
        intercept first; its ``p_spin`` and ``vif`` are NaN). ``model``:
        ``r2, adj_r2, F, df_model, df_resid, p_param, p_spin, n_regions,
        n_predictors, n_null``.

    Raises
    ------
    ValueError
        NaN in `y` or `predictors`, a constant `y`, too few regions
        (``n_regions <= k + 1``), constant or collinear predictors (named),
        a shape mismatch.

    Notes
    -----
    ``se``, ``t`` and ``p_param`` are the classical OLS ones
    (``t`` with ``n - k - 1`` df; ``p_param`` of the model from the F test).
    They assume independent regions and are shown for comparison only.

    ``p_spin`` refits the model on every null map of `y` with the predictors
    fixed: for R2, ``(1 + #{R2_null >= R2}) / (1 + n_null)`` (one-sided);
    for each beta, ``(1 + #{|beta_null| >= |beta|}) / (1 + n_null)``. A null
    map with NaN rows is fitted over the rows it has (predictors, and with
    `standardise` the null map, re-standardised there); it is left out when
    it has fewer than ``k + 2`` such rows, is constant there, or when the
    predictors are collinear on them. ``n_null`` counts the null maps used.
    R2 is compared as is, so a null map fitted over fewer rows has a
    slightly larger expected R2 (``k / (n - 1)``), which makes the test a
    little conservative for such maps.

    ``vif`` is the variance inflation factor ``1 / (1 - R2_j)`` of each
    predictor on the others.
    """
    x, names, index = _as_maps(predictors, "predictors", names)
    n, k = x.shape
    yv = _as_map(y, index, n)
    _check_regions(n, k, "predictors")
    _explain_collinear(x, names, "predictors")
    nulls = _check_nulls(null_maps, n)
    atol = _check_atol(atol)
    block_size = _check_block(block_size)

    if standardise:
        xf = (x - x.mean(axis=0)) / x.std(axis=0, ddof=1)
        yf = (yv - yv.mean()) / yv.std(ddof=1)
    else:
        xf, yf = x, yv
    design = np.column_stack([np.ones(n), xf])
    coef, se, rss, tss = _ols(design, yf)
    df_resid = n - k - 1
    with np.errstate(divide="ignore", invalid="ignore"):
        t = coef / se
        r2 = 1.0 - rss / tss
        f_stat = (r2 / k) / ((1.0 - r2) / df_resid)
    p_t = 2.0 * stats.t.sf(np.abs(t), df_resid)
    adj_r2 = 1.0 - (1.0 - r2) * (n - 1) / df_resid

    # observed and null fits take the same path, so an identity permutation
    # reproduces the observed statistics up to the last bits
    xu, x_norm = _centre_unit(x)
    yu, y_norm = _centre_unit(yv[:, None])
    beta_u, r2_u, r_full = _slopes(xu, yu)
    # diag((X^T X)^-1) of unit-norm centred predictors is 1 / (1 - R2_j)
    r_inv = linalg.solve_triangular(r_full, np.eye(k))
    vif = np.einsum("ij,ij->i", r_inv, r_inv)
    obs_beta = beta_u[:, 0] if standardise else beta_u[:, 0] * y_norm[0] / x_norm

    hits_beta = np.zeros(k, dtype=np.int64)
    hits_r2 = 0
    n_null = 0
    usable = usable_nulls(nulls, min_rows=k + 2)
    for rows, cols in _null_groups(nulls, usable):
        xg = x if rows is None else x[rows]
        xu_g, xn_g = _centre_unit(xg)
        q, r = np.linalg.qr(xu_g)
        if not _full_rank(r):
            continue  # predictors collinear on these rows: no fit defined
        for bcols in _blocks(cols, block_size):
            block = nulls[:, bcols] if rows is None else nulls[np.ix_(rows, bcols)]
            yu_b, yn_b = _centre_unit(block)
            qty = q.T @ yu_b
            b = linalg.solve_triangular(r, qty)
            if not standardise:
                b = b * yn_b[None, :] / xn_g[:, None]
            r2_b = np.einsum("ij,ij->j", qty, qty)
            hits_beta += _extreme(np.abs(b), np.abs(obs_beta), atol)
            hits_r2 += int(_extreme(r2_b[None, :], r2_u, atol)[0])
            n_null += bcols.size
    report_null_use([n_null], nulls.shape[1], what="multiple regression (p_spin)", name=name,
                    n_regions=n, min_rows=k + 2)

    p_spin_beta = _null_p(hits_beta, n_null)
    coefficients = pd.DataFrame({
        "term": ["intercept"] + list(names),
        "beta": coef, "se": se, "t": t, "p_param": np.minimum(p_t, 1.0),
        "p_spin": np.concatenate([[np.nan], p_spin_beta]),
        "vif": np.concatenate([[np.nan], vif]),
    })
    model = pd.DataFrame({
        "r2": [r2], "adj_r2": [adj_r2], "F": [f_stat], "df_model": [k],
        "df_resid": [df_resid], "p_param": [float(stats.f.sf(f_stat, k, df_resid))],
        "p_spin": [float(_null_p(np.array(hits_r2), n_null))], "n_regions": [n],
        "n_predictors": [k], "n_null": [n_null],
    })
    return RegressionResult(coefficients=coefficients, model=model)


# ---------------------------------------------------------------------------
# dominance analysis
# ---------------------------------------------------------------------------


def _subset_members(k: int) -> np.ndarray:
    """Membership (2^k, k) of every subset, row m = the bits of m (row 0 = empty)."""
    masks = np.arange(2 ** k)
    return ((masks[:, None] >> np.arange(k)) & 1).astype(bool)


def _general_weights(members: np.ndarray) -> np.ndarray:
    """Weights (k, 2^k) with general dominance = weights @ R2(subsets).

    General dominance of j is ``(1/k) sum_s mean_{|T|=s, j not in T}
    [R2(T + j) - R2(T)]``; each subset S enters with ``+1 / (k C(k-1, |S|-1))``
    for its members and ``-1 / (k C(k-1, |S|))`` for the others.
    """
    k = members.shape[1]
    size = members.sum(axis=1)
    inv = np.array([1.0 / (k * comb(k - 1, s)) if s < k else 0.0 for s in range(k + 1)])
    plus = inv[np.maximum(size - 1, 0)]
    minus = inv[size]
    w = np.where(members, plus[:, None], -minus[:, None]).T
    w[:, 0] = 0.0  # R2 of the empty model is 0
    return w


def _subsets_by_size(members: np.ndarray) -> list:
    """For each subset size s >= 1: the subsets' indices (m,) and their columns (m, s)."""
    size = members.sum(axis=1)
    out = []
    for s in range(1, members.shape[1] + 1):
        idx = np.flatnonzero(size == s)
        out.append((idx, np.nonzero(members[idx])[1].reshape(idx.size, s)))
    return out


def _subset_r2(xu: np.ndarray, yu: np.ndarray, by_size: list) -> Iterator:
    """R2 of the unit-norm responses `yu` on every subset of the columns of `xu`.

    Yields ``(idx, r2)``: subset indices (m,) and their R2 (m, n_maps). The
    subsets of one size are factorised together (stacked QR): the R factor
    of a subset's design turns the precomputed cross-products into the
    projections, ``Q_S^T y = R_S^{-T} X_S^T y``, so each subset costs
    ``|S|^2`` per map on top of its QR.
    """
    n, b = yu.shape
    cross = xu.T @ yu
    for idx, cols in by_size:
        s = cols.shape[1]
        # bounded memory: (chunk, n, s) designs and (chunk, s, b) projections
        chunk = max(1, _CHUNK_ELEMENTS // (s * max(n, b)))
        for start in range(0, idx.size, chunk):
            c = cols[start:start + chunk]
            r = np.linalg.qr(np.moveaxis(xu[:, c], 0, 1), mode="r")
            # the inverses of small triangular factors make the solves one stacked matmul
            z = np.swapaxes(np.linalg.inv(r), 1, 2) @ cross[c]
            yield idx[start:start + chunk], np.clip(np.einsum("mij,mij->mj", z, z), 0.0, 1.0)


def _conditional(r2: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Conditional dominance (k, k): mean R2 increment of j over subsets of size s."""
    k = members.shape[1]
    size = members.sum(axis=1)
    out = np.empty((k, k))
    for j in range(k):
        without = np.flatnonzero(~members[:, j])
        gain = r2[without | (1 << j)] - r2[without]
        out[j] = np.bincount(size[without], weights=gain, minlength=k)[:k] / np.array(
            [comb(k - 1, s) for s in range(k)])
    return out


def _complete(r2: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Complete dominance (k, k): i's increment exceeds j's over every subset of the others."""
    k = members.shape[1]
    out = np.zeros((k, k), dtype=bool)
    masks = np.arange(members.shape[0])
    for i in range(k):
        for j in range(k):
            if i != j:
                t = masks[~members[:, i] & ~members[:, j]]
                out[i, j] = bool(np.all(r2[t | (1 << i)] > r2[t | (1 << j)]))
    return out


def dominance_analysis(y, predictors, null_maps, *, names=None, max_predictors: int = 12,
                       atol: float = DEFAULT_ATOL, block_size: int = 4096,
                       name: Optional[str] = None) -> DominanceResult:
    """Dominance analysis (Azen & Budescu 2003) of a map on predictor maps, with spin p values.

    Parameters
    ----------
    y : array_like or pandas.Series, shape (n_regions,)
        The map; a Series is aligned to the index of a DataFrame `predictors`.
    predictors : array_like or pandas.DataFrame, shape (n_regions, k)
        Predictor maps, finite, not collinear.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of `y`, rows as `predictors` (NaN allowed, see
        :func:`multiple_regression`).
    names : sequence of str, optional
        Predictor names (default: the DataFrame's columns, else ``x_1``...).
    max_predictors : int
        Largest k accepted: the analysis fits ``2^k - 1`` models per map.
    atol : float
        Tolerance of "at least as extreme" (see :func:`multiple_regression`).
    block_size : int
        Null maps fitted at once (memory ~ ``k x block_size`` per subset).
    name : str, optional
        The map's name, for warnings about unusable null maps.

    Returns
    -------
    DominanceResult
        ``table``: ``predictor, dominance, share, p_spin, q_spin, rank,
        completely_dominates`` (``share`` in % of the full model's R2;
        ``rank`` 1 = largest dominance; ``completely_dominates`` the
        predictors it completely dominates, ``;``-separated); ``model``:
        ``r2, p_spin, n_regions, n_predictors, n_subsets, n_null``; plus the
        conditional and complete dominance matrices.

    Raises
    ------
    ValueError
        As :func:`multiple_regression`, and when k exceeds `max_predictors`.

    Notes
    -----
    For every subset S of the predictors the R2 of the OLS model of `y` on S
    (with intercept) is computed. Predictor j's conditional dominance at size
    s is its mean R2 increment over the subsets of s other predictors; its
    general dominance is the mean of these over s = 0 .. k-1. General
    dominances are non-negative and sum to the R2 of the full model.

    ``p_spin`` (one-sided: dominance is never negative) is
    ``(1 + #{D_null >= D}) / (1 + n_null)``, recomputing all ``2^k - 1``
    subset models on every null map; ``q_spin`` is Benjamini-Hochberg over
    the predictors. The model's ``p_spin`` is that of the full R2. Null
    maps with NaN rows are handled as in :func:`multiple_regression`.
    """
    if (isinstance(max_predictors, (bool, np.bool_))
            or not isinstance(max_predictors, (int, np.integer)) or max_predictors < 1):
        raise ValueError(f"max_predictors must be a positive integer, got {max_predictors!r}")
    x, names, index = _as_maps(predictors, "predictors", names)
    n, k = x.shape
    if k > max_predictors:
        raise ValueError(
            f"dominance analysis of {k} predictors fits 2^{k} - 1 = {2 ** k - 1:,} subset models "
            f"for the map and for every null map; at most {max_predictors} predictors "
            f"({2 ** max_predictors - 1:,} models) are allowed (max_predictors). Drop "
            "predictors or merge related ones (e.g. cell-type subclasses into classes), or "
            "raise max_predictors if the run time is acceptable (it doubles with each one)")
    yv = _as_map(y, index, n)
    _check_regions(n, k, "predictors")
    _explain_collinear(x, names, "predictors")
    nulls = _check_nulls(null_maps, n)
    atol = _check_atol(atol)
    block_size = _check_block(block_size)

    members = _subset_members(k)
    weights = _general_weights(members)
    full = members.shape[0] - 1

    by_size = _subsets_by_size(members)
    xu, _ = _centre_unit(x)
    yu, _ = _centre_unit(yv[:, None])
    r2 = np.zeros(members.shape[0])
    for idx, v in _subset_r2(xu, yu, by_size):
        r2[idx] = v[:, 0]
    dominance = weights @ r2

    hits = np.zeros(k, dtype=np.int64)
    hits_r2 = 0
    n_null = 0
    usable = usable_nulls(nulls, min_rows=k + 2)
    for rows, cols in _null_groups(nulls, usable):
        xu_g, _ = _centre_unit(x if rows is None else x[rows])
        if not _full_rank(np.linalg.qr(xu_g, mode="r")):
            continue  # predictors collinear on these rows: no fit defined
        for bcols in _blocks(cols, block_size):
            block = nulls[:, bcols] if rows is None else nulls[np.ix_(rows, bcols)]
            yu_b, _ = _centre_unit(block)
            dom_b = np.zeros((k, bcols.size))
            for idx, v in _subset_r2(xu_g, yu_b, by_size):
                dom_b += weights[:, idx] @ v
                if idx[-1] == full:
                    hits_r2 += int(_extreme(v[-1:], r2[full:], atol)[0])
            hits += _extreme(dom_b, dominance, atol)
            n_null += bcols.size
    report_null_use([n_null], nulls.shape[1], what="dominance analysis (p_spin)", name=name,
                    n_regions=n, min_rows=k + 2)

    p_spin = _null_p(hits, n_null)
    complete = _complete(r2, members)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = 100.0 * dominance / r2[full]
    order = np.argsort(-dominance, kind="stable")
    rank = np.empty(k, dtype=np.int64)
    rank[order] = np.arange(1, k + 1)
    table = pd.DataFrame({
        "predictor": names, "dominance": dominance, "share": share, "p_spin": p_spin,
        "q_spin": fdr_bh(p_spin), "rank": rank,
        "completely_dominates": [";".join(names[j] for j in np.flatnonzero(complete[i]))
                                 for i in range(k)],
    })
    model = pd.DataFrame({"r2": [r2[full]], "p_spin": [float(_null_p(np.array(hits_r2), n_null))],
                          "n_regions": [n], "n_predictors": [k], "n_subsets": [full],
                          "n_null": [n_null]})
    conditional = pd.DataFrame(_conditional(r2, members), index=pd.Index(names, name="predictor"),
                               columns=pd.Index(range(k), name="n_others"))
    complete = pd.DataFrame(complete, index=pd.Index(names, name="dominant"),
                            columns=pd.Index(names, name="dominated"))
    return DominanceResult(table=table, model=model, conditional=conditional, complete=complete)


# ---------------------------------------------------------------------------
# partial correlations of genes
# ---------------------------------------------------------------------------


def _residual_basis(cov: np.ndarray) -> Optional[np.ndarray]:
    """Orthonormal basis of [1, covariates], or None when they are collinear."""
    design = np.column_stack([np.ones(cov.shape[0]), _centre_unit(cov)[0]])
    q, r = np.linalg.qr(design)
    return q if _full_rank(r) else None


def _residual_unit(a: np.ndarray, basis: np.ndarray):
    """Residuals of the columns of `a` on `basis`, scaled to unit norm, and which are defined.

    A column whose residual is negligible next to its centred spread (or that
    is constant) has no partial correlation: its residual is set to 0 and
    flagged False.
    """
    centred = a - a.mean(axis=0)
    centred_norm = np.sqrt(np.einsum("ij,ij->j", centred, centred))
    res = a - basis @ (basis.T @ a)
    norm = np.sqrt(np.einsum("ij,ij->j", res, res))
    ok = (np.ptp(a, axis=0) > 0) & (norm > _RANK_TOL * centred_norm)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = np.where(ok, res / norm, 0.0)
    return res, ok


def partial_correlation_genes(expression, y, covariates, null_maps, *, method: str = "spearman",
                              genes=None, covariate_names=None,
                              block_size: int = DEFAULT_BLOCK_SIZE, atol: float = DEFAULT_ATOL,
                              name: Optional[str] = None) -> pd.DataFrame:
    """Partial correlation of every gene with a map, controlling for covariate maps.

    Parameters
    ----------
    expression : array_like or pandas.DataFrame, shape (n_regions, n_genes)
        Region x gene expression, finite.
    y : array_like or pandas.Series, shape (n_regions,)
        The map; a Series is aligned to the index of a DataFrame `expression`.
    covariates : array_like or pandas.DataFrame, shape (n_regions, c), or None
        Maps to control for (rows as `expression`; a DataFrame is aligned to
        the index of a DataFrame `expression`); None controls for nothing
        (plain correlations, as :func:`itx.association.correlate_genes`).
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of `y` (NaN allowed: each null map is used over the
        rows it has).
    method : {'spearman', 'pearson'}
        ``'spearman'``: the partial correlation of the ranks of all variables
        (ranks of the expression, the map and the covariates).
    genes : sequence of str, optional
        Gene names (default: the DataFrame's columns, else ``gene_1``...).
    covariate_names : sequence of str, optional
        For error messages (default: the DataFrame's columns).
    block_size : int
        Null maps processed at once; memory is about ``n_genes x block_size``
        float64 (32 MB for 15,633 genes and 256 maps).
    atol : float
        A null correlation counts when ``|r_null| >= |r| - atol``.
    name : str, optional
        The map's name, for warnings about unusable null maps.

    Returns
    -------
    pandas.DataFrame
        ``gene, r_partial, p_spin, q_spin, p_param``, one row per gene in
        input order. ``p_spin`` is two-sided,
        ``(1 + #{|r_null| >= |r|}) / (1 + n_null)``; ``q_spin`` is
        Benjamini-Hochberg over the genes; ``p_param`` is from the t
        distribution with ``n_regions - 2 - c`` df (spatial autocorrelation
        ignored; for comparison). A gene with no variance left after removing
        the covariates (or constant) has NaN statistics.

    Raises
    ------
    ValueError
        NaN in any input but the null maps, an unknown method, too few
        regions (``n_regions - 2 - c < 1``), constant or collinear
        covariates, a map explained exactly by the covariates.

    Notes
    -----
    The partial correlation of gene g and map y given covariates C is the
    correlation of the residuals of g and of y after least squares on
    ``[1, C]`` (equal to ``-P_gy / sqrt(P_gg P_yy)`` for the inverse P of the
    correlation matrix of ``(g, y, C)``). Every null map of `y` is
    residualised on the same covariates, over the rows it has (expression and
    covariates re-ranked and residualised there too), and correlated with
    all genes at once; null maps are processed in blocks, genes never.
    """
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {_METHODS}")
    x, genes, index = _as_maps(expression, "expression", genes, prefix="gene")
    n, n_genes = x.shape
    if covariates is None:
        cov, cov_names = np.empty((n, 0)), []
    else:
        if isinstance(covariates, pd.DataFrame) and index is not None:
            missing = pd.Index(index).difference(covariates.index)
            if len(missing):
                raise ValueError(f"covariates lack {len(missing)} regions of the expression, "
                                 f"e.g. {list(missing[:5])}")
            covariates = covariates.reindex(index)
        cov, cov_names, _ = _as_maps(covariates, "covariates", covariate_names, prefix="cov")
    if cov.shape[0] != n:
        raise ValueError(f"covariates have {cov.shape[0]} rows; expression has {n} regions")
    c = cov.shape[1]
    yv = _as_map(y, index, n)
    df = n - 2 - c
    if df < 1:
        raise ValueError(f"{n} regions are too few for a partial correlation with {c} "
                         f"covariate(s): need at least {c + 3}; use fewer covariates")
    nulls = _check_nulls(null_maps, n)
    atol = _check_atol(atol)
    block_size = _check_block(block_size)
    rank = method == "spearman"

    def prepare(v):
        return _average_ranks(v) if rank else v

    if c:
        _explain_collinear(prepare(cov), cov_names, "covariates")
    x_ranks = _average_ranks(x) if rank else None
    basis = _residual_basis(prepare(cov))
    ex, gene_ok = _residual_unit(x_ranks if rank else x, basis)
    ey, y_ok = _residual_unit(prepare(yv[:, None]), basis)
    if not y_ok[0]:
        raise ValueError("the map is a linear combination of the covariates (no variance left "
                         "after removing them): nothing to correlate; drop covariates")
    r = np.clip(ex.T @ ey[:, 0], -1.0, 1.0)
    r[~gene_ok] = np.nan
    thr = np.abs(r) - atol

    hits = np.zeros(n_genes, dtype=np.int64)
    n_valid = np.zeros(n_genes, dtype=np.int64)
    usable = usable_nulls(nulls, min_rows=c + 3)
    for rows, cols in _null_groups(nulls, usable):
        if rows is None:
            ex_g, ok_g, basis_g = ex, gene_ok, basis
        else:
            basis_g = _residual_basis(prepare(cov[rows]))
            if basis_g is None:
                continue  # covariates collinear on these rows: nothing defined
            if rank and (~rows).sum() <= _MAX_DROPPED_FOR_UPDATE:
                xg = _subset_ranks(x, x_ranks, rows)
            else:
                xg = prepare(x[rows])
            ex_g, ok_g = _residual_unit(xg, basis_g)
            ok_g &= gene_ok
        for bcols in _blocks(cols, block_size):
            block = nulls[:, bcols] if rows is None else nulls[np.ix_(rows, bcols)]
            eb, col_ok = _residual_unit(prepare(block), basis_g)
            if not col_ok.all():
                eb, bcols = eb[:, col_ok], bcols[col_ok]
                if not bcols.size:
                    continue
            rb = ex_g.T @ eb
            np.abs(rb, out=rb)
            found = (rb >= thr[:, None]).sum(axis=1)
            hits[ok_g] += found[ok_g]
            n_valid[ok_g] += bcols.size
    report_null_use(n_valid, nulls.shape[1], what="partial correlations (p_spin)", name=name,
                    n_regions=n, defined=gene_ok, min_rows=c + 3)

    p_spin = _null_p(hits, n_valid)
    p_spin[~gene_ok] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(df / ((1.0 - r) * (1.0 + r)))
    p_param = np.where(np.isnan(r), np.nan, np.minimum(2.0 * stats.t.sf(np.abs(t), df), 1.0))
    return pd.DataFrame({"gene": genes, "r_partial": r, "p_spin": p_spin,
                         "q_spin": fdr_bh(p_spin), "p_param": p_param})
