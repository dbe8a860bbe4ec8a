"""Read gene-set collections (GMT, CSV/TSV) and match them to expression genes.

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
"""

from __future__ import annotations

import csv
import os
import warnings
from typing import Dict, Iterable, List, Sequence, Tuple

import numpy as np
import pandas as pd

__all__ = [
    "read_gmt",
    "read_gene_set_csv",
    "read_gene_sets",
    "match_gene_sets",
]

GeneSets = Dict[str, List[str]]

#: Extensions understood by :func:`read_gene_sets` -> delimiter (None = GMT).
_FORMATS = {".gmt": None, ".csv": ",", ".tsv": "\t"}

#: Accepted names (case-insensitive) of the gene and set columns of a table.
_GENE_COLUMNS = ("gene", "genes", "symbol", "gene_symbol")
_SET_COLUMNS = ("set", "class", "gene_set", "geneset")


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
                f"{path}, row {lineno}: expected at least {need} fields, got {len(fields)}: {fields!r}"
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


def match_gene_sets(
    sets: Dict[str, Sequence[str]], genes: Sequence[str], min_size: int
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

    Returns
    -------
    membership : pandas.DataFrame
        Index ``genes`` (in the given order), one column per kept set (in
        the order of ``sets``), values 0.0/1.0.
    report : pandas.DataFrame
        One row per input set, columns ``set, n_genes_in_set,
        n_genes_found, kept, reason`` (``reason`` is empty for kept sets).

    Notes
    -----
    Symbols are matched case-insensitively (``Gfap`` finds ``GFAP``). An
    exact (case-sensitive) match wins; a case-insensitive match is used only
    when it is unambiguous, i.e. when the expression genes do not contain
    two symbols differing only in case. A symbol that occurs more than once
    among ``genes`` is ambiguous and never matched (with a warning). Several
    set symbols that resolve to the same expression gene count once.
    ``n_genes_in_set`` counts distinct symbols of the set as read.
    """
    if isinstance(min_size, (bool, np.bool_)) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
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

    def lookup(sym: str):
        hits = exact.get(sym)
        if hits is None:
            hits = folded.get(sym.casefold(), [])
        return hits[0] if len(hits) == 1 else None

    kept_cols = {}
    report = []
    for name, members in sets.items():
        symbols = list(dict.fromkeys(str(m).strip() for m in members if str(m).strip()))
        idx = sorted({i for i in map(lookup, symbols) if i is not None})
        found = len(idx)
        kept = found >= min_size
        reason = (
            ""
            if kept
            else f"only {found} of {len(symbols)} genes found in the expression data (min_size={min_size})"
        )
        report.append(
            {
                "set": name,
                "n_genes_in_set": len(symbols),
                "n_genes_found": found,
                "kept": kept,
                "reason": reason,
            }
        )
        if kept:
            col = np.zeros(len(genes))
            col[idx] = 1.0
            kept_cols[name] = col
    membership = pd.DataFrame(kept_cols, index=pd.Index(genes, name="gene"), dtype=np.float64)
    report_df = pd.DataFrame(report, columns=["set", "n_genes_in_set", "n_genes_found", "kept", "reason"])
    report_df["kept"] = report_df["kept"].astype(bool)
    return membership, report_df
