"""Tests for jaxface.mesh.primitives: sizes, winding and topology of the test meshes."""

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.topology import boundary_loops, connected_components, edges


def _signed_volume(vertices, faces):
    v = vertices.astype(np.float64)
    return np.einsum("ij,ij->i", v[faces[:, 0]], np.cross(v[faces[:, 1]], v[faces[:, 2]])).sum() / 6


def _euler(vertices, faces):
    return vertices.shape[0] - edges(faces).shape[0] + faces.shape[0]


@pytest.mark.parametrize("subdivisions", [0, 1, 3])
def test_icosphere(subdivisions):
    vertices, faces = primitives.icosphere(subdivisions)
    assert vertices.shape == (10 * 4 ** subdivisions + 2, 3) and vertices.dtype == np.float32
    assert faces.shape == (20 * 4 ** subdivisions, 3) and faces.dtype == np.int32
    np.testing.assert_allclose(np.linalg.norm(vertices, axis=1), 1.0, atol=1e-6)
    assert _euler(vertices, faces) == 2
    v = vertices.astype(np.float64)
    normal = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
    assert (np.einsum("ij,ij->i", normal, v[faces].mean(axis=1)) > 0).all()


@pytest.mark.parametrize("factory, volume", [
    (primitives.tetrahedron, 8 / (3 * 3 ** 1.5)),  # edge sqrt(8/3): V = a^3 / (6 sqrt 2)
    (primitives.octahedron, 4 / 3),
])
def test_closed_solids_are_outward(factory, volume):
    vertices, faces = factory()
    assert _signed_volume(vertices, faces) == pytest.approx(volume, rel=1e-6)
    assert boundary_loops(faces) == []


def test_grid_patch_layout():
    vertices, faces = primitives.grid_patch(3, 4)
    np.testing.assert_allclose(vertices[5], [1 / 3, 0.5, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(faces[:2], [[0, 1, 5], [0, 5, 4]])
    assert faces.shape == (12, 3)
    assert _euler(vertices, faces) == 1
    assert boundary_loops(faces)[0].shape[0] == 10


def test_spherical_cap_is_a_disc():
    vertices, faces = primitives.spherical_cap(3, 0.0)
    assert (vertices[:, 2] >= 0).all()
    assert _euler(vertices, faces) == 1
    assert len(boundary_loops(faces)) == 1
    assert np.unique(faces).shape[0] == vertices.shape[0]


def test_two_components():
    vertices, faces = primitives.two_components()
    count, labels = connected_components(faces, vertices.shape[0])
    assert count == 2
    np.testing.assert_array_equal(labels, [0] * 6 + [1] * 9)
    assert [loop.shape[0] for loop in boundary_loops(faces)] == [8]
