"""Coverage of one map on one atlas: which regions enter the tests, and why not.

A region can drop out of an analysis for several reasons that users must see
before they interpret a result: it is outside the analysis scope, the map has
no value there (no voxels / vertices of the map in the parcel, or no row in a
region table), or the AHBA has no tissue sample assigned to it (for example
the right frontal and temporal poles), so its expression is missing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["coverage_summary", "coverage_table", "region_use"]


def region_use(regions, map_values, expression) -> pd.DataFrame:
    """Which of `regions` enter a test: those with a map value and expression.

    The one definition of a usable region, shared by the tests
    (:func:`itx.analysis.align`), the coverage table and the figures, so the
    regions a figure shows are the ones the statistics used.

    Parameters
    ----------
    regions : sequence of str
        Regions to classify (the analysis scope, or every atlas region).
    map_values : pandas.Series
        The map's value per region, indexed by region name; NaN = no value.
    expression : pandas.DataFrame
        Region x gene expression, indexed by region name.

    Returns
    -------
    pandas.DataFrame
        Indexed by `regions`: ``has_map_value``, ``has_expression`` (a value
        for every gene) and ``used`` (both), all bool. A region missing from
        `map_values` or `expression` has no value there.
    """
    index = pd.Index([str(r) for r in regions], name="region")
    values = pd.Series(np.asarray(map_values, dtype=float),
                       index=[str(r) for r in map_values.index])
    has_map = np.isfinite(values.reindex(index).to_numpy(float))
    expr = expression.set_axis([str(r) for r in expression.index], axis=0)
    has_expr = expr.notna().all(axis=1).reindex(index).fillna(False).to_numpy(bool)
    return pd.DataFrame({"has_map_value": has_map, "has_expression": has_expr,
                         "used": has_map & has_expr}, index=index)


def coverage_table(map_table, scope_regions, expression, counts=None):
    """One row per atlas region: in scope, map value, AHBA samples, used.

    Parameters
    ----------
    map_table : pandas.DataFrame
        ``results/{atlas}/{map}/map.tsv`` (``region, id, hemisphere,
        structure, value``), every atlas region.
    scope_regions : sequence of str
        Regions of the analysis scope (rows of the null maps).
    expression : pandas.DataFrame
        ``results/{atlas}/expression.tsv`` (``region`` + genes).
    counts : pandas.DataFrame, optional
        ``results/{atlas}/sample_counts.tsv`` (``region``, ..., ``total``);
        absent for precomputed expression.

    Returns
    -------
    pandas.DataFrame
        ``region, id, hemisphere, structure, in_scope, map_value,
        has_map_value, n_samples, has_expression, used, reason``.
        ``n_samples`` is empty when unknown; ``reason`` is empty for used
        regions.
    """
    out = map_table.loc[:, ["region", "id", "hemisphere", "structure"]].copy()
    out["region"] = out["region"].astype(str)
    scope = {str(r) for r in scope_regions}
    out["in_scope"] = out["region"].isin(scope)
    out["map_value"] = map_table["value"].astype(float).to_numpy()
    expr = expression.set_index(expression["region"].astype(str)).drop(columns="region")
    use = region_use(out["region"], out.set_index("region")["map_value"], expr)
    out["has_map_value"] = use["has_map_value"].to_numpy()
    if counts is not None:
        n = counts.set_index(counts["region"].astype(str))["total"]
        out["n_samples"] = n.reindex(out["region"]).fillna(0).astype(int).to_numpy()
    else:
        out["n_samples"] = pd.array([pd.NA] * len(out), dtype="Int64")
    out["has_expression"] = use["has_expression"].to_numpy()
    out["used"] = out["in_scope"].to_numpy() & use["used"].to_numpy()
    reasons = []
    for row in out.itertuples():
        why = []
        if not row.in_scope:
            why.append("outside the analysis scope")
        if not row.has_map_value:
            why.append("no map value")
        if not row.has_expression:
            why.append("no AHBA sample" if counts is not None and row.n_samples == 0
                       else "no expression")
        reasons.append("; ".join(why))
    out["reason"] = reasons
    return out


def coverage_summary(table):
    """Counts for the log and report: scope, used, and each exclusion reason."""
    in_scope = table[table["in_scope"]]
    lines = [f"{int(table['used'].sum())} of {len(in_scope)} scope regions used "
             f"({len(table)} atlas regions)"]
    dropped = in_scope[~in_scope["used"]]
    for reason, group in dropped.groupby("reason"):
        lines.append(f"{reason}: {', '.join(group['region'])}")
    return lines
