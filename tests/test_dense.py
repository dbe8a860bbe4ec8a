"""itx.dense: per-sample marker scores, GP / nearest-sample interpolation,
NIfTI maps, leave-one-donor-out and recovery of the demo's planted field.

The demo fixture (100 samples per donor, ~15 s) is shared by the module; the
interpolation tests run on a 4 mm grid with one optimiser start and a
300-sample hyperparameter fit to stay fast (the recovery numbers at the
workflow's 2 mm defaults are in docs/dense_maps.md).
"""

import math

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from itx import demo, dense, expression

SEED = 0
FAST = dict(n_restarts=0, max_fit_samples=300)


@pytest.fixture(scope="module", autouse=True)
def one_blas_thread():
    """As the rule does (its job's threads): many small GP factorisations run
    ~10x slower with spin-waiting BLAS threads on a busy machine."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def demo_selection(tmp_path_factory):
    out = tmp_path_factory.mktemp("dense_demo")
    demo.generate_donors(out, seed=SEED, samples_per_donor=100)
    return expression.select_probes(out)


@pytest.fixture(scope="module")
def demo_scores(demo_selection):
    return dense.sample_scores(demo_selection, demo.demo_gene_sets(SEED), min_genes=5)


@pytest.fixture(scope="module")
def mask4():
    return dense.grey_matter_mask(4)


# ---------------------------------------------------------------------------
# sample scores
# ---------------------------------------------------------------------------

def _toy_selection(seed=1):
    rng = np.random.default_rng(seed)
    genes = [f"G{i}" for i in range(12)]
    micro, annot = {}, {}
    for d, n in (("A", 9), ("B", 7)):
        x = rng.normal(5 + (d == "B"), 1 + (d == "B"), (n, len(genes)))
        x[2, 3] = np.nan           # a missing value
        x[:, 5] = 4.0              # constant within donor: no information
        idx = pd.Index(np.arange(1, n + 1), name="sample_id")
        micro[d] = pd.DataFrame(x, index=idx, columns=pd.Index(genes, name="gene_symbol"))
        annot[d] = pd.DataFrame({"well_id": np.arange(n) + (100 if d == "B" else 0),
                                 "mni_x": rng.normal(0, 30, n), "mni_y": rng.normal(0, 30, n),
                                 "mni_z": rng.normal(0, 30, n)}, index=idx)
    sets = {"t1": ["G0", "G1", "G3", "g5"], "t2": ["G2", "G4", "G6", "G7", "G8"],
            "tiny": ["G9", "NOPE"]}
    return micro, annot, sets


def test_scores_equal_a_loop():
    micro, annot, sets = _toy_selection()
    res = dense.sample_scores((micro, annot), sets, min_genes=3)
    assert res.celltypes == ["t1", "t2"]
    report = res.report.set_index("set")
    assert not report.loc["tiny", "kept"] and report.loc["t1", "n_genes_found"] == 4
    expected = []
    for d in ("A", "B"):
        for i in range(len(micro[d])):
            row = []
            for name in ("t1", "t2"):
                zs = []
                for g in sets[name]:
                    g = g.upper()
                    col = micro[d][g].to_numpy()
                    if np.nanstd(col) == 0 or np.isnan(col[i]):
                        continue  # constant / missing: skipped
                    zs.append(stats.zscore(col, nan_policy="omit")[i])
                row.append(np.mean(zs))
            expected.append(row)
    np.testing.assert_allclose(res.scores.to_numpy(), np.array(expected), rtol=1e-12)
    assert list(res.samples["donor"]) == ["A"] * 9 + ["B"] * 7
    np.testing.assert_array_equal(res.coords[:9, 0], annot["A"]["mni_x"].to_numpy())
    assert list(res.table().columns[-2:]) == ["t1", "t2"]


def test_selection_without_sample_norm_is_normalised_per_sample():
    micro, annot, sets = _toy_selection(seed=4)
    micro = {d: m.fillna(5.0) for d, m in micro.items()}
    sel = expression.ProbeSelection(
        microarray=micro, annotation=annot, probes=pd.DataFrame(), donors=["A", "B"],
        options={"sample_norm": "zscore"}, sample_normed=False)
    got = dense.sample_scores(sel, sets, min_genes=3)
    # abagen's zscore: each sample across genes, SD with ddof=1
    normed = {d: m.sub(m.mean(axis=1), axis=0).div(m.std(axis=1, ddof=1), axis=0)
              for d, m in micro.items()}
    ref = dense.sample_scores((normed, annot), sets, min_genes=3)
    np.testing.assert_allclose(got.scores.to_numpy(), ref.scores.to_numpy(), rtol=1e-10)
    raw = dense.sample_scores((micro, annot), sets, min_genes=3)
    assert not np.allclose(raw.scores.to_numpy(), ref.scores.to_numpy())


def test_scores_reject_bad_input():
    micro, annot, sets = _toy_selection()
    with pytest.raises(ValueError, match="min_genes"):
        dense.sample_scores((micro, annot), {"x": ["G0"]}, min_genes=3)
    bad = dict(annot, A=annot["A"].drop(columns="mni_y"))
    with pytest.raises(ValueError, match="mni_y"):
        dense.sample_scores((micro, bad), sets, min_genes=3)
    with pytest.raises(TypeError, match="ProbeSelection"):
        dense.sample_scores(micro, sets)


def test_demo_scores_follow_selection(demo_selection, demo_scores):
    planted, genes = demo.planted_gene_set(SEED)
    assert planted in demo_scores.celltypes
    # one donor by hand: mean within-donor z-score of the planted genes
    d = demo.DONOR_IDS[2]
    x = demo_selection.microarray[d]
    found = [g for g in genes if g in x.columns]
    by_hand = stats.zscore(x[found].to_numpy(), axis=0).mean(axis=1)
    got = demo_scores.scores.loc[demo_scores.samples["donor"] == d, planted].to_numpy()
    np.testing.assert_allclose(got, by_hand, rtol=1e-10)
    assert len(demo_scores.samples) == sum(len(m) for m in demo_selection.microarray.values())


# ---------------------------------------------------------------------------
# interpolators
# ---------------------------------------------------------------------------

def test_gp_equals_scikit_learn_on_a_tiny_case():
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    rng = np.random.default_rng(5)
    xyz = rng.uniform(-60, 60, (40, 3))
    y = np.sin(xyz[:, 0] / 25) + 0.5 * np.cos(xyz[:, 1] / 30) + rng.normal(0, 0.1, 40) + 3
    targets = rng.uniform(-70, 70, (23, 3))
    model = dense.fit_interpolator(xyz, y, "gp", seed=0, n_restarts=0)

    kernel = (ConstantKernel(1.0, (1e-3, 1e2)) * RBF(25.0, (4.0, 200.0))
              + WhiteKernel(0.5, (1e-3, 1e1)))
    ref = GaussianProcessRegressor(kernel, normalize_y=True).fit(xyz, y)
    np.testing.assert_allclose(model.gp.kernel_.theta, ref.kernel_.theta, rtol=1e-6)
    assert model.params["length_scale_mm"] == pytest.approx(ref.kernel_.k1.k2.length_scale,
                                                            rel=1e-6)
    mean, sd = model.predict(targets, return_std=True, block_size=7)   # blocks of 7
    ref_mean, ref_sd = ref.predict(targets, return_std=True)
    np.testing.assert_allclose(mean, ref_mean, rtol=1e-6, atol=1e-9)
    # our SD is the latent field's: sklearn's minus the white-noise variance
    noise = ref.kernel_.k2.noise_level * ref._y_train_std ** 2
    np.testing.assert_allclose(sd ** 2 + noise, ref_sd ** 2, rtol=1e-6)
    # far from every sample the SD tends to the prior SD, near them it shrinks
    far, _ = model.predict(np.array([[500.0, 500.0, 500.0]]), return_std=True)
    assert far[0] == pytest.approx(y.mean(), rel=1e-6)
    _, sd_at = model.predict(xyz[:5], return_std=True)
    prior = math.sqrt(ref.kernel_.k1.k1.constant_value) * ref._y_train_std
    assert np.all(sd_at < 0.6 * prior)


def test_nearest_equals_brute_force():
    rng = np.random.default_rng(7)
    xyz = rng.uniform(-50, 50, (60, 3))
    y = rng.normal(size=60)
    targets = np.vstack([rng.uniform(-60, 60, (30, 3)), xyz[[4, 17]]])  # two on a sample
    for k in (1, 10):
        model = dense.fit_interpolator(xyz, y, "nearest", n_neighbors=k)
        got = model.predict(targets, block_size=8)
        expected = []
        for t in targets:
            dist = [math.dist(t, s) for s in xyz]
            order = sorted(range(len(xyz)), key=lambda i: dist[i])[:k]
            if dist[order[0]] == 0:
                expected.append(y[order[0]])
                continue
            w = [1 / dist[i] for i in order]
            expected.append(sum(wi * y[i] for wi, i in zip(w, order)) / sum(w))
        np.testing.assert_allclose(got, expected, rtol=1e-12)
        assert got[-2] == y[4] and got[-1] == y[17]


def test_interpolators_reject_bad_input():
    xyz = np.zeros((5, 3))
    with pytest.raises(ValueError, match="method"):
        dense.fit_interpolator(xyz, np.zeros(5), "kriging")
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        dense.fit_interpolator(np.zeros((5, 2)), np.zeros(5))
    with pytest.raises(ValueError, match="non-finite"):
        dense.fit_interpolator(xyz, [0, 1, np.nan, 0, 0])
    with pytest.raises(ValueError, match="seed"):
        dense.fit_interpolator(xyz, np.zeros(5), seed=-1)


# ---------------------------------------------------------------------------
# NIfTI maps and seeding
# ---------------------------------------------------------------------------

def test_default_mask_is_nilearns_grey_matter(mask4):
    from nilearn.datasets import load_mni152_gm_mask

    ref = load_mni152_gm_mask(resolution=4)
    np.testing.assert_array_equal(mask4.affine, ref.affine)
    np.testing.assert_array_equal(np.asarray(mask4.dataobj) > 0, np.asarray(ref.dataobj) > 0)
    assert dense.grey_matter_mask(2).shape == (99, 117, 95)


def test_dense_maps_nifti_layout(demo_scores, mask4, tmp_path):
    res = dense.dense_maps(demo_scores.coords, demo_scores.scores, resolution_mm=4,
                           method="nearest")
    m = np.asarray(mask4.dataobj) > 0
    data = np.asarray(res.maps.dataobj)
    assert data.shape == mask4.shape + (len(demo_scores.celltypes),)
    assert data.dtype == np.float32 and res.sd is None
    np.testing.assert_array_equal(res.maps.affine, mask4.affine)
    assert np.all(data[~m] == 0) and np.all(np.isfinite(data[m]))
    assert np.count_nonzero(data[m]) > 0.99 * data[m].size
    # voxel values are the interpolator's at the voxel centres
    ijk, xyz = dense.mask_coordinates(mask4)
    model = dense.fit_interpolator(demo_scores.coords, demo_scores.scores.iloc[:, 2], "nearest")
    np.testing.assert_allclose(data[tuple(ijk.T)][:, 2], model.predict(xyz).astype(np.float32))
    assert list(res.params["celltype"]) == demo_scores.celltypes
    assert list(res.params["volume"]) == list(range(len(demo_scores.celltypes)))

    paths = dense.write_dense_maps(res, tmp_path)
    assert set(paths) == {"maps", "mask", "celltypes"}
    back = nib.load(paths["maps"])
    np.testing.assert_array_equal(np.asarray(back.dataobj), data)
    np.testing.assert_array_equal(back.affine, mask4.affine)
    assert back.get_data_dtype() == np.float32 and back.header.get_sform(coded=True)[1] == 4
    np.testing.assert_array_equal(np.asarray(nib.load(paths["mask"]).dataobj) > 0, m)
    table = pd.read_csv(paths["celltypes"], sep="\t")
    assert list(table["celltype"]) == demo_scores.celltypes


def test_gp_maps_are_seeded(demo_scores, tmp_path):
    one = demo_scores.scores.iloc[:, [1]]
    opts = dict(resolution_mm=8, method="gp", n_restarts=1, max_fit_samples=150)
    a = dense.dense_maps(demo_scores.coords, one, seed=3, **opts)
    b = dense.dense_maps(demo_scores.coords, one, seed=3, **opts)
    pa, pb = dense.write_dense_maps(a, tmp_path / "a"), dense.write_dense_maps(b, tmp_path / "b")
    for key in ("maps", "uncertainty", "mask", "celltypes"):
        assert pa[key].read_bytes() == pb[key].read_bytes(), key
    assert a.sd is not None and np.all(np.asarray(a.sd.dataobj) >= 0)
    assert (a.params["n_fit"] == 150).all() and (a.params["n_train"] == len(one)).all()
    # another seed fits the hyperparameters on another subset
    c = dense.fit_interpolator(demo_scores.coords, one.iloc[:, 0], "gp", seed=4, n_restarts=1,
                               max_fit_samples=150)
    assert not np.isclose(a.params["length_scale_mm"][0], c.params["length_scale_mm"], rtol=1e-9)


# ---------------------------------------------------------------------------
# leave-one-donor-out and recovery of the planted field
# ---------------------------------------------------------------------------

def test_leave_one_donor_out_table(demo_scores):
    two = demo_scores.scores.iloc[:, [0, 3]]
    table = dense.leave_one_donor_out(demo_scores.coords, two, demo_scores.donors,
                                      methods=("nearest",))
    assert list(table.columns) == ["method", "celltype", "donor", "n_train", "n_samples",
                                   "r_pearson", "r_spearman", "rmse"]
    assert len(table) == 2 * len(demo.DONOR_IDS)
    assert set(table["donor"]) == set(demo.DONOR_IDS)
    per_ct = table.groupby("celltype")
    assert (per_ct["n_samples"].sum() == len(two)).all()
    assert ((table["n_train"] + table["n_samples"]) == len(two)).all()
    # one fold by hand
    donor, name = demo.DONOR_IDS[1], two.columns[1]
    test = demo_scores.donors == donor
    model = dense.fit_interpolator(demo_scores.coords[~test], two[name].to_numpy()[~test],
                                   "nearest")
    pred, obs = model.predict(demo_scores.coords[test]), two[name].to_numpy()[test]
    row = table[(table["donor"] == donor) & (table["celltype"] == name)].iloc[0]
    assert row["r_pearson"] == pytest.approx(stats.pearsonr(obs, pred)[0], rel=1e-12)
    assert row["r_spearman"] == pytest.approx(stats.spearmanr(obs, pred)[0], rel=1e-12)
    assert row["rmse"] == pytest.approx(np.sqrt(np.mean((obs - pred) ** 2)), rel=1e-12)
    with pytest.raises(ValueError, match="two donors"):
        dense.leave_one_donor_out(demo_scores.coords, two, ["x"] * len(two))


def test_demo_planted_field_is_recovered(demo_scores, tmp_path):
    """Measured (4 mm, seed 0, 100 samples per donor): voxelwise r 0.96 (GP) vs
    0.93 (nearest), held-out samples 0.97 vs 0.93, raw sample scores 0.96.
    The thresholds leave room for other seeds / BLAS while failing clearly if
    the map lost the field (an unrelated smooth map gives |r| < 0.5)."""
    v = dense.validate_on_demo(demo_scores, SEED, resolution_mm=4, **FAST)
    s = v.summary.set_index(["method", "where"])["r_pearson"]
    assert s[("gp", "voxels")] > 0.85
    assert s[("gp", "voxels_near_samples")] > 0.9
    assert s[("gp", "heldout_samples")] > 0.85
    for where in ("voxels", "heldout_samples"):
        assert s[("gp", where)] >= s[("nearest", where)] - 0.01, where
    # another cell type's map does not look like the planted field
    other = [c for c in demo_scores.celltypes if c != v.celltype][0]
    d = dense.dense_maps(demo_scores.coords, demo_scores.scores[[other]], resolution_mm=4,
                         method="nearest")
    truth = np.asarray(v.truth.dataobj)
    m = np.asarray(d.mask.dataobj) > 0
    assert abs(np.corrcoef(np.asarray(d.maps.dataobj)[..., 0][m], truth[m])[0, 1]) < 0.5
    assert set(v.lodo["method"]) == {"gp", "nearest"}
    out = dense.plot_demo_validation(v, tmp_path / "validation.png")
    assert out.stat().st_size > 10_000


# ---------------------------------------------------------------------------
# the rule script, end to end with a stand-in for Snakemake's object
# ---------------------------------------------------------------------------

def test_rule_script_writes_every_output(demo_selection, tmp_path):
    import runpy
    from pathlib import Path

    from snakemake.iocontainers import Namedlist

    sel = expression.write_selection(demo_selection, tmp_path / "selection")
    demo.write_gene_sets_gmt(demo.demo_gene_sets(SEED), tmp_path / "sets.gmt")
    demo.write_truth(tmp_path / "truth.json", seed=SEED)
    # the demo's disease map (DK parcels, 1 mm) stands in for a published map
    demo.write_demo_map(tmp_path / "field.nii.gz", tmp_path / "field.tsv", seed=SEED)
    planted, _ = demo.planted_gene_set(SEED)
    names = dict(maps="maps.nii.gz", mask="mask.nii.gz", celltypes="celltypes.tsv",
                 scores="scores.tsv", sets="sets.tsv", lodo="lodo.tsv", figure="maps.png",
                 validation="validation.tsv", external="external.tsv")
    out = tmp_path / "out"
    smk = type("Snakemake", (), {})()
    smk.input = Namedlist(fromdict={"selection": [str(sel / "selection.json")],
                                    "genesets": str(tmp_path / "sets.gmt"),
                                    "truth": str(tmp_path / "truth.json")})
    smk.output = Namedlist(fromdict={k: str(out / v) for k, v in names.items()})
    smk.params = Namedlist(fromdict={"options": dict(
        method="nearest", resolution_mm=8, seed=1, min_genes=5, max_fit_samples=1000,
        n_restarts=0, n_neighbors=10, uncertainty=True, lodo_methods=["nearest"],
        external={planted: str(tmp_path / "field.nii.gz")})})
    smk.log = [str(tmp_path / "rule.log")]
    smk.threads = 1
    script = Path(__file__).resolve().parents[1] / "scripts" / "rules" / "rule_dense_maps.py"
    import sys
    stderr = sys.stderr
    try:
        runpy.run_path(str(script), init_globals={"snakemake": smk})
    finally:
        sys.stderr = stderr   # log_to_file redirects it
    for v in names.values():
        assert (out / v).stat().st_size > 0, v
    assert not (out / "uncertainty.nii.gz").exists()   # nearest has none
    scores = pd.read_csv(out / "scores.tsv", sep="\t")
    assert len(scores) == 600 and set(demo.DEMO_SET_NAMES) <= set(scores.columns)
    lodo = pd.read_csv(out / "lodo.tsv", sep="\t")
    assert len(lodo) == len(demo.DEMO_SET_NAMES) * len(demo.DONOR_IDS)
    val = pd.read_csv(out / "validation.tsv", sep="\t").set_index(["method", "where"])
    assert val.loc[("nearest", "voxels"), "r_pearson"] > 0.85
    ext = pd.read_csv(out / "external.tsv", sep="\t").set_index("celltype")
    assert ext.loc[planted, "r_pearson"] > 0.85 and ext.loc[planted, "n_voxels"] > 100
    assert nib.load(out / "maps.nii.gz").shape == (dense.grey_matter_mask(8).shape
                                                   + (len(demo.DEMO_SET_NAMES),))


def test_compare_external_resamples_and_correlates(demo_scores, tmp_path):
    from nilearn.image import resample_img

    res = dense.dense_maps(demo_scores.coords, demo_scores.scores.iloc[:, :2], resolution_mm=4,
                           method="nearest")
    a, b = res.celltypes
    # "published" maps on another grid (6 mm): ours, and ours with noise
    target = np.diag([6.0, 6.0, 6.0, 1.0])
    target[:3, 3] = [-90, -126, -72]
    theirs = resample_img(res.volume(a), target_affine=target, interpolation="continuous")
    noisy = np.asarray(theirs.dataobj) + np.random.default_rng(0).normal(0, 10, theirs.shape)
    noisy = nib.Nifti1Image(noisy.astype(np.float32), theirs.affine)
    nib.save(theirs, tmp_path / "a.nii.gz")
    table = dense.compare_external(res, {a: tmp_path / "a.nii.gz", b: noisy, "absent": theirs})
    rows = table.set_index("celltype")
    assert rows.loc[a, "r_pearson"] > 0.9 and rows.loc[a, "n_voxels"] > 1000
    assert abs(rows.loc[b, "r_pearson"]) < 0.3          # another cell type + noise
    assert rows.loc["absent", "n_voxels"] == 0 and np.isnan(rows.loc["absent", "r_pearson"])
    with pytest.raises(ValueError, match="not found"):
        dense.compare_external(res, {a: tmp_path / "missing.nii.gz"})
