"""The §4.4 applications: diversity, geodesic interpolation, mixed expressions, transfer."""

import jax
import numpy as np
import pytest

from jaxface import manifold as mf
from jaxface.motion3dgan import applications as app
from jaxface.motion3dgan.train import create_gan_state, create_models, make_sample_fn


def _pair(tiny_motions):
    _, motions, _, _ = tiny_motions
    i = int(np.flatnonzero(motions.expressions == "mouth_open")[0])
    j = int(np.flatnonzero(motions.expressions == "eyebrow")[0])
    return motions, i, j


def test_landmarks_to_motion_and_back(tiny_motions):
    motions, i, _ = _pair(tiny_motions)
    raw = motions.landmarks[i] * 0.1 + 0.3  # any scale and position: normalised inside
    q, intensity, neutral = app.landmarks_to_motion(raw, num_frames=None)
    assert q.shape == (30, 204) and intensity.shape == ()
    np.testing.assert_allclose(neutral, motions.neutral[i], atol=1e-5)
    back = app.motion_to_landmarks(q, neutral, intensity)
    assert back.shape == (30, 68, 3)
    np.testing.assert_allclose(back[0], neutral, atol=1e-6)
    motion = motions.landmarks[i] - motions.landmarks[i][:1]
    assert np.abs(back - motions.landmarks[i]).max() < 0.05 * np.abs(motion).max()
    q40, _, _ = app.landmarks_to_motion(raw, num_frames=40)
    assert q40.shape == (40, 204)


def test_diversity_samples_one_label_with_different_noise(tiny_motions, config):
    _, motions, _, _ = tiny_motions
    models = create_models(config, 12)
    state = create_gan_state(models, motions.q[0], jax.random.key(0))
    q = app.sample_diversity(make_sample_fn(models), state.gen_params, state.reference, 9, 3,
                             jax.random.key(1))
    assert q.shape == (3, 30, 204)
    np.testing.assert_allclose(np.asarray(mf.norm(q)), 1.0, atol=1e-4)
    assert np.abs(q[0] - q[1]).max() > 1e-6


def test_interpolation_follows_the_geodesic(tiny_motions):
    motions, i, j = _pair(tiny_motions)
    path = app.interpolate_motions(motions.q[i], motions.q[j], 5)
    assert path.shape == (5, 30, 204)
    np.testing.assert_allclose(path[0], motions.q[i], atol=1e-5)
    np.testing.assert_allclose(path[-1], motions.q[j], atol=1e-4)
    np.testing.assert_allclose(np.asarray(mf.norm(path)), 1.0, atol=1e-4)
    steps = np.asarray(mf.geodesic_distance(path[:-1], path[1:]))
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-3)
    with pytest.raises(ValueError, match="num_steps"):
        app.interpolate_motions(motions.q[i], motions.q[j], 1)


def test_mixed_expressions(tiny_motions):
    motions, i, j = _pair(tiny_motions)
    neutral = motions.neutral[i]
    li, lj = motions.intensity[i], motions.intensity[j]
    frames = app.apex_transition(motions.q[i], motions.q[j], neutral, li, lj, 6)
    assert frames.shape == (6, 68, 3)
    apex_i = app.motion_to_landmarks(motions.q[i], neutral, li)[-1]
    apex_j = app.motion_to_landmarks(motions.q[j], neutral, lj)[-1]
    np.testing.assert_allclose(frames[0], apex_i, atol=1e-5)
    np.testing.assert_allclose(frames[-1], apex_j, atol=1e-4)
    reference = np.asarray(mf.karcher_mean(motions.q))
    np.testing.assert_allclose(app.blend_motions(motions.q[i], motions.q[j], reference, 0.0),
                               motions.q[i], atol=1e-4)
    np.testing.assert_allclose(app.blend_motions(motions.q[i], motions.q[j], reference, 1.0),
                               motions.q[j], atol=1e-4)
    half = app.blend_motions(motions.q[i], motions.q[j], reference)
    assert abs(float(mf.norm(half)) - 1.0) < 1e-4
    d_i = float(mf.geodesic_distance(half, motions.q[i]))
    d_j = float(mf.geodesic_distance(half, motions.q[j]))
    between = float(mf.geodesic_distance(motions.q[i], motions.q[j]))
    assert max(d_i, d_j) < between


def test_transfer_moves_the_target_like_the_source_and_decodes(tiny_motions):
    motions, i, j = _pair(tiny_motions)
    source = motions.landmarks[i]
    # Onto its own neutral face, the transfer reproduces the source sequence.
    own = app.transfer_motion(source, source[0])
    np.testing.assert_allclose(own, source, atol=0.05 * np.abs(source - source[:1]).max())
    # Onto another face, frame 0 is that face's neutral and the motion is the source's.
    target = motions.neutral[j] * 2.0
    moved = app.transfer_motion(source, target, num_frames=20)
    assert moved.shape == (20, 68, 3)
    np.testing.assert_allclose(moved[0], motions.neutral[j], atol=1e-5)
    np.testing.assert_allclose(moved[-1] - moved[0], source[-1] - source[0],
                               atol=0.05 * np.abs(source[-1] - source[0]).max())

    # S2D-Dec decoding with a stand-in linear decoder: zero displacement gives the neutral mesh.
    rng = np.random.default_rng(0)
    weights = rng.normal(size=(204, 10 * 3)).astype(np.float32)
    neutral_mesh = rng.normal(size=(10, 3)).astype(np.float32)
    meshes = app.decode_meshes(lambda d: (d @ weights).reshape(-1, 10, 3), moved,
                               moved[0], neutral_mesh)
    assert meshes.shape == (20, 10, 3)
    np.testing.assert_allclose(meshes[0], neutral_mesh, atol=1e-5)
    assert np.abs(meshes[-1] - neutral_mesh).max() > 1e-3
