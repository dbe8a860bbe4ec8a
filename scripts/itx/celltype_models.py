"""A map's joint models on the cell-type maps of one collection: tables and figure.

The workflow's view of :mod:`itx.multivariate`: :func:`celltype_models` fits
the multiple regression and the dominance analysis of a map on the regional
cell-type maps of a collection and returns two tidy tables that always have
rows, one per cell type, with a ``note`` saying why a model could not be fitted
(too few regions for the cell types, collinear cell-type maps, more cell types
than ``max_predictors`` for dominance) instead of stopping the run: these are
properties of the data, not input errors. :func:`plot_celltype_models` draws
both in one figure.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from . import multivariate
from .figures import new_figure, png_path, save_png, short_label

__all__ = ["TERM_COLUMNS", "DOMINANCE_COLUMNS", "celltype_models", "plot_celltype_models"]

log = logging.getLogger(__name__)

#: Columns of ``multivariate_{collection}.tsv``: one row per term (intercept
#: first), the model's statistics repeated on every row (``model_*``).
TERM_COLUMNS = ["map", "collection", "term", "beta", "se", "t", "p_param", "p_spin", "vif",
                "model_r2", "model_adj_r2", "model_F", "model_p_param", "model_p_spin",
                "n_regions", "n_predictors", "n_null", "note"]
#: Columns of ``dominance_{collection}.tsv``: one row per cell type.
DOMINANCE_COLUMNS = ["map", "collection", "predictor", "dominance", "share", "p_spin", "q_spin",
                     "rank", "completely_dominates", "model_r2", "model_p_spin", "n_regions",
                     "n_null", "note"]


def _frame(columns, rows: int) -> pd.DataFrame:
    return pd.DataFrame({c: np.full(rows, np.nan) for c in columns})


def celltype_models(y, celltype_table: pd.DataFrame, null_maps, *, map_name: str,
                    collection: str, max_predictors: int = 12):
    """Multiple regression and dominance analysis of a map on its cell-type maps.

    Parameters
    ----------
    y : pandas.Series or array_like, shape (n_regions,)
        The map over the rows of `celltype_table` (a Series is aligned to it).
    celltype_table : pandas.DataFrame
        Regions x cell types (:func:`itx.celltypes.celltype_maps`). Cell types
        with a missing value in some region are left out (named in ``note``).
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of the map, rows as `celltype_table`.
    map_name, collection : str
        Written into the ``map`` and ``collection`` columns.
    max_predictors : int
        Dominance analysis is fitted up to this many cell types (2^k - 1
        models); above it the table says so.

    Returns
    -------
    terms : pandas.DataFrame
        :data:`TERM_COLUMNS`; betas are standardised (map and cell-type maps
        z-scored), ``p_spin`` from refitting on every null map (two-sided on
        |beta|; one-sided on R2 for ``model_p_spin``).
    dominance : pandas.DataFrame
        :data:`DOMINANCE_COLUMNS`; ``share`` is the percentage of the model R2.
    """
    table = celltype_table
    ok = np.isfinite(table.to_numpy(np.float64)).all(axis=0)
    notes = []
    if not ok.all():
        dropped = [str(c) for c, k in zip(table.columns, ok) if not k]
        notes.append(f"left out (no value in some regions): {', '.join(dropped)}")
    x = table.loc[:, ok]
    names = [str(c) for c in x.columns]
    k, n = len(names), table.shape[0]
    if isinstance(y, pd.Series):
        y = y.reindex(table.index)
    terms = _frame(TERM_COLUMNS, k + 1)
    terms["term"] = ["intercept"] + names
    dom = _frame(DOMINANCE_COLUMNS, k)
    dom["predictor"] = names
    for frame in (terms, dom):
        frame["map"], frame["collection"], frame["n_regions"] = map_name, collection, n
    terms["n_predictors"] = k

    reg_note = dom_note = ""
    if k == 0:
        reg_note = dom_note = "no cell-type map to model on"
    else:
        try:
            reg = multivariate.multiple_regression(y, x, null_maps, names=names, name=map_name)
        except ValueError as err:  # too few regions, collinear cell types: say so
            reg_note = f"regression not fitted: {err}"
        else:
            c = reg.coefficients.set_index("term")
            for col in ("beta", "se", "t", "p_param", "p_spin", "vif"):
                terms[col] = c[col].reindex(terms["term"]).to_numpy()
            m = reg.model.iloc[0]
            for col in ("r2", "adj_r2", "F", "p_param", "p_spin"):
                terms[f"model_{col}"] = m[col]
            terms["n_null"] = m["n_null"]
        if k > max_predictors:
            dom_note = (f"dominance not computed: {k} cell types > multivariate.max_predictors "
                        f"({max_predictors}; {2 ** k - 1:,} models)")
        else:
            try:
                da = multivariate.dominance_analysis(y, x, null_maps, names=names,
                                                     max_predictors=max_predictors,
                                                     name=map_name)
            except ValueError as err:
                dom_note = f"dominance not computed: {err}"
            else:
                t = da.table.set_index("predictor")
                for col in ("dominance", "share", "p_spin", "q_spin", "rank",
                            "completely_dominates"):
                    dom[col] = t[col].reindex(dom["predictor"]).to_numpy()
                dom["model_r2"] = da.model["r2"].iloc[0]
                dom["model_p_spin"] = da.model["p_spin"].iloc[0]
                dom["n_null"] = da.model["n_null"].iloc[0]
    for note in (reg_note, dom_note):
        if note:
            log.warning("%s x %s: %s", map_name, collection, note)
    terms["note"] = "; ".join(notes + ([reg_note] if reg_note else []))
    dom["note"] = "; ".join(notes + ([dom_note] if dom_note else []))
    return terms[TERM_COLUMNS], dom[DOMINANCE_COLUMNS]


def plot_celltype_models(terms: pd.DataFrame, dominance: pd.DataFrame, out_png,
                         alpha: float = 0.05, title: Optional[str] = None) -> Path:
    """Standardised betas (left) and dominance shares (right) of one joint model.

    Bars with ``p_spin < alpha`` (betas) or ``q_spin < alpha`` (dominance)
    are drawn in full colour and starred; a model that could not be fitted
    shows its note instead.
    """
    out = png_path(out_png)
    beta = terms[terms["term"] != "intercept"]
    k = max(len(beta), 1)
    fig = new_figure(9.0, 0.32 * k + 1.8)
    panels = [(fig.add_subplot(1, 2, 1), beta, "beta", "p_spin", "standardised beta"),
              (fig.add_subplot(1, 2, 2), dominance, "share", "q_spin", "share of R² (%)")]
    for ax, t, col, pcol, label in panels:
        v = pd.to_numeric(t[col], errors="coerce").to_numpy(float)
        names = t["term" if col == "beta" else "predictor"].astype(str).tolist()
        if not np.isfinite(v).any():
            note = str(t["note"].iloc[0]) if len(t) else "no cell types"
            ax.text(0.5, 0.5, _wrap(note), ha="center", va="center", fontsize=8,
                    transform=ax.transAxes)
            ax.set_axis_off()
            continue
        p = pd.to_numeric(t[pcol], errors="coerce").to_numpy(float)
        sig = np.nan_to_num(p, nan=1.0) < alpha
        yy = np.arange(len(v))
        bars = ax.barh(yy, np.nan_to_num(v), edgecolor="none",
                       color=np.where(v >= 0, "#c0392b", "#2e6da4") if col == "beta"
                       else "#7d3c98")
        for patch, s in zip(bars, sig):
            patch.set_alpha(1.0 if s else 0.35)
        ax.set_yticks(yy)
        ax.set_yticklabels([short_label(n) + (" *" if s else "") for n, s in zip(names, sig)],
                           fontsize=8)
        ax.invert_yaxis()
        ax.axvline(0, color="0.3", lw=0.8)
        star = f"p_spin < {alpha:g}" if col == "beta" else f"q_spin < {alpha:g}"
        ax.set_xlabel(f"{label}   (* {star})", fontsize=9)
    r2 = pd.to_numeric(terms["model_r2"], errors="coerce").iloc[0] if len(terms) else np.nan
    if np.isfinite(r2):
        adj = float(terms["model_adj_r2"].iloc[0])
        p = float(terms["model_p_spin"].iloc[0])
        sub = f"R² = {r2:.2f} (adjusted {adj:.2f}), p_spin = {p:.3g}"
        title = f"{title}\n{sub}" if title else sub
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def _wrap(text: str, width: int = 50) -> str:
    words, lines, line = text.split(), [], ""
    for w in words:
        if line and len(line) + len(w) + 1 > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "\n".join(lines + [line])
