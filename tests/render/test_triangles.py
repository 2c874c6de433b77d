"""Tests for jaxface.render.triangles (the official masking's front-facing rule and areas)."""

import numpy as np

from jaxface.mesh import icosphere
from jaxface.render.camera import project_orthographic
from jaxface.render.triangles import (
    FRONT_FACING_THRESHOLD,
    face_normals_screen,
    front_facing,
    projected_area,
)
from tests.render import reference


def _sphere(rng):
    v, f = icosphere(2)
    v = (v * rng.uniform(0.99, 1.01, (len(v), 1))).astype(np.float32)  # a slightly bumpy sphere
    cam = np.array([[0.4, 0.1, -0.2]], np.float32)
    return v, f, np.asarray(project_orthographic(v[None], cam))


def test_front_facing_follows_the_official_rule(rng):
    v, f, screen = _sphere(rng)
    # The official masking: vertex normals of (X, -Y, -Z), mean z per triangle, < 0.05.
    official = reference.project(v, (0.4, 0.1, -0.2)) - [0, 0, 10]
    mean_z = reference.vertex_normals(official, f)[f][:, :, 2].mean(1)
    np.testing.assert_allclose(np.asarray(face_normals_screen(screen, f))[0, :, 2], mean_z,
                               atol=1e-5)
    clear = np.abs(mean_z - FRONT_FACING_THRESHOLD) > 1e-4
    got = np.asarray(front_facing(screen, f))[0]
    np.testing.assert_array_equal(got[clear], (mean_z < FRONT_FACING_THRESHOLD)[clear])
    # Seen from +z: the triangles whose world normal points at the viewer are front-facing.
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    world_z = n[:, 2] / np.linalg.norm(n, axis=1)
    assert np.all(got[world_z > 0.2]) and not np.any(got[world_z < -0.2])


def test_projected_area_is_the_xy_shoelace_area(rng):
    v, f, screen = _sphere(rng)
    p = screen[0, :, :2].astype(np.float64)
    x1, y1, x2, y2, x3, y3 = (p[f][:, k, c] for k in range(3) for c in range(2))
    want = 0.5 * np.abs(x1 * y2 + x2 * y3 + x3 * y1 - x2 * y1 - x3 * y2 - x1 * y3)
    np.testing.assert_allclose(np.asarray(projected_area(screen, f))[0], want, rtol=1e-4,
                               atol=1e-7)
    # Orthographic: the front and back halves of a closed surface project to the same area.
    front = np.asarray(front_facing(screen, f))[0]
    area = np.asarray(projected_area(screen, f))[0]
    assert abs(area[front].sum() - area[~front].sum()) < 0.05 * area.sum()
