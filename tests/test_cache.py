"""itx.cache: the parsed AHBA matrices are bit for bit what abagen parses."""
import json

import numpy as np
import pytest

from itx import cache, demo


@pytest.fixture(scope="module")
def donors(tmp_path_factory):
    """Small donors printed like the real files: 15 digits, 58,692 probes."""
    out = tmp_path_factory.mktemp("ahba15")
    demo.generate_donors(out, seed=5, samples_per_donor=12, pad_probes=True, digits=15)
    return out / "microarray"


def test_cache_equals_abagen_parse_bit_for_bit(donors, tmp_path):
    from abagen import io

    src = donors / "normalized_microarray_donor12876"
    out = cache.build_donor_cache(src, tmp_path / "donor12876")
    assert sorted(p.name for p in out.iterdir()) == sorted(cache.CACHE_FILES)  # no temp files
    data = cache.read_donor_cache(out)
    micro = io.read_microarray(str(src / "MicroarrayExpression.csv"), parquet=False)
    pacall = io.read_pacall(str(src / "PACall.csv"), parquet=False)
    assert micro.shape == (demo.REAL_N_PROBES, 12)
    got = np.load(data["microarray"])
    assert got.dtype == np.float64
    # bit patterns, not values: -0.0/NaN payloads would also count
    np.testing.assert_array_equal(got.view(np.uint64), micro.to_numpy().view(np.uint64))
    np.testing.assert_array_equal(np.load(data["pacall"]), pacall.to_numpy())
    np.testing.assert_array_equal(data["probe_ids"], micro.index.to_numpy())
    # 15 significant digits do not survive float32: the reason for float64
    assert not np.array_equal(got.astype(np.float32).astype(np.float64), got)
    meta = json.loads((out / "cache.json").read_text())
    assert meta["version"] == cache.CACHE_VERSION and meta["n_samples"] == 12


def test_read_rows_any_order(tmp_path):
    arr = np.arange(5000 * 3, dtype=np.float64).reshape(5000, 3)
    np.save(tmp_path / "a.npy", arr)
    rows = np.array([4999, 0, 17, 17, 4096, 4095])
    np.testing.assert_array_equal(cache.read_rows(tmp_path / "a.npy", rows, block_rows=100),
                                  arr[rows])
    assert cache.read_rows(tmp_path / "a.npy", []).shape == (0, 3)
    with pytest.raises(IndexError, match="a.npy"):
        cache.read_rows(tmp_path / "a.npy", [5000])


def _copy_donor(src, dst):
    dst.mkdir(parents=True)
    for f in src.iterdir():
        (dst / f.name).write_bytes(f.read_bytes())
    return dst


def test_bad_inputs_fail_clearly_and_leave_no_cache(donors, tmp_path):
    src = _copy_donor(donors / "normalized_microarray_donor15697", tmp_path / "d")
    lines = (src / "PACall.csv").read_text().splitlines()
    # a call that is neither 0 nor 1
    first = lines[0].split(",")
    first[1] = "7"
    (src / "PACall.csv").write_text("\n".join([",".join(first)] + lines[1:]) + "\n")
    with pytest.raises(ValueError, match=r"PACall.csv: present/absent calls must be 0 or 1"):
        cache.build_donor_cache(src, tmp_path / "c1")
    assert not cache.is_cache_complete(tmp_path / "c1")
    assert not [p for p in (tmp_path / "c1").iterdir() if p.name.startswith(".")]
    # matrices from another download (fewer samples than SampleAnnot.csv rows)
    (src / "PACall.csv").write_text("\n".join(",".join(l.split(",")[:-1]) for l in lines) + "\n")
    with pytest.raises(ValueError,
                       match=r"PACall.csv: 11 sample columns but SampleAnnot.csv has 12"):
        cache.build_donor_cache(src, tmp_path / "c2")
    assert not cache.is_cache_complete(tmp_path / "c2")
    (src / "Probes.csv").unlink()
    with pytest.raises(FileNotFoundError, match="Probes.csv is missing"):
        cache.build_donor_cache(src, tmp_path / "c3")


def test_incomplete_cache_is_refused(donors, tmp_path):
    out = cache.build_donor_cache(donors / "normalized_microarray_donor15697", tmp_path / "c")
    (out / "cache.json").unlink()
    with pytest.raises(ValueError, match="not a complete AHBA cache"):
        cache.read_donor_cache(out)
