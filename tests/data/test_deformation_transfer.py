"""Tests for jaxface.data.deformation_transfer."""

import numpy as np

from jaxface.data.deformation_transfer import (
    local_frames,
    smoothed_normals,
    transfer_displacements,
)
from jaxface.data.template import load_face_template


def _rotation_x(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def test_local_frames_are_orthonormal_and_oriented():
    t = load_face_template(0)
    v = t.vertices.astype(np.float64)
    f = local_frames(v, t.faces, v[:, 1])
    np.testing.assert_allclose(f @ f.transpose(0, 2, 1), np.broadcast_to(np.eye(3), f.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(f), 1.0)
    nose_tip = t.landmarks.vertex_indices[30]
    assert f[nose_tip, 2, 2] > 0.9 and f[nose_tip, 0, 1] > 0.9  # normal forward, t1 up
    np.testing.assert_allclose(f[:, 2], smoothed_normals(v, t.faces))


def test_transfer_to_the_template_itself_is_exact():
    t = load_face_template(0)
    d = np.random.default_rng(1).normal(size=(4, 468, 3)) * 1e-3
    out = transfer_displacements(d, t.vertices, t.vertices, t.faces)
    np.testing.assert_allclose(out, d, rtol=0, atol=1e-15)


def test_transfer_follows_rotation_and_scale():
    t = load_face_template(0)
    v = t.vertices.astype(np.float64)
    d = np.random.default_rng(2).normal(size=(2, 468, 3)) * 1e-3
    # A rigidly rotated face gets rotated displacements.
    rot = _rotation_x(20.0)
    out = transfer_displacements(d, v, v @ rot.T, t.faces)
    np.testing.assert_allclose(out, d @ rot.T, atol=1e-9)
    # A face 1.2 times larger gets 1.2 times larger displacements.
    # A face 1.2 times larger gets displacements in the same directions, about 1.2 times longer
    # (the smoothing radius does not scale with the face).
    out = transfer_displacements(d, v, 1.2 * v, t.faces)
    ratio = np.linalg.norm(out, axis=-1) / np.linalg.norm(d, axis=-1)
    assert abs(np.median(ratio) - 1.2) < 0.02 and ratio.min() > 1.0 and ratio.max() < 1.45
    same = transfer_displacements(d, v, 1.2 * v, t.faces, scale=False)
    cos = np.sum(same * d, axis=-1) / np.linalg.norm(same, axis=-1) / np.linalg.norm(d, axis=-1)
    np.testing.assert_allclose(np.linalg.norm(same, axis=-1), np.linalg.norm(d, axis=-1))
    assert np.median(cos) > 0.999 and cos.min() > 0.9


def test_smoothed_normals_point_out_of_the_face():
    t = load_face_template(0)
    n = smoothed_normals(t.vertices, t.faces)
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1.0)
    nose_tip = t.landmarks.vertex_indices[30]
    assert n[nose_tip, 2] > 0.9
