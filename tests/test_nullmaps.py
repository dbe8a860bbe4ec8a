"""Null maps over an analysis scope: method choice, composition, files."""
import numpy as np
import pandas as pd
import pytest

from itx import analysis, nullmaps, vertexspins


def _info(n_cortex=6, n_sub=5):
    rows = [dict(id=i + 1, label=f"c{i}", hemisphere="L", structure="cortex")
            for i in range(n_cortex)]
    hemis = ["L", "L", "R", "R", "B"]
    rows += [dict(id=100 + i, label=f"s{i}", hemisphere=hemis[i % 5],
                  structure="subcortex/brainstem")
             for i in range(n_sub)]
    info = pd.DataFrame(rows)
    info["region"] = info["hemisphere"] + "_" + info["label"]
    return info


def test_apply_index_matches_loop_and_marks_missing():
    rng = np.random.default_rng(0)
    values = rng.normal(size=7)
    idx = rng.integers(-1, 7, size=(7, 20))
    out = nullmaps.apply_index(values, idx)
    for i in range(7):
        for j in range(20):
            expect = np.nan if idx[i, j] < 0 else values[idx[i, j]]
            np.testing.assert_equal(out[i, j], expect)


def test_apply_index_rejects_bad_indices():
    with pytest.raises(ValueError, match="integers"):
        nullmaps.apply_index(np.zeros(3), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="lie in"):
        nullmaps.apply_index(np.zeros(3), np.full((3, 2), 3))


def test_resolve_method_by_input_kind():
    assert nullmaps.resolve_method("auto", map_format="gifti", has_surface=True) == "vertex_spin"
    assert (nullmaps.resolve_method("auto", map_format="table", has_surface=True)
            == "alexander_bloch")
    assert nullmaps.resolve_method("auto", map_format="nifti", has_surface=False) == "burt2020"
    assert nullmaps.resolve_method("vasa", map_format="nifti", has_surface=True) == "vasa"
    with pytest.raises(ValueError, match="vertex-level"):
        nullmaps.resolve_method("vertex_spin", map_format="table", has_surface=True)
    with pytest.raises(ValueError, match="no surface"):
        nullmaps.resolve_method("alexander_bloch", map_format="table", has_surface=False)
    with pytest.raises(ValueError, match="unknown"):
        nullmaps.resolve_method("spin", map_format="table", has_surface=True)


def test_derive_seed_is_stable_and_distinct():
    a = nullmaps.derive_seed(1234, "cortex")
    assert a == nullmaps.derive_seed(1234, "cortex")
    assert a != nullmaps.derive_seed(1234, "subcortex")
    assert a != nullmaps.derive_seed(1235, "cortex")


def test_null_maps_from_scope_index_splits_parts():
    info = _info()
    n = len(info)
    rng = np.random.default_rng(1)
    cortex = np.flatnonzero(nullmaps.is_cortex(info))
    sub = np.flatnonzero(~nullmaps.is_cortex(info))
    n_perm = 30
    idx = np.empty((n, n_perm), dtype=np.int64)
    for j in range(n_perm):
        idx[cortex, j] = rng.choice(cortex, size=cortex.size)  # resampling, as alexander_bloch
        idx[sub, j] = rng.permutation(sub)
    idx[cortex[0], 3] = -1
    values = rng.normal(size=n)
    out = nullmaps.null_maps(values, info, "alexander_bloch", n_perm, 5, artefacts={"spins": idx})
    np.testing.assert_array_equal(out[cortex], nullmaps.apply_index(values, idx)[cortex])
    # the subcortex is permuted within groups from its own seed (the spins rule
    # writes the same permutations into the spin file's subcortical rows)
    from itx import surrogates

    sub_idx = surrogates.permute_within(nullmaps.subcortex_groups(info.iloc[sub]), n_perm,
                                        nullmaps.derive_seed(5, "subcortex"))
    np.testing.assert_array_equal(out[sub], nullmaps.apply_index(values[sub], sub_idx))


def test_null_maps_rejects_indices_crossing_cortex_boundary():
    info = _info()
    n = len(info)
    idx = np.tile(np.arange(n)[:, None], (1, 4))
    idx[0, 0] = n - 1  # a cortical row takes a subcortical value
    with pytest.raises(ValueError, match="boundary"):
        nullmaps.null_maps(np.arange(n, dtype=float), info, "alexander_bloch", 4, 0,
                           artefacts={"spins": idx})


def test_null_maps_vertex_part_and_shape_checks():

    info = _info(n_cortex=4, n_sub=0)
    # a toy vertex layout: 4 parcels of 2 vertices each, 6 rotations
    rng = np.random.default_rng(0)
    source = rng.integers(0, 8, size=(8, 6)).astype(np.int16)
    spins = vertexspins.VertexSpins(
        regions=info["region"].tolist(), vertex=np.arange(8, dtype=np.int32),
        parcel=np.repeat(np.arange(4), 2).astype(np.int32), source=source,
        n_vertices=np.array([8, 0]), offsets=np.array([0, -1]))
    data = rng.normal(size=8)
    out = nullmaps.null_maps(np.zeros(4), info, "vertex_spin", 6, 0, artefacts={"vertex": spins},
                             vertex_data=(data, None))
    np.testing.assert_allclose(out, data[source].reshape(4, 2, 6).mean(axis=1), rtol=0,
                               atol=1e-15)
    with pytest.raises(ValueError, match="expected"):
        nullmaps.null_maps(np.zeros(4), info, "vertex_spin", 5, 0, artefacts={"vertex": spins},
                           vertex_data=(data, None))
    with pytest.raises(ValueError, match="vertex level"):
        nullmaps.null_maps(np.zeros(4), info, "vertex_spin", 6, 0, artefacts={"vertex": spins})
    with pytest.raises(ValueError, match="map values"):
        nullmaps.null_maps(np.zeros(3), info, "vertex_spin", 6, 0, artefacts={"vertex": spins})
    with pytest.raises(ValueError, match="spins rule"):
        nullmaps.null_maps(np.zeros(4), info, "vasa", 6, 0)


def test_save_load_roundtrip(tmp_path):
    vals = np.random.default_rng(2).normal(size=(5, 9))
    vals[1, 2] = np.nan
    path = nullmaps.save_null_maps(tmp_path / "n.npz", vals, list("abcde"), "burt2020", 7)
    back = nullmaps.load_null_maps(path)
    np.testing.assert_array_equal(back.values, vals)
    assert back.regions == list("abcde") and back.method == "burt2020" and back.seed == 7
    assert back.n_perm == 9
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not an itx null-map file.*rerun the map_nulls rule"):
        nullmaps.load_null_maps(tmp_path / "other.npz")


def test_align_accepts_values_or_indices_identically():
    rng = np.random.default_rng(3)
    regions = [f"r{i}" for i in range(8)]
    expr = pd.DataFrame(rng.normal(size=(8, 4)), columns=list("ABCD"))
    expr.insert(0, "region", regions)
    expr.loc[2, "B"] = np.nan  # region without expression
    m = pd.DataFrame({"region": regions, "value": rng.normal(size=8)})
    m.loc[5, "value"] = np.nan
    idx = np.stack([rng.permutation(8) for _ in range(12)], axis=1)
    a = analysis.align(expr, m, idx, regions)
    b = analysis.align(expr, m, nullmaps.apply_index(m["value"].to_numpy(), idx), regions)
    np.testing.assert_array_equal(a.nulls, b.nulls)
    assert a.regions == b.regions and len(a.regions) == 6


def test_coverage_table_reasons():
    from itx import coverage

    mt = pd.DataFrame({"region": ["a", "b", "c", "d", "e"], "id": [1, 2, 3, 4, 5],
                       "hemisphere": ["L"] * 5, "structure": ["cortex"] * 5,
                       "value": [1.0, np.nan, 2.0, 3.0, 4.0]})
    expr = pd.DataFrame({"region": list("abcde"), "G1": [1, 2, np.nan, 4, 5.0],
                         "G2": [1, 2, 3, 4, 5.0]})
    counts = pd.DataFrame({"region": list("abcde"), "total": [3, 2, 0, 1, 4]})
    cov = coverage.coverage_table(mt, ["a", "b", "c", "d"], expr, counts)
    assert cov["used"].tolist() == [True, False, False, True, False]
    assert cov["reason"].tolist() == ["", "no map value", "no AHBA sample", "",
                                      "outside the analysis scope"]
    assert cov["n_samples"].tolist() == [3, 2, 0, 1, 4]
    summary = coverage.coverage_summary(cov)
    assert summary[0].startswith("2 of 4 scope regions used")
    no_counts = coverage.coverage_table(mt, ["a", "b", "c", "d"], expr)
    assert no_counts.loc[2, "reason"] == "no expression"
    assert no_counts["n_samples"].isna().all()
