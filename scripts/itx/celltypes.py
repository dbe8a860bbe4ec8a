"""Regional cell-type maps from marker genes, and their comparison with brain maps.

A cell type's regional abundance is estimated as the mean, over its marker
genes, of each gene's expression z-scored across regions (as in Seidlitz et
al. 2020, Nat Commun 11:3358, and Li et al. 2021, Nat Commun 12:4617 use the
mean expression of class genes). The z-scoring puts every marker on the same
scale, so that a highly expressed gene does not dominate the mean; it is
computed over the regions given, so the same collection yields slightly
different maps over different region sets (whole atlas, left cortex).

A disease map is then correlated with each cell-type map and tested against
the disease map's spatial nulls with the map-comparison machinery
(:func:`itx.compare.compare_maps`): the cell-type map plays the part of a
gene, exactly as in the gene tests.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import compare, genesets, tailp
from .association import fdr_bh, report_null_use, usable_nulls

__all__ = ["CelltypeMaps", "zscore_regions", "celltype_maps", "map_celltype_maps",
           "compare_celltypes"]


def _region_frame(expression) -> pd.DataFrame:
    if not isinstance(expression, pd.DataFrame):
        raise ValueError("expression must be a pandas DataFrame (regions x genes)")
    df = expression.set_index("region") if "region" in expression.columns else expression
    df = df.apply(pd.to_numeric, errors="coerce").astype(np.float64)
    if np.isinf(df.to_numpy()).any():
        raise ValueError("expression contains infinite values")
    if df.index.has_duplicates:
        raise ValueError("expression has duplicated regions: "
                         f"{list(df.index[df.index.duplicated()][:5])}")
    return df


def zscore_regions(expression) -> pd.DataFrame:
    """Z-score every gene across regions.

    Parameters
    ----------
    expression : pandas.DataFrame
        Regions x genes (index = regions, or a ``region`` column first).
        NaN (a region without samples) is left out of the gene's mean and
        standard deviation and stays NaN.

    Returns
    -------
    pandas.DataFrame
        ``(x - mean) / sd`` per gene over its finite values, with the
        population sd (``ddof=0``, as ``scipy.stats.zscore``); a gene that
        is constant (or has fewer than 2 finite values) is NaN throughout.
    """
    df = _region_frame(expression)
    x = df.to_numpy()
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN genes: NaN, as documented
        centred = x - np.nanmean(x, axis=0)
        sd = np.sqrt(np.nanmean(centred ** 2, axis=0))
        # a constant gene's sd is 0 up to rounding: it has no scale to compare on
        scale = np.maximum(np.nanmax(np.abs(x), axis=0), 1.0)
        sd = np.where((sd > 1e-12 * scale) & (np.isfinite(x).sum(axis=0) >= 2), sd, np.nan)
        z = centred / sd
    return pd.DataFrame(z, index=df.index, columns=df.columns)


@dataclass
class CelltypeMaps:
    """Outputs of :func:`celltype_maps`.

    Attributes
    ----------
    table : pandas.DataFrame
        Regions x kept cell types (index named ``region``): mean marker z.
    sets : pandas.DataFrame
        Per cell type: the matching report of
        :func:`itx.genesets.match_gene_sets` plus ``n_genes_used`` (markers
        found that vary across the regions, i.e. with a defined z).
    """

    table: pd.DataFrame
    sets: pd.DataFrame


def celltype_maps(expression, sets, min_genes: int, aliases=None) -> CelltypeMaps:
    """Regional abundance of each cell type: the mean z-scored expression of its markers.

    Parameters
    ----------
    expression : pandas.DataFrame
        Regions x genes (index = regions, or a ``region`` column first), over
        the regions the z-scores are to be computed on.
    sets : dict
        Cell type -> marker gene symbols (:func:`itx.genesets.read_gene_sets`).
    min_genes : int
        Cell types with fewer markers found among the genes are reported and
        left out.
    aliases : pandas.DataFrame or dict, optional
        Alias table for matching (:func:`itx.genesets.alias_table`).

    Returns
    -------
    CelltypeMaps

    Raises
    ------
    ValueError
        If no cell type keeps `min_genes` markers.

    Notes
    -----
    For region ``i`` and cell type ``c`` with markers ``G_c``, the value is
    ``mean_{g in G_c, z_ig finite} z_ig``, where ``z_ig`` is gene ``g``
    z-scored across regions (:func:`zscore_regions`); computed for all
    cell types at once as a masked matrix product. A region without
    expression is NaN.
    """
    z = zscore_regions(expression)
    membership, report = genesets.match_gene_sets(sets, list(z.columns), min_genes, aliases=aliases)
    if membership.shape[1] == 0:
        raise ValueError(
            f"no cell type has at least {min_genes} marker genes among the {z.shape[1]} expression "
            "genes; check the gene symbols of the collection or lower min_genes"
        )
    zv = z.to_numpy()
    finite = np.isfinite(zv)
    w = membership.to_numpy(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = np.where(finite, zv, 0.0) @ w
        counts = finite.astype(np.float64) @ w
        table = np.where(counts > 0, sums / counts, np.nan)
    table = pd.DataFrame(table, index=pd.Index([str(r) for r in z.index], name="region"),
                         columns=list(membership.columns))
    used = (np.isfinite(zv).any(axis=0).astype(np.float64) @ w).astype(np.int64)
    report = report.copy()
    report["n_genes_used"] = 0
    report.loc[report["kept"].to_numpy(), "n_genes_used"] = used
    report["n_genes_used"] = report["n_genes_used"].astype(np.int64)
    return CelltypeMaps(table=table, sets=report)


def map_celltype_maps(expression: pd.DataFrame, regions, sets, min_genes: int,
                      aliases=None) -> CelltypeMaps:
    """Cell-type maps over exactly the regions of one map's tests.

    The maps a disease map is compared with (one at a time, or jointly) are
    z-scored over the regions that map is tested on, not over the atlas:
    ``expression`` (``region`` column, then genes) restricted to `regions`
    (``Aligned.regions``, in that order), then :func:`celltype_maps`.
    """
    used = _region_frame(expression).loc[[str(r) for r in regions]]
    return celltype_maps(used, sets, min_genes, aliases=aliases)


def compare_celltypes(map_values, celltype_table: pd.DataFrame, null_maps, *, method="spearman",
                      map_name: str = "map", tail: str = "none") -> pd.DataFrame:
    """Correlate a map with every cell-type map; p values from the map's spatial nulls.

    Parameters
    ----------
    map_values : array_like or pandas.Series, shape (n_regions,)
        The disease map over the rows of `celltype_table` (a Series is
        aligned to the table's index).
    celltype_table : pandas.DataFrame
        Regions x cell types (from :func:`celltype_maps`).
    null_maps : array_like, shape (n_regions, n_perm)
        Null versions of the map, rows as `celltype_table`.
    method : {'spearman', 'pearson'}
        Correlation.
    map_name : str
        Value of the ``map`` column.
    tail : {'none', 'gpd'}
        ``'gpd'`` adds ``p_gpd, q_gpd, tail_method`` after ``q_spin``: p
        values beyond the permutation floor from a generalised Pareto fit to
        the tail of each cell type's null ``|r|`` (:mod:`itx.tailp`);
        ``p_gpd`` equals ``p_spin`` where ``tail_method`` is
        ``permutation`` or ``no_fit``.

    Returns
    -------
    pandas.DataFrame
        ``map, celltype, r, p_spin, q_spin, p_naive, n_regions`` (with
        ``tail='gpd'``, ``p_gpd, q_gpd, tail_method`` after ``q_spin``), one
        row per cell type in table order; q values are Benjamini-Hochberg
        over the cell types. A cell type with a NaN value in any row gets NaN
        statistics. A null map without a value in some rows is correlated
        over the rows it has; when no null map gives a correlation,
        ``p_spin`` and ``q_spin`` are NaN (with a :class:`itx.association.NullMapWarning`).
    """
    table = celltype_table
    if isinstance(map_values, pd.Series):
        missing = table.index.difference(map_values.index)
        if len(missing):
            raise ValueError(f"map_values lacks {len(missing)} regions of the cell-type table, "
                             f"e.g. {list(missing[:5])}")
        map_values = map_values.reindex(table.index)
    x = np.asarray(map_values, dtype=np.float64)
    nulls = np.asarray(null_maps, dtype=np.float64)
    if x.ndim != 1 or x.shape[0] != table.shape[0]:
        raise ValueError(f"map_values has shape {x.shape}; "
                         f"the cell-type table has {table.shape[0]} regions")
    if nulls.ndim != 2 or nulls.shape[0] != x.shape[0]:
        raise ValueError(f"null_maps must have shape (n_regions={x.shape[0]}, n_perm), "
                         f"got {nulls.shape}")
    tailp.check_tail(tail)
    values = table.to_numpy(np.float64)
    ok = np.isfinite(values).all(axis=0)
    names = [str(c) for c in table.columns]
    out = pd.DataFrame({"map": map_name, "celltype": names, "r": np.nan, "p_spin": np.nan,
                        "q_spin": np.nan, "p_naive": np.nan, "n_regions": 0})
    if ok.any():
        res = compare.compare_maps(x, values[:, ok], nulls, method=method,
                                   names=[n for n, k in zip(names, ok) if k], tail=tail)
        for col in ("r", "p_spin", "p_naive", "n_regions"):
            out.loc[ok, col] = res[col].to_numpy()
        # compare_maps' p is NaN exactly when no null map gave a correlation
        n_null = np.where(np.isnan(res["p_spin"].to_numpy()), 0, usable_nulls(nulls).sum())
        report_null_use(n_null, nulls.shape[1], what="cell-type comparison (p_spin)",
                        name=map_name, n_regions=x.shape[0],
                        defined=np.isfinite(res["r"].to_numpy()))
    out["n_regions"] = out["n_regions"].astype(np.int64)
    out["q_spin"] = fdr_bh(out["p_spin"].to_numpy())
    if tail == "gpd":
        p_gpd = np.full(len(out), np.nan)
        how = np.full(len(out), "na", dtype=object)
        if ok.any():
            p_gpd[ok], how[ok] = res["p_gpd"].to_numpy(), res["tail_method"].to_numpy()
        at = out.columns.get_loc("q_spin") + 1
        out.insert(at, "p_gpd", p_gpd)
        out.insert(at + 1, "q_gpd", fdr_bh(p_gpd))
        out.insert(at + 2, "tail_method", how.astype(str))
    return out
