"""Karcher mean of configurations with a known mean, and the reference-point choice."""

import jax
import numpy as np

from jaxface import manifold as mf

T, D = 30, 12


def _inner(a, b):
    return np.sum(a * b) / a.shape[0]


def _exp(p, v):
    th = np.sqrt(_inner(v, v))
    return np.cos(th) * p + np.sin(th) / th * v


def test_symmetric_points_have_known_mean(rng):
    p = rng.normal(size=(T, D))
    p /= np.sqrt(_inner(p, p))
    basis = []
    for _ in range(2):  # two orthonormal tangent directions at p (Gram-Schmidt)
        w = rng.normal(size=(T, D))
        for b in [p, *basis]:
            w -= _inner(w, b) * b
        basis.append(w / np.sqrt(_inner(w, w)))
    e1, e2 = basis
    qs = np.stack([_exp(p, 0.4 * e1), _exp(p, -0.4 * e1), _exp(p, 0.7 * e2), _exp(p, -0.7 * e2)])
    # Start away from the mean (the first sample, as the official code does).
    mean, iters = jax.jit(lambda x: mf.karcher_mean(x, return_iterations=True))(
        qs.astype(np.float32)
    )
    assert mean.shape == (T, D)
    assert float(mf.geodesic_distance(mean, p.astype(np.float32))) < 1e-4
    assert 0 < int(iters) < 100
    # Stationarity: the mean log map vanishes at the result.
    grad = np.mean(np.asarray(mf.log_map(mean[None], qs.astype(np.float32))), axis=0)
    assert np.sqrt(_inner(grad, grad)) < 1e-4
    np.testing.assert_allclose(mf.norm(mean), 1.0, atol=1e-6)


def test_matches_extrinsic_mean_for_a_tight_cluster_and_reference_point(rng):
    p = rng.normal(size=(T, D))
    p /= np.sqrt(_inner(p, p))
    qs = p + 0.01 * rng.normal(size=(16, T, D))
    qs /= np.sqrt(np.sum(qs**2, axis=(1, 2)) / T)[:, None, None]
    extrinsic = qs.mean(0)
    extrinsic /= np.sqrt(_inner(extrinsic, extrinsic))
    qs32 = qs.astype(np.float32)
    mean = mf.karcher_mean(qs32, step=1.0, tol=1e-6, init=qs32[3])
    # For a cluster of radius eps the intrinsic and extrinsic means differ at O(eps^3).
    np.testing.assert_allclose(mean, extrinsic, atol=1e-4)
    # One iteration budget: stops early.
    _, iters = mf.karcher_mean(qs32, max_iters=1, return_iterations=True)
    assert int(iters) == 1

    np.testing.assert_array_equal(
        mf.reference_point(qs32, mf.SphereConfig(reference="sample", reference_index=5)), qs32[5]
    )
    np.testing.assert_allclose(
        mf.reference_point(qs32, mf.SphereConfig(), step=1.0, tol=1e-6), mean, atol=1e-5
    )
