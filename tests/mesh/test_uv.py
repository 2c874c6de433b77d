"""Tests for jaxface.mesh.uv: harmonic maps and geometry-image rasterisation."""

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import boundary_loops
from jaxface.mesh.uv import harmonic_uv, rasterize_uv


def _signed_areas(uv, faces):
    a, b, c = uv[faces[:, 0]], uv[faces[:, 1]], uv[faces[:, 2]]
    ab, ac = b - a, c - a
    return 0.5 * (ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0])


def _pixel_centres(height, width):
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return np.stack([(cols + 0.5) / width, (rows + 0.5) / height], axis=-1)


def test_single_triangle_hand_checked():
    uv = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    image_map = rasterize_uv(uv, [[0, 1, 2]], 2, 2)
    # Centres (0.25, 0.25), (0.75, 0.25) / (0.25, 0.75), (0.75, 0.75); row 0 is v = 0.25.
    np.testing.assert_array_equal(image_map.mask, [[True, True], [True, False]])
    np.testing.assert_allclose(image_map.barycentric[0, 0], [0.5, 0.25, 0.25])
    np.testing.assert_allclose(image_map.barycentric[0, 1], [0.0, 0.75, 0.25])
    np.testing.assert_allclose(image_map.barycentric[1, 0], [0.0, 0.25, 0.75])
    np.testing.assert_array_equal(image_map.vertex_indices[0, 0], [0, 1, 2])
    # Uncovered pixel: index 0, zero weights.
    np.testing.assert_array_equal(image_map.vertex_indices[1, 1], [0, 0, 0])
    np.testing.assert_array_equal(image_map.barycentric[1, 1], [0, 0, 0])
    assert image_map.vertex_indices.dtype == np.int32
    assert image_map.barycentric.dtype == np.float32


def test_flat_mesh_maps_to_pixel_centres():
    vertices, faces = primitives.grid_patch(6, 5)
    uv = vertices[:, :2].astype(np.float64)
    height, width = 13, 17
    image_map = rasterize_uv(uv, faces, height, width)
    assert image_map.shape == (height, width)
    assert image_map.mask.all()
    np.testing.assert_allclose(image_map.barycentric.sum(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(image_map.interpolate(uv), _pixel_centres(height, width), atol=1e-6)
    # Batched values interpolate per batch element.
    batch = np.stack([uv, 2 * uv])
    np.testing.assert_allclose(image_map.interpolate(batch)[1],
                               2 * _pixel_centres(height, width), atol=1e-6)


def test_harmonic_uv_of_a_grid_is_the_grid():
    # Boundary: arc length on the unit square puts every border vertex at its own (x, y);
    # interior: a planar cotangent Laplacian is exact for linear functions.
    vertices, faces = primitives.grid_patch(5, 7)
    uv = harmonic_uv(vertices, faces)
    np.testing.assert_allclose(uv, vertices[:, :2], atol=1e-6)


def test_harmonic_uv_of_a_disc_has_no_flips_and_fills_the_square():
    vertices, faces = primitives.spherical_cap(3, 0.3)
    uv = harmonic_uv(vertices, faces)
    assert np.isfinite(uv).all() and uv.min() >= 0.0 and uv.max() <= 1.0
    assert (_signed_areas(uv, faces) > 0).all()
    np.testing.assert_allclose(_signed_areas(uv, faces).sum(), 1.0, atol=1e-9)
    loop = boundary_loops(faces)[0]
    on_border = np.isclose(uv[loop], 0.0).any(axis=1) | np.isclose(uv[loop], 1.0).any(axis=1)
    assert on_border.all()
    for corner in ([0, 0], [1, 0], [1, 1], [0, 1]):
        assert np.isclose(uv[loop], corner).all(axis=1).sum() == 1
    np.testing.assert_array_equal(uv[loop[0]], [0.0, 0.0])
    image_map = rasterize_uv(uv, faces, 64, 64)
    assert image_map.mask.mean() > 0.999
    centres = image_map.interpolate(uv)
    np.testing.assert_allclose(centres[image_map.mask], _pixel_centres(64, 64)[image_map.mask],
                               atol=1e-6)


def test_corner_vertex_choice():
    vertices, faces = primitives.grid_patch(4, 4)
    uv = harmonic_uv(vertices, faces, corner_vertex=3)
    np.testing.assert_allclose(uv[3], [0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(uv[15], [1.0, 0.0], atol=1e-12)
    with pytest.raises(MeshError, match="corner_vertex 5 is not on the outer boundary"):
        harmonic_uv(vertices, faces, corner_vertex=5)


def test_holes_are_free_boundaries():
    vertices, faces = primitives.grid_patch(6, 6)
    hole = {14, 15, 20, 21}
    faces = faces[[not set(face.tolist()) <= hole for face in faces]]
    uv = harmonic_uv(vertices, faces)
    assert np.isfinite(uv).all()
    assert (_signed_areas(uv, faces) > 0).all()
    inner = np.asarray(sorted(hole))
    assert ((uv[inner] > 0.05) & (uv[inner] < 0.95)).all()


def test_errors_and_other_components():
    sphere_vertices, sphere_faces = primitives.icosphere(1)
    with pytest.raises(MeshError, match="the mesh is closed"):
        harmonic_uv(sphere_vertices, sphere_faces)
    vertices, faces = primitives.two_components()
    with pytest.raises(MeshError, match="6 vertices lie in other components"):
        harmonic_uv(vertices, faces)
    uv = harmonic_uv(vertices, faces, allow_other_components=True)
    assert np.isnan(uv[:6]).all() and np.isfinite(uv[6:]).all()
    image_map = rasterize_uv(uv, faces, 8, 8)
    assert image_map.mask.all()
    assert (image_map.vertex_indices[image_map.mask] >= 6).all()
