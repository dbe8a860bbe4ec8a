"""Gene-set collections: built-in sources, readers (GMT, CSV/TSV), gene matching.

All readers return an ordered ``dict`` mapping set name -> list of gene
symbols, with genes de-duplicated in first-seen order. They tolerate what
real files contain: a UTF-8 byte-order mark, CRLF (or CR) line ends,
whitespace around fields, blank lines, duplicate rows, and GMT lines padded
with empty trailing tab fields (as in the ``geneset_*.gmt`` files
distributed with the imaging-transcriptomics package).

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
"""

from __future__ import annotations

import csv
import hashlib
import os
import warnings
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
    "builtin_name",
    "collection_file",
    "fetch_collection",
    "normalise_line_ends",
    "read_gmt",
    "read_gene_set_csv",
    "read_gene_sets",
    "alias_table",
    "match_gene_sets",
]

GeneSets = Dict[str, List[str]]

#: Extensions understood by :func:`read_gene_sets` -> delimiter (None = GMT).
_FORMATS = {".gmt": None, ".csv": ",", ".tsv": "\t"}

#: Accepted names (case-insensitive) of the gene and set columns of a table.
_GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol")
_SET_COLUMNS = ("set", "class", "gene_set", "geneset")


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
        ``"csv"`` or ``"gmt"``: the format, and the extension of the fetched
        copy.
    url : str
        raw.githubusercontent.com URL at a full 40-hex commit.
    sha256 : str
        SHA-256 of the bytes served at `url`.
    sha256_lf : str
        SHA-256 of the same bytes with every CRLF / CR line end turned into
        LF. A copy whose line ends were converted (a git checkout with
        ``core.autocrlf``, the CRLF original of a file re-saved with LF) is
        the same collection to the readers, which accept any line end.
    description : str
        What the sets are.
    reference : str
        Publication.
    provenance : str
        Where the file comes from, when it differs from `url`.
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


_RAW = "https://raw.githubusercontent.com"
# alegiac95/Imaging-transcriptomics keeps the GMTs of its 1.1.3 release in a
# folder of that name; the commit is the one whose files were checked (same
# length and content as ../shared/data/genesets, whose sha256 is pinned).
_ITX_COMMIT = "355500c151c445637b3a06300d9a290ab4353eee"
_ITX_DATA = (f"{_RAW}/alegiac95/Imaging-transcriptomics/{_ITX_COMMIT}"
             "/imaging-transcriptomics-1.1.3/imaging_transcriptomics/data")

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
    )
})


def builtin_name(spec) -> Optional[str]:
    """The built-in collection a ``genesets`` config value names, or None.

    Parameters
    ----------
    spec : str or dict
        A config value: a built-in name, a file path, or a mapping
        ``{builtin: <name>, source: <path or URL>}``.

    Returns
    -------
    str or None

    Raises
    ------
    ValueError
        For a mapping without a known ``builtin``.
    """
    if isinstance(spec, Mapping):
        name = spec.get("builtin")
        if name not in BUILTIN_COLLECTIONS:
            raise ValueError(
                f"unknown built-in gene-set collection {name!r}; "
                f"known: {sorted(BUILTIN_COLLECTIONS)}"
            )
        return str(name)
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
        ``<folder>/<name>.<ext>`` for a built-in collection, else `spec`
        (a path) unchanged.
    """
    name = builtin_name(spec)
    if name is None:
        return str(spec)
    return f"{folder}/{name}.{BUILTIN_COLLECTIONS[name].ext}"


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


def _verify_collection(c: Collection, data: bytes, origin: str) -> str:
    """Raise ChecksumError unless `data` is collection `c`; say how it matched."""
    raw = hashlib.sha256(data).hexdigest()
    if raw == c.sha256:
        return "sha256"
    if hashlib.sha256(normalise_line_ends(data)).hexdigest() == c.sha256_lf:
        return "sha256 after normalising line ends"
    raise ChecksumError(
        f"gene-set collection {c.name!r}: {origin} has SHA-256 {raw} ({len(data)} bytes), "
        f"expected {c.sha256} (or {c.sha256_lf} after turning CRLF line ends into LF). "
        f"It is not the pinned file ({c.url}); use an unmodified copy, or give your own "
        "file as a path in `genesets:` instead of the built-in name"
    )


def fetch_collection(name: str, dest, source=None, *, retries: int = 3, timeout: float = 60,
                     backoff: float = 2.0, session=None) -> Path:
    """Fetch a built-in gene-set collection and verify its checksum.

    Parameters
    ----------
    name : str
        A key of :data:`BUILTIN_COLLECTIONS`.
    dest : path-like
        Where to write the file (written atomically; folders are created).
    source : str or path-like, optional
        ``None``: the pinned URL. A URL ending in ``/``: a mirror folder,
        the collection's ``filename`` is appended. Another http(s) URL: the
        file itself. A local folder: holds ``filename`` (or
        ``<name>.<ext>``). A local file: the file itself.
    retries, timeout, backoff, session
        Passed to :func:`itx.download.download` (resume, retries).

    Returns
    -------
    pathlib.Path
        `dest`.

    Raises
    ------
    ValueError
        For an unknown collection name.
    FileNotFoundError
        When a local source lacks the file.
    itx.download.ChecksumError
        When the bytes are neither the pinned file nor the pinned file with
        converted line ends (see :class:`Collection`); nothing is written.
    itx.download.DownloadError
        When the download fails.
    """
    if name not in BUILTIN_COLLECTIONS:
        raise ValueError(f"unknown built-in gene-set collection {name!r}; known: "
                         f"{sorted(BUILTIN_COLLECTIONS)}")
    c = BUILTIN_COLLECTIONS[name]
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
                   c, Path(path).read_bytes(), (src + "".join(names)) if remote else str(path)),
               what=f"gene-set collection {name!r}", where="mirror folder",
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
    header = [h.strip().lower() for h in rows[0]]

    def find(candidates: Iterable[str]):
        hits = [i for i, h in enumerate(header) if h in candidates]
        return hits[0] if len(hits) == 1 else None

    gi, si = find(_GENE_COLUMNS), find(_SET_COLUMNS)
    if gi is None or si is None:
        if len(header) == 2:
            gi, si = 0, 1
        else:
            raise ValueError(
                f"{path}: cannot identify the gene and set columns in header "
                f"{rows[0]!r}; expected columns 'gene' and 'set' (or 'class'), "
                "or exactly two columns gene,set"
            )
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


def read_gene_sets(path) -> GeneSets:
    """Read a gene-set collection, choosing the reader by file extension.

    Parameters
    ----------
    path : str or os.PathLike
        ``.gmt`` (GMT), ``.csv`` (comma-separated ``gene,set`` table) or
        ``.tsv`` (tab-separated table); the extension is case-insensitive.

    Returns
    -------
    dict
        Set name -> list of genes (see :func:`read_gmt`,
        :func:`read_gene_set_csv`).

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
            "supported: .gmt (GMT), .csv (gene,set table), .tsv (tab-separated gene,set table)"
        )
    sep = _FORMATS[ext]
    if sep is None:
        return read_gmt(path)
    return read_gene_set_csv(path, sep=sep)


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
    sets: Dict[str, Sequence[str]], genes: Sequence[str], min_size: int, aliases=None
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

    Returns
    -------
    membership : pandas.DataFrame
        Index ``genes`` (in the given order), one column per kept set (in
        the order of ``sets``), values 0.0/1.0.
    report : pandas.DataFrame
        One row per input set, columns ``set, n_genes_in_set,
        n_genes_found, n_found_direct, n_found_alias, n_missing,
        n_duplicates, kept, reason`` (``reason`` is empty for kept sets).
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
        kept = found >= min_size
        reason = (
            ""
            if kept
            else (f"only {found} of {len(symbols)} genes found in the expression data "
                  f"(min_size={min_size})")
        )
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
