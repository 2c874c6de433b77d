"""The masked photo: the hull against scipy, the dilation against a loop, the samples' share,
their triangles and place, and what the masked image keeps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import ConvexHull

from jaxface.render import front_facing, project_orthographic
from jaxface.render.camera import pixel_centers
from jaxface.smirk import masking
from jaxface.smirk.synthetic import SyntheticConfig, render_synthetic


@pytest.fixture(scope="module")
def faces_batch(small_model):
    return jax.jit(lambda k: render_synthetic(k, small_model, SyntheticConfig(), 8, 96))(
        jax.random.key(5))


def _point_sets():
    rng = np.random.default_rng(0)
    yield rng.normal(size=(60, 2)) * [0.5, 0.3]
    yield rng.uniform(-0.8, 0.8, size=(200, 2))
    g = np.linspace(-0.6, 0.6, 7)  # a grid: many collinear points on the hull's edges
    yield np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    yield rng.uniform(-0.9, 0.9, size=(468, 2)) @ np.array([[0.7, 0.3], [-0.2, 0.6]])


@pytest.mark.parametrize("points", list(_point_sets()))
def test_hull_and_hull_mask_match_scipy(points):
    points = points.astype(np.float32)
    order = np.asarray(jax.jit(masking.convex_hull)(points))
    hull = ConvexHull(points.astype(np.float64))
    corners = set(hull.vertices.tolist())
    got = set(order.tolist())
    assert corners <= got  # every corner is found; other points found lie on edges
    on_edges = points[sorted(got - corners)]
    dist = hull.equations[:, :2] @ on_edges.T + hull.equations[:, 2:]
    assert np.all(np.abs(dist).min(axis=0) < 1e-5)
    # counter-clockwise for (x right, y up): the signed area is positive
    poly = points[order]
    area = 0.5 * np.sum(poly[:, 0] * np.roll(poly[:, 1], -1) - np.roll(poly[:, 0], -1) * poly[:, 1])
    np.testing.assert_allclose(area, hull.volume, rtol=1e-5)

    size = 40
    mask = np.asarray(jax.jit(masking.hull_mask, static_argnums=1)(points[None], size))[0]
    centres = pixel_centers(size).reshape(-1, 2).astype(np.float64)
    signed = (centres @ hull.equations[:, :2].T + hull.equations[:, 2]).max(axis=1)
    clear = np.abs(signed) > 1e-4
    want = (signed <= 0).reshape(size, size)
    assert np.array_equal(mask.reshape(-1)[clear], want.reshape(-1)[clear])
    assert want.sum() > 0


def test_dilate_matches_a_loop():
    rng = np.random.default_rng(1)
    mask = rng.uniform(size=(2, 30, 25)) < 0.02
    for radius in (0, 1, 3):
        got = np.asarray(masking.dilate(mask, radius))
        want = np.zeros_like(mask)
        for b, i, j in zip(*np.nonzero(mask), strict=True):
            want[b, max(i - radius, 0):i + radius + 1, max(j - radius, 0):j + radius + 1] = True
        assert np.array_equal(got, want)
    assert masking.dilation_radius(224, 10) == 10 and masking.dilation_radius(112, 10) == 5


def test_triangle_weights(small_model):
    w = masking.triangle_weights(small_model)
    faces = small_model.faces
    lips = np.isin(faces, small_model.masks["lips"]).all(axis=1)
    nose = np.isin(faces, small_model.masks["nose"]).all(axis=1)
    face = np.isin(faces, small_model.masks["face"]).all(axis=1)
    np.testing.assert_array_equal(w[lips | nose], 0.5)
    np.testing.assert_array_equal(w[face & ~lips & ~nose], 1.0)
    np.testing.assert_array_equal(w[~face], 0.0)


def _mask(small_model, syn, key, cfg):
    faces = small_model.faces
    weights = masking.triangle_weights(small_model)
    screen = project_orthographic(syn.vertices, syn.cam)

    @jax.jit
    def run(key):
        return masking.mask_face(key, syn.image, syn.landmarks, screen, faces, weights,
                                 syn.mask, cfg)

    return run(key), screen, weights


def test_samples_share_triangles_and_place(small_model, faces_batch):
    syn = faces_batch
    cfg = masking.MaskingConfig(hole_ratio=0.0)
    out, screen, weights = _mask(small_model, syn, jax.random.key(0), cfg)
    b, size = syn.image.shape[:2]
    p = int(0.01 * size * size)
    assert out.samples.face.shape == (b, p) and out.colours.shape == (b, p, 3)
    assert bool(jnp.all(out.samples.valid))
    # 1 % of the pixels carry a sample (fewer only where two samples share a pixel)
    covered = np.asarray(jnp.any(out.image != syn.image * out.background[..., None], -1))
    share = covered.reshape(b, -1).mean(axis=1)
    assert np.all(share <= 0.01 + 1e-9) and np.all(share >= 0.008), share
    # only front-facing triangles of positive weight
    front = np.asarray(front_facing(screen, small_model.faces))
    face = np.asarray(out.samples.face)
    assert np.all(np.take_along_axis(front, face, axis=1))
    assert np.all(weights[face] > 0)
    bary = np.asarray(out.samples.bary)
    assert np.all(bary >= 0) and np.allclose(bary.sum(-1), 1, atol=1e-6)
    # inside the landmarks' hull (the open model's landmarks are its vertices)
    points = np.asarray(masking.surface_points(screen, small_model.faces, out.samples))
    for k in range(b):
        hull = ConvexHull(np.asarray(syn.landmarks[k], np.float64))
        signed = points[k] @ hull.equations[:, :2].T + hull.equations[:, 2]
        assert np.all(signed.max(axis=1) <= 1e-5)
    # front-facing triangles are drawn in proportion to weight x area: the mean of the area of
    # the sampled triangles, over all draws, is sum(w a^2) / sum(w a)
    tri = np.asarray(screen)[:, small_model.faces, :2]
    e1, e2 = tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0]
    area = 0.5 * np.abs(e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0])
    wa = weights * area * front
    want = (wa * area).sum(1) / wa.sum(1)
    got = np.take_along_axis(area, face, axis=1).mean(1)
    np.testing.assert_allclose(got.mean(), want.mean(), rtol=0.1)


def test_masked_image_keeps_background_and_samples_only(small_model, faces_batch):
    syn = faces_batch
    out, screen, _ = _mask(small_model, syn, jax.random.key(1), masking.MaskingConfig())
    image, masked = np.asarray(syn.image), np.asarray(out.image)
    size = image.shape[1]
    bg = np.asarray(out.background)
    np.testing.assert_array_equal(masked[bg], image[bg])
    # the face hole: the dilated hull and the render's footprint
    hull = np.asarray(masking.hull_mask(syn.landmarks, size))
    hole = np.asarray(masking.dilate(hull, masking.dilation_radius(size, 10)))
    assert np.array_equal(bg, ~hole & (np.asarray(syn.mask) == 0))
    assert hole.mean() > bg.mean() * 0.1
    # inside the hole: zeros except the samples (photo pixel x noise near 1), none in holes
    points = masking.surface_points(screen, small_model.faces, out.samples)
    _, covered = masking.splat(points, out.colours, out.samples.valid, size)
    covered = np.asarray(covered) & ~np.asarray(out.holes)
    assert np.all(masked[~bg & ~covered] == 0)
    ratio = masked[covered] / np.maximum(image[covered], 1e-3)
    bright = image[covered] > 0.05
    assert abs(np.median(ratio[bright]) - 1) < 0.02 and np.std(ratio[bright]) < 0.1
    # 1 % seeds of 5 x 5 holes (radius 5 at 224 -> 2 at 96) drop about 1 - 0.99^25 of them
    holes = np.asarray(out.holes).mean()
    assert abs(holes - (1 - 0.99 ** 25)) < 0.05
