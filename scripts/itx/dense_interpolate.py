"""Interpolation of per-sample scores over MNI space (part of :mod:`itx.dense`).

Gaussian-process regression on the MNI coordinates (constant x RBF + white
noise kernel, hyperparameters by maximum marginal likelihood), or abagen's
inverse-distance nearest-sample interpolation as the baseline.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .checks import check_positive_int, check_seed

LGR = logging.getLogger("itx.dense")

#: Interpolation methods: Gaussian-process regression and abagen's
#: inverse-distance-weighted nearest samples (``get_interpolated_map``).
METHODS = ("gp", "nearest")

#: RBF length-scale search range (mm). Below ~4 mm (two voxels of the 2 mm
#: grid, and below AHBA's typical inter-sample spacing of 5-10 mm) an RBF is
#: indistinguishable from the white-noise term; above 200 mm (the brain is
#: ~170 mm long) it is a constant or a linear trend.
LENGTH_SCALE_BOUNDS_MM = (4.0, 200.0)
#: Start of the length-scale search (mm): AHBA cortical gradients vary over
#: a few centimetres.
LENGTH_SCALE_INIT_MM = 25.0
#: Bounds of the signal variance and noise variance, in units of the score
#: variance (scores are standardised before fitting: ``normalize_y``).
SIGNAL_BOUNDS = (1e-3, 1e2)
NOISE_BOUNDS = (1e-3, 1e1)

#: Samples the GP hyperparameters are fitted on (a seeded random subset when
#: there are more): the marginal likelihood costs O(n^3) per optimiser step,
#: 1,000 samples take seconds; the final GP then conditions on all samples.
DEFAULT_MAX_FIT_SAMPLES = 1000
#: Optimiser restarts from random (seeded) hyperparameters, against local
#: optima such as "all noise, no signal". Each start costs as much as the
#: first; on the demo one start already finds the optimum (docs/dense_maps.md).
DEFAULT_RESTARTS = 1
#: abagen's default for ``get_interpolated_map``.
DEFAULT_N_NEIGHBORS = 10
#: Voxels per prediction block: the block's (voxels x samples) kernel takes
#: block x n x 8 bytes (4,096 x 3,702 samples: 121 MB).
DEFAULT_BLOCK_SIZE = 4096


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def _check_coords(coords, name) -> np.ndarray:
    xyz = np.asarray(coords, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"{name} must have shape (n, 3) (MNI x, y, z in mm), got {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise ValueError(f"{name} contains non-finite coordinates")
    return xyz


def _check_values(values, n, name) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must be a vector of one value per sample ({n}), "
                         f"got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains non-finite values; drop those samples first")
    return y


def _score_frame(scores, n) -> pd.DataFrame:
    """(samples x cell types) scores as a DataFrame with string column names."""
    if isinstance(scores, pd.Series):
        scores = scores.to_frame()
    if isinstance(scores, pd.DataFrame):
        frame = scores.reset_index(drop=True)
    else:
        arr = np.asarray(scores, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]
        frame = pd.DataFrame(arr, columns=[f"map{k}" for k in range(arr.shape[1])])
    if frame.ndim != 2 or len(frame) != n or frame.shape[1] == 0:
        raise ValueError(f"scores must be (samples x cell types) with {n} rows, got {frame.shape}")
    frame.columns = [str(c) for c in frame.columns]
    return frame.astype(np.float64)


@dataclass
class GPInterpolator:
    """A Gaussian process conditioned on all samples.

    Attributes
    ----------
    gp : sklearn.gaussian_process.GaussianProcessRegressor
        Fitted with fixed hyperparameters (``optimizer=None``) on all samples.
    params : dict
        ``length_scale_mm``, ``signal_var`` and ``noise_var`` (in units of
        the score variance), ``n_train``, ``n_fit`` (samples the
        hyperparameters were fitted on), ``log_marginal_likelihood`` (on
        those), ``at_bound`` (hyperparameters that ended on a bound).
    """

    gp: object
    params: dict

    def predict(self, coords, return_std=False, block_size=DEFAULT_BLOCK_SIZE):
        """Posterior mean (and SD of the latent field) at `coords`.

        Parameters
        ----------
        coords : (m, 3) array_like
            MNI coordinates (mm).
        return_std : bool, optional
            Also return the predictive SD of the smooth field, i.e. without
            the white-noise (measurement) variance that scikit-learn's
            ``predict(return_std=True)`` includes.
        block_size : int, optional
            Points per block (bounds memory; results do not depend on it).

        Returns
        -------
        mean : (m,) numpy.ndarray
        sd : (m,) numpy.ndarray, only if `return_std`
        """
        xyz = _check_coords(coords, "coords")
        block_size = check_positive_int(block_size, "block_size")
        mean = np.empty(len(xyz))
        sd = np.empty(len(xyz)) if return_std else None
        # sklearn's variance includes the WhiteKernel noise (in normalised units)
        noise = self.params["noise_var"] * float(np.square(self.gp._y_train_std))
        for start in range(0, len(xyz), block_size):
            block = slice(start, start + block_size)
            if return_std:
                with warnings.catch_warnings():
                    # rounding can make a variance slightly negative; sklearn clips to 0
                    warnings.simplefilter("ignore", UserWarning)
                    mean[block], s = self.gp.predict(xyz[block], return_std=True)
                sd[block] = np.sqrt(np.clip(np.square(s) - noise, 0.0, None))
            else:
                mean[block] = self.gp.predict(xyz[block])
        return (mean, sd) if return_std else mean


@dataclass
class NearestInterpolator:
    """abagen-style inverse-distance weighting of the nearest samples.

    Attributes
    ----------
    tree : scipy.spatial.cKDTree
        Sample coordinates.
    values : numpy.ndarray
        Sample values.
    n_neighbors : int
        Samples averaged per point (1: nearest sample only).
    params : dict
        ``n_neighbors``, ``n_train``.
    """

    tree: cKDTree
    values: np.ndarray
    n_neighbors: int
    params: dict = field(default_factory=dict)

    def predict(self, coords, return_std=False, block_size=DEFAULT_BLOCK_SIZE):
        """Weighted mean of the `n_neighbors` nearest samples (weights 1/distance;
        a point on a sample takes that sample's value, as in abagen's
        ``_get_weights``). No uncertainty: `sd` is ``None``."""
        xyz = _check_coords(coords, "coords")
        block_size = check_positive_int(block_size, "block_size")
        mean = np.empty(len(xyz))
        for start in range(0, len(xyz), block_size):
            block = slice(start, start + block_size)
            dist, idx = self.tree.query(xyz[block], k=self.n_neighbors)
            dist, idx = dist.reshape(len(dist), -1), idx.reshape(len(idx), -1)
            with np.errstate(divide="ignore"):
                w = 1.0 / dist
            exact = np.isinf(w)
            on_sample = exact.any(axis=1)
            w[on_sample] = exact[on_sample]
            mean[block] = (self.values[idx] * w).sum(axis=1) / w.sum(axis=1)
        return (mean, None) if return_std else mean


def fit_interpolator(coords, values, method="gp", seed=0, *,
                     n_neighbors=DEFAULT_N_NEIGHBORS,
                     max_fit_samples=DEFAULT_MAX_FIT_SAMPLES,
                     n_restarts=DEFAULT_RESTARTS,
                     length_scale_bounds=LENGTH_SCALE_BOUNDS_MM,
                     noise_bounds=NOISE_BOUNDS):
    """Fit an interpolator of one value per sample over MNI space.

    Parameters
    ----------
    coords : (n, 3) array_like
        Sample MNI coordinates (mm).
    values : (n,) array_like
        Finite sample values (e.g. one cell type's marker score).
    method : {'gp', 'nearest'}, optional
        ``'gp'``: Gaussian-process regression, kernel
        ``C * RBF(length_scale) + White(noise)`` on standardised values
        (``normalize_y=True``); C, length scale and noise maximise the log
        marginal likelihood (L-BFGS-B within the bounds, ``n_restarts``
        seeded restarts) on at most `max_fit_samples` samples (a seeded
        random subset), then the GP conditions on all samples with those
        hyperparameters fixed. ``'nearest'``: the inverse-distance-weighted
        mean of the `n_neighbors` nearest samples, as
        ``abagen.get_interpolated_map``.
    seed : int, optional
        Seeds the fitting subset and the optimiser restarts.
    n_neighbors : int, optional
        Neighbours for ``'nearest'`` (abagen's default, 10).
    max_fit_samples : int, optional
        Cap on the samples used to fit the GP hyperparameters.
    n_restarts : int, optional
        Optimiser restarts (0: only from the initial values).
    length_scale_bounds, noise_bounds : (float, float), optional
        Search ranges of the RBF length scale (mm) and of the noise variance
        (in units of the value variance).

    Returns
    -------
    GPInterpolator or NearestInterpolator
    """
    xyz = _check_coords(coords, "coords")
    y = _check_values(values, len(xyz), "values")
    seed = check_seed(seed)
    method = _check_method(method)
    if method == "nearest":
        k = min(check_positive_int(n_neighbors, "n_neighbors"), len(xyz))
        return NearestInterpolator(cKDTree(xyz), y, k, {"n_neighbors": k, "n_train": len(xyz)})

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    if len(xyz) < 3:
        raise ValueError(f"a Gaussian process needs at least 3 samples, got {len(xyz)}")
    max_fit = check_positive_int(max_fit_samples, "max_fit_samples")
    n_restarts = int(n_restarts)
    if n_restarts < 0:
        raise ValueError(f"n_restarts must be >= 0, got {n_restarts}")
    lo, hi = (float(b) for b in length_scale_bounds)
    if not 0 < lo < hi:
        raise ValueError("length_scale_bounds must be 0 < low < high (mm), "
                         f"got {length_scale_bounds}")
    rng = np.random.default_rng(seed)
    fit_idx = np.arange(len(xyz))
    if len(xyz) > max_fit:
        fit_idx = np.sort(rng.choice(len(xyz), max_fit, replace=False))
    kernel = (ConstantKernel(1.0, SIGNAL_BOUNDS)
              * RBF(float(np.clip(LENGTH_SCALE_INIT_MM, lo, hi)), (lo, hi))
              + WhiteKernel(0.5, tuple(float(b) for b in noise_bounds)))
    search = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=n_restarts,
                                      random_state=int(rng.integers(2**31 - 1)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        search.fit(xyz[fit_idx], y[fit_idx])
    fitted = search.kernel_
    gp = GaussianProcessRegressor(fitted, normalize_y=True, optimizer=None).fit(xyz, y)
    amp, rbf, white = fitted.k1.k1, fitted.k1.k2, fitted.k2
    bounds = {"signal_var": (amp.constant_value, SIGNAL_BOUNDS),
              "length_scale_mm": (rbf.length_scale, (lo, hi)),
              "noise_var": (white.noise_level, noise_bounds)}
    at_bound = [name for name, (v, (b0, b1)) in bounds.items()
                if np.isclose(v, b0, rtol=1e-3) or np.isclose(v, b1, rtol=1e-3)]
    for w in caught:
        if issubclass(w.category, ConvergenceWarning):
            LGR.info("GP hyperparameter fit: %s", w.message)
    params = {"length_scale_mm": float(rbf.length_scale), "signal_var": float(amp.constant_value),
              "noise_var": float(white.noise_level), "n_train": len(xyz), "n_fit": len(fit_idx),
              "log_marginal_likelihood": float(search.log_marginal_likelihood_value_),
              "at_bound": ",".join(at_bound)}
    return GPInterpolator(gp, params)


@dataclass
class Interpolation:
    """Values of several maps interpolated to target points.

    Attributes
    ----------
    mean : (m, K) numpy.ndarray
    sd : (m, K) numpy.ndarray or None
        GP predictive SD of the smooth field (``None`` for 'nearest').
    params : pandas.DataFrame
        One row per map (``celltype``, ``method``, ``n_samples`` and the
        interpolator's parameters).
    """

    mean: np.ndarray
    sd: np.ndarray | None
    params: pd.DataFrame


def interpolate_scores(coords, scores, target_coords, method="gp", seed=0, *,
                       return_std=True, block_size=DEFAULT_BLOCK_SIZE, **fit_options):
    """Interpolate every column of `scores` from samples to target points.

    Parameters
    ----------
    coords : (n, 3) array_like
        Sample MNI coordinates (mm).
    scores : (n, K) array_like or pandas.DataFrame
        One column per cell type; samples with a missing value in a column
        are left out of that column's fit.
    target_coords : (m, 3) array_like
        Where to predict (e.g. voxel centres).
    method : {'gp', 'nearest'}, optional
    seed : int, optional
        The same seed is used for every column (the same fitting subset).
    return_std : bool, optional
        Return the GP's predictive SD (ignored for 'nearest').
    block_size : int, optional
        Target points per prediction block.
    **fit_options
        Passed to :func:`fit_interpolator`.

    Returns
    -------
    Interpolation
    """
    xyz = _check_coords(coords, "coords")
    targets = _check_coords(target_coords, "target_coords")
    frame = _score_frame(scores, len(xyz))
    method = _check_method(method)
    want_sd = bool(return_std) and method == "gp"
    mean = np.empty((len(targets), frame.shape[1]))
    sd = np.empty_like(mean) if want_sd else None
    rows = []
    for k, name in enumerate(frame.columns):
        y = frame[name].to_numpy()
        ok = np.isfinite(y)
        model = fit_interpolator(xyz[ok], y[ok], method, seed, **fit_options)
        if want_sd:
            mean[:, k], sd[:, k] = model.predict(targets, return_std=True, block_size=block_size)
        else:
            mean[:, k] = model.predict(targets, block_size=block_size)
        rows.append({"celltype": name, "method": method, "n_samples": int(ok.sum()),
                     **model.params})
        LGR.info("interpolated %s (%s): %s", name, method, model.params)
    return Interpolation(mean, sd, pd.DataFrame(rows))
