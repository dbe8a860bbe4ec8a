"""Schaefer 2018 atlases: fetch the CBIG files, convert them, write a ready atlas folder.

The built-ins ``schaefer100``, ``schaefer200`` and ``schaefer400`` (Schaefer
et al. 2018, 7 networks) are fetched from the CBIG repository at a pinned
commit (:data:`itx.catalog.CBIG_COMMIT`), a mirror of it, or a local folder
(works offline), through the download client :mod:`itx.download`. The FSL
MNI152 1 mm label volume is kept as it is; the two fsaverage5 ``.annot``
files become label GIFTIs whose values are the ids of the label table. The
result is checked like any atlas (:func:`itx.atlas.check_volume_atlas`,
:func:`itx.atlas.check_surface_atlas`) before it is written, and
:func:`itx.atlas.load_atlas` reads it from there.

No public source lists checksums of these files, so their size and SHA-256
are recorded in a lock file on the first verified fetch and every later
fetch (any source) must match it (:class:`itx.download.LockFile`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .atlas import (
    BACKGROUND_NAMES,
    INFO_COLUMNS,
    AtlasError,
    add_region_names,
    check_surface_atlas,
    check_volume_atlas,
)
from .catalog import CBIG_COMMIT, CBIG_URL, SCHAEFER_PARCELS, schaefer_files
from .download import LockFile, fetch_file, sha256_file
from .tables import atomic_path, write_tsv

__all__ = [
    "CBIG_COMMIT",
    "CBIG_URL",
    "SCHAEFER_PARCELS",
    "schaefer_files",
    "read_schaefer_table",
    "annot_to_label_gifti",
    "read_atlas_lock",
    "fetch_schaefer",
]

#: ``comment`` of the atlas lock file.
_LOCK_COMMENT = ("atlas file sizes and SHA-256, recorded on first verified fetch "
                 "(itx.schaefer.fetch_schaefer); later fetches must match. No public "
                 "source lists these checksums.")


def read_schaefer_table(path):
    """Region table of a Schaefer ``_order.txt`` (id, name, R, G, B, 0).

    Hemisphere comes from the ``_LH_``/``_RH_`` part of the name; every
    parcel is cortex.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path, sep="\t", header=None, dtype=str)
        ids = raw[0].astype(int)
        names = raw[1].str.strip()
    except (ValueError, KeyError, pd.errors.ParserError) as exc:
        raise AtlasError(f"{path}: not a Schaefer label table (id<TAB>name<TAB>R G B 0 "
                         f"per line): {exc}") from exc
    hemi = np.where(names.str.contains("_LH_"), "L",
                    np.where(names.str.contains("_RH_"), "R", ""))
    if (hemi == "").any():
        bad = names[hemi == ""].tolist()[:5]
        raise AtlasError(f"{path}: cannot tell the hemisphere of {bad} (no _LH_/_RH_)")
    info = pd.DataFrame({"id": ids, "label": names, "hemisphere": hemi,
                         "structure": "cortex"})
    return add_region_names(info)


def annot_to_label_gifti(annot, info, hemisphere):
    """Convert a FreeSurfer ``.annot`` to a label GIFTI whose values are table ids.

    Annotation entries are matched to the table by name (a right-hemisphere
    ``.annot`` numbers its parcels from 1 again, while the table continues
    the left hemisphere's ids); background names (:data:`BACKGROUND_NAMES`)
    and unlabelled vertices become 0.

    Parameters
    ----------
    annot : path-like
    info : pandas.DataFrame
        Region table with ``id`` and ``label``.
    hemisphere : {'L', 'R'}

    Returns
    -------
    nibabel.gifti.GiftiImage
    """
    import nibabel as nib

    try:
        vertex_idx, ctab, names = nib.freesurfer.read_annot(str(annot))
    except Exception as exc:
        raise AtlasError(f"{annot}: not a readable FreeSurfer annotation ({exc})") from exc
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    by_label = dict(zip(info["label"].astype(str), info["id"].astype(int)))
    lut = np.zeros(len(names), dtype=np.int32)
    unknown = []
    for k, name in enumerate(names):
        if name in BACKGROUND_NAMES:
            continue
        if name not in by_label:
            unknown.append(name)
            continue
        lut[k] = by_label[name]
    if unknown:
        raise AtlasError(f"{annot}: parcel name(s) {unknown[:5]} are not in the label table; "
                         "the annotation and table come from different releases")
    ids = np.where(vertex_idx >= 0, lut[np.clip(vertex_idx, 0, None)], 0).astype(np.int32)
    table = nib.gifti.GiftiLabelTable()
    bg = nib.gifti.GiftiLabel(0, 0.0, 0.0, 0.0, 0.0)
    bg.label = "Background+FreeSurfer_Defined_Medial_Wall"
    table.labels.append(bg)
    for k, name in enumerate(names):
        if lut[k] == 0:
            continue
        r, g, b = (ctab[k, :3] / 255.0).tolist()
        lab = nib.gifti.GiftiLabel(int(lut[k]), r, g, b, 1.0)
        lab.label = name
        table.labels.append(lab)
    darr = nib.gifti.GiftiDataArray(ids, intent="NIFTI_INTENT_LABEL",
                                    datatype="NIFTI_TYPE_INT32")
    img = nib.gifti.GiftiImage(darrays=[darr], labeltable=table)
    img.meta = nib.gifti.GiftiMetaData({"AnatomicalStructurePrimary":
                                        "CortexLeft" if hemisphere == "L" else "CortexRight"})
    return img



def read_atlas_lock(lock_file):
    """Entries of an atlas lock file (``{}`` if it does not exist).

    Same format as the AHBA lock file (:func:`itx.download.read_lock_file`):
    ``{"archives": {key: {"size", "sha256", "url", "recorded"}}}``, keyed
    ``schaefer/<path under CBIG_URL>``.
    """
    return LockFile(lock_file, _LOCK_COMMENT).entries()


def _obtain(rel, raw_dir, source, entry, *, retries, timeout, backoff, session, progress):
    """Put the file `rel` into `raw_dir` (download or local copy); return (path, origin)."""
    dest = raw_dir / Path(rel).name
    src = "cbig" if source is None else str(source).strip()
    remote = src.lower() == "cbig" or src.lower().startswith(("http://", "https://"))
    if remote:
        src = f"{CBIG_URL if src.lower() == 'cbig' else src.rstrip('/')}/{rel}"
    size, sha256 = (None, None) if entry is None else (entry["size"], entry["sha256"])
    origin = fetch_file(
        src, dest,
        # a local folder: the files flat, or in CBIG's layout
        names=() if remote else (rel, Path(rel).name),
        expected_size=size, sha256=sha256,
        reuse=True,  # a verified earlier download is kept
        what=f"Schaefer file {Path(rel).name}", where="atlas source folder",
        hint="put the CBIG files there (flat, or in CBIG's MNI/ and "
             "FreeSurfer5.3/fsaverage5/label/ layout), or drop 'source' to download them",
        mismatch="" if entry is None else (
            f"recorded for {rel} in the atlas lock file (from {entry.get('url')}, "
            f"{entry.get('recorded')}); if the file really changed, delete that entry and "
            "fetch again"),
        retries=retries, timeout=timeout, backoff=backoff, session=session, progress=progress,
    )
    return dest, origin


def fetch_schaefer(n, dest, source=None, *, lock_file=None, retries=3, timeout=60,
                   backoff=2.0, session=None, progress=False):
    """Fetch a Schaefer 2018 atlas (7 networks) and write it as a ready atlas folder.

    Downloads (or copies) the FSL MNI152 1 mm label volume, the label table
    and the two fsaverage5 ``.annot`` files into ``dest/download/``, converts
    the annotations to label GIFTIs whose values are the table ids, checks
    the result (:func:`itx.atlas.check_volume_atlas`,
    :func:`itx.atlas.check_surface_atlas`) and only then writes
    :data:`itx.catalog.FETCHED_ATLAS_FILES` into `dest` (each atomically),
    plus ``provenance.json`` (source URLs, commit, SHA-256).

    Parameters
    ----------
    n : {100, 200, 400}
        Number of parcels.
    dest : path-like
        Atlas folder, e.g. ``resources/atlases/<name>``.
    source : str or path-like, optional
        ``None``/``"cbig"``: the CBIG repository at :data:`CBIG_COMMIT`; an
        ``http(s)://`` URL: a mirror of CBIG's ``Parcellations`` folder (same
        relative paths); a local folder: the files, flat or in CBIG's layout
        (works offline).
    lock_file : path-like, optional
        JSON lock file: sizes and SHA-256 recorded on the first verified fetch
        of each file; later fetches (any source) must match them.
    retries, timeout, backoff, session, progress
        Passed to :func:`itx.download.download`.

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    itx.download.DownloadError, itx.download.ChecksumError, FileNotFoundError, AtlasError
    """
    import nibabel as nib

    files = schaefer_files(n)
    dest = Path(dest)
    raw_dir = dest / "download"
    raw_dir.mkdir(parents=True, exist_ok=True)
    lock = None if lock_file is None else LockFile(lock_file, _LOCK_COMMENT)
    entries = lock.entries() if lock is not None else {}
    got, origin = {}, {}
    for role, rel in files.items():
        key = f"schaefer/{rel}"
        got[role], origin[role] = _obtain(rel, raw_dir, source, entries.get(key),
                                          retries=retries, timeout=timeout, backoff=backoff,
                                          session=session, progress=progress)
    info = read_schaefer_table(got["table"])
    if len(info) != int(n):
        raise AtlasError(f"{got['table']}: {len(info)} parcels, expected {n}")
    giftis = [annot_to_label_gifti(got[h], info, hemi) for h, hemi in (("lh", "L"), ("rh", "R"))]
    blobs = [g.to_bytes() for g in giftis]
    # check everything before anything takes its final name; the GIFTIs as
    # they will be read back from their bytes
    check_volume_atlas(got["volume"], info, table=str(got["table"]))
    check_surface_atlas([nib.gifti.GiftiImage.from_bytes(b) for b in blobs], info,
                        density="fsaverage5", table=str(got["table"]))
    if lock is not None:
        for role, rel in files.items():
            lock.record(f"schaefer/{rel}", got[role], origin[role])
    with atomic_path(dest / "volume.nii.gz") as tmp:
        shutil.copyfile(got["volume"], tmp)
    for blob, name in zip(blobs, ("lh.label.gii", "rh.label.gii")):
        with atomic_path(dest / name) as tmp:
            tmp.write_bytes(blob)
    write_tsv(info.loc[:, list(INFO_COLUMNS)], dest / "info.tsv")
    provenance = {
        "atlas": f"Schaefer2018_{int(n)}Parcels_7Networks",
        "reference": "Schaefer et al. (2018) Cerebral Cortex 28:3095-3114",
        "cbig_commit": CBIG_COMMIT,
        "files": {role: {"from": origin[role], "sha256": sha256_file(got[role]),
                         "size": got[role].stat().st_size} for role in files},
    }
    with atomic_path(dest / "provenance.json") as tmp:
        tmp.write_text(json.dumps(provenance, indent=1) + "\n")
    return dest
