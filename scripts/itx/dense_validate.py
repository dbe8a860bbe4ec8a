"""Validation of dense maps: held-out donors, the demo's planted field and
published maps (part of :mod:`itx.dense`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

from .dense_interpolate import _check_coords, _check_method, _score_frame, interpolate_scores
from .dense_scores import SampleScores
from .dense_volumes import (
    DEFAULT_RESOLUTION_MM,
    DenseMaps,
    _load_mask,
    _volume4d,
    dense_maps,
    mask_coordinates,
)


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
                         f"cell types {scores.celltypes}; score the demo gene sets of the same "
                         "seed")
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
            raise ValueError(f"external map for {name!r} ({path}) must be 3D, "
                             f"got shape {img.shape}")
        row = {"celltype": name, "external": path, "n_voxels": 0, "r_pearson": np.nan,
               "r_spearman": np.nan}
        if name in dense.celltypes:
            data = np.asarray(img.dataobj, dtype=np.float64)
            support = np.isfinite(data) & (data != 0)

            def onto_ours(values, affine=img.affine):
                with warnings.catch_warnings():
                    # the support is binary on purpose: its interpolated value
                    # is the share of the voxel it covers
                    warnings.filterwarnings("ignore", "Resampling binary images")
                    moved = resample_to_img(nib.Nifti1Image(values, affine), ref,
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
