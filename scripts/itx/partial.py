"""Genes' partial correlations with a map given covariate maps of the maps sheet.

The maps sheet's ``covariates`` cell names other maps (e.g. cortical
thickness given surface area and a myelin map); :func:`partial_genes` aligns
their parcellated values to the regions of the map's tests and calls
:func:`itx.multivariate.partial_correlation_genes`, whose p values come from
the map's own spatial nulls (covariates fixed). :func:`plot_partial_vs_plain`
sets every gene's partial correlation against its plain correlation.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from . import multivariate
from .analysis import MIN_REGIONS
from .figures import new_figure, png_path, save_png

__all__ = ["covariate_table", "partial_genes", "plot_partial_vs_plain"]

log = logging.getLogger(__name__)


def covariate_table(tables: Sequence[pd.DataFrame], names: Sequence[str],
                    regions: Sequence[str]) -> pd.DataFrame:
    """Covariate maps as one regions x covariates frame.

    Parameters
    ----------
    tables : sequence of pandas.DataFrame
        Each a ``results/{atlas}/{map}/map.tsv`` (columns ``region``, ``value``).
    names : sequence of str
        The covariates' map names, in the order of `tables`.
    regions : sequence of str
        Rows of the result (the regions of the map's tests); a region a
        covariate has no value for is NaN.
    """
    if len(tables) != len(names):
        raise ValueError(f"{len(tables)} covariate tables for {len(names)} names")
    cols = {}
    for t, n in zip(tables, names):
        if "region" not in t.columns or "value" not in t.columns:
            raise ValueError(f"covariate map {n!r} needs columns region and value")
        values = t.set_index(t["region"].astype(str))["value"].astype(float)
        cols[str(n)] = values.reindex([str(r) for r in regions]).to_numpy()
    return pd.DataFrame(cols, index=[str(r) for r in regions])


def partial_genes(aligned, covariates: pd.DataFrame, method: str = "spearman") -> pd.DataFrame:
    """Every gene's partial correlation with the map of `aligned` given `covariates`.

    Regions where a covariate has no value are left out (with a log line);
    the null maps are restricted to the same regions.

    Parameters
    ----------
    aligned : itx.analysis.Aligned
        The map's expression, values and null maps over its test regions.
    covariates : pandas.DataFrame
        Regions x covariates (:func:`covariate_table`), rows as `aligned.regions`.
    method : {'spearman', 'pearson'}

    Returns
    -------
    pandas.DataFrame
        ``gene, r_partial, p_spin, q_spin, p_param`` (see
        :func:`itx.multivariate.partial_correlation_genes`) and ``n_regions``.
    """
    if list(covariates.index) != list(aligned.regions):
        raise ValueError("covariates must have the rows of aligned.regions, in order")
    keep = np.isfinite(covariates.to_numpy(float)).all(axis=1)
    label = f"map {aligned.name!r}" if aligned.name else "the map"
    if not keep.all():
        missing = [r for r, k in zip(aligned.regions, keep) if not k]
        log.warning("%s: %d region(s) without a value in every covariate are left out of the "
                    "partial correlations: %s", label, len(missing), missing[:10])
    if keep.sum() < MIN_REGIONS + covariates.shape[1]:
        raise ValueError(
            f"{label}: only {int(keep.sum())} regions have the map, expression and every "
            f"covariate ({', '.join(covariates.columns)}); at least "
            f"{MIN_REGIONS + covariates.shape[1]} are needed. Give the covariate maps values in "
            "the map's regions, or name fewer covariates in the maps sheet")
    table = multivariate.partial_correlation_genes(
        aligned.expression[keep], aligned.y[keep], covariates.to_numpy(float)[keep],
        aligned.nulls[keep], method=method, genes=aligned.genes,
        covariate_names=list(covariates.columns), name=aligned.name)
    table["n_regions"] = int(keep.sum())
    return table


def plot_partial_vs_plain(partial: pd.DataFrame, genes: pd.DataFrame, out_png,
                          alpha: float = 0.05, title: Optional[str] = None) -> Path:
    """Scatter of each gene's partial correlation against its plain correlation.

    Genes with ``q_spin < alpha`` for the partial correlation are drawn dark.
    Points near the diagonal keep their association given the covariates;
    points pulled towards zero owed it to them.
    """
    out = png_path(out_png)
    m = partial.merge(genes[["gene", "r"]], on="gene", how="inner")
    x = pd.to_numeric(m["r"], errors="coerce").to_numpy(float)
    y = pd.to_numeric(m["r_partial"], errors="coerce").to_numpy(float)
    sig = pd.to_numeric(m["q_spin"], errors="coerce").fillna(1.0).to_numpy() < alpha
    fig = new_figure(4.8, 4.6)
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(x[~sig], y[~sig], s=3, color="0.7", lw=0, label="q_spin ≥ " + f"{alpha:g}")
    ax.scatter(x[sig], y[sig], s=5, color="#c0392b", lw=0,
               label=f"q_spin < {alpha:g} ({int(sig.sum()):,})")
    ax.plot([-1, 1], [-1, 1], color="0.3", lw=0.8, ls="--")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.axvline(0, color="0.5", lw=0.5)
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("correlation with the map (genes.tsv)", fontsize=9)
    ax.set_ylabel("partial correlation given the covariates", fontsize=9)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)
