"""Tests of itx.genesets: real published files, format quirks, gene matching."""

import csv
from pathlib import Path

import numpy as np
import pytest

from itx.genesets import match_gene_sets, read_gene_set_csv, read_gene_sets, read_gmt

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
        assert list(sets) == ["Astro", "Endo", "Microglia", "Neuro_Exc", "Neuro_Inb", "Oligo", "OPC"]
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
    np.testing.assert_array_equal(membership.sum(axis=0).to_numpy(), report["n_genes_found"].to_numpy())
    assert membership.shape == (15633, 7)


# --------------------------------------------------------------------------
# format quirks
# --------------------------------------------------------------------------


def test_csv_bom_crlf_whitespace_duplicates(tmp_path):
    p = tmp_path / "sets.csv"
    text = "gene,set\r\n GFAP , Astro\r\nAQP4,Astro\r\nGFAP,Astro\r\n\r\nMBP,Oligo\r\nAQP4,Astro\r\n,Oligo\r\n"
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
    assert list(report.columns) == ["set", "n_genes_in_set", "n_genes_found", "kept", "reason"]
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
