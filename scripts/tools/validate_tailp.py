"""Validate the generalised Pareto tail p values of :mod:`itx.tailp` on real data.

Two checks, on the real abagen DK expression table (left cortex, 34 regions)
and ``alexander_bloch`` spins of the DK left centroids:

1. **Brute force.** Two maps are Spearman-correlated with every gene: a
   real disease map (ENIGMA MDD adult cortical thickness, ``d_icv``, left
   regions; its smallest p are near 1e-4) and the second principal
   component of the expression table itself (a smooth map that hundreds of
   genes follow closely, p down to 1e-6). Five genes per map are chosen
   among those with fewer than 10 exceedances in a first set of 10,000
   spins, evenly spread in |r| from the largest down (|r| is fixed data, so
   choosing by it does not bias the null counts, whereas choosing by a
   small p would pick genes whose p happened to be underestimated). For
   each, the GPD p from another 10,000 spins is compared with a brute-force
   permutation p ``M / 1,000,000`` from 1,000,000 further spins of the same
   null family, with its binomial standard error. The same is done for the
   ENIGMA map with plain shuffles of the regions (``permutation``), whose
   p values reach 1e-6 and below, where spins stop near 3e-4. The 1,000,000
   null maps are
   also cut into 100 independent sets of 10,000, each giving a GPD p, so
   the GPD estimate's own spread (and bias) is measured: the brute-force p
   should lie within it.
   The spins are drawn here, vectorised in blocks (neuromaps'
   ``gen_spinsamples`` draws them one by one with an O(n^2) duplicate check,
   far too slow for 10^6): uniform random rotations of the left-hemisphere
   centroids (QR of a Gaussian matrix, as neuromaps' ``_gen_rotation``), and
   each parcel takes the value of the parcel whose rotated centroid is
   nearest (neuromaps' ``'original'`` method), without the duplicate check;
   the 10,000 and the 1,000,000 spins come from the same code.
2. **False-positive rate.** Independent smooth random fields (as
   ``calibrate_nulls.py``) are correlated with a random subset of genes and
   tested against 1,000 ``alexander_bloch`` spins made by the workflow's own
   :func:`itx.nulls.spin_nulls`; the fraction of field x gene pairs with p
   below alpha is reported for the permutation p and the GPD p at alpha
   0.05, 0.01 and 0.001, with 95% bootstrap intervals over fields (and, as
   a variant, with the shape floored at 0).

Outputs in ``--out`` (default ``docs``): ``tailp_bruteforce.tsv`` and
``tailp_fpr_<n_perm>.tsv``; both tables are also printed.

Usage (about 5-10 minutes on one core)::

    nice .venv/bin/python scripts/tools/validate_tailp.py --out docs
    .venv/bin/python scripts/tools/validate_tailp.py --n-big 100000 --n-fields 20 \
        --n-genes 300 --out /tmp/tailp           # a quick look
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from calibrate_nulls import LEFT_DK, SHARED_DATA, load_left_dk, smooth_fields  # noqa: E402

from itx import compat, nulls, tailp, vertexspins  # noqa: E402
from itx.association import _standardise, correlate_genes  # noqa: E402
from itx.tables import write_tsv  # noqa: E402

DEFAULT_EXPRESSION = str(SHARED_DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv")
DEFAULT_MAP = str(SHARED_DATA / "enigma" / "summary_statistics" /
                  "mddadult_case-controls_CortThick.csv")
ALPHAS = (0.05, 0.01, 0.001)
ATOL = 1e-9
#: Tail p variants compared: the free GPD fit (the workflow's) and shapes
#: floored at 0 (exponential extrapolation of bounded fits).
VARIANTS = {"gpd": None, "gpd_xi0": 0.0}


def left_centroids():
    """Sphere centroids of the 34 left DK parcels (rows in :data:`LEFT_DK` order)."""
    abagen = compat.patch_abagen()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        labels = abagen.fetch_desikan_killiany(surface=True)["image"]
    coords, _ = nulls.sphere_centroids(labels, nulls.fsaverage5_spheres(), LEFT_DK)
    return coords, labels


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniform random 3-D rotations, shape (n, 3, 3), as neuromaps draws one."""
    q, r = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    flip = np.linalg.det(q) < 0
    q[flip, :, 0] *= -1
    return q


def spin_blocks(coords, n_perm: int, seed, block: int = 5000):
    """Yield (n_regions, b) resampling indices of centroid spins (neuromaps' 'original').

    Parcel ``i`` takes the value of the parcel whose rotated centroid is
    nearest to centroid ``i``.
    """
    rng = np.random.default_rng(seed)
    sq = (coords ** 2).sum(1)
    done = 0
    while done < n_perm:
        b = min(block, n_perm - done)
        rot = coords[None] @ random_rotations(rng, b)          # (b, n, 3)
        # squared distances |c_i - rot_j|^2; rotations keep |rot_j| = |c_j|
        d = sq[None, :, None] + sq[None, None, :] - 2 * np.einsum("ik,bjk->bij", coords, rot)
        yield d.argmin(axis=2).T
        done += b


def shuffle_blocks(n_regions: int, n_perm: int, seed, block: int = 50000):
    """Yield (n_regions, b) random permutations of the regions (the plain shuffle null)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_perm:
        b = min(block, n_perm - done)
        yield np.argsort(rng.random((n_regions, b)), axis=0)
        done += b


def null_r(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Spearman r of each column of `x` with each null map ``y[idx]``: (b, n_genes)."""
    zx, _ = _standardise(x, True)
    zn, ok = _standardise(y[idx], True)
    r = zn.T @ zx
    r[~ok] = np.nan  # a constant null map has no correlation
    return r


def enigma_left(path, region_names) -> np.ndarray:
    """ENIGMA ``d_icv`` of the left DK regions, in the order of `region_names`."""
    d = pd.read_csv(path).set_index("Structure")["d_icv"]
    missing = [r for r in region_names if r not in d.index]
    if missing:
        raise ValueError(f"{path}: regions {missing[:5]} missing from the ENIGMA table")
    return d.loc[list(region_names)].to_numpy(float)


def _gpd_genes(X, y, idx, min_shape=None):
    """correlate_genes with null tails and the GPD p of every gene."""
    res = correlate_genes(X, y, y[idx], keep_tail=int(tailp.tail_size(idx.shape[1])) + 1)
    return res, tailp.gpd_pvalues(np.abs(res.r), res.null_tail, res.n_valid_null,
                                  res.n_exceed, res.p_spin, min_shape=min_shape)


def expression_pc(x: pd.DataFrame, k: int) -> np.ndarray:
    """Regional scores of the k-th principal component of the z-scored expression."""
    X = x.to_numpy(float)
    u, _, _ = np.linalg.svd((X - X.mean(0)) / X.std(0), full_matrices=False)
    return u[:, k - 1]


def brute_force_check(x: pd.DataFrame, y: np.ndarray, coords, *, map_name="map",
                      null="alexander_bloch", n_small=10_000, n_big=1_000_000, n_check=5,
                      seed=0, progress=print) -> pd.DataFrame:
    """GPD p from `n_small` spins against brute force from `n_big` spins, for a few genes.

    `null` is ``"alexander_bloch"`` (:func:`spin_blocks` of `coords`) or
    ``"permutation"`` (:func:`shuffle_blocks`: random shuffles of the regions,
    whose null of Spearman r is nearly the t distribution of ``p_naive``, so
    genes reach far smaller p than under spins).

    Returns one row per checked gene: ``map, gene, r, n_exceed_small,
    p_perm_small, p_gpd, tail_method, shape, p_gpd_xi0, n_tail, n_exceed_big, p_brute,
    se_brute, z, within_2se, ratio, gpd_rep_median, gpd_rep_lo, gpd_rep_hi,
    brute_in_rep_range, n_reps`` (``z = (p_gpd - p_brute) / se_brute``;
    ``gpd_rep_*``: median and 95% range of the GPD p over the independent
    sets of `n_small` spins of the brute-force run).
    """
    X = x.to_numpy(float)
    genes = np.array(x.columns)
    # choose genes on one set of spins, estimate on another (no winner's curse)
    def blocks(n, stream, block=None):
        if null == "permutation":
            return shuffle_blocks(len(y), n, [seed, stream], block or 50000)
        return spin_blocks(coords, n, [seed, stream], block or 5000)

    choose = next(blocks(n_small, 0, n_small))
    r0, gp0 = _gpd_genes(X, y, choose)
    fitted = np.flatnonzero(gp0.method == "gpd")
    if fitted.size < n_check:
        raise RuntimeError(f"{map_name}: only {fitted.size} genes have a GPD p; use another map")
    order = fitted[np.argsort(np.abs(r0.r[fitted]))]
    targets = np.linspace(np.abs(r0.r[order[-1]]), np.abs(r0.r[order[0]]), n_check)
    picks = order[np.unique(np.searchsorted(np.abs(r0.r[order]), targets).clip(0, order.size - 1))]
    small = next(blocks(n_small, 1, n_small))
    res, gp = _gpd_genes(X, y, small)
    p_xi0 = tailp.gpd_pvalues(np.abs(res.r), res.null_tail, res.n_valid_null, res.n_exceed,
                              res.p_spin, min_shape=0.0).p
    progress(f"{map_name}, {n_small} {null} nulls: {gp.used_gpd.sum()} genes with a GPD p "
             f"({(gp.method == 'gpd_bound').sum()} gpd_bound, "
             f"{(gp.method == 'no_fit').sum()} without an accepted fit) of {len(genes)}")
    xs = X[:, picks]
    obs = np.abs(res.r[picks])
    # sanity: our null r reproduce correlate_genes' counts on the small set
    rs = null_r(xs, y, small)
    assert np.array_equal((np.abs(rs) >= obs - ATOL).sum(0), res.n_exceed[picks])

    t0 = time.perf_counter()
    big = np.empty((n_big, picks.size))  # |r| of every spin (40 MB for 5 genes)
    done = 0
    for idx in blocks(n_big, 2):
        big[done:done + idx.shape[1]] = np.abs(null_r(xs, y, idx))
        done += idx.shape[1]
    progress(f"{map_name}: {n_big} {null} nulls for {picks.size} genes in "
             f"{time.perf_counter() - t0:.0f} s")
    m_big = (big >= obs - ATOL).sum(axis=0)
    p_brute = m_big / n_big
    se = np.sqrt(np.maximum(p_brute * (1 - p_brute), 1e-300) / n_big)
    # the GPD estimate's own spread: independent sets of n_small spins from the big run
    n_reps = n_big // n_small
    reps = np.empty((n_reps, picks.size))
    for k in range(n_reps):
        reps[k] = tailp.tail_pvalues(obs, big[k * n_small:(k + 1) * n_small],
                                     "greater", atol=ATOL).p
    lo, med, hi = np.quantile(reps, [0.025, 0.5, 0.975], axis=0)
    z = (gp.p[picks] - p_brute) / np.where(m_big > 0, se, np.nan)
    return pd.DataFrame({
        "map": map_name, "null": null, "gene": genes[picks], "r": res.r[picks],
        "n_exceed_small": res.n_exceed[picks], "p_perm_small": res.p_spin[picks],
        "p_gpd": gp.p[picks], "tail_method": gp.method[picks], "shape": gp.shape[picks],
        "p_gpd_xi0": p_xi0[picks],
        "n_tail": gp.n_tail[picks], "n_exceed_big": m_big, "p_brute": p_brute,
        "se_brute": np.where(m_big > 0, se, np.nan), "z": z,
        "within_2se": np.abs(z) <= 2, "ratio": gp.p[picks] / p_brute,
        "gpd_rep_median": med, "gpd_rep_lo": lo,
        "gpd_rep_hi": hi, "brute_in_rep_range": (p_brute >= lo) & (p_brute <= hi),
        "n_reps": n_reps,
    })


def fpr_study(x: pd.DataFrame, labels, *, n_fields=300, sigmas=(15, 35, 60), n_genes=2000,
              n_perm=1000, seed=0, alphas=ALPHAS, progress=print) -> pd.DataFrame:
    """Per field: tests and rejections at `alphas` for the permutation and GPD p."""
    rng = np.random.default_rng(seed)
    X = x.to_numpy(float)
    if 0 < n_genes < X.shape[1]:
        X = X[:, np.sort(rng.choice(X.shape[1], n_genes, replace=False))]
    t0 = time.perf_counter()
    spheres = nulls.fsaverage5_spheres()
    idx = nulls.spin_nulls(labels, spheres, LEFT_DK, n_perm, "alexander_bloch", seed)
    progress(f"{n_perm} alexander_bloch spins (itx.nulls) in {time.perf_counter() - t0:.0f} s")
    keep = int(tailp.tail_size(n_perm)) + 1
    rows = []
    for sigma in sigmas:
        t0 = time.perf_counter()
        fields = smooth_fields(sigma, n_fields, seed, spheres[0])
        for f in range(n_fields):
            y = vertexspins.vertex_parcel_means((fields[:, f], None), labels, LEFT_DK)
            res = correlate_genes(X, y, nulls.apply_index(y, idx), keep_tail=keep)
            row = {"sigma": sigma, "field": f, "n_tests": int(np.isfinite(res.p_spin).sum())}
            for a in alphas:
                row[f"permutation_{a:g}"] = int((res.p_spin < a).sum())
            for name, min_shape in VARIANTS.items():
                gp = tailp.gpd_pvalues(np.abs(res.r), res.null_tail, res.n_valid_null,
                                       res.n_exceed, res.p_spin, min_shape=min_shape)
                row[f"n_{name}"] = int(gp.used_gpd.sum())
                for a in alphas:
                    row[f"{name}_{a:g}"] = int((gp.p < a).sum())
            rows.append(row)
        progress(f"sigma {sigma:g}: {n_fields} fields x {X.shape[1]} genes in "
                 f"{time.perf_counter() - t0:.0f} s")
    return pd.DataFrame(rows)


def summarise_fpr(fields: pd.DataFrame, n_boot=2000, seed=0, alphas=ALPHAS) -> pd.DataFrame:
    """FPR of each p at each alpha (all fields pooled), 95% bootstrap interval over fields.

    ``tail_share`` is the fraction of tests whose p came from a fitted tail.
    """
    rng = np.random.default_rng(seed)
    boot = rng.integers(0, len(fields), size=(n_boot, len(fields)))
    n = fields["n_tests"].to_numpy(float)
    out = []
    for a in alphas:
        for kind in ("permutation",) + tuple(VARIANTS):
            k = fields[f"{kind}_{a:g}"].to_numpy(float)
            fpr_b = k[boot].sum(1) / n[boot].sum(1)
            share = fields[f"n_{kind}"].sum() / n.sum() if kind in VARIANTS else 0.0
            out.append({"p": kind, "alpha": a, "fpr": k.sum() / n.sum(),
                        "ci_low": np.quantile(fpr_b, 0.025),
                        "ci_high": np.quantile(fpr_b, 0.975), "rejections": int(k.sum()),
                        "n_tests": int(n.sum()), "n_fields": len(fields),
                        "tail_share": share})
    return pd.DataFrame(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--expression", default=DEFAULT_EXPRESSION)
    ap.add_argument("--map", default=DEFAULT_MAP, help="ENIGMA table (Structure, d_icv)")
    ap.add_argument("--n-small", type=int, default=10_000)
    ap.add_argument("--n-big", type=int, default=1_000_000)
    ap.add_argument("--n-check", type=int, default=5)
    ap.add_argument("--n-fields", type=int, default=200, help="fields per sigma")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 35, 60])
    ap.add_argument("--n-genes", type=int, default=2000)
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--alphas", type=float, nargs="+", default=list(ALPHAS))
    ap.add_argument("--out", default="docs")
    ap.add_argument("--parts", nargs="+", choices=("brute", "fpr"), default=["brute", "fpr"],
                    help="which checks to run")
    args = ap.parse_args(argv)
    out = Path(args.out)
    t_start = time.perf_counter()

    def progress(msg):
        print(f"[{time.perf_counter() - t_start:6.0f} s] {msg}", flush=True)

    x = load_left_dk(args.expression)
    names = pd.read_csv(args.expression, encoding="utf-8-sig", usecols=["label", "Region"])
    names = names.set_index("label").loc[list(LEFT_DK), "Region"]
    coords, labels = left_centroids()
    enigma = enigma_left(args.map, names)
    if "brute" not in args.parts:
        bf = None
    else:
        bf = pd.concat([
            brute_force_check(x, y, coords, map_name=name, null=null, n_small=args.n_small,
                              n_big=args.n_big, n_check=args.n_check, seed=args.seed,
                              progress=progress)
            for name, y, null in (("enigma_mdd_thickness", enigma, "alexander_bloch"),
                                  ("expression_pc2", expression_pc(x, 2), "alexander_bloch"),
                                  ("enigma_mdd_thickness", enigma, "permutation"))],
            ignore_index=True)
        write_tsv(bf, out / "tailp_bruteforce.tsv")
        with pd.option_context("display.width", 250, "display.max_columns", 30):
            print(bf.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if "fpr" not in args.parts:
        progress("done")
        return
    fields = fpr_study(x, labels, n_fields=args.n_fields, sigmas=args.sigmas,
                       n_genes=args.n_genes, n_perm=args.n_perm, seed=args.seed,
                       alphas=args.alphas, progress=progress)
    summary = summarise_fpr(fields, seed=args.seed, alphas=args.alphas)
    write_tsv(summary, out / f"tailp_fpr_{args.n_perm}.tsv")
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    progress("done")


if __name__ == "__main__":
    main()
