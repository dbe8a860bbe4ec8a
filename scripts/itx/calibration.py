"""The calibration study as a run reads it: every null's false-positive rate for an atlas.

``docs/calibration.tsv`` (written by ``scripts/tools/calibrate_nulls.py``)
holds, per calibrated atlas and hemispheres, the false-positive rate (FPR)
of each null on smooth random maps unrelated to expression. A run shows the
rows of its own atlas (or the closest calibrated one, as
:func:`itx.sensitivity.fpr_lookup` chooses) in one figure, with the default
null for that atlas and the nulls the run uses marked, so a reader of the
report sees how far each null's p-values can be trusted.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

from .figures import new_figure, save_png
from .sensitivity import _calibration_frame, fpr_lookup

__all__ = ["atlas_calibration", "plot_atlas_calibration"]

#: Columns of :func:`atlas_calibration`'s table.
COLUMNS = ["null", "alpha", "fpr", "fpr_ci_low", "fpr_ci_high", "fpr_source", "default",
           "used"]


def atlas_calibration(calibration, atlas: str, hemispheres: str, *,
                      default: Optional[str] = None, used: Sequence[str] = (),
                      alphas: Sequence[float] = (0.05, 0.01)) -> pd.DataFrame:
    """Every calibrated null's FPR for one atlas and hemispheres, at each level.

    Parameters
    ----------
    calibration : pandas.DataFrame or path-like
        ``docs/calibration.tsv``.
    atlas : str
        The atlas's calibration name (a built-in's name, e.g.
        ``desikan_killiany`` or ``schaefer200``; a user atlas falls back as
        :func:`itx.sensitivity.fpr_lookup` says).
    hemispheres : {'left', 'both'}
    default : str, optional
        The null the workflow chooses by default for parcel-level maps on
        this atlas (marked in ``default``).
    used : sequence of str
        Nulls this run uses for the atlas's maps (marked in ``used``).
    alphas : sequence of float
        Levels to report; a level the table lacks gives no rows.

    Returns
    -------
    pandas.DataFrame
        :data:`COLUMNS`, one row per null and level, nulls ordered by their
        FPR at the first level (closest to nominal first is not implied: the
        order is by rate).
    """
    cal = _calibration_frame(calibration)
    pooled = cal[cal["sigma"] == "all"]
    methods = list(dict.fromkeys(pooled["method"]))
    rows = []
    for alpha in alphas:
        if not np.isclose(pooled["alpha"], alpha).any():
            continue
        found = fpr_lookup(cal, atlas, hemispheres, methods, alpha=alpha)
        found = found[found["fpr"].notna()]
        for rec in found.itertuples(index=False):
            rows.append({"null": rec.null, "alpha": alpha, "fpr": rec.fpr,
                         "fpr_ci_low": rec.fpr_ci_low, "fpr_ci_high": rec.fpr_ci_high,
                         "fpr_source": rec.fpr_source, "default": rec.null == default,
                         "used": rec.null in set(used)})
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table.empty:
        return table
    first = table[table["alpha"] == table["alpha"].iloc[0]].set_index("null")["fpr"]
    order = {n: i for i, n in enumerate(first.sort_values().index)}
    table["_order"] = table["null"].map(order).fillna(len(order))
    return (table.sort_values(["alpha", "_order"], ascending=[False, True])
            .drop(columns="_order").reset_index(drop=True))


def plot_atlas_calibration(table: pd.DataFrame, path, *, title: Optional[str] = None):
    """FPR of every null (95% interval) at each level, default and used nulls marked.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`atlas_calibration`.
    path : path-like
        PNG to write.
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    alphas = list(dict.fromkeys(table["alpha"])) or [0.05]
    fig = new_figure(4.2 * len(alphas), 0.35 * max(4, table["null"].nunique()) + 1.6)
    for k, alpha in enumerate(alphas):
        ax = fig.add_subplot(1, len(alphas), k + 1)
        rows = table[table["alpha"] == alpha].iloc[::-1]
        y = np.arange(len(rows))
        pct = 100 * rows["fpr"].to_numpy(float)
        colours = ["tab:red" if d else ("tab:blue" if u else "0.45")
                   for d, u in zip(rows["default"], rows["used"])]
        ax.hlines(y, 100 * rows["fpr_ci_low"].to_numpy(float),
                  100 * rows["fpr_ci_high"].to_numpy(float), colors=colours, lw=1.5)
        ax.scatter(pct, y, c=colours, zorder=3, s=22)
        ax.axvline(100 * alpha, color="k", ls="--", lw=0.8)
        labels = [n + (" (default)" if d else "") + (" *" if u else "")
                  for n, d, u in zip(rows["null"], rows["default"], rows["used"])]
        ax.set_yticks(y, labels if k == 0 else [""] * len(y))
        ax.set_xlabel(f"false-positive rate at alpha {alpha:g} (%)")
        ax.set_xlim(0, max(100 * alpha * 2.2, float(np.nanmax(pct, initial=0)) * 1.1))
        ax.set_title(f"alpha {alpha:g}")
    if len(table):
        sources = sorted(set(table["fpr_source"]))
        fig.text(0.01, 0.01, "calibration: " + "; ".join(sources) + "   (* used in this run)",
                 fontsize=7, ha="left", va="bottom")
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_png(fig, path)
