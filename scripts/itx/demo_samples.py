"""Demo samples (part of :mod:`itx.demo`): real AHBA wells split into the six
donors, subsampled, and annotated with a small AHBA-style ontology."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from .checks import check_seed
from .demo_common import (
    BILATERAL_DONORS,
    DEFAULT_SAMPLES_PER_DONOR,
    DONOR_IDS,
    REAL_SAMPLE_COUNTS,
    _check_samples_per_donor,
    _coordinates,
    _dk,
    _dk_voxels,
    _rng,
)

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
    seed = check_seed(seed)
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
