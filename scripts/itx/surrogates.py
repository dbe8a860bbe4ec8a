"""Map-dependent spatial nulls (variogram, Moran) and within-group permutations.

Spin nulls (:mod:`itx.nulls`) need the map on a sphere. This module adds the
null families that work from a parcel-by-parcel distance matrix instead, so
they serve volumetric atlases and the subcortex too:

* **variogram-matched surrogates** (Burt et al. 2020, BrainSMASH ``Base``):
  randomly permuted values, smoothed and rescaled so that their variogram
  matches the map's;
* **Moran spectral randomisation** (Wagner & Dray 2015; the ``moran`` null
  of neuromaps, after BrainSpace): the map's projections on the
  eigenvectors of a doubly centred inverse-distance weight matrix get
  random signs, which keeps the map's mean, variance and Moran's I exactly;
* **permutation within groups** (e.g. structure class x hemisphere for
  subcortical regions): a plain shuffle inside each group, never resampling
  with replacement.

Distances come from :func:`itx.distances.parcel_distance_matrix`: geodesic along the
fsaverage5 mesh for cortical surface parcels (one hemisphere at a time),
Euclidean between parcel centroids in MNI millimetres for volumetric parcels
and the subcortex. Pairs that share no meaningful distance (the two cortical
hemispheres, cortex vs subcortex) are ``inf``; the surrogate functions treat
each finite block of the matrix (a connected component) independently, as
neuromaps does for hemispheres. Parcel-level distances are what keep this
fast; neuromaps' voxel-by-voxel route for volumetric parcellations runs out
of disk or takes hours (neuromaps issues 119 and 171).

Conventions (shared with :mod:`itx.nulls`):

* map-independent nulls are integer index arrays ``idx`` of shape
  ``(n_regions, n_perm)``, ``-1`` meaning "no value"; null map ``j`` of
  ``y`` is ``y[idx[:, j]]``;
* map-dependent nulls are float arrays of null values, shape
  ``(n_regions, n_perm)``, NaN where the map has no value;
* rows are always in the caller's region order.

Calibration on real AHBA genes (``null-calibration.md``): at alpha 0.05 the
variogram null rejected 7.9-8.6% and Moran 6.6-7.2% of independent smooth
fields (nominal 5%), both growing more liberal with smoothness; parcel spins
(``alexander_bloch``) were at 5.8%. Prefer spins where the atlas allows them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import compat

# the same argument checks as every stage
from .checks import check_positive_int, check_seed
from .distances import _iter_blocks

__all__ = [
    "moran_surrogates",
    "permute_within",
    "plot_variogram",
    "smoothed_variogram",
    "variogram_diagnostic",
    "variogram_surrogates",
]

#: Smallest block (connected set of regions with finite values) for which a
#: map-dependent surrogate is attempted.
MIN_BLOCK = 3


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------


def _check_values_dist(values, dist) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"values must be a non-empty 1-D array, got shape "
                         f"{values.shape}")
    dist = np.asarray(dist, dtype=float)
    n = values.size
    if dist.shape != (n, n):
        raise ValueError(f"dist must have shape ({n}, {n}) to match values, "
                         f"got {dist.shape}")
    if np.isnan(dist).any():
        raise ValueError("dist contains NaN; use inf for pairs with no "
                         "distance (e.g. across hemispheres)")
    if not np.array_equal(dist, dist.T):
        if not np.allclose(dist, dist.T, rtol=1e-10, atol=1e-12,
                           equal_nan=False):
            raise ValueError("dist must be symmetric")
        dist = (dist + dist.T) / 2
    if np.any(np.diag(dist) != 0):
        raise ValueError("dist must have a zero diagonal")
    off = dist[~np.eye(n, dtype=bool)]
    if np.any(off <= 0):
        raise ValueError("dist has zero or negative off-diagonal entries; "
                         "two regions at the same place (duplicate "
                         "centroids?) cannot be told apart")
    return values, dist


def _block_seed(seed: int, block: int) -> int:
    """Seed of the `block`-th distance block.

    Block 0 uses `seed` itself, so a one-block map reproduces BrainSMASH /
    neuromaps for the same seed and a left-hemisphere map gets the same
    nulls whether or not the right hemisphere is analysed too. Later blocks
    get independent streams derived from (seed, block); neuromaps instead
    reuses one seed for both hemispheres, which makes equal-sized
    hemispheres share their random permutation.
    """
    if block == 0:
        return seed
    return int(np.random.SeedSequence([seed, block]).generate_state(1)[0])


# ---------------------------------------------------------------------------
# variogram surrogates (Burt et al. 2020)
# ---------------------------------------------------------------------------


def variogram_surrogates(values, dist, n_perm, seed, batch_size=50,
                         **brainsmash_kwargs):
    """Variogram-matched surrogate maps (BrainSMASH ``Base``), per block.

    Each finite block of `dist` (hemisphere, subcortex) gets its own
    :class:`brainsmash.mapgen.Base` fitted on the block's finite values;
    regions with NaN values stay NaN in every surrogate. For one block the
    output equals ``Base(values, dist, seed=seed, **kwargs)(n_perm,
    batch_size).T`` (what neuromaps' ``burt2020`` does for parcellated
    data, batch size 50); see :func:`_block_seed` for later blocks.

    Parameters
    ----------
    values : (n,) array_like
        Parcellated map; NaN = no value.
    dist : (n, n) array_like
        Distances from :func:`parcel_distance_matrix` (``inf`` between
        blocks).
    n_perm : int
        Number of surrogates.
    seed : int
        Seed; the same seed gives identical surrogates.
    batch_size : int, optional
        Surrogates drawn per random stream by BrainSMASH (its output depends
        on it). Default 50, as in neuromaps.
    **brainsmash_kwargs
        Passed to ``Base``: ``deltas``, ``kernel``, ``pv``, ``nh``,
        ``resample``, ``b``, ``n_jobs``. When `deltas` is not given, the
        default ``0.1, ..., 0.9`` is restricted per block to the proportions
        that select at least one neighbour (small blocks such as one
        hemisphere's subcortex would otherwise smooth with zero
        neighbours).

    Returns
    -------
    (n, n_perm) numpy.ndarray of float
        Surrogate values; with ``resample=False`` (BrainSMASH's default)
        each block's surrogates are de-meaned, so compare them with
        rank or Pearson correlations, not raw values.

    Raises
    ------
    ValueError
        For malformed inputs, a block with fewer than 3 finite values, or a
        reserved keyword (``seed``).
    """
    compat.patch_brainsmash()
    from brainsmash.mapgen import Base

    values, dist = _check_values_dist(values, dist)
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    if "seed" in brainsmash_kwargs:
        raise ValueError("pass the seed as the `seed` argument")
    out = np.full((values.size, n_perm), np.nan)
    for b, rows in _iter_blocks(values, dist):
        if rows.size < MIN_BLOCK:
            raise ValueError(
                f"distance block {b} has {rows.size} region(s) with values; "
                f"variogram surrogates need at least {MIN_BLOCK} (use a "
                "within-group permutation for so few regions)")
        kwargs = dict(brainsmash_kwargs)
        if "deltas" not in kwargs:
            deltas = np.linspace(0.1, 0.9, 9)
            kwargs["deltas"] = deltas[(deltas * rows.size).astype(int) >= 1]
        gen = Base(values[rows], dist[np.ix_(rows, rows)],
                   seed=_block_seed(seed, b), **kwargs)
        surr = np.asarray(gen(n_perm, batch_size), dtype=float)
        out[rows] = surr.reshape(n_perm, rows.size).T
    return out


def smoothed_variogram(values, dist, pv=25, nh=25, b=None):
    """Gaussian-smoothed variogram as BrainSMASH fits it.

    For every pair ``i < j`` with finite distance below the `pv`-th
    percentile of those distances and finite values, the semivariance
    ``(x_i - x_j)^2 / 2`` is averaged with Gaussian weights
    ``exp(-(2.68 |u_ij - h| / b)^2 / 2)`` at `nh` evenly spaced distances
    ``h``; `b` defaults to three bin spacings (BrainSMASH's rule).

    Parameters
    ----------
    values : (n,) or (n, m) array_like
        One map or `m` maps (columns) sharing `dist`.
    dist : (n, n) array_like
        Distances; ``inf`` pairs are ignored.
    pv : float, optional
        Percentile of the finite pairwise distances at which to truncate.
    nh : int, optional
        Number of distances at which the variogram is evaluated.
    b : float, optional
        Kernel bandwidth.

    Returns
    -------
    h : (nh,) numpy.ndarray
        Distances.
    gamma : (nh,) or (nh, m) numpy.ndarray
        Smoothed semivariance.
    """
    x = np.asarray(values, dtype=float)
    one = x.ndim == 1
    x = x[:, None] if one else x
    dist = np.asarray(dist, dtype=float)
    if dist.shape != (x.shape[0],) * 2:
        raise ValueError(f"dist must have shape ({x.shape[0]}, "
                         f"{x.shape[0]}), got {dist.shape}")
    # Rows with a NaN in any column drop out of every pair (the surrogates
    # keep the map's NaNs, so this is the same set of rows for all columns;
    # variogram_diagnostic handles null maps with gaps of their own).
    ok = np.isfinite(x).all(axis=1)
    iu, ju, h, w = _variogram_kernel(ok, dist, pv, nh, b)
    gamma = np.empty((h.size, x.shape[1]))
    step = max(1, int(2e7 // max(iu.size, 1)))  # bound the pair x map block
    for s in range(0, x.shape[1], step):
        v = 0.5 * np.square(x[iu, s:s + step] - x[ju, s:s + step])
        gamma[:, s:s + step] = w @ v
    return h, (gamma[:, 0] if one else gamma)


def _variogram_kernel(ok, dist, pv, nh, b):
    """Pairs and Gaussian kernel weights of :func:`smoothed_variogram`.

    Pairs ``i < j`` of rows with ``ok`` and a finite distance below the
    `pv`-th percentile; returns their rows ``iu, ju``, the distances ``h``
    and the weights ``w`` (nh x pairs, rows summing to 1).
    """
    iu, ju = np.triu_indices(ok.shape[0], k=1)
    u = dist[iu, ju]
    pair = np.isfinite(u) & ok[iu] & ok[ju]
    iu, ju, u = iu[pair], ju[pair], u[pair]
    if u.size == 0:
        raise ValueError("no pair of regions with finite distance and values")
    keep = u < np.percentile(u, pv)
    if not keep.any():  # all distances equal
        keep[:] = True
    iu, ju, u = iu[keep], ju[keep], u[keep]
    h = np.linspace(u.min(), u.max(), int(nh))
    if b is None:
        b = 3.0 * (h[1] - h[0]) if nh > 1 else 1.0
    w = np.exp(-np.square(2.68 * np.abs(u - h[:, None]) / b) / 2)
    w /= w.sum(axis=1, keepdims=True)
    return iu, ju, h, w


def _gapped_variograms(surrogates, ok, dist, pv, nh, b):
    """Variograms of null maps that lack values in some of the map's rows.

    Every null map is measured on the map's pairs and distances (the kernel
    of the map's own variogram), each over the pairs where it has both
    values: a pair the null map lacks is left out of its weighted means,
    which are renormalised over the pairs it has. NaN at a distance where a
    null map has no pair with weight.
    """
    iu, ju, h, w = _variogram_kernel(ok, dist, pv, nh, b)
    x = surrogates
    gamma = np.empty((h.size, x.shape[1]))
    step = max(1, int(4e6 // max(iu.size, 1)))  # bound the pair x map block (a few arrays)
    for s in range(0, x.shape[1], step):
        v = 0.5 * np.square(x[iu, s:s + step] - x[ju, s:s + step])
        has = np.isfinite(v)
        num = w @ np.where(has, v, 0.0)
        den = w @ has.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            gamma[:, s:s + step] = np.where(den > 0, num / den, np.nan)
    return gamma


#: Fewest regions with a value for a variogram (map or null map).
MIN_VARIOGRAM_REGIONS = 3


def variogram_diagnostic(values, dist, surrogates, pv=25, nh=25, *, name=None):
    """Empirical vs surrogate variograms, as a tidy table for the report.

    Parameters
    ----------
    values : (n,) array_like
        The map; NaN = no value (the region is left out).
    dist : (n, n) array_like
        The distances the surrogates were made with.
    surrogates : (n, n_perm) array_like
        Null values (any family: variogram, Moran, permutation, spins);
        NaN = no value.
    pv, nh : optional
        As in :func:`smoothed_variogram` (BrainSMASH's defaults).
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    pandas.DataFrame
        One row per distance: ``distance, empirical, surrogate_mean,
        surrogate_p2.5, surrogate_p97.5``. A well-fitted null has the
        empirical curve inside the band and close to the mean.
        ``attrs["n_null"]`` holds the number of null maps in the band.

    Raises
    ------
    ValueError
        When the map has values in fewer than 3 regions.

    Notes
    -----
    The empirical variogram uses every region with a map value. A null map
    with a value wherever the map has one is measured over the same pairs
    (as BrainSMASH does); a null map lacking values in some of those regions
    (a spin that moved a region without data, or a parcel into the medial
    wall) is measured over the map's pairs where it has both values, so no
    null map is dropped for a gap and no region is dropped from the other
    null maps. Null maps with values in fewer than 3 of the map's regions,
    or without a pair at some distance, are left out of the band; with none
    left the band is NaN (and a :class:`itx.association.NullMapWarning`
    says why).
    """
    values = np.asarray(values, dtype=float)
    surrogates = np.asarray(surrogates, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}")
    if surrogates.ndim != 2 or surrogates.shape[0] != values.size:
        raise ValueError(f"surrogates must have shape ({values.size}, "
                         f"n_perm), got {surrogates.shape}")
    label = f"map {name!r}" if name is not None else "the map"
    ok = np.isfinite(values)
    if ok.sum() < MIN_VARIOGRAM_REGIONS:
        raise ValueError(
            f"{label} has values in {int(ok.sum())} region(s), too few for a variogram (at "
            f"least {MIN_VARIOGRAM_REGIONS} needed); give the map values in more regions of the "
            "analysis scope")
    n_perm = surrogates.shape[1]
    if np.isfinite(surrogates[ok]).all():
        # every null map has a value wherever the map has one: the same rows
        # for map and surrogates, as BrainSMASH measures them
        masked = np.where(ok, values, np.nan)
        h, emp = smoothed_variogram(masked, dist, pv=pv, nh=nh)
        _, sur = smoothed_variogram(np.where(ok[:, None], surrogates, np.nan),
                                    dist, pv=pv, nh=nh)
    else:
        h, emp = smoothed_variogram(np.where(ok, values, np.nan), dist, pv=pv, nh=nh)
        sur = _gapped_variograms(np.where(ok[:, None], surrogates, np.nan), ok,
                                 np.asarray(dist, dtype=float), pv, nh, None)
        enough = np.isfinite(surrogates[ok]).sum(axis=0) >= MIN_VARIOGRAM_REGIONS
        sur = sur[:, enough & np.isfinite(sur).all(axis=0)]
    if sur.shape[1]:
        lo, hi = np.percentile(sur, [2.5, 97.5], axis=1)
        mean = sur.mean(axis=1)
    else:
        import warnings

        from .association import NullMapWarning

        warnings.warn(
            f"variogram of {label}: none of the {n_perm} null maps has values in at least "
            f"{MIN_VARIOGRAM_REGIONS} of the {int(ok.sum())} regions where the map has values, "
            "so the null band is left empty (n_null 0). This happens when the map lacks values "
            "in many scope regions and a spin null moves those gaps onto the others; fill in "
            "the map's missing regions, or give the map a null made over its own regions "
            "(nulls.method or the maps sheet's null_method: burt2020 or moran).",
            NullMapWarning, stacklevel=2)
        lo = hi = mean = np.full(h.size, np.nan)
    out = pd.DataFrame({
        "distance": h,
        "empirical": emp,
        "surrogate_mean": mean,
        "surrogate_p2.5": lo,
        "surrogate_p97.5": hi,
    })
    out.attrs["n_null"] = int(sur.shape[1])
    return out


def plot_variogram(diag, path, title=None):
    """Draw a variogram diagnostic (:func:`variogram_diagnostic`) to a PNG.

    Parameters
    ----------
    diag : pandas.DataFrame
        Output of :func:`variogram_diagnostic`.
    path : path-like
        Output ``.png``; written atomically.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
    """
    from .figures import new_figure, save_png  # matplotlib only when plotting

    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"variogram plot must be a .png file, got {path}")
    need = {"distance", "empirical", "surrogate_mean", "surrogate_p2.5",
            "surrogate_p97.5"}
    if not need <= set(diag.columns):
        raise ValueError(f"diag lacks columns {sorted(need - set(diag.columns))}"
                         "; pass the output of variogram_diagnostic")
    fig = new_figure(5.0, 3.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.fill_between(diag["distance"], diag["surrogate_p2.5"],
                    diag["surrogate_p97.5"], color="0.8",
                    label="surrogates 95%")
    ax.plot(diag["distance"], diag["surrogate_mean"], color="0.35", lw=1.5,
            label="surrogate mean")
    ax.plot(diag["distance"], diag["empirical"], color="C3", lw=2,
            label="empirical")
    ax.set_xlabel("distance (mm)")
    ax.set_ylabel("semivariance (smoothed)")
    if title:
        ax.set_title(title)
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)


# ---------------------------------------------------------------------------
# Moran spectral randomisation
# ---------------------------------------------------------------------------


def _moran_eigenvectors(dist):
    """Eigenvectors of the doubly centred inverse-distance weight matrix.

    Returns all ``n - 1`` eigenvectors orthogonal to the constant, sorted by
    decreasing eigenvalue (BrainSpace's order). Working in an orthonormal
    basis of the complement of the constant removes the constant exactly,
    instead of finding it among eigenvalues below a tolerance (BrainSpace's
    float32 route can keep or drop the wrong vector).
    """
    n = dist.shape[0]
    with np.errstate(divide="ignore"):
        w = 1.0 / dist
    # No self-weight: Moran's weight convention. neuromaps sets the diagonal
    # to 1; after double centring that only adds 1 to every eigenvalue but
    # the constant's, which leaves the eigenvectors and their order alone.
    np.fill_diagonal(w, 0.0)
    # Orthonormal basis of the vectors orthogonal to 1 (Householder-free:
    # QR of [1 | I] gives 1/sqrt(n) first, the rest complete the basis).
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), np.eye(n)[:, :n - 1]]))
    basis = q[:, 1:n]
    ev, u = np.linalg.eigh(basis.T @ w @ basis)
    order = np.argsort(ev)[::-1]
    return ev[order], basis @ u[:, order]


def moran_surrogates(values, dist, n_perm, seed):
    """Moran spectral randomisation (singleton procedure), per block.

    Within each finite block of `dist`, the map is expanded on the
    eigenvectors ``v_k`` of the doubly centred inverse-distance weight
    matrix (Moran eigenvector maps); a surrogate flips the sign of each
    coefficient at random: ``mean + sum_k s_k v_k (v_k . (x - mean))`` with
    ``s_k = +-1``. Every surrogate has exactly the map's mean, variance and
    Moran's I (for the inverse-distance weights), i.e. the same Moran
    spectrum; the null is map-dependent. This is neuromaps' ``moran`` null
    (BrainSpace ``MoranRandomization`` with ``joint=True``,
    ``procedure='singleton'``) computed in float64; the signs are drawn as
    BrainSpace draws them (``RandomState(seed).choice([-1., 1.], size=
    (n_perm, n_block - 1, 1))``), so surrogates agree with neuromaps' up to
    BrainSpace's float32 eigenvectors whenever it finds exactly one zero
    eigenvalue. neuromaps needs BrainSpace (and VTK), which is not in this
    workflow's stack.

    Parameters
    ----------
    values : (n,) array_like
        Parcellated map; NaN = no value (kept NaN in every surrogate).
    dist : (n, n) array_like
        Distances (``inf`` between blocks), e.g. from
        :func:`parcel_distance_matrix`.
    n_perm : int
        Number of surrogates.
    seed : int
        Seed; see :func:`_block_seed` for blocks after the first.

    Returns
    -------
    (n, n_perm) numpy.ndarray of float
    """
    values, dist = _check_values_dist(values, dist)
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    out = np.full((values.size, n_perm), np.nan)
    for b, rows in _iter_blocks(values, dist):
        if rows.size < MIN_BLOCK:
            raise ValueError(
                f"distance block {b} has {rows.size} region(s) with values; "
                f"Moran surrogates need at least {MIN_BLOCK}")
        x = values[rows]
        _, mem = _moran_eigenvectors(dist[np.ix_(rows, rows)])
        rs = np.random.RandomState(_block_seed(seed, b))
        signs = rs.choice([-1.0, 1.0], size=(n_perm, mem.shape[1], 1))
        mean = x.mean()
        coef = mem.T @ (x - mean)
        out[rows] = mean + mem @ (coef[:, None] * signs[:, :, 0].T)
    return out


# ---------------------------------------------------------------------------
# permutations within groups
# ---------------------------------------------------------------------------


def permute_within(groups, n_perm, seed) -> np.ndarray:
    """Random permutations that keep every region inside its group.

    Each column is a uniformly drawn permutation of the rows within each
    group (e.g. structure class x hemisphere for subcortical regions), never
    a draw with replacement; groups are permuted independently.

    Parameters
    ----------
    groups : (n,) sequence
        Group label of each region (any hashable values; ``None`` or NaN
        marks a region left out: its row is -1 and no other row draws it).
    n_perm : int
        Number of permutations.
    seed : int
        Seed of ``numpy.random.default_rng``; same seed, same output.

    Returns
    -------
    idx : (n, n_perm) numpy.ndarray of int64
        Null ``j`` of ``y`` is ``y[idx[:, j]]``.
    """
    n_perm = check_positive_int(n_perm, "n_perm")
    seed = check_seed(seed)
    labels = pd.Series(list(groups), dtype=object)
    if labels.empty:
        raise ValueError("groups is empty")
    codes, _ = pd.factorize(labels)  # NaN/None -> -1
    rng = np.random.default_rng(seed)
    idx = np.full((labels.size, n_perm), -1, dtype=np.int64)
    # Arg-sorting iid uniform keys gives a uniformly random permutation;
    # one draw per group covers all permutations at once.
    for g in range(codes.max() + 1):
        rows = np.flatnonzero(codes == g)
        keys = rng.random((rows.size, n_perm))
        idx[rows] = rows[np.argsort(keys, axis=0)]
    return idx
