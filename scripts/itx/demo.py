"""Offline AHBA-format demo data with a planted signal of known truth.

The workflow's default configuration must run without brain-map.org, so this
module writes everything the pipeline would otherwise download, in the exact
layout and CSV format that abagen 0.1.3 reads:

* six donor folders ``<out_dir>/microarray/normalized_microarray_donor{id}/``
  (``MicroarrayExpression.csv``, ``PACall.csv``, ``Probes.csv``,
  ``SampleAnnot.csv``, ``Ontology.csv``) for the six real donor ids;
* a demo "disease" map: a smooth field over MNI space, written as a NIfTI on
  abagen's Desikan-Killiany (DK) volume grid plus a region table;
* demo gene sets (named like cell classes, clearly marked ``demo_``) as GMT;
* a truth JSON naming the gene set whose genes were made to follow the map.

Nothing here is real expression data. The sample locations are real (abagen's
bundled corrected MNI coordinates and real well ids, because abagen looks the
well ids up in that table) and the probes are the real reannotated probes
(because abagen's default ``reannotated=True`` merges on them); the
expression values, present/absent calls, donor assignment of wells, ontology
and sample structures are synthetic.

Expression model (log2-like intensity, per donor, float32, vectorised)::

    gene[g, s]  = base[g] + offset[g, d]
                  + scale[g, d] * (loadings[g] @ basis(xyz[s])
                                   + planted[g] * sign * effect * field(xyz[s]))
                  + gene_noise[g, s]
    probe[p, s] = gene[gene_of(p), s] + affinity[p] + probe_noise[p, s]
    pacall[p, s] = probe[p, s] + call_noise[p, s] > background

``basis`` is a handful of seeded smooth (long-wavelength cosine) functions of
the MNI coordinate, ``field`` is :func:`disease_field` and ``planted[g]`` is 1
for the genes of the planted demo gene set only. A fraction of probes gets a
low affinity so they are mostly called absent and abagen's intensity-based
filter removes them, as it does with real data.

Every random draw comes from ``numpy.random.default_rng`` seeded by
``(seed, stream tag[, donor])``, so the same arguments always give
byte-identical files. All files are written atomically (temporary file in the
same folder, then ``os.replace``).
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import os
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable, Mapping

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .tables import atomic_path
from . import compat

__all__ = [
    "DONOR_IDS",
    "REAL_SAMPLE_COUNTS",
    "REAL_N_PROBES",
    "DEFAULT_SAMPLES_PER_DONOR",
    "DEFAULT_EFFECT_SIZE",
    "DEMO_SET_NAMES",
    "donor_wells",
    "disease_field_params",
    "disease_field",
    "write_demo_map",
    "demo_gene_sets",
    "planted_gene_set",
    "write_gene_sets_gmt",
    "write_truth",
    "generate_donors",
]

# ---------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------

#: The six AHBA donors, in ascending id order (the order abagen uses).
DONOR_IDS = ("9861", "10021", "12876", "14380", "15496", "15697")

#: Number of microarray samples each real donor has (AHBA release notes).
REAL_SAMPLE_COUNTS = {
    "9861": 946, "10021": 893, "12876": 363,
    "14380": 529, "15496": 470, "15697": 501,
}

#: Only these two donors were sampled in both hemispheres.
BILATERAL_DONORS = ("9861", "10021")

#: Samples per donor by default (480 in all). Measured on a 2-core machine:
#: ~3-4 s to write the ~200 MB demo and ~15 s for abagen's default DK-volume
#: call, with every one of the 34 left cortical DK regions still receiving
#: samples from at least two donors (the slow test in tests/test_demo.py
#: checks coverage). abagen's time is mostly fixed cost (probe selection over
#: 45,821 probes): 60 per donor still takes ~14 s, 100 takes ~19 s.
DEFAULT_SAMPLES_PER_DONOR = 80

#: Default planted effect: log2 units per unit of :func:`disease_field`,
#: whose SD over left cortex is 1 (so ~1 log2 unit across left cortex).
DEFAULT_EFFECT_SIZE = 1.0

#: Demo gene set names; cell-class-like but prefixed so nobody mistakes them
#: for real marker lists.
DEMO_SET_NAMES = (
    "demo_astro", "demo_endo", "demo_micro",
    "demo_neuro_ex", "demo_neuro_in", "demo_oligo",
)
_SET_SIZE_RANGE = (30, 80)

_DONOR_DIR = "normalized_microarray_donor{}"

#: Probes in the real Probes.csv; 45,821 of them survive abagen's
#: reannotation, which are the ones the demo models (see ``pad_probes``).
REAL_N_PROBES = 58_692

# expression model parameters (log2-like intensity scale)
_N_BASIS = 6              # smooth background gradients
_N_BUMPS = 6              # Gaussian bumps of the disease field
_BUMP_WIDTH_MM = (14.0, 24.0)
_BASIS_WAVELENGTH = (140.0, 320.0)  # mm; long so gradients are smooth
_LOADING_SD = 0.2         # per gene per basis function
_BASE_MEAN, _BASE_SD = 7.5, 1.6
_DONOR_OFFSET_SD = 0.3
_DONOR_LOGSCALE_SD = 0.1
_GENE_NOISE_SD = 0.35
_PROBE_AFFINITY_SD = 0.4
_PROBE_NOISE_SD = 0.25
_DEAD_PROBE_FRACTION = 0.3    # probes that are mostly "absent"
_DEAD_PROBE_SHIFT = (3.0, 6.0)
_BACKGROUND = 5.0         # PACall threshold on the intensity scale
_CALL_NOISE_SD = 0.6
_VALUE_RANGE = (1.0, 15.99)  # printable in 5 characters, see _format_expression

# subsampling: share of a donor's wells taken from near cortical DK parcels
_CORTICAL_FRACTION = 0.8
_MATCH_RADIUS_MM = 2.0    # abagen's default volumetric tolerance

# well classification: a well further than this from any DK parcel, below
# z = -10 and behind y = -35 is called cerebellum (DK has no cerebellum)
_CEREBELLUM_MIN_DIST = 3.0

_ABAGEN_TOP = {  # abagen samples_.ONTOLOGY ids used in structure paths
    "cortex": 4008, "hippocampal formation": 4249, "cerebral nuclei": 4275,
    "diencephalon": 4391, "cerebellum": 4696, "mesencephalon": 9001,
    "pons": 9131, "myelencephalon": 9512,
}
_SUBCORTEX_PARENT = {
    "thalamusproper": "diencephalon", "caudate": "cerebral nuclei",
    "putamen": "cerebral nuclei", "pallidum": "cerebral nuclei",
    "accumbensarea": "cerebral nuclei", "amygdala": "cerebral nuclei",
    "hippocampus": "hippocampal formation",
}


# ---------------------------------------------------------------------------
# small utilities
# ---------------------------------------------------------------------------

def _check_seed(seed) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(
            seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _rng(seed: int, tag: str, *extra: int) -> np.random.Generator:
    """Independent, reproducible random stream for ``(seed, tag, *extra)``.

    Streams are keyed by a CRC of the tag (stable across Python runs, unlike
    ``hash``) so adding a new stream never shifts the numbers of another.
    """
    key = [int(seed), zlib.crc32(tag.encode("ascii"))] + [int(e) for e in extra]
    return np.random.default_rng(np.random.SeedSequence(key))


def _abagen_data(name: str) -> Path:
    abagen = compat.patch_abagen()  # local: importing abagen is slow and noisy
    return Path(abagen.__file__).parent / "data" / name


def _atomic_write(path, write: Callable) -> Path:
    """Call ``write(fh)`` on a temporary binary file, then rename to `path`.

    The temporary file lives in the destination folder so the final
    ``os.replace`` is atomic: a killed run leaves either the old file or the
    complete new one, never a truncated file under the real name.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        write(fh)
    return path


def _write_bytes(path, data: bytes) -> Path:
    return _atomic_write(path, lambda fh: fh.write(data))


def _write_frame(path, df: pd.DataFrame, **kwargs) -> Path:
    text = df.to_csv(index=False, lineterminator="\n", **kwargs)
    return _write_bytes(path, text.encode("utf-8"))


_ID_WIDTH = 7  # demo probe ids are 1,000,000 + index: always seven digits


def _ascii_rows(ids: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """Assemble CSV rows ``<id>,<cell>,...,<cell>\\n`` as one uint8 array.

    `cells` is (rows, cols, width) of ASCII codes; every cell has the same
    width, so the whole block is built by array assignment, no per-value
    string formatting (``np.savetxt`` managed ~2.5 M values/s, too slow for
    the full-size demo).
    """
    n_row, n_col, width = cells.shape
    out = np.empty((n_row, _ID_WIDTH + 1 + n_col * (width + 1)), np.uint8)
    digits = ids[:, None] // 10 ** np.arange(_ID_WIDTH - 1, -1, -1) % 10
    out[:, :_ID_WIDTH] = digits + ord("0")
    out[:, _ID_WIDTH] = ord(",")
    body = np.empty((n_row, n_col, width + 1), np.uint8)
    body[:, :, :width] = cells
    body[:, :, width] = ord(",")
    body[:, -1, width] = ord("\n")
    out[:, _ID_WIDTH + 1:] = body.reshape(n_row, -1)
    return out


def _format_pacall(block: np.ndarray) -> np.ndarray:
    """0/1 calls -> one ASCII digit per cell."""
    return (block.astype(np.uint8) + ord("0"))[:, :, None]


def _format_expression(block: np.ndarray, digits: int = 4) -> np.ndarray:
    """Intensities in [1, 16) -> `digits` significant digits, fixed width.

    Values below 10 print as ``d.ddd`` and values from 10 as ``dd.dd``
    (for ``digits=4``): a fixed number of significant digits in a fixed width
    (``digits + 1`` characters), which is what lets :func:`_ascii_rows`
    vectorise the CSV. (Trailing zeros are kept, e.g. ``7.250``; any CSV
    reader parses that the same as ``7.25``.) ``digits=15`` mimics the real
    AHBA files, whose values print with about 15 significant digits, so that
    parse times measured on generated data are realistic.
    """
    lo, hi = _VALUE_RANGE
    # compared as Python floats: under numpy 2's promotion rules (NEP 50) a
    # float32 max would be compared in float32, where 15.99 rounds to itself
    if block.size and (float(block.min()) < lo or float(block.max()) >= hi):
        raise AssertionError("expression outside the printable range")
    if not 2 <= digits <= 15:  # 16 digits no longer fit a float64 exactly
        raise ValueError(f"digits must be between 2 and 15, got {digits!r}")
    values = block.astype(np.float64)
    q_small = np.rint(values * 10.0 ** (digits - 1)).astype(np.int64)
    # rounding can carry 9.9999 up to 10.000: such values take the dd.d form
    small = q_small < 10 ** digits
    q = np.where(small, q_small,
                 np.rint(values * 10.0 ** (digits - 2)).astype(np.int64))
    d = (q[..., None] // 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
         % 10 + ord("0")).astype(np.uint8)
    cells = np.empty(block.shape + (digits + 1,), np.uint8)
    dot = np.uint8(ord("."))
    cells[..., 0] = d[..., 0]
    cells[..., 1] = np.where(small, dot, d[..., 1])
    cells[..., 2] = np.where(small, d[..., 1], dot)
    cells[..., 3:] = d[..., 2:]
    return cells


def _write_matrix(path, ids: np.ndarray, values: np.ndarray,
                  formatter: Callable, chunk: int = 4096) -> Path:
    """Write an AHBA probe x sample matrix: no header, probe id then values.

    Rows are formatted in chunks to bound memory on full-size donors.
    """
    ids = np.asarray(ids, dtype=np.int64)
    if ids.min() < 10 ** (_ID_WIDTH - 1) or ids.max() >= 10 ** _ID_WIDTH:
        raise AssertionError("probe ids must have exactly seven digits")

    def write(fh):
        for start in range(0, len(ids), chunk):
            sl = slice(start, start + chunk)
            fh.write(_ascii_rows(ids[sl], formatter(values[sl])).tobytes())

    return _atomic_write(path, write)


# ---------------------------------------------------------------------------
# bundled abagen resources (cached: they are read on every call otherwise)
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _coordinates() -> pd.DataFrame:
    """abagen's corrected MNI coordinates, one row per real well, by well id."""
    coords = pd.read_csv(_abagen_data("corrected_mni_coordinates.csv.gz"))
    coords = coords.rename(columns=lambda c: c.replace("corrected_", ""))
    return coords.sort_values("well_id", kind="mergesort").reset_index(drop=True)


@functools.lru_cache(maxsize=1)
def _probes() -> pd.DataFrame:
    """Reannotated probes that abagen keeps (those with an Entrez id)."""
    reannot = pd.read_csv(_abagen_data("reannotated.csv.gz"))
    reannot = reannot.dropna(subset=["entrez_id"]).reset_index(drop=True)
    reannot["entrez_id"] = reannot["entrez_id"].astype(np.int64)
    return reannot[["probe_name", "gene_symbol", "entrez_id"]]


@functools.lru_cache(maxsize=1)
def _dk():
    """DK volume: (labels array, affine, header, info table indexed by id)."""
    abagen = compat.patch_abagen()
    files = abagen.fetch_desikan_killiany()
    img = nib.load(files["image"])
    labels = np.asarray(img.dataobj).astype(np.int32)
    info = pd.read_csv(files["info"]).set_index("id")
    return labels, img.affine.copy(), img.header.copy(), info


@functools.lru_cache(maxsize=1)
def _dk_voxels():
    """MNI coordinates (mm) and labels of all labelled DK voxels."""
    labels, affine, _, _ = _dk()
    ijk = np.argwhere(labels > 0)
    xyz = nib.affines.apply_affine(affine, ijk)
    return ijk, xyz, labels[tuple(ijk.T)]


# ---------------------------------------------------------------------------
# wells: donor split, structure classification, subsampling
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _classified_wells() -> pd.DataFrame:
    """All real wells with donor, hemisphere, DK-derived structure leaf.

    Donor split: abagen's coordinate table has no donor column. Sorted by
    well id, the first 946 + 893 + 363 wells (ids < 15,000) and the remaining
    1,500 fall into two blocks whose sizes match donors 9861/10021/12876 and
    14380/15496/15697, so wells are cut into contiguous runs of the real
    sample counts in ascending donor-id order. That gives 9861 and 10021 ~500
    right-hemisphere wells each and the other four only 74 in total, all
    within ~11 mm of the midline (brainstem/vermis). Those 74 are handed to
    the bilateral donors (alternately) so that, as in the real atlas, only
    9861 and 10021 have right-hemisphere samples.

    Structure: hemisphere from the sign of x (what abagen's
    ``drop_mismatch_samples`` checks); tissue from the nearest DK parcel of
    that hemisphere (or the brainstem), except wells far from every parcel,
    low and posterior, which are cerebellum (absent from DK).
    """
    coords = _coordinates().copy()
    counts = [REAL_SAMPLE_COUNTS[d] for d in DONOR_IDS]
    assert sum(counts) == len(coords), "abagen coordinate table changed"
    donor = np.repeat(np.array(DONOR_IDS, dtype=object), counts)
    right = coords["mni_x"].to_numpy() > 0
    stray = np.flatnonzero(right & ~np.isin(donor, BILATERAL_DONORS))
    donor[stray] = np.resize(np.array(BILATERAL_DONORS, dtype=object),
                             len(stray))
    coords["donor"] = donor
    coords["hemisphere"] = np.where(right, "R", "L")

    _, vox_xyz, vox_lab = _dk_voxels()
    info = _dk()[3]
    vox_hemi = info.loc[vox_lab, "hemisphere"].to_numpy()
    xyz = coords[["mni_x", "mni_y", "mni_z"]].to_numpy()
    dist = np.empty(len(coords))
    lab = np.empty(len(coords), dtype=np.int32)
    for hemi in ("L", "R"):  # two hemispheres, not a loop over samples
        keep = (vox_hemi == hemi) | (vox_hemi == "B")
        tree = cKDTree(vox_xyz[keep])
        rows = coords["hemisphere"].to_numpy() == hemi
        d, i = tree.query(xyz[rows])
        dist[rows], lab[rows] = d, vox_lab[keep][i]
    coords["dk_id"], coords["dk_dist"] = lab, dist
    dk_label = info.loc[lab, "label"].to_numpy()
    dk_struct = info.loc[lab, "structure"].to_numpy()

    cerebellum = ((dist > _CEREBELLUM_MIN_DIST) & (xyz[:, 2] < -10)
                  & (xyz[:, 1] < -35))
    z = xyz[:, 2]
    brainstem_part = np.where(z > -15, "mesencephalon",
                              np.where(z > -40, "pons", "myelencephalon"))
    leaf = np.where(dk_label == "brainstem", brainstem_part, dk_label)
    leaf = np.where(cerebellum, "cerebellarcortex", leaf)
    coords["leaf"] = leaf
    # where abagen's volumetric matching (radius 2 mm, same hemisphere and
    # tissue class) would most likely put the well: used only to stratify the
    # subsample so that every cortical parcel keeps some wells
    coords["cortical_parcel"] = np.where(
        ~cerebellum & (dk_struct == "cortex") & (dist <= _MATCH_RADIUS_MM),
        lab, 0)
    return coords


def _check_samples_per_donor(samples_per_donor):
    if samples_per_donor is None:
        return None
    if isinstance(samples_per_donor, (bool, np.bool_)) or not isinstance(
            samples_per_donor, (int, np.integer)) or samples_per_donor < 1:
        raise ValueError("samples_per_donor must be a positive integer or "
                         f"None (all wells), got {samples_per_donor!r}")
    return int(samples_per_donor)


def _subsample(wells: pd.DataFrame, n, rng: np.random.Generator) -> pd.DataFrame:
    """Pick `n` wells, favouring an even spread over cortical DK parcels.

    A plain random subset of ~100 wells per donor misses small parcels
    (frontal pole has 4 wells in the whole atlas). Instead, ~80 % of the
    wells are dealt round-robin over the cortical parcels present in the
    donor (each round takes one random well per parcel, parcels in random
    order) and the rest are drawn at random from the remaining wells, so
    subcortex, brainstem and cerebellum stay represented.
    """
    if n is None or n >= len(wells):
        return wells
    order = rng.permutation(len(wells))
    shuffled = wells.iloc[order]
    ctx = shuffled[shuffled["cortical_parcel"] > 0]
    n_ctx = min(len(ctx), int(round(_CORTICAL_FRACTION * n)))
    parcel_key = rng.permutation(256)  # random parcel order (DK ids < 256)
    rank = ctx.groupby("cortical_parcel").cumcount().to_numpy()
    key = parcel_key[ctx["cortical_parcel"].to_numpy()]
    dealt = ctx.iloc[np.lexsort((key, rank))[:n_ctx]]
    rest = shuffled.drop(index=dealt.index)
    chosen = pd.concat([dealt, rest.iloc[:n - n_ctx]])
    return wells.loc[np.sort(chosen.index)]


def donor_wells(samples_per_donor=DEFAULT_SAMPLES_PER_DONOR, seed=0
                ) -> dict[str, pd.DataFrame]:
    """Wells (with coordinates and structure) assigned to each demo donor.

    Parameters
    ----------
    samples_per_donor : int or None, optional
        Wells kept per donor (``None`` keeps all real wells: 3,702 in total).
    seed : int, optional
        Seed of the reproducible subsample.

    Returns
    -------
    dict of str -> pandas.DataFrame
        Donor id -> wells sorted by well id, with columns ``well_id``,
        ``mni_x``, ``mni_y``, ``mni_z`` (abagen's corrected coordinates),
        ``hemisphere``, ``leaf`` (ontology acronym), ``dk_id``, ``dk_dist``
        and ``cortical_parcel``.
    """
    seed = _check_seed(seed)
    n = _check_samples_per_donor(samples_per_donor)
    wells = _classified_wells()
    out = {}
    for k, donor in enumerate(DONOR_IDS):
        sub = wells[wells["donor"] == donor]
        sub = _subsample(sub, n, _rng(seed, "wells", k))
        out[donor] = sub.reset_index(drop=True)
    return out


# ---------------------------------------------------------------------------
# ontology and sample annotation
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _ontology() -> pd.DataFrame:
    """A small AHBA-style ontology covering every leaf the wells use.

    Leaves come in L/R pairs with distinct ids but a shared acronym, because
    abagen's ``lr_mirror`` finds the other hemisphere's structure by
    (acronym, hemisphere). Their ``structure_id_path`` runs through abagen's
    top-level ids (4008 cerebral cortex, 4275 cerebral nuclei, ...) so
    ``samples_._get_struct`` classifies them. Inner nodes have no hemisphere,
    like the real file. Leaf ids (12000+) are made up.
    """
    info = _dk()[3]
    inner = [  # id, acronym, name, parent
        (4005, "Br", "brain", None),
        (4006, "GM", "gray matter", 4005),
        (4007, "Tel", "telencephalon", 4006),
        (4008, "CTX", "cerebral cortex", 4007),
        (4249, "HiF", "hippocampal formation", 4007),
        (4275, "CNU", "cerebral nuclei", 4007),
        (4391, "DIE", "diencephalon", 4006),
        (4833, "MET", "metencephalon", 4006),
        (4696, "CB", "cerebellum", 4833),
        (9000, "BS", "brainstem", 4006),
        (9001, "MES", "mesencephalon", 9000),
        (9131, "P", "pons", 9000),
        (9512, "MY", "myelencephalon", 9000),
    ]
    paths = {}
    rows = []
    for sid, acr, name, parent in inner:
        paths[sid] = (paths[parent] if parent else "/") + f"{sid}/"
        rows.append((sid, acr, name, parent, np.nan, paths[sid]))

    cortical = info[(info["structure"] == "cortex")
                    & (info["hemisphere"] == "L")]["label"].tolist()
    subcortical = info[(info["structure"] != "cortex")
                       & (info["hemisphere"] == "L")]["label"].tolist()
    leaves = ([(lab, "cortex") for lab in cortical]
              + [(lab, _SUBCORTEX_PARENT[lab]) for lab in subcortical]
              + [("mesencephalon", "mesencephalon"), ("pons", "pons"),
                 ("myelencephalon", "myelencephalon"),
                 ("cerebellarcortex", "cerebellum")])
    for k, (acr, parent_name) in enumerate(leaves):
        parent = _ABAGEN_TOP[parent_name]
        for j, (hemi, word) in enumerate((("L", "left"), ("R", "right"))):
            sid = 12000 + 2 * k + j
            rows.append((sid, acr, f"{acr} (demo), {word}", parent, hemi,
                         paths[parent] + f"{sid}/"))
    onto = pd.DataFrame(rows, columns=["id", "acronym", "name",
                                       "parent_structure_id", "hemisphere",
                                       "structure_id_path"])
    onto["parent_structure_id"] = onto["parent_structure_id"].astype("Int64")
    onto.insert(5, "graph_order", np.arange(len(onto)))
    # deterministic pseudo-colours (Knuth multiplicative hash of the id)
    onto["color_hex_triplet"] = [f"{(sid * 2654435761) & 0xFFFFFF:06X}"
                                 for sid in onto["id"]]
    return onto


def _annotation(wells: pd.DataFrame) -> pd.DataFrame:
    """SampleAnnot.csv rows for `wells`, in the AHBA column order.

    ``mni_x/y/z`` are abagen's corrected coordinates (abagen overwrites them
    anyway with ``corrected_mni=True``); slab, polygon and MRI voxel fields are
    plausible placeholders derived from the coordinates (abagen only uses the
    voxel fields for native-space atlases, which the demo does not support).
    """
    onto = _ontology().set_index(["acronym", "hemisphere"])
    keys = list(zip(wells["leaf"], wells["hemisphere"]))
    leaf = onto.loc[keys]
    xyz = wells[["mni_x", "mni_y", "mni_z"]].to_numpy()
    slab_type = np.select(
        [wells["leaf"] == "cerebellarcortex",
         np.isin(wells["leaf"], ["mesencephalon", "pons", "myelencephalon"])],
        ["CB", "BS"], "CX")
    return pd.DataFrame({
        "structure_id": leaf["id"].to_numpy(),
        "slab_num": np.clip((xyz[:, 1] + 110) // 10, 0, 20).astype(int) + 1,
        "well_id": wells["well_id"].to_numpy(),
        "slab_type": slab_type,
        "structure_acronym": wells["leaf"].to_numpy(),
        "structure_name": leaf["name"].to_numpy(),
        "polygon_id": 900000 + (wells["well_id"].to_numpy() % 100000),
        "mri_voxel_x": np.round(128 - xyz[:, 0]).astype(int),
        "mri_voxel_y": np.round(128 - xyz[:, 2]).astype(int),
        "mri_voxel_z": np.round(128 + xyz[:, 1]).astype(int),
        "mni_x": xyz[:, 0], "mni_y": xyz[:, 1], "mni_z": xyz[:, 2],
    })


def _probe_table() -> pd.DataFrame:
    """Probes.csv: every reannotated probe (45,821), AHBA columns.

    abagen (``reannotated=True``) left-merges its reannotation table onto
    Probes.csv by probe name, so a missing probe becomes a NaN probe id and
    a KeyError later. Probe and gene ids are made-up but stable integers.
    """
    probes = _probes()
    genes = np.unique(probes["gene_symbol"].to_numpy())
    gene_id = 100000 + np.searchsorted(genes, probes["gene_symbol"].to_numpy())
    return pd.DataFrame({
        "probe_id": 1_000_000 + np.arange(len(probes)),
        "probe_name": probes["probe_name"].to_numpy(),
        "gene_id": gene_id,
        "gene_symbol": probes["gene_symbol"].to_numpy(),
        "gene_name": probes["gene_symbol"].to_numpy() + " (demo annotation)",
        "entrez_id": probes["entrez_id"].to_numpy(),
        "chromosome": "",
    })


def _pad_probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Append made-up probes, unknown to abagen, up to :data:`REAL_N_PROBES`."""
    n_pad = REAL_N_PROBES - len(probes)
    ids = probes["probe_id"].max() + 1 + np.arange(n_pad)
    pad = pd.DataFrame({
        "probe_id": ids,
        # not in abagen's reannotation table, so reannotation drops them, as
        # it drops the ~12,900 real probes without a reliable gene
        "probe_name": [f"DEMO_PAD_{i:05d}" for i in range(n_pad)],
        "gene_id": "", "gene_symbol": "", "gene_name": "",
        "entrez_id": "", "chromosome": "",
    })
    return pd.concat([probes.astype({"entrez_id": object}), pad],
                     ignore_index=True)


def _pad_values(expr: np.ndarray, pacall: np.ndarray, n_pad: int, seed: int,
                donor_index: int):
    """Expression and calls of the padding probes (own random stream, so the
    modelled probes are byte-identical with and without padding)."""
    rng = _rng(seed, "pad", donor_index)
    lo, hi = _VALUE_RANGE
    extra = rng.uniform(lo, hi, (n_pad, expr.shape[1])).astype(np.float32)
    np.clip(extra, lo, np.nextafter(np.float32(hi), np.float32(0)), out=extra)
    calls = (extra > _BACKGROUND).astype(np.uint8)
    return np.concatenate([expr, extra]), np.concatenate([pacall, calls])


# ---------------------------------------------------------------------------
# disease field and demo map
# ---------------------------------------------------------------------------

def _raw_field(xyz: np.ndarray, p: dict) -> np.ndarray:
    """Un-normalised field: Gaussian bumps plus a linear gradient."""
    centres = np.asarray(p["centres_mm"])
    widths = np.asarray(p["widths_mm"])
    amps = np.asarray(p["amplitudes"])
    sq = ((xyz[:, None, :] - centres[None]) ** 2).sum(-1)
    bumps = (amps * np.exp(-sq / (2.0 * widths ** 2))).sum(-1)
    lin = (xyz - np.asarray(p["origin_mm"])) @ np.asarray(
        p["gradient_per_100mm"]) / 100.0
    return bumps + lin


@functools.lru_cache(maxsize=8)
def _field_params(seed: int) -> str:
    rng = _rng(seed, "field")
    lo = np.array([-65.0, -95.0, -35.0])
    hi = np.array([65.0, 65.0, 70.0])
    centres = rng.uniform(lo, hi, size=(_N_BUMPS, 3))
    # first bump in the left hemisphere so the field always varies over the
    # 34 left cortical DK regions the workflow's checks use
    centres[0, 0] = rng.uniform(-65.0, -25.0)
    # bumps of a few centimetres give the map regional detail, as disease
    # maps have: a field smoother than that correlates with its own spins
    widths = rng.uniform(*_BUMP_WIDTH_MM, size=_N_BUMPS)
    amps = rng.uniform(0.6, 1.0, size=_N_BUMPS) * np.resize([1.0, -1.0], _N_BUMPS)
    direction = rng.standard_normal(3)
    gradient = 0.3 * direction / np.linalg.norm(direction)
    p = {
        "formula": ("(sum_k amplitudes[k] * exp(-|x - centres_mm[k]|^2 / "
                    "(2 widths_mm[k]^2)) + gradient_per_100mm . "
                    "(x - origin_mm) / 100 - norm_mean) / norm_sd"),
        "centres_mm": np.round(centres, 3).tolist(),
        "widths_mm": np.round(widths, 3).tolist(),
        "amplitudes": np.round(amps, 4).tolist(),
        "gradient_per_100mm": np.round(gradient, 4).tolist(),
        "origin_mm": [0.0, -20.0, 10.0],
    }
    # normalise to mean 0 / SD 1 over the left cortical DK voxels, so that
    # effect_size means "log2 units per SD of the map over left cortex"
    # whatever the seed (raw fields differ up to 2x in spread)
    _, xyz, lab = _dk_voxels()
    info = _dk()[3]
    left_ctx = info.index[(info["hemisphere"] == "L")
                          & (info["structure"] == "cortex")]
    raw = _raw_field(xyz[np.isin(lab, left_ctx)], p)
    p["norm_mean"] = round(float(raw.mean()), 6)
    p["norm_sd"] = round(float(raw.std()), 6)
    p["normalised_over"] = "voxels of the 34 left cortical DK regions"
    return json.dumps(p)  # immutable cache entry; callers get a fresh dict


def disease_field_params(seed=0) -> dict:
    """Parameters of the demo disease field for `seed` (JSON-serialisable).

    The field is a sum of six isotropic Gaussian bumps (one always in the
    left hemisphere) plus a weak linear gradient, then standardised to mean 0
    and SD 1 over the voxels of the 34 left cortical Desikan-Killiany regions.

    Parameters
    ----------
    seed : int, optional
        Non-negative seed.

    Returns
    -------
    dict
        ``centres_mm`` (6 x 3), ``widths_mm`` (6), ``amplitudes`` (6),
        ``gradient_per_100mm`` (3), ``origin_mm`` (3), ``norm_mean``,
        ``norm_sd``, ``formula`` and ``normalised_over``.
    """
    return json.loads(_field_params(_check_seed(seed)))


def disease_field(coords_mm, seed=0) -> np.ndarray:
    """Evaluate the demo disease field at MNI coordinates.

    Parameters
    ----------
    coords_mm : (n, 3) array_like
        MNI152 coordinates in millimetres.
    seed : int, optional
        Field seed (see :func:`disease_field_params`).

    Returns
    -------
    (n,) numpy.ndarray of float64
        Field values: mean 0 and SD 1 over left cortex, smooth everywhere.
    """
    xyz = np.asarray(coords_mm, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"coords_mm must have shape (n, 3), got {xyz.shape}")
    if not np.all(np.isfinite(xyz)):
        raise ValueError("coords_mm contains non-finite values")
    p = disease_field_params(seed)
    return (_raw_field(xyz, p) - p["norm_mean"]) / p["norm_sd"]


def _region_names(info: pd.DataFrame) -> list[str]:
    return [f"{h}_{lab}" for h, lab in zip(info["hemisphere"], info["label"])]


def write_demo_map(out_nifti, out_table, seed=0) -> tuple[Path, Path]:
    """Write the demo disease map as a NIfTI volume and a region table.

    The field is evaluated at the centres of the labelled voxels of abagen's
    Desikan-Killiany volume (MNI152 1 mm grid, same affine and shape) and
    written as float32, 0 outside the parcels. The table holds, for every one
    of the 83 DK regions, the mean of those float32 voxel values, so the
    volume and the table agree exactly (up to printing precision).

    Parameters
    ----------
    out_nifti : str or Path
        Output image, ``.nii`` or ``.nii.gz`` (gzip written with mtime 0 and
        no file name so the bytes are reproducible).
    out_table : str or Path
        Output TSV with columns ``region`` (``{hemisphere}_{label}``, e.g.
        ``L_bankssts``, ``B_brainstem``) and ``value``.
    seed : int, optional
        Field seed.

    Returns
    -------
    (Path, Path)
        The two written paths.
    """
    seed = _check_seed(seed)
    out_nifti, out_table = Path(out_nifti), Path(out_table)
    if not out_nifti.name.endswith((".nii", ".nii.gz")):
        raise ValueError(f"out_nifti must end in .nii or .nii.gz: {out_nifti}")
    labels, affine, header, info = _dk()
    ijk, xyz, lab = _dk_voxels()
    values = disease_field(xyz, seed).astype(np.float32)
    data = np.zeros(labels.shape, dtype=np.float32)
    data[tuple(ijk.T)] = values

    hdr = header.copy()
    hdr.set_data_dtype(np.float32)
    img = nib.Nifti1Image(data, affine, hdr)
    img.header.set_slope_inter(1.0, 0.0)
    raw = img.to_bytes()
    if out_nifti.name.endswith(".gz"):
        raw = gzip.compress(raw, compresslevel=6, mtime=0)
    _write_bytes(out_nifti, raw)

    ids = info.index.to_numpy()
    sums = np.bincount(lab, weights=values.astype(np.float64),
                       minlength=ids.max() + 1)
    counts = np.bincount(lab, minlength=ids.max() + 1)
    if np.any(counts[ids] == 0):
        raise RuntimeError("a DK region has no voxels; abagen data changed?")
    table = pd.DataFrame({"region": _region_names(info),
                          "value": sums[ids] / counts[ids]})
    _write_frame(out_table, table, sep="\t", float_format="%.9g")
    return out_nifti, out_table


# ---------------------------------------------------------------------------
# gene sets and truth
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def _eligible_genes() -> tuple[str, ...]:
    """Gene symbols usable in demo sets, sorted.

    A symbol qualifies if it maps to a single Entrez id and looks like a
    plain gene symbol (no antisense/readthrough dash, no LOC/LINC/MIR/SNOR
    placeholders), so the sets read like real marker lists.
    """
    probes = _probes()
    n_entrez = probes.groupby("gene_symbol")["entrez_id"].nunique()
    symbols = n_entrez.index[n_entrez == 1]
    bad = (symbols.str.contains(r"[-.]", regex=True)
           | symbols.str.match(r"^(LOC|LINC|MIR|SNOR|FLJ|KIAA)"))
    return tuple(sorted(symbols[~bad]))


@functools.lru_cache(maxsize=8)
def _gene_sets(seed: int):
    rng = _rng(seed, "genesets")
    pool = np.array(_eligible_genes(), dtype=object)
    sizes = rng.integers(_SET_SIZE_RANGE[0], _SET_SIZE_RANGE[1] + 1,
                         size=len(DEMO_SET_NAMES))
    picked = rng.choice(len(pool), size=int(sizes.sum()), replace=False)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    sets = OrderedDict(
        (name, sorted(pool[picked[bounds[k]:bounds[k + 1]]].tolist()))
        for k, name in enumerate(DEMO_SET_NAMES))
    planted = DEMO_SET_NAMES[int(rng.integers(len(DEMO_SET_NAMES)))]
    return sets, planted


def demo_gene_sets(seed=0) -> "OrderedDict[str, list[str]]":
    """Demo gene sets: six disjoint sets of 30-80 real gene symbols.

    Names mimic cell classes (``demo_astro``, ``demo_neuro_ex``, ...) but the
    members are random genes; exactly one set (see :func:`planted_gene_set`,
    chosen by the seed, not always the first) is the planted one whose genes
    follow the demo disease map.

    Parameters
    ----------
    seed : int, optional
        Seed; must match the one given to :func:`generate_donors`.

    Returns
    -------
    collections.OrderedDict of str -> list of str
        Set name -> sorted gene symbols.
    """
    sets, _ = _gene_sets(_check_seed(seed))
    return OrderedDict((k, list(v)) for k, v in sets.items())


def planted_gene_set(seed=0) -> tuple[str, list[str]]:
    """Name and genes of the planted demo gene set.

    Parameters
    ----------
    seed : int, optional
        Demo seed; picks which of :data:`DEMO_SET_NAMES` is planted.

    Returns
    -------
    (str, list of str)
        Set name and its sorted gene symbols (as in :func:`demo_gene_sets`).
    """
    sets, planted = _gene_sets(_check_seed(seed))
    return planted, list(sets[planted])


def write_gene_sets_gmt(sets: Mapping[str, Iterable[str]], path,
                        description: str = "synthetic demo gene set "
                        "(random genes, not real cell-type markers)") -> Path:
    """Write gene sets in GMT format (``name<TAB>description<TAB>genes...``).

    Parameters
    ----------
    sets : mapping of str -> iterable of str
        Set name -> gene symbols; order is kept.
    path : str or Path
        Output file.
    description : str, optional
        Second GMT column, the same for every set.

    Returns
    -------
    Path
    """
    def is_field(value) -> bool:  # a non-empty GMT field without separators
        return (isinstance(value, str) and value != ""
                and not any(c in value for c in "\t\n\r"))

    if not isinstance(sets, Mapping) or len(sets) == 0:
        raise ValueError("sets must be a non-empty mapping name -> genes")
    if description != "" and not is_field(description):
        raise ValueError("description must be a string without tabs or "
                         "newlines")
    lines = []
    for name, genes in sets.items():
        genes = [genes] if isinstance(genes, str) else list(genes)
        if not is_field(name):
            raise ValueError(f"invalid gene set name {name!r}")
        if not genes or not all(is_field(g) for g in genes):
            raise ValueError(f"gene set {name!r} is empty or has invalid "
                             "gene symbols")
        lines.append("\t".join([name, description] + genes))
    return _write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def _check_sign_effect(sign, effect_size):
    if isinstance(sign, (bool, np.bool_)) or sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    try:
        effect = float(effect_size)
    except (TypeError, ValueError):
        raise ValueError(f"effect_size must be a number, got {effect_size!r}")
    if not math.isfinite(effect) or effect < 0:
        raise ValueError(f"effect_size must be finite and >= 0, got {effect}")
    return int(sign), effect


def write_truth(path, *, seed=0, sign=1, effect_size=DEFAULT_EFFECT_SIZE,
                extra: Mapping | None = None) -> Path:
    """Write the demo's ground truth as JSON.

    Parameters
    ----------
    path : str or Path
        Output JSON file.
    seed : int, optional
        Demo seed (donors, map and gene sets share it).
    sign : {1, -1}, optional
        Direction in which the planted genes follow the map.
    effect_size : float, optional
        Planted effect in log2 units per unit of field.
    extra : mapping, optional
        Additional JSON-serialisable entries (e.g. samples per donor).

    Returns
    -------
    Path
    """
    seed = _check_seed(seed)
    sign, effect = _check_sign_effect(sign, effect_size)
    name, genes = planted_gene_set(seed)
    truth = {
        "description": "ground truth of the itx offline demo (synthetic data)",
        "seed": seed,
        "planted_set": name,
        "planted_genes": genes,
        "sign": sign,
        "effect_size": effect,
        "effect_units": "log2 intensity per unit of disease_field",
        "gene_sets": list(DEMO_SET_NAMES),
        "field": disease_field_params(seed),
    }
    if extra:
        truth.update(dict(extra))
    text = json.dumps(truth, indent=2) + "\n"
    return _write_bytes(path, text.encode("utf-8"))


# ---------------------------------------------------------------------------
# expression model
# ---------------------------------------------------------------------------

@functools.lru_cache(maxsize=8)
def _gene_model(seed: int):
    """Donor-independent per-gene and per-probe parameters for `seed`."""
    probes = _probes()
    genes, gene_idx = np.unique(probes["gene_symbol"].to_numpy(),
                                return_inverse=True)
    rng = _rng(seed, "genes")
    n_gene, n_probe = len(genes), len(probes)
    base = rng.normal(_BASE_MEAN, _BASE_SD, n_gene).astype(np.float32)
    loadings = rng.normal(0.0, _LOADING_SD, (n_gene, _N_BASIS)).astype(
        np.float32)
    affinity = rng.normal(0.0, _PROBE_AFFINITY_SD, n_probe).astype(np.float32)
    dead = rng.random(n_probe) < _DEAD_PROBE_FRACTION
    affinity[dead] -= rng.uniform(*_DEAD_PROBE_SHIFT, dead.sum()).astype(
        np.float32)

    # basis functions: cosines of random directions with long wavelengths
    direction = rng.standard_normal((_N_BASIS, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    wavelength = rng.uniform(*_BASIS_WAVELENGTH, _N_BASIS)
    freq = 2.0 * np.pi * direction / wavelength[:, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, _N_BASIS)

    # demo-set genes are made clearly expressed (marker genes usually are);
    # the planted genes also lose their dead probes so every planted gene
    # survives intensity-based filtering and the truth stays clean
    sets, planted = _gene_sets(seed)
    in_sets = np.isin(genes, [g for v in sets.values() for g in v])
    base[in_sets] = np.maximum(base[in_sets], _BASE_MEAN + 1.0)
    planted_gene = np.isin(genes, sets[planted])
    planted_probe = planted_gene[gene_idx]
    affinity[planted_probe & dead] = rng.normal(
        0.0, _PROBE_AFFINITY_SD, (planted_probe & dead).sum())
    return dict(genes=genes, gene_idx=gene_idx, base=base, loadings=loadings,
                affinity=affinity, freq=freq, phase=phase,
                planted=planted_gene.astype(np.float32))


def _basis(xyz: np.ndarray, model: dict) -> np.ndarray:
    """(S, K) smooth basis functions at sample coordinates."""
    return (np.sqrt(2.0) * np.cos(xyz @ model["freq"].T + model["phase"])
            ).astype(np.float32)


def _simulate_donor(xyz: np.ndarray, seed: int, donor_index: int,
                    sign: int, effect: float):
    """Expression (P, S) float32 and PACall (P, S) uint8 for one donor."""
    model = _gene_model(seed)
    rng = _rng(seed, "donor", donor_index)
    n_gene, n_probe, n_samp = len(model["genes"]), len(model["gene_idx"]), len(xyz)
    f32 = np.float32

    offset = rng.normal(0.0, _DONOR_OFFSET_SD, n_gene).astype(f32)
    scale = np.exp(rng.normal(0.0, _DONOR_LOGSCALE_SD, n_gene)).astype(f32)
    field = disease_field(xyz, seed).astype(f32)

    spatial = model["loadings"] @ _basis(xyz, model).T          # (G, S)
    spatial += (f32(sign * effect) * model["planted"])[:, None] * field[None]
    gene = spatial
    gene *= scale[:, None]
    gene += (model["base"] + offset)[:, None]
    gene += rng.standard_normal((n_gene, n_samp), dtype=f32) * f32(
        _GENE_NOISE_SD)

    expr = gene[model["gene_idx"]]                              # (P, S)
    expr += model["affinity"][:, None]
    expr += rng.standard_normal((n_probe, n_samp), dtype=f32) * f32(
        _PROBE_NOISE_SD)
    np.clip(expr, *_VALUE_RANGE, out=expr)
    call = rng.standard_normal((n_probe, n_samp), dtype=f32)
    call *= f32(_CALL_NOISE_SD)
    call += expr
    pacall = (call > f32(_BACKGROUND)).astype(np.uint8)
    return expr, pacall


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

def _same_mtime(paths) -> None:
    """Give the files of a donor one modification time, the latest of them.

    The workflow hard-links demo donors into the AHBA folder, so each output
    shares its input's timestamp; Snakemake refuses a job whose output is
    older than one of its inputs, which files written a few milliseconds
    apart would otherwise be (a spurious "clock skew" error).
    """
    paths = [Path(p) for p in paths if Path(p).is_file()]
    if paths:
        latest = max(p.stat().st_mtime_ns for p in paths)
        for p in paths:
            os.utime(p, ns=(latest, latest))


def generate_donors(out_dir, *, seed=0,
                    samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                    truth_path=None, sign=1,
                    effect_size=DEFAULT_EFFECT_SIZE, pad_probes=False,
                    digits=4) -> dict[str, Path]:
    """Write the six demo donor folders in AHBA format.

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir``; folders go to
        ``<out_dir>/microarray/normalized_microarray_donor{id}/``.
    seed : int, optional
        Seed for wells, expression, gene sets and field. Same seed and
        arguments -> byte-identical files.
    samples_per_donor : int or None, optional
        Wells per donor (reproducible subsample favouring an even spread over
        cortical parcels); ``None`` uses all 3,702 real wells.
    truth_path : str or Path, optional
        If given, also write the truth JSON there (see :func:`write_truth`).
    sign : {1, -1}, optional
        Direction in which the planted genes follow :func:`disease_field`.
    effect_size : float, optional
        Planted effect, log2 units per unit of field.
    pad_probes : bool, optional
        Add probes that abagen's reannotation drops (names it does not know,
        no gene), up to the real 58,692 rows per matrix. They change no
        result but make every CSV as long as the real one, for benchmarks.
    digits : int, optional
        Significant digits printed per expression value (4: small files;
        15: as in the real AHBA, about twice the bytes to parse).

    Returns
    -------
    dict of str -> Path
        Donor id -> donor folder.

    Raises
    ------
    ValueError
        On an invalid seed, samples_per_donor, sign or effect_size, or if
        `out_dir` exists and is not a directory.
    """
    seed = _check_seed(seed)
    n = _check_samples_per_donor(samples_per_donor)
    sign, effect = _check_sign_effect(sign, effect_size)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir exists and is not a directory: {out_dir}")

    if not isinstance(digits, (int, np.integer)) or isinstance(digits, bool) \
            or not 2 <= digits <= 15:
        raise ValueError(f"digits must be an integer from 2 to 15, got {digits!r}")
    wells = donor_wells(n, seed)
    probe_table = _probe_table()
    n_model = len(probe_table)
    if pad_probes:
        probe_table = _pad_probe_table(probe_table)
    probe_csv = probe_table.to_csv(index=False, lineterminator="\n").encode()
    onto_csv = _ontology().to_csv(index=False, lineterminator="\n").encode()
    probe_ids = probe_table["probe_id"].to_numpy()

    folders = {}
    for k, donor in enumerate(DONOR_IDS):
        folder = out_dir / "microarray" / _DONOR_DIR.format(donor)
        folder.mkdir(parents=True, exist_ok=True)
        w = wells[donor]
        expr, pacall = _simulate_donor(
            w[["mni_x", "mni_y", "mni_z"]].to_numpy(), seed, k, sign, effect)
        if len(probe_table) > n_model:
            expr, pacall = _pad_values(expr, pacall, len(probe_table) - n_model,
                                       seed, k)
        _write_bytes(folder / "Probes.csv", probe_csv)
        _write_bytes(folder / "Ontology.csv", onto_csv)
        _write_frame(folder / "SampleAnnot.csv", _annotation(w),
                     float_format="%.10g")
        _write_matrix(folder / "PACall.csv", probe_ids, pacall, _format_pacall)
        # 15-digit cells take ~4x the scratch memory per row: smaller chunks
        _write_matrix(folder / "MicroarrayExpression.csv", probe_ids, expr,
                      functools.partial(_format_expression, digits=int(digits)),
                      chunk=4096 if digits <= 4 else 1024)
        folders[donor] = folder
    _same_mtime(f for folder in folders.values() for f in folder.iterdir())

    if truth_path is not None:
        write_truth(truth_path, seed=seed, sign=sign, effect_size=effect,
                    extra={"samples_per_donor": n,
                           "donor_samples": {d: len(w) for d, w in
                                             wells.items()}})
    return folders


# ---------------------------------------------------------------------------
# RNA-seq donors (abagen's probe_selection='rnaseq')
# ---------------------------------------------------------------------------

#: The demo donors that get RNA-seq, as in the real atlas.
RNASEQ_DONOR_IDS = BILATERAL_DONORS

_RNASEQ_DIR = "rnaseq_donor{}"
_RNASEQ_UID = {"9861": "H0351.2001", "10021": "H0351.2002"}
_RNASEQ_NOISE_SD = 0.3      # log2 units: RNA-seq vs the true gene level
_RNASEQ_OFFSET_SD = 0.5     # per gene: platform differences (length, GC...)
_RNASEQ_DETECTION = 0.5     # TPM below this is reported as 0 (not seen): ~0.15 %

__all__ += ["RNASEQ_DONOR_IDS", "write_rnaseq_donor", "generate_rnaseq_donors"]


def _gene_values(xyz: np.ndarray, seed: int, donor_index: int, sign: int,
                 effect: float):
    """The gene-level values (G, S) :func:`_simulate_donor` draws for a donor.

    The same random stream and float32 arithmetic in the same order, so the
    result is bit-identical to the ``gene`` matrix behind that donor's
    microarray; the generator is returned positioned where
    :func:`_simulate_donor` goes on to draw the probe noise (the tests use
    that to check the identity).
    """
    model = _gene_model(seed)
    rng = _rng(seed, "donor", donor_index)
    n_gene, n_samp = len(model["genes"]), len(xyz)
    f32 = np.float32
    offset = rng.normal(0.0, _DONOR_OFFSET_SD, n_gene).astype(f32)
    scale = np.exp(rng.normal(0.0, _DONOR_LOGSCALE_SD, n_gene)).astype(f32)
    field = disease_field(xyz, seed).astype(f32)
    gene = model["loadings"] @ _basis(xyz, model).T
    gene += (f32(sign * effect) * model["planted"])[:, None] * field[None]
    gene *= scale[:, None]
    gene += (model["base"] + offset)[:, None]
    gene += rng.standard_normal((n_gene, n_samp), dtype=f32) * f32(_GENE_NOISE_SD)
    return gene, rng


@functools.lru_cache(maxsize=1)
def _rnaseq_genes() -> pd.DataFrame:
    """Genes.csv: one row per demo gene symbol, the AHBA RNA-seq columns.

    gene_id / entrez_id are those of the demo Probes.csv; the location and
    length fields are placeholders (abagen does not read them).
    """
    probes = _probe_table().drop_duplicates("gene_symbol").set_index("gene_symbol")
    genes = _gene_model(0)["genes"]  # the symbols do not depend on the seed
    rng = _rng(0, "rnaseq_genes")
    n = len(genes)
    start = rng.integers(1_000_000, 200_000_000, n)
    genome_len = rng.integers(1_000, 200_000, n)
    return pd.DataFrame({
        "gene_symbol": genes,
        "gene_id": probes.loc[genes, "gene_id"].to_numpy(),
        "entrez_id": probes.loc[genes, "entrez_id"].to_numpy(),
        "chromosome": rng.integers(1, 23, n).astype(str),
        "strand": np.where(rng.random(n) < 0.5, "+", "-"),
        "number_of_transcripts": rng.integers(1, 12, n),
        "median_transcriptome_length": rng.integers(500, 8_000, n),
        "median_genome_length": genome_len,
        "median_number_of_exons": rng.integers(1, 30, n),
        "median_gene_start": start,
        "median_gene_end": start + genome_len,
    })


def _rnaseq_annotation(wells: pd.DataFrame, donor: str,
                       rng: np.random.Generator) -> pd.DataFrame:
    """RNA-seq SampleAnnot.csv rows: the AHBA RNA-seq columns.

    abagen reads ``ontology_structure_id`` (renamed ``structure_id``) to
    average samples per structure; ``well_id`` links each sample to its
    microarray sample, as in the real files. Quality columns are plausible
    placeholders.
    """
    onto = _ontology().set_index(["acronym", "hemisphere"])
    leaf = onto.loc[list(zip(wells["leaf"], wells["hemisphere"]))]
    n = len(wells)
    main = np.select(
        [wells["leaf"] == "cerebellarcortex",
         np.isin(wells["leaf"], ["mesencephalon", "pons", "myelencephalon"])],
        ["CB", "BS"], "CX")
    names = [f"demo_{donor}_{w}" for w in wells["well_id"]]
    base = rng.dirichlet([30, 20, 22, 28], n) * 100
    return pd.DataFrame({
        "RNAseq_sample_name": names,
        "replicate_sample": "no",
        "sample_name": names,
        "well_id": wells["well_id"].to_numpy(),
        "microarray_run_id": 800000 + wells["well_id"].to_numpy() % 100000,
        "ontology_color": leaf["color_hex_triplet"].to_numpy(),
        "main_structure": main,
        "sub_structure": wells["leaf"].to_numpy(),
        "ontology_structure_id": leaf["id"].to_numpy(),
        "ontology_structure_acronym": wells["leaf"].to_numpy(),
        "hemisphere": wells["hemisphere"].to_numpy(),
        "brain": _RNASEQ_UID[donor],
        "million_clusters": np.round(rng.uniform(15, 45, n), 2),
        "clip_percentage": np.round(rng.uniform(0.5, 5, n), 2),
        "RIN_RNA_quality": np.round(rng.uniform(5, 9, n), 1),
        "rnaseq_run_id": 700000 + np.arange(n),
        "A.Pct": np.round(base[:, 0], 2), "C.Pct": np.round(base[:, 1], 2),
        "G.Pct": np.round(base[:, 2], 2), "T.Pct": np.round(base[:, 3], 2),
        "N.Pct": 0.0,
    })


def _write_gene_matrix(path, genes: np.ndarray, values: np.ndarray,
                       fmt: str) -> Path:
    """Gene x sample matrix as AHBA prints it: no header, symbol in column 0."""
    frame = pd.DataFrame(values, index=genes)
    text = frame.to_csv(header=False, lineterminator="\n", float_format=fmt)
    return _write_bytes(path, text.encode("utf-8"))


def write_rnaseq_donor(out_dir, donor, *, seed=0,
                       samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                       n_samples=None, sign=1,
                       effect_size=DEFAULT_EFFECT_SIZE) -> Path:
    """Write one demo RNA-seq donor in AHBA format, consistent with its microarray.

    Writes ``<out_dir>/rnaseq/rnaseq_donor{donor}/`` with ``Genes.csv``,
    ``Ontology.csv``, ``RNAseqCounts.csv``, ``RNAseqTPM.csv`` (both without
    header, gene symbol in column 0, one column per sample) and
    ``SampleAnnot.csv`` (one row per sample, same order), which is what
    abagen 0.1.3 reads for ``probe_selection='rnaseq'``.

    The samples are (a subset of) the wells of the same demo donor written by
    :func:`generate_donors` with the same `seed` and `samples_per_donor`
    (same well ids and structure ids), and the genes are the same symbols.
    Expression follows the same gene-level values the microarray probes were
    drawn from (bit-identical; see :func:`_gene_values`)::

        log2 rna[g, s] = gene[g, s] + rna_offset[g] + noise[g, s]
        TPM[:, s]      = 2 ** log2 rna[:, s] scaled to sum to 1e6
                         (values below 0.5 reported as 0, "not seen")

    so the probe that tracks its gene best (a live, unclipped probe) is the
    one abagen's ``rnaseq`` selection should pick. The planted signal comes
    with `gene`; ``effect_size=0`` leaves it out.

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir`` (the same as for :func:`generate_donors`).
    donor : str or int
        ``9861`` or ``10021`` (the donors with RNA-seq in the real atlas).
    seed : int, optional
        Demo seed; must match :func:`generate_donors` for consistent data.
    samples_per_donor : int or None, optional
        As given to :func:`generate_donors` (defines the donor's wells).
    n_samples : int, optional
        Keep a reproducible random subset of this many of the donor's wells
        (the real RNA-seq covers a subset of the microarray samples); all of
        them by default.
    sign : {1, -1}, optional
        Direction of the planted effect, as for :func:`generate_donors`.
    effect_size : float, optional
        Planted effect, as for :func:`generate_donors`; 0 for none.

    Returns
    -------
    Path
        The RNA-seq donor folder.

    Raises
    ------
    ValueError
        On a donor without RNA-seq, or invalid seed, sizes, sign or effect.
    """
    seed = _check_seed(seed)
    n = _check_samples_per_donor(samples_per_donor)
    sign, effect = _check_sign_effect(sign, effect_size)
    donor = str(donor).strip()
    if donor not in RNASEQ_DONOR_IDS:
        raise ValueError(f"demo RNA-seq exists only for donors {', '.join(RNASEQ_DONOR_IDS)} "
                         f"(as in the AHBA), not {donor!r}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir exists and is not a directory: {out_dir}")

    wells = donor_wells(n, seed)[donor]
    k = DONOR_IDS.index(donor)
    gene, _ = _gene_values(wells[["mni_x", "mni_y", "mni_z"]].to_numpy(), seed, k,
                           sign, effect)
    rng = _rng(seed, "rnaseq", k)
    if n_samples is not None:
        if isinstance(n_samples, (bool, np.bool_)) or not isinstance(
                n_samples, (int, np.integer)) or not 2 <= n_samples <= len(wells):
            raise ValueError(f"n_samples must be an integer from 2 to {len(wells)} (the "
                             f"donor's demo wells), got {n_samples!r}")
        keep = np.sort(rng.choice(len(wells), size=int(n_samples), replace=False))
        wells, gene = wells.iloc[keep].reset_index(drop=True), gene[:, keep]

    model = _gene_model(seed)
    n_gene, n_samp = gene.shape
    log_rna = gene.astype(np.float64)
    log_rna += _rng(seed, "rnaseq_offset").normal(0.0, _RNASEQ_OFFSET_SD, n_gene)[:, None]
    log_rna += rng.normal(0.0, _RNASEQ_NOISE_SD, (n_gene, n_samp))
    rna = np.exp2(log_rna)
    tpm = rna / rna.sum(axis=0, keepdims=True) * 1e6
    tpm[tpm < _RNASEQ_DETECTION] = 0.0
    genes = _rnaseq_genes()
    length_kb = genes["median_transcriptome_length"].to_numpy()[:, None] / 1000.0
    annot = _rnaseq_annotation(wells, donor, rng)
    # fragments ~ TPM x length x depth; fractional like RSEM's expected counts
    counts = tpm * length_kb * annot["million_clusters"].to_numpy()[None] / 50.0

    folder = out_dir / "rnaseq" / _RNASEQ_DIR.format(donor)
    folder.mkdir(parents=True, exist_ok=True)
    _write_frame(folder / "Genes.csv", genes)
    _write_bytes(folder / "Ontology.csv",
                 _ontology().to_csv(index=False, lineterminator="\n").encode())
    _write_frame(folder / "SampleAnnot.csv", annot)
    _write_gene_matrix(folder / "RNAseqTPM.csv", model["genes"], tpm, "%.5g")
    _write_gene_matrix(folder / "RNAseqCounts.csv", model["genes"], counts, "%.2f")
    _same_mtime(folder.iterdir())
    return folder


def generate_rnaseq_donors(out_dir, *, seed=0,
                           samples_per_donor=DEFAULT_SAMPLES_PER_DONOR,
                           donors=RNASEQ_DONOR_IDS, n_samples=None, sign=1,
                           effect_size=DEFAULT_EFFECT_SIZE) -> dict[str, Path]:
    """Write the demo RNA-seq donors (see :func:`write_rnaseq_donor`).

    Parameters
    ----------
    out_dir : str or Path
        abagen ``data_dir``.
    seed, samples_per_donor, n_samples, sign, effect_size
        As for :func:`write_rnaseq_donor` (match :func:`generate_donors`).
    donors : iterable of str, optional
        Donors to write; those without RNA-seq are an error.

    Returns
    -------
    dict of str -> Path
        Donor id -> RNA-seq donor folder.
    """
    return {str(d): write_rnaseq_donor(out_dir, d, seed=seed,
                                       samples_per_donor=samples_per_donor,
                                       n_samples=n_samples, sign=sign,
                                       effect_size=effect_size)
            for d in donors}
