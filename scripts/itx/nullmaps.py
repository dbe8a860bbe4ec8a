"""Null maps for one brain map: choose a null family and assemble the scope.

The null families are declared in :mod:`itx.nullmodels` (what each is made
from, one ``make`` each) and implemented in :mod:`itx.nulls` (spins of parcel
centroids or of a vertex-level map) and :mod:`itx.surrogates`
(variogram-matched and Moran surrogates, permutations within subcortical
structures). This module decides which family a map gets and puts the
cortical and subcortical parts together,
so that every downstream test (genes, gene sets, PLS, map comparisons) sees
one matrix of null maps over the analysis scope:

``values`` (n_scope, n_perm), null map ``j`` in column ``j``, rows in the
order of the scope's region table, NaN where a null has no value for a
region.

Columns of the cortical and the subcortical part are paired (null ``j`` of
the cortex with null ``j`` of the subcortex), so a cortex + subcortex map gets
one coherent null per column. The two parts are independent: no accepted
null moves a value between cortex and subcortex.

Which null by default (``method: auto``), from the calibration on real genes
(``docs/calibration.md``): a map given at vertex level (GIFTI) is spun
before parcellating (``vertex_spin``, the reference); a parcel-level map on an
atlas with a surface gets ``alexander_bloch``; an atlas with no surface
(volume-only) gets variogram surrogates on Euclidean centroid distances
(``burt2020``). Subcortical regions are permuted within structure class and
hemisphere.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd

from . import nullmodels
from .nullmodels import names as _registry_names

# one implementation of "values[idx] with NaN at -1", re-exported for callers of this module
from .nulls import apply_index

__all__ = [
    "CORTEX_METHODS",
    "INDEX_METHODS",
    "SUBCORTEX_METHODS",
    "VALUE_METHODS",
    "WEIGHT_METHODS",
    "NullMaps",
    "apply_index",
    "check_map_in_scope",
    "derive_seed",
    "is_cortex",
    "load_distance",
    "load_null_maps",
    "load_weights",
    "null_maps",
    "resolve_method",
    "save_distance",
    "save_null_maps",
    "save_weights",
    "scope_index",
    "subcortex_groups",
]

# The families and what each is made from are declared once, in
# itx.nullmodels.REGISTRY; these names follow from it.
#: Families made from map-independent resampling indices (rule spins).
INDEX_METHODS = _registry_names(made_from="spins")
#: Families made from map-independent averaging weights (rule spin_weights).
WEIGHT_METHODS = _registry_names(made_from="weights")
#: Surrogates fitted to the map's own values on a distance matrix.
VALUE_METHODS = _registry_names(made_from="distance")
#: Every family for cortical regions; ``vertex_spin`` needs a vertex-level map.
CORTEX_METHODS = _registry_names(part="cortex")
#: Families for subcortical regions.
SUBCORTEX_METHODS = _registry_names(part="subcortex")


def is_cortex(info: pd.DataFrame) -> np.ndarray:
    """Boolean mask of the cortical rows of a region table."""
    return (info["structure"].astype(str) == "cortex").to_numpy()


def subcortex_groups(info: pd.DataFrame) -> np.ndarray:
    """Exchangeability groups of non-cortical regions: structure x hemisphere.

    A permutation null may only swap values between regions of the same
    structure class (e.g. subcortex/brainstem) and hemisphere, so that left
    and right, or brainstem and striatum, never trade values.
    """
    keys = info["structure"].astype(str) + "|" + info["hemisphere"].astype(str)
    return pd.factorize(keys)[0]


def derive_seed(seed: int, part: str) -> int:
    """A reproducible seed for one part of the null (cortex, subcortex...).

    Different parts must not share a random stream (their nulls would be
    correlated by construction); deriving each from the user's seed and a
    fixed tag keeps the whole null reproducible from one number.
    """
    tag = [ord(c) for c in part]
    return int(np.random.SeedSequence([int(seed)] + tag).generate_state(1)[0])


def resolve_method(method: str, *, map_format: str, has_surface: bool) -> str:
    """The cortical null method a map gets.

    Parameters
    ----------
    method : str
        ``'auto'`` or one of :data:`CORTEX_METHODS`.
    map_format : {'nifti', 'gifti', 'table'}
        How the map was given.
    has_surface : bool
        Whether the atlas has fsaverage label files (spins need them).

    Returns
    -------
    str
        One of :data:`CORTEX_METHODS`.
    """
    if method == "auto":
        if not has_surface:
            return nullmodels.AUTO["no_surface"]
        return nullmodels.AUTO["vertex_map" if map_format == "gifti" else "parcels"]
    if method not in CORTEX_METHODS:
        raise ValueError(f"unknown null method {method!r}; choose 'auto' or one of "
                         f"{list(CORTEX_METHODS)}")
    model = nullmodels.get(method)
    if model.needs_vertex_map and map_format != "gifti":
        raise ValueError(
            f"null method {method!r} spins a vertex-level map, but this map is given as "
            f"{map_format!r}; give the map as a GIFTI pair or choose a parcel-level method "
            f"(e.g. alexander_bloch) in nulls.method or the sheet's null_method column")
    if model.needs_surface and not has_surface:
        raise ValueError(
            f"null method {method!r} rotates the fsaverage sphere, but this atlas has no "
            "surface label files; choose 'burt2020' or 'moran' (variogram / Moran surrogates "
            "on centroid distances) or 'auto'")
    return method


def _check_value_blocks(values, info, dist, method, part, name):
    """Every distance block of a part needs 0 or at least 3 map values for surrogates.

    Variogram and Moran surrogates are fitted per block of the distance
    matrix (a hemisphere's cortex, the subcortex) on the regions with a map
    value; a block with one or two values cannot be fitted. Blocks without
    any value are left NaN. Raised here, with the map and the remedy, rather
    than deep in the surrogate code.
    """
    from .distances import distance_blocks
    from .surrogates import MIN_BLOCK

    blocks = distance_blocks(dist)
    finite = np.isfinite(values)
    for b in np.unique(blocks):
        rows = np.flatnonzero(blocks == b)
        k = int(finite[rows].sum())
        if 0 < k < MIN_BLOCK:
            where = ", ".join(sorted({f"{h} {s}" for h, s in zip(info["hemisphere"].iloc[rows],
                                                                 info["structure"].iloc[rows])}))
            present = info["region"].iloc[rows[finite[rows]]].astype(str).tolist()
            label = f"map {name!r}" if name is not None else "the map"
            if part == "subcortex":
                remedy = ("set nulls.subcortex_method to 'permute', fill in the map's missing "
                          "regions there, or use a scope without the subcortex")
            else:
                remedy = ("fill in the map's missing regions there, give the map a spin null "
                          "(nulls.method or the maps sheet's null_method, e.g. alexander_bloch; "
                          "atlases with a surface) or use a scope without that hemisphere "
                          "(e.g. left_cortex)")
            raise ValueError(
                f"{label}: {method} surrogates are fitted per hemisphere / structure block, and "
                f"the {part} block ({where}, {rows.size} regions) has a value in only {k} "
                f"region(s) ({', '.join(present)}); at least {MIN_BLOCK} are needed. To test "
                f"this map, {remedy}.")


def check_map_in_scope(values, scope_name, name=None) -> None:
    """Stop a map with too few values in the analysis scope, naming it.

    Null maps are the first per-map job, so a map that cannot be tested (a
    right-hemisphere map with scope ``left_cortex``, a table for the wrong
    atlas) stops here with its reason, instead of in every test after it.

    Raises
    ------
    ValueError
        Fewer than :data:`itx.analysis.MIN_REGIONS` finite values.
    """
    from .analysis import MIN_REGIONS

    values = np.asarray(values, dtype=np.float64)
    n_values = int(np.isfinite(values).sum())
    if n_values < MIN_REGIONS:
        label = f"map {name!r}" if name else "the map"
        raise ValueError(
            f"{label} has a value in {n_values} of the {values.size} regions of the analysis "
            f"scope {scope_name!r}, too few to test (at least {MIN_REGIONS} needed): check the "
            "map's `atlas` and the config's `scope` (e.g. a right-hemisphere map with scope "
            "left_cortex), or give the map values in more regions")


def null_maps(values, info, method, n_perm, seed, *, subcortex_method="permute",
              artefacts=None, vertex_data=None, name=None) -> np.ndarray:
    """Null maps of one map over the analysis scope.

    The cortical and the subcortical rows are two parts, each made by its
    family's ``make`` (:mod:`itx.nullmodels`) with its own seed
    (:func:`derive_seed`); column ``j`` pairs null ``j`` of both.

    Parameters
    ----------
    values : array_like, shape (n_scope,)
        Map values, rows of `info` (NaN = no value).
    info : pandas.DataFrame
        Scope region table (``id, label, hemisphere, structure, region``).
    method : str
        Cortical family, one of :data:`CORTEX_METHODS` (already resolved).
    n_perm : int
        Number of null maps.
    seed : int
        Seed; the cortex and subcortex parts get derived seeds.
    subcortex_method : str
        Family of the non-cortical rows, one of :data:`SUBCORTEX_METHODS`.
    artefacts : dict, optional
        The per-atlas artefacts the families are made from, by
        :data:`itx.nullmodels.ARTEFACTS` key (:func:`itx.nullmodels.load_artefact`):
        ``'spins'`` int indices over the whole scope (n_scope, n_perm);
        ``'weights'`` sparse ``cornblath`` weights over the cortical rows;
        ``'distance'`` the (n_scope, n_scope) distance matrix (``inf``
        between parts that are not connected); ``'vertex'``
        :class:`itx.vertexspins.VertexSpins` of the cortical rows.
    vertex_data : (2,) sequence, optional
        (left, right) vertex maps, for ``vertex_spin``.
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    numpy.ndarray, shape (n_scope, n_perm)
        NaN where a null map has no value for a region: map-independent
        spins carry the map's missing regions (and the medial wall) to other
        regions, surrogates are NaN where the map is.

    Raises
    ------
    ValueError
        For ``burt2020`` / ``moran`` when a hemisphere or structure block
        has a map value in only 1 or 2 regions (too few to fit); when an
        artefact a family needs is missing or does not fit.
    """
    values = np.asarray(values, dtype=np.float64)
    n = len(info)
    if values.shape != (n,):
        raise ValueError(f"{values.shape[0]} map values for {n} scope regions")
    if int(n_perm) < 1:
        raise ValueError("n_perm must be at least 1")
    if subcortex_method not in SUBCORTEX_METHODS:
        raise ValueError(f"unknown subcortex null method {subcortex_method!r}; choose one of "
                         f"{list(SUBCORTEX_METHODS)}")
    artefacts = dict(artefacts or {})
    cortex = is_cortex(info)
    out = np.full((n, int(n_perm)), np.nan)
    for part, mask, part_method in (("cortex", cortex, method),
                                    ("subcortex", ~cortex, subcortex_method)):
        if not mask.any():
            continue
        model = nullmodels.get(part_method)
        rows = np.flatnonzero(mask)
        artefact = None
        if model.made_from in nullmodels.ARTEFACTS:
            if artefacts.get(model.made_from) is None:
                rule = nullmodels.ARTEFACTS[model.made_from].rule
                raise ValueError(f"{part_method} nulls need the {model.made_from} file of the "
                                 f"{rule} rule")
            artefact = _part_artefact(artefacts[model.made_from], model.made_from, rows, mask,
                                      part)
        if model.made_from == "distance":
            _check_value_blocks(values[rows], info.iloc[rows], artefact, part_method, part,
                                name)
        out[rows] = nullmodels.make_part(
            model, values[rows], int(n_perm), derive_seed(seed, part), artefact,
            vertex_data=vertex_data, groups=subcortex_groups(info.iloc[rows]))
    return out


def _part_artefact(artefact, made_from, rows, mask, part):
    """The rows of one part of a scope-wide artefact.

    Spin indices and distances cover the whole scope and are cut to the
    part (indices re-based to the part's rows; none may cross the part's
    boundary); weights and vertex spins are made for the cortical rows.
    """
    if made_from == "spins":
        idx = np.asarray(artefact)
        n = mask.size
        if idx.shape[0] != n:
            raise ValueError(f"the spin file has {idx.shape[0]} rows for {n} scope regions; "
                             "rerun the spins rule for this scope")
        part_idx = idx[rows]
        pos = np.full(n, -1)
        pos[rows] = np.arange(rows.size)
        ok = part_idx >= 0
        if (ok & ~mask[np.where(ok, part_idx, 0)]).any():
            raise ValueError(f"the spin file moves values across the {part} boundary")
        return np.where(ok, pos[np.where(ok, part_idx, 0)], -1)
    if made_from == "distance":
        d = np.asarray(artefact, dtype=np.float64)
        return d[np.ix_(rows, rows)]
    return artefact


def scope_index(atlas, info, method, n_perm, seed) -> np.ndarray:
    """Map-independent resampling indices over a whole analysis scope.

    Cortical rows get spins of the atlas's parcels (:func:`itx.nulls.spin_nulls`
    on the fsaverage5 sphere), non-cortical rows permutations within structure
    class and hemisphere (:func:`itx.surrogates.permute_within`); the result is
    made once per atlas and reused by every map.

    Parameters
    ----------
    atlas : itx.atlas.Atlas
        Atlas with surface label files (for the cortical spins).
    info : pandas.DataFrame
        Scope region table (rows of the result).
    method : str
        Spin method, one of :data:`INDEX_METHODS`.
    n_perm : int
        Number of nulls.
    seed : int
        Seed; parts get :func:`derive_seed` seeds.

    Returns
    -------
    numpy.ndarray of int, shape (n_scope, n_perm)
        Indices into the rows of `info`; -1 = no value.
    """
    from . import nulls

    if method not in INDEX_METHODS:
        raise ValueError(f"{method!r} is not a spin method; choose one of {list(INDEX_METHODS)}")
    cortex = is_cortex(info)
    out = np.full((len(info), int(n_perm)), -1, dtype=np.int64)
    if cortex.any():
        if atlas.surface is None:
            raise ValueError(
                f"atlas {atlas.name!r} has no surface label files, so its parcels cannot be "
                "spun; set nulls.method to 'burt2020', 'moran' or 'auto'")
        rows = np.flatnonzero(cortex)
        idx = np.asarray(nulls.spin_nulls(
            atlas.surface, nulls.fsaverage5_spheres(), info["id"].iloc[rows].tolist(),
            n_perm=int(n_perm), method=method, seed=derive_seed(seed, "cortex")))
        out[rows] = np.where(idx >= 0, rows[np.where(idx >= 0, idx, 0)], -1)
    if (~cortex).any():
        from .surrogates import permute_within

        rows = np.flatnonzero(~cortex)
        idx = np.asarray(permute_within(subcortex_groups(info.iloc[rows]), int(n_perm),
                                        derive_seed(seed, "subcortex")))
        out[rows] = np.where(idx >= 0, rows[np.where(idx >= 0, idx, 0)], -1)
    return out


class NullMaps(NamedTuple):
    """Null maps read back by :func:`load_null_maps`."""

    values: np.ndarray
    regions: list
    method: str
    seed: int

    @property
    def n_perm(self) -> int:
        return int(self.values.shape[1])


def save_null_maps(path, values, regions: Sequence[str], method: str, seed: int) -> Path:
    """Write null maps (kind ``null_maps`` of :mod:`itx.nullfiles`).

    Stored arrays: ``values`` (n_regions, n_perm) float64, ``regions``
    (unicode), ``method``, ``seed``, ``format``.
    """
    from . import nullfiles

    if Path(path).suffix != ".npz":
        raise ValueError(f"null file must end in .npz, got {path}")
    values = np.asarray(values, dtype=np.float64)
    regions = [str(r) for r in regions]
    if values.ndim != 2 or values.shape[0] != len(regions):
        raise ValueError(f"null values of shape {values.shape} for {len(regions)} regions")
    return nullfiles.save(path, "null_maps", regions, values=values, method=np.array(method),
                          seed=np.array(int(seed), dtype=np.int64))


def load_null_maps(path, regions: Optional[Sequence[str]] = None) -> NullMaps:
    """Read a file written by :func:`save_null_maps`; `regions` (optional) must match."""
    from . import nullfiles

    z = nullfiles.load(path, "null_maps", regions)
    return NullMaps(values=z["values"], regions=z["regions"], method=str(z["method"]),
                    seed=int(z["seed"]))


def save_weights(path, weights, regions: Sequence[str]) -> Path:
    """Write sparse spin weights (kind ``weights`` of :mod:`itx.nullfiles`): CSR arrays."""
    from . import nullfiles

    w = weights.tocsr()
    return nullfiles.save(path, "weights", [str(r) for r in regions], data=w.data,
                          indices=w.indices, indptr=w.indptr, shape=np.asarray(w.shape))


def load_weights(path, regions: Optional[Sequence[str]] = None):
    """Read :func:`save_weights`: (scipy.sparse.csr_matrix, list of regions)."""
    from scipy import sparse

    from . import nullfiles

    z = nullfiles.load(path, "weights", regions)
    w = sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
    return w, z["regions"]


def save_distance(path, dist, regions: Sequence[str]) -> Path:
    """Write a parcel distance matrix (kind ``distance`` of :mod:`itx.nullfiles`)."""
    from . import nullfiles

    return nullfiles.save(path, "distance", [str(r) for r in regions],
                          dist=np.asarray(dist, dtype=np.float64))


def load_distance(path, regions: Optional[Sequence[str]] = None) -> np.ndarray:
    """Read :func:`save_distance`; `regions` (optional) must match its rows."""
    from . import nullfiles

    return nullfiles.load(path, "distance", regions)["dist"]
