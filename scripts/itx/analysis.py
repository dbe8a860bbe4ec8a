"""Per-map analyses: align expression, map and nulls, then test genes and gene sets.

The stage modules (:mod:`itx.association`, :mod:`itx.enrichment`) work on
plain arrays. This module does the one thing they must not guess: which
regions enter a test. A region is used when it is in the analysis scope (the
regions the nulls were made for), has expression for every gene, and has a
finite map value. Null maps are made over the whole scope first (so that the
same spins serve every map) and then restricted to those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import pandas as pd

from . import association, enrichment, genesets, tailp
from .coverage import region_use

#: Fewer usable regions than this makes any correlation meaningless.
MIN_REGIONS = 5


@dataclass
class Aligned:
    """Inputs of one map's tests, restricted to the usable regions.

    Attributes
    ----------
    expression : numpy.ndarray
        (n_used, n_genes) expression.
    y : numpy.ndarray
        (n_used,) map values.
    nulls : numpy.ndarray
        (n_used, n_perm) null maps (may hold NaN where a spin moved a region
        without a map value onto a used region).
    genes : list of str
        Gene symbols, columns of `expression`.
    regions : list of str
        Regions used, rows of every array.
    excluded : pandas.DataFrame
        Scope regions not used, with the reason.
    name : str, optional
        The map's name, for messages.
    """

    expression: np.ndarray
    y: np.ndarray
    nulls: np.ndarray
    genes: list
    regions: list
    excluded: pd.DataFrame
    name: Optional[str] = None

    @property
    def n_perm(self) -> int:
        """Null maps made (columns of `nulls`)."""
        return int(self.nulls.shape[1])


def align(expression, map_values, nulls, null_regions, name=None):
    """Restrict expression, a map and its spin nulls to the usable regions.

    Parameters
    ----------
    expression : pandas.DataFrame
        ``results/{atlas}/expression.tsv``: first column ``region``, then genes.
    map_values : pandas.DataFrame
        ``results/{atlas}/{map}/map.tsv``: columns ``region`` and ``value``.
    nulls : numpy.ndarray
        (n_scope, n_perm) null maps of this map over the scope regions
        (float, from :func:`itx.nullmaps.null_maps`), or map-independent
        resampling indices (int; -1 = no value) applied to the map here.
    null_regions : sequence of str
        Scope regions, the rows of `nulls`.
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    Aligned

    Raises
    ------
    ValueError
        When fewer than :data:`MIN_REGIONS` scope regions have both
        expression and a map value.
    """
    expr = expression.set_index("region")
    values = map_values.set_index("region")["value"].astype(float)
    scope = [str(r) for r in null_regions]
    for what, index in (("expression table", expr.index), ("map table", values.index)):
        absent = [r for r in scope if r not in index]
        if absent:
            raise ValueError(
                f"{what} lacks scope region(s) {absent[:5]}: the nulls were made for another "
                "atlas or scope; rerun the spins rule for this atlas"
            )
    expr = expr.loc[scope]
    y_scope = values.loc[scope].to_numpy()
    use = region_use(scope, values, expr)
    has_expr, has_map = use["has_expression"].to_numpy(), use["has_map_value"].to_numpy()
    used = use["used"].to_numpy()
    reasons = np.where(~has_expr & ~has_map, "no expression and no map value",
                       np.where(~has_expr, "no expression (no AHBA sample)", "no map value"))
    excluded = pd.DataFrame({"region": np.array(scope)[~used], "reason": reasons[~used]})
    if used.sum() < MIN_REGIONS:
        label = f"map {name!r}" if name is not None else "the map"
        raise ValueError(
            f"{label}: only {int(used.sum())} of the {len(scope)} scope regions have both "
            f"expression and a map value, too few to test (at least {MIN_REGIONS} needed). Give "
            "the map values in more regions, or choose a scope / atlas that the map and the "
            "AHBA samples cover (the map's coverage.tsv says why each region is not used); "
            f"not used: {excluded.to_dict('records')[:10]}"
        )
    nulls = np.asarray(nulls)
    if nulls.ndim != 2 or nulls.shape[0] != len(scope):
        raise ValueError(f"null maps of shape {nulls.shape} for {len(scope)} scope regions")
    if nulls.dtype.kind in "iu":
        from .nullmaps import apply_index

        nulls = apply_index(y_scope, nulls)
    nulls = np.asarray(nulls, dtype=np.float64)[used]
    return Aligned(
        expression=expr.to_numpy(float)[used],
        y=y_scope[used],
        nulls=nulls,
        genes=[str(g) for g in expr.columns],
        regions=list(np.array(scope)[used]),
        excluded=excluded,
        name=None if name is None else str(name),
    )


def gene_association(aligned, method="spearman", tail="none"):
    """Correlate every gene with the map; p values from the spatial nulls.

    Parameters
    ----------
    aligned : Aligned
        From :func:`align`.
    method : {'spearman', 'pearson'}
        Correlation.
    tail : {'none', 'gpd'}
        ``'gpd'`` adds ``p_gpd, q_gpd, tail_method`` after ``q_spin``: p
        values beyond the permutation floor (:mod:`itx.tailp`).

    Returns
    -------
    pandas.DataFrame
        ``gene, r, p_spin, q_spin, p_naive, q_naive`` (see
        :func:`itx.association.gene_table`).
    """
    keep = int(tailp.tail_size(aligned.n_perm)) + 1 if tailp.check_tail(tail) == "gpd" else 0
    res = association.correlate_genes(aligned.expression, aligned.y, aligned.nulls, method=method,
                                      keep_tail=keep)
    association.report_null_use(res.n_valid_null, aligned.n_perm, what="genes (p_spin)",
                                name=aligned.name, n_regions=len(aligned.regions),
                                defined=np.isfinite(res.r))
    return association.gene_table(aligned.genes, res, tail=tail)


@dataclass
class EnrichmentResult:
    """Outputs of :func:`set_enrichment`."""

    table: pd.DataFrame
    sets: pd.DataFrame
    null_scores: pd.DataFrame


#: ``rank_alternative`` (direction on the gene ranking) -> tail of the median rank.
_RANK_TAILS = {"two-sided": "two-sided", "top": "less", "bottom": "greater"}

#: Sets matched per call of :func:`itx.genesets.match_gene_sets`, whose membership
#: is dense (n_genes x sets float64: 32 MB for 256 sets of 15,633 genes); each
#: block is made sparse before the next, so a GO collection never exists densely.
_MATCH_BLOCK = 256


def _match_sparse(sets, genes, min_genes, aliases, max_genes):
    """Match gene sets block by block; membership as a sparse CSC matrix.

    Returns
    -------
    membership : scipy.sparse.csc_array, shape (n_genes, n_kept)
        0/1, the kept sets in the order of `sets`.
    names : list of str
        Kept sets, columns of `membership`.
    report : pandas.DataFrame
        :func:`itx.genesets.match_gene_sets`'s report, one row per input set.
    """
    import warnings

    from scipy import sparse

    options = {} if max_genes is None else {"max_genes": max_genes}
    items = list(sets.items())
    blocks, names, reports = [], [], []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for a in range(0, max(len(items), 1), _MATCH_BLOCK):
            member, report = genesets.match_gene_sets(dict(items[a:a + _MATCH_BLOCK]), genes,
                                                      min_genes, aliases=aliases, **options)
            blocks.append(sparse.csc_array(member.to_numpy(np.float64)))
            names += [str(c) for c in member.columns]
            reports.append(report)
    # each block repeats the warnings about the expression genes: give each once
    seen = set()
    for w in caught:
        key = (str(w.message), w.category)
        if key not in seen:
            seen.add(key)
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    membership = sparse.csc_array(sparse.hstack(blocks, format="csc"))
    return membership, names, pd.concat(reports, ignore_index=True)


def set_enrichment(aligned, sets, *, method="spearman", min_genes=5, n_random=10000,
                   alternative="two-sided", seed=0, aliases=None, ranking=None,
                   rank_alternative="two-sided", overlap_fraction=0.1, tail="none",
                   max_genes=None, n_null_sets=20):
    """Score gene sets by their genes' mean r and test them against two nulls,
    a competitive rank test and top/bottom overlaps.

    One path for any collection size: seven cell classes or thousands of GO
    terms. The membership is sparse, the spatial null is counted while the
    null maps stream past (:func:`itx.association.correlate_genes`), and
    null scores are kept only for the sets shown (``n_null_sets``).

    Parameters
    ----------
    aligned : Aligned
        From :func:`align`.
    sets : dict
        Set name -> gene symbols (see :func:`itx.genesets.read_gene_sets`).
    method : {'spearman', 'pearson'}
        Correlation.
    min_genes : int
        Sets with fewer genes found in the expression matrix are skipped.
    n_random : int
        Size-matched random gene sets for ``p_random``, ``p_rank`` and the
        overlap permutation p values.
    alternative : {'two-sided', 'greater', 'less'}
        Tail of the spatial and random-gene tests (on the set score).
    seed : int
        Seed of the random gene sets (each test draws from its own stream
        derived from it).
    aliases : pandas.DataFrame or dict, optional
        Alias -> current symbol, for matching (see
        :func:`itx.genesets.alias_table`).
    ranking : array_like, shape (n_genes,), optional
        Gene ranking statistic for the rank and overlap tests, in the order
        of ``aligned.genes`` (e.g. PLS1 weights); default the genes' r with
        the map.
    rank_alternative : {'two-sided', 'top', 'bottom'}
        Competitive rank test: ``'top'`` asks whether the set's median rank
        is nearer the top of the ranking (highest values) than size-matched
        random sets, ``'bottom'`` nearer the bottom; ``'two-sided'`` is
        equal-tailed.
    overlap_fraction : float
        Share of ranked genes in the top (and in the bottom) list for the
        overlap tests, in (0, 1).
    tail : {'none', 'gpd'}
        ``'gpd'`` adds ``p_gpd, q_gpd, tail_method`` after ``q_spatial``
        (see :func:`itx.enrichment.enrichment_table`).
    max_genes : int, optional
        Sets with more genes found are skipped (passed to
        :func:`itx.genesets.match_gene_sets`; None = no limit).
    n_null_sets : int or None
        Sets whose spatial null scores are returned: the first
        ``n_null_sets`` rows of the table (smallest ``p_spatial``, then
        largest ``|score|``), recomputed for them in a second pass over the
        null maps; a collection of at most ``n_null_sets`` sets keeps every
        set, from the first pass. None keeps every set
        (``n_perm x n_sets`` float64).

    Returns
    -------
    EnrichmentResult
        ``table`` (``set, n_genes, score, p_spatial, q_spatial, p_random,
        q_random``, then ``median_rank, p_rank, q_rank, n_list`` and, for
        ``top`` and ``bottom``, ``overlap_*, expected_*, odds_ratio_*,
        p_hypergeom_*, q_hypergeom_*, p_perm_*, q_perm_*``), ``sets``
        (per-set matching report) and ``null_scores`` (n_perm rows, the
        spatial ensemble null; one column per kept set, in the collection's
        order when every set is kept, else the top sets in table order). q
        values are Benjamini-Hochberg over all the sets of the table.
    """
    if rank_alternative not in _RANK_TAILS:
        raise ValueError(f"rank_alternative must be one of {sorted(_RANK_TAILS)}, "
                         f"got {rank_alternative!r}")
    if n_null_sets is not None and (
            isinstance(n_null_sets, (bool, np.bool_))
            or not isinstance(n_null_sets, (int, np.integer)) or n_null_sets < 1):
        raise ValueError(f"n_null_sets must be a positive integer or None (every set), "
                         f"got {n_null_sets!r}")
    keep_tail = int(tailp.tail_size(aligned.n_perm)) + 1 if tailp.check_tail(tail) == "gpd" else 0
    membership, names, report = _match_sparse(sets, aligned.genes, min_genes, aliases, max_genes)
    if not names:
        raise ValueError(
            f"no gene set has at least {min_genes} genes in the expression matrix; "
            "check gene symbols or lower enrichment.min_genes"
        )
    keep_all = n_null_sets is None or len(names) <= n_null_sets
    res = association.correlate_genes(
        aligned.expression, aligned.y, aligned.nulls, method=method, set_matrix=membership,
        set_alternative=alternative, keep_set_nulls=keep_all, keep_set_tail=keep_tail,
    )
    table = enrichment.enrichment_table(
        res.r, membership, res.set_null, n_random=n_random, seed=seed,
        alternative=alternative, tail=tail, set_names=names,
    )
    association.report_null_use(
        res.set_null.n_null, aligned.n_perm, what="gene-set enrichment (p_spatial)",
        name=aligned.name, n_regions=len(aligned.regions),
        defined=np.isfinite(res.set_null.score))
    scores = res.r if ranking is None else np.asarray(ranking, dtype=np.float64)
    if scores.shape != (len(aligned.genes),):
        raise ValueError(f"ranking has shape {scores.shape}; expected ({len(aligned.genes)},), "
                         "one value per expression gene")
    # separate streams, so adding a test never changes another test's draws
    rank = enrichment.rank_enrichment(scores, membership, n_random,
                                      np.random.SeedSequence([seed, 1]),
                                      alternative=_RANK_TAILS[rank_alternative])
    extra = pd.DataFrame({"set": names,
                          "median_rank": rank["median_rank"].to_numpy(),
                          "p_rank": rank["p_rank"].to_numpy(),
                          "q_rank": association.fdr_bh(rank["p_rank"].to_numpy())})
    for k, side in enumerate(("top", "bottom"), start=2):
        ov = enrichment.overlap_enrichment(scores, membership, fraction=overlap_fraction,
                                           tail=side, n_random=n_random,
                                           seed=np.random.SeedSequence([seed, k]))
        if side == "top":
            extra["n_list"] = ov["n_list"].to_numpy()
        for col in ("overlap", "expected", "odds_ratio", "p_hypergeom", "p_perm"):
            extra[f"{col}_{side}"] = ov[col].to_numpy()
            if col.startswith("p_"):
                extra[f"q{col[1:]}_{side}"] = association.fdr_bh(ov[col].to_numpy())
    table = table.merge(extra, on="set", how="left", validate="one_to_one")
    if keep_all:
        nulls = pd.DataFrame(res.null_set_scores, columns=names)
    else:
        top = [str(s) for s in table["set"].iloc[:n_null_sets]]
        column = {name: j for j, name in enumerate(names)}
        values = association.null_set_scores(
            aligned.expression, aligned.y, aligned.nulls,
            membership[:, [column[s] for s in top]], method=method)
        nulls = pd.DataFrame(values, columns=top)
    return EnrichmentResult(table=table, sets=report, null_scores=nulls)


@dataclass
class PLSAnalysis:
    """Outputs of :func:`pls_analysis`."""

    components: pd.DataFrame
    genes: pd.DataFrame
    scores: pd.DataFrame


def pls_analysis(aligned, *, n_components=3, n_boot=1000, seed=0):
    """PLS regression of the map on all genes, tested against the spatial nulls.

    Variance explained by PLS1..k is compared with the same quantity for PLS
    refitted on every null map (Whitaker 2016, Morgan 2019, Seidlitz 2020);
    PLS1 gene weights get a bootstrap SD from resampled regions and
    ``Z = weight / SD``, whose ranking feeds the rank enrichment tests.

    Parameters
    ----------
    aligned : Aligned
        From :func:`align`.
    n_components : int
        Components reported.
    n_boot : int
        Bootstrap resamples of regions for the PLS1 weights.
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    PLSAnalysis
        ``components`` (``component, explained, p_spin, n_null``): a null
        map with missing values (a region without a map value spun onto a
        used region, a parcel spun into the medial wall) is refitted over
        the regions it has (:func:`itx.pls.pls_null`); null maps with fewer
        than 4 values, or constant, are left out and ``n_null`` says how
        many were used; with ``n_null`` 0, ``p_spin`` is NaN. ``genes``
        (``gene, weight, sd, z, rank``, rank 1 = highest Z); ``scores``
        (``region, map, pls1``).
    """
    from . import pls

    X, y = aligned.expression, aligned.y
    n_components = int(min(n_components, X.shape[0] - 1))
    fit = pls.pls_fit(X, y, n_components)
    null = pls.pls_null(X, aligned.nulls, n_components)
    ok = np.isfinite(null)
    exceed = ((null >= fit.explained[None, :] - 1e-12) & ok).sum(axis=0)
    n_null = ok.sum(axis=0)
    # no refitted null map: no null distribution, so no p
    p = np.where(n_null > 0, (1 + exceed) / (1 + np.maximum(n_null, 1)), np.nan)
    association.report_null_use(n_null, aligned.n_perm, what="PLS (p_spin)", name=aligned.name,
                                n_regions=X.shape[0], min_rows=pls.MIN_PLS_REGIONS)
    components = pd.DataFrame({"component": [f"PLS{i + 1}" for i in range(n_components)],
                               "explained": fit.explained, "p_spin": p, "n_null": n_null})
    w, sd, z = pls.bootstrap_weights(X, y, n_boot=n_boot, seed=seed)
    genes = pd.DataFrame({"gene": aligned.genes, "weight": w, "sd": sd, "z": z})
    genes["rank"] = genes["z"].rank(ascending=False, method="min").astype("Int64")
    genes = genes.sort_values("z", ascending=False, kind="mergesort").reset_index(drop=True)
    scores = pd.DataFrame({"region": aligned.regions, "map": y, "pls1": fit.scores})
    return PLSAnalysis(components=components, genes=genes, scores=scores)


def compare_all(maps, null_maps, *, method="spearman"):
    """Every map against every other map of an atlas, each with its own nulls.

    Parameters
    ----------
    maps : dict
        Map name -> ``map.tsv`` table (``region, value``).
    null_maps : dict
        Map name -> (values (n_scope, n_perm), scope regions) of that map.
    method : {'spearman', 'pearson'}
        Correlation.

    Returns
    -------
    pandas.DataFrame
        ``map, other, r, p_spin, p_naive, n_regions``: for each ordered pair,
        the correlation over the scope regions where both maps have values,
        tested against the nulls of ``map`` (so each unordered pair appears
        twice, once per null).
    """
    from .compare import compare_maps

    rows = []
    for name, (nulls, regions) in null_maps.items():
        regions = [str(r) for r in regions]
        x = maps[name].set_index("region")["value"].astype(float).reindex(regions).to_numpy()
        n_null, defined = [], []
        for other, table in maps.items():
            if other == name:
                continue
            o = table.set_index("region")["value"].astype(float).reindex(regions).to_numpy()
            used = np.isfinite(x) & np.isfinite(o)
            if used.sum() < MIN_REGIONS:
                raise ValueError(
                    f"maps {name!r} and {other!r} share only {int(used.sum())} scope regions "
                    f"where both have a value, too few to compare them (at least {MIN_REGIONS} "
                    "needed); give the maps values in more common regions, or restrict one of "
                    "them to another atlas (the maps sheet's atlas column)")
            null_used = np.asarray(nulls, dtype=np.float64)[used]
            res = compare_maps(x[used], o[used], null_used, method=method, names=[other])
            # compare_maps' p is NaN exactly when no null map gave a correlation
            n_null.append(0 if np.isnan(res["p_spin"].iloc[0])
                          else int(association.usable_nulls(null_used).sum()))
            defined.append(bool(np.isfinite(res["r"].iloc[0])))
            res = res.rename(columns={"map": "other"})
            res.insert(0, "map", name)
            rows.append(res)
        association.report_null_use(n_null, np.shape(nulls)[1],
                                    what="comparisons with the other maps (p_spin)", name=name,
                                    defined=defined)
    if not rows:
        return pd.DataFrame(columns=["map", "other", "r", "p_spin", "p_naive", "n_regions"])
    out = pd.concat(rows, ignore_index=True)
    return out
