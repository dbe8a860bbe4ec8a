"""Time vertex-level spin nulls: per-atlas rotations (now) against per-map (before).

The workflow used to rotate the fsaverage5 sphere for every GIFTI map
(``vertex_rotations`` + ``spin_vertex_map`` in rule map_nulls: about 3 min per
map at 10,000 nulls). The rotations and the nearest-vertex matching do not
depend on the map, so rule vertex_spins now makes them once per atlas
(:func:`itx.vertexspins.make_vertex_spins`, written to ``vertex_spins.npz``) and each
map only gathers its vertex values and averages them per parcel
(:func:`itx.vertexspins.apply_vertex_spins`).

Printed, all timed in the same run on the same random GIFTI maps (DK atlas,
fsaverage5): the new design for 1 map and for ``--n-maps`` maps (the
per-atlas step once, then the per-map step of each map, reading the file and
the map's GIFTIs as the jobs do), their ratio (target: 20 maps at most 1.5x
one map), and the old per-map design for 1 map as the baseline. The new
null values are checked equal to the old ones.

Usage::

    python scripts/tools/bench_vertex_spins.py --n-perm 1000      # ~1 min
    python scripts/tools/bench_vertex_spins.py                    # 10,000 nulls
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np


def _write_maps(folder: Path, n_maps: int, seed: int) -> list:
    """Random (left, right) GIFTI pairs on fsaverage5."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    pairs = []
    for k in range(n_maps):
        pair = []
        for hemi in ("lh", "rh"):
            data = rng.normal(size=10242).astype(np.float32)
            img = nib.gifti.GiftiImage(darrays=[nib.gifti.GiftiDataArray(data)])
            path = folder / f"map{k}_{hemi}.func.gii"
            nib.save(img, path)
            pair.append(str(path))
        pairs.append(pair)
    return pairs


def run(n_perm: int = 10000, n_maps: int = 20, scope: str = "left_cortex", seed: int = 1234,
        say=print) -> dict:
    """Run the benchmark; return the timings (seconds) and the ratio."""
    from itx import atlas as atlases
    from itx import nullmaps, nullmodels, vertexspins

    dk = atlases.load_atlas("dk", {"builtin": "desikan_killiany"})
    info = atlases.scope_regions(dk.info, scope)
    cortex = info[nullmaps.is_cortex(info)]
    ids, regions = cortex["id"].tolist(), cortex["region"].astype(str).tolist()
    labels = atlases.fsaverage5_surface(dk)
    cortex_seed = nullmaps.derive_seed(seed, "cortex")
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench_vertex_spins_") as tmp:
        tmp = Path(tmp)
        pairs = _write_maps(tmp, n_maps, seed)
        say(f"{n_maps} GIFTI maps, {len(ids)} cortical DK regions ({scope}), {n_perm} nulls")

        # new design, per atlas (rule vertex_spins): rotations once, written
        t0 = time.perf_counter()
        spins = vertexspins.make_vertex_spins(labels, ids, n_perm, cortex_seed, regions=regions)
        path = vertexspins.save_vertex_spins(tmp / "vertex_spins.npz", spins)
        out["atlas_step"] = time.perf_counter() - t0
        del spins
        say(f"  per-atlas step (rotations + file, {path.stat().st_size / 1e6:.0f} MB): "
            f"{out['atlas_step']:.1f} s")

        # new design, per map (rule map_nulls): read the file and the map, gather, average
        per_map, first = [], None
        for pair in pairs:
            t0 = time.perf_counter()
            spins = vertexspins.load_vertex_spins(path, regions)
            got = vertexspins.apply_vertex_spins(nullmodels.vertex_map(pair), spins)
            per_map.append(time.perf_counter() - t0)
            if first is None:
                first = got
        out["map_step_mean"] = float(np.mean(per_map))
        out["new_1_map"] = out["atlas_step"] + per_map[0]
        out[f"new_{n_maps}_maps"] = out["atlas_step"] + float(np.sum(per_map))
        out["ratio"] = out[f"new_{n_maps}_maps"] / out["new_1_map"]

        # old design, per map: rotations and spin in every map's job
        t0 = time.perf_counter()
        rot = vertexspins.vertex_rotations(n_perm, cortex_seed)
        old = vertexspins.spin_vertex_map(nullmodels.vertex_map(pairs[0]), labels, ids, rot)
        out["old_1_map"] = time.perf_counter() - t0
        del rot
    if not np.array_equal(old, first, equal_nan=True):
        raise AssertionError("the per-atlas design gave other null values than the per-map one")
    say(f"  per-map step: {out['map_step_mean']:.2f} s per map (mean of {n_maps})")
    say(f"new design, 1 map:        {out['new_1_map']:.1f} s")
    say(f"new design, {n_maps} maps:      {out[f'new_{n_maps}_maps']:.1f} s")
    say(f"ratio {n_maps} maps / 1 map:  {out['ratio']:.2f} (target <= 1.5)")
    say(f"old design, 1 map:        {out['old_1_map']:.1f} s "
        f"({n_maps} maps: about {n_maps * out['old_1_map']:.0f} s)")
    say("null values of the new design equal the old ones: yes")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-perm", type=int, default=10000, help="nulls (1000 for a quick run)")
    ap.add_argument("--n-maps", type=int, default=20)
    ap.add_argument("--scope", default="left_cortex",
                    help="left_cortex (the default scope) or cortex")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args(argv)
    return run(args.n_perm, args.n_maps, args.scope, args.seed)


if __name__ == "__main__":
    main()
