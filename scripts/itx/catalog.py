"""What the workflow fetches, and under which names: the AHBA and atlas catalogs.

Plain constants (standard library only), so the Snakemake DAG
(``workflow/rules/common.smk``), the preflight checks and the library all
name the same files without importing the download code:

- the AHBA donors (:data:`DONORS`: ids, UIDs, Allen well-known-file ids and
  known archive sizes), the official download URL (:data:`AHBA_URL`) and the
  CSVs abagen reads from each donor folder (:data:`AHBA_FILES`,
  :data:`RNASEQ_FILES`);
- the Schaefer 2018 atlases fetched from the CBIG repository at a pinned
  commit (:data:`CBIG_URL`, :func:`schaefer_files`) and the files a fetched
  atlas folder holds (:data:`FETCHED_ATLAS_FILES`);
- the fsaverage densities atlases and maps come in (:data:`DENSITIES`).

The parse-cache file names are in :mod:`itx.cache` (``AHBA_CACHE_FILES``),
the gene-set collections in :mod:`itx.genesets` (``BUILTIN_COLLECTIONS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Optional

__all__ = [
    "DENSITIES",
    "AHBA_URL",
    "AHBA_FILES",
    "RNASEQ_FILES",
    "DATASETS",
    "Donor",
    "DONORS",
    "DONOR_IDS",
    "RNASEQ_DONOR_IDS",
    "CBIG_COMMIT",
    "CBIG_URL",
    "SCHAEFER_PARCELS",
    "FETCHED_BUILTINS",
    "FETCHED_ATLAS_FILES",
    "schaefer_files",
]

# ---------------------------------------------------------------------------
# AHBA
# ---------------------------------------------------------------------------

#: Official download URL; ``{file_id}`` is the donor's well-known-file id.
AHBA_URL = "https://human.brain-map.org/api/v2/well_known_file_download/{file_id}"

#: The five CSVs abagen reads from each microarray donor folder.
AHBA_FILES = (
    "MicroarrayExpression.csv",
    "PACall.csv",
    "Probes.csv",
    "SampleAnnot.csv",
    "Ontology.csv",
)

#: The five CSVs abagen's RNA-seq reader expects in each RNA-seq donor folder
#: (abagen 0.1.3 ``datasets.fetch_rnaseq``; its ``rnaseq`` probe selection
#: reads RNAseqTPM.csv and SampleAnnot.csv, the rest must merely exist).
RNASEQ_FILES = (
    "Genes.csv",
    "Ontology.csv",
    "RNAseqCounts.csv",
    "RNAseqTPM.csv",
    "SampleAnnot.csv",
)

#: The AHBA datasets: dataset name (= abagen's folder name) -> its member CSVs.
DATASETS: Mapping[str, tuple] = MappingProxyType({
    "microarray": AHBA_FILES,
    "rnaseq": RNASEQ_FILES,
})


@dataclass(frozen=True)
class Donor:
    """One AHBA donor and its microarray archive.

    Attributes
    ----------
    id : str
        Donor id as abagen uses it (e.g. ``"9861"``).
    uid : str
        Allen donor UID (e.g. ``"H0351.2001"``).
    file_id : int
        Allen well-known-file id of the normalized microarray zip.
    size : int or None
        Size of the official zip in bytes, where known; used to reject a
        wrong or truncated download before it is unpacked.
    rnaseq_file_id : int or None
        Allen well-known-file id of the RNA-seq zip (only donors 9861 and
        10021 were sequenced).
    rnaseq_size : int or None
        Size of the official RNA-seq zip in bytes, where known.
    """

    id: str
    uid: str
    file_id: int
    size: Optional[int] = None
    rnaseq_file_id: Optional[int] = None
    rnaseq_size: Optional[int] = None

    @property
    def folder_name(self) -> str:
        """Name of the donor folder abagen expects."""
        return f"normalized_microarray_donor{self.id}"

    @property
    def has_rnaseq(self) -> bool:
        """Whether the Allen Institute published RNA-seq for this donor."""
        return self.rnaseq_file_id is not None


#: The six AHBA donors, keyed by donor id. RNA-seq file ids as in abagen
#: 0.1.3 (``datasets.fetch_rnaseq``); the RNA-seq zip sizes are not known
#: here, so they are checked only against the lock file (first fetch records).
DONORS: Mapping[str, Donor] = MappingProxyType({
    d.id: d
    for d in (
        Donor("9861", "H0351.2001", 178238387, 425_988_059, rnaseq_file_id=278447594),
        Donor("10021", "H0351.2002", 178238373, 400_957_002, rnaseq_file_id=278448166),
        Donor("12876", "H0351.1009", 178238359),
        Donor("14380", "H0351.1012", 178238316),
        Donor("15496", "H0351.1015", 178238266),
        Donor("15697", "H0351.1016", 178236545),
    )
})

#: Donor ids in the conventional order.
DONOR_IDS = tuple(DONORS)

#: The donors with RNA-seq data ("9861", "10021").
RNASEQ_DONOR_IDS = tuple(d.id for d in DONORS.values() if d.has_rnaseq)

# ---------------------------------------------------------------------------
# atlases
# ---------------------------------------------------------------------------

#: CBIG commit the Schaefer files are fetched from (pinned, never a branch).
CBIG_COMMIT = "d1454a611f7de10a3b36665e6fbb3fb6c770d140"
#: Base URL of the Schaefer 2018 parcellation folder at :data:`CBIG_COMMIT`.
CBIG_URL = (
    f"https://raw.githubusercontent.com/ThomasYeoLab/CBIG/{CBIG_COMMIT}/stable_projects/"
    "brain_parcellation/Schaefer2018_LocalGlobal/Parcellations"
)
#: Schaefer resolutions offered as built-ins (7-network order).
SCHAEFER_PARCELS = (100, 200, 400)
#: Built-in atlases that are downloaded (the rest ship with abagen).
FETCHED_BUILTINS = tuple(f"schaefer{n}" for n in SCHAEFER_PARCELS)
#: Files of a fetched atlas folder (``<resources_dir>/atlases/<builtin>/``).
FETCHED_ATLAS_FILES = ("volume.nii.gz", "lh.label.gii", "rh.label.gii", "info.tsv")

#: Vertices per hemisphere of each fsaverage density (the meshes are nested:
#: the first 10,242 vertices of fsaverage6/7 are fsaverage5's).
DENSITIES: Mapping[str, int] = MappingProxyType(
    {"fsaverage5": 10242, "fsaverage6": 40962, "fsaverage7": 163842})


def schaefer_files(n) -> dict:
    """Relative paths (under :data:`CBIG_URL`) of one Schaefer resolution's files.

    Parameters
    ----------
    n : int
        Number of parcels (100, 200 or 400).

    Returns
    -------
    dict
        ``volume`` (FSL MNI152 1 mm NIfTI), ``table`` (``_order.txt``: id,
        name, R, G, B, 0), ``lh`` and ``rh`` (fsaverage5 ``.annot``).

    Raises
    ------
    ValueError
        For another number of parcels.
    """
    if int(n) not in SCHAEFER_PARCELS:
        raise ValueError(f"Schaefer {n}: choose one of {SCHAEFER_PARCELS} parcels")
    stem = f"Schaefer2018_{int(n)}Parcels_7Networks_order"
    return {
        "volume": f"MNI/{stem}_FSLMNI152_1mm.nii.gz",
        "table": f"MNI/{stem}.txt",
        "lh": f"FreeSurfer5.3/fsaverage5/label/lh.{stem}.annot",
        "rh": f"FreeSurfer5.3/fsaverage5/label/rh.{stem}.annot",
    }
