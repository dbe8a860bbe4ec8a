"""Benchmark the expression stage against abagen alone, at full AHBA scale.

Prints wall time and peak memory (max RSS) of:

(a) a first run: parse every donor's CSVs into the cache (itx.cache),
    then select probes (itx.expression.select_probes, saved with write_selection)
    and run itx.expression.process_ahba with atlas A, against
    ``abagen.get_expression_data`` with atlas A on the same files;
(b) a rerun with atlas B reading the saved probe selection, against abagen
    alone with atlas B.

Every measurement runs in a fresh Python subprocess (so peak RSS is that
run's own), one after the other, and the region x gene matrices are checked
to be identical to abagen's. The AHBA files are read once before timing so
that every run finds them in the page cache alike.

Usage::

    .venv/bin/python scripts/tools/bench_expression.py --data-dir /tmp/ahba_full --generate

``--generate`` writes full-size AHBA-format donors there first if absent
(itx.demo: all 3,702 real wells, padded to the real 58,692 probes, values
printed with 15 significant digits like the real files; ~4 GB, ~2 min).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ATLASES = ("surface", "volume")
CACHE_JOBS = 1


def _build(args):
    from itx import cache

    data_dir, cache_dir, donor = args
    cache.build_donor_cache(data_dir / "microarray" / f"normalized_microarray_donor{donor}",
                            cache.donor_cache_dir(cache_dir, donor))


def _child(step: str, data_dir: Path, cache_dir: Path, atlas_kind: str, out: Path,
           cache_jobs: int = 1) -> None:
    """One measured run, in its own process; writes timing JSON + result pickle."""
    import resource

    import pandas as pd

    from itx import atlas as atlases
    from itx import compat, expression

    dk = atlases.load_atlas("dk", "desikan_killiany")
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    image = dk.volume if atlas_kind == "volume" else dk.surface
    image = tuple(map(str, image)) if isinstance(image, tuple) else str(image)
    start = time.perf_counter()
    if step == "abagen":
        abagen = compat.patch_abagen()

        result = abagen.get_expression_data(image, info, data_dir=str(data_dir), donors="all",
                                            verbose=0)
    else:
        if step == "first":
            jobs = [(data_dir, cache_dir, d)
                    for d in ("9861", "10021", "12876", "14380", "15496", "15697")]
            if cache_jobs > 1:
                # as `snakemake --cores N` runs the per-donor ahba_cache jobs
                from concurrent.futures import ProcessPoolExecutor

                with ProcessPoolExecutor(cache_jobs) as pool:
                    list(pool.map(_build, jobs))
            else:
                for job in jobs:
                    _build(job)
            # the atlas-independent stage, saved as the workflow's select_probes rule does
            expression.write_selection(expression.select_probes(cache_dir=cache_dir),
                                       cache_dir / "selection")
        result = expression.process_ahba(image, info,
                                         selection=cache_dir / "selection").expression
    wall = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # worker processes (cache_jobs > 1): the largest one, times the number
    # that ran at once, bounds what they held together
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    peak_mb = max(peak_mb, children * cache_jobs) if step == "first" and cache_jobs > 1 \
        else peak_mb
    pd.to_pickle(result, out.with_suffix(".pkl"))
    out.write_text(json.dumps({"wall_s": wall, "peak_mb": peak_mb}))


def _run(step, data_dir, cache_dir, atlas_kind, tmp: Path) -> dict:
    out = tmp / f"{step}_{atlas_kind}.json"
    cmd = [sys.executable, __file__, "--child", step, "--data-dir", str(data_dir),
           "--cache-dir", str(cache_dir), "--atlas", atlas_kind, "--out", str(out),
           "--cache-jobs", str(CACHE_JOBS)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stderr[-4000:]}")
    stats = json.loads(out.read_text())
    stats["result"] = out.with_suffix(".pkl")
    print(f"  {step:7s} {atlas_kind:8s} {stats['wall_s']:7.1f} s  {stats['peak_mb']:7.0f} MB",
          flush=True)
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True,
                    help="abagen data dir with microarray/normalized_microarray_donor*")
    ap.add_argument("--cache-dir", type=Path, default=None,
                    help="where to build the cache (default: <data-dir>/bench_cache)")
    ap.add_argument("--generate", action="store_true",
                    help="write full-size generated donors to --data-dir if absent")
    ap.add_argument("--first", choices=ATLASES, default="surface",
                    help="atlas of the first run (DK matched on the surface or the volume)")
    ap.add_argument("--cache-jobs", type=int, default=1,
                    help="donor caches built at once in the first run (as snakemake --cores N)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--atlas", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    cache_dir = args.cache_dir or args.data_dir / "bench_cache"
    if args.child:
        _child(args.child, args.data_dir, cache_dir, args.atlas, args.out, args.cache_jobs)
        return 0
    global CACHE_JOBS
    CACHE_JOBS = max(1, args.cache_jobs)

    from itx import demo

    micro = args.data_dir / "microarray"
    if not all((micro / f"normalized_microarray_donor{d}" / "PACall.csv").is_file()
               for d in demo.DONOR_IDS):
        if not args.generate:
            ap.error(f"{args.data_dir} holds no AHBA donors; pass --generate to write them")
        print(f"generating full-size donors in {args.data_dir} ...", flush=True)
        demo.generate_donors(args.data_dir, seed=0, samples_per_donor=None, pad_probes=True,
                             digits=15)
    size = sum(f.stat().st_size for f in micro.rglob("*.csv"))
    for f in micro.rglob("*.csv"):  # into the page cache, for every run alike
        with open(f, "rb") as fh:
            while fh.read(1 << 24):
                pass
    shutil.rmtree(cache_dir, ignore_errors=True)
    first = args.first
    second = [a for a in ATLASES if a != first][0]
    print(f"AHBA files: {size / 1e9:.2f} GB; atlas A = DK {first}, atlas B = DK {second}; "
          f"{CACHE_JOBS} cache job(s) at once")

    import pandas as pd

    tmp = cache_dir.with_name(cache_dir.name + "_runs")
    tmp.mkdir(parents=True, exist_ok=True)
    ref_a = _run("abagen", args.data_dir, cache_dir, first, tmp)
    ours_a = _run("first", args.data_dir, cache_dir, first, tmp)
    ref_b = _run("abagen", args.data_dir, cache_dir, second, tmp)
    ours_b = _run("rerun", args.data_dir, cache_dir, second, tmp)
    for ours, ref in ((ours_a, ref_a), (ours_b, ref_b)):
        pd.testing.assert_frame_equal(pd.read_pickle(ours["result"]),
                                      pd.read_pickle(ref["result"]), check_exact=True)
    cache_mb = sum(f.stat().st_size for f in cache_dir.rglob("*")) / 1e6
    print(f"results identical to abagen's (exact); cache {cache_mb:.0f} MB")
    print("\n| run | ours (s) | abagen (s) | time ratio | ours peak (MB) | abagen peak (MB) "
          "| memory ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, ours, ref in ((f"(a) first run, DK {first} (parse + cache + process)", ours_a, ref_a),
                            (f"(b) rerun, DK {second} (from cache)", ours_b, ref_b)):
        print(f"| {name} | {ours['wall_s']:.1f} | {ref['wall_s']:.1f} | "
              f"{ours['wall_s'] / ref['wall_s']:.2f} | {ours['peak_mb']:.0f} | "
              f"{ref['peak_mb']:.0f} | {ours['peak_mb'] / ref['peak_mb']:.2f} |")
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
