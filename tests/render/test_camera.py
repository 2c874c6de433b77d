"""Tests for jaxface.render.camera: SMIRK's projection, the screen space and the pixel grid."""

import numpy as np
import pytest

from jaxface.render.camera import (
    DEPTH_OFFSET,
    image_shape,
    pixel_centers,
    project_orthographic,
    screen_to_pixel,
)
from tests.render import reference


def test_projection_is_smirks_with_y_and_z_negated_and_the_depth_shift(rng):
    v = rng.normal(size=(2, 7, 3)).astype(np.float32)
    cam = np.array([[3.0, 0.1, -0.2], [0.5, -1.0, 2.0]], np.float32)
    got = np.asarray(project_orthographic(v, cam))
    for b in range(2):
        np.testing.assert_allclose(got[b], reference.project(v[b], cam[b]), rtol=1e-6, atol=1e-5)
    assert DEPTH_OFFSET == 10.0
    # Nearer the viewer (larger world z) means a smaller screen depth.
    near = np.asarray(project_orthographic(np.array([[[0, 0, 1.0]]]), np.array([[1.0, 0, 0]])))
    far = np.asarray(project_orthographic(np.array([[[0, 0, -1.0]]]), np.array([[1.0, 0, 0]])))
    assert near[0, 0, 2] < far[0, 0, 2]


@pytest.mark.parametrize("size", [(4, 4), (3, 5), (6, 2), (224, 224)])
def test_pixel_centres_are_pytorch3ds_grid_seen_with_x_right_and_y_down(size):
    h, w = size
    px, py = reference.pixel_grid(h, w)
    got = pixel_centers(size)
    assert got.shape == (h, w, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got[..., 0], px, atol=1e-6)
    np.testing.assert_allclose(got[..., 1], py, atol=1e-6)
    # Row 0 is the top of the image (smallest y), column 0 the left (smallest x).
    assert got[0, 0, 1] < got[-1, 0, 1] and got[0, 0, 0] < got[0, -1, 0]


def test_screen_to_pixel_puts_centres_at_half_integers_and_matches_the_official_masking():
    for size in ((5, 8), (224, 224)):
        h, w = size
        pix = np.asarray(screen_to_pixel(pixel_centers(size), size))
        cols, rows = np.meshgrid(np.arange(w), np.arange(h))
        np.testing.assert_allclose(pix[..., 0], cols + 0.5, atol=1e-4)
        np.testing.assert_allclose(pix[..., 1], rows + 0.5, atol=1e-4)
    p = np.random.default_rng(1).uniform(-1, 1, (50, 3)).astype(np.float32)
    official = np.floor(0.5 * (1 + p[:, :2]) * 224)  # src/utils/masking.py
    np.testing.assert_array_equal(np.floor(np.asarray(screen_to_pixel(p, 224))), official)


def test_bad_inputs_raise_one_line_errors():
    assert image_shape(7) == (7, 7) and image_shape((3, 5)) == (3, 5)
    for bad in (0, (4, -1), "big", (1, 2, 3)):
        with pytest.raises(ValueError, match="image_size"):
            image_shape(bad)
    with pytest.raises(ValueError, match=r"vertices must be \[B, V, 3\]"):
        project_orthographic(np.zeros((4, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"cam must be \[B, 3\]"):
        project_orthographic(np.zeros((2, 4, 3)), np.zeros((1, 3)))
