"""morph: FLAME's forward pass against numpy, under jit, vmap and grad; the dynamic contour."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxface.morphable.forward import (
    FaceParams,
    contour_landmarks,
    embed_points,
    morph,
    shaped_vertices,
)
from jaxface.morphable.model import MorphableModelError
from tests.morphable.toy import make_toy_model, morph_numpy


def _params(rng, model, batch=(8,), scale=0.3):
    def r(n, s=scale):
        return jnp.asarray(rng.normal(size=(*batch, n)) * s, jnp.float32)

    return FaceParams(shape=r(model.num_shape, 1.0), expression=r(model.num_expression, 1.0),
                      pose=r(3), jaw=r(3), eyelids=jnp.asarray(rng.uniform(size=(*batch, 2)),
                                                               jnp.float32))


@pytest.mark.parametrize("with_posedirs", [True, False])
def test_morph_matches_numpy_flame(rng, with_posedirs):
    model = make_toy_model(posedirs=with_posedirs)
    params = _params(rng, model)
    out = jax.jit(functools.partial(morph, model))(params)
    assert out.vertices.shape == (8, 42, 3) and out.landmarks68.shape == (8, 68, 3)
    assert out.mediapipe.shape == (8, 10, 3) and out.joints.shape == (8, 5, 3)
    for b in range(8):
        ref = morph_numpy(model, *(np.asarray(getattr(params, k)[b], np.float64) for k in
                                   ("shape", "expression", "pose", "jaw", "eyelids")))
        for got, want in zip((out.vertices, out.landmarks68, out.mediapipe), ref, strict=True):
            np.testing.assert_allclose(np.asarray(got[b]), want, atol=2e-6)


def test_zero_parameters_give_the_template(toy):
    out = morph(toy, FaceParams.zeros(toy, (2,)))
    np.testing.assert_allclose(np.asarray(out.vertices[1]), toy.v_template, atol=1e-7)
    np.testing.assert_allclose(np.asarray(out.joints[0]), toy.j_regressor @ toy.v_template,
                               atol=1e-6)


def test_embedded_points_are_explicit_barycentric_sums(toy, rng):
    verts = rng.normal(size=(3, 42, 3))
    got = np.asarray(embed_points(jnp.asarray(verts, jnp.float32), toy.faces, toy.landmarks68))
    for b in range(3):
        for i in range(68):
            tri = toy.faces[toy.landmarks68.faces[i]]
            want = sum(toy.landmarks68.bary[i, k] * verts[b, tri[k]] for k in range(3))
            np.testing.assert_allclose(got[b, i], want, atol=1e-6)


def test_vmap_and_leading_batch_shapes(toy, rng):
    params = _params(rng, toy, batch=(4, 8))
    direct = morph(toy, params)
    mapped = jax.vmap(functools.partial(morph, toy))(params)
    assert direct.vertices.shape == (4, 8, 42, 3)
    np.testing.assert_allclose(np.asarray(mapped.vertices), np.asarray(direct.vertices),
                               atol=1e-6)
    single = jax.tree_util.tree_map(lambda x: x[2, 5], params)
    one = morph(toy, single)  # no batch axis at all
    assert one.vertices.shape == (42, 3)
    np.testing.assert_allclose(np.asarray(one.vertices), np.asarray(direct.vertices[2, 5]),
                               atol=1e-6)


def test_gradients_are_finite_at_zero(toy):
    zero = FaceParams.zeros(toy, (8,))

    def loss(p):
        out = morph(toy, p)
        return jnp.sum(out.vertices ** 2) + jnp.sum(out.landmarks68 ** 2)

    grads = jax.jit(jax.grad(loss))(zero)
    for leaf in jax.tree_util.tree_leaves(grads):
        assert np.all(np.isfinite(np.asarray(leaf)))
    assert np.any(np.asarray(grads.jaw) != 0) and np.any(np.asarray(grads.shape) != 0)


def test_neck_and_eyes_default_to_zero(toy, rng):
    params = _params(rng, toy, batch=(2,))
    explicit = params.replace(neck=jnp.zeros((2, 3)), eyes=jnp.zeros((2, 6)))
    np.testing.assert_allclose(np.asarray(morph(toy, explicit).vertices),
                               np.asarray(morph(toy, params).vertices), atol=0)
    turned = morph(toy, params.replace(neck=jnp.full((2, 3), 0.2))).vertices
    assert not np.allclose(np.asarray(turned), np.asarray(morph(toy, params).vertices))
    np.testing.assert_array_equal(params.full_pose()[:, 2], params.jaw)


def test_parameter_shapes_are_checked(toy):
    zero = FaceParams.zeros(toy, (2,))
    with pytest.raises(MorphableModelError, match=r"toy: FaceParams.shape must have shape "
                                                  r"\(2, 6\)"):
        morph(toy, zero.replace(shape=jnp.zeros((2, 5))))
    with pytest.raises(MorphableModelError, match=r"FaceParams.eyes must have shape \(2, 6\)"):
        shaped_vertices(toy, zero.replace(eyes=jnp.zeros((2, 3))))


def test_contour_follows_head_yaw_as_smirk():
    model = make_toy_model(contour=True)
    degrees = np.array([0.0, 10.4, 10.6, 39.0, 55.0, -1.0, -20.0, -39.0, -50.0])
    pose = Rotation.from_euler("y", degrees[:, None], degrees=True).as_rotvec()
    params = FaceParams.zeros(model, (degrees.size,)).replace(
        pose=jnp.asarray(pose, jnp.float32))
    verts = morph(model, params).vertices
    got = np.asarray(jax.jit(functools.partial(contour_landmarks, model))(verts, params))
    bins = [0, 10, 11, 39, 39, 40, 59, 78, 78]
    emb = model.contour_embedding
    for b, k in enumerate(bins):
        tri = model.faces[emb.faces[k]]
        want = np.sum(emb.bary[k][..., None] * np.asarray(verts[b])[tri], axis=1)
        np.testing.assert_allclose(got[b], want, atol=1e-6)
    # Without a dynamic contour: the first 17 of the 68 landmarks.
    toy = make_toy_model()
    out = morph(toy, FaceParams.zeros(toy, (2,)))
    np.testing.assert_allclose(
        np.asarray(contour_landmarks(toy, out.vertices, FaceParams.zeros(toy, (2,)))),
        np.asarray(out.landmarks68[:, :17]), atol=1e-7)
