"""Map-to-map comparison against scipy and a brute-force null loop."""
import numpy as np
import pytest
from scipy import stats

from itx import compare


def test_compare_matches_scipy_and_loop():
    rng = np.random.default_rng(0)
    n, n_perm = 30, 200
    x = rng.normal(size=n)
    others = np.stack([x + rng.normal(size=n), rng.normal(size=n)], axis=1)
    idx = np.stack([rng.permutation(n) for _ in range(n_perm)], axis=1)
    nulls = x[idx]
    out = compare.compare_maps(x, others, nulls, names=["close", "unrelated"])
    for j in range(2):
        r, p = stats.spearmanr(x, others[:, j])
        assert out["r"][j] == pytest.approx(r)
        assert out["p_naive"][j] == pytest.approx(p)
        null_r = np.array([stats.spearmanr(nulls[:, k], others[:, j])[0] for k in range(n_perm)])
        expect = (1 + np.sum(np.abs(null_r) >= abs(r) - 1e-9)) / (1 + n_perm)
        assert out["p_spin"][j] == pytest.approx(expect)
    assert out["p_spin"][0] < 0.05 and list(out["map"]) == ["close", "unrelated"]
    pear = compare.compare_maps(x, others[:, 0], nulls, method="pearson")
    assert pear["r"][0] == pytest.approx(stats.pearsonr(x, others[:, 0])[0])
    with pytest.raises(ValueError, match="names"):
        compare.compare_maps(x, others, nulls, names=["one"])
