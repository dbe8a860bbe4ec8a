"""The report's page of top gene sets: a few rows per collection, not thousands.

A GO-scale collection tests thousands of sets; the report lists, per
collection, how many sets were tested and how many pass FDR, then the top
sets by spatial p value (ties broken by the size of the score). The full
tables stay in ``enrichment_{collection}.tsv``.
"""

from __future__ import annotations

import html
from typing import Mapping

import numpy as np
import pandas as pd

from .htmlpage import fmt_number, page

__all__ = ["top_sets", "top_sets_html"]

#: Columns shown per set (those present in the table, in this order).
TOP_COLUMNS = ("set", "n_genes", "score", "p_spatial", "q_spatial", "p_gpd", "q_gpd",
               "p_random", "q_random")


def top_sets(table: pd.DataFrame, n_top: int) -> pd.DataFrame:
    """The `n_top` sets of an enrichment table with the smallest ``p_spatial``.

    Ties (sets at the permutation floor) are ordered by ``|score|``, largest
    first, then by name, so the order does not depend on the table's order.
    Sets without a p value come last.
    """
    if n_top < 1:
        raise ValueError(f"n_top must be >= 1, got {n_top}")
    missing = [c for c in ("set", "score", "p_spatial") if c not in table.columns]
    if missing:
        raise ValueError(f"enrichment table lacks column(s) {missing}")
    order = pd.DataFrame({
        "p": pd.to_numeric(table["p_spatial"], errors="coerce").fillna(np.inf),
        "abs": -pd.to_numeric(table["score"], errors="coerce").abs().fillna(0.0),
        "set": table["set"].astype(str),
    })
    idx = order.sort_values(["p", "abs", "set"], kind="mergesort").index[:n_top]
    return table.loc[idx, [c for c in TOP_COLUMNS if c in table.columns]].reset_index(drop=True)


def top_sets_html(tables: Mapping[str, pd.DataFrame], map_name: str, n_top: int,
                  alpha: float = 0.05) -> str:
    """Page listing the top sets of every collection tested against one map.

    Parameters
    ----------
    tables : mapping
        Collection name -> its ``enrichment_{collection}.tsv`` table.
    map_name : str
        The map, for the title.
    n_top : int
        Sets listed per collection.
    alpha : float
        FDR level counted in each collection's summary line (``q_spatial``).

    Returns
    -------
    str
        A complete HTML document.
    """
    e = html.escape
    parts = [f"<p>Top {n_top} gene sets per collection by spatial (null-map) p value; "
             "q values are Benjamini-Hochberg over each whole collection. Full tables: "
             "<code>enrichment_&lt;collection&gt;.tsv</code>.</p>"]
    for name, table in tables.items():
        q = pd.to_numeric(table.get("q_spatial", pd.Series(dtype=float)), errors="coerce")
        n_sig = int((q < alpha).sum())
        parts.append(f"<h2>{e(name)}</h2>\n<p>{len(table):,} sets tested; {n_sig:,} with "
                     f"q_spatial &lt; {e(f'{alpha:g}')}.</p>")
        if table.empty:
            continue
        top = top_sets(table, n_top)
        head = "".join(f"<th>{e(c)}</th>" for c in top.columns)
        rows = []
        for _, r in top.iterrows():
            sig = pd.notna(r.get("q_spatial")) and float(r["q_spatial"]) < alpha
            cells = []
            for c in top.columns:
                v = r[c]
                if c == "set":
                    cells.append(f"<td>{e(str(v))}</td>")
                elif c == "n_genes":
                    cells.append(f"<td>{int(v)}</td>")
                else:
                    cells.append(f"<td>{e(fmt_number(v))}</td>")
            rows.append(f"<tr{' class=sig' if sig else ''}>" + "".join(cells) + "</tr>")
        parts.append(f"<table><tr>{head}</tr>\n" + "\n".join(rows) + "</table>")
    return page(f"{map_name}: top gene sets", "\n".join(parts))
