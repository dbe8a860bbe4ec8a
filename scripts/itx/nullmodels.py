"""The null-model registry: every spatial null family, declared once.

A null family is what the workflow offers under one name in ``nulls.method``
(cortex), ``nulls.subcortex_method`` or the maps sheet's ``null_method``.
Each :class:`NullModel` says what the family is made from, whether it needs
the atlas's surface label files, which per-atlas file (artefact) it reads,
and how null maps are made: one :func:`make <NullModel.make>` callable with
the same signature for every family (a :class:`NullPart` in, an
``(n_rows, n_perm)`` array out). Everything else follows from the registry:

* the workflow's DAG: the inputs of rule map_nulls (:func:`map_null_inputs`)
  and the ``{method}`` wildcard of the spin files (:func:`wildcard_pattern`);
* the rule script map_nulls (:func:`map_nulls`: read the files, make, return);
* the calibration study's dispatcher (``scripts/tools/calibrate_nulls.py``);
* the schema enums (``workflow/schemas/*.yaml`` stay static files; a test
  keeps them equal to :func:`names`).

Adding a family: write its ``make`` (and, if it needs one, a per-atlas
artefact and the rule that writes it), add one :class:`NullModel` to
:data:`REGISTRY`, add its name to the two schema enums (the test says
where).

What families are made from (:data:`ARTEFACTS`):

``spins``
    Map-independent resampling indices over the scope, one file per family
    (rule spins; :func:`itx.nullmaps.scope_index`).
``weights``
    ``cornblath`` averaging weights over the cortical rows (rule
    spin_weights; :func:`itx.vertexspins.spin_weights`).
``distance``
    The parcel distance matrix over the scope (rule null_distance); the
    surrogates are fitted to each map's values.
``vertex``
    For each rotation the source vertex of every parcel vertex (rule
    vertex_spins; :func:`itx.vertexspins.make_vertex_spins`); the map itself must
    be given at vertex level (GIFTI).
``groups``
    Nothing per atlas: permutations within structure x hemisphere, drawn
    for each map from the seed (cheap, and equal to the subcortical rows of
    the spin files, which are drawn from the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np

from .catalog import DENSITIES

__all__ = [
    "ARTEFACTS",
    "AUTO",
    "REGISTRY",
    "Artefact",
    "NullModel",
    "NullPart",
    "artefact_path",
    "get",
    "load_artefact",
    "make_part",
    "map_null_inputs",
    "map_nulls",
    "names",
    "vertex_map",
    "wildcard_pattern",
]

#: Vertices of one fsaverage5 hemisphere. Vertex maps on fsaverage6/7 are
#: spun at their first 10,242 vertices: the meshes are nested, so these are
#: the fsaverage5 vertices themselves (the spins rotate fsaverage5).
FSAVERAGE5_VERTICES = DENSITIES["fsaverage5"]


@dataclass(frozen=True)
class NullPart:
    """Everything a family's ``make`` gets: one part (cortex or subcortex).

    Attributes
    ----------
    values : (n,) numpy.ndarray of float
        The map's values on the part's rows (NaN = no value).
    n_perm : int
        Number of null maps.
    seed : int
        The part's seed (the workflow derives one per part,
        :func:`itx.nullmaps.derive_seed`).
    artefact : object, optional
        The family's per-atlas artefact, restricted to the part's rows:
        resampling indices (``spins``), sparse weights (``weights``), the
        distance matrix (``distance``), :class:`itx.vertexspins.VertexSpins`
        (``vertex``); None for ``groups``.
    vertex_data : (2,) sequence, optional
        (left, right) vertex maps (``vertex`` families).
    groups : (n,) array_like, optional
        Exchangeability group of each row (``groups`` families).
    """

    values: np.ndarray
    n_perm: int
    seed: int
    artefact: Any = None
    vertex_data: Any = None
    groups: Any = None


@dataclass(frozen=True)
class NullModel:
    """One null family.

    Attributes
    ----------
    name : str
        The name in the config, the maps sheet and file names.
    made_from : {'spins', 'weights', 'distance', 'vertex', 'groups'}
        What it is made from (a key of :data:`ARTEFACTS`).
    parts : tuple of {'cortex', 'subcortex'}
        Which regions it may serve (``nulls.method`` / ``subcortex_method``).
    needs_surface : bool
        Rotates the fsaverage sphere, so the atlas needs surface label files.
    make : callable
        ``make(part: NullPart) -> (n, n_perm) numpy.ndarray`` of null values.
    summary : str
        What the family does, in one line (its false-positive rates are in
        ``docs/calibration.md``, measured by ``scripts/tools/calibrate_nulls.py``).
    """

    name: str
    made_from: str
    parts: Tuple[str, ...]
    needs_surface: bool
    make: Callable[[NullPart], np.ndarray]
    summary: str = ""

    @property
    def needs_vertex_map(self) -> bool:
        """The map itself must be given at vertex level (GIFTI)."""
        return self.made_from == "vertex"

    @property
    def artefact(self) -> Optional[str]:
        """The per-atlas file it reads, relative to ``results/{atlas}/``."""
        return artefact_path(self.name, self.made_from)


@dataclass(frozen=True)
class Artefact:
    """A per-atlas file that families are made from.

    Attributes
    ----------
    path : str
        Relative to ``results/{atlas}/``; ``{method}`` is the family's name
        (one file per family).
    rule : str
        The rule that writes it.
    kind : str
        Its kind in :data:`itx.nullfiles.KINDS`.
    """

    path: str
    rule: str
    kind: str


#: Per-atlas artefacts by what families are made from (``groups``: none).
ARTEFACTS: Dict[str, Artefact] = {
    "spins": Artefact("nulls/spins_{method}.npz", "spins", "spins"),
    "weights": Artefact("nulls/weights_{method}.npz", "spin_weights", "weights"),
    "distance": Artefact("nulls/distance.npz", "null_distance", "distance"),
    "vertex": Artefact("nulls/vertex_spins.npz", "vertex_spins", "vertex_spins"),
}


def artefact_path(method: str, made_from: str) -> Optional[str]:
    """Path of a family's per-atlas file relative to ``results/{atlas}/`` (None: none)."""
    art = ARTEFACTS.get(made_from)
    return None if art is None else art.path.format(method=method)


# ----------------------------------------------------------------- make


def _from_index(part: NullPart) -> np.ndarray:
    from .nulls import apply_index

    idx = np.asarray(part.artefact)
    if idx.shape[1] != part.n_perm:
        raise ValueError(f"the spin file holds {idx.shape[1]} nulls, not n_perm = {part.n_perm}; "
                         "rerun the spins rule")
    return apply_index(part.values, idx)


def _from_weights(part: NullPart) -> np.ndarray:
    from .vertexspins import apply_weights

    n = part.values.size
    if part.artefact.shape != (n * part.n_perm, n):
        raise ValueError(f"spin weights of shape {part.artefact.shape} do not fit {n} cortical "
                         f"regions x {part.n_perm} nulls; rerun the spin_weights rule")
    return apply_weights(part.values, part.artefact)


def _from_vertex_spins(part: NullPart) -> np.ndarray:
    from .vertexspins import apply_vertex_spins

    spins = part.artefact
    expected = (part.values.size, part.n_perm)
    if (len(spins.regions), spins.n_perm) != expected:
        raise ValueError(f"vertex spins of {len(spins.regions)} regions x {spins.n_perm} "
                         f"rotations, expected {expected}; rerun the vertex_spins rule")
    if part.vertex_data is None:
        raise ValueError("vertex_spin needs the map at vertex level (a GIFTI pair)")
    return apply_vertex_spins(part.vertex_data, spins)


def _variogram(part: NullPart) -> np.ndarray:
    from .surrogates import variogram_surrogates

    return np.asarray(variogram_surrogates(part.values, part.artefact, part.n_perm, part.seed),
                      dtype=np.float64)


def _moran(part: NullPart) -> np.ndarray:
    from .surrogates import moran_surrogates

    return np.asarray(moran_surrogates(part.values, part.artefact, part.n_perm, part.seed),
                      dtype=np.float64)


def _permute(part: NullPart) -> np.ndarray:
    from .nulls import apply_index
    from .surrogates import permute_within

    return apply_index(part.values, permute_within(part.groups, part.n_perm, part.seed))


# ------------------------------------------------------------- registry

_C, _S = ("cortex",), ("subcortex",)

#: Every null family, in the order of the schema enums.
REGISTRY: Dict[str, NullModel] = {m.name: m for m in (
    NullModel("alexander_bloch", "spins", _C, True, _from_index,
              "rotated parcel centroids, nearest one (a resampling)"),
    NullModel("vasa", "spins", _C, True, _from_index,
              "rotated centroids, greedy permutation"),
    NullModel("hungarian", "spins", _C, True, _from_index,
              "rotated centroids, optimal permutation"),
    NullModel("baum", "spins", _C, True, _from_index,
              "rotated vertices, modal parcel"),
    NullModel("cornblath", "weights", _C, True, _from_weights,
              "rotated vertices, parcel means of parcel values"),
    NullModel("vertex_spin", "vertex", _C, True, _from_vertex_spins,
              "the vertex-level map rotated, then parcellated"),
    NullModel("permute", "groups", _S, False, _permute,
              "permutations within structure class x hemisphere"),
    NullModel("burt2020", "distance", _C + _S, False, _variogram,
              "variogram-matched surrogates (BrainSMASH)"),
    NullModel("moran", "distance", _C, False, _moran,
              "Moran spectral randomisation"),
)}


def get(name: str) -> NullModel:
    """The family called `name`; ValueError listing the families otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ValueError(f"unknown null method {name!r}; choose one of {list(REGISTRY)}") from None


#: What ``nulls.method: auto`` chooses, by the kind of map and atlas: the
#: best-calibrated family for each (docs/calibration.md).
AUTO: Mapping[str, str] = MappingProxyType({
    "vertex_map": "vertex_spin",   # a GIFTI map on an atlas with surface labels
    "parcels": "alexander_bloch",  # a volume or table on an atlas with surface labels
    "no_surface": "burt2020",      # an atlas without surface labels: no sphere to spin
})


def names(*, part: Optional[str] = None, made_from: Optional[str] = None) -> Tuple[str, ...]:
    """Names of the families serving `part` and/or made from `made_from`, in registry order."""
    return tuple(m.name for m in REGISTRY.values()
                 if (part is None or part in m.parts)
                 and (made_from is None or m.made_from == made_from))


def wildcard_pattern(made_from: str) -> str:
    """Regular expression of the ``{method}`` wildcard of one artefact's files."""
    return "|".join(names(made_from=made_from))


# ---------------------------------------------------------- the workflow


def map_null_inputs(base: str, map_name: str, method: str, subcortex_method: str,
                    *, atlas_files: Sequence[str] = (), has_cortex: bool = True,
                    has_subcortex: bool = True,
                    vertex_files: Sequence[str] = ()) -> Dict[str, Any]:
    """The per-atlas files rule map_nulls reads for one map.

    Parameters
    ----------
    base : str
        ``results/{atlas}``.
    map_name : str
    method, subcortex_method : str
        The map's (resolved) cortical family and the subcortical one.
    atlas_files : sequence of str
        The files the atlas is loaded from.
    has_cortex, has_subcortex : bool
        Whether the scope has such regions (a family that serves no region
        needs nothing). Kept True by default: the DAG does not know the
        scope's regions before the atlas is loaded.
    vertex_files : sequence of str
        The map's own (left, right) GIFTI files, for vertex families.

    Returns
    -------
    dict
        ``{'map': ..., 'atlas': ...}`` then one entry per artefact kind needed (``spins``,
        ``weights``, ``distance``, ``vertex_spins``), then ``vertex`` (the
        GIFTI files) for vertex families.
    """
    inputs = {"map": f"{base}/{map_name}/map.tsv", "atlas": list(atlas_files)}
    models = []
    if has_cortex:
        models.append(get(method))
    if has_subcortex:
        models.append(get(subcortex_method))
    vertex = []
    for made_from in ARTEFACTS:
        for model in models:
            if model.made_from == made_from:
                inputs[ARTEFACTS[made_from].kind] = f"{base}/{model.artefact}"
                break
    for model in models:
        if model.needs_vertex_map:
            vertex = list(vertex_files)
    if vertex:
        inputs["vertex"] = vertex
    return inputs


def load_artefact(path, made_from: str, info, *, method: Optional[str] = None):
    """Read one per-atlas artefact, checking that it was made for `info`'s regions.

    Parameters
    ----------
    path : path-like
    made_from : str
        A key of :data:`ARTEFACTS`.
    info : pandas.DataFrame
        The scope's region table.
    method : str, optional
        The family (checked against the spin file's).

    Returns
    -------
    object
        Resampling indices over the scope (int64), the weights (CSR), the
        distance matrix, or :class:`itx.vertexspins.VertexSpins`.
    """
    from . import nullfiles, nulls, vertexspins
    from .nullmaps import is_cortex

    regions = info["region"].astype(str).tolist()
    cortex = info.loc[is_cortex(info), "region"].astype(str).tolist()
    if made_from == "spins":
        spins = nulls.load_spins(path, regions)
        if method is not None and spins.method != method:
            raise nullfiles.NullFileError(f"{path} holds {spins.method} spins, not {method}; "
                                          "delete it and rerun")
        return spins.idx
    if made_from == "weights":
        from .nullmaps import load_weights

        weights, weight_regions = load_weights(path)
        nullfiles.check_regions(path, weight_regions, cortex, "weights")
        return weights
    if made_from == "distance":
        return np.asarray(nullfiles.load(path, "distance", regions)["dist"], dtype=np.float64)
    if made_from == "vertex":
        return vertexspins.load_vertex_spins(path, cortex)
    raise ValueError(f"{made_from!r} has no per-atlas file")


def vertex_map(files: Sequence, sign=1) -> list:
    """A GIFTI map's (left, right) vertex values, as the spins read them.

    The sheet's sign applies to the vertex map as to its parcellated values;
    finer meshes are taken at their fsaverage5 vertices
    (:data:`FSAVERAGE5_VERTICES`).
    """
    from .parcellate import vertex_values

    factor = float(sign or 1)
    return [factor * vertex_values(f)[:FSAVERAGE5_VERTICES] for f in files]


def make_part(model: NullModel, values, n_perm: int, seed: int, artefact=None, *,
              vertex_data=None, groups=None) -> np.ndarray:
    """``model.make`` on one part: the shared signature, spelled out."""
    part = NullPart(values=np.asarray(values, dtype=np.float64), n_perm=int(n_perm),
                    seed=int(seed), artefact=artefact, vertex_data=vertex_data, groups=groups)
    return model.make(part)


def map_nulls(values, info, method: str, subcortex_method: str, n_perm: int, seed: int,
              files: Mapping[str, Any], *, sign=1, name: Optional[str] = None) -> np.ndarray:
    """The null maps of one map over the scope, from the files of rule map_nulls.

    Parameters
    ----------
    values : (n_scope,) array_like
        The map's values, rows of `info`.
    info : pandas.DataFrame
        The scope's region table.
    method, subcortex_method : str
        Families of the cortical and the subcortical rows.
    n_perm, seed : int
    files : mapping
        Input name -> path, as :func:`map_null_inputs` names them.
    sign : optional
        The maps sheet's sign (applied to vertex maps).
    name : str, optional
        The map's name, for messages.

    Returns
    -------
    (n_scope, n_perm) numpy.ndarray
        See :func:`itx.nullmaps.null_maps`.
    """
    from .nullmaps import null_maps

    artefacts = {}
    for made_from, art in ARTEFACTS.items():
        if art.kind in files:
            chosen = method if get(method).made_from == made_from else subcortex_method
            artefacts[made_from] = load_artefact(files[art.kind], made_from, info,
                                                 method=chosen)
    vertex_data = vertex_map(files["vertex"], sign) if "vertex" in files else None
    return null_maps(values, info, method, n_perm, seed, subcortex_method=subcortex_method,
                     artefacts=artefacts, vertex_data=vertex_data, name=name)
