"""The crop transform and the bilinear warp against numpy references."""

import jax
import numpy as np
import pytest

from jaxface.smirk.crop import compose, crop_matrix, invert, transform_points, warp_image


def _bilinear_reference(image, inv, out):
    """Loops over output pixels: bilinear sample at inv(centre), zeros outside."""
    h, w, c = image.shape
    result = np.zeros((out, out, c))
    for i in range(out):
        for j in range(out):
            x, y = inv[:, :2] @ np.array([j + 0.5, i + 0.5]) + inv[:, 2]
            x, y = x - 0.5, y - 0.5
            x0, y0 = int(np.floor(x)), int(np.floor(y))
            for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                    if 0 <= yy < h and 0 <= xx < w:
                        result[i, j] += wy * wx * image[yy, xx]
    return result


def test_crop_matrix_maps_the_box_centre_to_the_crop_centre_and_scales_the_side():
    pts = np.array([[10.0, 20.0], [50.0, 30.0], [30.0, 60.0]])
    a = np.asarray(crop_matrix(pts, 100, scale=2.0))
    centre = transform_points(a, np.array([[30.0, 40.0]]))
    np.testing.assert_allclose(centre, [[50.0, 50.0]], atol=1e-5)
    # the box's longer side (40 px) times 2 fills the 100 px crop
    np.testing.assert_allclose(np.linalg.det(a[:, :2]), (100 / 80) ** 2, rtol=1e-6)


def test_shift_and_rotation():
    pts = np.array([[0.0, 0.0], [10.0, 10.0]])
    a = np.asarray(crop_matrix(pts, 20, scale=1.0, shift=np.array([0.5, 0.0])))
    # the window moved right by half its side: the box centre lands half a crop to the left
    np.testing.assert_allclose(transform_points(a, np.array([[5.0, 5.0]])), [[0.0, 10.0]],
                               atol=1e-5)
    r = np.asarray(crop_matrix(pts, 20, scale=1.0, rotation=np.pi / 2))
    # a point right of the centre turns to below it (clockwise on screen)
    np.testing.assert_allclose(transform_points(r, np.array([[10.0, 5.0]])), [[10.0, 20.0]],
                               atol=1e-4)


def test_invert_and_compose():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 2, 3))
    b = rng.normal(size=(4, 2, 3))
    p = rng.normal(size=(4, 5, 2))
    np.testing.assert_allclose(transform_points(invert(a), transform_points(a, p)), p, atol=1e-4)
    np.testing.assert_allclose(transform_points(compose(a, b), p),
                               transform_points(a, transform_points(b, p)), atol=1e-4)


@pytest.mark.parametrize("rotation", [0.0, 0.3])
def test_warp_matches_a_bilinear_reference(rotation):
    rng = np.random.default_rng(1)
    image = rng.uniform(size=(12, 16, 3)).astype(np.float32)
    pts = np.array([[3.0, 2.0], [12.0, 9.0]])
    a = np.asarray(crop_matrix(pts, 9, scale=1.3, rotation=rotation))
    got = np.asarray(jax.jit(warp_image, static_argnums=2)(image, a, 9))
    np.testing.assert_allclose(got, _bilinear_reference(image, np.asarray(invert(a)), 9),
                               atol=1e-5)


def test_identity_warp_returns_the_image_and_gradients_are_finite():
    image = np.random.default_rng(2).uniform(size=(8, 8, 3)).astype(np.float32)
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(warp_image(image, eye, 8), image, atol=1e-6)
    g = jax.grad(lambda m: warp_image(image, m, 8).sum())(eye)
    assert np.all(np.isfinite(g))


def test_warp_to_a_rectangle():
    image = np.random.default_rng(3).uniform(size=(6, 9, 2)).astype(np.float32)
    eye = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    np.testing.assert_allclose(warp_image(image, eye, (6, 9)), image, atol=1e-6)
