"""Tests for jaxface.mesh.topology against hand-computed values and dense numpy loops."""

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import (
    boundary_loops,
    connected_components,
    cotangent_laplacian,
    edges,
    face_normals,
    validate_faces,
    validate_vertices,
    vertex_adjacency,
    vertex_normals,
)

QUAD_FACES = np.array([[0, 1, 2], [0, 2, 3]])


def _annulus():
    """A 4x4 grid without its centre cell: an outer loop of 12 and a hole of 4."""
    vertices, faces = primitives.grid_patch(4, 4)
    centre_cell = {5, 6, 9, 10}
    keep = [not set(face.tolist()) <= centre_cell for face in faces]
    return vertices, faces[np.asarray(keep)]


def test_edges_of_a_quad():
    expected = [[0, 1], [0, 2], [0, 3], [1, 2], [2, 3]]
    result = edges(QUAD_FACES)
    assert result.dtype == np.int32
    np.testing.assert_array_equal(result, expected)


def test_vertex_adjacency_matches_dense_loop():
    vertices, faces = primitives.two_components()
    n = vertices.shape[0] + 1  # one extra isolated vertex
    dense = np.zeros((n, n))
    for face in faces:
        for a in face:
            for b in face:
                if a != b:
                    dense[a, b] = 1.0
    matrix = vertex_adjacency(faces, n)
    np.testing.assert_array_equal(matrix.toarray(), dense)
    assert matrix.shape == (n, n)


def test_connected_components_counts_isolated_vertices():
    vertices, faces = primitives.two_components()
    count, labels = connected_components(faces, vertices.shape[0] + 1)
    assert count == 3
    np.testing.assert_array_equal(labels, [0] * 6 + [1] * 9 + [2])
    assert labels.dtype == np.int32


def test_boundary_loop_of_a_quad_follows_the_winding():
    loops = boundary_loops(QUAD_FACES)
    assert len(loops) == 1
    np.testing.assert_array_equal(loops[0], [0, 1, 2, 3])


def test_boundary_loop_of_a_grid_is_counter_clockwise():
    _, faces = primitives.grid_patch(3, 3)
    loops = boundary_loops(faces)
    # 6 7 8 / 3 4 5 / 0 1 2: counter-clockwise seen from +z.
    np.testing.assert_array_equal(loops[0], [0, 1, 2, 5, 8, 7, 6, 3])


def test_boundary_loops_of_an_annulus_longest_first():
    _, faces = _annulus()
    loops = boundary_loops(faces)
    assert [loop.shape[0] for loop in loops] == [12, 4]
    np.testing.assert_array_equal(loops[0], [0, 1, 2, 3, 7, 11, 15, 14, 13, 12, 8, 4])
    # The hole runs the other way round (clockwise seen from +z).
    np.testing.assert_array_equal(loops[1], [5, 9, 10, 6])


def test_closed_mesh_has_no_boundary():
    _, faces = primitives.icosphere(1)
    assert boundary_loops(faces) == []


def _dense_cotangent_laplacian(vertices, faces):
    n = vertices.shape[0]
    laplacian = np.zeros((n, n))
    for face in faces:
        for corner in range(3):
            i, j, k = face[corner], face[(corner + 1) % 3], face[(corner + 2) % 3]
            u, w = vertices[j] - vertices[i], vertices[k] - vertices[i]
            angle = np.arccos(np.dot(u, w) / (np.linalg.norm(u) * np.linalg.norm(w)))
            cot = 1.0 / np.tan(angle)
            laplacian[j, k] -= 0.5 * cot
            laplacian[k, j] -= 0.5 * cot
            laplacian[j, j] += 0.5 * cot
            laplacian[k, k] += 0.5 * cot
    return laplacian


def test_cotangent_laplacian_matches_dense_loop(rng):
    vertices, faces = primitives.icosphere(1)
    vertices = vertices.astype(np.float64) + 0.05 * rng.standard_normal(vertices.shape)
    result = cotangent_laplacian(vertices, faces).toarray()
    np.testing.assert_allclose(result, _dense_cotangent_laplacian(vertices, faces), atol=1e-12)
    np.testing.assert_allclose(result.sum(axis=1), 0.0, atol=1e-12)
    np.testing.assert_allclose(result, result.T, atol=1e-12)


def test_cotangent_laplacian_annihilates_linear_functions_on_a_plane(rng):
    vertices, faces = primitives.grid_patch(5, 6)
    vertices = vertices.astype(np.float64)
    vertices[:, :2] += 0.03 * rng.standard_normal((vertices.shape[0], 2))
    laplacian = cotangent_laplacian(vertices, faces)
    interior = np.setdiff1d(np.arange(vertices.shape[0]), boundary_loops(faces)[0])
    field = 2.0 * vertices[:, 0] - 3.0 * vertices[:, 1] + 1.0
    np.testing.assert_allclose((laplacian @ field)[interior], 0.0, atol=1e-12)


def test_cotangent_weights_of_a_right_triangle_pair():
    # Unit square split by the diagonal 0-2: both angles opposite the diagonal are 90
    # degrees (cot 0); each side is opposite a 45-degree angle (cot 1, half is 0.5).
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float64)
    result = cotangent_laplacian(vertices, QUAD_FACES).toarray()
    expected = np.array([
        [1.0, -0.5, 0.0, -0.5],
        [-0.5, 1.0, -0.5, 0.0],
        [0.0, -0.5, 1.0, -0.5],
        [-0.5, 0.0, -0.5, 1.0],
    ])
    np.testing.assert_allclose(result, expected, atol=1e-12)


def test_face_normals_of_a_grid_point_up():
    vertices, faces = primitives.grid_patch(3, 4)
    np.testing.assert_allclose(face_normals(vertices, faces), [[0, 0, 1]] * faces.shape[0])
    cross = face_normals(vertices, faces, normalize=False)
    area = 0.5 * (1 / 3) * (1 / 2)
    np.testing.assert_allclose(np.linalg.norm(cross, axis=1), 2 * area, rtol=1e-6)


def test_vertex_normals_area_weighted():
    # Vertex 0 of a tetrahedron: the normalised sum of its three (equal-area) faces.
    vertices, faces = primitives.tetrahedron()
    vertices = vertices.astype(np.float64)
    normals = vertex_normals(vertices, faces)
    np.testing.assert_allclose(normals, vertices / np.linalg.norm(vertices, axis=1)[:, None],
                               atol=1e-12)
    # Unequal areas: a fan of one big and one small triangle in different planes.
    fan = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [0, 0, 1]], np.float64)
    fan_faces = np.array([[0, 1, 2], [0, 3, 1]])
    expected = np.array([0, 0, 4.0]) + np.array([0, 2.0, 0])  # cross products
    np.testing.assert_allclose(vertex_normals(fan, fan_faces)[0],
                               expected / np.linalg.norm(expected))


def test_vertex_normals_of_isolated_vertex_are_zero():
    vertices, faces = primitives.icosphere(1)
    vertices = np.concatenate([vertices, [[5.0, 5.0, 5.0]]]).astype(np.float32)
    normals = vertex_normals(vertices, faces)
    assert normals.dtype == np.float32
    np.testing.assert_array_equal(normals[-1], 0.0)
    np.testing.assert_allclose(np.einsum("ij,ij->i", normals[:-1], vertices[:-1]), 1.0,
                               atol=0.02)


def test_validate_faces_errors_name_the_field():
    with pytest.raises(MeshError, match=r"faces: expected vertex indices in \[0, 3\)"):
        validate_faces([[0, 1, 3]], 3, source="x.ply")
    with pytest.raises(MeshError, match="x.ply: faces: expected three distinct"):
        validate_faces([[0, 1, 1]], 3, source="x.ply")
    with pytest.raises(MeshError, match="shape"):
        validate_faces([[0, 1, 2, 3]], 4)


def test_validate_vertices_rejects_non_finite():
    with pytest.raises(MeshError, match="vertices: expected finite"):
        validate_vertices([[0, 0, 0], [np.inf, 0, 0]])
    with pytest.raises(MeshError, match="shape"):
        validate_vertices(np.zeros((3, 2)))
