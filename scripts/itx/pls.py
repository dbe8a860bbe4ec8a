"""Partial least squares regression of a brain map on all genes.

The multivariate route of Whitaker et al. (2016, PNAS), Morgan et al. (2019,
PNAS) and Seidlitz et al. (2020, Nat Commun): regress the regional map ``y``
on the region x gene matrix ``X`` (both z-scored), report the variance of
``y`` explained by the first components, test it against the spatial nulls
by refitting on every null map, and rank genes by their bootstrapped PLS1
weights (Z = weight / bootstrap SD, regions resampled with replacement).

With one response, PLS1's scores lie in the Krylov space of ``X X^T`` and
``y``, so every fit here runs in region space: an (n_regions x n_regions)
kernel instead of (n_regions x n_genes) deflations. That is what makes
refitting on thousands of null maps cheap. The algorithm is NIPALS for a
single response, the one scikit-learn's ``PLSRegression(scale=True)`` runs
(tests/test_pls.py checks weights, scores and variance explained against it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["MIN_PLS_REGIONS", "PLSResult", "zscore", "variance_explained", "pls_fit",
           "pls_null", "subset_kernels", "bootstrap_weights"]


def zscore(a, axis=0):
    """Standardise to mean 0 and SD 1 (ddof=1, as scikit-learn's PLS scaling)."""
    a = np.asarray(a, dtype=np.float64)
    sd = a.std(axis=axis, ddof=1, keepdims=True)
    if np.any(sd == 0):
        raise ValueError("a column is constant across regions; drop it before PLS")
    return (a - a.mean(axis=axis, keepdims=True)) / sd


def _check(X, y):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 2 or y.ndim != 1 or X.shape[0] != y.shape[0]:
        raise ValueError("X must be (n_regions, n_genes) and y (n_regions,); "
                         f"got {X.shape}, {y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite; drop regions without data first")
    if X.shape[0] < MIN_PLS_REGIONS:
        raise ValueError(f"PLS needs at least {MIN_PLS_REGIONS} regions, got {X.shape[0]}")
    return X, y


def variance_explained(K, Y, n_components):
    """Fraction of each response's variance explained by PLS components 1..k.

    Parameters
    ----------
    K : numpy.ndarray, shape (n, n) or (m, n, n)
        ``Xz @ Xz.T`` of the z-scored gene matrix, shared by every response,
        or one kernel per response (e.g. X z-scored over the regions a null
        map has, zero in the rows and columns of the other regions).
    Y : numpy.ndarray, shape (n, m)
        m z-scored responses (the map, or null maps), one per column (zero
        in the rows outside a per-response kernel's regions).
    n_components : int
        Components to fit.

    Returns
    -------
    numpy.ndarray, shape (n_components, m)
        Variance of each response explained by each component (not cumulative).
    """
    n, m = Y.shape
    Kc = np.broadcast_to(K, (m, n, n)).copy()  # per-response deflated kernel
    Yd = Y.T.copy()                             # (m, n) deflated responses
    total = (Y ** 2).sum(axis=0)
    out = np.zeros((n_components, m))
    for a in range(n_components):
        # t = X_a X_a^T y_a (the score, up to the weight's norm)
        t = np.einsum("mij,mj->mi", Kc, Yd)
        tt = (t ** 2).sum(axis=1)
        ok = tt > 1e-12 * np.maximum(total, 1e-300)
        tt = np.where(ok, tt, 1.0)
        q = (Yd * t).sum(axis=1) / tt
        with np.errstate(invalid="ignore", divide="ignore"):
            out[a] = np.where(ok, q ** 2 * tt / total, 0.0)
        # deflate: P = I - t t^T / t^T t applied to y and to both sides of K
        Yd = Yd - q[:, None] * t
        u = t / np.sqrt(tt)[:, None]
        Ku = np.einsum("mij,mj->mi", Kc, u)
        uKu = (u * Ku).sum(axis=1)
        Kc = (Kc - u[:, :, None] * Ku[:, None, :] - Ku[:, :, None] * u[:, None, :]
              + uKu[:, None, None] * u[:, :, None] * u[:, None, :])
    return out


@dataclass
class PLSResult:
    """Outputs of :func:`pls_fit`.

    Attributes
    ----------
    weights : numpy.ndarray, shape (n_genes,)
        PLS1 gene weights (unit norm; positive = expression rises with the map).
    scores : numpy.ndarray, shape (n_regions,)
        PLS1 region scores ``Xz @ weights``.
    explained : numpy.ndarray, shape (n_components,)
        Variance of the map explained by each component.
    """

    weights: np.ndarray
    scores: np.ndarray
    explained: np.ndarray


def pls_fit(X, y, n_components=3):
    """Fit PLS of a map on all genes.

    Parameters
    ----------
    X : array_like, shape (n_regions, n_genes)
        Expression.
    y : array_like, shape (n_regions,)
        Map.
    n_components : int
        Components whose explained variance is reported.

    Returns
    -------
    PLSResult
    """
    X, y = _check(X, y)
    if not 1 <= n_components < X.shape[0]:
        raise ValueError(f"n_components must be in [1, n_regions - 1], got {n_components}")
    Xz, yz = zscore(X), zscore(y)
    w = Xz.T @ yz
    w /= np.linalg.norm(w)
    explained = variance_explained(Xz @ Xz.T, yz[:, None], n_components)[:, 0]
    return PLSResult(weights=w, scores=Xz @ w, explained=explained)


#: Fewest regions PLS is fitted on (observed map or null map).
MIN_PLS_REGIONS = 4

#: Upper bound on the float64 elements of the (patterns x regions x genes)
#: scratch array of :func:`subset_kernels` (about 32 MB).
_MAX_KERNEL_ELEMENTS = 1 << 22


def subset_kernels(X, masks):
    """Kernels of X z-scored over subsets of its rows, as PLS refitted there sees X.

    For row subset ``S``, each gene is centred and scaled (SD with
    ``ddof=1``) over the rows of ``S`` only, exactly as :func:`pls_fit` on
    ``X[S]`` does, and ``K_S = Xz_S Xz_S^T`` is returned embedded in an
    ``(n, n)`` matrix that is zero in the rows and columns outside ``S``.
    A gene constant over ``S`` contributes nothing (scikit-learn's
    ``PLSRegression`` scaling does the same). Subsets are processed in
    blocks with batched matrix products.

    Parameters
    ----------
    X : array_like, shape (n_regions, n_genes)
        Expression, finite.
    masks : array_like of bool, shape (n_subsets, n_regions)
        Rows of each subset.

    Returns
    -------
    numpy.ndarray, shape (n_subsets, n_regions, n_regions)
    """
    X = np.asarray(X, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    n, g = X.shape
    if masks.ndim != 2 or masks.shape[1] != n:
        raise ValueError(f"masks must be (n_subsets, n_regions={n}), got {masks.shape}")
    out = np.zeros((masks.shape[0], n, n))
    step = max(1, _MAX_KERNEL_ELEMENTS // max(1, n * g))
    for start in range(0, masks.shape[0], step):
        s = masks[start:start + step]
        cnt = s.sum(axis=1).astype(np.float64)
        sf = s.astype(np.float64)
        mean = (sf @ X) / np.maximum(cnt, 1.0)[:, None]
        d = (X[None, :, :] - mean[:, None, :]) * sf[:, :, None]  # (b, n, g), 0 outside S
        var = np.einsum("bij,bij->bj", d, d) / np.maximum(cnt - 1.0, 1.0)[:, None]
        # constancy judged exactly on the raw values (as the correlations do)
        hi = np.where(s[:, :, None], X[None, :, :], -np.inf).max(axis=1)
        lo = np.where(s[:, :, None], X[None, :, :], np.inf).min(axis=1)
        with np.errstate(divide="ignore"):
            scale = np.where(hi > lo, 1.0 / np.sqrt(var), 0.0)
        d *= scale[:, None, :]
        out[start:start + step] = d @ d.transpose(0, 2, 1)
    return out


def pls_null(X, null_maps, n_components=3, block_size=256):
    """Variance explained when PLS is refitted on every null map.

    A null map without a value in some regions (a spin that moved a region
    without data onto a region with data, or a parcel spun into the medial
    wall) is refitted over the regions it has: X is z-scored over those
    regions (:func:`subset_kernels`) and the null map too, exactly as
    :func:`pls_fit` on those rows, as the gene correlations of
    :func:`itx.association.correlate_genes` do.

    Parameters
    ----------
    X : array_like, shape (n_regions, n_genes)
        Expression, finite.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of the map (e.g. spins); NaN = no value.
    n_components : int
        Components.
    block_size : int
        Null maps refitted together (memory ~ block_size x n_regions^2).

    Returns
    -------
    numpy.ndarray, shape (n_perm, n_components)
        Variance explained by each component for each null map; NaN for a
        null map that is constant or has fewer than
        :data:`MIN_PLS_REGIONS` values.
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(null_maps, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"null_maps must be (n_regions={X.shape[0]}, n_perm), got {Y.shape}")
    if np.isinf(Y).any():
        raise ValueError("null maps contain infinite values (NaN marks a missing value)")
    finite = np.isfinite(Y)
    complete = finite.all(axis=0)
    out = np.full((Y.shape[1], n_components), np.nan)
    Xz = zscore(X)
    if complete.any():
        # null maps with a value in every region share one kernel
        Yc = Y[:, complete]
        K = Xz @ Xz.T
        sd = Yc.std(axis=0, ddof=1)
        const = sd == 0
        Yz = (Yc - Yc.mean(axis=0)) / np.where(const, 1.0, sd)
        res = np.empty((Yc.shape[1], n_components))
        for start in range(0, Yc.shape[1], block_size):
            stop = min(start + block_size, Yc.shape[1])
            res[start:stop] = variance_explained(K, Yz[:, start:stop], n_components).T
        res[const] = np.nan
        out[complete] = res
    # the others: PLS refitted over the regions each has, one kernel per
    # pattern of missing values (computed for a block of null maps at once)
    cols = np.flatnonzero(~complete & (finite.sum(axis=0) >= MIN_PLS_REGIONS))
    for start in range(0, cols.size, block_size):
        c = cols[start:start + block_size]
        fin = finite[:, c]
        patterns, inverse = np.unique(fin.T, axis=0, return_inverse=True)
        kernels = subset_kernels(X, patterns)[np.asarray(inverse).reshape(-1)]
        y = np.where(fin, Y[:, c], 0.0)
        cnt = fin.sum(axis=0)
        mean = y.sum(axis=0) / cnt
        dev = np.where(fin, y - mean, 0.0)
        sd = np.sqrt((dev ** 2).sum(axis=0) / (cnt - 1))
        const = np.ptp(np.where(fin, y, mean), axis=0) == 0
        Yz = dev / np.where(const, 1.0, sd)
        res = variance_explained(kernels, Yz, n_components).T
        res[const] = np.nan
        out[c] = res
    return out


def bootstrap_weights(X, y, n_boot=1000, seed=0, block_size=100):
    """Bootstrap SD of the PLS1 gene weights and their Z scores.

    Regions are resampled with replacement; each resample is z-scored again
    (weighted by how often each region was drawn) and PLS1 refitted. The
    weight vector's sign is fixed by the map (``w ~ X^T y``), so no sign
    alignment across resamples is needed.

    Parameters
    ----------
    X : array_like, shape (n_regions, n_genes)
        Expression.
    y : array_like, shape (n_regions,)
        Map.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    block_size : int
        Resamples processed together (memory ~ block_size x n_genes).

    Returns
    -------
    weights : numpy.ndarray, shape (n_genes,)
        PLS1 weights of the full data.
    sd : numpy.ndarray, shape (n_genes,)
        Bootstrap SD of each weight.
    z : numpy.ndarray, shape (n_genes,)
        ``weights / sd``.
    """
    X, y = _check(X, y)
    n = X.shape[0]
    w0 = pls_fit(X, y, 1).weights
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    # counts[b, i]: how often region i is in resample b; resampled sums become
    # matrix products with these counts, with no copy of X per resample
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n), idx.ravel()), 1.0)
    X2 = X ** 2
    s1 = np.zeros(X.shape[1])
    s2 = np.zeros(X.shape[1])
    for start in range(0, n_boot, block_size):
        c = counts[start:start + block_size]
        my = c @ y / n
        vy = (c @ y ** 2 - n * my ** 2) / (n - 1)
        yt = (y[None, :] - my[:, None]) / np.sqrt(vy)[:, None]    # (b, n) z-scored y
        mx = c @ X / n
        vx = (c @ X2 - n * mx ** 2) / (n - 1)
        # sum_i c_i (x_i - mx) yt_i = sum_i c_i x_i yt_i, as sum_i c_i yt_i = 0
        w = ((c * yt) @ X) / np.sqrt(np.where(vx > 0, vx, np.nan))
        w /= np.sqrt(np.nansum(w ** 2, axis=1, keepdims=True))
        s1 += np.nansum(w, axis=0)
        s2 += np.nansum(w ** 2, axis=0)
    sd = np.sqrt(np.maximum(s2 - s1 ** 2 / n_boot, 0.0) / (n_boot - 1))
    return w0, sd, w0 / sd
