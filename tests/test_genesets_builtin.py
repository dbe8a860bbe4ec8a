"""Tests of the built-in collections psychencode2018, siletti2023, syngo and gobp
(registry, pinned fetch with checksums over a local file server, mirrors) and of what
they need in itx.genesets: the JSON (.collect) and XLSX readers, GO-style GMT names,
the max_genes size filter, collection kinds and size ranges of config specs.

No test reads the real files (CI has none): each fetch serves a small synthetic file in
the collection's format at the registered URL path, with the registry's checksum patched
for the test."""

import dataclasses
import hashlib
import io
import json
import re
import zipfile
from urllib.parse import urlparse
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd
import pytest

from fileserver import FileServer
from itx import genesets
from itx.download import ChecksumError, DownloadError
from itx.genesets import (
    BUILTIN_COLLECTIONS,
    COLLECTION_KINDS,
    builtin_name,
    collection_file,
    collection_kind,
    collection_size_range,
    fetch_collection,
    match_gene_sets,
    normalise_line_ends,
    read_gene_set_json,
    read_gene_set_xlsx,
    read_gene_sets,
    read_gmt,
)

NEW = ("psychencode2018", "siletti2023", "syngo", "gobp")
FAST = dict(backoff=0, timeout=5)


@pytest.fixture
def http():
    with FileServer() as srv:
        yield srv


def _leftovers(folder):
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith("."))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------
# synthetic files in each collection's format
# --------------------------------------------------------------------------

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_RELS = "http://schemas.openxmlformats.org/package/2006/relationships"
_DOC_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def _col(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(ord("A") + rem) + letters
    return letters


def xlsx_bytes(rows, sheet_file="sheet1.xml", inline=False, skip_refs=False, rich=None):
    """A minimal .xlsx workbook (written by hand, independent of the reader): `rows` is a
    list of rows (lists of str or None = no cell) of the only worksheet, stored under
    xl/worksheets/`sheet_file`. Strings are shared strings, or inline strings with
    `inline`; `skip_refs` omits the cell references (r="A1"); `rich` maps a shared
    string to (runs, phonetic hint) stored as rich text."""
    shared, index = [], {}
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            if value is None:
                continue
            ref = "" if skip_refs else f' r="{_col(c)}{r}"'
            if inline:
                cells.append(f'<c{ref} t="inlineStr"><is><t>{escape(value)}</t></is></c>')
            else:
                if value not in index:
                    index[value] = len(shared)
                    shared.append(value)
                cells.append(f'<c{ref} t="s"><v>{index[value]}</v></c>')
        sheet_rows.append(f'<row r="{r}">{"".join(cells)}</row>')
    sheet = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
             f'<worksheet xmlns="{_MAIN}"><sheetData>{"".join(sheet_rows)}</sheetData></worksheet>')
    items = []
    for s in shared:
        if rich and s in rich:
            runs, hint = rich[s]
            items.append("<si>" + "".join(f"<r><t>{escape(t)}</t></r>" for t in runs)
                         + f"<rPh sb=\"0\" eb=\"1\"><t>{escape(hint)}</t></rPh></si>")
        else:
            items.append(f"<si><t>{escape(s)}</t></si>")
    sst = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           f'<sst xmlns="{_MAIN}" count="{len(shared)}">{"".join(items)}</sst>')
    workbook = (f'<workbook xmlns="{_MAIN}" xmlns:r="{_DOC_RELS}"><sheets>'
                f'<sheet name="Sheet1" sheetId="1" r:id="rId7"/></sheets></workbook>')
    rels = (f'<Relationships xmlns="{_RELS}">'
            f'<Relationship Id="rId9" Type="{_DOC_RELS}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId7" Type="{_DOC_RELS}/worksheet" '
            f'Target="worksheets/{sheet_file}"/></Relationships>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels", rels)
        zf.writestr(f"xl/worksheets/{sheet_file}", sheet)
        if not inline:
            zf.writestr("xl/sharedStrings.xml", sst)
    return buf.getvalue()


# each new built-in: synthetic bytes in its format and the sets they hold
SYNTHETIC = {
    "psychencode2018": (
        json.dumps({"Adult-Ex1": ["CAMK2A", "CDH9"], "Adult-Astro": ["GFAP", "AQP4", "GFAP"],
                    "Dev-quiescent": ["RAdult-In2"]}, indent=4).encode(),
        {"Adult-Ex1": ["CAMK2A", "CDH9"], "Adult-Astro": ["GFAP", "AQP4"],
         "Dev-quiescent": ["RAdult-In2"]},
    ),
    "syngo": (
        json.dumps({"synapse (GO:0045202)": ["SNAP25", "SYT1", "DLG4"],
                    "presynaptic ribosome": ["RPL22"]}, indent=4).encode(),
        {"synapse (GO:0045202)": ["SNAP25", "SYT1", "DLG4"], "presynaptic ribosome": ["RPL22"]},
    ),
    "gobp": (
        b"chemical synaptic transmission (GO:0007268)\t\tSNAP25\tSYT1\n"
        b"'de novo' protein folding, post-translational (GO:0051084)\t\tHSPA5\tHSPA8\t\n",
        {"chemical synaptic transmission (GO:0007268)": ["SNAP25", "SYT1"],
         "'de novo' protein folding, post-translational (GO:0051084)": ["HSPA5", "HSPA8"]},
    ),
    "siletti2023": (
        xlsx_bytes([["Cluster ID", "Cluster name", "Supercluster", "Top Enriched Genes"],
                    ["0", "Astro_1", "Astrocyte", "GFAP, AQP4"],
                    ["1", "Astro_2", "Astrocyte", "AQP4, SLC1A3"],
                    ["2", "Micro_1", "Microglia", "P2RY12"]]),
        {"Astrocyte": ["GFAP", "AQP4", "SLC1A3"], "Microglia": ["P2RY12"]},
    ),
}


def _serve_pinned(http, monkeypatch, name, body):
    """Serve `body` at the path of `name`'s registered URL; pin its checksum to `body`."""
    c = BUILTIN_COLLECTIONS[name]
    path = urlparse(c.url).path
    route = http.add(path, body)
    fake = dict(BUILTIN_COLLECTIONS)
    fake[name] = dataclasses.replace(c, url=http.base + path, sha256=_sha(body),
                                     sha256_lf=_sha(normalise_line_ends(body))
                                     if c.ext != "xlsx" else _sha(body))
    monkeypatch.setattr(genesets, "BUILTIN_COLLECTIONS", fake)
    return route, fake[name]


# --------------------------------------------------------------------------
# registry
# --------------------------------------------------------------------------


def test_new_builtins_registered_and_pinned():
    assert set(NEW) <= set(BUILTIN_COLLECTIONS)
    for name in NEW:
        c = BUILTIN_COLLECTIONS[name]
        assert c.name == name
        assert re.fullmatch(r"https://raw\.githubusercontent\.com/[^/]+/[^/]+/[0-9a-f]{40}/.+",
                            c.url), c.url
        assert c.url.endswith("/" + c.filename) and c.filename.endswith("." + c.ext)
        assert re.fullmatch(r"[0-9a-f]{64}", c.sha256)
        assert re.fullmatch(r"[0-9a-f]{64}", c.sha256_lf)
        assert c.description and c.reference
    # the binary workbook is compared byte for byte only
    assert BUILTIN_COLLECTIONS["siletti2023"].sha256_lf == BUILTIN_COLLECTIONS["siletti2023"].sha256


def test_registry_kinds_formats_and_size_ranges():
    for c in BUILTIN_COLLECTIONS.values():
        assert c.kind in COLLECTION_KINDS
        assert "." + c.ext in genesets._FORMATS  # read_gene_sets reads the fetched copy
    kinds = {n: c.kind for n, c in BUILTIN_COLLECTIONS.items()}
    assert {n for n, k in kinds.items() if k == "categories"} == {"syngo", "gobp"}
    assert {"seidlitz2020", "lake2018", "pooled7", "psychencode2018", "siletti2023"} <= {
        n for n, k in kinds.items() if k == "celltypes"}
    assert BUILTIN_COLLECTIONS["gobp"].size_range == (10, 200)
    assert all(c.size_range is None for n, c in BUILTIN_COLLECTIONS.items() if n != "gobp")


# --------------------------------------------------------------------------
# fetching: pinned URL, checksum, mirrors, local copies
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_fetch_new_builtin_from_pinned_url(http, tmp_path, monkeypatch, name):
    body, expected = SYNTHETIC[name]
    route, c = _serve_pinned(http, monkeypatch, name, body)
    dest = tmp_path / "out" / f"{name}.{c.ext}"
    assert collection_file(name, str(tmp_path / "out")) == str(dest)
    assert fetch_collection(name, dest, **FAST) == dest
    assert dest.read_bytes() == body and route.hits == 1
    assert read_gene_sets(dest) == expected
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", NEW)
def test_fetch_new_builtin_rejects_a_wrong_byte(http, tmp_path, monkeypatch, name):
    body, _ = SYNTHETIC[name]
    _serve_pinned(http, monkeypatch, name, body)
    c = genesets.BUILTIN_COLLECTIONS[name]
    # the same path now serves the file with one byte changed
    i = len(body) // 2
    bad = body[:i] + bytes([body[i] ^ 0x01]) + body[i + 1:]
    http.add(urlparse(c.url).path, bad)
    dest = tmp_path / f"{name}.{c.ext}"
    with pytest.raises(ChecksumError, match=rf"{name}.*expected {c.sha256}"):
        fetch_collection(name, dest, **FAST)
    assert not dest.exists() and _leftovers(tmp_path) == []


def test_line_end_conversion_accepted_for_text_not_for_workbook(http, tmp_path, monkeypatch):
    body, expected = SYNTHETIC["syngo"]
    _serve_pinned(http, monkeypatch, "syngo", body)
    crlf = body.replace(b"\n", b"\r\n")
    (tmp_path / "crlf.collect").write_bytes(crlf)
    fetch_collection("syngo", tmp_path / "a.collect", source=tmp_path / "crlf.collect")
    assert read_gene_sets(tmp_path / "a.collect") == expected

    # a workbook whose bytes differ from the pinned ones only where CR LF became LF
    # is rejected, even with the line-end-normalised checksum pinned as well
    pinned = SYNTHETIC["siletti2023"][0] + b"\r\n"
    c = BUILTIN_COLLECTIONS["siletti2023"]
    fake = dict(BUILTIN_COLLECTIONS)
    fake["siletti2023"] = dataclasses.replace(c, sha256=_sha(pinned),
                                              sha256_lf=_sha(normalise_line_ends(pinned)))
    monkeypatch.setattr(genesets, "BUILTIN_COLLECTIONS", fake)
    (tmp_path / "lf.xlsx").write_bytes(normalise_line_ends(pinned))
    with pytest.raises(ChecksumError) as exc:
        fetch_collection("siletti2023", tmp_path / "b.xlsx", source=tmp_path / "lf.xlsx")
    assert "after turning CRLF" not in str(exc.value)
    assert not (tmp_path / "b.xlsx").exists()
    (tmp_path / "same.xlsx").write_bytes(pinned)
    fetch_collection("siletti2023", tmp_path / "b.xlsx", source=tmp_path / "same.xlsx")


def test_fetch_new_builtin_from_mirrors_and_local_copies(http, tmp_path, monkeypatch):
    body, expected = SYNTHETIC["siletti2023"]
    _, c = _serve_pinned(http, monkeypatch, "siletti2023", body)
    # an http mirror folder holds the file under its name at the source
    route = http.add("/mirror/" + c.filename, body, truncate=1)
    dest = tmp_path / "m" / "siletti2023.xlsx"
    fetch_collection("siletti2023", dest, source=http.base + "/mirror/", **FAST)
    assert dest.read_bytes() == body and route.hits == 2  # truncated, then resumed
    with pytest.raises(DownloadError):
        fetch_collection("siletti2023", tmp_path / "x.xlsx", source=http.base + "/none/",
                         **FAST)
    # a local folder of earlier fetches (<name>.<ext>), and a local file
    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "siletti2023.xlsx").write_bytes(body)
    fetch_collection("siletti2023", tmp_path / "f.xlsx", source=folder)
    fetch_collection("siletti2023", tmp_path / "g.xlsx", source=folder / "siletti2023.xlsx")
    assert read_gene_sets(tmp_path / "f.xlsx") == read_gene_sets(tmp_path / "g.xlsx") == expected

    body, expected = SYNTHETIC["gobp"]
    _, c = _serve_pinned(http, monkeypatch, "gobp", body)
    (folder / c.filename).write_bytes(body)  # the file under its name at the source
    fetch_collection("gobp", tmp_path / "gobp.gmt", source=folder)
    assert read_gene_sets(tmp_path / "gobp.gmt") == expected
    with pytest.raises(FileNotFoundError, match="collection-SynGO.collect"):
        fetch_collection("syngo", tmp_path / "s.collect", source=folder)
    assert _leftovers(tmp_path) == []


# --------------------------------------------------------------------------
# JSON reader
# --------------------------------------------------------------------------


def test_json_reader_lists_weights_and_quirks(tmp_path):
    p = tmp_path / "sets.collect"
    text = ('{\r\n "A": [" GFAP ", "AQP4", "GFAP", "", null, NaN, 7157],\r\n'
            ' "B": {"MBP": 0.9, "PLP1": -1.5, " MBP ": 2},\r\n "C": []\r\n}')
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    sets = read_gene_sets(p)
    assert sets == {"A": ["GFAP", "AQP4", "7157"], "B": ["MBP", "PLP1"], "C": []}
    assert list(sets) == ["A", "B", "C"]
    q = tmp_path / "sets.JSON"  # case-insensitive extension
    q.write_text(json.dumps({"S": ["X"]}))
    assert read_gene_sets(q) == {"S": ["X"]} == read_gene_set_json(q)


@pytest.mark.parametrize("text, match", [
    ('{"A": ["X"], " A ": ["Y"]}', "occurs twice"),
    ('{"  ": ["X"]}', "empty gene-set name"),
    ('[["X"]]', "JSON object"),
    ('{"A": "X, Y"}', "expected a list"),
    ('{"A": ["X", ["Y"]]}', "entry"),
    ('{"A": ["X", true]}', "entry"),
    ('{"A": ["X", 1.5]}', "entry"),
    ('{"A": ["X"', "not valid JSON"),
    ("{}", "no gene sets"),
])
def test_json_reader_errors(tmp_path, text, match):
    p = tmp_path / "bad.json"
    p.write_text(text)
    with pytest.raises(ValueError, match=match):
        read_gene_set_json(p)


def test_json_reader_not_utf8(tmp_path):
    p = tmp_path / "bad.json"
    p.write_bytes(b'{"A": ["\xff"]}')
    with pytest.raises(ValueError, match="UTF-8"):
        read_gene_sets(p)


# --------------------------------------------------------------------------
# GO (Enrichr-style GMT) names
# --------------------------------------------------------------------------


def test_go_gmt_keeps_go_ids_in_names(tmp_path):
    p = tmp_path / "gobp.gmt"
    p.write_bytes(
        b"chemical synaptic transmission (GO:0007268)\t\tSNAP25\tSYT1\tSNAP25\r\n"
        b"'de novo' AMP biosynthetic process (GO:0044208)\t\tADSL\t\t\r\n"
        b"regulation of transcription, DNA-templated (GO:0006355)\t\tTP53\n"
        b"\n"
        b"empty term (GO:0000001)\t\n"
    )
    sets = read_gene_sets(p)
    assert sets == read_gmt(p) == {
        "chemical synaptic transmission (GO:0007268)": ["SNAP25", "SYT1"],
        "'de novo' AMP biosynthetic process (GO:0044208)": ["ADSL"],
        "regulation of transcription, DNA-templated (GO:0006355)": ["TP53"],
        "empty term (GO:0000001)": [],
    }
    assert all(re.search(r"\(GO:\d{7}\)$", name) for name in sets)


# --------------------------------------------------------------------------
# XLSX reader
# --------------------------------------------------------------------------


def test_xlsx_reader_cluster_table(tmp_path):
    p = tmp_path / "clusters.xlsx"
    p.write_bytes(xlsx_bytes([
        [],  # an empty first row: the header is the first row with content
        ["Cluster ID", "Cluster name", "Supercluster", "Top Enriched Genes", "Number of cells"],
        ["0", "A_0", "Astrocyte", "GFAP, AQP4;SLC1A3 ,", "10"],
        ["1", "A_1", "Astrocyte", "AQP4, ALDH1L1", None],
        ["2", "M_0", None, "P2RY12", "5"],  # no set: skipped
        ["3", "M_1", "Microglia", None, "5"],  # no genes: skipped
        [None, None, "Microglia", "CX3CR1"],
        [],
    ], sheet_file="sheet7.xml"))
    assert read_gene_sets(p) == read_gene_set_xlsx(p) == {
        "Astrocyte": ["GFAP", "AQP4", "SLC1A3", "ALDH1L1"], "Microglia": ["CX3CR1"]}


def test_xlsx_reader_gene_set_table_inline_and_unreferenced_cells(tmp_path):
    rows = [["gene", "set"], ["GFAP", "Astro"], [" MBP ", "Oligo"], ["AQP4", "Astro"]]
    expected = {"Astro": ["GFAP", "AQP4"], "Oligo": ["MBP"]}
    for i, options in enumerate([dict(inline=True), dict(skip_refs=True), {}]):
        p = tmp_path / f"t{i}.xlsx"
        p.write_bytes(xlsx_bytes(rows, **options))
        assert read_gene_sets(p) == expected
    # two columns with other names: gene, set
    p = tmp_path / "two.xlsx"
    p.write_bytes(xlsx_bytes([["symbol_x", "celltype"], ["GFAP", "Astro"]]))
    assert read_gene_sets(p) == {"Astro": ["GFAP"]}


def test_xlsx_reader_rich_text_ignores_phonetic_hints(tmp_path):
    p = tmp_path / "rich.xlsx"
    p.write_bytes(xlsx_bytes([["gene", "set"], ["GFAP", "Astro cells"]],
                             rich={"Astro cells": (["Astro", " cells"], "HINT")}))
    assert read_gene_sets(p) == {"Astro cells": ["GFAP"]}


def test_xlsx_reader_errors(tmp_path):
    p = tmp_path / "bad.xlsx"
    p.write_text("gene,set\nGFAP,Astro\n")
    with pytest.raises(ValueError, match=r"not a readable \.xlsx.*\.gmt.*\.json"):
        read_gene_sets(p)
    p.write_bytes(xlsx_bytes([["a", "b", "c"], ["GFAP", "Astro", "1"]]))
    with pytest.raises(ValueError, match="cannot identify.*Supercluster"):
        read_gene_sets(p)
    p.write_bytes(xlsx_bytes([[], []]))
    with pytest.raises(ValueError, match="empty"):
        read_gene_sets(p)
    p.write_bytes(xlsx_bytes([["gene", "set"], ["GFAP", None]]))
    with pytest.raises(ValueError, match="no gene-set rows"):
        read_gene_sets(p)


def test_xlsx_reader_agrees_with_openpyxl(tmp_path):
    """A workbook written by a spreadsheet library reads the same."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    ws = wb.active
    for row in [["Cluster name", "Supercluster", "Top Enriched Genes", "Cells"],
                ["A_0", "Astrocyte", "GFAP, AQP4", 10], ["M_0", "Microglia", "P2RY12", 3.5],
                ["A_1", "Astrocyte", "SLC1A3", None]]:
        ws.append(row)
    p = tmp_path / "lib.xlsx"
    wb.save(p)
    assert read_gene_sets(p) == {"Astrocyte": ["GFAP", "AQP4", "SLC1A3"],
                                 "Microglia": ["P2RY12"]}


# --------------------------------------------------------------------------
# max_genes
# --------------------------------------------------------------------------


def _random_sets(seed):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(300)]
    sets = {}
    for k in range(60):
        size = int(rng.integers(1, 80))
        members = list(rng.choice(genes, size=size, replace=False))
        members += [f"MISSING{k}_{j}" for j in range(int(rng.integers(0, 20)))]
        sets[f"S{k}"] = members
    return genes, sets


@pytest.mark.parametrize("min_size, max_genes", [(1, 10), (5, 40), (10, 60), (24, 24)])
def test_max_genes_against_brute_force_count(min_size, max_genes):
    genes, sets = _random_sets(7)
    membership, report = match_gene_sets(sets, genes, min_size=min_size, max_genes=max_genes)
    expressed = set(genes)
    count = {k: sum(g in expressed for g in v) for k, v in sets.items()}
    expect = [k for k in sets if min_size <= count[k] <= max_genes]
    assert expect and len(expect) < len(sets)  # the filter keeps some sets, drops others
    assert list(membership.columns) == expect
    rep = report.set_index("set")
    for k in sets:
        assert rep.loc[k, "n_genes_found"] == count[k]
        assert bool(rep.loc[k, "kept"]) == (k in expect)
        if count[k] > max_genes:
            assert f"more than max_genes={max_genes}" in rep.loc[k, "reason"]
        elif count[k] < min_size:
            assert f"min_size={min_size}" in rep.loc[k, "reason"]
        else:
            assert rep.loc[k, "reason"] == ""
    for k in expect:
        assert membership[k].sum() == count[k]
        assert set(np.asarray(genes)[membership[k].to_numpy() == 1]) == set(sets[k]) & expressed


def test_max_genes_none_is_the_old_behaviour():
    genes, sets = _random_sets(3)
    m0, r0 = match_gene_sets(sets, genes, min_size=5)
    m1, r1 = match_gene_sets(sets, genes, 5, None, max_genes=None)
    m2, r2 = match_gene_sets(sets, genes, 5, max_genes=10 ** 6)
    assert m0.equals(m1) and r0.equals(r1) and m0.equals(m2) and r0.equals(r2)
    assert list(r0.columns) == ["set", "n_genes_in_set", "n_genes_found", "n_found_direct",
                                "n_found_alias", "n_missing", "n_duplicates", "kept", "reason"]


def test_max_genes_counts_alias_matches():
    # found = direct + alias matches; max_genes applies to that total
    sets = {"S": ["A", "OLD"], "T": ["A"]}
    aliases = pd.DataFrame({"alias": ["OLD"], "symbol": ["B"]})
    m, r = match_gene_sets(sets, ["A", "B"], min_size=1, aliases=aliases, max_genes=1)
    assert list(m.columns) == ["T"]
    assert r.set_index("set").loc["S", "n_genes_found"] == 2


@pytest.mark.parametrize("bad", [0, -3, True, 2.0, "10", 4])
def test_max_genes_invalid(bad):
    with pytest.raises(ValueError, match="max_genes"):
        match_gene_sets({"S": ["A"]}, ["A"], min_size=5, max_genes=bad)


# --------------------------------------------------------------------------
# config specs: builtin_name, collection_file, collection_kind, collection_size_range
# --------------------------------------------------------------------------


def test_specs_with_new_keys():
    spec = {"builtin": "gobp", "source": "/mirror/", "min_genes": 15, "max_genes": 150}
    assert builtin_name(spec) == "gobp"
    assert collection_file(spec, "res/genesets") == "res/genesets/gobp.gmt"
    assert collection_file({"builtin": "siletti2023"}, "g") == "g/siletti2023.xlsx"
    assert collection_file({"builtin": "syngo"}, "g") == "g/syngo.collect"
    own = {"path": "config/go.gmt", "kind": "categories", "max_genes": None}
    assert builtin_name(own) is None
    assert collection_file(own, "res/genesets") == "config/go.gmt"
    assert builtin_name("config/go.gmt") is None and builtin_name("psychencode2018")


@pytest.mark.parametrize("spec, match", [
    ({"builtin": "gobp", "path": "x.gmt"}, "exactly one"),
    ({"source": "/m/"}, "exactly one"),
    ({"builtin": "gobp", "mirror": "/m/"}, "unknown key"),
    ({"path": "x.gmt", "source": "/m/"}, "built-in collections only"),
    ({"path": "  "}, "file path"),
    ({"builtin": "gobp", "kind": "pathways"}, "kind must be"),
    ({"builtin": "gobp", "min_genes": 0}, "min_genes"),
    ({"builtin": "gobp", "max_genes": 2.5}, "max_genes"),
    ({"builtin": "go"}, "known"),
])
def test_spec_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        builtin_name(spec)


def test_collection_kind():
    assert collection_kind("gobp") == collection_kind({"builtin": "syngo"}) == "categories"
    for name in ("seidlitz2020", "lake2018", "pooled7", "psychencode2018", "siletti2023"):
        assert collection_kind(name) == "celltypes"
    assert collection_kind("config/my.gmt") == "celltypes"
    assert collection_kind({"path": "my.gmt"}) == "celltypes"
    assert collection_kind({"path": "go.gmt", "kind": "categories"}) == "categories"
    assert collection_kind({"builtin": "psychencode2018", "kind": "categories"}) == "categories"
    with pytest.raises(ValueError, match="kind"):
        collection_kind({"path": "go.gmt", "kind": "go"})


def test_collection_size_range():
    # a built-in's registered range applies when the spec gives none
    assert collection_size_range("gobp", 5) == (10, 200)
    assert collection_size_range({"builtin": "gobp", "source": "/m/"}, 5, 500) == (10, 200)
    # the spec wins, bound by bound; max_genes null lifts the upper limit
    assert collection_size_range({"builtin": "gobp", "min_genes": 20}, 5) == (20, 200)
    assert collection_size_range({"builtin": "gobp", "max_genes": 300}, 5) == (10, 300)
    assert collection_size_range({"builtin": "gobp", "max_genes": None}, 5) == (10, None)
    # elsewhere the caller's defaults
    assert collection_size_range("psychencode2018", 5) == (5, None)
    assert collection_size_range("syngo", 5, 400) == (5, 400)
    assert collection_size_range("my/sets.gmt", 3, 50) == (3, 50)
    assert collection_size_range({"path": "go.gmt", "min_genes": 10, "max_genes": 200},
                                 5) == (10, 200)
    with pytest.raises(ValueError, match="below"):
        collection_size_range({"builtin": "gobp", "max_genes": 5}, 5)
    with pytest.raises(ValueError, match="below"):
        collection_size_range("my.gmt", 10, 5)
    for bad in (0, True, 1.5):
        with pytest.raises(ValueError, match="default_min"):
            collection_size_range("gobp", bad)
    with pytest.raises(ValueError, match="default_max"):
        collection_size_range("gobp", 5, 0)


def test_size_range_feeds_match_gene_sets():
    genes, sets = _random_sets(11)
    lo, hi = collection_size_range({"path": "s.gmt", "min_genes": 10, "max_genes": 30}, 5)
    membership, report = match_gene_sets(sets, genes, min_size=lo, max_genes=hi)
    found = report.set_index("set")["n_genes_found"]
    assert set(membership.columns) == set(found[(found >= 10) & (found <= 30)].index)
