"""Tests for jaxface.render.renderer: the whole renderer against the numpy reference, its
orientation and camera, and its gradients against finite differences."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.mesh import icosphere
from jaxface.render import interpolate, render, screen_to_pixel, vertex_normals
from tests.render import reference

_TEMPLATE = load_face_template(0)
_V = np.asarray(_TEMPLATE.vertices, np.float32)
_F = np.asarray(_TEMPLATE.faces, np.int32)
# Face centred in the image, about 80% of its height.
_CAM = np.array([[7.0, 0.0, -float(_V[:, 1].mean())]], np.float32)


@pytest.fixture(scope="module")
def render_template():
    return jax.jit(lambda v, cam: render(v, _F, cam, 64))


def test_the_render_matches_the_reference(render_template, rng):
    v = np.stack([_V, _V + rng.normal(0, 1e-3, _V.shape)]).astype(np.float32)
    cam = np.concatenate([_CAM, _CAM * [0.8, 1, 1] + [0, 0.02, -0.01]]).astype(np.float32)
    out = render_template(v, cam)
    assert out.image.shape == (2, 64, 64, 3) and out.mask.shape == (2, 64, 64)
    for b in range(2):
        screen = reference.project(v[b], cam[b])
        np.testing.assert_allclose(np.asarray(out.screen_vertices[b]), screen, atol=1e-5)
        ref = reference.rasterize(screen, _F, 64, 64)
        want = reference.shade(ref, v[b], _F)
        clear = ~ref.ambiguous
        np.testing.assert_array_equal(np.asarray(out.fragments.pix_to_face[b])[clear],
                                      ref.pix_to_face[clear])
        err = np.abs(np.asarray(out.image[b]) - want).max(-1)[clear]
        assert np.all(err <= 3 * ref.bary_tolerance()[clear])  # slivers: float32's limit
        assert np.mean(err <= 1e-5) > 0.999
        np.testing.assert_array_equal(np.asarray(out.mask[b]), out.fragments.pix_to_face[b] >= 0)
        assert float(out.image[b].max()) <= 1.0 and np.all(np.asarray(out.image[b])[
            np.asarray(out.mask[b]) == 0] == 0)


def test_a_face_renders_upright_with_its_left_on_the_right_of_the_image(render_template):
    out = render_template(_V[None], _CAM)
    rows = np.nonzero(np.asarray(out.mask[0]).any(axis=1))[0]
    pix = np.asarray(screen_to_pixel(out.screen_vertices[0], 64))  # (col, row)
    top, bottom = int(np.argmax(_V[:, 1])), int(np.argmin(_V[:, 1]))
    # Forehead at the top rows, chin at the bottom.
    assert 0 <= rows.min() + 0.5 - pix[top, 1] <= 2 and 0 <= pix[bottom, 1] - rows.max() - 0.5 <= 2
    chin, nose = IBUG68_VERTICES[8], IBUG68_VERTICES[30]
    assert pix[chin, 1] > pix[nose, 1] > pix[top, 1]
    # x to the right: the subject's left (x > 0) is on the image's right.
    left_eye, right_eye = IBUG68_VERTICES[45], IBUG68_VERTICES[36]
    assert pix[left_eye, 0] > 32 > pix[right_eye, 0]
    # The nose tip is the nearest point: the depth buffer's minimum is at its pixel.
    zbuf = np.where(np.asarray(out.mask[0]) > 0, np.asarray(out.fragments.zbuf[0]), np.inf)
    r, c = np.unravel_index(np.argmin(zbuf), zbuf.shape)
    nose_tip = int(np.argmax(_V[:, 2]))
    assert abs(c + 0.5 - pix[nose_tip, 0]) <= 1.5 and abs(r + 0.5 - pix[nose_tip, 1]) <= 1.5


def _centroid_and_size(mask):
    rows, cols = np.nonzero(mask)
    return np.array([cols.mean(), rows.mean()]), len(rows)


def test_camera_scale_and_translation_move_the_image_as_documented(render_template):
    base, n = _centroid_and_size(np.asarray(render_template(_V[None], _CAM).mask[0]))
    # tx moves the face right and ty moves it up, by s * t * min(H, W) / 2 pixels.
    s = float(_CAM[0, 0])
    shifted = _CAM + np.array([[0.0, 4.0 / (32 * s), 3.0 / (32 * s)]], np.float32)
    moved, n2 = _centroid_and_size(np.asarray(render_template(_V[None], shifted).mask[0]))
    np.testing.assert_allclose(moved - base, [4.0, -3.0], atol=0.05)
    assert abs(n2 - n) <= 0.01 * n
    # Halving the scale halves the face's size around the image centre.
    half = _CAM * np.array([[0.5, 1, 1]], np.float32)
    small, n3 = _centroid_and_size(np.asarray(render_template(_V[None], half).mask[0]))
    np.testing.assert_allclose(small - 32, 0.5 * (base - 32), atol=0.3)
    assert abs(n3 - n / 4) <= 0.05 * n / 4


def test_batch_vmap_and_jit_agree(render_template, rng, count_traces):
    v = (_V[None] + rng.normal(0, 1e-3, (3, *_V.shape))).astype(np.float32)
    cam = np.repeat(_CAM, 3, axis=0) * rng.uniform(0.9, 1.1, (3, 1)).astype(np.float32)
    with count_traces() as traces:
        batched = render_template(v, cam)
        render_template(v + 1e-4, cam)
    assert traces.count == 1
    single = jax.vmap(lambda vv, cc: render(vv[None], _F, cc[None], 64))(v, cam)
    np.testing.assert_array_equal(np.asarray(batched.fragments.pix_to_face),
                                  np.asarray(single.fragments.pix_to_face)[:, 0])
    np.testing.assert_allclose(np.asarray(batched.image), np.asarray(single.image)[:, 0],
                               atol=1e-6)


# --------------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------------

_SPHERE_V, _SPHERE_F = icosphere(3)
_SIZE = 40


def _sphere_render(v, cam):
    return render(v, _SPHERE_F, cam, _SIZE)


def _lit_sides(v, cam, fragments):
    """``bool [B, H, W, L]``: which side of each light's clamp the interpolated normal is on."""
    del cam
    n = interpolate(fragments, _SPHERE_F, vertex_normals(v, _SPHERE_F))
    return jnp.einsum("bhwc,lc->bhwl", n, jnp.asarray(reference.LIGHT_POSITIONS / np.sqrt(
        (reference.LIGHT_POSITIONS ** 2).sum(1, keepdims=True)), jnp.float32)) > 0


def test_gradients_match_central_differences_on_pixels_whose_triangle_does_not_change(rng):
    v0 = (_SPHERE_V * rng.uniform(0.97, 1.03, (len(_SPHERE_V), 1))).astype(np.float32)[None]
    cam0 = np.array([[0.8, 0.05, -0.03]], np.float32)
    # Directions: coordinates of vertices on the visible side, and the three camera parameters.
    front = np.nonzero(v0[0, :, 2] > 0.3)[0]
    picks = rng.choice(front, 6, replace=False)
    directions = [("v", int(i), int(c)) for i, c in zip(picks, rng.integers(0, 3, 6), strict=True)]
    directions += [("cam", 0, c) for c in range(3)]
    h = 1e-3

    def perturbed(kind, i, c, step):
        v, cam = v0.copy(), cam0.copy()
        (v[0, i] if kind == "v" else cam[0])[c] += step
        return v, cam

    pairs = [perturbed(*d, s) for d in directions for s in (h, -h)]
    vs = np.concatenate([p[0] for p in pairs])
    cams = np.concatenate([p[1] for p in pairs])
    run = jax.jit(_sphere_render)
    base = run(v0, cam0)
    out = run(vs, cams)
    sides = np.asarray(jax.jit(lambda v, c, f: _lit_sides(v, c, f))(vs, cams, out.fragments))
    base_sides = np.asarray(_lit_sides(v0, cam0, base.fragments))[0]
    p2f0 = np.asarray(base.fragments.pix_to_face[0])
    weights, fds = [], []
    for k in range(len(directions)):
        plus, minus = 2 * k, 2 * k + 1
        stable = ((np.asarray(out.fragments.pix_to_face[plus]) == p2f0)
                  & (np.asarray(out.fragments.pix_to_face[minus]) == p2f0) & (p2f0 >= 0)
                  & np.all(sides[plus] == base_sides, -1) & np.all(sides[minus] == base_sides, -1))
        assert stable.sum() > 0.9 * (p2f0 >= 0).sum()
        w = rng.normal(size=(_SIZE, _SIZE, 3)).astype(np.float32) * stable[..., None]
        weights.append(w)
        diff = np.asarray(out.image[plus], np.float64) - np.asarray(out.image[minus], np.float64)
        fds.append(float((w * diff).sum() / (2 * h)))

    def loss(v, cam, w):
        return jnp.sum(_sphere_render(v, cam).image[0] * w)

    grads = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1)), in_axes=(None, None, 0)))(
        v0, cam0, jnp.asarray(np.stack(weights)))
    for k, (kind, i, c) in enumerate(directions):
        g = float(grads[0][k, 0, i, c] if kind == "v" else grads[1][k, 0, c])
        assert abs(g) > 1e-3
        assert abs(g - fds[k]) <= 0.02 * abs(g) + 2e-3, (kind, i, c, g, fds[k])


def test_gradients_are_finite_everywhere_and_zero_from_the_background(rng):
    v = _SPHERE_V[None].astype(np.float32)
    # A degenerate triangle (three coincident vertices) in front of the sphere.
    v = np.concatenate([v, np.array([[[0.1, 0.1, 2.0]] * 3], np.float32)], axis=1)
    faces = np.concatenate([_SPHERE_F, [[len(_SPHERE_V), len(_SPHERE_V) + 1,
                                         len(_SPHERE_V) + 2]]]).astype(np.int32)
    cam = np.array([[0.8, 0.0, 0.0]], np.float32)
    out = render(v, faces, cam, _SIZE)
    assert np.all(np.isfinite(np.asarray(out.image)))
    background = np.asarray(out.mask[0]) == 0
    w = rng.normal(size=(1, _SIZE, _SIZE, 3)).astype(np.float32)

    def loss(v, cam, w):
        return jnp.sum(render(v, faces, cam, _SIZE).image * w)

    g_all = jax.grad(loss, argnums=(0, 1))(v, cam, w)
    g_bg = jax.grad(loss, argnums=(0, 1))(v, cam, w * background[None, ..., None])
    for g in (*g_all, *g_bg):
        assert np.all(np.isfinite(np.asarray(g)))
    assert np.all(np.asarray(g_bg[0]) == 0) and np.all(np.asarray(g_bg[1]) == 0)
    assert np.any(np.asarray(g_all[0]) != 0) and np.all(np.asarray(g_all[0])[0, -3:] == 0)
