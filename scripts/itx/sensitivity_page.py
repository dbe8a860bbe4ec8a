"""The null-sensitivity summary in words and in one figure.

:func:`sensitivity_html` writes the page a reader of the report sees (which
conclusions hold under every null, which depend on the choice, each null's
calibrated false-positive rate and the run's permutation floor);
:func:`plot_sensitivity` draws the same in one figure. Both read the tables
of :mod:`itx.sensitivity`.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from .htmlpage import PAGE_CSS as _CSS
from .htmlpage import fmt_number as _fmt
from .sensitivity import _pct

__all__ = ["sensitivity_html", "plot_sensitivity"]


def _is_true(v) -> bool:
    return bool(pd.notna(v) and v in (True, "True", "true"))


def _gene_stat(summary, null, prefix):
    g = summary[(summary["null"] == null) & (summary["test"] == "genes")]
    hit = g[g["item"].astype(str).str.startswith(prefix)]
    return float(hit["statistic"].iloc[0]) if len(hit) else np.nan


def sensitivity_html(summary: pd.DataFrame, verdicts_table: pd.DataFrame, map_name: str,
                     alpha: float = 0.05, atlas: str | None = None,
                     title: str | None = None, max_unremarkable: int = 30) -> str:
    """A small self-contained HTML page on the map's null sensitivity.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summarise`.
    verdicts_table : pandas.DataFrame
        From :func:`verdicts`.
    map_name : str
        The map (shown in the title).
    alpha : float, optional
        The level used.
    atlas : str, optional
        Shown beside the map name.
    title : str, optional
        Page title; default ``"Null sensitivity: <map>"``.
    max_unremarkable : int, optional
        Items significant under no null are listed one by one only while a
        collection has at most this many; beyond that (a GO-scale collection)
        the page counts them in one sentence per collection.

    Returns
    -------
    str
        The page: a paragraph per null on its genes (fraction p < alpha next
        to its calibrated FPR, genes with q < alpha, the smallest attainable
        q), a sentence per set, cell type and PLS, and a table of p (q) per
        item and null. All text is escaped.
    """
    e = html.escape
    title = title or f"Null sensitivity: {map_name}" + (f" ({atlas})" if atlas else "")
    nulls = list(dict.fromkeys(summary["null"]))
    info = summary.drop_duplicates("null").set_index("null")
    out = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{e(title)}</title>"
           f"<style>{_CSS}</style></head>\n<body>\n<h1>{e(title)}</h1>"]
    out.append("<p>The same map, genes, gene sets and cell types tested against each spatial "
               "null. The false-positive rate (FPR) beside each null is its calibrated rate at "
               f"alpha {e(f'{alpha:g}')} on maps with no association (docs/calibration.md): "
               "a null with an FPR well above alpha finds associations that are not there. "
               "The FPR is an average over unrelated maps of single-gene tests: for one map the "
               "fraction of genes with p below alpha varies widely (genes are correlated), and "
               "gene-set and cell-type tests, which use the same null maps, were not calibrated "
               "separately.</p>")
    out.append("<h2>Nulls and genes</h2>\n<table><tr><th>null</th><th>FPR [95% CI]</th>"
               "<th>calibration</th><th>genes tested</th>"
               f"<th>fraction p&lt;{e(f'{alpha:g}')}</th><th>genes q&lt;{e(f'{alpha:g}')}</th>"
               "<th>p floor</th><th>smallest attainable q</th></tr>")
    sentences = []
    for n in nulls:
        f = info.loc[n]
        frac = _gene_stat(summary, n, "fraction p<")
        nq = _gene_stat(summary, n, f"n q<{alpha:g}")
        m = _gene_stat(summary, n, "n tested")
        floor = _gene_stat(summary, n, "p floor")
        qfloor = _gene_stat(summary, n, "smallest attainable q")
        need = _gene_stat(summary, n, "n at floor")
        nnull = _gene_stat(summary, n, "n null")
        ci = (f"{_pct(f['fpr'])} [{_pct(f['fpr_ci_low'])}, {_pct(f['fpr_ci_high'])}]"
              if np.isfinite(f["fpr"]) else "not calibrated")
        label = n + (" (primary)" if bool(f["primary"]) else "")
        out.append(f"<tr><td>{e(label)}</td><td>{e(ci)}</td><td>{e(str(f['fpr_source']))}</td>"
                   f"<td>{e(_fmt(m, 6))}</td><td>{e(_pct(frac))}</td><td>{e(_fmt(nq, 6))}</td>"
                   f"<td>{e(_fmt(floor))}</td><td>{e(_fmt(qfloor))}</td></tr>")
        s = (f"Under {n} (FPR {ci}), {_pct(frac)} of {_fmt(m, 6)} genes have p_spin < "
             f"{alpha:g} and {_fmt(nq, 6)} have q < {alpha:g}.")
        if np.isfinite(floor):
            s += (f" With {_fmt(nnull, 6)} null maps no p is below {_fmt(floor)}; a gene at that "
                  f"floor would get q = {_fmt(qfloor)} among this run's p values, and without "
                  f"help from the other genes at least {_fmt(need, 6)} genes would have to be "
                  f"at the floor for any to reach q < {alpha:g}.")
        sentences.append(s)
    out.append("</table>")
    out += [f"<p>{e(s)}</p>" for s in sentences]
    out.append("<h2>Conclusions</h2>")
    if verdicts_table.empty:
        out.append("<p>No gene sets, cell types or PLS to compare.</p>")
    else:
        order = {"depends": 0, "all": 1, "none": 2}
        v = verdicts_table.assign(_o=verdicts_table["verdict"].map(order)).sort_values(
            "_o", kind="stable")
        # thousands of GO terms significant under no null would drown the page
        none = v["verdict"] == "none"
        folded = none & (none.groupby(v["collection"]).transform("sum") > max_unremarkable)
        n_folded = v.loc[folded, "collection"].value_counts(sort=False)
        v = v[~folded]
        out.append("<ul>")
        for _, r in v.iterrows():
            cls = " class=\"depends\"" if r["verdict"] == "depends" else ""
            out.append(f"<li{cls}>{e(str(r['sentence']))}</li>")
        for coll, k in n_folded.items():
            out.append(f"<li>{e(f'{k:,} further items of {coll} are significant under no null')}"
                       " (not listed; see <code>null_sensitivity.tsv</code>).</li>")
        out.append("</ul>")
        head = "".join(f"<th>{e(n)}<br><span class=\"muted\">FPR {e(_pct(info.loc[n, 'fpr']))}"
                       "</span></th>" for n in nulls)
        out.append(f"<p>p (q) per null; bold: significant (q &lt; {e(f'{alpha:g}')}; PLS: "
                   f"p_spin &lt; {e(f'{alpha:g}')}).</p>\n<table><tr><th>test</th>"
                   f"<th>collection</th><th>item</th><th>verdict</th>{head}</tr>")
        items = summary[summary["test"].isin(["set", "celltype", "pls"])]
        cells = items.set_index(["test", "collection", "item", "null"])
        for _, r in v.iterrows():
            tds = []
            for n in nulls:
                key = (r["test"], r["collection"], r["item"], n)
                if key not in cells.index:
                    tds.append("<td class=\"muted\">n/a</td>")
                    continue
                c = cells.loc[key]
                c = c.iloc[0] if isinstance(c, pd.DataFrame) else c
                txt = _fmt(c["p"]) + (f" ({_fmt(c['q'])})" if np.isfinite(c["q"]) else "")
                cls = " class=\"sig\"" if _is_true(c["significant"]) else ""
                tds.append(f"<td{cls}>{e(txt)}</td>")
            out.append(f"<tr><td>{e(str(r['test']))}</td><td>{e(str(r['collection']))}</td>"
                       f"<td>{e(str(r['item']))}</td><td>{e(str(r['verdict']))}</td>"
                       f"{''.join(tds)}</tr>")
        out.append("</table>")
    out.append("</body></html>\n")
    return "\n".join(out)


# ------------------------------------------------------------------ figure

def plot_sensitivity(summary: pd.DataFrame, path, alpha: float = 0.05,
                     title: str | None = None) -> Path:
    """One figure of a map's results under every null.

    Top left: fraction of genes with ``p_spin < alpha`` per null, with the
    null's calibrated FPR (point and 95% interval) and alpha marked. Top
    right: PLS1's ``-log10 p_spin`` per null. Bottom: ``-log10 p`` of every
    gene set and cell type (rows) under every null (one marker colour per
    null; filled when significant), alpha marked.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summarise`.
    path : path-like
        Output ``.png``.
    alpha : float, optional
        Level the summary was made at.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written PNG.
    """
    from .figures import new_figure, png_path, save_png

    out = png_path(path)
    nulls = list(dict.fromkeys(summary["null"]))
    if not nulls:
        raise ValueError("summary has no rows")
    info = summary.drop_duplicates("null").set_index("null")
    items = summary[summary["test"].isin(["set", "celltype"])]
    # a collection may give both gene sets and cell types of the same names
    tags = [f"{'cell type' if t == 'celltype' else 'set'} {c}: {i}"
            for t, c, i in zip(items["test"], items["collection"], items["item"])]
    items = items.assign(_tag=tags)
    labels = list(dict.fromkeys(tags))
    fig = new_figure(max(7.0, 1.2 * len(nulls) + 4), 3.4 + 0.24 * max(len(labels), 2))
    gs = fig.add_gridspec(2, 2, height_ratios=[3.0, 0.24 * max(len(labels), 2) + 0.6])
    colours = [f"C{i % 10}" for i in range(len(nulls))]
    x = np.arange(len(nulls))

    ax = fig.add_subplot(gs[0, 0])
    frac = [_gene_stat(summary, n, "fraction p<") for n in nulls]
    ax.bar(x, np.nan_to_num(frac), color=colours, alpha=0.6, label="genes p < alpha")
    fpr = info.loc[nulls, "fpr"].to_numpy(float)
    lo = info.loc[nulls, "fpr_ci_low"].to_numpy(float)
    hi = info.loc[nulls, "fpr_ci_high"].to_numpy(float)
    ax.errorbar(x, fpr, yerr=[np.nan_to_num(fpr - lo), np.nan_to_num(hi - fpr)], fmt="D",
                color="k", ms=4, capsize=3, label="calibrated FPR")
    ax.axhline(alpha, color="0.4", ls="--", lw=0.8, label=f"alpha {alpha:g}")
    ax.set_xticks(x)
    ax.set_xticklabels([n + ("*" if info.loc[n, "primary"] else "") for n in nulls],
                       rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"fraction of genes, p < {alpha:g}", fontsize=8)
    ax.set_title("genes (* primary null)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, frameon=False)

    ax = fig.add_subplot(gs[0, 1])
    p_pls = summary[summary["test"] == "pls"].set_index("null")["p"]
    vals = np.array([-np.log10(p_pls.get(n, np.nan)) for n in nulls])
    if np.isfinite(vals).any():
        ax.bar(x, np.nan_to_num(vals), color=colours)
        ax.axhline(-np.log10(alpha), color="0.4", ls="--", lw=0.8)
        ax.set_xticks(x)
        ax.set_xticklabels(nulls, rotation=30, ha="right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no PLS p values", ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
    ax.set_ylabel("-log10 p_spin", fontsize=8)
    ax.set_title("PLS1", fontsize=9)
    ax.tick_params(labelsize=7)

    ax = fig.add_subplot(gs[1, :])
    if labels:
        y = {lab: i for i, lab in enumerate(labels)}
        offs = (np.arange(len(nulls)) - (len(nulls) - 1) / 2) * min(0.15, 0.8 / len(nulls))
        for k, n in enumerate(nulls):
            sub = items[items["null"] == n]
            yy = offs[k] + np.array([y[t] for t in sub["_tag"]], dtype=float)
            lp = -np.log10(sub["p"].to_numpy(float))
            sig = sub["significant"].fillna(False).to_numpy(bool)
            # one legend entry per null: the filled marker if it has any
            ax.scatter(lp[sig], yy[sig], color=colours[k], s=22,
                       label=n if sig.any() else None)
            ax.scatter(lp[~sig], yy[~sig], facecolor="none", edgecolor=colours[k], s=22,
                       label=None if sig.any() else n)
        ax.axvline(-np.log10(alpha), color="0.4", ls="--", lw=0.8)
        ax.set_yticks(np.arange(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"-log10 p (filled: q < {alpha:g}; dashed: p = {alpha:g})", fontsize=8)
        ax.legend(fontsize=7, frameon=False, loc="best")
    else:
        ax.text(0.5, 0.5, "no gene sets or cell types", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_title("gene sets and cell types", fontsize=9)
    ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, out)
