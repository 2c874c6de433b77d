"""On-device augmentation: crops follow the landmarks, jitter stays in range."""

import jax
import numpy as np

from jaxface.smirk.augment import colour_jitter, random_crops
from jaxface.smirk.crop import transform_points


def _images_with_a_dot(b, size, dots):
    images = np.zeros((b, size, size, 3), np.uint8)
    for i, (c, r) in enumerate(dots):
        images[i, r - 1:r + 2, c - 1:c + 2] = 255
    return images


def test_random_crops_move_pixels_and_landmarks_together():
    size, b = 64, 4
    rng = np.random.default_rng(0)
    dots = rng.integers(24, 40, size=(b, 2))
    images = _images_with_a_dot(b, size, dots)
    box = np.array([[16.0, 16.0], [48.0, 48.0]])
    landmarks = np.concatenate([np.broadcast_to(box, (b, 2, 2)),
                                (dots + 0.5)[:, None, :].astype(np.float64)], axis=1)
    crops, pts, mats = jax.jit(random_crops, static_argnums=3)(
        jax.random.key(0), images, landmarks, 32)
    assert crops.shape == (b, 32, 32, 3) and float(crops.max()) <= 1.0
    np.testing.assert_allclose(pts, transform_points(mats, landmarks), atol=1e-5)
    for i in range(b):
        # the brightest pixel of the crop sits at the dot's transformed landmark
        r, c = np.unravel_index(np.argmax(np.asarray(crops[i, ..., 0])), (32, 32))
        assert abs(c + 0.5 - pts[i, 2, 0]) <= 1.5 and abs(r + 0.5 - pts[i, 2, 1]) <= 1.5
    scales = np.sqrt(np.abs(np.linalg.det(np.asarray(mats[:, :, :2]))))
    side = 32 / scales  # crop side in context pixels over the 32-pixel box
    assert np.all((side / 32 >= 1.2 - 1e-4) & (side / 32 <= 1.8 + 1e-4))


def test_colour_jitter_keeps_range_and_varies_per_example():
    x = np.full((4, 8, 8, 3), 0.5, np.float32)
    x[..., 0] = 0.8
    y = np.asarray(colour_jitter(jax.random.key(1), x))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert np.std(y.mean(axis=(1, 2, 3))) > 1e-3
    z = np.asarray(colour_jitter(jax.random.key(1), x, brightness=0, contrast=0, saturation=0,
                                 blur_prob=0, noise_std=0))
    np.testing.assert_allclose(z, x, atol=1e-6)
