"""Gene-set collections: built-in sources, readers (GMT, CSV/TSV, JSON, XLSX), gene matching.

All readers return an ordered ``dict`` mapping set name -> list of gene
symbols, with genes de-duplicated in first-seen order. They tolerate what
real files contain: a UTF-8 byte-order mark, CRLF (or CR) line ends,
whitespace around fields, blank lines, duplicate rows, and GMT lines padded
with empty trailing tab fields (as in the ``geneset_*.gmt`` files
distributed with the imaging-transcriptomics package). JSON collections
(``.json``, NiSpace's ``.collect``) map set names to gene lists (or to
gene -> weight objects, read as membership); an ``.xlsx`` workbook is read
like a CSV table whose gene cells may list several genes.

Gene symbols are kept exactly as written (apart from surrounding
whitespace); in particular nothing is converted to a missing value, so a
gene literally called ``NA`` survives. Symbols mangled by spreadsheet
programs (``2-Mar`` for MARCH2, as found in some published tables) are not
repaired; they simply fail to match and show up in the match report.

Built-in collections (:data:`BUILTIN_COLLECTIONS`) are fetched from their
public sources at pinned commits and verified by SHA-256
(:func:`fetch_collection`); a local copy or mirror can stand in for the
download. Set symbols that are not expression genes can be matched through
the probe reannotation of abagen (:func:`alias_table`): the Allen symbol of
a probe (AHBA ``Probes.csv``) is an alias of the symbol abagen reannotated
it to.

A collection is either a set of cell types (marker genes: regional
cell-type maps, multivariate models) or of functional categories (GO
terms, SynGO: enrichment only); :func:`collection_kind` says which, and
:func:`collection_size_range` gives the range of found genes a set must
have to be tested (Fulcher et al. 2021, Nat Commun 12:2669, test GO
categories of 10-200 genes: smaller ones give unstable scores, larger ones
are unspecific).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
import warnings
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from . import compat
from .download import ChecksumError, fetch_file, is_url

__all__ = [
    "BUILTIN_COLLECTIONS",
    "Collection",
    "COLLECTION_KINDS",
    "builtin_name",
    "collection_ontology",
    "ontology_source",
    "propagated_file",
    "collection_file",
    "collection_kind",
    "collection_size_range",
    "fetch_collection",
    "fetch_record",
    "normalise_line_ends",
    "read_gmt",
    "read_gene_set_csv",
    "read_gene_set_json",
    "read_gene_set_xlsx",
    "read_gene_sets",
    "alias_table",
    "match_gene_sets",
]

GeneSets = Dict[str, List[str]]

#: Extensions understood by :func:`read_gene_sets` -> format.
_FORMATS = {".gmt": "gmt", ".csv": "csv", ".tsv": "tsv", ".json": "json", ".collect": "json",
            ".xlsx": "xlsx"}

_SUPPORTED = (".gmt (GMT), .csv (gene,set table), .tsv (tab-separated gene,set table), "
              ".json or .collect (JSON object set -> genes), .xlsx (workbook gene,set table)")

#: Accepted names (case-insensitive) of the gene and set columns of a table.
_GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol")
_SET_COLUMNS = ("set", "class", "gene_set", "geneset")
# A workbook may also be a published cluster table with one row per cluster
# and its marker genes in one cell (Siletti et al. 2023, cluster_annotation.xlsx).
_XLSX_GENE_COLUMNS = _GENE_COLUMNS + ("top enriched genes",)
_XLSX_SET_COLUMNS = _SET_COLUMNS + ("supercluster",)

#: What a collection is used for: ``celltypes`` (marker genes of cell types:
#: cell-type maps, multivariate models, enrichment) or ``categories``
#: (functional categories such as GO terms: enrichment only).
COLLECTION_KINDS = ("celltypes", "categories")

# Keys a ``genesets`` config mapping may have.
_SPEC_KEYS = ("builtin", "source", "path", "kind", "min_genes", "max_genes", "ontology_source")

# Collections compared byte for byte: converting their "line ends" would
# corrupt them, so the line-end-normalised checksum does not apply.
_BINARY_EXTS = ("xlsx",)


# ---------------------------------------------------------------------------
# built-in collections
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Collection:
    """A published gene-set collection fetched from a pinned public source.

    Attributes
    ----------
    name : str
        Name used in the config (``genesets: {<key>: <name>}``).
    filename : str
        File name at the source; a mirror folder holds the file under this
        name (or under ``<name>.<ext>``).
    ext : str
        The format (an extension :func:`read_gene_sets` reads: ``"csv"``,
        ``"gmt"``, ``"collect"``, ``"xlsx"``), and the extension of the
        fetched copy.
    url : str
        raw.githubusercontent.com URL at a full 40-hex commit.
    sha256 : str
        SHA-256 of the bytes served at `url`.
    sha256_lf : str
        SHA-256 of the same bytes with every CRLF / CR line end turned into
        LF. A copy whose line ends were converted (a git checkout with
        ``core.autocrlf``, the CRLF original of a file re-saved with LF) is
        the same collection to the readers, which accept any line end. For a
        binary format (``xlsx``) it equals `sha256` and is not used: such a
        file must match byte for byte.
    description : str
        What the sets are.
    reference : str
        Publication.
    provenance : str
        Where the file comes from, when it differs from `url`.
    kind : str
        ``"celltypes"`` or ``"categories"`` (see :data:`COLLECTION_KINDS`).
    size_range : tuple of (int, int or None), optional
        Default (min, max) number of found genes a set must have to be
        tested; None: the caller's defaults (see
        :func:`collection_size_range`).
    ontology : str, optional
        An ontology of :data:`itx.ontology.BUILTIN_ONTOLOGIES` up which the
        sets' annotations are propagated before use (the true-path rule: a
        gene of a term is a gene of every ancestor term); the workflow writes
        the propagated copy beside the fetched file (:func:`collection_file`).
    """

    name: str
    filename: str
    ext: str
    url: str
    sha256: str
    sha256_lf: str
    description: str
    reference: str
    provenance: str = ""
    kind: str = "celltypes"
    size_range: Optional[Tuple[int, Optional[int]]] = None
    ontology: Optional[str] = None


_RAW = "https://raw.githubusercontent.com"
# alegiac95/Imaging-transcriptomics keeps the GMTs of its 1.1.3 release in a
# folder of that name; the commit is the one whose files were checked (same
# length and content as ../shared/data/genesets, whose sha256 is pinned).
_ITX_COMMIT = "355500c151c445637b3a06300d9a290ab4353eee"
_ITX_DATA = (f"{_RAW}/alegiac95/Imaging-transcriptomics/{_ITX_COMMIT}"
             "/imaging-transcriptomics-1.1.3/imaging_transcriptomics/data")
# LeonDLotter/NiSpace-data (the NiSpace toolbox's data, 1.1 GB): JSON
# collections {set: [genes]} written by json.dump(indent=4). The repository is
# too large to mirror here; the bytes of both files were rebuilt from the
# indexed text (the exact total length, and the length up to every 16,000-
# character page of the index, checked) and their SHA-256 is that of the
# rebuilt LF bytes, which the URL's real bytes could not be compared with
# offline (docs/genesets.md).
_NISPACE = f"{_RAW}/LeonDLotter/NiSpace-data"
_NISPACE_PSYCHENCODE_COMMIT = "e72374dd9494734e13881b445cc030795a707d07"
_NISPACE_SYNGO_COMMIT = "4b98172dc13fefec316f205a155f1f783b9d0ecc"
# linnarsson-lab/adult-human-brain: the tables of Siletti et al. 2023; the
# commit that added tables/cluster_annotation.xlsx (unchanged since).
_SILETTI_COMMIT = "134f31603a8f2e482a3af07d10e08460b86b53c5"
# zqfang/GSEApy keeps Enrichr's GO_Biological_Process_2021 library as test data.
_GSEAPY_COMMIT = "476d0aabb275ffd9b764b5035b085d8a2897fbee"

#: Built-in collections by name.
BUILTIN_COLLECTIONS: Mapping[str, Collection] = MappingProxyType({
    c.name: c
    for c in (
        Collection(
            name="seidlitz2020",
            filename="celltypes_PSP.csv",
            ext="csv",
            # The original (jms290/PolySyn_MSNs) has CRLF line ends and no
            # byte-identical copy could be checked offline; this copy is the
            # LF version whose bytes are those of ../shared/data.
            url=f"{_RAW}/netneurolab/hansen_genescognition/"
                "3b66560a8bb171f9c9f62dc3394cedd5c7289abd/CTD/celltypes_PSP.csv",
            sha256="44d1b45ec91d77a365185e11330821f1f0dd8aaecc383b53af4ebc382c7b9c31",
            sha256_lf="44d1b45ec91d77a365185e11330821f1f0dd8aaecc383b53af4ebc382c7b9c31",
            description="7 canonical cell classes (Astro, Endo, Micro, Neuro-Ex, Neuro-In, Oligo, "
                        "OPC) pooled from 5 single-cell studies; 7,152 gene-class rows",
            reference="Seidlitz J, et al. (2020) Nat Commun 11:3358",
            provenance="original: jms290/PolySyn_MSNs @ 9bb6e778942f4048b245f9a70ca2e596ce7995cc : "
                       "Data/AHBA/celltypes_PSP.csv (CRLF; accepted through sha256_lf); copied "
                       "with LF to netneurolab/hansen_genescognition : CTD/celltypes_PSP.csv",
        ),
        Collection(
            name="lake2018",
            filename="geneset_LAKE.gmt",
            ext="gmt",
            url=f"{_ITX_DATA}/geneset_LAKE.gmt",
            sha256="d82f252f8085b9c2b153e7dac83e002af77022edfa473f48d4677e16e61b191f",
            sha256_lf="f42b9411ba7d9c77c5ba4de90819d1bfed5373e8b4b926f98624931646484181",
            description="30 cell types of single-nucleus RNA-seq of adult human cortex (GMT)",
            reference="Lake BB, et al. (2018) Nat Biotechnol 36:70-80; file from the "
                      "imaging-transcriptomics package (Giacomel A, et al. 2022)",
        ),
        Collection(
            name="pooled7",
            filename="geneset_Pooled.gmt",
            ext="gmt",
            url=f"{_ITX_DATA}/geneset_Pooled.gmt",
            sha256="51f7af62abde62afedc212d6b796efe6ae46cb4570678b530a8ed56d82e833f1",
            sha256_lf="373f2da041f3ba4b53c9da356456ff3208b7b1c68ede71786d2fa37dae43a84b",
            description="the 7 classes of seidlitz2020 restricted to AHBA genes (GMT)",
            reference="Seidlitz J, et al. (2020) Nat Commun 11:3358; file from the "
                      "imaging-transcriptomics package (Giacomel A, et al. 2022)",
        ),
        Collection(
            name="psychencode2018",
            filename="collection-CellTypesPsychEncodeTPM.collect",
            ext="collect",
            url=f"{_NISPACE}/{_NISPACE_PSYCHENCODE_COMMIT}"
                "/reference/mrna/collection-CellTypesPsychEncodeTPM.collect",
            sha256="436bfa6f8a136973b7d527aa3d487b8a9674f1337991951fc2b41603316a1e23",
            sha256_lf="436bfa6f8a136973b7d527aa3d487b8a9674f1337991951fc2b41603316a1e23",
            description="24 PsychENCODE single-cell marker sets (DER-19, TPM: Adult-Ex1..8, "
                        "Adult-In1..8, Astro, Endo, Micro, OPC, Oligo, OtherNeuron, "
                        "Dev-quiescent, Dev-replicating); 592 gene-set pairs, 457 genes; "
                        "JSON. Three symbols are corrupted in the file (docs/genesets.md)",
            reference="Wang D, et al. (2018) Science 362:eaat8464 (PsychENCODE resource "
                      "DER-19_Single_cell_markergenes_TPM.xlsx); file from NiSpace "
                      "(Lotter LD, et al.)",
            provenance="bytes rebuilt from the indexed text of the file (not fetched): "
                       "the URL's real bytes could not be compared offline",
        ),
        Collection(
            name="siletti2023",
            filename="cluster_annotation.xlsx",
            ext="xlsx",
            url=f"{_RAW}/linnarsson-lab/adult-human-brain/{_SILETTI_COMMIT}"
                "/tables/cluster_annotation.xlsx",
            sha256="63fd51db48c36d1d088adfa987082ffeb085066024de2a7dbfbcec1ab92a3fc9",
            sha256_lf="63fd51db48c36d1d088adfa987082ffeb085066024de2a7dbfbcec1ab92a3fc9",
            description="31 superclusters of human brain snRNA-seq (461 clusters), each the "
                        "union of its clusters' 10 top enriched genes; 2,229 gene-set pairs, "
                        "1,665 genes; the authors' cluster table (XLSX)",
            reference="Siletti K, et al. (2023) Science 382:eadd7046",
        ),
        Collection(
            name="syngo",
            filename="collection-SynGO.collect",
            ext="collect",
            url=f"{_NISPACE}/{_NISPACE_SYNGO_COMMIT}/reference/mrna/collection-SynGO.collect",
            sha256="f26713577cb8c059aba0153707b10786e1f5c4496476792b7153304e30c47963",
            sha256_lf="f26713577cb8c059aba0153707b10786e1f5c4496476792b7153304e30c47963",
            description="303 SynGO ontology terms (cellular component and biological "
                        "process; names carry the GO id where SynGO has one), genes of child "
                        "terms included; 14,050 gene-term pairs, 1,789 genes; JSON",
            reference="Koopmans F, et al. (2019) Neuron 103:217-234 (SynGO ontologies.xlsx, "
                      "hgnc_symbol); file from NiSpace (Lotter LD, et al.)",
            provenance="bytes rebuilt from the indexed text of the file (not fetched): "
                       "the URL's real bytes could not be compared offline",
            kind="categories",
        ),
        Collection(
            name="gobp",
            filename="enrichr.GO_Biological_Process_2021.gmt",
            ext="gmt",
            url=f"{_RAW}/zqfang/GSEApy/{_GSEAPY_COMMIT}"
                "/tests/extdata/enrichr.GO_Biological_Process_2021.gmt",
            sha256="5987ce789053fdd5533393cd65b9abdb5e08e4fade7b0625a1fe234a1207eea4",
            sha256_lf="5987ce789053fdd5533393cd65b9abdb5e08e4fade7b0625a1fe234a1207eea4",
            description="6,036 Gene Ontology biological process terms, human, gene symbols "
                        "(Enrichr GO_Biological_Process_2021; names 'term (GO:nnnnnnn)'); "
                        "197,596 gene-term pairs, 14,937 genes; GMT. The file holds direct "
                        "annotations only; the workflow propagates them up GO (go_basic_2021)",
            reference="The Gene Ontology Consortium (2021) Nucleic Acids Res 49:D325; "
                      "Enrichr library (Xie Z, et al. 2021, Curr Protoc 1:e90) as distributed "
                      "with GSEApy (Fang Z, et al. 2023, Bioinformatics 39:btac757)",
            kind="categories",
            size_range=(10, 200),
            ontology="go_basic_2021",
        ),
    )
})


def _is_count(value) -> bool:
    """A positive int (bool excluded)."""
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, np.integer))
            and value >= 1)


def _check_spec(spec: Mapping) -> None:
    """Raise ValueError unless a ``genesets`` config mapping is well formed."""
    unknown = sorted(str(k) for k in spec if k not in _SPEC_KEYS)
    if unknown:
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: unknown key(s) {unknown}; "
                         f"allowed: {list(_SPEC_KEYS)}")
    if ("builtin" in spec) == ("path" in spec):
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: give exactly one of "
                         "'builtin' (a built-in collection name) or 'path' (your own file)")
    if "builtin" in spec and spec["builtin"] not in BUILTIN_COLLECTIONS:
        raise ValueError(f"unknown built-in gene-set collection {spec['builtin']!r}; "
                         f"known: {sorted(BUILTIN_COLLECTIONS)}")
    if "path" in spec and (not isinstance(spec["path"], (str, os.PathLike))
                           or not str(spec["path"]).strip()):
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: 'path' must be a file path")
    if "ontology_source" in spec and (
            "builtin" not in spec or not BUILTIN_COLLECTIONS[spec["builtin"]].ontology):
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: 'ontology_source' locates "
                         "the ontology of a built-in that propagates its sets (gobp) only")
    if "path" in spec and "source" in spec:
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: 'source' is for built-in "
                         "collections only; a file given as 'path' is read where it is")
    if "kind" in spec and spec["kind"] not in COLLECTION_KINDS:
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: kind must be one of "
                         f"{list(COLLECTION_KINDS)}, got {spec['kind']!r}")
    if "min_genes" in spec and not _is_count(spec["min_genes"]):
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: min_genes must be a "
                         f"positive integer, got {spec['min_genes']!r}")
    if ("max_genes" in spec and spec["max_genes"] is not None
            and not _is_count(spec["max_genes"])):
        raise ValueError(f"gene-set collection spec {dict(spec)!r}: max_genes must be a "
                         f"positive integer or null (no upper limit), got {spec['max_genes']!r}")


def builtin_name(spec) -> Optional[str]:
    """The built-in collection a ``genesets`` config value names, or None.

    Parameters
    ----------
    spec : str or dict
        A config value: a built-in name, a file path, or a mapping with
        either ``builtin: <name>`` (and optionally ``source: <path or URL>``)
        or ``path: <your file>``, and optionally ``kind`` (see
        :func:`collection_kind`), ``min_genes`` and ``max_genes`` (see
        :func:`collection_size_range`).

    Returns
    -------
    str or None
        The built-in name; None for a file (a path string or ``path:``).

    Raises
    ------
    ValueError
        For a mapping with an unknown ``builtin``, with both or neither of
        ``builtin`` and ``path``, with unknown keys or invalid values.
    """
    if isinstance(spec, Mapping):
        _check_spec(spec)
        return str(spec["builtin"]) if "builtin" in spec else None
    spec = str(spec)
    return spec if spec in BUILTIN_COLLECTIONS else None


def collection_file(spec, folder="resources/genesets") -> str:
    """The file a ``genesets`` config value stands for.

    Parameters
    ----------
    spec : str or dict
        See :func:`builtin_name`.
    folder : str
        Where built-in collections are fetched to.

    Returns
    -------
    str
        ``<folder>/<name>.<ext>`` for a built-in collection, the ``path`` of
        a mapping, else `spec` (a path) unchanged.
    """
    name = builtin_name(spec)
    if name is None:
        return str(spec["path"]) if isinstance(spec, Mapping) else str(spec)
    return f"{folder}/{name}.{BUILTIN_COLLECTIONS[name].ext}"


def collection_ontology(spec) -> Optional[str]:
    """The ontology a collection's sets are propagated up, or None (see
    :attr:`Collection.ontology`)."""
    name = builtin_name(spec)
    return None if name is None else BUILTIN_COLLECTIONS[name].ontology


def ontology_source(spec) -> Optional[str]:
    """A spec's ``ontology_source`` (a local obo, wheel, folder or mirror URL), or None:
    where :func:`itx.ontology.fetch_ontology` reads the ontology instead of its pinned URL."""
    return str(spec["ontology_source"]) if isinstance(spec, Mapping) and spec.get(
        "ontology_source") else None


def propagated_file(spec, folder="resources/genesets") -> Optional[str]:
    """``<folder>/<name>.propagated.gmt`` for a built-in with an ontology, else None:
    the file the workflow writes by propagating the fetched sets up the ontology."""
    name = builtin_name(spec)
    if name is None or not BUILTIN_COLLECTIONS[name].ontology:
        return None
    return f"{folder}/{name}.propagated.gmt"


def collection_kind(spec) -> str:
    """Whether a ``genesets`` config value is a cell-type or a category collection.

    Parameters
    ----------
    spec : str or dict
        See :func:`builtin_name`.

    Returns
    -------
    str
        ``"celltypes"`` or ``"categories"``: the mapping's ``kind`` if it has
        one; else the built-in's registered kind; else (your own file)
        ``"celltypes"``.

    Raises
    ------
    ValueError
        For an invalid spec (see :func:`builtin_name`).
    """
    name = builtin_name(spec)
    if isinstance(spec, Mapping) and "kind" in spec:
        return str(spec["kind"])
    return BUILTIN_COLLECTIONS[name].kind if name is not None else "celltypes"


def collection_size_range(spec, default_min: int,
                          default_max: Optional[int] = None) -> Tuple[int, Optional[int]]:
    """The range of found genes a set of a collection must have to be tested.

    Each bound comes from the first of: the spec's ``min_genes`` /
    ``max_genes``; the built-in collection's registered ``size_range``
    (``gobp``: 10-200 genes, as Fulcher et al. 2021 filter GO categories);
    `default_min` / `default_max`.

    Parameters
    ----------
    spec : str or dict
        See :func:`builtin_name`. ``max_genes: null`` in a mapping means no
        upper limit, overriding a registered one.
    default_min : int
        Positive; e.g. the config's ``celltypes.min_genes``.
    default_max : int or None
        None: no upper limit.

    Returns
    -------
    (int, int or None)
        ``(min_genes, max_genes)`` for :func:`match_gene_sets`
        (``min_size=min_genes, max_genes=max_genes``).

    Raises
    ------
    ValueError
        For an invalid spec or default, or a maximum below the minimum.
    """
    if not _is_count(default_min):
        raise ValueError(f"default_min must be a positive integer, got {default_min!r}")
    if default_max is not None and not _is_count(default_max):
        raise ValueError(f"default_max must be a positive integer or None, got {default_max!r}")
    name = builtin_name(spec)
    lo, hi = default_min, default_max
    if name is not None and BUILTIN_COLLECTIONS[name].size_range is not None:
        lo, hi = BUILTIN_COLLECTIONS[name].size_range
    if isinstance(spec, Mapping):
        lo = int(spec.get("min_genes", lo))
        hi = spec.get("max_genes", hi)
    hi = None if hi is None else int(hi)
    if hi is not None and hi < lo:
        raise ValueError(f"gene-set collection {spec!r}: max_genes={hi} is below "
                         f"min_genes={lo}; raise max_genes or lower min_genes")
    return int(lo), hi


def normalise_line_ends(data: bytes) -> bytes:
    """Turn CRLF and lone CR line ends into LF.

    Parameters
    ----------
    data : bytes

    Returns
    -------
    bytes
    """
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")


_OWN_FILE = "give your own file as a path in `genesets:` instead of the built-in name"


def _verify_collection(c: Collection, data: bytes, origin: str,
                       what: str = "gene-set collection", own_file: str = _OWN_FILE) -> str:
    """Raise ChecksumError unless `data` is collection `c`; say how it matched."""
    raw = hashlib.sha256(data).hexdigest()
    if raw == c.sha256:
        return "sha256"
    binary = c.ext in _BINARY_EXTS
    if not binary and hashlib.sha256(normalise_line_ends(data)).hexdigest() == c.sha256_lf:
        return "sha256 after normalising line ends"
    alternative = "" if binary else f" (or {c.sha256_lf} after turning CRLF line ends into LF)"
    raise ChecksumError(
        f"{what} {c.name!r}: {origin} has SHA-256 {raw} ({len(data)} bytes), "
        f"expected {c.sha256}{alternative}. "
        f"It is not the pinned file ({c.url}); use an unmodified copy, or {own_file}"
    )


def fetch_collection(name: str, dest, source=None, *, retries: int = 3, timeout: float = 60,
                     backoff: float = 2.0, session=None) -> Path:
    """Fetch a built-in gene-set collection and verify its checksum.

    `name` is a key of :data:`BUILTIN_COLLECTIONS`; everything else is as for
    :func:`fetch_record` (where `source` may point: the pinned URL, a mirror
    folder URL ending in ``/``, another URL, a local folder holding the
    collection's ``filename`` or ``<name>.<ext>``, a local file; what is
    raised; nothing written on error). Raises ValueError for an unknown name.
    """
    if name not in BUILTIN_COLLECTIONS:
        raise ValueError(f"unknown built-in gene-set collection {name!r}; known: "
                         f"{sorted(BUILTIN_COLLECTIONS)}")
    return fetch_record(BUILTIN_COLLECTIONS[name], dest, source, retries=retries,
                        timeout=timeout, backoff=backoff, session=session)


def fetch_record(record: Collection, dest, source=None, *, what: str = "gene-set collection",
                 own_file: str = _OWN_FILE, retries: int = 3, timeout: float = 60,
                 backoff: float = 2.0, session=None) -> Path:
    """Fetch the file of a pinned record and verify its checksum.

    What :func:`fetch_collection` does for a built-in name, for any
    :class:`Collection` record (e.g. the GO ontology of
    :mod:`itx.ontology`, which is not a gene-set collection).

    Parameters
    ----------
    record : Collection
        The pinned file: `url`, `filename`, `ext`, `sha256`, `sha256_lf`.
    dest : path-like
        Where to write the file (written atomically; folders are created).
    source : str or path-like, optional
        ``None``: the pinned URL. A URL ending in ``/``: a mirror folder,
        ``record.filename`` is appended. Another http(s) URL: the file
        itself. A local folder: holds ``record.filename`` (or
        ``<record.name>.<record.ext>``). A local file: the file itself.
    what : str
        How messages name the file (``"gene-set collection"``).
    own_file : str
        What a checksum-error message suggests besides an unmodified copy.
    retries, timeout, backoff, session
        Passed to :func:`itx.download.download` (resume, retries).

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    FileNotFoundError
        When a local source lacks the file.
    itx.download.ChecksumError
        When the bytes are neither the pinned file nor the pinned file with
        converted line ends (see :class:`Collection`); nothing is written.
    itx.download.DownloadError
        When the download fails.
    """
    c = record
    src = c.url if source is None else str(source).strip()
    remote = is_url(src)
    # a mirror folder (local, or a URL ending in "/") holds the file under its
    # name at the source, or (local) under the name of an earlier fetch
    if remote:
        names = (c.filename,) if src.endswith("/") else ()
    else:
        names = (c.filename, f"{c.name}.{c.ext}") if Path(src).expanduser().is_dir() else ()
    fetch_file(src, dest, names=names,
               # the pinned checksum, or the same bytes with other line ends
               verify=lambda path: _verify_collection(
                   c, Path(path).read_bytes(), (src + "".join(names)) if remote else str(path),
                   what=what, own_file=own_file),
               what=f"{what} {c.name!r}", where="mirror folder",
               hint="put the file there or give its path",
               retries=retries, timeout=timeout, backoff=backoff, session=session)
    return Path(dest)


def _read_lines(path) -> List[str]:
    """Text lines of a file, without BOM and line ends (LF, CRLF or CR)."""
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    # str.splitlines also splits on CR alone and on a few Unicode separators;
    # none of them can be part of a gene symbol.
    return text.splitlines()


def _add(sets: GeneSets, seen: Dict[str, set], name: str, gene: str) -> None:
    if name not in sets:
        sets[name] = []
        seen[name] = set()
    if gene not in seen[name]:
        seen[name].add(gene)
        sets[name].append(gene)


def read_gmt(path) -> GeneSets:
    """Read a GMT gene-set file.

    Each non-blank line is ``name <TAB> description <TAB> gene <TAB> gene ...``.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        Set name -> list of genes, in file order; genes de-duplicated within
        a set (first occurrence kept); empty fields (trailing tab padding)
        ignored. A set with no genes is kept, with an empty list.

    Raises
    ------
    ValueError
        For a line without a tab-separated description field, an empty set
        name, a set name that occurs twice, or a file without any set.
    """
    sets: GeneSets = {}
    seen: Dict[str, set] = {}
    for lineno, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) < 2:
            raise ValueError(
                f"{path}, line {lineno}: a GMT line needs tab-separated "
                "'name<TAB>description<TAB>genes...'; found no tab"
            )
        name = fields[0].strip()
        if not name:
            raise ValueError(f"{path}, line {lineno}: empty gene-set name")
        if name in sets:
            # Merging silently could hide an error in the file (two
            # different sets with one name), so refuse.
            raise ValueError(f"{path}, line {lineno}: gene set {name!r} occurs twice")
        sets[name] = []
        seen[name] = set()
        for g in fields[2:]:
            g = g.strip()
            if g:
                _add(sets, seen, name, g)
    if not sets:
        raise ValueError(f"{path}: no gene sets found")
    return sets


def _table_columns(path, header_row: Sequence[str], gene_columns: Iterable[str],
                   set_columns: Iterable[str], also: str = "") -> Tuple[int, int]:
    """Indices of the gene and set columns of a table header (see read_gene_set_csv)."""
    header = [h.strip().lower() for h in header_row]
    gene_columns, set_columns = tuple(gene_columns), tuple(set_columns)

    def find(candidates: Tuple[str, ...]):
        hits = [i for i, h in enumerate(header) if h in candidates]
        return hits[0] if len(hits) == 1 else None

    gi, si = find(gene_columns), find(set_columns)
    if gi is None or si is None:
        if len(header) == 2:
            return 0, 1
        raise ValueError(
            f"{path}: cannot identify the gene and set columns in header "
            f"{list(header_row)!r}; expected columns 'gene' and 'set' (or 'class'){also}, "
            "or exactly two columns gene,set"
        )
    return gi, si


def read_gene_set_csv(path, sep: str = ",") -> GeneSets:
    """Read a two-column table of gene-to-set assignments.

    The first row is a header. The gene column is the one named ``gene``
    (also accepted: ``genes``, ``symbol``, ``gene_symbol``) and the set
    column the one named ``set`` or ``class`` (also ``gene_set``,
    ``geneset``), case-insensitively; a table with exactly two columns and
    other names is read as ``gene, set`` in that order. Other columns, if
    the names identify the two needed ones, are ignored.

    Parameters
    ----------
    path : str or os.PathLike
    sep : str
        Field delimiter (``","`` for CSV, ``"\\t"`` for TSV).

    Returns
    -------
    dict
        Set name -> list of genes; sets in order of first appearance, genes
        de-duplicated in first-seen order (duplicate rows are harmless).
        Rows with an empty gene or set field are skipped.

    Raises
    ------
    ValueError
        If the file is empty, the columns cannot be identified, or a row has
        too few fields.
    """
    lines = [ln for ln in _read_lines(path) if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty file")
    rows = list(csv.reader(lines, delimiter=sep))
    gi, si = _table_columns(path, rows[0], _GENE_COLUMNS, _SET_COLUMNS)
    need = max(gi, si) + 1
    sets: GeneSets = {}
    seen: Dict[str, set] = {}
    for lineno, fields in enumerate(rows[1:], start=2):
        if len(fields) < need:
            raise ValueError(
                f"{path}, row {lineno}: expected at least {need} fields, "
                f"got {len(fields)}: {fields!r}"
            )
        gene, name = fields[gi].strip(), fields[si].strip()
        if gene and name:
            _add(sets, seen, name, gene)
    if not sets:
        raise ValueError(f"{path}: no gene-set rows found")
    return sets


def _json_pairs(pairs):
    """object_pairs_hook: keep a JSON object's pairs, so a repeated key can be reported."""
    return _Pairs(pairs)


class _Pairs(list):
    """The (key, value) pairs of one JSON object, in file order."""


def _json_genes(path, name: str, value) -> List[str]:
    """Gene symbols of one JSON set: a list, or an object gene -> weight."""
    if isinstance(value, _Pairs):
        # {gene: weight}: the weights rank or score genes; membership is what
        # the matcher needs, so every listed gene is a member, whatever its weight
        items = [k for k, _ in value]
    elif isinstance(value, list):
        items = value
    else:
        raise ValueError(
            f"{path}: gene set {name!r} is a {type(value).__name__}; expected a list of gene "
            "symbols (or an object gene -> weight)"
        )
    genes = []
    for item in items:
        if item is None or (isinstance(item, float) and math.isnan(item)):
            continue  # a missing value written as null / NaN (pandas output)
        if isinstance(item, bool) or not isinstance(item, (str, int)):
            raise ValueError(
                f"{path}: gene set {name!r} has the entry {item!r}; gene symbols must be "
                "strings (or integer gene ids)"
            )
        genes.append(str(item).strip())
    return genes


def read_gene_set_json(path) -> GeneSets:
    """Read a JSON gene-set collection (``.json``, NiSpace's ``.collect``).

    The file holds one object mapping set name -> list of gene symbols, or
    set name -> object ``{gene: weight}``. Weights are dropped: every gene
    listed is a member of the set, whatever its weight (the matcher uses
    membership only).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        Set name -> list of genes, in file order; genes de-duplicated within
        a set (first occurrence kept); ``null``/``NaN`` and empty entries
        skipped; integer entries (gene ids) kept as text. A set with no genes
        is kept, with an empty list.

    Raises
    ------
    ValueError
        For text that is not UTF-8 JSON, a top level that is not an object,
        an empty set name or one that occurs twice, a set that is neither a
        list nor an object, an entry that is not a string or an integer, or
        a file without any set.
    """
    with open(path, "rb") as fh:
        raw = fh.read()
    try:
        doc = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_json_pairs)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(doc, _Pairs):
        raise ValueError(f"{path}: expected a JSON object mapping set name -> list of genes, "
                         f"found a {type(doc).__name__}")
    sets: GeneSets = {}
    seen: Dict[str, set] = {}
    for key, value in doc:
        name = key.strip()
        if not name:
            raise ValueError(f"{path}: empty gene-set name")
        if name in sets:
            raise ValueError(f"{path}: gene set {name!r} occurs twice")
        sets[name] = []
        seen[name] = set()
        for gene in _json_genes(path, name, value):
            if gene:
                _add(sets, seen, name, gene)
    if not sets:
        raise ValueError(f"{path}: no gene sets found")
    return sets


def _local(tag: str) -> str:
    """An XML tag without its namespace (transitional and strict OOXML differ)."""
    return tag.rsplit("}", 1)[-1]


def _xlsx_text(node) -> str:
    """Text of a shared or inline string: its runs, without phonetic hints."""
    parts = []
    for child in node:
        kind = _local(child.tag)
        if kind == "t":
            parts.append(child.text or "")
        elif kind == "r":
            parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
    return "".join(parts)


def _xlsx_first_sheet(zf: zipfile.ZipFile) -> str:
    """Archive path of the workbook's first worksheet."""
    try:
        workbook = ET.fromstring(zf.read("xl/workbook.xml"))
        rels = ET.fromstring(zf.read("xl/_rels/workbook.xml.rels"))
    except KeyError:
        return "xl/worksheets/sheet1.xml"
    sheets = [n for n in workbook.iter() if _local(n.tag) == "sheet"]
    rid = next((v for k, v in sheets[0].attrib.items() if _local(k) == "id"), None) \
        if sheets else None
    for rel in rels.iter():
        if _local(rel.tag) == "Relationship" and rel.get("Id") == rid:
            target = rel.get("Target", "")
            if target.startswith("/"):
                return target.lstrip("/")
            return os.path.normpath(os.path.join("xl", target)).replace(os.sep, "/")
    return "xl/worksheets/sheet1.xml"


def _column_index(ref: str) -> int:
    """0-based column of a cell reference such as ``K12``."""
    letters = re.match(r"[A-Za-z]*", ref).group(0).upper()
    index = 0
    for ch in letters:
        index = index * 26 + ord(ch) - ord("A") + 1
    return index - 1


def _xlsx_rows(path) -> List[Tuple[int, List[str]]]:
    """(row number, cell texts) of the first worksheet of an .xlsx workbook."""
    try:
        with zipfile.ZipFile(path) as zf:
            shared = []
            if "xl/sharedStrings.xml" in zf.namelist():
                root = ET.fromstring(zf.read("xl/sharedStrings.xml"))
                shared = [_xlsx_text(si) for si in root if _local(si.tag) == "si"]
            sheet = ET.fromstring(zf.read(_xlsx_first_sheet(zf)))
    except (zipfile.BadZipFile, KeyError, ET.ParseError) as exc:
        raise ValueError(f"{path}: not a readable .xlsx workbook ({exc}); gene-set files "
                         f"supported: {_SUPPORTED}") from None
    rows = []
    for number, row in enumerate((n for n in sheet.iter() if _local(n.tag) == "row"), start=1):
        number = int(row.get("r", number))
        cells: Dict[int, str] = {}
        for position, cell in enumerate(c for c in row if _local(c.tag) == "c"):
            col = _column_index(cell.get("r", "")) if cell.get("r") else position
            kind = cell.get("t", "n")
            value = next((c for c in cell if _local(c.tag) == "v"), None)
            if kind == "inlineStr":
                inline = next((c for c in cell if _local(c.tag) == "is"), None)
                text = _xlsx_text(inline) if inline is not None else ""
            elif kind == "s" and value is not None:
                try:
                    text = shared[int(value.text)]
                except (ValueError, IndexError):
                    raise ValueError(f"{path}: row {number} refers to a missing shared "
                                     f"string {value.text!r}") from None
            else:
                text = (value.text or "") if value is not None else ""
            cells[col] = text
        width = max(cells) + 1 if cells else 0
        rows.append((number, [cells.get(i, "") for i in range(width)]))
    return rows


def read_gene_set_xlsx(path) -> GeneSets:
    """Read a gene-set table from the first worksheet of an ``.xlsx`` workbook.

    The first non-empty row is the header; the gene and set columns are
    found as in :func:`read_gene_set_csv`, and, for published cluster
    tables, a set column ``Supercluster`` and a gene column ``Top Enriched
    Genes`` are accepted too (Siletti et al. 2023: each row a cluster, its
    marker genes in one cell). A gene cell may list several genes separated
    by commas or semicolons; each is a member of the row's set, so a set is
    the union of the genes of its rows. Only the workbook's XML is read
    (no spreadsheet library needed); cell formulas are read as their stored
    values.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict
        Set name -> list of genes; sets in order of first appearance, genes
        de-duplicated in first-seen order. Rows with an empty gene or set
        cell are skipped.

    Raises
    ------
    ValueError
        If the file is not a readable workbook, its first sheet is empty,
        the columns cannot be identified, or no row has a gene and a set.
    """
    rows = [(n, r) for n, r in _xlsx_rows(path) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path}: the first worksheet is empty")
    gi, si = _table_columns(path, rows[0][1], _XLSX_GENE_COLUMNS, _XLSX_SET_COLUMNS,
                            also=" or 'Top Enriched Genes' and 'Supercluster'")
    sets: GeneSets = {}
    seen: Dict[str, set] = {}
    for _, cells in rows[1:]:
        name = cells[si].strip() if si < len(cells) else ""
        field = cells[gi] if gi < len(cells) else ""
        for gene in re.split(r"[,;]", field):
            gene = gene.strip()
            if gene and name:
                _add(sets, seen, name, gene)
    if not sets:
        raise ValueError(f"{path}: no gene-set rows found")
    return sets


def read_gene_sets(path) -> GeneSets:
    """Read a gene-set collection, choosing the reader by file extension.

    Parameters
    ----------
    path : str or os.PathLike
        ``.gmt`` (GMT), ``.csv`` (comma-separated ``gene,set`` table),
        ``.tsv`` (tab-separated table), ``.json`` or ``.collect`` (JSON
        object set -> genes) or ``.xlsx`` (workbook table); the extension
        is case-insensitive.

    Returns
    -------
    dict
        Set name -> list of genes (see :func:`read_gmt`,
        :func:`read_gene_set_csv`, :func:`read_gene_set_json`,
        :func:`read_gene_set_xlsx`).

    Raises
    ------
    ValueError
        For an unsupported extension (the message names the file and the
        supported formats), or a malformed file.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in _FORMATS:
        raise ValueError(
            f"{path}: unsupported gene-set file format {ext or '(no extension)'!r}; "
            f"supported: {_SUPPORTED}"
        )
    fmt = _FORMATS[ext]
    if fmt == "gmt":
        return read_gmt(path)
    if fmt == "json":
        return read_gene_set_json(path)
    if fmt == "xlsx":
        return read_gene_set_xlsx(path)
    return read_gene_set_csv(path, sep="," if fmt == "csv" else "\t")


def _abagen_reannotation() -> pd.DataFrame:
    abagen = compat.patch_abagen()

    path = Path(abagen.__file__).parent / "data" / "reannotated.csv.gz"
    return pd.read_csv(path, usecols=["probe_name", "gene_symbol"], dtype=str)


def _probe_symbols(table, what: str) -> pd.DataFrame:
    if isinstance(table, pd.DataFrame):
        df = table
    else:
        df = pd.read_csv(table, dtype=str, keep_default_na=False)
    missing = [c for c in ("probe_name", "gene_symbol") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{what} {'' if isinstance(table, pd.DataFrame) else table} lacks column(s) {missing}; "
            "expected an AHBA Probes.csv-like table with probe_name and gene_symbol"
        )
    out = df[["probe_name", "gene_symbol"]].fillna("").astype(str)
    out = out.apply(lambda col: col.str.strip())
    return out[(out["probe_name"] != "") & (out["gene_symbol"] != "")]


def alias_table(probes, reannotation=None) -> pd.DataFrame:
    """Alias -> current symbol pairs from a probe reannotation.

    A probe that the Allen Institute annotated with one symbol and abagen's
    reannotation (Arnatkeviciute et al. 2019, NeuroImage 189:353) with
    another gives a pair: the Allen symbol (often a retired name, e.g.
    ``GPR98``) is an alias of the reannotated one (``ADGRV1``), which is
    the name the expression matrix uses when ``reannotated=True``.

    Parameters
    ----------
    probes : path-like or pandas.DataFrame
        The AHBA ``Probes.csv`` (columns ``probe_name``, ``gene_symbol``;
        every donor has the same one).
    reannotation : path-like or pandas.DataFrame, optional
        Columns ``probe_name``, ``gene_symbol``; default abagen's bundled
        ``data/reannotated.csv.gz``.

    Returns
    -------
    pandas.DataFrame
        Columns ``alias, symbol, n_probes``: one row per distinct pair whose
        symbols differ other than in case, sorted by alias then symbol. An
        alias may name several symbols (the probes of a retired symbol were
        reassigned to different genes); :func:`match_gene_sets` then uses it
        only when exactly one of them is an expression gene.
    """
    allen = _probe_symbols(probes, "probe table")
    re_ = _probe_symbols(_abagen_reannotation() if reannotation is None else reannotation,
                         "reannotation table")
    pairs = allen.merge(re_, on="probe_name", suffixes=("_allen", "_re"))
    pairs = pairs[pairs["gene_symbol_allen"].str.casefold()
                  != pairs["gene_symbol_re"].str.casefold()]
    out = (pairs.groupby(["gene_symbol_allen", "gene_symbol_re"]).size()
           .rename("n_probes").reset_index()
           .rename(columns={"gene_symbol_allen": "alias", "gene_symbol_re": "symbol"}))
    out["n_probes"] = out["n_probes"].astype(np.int64)
    return out.sort_values(["alias", "symbol"], kind="stable").reset_index(drop=True)


def _alias_lookup(aliases) -> Dict[str, List[str]]:
    """casefolded alias -> current symbols, from a table or a mapping."""
    if aliases is None:
        return {}
    if isinstance(aliases, pd.DataFrame):
        missing = [c for c in ("alias", "symbol") if c not in aliases.columns]
        if missing:
            raise ValueError(f"aliases table lacks column(s) {missing}; expected alias, symbol "
                             "(see alias_table)")
        items = zip(aliases["alias"].astype(str), aliases["symbol"].astype(str))
    else:
        items = []
        for a, s in dict(aliases).items():
            for sym in ([s] if isinstance(s, str) else list(s)):
                items.append((str(a), str(sym)))
    lookup: Dict[str, List[str]] = {}
    for a, s in items:
        a, s = a.strip(), s.strip()
        if a and s:
            targets = lookup.setdefault(a.casefold(), [])
            if s not in targets:
                targets.append(s)
    return lookup


_REPORT_COLUMNS = ["set", "n_genes_in_set", "n_genes_found", "n_found_direct", "n_found_alias",
                   "n_missing", "n_duplicates", "kept", "reason"]


def match_gene_sets(
    sets: Dict[str, Sequence[str]], genes: Sequence[str], min_size: int, aliases=None,
    max_genes: Optional[int] = None,
) -> Tuple[pd.DataFrame, pd.DataFrame]:
    """Match gene sets to the genes of an expression matrix.

    Parameters
    ----------
    sets : dict
        Set name -> gene symbols (e.g. from :func:`read_gene_sets`).
    genes : sequence of str
        Gene symbols of the expression matrix, in column order.
    min_size : int
        Minimum number of a set's genes that must be found; smaller sets are
        reported and skipped.
    aliases : pandas.DataFrame or dict, optional
        Alias -> current symbol (:func:`alias_table`, columns ``alias`` and
        ``symbol``; or a dict of symbol or list of symbols). Used only for
        set symbols that match no expression gene directly.
    max_genes : int, optional
        Maximum number of a set's genes found; larger sets are reported and
        skipped (very large categories are unspecific; Fulcher et al. 2021
        test GO categories of 10-200 genes). None (default): no upper limit.
        See :func:`collection_size_range`.

    Returns
    -------
    membership : pandas.DataFrame
        Index ``genes`` (in the given order), one column per kept set (in
        the order of ``sets``), values 0.0/1.0.
    report : pandas.DataFrame
        One row per input set, columns ``set, n_genes_in_set,
        n_genes_found, n_found_direct, n_found_alias, n_missing,
        n_duplicates, kept, reason`` (``reason`` is empty for kept sets and
        says why a set was skipped: fewer than `min_size` or more than
        `max_genes` genes found).
        ``n_genes_in_set`` counts distinct symbols as given;
        ``n_genes_found`` = ``n_found_direct`` + ``n_found_alias``
        distinct expression genes; ``n_missing`` symbols matched nothing;
        ``n_duplicates`` symbols matched a gene another symbol of the set
        had already matched (case variants, an alias listed next to its
        current symbol). The four counts add up to ``n_genes_in_set``.

    Notes
    -----
    Symbols are matched case-insensitively (``Gfap`` finds ``GFAP``). An
    exact (case-sensitive) match wins; a case-insensitive match is used only
    when it is unambiguous, i.e. when the expression genes do not contain
    two symbols differing only in case. A symbol that occurs more than once
    among ``genes`` is ambiguous and never matched (with a warning). Direct
    matches of all the set's symbols are made first; a remaining symbol is
    then looked up (case-insensitively) among the aliases, and matched when
    exactly one expression gene is among its current symbols.
    """
    if (isinstance(min_size, (bool, np.bool_))
            or not isinstance(min_size, (int, np.integer)) or min_size < 1):
        raise ValueError(f"min_size must be a positive integer, got {min_size!r}")
    if max_genes is not None and (not _is_count(max_genes) or max_genes < min_size):
        raise ValueError(f"max_genes must be None or an integer >= min_size={min_size}, "
                         f"got {max_genes!r}")
    genes = [str(g) for g in genes]
    exact: Dict[str, List[int]] = {}
    folded: Dict[str, List[int]] = {}
    for i, g in enumerate(genes):
        exact.setdefault(g.strip(), []).append(i)
        folded.setdefault(g.strip().casefold(), []).append(i)
    dup = [g for g, idx in exact.items() if len(idx) > 1]
    if dup:
        # Real matrices have them (spreadsheet-mangled symbols such as
        # "Mar-01" in the abagen DK table); a symbol naming two columns
        # cannot be assigned to one gene, so it is left unmatched.
        warnings.warn(
            f"{len(dup)} gene symbols occur more than once in the expression "
            f"genes and are never matched: {dup[:10]}",
            stacklevel=2,
        )
    alias_of = _alias_lookup(aliases)

    def lookup(sym: str):
        hits = exact.get(sym)
        if hits is None:
            hits = folded.get(sym.casefold(), [])
        return hits[0] if len(hits) == 1 else None

    def via_alias(sym: str):
        hits = {lookup(t) for t in alias_of.get(sym.casefold(), [])} - {None}
        return hits.pop() if len(hits) == 1 else None

    kept_cols = {}
    report = []
    for name, members in sets.items():
        symbols = list(dict.fromkeys(str(m).strip() for m in members if str(m).strip()))
        direct = [lookup(s) for s in symbols]
        found_direct = {i for i in direct if i is not None}
        unmatched = [s for s, i in zip(symbols, direct) if i is None]
        alias_hits = [via_alias(s) for s in unmatched]
        found_alias = {i for i in alias_hits if i is not None} - found_direct
        n_missing = sum(i is None for i in alias_hits)
        found = len(found_direct) + len(found_alias)
        too_large = max_genes is not None and found > max_genes
        kept = found >= min_size and not too_large
        if kept:
            reason = ""
        elif too_large:
            reason = (f"{found} of {len(symbols)} genes found in the expression data, more "
                      f"than max_genes={max_genes}")
        else:
            reason = (f"only {found} of {len(symbols)} genes found in the expression data "
                      f"(min_size={min_size})")
        report.append(
            {
                "set": name,
                "n_genes_in_set": len(symbols),
                "n_genes_found": found,
                "n_found_direct": len(found_direct),
                "n_found_alias": len(found_alias),
                "n_missing": n_missing,
                "n_duplicates": len(symbols) - n_missing - found,
                "kept": kept,
                "reason": reason,
            }
        )
        if kept:
            col = np.zeros(len(genes))
            col[sorted(found_direct | found_alias)] = 1.0
            kept_cols[name] = col
    membership = pd.DataFrame(kept_cols, index=pd.Index(genes, name="gene"), dtype=np.float64)
    report_df = pd.DataFrame(report, columns=_REPORT_COLUMNS)
    for c in _REPORT_COLUMNS[1:-2]:
        report_df[c] = report_df[c].astype(np.int64)
    report_df["kept"] = report_df["kept"].astype(bool)
    return membership, report_df
