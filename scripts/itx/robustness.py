"""Donor robustness: a map's gene and gene-set results on subsets of the AHBA donors.

The AHBA has six donors, four of them left hemisphere only; a reviewer may ask
whether a finding rests on one of them. The expression stage writes each
donor's region x gene matrix beside the aggregated one; here the aggregation
across donors is redone for subsets of the donors (all of them, each donor
left out, each donor alone) and every gene's r and every gene set's score are
recomputed against the same map and the same spatial null maps.

The aggregation is the across-donor step of :func:`itx.expression._process`
(``region_agg: donors``): for each region, the mean (or median) over the
donors with a value there, skipping donors without samples in that region;
then every gene without a value in some region that has data is dropped. With
all donors it reproduces ``results/{atlas}/expression.tsv``.

The statistics are the workflow's own: :func:`itx.analysis.align` picks the
regions, :func:`itx.association.correlate_genes` gives r and the spatial p of
the genes and the spatial ensemble null of the sets,
:func:`itx.genesets.match_gene_sets` matches the sets, and
:func:`itx.enrichment.set_scores` / :func:`itx.enrichment.spatial_enrichment`
give the set scores and their p. The random-gene, rank and overlap tests of
the enrichment stage are not repeated.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional

import numpy as np
import pandas as pd

from . import analysis, association, enrichment, genesets

LGR = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MIN_FRACTION",
    "DonorRobustness",
    "DonorSubset",
    "aggregate_donors",
    "check_matches_expression",
    "donor_robustness",
    "donor_subsets",
    "plot_donor_robustness",
    "subset_statistics",
]

#: A subset (other than "all") is analysed only when it has expression in at
#: least this share of the reference regions (the regions the all-donor
#: analysis of the map uses). Below it, a difference from the all-donor result
#: would mostly say which regions were tested, not which donors.
DEFAULT_MIN_FRACTION = 0.5

_AGG = ("mean", "median")

#: Columns of the tables :func:`subset_statistics` returns.
GENE_COLUMNS = ["subset", "kind", "donor", "n_donors", "included", "reason", "n_regions",
                "frac_regions", "n_genes", "r_vs_all", "sign_agree", "frac_p05", "n_q05",
                "n_q05_shared"]
SET_COLUMNS = ["subset", "kind", "donor", "n_regions", "set", "n_genes", "score", "p_spatial",
               "q_spatial", "score_all", "p_spatial_all", "q_spatial_all", "delta_score",
               "same_sign", "significant", "significant_all", "agrees"]


@dataclass
class DonorSubset:
    """One subset of the donors and its aggregated region x gene matrix.

    Attributes
    ----------
    name : str
        ``all``, ``without_<donor>`` or ``only_<donor>``.
    kind : {'all', 'leave_out', 'alone'}
    donor : str
        The donor left out or kept alone; ``""`` for ``all``.
    donors : tuple of str
        Donors aggregated.
    n_regions : int
        Reference regions (see :func:`donor_subsets`) with expression for
        every gene in this subset; :func:`subset_statistics` sets it to the
        regions tested (scope regions with a map value and expression).
    fraction : float
        ``n_regions`` / number of reference regions.
    included : bool
        Whether the subset is analysed.
    reason : str
        Why not, empty when included.
    expression : pandas.DataFrame or None
        ``region`` + genes, like ``expression.tsv``; None for an excluded subset.
    """

    name: str
    kind: str
    donor: str
    donors: tuple
    n_regions: int
    fraction: float
    included: bool
    reason: str = ""
    expression: Optional[pd.DataFrame] = field(default=None, repr=False)


def _check_donor_tables(donor_matrices):
    """Donor id -> (regions, genes, values) after checking they are one run's tables."""
    if not isinstance(donor_matrices, Mapping) or len(donor_matrices) == 0:
        raise ValueError("donor_matrices must be a non-empty dict of donor id -> region x gene "
                         "table (results/{atlas}/donors/expression_{donor}.tsv)")
    first_regions = first_genes = None
    out = {}
    for donor, table in donor_matrices.items():
        if "region" not in table.columns:
            raise ValueError(f"the expression table of donor {donor} has no 'region' column; "
                             "give results/{atlas}/donors/expression_{donor}.tsv as written by "
                             "the expression rule")
        regions = table["region"].astype(str).to_list()
        genes = [str(c) for c in table.columns if c != "region"]
        if first_regions is None:
            first_regions, first_genes, first = regions, genes, donor
        elif regions != first_regions or genes != first_genes:
            what = "regions" if regions != first_regions else "genes"
            raise ValueError(
                f"the expression tables of donors {first} and {donor} have different {what}; "
                "they come from different runs of the expression rule: rerun it so that every "
                "results/{atlas}/donors/expression_{donor}.tsv is from the same run")
        values = table.drop(columns="region").to_numpy(dtype=np.float64)
        if np.isinf(values).any():
            raise ValueError(f"the expression table of donor {donor} has infinite values")
        out[str(donor)] = values
    if len(set(first_regions)) != len(first_regions):
        raise ValueError("the donor expression tables repeat a region; give one row per region")
    return first_regions, first_genes, out


def _aggregate(values, agg_metric):
    """Mean or median over donors of (n_regions, n_genes) arrays, NaN skipped."""
    if agg_metric == "mean":
        # running sums over donors: memory of two matrices, whatever the number of donors
        total = np.zeros_like(values[0])
        count = np.zeros(values[0].shape, dtype=np.int64)
        for v in values:
            ok = np.isfinite(v)
            total += np.where(ok, v, 0.0)
            count += ok
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)
    with warnings.catch_warnings():
        # regions without any donor's sample: all-NaN slices, NaN wanted
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(np.stack(values), axis=0)


def aggregate_donors(donor_matrices, agg_metric="mean", donors=None):
    """Aggregate per-donor region x gene tables across donors, as the expression rule does.

    Parameters
    ----------
    donor_matrices : dict
        Donor id -> ``results/{atlas}/donors/expression_{donor}.tsv`` as a
        DataFrame (``region`` + genes; empty rows where the donor has no
        sample). All tables must have the same regions and genes.
    agg_metric : {'mean', 'median'}
        ``expression.agg_metric``.
    donors : sequence of str, optional
        Donors to aggregate (default all).

    Returns
    -------
    pandas.DataFrame
        ``region`` + genes: per region, the `agg_metric` over the donors with
        a value (donors without samples there are skipped; NaN when none has
        one). Genes without a value in some region that has data are dropped,
        as abagen does (:func:`itx.expression._process`).
    """
    if agg_metric not in _AGG:
        raise ValueError(f"agg_metric must be one of {_AGG}, got {agg_metric!r} "
                         "(expression.agg_metric)")
    regions, genes, values = _check_donor_tables(donor_matrices)
    donors = list(values) if donors is None else [str(d) for d in donors]
    unknown = [d for d in donors if d not in values]
    if unknown or not donors:
        raise ValueError(f"donors {unknown or donors} are not among the donor tables "
                         f"{sorted(values)}; choose some of those")
    agg = _aggregate([values[d] for d in donors], agg_metric)
    finite = np.isfinite(agg)
    has_data = finite.any(axis=1)
    keep = finite[has_data].all(axis=0)
    out = pd.DataFrame(agg[:, keep], columns=np.asarray(genes, dtype=object)[keep])
    out.insert(0, "region", regions)
    return out


def check_matches_expression(aggregated, expression, *, rtol=1e-7, atol=1e-9):
    """Check that the all-donor aggregate equals ``expression.tsv``.

    A guard against per-donor tables and an aggregated matrix from different
    runs (or a ``region_agg: samples`` matrix, which is not a donor aggregate).

    Parameters
    ----------
    aggregated : pandas.DataFrame
        :func:`aggregate_donors` of every donor.
    expression : pandas.DataFrame
        ``results/{atlas}/expression.tsv``.
    rtol, atol : float
        Tolerances; the tables are written with 10 significant digits.

    Raises
    ------
    ValueError
        When regions, genes or values differ.
    """
    a = aggregated.set_index("region")
    e = expression.set_index("region")
    a.index, e.index = a.index.astype(str), e.index.astype(str)
    a.columns, e.columns = a.columns.astype(str), e.columns.astype(str)
    fix = ("rerun the expression rule so that expression.tsv and the per-donor tables come "
           "from the same run (with expression.region_agg: donors)")
    if list(a.index) != list(e.index):
        raise ValueError(f"the per-donor tables and expression.tsv have different regions; {fix}")
    if list(a.columns) != list(e.columns):
        extra = sorted(set(a.columns) ^ set(e.columns))[:5]
        raise ValueError("the aggregate of the per-donor tables and expression.tsv have "
                         f"different genes (e.g. {extra}); {fix}")
    x, y = a.to_numpy(float), e.to_numpy(float)
    same_nan = np.array_equal(np.isnan(x), np.isnan(y))
    if not same_nan or not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
        diff = np.nanmax(np.abs(x - y)) if same_nan else np.nan
        raise ValueError("the aggregate of the per-donor tables differs from expression.tsv "
                         f"(largest difference {diff:.3g}); {fix}")


def _covered(table, regions):
    """Number of `regions` where `table` has a value for every gene."""
    full = table.set_index("region").notna().all(axis=1)
    full.index = full.index.astype(str)
    return int(full.reindex([str(r) for r in regions], fill_value=False).astype(bool).sum())


def donor_subsets(donor_matrices, agg_metric="mean", *, regions=None,
                  min_fraction=DEFAULT_MIN_FRACTION):
    """All donors, each donor left out, and each donor alone, with their matrices.

    Parameters
    ----------
    donor_matrices : dict
        Donor id -> per-donor table (see :func:`aggregate_donors`).
    agg_metric : {'mean', 'median'}
        Aggregation across donors.
    regions : sequence of str, optional
        Reference regions for the coverage threshold, e.g. the regions the
        all-donor analysis of a map uses (scope regions with a map value and
        expression); default every region with all-donor expression.
    min_fraction : float
        A subset other than ``all`` is included only when it has expression
        in at least this share of the reference regions (and in at least
        :data:`itx.analysis.MIN_REGIONS` of them). A single donor's
        hemisphere coverage usually decides it; leaving one donor out rarely
        loses a region.

    Returns
    -------
    list of DonorSubset
        ``all``, then ``without_<d>`` for every donor (when there are at
        least two), then ``only_<d>`` for every donor (when there are at
        least two), in the order of `donor_matrices`. Excluded subsets are
        listed with the reason and no matrix.
    """
    if not 0 < float(min_fraction) <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction!r}")
    full = aggregate_donors(donor_matrices, agg_metric)
    if regions is None:
        has = full.set_index("region").notna().all(axis=1)
        regions = [str(r) for r in has.index[has.to_numpy()]]
    regions = [str(r) for r in regions]
    if not regions:
        raise ValueError("no reference region: no region has expression from any donor")
    donors = [str(d) for d in donor_matrices]
    plan = [("all", "all", "", tuple(donors))]
    if len(donors) > 1:
        plan += [(f"without_{d}", "leave_out", d, tuple(x for x in donors if x != d))
                 for d in donors]
        plan += [(f"only_{d}", "alone", d, (d,)) for d in donors]
    need = max(analysis.MIN_REGIONS, int(np.ceil(float(min_fraction) * len(regions) - 1e-9)))
    out = []
    for name, kind, donor, members in plan:
        table = full if kind == "all" else aggregate_donors(donor_matrices, agg_metric, members)
        n = _covered(table, regions)
        included, reason = True, ""
        if kind != "all" and n < need:
            included = False
            reason = (f"expression in {n} of the {len(regions)} reference regions, fewer than "
                      f"{need} (min_fraction {float(min_fraction):g})")
        out.append(DonorSubset(name=name, kind=kind, donor=donor, donors=members, n_regions=n,
                               fraction=n / len(regions), included=included, reason=reason,
                               expression=table if included else None))
    return out


def _memberships(collections, genes, min_genes, aliases):
    """Per collection, the membership matrix of its kept sets over `genes`."""
    out = {}
    for coll, sets in collections.items():
        with warnings.catch_warnings():
            # the duplicated-symbol warning was given by the enrichment rule already
            warnings.simplefilter("ignore", UserWarning)
            membership, _ = genesets.match_gene_sets(sets, genes, min_genes, aliases=aliases)
        out[coll] = membership
    return out


def _one_subset(aligned, collections, *, method, min_genes, alternative, aliases):
    """Gene table and, per collection, (sets, n_genes, score, p) for one subset."""
    members = _memberships(collections, aligned.genes, min_genes, aliases)
    blocks = [m.to_numpy(float) for m in members.values() if m.shape[1]]
    set_matrix = np.hstack(blocks) if blocks else None
    # one pass over the null maps gives the genes' p and every set's null
    res = association.correlate_genes(aligned.expression, aligned.y, aligned.nulls,
                                      method=method, set_matrix=set_matrix)
    association.report_null_use(res.n_valid_null, aligned.n_perm, what="genes (p_spin)",
                                name=aligned.name, n_regions=len(aligned.regions),
                                defined=np.isfinite(res.r))
    genes = association.gene_table(aligned.genes, res)
    sets, start = {}, 0
    for coll, m in members.items():
        k = m.shape[1]
        if k == 0:
            sets[coll] = pd.DataFrame({"set": [], "n_genes": [], "score": [], "p_spatial": []})
            continue
        w = m.to_numpy(float)
        null = res.null_set_scores[:, start:start + k]
        start += k
        sets[coll] = pd.DataFrame({
            "set": [str(c) for c in m.columns],
            "n_genes": w.sum(axis=0).astype(np.int64),
            "score": enrichment.set_scores(res.r, w),
            "p_spatial": enrichment.spatial_enrichment(res.r, w, null, alternative),
        })
    return genes, sets


def _gene_summary(subset, genes, ref, n_ref_regions, alpha):
    """One row of the genes table: agreement of a subset's gene results with all donors."""
    row = {"subset": subset.name, "kind": subset.kind, "donor": subset.donor,
           "n_donors": len(subset.donors), "included": subset.included,
           "reason": subset.reason, "n_regions": subset.n_regions,
           "frac_regions": subset.n_regions / n_ref_regions if n_ref_regions else np.nan}
    if genes is None:
        row.update(n_genes=0, r_vs_all=np.nan, sign_agree=np.nan, frac_p05=np.nan,
                   n_q05=np.nan, n_q05_shared=np.nan)
        return row
    g = genes.set_index("gene")
    both = g.join(ref, how="inner", rsuffix="_all")
    ok = np.isfinite(both["r"].to_numpy()) & np.isfinite(both["r_all"].to_numpy())
    r, r_all = both["r"].to_numpy()[ok], both["r_all"].to_numpy()[ok]
    defined = np.isfinite(g["p_spin"].to_numpy())
    sig = (both["q_spin"] < alpha).to_numpy()
    sig_all = (both["q_spin_all"] < alpha).to_numpy()
    row.update(
        n_genes=int(len(g)),
        r_vs_all=float(np.corrcoef(r, r_all)[0, 1]) if ok.sum() > 2 else np.nan,
        sign_agree=float(np.mean(np.sign(r) == np.sign(r_all))) if ok.any() else np.nan,
        frac_p05=(float(np.mean(g["p_spin"].to_numpy()[defined] < alpha))
                  if defined.any() else np.nan),
        n_q05=int((g["q_spin"] < alpha).sum()),
        n_q05_shared=int((sig & sig_all).sum()),
    )
    return row


def subset_statistics(subsets, map_values, nulls, null_regions, collections, *,
                      method="spearman", min_genes=5, alternative="two-sided", aliases=None,
                      alpha=0.05, name=None):
    """Gene r and spatial p, and set scores and spatial p, for every included subset.

    Parameters
    ----------
    subsets : list of DonorSubset
        From :func:`donor_subsets`; must contain ``all``.
    map_values : pandas.DataFrame
        ``map.tsv`` (``region``, ``value``).
    nulls : numpy.ndarray
        (n_scope, n_perm) null maps (or resampling indices) of the map, as
        :func:`itx.analysis.align` takes them.
    null_regions : sequence of str
        Scope regions, the rows of `nulls`.
    collections : dict
        Collection name -> (set name -> gene symbols); may be empty.
    method : {'spearman', 'pearson'}
        Correlation (``association.method``).
    min_genes : int
        Sets with fewer genes in a subset's matrix are left out of it
        (``enrichment.min_genes``).
    alternative : {'two-sided', 'greater', 'less'}
        Tail of the set test (``enrichment.alternative``).
    aliases : pandas.DataFrame or dict, optional
        Alias table for matching set symbols.
    alpha : float
        Significance level of the summary columns.
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    DonorRobustness
    """
    by_name = {s.name: s for s in subsets}
    if "all" not in by_name or not by_name["all"].included:
        raise ValueError("the subsets must include 'all' (from donor_subsets)")
    label = "the map" if name is None else str(name)
    results = {}
    for s in subsets:
        if not s.included:
            LGR.info("%s: subset %s left out: %s", label, s.name, s.reason)
            continue
        aligned = analysis.align(s.expression, map_values, nulls, null_regions,
                                 name=f"{label} [{s.name}]")
        # the regions tested: scope regions with a map value and this subset's expression
        s.n_regions = len(aligned.regions)
        results[s.name] = _one_subset(aligned, collections, method=method, min_genes=min_genes,
                                      alternative=alternative, aliases=aliases)
    n_ref = by_name["all"].n_regions
    for s in subsets:
        s.fraction = s.n_regions / n_ref if n_ref else np.nan

    ref_genes = results["all"][0].set_index("gene")[["r", "q_spin"]]
    gene_rows = [_gene_summary(s, results.get(s.name, (None,))[0], ref_genes, n_ref, alpha)
                 for s in subsets]
    genes = pd.DataFrame(gene_rows, columns=GENE_COLUMNS)

    sets = {}
    for coll in collections:
        ref = results["all"][1][coll].set_index("set")
        frames = []
        for s in subsets:
            if s.name not in results:
                continue
            t = results[s.name][1][coll].set_index("set")
            # every set of the all-donor analysis, in its order; NaN when a subset lost it
            t = t.reindex(ref.index)
            t["q_spatial"] = association.fdr_bh(t["p_spatial"].to_numpy(float))
            frames.append(t.assign(subset=s.name, kind=s.kind, donor=s.donor,
                                   n_regions=s.n_regions).reset_index())
        sets[coll] = _set_table(frames, ref, alpha)
    return DonorRobustness(genes=genes, sets=sets, subsets=list(subsets),
                           gene_tables={k: v[0] for k, v in results.items()})


def _set_table(frames, ref, alpha):
    """Long table of set results per subset, with the all-donor values beside them."""
    if not frames or ref.empty:
        return pd.DataFrame(columns=SET_COLUMNS)
    t = pd.concat(frames, ignore_index=True)
    ref_q = association.fdr_bh(ref["p_spatial"].to_numpy(float))
    all_ = pd.DataFrame({"set": ref.index, "score_all": ref["score"].to_numpy(float),
                         "p_spatial_all": ref["p_spatial"].to_numpy(float),
                         "q_spatial_all": ref_q})
    t = t.merge(all_, on="set", how="left", validate="many_to_one")
    t["n_genes"] = t["n_genes"].astype("Int64")
    t["delta_score"] = t["score"] - t["score_all"]
    scored = t["score"].notna().to_numpy()
    sig = (t["p_spatial"] < alpha).to_numpy()
    sig_all = (t["p_spatial_all"] < alpha).to_numpy()
    same = (np.sign(t["score"]) == np.sign(t["score_all"])).to_numpy()

    def flag(values):
        # a set a subset could not score (too few genes found) has no verdict
        return pd.array(np.where(scored, values, None), dtype="boolean")

    t["same_sign"] = flag(same)
    t["significant"] = flag(sig)
    t["significant_all"] = pd.array(sig_all, dtype="boolean")
    t["agrees"] = flag(sig == sig_all)
    return t[SET_COLUMNS]


@dataclass
class DonorRobustness:
    """Outputs of :func:`subset_statistics` / :func:`donor_robustness`.

    Attributes
    ----------
    genes : pandas.DataFrame
        One row per subset (:data:`GENE_COLUMNS`).
    sets : dict of pandas.DataFrame
        Collection -> one row per (included subset, set) (:data:`SET_COLUMNS`).
    subsets : list of DonorSubset
    gene_tables : dict of pandas.DataFrame
        Included subset -> its genes' ``gene, r, p_spin, q_spin, p_naive,
        q_naive`` (:func:`itx.association.gene_table`; not written by the rule).
    """

    genes: pd.DataFrame
    sets: Dict[str, pd.DataFrame]
    subsets: List[DonorSubset]
    gene_tables: Dict[str, pd.DataFrame] = field(default_factory=dict)


def donor_robustness(donor_matrices, map_values, nulls, null_regions, collections, *,
                     agg_metric="mean", min_fraction=DEFAULT_MIN_FRACTION, method="spearman",
                     min_genes=5, alternative="two-sided", aliases=None, alpha=0.05,
                     expression=None, name=None):
    """A map's gene and gene-set results with each donor left out and each donor alone.

    The reference regions of the coverage threshold are those the all-donor
    analysis of the map uses (scope regions with a map value and expression).

    Parameters
    ----------
    donor_matrices : dict
        Donor id -> ``results/{atlas}/donors/expression_{donor}.tsv``.
    map_values, nulls, null_regions, collections
        See :func:`subset_statistics`.
    agg_metric : {'mean', 'median'}
        ``expression.agg_metric``.
    min_fraction : float
        See :func:`donor_subsets`.
    method, min_genes, alternative, aliases, alpha, name
        See :func:`subset_statistics`.
    expression : pandas.DataFrame, optional
        ``results/{atlas}/expression.tsv``: when given, the all-donor
        aggregate must equal it (:func:`check_matches_expression`).

    Returns
    -------
    DonorRobustness
    """
    full = aggregate_donors(donor_matrices, agg_metric)
    if expression is not None:
        check_matches_expression(full, expression)
    ref = analysis.align(full, map_values, nulls, null_regions, name=name)
    subsets = donor_subsets(donor_matrices, agg_metric, regions=ref.regions,
                            min_fraction=min_fraction)
    return subset_statistics(subsets, map_values, nulls, null_regions, collections,
                             method=method, min_genes=min_genes, alternative=alternative,
                             aliases=aliases, alpha=alpha, name=name)


def plot_donor_robustness(table, out_png, alpha=0.05, title=None):
    """Each set's score and spatial p per donor subset.

    Left: score per subset (circles: one donor left out; triangles: one donor
    alone; coloured by that donor), the all-donor score as a black diamond.
    Right: ``p_spatial`` on a log axis with a line at `alpha`.

    Parameters
    ----------
    table : pandas.DataFrame
        A collection's table from :func:`subset_statistics` (``subset, kind,
        donor, set, score, p_spatial``).
    out_png : path-like
        Output ``.png``.
    alpha : float
        Significance line.
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The written PNG.
    """
    from .figures import new_figure, png_path, save_png

    need = ["subset", "kind", "donor", "set", "score", "p_spatial"]
    missing = [c for c in need if c not in table.columns]
    if missing:
        raise ValueError(f"table is missing columns {missing}")
    out = png_path(out_png)
    t = table[need].copy()
    t["donor"] = t["donor"].fillna("").astype(str)
    sets = list(dict.fromkeys(t["set"].astype(str)))
    fig = new_figure(9.0, 0.45 * max(len(sets), 1) + 1.8)
    ax_s, ax_p = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2, sharey=None)
    if not sets:
        ax_s.text(0.5, 0.5, "no gene set kept", ha="center", va="center",
                  transform=ax_s.transAxes)
        ax_p.set_axis_off()
        return save_png(fig, out)
    donors = [d for d in dict.fromkeys(t["donor"]) if d]
    colours = {d: f"C{i % 10}" for i, d in enumerate(donors)}
    subsets = list(dict.fromkeys(t["subset"]))
    offsets = dict(zip(subsets, np.linspace(-0.3, 0.3, len(subsets)) if len(subsets) > 1
                       else [0.0]))
    ypos = {s: len(sets) - 1 - i for i, s in enumerate(sets)}
    y = t["set"].astype(str).map(ypos).to_numpy(float) + t["subset"].map(offsets).to_numpy()
    p = t["p_spatial"].to_numpy(float)
    p_floor = np.nanmin(p[p > 0]) / 2 if np.any(p > 0) else 1e-4
    for kind, marker, size in (("leave_out", "o", 22), ("alone", "^", 26), ("all", "D", 40)):
        sel = (t["kind"] == kind).to_numpy()
        if not sel.any():
            continue
        c = ["black" if kind == "all" else colours.get(d, "0.5") for d in t["donor"][sel]]
        for ax, x in ((ax_s, t["score"].to_numpy(float)), (ax_p, np.maximum(p, p_floor))):
            ax.scatter(x[sel], y[sel], s=size, marker=marker, c=c, zorder=3 if kind == "all" else 2,
                       edgecolors="none")
    ax_s.axvline(0, color="0.6", lw=0.8)
    ax_p.set_xscale("log")
    ax_p.axvline(alpha, color="#c0392b", lw=1, ls="--")
    for ax in (ax_s, ax_p):
        ax.set_yticks(list(ypos.values()))
        ax.set_ylim(-0.6, len(sets) - 0.4)
        for k in range(len(sets) - 1):
            ax.axhline(k + 0.5, color="0.9", lw=0.6, zorder=0)
    ax_s.set_yticklabels(sets, fontsize=8)
    ax_p.set_yticklabels([])
    ax_s.set_xlabel("score (mean r of the set's genes)", fontsize=9)
    ax_p.set_xlabel(f"p_spatial (log; dashed: {alpha:g})", fontsize=9)
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], marker="D", color="black", ls="", label="all donors"),
               Line2D([], [], marker="o", color="0.4", ls="", label="donor left out"),
               Line2D([], [], marker="^", color="0.4", ls="", label="donor alone")]
    handles += [Line2D([], [], marker="s", color=colours[d], ls="", label=d) for d in donors]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 9), fontsize=7,
               frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return save_png(fig, out)
