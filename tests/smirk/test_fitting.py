"""The landmark-fitting baseline recovers the landmarks of renders with known parameters."""

import jax
import numpy as np

from jaxface.morphable.forward import FaceParams, morph
from jaxface.smirk.fitting import fit_landmarks, initial_camera
from jaxface.smirk.landmarks import project_points
from jaxface.smirk.synthetic import SyntheticConfig, sample_params


def test_initial_camera_puts_the_template_on_the_box(small_model):
    zero = morph(small_model, FaceParams.zeros(small_model, (1,)))
    truth = np.array([[9.0, 0.02, -0.01]], np.float32)
    target = project_points(zero.mediapipe, truth)
    np.testing.assert_allclose(initial_camera(small_model, target), truth, rtol=1e-4, atol=1e-6)


def test_fit_reaches_the_landmarks_of_known_faces(small_model):
    params = sample_params(jax.random.key(0), small_model, SyntheticConfig(), 4)
    cam = np.tile(np.array([[8.0, 0.01, -0.02]], np.float32), (4, 1))
    target = project_points(morph(small_model, params).mediapipe, cam)
    fit, fit_cam, history = fit_landmarks(small_model, target, steps=200)
    history = np.asarray(history)
    assert np.all(np.isfinite(history)) and history[-1] < 0.05 * history[0]
    got = project_points(morph(small_model, fit).mediapipe, fit_cam)
    err = np.linalg.norm(np.asarray(got) - np.asarray(target), axis=-1).mean()
    assert err < 0.01  # screen units: under half a pixel of a 224 image
    assert np.all(np.asarray(fit.eyelids) >= 0) and np.all(np.asarray(fit.jaw)[:, 0] >= 0)
