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

The code lives in one module per step: :mod:`itx.dense_scores`,
:mod:`itx.dense_interpolate`, :mod:`itx.dense_volumes`,
:mod:`itx.dense_validate` and :mod:`itx.dense_plots`; this module gathers
their public names, so ``from itx import dense`` gives them all.

Every function is pure (explicit arguments, no config); randomness (the
subsample the GP hyperparameters are fitted on, optimiser restarts) comes
from the `seed` argument, so the same seed gives identical maps.
"""

from .dense_interpolate import (
    DEFAULT_BLOCK_SIZE,
    DEFAULT_MAX_FIT_SAMPLES,
    DEFAULT_N_NEIGHBORS,
    DEFAULT_RESTARTS,
    LENGTH_SCALE_BOUNDS_MM,
    LENGTH_SCALE_INIT_MM,
    METHODS,
    NOISE_BOUNDS,
    SIGNAL_BOUNDS,
    GPInterpolator,
    Interpolation,
    NearestInterpolator,
    fit_interpolator,
    interpolate_scores,
)
from .dense_plots import plot_demo_validation, plot_dense_maps
from .dense_scores import SampleScores, sample_scores
from .dense_validate import DemoValidation, compare_external, leave_one_donor_out, validate_on_demo
from .dense_volumes import (
    DEFAULT_RESOLUTION_MM,
    DenseMaps,
    dense_maps,
    grey_matter_mask,
    mask_coordinates,
    write_dense_maps,
)

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
    "DEFAULT_BLOCK_SIZE",
    "DEFAULT_MAX_FIT_SAMPLES",
    "DEFAULT_N_NEIGHBORS",
    "DEFAULT_RESOLUTION_MM",
    "DEFAULT_RESTARTS",
    "LENGTH_SCALE_BOUNDS_MM",
    "LENGTH_SCALE_INIT_MM",
    "NOISE_BOUNDS",
    "SIGNAL_BOUNDS",
]
