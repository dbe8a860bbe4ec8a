"""Demo gene sets and the truth file naming the planted one (part of
:mod:`itx.demo`)."""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .checks import check_seed
from .demo_common import DEFAULT_EFFECT_SIZE, DEMO_SET_NAMES, _check_sign_effect, _probes, _rng
from .demo_field import disease_field_params
from .demo_files import _write_bytes

_SET_SIZE_RANGE = (30, 80)


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
    sets, _ = _gene_sets(check_seed(seed))
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
    sets, planted = _gene_sets(check_seed(seed))
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
    seed = check_seed(seed)
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
