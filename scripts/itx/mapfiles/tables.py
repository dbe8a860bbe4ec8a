"""Region tables: one value per atlas region, in a delimited text file."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .files import _GZIP_MAGIC, _UTF16_BOMS, _file_problem, _gunzip, _read_bytes, _what_file_is
from .problems import (
    _EXAMPLES,
    MIN_REGIONS,
    REGION_COLUMNS,
    _exc,
    _raise_if,
)


@dataclass(frozen=True)
class MapTable:
    """A region table as read, with its region and value columns chosen.

    Attributes
    ----------
    path : str
    table : pandas.DataFrame
        The rows as pandas read them (column names stripped; rows with every
        cell blank dropped).
    region_column, column : str
        The region column and the value column.
    keys : pandas.Series
        Region names or integer ids, one per row.
    values : pandas.Series of float
        The value column as numbers (NaN where the cell is blank).
    """

    path: str
    table: pd.DataFrame
    region_column: str
    column: str
    keys: pd.Series
    values: pd.Series


_SEPARATOR_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon"}


def table_separator(path):
    """Separator of a region table by its name: tab for ``.tsv``/``.txt``, else comma.

    A ``.gz`` ending is looked through (``map.tsv.gz`` is tab-separated).
    """
    suffixes = [s.lower() for s in Path(str(path)).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    return "\t" if suffixes and suffixes[-1] in (".tsv", ".txt") else ","


def _cell_list(cells, rows, limit=_EXAMPLES):
    shown = [f"{c!r} in {r}" for c, r in list(zip(cells, rows))[:limit]]
    more = f" and {len(cells) - limit} more" if len(cells) > limit else ""
    return ", ".join(shown) + more


_DECIMAL_COMMA = re.compile(r"[-+]?\d*,\d+(?:[eE][-+]?\d+)?")
_THOUSANDS = re.compile(r"[-+]?\d{1,3}(?:,\d{3})+\.\d*")


def _numeric_after_comma_fix(cells):
    """Share of non-blank cells that are numbers once a decimal comma is a point."""
    text = cells.dropna().astype(str).str.strip()
    text = text[text != ""]
    if text.empty:
        return 0.0
    fixed = pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce")
    return float(fixed.notna().mean())


def _table_text(path):
    """(bytes, None) of a readable UTF-8 text table, or (None, problem)."""
    raw, problem = _read_bytes(path)
    if problem:
        return None, problem
    if raw.startswith(_GZIP_MAGIC):
        kind = _what_file_is(raw, path)
        if kind == "a gzip-compressed NIfTI image":
            return None, (f"{path}: is a NIfTI image, not a region table; set this map's format "
                          "to 'nifti'")
        if not str(path).lower().endswith(".gz"):
            return None, (f"{path}: is gzip-compressed but its name does not end in '.gz'; "
                          "decompress it, or name it '.csv.gz'/'.tsv.gz'")
        raw, problem = _gunzip(raw, path)
        if problem:
            return None, problem
    if not raw.strip():
        return None, (f"{path}: is empty; give a table with a header line (e.g. "
                      "'region<TAB>value') and one row per region")
    if raw.startswith(_UTF16_BOMS):
        return None, (f"{path}: is UTF-16 text (e.g. Excel's 'Unicode text'), not UTF-8; save it "
                      "as 'CSV UTF-8' (comma-separated) or as UTF-8 tab-separated text")
    kind = _what_file_is(raw, path)
    if kind in ("a NIfTI image", "a gzip-compressed NIfTI image"):
        return None, (f"{path}: is a NIfTI image, not a region table; set this map's format to "
                      "'nifti'")
    if kind == "a GIFTI (XML) file":
        return None, (f"{path}: is a GIFTI surface file, not a region table; set this map's "
                      "format to 'gifti' and give its path as 'left.gii,right.gii'")
    if kind is not None and kind != "a text file":
        return None, (f"{path}: is {kind}, not a text table; export the sheet as CSV "
                      "(comma-separated) or TSV (tab-separated) text, UTF-8")
    if b"\x00" in raw:
        return None, (f"{path}: is a binary file, not a text table; give a CSV (comma-separated) "
                      "or TSV (tab-separated) file of region values")
    try:
        raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        byte = raw[exc.start]
        guess = bytes([byte]).decode("cp1252", errors="replace")
        return None, (f"{path}: is not UTF-8 text (byte 0x{byte:02x} on line {line}, {guess!r} "
                      "in Windows-1252/Latin-1); save it as UTF-8 (Excel: 'CSV UTF-8'; or "
                      "iconv -f latin1 -t utf-8)")
    return raw, None


def _header_fields(raw, sep):
    """Fields of the first non-blank line, as the csv module splits them."""
    text = raw.decode("utf-8-sig")
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    return line, next(csv.reader([line], delimiter=sep), [])


def _row_names(keys, positions):
    """'row 'L_bankssts'' where the region is named, else 'data row 7' (header not counted)."""
    names = []
    for pos in positions:
        key = keys.iloc[pos]
        if isinstance(key, str) and key.strip():
            names.append(f"row {key.strip()!r}")
        elif not isinstance(key, str) and pd.notna(key):
            names.append(f"row {key}")
        else:
            names.append(f"data row {int(keys.index[pos]) + 1}")
    return names


def _parse_table(name, raw, sep):
    """(table, header line, header fields) as pandas reads them, or (None, problem, None)."""
    sep_name = _SEPARATOR_NAMES[sep]
    line, header = _header_fields(raw, sep)
    try:
        table = pd.read_csv(io.BytesIO(raw), sep=sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        return None, (f"{name}: is empty; give a table with a header line and one row per "
                      "region"), None
    except pd.errors.ParserError as exc:
        m = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
        where = (f"line {m.group(2)} has {m.group(3)} fields but the header has {m.group(1)}"
                 if m else f"it cannot be parsed ({_exc(exc)})")
        why = ("a decimal comma, or a comma inside a name?" if sep == ","
               else "a tab inside a cell?")
        return None, (f"{name}: {where} ({sep_name}-separated, from the file name); a cell "
                      f"holds a {sep_name} ({why}): quote such cells, write decimal points, "
                      "or save the table tab-separated as .tsv"), None
    except Exception as exc:
        return None, (f"{name}: cannot be read as a {sep_name}-separated table "
                      f"({type(exc).__name__}: {_exc(exc)}); give a CSV or TSV file"), None
    table.columns = [str(c).strip() for c in table.columns]
    if len(table.columns) == 1:
        # one column: the file is separated by something else than its name says
        others = [s for s in ("\t", ";", ",") if s != sep and s in line]
        if others:
            other = _SEPARATOR_NAMES[others[0]]
            fix = {"tab": "rename it to .tsv",
                   "comma": "rename it to .csv",
                   "semicolon": "save it comma-separated (.csv) or tab-separated (.tsv), with "
                                "decimal points (a European spreadsheet export uses ';' and "
                                "decimal commas)"}[other]
            ending = "".join(Path(name).suffixes[-2:]) or "no extension"
            return None, (f"{name}: its header {line.strip()!r} is {other}-separated but the "
                          f"file is read as {sep_name}-separated (its name ends in {ending}); "
                          f"{fix}"), None
    if not isinstance(table.index, pd.RangeIndex):
        # pandas takes a first column the header lacks as row names; R's
        # write.table does that (row names 1..n) and is fine, anything else is
        # an extra field in every row, e.g. unquoted decimal commas
        idx = pd.Index(table.index)
        if idx.astype(str).tolist() != [str(i) for i in range(1, len(idx) + 1)]:
            return None, (f"{name}: every data row has more fields than the header "
                          f"({sep_name}-separated; e.g. {str(idx[0])!r} is read as a row "
                          "name): decimal commas in a comma-separated file? write numbers with "
                          "a decimal point, e.g. 0.12, or save the table tab-separated as "
                          ".tsv"), None
    return table, line, header


def _choose_column(name, table, region_col, column):
    """(value column, numeric columns) by the blank-column rule, or (None, problem)."""
    numeric = [c for c in table.columns if c != region_col
               and pd.api.types.is_numeric_dtype(table[c])]
    if column is None:
        if "value" in table.columns:
            return "value", numeric
        if len(numeric) == 1:
            return numeric[0], numeric
        # no numeric column: the one column of numbers written with decimal
        # commas (or with a stray word) is still the value column, so its
        # cells are reported rather than a vague "cannot tell"
        almost = [c for c in table.columns if c != region_col and not numeric
                  and _numeric_after_comma_fix(table[c]) >= 0.5]
        if len(almost) == 1:
            return almost[0], numeric
        return None, (f"{name}: cannot tell which column holds the values (numeric columns: "
                      f"{numeric}); set the 'column' field of this map in the maps sheet")
    if column not in table.columns:
        near = [c for c in table.columns if c.lower() == str(column).strip().lower()]
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        return None, (f"{name}: no column {column!r} (columns: {list(table.columns)}); fix the "
                      f"'column' field of this map in the maps sheet{hint}")
    if column == region_col:
        return None, (f"{name}: column {column!r} is the region column, not values; set the "
                      f"'column' field of this map to the value column (numeric columns: "
                      f"{numeric})")
    return column, numeric


def _check_keys(name, keys, region_col):
    """(keys, problems): blank regions, fractional ids, regions listed twice."""
    index = keys.index
    blank = keys.isna() | (keys.astype(str).str.strip() == "")
    if blank.any():
        pos = np.flatnonzero(blank.to_numpy())
        rows = ", ".join(str(int(index[p]) + 1) for p in pos[:_EXAMPLES])
        more = " ..." if len(pos) > _EXAMPLES else ""
        # duplicates among the rest would only repeat the fix
        return keys, [f"{name}: data row(s) {rows}{more} have no region in column "
                      f"{region_col!r}; fill them in or delete those rows"]
    problems = []
    if pd.api.types.is_float_dtype(keys):
        frac = keys != np.round(keys)
        if frac.any():
            problems.append(f"{name}: region column {region_col!r} holds ids that are not "
                            f"whole numbers (e.g. {keys[frac].iloc[0]:g}); give atlas ids "
                            "(integers) or region names")
        else:
            # ids read as floats only because blank lines were in the file
            keys = keys.astype(np.int64)
    norm = (keys if pd.api.types.is_numeric_dtype(keys)
            else keys.astype(str).str.strip().str.lower())
    dup = norm.duplicated(keep=False).to_numpy()
    if dup.any():
        groups = pd.Series(np.flatnonzero(dup)).groupby(norm.to_numpy()[dup]).apply(list)
        listed = "; ".join(
            f"{keys.iloc[pos[0]]!r} (data rows {', '.join(str(int(index[p]) + 1) for p in pos)})"
            for pos in list(groups)[:_EXAMPLES])
        problems.append(f"{name}: region(s) listed twice or more: {listed}; keep one row per "
                        "region")
    return keys, problems


def _check_values(name, cells, values, keys, use, column, numeric):
    """Problems of the value column's cells: text, decimal commas, thousands, infinities."""
    problems = []
    text = cells.astype(str).str.strip()
    blank = cells.isna().to_numpy() | (text == "").to_numpy()
    bad = use & ~blank & values.isna().to_numpy()
    if bad.any():
        pos = np.flatnonzero(bad)
        shown = text.iloc[pos]
        rows = _row_names(keys, pos)
        comma = shown.str.fullmatch(_DECIMAL_COMMA.pattern).to_numpy()
        thousands = shown.str.fullmatch(_THOUSANDS.pattern).to_numpy() & ~comma
        other = ~comma & ~thousands
        n_cells = int((use & ~blank).sum())
        if comma.any():
            first = int(np.flatnonzero(comma)[0])
            ex = shown.iloc[first]
            problems.append(
                f"{name}: holds decimal commas ({ex!r} in {rows[first]}, column {column!r}; "
                f"{int(comma.sum())} of {n_cells} cells): write numbers with a decimal point, "
                f"e.g. {ex.replace(',', '.').lstrip('+')} (in a spreadsheet, export with '.' as "
                "the decimal separator)")
        if thousands.any():
            first = int(np.flatnonzero(thousands)[0])
            ex = shown.iloc[first]
            problems.append(
                f"{name}: column {column!r} holds thousands separators ({ex!r} in "
                f"{rows[first]}): write numbers without them, e.g. {ex.replace(',', '')}")
        if other.any():
            where = [rows[i] for i in np.flatnonzero(other)]
            if int(other.sum()) == n_cells:
                problems.append(
                    f"{name}: column {column!r} is not numeric (no cell is a number, e.g. "
                    f"{shown[other].iloc[0]!r} in {where[0]}); set the 'column' field of this "
                    f"map to the column of values (numeric columns: {numeric})")
            else:
                problems.append(
                    f"{name}: column {column!r} has {int(other.sum())} cell(s) that are not "
                    f"numbers: {_cell_list(shown[other].tolist(), where)}; write a number, or "
                    "leave the cell blank (or NA) for a region without a value")
    inf = use & np.isinf(values.to_numpy(dtype=float))
    if inf.any():
        pos = np.flatnonzero(inf)
        listed = _cell_list(text.iloc[pos].tolist(), _row_names(keys, pos))
        problems.append(
            f"{name}: column {column!r} holds infinite values ({listed}); infinities are not "
            "read as missing: write a finite number, or leave the cell blank (or NA) for a "
            "region without a value")
    return problems


def _table_content(name, values, use, column, numeric):
    """Content problems of a readable value column: no, too few or all-equal values."""
    finite = values.to_numpy(dtype=float)[use]
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return [f"{name}: column {column!r} has no values (every cell is blank); set the "
                "'column' field of this map to the column holding the map (columns with "
                f"numbers: {numeric})"]
    if finite.size < MIN_REGIONS:
        return [f"{name}: column {column!r} has values in only {finite.size} row(s); a map "
                f"needs values in at least {MIN_REGIONS} regions to be correlated with gene "
                "expression: give a value for every region you have"]
    if finite.min() == finite.max():
        return [f"{name}: column {column!r} holds the same value ({finite[0]:g}) in every row, "
                "so the map has no spatial pattern to correlate with gene expression; check "
                "the 'column' field (e.g. 'd_icv', not 'n_controls')"]
    return []


def _inspect_table(path, column=None):
    """(MapTable or None, file problems, content problems) of a region table."""
    from ..regions import ENIGMA_NO_PARCEL

    name = str(path)
    column = column if column not in ("", None) else None
    problem = _file_problem(name, "a CSV/TSV table")
    if problem:
        return None, [problem], []
    raw, problem = _table_text(name)
    if problem:
        return None, [problem], []
    table, line, header = _parse_table(name, raw, table_separator(name))
    if table is None:
        return None, [line], []
    region_col = next((c for c in REGION_COLUMNS if c in table.columns), None)
    if region_col is None:
        canonical = {r.lower(): r for r in REGION_COLUMNS}
        near = [c for c in table.columns if c.lower() in canonical]
        hint = f": rename {near[0]!r} to {canonical[near[0].lower()]!r}" if near else ""
        return None, [f"{name}: no region column (columns: {list(table.columns)[:8]}); name it "
                      f"one of {list(REGION_COLUMNS)}{hint}"], []
    # rows with every cell blank (spreadsheet exports end with ',,,' lines) hold nothing
    table = table.loc[~table.isna().all(axis=1)]
    if table.empty:
        return None, [f"{name}: has a header but no data rows; add one row per region "
                      f"(columns: {list(table.columns)[:8]})"], []

    problems = []
    stripped = [h.strip() for h in header]
    twice = sorted({h for h in stripped if h and stripped.count(h) > 1})
    if twice:
        problems.append(f"{name}: its header names {', '.join(repr(c) for c in twice)} more "
                        "than once; give every column its own name")
    column, numeric = _choose_column(name, table, region_col, column)
    if column is None:
        return None, problems + [numeric], []
    cells = table[column]
    if isinstance(cells, pd.DataFrame):  # a duplicated name: reported above
        return None, problems, []
    # columns the user could have meant, for the hints
    numeric = [c for c in numeric if c != column and table[c].notna().any()]
    keys, key_problems = _check_keys(name, table[region_col], region_col)
    problems += key_problems
    # the value column exactly as parcellation reads it
    values = pd.to_numeric(cells, errors="coerce")
    # ENIGMA's lateral-ventricle rows are skipped by parcellation, so their
    # cells do not matter here either
    use = ~keys.astype(str).str.strip().str.lower().isin(ENIGMA_NO_PARCEL).to_numpy()
    value_problems = _check_values(name, cells, values, keys, use, column, numeric)
    problems += value_problems
    content = [] if value_problems else _table_content(name, values, use, column, numeric)
    if problems:
        return None, problems, content
    found = MapTable(path=name, table=table, region_column=region_col, column=column,
                     keys=keys, values=values)
    return found, problems, content


def read_map_table(path, column=None, *, content=False):
    """Read a region table, checked (atlas matching: :func:`itx.parcellate.read_region_table`).

    The value column is `column`, else ``value``, else the only numeric
    column besides the region column (:data:`REGION_COLUMNS` names it). The
    separator is a tab for ``.tsv``/``.txt`` and a comma otherwise; a
    ``.gz`` file is decompressed; a UTF-8 byte-order mark is accepted.
    Blank cells (or ``NA``, ``nan``...) are regions without a value.

    Parameters
    ----------
    path : str or os.PathLike
    column : str, optional
    content : bool
        Also raise the content problems (no value, fewer than
        :data:`MIN_REGIONS` values, one value in every row).

    Returns
    -------
    MapTable

    Raises
    ------
    MapInputError
        Every problem found: unreadable, empty, binary or not UTF-8; no
        region or value column; rows with no region or a region listed
        twice; cells that are not numbers (decimal commas explained);
        infinite values.
    """
    found, problems, extra = _inspect_table(path, column)
    _raise_if(problems + (extra if content else []))
    return found

