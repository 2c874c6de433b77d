"""Renders with known parameters: ranges, ground truth consistency, the pose conversion."""

import jax
import numpy as np
from scipy.spatial.transform import Rotation

from jaxface.morphable.forward import morph
from jaxface.smirk.landmarks import project_points
from jaxface.smirk.synthetic import SyntheticConfig, _euler_axis_angle, render_synthetic


def test_euler_to_axis_angle_matches_scipy():
    rng = np.random.default_rng(0)
    angles = rng.uniform(-0.6, 0.6, size=(3, 16))
    got = np.asarray(_euler_axis_angle(*angles))
    want = Rotation.from_euler("ZYX", np.stack([angles[2], angles[1], angles[0]], -1)).as_rotvec()
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(_euler_axis_angle(*np.zeros((3, 1))), np.zeros((1, 3)), atol=1e-7)


def test_renders_and_their_ground_truth(small_model):
    cfg = SyntheticConfig()
    syn = jax.jit(lambda k: render_synthetic(k, small_model, cfg, 8, 48))(jax.random.key(3))
    image, mask = np.asarray(syn.image), np.asarray(syn.mask)
    assert image.shape == (8, 48, 48, 3) and 0.0 <= image.min() and image.max() <= 1.0
    assert np.all(mask.mean(axis=(1, 2)) > 0.1)  # every face is on screen
    out = morph(small_model, syn.params)
    np.testing.assert_allclose(syn.vertices, out.vertices, atol=1e-6)
    np.testing.assert_allclose(syn.landmarks, project_points(out.mediapipe, syn.cam), atol=1e-6)
    # the landmark box spans 1/1.8 .. 1/1.2 of the image's 2 screen units
    side = (np.asarray(syn.landmarks).max(1) - np.asarray(syn.landmarks).min(1)).max(-1)
    assert np.all((side > 2 / 1.8 - 1e-4) & (side < 2 / 1.2 + 1e-4))
    p = syn.params
    assert np.all(np.asarray(p.eyelids) >= 0) and np.all(np.asarray(p.eyelids) <= 1)
    assert np.all(np.asarray(p.jaw)[:, 0] >= 0)
    assert np.all(np.asarray(p.expression) >= 0)
