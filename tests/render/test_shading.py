"""Tests for jaxface.render.shading against the numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.render.camera import project_orthographic
from jaxface.render.rasterizer import Fragments
from jaxface.render.shading import (
    ALBEDO,
    LIGHT_INTENSITY,
    OFFICIAL_LIGHTS,
    lambertian,
    shade_lambertian,
    vertex_normals,
)
from tests.render import reference


def test_official_constants():
    np.testing.assert_allclose(
        OFFICIAL_LIGHTS,
        reference.LIGHT_POSITIONS / np.linalg.norm(reference.LIGHT_POSITIONS, axis=1)[:, None],
        rtol=1e-6)
    assert LIGHT_INTENSITY == reference.INTENSITY and ALBEDO == reference.ALBEDO


def test_vertex_normals_match_the_reference(rng):
    t = load_face_template(1)
    v = (t.vertices[None] + rng.normal(0, 2e-3, (2, *t.vertices.shape))).astype(np.float32)
    got = np.asarray(jax.jit(lambda x: vertex_normals(x, t.faces))(v))
    for b in range(2):
        np.testing.assert_allclose(got[b], reference.vertex_normals(v[b], t.faces), atol=1e-5)
    # The template faces the viewer: +z normals in the middle of the face.
    assert np.median(got[0, :, 2]) > 0.5


def test_vertex_normals_are_zero_with_finite_gradients_where_they_cancel():
    v = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0], [5, 5, 5]]], np.float32)
    faces = np.array([[0, 1, 2], [0, 2, 1]])  # both windings: the normals cancel; 3 is unused
    n = np.asarray(vertex_normals(v, faces))
    assert np.all(n == 0)
    g = jax.grad(lambda x: jnp.sum(vertex_normals(x, faces) * jnp.arange(3.0)))(v)
    assert np.all(np.isfinite(np.asarray(g)))


def test_lambertian_is_the_clamped_mean_over_lights(rng):
    normals = rng.normal(size=(4, 5, 3)).astype(np.float32)
    lights = OFFICIAL_LIGHTS.astype(np.float64)
    want = 1.7 * np.clip(normals @ lights.T, 0, 1).mean(-1)
    np.testing.assert_allclose(np.asarray(lambertian(normals)), want, rtol=1e-5, atol=1e-6)
    one = np.array([[0.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(np.asarray(lambertian(one, one, 2.0)), [2.0])
    with pytest.raises(ValueError, match=r"lights must be \[L, 3\]"):
        lambertian(normals, np.ones(3))


def _reference_fragments(screen, faces, size):
    ref = reference.rasterize(screen, faces, size, size)
    frags = Fragments(jnp.asarray(ref.pix_to_face[None], jnp.int32),
                      jnp.asarray(ref.bary[None], jnp.float32),
                      jnp.asarray(ref.zbuf[None], jnp.float32))
    return ref, frags


def test_shaded_image_matches_the_reference(rng):
    t = load_face_template(0)
    v = t.vertices.astype(np.float32)[None]
    screen = np.asarray(project_orthographic(v, np.array([[6.0, 0.0, -0.01]], np.float32)))[0]
    ref, frags = _reference_fragments(screen, t.faces, 64)
    image = np.asarray(shade_lambertian(frags, v, t.faces))[0]
    np.testing.assert_allclose(image, reference.shade(ref, v[0], t.faces), atol=1e-5)
    assert image.shape == (64, 64, 3) and image.max() <= 1.0
    assert np.all(image[ref.pix_to_face < 0] == 0)
    # Per-vertex colours are interpolated; a uniform RGB albedo scales the channels.
    colors = rng.uniform(size=(len(t.vertices), 3)).astype(np.float32)
    coloured = np.asarray(shade_lambertian(frags, v, t.faces, albedo=colors))[0]
    np.testing.assert_allclose(coloured, reference.shade(ref, v[0], t.faces, colors), atol=1e-5)
    rgb = np.asarray(shade_lambertian(frags, v, t.faces, albedo=np.array([1.0, 0.5, 0.0])))[0]
    np.testing.assert_allclose(rgb[..., 0] * 0.5, rgb[..., 1], atol=1e-6)
    assert np.all(rgb[..., 2] == 0)
    with pytest.raises(ValueError, match="uniform albedo"):
        shade_lambertian(frags, v, t.faces, albedo=np.ones(2))
