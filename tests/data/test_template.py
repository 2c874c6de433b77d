"""Tests for jaxface.data.template (the committed face template and its 68 landmarks)."""

import numpy as np
import pytest

from jaxface.data.template import (
    IBUG68_GROUPS,
    IBUG68_VERTICES,
    MOUTH_CORNERS,
    MOUTH_LOWER_INNER,
    MOUTH_UPPER_INNER,
    load_face_template,
)
from jaxface.mesh import topology

# iBUG-68 left/right pairs (subject's right, subject's left).
_PAIRS = (
    [(k, 16 - k) for k in range(8)]
    + [(17 + k, 26 - k) for k in range(5)]
    + [(31, 35), (32, 34)]
    + [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]
    + [(48, 54), (49, 53), (50, 52), (59, 55), (58, 56), (60, 64), (61, 63), (67, 65)]
)
_MIDLINE = (8, 27, 28, 29, 30, 33, 51, 57, 62, 66)


@pytest.fixture(scope="module")
def base():
    return load_face_template(0)


def test_base_shapes_dtypes_and_cache(base):
    assert base.vertices.shape == (468, 3) and base.vertices.dtype == np.float32
    assert base.faces.shape == (852, 3) and base.faces.dtype == np.int32
    assert base.landmarks.vertex_indices.dtype == np.int32
    assert tuple(base.landmarks.vertex_indices.tolist()) == IBUG68_VERTICES
    assert not base.vertices.flags.writeable  # cached and shared
    assert load_face_template(0) is base
    assert np.all(np.isfinite(base.vertices))


def test_metric_size_and_centering(base):
    v = base.vertices
    extent = v.max(0) - v.min(0)
    assert extent[0] == pytest.approx(0.15, abs=1e-4)
    assert 0.14 < extent[1] < 0.19 and 0.08 < extent[2] < 0.13
    np.testing.assert_allclose(0.5 * (v.max(0) + v.min(0)), 0.0, atol=1e-6)


def test_topology_and_orientation(base):
    f = base.faces
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    assert len(np.unique(directed, axis=0)) == len(directed)  # consistent orientation
    normals = topology.face_normals(base.vertices, f)
    assert np.mean(normals[:, 2] > 0) > 0.9  # facing the viewer (+z)
    loops = topology.boundary_loops(f)
    assert sorted(len(loop) for loop in loops) == [16, 16, 20, 36]
    mouth = next(set(loop.tolist()) for loop in loops if len(loop) == 20)
    assert mouth == set(MOUTH_UPPER_INNER) | set(MOUTH_LOWER_INNER) | set(MOUTH_CORNERS)


def test_symmetry(base):
    m = base.mirror
    np.testing.assert_array_equal(m[m], np.arange(468))
    np.testing.assert_allclose(base.vertices[m] * [-1, 1, 1], base.vertices, atol=1e-6)


def test_landmarks_in_plausible_places(base):
    lm = base.landmark_positions()
    assert lm.shape == (68, 3)
    eyes_y = lm[36:48, 1].mean()
    assert np.all(lm[3:14, 1] < eyes_y)  # lower jaw contour below the eyes
    assert np.argmin(lm[:, 1]) == 8  # chin is the lowest landmark
    assert np.argmax(lm[:, 2]) == 30  # nose tip is the most forward landmark
    assert lm[30, 2] >= base.vertices[:, 2].max() - 1e-6
    assert np.all(lm[17:27, 1] > lm[36:48, 1].max())  # brows above the eyes
    assert np.all(lm[48:68, 1] < lm[31:36, 1].min())  # mouth below the nostrils
    assert lm[36, 0] < lm[39, 0] < 0 < lm[42, 0] < lm[45, 0]  # subject's right eye at -x
    for right, left in _PAIRS:
        np.testing.assert_allclose(lm[left] * [-1, 1, 1], lm[right], atol=2e-3)
    np.testing.assert_allclose(lm[list(_MIDLINE), 0], 0.0, atol=1e-6)
    # Mouth slit closed (the lips nearly touch) in the neutral template.
    assert 0 < lm[62, 1] - lm[66, 1] < 2e-3
    groups = sorted(i for idx in IBUG68_GROUPS.values() for i in idx)
    assert groups == list(range(68))


@pytest.mark.parametrize("level,count", [(1, 1790), (2, 6990)])
def test_subdivided_levels(base, level, count):
    t = load_face_template(level)
    assert t.vertices.shape == (count, 3) and t.faces.shape[0] == 852 * 4**level
    np.testing.assert_array_equal(t.landmarks.vertex_indices, base.landmarks.vertex_indices)
    assert t.from_base.shape == (count, 468)
    np.testing.assert_allclose(
        t.from_base @ base.vertices.astype(np.float64), t.vertices, atol=1e-6
    )
    # Loop smoothing keeps the landmarks within a few millimetres.
    shift = np.linalg.norm(t.landmark_positions() - base.landmark_positions(), axis=1)
    assert shift.max() < 5e-3
    assert np.ptp(t.vertices[:, 0]) == pytest.approx(0.15, abs=3e-3)
    assert np.mean(t.vertices[t.mirror, 0] + t.vertices[:, 0]) < 1e-4


def test_midpoint_scheme_keeps_base_positions(base):
    t = load_face_template(1, scheme="midpoint")
    np.testing.assert_array_equal(t.vertices[:468], base.vertices)
    with pytest.raises(ValueError):
        load_face_template(-1)
