"""Tests of the PCA-k 3DMM."""

import numpy as np
import pytest

from jaxface.baselines import PCA3DMM, apply_landmark_matrix, landmark_matrix

NUM_VERTICES = 70


def _low_rank(rng, rank, num_vertices=NUM_VERTICES):
    """A sampler of displacements in a fixed rank-``rank`` affine subspace."""
    basis = np.linalg.qr(rng.standard_normal((3 * num_vertices, rank)))[0].T
    std = 1e-3 * np.linspace(5.0, 1.0, rank)
    offset = 1e-3 * rng.standard_normal(3 * num_vertices)

    def sample(count):
        flat = offset + (rng.standard_normal((count, rank)) * std) @ basis
        return flat.reshape(count, num_vertices, 3)

    return sample, basis


def _exact_spectrum(rng, variances, num_examples, dim):
    """Centred data whose sample covariance has exactly the given nonzero eigenvalues."""
    rank = len(variances)
    left = rng.standard_normal((num_examples, rank))
    left -= left.mean(axis=0)
    left = np.linalg.qr(left)[0]  # orthonormal columns orthogonal to the ones vector
    right = np.linalg.qr(rng.standard_normal((dim, rank)))[0]
    sing = np.sqrt(np.asarray(variances) * (num_examples - 1))
    return (left * sing) @ right.T


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_components_match_numpy_svd(rng, method):
    sample, _ = _low_rank(rng, 6)
    data = sample(120) + 1e-5 * rng.standard_normal((120, NUM_VERTICES, 3))
    model = PCA3DMM.fit(data, k=4, method=method, power_iterations=6)
    flat = data.reshape(120, -1)
    centred = flat - flat.mean(axis=0)
    _, sing, vt = np.linalg.svd(centred, full_matrices=False)
    np.testing.assert_allclose(model.mean.reshape(-1), flat.mean(axis=0), atol=1e-15)
    np.testing.assert_allclose(model.variances, sing[:4] ** 2 / 119, rtol=1e-8)
    np.testing.assert_allclose(model.total_variance, np.sum(sing**2) / 119, rtol=1e-10)
    comps = model.components.reshape(4, -1)
    np.testing.assert_allclose(comps @ comps.T, np.eye(4), atol=1e-10)
    np.testing.assert_allclose(np.abs(np.sum(comps * vt[:4], axis=1)), 1.0, atol=1e-8)


@pytest.mark.parametrize("method", ["exact", "randomized"])
def test_low_rank_data_is_recovered_from_landmarks(rng, method):
    rank = 5
    sample, basis = _low_rank(rng, rank)
    model = PCA3DMM.fit(sample(200), k=rank, method=method)
    comps = model.components.reshape(rank, -1)
    np.testing.assert_allclose(comps.T @ comps, basis.T @ basis, atol=1e-10)

    neutral = 0.1 * rng.standard_normal((8, NUM_VERTICES, 3))
    target = neutral + sample(8)
    mat = landmark_matrix(NUM_VERTICES, vertex_indices=rng.choice(NUM_VERTICES, 12, False))
    landmarks = apply_landmark_matrix(mat, target)
    for lam, tol in [(0.0, 1e-12), (1e-9, 1e-10), (None, 1e-5)]:
        pred = model.predict(neutral, landmarks, mat, regularization=lam)
        assert pred.shape == target.shape
        np.testing.assert_allclose(pred, target, atol=tol)
    np.testing.assert_allclose(model.reconstruct(target - neutral), target - neutral, atol=1e-12)


@pytest.mark.parametrize("method", ["exact", "randomized"])
@pytest.mark.parametrize(
    ("fraction", "expected_k"), [(0.5, 1), (0.9, 3), (0.985, 4), (0.995, 5), (1.0, 6)]
)
def test_variance_rule_picks_k(rng, method, fraction, expected_k):
    variances = [50.0, 30.0, 15.0, 4.0, 0.6, 0.4]  # cumulative 50, 80, 95, 99, 99.6, 100 %
    data = _exact_spectrum(rng, variances, 90, 3 * 40).reshape(90, 40, 3)
    model = PCA3DMM.fit(data, variance=fraction, method=method, initial_rank=2, oversampling=2)
    assert model.num_components == expected_k
    np.testing.assert_allclose(model.variances, variances[:expected_k], rtol=1e-8)
    np.testing.assert_allclose(model.total_variance, 100.0, rtol=1e-10)
    np.testing.assert_allclose(
        model.explained_variance_ratio, np.asarray(variances[:expected_k]) / 100.0, rtol=1e-8
    )


def test_gram_and_covariance_paths_agree(rng):
    sample, _ = _low_rank(rng, 4, num_vertices=10)
    wide = sample(20)  # M <= 3N: Gram matrix of the examples
    tall = np.concatenate([wide, sample(30)])  # M > 3N: covariance matrix
    for data in (wide, tall):
        model = PCA3DMM.fit(data, k=3, method="exact")
        flat = data.reshape(data.shape[0], -1)
        sing = np.linalg.svd(flat - flat.mean(axis=0), compute_uv=False)
        np.testing.assert_allclose(model.variances, sing[:3] ** 2 / (data.shape[0] - 1))


def test_float32_input_and_bad_arguments(rng):
    sample, _ = _low_rank(rng, 3)
    data = sample(50)
    model = PCA3DMM.fit(data.astype(np.float32), k=2)
    assert model.components.dtype == np.float32
    with pytest.raises(ValueError, match="numerical rank"):
        PCA3DMM.fit(data, k=5)
    with pytest.raises(ValueError):
        PCA3DMM.fit(data, k=0)
    with pytest.raises(ValueError):
        PCA3DMM.fit(data, variance=1.5)
    with pytest.raises(ValueError):
        PCA3DMM.fit(data[:, :, :2])


def test_deterministic_and_save_load_round_trip(rng, tmp_path):
    sample, _ = _low_rank(rng, 8)
    data = sample(100)
    model = PCA3DMM.fit(data, k=6, method="randomized", regularization=0.02, seed=3)
    again = PCA3DMM.fit(data, k=6, method="randomized", regularization=0.02, seed=3)
    np.testing.assert_array_equal(model.components, again.components)

    path = tmp_path / "pca.npz"
    model.save(path)
    loaded = PCA3DMM.load(path)
    for name in ("mean", "components", "variances"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.total_variance == model.total_variance
    assert loaded.num_examples == 100 and loaded.regularization == 0.02

    mat = landmark_matrix(NUM_VERTICES, vertex_indices=[0, 5, 9, 33])
    neutral = rng.standard_normal((3, NUM_VERTICES, 3))
    landmarks = rng.standard_normal((3, 4, 3))
    np.testing.assert_array_equal(
        loaded.predict(neutral, landmarks, mat), model.predict(neutral, landmarks, mat)
    )
    np.savez(tmp_path / "other.npz", format=np.array("something else"))
    with pytest.raises(ValueError):
        PCA3DMM.load(tmp_path / "other.npz")
