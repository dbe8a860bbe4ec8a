"""Figures of dense maps (part of :mod:`itx.dense`)."""

from __future__ import annotations

import numpy as np

from .dense_validate import DemoValidation
from .dense_volumes import DenseMaps
from .figures import new_figure, png_path, save_png

#: The dense-map figures' resolution (dots per inch).
DPI = 100


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
    out = png_path(out_png)
    with_sd = uncertainty and dense.sd is not None
    ncol = 2 if with_sd else 1
    fig = new_figure(6.5 * ncol, 2.4 * len(dense.celltypes), dpi=DPI)
    for k, name in enumerate(dense.celltypes):
        ax = fig.add_subplot(len(dense.celltypes), ncol, k * ncol + 1)
        _ortho(dense.volume(name), ax, f"{name} (score)")
        if with_sd:
            ax = fig.add_subplot(len(dense.celltypes), ncol, k * ncol + 2)
            _ortho(dense.volume(name, sd=True), ax, f"{name} (GP SD)", cmap="viridis",
                   symmetric=False)
    return save_png(fig, out)


def plot_demo_validation(validation: DemoValidation, out_png):
    """Truth, GP and nearest-sample maps of the planted set, with the summary.

    Returns
    -------
    pathlib.Path
    """
    out = png_path(out_png)
    panels = [("planted field (truth)", validation.truth)]
    summary = validation.summary.set_index(["method", "where"])
    for method, d in validation.dense.items():
        r = summary.loc[(method, "voxels"), "r_pearson"]
        panels.append((f"{method}: voxelwise r = {r:.2f}", d.volume(validation.celltype)))
    fig = new_figure(6.5, 2.4 * len(panels), dpi=DPI)
    for k, (title, img) in enumerate(panels):
        _ortho(img, fig.add_subplot(len(panels), 1, k + 1), title)
    return save_png(fig, out)
