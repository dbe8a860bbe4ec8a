"""PLS against scikit-learn's PLSRegression and brute-force loops."""
import numpy as np
import pytest
from sklearn.cross_decomposition import PLSRegression

from itx import pls


def data(n=20, g=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, g)) + np.linspace(0, 2, n)[:, None] * rng.normal(size=g)
    y = X[:, :5].mean(axis=1) + 0.5 * rng.normal(size=n)
    return X, y


def oriented(w, X, y):
    """scikit-learn's weight sign is arbitrary; orient it so that w . X^T y > 0."""
    Xz = (X - X.mean(0)) / X.std(0, ddof=1)
    return w * np.sign(w @ (Xz.T @ (y - y.mean())))


def sk_explained(X, y, k):
    m = PLSRegression(n_components=k, scale=True).fit(X, y)
    t = m.x_scores_
    q = m.y_loadings_[0]
    yz = (y - y.mean()) / y.std(ddof=1)
    return m, q ** 2 * (t ** 2).sum(axis=0) / (yz ** 2).sum()


def test_fit_matches_sklearn():
    X, y = data()
    res = pls.pls_fit(X, y, n_components=4)
    m, expl = sk_explained(X, y, 4)
    sign = np.sign(oriented(m.x_weights_[:, 0], X, y)[0] / m.x_weights_[0, 0])
    np.testing.assert_allclose(res.weights, sign * m.x_weights_[:, 0], atol=1e-10)
    np.testing.assert_allclose(res.scores, sign * m.x_scores_[:, 0], atol=1e-10)
    np.testing.assert_allclose(res.explained, expl, atol=1e-10)
    assert res.explained.sum() <= 1 + 1e-12
    # PLS1 weights are the normalised correlations of each gene with the map
    r = np.array([np.corrcoef(X[:, j], y)[0, 1] for j in range(X.shape[1])])
    np.testing.assert_allclose(res.weights, r / np.linalg.norm(r), atol=1e-10)


def test_null_refits_match_sklearn_loop():
    X, y = data(seed=1)
    rng = np.random.default_rng(2)
    nulls = np.stack([rng.permutation(y) for _ in range(7)], axis=1)
    nulls[:, 3] = 1.0  # a constant null map has no PLS fit
    out = pls.pls_null(X, nulls, n_components=3, block_size=2)
    for j in range(7):
        if j == 3:
            assert np.isnan(out[j]).all()
            continue
        _, expl = sk_explained(X, nulls[:, j], 3)
        np.testing.assert_allclose(out[j], expl, atol=1e-9)


def test_bootstrap_matches_loop():
    X, y = data(n=15, g=40, seed=3)
    w, sd, z = pls.bootstrap_weights(X, y, n_boot=25, seed=4, block_size=7)
    idx = np.random.default_rng(4).integers(0, 15, size=(25, 15))
    boot = np.array([oriented(PLSRegression(1, scale=True).fit(X[i], y[i]).x_weights_[:, 0],
                              X[i], y[i]) for i in idx])
    np.testing.assert_allclose(sd, boot.std(axis=0, ddof=1), rtol=1e-8)
    np.testing.assert_allclose(z, w / sd)
    again = pls.bootstrap_weights(X, y, n_boot=25, seed=4, block_size=7)
    np.testing.assert_array_equal(again[1], sd)  # same seed, identical output
    other_blocks = pls.bootstrap_weights(X, y, n_boot=25, seed=4)
    np.testing.assert_allclose(other_blocks[1], sd, rtol=1e-12)


def test_planted_genes_lead_the_bootstrap_ranking():
    rng = np.random.default_rng(5)
    n, g = 34, 300
    y = rng.normal(size=n)
    X = rng.normal(size=(n, g))
    X[:, :10] += 2 * y[:, None]
    _, _, z = pls.bootstrap_weights(X, y, n_boot=200, seed=0)
    assert set(np.argsort(-z)[:10]) == set(range(10))
    null = pls.pls_null(X, np.stack([rng.permutation(y) for _ in range(200)], axis=1), 1)
    obs = pls.pls_fit(X, y, 1).explained[0]
    assert (null[:, 0] >= obs).mean() < 0.05


def test_errors():
    X, y = data()
    with pytest.raises(ValueError, match="n_components"):
        pls.pls_fit(X, y, n_components=0)
    with pytest.raises(ValueError, match="finite"):
        pls.pls_fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="n_regions"):
        pls.pls_fit(X[:5], y)
