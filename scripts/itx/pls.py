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

__all__ = ["PLSResult", "zscore", "variance_explained", "pls_fit", "pls_null",
           "bootstrap_weights"]


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
        raise ValueError(f"X must be (n_regions, n_genes) and y (n_regions,); got {X.shape}, {y.shape}")
    if not (np.isfinite(X).all() and np.isfinite(y).all()):
        raise ValueError("X and y must be finite; drop regions without data first")
    if X.shape[0] < 4:
        raise ValueError("PLS needs at least 4 regions")
    return X, y


def variance_explained(K, Y, n_components):
    """Fraction of each response's variance explained by PLS components 1..k.

    Parameters
    ----------
    K : numpy.ndarray, shape (n, n)
        ``Xz @ Xz.T`` of the z-scored gene matrix.
    Y : numpy.ndarray, shape (n, m)
        m z-scored responses (the map, or null maps), one per column.
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


def pls_null(X, null_maps, n_components=3, block_size=256):
    """Variance explained when PLS is refitted on every null map.

    Parameters
    ----------
    X : array_like, shape (n_regions, n_genes)
        Expression.
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of the map (e.g. spins), finite.
    n_components : int
        Components.
    block_size : int
        Null maps refitted together (memory ~ block_size x n_regions^2).

    Returns
    -------
    numpy.ndarray, shape (n_perm, n_components)
        Variance explained by each component for each null map (NaN for a
        constant null map).
    """
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(null_maps, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise ValueError(f"null_maps must be (n_regions={X.shape[0]}, n_perm), got {Y.shape}")
    if not np.isfinite(Y).all():
        raise ValueError("null maps must be finite; restrict them to regions with data")
    Xz = zscore(X)
    K = Xz @ Xz.T
    sd = Y.std(axis=0, ddof=1)
    const = sd == 0
    Yz = (Y - Y.mean(axis=0)) / np.where(const, 1.0, sd)
    out = np.empty((Y.shape[1], n_components))
    for start in range(0, Y.shape[1], block_size):
        stop = min(start + block_size, Y.shape[1])
        out[start:stop] = variance_explained(K, Yz[:, start:stop], n_components).T
    out[const] = np.nan
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
