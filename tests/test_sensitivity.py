"""itx.sensitivity: one map under several nulls (calibrated FPR, p floor, verdicts)."""

import html
import math
import runpy
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from itx import sensitivity as sens
from itx import sensitivity_page as page
from itx.association import fdr_bh

ROOT = Path(__file__).resolve().parents[1]
COLS = ["atlas", "hemispheres", "method", "sigma", "alpha", "fpr", "ci_low", "ci_high",
        "n_fields", "n_genes", "n_perm"]


def _row(atlas, hemi, method, fpr, alpha=0.05, sigma="all"):
    return [atlas, hemi, method, sigma, alpha, fpr, fpr - 0.005, fpr + 0.005, 600, 3000, 1000]


@pytest.fixture
def calibration():
    rows = [
        _row("desikan_killiany", "left", "vasa", 0.087),
        _row("desikan_killiany", "left", "vasa", 0.021, alpha=0.01),
        _row("desikan_killiany", "left", "vasa", 0.5, sigma="15"),   # never used: not pooled
        _row("desikan_killiany", "both", "vasa", 0.090),
        _row("desikan_killiany", "left", "alexander_bloch", 0.056),
        _row("schaefer100", "both", "vasa", 0.101),
        _row("schaefer400", "left", "vasa", 0.140),
        _row("schaefer100", "left", "alexander_bloch", 0.061),
    ]
    return pd.DataFrame(rows, columns=COLS)


def _one(table, null):
    return table.set_index("null").loc[null]


# ------------------------------------------------------------------ fpr_lookup

def test_fpr_exact_rows(calibration):
    t = sens.fpr_lookup(calibration, "desikan_killiany", "left", ["vasa", "alexander_bloch"])
    assert list(t["null"]) == ["vasa", "alexander_bloch"]
    assert list(t.columns) == sens.FPR_COLUMNS
    v = _one(t, "vasa")
    assert v["fpr"] == 0.087 and v["fpr_ci_low"] == pytest.approx(0.082)
    assert v["fpr_ci_high"] == pytest.approx(0.092)
    assert v["fpr_source"] == "desikan_killiany/left"
    assert _one(t, "alexander_bloch")["fpr"] == 0.056
    # the level picks the row; an uncalibrated level gives NaN
    assert _one(sens.fpr_lookup(calibration, "desikan_killiany", "left", ["vasa"], alpha=0.01),
                "vasa")["fpr"] == 0.021
    t = sens.fpr_lookup(calibration, "desikan_killiany", "left", ["vasa"], alpha=0.1)
    assert np.isnan(_one(t, "vasa")["fpr"]) and _one(t, "vasa")["fpr_source"] == "not calibrated"
    t = sens.fpr_lookup(calibration, "schaefer100", "both", ["vasa"])
    assert _one(t, "vasa")["fpr"] == 0.101
    assert _one(t, "vasa")["fpr_source"] == "schaefer100/both"


def test_fpr_fallbacks(calibration):
    def got(atlas, hemi, method):
        r = _one(sens.fpr_lookup(calibration, atlas, hemi, [method]), method)
        return r["fpr"], r["fpr_source"]

    # a Schaefer resolution over the same hemispheres before the same atlas over others
    fpr, src = got("schaefer100", "left", "vasa")
    assert fpr == 0.140
    assert src == "schaefer400/left (fallback: schaefer100/left not calibrated)"
    assert got("schaefer400", "both", "vasa")[0] == 0.101
    # then the same atlas, other hemispheres, before another atlas
    fpr, src = got("schaefer100", "both", "alexander_bloch")
    assert fpr == 0.061
    assert src == "schaefer100/left (fallback: schaefer100/both not calibrated)"
    # the nearest Schaefer resolution on a log scale: 300 -> 400
    assert got("schaefer300", "left", "vasa")[0] == 0.140
    assert got("schaefer200", "left", "alexander_bloch")[0] == 0.061
    # a user atlas: the reference calibration, same hemispheres first, then left
    fpr, src = got("my_atlas", "both", "vasa")
    assert fpr == 0.090 and src.startswith("desikan_killiany/both (fallback: my_atlas/both")
    assert got("my_atlas", "both", "alexander_bloch") == (
        0.056, "desikan_killiany/left (fallback: my_atlas/both not calibrated)")
    # never calibrated
    fpr, src = got("desikan_killiany", "left", "moran")
    assert np.isnan(fpr) and src == "not calibrated"


def test_fpr_old_format_is_dk_left():
    """The first calibration table (no atlas/hemispheres) is DK left cortex."""
    old = pd.read_csv(ROOT / "docs" / "calibration.tsv", sep="\t")
    if "atlas" in old.columns:
        old = old.drop(columns=["atlas", "hemispheres"])
        old = old[~old.duplicated(["method", "sigma", "alpha"])]
    vasa = old[(old["method"] == "vasa") & (old["sigma"].astype(str) == "all")
               & (old["alpha"] == 0.05)].iloc[0]
    t = sens.fpr_lookup(old, "desikan_killiany", "left", ["vasa", "nope"])
    assert _one(t, "vasa")["fpr"] == vasa["fpr"]
    assert _one(t, "vasa")["fpr_ci_low"] == vasa["ci_low"]
    assert _one(t, "vasa")["fpr_source"] == "desikan_killiany/left"
    assert np.isnan(_one(t, "nope")["fpr"])
    t = sens.fpr_lookup(ROOT / "docs" / "calibration.tsv", "schaefer100", "both", ["vasa"])
    assert np.isfinite(_one(t, "vasa")["fpr"])
    assert "fallback" in _one(t, "vasa")["fpr_source"] or \
        _one(t, "vasa")["fpr_source"] == "schaefer100/both"


def test_fpr_bad_input(calibration):
    with pytest.raises(ValueError, match="hemispheres must be one of"):
        sens.fpr_lookup(calibration, "desikan_killiany", "right", ["vasa"])
    with pytest.raises(ValueError, match="only one of the columns"):
        sens.fpr_lookup(calibration.drop(columns="hemispheres"), "x", "left", ["vasa"])
    with pytest.raises(ValueError, match=r"missing columns \['ci_low'\]"):
        sens.fpr_lookup(calibration.drop(columns="ci_low"), "x", "left", ["vasa"])
    dup = pd.concat([calibration, calibration.iloc[[0]]])
    with pytest.raises(ValueError, match="more than one pooled"):
        sens.fpr_lookup(dup, "desikan_killiany", "left", ["vasa"])


def test_null_calibration_classes():
    assert sens.null_calibration(0.087, 0.081, 0.093) == "liberal"       # vasa
    assert sens.null_calibration(0.074, 0.0685, 0.0797) == "liberal"     # hungarian
    assert sens.null_calibration(0.063, 0.058, 0.069) == "nominal"       # moran
    assert sens.null_calibration(0.0556, 0.0512, 0.0602) == "nominal"    # alexander_bloch
    assert sens.null_calibration(0.038, 0.034, 0.041) == "conservative"  # cornblath
    assert sens.null_calibration(np.nan, np.nan, np.nan) == "unknown"


# ------------------------------------------------------------------ p floor

@pytest.mark.parametrize("n_null, ties, below", [(999, 0, 0), (99, 3, 0), (1000, 5, 2),
                                                 (9999, 0, 0)])
def test_smallest_attainable_q_vs_brute_force(n_null, ties, below):
    rng = np.random.default_rng(n_null + ties)
    floor = 1 / (n_null + 1)
    # permutation p values live on the grid k / (n_null + 1)
    p = rng.integers(1, n_null + 2, size=500) / (n_null + 1)
    p[:ties] = floor
    p[ties:ties + below] = floor / 3       # p from elsewhere may fall below the floor
    p[-4:] = np.nan
    res = sens.smallest_attainable_q(p, n_null)
    finite = p[np.isfinite(p)]
    assert res.m == finite.size and res.p_floor == floor
    with_floor = np.append(finite, floor)
    assert res.q_floor == pytest.approx(fdr_bh(with_floor)[-1], rel=1e-12)
    assert res.q_floor == pytest.approx(false_discovery_control(with_floor, method="bh")[-1],
                                        rel=1e-12)


@pytest.mark.parametrize("m, n_null, alpha", [(1000, 999, 0.05), (15633, 9999, 0.05),
                                              (200, 999, 0.05), (15633, 999, 0.1),
                                              (300, 4999, 0.01), (50, 9, 0.05)])
def test_genes_needed_at_the_floor_vs_brute_force(m, n_null, alpha):
    floor = 1 / (n_null + 1)
    res = sens.smallest_attainable_q(np.ones(m), n_null, alpha)

    def q_at_floor(k):
        p = np.ones(m)              # the other genes do not help
        p[:k] = floor
        return fdr_bh(p)[0]

    need = next((k for k in range(1, m + 1) if q_at_floor(k) < alpha), m + 1)
    if need <= m:
        assert res.n_needed == need
        assert q_at_floor(need - 1) >= alpha if need > 1 else True
    else:   # no run of this size gets there: the formula goes beyond m
        assert res.n_needed > m
    assert res.n_needed == math.floor(m * floor / alpha) + 1 or \
        abs(m * floor / alpha - round(m * floor / alpha)) < 1e-9


def test_smallest_attainable_q_edges():
    res = sens.smallest_attainable_q([0.5, np.nan], None)
    assert np.isnan(res.p_floor) and np.isnan(res.q_floor) and res.n_needed == -1
    assert res.m == 1
    res = sens.smallest_attainable_q([], 99)
    assert res.m == 0 and res.q_floor == pytest.approx(0.01)
    with pytest.raises(ValueError, match="n_null must be"):
        sens.smallest_attainable_q([0.1], -1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sens.smallest_attainable_q([1.5], 99)


# ------------------------------------------------------------------ summarise

NULLS = ["alexander_bloch", "vasa", "cornblath"]


def _genes(p, q):
    n = len(p)
    return pd.DataFrame({"gene": [f"G{i}" for i in range(n)], "r": np.linspace(-0.5, 0.5, n),
                         "p_spin": p, "q_spin": q, "p_naive": p, "q_naive": q})


def _sets(scores, p, q):
    return pd.DataFrame({"set": ["A", "B", "C<x>"], "n_genes": [10, 12, 8], "score": scores,
                         "p_spatial": p, "q_spatial": q, "p_random": p, "q_random": q})


def _cells(r, p, q):
    return pd.DataFrame({"map": "m", "celltype": ["Astro", "Micro"], "r": r, "p_spin": p,
                         "q_spin": q, "p_naive": p, "n_regions": 34})


def _pls(expl, p, n_null):
    return pd.DataFrame({"component": ["PLS1", "PLS2"], "explained": [expl, expl + 0.1],
                         "p_spin": [p, 0.5], "n_null": [n_null, n_null]})


@pytest.fixture
def inputs(calibration):
    genes = {
        "alexander_bloch": _genes([0.01, 0.03, 0.2, 0.5, np.nan], [0.04, 0.06, 0.2, 0.5, np.nan]),
        "vasa": _genes([0.001, 0.02, 0.04, 0.6, 0.9], [0.005, 0.04, 0.09, 0.6, 0.9]),
        "cornblath": _genes([0.2, 0.3, 0.4, 0.5, 0.6], [0.6, 0.6, 0.6, 0.6, 0.6]),
    }
    enrichment = {  # A: significant under all; B: none; C<x>: only vasa (liberal)
        "alexander_bloch": {"cells": _sets([0.3, 0.1, 0.2], [0.001, 0.4, 0.1],
                                           [0.003, 0.4, 0.15])},
        "vasa": {"cells": _sets([0.3, 0.1, 0.2], [0.001, 0.3, 0.01], [0.003, 0.3, 0.015])},
        "cornblath": {"cells": _sets([0.3, 0.1, 0.2], [0.002, 0.5, 0.2], [0.006, 0.5, 0.3])},
    }
    celltypes = {  # Astro: depends, with no p under cornblath; Micro: none
        "alexander_bloch": {"cells": _cells([0.5, 0.1], [0.01, 0.6], [0.02, 0.6])},
        "vasa": {"cells": _cells([0.5, 0.1], [0.2, 0.5], [0.4, 0.5])},
        "cornblath": {"cells": _cells([0.5, 0.1], [np.nan, 0.7], [np.nan, 0.7])},
    }
    pls = {"alexander_bloch": _pls(0.3, 0.01, 999), "vasa": _pls(0.3, 0.002, 990),
           "cornblath": _pls(0.3, 0.2, 0)}
    fpr = sens.fpr_lookup(calibration, "desikan_killiany", "left", NULLS)
    return dict(genes=genes, enrichment=enrichment, celltypes=celltypes, pls=pls, fpr=fpr)


def _at(s, null, test, item, col):
    hit = s[(s["null"] == null) & (s["test"] == test) & (s["item"] == item)]
    assert len(hit) == 1, (null, test, item)
    return hit[col].iloc[0]


def test_summarise_puts_values_in_their_rows(inputs):
    s = sens.summarise(NULLS, "alexander_bloch", **inputs, n_perm=500)
    assert list(s.columns) == sens.SUMMARY_COLUMNS
    assert list(dict.fromkeys(s["null"])) == NULLS
    assert s.loc[s["null"] == "alexander_bloch", "primary"].all()
    assert not s.loc[s["null"] != "alexander_bloch", "primary"].any()
    # genes
    assert _at(s, "alexander_bloch", "genes", "n tested", "statistic") == 4
    assert _at(s, "alexander_bloch", "genes", "fraction p<0.05", "statistic") == 0.5
    assert _at(s, "vasa", "genes", "fraction p<0.05", "statistic") == 0.6
    assert _at(s, "vasa", "genes", "n q<0.05", "statistic") == 2
    assert _at(s, "vasa", "genes", "n q<0.1", "statistic") == 3
    assert _at(s, "vasa", "genes", "smallest q", "statistic") == 0.005
    # p floor from pls.tsv's n_null; n_perm only where pls has none (cornblath: 0)
    assert _at(s, "vasa", "genes", "p floor", "statistic") == 1 / 991
    assert _at(s, "cornblath", "genes", "p floor", "statistic") == 1 / 501
    p_vasa = inputs["genes"]["vasa"]["p_spin"].to_numpy()
    assert _at(s, "vasa", "genes", "smallest attainable q", "statistic") == pytest.approx(
        fdr_bh(np.append(p_vasa, 1 / 991))[-1])
    assert _at(s, "vasa", "genes", "n at floor for q<0.05", "statistic") == 1
    # sets and cell types
    assert _at(s, "vasa", "set", "C<x>", "statistic") == 0.2
    assert _at(s, "vasa", "set", "C<x>", "p") == 0.01
    assert _at(s, "vasa", "set", "C<x>", "q") == 0.015
    assert _at(s, "vasa", "set", "C<x>", "collection") == "cells"
    assert bool(_at(s, "vasa", "set", "C<x>", "significant"))
    assert not bool(_at(s, "alexander_bloch", "set", "C<x>", "significant"))
    assert _at(s, "alexander_bloch", "celltype", "Astro", "statistic") == 0.5
    assert _at(s, "alexander_bloch", "celltype", "Astro", "q") == 0.02
    assert pd.isna(_at(s, "cornblath", "celltype", "Astro", "significant"))
    # PLS: PLS1 only, significance from p
    assert _at(s, "vasa", "pls", "PLS1", "statistic") == 0.3
    assert _at(s, "vasa", "pls", "PLS1", "p") == 0.002
    assert bool(_at(s, "vasa", "pls", "PLS1", "significant"))
    assert not bool(_at(s, "cornblath", "pls", "PLS1", "significant"))
    assert (s["test"] == "pls").sum() == 3
    # calibration copied onto every row of its null
    v = s[s["null"] == "vasa"]
    assert (v["fpr"] == 0.087).all() and (v["fpr_source"] == "desikan_killiany/left").all()
    assert s.loc[s["null"] == "cornblath", "fpr_source"].eq("not calibrated").all()


def test_summarise_sequences_and_empty_collections(inputs):
    genes = [inputs["genes"][n] for n in NULLS]
    s = sens.summarise(NULLS, "vasa", genes, {}, None, None, inputs["fpr"], n_perm=99)
    assert set(s["test"]) == {"genes"}
    assert _at(s, "vasa", "genes", "p floor", "statistic") == 0.01
    s = sens.summarise(NULLS, "vasa", genes, {}, None, None, inputs["fpr"])
    assert np.isnan(_at(s, "vasa", "genes", "p floor", "statistic"))


def test_summarise_bad_input(inputs):
    with pytest.raises(ValueError, match="primary null 'moran' is not one of"):
        sens.summarise(NULLS, "moran", **inputs)
    bad = dict(inputs, genes=dict(inputs["genes"], vasa=inputs["genes"]["vasa"].drop(
        columns="q_spin")))
    with pytest.raises(ValueError, match=r"genes.tsv of vasa is missing columns \['q_spin'\]"):
        sens.summarise(NULLS, "vasa", **bad)
    with pytest.raises(ValueError, match="2 genes tables for 3 nulls"):
        sens.summarise(NULLS, "vasa", **dict(inputs, genes=[inputs["genes"]["vasa"]] * 2))


def test_split_null_major():
    got = sens.split_null_major(["a1", "a2", "b1", "b2"], ["a", "b"], ["x", "y"])
    assert got == {"a": {"x": "a1", "y": "a2"}, "b": {"x": "b1", "y": "b2"}}
    assert sens.split_null_major([], ["a"], ["x"]) == {}
    with pytest.raises(ValueError, match="null-major"):
        sens.split_null_major(["a1"], ["a", "b"], ["x"])


# ------------------------------------------------------------------ verdicts

def test_verdicts_all_none_depends(inputs):
    s = sens.summarise(NULLS, "alexander_bloch", **inputs)
    table = sens.verdicts(s)
    assert list(table.columns) == sens.VERDICT_COLUMNS
    v = table.set_index(["test", "item"])
    assert v.loc[("set", "A"), "verdict"] == "all"
    assert v.loc[("set", "B"), "verdict"] == "none"
    c = v.loc[("set", "C<x>")]
    assert c["verdict"] == "depends" and c["significant_under"] == "vasa"
    assert c["not_significant_under"] == "alexander_bloch;cornblath"
    assert c["liberal_under"] == "vasa" and c["liberal_only"]
    assert not c["primary_significant"]
    assert "liberal" in c["sentence"] and "vasa (FPR 8.7%)" in c["sentence"]
    a = v.loc[("celltype", "Astro")]
    assert a["verdict"] == "depends" and a["primary_significant"]
    assert a["untested_under"] == "cornblath" and not a["liberal_only"]
    assert v.loc[("celltype", "Micro"), "verdict"] == "none"
    pls = v.loc[("pls", "PLS1")]
    assert pls["verdict"] == "depends" and pls["significant_under"] == "alexander_bloch;vasa"
    assert "every null" in v.loc[("set", "A"), "sentence"]
    assert "does not reach q < 0.05" in v.loc[("set", "B"), "sentence"]


def test_verdicts_from_the_written_table(inputs, tmp_path):
    """The TSV read back (empty collection and significance) gives the same verdicts."""
    from itx.tables import read_tsv, write_tsv

    s = sens.summarise(NULLS, "alexander_bloch", **inputs)
    write_tsv(s, tmp_path / "s.tsv")
    back = read_tsv(tmp_path / "s.tsv")
    a = sens.verdicts(s)
    b = sens.verdicts(back)
    assert list(a["verdict"]) == list(b["verdict"])
    assert list(a["significant_under"]) == list(b["significant_under"])


# ------------------------------------------------------------------ HTML + figure

def test_html_says_it_in_words_and_escapes(inputs):
    s = sens.summarise(NULLS, "alexander_bloch", **inputs)
    v = sens.verdicts(s)
    html_page = page.sensitivity_html(s, v, "map <b>&</b>", atlas="dk")
    assert html_page.startswith("<!DOCTYPE html>") and html_page.rstrip().endswith("</html>")
    assert "<b>&" not in html_page and "map &lt;b&gt;&amp;&lt;/b&gt;" in html_page
    assert "C<x>" not in html_page and "C&lt;x&gt;" in html_page
    for sentence in v["sentence"]:
        assert html.escape(sentence) in html_page
    assert "8.7%" in html_page and "smallest attainable q" in html_page
    assert "would have to be at the floor" in html_page


def test_html_folds_many_items_significant_under_no_null(inputs):
    """A GO-scale collection: sets significant under no null are counted, not listed."""
    s = sens.summarise(NULLS, "alexander_bloch", **inputs)
    v = sens.verdicts(s)
    # B is the one set significant under no null in "cells"
    none = v[(v["verdict"] == "none") & (v["test"] == "set")]
    assert len(none) == 1
    listed = page.sensitivity_html(s, v, "m")
    folded = page.sensitivity_html(s, v, "m", max_unremarkable=0)
    assert html.escape(none["sentence"].iloc[0]) in listed
    assert html.escape(none["sentence"].iloc[0]) not in folded
    assert "further items of cells are significant under no null" in folded
    # items with another verdict are listed either way
    for sentence in v.loc[v["verdict"] != "none", "sentence"]:
        assert html.escape(sentence) in folded
    assert folded.count("<tr>") == listed.count("<tr>") - (v["verdict"] == "none").sum()


def test_figure_is_written(inputs, tmp_path):
    s = sens.summarise(NULLS, "alexander_bloch", **inputs)
    out = page.plot_sensitivity(s, tmp_path / "f" / "sens.png", title="m")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    genes = [inputs["genes"][n] for n in NULLS]
    bare = sens.summarise(NULLS, "vasa", genes, None, None, None, inputs["fpr"])
    assert page.plot_sensitivity(bare, tmp_path / "bare.png").stat().st_size > 0
    with pytest.raises(ValueError, match=r"\.png"):
        page.plot_sensitivity(s, tmp_path / "x.pdf")


# ------------------------------------------------------------------ rule script

def test_rule_script(inputs, calibration, tmp_path):
    from snakemake.iocontainers import Namedlist

    from itx.tables import write_tsv

    nulls, sets = ["alexander_bloch", "vasa"], ["cells", "more"]
    paths = {"genes": [], "pls": [], "enrichment": [], "celltypes": []}
    for n in nulls:
        d = tmp_path / n
        write_tsv(inputs["genes"][n], d / "genes.tsv")
        write_tsv(inputs["pls"][n], d / "pls.tsv")
        paths["genes"].append(str(d / "genes.tsv"))
        paths["pls"].append(str(d / "pls.tsv"))
        for g in sets:
            write_tsv(inputs["enrichment"][n]["cells"], d / f"enrichment_{g}.tsv")
            paths["enrichment"].append(str(d / f"enrichment_{g}.tsv"))
    write_tsv(calibration, tmp_path / "calibration.tsv")
    smk = type("Snakemake", (), {})()
    smk.input = Namedlist(fromdict=dict(paths, calibration=str(tmp_path / "calibration.tsv")))
    out = tmp_path / "out"
    smk.output = Namedlist(fromdict={"table": str(out / "null_sensitivity.tsv"),
                                     "figure": str(out / "null_sensitivity.png"),
                                     "html": str(out / "null_sensitivity.html")})
    smk.params = Namedlist(fromdict={"nulls": nulls, "genesets": sets, "atlas_key": "schaefer100",
                                     "hemispheres": "left", "n_perm": 1000})
    smk.wildcards = Namedlist(fromdict={"atlas": "s100", "map": "m1"})
    smk.log = [str(tmp_path / "rule.log")]
    stderr = sys.stderr
    try:
        runpy.run_path(str(ROOT / "scripts" / "rules" / "rule_null_sensitivity.py"),
                       init_globals={"snakemake": smk})
    finally:
        sys.stderr = stderr   # log_to_file redirects it
    table = pd.read_csv(out / "null_sensitivity.tsv", sep="\t")
    assert list(table.columns) == sens.SUMMARY_COLUMNS
    assert set(table["collection"].dropna()) == {"cells", "more"}
    source = table.loc[table["null"] == "vasa", "fpr_source"].iloc[0]
    assert source.startswith("schaefer") and "(fallback: schaefer100/" in source
    assert (out / "null_sensitivity.png").stat().st_size > 0
    assert "m1" in (out / "null_sensitivity.html").read_text()
