"""itx.expression equals abagen's one-shot call and keeps correct intermediates."""
import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from conftest import build_demo_cache
from itx import atlas as atlases
from itx import demo, expression


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ahba")
    demo.generate_donors(out, seed=3, samples_per_donor=60)
    return out


@pytest.fixture(scope="module")
def cache_dir(data_dir):
    """The parsed-CSV cache of the same donors (what the workflow reads)."""
    return build_demo_cache(data_dir)


@pytest.fixture(scope="module")
def dk():
    return atlases.load_atlas("dk", "desikan_killiany")


def abagen_call(atlas, info, data_dir, **opts):
    import abagen

    atlas = tuple(map(str, atlas)) if isinstance(atlas, tuple) else str(atlas)
    return abagen.get_expression_data(atlas, info, data_dir=str(data_dir), donors="all",
                                      return_counts=True, return_report=True, verbose=0, **opts)


@pytest.fixture(scope="module")
def default_run(dk, data_dir, cache_dir):
    # from the cache, against abagen reading the CSVs
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    return (expression.process_ahba(dk.volume, info, cache_dir=cache_dir),
            abagen_call(dk.volume, info, data_dir))


def test_default_options_equal_abagen(default_run):
    ours, (ref, counts, report) = default_run
    # exactly: the cache holds abagen's own parse, and the faster steps
    # (matching look-ups, aggregation, probe filter) compute the same numbers
    pd.testing.assert_frame_equal(ours.expression, ref, check_exact=True)
    pd.testing.assert_frame_equal(ours.counts, counts, check_names=False)
    assert ours.report == report
    assert ours.expression.shape[1] > 10000  # genes survive filtering


# few combinations, each changing many options: every abagen call costs ~15 s
OPTION_SETS = [
    {"probe_selection": "max_intensity", "region_agg": "samples", "missing": "centroids",
     "ibf_threshold": 0.2, "gene_norm": "zscore", "norm_structures": True},
    # missing="interpolate" goes through the same abagen helper but takes ~10 min here
    {"lr_mirror": "bidirectional", "norm_matched": False, "agg_metric": "median",
     "donor_probes": "independent", "probe_selection": "average",
     "sample_norm": None, "corrected_mni": False, "tolerance": 0},
]


@pytest.mark.slow
@pytest.mark.parametrize("opts", OPTION_SETS,
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_other_options_equal_abagen(dk, data_dir, cache_dir, opts):
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    ours = expression.process_ahba(dk.volume, info, cache_dir=cache_dir, **opts)
    ref, counts, report = abagen_call(dk.volume, info, data_dir, **opts)
    pd.testing.assert_frame_equal(ours.expression, ref, check_exact=False, rtol=1e-12)
    pd.testing.assert_frame_equal(ours.counts, counts, check_names=False)


@pytest.mark.slow
def test_surface_matching_equals_abagen(dk, data_dir):
    # the CSV path (data_dir) of process_ahba, without the cache
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    ours = expression.process_ahba(dk.surface, info, data_dir)
    ref, counts, _ = abagen_call(dk.surface, info, data_dir)
    pd.testing.assert_frame_equal(ours.expression, ref, check_exact=False, rtol=1e-12)


@pytest.mark.slow
def test_donor_matrices_equal_abagen(dk, data_dir, default_run):
    import abagen

    ours, _ = default_run
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    ref = abagen.get_expression_data(dk.volume, info, data_dir=str(data_dir), donors="all",
                                     return_donors=True, verbose=0)
    assert set(ref) == set(ours.donor_expression)
    for donor, frame in ref.items():
        pd.testing.assert_frame_equal(ours.donor_expression[donor],
                                      frame.loc[:, ours.expression.columns],
                                      check_exact=False, rtol=1e-12)


def test_samples_table_agrees_with_counts_and_distances(dk, default_run):
    ours, _ = default_run
    s = ours.samples
    assert {"donor", "well_id", "mni_x", "label", "distance"} <= set(s.columns)
    labelled = s[s["label"] != 0]
    # counts are the labelled samples per region and donor
    tally = labelled.groupby(["label", "donor"]).size().unstack(fill_value=0)
    counts = ours.counts.loc[tally.index, tally.columns]
    np.testing.assert_array_equal(counts.to_numpy(), tally.to_numpy())
    assert s.loc[s["label"] == 0, "distance"].isna().all()
    assert (labelled["distance"] >= 0).all()
    # brute force: distance from a few samples to every voxel of their region
    import nibabel as nib
    img = nib.load(dk.volume)
    lab = np.asarray(img.dataobj)
    for _, row in labelled.head(5).iterrows():
        ijk = np.argwhere(lab == row["label"])
        xyz = nib.affines.apply_affine(img.affine, ijk)
        d = np.sqrt(((xyz - row[["mni_x", "mni_y", "mni_z"]].to_numpy(float)) ** 2).sum(1)).min()
        assert row["distance"] == pytest.approx(d)


def test_stability_against_brute_force(default_run):
    # abagen's differential stability: each donor's regional profile is ranked
    # over that donor's regions, then correlated (Pearson) over the regions
    # two donors share, and averaged over donor pairs
    ours, _ = default_run
    donors = list(ours.donor_expression.values())
    for gene in ours.expression.columns[:5]:
        rs = []
        for a, b in itertools.combinations(donors, 2):
            ra, rb = a[gene].dropna().rank(), b[gene].dropna().rank()
            common = ra.index.intersection(rb.index)
            rs.append(stats.pearsonr(ra[common], rb[common])[0])
        assert ours.stability[gene] == pytest.approx(np.nanmean(rs), abs=1e-10)


def test_probe_table(default_run):
    ours, _ = default_run
    p = ours.probes
    assert {"probe_id", "probe_name", "gene_symbol", "entrez_id"} <= set(p.columns)
    assert p["probe_id"].is_unique
    assert p["entrez_id"].notna().all()


def test_output_tables(dk, default_run):
    ours, _ = default_run
    tables = expression.output_tables(ours, dk.info)
    e = tables["expression"]
    assert e.columns[0] == "region" and len(e) == 83
    assert e["region"].tolist() == dk.info["region"].tolist()
    assert tables["counts"]["total"].sum() == (ours.samples["label"] != 0).sum()
    assert set(tables["donors"]) == {"9861", "10021", "12876", "14380", "15496", "15697"}


def test_fast_matching_equals_abagen(dk):
    # the dict-based label check against abagen's pandas one, sample by sample,
    # on real well coordinates with several tolerances (ties and rejections)
    from abagen import images, samples_

    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    wells = demo.donor_wells(samples_per_donor=None)["9861"]
    annot = demo._annotation(wells)
    annot.index = pd.Series(range(1, len(annot) + 1), name="sample_id")
    annot = samples_.drop_mismatch_samples(annot, demo._ontology())
    for tol in (0, 2, 3):
        ref_tree = images.coerce_atlas_to_dict(str(dk.volume), "9861", info)[0]["9861"]
        fast_tree = expression._speed_up_matching(
            images.coerce_atlas_to_dict(str(dk.volume), "9861", info)[0]["9861"])
        ref = ref_tree.label_samples(annot, tol)
        pd.testing.assert_frame_equal(fast_tree.label_samples(annot, tol), ref)
        assert (ref["label"] != 0).sum() > 100


def test_cache_or_csv_required(dk):
    with pytest.raises(ValueError, match="exactly one of data_dir"):
        expression.process_ahba(dk.volume, dk.info)
    with pytest.raises(FileNotFoundError, match="no complete AHBA cache for donor 9861"):
        expression.process_ahba(dk.volume, dk.info, cache_dir="/nonexistent")


def test_bad_options():
    with pytest.raises(ValueError, match="unknown abagen option"):
        expression.check_options({"tolerence": 2})
    with pytest.raises(ValueError, match="region_agg"):
        expression.check_options({"region_agg": None})


def test_saved_probe_selection_gives_the_same_result(dk, cache_dir, default_run, tmp_path):
    # the workflow's two steps (select_probes rule, then expression per atlas)
    # against the one-step run, itself checked against abagen above
    ours, _ = default_run
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    sel = expression.select_probes(cache_dir=cache_dir)
    assert sel.sample_normed  # srs moved before the atlas
    folder = expression.write_selection(sel, tmp_path / "sel")
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files
    again = expression.process_ahba(dk.volume, info, selection=folder)
    pd.testing.assert_frame_equal(again.expression, ours.expression, check_exact=True)
    assert again.report == ours.report
    # an in-memory selection serves several atlases without being changed
    first = expression.process_ahba(dk.volume, info, selection=sel)
    pd.testing.assert_frame_equal(first.expression, ours.expression, check_exact=True)
    second = expression.process_ahba(dk.volume, info, selection=sel)
    pd.testing.assert_frame_equal(second.expression, ours.expression, check_exact=True)
    with pytest.raises(ValueError, match=r"other options \(\['ibf_threshold'\]"):
        expression.process_ahba(dk.volume, info, selection=folder, ibf_threshold=0.2)
    with pytest.raises(ValueError, match="holds donors"):
        expression.process_ahba(dk.volume, info, selection=folder, donors=["9861", "10021"])
    with pytest.raises(ValueError, match="do not affect probe selection"):
        expression.select_probes(cache_dir=cache_dir, tolerance=3)
    (folder / "selection.json").unlink()
    with pytest.raises(ValueError, match="no complete probe selection"):
        expression.read_selection(folder)


def test_early_sample_norm_equals_norm_of_matched_samples():
    # the reason sample_norm may run before matching: per-sample methods give
    # the same bits for a sample whichever other samples are normalised with it
    from abagen import correct

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(8, 2, (40, 300)),
                         index=pd.Index(range(1, 41), name="sample_id"))
    keep = rng.random(40) < 0.4
    for norm in ("srs", "rs", "minmax"):
        micro = {"a": frame.copy()}
        assert expression._early_sample_norm(micro, norm)
        ref = correct.normalize_expression(frame.loc[keep].T, norm=norm, ignore_warn=True).T
        np.testing.assert_array_equal(micro["a"].loc[keep].to_numpy().view(np.uint64),
                                      ref.to_numpy().view(np.uint64))
    # left to the atlas-dependent step: means, and missing values
    assert not expression._early_sample_norm({"a": frame.copy()}, "zscore")
    assert not expression._early_sample_norm({"a": frame.copy()}, None)
    gap = frame.copy()
    gap.iloc[0, 0] = np.nan
    assert not expression._early_sample_norm({"a": gap}, "srs")


def test_stable_genes_keep_those_at_or_above_the_threshold(default_run):
    ours, _ = default_run
    stab = ours.stability
    threshold = float(stab.median())
    kept = expression.keep_stable(ours, threshold)
    # brute force on the stability that test_stability_against_brute_force checks
    expected = [g for g in ours.expression.columns if stab[g] >= threshold]
    assert list(kept.expression.columns) == expected
    assert 0 < len(expected) < ours.expression.shape[1]
    pd.testing.assert_frame_equal(kept.expression, ours.expression.loc[:, expected])
    for donor, frame in kept.donor_expression.items():
        pd.testing.assert_frame_equal(frame, ours.donor_expression[donor].loc[:, expected])
    pd.testing.assert_series_equal(kept.stability, stab)
    n_all = ours.expression.shape[1]
    assert f"keeping the {len(expected):,} of {n_all:,} genes" in kept.report
    assert f"differential stability >= {threshold:g}" in kept.report
    # the sentence joins the methods body, before abagen's reference list
    if "REFERENCES" in ours.report:
        assert kept.report.index("keeping the") < kept.report.index("REFERENCES")


def test_stable_genes_as_a_percentile(default_run):
    ours, _ = default_run
    kept = expression.keep_stable(ours, 0.75, percentile=True)
    cut = np.percentile(ours.stability.to_numpy(), 75)
    expected = [g for g in ours.expression.columns if ours.stability[g] >= cut]
    assert list(kept.expression.columns) == expected
    assert "top 25% of differential stability" in kept.report


def test_process_ahba_applies_the_stability_filter(dk, cache_dir, default_run):
    ours, _ = default_run
    info = dk.info.loc[:, ["id", "label", "hemisphere", "structure"]]
    threshold = float(ours.stability.quantile(0.3))
    res = expression.process_ahba(dk.volume, info, cache_dir=cache_dir,
                                  stability_threshold=threshold)
    pd.testing.assert_frame_equal(res.expression,
                                  expression.keep_stable(ours, threshold).expression)
    with pytest.raises(ValueError, match="keeps none of the"):
        expression.keep_stable(ours, 1.1)
    with pytest.raises(ValueError, match="at least two donors"):
        expression.process_ahba(dk.volume, info, cache_dir=cache_dir, donors=["9861"],
                                stability_threshold=0.1)
