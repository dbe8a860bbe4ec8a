"""Tests of itx.genesets: built-in collections (fetch, checksums), real published files,
format quirks, gene matching with aliases."""

import csv
import dataclasses
import hashlib
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fileserver import FileServer
from itx import genesets
from itx.download import ChecksumError, DownloadError
from itx.genesets import (
    BUILTIN_COLLECTIONS,
    alias_table,
    builtin_name,
    collection_file,
    fetch_collection,
    match_gene_sets,
    normalise_line_ends,
    read_gene_set_csv,
    read_gene_sets,
    read_gmt,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
GENESETS = DATA / "genesets"
needs_data = pytest.mark.skipif(not GENESETS.is_dir(), reason="../shared/data not available")


def _naive_gmt(path):
    """Independent GMT parse: split on tabs, drop empty fields."""
    out = {}
    for line in path.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n"):
        if line.strip():
            f = line.split("\t")
            out[f[0]] = [g for g in f[2:] if g]
    return out


# --------------------------------------------------------------------------
# real files
# --------------------------------------------------------------------------


@needs_data
def test_real_celltypes_psp_csv():
    path = GENESETS / "celltypes_PSP.csv"
    sets = read_gene_sets(path)
    assert list(sets) == ["Astro", "Endo", "Micro", "Neuro-Ex", "Neuro-In", "Oligo", "OPC"]
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    # 7,159 rows (the data README says 7,158: the file has no final newline,
    # so `wc -l` undercounts); 7 of them, one per class, have an empty gene
    # field, which the reader skips; 6,094 distinct gene fields incl. ''.
    assert len(rows) == 7159
    assert sum(r["gene"] == "" for r in rows) == 7
    assert len({r["gene"] for r in rows}) == 6094
    expect = {}
    for row in rows:
        expect.setdefault(row["class"], [])
        if row["gene"] and row["gene"] not in expect[row["class"]]:
            expect[row["class"]].append(row["gene"])
    assert sum(len(v) for v in sets.values()) == 7152
    assert sets == expect


@needs_data
@pytest.mark.parametrize("name, n_sets", [("geneset_LAKE.gmt", 30), ("geneset_Pooled.gmt", 7)])
def test_real_gmt_files(name, n_sets):
    path = GENESETS / name
    sets = read_gene_sets(path)
    assert len(sets) == n_sets
    assert sets == _naive_gmt(path)
    assert all(len(v) > 0 and "" not in v for v in sets.values())
    if name == "geneset_Pooled.gmt":
        assert list(sets) == ["Astro", "Endo", "Microglia", "Neuro_Exc", "Neuro_Inb",
                              "Oligo", "OPC"]
        assert len(sets["OPC"]) == 141


@needs_data
def test_real_files_line_end_variants(tmp_path):
    """CRLF made from the LF CSV, LF made from the CRLF GMT: same result."""
    csv_lf = GENESETS / "celltypes_PSP.csv"
    raw = csv_lf.read_bytes()
    assert b"\r\n" not in raw
    crlf = tmp_path / "psp_crlf.csv"
    crlf.write_bytes(raw.replace(b"\n", b"\r\n"))
    assert read_gene_sets(crlf) == read_gene_sets(csv_lf)

    gmt = GENESETS / "geneset_Pooled.gmt"
    lf = tmp_path / "pooled_lf.gmt"
    lf.write_bytes(gmt.read_bytes().replace(b"\r\n", b"\n"))
    assert read_gene_sets(lf) == read_gene_sets(gmt)


@needs_data
def test_real_sets_match_real_expression_genes():
    expr = DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv"
    if not expr.is_file():
        pytest.skip("AHBA expression table not available")
    with open(expr, encoding="utf-8-sig") as fh:
        header = fh.readline().rstrip("\r\n").split(",")
    genes = header[2:]
    assert len(genes) == 15633
    sets = read_gene_sets(GENESETS / "celltypes_PSP.csv")
    # the table has spreadsheet-mangled duplicate symbols ("Mar-01" twice)
    with pytest.warns(UserWarning, match="more than once"):
        membership, report = match_gene_sets(sets, genes, min_size=20)
    assert list(report["set"]) == list(sets)
    assert report["kept"].all()
    assert (report["n_genes_found"] <= report["n_genes_in_set"]).all()
    np.testing.assert_array_equal(membership.sum(axis=0).to_numpy(),
                                  report["n_genes_found"].to_numpy())
    assert membership.shape == (15633, 7)


# --------------------------------------------------------------------------
# format quirks
# --------------------------------------------------------------------------


def test_csv_bom_crlf_whitespace_duplicates(tmp_path):
    p = tmp_path / "sets.csv"
    text = ("gene,set\r\n GFAP , Astro\r\nAQP4,Astro\r\nGFAP,Astro\r\n\r\n"
            "MBP,Oligo\r\nAQP4,Astro\r\n,Oligo\r\n")
    p.write_bytes(b"\xef\xbb\xbf" + text.encode())
    assert read_gene_sets(p) == {"Astro": ["GFAP", "AQP4"], "Oligo": ["MBP"]}


def test_csv_column_names(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("Class,Gene\nAstro,GFAP\nOligo,MBP\n")  # named columns, any order
    assert read_gene_set_csv(p) == {"Astro": ["GFAP"], "Oligo": ["MBP"]}
    p.write_text("symbol_x,celltype\nGFAP,Astro\n")  # two columns: gene, set
    assert read_gene_set_csv(p) == {"Astro": ["GFAP"]}
    p.write_text("gene,set,score\nGFAP,Astro,1\n")  # extra column ignored
    assert read_gene_set_csv(p) == {"Astro": ["GFAP"]}
    p.write_text("a,b,c\nGFAP,Astro,1\n")
    with pytest.raises(ValueError, match="cannot identify"):
        read_gene_set_csv(p)
    p.write_text("gene,set\nGFAP\n")
    with pytest.raises(ValueError, match="row 2"):
        read_gene_set_csv(p)
    p.write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_gene_set_csv(p)


def test_csv_keeps_gene_named_na(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("gene,set\nNA,S\nNULL,S\n")
    assert read_gene_sets(p) == {"S": ["NA", "NULL"]}


def test_tsv(tmp_path):
    p = tmp_path / "a.TSV"
    p.write_text("gene\tclass\nGFAP\tAstro\nMBP\tOligo\n")
    assert read_gene_sets(p) == {"Astro": ["GFAP"], "Oligo": ["MBP"]}


def test_gmt_quirks_and_errors(tmp_path):
    p = tmp_path / "a.gmt"
    p.write_bytes(b"\xef\xbb\xbfS1\tdesc\tA\t B \tA\t\t\r\n\r\nS2\tNA\r\nS3\t\tC")
    assert read_gmt(p) == {"S1": ["A", "B"], "S2": [], "S3": ["C"]}
    p.write_text("S1\tdesc\tA\nS1\tdesc\tB\n")
    with pytest.raises(ValueError, match="occurs twice"):
        read_gmt(p)
    p.write_text("S1 A B\n")
    with pytest.raises(ValueError, match="line 1"):
        read_gmt(p)
    p.write_text("\n\n")
    with pytest.raises(ValueError, match="no gene sets"):
        read_gmt(p)


def test_unknown_extension_names_file_and_formats(tmp_path):
    p = tmp_path / "sets.xlsx"
    p.write_text("x")
    with pytest.raises(ValueError) as exc:
        read_gene_sets(p)
    msg = str(exc.value)
    assert "sets.xlsx" in msg and ".gmt" in msg and ".csv" in msg and ".tsv" in msg


# --------------------------------------------------------------------------
# matching
# --------------------------------------------------------------------------


def test_match_gene_sets_case_insensitive_and_report():
    genes = ["GFAP", "AQP4", "MBP", "PLP1", "SNAP25", "c1orf61"]
    sets = {
        "Astro": ["gfap", "Aqp4", "NOTAGENE", "GFAP"],  # GFAP twice (two spellings)
        "Oligo": ["MBP", "PLP1", "MOG"],
        "Tiny": ["SNAP25", "XYZ"],
        "Other": ["C1ORF61", "MBP"],
    }
    membership, report = match_gene_sets(sets, genes, min_size=2)
    assert list(membership.index) == genes
    assert list(membership.columns) == ["Astro", "Oligo", "Other"]
    assert membership.dtypes.eq(np.float64).all()
    assert membership["Astro"].tolist() == [1, 1, 0, 0, 0, 0]
    assert membership["Other"].tolist() == [0, 0, 1, 0, 0, 1]
    assert list(report.columns) == ["set", "n_genes_in_set", "n_genes_found", "n_found_direct",
                                    "n_found_alias", "n_missing", "n_duplicates", "kept", "reason"]
    rep = report.set_index("set")
    assert rep.loc["Astro", "n_genes_in_set"] == 4  # distinct symbols as read
    assert rep.loc["Astro", "n_genes_found"] == 2
    assert rep.loc["Oligo", "n_genes_found"] == 2
    assert not rep.loc["Tiny", "kept"] and "min_size=2" in rep.loc["Tiny", "reason"]
    assert rep.loc["Astro", "reason"] == ""
    assert report["kept"].dtype == bool


def test_match_gene_sets_exact_case_wins_and_ambiguity():
    genes = ["Abc", "ABC", "XYZ"]
    membership, report = match_gene_sets({"S": ["ABC", "abc", "xyz"]}, genes, min_size=1)
    # "ABC" matches exactly; "abc" is ambiguous (Abc / ABC) and is not matched
    assert membership["S"].tolist() == [0, 1, 1]
    with pytest.warns(UserWarning, match="more than once"):
        membership, report = match_gene_sets({"S": ["A", "b"]}, ["A", "A", "B"], min_size=1)
    assert membership["S"].tolist() == [0, 0, 1]  # duplicated "A" is ambiguous
    with pytest.raises(ValueError, match="min_size"):
        match_gene_sets({"S": ["A"]}, ["A"], min_size=0)


def test_match_gene_sets_nothing_kept():
    membership, report = match_gene_sets({"S": ["Q"]}, ["A", "B"], min_size=1)
    assert membership.shape == (2, 0)
    assert not report["kept"].any()


# --------------------------------------------------------------------------
# built-in collections: registry and fetching
# --------------------------------------------------------------------------

@pytest.fixture
def http():
    with FileServer() as srv:
        yield srv


FAST = dict(backoff=0, timeout=5)


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_registry_is_pinned():
    assert set(BUILTIN_COLLECTIONS) == {"seidlitz2020", "lake2018", "pooled7", "psychencode2018",
                                        "siletti2023", "syngo", "gobp"}
    for name, c in BUILTIN_COLLECTIONS.items():
        assert c.name == name
        assert c.url.startswith("https://raw.githubusercontent.com/")
        # a full 40-hex commit, not a branch or a short hash
        assert re.search(r"/[0-9a-f]{40}/", c.url), c.url
        assert c.url.endswith("/" + c.filename)
        assert c.filename.endswith("." + c.ext) and c.ext in ("csv", "gmt", "collect", "xlsx")
        assert (re.fullmatch(r"[0-9a-f]{64}", c.sha256)
                and re.fullmatch(r"[0-9a-f]{64}", c.sha256_lf))


#: the built-ins of which ../shared/data holds a copy
SHARED_BUILTINS = ("seidlitz2020", "lake2018", "pooled7")


@needs_data
@pytest.mark.parametrize("name", SHARED_BUILTINS)
def test_registry_checksums_match_shared_copies(name):
    c = BUILTIN_COLLECTIONS[name]
    raw = (GENESETS / c.filename).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == c.sha256
    assert hashlib.sha256(normalise_line_ends(raw)).hexdigest() == c.sha256_lf
    # the shared README's sha256 list agrees
    sums = (DATA / "SHA256SUMS").read_text()
    assert f"{c.sha256}  ./genesets/{c.filename}" in sums


def test_normalise_line_ends():
    assert normalise_line_ends(b"a\r\nb\rc\nd") == b"a\nb\nc\nd"


def test_builtin_name_and_collection_file():
    assert builtin_name("seidlitz2020") == "seidlitz2020"
    assert builtin_name("my/sets.gmt") is None
    assert builtin_name({"builtin": "lake2018", "source": "/mirror"}) == "lake2018"
    with pytest.raises(ValueError, match="known"):
        builtin_name({"builtin": "nope"})
    assert collection_file("seidlitz2020") == "resources/genesets/seidlitz2020.csv"
    assert collection_file({"builtin": "pooled7"}, "x") == "x/pooled7.gmt"
    assert collection_file("config/my.gmt") == "config/my.gmt"


@needs_data
def test_fetch_from_http_mirror_with_resume(http, tmp_path):
    body = (GENESETS / "geneset_Pooled.gmt").read_bytes()
    route = http.add("/mirror/geneset_Pooled.gmt", body, truncate=1)
    dest = tmp_path / "out" / "pooled7.gmt"
    got = fetch_collection("pooled7", dest, source=http.base + "/mirror/", **FAST)
    assert got == dest and dest.read_bytes() == body
    assert route.hits == 2  # the truncated first answer was resumed
    assert _leftovers(dest.parent) == []
    assert read_gene_sets(dest) == read_gene_sets(GENESETS / "geneset_Pooled.gmt")


@needs_data
def test_fetch_pinned_url_and_crlf_bytes(http, tmp_path, monkeypatch):
    """The pinned URL is used when no source is given; CRLF-converted bytes pass
    through the line-end-normalised checksum (the jms290 original is CRLF)."""
    lf = (GENESETS / "celltypes_PSP.csv").read_bytes()
    crlf = lf.replace(b"\n", b"\r\n")
    http.add("/pinned/celltypes_PSP.csv", crlf)
    fake = {k: dataclasses.replace(v, url=f"{http.base}/pinned/{v.filename}")
            for k, v in BUILTIN_COLLECTIONS.items()}
    monkeypatch.setattr(genesets, "BUILTIN_COLLECTIONS", fake)
    dest = tmp_path / "seidlitz2020.csv"
    fetch_collection("seidlitz2020", dest, **FAST)
    assert dest.read_bytes() == crlf  # kept as served
    assert read_gene_sets(dest) == read_gene_sets(GENESETS / "celltypes_PSP.csv")
    # a full file URL (not a folder) is fetched as it is
    http.add("/other/name.csv", lf)
    fetch_collection("seidlitz2020", tmp_path / "b.csv", source=http.base + "/other/name.csv",
                     **FAST)
    assert (tmp_path / "b.csv").read_bytes() == lf


@needs_data
def test_fetch_rejects_wrong_bytes_and_leaves_nothing(http, tmp_path):
    body = (GENESETS / "geneset_LAKE.gmt").read_bytes()
    bad = body.replace(b"GFAP", b"GFAQ", 1) if b"GFAP" in body else body[:-1] + b"X"
    http.add("/m/geneset_LAKE.gmt", bad)
    dest = tmp_path / "lake2018.gmt"
    with pytest.raises(ChecksumError, match="lake2018.*expected"):
        fetch_collection("lake2018", dest, source=http.base + "/m/", **FAST)
    assert not dest.exists() and _leftovers(tmp_path) == []
    with pytest.raises(DownloadError):
        fetch_collection("lake2018", dest, source=http.base + "/absent/", **FAST)
    assert _leftovers(tmp_path) == []


@needs_data
def test_fetch_from_local_folder_and_file(tmp_path):
    dest = tmp_path / "out" / "lake2018.gmt"
    fetch_collection("lake2018", dest, source=GENESETS)  # folder holding geneset_LAKE.gmt
    assert dest.read_bytes() == (GENESETS / "geneset_LAKE.gmt").read_bytes()
    # a folder of earlier fetches (<name>.<ext>) is a mirror too; LF-converted copy accepted
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "lake2018.gmt").write_bytes(normalise_line_ends(dest.read_bytes()))
    fetch_collection("lake2018", tmp_path / "again.gmt", source=mirror)
    assert read_gene_sets(tmp_path / "again.gmt") == read_gene_sets(dest)
    fetch_collection("pooled7", tmp_path / "p.gmt", source=GENESETS / "geneset_Pooled.gmt")
    with pytest.raises(ChecksumError):
        fetch_collection("pooled7", tmp_path / "q.gmt", source=GENESETS / "geneset_LAKE.gmt")
    assert not (tmp_path / "q.gmt").exists()
    with pytest.raises(FileNotFoundError, match="geneset_Pooled.gmt"):
        fetch_collection("pooled7", tmp_path / "q.gmt", source=mirror)
    with pytest.raises(FileNotFoundError, match="neither"):
        fetch_collection("pooled7", tmp_path / "q.gmt", source=tmp_path / "nope.gmt")
    with pytest.raises(ValueError, match="unknown built-in"):
        fetch_collection("pooled8", tmp_path / "q.gmt")


# --------------------------------------------------------------------------
# aliases
# --------------------------------------------------------------------------


def test_alias_table_from_probe_reannotation():
    allen = pd.DataFrame({
        "probe_id": [1, 2, 3, 4, 5, 6],
        "probe_name": ["p1", "p2", "p3", "p4", "p5", "p6"],
        "gene_symbol": ["GPR98", "GPR98", "c1orf61", "OLD1", "OLD1", "SAME"],
    })
    re_ = pd.DataFrame({"probe_name": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"],
                        "gene_symbol": ["ADGRV1", "ADGRV1", "C1orf61", "NEW1", "NEW2", "SAME",
                                        "X"]})
    t = alias_table(allen, re_)
    assert list(t.columns) == ["alias", "symbol", "n_probes"]
    # case-only differences are no aliases; one pair per distinct (alias, symbol)
    assert t.to_dict("records") == [
        {"alias": "GPR98", "symbol": "ADGRV1", "n_probes": 2},
        {"alias": "OLD1", "symbol": "NEW1", "n_probes": 1},
        {"alias": "OLD1", "symbol": "NEW2", "n_probes": 1},
    ]
    with pytest.raises(ValueError, match="probe_name"):
        alias_table(pd.DataFrame({"gene_symbol": ["A"]}), re_)


def test_alias_table_with_abagen_reannotation(tmp_path):
    import abagen

    re_path = Path(abagen.__file__).parent / "data" / "reannotated.csv.gz"
    re_ = pd.read_csv(re_path, nrows=5)
    probes = tmp_path / "Probes.csv"
    # an AHBA-style Probes.csv whose first probe carries an older symbol
    rows = ["probe_id,probe_name,gene_id,gene_symbol,gene_name,entrez_id,chromosome"]
    for i, (name, sym) in enumerate(zip(re_["probe_name"], re_["gene_symbol"])):
        rows.append(f"{i},{name},{i},{'OLDNAME' if i == 0 else sym},x,1,1")
    probes.write_text("\n".join(rows) + "\n")
    t = alias_table(probes)
    assert t.to_dict("records") == [{"alias": "OLDNAME", "symbol": re_["gene_symbol"][0],
                                     "n_probes": 1}]


def _check_report_identity(report):
    total = report[["n_found_direct", "n_found_alias", "n_missing", "n_duplicates"]].sum(axis=1)
    np.testing.assert_array_equal(total, report["n_genes_in_set"])
    np.testing.assert_array_equal(report["n_found_direct"] + report["n_found_alias"],
                                  report["n_genes_found"])


def test_match_with_aliases_counts_and_precedence():
    genes = ["ADGRV1", "GFAP", "NEW1", "NEW2", "AQP4", "MBP"]
    aliases = pd.DataFrame({"alias": ["GPR98", "OLD1", "OLD1", "OLD2", "AQP4"],
                            "symbol": ["ADGRV1", "NEW1", "NEW2", "MBP", "MBP"]})
    sets = {
        # gpr98 -> ADGRV1 by alias (case-insensitive); GFAP direct; "Gfap" a
        # case variant (duplicate); NOTAGENE missing
        "A": ["gpr98", "GFAP", "Gfap", "NOTAGENE"],
        # ADGRV1 direct and its alias GPR98 -> the same gene: one duplicate
        "B": ["ADGRV1", "GPR98"],
        # OLD1 names two expression genes: ambiguous, missing
        "C": ["OLD1", "OLD2"],
        # AQP4 is an expression gene: the direct match wins over its "alias"
        "D": ["AQP4"],
    }
    membership, report = match_gene_sets(sets, genes, min_size=1, aliases=aliases)
    _check_report_identity(report)
    rep = report.set_index("set")
    assert rep.loc["A", ["n_found_direct", "n_found_alias", "n_missing",
                         "n_duplicates"]].tolist() == [1, 1, 1, 1]
    assert rep.loc["B", ["n_found_direct", "n_found_alias", "n_missing",
                         "n_duplicates"]].tolist() == [1, 0, 0, 1]
    assert rep.loc["C", ["n_found_direct", "n_found_alias", "n_missing",
                         "n_duplicates"]].tolist() == [0, 1, 1, 0]
    assert membership["A"].tolist() == [1, 1, 0, 0, 0, 0]
    assert membership["B"].tolist() == [1, 0, 0, 0, 0, 0]
    assert membership["C"].tolist() == [0, 0, 0, 0, 0, 1]
    assert membership["D"].tolist() == [0, 0, 0, 0, 1, 0]
    # without aliases: alias symbols are missing; a dict works like the table
    _, plain = match_gene_sets(sets, genes, min_size=1)
    assert plain.set_index("set").loc["A", "n_missing"] == 2 and plain["n_found_alias"].sum() == 0
    m2, r2 = match_gene_sets(sets, genes, min_size=1,
                             aliases={"GPR98": "ADGRV1", "OLD1": ["NEW1", "NEW2"], "OLD2": "MBP"})
    assert r2.drop(columns="reason").equals(report.drop(columns="reason"))
    with pytest.raises(ValueError, match="alias, symbol"):
        match_gene_sets(sets, genes, min_size=1, aliases=pd.DataFrame({"a": [1]}))


def test_match_alias_target_missing_from_genes_is_skipped():
    # OLD1 -> NEW1 (not measured) and NEW2 (measured): unambiguous in this matrix
    membership, report = match_gene_sets({"S": ["OLD1"]}, ["NEW2", "X"], min_size=1,
                                         aliases={"OLD1": ["NEW1", "NEW2"]})
    assert membership["S"].tolist() == [1, 0]
    assert report.loc[0, "n_found_alias"] == 1


@needs_data
def test_real_collections_report_identity():
    expr = DATA / "ahba_parcellated" / "dk83_genes15633_abagen.csv"
    if not expr.is_file():
        pytest.skip("AHBA expression table not available")
    with open(expr, encoding="utf-8-sig") as fh:
        genes = fh.readline().rstrip("\r\n").split(",")[2:]
    for f in ("celltypes_PSP.csv", "geneset_LAKE.gmt"):
        with pytest.warns(UserWarning, match="more than once"):
            _, report = match_gene_sets(read_gene_sets(GENESETS / f), genes, min_size=5)
        _check_report_identity(report)
        assert (report["n_found_direct"] > 0).all()


# --------------------------------------------------------------------------
# config schema: genesets values and the enrichment / celltypes keys
# --------------------------------------------------------------------------


def _validate(cfg):
    import copy

    import yaml
    from snakemake.utils import validate

    root = Path(__file__).resolve().parents[1]
    base = yaml.safe_load((root / "config" / "config.yaml").read_text())
    base.update(copy.deepcopy(cfg))
    validate(base, str(root / "workflow" / "schemas" / "config.schema.yaml"))
    return base


def test_schema_accepts_builtin_names_paths_and_sources():
    cfg = _validate({"genesets": {"psp": "seidlitz2020", "mine": "config/sets.gmt",
                                  "lake": {"builtin": "lake2018", "source": "/mirror/"}}})
    assert cfg["enrichment"]["rank_alternative"] == "two-sided"
    assert cfg["celltypes"]["min_genes"] == 10
    # every built-in name of the registry is accepted by the schema, and no other
    for name in BUILTIN_COLLECTIONS:
        _validate({"genesets": {"x": {"builtin": name}}})
    from snakemake.exceptions import WorkflowError

    for bad in ({"genesets": {"x": {"builtin": "lake2019"}}},
                {"genesets": {"x": {"builtin": "lake2018", "mirror": "/m"}}},
                {"enrichment": {"rank_alternative": "less"}},
                {"enrichment": {"overlap_fraction": 0.5}},
                {"celltypes": {"min_genes": 0}}):
        with pytest.raises(WorkflowError):
            _validate(bad)
