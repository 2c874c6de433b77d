"""Rodrigues, the kinematic chain and linear blend skinning against independent numpy code."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxface.morphable.lbs import batch_rigid_transform, lbs, pose_features, rodrigues
from tests.morphable.toy import lbs_numpy


def test_rodrigues_matches_scipy(rng):
    angles = np.concatenate([
        rng.normal(size=(64, 3)),
        rng.normal(size=(8, 3)) * 3e-4,  # inside the series range
        rng.normal(size=(8, 3)) * 1e-2,
        rng.normal(size=(8, 3)) * 1e-7,
        np.zeros((1, 3)),
        np.array([[np.pi - 1e-3, 0.0, 0.0], [0.0, 0.0, -np.pi + 1e-3]]),
    ])
    got = np.asarray(jax.jit(rodrigues)(jnp.asarray(angles, jnp.float32)))
    np.testing.assert_allclose(got, Rotation.from_rotvec(angles).as_matrix(), atol=2e-6)
    batched = rodrigues(jnp.asarray(angles[:12].reshape(3, 4, 3), jnp.float32))
    assert batched.shape == (3, 4, 3, 3)
    np.testing.assert_allclose(np.asarray(batched).reshape(12, 3, 3), got[:12], atol=1e-7)


def test_rodrigues_gradients_are_finite_and_exact_at_zero():
    jac = jax.jacfwd(rodrigues)(jnp.zeros(3))  # [3, 3, 3(input)]
    skew = np.array([[[0, 0, 0], [0, 0, -1], [0, 1, 0]],
                     [[0, 0, 1], [0, 0, 0], [-1, 0, 0]],
                     [[0, -1, 0], [1, 0, 0], [0, 0, 0]]], np.float32)  # dR/dv_i at 0
    np.testing.assert_allclose(np.moveaxis(np.asarray(jac), -1, 0), skew, atol=1e-7)
    loss = lambda v: jnp.sum(rodrigues(v) * jnp.arange(9.0).reshape(3, 3))  # noqa: E731
    for v in (jnp.zeros(3), jnp.full(3, 1e-6), jnp.array([0.3, -0.2, 0.1])):
        g = jax.grad(loss)(v)
        assert np.all(np.isfinite(np.asarray(g)))
    # Across the switch between the series and the closed form the gradient is continuous.
    for axis in (np.array([1.0, 0.0, 0.0]), np.array([0.36, -0.48, 0.8])):
        below, above = jnp.asarray(0.09999 * axis), jnp.asarray(0.10001 * axis)
        np.testing.assert_allclose(jax.grad(loss)(below), jax.grad(loss)(above), atol=5e-4)


def test_rodrigues_jacobian_matches_finite_differences(rng):
    jac = jax.jit(jax.jacfwd(rodrigues))
    for v in [*rng.normal(size=(3, 3)), *(rng.normal(size=(3, 3)) * 0.05), [1e-3, 0.0, 0.0]]:
        v = np.asarray(v, np.float64)
        eps = 1e-6
        numeric = np.stack([
            (Rotation.from_rotvec(v + eps * e).as_matrix()
             - Rotation.from_rotvec(v - eps * e).as_matrix()) / (2 * eps) for e in np.eye(3)
        ], axis=-1)
        np.testing.assert_allclose(np.asarray(jac(jnp.asarray(v, jnp.float32))), numeric,
                                   atol=2e-5)


def _toy(rng, parents, num_vertices=40):
    j = len(parents)
    v = rng.normal(size=(num_vertices, 3)) * 0.05
    j_regressor = rng.uniform(size=(j, num_vertices))
    j_regressor /= j_regressor.sum(1, keepdims=True)
    weights = rng.uniform(size=(num_vertices, j)) ** 3
    weights /= weights.sum(1, keepdims=True)
    posedirs = rng.normal(size=(9 * (j - 1), 3 * num_vertices)) * 1e-3
    return v, j_regressor, weights, posedirs


@pytest.mark.parametrize("parents", [(-1, 0, 1, 1, 1), (-1, 0, 1, 2, 0, 4)])
@pytest.mark.parametrize("with_posedirs", [True, False])
def test_lbs_matches_numpy_reference(rng, parents, with_posedirs):
    v, j_regressor, weights, posedirs = _toy(rng, parents)
    posedirs = posedirs if with_posedirs else None
    poses = rng.normal(size=(8, len(parents), 3)) * 0.4
    fn = jax.jit(lambda vs, p: lbs(vs, p, j_regressor=j_regressor, parents=parents,
                                   lbs_weights=weights, posedirs=posedirs))
    got_v, got_j = fn(jnp.broadcast_to(jnp.asarray(v, jnp.float32), (8, *v.shape)),
                      jnp.asarray(poses, jnp.float32))
    for b in range(8):
        ref_v, ref_j = lbs_numpy(v, poses[b], j_regressor, parents, weights, posedirs)
        np.testing.assert_allclose(np.asarray(got_v[b]), ref_v, atol=2e-6)
        np.testing.assert_allclose(np.asarray(got_j[b]), ref_j, atol=2e-6)


def test_zero_pose_is_identity_and_gradients_are_finite(rng):
    parents = (-1, 0, 1, 1, 1)
    v, j_regressor, weights, posedirs = _toy(rng, parents)
    vs = jnp.asarray(v, jnp.float32)[None]

    def run(pose):
        return lbs(vs, pose, j_regressor=j_regressor, parents=parents, lbs_weights=weights,
                   posedirs=posedirs)[0]

    zero = jnp.zeros((1, 5, 3))
    np.testing.assert_allclose(np.asarray(run(zero)[0]), v, atol=1e-7)
    grad = jax.grad(lambda p: jnp.sum(run(p) ** 2))(zero)
    assert np.all(np.isfinite(np.asarray(grad))) and np.any(np.asarray(grad) != 0)


def test_vmap_equals_batch_and_chain_transform(rng):
    parents = (-1, 0, 1, 2)
    rot = Rotation.from_rotvec(rng.normal(size=(4, 4, 3))).as_matrix().reshape(4, 4, 3, 3)
    joints = rng.normal(size=(4, 4, 3))
    posed, transforms = batch_rigid_transform(jnp.asarray(rot, jnp.float32),
                                              jnp.asarray(joints, jnp.float32), parents)
    vposed, vtransforms = jax.vmap(lambda r, j: batch_rigid_transform(r, j, parents))(
        jnp.asarray(rot, jnp.float32), jnp.asarray(joints, jnp.float32))
    np.testing.assert_allclose(np.asarray(vposed), np.asarray(posed), atol=1e-6)
    np.testing.assert_allclose(np.asarray(vtransforms), np.asarray(transforms), atol=1e-6)
    # A joint's rest location maps to its posed location.
    rest = np.concatenate([joints, np.ones((4, 4, 1))], -1)
    mapped = np.einsum("bjik,bjk->bji", np.asarray(transforms), rest)[..., :3]
    np.testing.assert_allclose(mapped, np.asarray(posed), atol=1e-5)
    feats = pose_features(jnp.asarray(rot, jnp.float32))
    assert feats.shape == (4, 27)
    np.testing.assert_allclose(np.asarray(feats[1, 9:18]), (rot[1, 2] - np.eye(3)).ravel(),
                               atol=1e-6)
