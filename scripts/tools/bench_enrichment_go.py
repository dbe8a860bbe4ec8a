"""Benchmark gene-set enrichment at GO scale: thousands of sets, memory-bounded.

Shapes (defaults): 15,633 genes, 34 regions (DK left cortex), 10,000 null maps,
5,000 synthetic gene sets of 10-200 genes (seeded, like GO biological-process
terms after size filtering). Times, in one run:

* a bare float64 matrix product (n_nulls x n_genes) @ (n_genes x n_sets), the
  cost of the direct route (every null gene correlation times the membership),
  as the baseline;
* the spatial part of set enrichment: ``itx.association.correlate_genes`` with
  the sparse membership (every gene's null correlations and p_spin, every
  set's null scores by projection, exceedances counted on the fly, p_spatial),
  and the second pass that recomputes the null scores of the top sets
  (``itx.association.null_set_scores``), with their ratio to the baseline;
* the random-gene, rank and overlap tests (``itx.enrichment``) on the same
  sets, each on its own;
* the whole ``itx.analysis.set_enrichment`` (matching, spatial null, random
  gene null, rank and overlap tests, nulls of the top sets);
* peak memory (tracemalloc) of the spatial part and of ``set_enrichment``,
  against the n_nulls x n_sets float64 matrix they never hold.

The null maps are random permutations of the map (the shape and rank
structure of parcel spins); ``--gaps k`` blanks k random rows of every null
map, as spins moving regions without data onto the regions tested do, so the
null maps fall into hundreds of NaN patterns (each re-ranks the expression and
projects it onto the sets once). Ratios are printed, never asserted.

Usage: python scripts/tools/bench_enrichment_go.py [--genes 15633] [--sets 5000]
       [--nulls 10000] [--regions 34] [--n-random 10000] [--gaps 0]
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np
import pandas as pd
from scipy import sparse

from itx import analysis, enrichment
from itx.association import correlate_genes, null_set_scores


def best_time(fn, repeat):
    """Minimum wall time over ``repeat`` runs (least disturbed by other load)."""
    best = np.inf
    out = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def peak_mib(fn):
    """Peak traced memory (MiB) of one call of ``fn`` (numpy allocations included)."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def bare_product(args) -> float:
    """Best time of (n_nulls x n_genes) @ (n_genes x n_sets), float64 (the baseline)."""
    rng = np.random.default_rng(args.seed + 1)
    a = rng.random((args.nulls, args.genes))
    b = rng.random((args.genes, args.sets))
    return best_time(lambda: a @ b, args.repeat)[0]


def synthetic(args):
    """Expression, map, null maps and gene sets of the requested shapes (seeded)."""
    rng = np.random.default_rng(args.seed)
    expression = rng.random((args.regions, args.genes))
    y = rng.normal(size=args.regions)
    nulls = y[np.argsort(rng.random((args.regions, args.nulls)), axis=0)]
    if args.gaps:
        rows = np.argsort(rng.random((args.regions, args.nulls)), axis=0)[:args.gaps]
        nulls[rows, np.arange(args.nulls)] = np.nan
    genes = [f"G{i}" for i in range(args.genes)]
    hi = min(args.max_size, args.genes)
    sizes = rng.integers(min(args.min_size, hi), hi + 1, size=args.sets)
    members = [rng.choice(args.genes, k, replace=False) for k in sizes]
    sets = {f"GO:{j:07d}": [genes[g] for g in idx] for j, idx in enumerate(members)}
    rows = np.concatenate(members) if members else np.zeros(0, dtype=np.int64)
    cols = np.repeat(np.arange(args.sets), sizes)
    membership = sparse.csc_array((np.ones(rows.size), (rows, cols)),
                                  shape=(args.genes, args.sets))
    aligned = analysis.Aligned(expression=expression, y=y, nulls=nulls, genes=genes,
                               regions=[f"R{i}" for i in range(args.regions)],
                               excluded=pd.DataFrame(columns=["region", "reason"]), name="bench")
    return aligned, sets, membership


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=15_633)
    ap.add_argument("--sets", type=int, default=5_000)
    ap.add_argument("--nulls", type=int, default=10_000)
    ap.add_argument("--regions", type=int, default=34, help="34: DK left cortex")
    ap.add_argument("--n-random", type=int, default=10_000)
    ap.add_argument("--min-size", type=int, default=10)
    ap.add_argument("--max-size", type=int, default=200)
    ap.add_argument("--gaps", type=int, default=0, help="NaN rows per null map")
    ap.add_argument("--top", type=int, default=20, help="sets whose null scores are kept")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if not 0 <= args.gaps <= args.regions - 3:
        ap.error("--gaps must leave at least 3 rows per null map")
    say = lambda s: print(s, flush=True)  # noqa: E731
    say(f"numpy {np.__version__}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    aligned, sets, membership = synthetic(args)
    x, y, nulls = aligned.expression, aligned.y, aligned.nulls
    say(f"== genes={args.genes} regions={args.regions} nulls={args.nulls} sets={args.sets} "
        f"(sizes {args.min_size}-{args.max_size}, {membership.nnz:,} memberships) "
        f"gaps={args.gaps} n_random={args.n_random} (best of {args.repeat})")
    correlate_genes(x, y, nulls[:, :8], set_matrix=membership)  # warm up BLAS

    # --- spatial part: gene nulls + set nulls by projection + counts + p ------
    def spatial():
        return correlate_genes(x, y, nulls, set_matrix=membership, keep_set_nulls=False)

    t_spatial, res = best_time(spatial, args.repeat)
    top = np.argsort(res.set_null.p, kind="stable")[:args.top]
    t_top, top_nulls = best_time(
        lambda: null_set_scores(x, y, nulls, membership[:, top]), args.repeat)

    # --- other tests, each on its own ----------------------------------------
    r = res.r
    t_random, _ = best_time(
        lambda: enrichment.random_gene_enrichment(r, membership, args.n_random, 1), args.repeat)
    t_rank, _ = best_time(
        lambda: enrichment.rank_enrichment(r, membership, args.n_random, 2), args.repeat)
    t_overlap, _ = best_time(lambda: [
        enrichment.overlap_enrichment(r, membership, 0.1, side, args.n_random, 3)
        for side in ("top", "bottom")], args.repeat)

    # --- the whole set_enrichment ---------------------------------------------
    def whole():
        return analysis.set_enrichment(aligned, sets, min_genes=1, n_random=args.n_random,
                                       seed=0, n_null_sets=args.top)

    t_whole, enr = best_time(whole, args.repeat)
    mem_spatial = peak_mib(spatial)
    mem_whole = peak_mib(whole)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10

    # --- baseline: the bare dense product of the same shapes ------------------
    t_mm = bare_product(args)

    full = args.nulls * args.sets * 8 / 2**20
    t_sp = t_spatial + t_top
    say(f"bare float64 product ({args.nulls} x {args.genes}) @ ({args.genes} x {args.sets}): "
        f"{t_mm:8.2f} s")
    say(f"spatial part: correlate_genes (genes + {args.sets} set nulls + p):   {t_spatial:8.2f} s")
    say(f"  second pass, null scores of the top {args.top} sets:               {t_top:8.2f} s")
    say(f"  ratio spatial part (both passes) / bare product:              {t_sp / t_mm:8.3f}")
    say(f"random-gene null (n_random={args.n_random}):                         {t_random:8.2f} s")
    say(f"rank test (n_random={args.n_random}):                                {t_rank:8.2f} s")
    say(f"overlap tests, top and bottom (n_random={args.n_random}):            {t_overlap:8.2f} s")
    say(f"whole set_enrichment:                                           {t_whole:8.2f} s "
        f"(ratio to bare product {t_whole / t_mm:.2f})")
    say(f"peak memory (tracemalloc): spatial part {mem_spatial:,.0f} MiB, set_enrichment "
        f"{mem_whole:,.0f} MiB (inputs {(x.nbytes + nulls.nbytes) / 2**20:,.0f} MiB; an "
        f"n_nulls x n_sets float64 matrix would be {full:,.0f} MiB); process max RSS before "
        f"the baseline {rss_before:,.0f} MiB")
    p = res.set_null.p
    say(f"sanity: median p_spatial {np.nanmedian(p):.3f} (about 0.5 expected); top-set nulls "
        f"{top_nulls.shape}; table {enr.table.shape}, nulls kept {enr.null_scores.shape}")
    return dict(t_mm=t_mm, t_spatial=t_spatial, t_top=t_top, ratio=t_sp / t_mm,
                t_random=t_random, t_rank=t_rank, t_overlap=t_overlap, t_whole=t_whole,
                peak_spatial_mib=mem_spatial, peak_whole_mib=mem_whole, full_mib=full,
                n_sets=int(enr.table.shape[0]), null_columns=list(enr.null_scores.columns))


if __name__ == "__main__":
    main()
