"""The report page of top gene sets (itx.enrichment_page) and the shared page pieces."""
import numpy as np
import pandas as pd
import pytest

from itx import enrichment_page, htmlpage


def _table(n, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.001, 1, n)
    return pd.DataFrame({"set": [f"GO:{i:07d} term <{i}>" for i in range(n)],
                         "n_genes": rng.integers(10, 200, n), "score": rng.normal(0, 0.1, n),
                         "p_spatial": p, "q_spatial": np.minimum(1, p * n / 10),
                         "p_random": p, "q_random": p, "median_rank": p})


def test_top_sets_orders_by_p_then_abs_score_then_name():
    t = pd.DataFrame({"set": ["c", "a", "b", "d", "e"], "n_genes": [5] * 5,
                      "score": [0.1, -0.3, 0.3, 0.2, 0.9],
                      "p_spatial": [0.01, 0.001, 0.001, 0.001, np.nan]})
    top = enrichment_page.top_sets(t, 4)
    # ties at p = 0.001: |score| 0.3, 0.3 (by name: a, b), then 0.2; NaN p last
    assert top["set"].tolist() == ["a", "b", "d", "c"]
    # brute force: the same order from a sort key written out
    key = sorted(range(5), key=lambda i: (np.inf if np.isnan(t.p_spatial[i]) else t.p_spatial[i],
                                          -abs(t.score[i]), t.set[i]))
    assert enrichment_page.top_sets(t, 5)["set"].tolist() == [t.set[i] for i in key]
    assert list(top.columns) == ["set", "n_genes", "score", "p_spatial"]
    with pytest.raises(ValueError, match="n_top"):
        enrichment_page.top_sets(t, 0)
    with pytest.raises(ValueError, match="p_spatial"):
        enrichment_page.top_sets(t.drop(columns="p_spatial"), 3)


def test_top_sets_html_lists_a_few_rows_per_collection():
    big, small = _table(5000), _table(7, seed=1)
    page = enrichment_page.top_sets_html({"gobp": big, "cells": small}, "mdd", n_top=15)
    assert page.startswith("<!DOCTYPE html>") and "mdd: top gene sets" in page
    assert "5,000 sets tested" in page and "7 sets tested" in page
    n_sig = int((big["q_spatial"] < 0.05).sum())
    assert f"{n_sig:,} with q_spatial &lt; 0.05" in page
    # 15 + 7 data rows (+ 2 header rows), names escaped, no stray column
    assert page.count("<tr") == 15 + 7 + 2
    assert "&lt;" in page and "term <" not in page
    assert "median_rank" not in page
    best = big.loc[big["p_spatial"].idxmin(), "set"]
    assert best.replace("<", "&lt;").replace(">", "&gt;") in page


def test_fmt_number():
    assert htmlpage.fmt_number(None) == "n/a" == htmlpage.fmt_number(float("nan"))
    assert htmlpage.fmt_number(np.float64("inf")) == "n/a"
    assert htmlpage.fmt_number(0.012345) == "0.0123"
    assert htmlpage.fmt_number(1.5e-5) == "1.5e-05"
    assert htmlpage.fmt_number(0) == "0"
