"""Dense whole-brain cell-type maps from AHBA sample-level expression.

Region-level pipelines average the AHBA samples inside the parcels of one
atlas. This module instead interpolates each cell type's marker score from
the tissue samples themselves to every grey-matter voxel of MNI152, so any
atlas can parcellate the maps afterwards (see ``docs/dense_maps.md``).

Steps
-----
1. :func:`sample_scores`: per sample, the mean of the cell type's marker
   genes after z-scoring every gene across the samples *of the same donor*.
2. :func:`fit_interpolator` / :func:`interpolate_scores`: Gaussian-process
   regression on the MNI coordinates (constant x RBF + white noise kernel,
   hyperparameters by maximum marginal likelihood), or abagen's
   inverse-distance nearest-sample interpolation as the baseline.
3. :func:`dense_maps` / :func:`write_dense_maps`: 4D float32 NIfTI maps (one
   volume per cell type) on nilearn's bundled MNI152 grey-matter mask, plus
   the GP's predictive SD.
4. :func:`leave_one_donor_out` and :func:`validate_on_demo`: held-out donors
   and the demo's planted field.

Every function is pure (explicit arguments, no config); randomness (the
subsample the GP hyperparameters are fitted on, optimiser restarts) comes
from the `seed` argument, so the same seed gives identical maps.
"""

from __future__ import annotations

import functools
import gzip
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

from .tables import atomic_path, write_tsv
from . import compat

LGR = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "SampleScores",
    "GPInterpolator",
    "NearestInterpolator",
    "Interpolation",
    "DenseMaps",
    "DemoValidation",
    "sample_scores",
    "fit_interpolator",
    "interpolate_scores",
    "grey_matter_mask",
    "mask_coordinates",
    "dense_maps",
    "write_dense_maps",
    "leave_one_donor_out",
    "validate_on_demo",
    "compare_external",
    "plot_dense_maps",
    "plot_demo_validation",
]

#: Interpolation methods: Gaussian-process regression and abagen's
#: inverse-distance-weighted nearest samples (``get_interpolated_map``).
METHODS = ("gp", "nearest")

#: Default grid of the output maps (mm), as nilearn's 2 mm MNI152 template.
DEFAULT_RESOLUTION_MM = 2

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

_COORDS = ["mni_x", "mni_y", "mni_z"]


# ---------------------------------------------------------------------------
# argument checks
# ---------------------------------------------------------------------------

def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    return method


def _check_positive_int(value, name) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


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
        raise ValueError(f"{name} must be a vector of one value per sample ({n}), got shape {y.shape}")
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


# ---------------------------------------------------------------------------
# 1. per-sample marker scores
# ---------------------------------------------------------------------------

@dataclass
class SampleScores:
    """Per-sample cell-type marker scores.

    Attributes
    ----------
    samples : pandas.DataFrame
        One row per sample: ``donor, sample_id, well_id, structure,
        hemisphere, x, y, z`` (MNI mm), in donor order.
    scores : pandas.DataFrame
        Same rows, one column per kept cell type: mean within-donor z-score
        of the type's marker genes.
    report : pandas.DataFrame
        One row per input set: ``set, n_genes_in_set, n_genes_found, kept,
        reason`` (from :func:`itx.genesets.match_gene_sets`).
    """

    samples: pd.DataFrame
    scores: pd.DataFrame
    report: pd.DataFrame

    @property
    def coords(self) -> np.ndarray:
        return self.samples[["x", "y", "z"]].to_numpy(np.float64)

    @property
    def donors(self) -> np.ndarray:
        return self.samples["donor"].to_numpy()

    @property
    def celltypes(self) -> list:
        return list(self.scores.columns)

    def table(self) -> pd.DataFrame:
        """Samples and scores side by side (the ``scores.tsv`` layout)."""
        return pd.concat([self.samples, self.scores], axis=1)


def _microarray_and_annotation(selection):
    """Donor -> (samples x genes) frame and donor -> annotation, normalised
    per sample as abagen would (see :func:`sample_scores`)."""
    from . import expression

    if isinstance(selection, (str, Path)):
        selection = expression.read_selection(selection)
    if isinstance(selection, expression.ProbeSelection):
        micro, annot = dict(selection.microarray), dict(selection.annotation)
        norm = selection.options.get("sample_norm")
        if norm is not None and not selection.sample_normed:
            compat.patch_abagen()
            from abagen import correct

            # abagen's get_interpolated_map normalises every sample of the
            # donor (norm_matched=False): the same call on all samples here
            micro = {d: correct.normalize_expression(m.T, norm=norm, ignore_warn=True).T
                     for d, m in micro.items()}
        return micro, annot
    if isinstance(selection, tuple) and len(selection) == 2:
        micro, annot = (dict(x) for x in selection)
        if set(micro) != set(annot):
            raise ValueError("the microarray and annotation dicts must have the same donors")
        return micro, annot
    raise TypeError("selection must be a ProbeSelection, a saved selection folder or a "
                    f"(microarray, annotation) pair of dicts, got {type(selection).__name__}")


def sample_scores(selection, sets: Mapping[str, Sequence[str]], min_genes: int = 5) -> SampleScores:
    """Marker score of every cell type at every AHBA tissue sample.

    Parameters
    ----------
    selection : ProbeSelection, str, os.PathLike or (dict, dict)
        The atlas-independent probe selection (:func:`itx.expression.select_probes`),
        a folder saved by :func:`itx.expression.write_selection`, or a pair
        ``(microarray, annotation)`` of donor -> DataFrame (samples x genes;
        annotation with ``mni_x, mni_y, mni_z``, same index). A selection whose
        ``sample_norm`` was not yet applied is normalised here per sample.
    sets : mapping of str -> sequence of str
        Cell type -> marker gene symbols (:func:`itx.genesets.read_gene_sets`).
    min_genes : int, optional
        Minimum number of a set's genes found in the expression data; smaller
        sets are reported and skipped.

    Returns
    -------
    SampleScores

    Raises
    ------
    ValueError
        If the donors do not share the same genes, an annotation lacks MNI
        coordinates, or no set has `min_genes` genes.

    Notes
    -----
    Each gene is z-scored across the samples of one donor (mean 0, SD 1,
    ``ddof=0``), then a sample's score is the mean z over the set's genes
    that are measured there. Within-donor standardisation removes each
    donor's per-gene offset and scale (array batch, age, post-mortem
    interval: in AHBA the donor explains more variance than anatomy for
    many genes), so a donor whose samples sit higher overall cannot bend the
    map towards the regions only it sampled. It also keeps a donor's scores
    independent of the other donors, which makes the leave-one-donor-out
    test honest. It assumes donors sampled broadly similar regions (four of
    the six AHBA donors have left hemispheres only; their scores are
    centred on the left hemisphere). A gene constant within a donor carries
    no spatial information there and is skipped for that donor.
    """
    from .genesets import match_gene_sets

    min_genes = _check_positive_int(min_genes, "min_genes")
    micro, annot = _microarray_and_annotation(selection)
    if not micro:
        raise ValueError("the selection holds no donors")
    donors = list(micro)
    genes = list(micro[donors[0]].columns)
    for d in donors[1:]:
        if list(micro[d].columns) != genes:
            raise ValueError(f"donor {d} has other genes than donor {donors[0]}; select the "
                             "probes of all donors together (donor_probes 'aggregate' or 'common')")
    membership, report = match_gene_sets(dict(sets), genes, min_genes)
    if membership.shape[1] == 0:
        raise ValueError(f"no gene set has at least min_genes={min_genes} genes in the expression "
                         f"data:\n{report.to_string(index=False)}")
    # only marker genes are read: a few hundred of ~15,000 columns
    used = np.flatnonzero(membership.to_numpy().any(axis=1))
    weights = membership.to_numpy()[used]                       # (G_used, K)

    sample_rows, score_rows = [], []
    for d in donors:
        a = annot[d]
        missing = [c for c in _COORDS if c not in a.columns]
        if missing:
            raise ValueError(f"annotation of donor {d} lacks MNI coordinate column(s) {missing}")
        if not a.index.equals(micro[d].index):
            raise ValueError(f"annotation and microarray of donor {d} have different samples")
        x = micro[d].to_numpy(np.float64)[:, used]
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN genes
            z = (x - np.nanmean(x, axis=0)) / np.nanstd(x, axis=0)
        measured = np.isfinite(z)
        score = np.where(measured, z, 0.0) @ weights
        with np.errstate(invalid="ignore", divide="ignore"):
            score /= measured.astype(np.float64) @ weights       # NaN if none measured
        score_rows.append(score)
        sample_rows.append(pd.DataFrame({
            "donor": str(d),
            "sample_id": np.asarray(a.index),
            "well_id": a["well_id"].to_numpy() if "well_id" in a.columns else np.asarray(a.index),
            "structure": a["structure"].to_numpy() if "structure" in a.columns else "",
            "hemisphere": a["hemisphere"].to_numpy() if "hemisphere" in a.columns else "",
            "x": a["mni_x"].to_numpy(np.float64),
            "y": a["mni_y"].to_numpy(np.float64),
            "z": a["mni_z"].to_numpy(np.float64),
        }))
    samples = pd.concat(sample_rows, ignore_index=True)
    scores = pd.DataFrame(np.vstack(score_rows), columns=list(membership.columns))
    return SampleScores(samples=samples, scores=scores, report=report)


# ---------------------------------------------------------------------------
# 2. interpolation
# ---------------------------------------------------------------------------

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
        block_size = _check_positive_int(block_size, "block_size")
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
        block_size = _check_positive_int(block_size, "block_size")
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
    seed = _check_seed(seed)
    method = _check_method(method)
    if method == "nearest":
        k = min(_check_positive_int(n_neighbors, "n_neighbors"), len(xyz))
        return NearestInterpolator(cKDTree(xyz), y, k, {"n_neighbors": k, "n_train": len(xyz)})

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    if len(xyz) < 3:
        raise ValueError(f"a Gaussian process needs at least 3 samples, got {len(xyz)}")
    max_fit = _check_positive_int(max_fit_samples, "max_fit_samples")
    n_restarts = int(n_restarts)
    if n_restarts < 0:
        raise ValueError(f"n_restarts must be >= 0, got {n_restarts}")
    lo, hi = (float(b) for b in length_scale_bounds)
    if not 0 < lo < hi:
        raise ValueError(f"length_scale_bounds must be 0 < low < high (mm), got {length_scale_bounds}")
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
        rows.append({"celltype": name, "method": method, "n_samples": int(ok.sum()), **model.params})
        LGR.info("interpolated %s (%s): %s", name, method, model.params)
    return Interpolation(mean, sd, pd.DataFrame(rows))


# ---------------------------------------------------------------------------
# 3. NIfTI maps
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _gm_mask(resolution_mm):
    from nilearn.datasets import load_mni152_gm_mask

    img = load_mni152_gm_mask(resolution=resolution_mm)
    data = (np.asarray(img.dataobj) > 0).astype(np.uint8)
    data.flags.writeable = False   # shared by every call: nobody may change it
    return data, img.affine.copy()


def grey_matter_mask(resolution_mm=DEFAULT_RESOLUTION_MM):
    """nilearn's bundled MNI152 grey-matter mask (offline) at `resolution_mm`.

    Parameters
    ----------
    resolution_mm : int, optional
        Isotropic voxel size; nilearn resamples its 1 mm template (about a
        second, so the result is cached per resolution).

    Returns
    -------
    nibabel.Nifti1Image
        uint8 mask (1 = grey matter, thresholded at 0.2 and closed, nilearn's
        defaults).
    """
    data, affine = _gm_mask(_check_positive_int(resolution_mm, "resolution_mm"))
    return nib.Nifti1Image(data.copy(), affine.copy())


def _load_mask(mask_img, resolution_mm):
    if mask_img is None:
        return grey_matter_mask(resolution_mm)
    img = nib.load(str(mask_img)) if isinstance(mask_img, (str, Path)) else mask_img
    if len(img.shape) != 3:
        raise ValueError(f"mask_img must be a 3D image, got shape {img.shape}")
    data = np.asarray(img.dataobj)
    if not np.any(data > 0):
        raise ValueError("mask_img has no voxel > 0")
    return nib.Nifti1Image((data > 0).astype(np.uint8), img.affine)


def mask_coordinates(mask_img):
    """Voxel indices (C order) and MNI centres (mm) of the voxels of a mask.

    Returns
    -------
    ijk : (m, 3) numpy.ndarray of int
    xyz : (m, 3) numpy.ndarray of float
    """
    ijk = np.argwhere(np.asarray(mask_img.dataobj) > 0)
    return ijk, nib.affines.apply_affine(mask_img.affine, ijk)


@dataclass
class DenseMaps:
    """Dense maps on a voxel grid.

    Attributes
    ----------
    maps : nibabel.Nifti1Image
        4D float32, one volume per cell type (in `celltypes` order), 0
        outside the mask.
    sd : nibabel.Nifti1Image or None
        4D float32 GP predictive SD (same layout); ``None`` for 'nearest'.
    mask : nibabel.Nifti1Image
        The mask the maps cover.
    celltypes : list of str
    params : pandas.DataFrame
        Per cell type: ``volume`` (0-based index in the 4D files) and the
        interpolation parameters.
    """

    maps: nib.Nifti1Image
    sd: nib.Nifti1Image | None
    mask: nib.Nifti1Image
    celltypes: list
    params: pd.DataFrame

    def volume(self, celltype, sd=False) -> nib.Nifti1Image:
        """The 3D map (or SD map) of one cell type."""
        img = self.sd if sd else self.maps
        if img is None:
            raise ValueError("these maps have no uncertainty (method 'nearest')")
        k = self.celltypes.index(celltype)
        return nib.Nifti1Image(np.asarray(img.dataobj)[..., k], img.affine)


def _volume4d(values, ijk, shape, affine):
    data = np.zeros(tuple(shape) + (values.shape[1],), dtype=np.float32)
    data[tuple(ijk.T)] = values.astype(np.float32)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(np.float32)
    img.header.set_slope_inter(1.0, 0.0)
    img.header.set_xyzt_units("mm")
    img.header.set_qform(affine, code=4)   # 4 = MNI152
    img.header.set_sform(affine, code=4)
    return img


def dense_maps(coords, scores, *, mask_img=None, resolution_mm=DEFAULT_RESOLUTION_MM,
               method="gp", seed=0, uncertainty=True, block_size=DEFAULT_BLOCK_SIZE,
               **fit_options) -> DenseMaps:
    """Interpolate sample scores to every voxel of a (grey-matter) mask.

    Parameters
    ----------
    coords : (n, 3) array_like
        Sample MNI coordinates (mm).
    scores : (n, K) array_like or pandas.DataFrame
        One column per cell type (column names become the cell-type names).
    mask_img : niimg-like or path, optional
        3D mask in MNI152 space; default nilearn's bundled MNI152
        grey-matter mask at `resolution_mm` (:func:`grey_matter_mask`).
    resolution_mm : int, optional
        Voxel size of the default mask (ignored when `mask_img` is given).
    method : {'gp', 'nearest'}, optional
    seed : int, optional
    uncertainty : bool, optional
        Also compute the GP predictive SD map (about 3x the time of the mean).
    block_size : int, optional
        Voxels per prediction block.
    **fit_options
        Passed to :func:`fit_interpolator`.

    Returns
    -------
    DenseMaps
    """
    mask = _load_mask(mask_img, resolution_mm)
    ijk, xyz = mask_coordinates(mask)
    frame = _score_frame(scores, len(_check_coords(coords, "coords")))
    interp = interpolate_scores(coords, frame, xyz, method, seed, return_std=uncertainty,
                                block_size=block_size, **fit_options)
    params = interp.params.copy()
    params.insert(0, "volume", np.arange(len(params)))
    maps = _volume4d(interp.mean, ijk, mask.shape, mask.affine)
    sd = None if interp.sd is None else _volume4d(interp.sd, ijk, mask.shape, mask.affine)
    return DenseMaps(maps, sd, mask, list(frame.columns), params)


def _write_nifti(img, path):
    """NIfTI to `path` atomically; gzip with mtime 0 and no name (reproducible bytes)."""
    path = Path(path)
    raw = img.to_bytes()
    if path.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    with atomic_path(path) as tmp:
        Path(tmp).write_bytes(raw)
    return path


def write_dense_maps(dense: DenseMaps, out_dir, *, uncertainty=True) -> dict:
    """Write the maps of :func:`dense_maps` into a folder.

    Files: ``maps.nii.gz`` (4D float32, volume k = row k of ``celltypes.tsv``),
    ``uncertainty.nii.gz`` (same layout, GP predictive SD; only if the maps
    have one and `uncertainty`), ``mask.nii.gz`` (uint8, the voxels covered)
    and ``celltypes.tsv`` (``volume, celltype`` and the interpolation
    parameters). Every file is written atomically.

    Returns
    -------
    dict of str -> pathlib.Path
    """
    out = Path(out_dir)
    paths = {"maps": _write_nifti(dense.maps, out / "maps.nii.gz"),
             "mask": _write_nifti(dense.mask, out / "mask.nii.gz")}
    if uncertainty and dense.sd is not None:
        paths["uncertainty"] = _write_nifti(dense.sd, out / "uncertainty.nii.gz")
    write_tsv(dense.params, out / "celltypes.tsv")
    paths["celltypes"] = out / "celltypes.tsv"
    return paths


# ---------------------------------------------------------------------------
# 4. validation
# ---------------------------------------------------------------------------

def _pearson(a, b):
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return np.nan
    return float(stats.pearsonr(a, b)[0])


def _spearman(a, b):
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return np.nan
    return float(stats.spearmanr(a, b)[0])


def leave_one_donor_out(coords, scores, donors, methods=("gp", "nearest"), seed=0, *,
                        return_predictions=False, **fit_options):
    """Predict each donor's samples from the other donors' samples.

    Parameters
    ----------
    coords : (n, 3) array_like
        Sample MNI coordinates (mm).
    scores : (n, K) array_like or pandas.DataFrame
        One column per cell type.
    donors : (n,) array_like
        Donor of every sample (at least two donors).
    methods : sequence of {'gp', 'nearest'}, optional
    seed : int, optional
    return_predictions : bool, optional
        Also return the held-out predictions.
    **fit_options
        Passed to :func:`fit_interpolator` (GP hyperparameters are refitted
        on every training fold, so the held-out donor never informs them).

    Returns
    -------
    table : pandas.DataFrame
        One row per (method, cell type, held-out donor): ``method,
        celltype, donor, n_train, n_samples, r_pearson, r_spearman, rmse``
        (observed vs predicted score at the held-out donor's samples).
    predictions : dict of str -> pandas.DataFrame, only if `return_predictions`
        Per method, (n x K) predictions of every sample from the other donors.
    """
    xyz = _check_coords(coords, "coords")
    frame = _score_frame(scores, len(xyz))
    donors = np.asarray(donors).astype(str)
    if donors.shape != (len(xyz),):
        raise ValueError(f"donors must give one donor per sample ({len(xyz)}), got {donors.shape}")
    order = list(dict.fromkeys(donors))
    if len(order) < 2:
        raise ValueError("leave-one-donor-out needs samples of at least two donors")
    for m in methods:
        _check_method(m)
    rows, predictions = [], {}
    values = frame.to_numpy()
    for method in methods:
        pred = np.full(values.shape, np.nan)
        for d in order:
            test = donors == d
            pred[test] = interpolate_scores(xyz[~test], frame[~test], xyz[test], method, seed,
                                            return_std=False, **fit_options).mean
            for k, name in enumerate(frame.columns):
                ok = np.isfinite(values[test, k])
                o, p = values[test, k][ok], pred[test, k][ok]
                rows.append({"method": method, "celltype": name, "donor": d,
                             "n_train": int(np.isfinite(values[~test, k]).sum()),
                             "n_samples": int(ok.sum()), "r_pearson": _pearson(o, p),
                             "r_spearman": _spearman(o, p),
                             "rmse": float(np.sqrt(np.mean((o - p) ** 2))) if ok.any() else np.nan})
        predictions[method] = pd.DataFrame(pred, columns=frame.columns)
    table = pd.DataFrame(rows, columns=["method", "celltype", "donor", "n_train", "n_samples",
                                        "r_pearson", "r_spearman", "rmse"])
    return (table, predictions) if return_predictions else table


@dataclass
class DemoValidation:
    """Recovery of the demo's planted field.

    Attributes
    ----------
    summary : pandas.DataFrame
        ``method, where, n, r_pearson, r_spearman``: the planted set's map
        against ``sign * demo.disease_field`` at all mask voxels
        (``voxels``), at voxels within `near_mm` of a sample
        (``voxels_near_samples``), and at held-out samples in the
        leave-one-donor-out predictions (``heldout_samples``); plus the raw
        sample scores against the field (``samples``, the ceiling).
    lodo : pandas.DataFrame
        :func:`leave_one_donor_out` for the planted set.
    dense : dict of str -> DenseMaps
        Per method, the planted set's dense map.
    truth : nibabel.Nifti1Image
        ``sign * disease_field`` on the mask (0 outside).
    celltype : str
        The planted set.
    """

    summary: pd.DataFrame
    lodo: pd.DataFrame
    dense: dict
    truth: nib.Nifti1Image
    celltype: str


def validate_on_demo(scores: SampleScores, seed=0, *, sign=1, methods=("gp", "nearest"),
                     mask_img=None, resolution_mm=DEFAULT_RESOLUTION_MM, near_mm=10.0,
                     map_seed=0, **fit_options) -> DemoValidation:
    """Compare dense maps of the demo's planted gene set with its true field.

    Parameters
    ----------
    scores : SampleScores
        Scores of demo donors (from :func:`sample_scores` on a selection of
        :func:`itx.demo.generate_donors` donors with the demo gene sets).
    seed : int, optional
        Demo seed (picks the planted set and the field).
    sign : {1, -1}, optional
        The demo's ``sign`` (direction the planted genes follow the field).
    methods : sequence of {'gp', 'nearest'}, optional
    mask_img, resolution_mm
        As :func:`dense_maps`.
    near_mm : float, optional
        Radius for the ``voxels_near_samples`` row.
    map_seed : int, optional
        Interpolation seed.
    **fit_options
        Passed to :func:`fit_interpolator`.

    Returns
    -------
    DemoValidation
    """
    from . import demo

    planted, _ = demo.planted_gene_set(seed)
    if planted not in scores.celltypes:
        raise ValueError(f"the planted demo set {planted!r} (seed {seed}) is not among the scored "
                         f"cell types {scores.celltypes}; score the demo gene sets of the same seed")
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1, got {sign!r}")
    mask = _load_mask(mask_img, resolution_mm)
    ijk, xyz = mask_coordinates(mask)
    truth = sign * demo.disease_field(xyz, seed)
    near = cKDTree(scores.coords).query(xyz)[0] <= near_mm
    y = scores.scores[[planted]]
    sample_truth = sign * demo.disease_field(scores.coords, seed)
    ok = np.isfinite(y[planted].to_numpy())
    rows = [{"method": "none", "where": "samples", "n": int(ok.sum()),
             "r_pearson": _pearson(y[planted].to_numpy()[ok], sample_truth[ok]),
             "r_spearman": _spearman(y[planted].to_numpy()[ok], sample_truth[ok])}]
    dense = {}
    for method in methods:
        d = dense_maps(scores.coords, y, mask_img=mask, method=method, seed=map_seed,
                       uncertainty=False, **fit_options)
        dense[method] = d
        est = np.asarray(d.maps.dataobj)[..., 0][tuple(ijk.T)].astype(np.float64)
        for where, sel in (("voxels", slice(None)), ("voxels_near_samples", near)):
            rows.append({"method": method, "where": where, "n": int(len(est[sel])),
                         "r_pearson": _pearson(est[sel], truth[sel]),
                         "r_spearman": _spearman(est[sel], truth[sel])})
    lodo, held_out = leave_one_donor_out(scores.coords, y, scores.donors, methods, map_seed,
                                         return_predictions=True, **fit_options)
    for method in methods:
        pred = held_out[method][planted].to_numpy()
        rows.append({"method": method, "where": "heldout_samples", "n": int(ok.sum()),
                     "r_pearson": _pearson(pred[ok], sample_truth[ok]),
                     "r_spearman": _spearman(pred[ok], sample_truth[ok])})
    truth_img = _volume4d(truth[:, None], ijk, mask.shape, mask.affine)
    truth_img = nib.Nifti1Image(np.asarray(truth_img.dataobj)[..., 0], mask.affine)
    return DemoValidation(pd.DataFrame(rows), lodo, dense, truth_img, planted)


def compare_external(dense: DenseMaps, external: Mapping[str, object]) -> pd.DataFrame:
    """Voxelwise agreement of our maps with published dense maps.

    Meant for e.g. the cell-type maps of Pak et al. 2024 (neuropm-lab/cellmaps,
    MNI152 NIfTI at 1.5 mm): each external map is resampled (linear) onto our
    grid and correlated with our map of the same cell type at the voxels of
    our mask that are at least half covered by the external map's support
    (its finite, non-zero voxels: published maps are 0 or NaN outside their
    own mask). Values and support are resampled separately and divided, so
    a map's edge is not averaged with the zeros beyond it.

    Parameters
    ----------
    dense : DenseMaps
    external : mapping of str -> niimg-like or path
        Cell type (as in ``dense.celltypes``) -> external 3D map in MNI152
        space. Cell types we did not map are listed with ``n_voxels`` 0.

    Returns
    -------
    pandas.DataFrame
        ``celltype, external, n_voxels, r_pearson, r_spearman``. No p-value:
        neighbouring voxels are not independent (a spatial null is needed
        for inference).
    """
    from nilearn.image import resample_to_img

    ijk, _ = mask_coordinates(dense.mask)
    ref = nib.Nifti1Image(np.zeros(dense.mask.shape, np.float32), dense.mask.affine)
    rows = []
    for name, img in external.items():
        path = str(img) if isinstance(img, (str, Path)) else "(image)"
        if isinstance(img, (str, Path)):
            if not Path(img).is_file():
                raise ValueError(f"external map for {name!r} not found: {img}")
            img = nib.load(str(img))
        if len(img.shape) != 3:
            raise ValueError(f"external map for {name!r} ({path}) must be 3D, got shape {img.shape}")
        row = {"celltype": name, "external": path, "n_voxels": 0, "r_pearson": np.nan,
               "r_spearman": np.nan}
        if name in dense.celltypes:
            data = np.asarray(img.dataobj, dtype=np.float64)
            support = np.isfinite(data) & (data != 0)

            def onto_ours(values):
                with warnings.catch_warnings():
                    # the support is binary on purpose: its interpolated value
                    # is the share of the voxel it covers
                    warnings.filterwarnings("ignore", "Resampling binary images")
                    moved = resample_to_img(nib.Nifti1Image(values, img.affine), ref,
                                            interpolation="continuous")
                return np.asarray(moved.dataobj, dtype=np.float64)[tuple(ijk.T)]

            # normalised interpolation: resampling the values and their support
            # separately and dividing keeps a thin map (e.g. a cortical ribbon)
            # from being diluted by the zeros around it on a coarser grid
            weight = onto_ours(support.astype(np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                theirs = onto_ours(np.where(support, data, 0.0)) / weight
            ours = np.asarray(dense.maps.dataobj)[..., dense.celltypes.index(name)][tuple(ijk.T)]
            ok = (weight >= 0.5) & np.isfinite(theirs)
            row.update(n_voxels=int(ok.sum()), r_pearson=_pearson(ours[ok], theirs[ok]),
                       r_spearman=_spearman(ours[ok], theirs[ok]))
        rows.append(row)
    return pd.DataFrame(rows, columns=["celltype", "external", "n_voxels", "r_pearson",
                                       "r_spearman"])


# ---------------------------------------------------------------------------
# 5. figures
# ---------------------------------------------------------------------------

def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _ortho(img, ax, title, cmap="RdBu_r", symmetric=True, cut_coords=(-40, -20, 10)):
    from nilearn import plotting

    data = np.asarray(img.dataobj)
    vmax = float(np.nanmax(np.abs(data))) or 1.0
    plotting.plot_stat_map(img, bg_img=None, display_mode="ortho", cut_coords=cut_coords,
                           axes=ax, title=title, cmap=cmap, vmax=vmax,
                           symmetric_cbar=symmetric, threshold=None, draw_cross=False,
                           annotate=False, black_bg=False, colorbar=True)


def plot_dense_maps(dense: DenseMaps, out_png, *, uncertainty=True):
    """Orthogonal slices of every cell type's map (and its SD), one row each.

    Parameters
    ----------
    dense : DenseMaps
    out_png : str or os.PathLike
        ``.png`` output (written atomically).
    uncertainty : bool, optional
        Add a column with the GP predictive SD (if the maps have one).

    Returns
    -------
    pathlib.Path
    """
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise ValueError(f"figure output must be a .png file, got {out}")
    with_sd = uncertainty and dense.sd is not None
    ncol = 2 if with_sd else 1
    fig = _figure(6.5 * ncol, 2.4 * len(dense.celltypes))
    for k, name in enumerate(dense.celltypes):
        ax = fig.add_subplot(len(dense.celltypes), ncol, k * ncol + 1)
        _ortho(dense.volume(name), ax, f"{name} (score)")
        if with_sd:
            ax = fig.add_subplot(len(dense.celltypes), ncol, k * ncol + 2)
            _ortho(dense.volume(name, sd=True), ax, f"{name} (GP SD)", cmap="viridis",
                   symmetric=False)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, facecolor="white")
    return out


def plot_demo_validation(validation: DemoValidation, out_png):
    """Truth, GP and nearest-sample maps of the planted set, with the summary.

    Returns
    -------
    pathlib.Path
    """
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise ValueError(f"figure output must be a .png file, got {out}")
    panels = [("planted field (truth)", validation.truth)]
    summary = validation.summary.set_index(["method", "where"])
    for method, d in validation.dense.items():
        r = summary.loc[(method, "voxels"), "r_pearson"]
        panels.append((f"{method}: voxelwise r = {r:.2f}", d.volume(validation.celltype)))
    fig = _figure(6.5, 2.4 * len(panels))
    for k, (title, img) in enumerate(panels):
        _ortho(img, fig.add_subplot(len(panels), 1, k + 1), title)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=100, facecolor="white")
    return out
