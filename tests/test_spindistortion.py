"""itx.spindistortion: rotation draws, vertex sources, medial-wall fraction, keeping rotations."""

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial import ConvexHull

from itx import spindistortion as sd
from itx import vertexspins

REFLECT = np.diag([-1.0, 1.0, 1.0])


def _sphere(n=400, radius=100.0):
    """A Fibonacci sphere as a GIFTI surface (faces from its convex hull)."""
    k = np.arange(n) + 0.5
    phi = np.arccos(1 - 2 * k / n)
    theta = np.pi * (1 + 5 ** 0.5) * k
    xyz = radius * np.c_[np.cos(theta) * np.sin(phi), np.sin(theta) * np.sin(phi), np.cos(phi)]
    faces = ConvexHull(xyz).simplices
    img = nib.gifti.GiftiImage()
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        xyz.astype(np.float32), intent="NIFTI_INTENT_POINTSET"))
    img.add_gifti_data_array(nib.gifti.GiftiDataArray(
        faces.astype(np.int32), intent="NIFTI_INTENT_TRIANGLE"))
    return img


@pytest.fixture(scope="module")
def spheres():
    return _sphere(400), _sphere(300)


def test_rotation_matrices_are_seeded_rotations_with_mirrored_right():
    m = sd.rotation_matrices(6, seed=4)
    assert m.shape == (6, 2, 3, 3)
    np.testing.assert_array_equal(m, sd.rotation_matrices(6, seed=4))
    assert not np.allclose(m, sd.rotation_matrices(6, seed=5))
    for left, right in m:
        np.testing.assert_allclose(left @ left.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(left) == pytest.approx(1.0)
        np.testing.assert_allclose(right, REFLECT @ left @ REFLECT)
    # a prefix of a longer draw: the first draws do not depend on how many follow
    np.testing.assert_array_equal(sd.rotation_matrices(10, seed=4)[:6], m)


def test_vertex_sources_equal_the_library_rotations(spheres):
    """Same draws as itx.vertexspins.vertex_rotations, same nearest-vertex matching."""
    coords = [vertexspins._sphere_vertices(s) for s in spheres]
    got = sd.vertex_sources(coords, (0, 1), sd.rotation_matrices(7, seed=2))
    expect = vertexspins.vertex_rotations(7, 2, hemispheres="both", sphere_giftis=spheres)
    np.testing.assert_array_equal(got, expect)
    # a subset of the draws gives the same columns
    sub = sd.vertex_sources(coords, (0, 1), sd.rotation_matrices(7, seed=2)[[1, 5]])
    np.testing.assert_array_equal(sub, expect[:, [1, 5]])


def test_medial_wall_fraction_matches_brute_force(spheres):
    coords = vertexspins._sphere_vertices(spheres[0])
    cortex = coords[:, 0] < 60.0              # a cap around +x is the "wall"
    m = sd.rotation_matrices(25, seed=1)
    got = sd.medial_wall_fraction(coords, cortex, m, block=4)
    src = sd.vertex_sources([coords], (0,), m)
    brute = np.array([np.mean(~cortex[src[cortex, j]]) for j in range(len(m))])
    np.testing.assert_allclose(got, brute)
    # the identity fills no cortex with the wall
    eye = np.broadcast_to(np.eye(3), (1, 2, 3, 3))
    assert sd.medial_wall_fraction(coords, cortex, eye)[0] == 0.0
    # the right hemisphere uses the mirrored rotation
    right = sd.medial_wall_fraction(coords, cortex, m, hemi=1)
    src_r = sd.vertex_sources([coords], (1,), m)
    np.testing.assert_allclose(right, [np.mean(~cortex[src_r[cortex, j]]) for j in range(25)])
    # a seeded subsample estimates it
    est = sd.medial_wall_fraction(coords, cortex, m, n_sample=200, seed=3)
    np.testing.assert_array_equal(est, sd.medial_wall_fraction(coords, cortex, m,
                                                                n_sample=200, seed=3))
    assert np.abs(est - got).max() < 0.1


def test_keep_least_distorted():
    d = np.array([0.3, 0.1, 0.5, 0.2, 0.4, 0.0])
    np.testing.assert_array_equal(sd.keep_least_distorted(d, 0.5), [1, 3, 5])
    np.testing.assert_array_equal(sd.keep_least_distorted(d, 0.5, n_keep=2), [1, 3])
    np.testing.assert_array_equal(sd.keep_least_distorted(d, 0.0), np.arange(6))
    with pytest.raises(ValueError, match="n_draws_needed"):
        sd.keep_least_distorted(d, 0.5, n_keep=4)
    with pytest.raises(ValueError, match="drop"):
        sd.keep_least_distorted(d, 1.0)
    with pytest.raises(ValueError, match="finite"):
        sd.keep_least_distorted([0.1, np.nan], 0.5)


def test_n_draws_needed_leaves_enough():
    rng = np.random.default_rng(0)
    for drop in (0.2, 0.5, 0.8):
        n = sd.n_draws_needed(1000, drop)
        kept = sd.keep_least_distorted(rng.random(n), drop)
        assert kept.size >= 1000
    assert sd.n_draws_needed(100, 0.0) >= 100


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="n_rot"):
        sd.rotation_matrices(0, seed=1)
    with pytest.raises(ValueError, match="seed"):
        sd.rotation_matrices(3, seed=-1)
    with pytest.raises(ValueError, match=r"\(n_rot, 2, 3, 3\)"):
        sd.vertex_sources([np.zeros((4, 3))], (0,), np.eye(3))
    with pytest.raises(ValueError, match="cortex marks no vertex"):
        sd.medial_wall_fraction(np.eye(3), np.zeros(3, bool), sd.rotation_matrices(1, 0))
    with pytest.raises(ValueError, match="hemi"):
        sd.medial_wall_fraction(np.eye(3), np.ones(3, bool), sd.rotation_matrices(1, 0),
                                hemi=2)
