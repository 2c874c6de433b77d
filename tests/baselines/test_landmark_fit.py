"""Tests of the landmark operator and the ridge landmark fit."""

import numpy as np
import pytest
import scipy.sparse

from jaxface.baselines import (
    PCA3DMM,
    apply_landmark_matrix,
    fit_coefficients,
    fit_to_landmarks,
    landmark_basis,
    landmark_matrix,
    select_regularization,
)


def test_landmark_matrix_vertex_indices_matches_indexing(rng):
    verts = rng.standard_normal((4, 50, 3))
    idx = np.array([3, 0, 49, 3, 17])
    mat = landmark_matrix(50, vertex_indices=idx)
    assert scipy.sparse.issparse(mat) and mat.shape == (5, 50)
    np.testing.assert_array_equal(mat @ verts[0], verts[0][idx])
    np.testing.assert_array_equal(apply_landmark_matrix(mat, verts), verts[:, idx])
    np.testing.assert_array_equal(apply_landmark_matrix(mat, verts[1]), verts[1][idx])


def test_landmark_matrix_barycentric_matches_weighted_sums(rng):
    num_vertices = 30
    faces = rng.integers(0, num_vertices, size=(40, 3))
    faces[0] = [5, 5, 7]  # a repeated corner: its weights must add up
    face_idx = np.array([0, 12, 39, 12])
    bary = rng.random((4, 3))
    bary /= bary.sum(axis=1, keepdims=True)
    verts = rng.standard_normal((2, num_vertices, 3))
    mat = landmark_matrix(num_vertices, face_indices=face_idx, barycentric=bary, faces=faces)
    expected = np.zeros((2, 4, 3))
    for b in range(2):
        for k in range(4):
            for i in range(3):
                expected[b, k] += bary[k, i] * verts[b, faces[face_idx[k], i]]
    np.testing.assert_allclose(apply_landmark_matrix(mat, verts), expected, atol=1e-12)
    np.testing.assert_allclose(mat.sum(axis=1).A1, 1.0, atol=1e-12)
    assert mat[0].nnz == 2
    np.testing.assert_allclose(mat[0, 5], bary[0, 0] + bary[0, 1])


def test_dense_and_sparse_landmark_matrices_agree(rng):
    mat = landmark_matrix(20, vertex_indices=[1, 4, 9])
    verts = rng.standard_normal((3, 20, 3))
    np.testing.assert_array_equal(
        apply_landmark_matrix(mat.toarray(), verts), apply_landmark_matrix(mat, verts)
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {
            "vertex_indices": [0],
            "face_indices": [0],
            "barycentric": np.ones((1, 3)),
            "faces": np.zeros((1, 3), int),
        },
        {"vertex_indices": [10]},
        {"vertex_indices": [-1]},
        {"face_indices": [0], "barycentric": np.ones((1, 3))},
        {"face_indices": [2], "barycentric": np.ones((1, 3)), "faces": np.zeros((2, 3), int)},
        {"face_indices": [0], "barycentric": np.ones((1, 2)), "faces": np.zeros((2, 3), int)},
    ],
)
def test_landmark_matrix_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        landmark_matrix(10, **kwargs)


def test_landmark_basis_layout(rng):
    basis = rng.standard_normal((4, 12, 3))
    idx = np.array([2, 7])
    design = landmark_basis(landmark_matrix(12, vertex_indices=idx), basis)
    assert design.shape == (6, 4)
    for j in range(4):
        np.testing.assert_array_equal(design[:, j], basis[j, idx].reshape(-1))


def test_fit_coefficients_matches_normal_equations(rng):
    design = rng.standard_normal((12, 5))
    residual = rng.standard_normal((3, 12))
    var = np.array([4.0, 2.0, 1.0, 0.5, 0.1])
    lam = 0.3
    signal = np.sum(var * np.sum(design**2, axis=0)) / design.shape[0]
    lhs = design.T @ design + lam * signal * np.diag(1.0 / var)
    expected = np.linalg.solve(lhs, design.T @ residual.T).T
    np.testing.assert_allclose(fit_coefficients(design, residual, var, lam), expected, rtol=1e-10)


def test_fit_coefficients_without_regularization(rng):
    var = rng.random(4) + 0.5
    # Over-determined: ordinary least squares.
    design = rng.standard_normal((10, 4))
    residual = rng.standard_normal((2, 10))
    expected = np.linalg.lstsq(design, residual.T, rcond=None)[0].T
    np.testing.assert_allclose(fit_coefficients(design, residual, var, 0.0), expected, rtol=1e-9)
    # Under-determined: the interpolant of minimum prior norm, Σ A^T (A Σ A^T)^-1 r.
    design = rng.standard_normal((3, 4))
    residual = rng.standard_normal((2, 3))
    cov = np.diag(var)
    expected = (cov @ design.T @ np.linalg.solve(design @ cov @ design.T, residual.T)).T
    got = fit_coefficients(design, residual, var, 0.0)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    np.testing.assert_allclose(got @ design.T, residual, atol=1e-10)


def test_fit_coefficients_zero_prior_variance_fixes_coefficient(rng):
    design = rng.standard_normal((9, 3))
    residual = rng.standard_normal((4, 9))
    got = fit_coefficients(design, residual, np.array([1.0, 0.0, 2.0]), 1e-3)
    np.testing.assert_array_equal(got[:, 1], 0.0)
    with pytest.raises(ValueError):
        fit_coefficients(design, residual, np.ones(3), -1.0)


def test_fit_to_landmarks_unbatched_and_exact(rng):
    num_vertices = 15
    basis = rng.standard_normal((2, num_vertices, 3))
    mean = rng.standard_normal((num_vertices, 3))
    neutral = rng.standard_normal((num_vertices, 3))
    coeffs = np.array([0.7, -1.3])
    target = neutral + mean + np.tensordot(coeffs, basis, axes=1)
    mat = landmark_matrix(num_vertices, vertex_indices=[0, 3, 8, 11])
    out = fit_to_landmarks(
        mean, basis, np.ones(2), neutral, apply_landmark_matrix(mat, target), mat, 0.0
    )
    assert out.shape == (num_vertices, 3)
    np.testing.assert_allclose(out, target, atol=1e-10)
    with pytest.raises(ValueError):
        fit_to_landmarks(mean, basis, np.ones(2), neutral[None], np.zeros((1, 3, 3)), mat)


def test_select_regularization_prefers_regularized_fit_on_noisy_targets(rng):
    num_vertices, rank = 60, 30
    basis = np.linalg.qr(rng.standard_normal((3 * num_vertices, rank)))[0].T
    std = 0.9 ** np.arange(rank)

    def sample(count):
        return (rng.standard_normal((count, rank)) * std) @ basis

    model = PCA3DMM.fit(sample(400).reshape(-1, num_vertices, 3), k=rank)
    neutral = rng.standard_normal((20, num_vertices, 3))
    # Targets leave the model's subspace (noise), so exact interpolation overfits.
    noise = 0.3 * rng.standard_normal((20, num_vertices, 3))
    target = neutral + sample(20).reshape(-1, num_vertices, 3) + noise
    mat = landmark_matrix(num_vertices, vertex_indices=np.arange(0, num_vertices, 5))
    best, errors = select_regularization(model, neutral, target, mat, (0.0, 1e-1, 1.0))
    assert set(errors) == {0.0, 1e-1, 1.0}
    assert best == min(errors, key=errors.get)
    assert best > 0.0
    pred = model.predict(neutral, apply_landmark_matrix(mat, target), mat, regularization=best)
    assert errors[best] == pytest.approx(np.mean(np.linalg.norm(pred - target, axis=-1)))
