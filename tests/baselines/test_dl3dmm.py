"""Tests of the dictionary-learning 3DMM (DL-3DMM)."""

import numpy as np
import pytest

from jaxface.baselines import DL3DMM, apply_landmark_matrix, landmark_matrix, sparse_code

NUM_VERTICES = 40
NUM_ATOMS = 20


def _sparse_source(rng, nonzeros=2):
    """Unit-norm true atoms and a sampler of ``nonzeros``-sparse displacements."""
    atoms = rng.standard_normal((NUM_ATOMS, 3 * NUM_VERTICES))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)

    def sample(count):
        codes = np.zeros((count, NUM_ATOMS))
        for i in range(count):
            support = rng.choice(NUM_ATOMS, nonzeros, replace=False)
            magnitude = 1e-3 * (1.0 + rng.random(nonzeros))
            codes[i, support] = magnitude * rng.choice([-1.0, 1.0], nonzeros)
        return (codes @ atoms).reshape(count, NUM_VERTICES, 3)

    return atoms, sample


def test_sparse_code_orthonormal_dictionary_is_soft_thresholding(rng):
    dictionary = np.linalg.qr(rng.standard_normal((12, 12)))[0]
    x = rng.standard_normal((5, 12))
    corr = x @ dictionary.T
    l1 = np.array([0.0, 0.1, 0.5, 1.0, 3.0])
    for l2 in (0.0, 0.25):
        codes = sparse_code(dictionary @ dictionary.T, corr, l1, l2, num_iterations=300)
        expected = np.sign(corr) * np.maximum(np.abs(corr) - l1[:, None], 0.0) / (1.0 + l2)
        np.testing.assert_allclose(codes, expected, atol=1e-10)


def test_sparse_code_satisfies_elastic_net_optimality(rng):
    dictionary = rng.standard_normal((8, 30))
    gram = dictionary @ dictionary.T
    corr = rng.standard_normal((6, 30)) @ dictionary.T
    l1, l2 = 0.8, 0.1
    codes = sparse_code(gram, corr, l1, l2, num_iterations=3000)
    grad = codes @ gram - corr + l2 * codes
    active = codes != 0
    assert active.any() and (~active).any()
    np.testing.assert_allclose(grad[active], -l1 * np.sign(codes[active]), atol=1e-6)
    assert np.all(np.abs(grad[~active]) <= l1 + 1e-6)


def test_learning_reduces_error_and_recovers_sparse_dictionary(rng):
    true_atoms, sample = _sparse_source(rng)
    model = DL3DMM.fit(
        sample(200), num_atoms=NUM_ATOMS, sparsity=0.1, num_iterations=30, center=False
    )
    history = model.history
    assert history.shape == (31,)
    assert history[-1] < 0.5 * history[0]
    assert np.all(np.diff(history) <= 1e-3)
    atoms = model.atoms.reshape(NUM_ATOMS, -1)
    np.testing.assert_allclose(np.linalg.norm(atoms, axis=1), 1.0, rtol=1e-12)
    best_cos = np.max(np.abs(atoms @ true_atoms.T), axis=0)
    assert np.mean(best_cos > 0.95) >= 0.85
    np.testing.assert_array_equal(model.mean, 0.0)

    held_out = sample(30)
    codes = model.encode(held_out)
    assert np.mean(np.count_nonzero(np.abs(codes) > 1e-9, axis=1)) < 4
    recon = model.decode(codes)
    assert np.linalg.norm(recon - held_out) < 0.3 * np.linalg.norm(held_out)


def test_landmark_fit_of_held_out_sparse_displacements(rng):
    _, sample = _sparse_source(rng)
    offset = 1e-3 * rng.standard_normal((NUM_VERTICES, 3))
    model = DL3DMM.fit(sample(200) + offset, num_atoms=NUM_ATOMS, num_iterations=5)
    np.testing.assert_allclose(model.mean, offset, atol=5e-4)

    neutral = 0.05 * rng.standard_normal((10, NUM_VERTICES, 3))
    target = neutral + offset + sample(10)
    mat = landmark_matrix(NUM_VERTICES, vertex_indices=rng.choice(NUM_VERTICES, 15, False))
    pred = model.predict(neutral, apply_landmark_matrix(mat, target), mat)
    assert pred.shape == target.shape
    assert np.linalg.norm(pred - target) < 0.02 * np.linalg.norm(target - neutral)
    single = model.predict(neutral[0], apply_landmark_matrix(mat, target[0]), mat)
    np.testing.assert_allclose(single, pred[0], atol=1e-12)


def test_deterministic_subsample_and_save_load(rng, tmp_path):
    _, sample = _sparse_source(rng)
    data = sample(120).astype(np.float32)
    kwargs = dict(num_atoms=8, num_iterations=3, max_examples=50, seed=7, regularization=0.05)
    model = DL3DMM.fit(data, **kwargs)
    assert model.atoms.dtype == np.float32
    np.testing.assert_array_equal(model.atoms, DL3DMM.fit(data, **kwargs).atoms)
    assert model.code_variance.shape == (8,) and np.all(model.code_variance >= 0)

    path = tmp_path / "dl.npz"
    model.save(path)
    loaded = DL3DMM.load(path)
    for name in ("mean", "atoms", "code_variance", "history"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert (loaded.sparsity, loaded.l2_weight, loaded.regularization) == (
        model.sparsity,
        model.l2_weight,
        0.05,
    )
    mat = landmark_matrix(NUM_VERTICES, vertex_indices=[1, 2, 3, 20, 30])
    neutral = rng.standard_normal((2, NUM_VERTICES, 3))
    landmarks = rng.standard_normal((2, 5, 3))
    np.testing.assert_array_equal(
        loaded.predict(neutral, landmarks, mat), model.predict(neutral, landmarks, mat)
    )
    np.savez(tmp_path / "pca_like.npz", format=np.array("jaxface.baselines.PCA3DMM"))
    with pytest.raises(ValueError):
        DL3DMM.load(tmp_path / "pca_like.npz")


def test_more_atoms_than_examples_and_bad_arguments(rng):
    _, sample = _sparse_source(rng)
    data = sample(6)
    model = DL3DMM.fit(data, num_atoms=10, num_iterations=2)
    assert model.num_atoms == 10
    np.testing.assert_allclose(np.linalg.norm(model.atoms.reshape(10, -1), axis=1), 1.0)
    with pytest.raises(ValueError):
        DL3DMM.fit(data, num_atoms=0)
    with pytest.raises(ValueError):
        DL3DMM.fit(data, sparsity=1.0)
    with pytest.raises(ValueError):
        DL3DMM.fit(data, l2_weight=-1.0)
    with pytest.raises(ValueError):
        DL3DMM.fit(np.zeros((5, NUM_VERTICES, 3)))
