"""How much a map's conclusions depend on the choice of spatial null.

One map analysed under several null families (the primary null's outputs in
``results/{atlas}/{map}/``, each extra null's copies in
``results/{atlas}/{map}/sensitivity/{null}/``) is summarised side by side:

* :func:`fpr_lookup` finds each null's calibrated false-positive rate in the
  calibration table (``docs/calibration.tsv``), so a null that rejects more
  often than it promises is recognised as such;
* :func:`smallest_attainable_q` says how small a q value this run could give
  at all: a permutation p cannot fall below ``1 / (n_null + 1)``;
* :func:`summarise` puts genes, gene sets, cell types and PLS of every null in
  one tidy table; :func:`verdicts` says, per set, cell type and PLS, whether
  the conclusion holds under every null, none, or depends on the choice (and
  whether only liberal nulls make it significant);
* :func:`itx.sensitivity_page.sensitivity_html` and
  :func:`itx.sensitivity_page.plot_sensitivity` say it in words and in one figure.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ATLASES",
    "HEMISPHERES",
    "SUMMARY_COLUMNS",
    "VERDICT_COLUMNS",
    "FloorQ",
    "fpr_lookup",
    "smallest_attainable_q",
    "split_null_major",
    "summarise",
    "null_calibration",
    "verdicts",
]

#: Atlases the calibration table may cover, and the reference one (docs/calibration.md).
ATLASES = ("desikan_killiany", "schaefer100", "schaefer200", "schaefer400")
REFERENCE_ATLAS, REFERENCE_HEMISPHERES = "desikan_killiany", "left"
HEMISPHERES = ("left", "both")

CALIBRATION_COLUMNS = ["method", "sigma", "alpha", "fpr", "ci_low", "ci_high"]
FPR_COLUMNS = ["null", "fpr", "fpr_ci_low", "fpr_ci_high", "fpr_source", "calibration_atlas",
               "calibration_hemispheres", "calibration_alpha", "n_fields", "n_genes", "n_perm"]
SUMMARY_COLUMNS = ["null", "primary", "fpr", "fpr_ci_low", "fpr_ci_high", "fpr_source", "test",
                   "collection", "item", "statistic", "p", "q", "significant"]
VERDICT_COLUMNS = ["test", "collection", "item", "verdict", "n_nulls", "n_significant",
                   "significant_under", "not_significant_under", "untested_under",
                   "primary_significant", "liberal_under", "liberal_only", "sentence"]
TESTS = ("genes", "set", "celltype", "pls")

# the input tables' columns (docs/outputs.md)
_GENES = ["gene", "p_spin", "q_spin"]
_SETS = ["set", "score", "p_spatial", "q_spatial"]
_CELLTYPES = ["celltype", "r", "p_spin", "q_spin"]
_PLS = ["component", "explained", "p_spin"]


# ------------------------------------------------------------------ calibration

def _schaefer_parcels(atlas: str) -> int | None:
    m = re.search(r"schaefer[_-]?(\d+)", str(atlas).lower())
    return int(m.group(1)) if m else None


def _closeness(want_atlas: str, want_hemi: str, atlas: str, hemi: str) -> tuple:
    """Sort key of a calibrated (atlas, hemispheres): smaller is closer."""
    n_want, n_have = _schaefer_parcels(want_atlas), _schaefer_parcels(atlas)
    other_hemi = hemi != want_hemi
    if atlas == want_atlas:
        rank, dist = 0, 0.0
    elif n_want is not None and n_have is not None:
        # parcel size drives how smooth a parcellated map is, so the Schaefer
        # resolution nearest on a log scale stands in best
        rank, dist = 1, abs(math.log(n_want / n_have))
    elif atlas == REFERENCE_ATLAS:
        rank, dist = 2, 0.0
    else:
        rank, dist = 3, 0.0
    # a neighbouring Schaefer resolution over the same hemispheres comes before the
    # same atlas over other hemispheres: the single-hemisphere Schaefer 200/400
    # settings were measured on few fields (docs/calibration.md)
    if rank <= 1:
        return (other_hemi, rank, dist, atlas, hemi)
    return (2 + other_hemi, rank, dist, hemi != REFERENCE_HEMISPHERES, atlas, hemi)


def _calibration_frame(calibration) -> pd.DataFrame:
    if isinstance(calibration, (str, Path)):
        calibration = pd.read_csv(calibration, sep="\t")
    if not isinstance(calibration, pd.DataFrame):
        raise ValueError("calibration must be a pandas DataFrame or the path of "
                         "docs/calibration.tsv")
    cal = calibration.copy()
    has = {"atlas" in cal.columns, "hemispheres" in cal.columns}
    if has == {True, False}:
        raise ValueError("calibration table has only one of the columns 'atlas' and "
                         "'hemispheres'; give both (or neither: the table is then read as "
                         f"{REFERENCE_ATLAS}/{REFERENCE_HEMISPHERES})")
    if has == {False}:
        # the first calibration (docs/calibration.md) is DK, left cortex
        cal.insert(0, "hemispheres", REFERENCE_HEMISPHERES)
        cal.insert(0, "atlas", REFERENCE_ATLAS)
    missing = [c for c in CALIBRATION_COLUMNS if c not in cal.columns]
    if missing:
        raise ValueError(f"calibration table is missing columns {missing}; it needs "
                         f"{['atlas', 'hemispheres'] + CALIBRATION_COLUMNS} "
                         "(scripts/tools/calibrate_nulls.py writes them)")
    for c in ("atlas", "hemispheres", "method", "sigma"):
        cal[c] = cal[c].astype(str).str.strip()
    for c in ("alpha", "fpr", "ci_low", "ci_high", "n_fields", "n_genes", "n_perm"):
        if c in cal.columns:
            cal[c] = pd.to_numeric(cal[c], errors="coerce")
    return cal


def fpr_lookup(calibration, atlas: str, hemispheres: str, methods: Sequence[str],
               alpha: float = 0.05) -> pd.DataFrame:
    """Each null's calibrated false-positive rate, from the calibration table.

    Only rows pooled over smoothness (``sigma == "all"``) at level `alpha` are
    used. For each method the row of (`atlas`, `hemispheres`) is taken when
    the table has it; otherwise the closest calibrated one, in this order:
    for a Schaefer atlas (``schaefer<N>``, also a user atlas whose name
    contains it) the Schaefer resolution nearest in ``log N`` over the same
    hemispheres; the same atlas over the other hemispheres (then the nearest
    Schaefer resolution over them); the reference calibration
    ``desikan_killiany`` (same hemispheres first, then ``left``); any other
    calibrated atlas (by name). ``fpr_source`` says which row was
    used and whether it is a fallback.

    Parameters
    ----------
    calibration : pandas.DataFrame or path-like
        ``docs/calibration.tsv``: columns ``atlas, hemispheres, method, sigma,
        alpha, fpr, ci_low, ci_high`` (and ``n_fields, n_genes, n_perm``). A
        table without ``atlas``/``hemispheres`` (the first calibration) is read
        as ``desikan_killiany``/``left``.
    atlas : str
        The run's atlas: ``desikan_killiany``, ``schaefer100``, ... or a user
        atlas name.
    hemispheres : {'left', 'both'}
        Hemispheres of the run's scope.
    methods : sequence of str
        Null names (``itx.nullmodels.REGISTRY`` keys; ``auto`` resolved).
    alpha : float, optional
        Level of the test; only rows calibrated at this level are used.

    Returns
    -------
    pandas.DataFrame
        One row per method, in the given order: ``null, fpr, fpr_ci_low,
        fpr_ci_high, fpr_source, calibration_atlas, calibration_hemispheres,
        calibration_alpha, n_fields, n_genes, n_perm``. ``fpr_source`` is
        ``"<atlas>/<hemispheres>"`` for an exact match,
        ``"<atlas>/<hemispheres> (fallback: <wanted> not calibrated)"`` for a
        fallback and ``"not calibrated"`` (FPR NaN) when the method has no
        pooled row at `alpha` for any atlas.

    Raises
    ------
    ValueError
        If the table lacks columns, has duplicated rows for one method,
        atlas, hemispheres and alpha, or `hemispheres` is not left/both.
    """
    if hemispheres not in HEMISPHERES:
        raise ValueError(f"hemispheres must be one of {list(HEMISPHERES)}, got {hemispheres!r} "
                         "(left for left_cortex scopes, both otherwise)")
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    cal = _calibration_frame(calibration)
    pooled = cal[(cal["sigma"] == "all") & np.isclose(cal["alpha"], float(alpha))]
    key = ["method", "atlas", "hemispheres"]
    dup = pooled.duplicated(key, keep=False)
    if dup.any():
        raise ValueError("calibration table has more than one pooled (sigma = all) row for "
                         f"{pooled.loc[dup, key].drop_duplicates().to_numpy().tolist()} at "
                         f"alpha {alpha:g}; keep one per method, atlas and hemispheres")
    wanted = f"{atlas}/{hemispheres}"
    rows = []
    for method in methods:
        cand = pooled[pooled["method"] == str(method)]
        row = dict.fromkeys(FPR_COLUMNS, np.nan)
        row["null"] = method
        if cand.empty:
            row["fpr_source"] = "not calibrated"
            rows.append(row)
            continue
        best = min(cand.itertuples(index=False),
                   key=lambda r: _closeness(str(atlas), hemispheres, r.atlas, r.hemispheres))
        have = f"{best.atlas}/{best.hemispheres}"
        row.update(fpr=best.fpr, fpr_ci_low=best.ci_low, fpr_ci_high=best.ci_high,
                   fpr_source=have if have == wanted
                   else f"{have} (fallback: {wanted} not calibrated)",
                   calibration_atlas=best.atlas, calibration_hemispheres=best.hemispheres,
                   calibration_alpha=best.alpha)
        for c in ("n_fields", "n_genes", "n_perm"):
            row[c] = getattr(best, c, np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=FPR_COLUMNS)


def null_calibration(fpr: float, ci_low: float, ci_high: float, alpha: float = 0.05,
                     ratio: float = 1.2) -> str:
    """Classify a null by its calibrated FPR: liberal, nominal or conservative.

    A null is ``liberal`` when the lower end of its FPR's 95% interval is
    above ``ratio * alpha`` (well above nominal: at alpha 0.05 and the default
    ratio, ``hungarian``, ``vasa`` and ``burt2020`` of docs/calibration.md),
    ``conservative`` when the upper end is below ``alpha / ratio``
    (``cornblath``), ``unknown`` when it was not calibrated, else ``nominal``.

    Parameters
    ----------
    fpr, ci_low, ci_high : float
        Calibrated FPR and its 95% interval (NaN: not calibrated).
    alpha : float, optional
        Nominal level.
    ratio : float, optional
        How far outside nominal counts as well outside (> 1).

    Returns
    -------
    str
    """
    vals = [fpr, ci_low, ci_high]
    if any(v is None or not np.isfinite(float(v)) for v in vals):
        return "unknown"
    if float(ci_low) > ratio * alpha:
        return "liberal"
    if float(ci_high) < alpha / ratio:
        return "conservative"
    return "nominal"


# ------------------------------------------------------------------ p floor

@dataclass(frozen=True)
class FloorQ:
    """The permutation p floor of a run and the q values it allows.

    Attributes
    ----------
    p_floor : float
        ``1 / (n_null + 1)``, the smallest permutation p.
    q_floor : float
        BH q of one more p value equal to `p_floor` added to the run's
        finite p values (``m + 1`` tests): the smallest q any gene of this
        run could have had (NaN when `n_null` is unknown).
    n_needed : int
        The fewest genes that, all at `p_floor` and with no help from the
        run's other genes (all at p = 1, say), get BH q < `alpha`: the smallest k with
        ``p_floor * m / k < alpha`` (``floor(m p_floor / alpha) + 1``; may
        exceed ``m``, then no run of this size can get there). -1 when
        `n_null` is unknown.
    m : int
        Number of finite p values of the run.
    """

    p_floor: float
    q_floor: float
    n_needed: int
    m: int


def smallest_attainable_q(p, n_null, alpha: float = 0.05) -> FloorQ:
    """The smallest BH q a run with `n_null` null maps allows.

    A permutation p is at least ``p_floor = 1 / (n_null + 1)``. Two numbers
    say what that means for the FDR of this run:

    * ``q_floor``: insert one hypothetical p equal to ``p_floor`` into the
      run's finite p values (``m + 1`` tests, the inserted one ranked after
      any ties) and take its Benjamini-Hochberg q,
      ``min_{j >= rank} p'_(j) (m + 1) / j`` over the sorted values ``p'``.
      It is small only when many genes have small p already.
    * ``n_needed``: with k genes at the floor and no help from the others
      (every other p large), their q is ``p_floor * m / k``; the smallest k with q < `alpha` is
      ``floor(m p_floor / alpha) + 1`` (computed in the floating point BH
      itself uses, so it agrees with :func:`itx.association.fdr_bh`).

    Parameters
    ----------
    p : array_like, 1-D
        The run's p values (e.g. ``p_spin`` of genes.tsv); NaN are ignored.
    n_null : int or None
        Null maps behind the p values; None or NaN gives NaN / -1.
    alpha : float, optional
        FDR level for `n_needed`.

    Returns
    -------
    FloorQ

    Raises
    ------
    ValueError
        If `p` is not 1-D or outside [0, 1], or `n_null` is negative.
    """
    p = np.asarray(p, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p.shape}")
    p = p[np.isfinite(p)]
    if np.any((p < 0) | (p > 1)):
        raise ValueError("p values must lie in [0, 1]")
    m = int(p.size)
    if n_null is None or (isinstance(n_null, float) and not np.isfinite(n_null)):
        return FloorQ(np.nan, np.nan, -1, m)
    if float(n_null) < 0 or float(n_null) != int(n_null):
        raise ValueError(f"n_null must be a non-negative integer, got {n_null!r}")
    p_floor = 1.0 / (int(n_null) + 1)
    srt = np.sort(p)
    rank = int(np.searchsorted(srt, p_floor, side="right"))  # 0-based slot of the new p
    ins = np.insert(srt, rank, p_floor)
    scaled = ins[rank:] * (m + 1) / np.arange(rank + 1, m + 2)
    q_floor = float(min(1.0, scaled.min()))
    k = max(1, math.floor(m * p_floor / alpha) + 1) if m else 1
    # settle the boundary in the arithmetic of BH (p * m / k)
    while p_floor * m / k >= alpha:
        k += 1
    while k > 1 and p_floor * m / (k - 1) < alpha:
        k -= 1
    return FloorQ(p_floor, q_floor, int(k), m)


# ------------------------------------------------------------------ summary

def split_null_major(items: Sequence, nulls: Sequence[str],
                     collections: Sequence[str]) -> dict:
    """Split a null-major list (for null, for collection) into a nested dict.

    Parameters
    ----------
    items : sequence
        ``len(nulls) * len(collections)`` items (paths or tables), ordered
        ``for null in nulls: for collection in collections``; may be empty.
    nulls, collections : sequence of str

    Returns
    -------
    dict
        ``{null: {collection: item}}``; ``{}`` for an empty `items`.

    Raises
    ------
    ValueError
        If the length does not match.
    """
    items = list(items)
    if not items:
        return {}
    if len(items) != len(nulls) * len(collections):
        raise ValueError(f"{len(items)} inputs for {len(nulls)} nulls x {len(collections)} "
                         "collections; the rule must list them null-major (for null in nulls: "
                         "for collection in collections)")
    n = len(collections)
    return {null: dict(zip(collections, items[i * n:(i + 1) * n]))
            for i, null in enumerate(nulls)}


def _check(frame, need, what) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{what} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing columns {missing} (docs/outputs.md lists them); "
                         "was it written by this version of the workflow?")
    out = frame.copy()
    for c in need[1:]:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    return out


def _per_null(tables, nulls, what) -> dict:
    if tables is None:
        return {}
    if isinstance(tables, Mapping):
        unknown = [k for k in tables if k not in nulls]
        if unknown:
            raise ValueError(f"{what} given for nulls {unknown} not in {list(nulls)}")
        return dict(tables)
    tables = list(tables)
    if len(tables) != len(nulls):
        raise ValueError(f"{len(tables)} {what} tables for {len(nulls)} nulls")
    return dict(zip(nulls, tables))


def _sig(q, alpha):
    return pd.array([pd.NA if not np.isfinite(v) else bool(v < alpha) for v in q],
                    dtype="boolean")


def _gene_rows(genes: pd.DataFrame, n_null, alpha: float) -> list[dict]:
    p = genes["p_spin"].to_numpy(float)
    q = genes["q_spin"].to_numpy(float)
    ok = np.isfinite(p)
    m = int(ok.sum())
    floor = smallest_attainable_q(p, n_null, alpha)
    rows = [("n tested", m),
            (f"fraction p<{alpha:g}", float((p[ok] < alpha).mean()) if m else np.nan)]
    rows += [(f"n q<{lvl:g}", int((q[np.isfinite(q)] < lvl).sum()))
             for lvl in sorted({float(alpha), 0.1})]
    rows += [("smallest q", float(np.nanmin(q)) if np.isfinite(q).any() else np.nan),
             ("n null", np.nan if n_null is None else int(n_null)),
             ("p floor", floor.p_floor),
             ("smallest attainable q", floor.q_floor),
             (f"n at floor for q<{alpha:g}", floor.n_needed if floor.n_needed > 0 else np.nan)]
    return [dict(test="genes", collection="", item=i, statistic=float(s), p=np.nan, q=np.nan,
                 significant=pd.NA) for i, s in rows]


def _table_rows(frame, test, collection, item, stat, p, q, alpha) -> list[dict]:
    qv = frame[q].to_numpy(float)
    sig = _sig(qv, alpha)
    return [dict(test=test, collection=collection, item=str(i), statistic=s, p=pv, q=qq,
                 significant=g)
            for i, s, pv, qq, g in zip(frame[item], frame[stat].to_numpy(float),
                                       frame[p].to_numpy(float), qv, sig)]


def _n_null(pls_frame, fallback):
    if pls_frame is not None and "n_null" in pls_frame.columns:
        n = pd.to_numeric(pls_frame["n_null"], errors="coerce").to_numpy(float)
        n = n[np.isfinite(n) & (n > 0)]
        if n.size:
            # PLS leaves out null maps with fewer than 4 usable regions: the
            # most nulls any component used is closest to what genes used
            return int(n.max())
    if fallback is None:
        return None
    return int(fallback)


def summarise(nulls: Sequence[str], primary: str, genes, enrichment, celltypes, pls,
              fpr: pd.DataFrame, alpha: float = 0.05, n_perm=None) -> pd.DataFrame:
    """One tidy table of a map's results under every null.

    Parameters
    ----------
    nulls : sequence of str
        Null names, in the order of the table (primary first, usually).
    primary : str
        The primary null (its outputs are the map's main results).
    genes : mapping or sequence
        ``genes.tsv`` per null (``{null: frame}`` or a list aligned with
        `nulls`): ``gene, r, p_spin, q_spin, p_naive, q_naive``.
    enrichment : mapping or None
        ``{null: {collection: enrichment_{collection}.tsv frame}}`` (``set,
        n_genes, score, p_spatial, q_spatial, ...``); None or ``{}`` when there
        are no gene sets.
    celltypes : mapping or None
        ``{null: {collection: celltypes_{collection}.tsv frame}}`` (``map,
        celltype, r, p_spin, q_spin, p_naive, n_regions``), or None.
    pls : mapping or sequence or None
        ``pls.tsv`` per null: ``component, explained, p_spin, n_null``.
    fpr : pandas.DataFrame
        From :func:`fpr_lookup` (column ``null``); nulls it lacks get NaN and
        ``fpr_source`` "not calibrated".
    alpha : float, optional
        Level: ``fraction p<alpha``, ``n q<alpha``, and ``significant`` (q <
        alpha for sets and cell types, p < alpha for PLS).
    n_perm : int or mapping, optional
        Null maps per null when ``pls.tsv`` has no usable ``n_null`` (no PLS,
        or 0); otherwise pls.tsv's largest ``n_null`` sets the p floor.

    Returns
    -------
    pandas.DataFrame
        :data:`SUMMARY_COLUMNS`, null-major. Rows per null: ``test = genes``
        (collection empty; items ``n tested``, ``fraction p<alpha``, ``n
        q<alpha``, ``n q<0.1``, ``smallest q``, ``n null``, ``p floor``,
        ``smallest attainable q``, ``n at floor for q<alpha``; the value in
        ``statistic``), ``set`` (statistic = score, p = p_spatial, q =
        q_spatial), ``celltype`` (r, p_spin, q_spin) and ``pls`` (item
        ``PLS1``: explained, p_spin, q empty). ``significant`` is empty
        (NA) where there is no test or no p.

    Raises
    ------
    ValueError
        If `primary` is not in `nulls`, nulls repeat, a null has no genes
        table, or a table lacks columns.
    """
    nulls = [str(n) for n in nulls]
    if len(set(nulls)) != len(nulls):
        raise ValueError(f"nulls repeat: {nulls}")
    if primary not in nulls:
        raise ValueError(f"primary null {primary!r} is not one of the nulls {nulls}")
    genes = _per_null(genes, nulls, "genes")
    pls = _per_null(pls, nulls, "pls")
    enrichment = _per_null(enrichment or {}, nulls, "enrichment")
    celltypes = _per_null(celltypes or {}, nulls, "celltypes")
    if not isinstance(fpr, pd.DataFrame) or "null" not in fpr.columns:
        raise ValueError("fpr must be the table of fpr_lookup (with a 'null' column)")
    fpr = fpr.drop_duplicates("null").set_index("null")
    rows = []
    for null in nulls:
        if genes.get(null) is None:
            raise ValueError(f"no genes.tsv for null {null!r}")
        n_fallback = n_perm.get(null) if isinstance(n_perm, Mapping) else n_perm
        pls_frame = None if pls.get(null) is None else _check(pls[null], _PLS, f"pls.tsv of {null}")
        part = _gene_rows(_check(genes[null], _GENES, f"genes.tsv of {null}"),
                          _n_null(pls_frame, n_fallback), alpha)
        for coll, frame in (enrichment.get(null) or {}).items():
            t = _check(frame, _SETS, f"enrichment_{coll}.tsv of {null}")
            part += _table_rows(t, "set", coll, "set", "score", "p_spatial", "q_spatial", alpha)
        for coll, frame in (celltypes.get(null) or {}).items():
            t = _check(frame, _CELLTYPES, f"celltypes_{coll}.tsv of {null}")
            part += _table_rows(t, "celltype", coll, "celltype", "r", "p_spin", "q_spin", alpha)
        if pls_frame is not None:
            first = pls_frame[pls_frame["component"].astype(str) == "PLS1"]
            if not first.empty:
                pv = float(first["p_spin"].iloc[0])
                part.append(dict(test="pls", collection="", item="PLS1",
                                 statistic=float(first["explained"].iloc[0]), p=pv, q=np.nan,
                                 significant=pd.NA if not np.isfinite(pv) else bool(pv < alpha)))
        f = fpr.loc[null] if null in fpr.index else None
        for r in part:
            r.update(null=null, primary=null == primary,
                     fpr=np.nan if f is None else f["fpr"],
                     fpr_ci_low=np.nan if f is None else f["fpr_ci_low"],
                     fpr_ci_high=np.nan if f is None else f["fpr_ci_high"],
                     fpr_source="not calibrated" if f is None else f["fpr_source"])
        rows += part
    out = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    out["primary"] = out["primary"].astype(bool)
    out["significant"] = out["significant"].astype("boolean")
    for c in ("fpr", "fpr_ci_low", "fpr_ci_high", "statistic", "p", "q"):
        out[c] = out[c].astype(float)
    return out


# ------------------------------------------------------------------ verdicts

def _pct(v) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{100 * v:.1f}%"


def _null_label(null, info, primary) -> str:
    extra = [f"FPR {_pct(info['fpr'])}"] + (["primary"] if null == primary else [])
    return f"{null} ({', '.join(extra)})"


def _what(test, collection, item, stat) -> str:
    if test == "set":
        return f"Gene set {item} ({collection}, score {stat:.3g})"
    if test == "celltype":
        return f"Cell type {item} ({collection}, r = {stat:.3g})"
    return f"{item} (explains {_pct(stat)} of the map's variance)"


def verdicts(summary: pd.DataFrame, alpha: float = 0.05, ratio: float = 1.2) -> pd.DataFrame:
    """Per set, cell type and PLS: does the conclusion depend on the null?

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`summarise`.
    alpha : float, optional
        Level the summary was made at (for the sentences and for
        :func:`null_calibration`).
    ratio : float, optional
        Passed to :func:`null_calibration`: a null is liberal when its FPR's
        95% interval lies above ``ratio * alpha``.

    Returns
    -------
    pandas.DataFrame
        :data:`VERDICT_COLUMNS`, one row per item (order of first
        appearance). ``verdict`` is ``all`` (significant under every null),
        ``none`` (under none) or ``depends``; a null without a p (no usable
        null maps) or without the item counts as not significant and is
        listed in ``untested_under``. ``significant_under`` etc. are
        ``;``-joined null names. ``liberal_only`` is True when the item is
        significant under some nulls but only under liberal ones.
        ``sentence`` says it in words, with each null's calibrated FPR.
    """
    missing = [c for c in SUMMARY_COLUMNS if c not in summary.columns]
    if missing:
        raise ValueError(f"summary is missing columns {missing}; make it with summarise()")
    nulls = list(dict.fromkeys(summary["null"]))
    prim = summary.loc[summary["primary"].astype(bool), "null"]
    primary = prim.iloc[0] if len(prim) else None
    info = (summary.drop_duplicates("null").set_index("null")
            [["fpr", "fpr_ci_low", "fpr_ci_high", "fpr_source"]])
    kind = {n: null_calibration(info.loc[n, "fpr"], info.loc[n, "fpr_ci_low"],
                                info.loc[n, "fpr_ci_high"], alpha, ratio) for n in nulls}
    items = summary[summary["test"].isin(["set", "celltype", "pls"])]
    rows = []
    for (test, coll, item), grp in items.groupby(["test", "collection", "item"], sort=False,
                                                 dropna=False):
        by_null = grp.set_index("null")
        sig, notsig, untested = [], [], []
        for n in nulls:
            s = by_null["significant"].get(n, pd.NA)
            if pd.isna(s):
                untested.append(n)
            elif bool(s):
                sig.append(n)
            else:
                notsig.append(n)
        verdict = "all" if len(sig) == len(nulls) else "none" if not sig else "depends"
        liberal = [n for n in sig if kind[n] == "liberal"]
        liberal_only = bool(sig) and len(liberal) == len(sig) and verdict != "all"
        stat = by_null["statistic"].get(primary, grp["statistic"].iloc[0])
        what = _what(test, coll, item, stat)
        crit = f"p_spin < {alpha:g}" if test == "pls" else f"q < {alpha:g}"
        labels = {n: _null_label(n, info.loc[n], primary) for n in nulls}
        if verdict == "all":
            sentence = (f"{what} is significant ({crit}) under every null: "
                        f"{', '.join(labels[n] for n in sig)}.")
        elif verdict == "none":
            sentence = f"{what} does not reach {crit} under any null."
        else:
            sentence = (f"{what} is significant ({crit}) under "
                        f"{', '.join(labels[n] for n in sig)} but not under "
                        f"{', '.join(labels[n] for n in notsig + untested)}: the conclusion "
                        "depends on the choice of null.")
            if liberal_only:
                sentence += (" Every null that makes it significant is liberal (calibrated "
                             f"FPR well above {alpha:g}), so it is not robust.")
        if untested:
            sentence += f" No p value under {', '.join(untested)} (no usable null maps or item)."
        rows.append(dict(test=test, collection=coll, item=item, verdict=verdict,
                         n_nulls=len(nulls), n_significant=len(sig),
                         significant_under=";".join(sig), not_significant_under=";".join(notsig),
                         untested_under=";".join(untested),
                         primary_significant=primary in sig, liberal_under=";".join(liberal),
                         liberal_only=liberal_only, sentence=sentence))
    return pd.DataFrame(rows, columns=VERDICT_COLUMNS)
