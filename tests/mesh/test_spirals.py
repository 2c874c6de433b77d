"""Tests for jaxface.mesh.spirals on hand-checked tiny meshes plus property checks."""

import numpy as np
import pytest
import scipy.sparse.csgraph

from jaxface.mesh import primitives
from jaxface.mesh.spirals import (
    default_reference_vertices,
    nearest_vertices,
    neural3dmm_length,
    ordered_one_rings,
    raw_spirals,
    spiral_indices,
    spiral_start_vertices,
)
from jaxface.mesh.topology import vertex_adjacency

# Grid layouts used below (vertex indices, +y up):
#   3x3:  6 7 8        4x4: 12 13 14 15
#         3 4 5              8  9 10 11
#         0 1 2              4  5  6  7
#                            0  1  2  3


def _hops(faces, n):
    return scipy.sparse.csgraph.shortest_path(vertex_adjacency(faces, n), unweighted=True)


def test_ordered_one_ring_of_grid_centre_is_counter_clockwise():
    _, faces = primitives.grid_patch(3, 3)
    rings = ordered_one_rings(faces, 9)
    neighbours, breaks = rings.ring(4)
    # SW, S, E, NE, N, W: increasing angle, closed ring starting at the lowest index.
    np.testing.assert_array_equal(neighbours, [0, 1, 5, 8, 7, 3])
    assert not breaks.any()


def test_ordered_one_ring_of_grid_corner_has_one_break():
    _, faces = primitives.grid_patch(3, 3)
    rings = ordered_one_rings(faces, 9)
    neighbours, breaks = rings.ring(0)
    np.testing.assert_array_equal(neighbours, [1, 4, 3])
    np.testing.assert_array_equal(breaks, [False, False, True])
    np.testing.assert_array_equal(rings.is_open(), [True] * 4 + [False] + [True] * 4)


def test_tetrahedron_spirals_hand_checked():
    vertices, faces = primitives.tetrahedron()
    table = spiral_indices(faces, 4, length=4, rings=1, vertices=vertices)
    # Reference: all vertices are equidistant from the centroid, so vertex 0. Vertex 0
    # starts at its closest neighbour (all tie, lowest index 1); the others start at 0.
    # Ring order follows the winding: around 1 the faces give 0 -> 3 -> 2.
    np.testing.assert_array_equal(table, [[0, 1, 2, 3], [1, 0, 3, 2], [2, 0, 1, 3], [3, 0, 2, 1]])


def test_grid_spirals_hand_checked():
    vertices, faces = primitives.grid_patch(4, 4)
    pad = 16
    raw = raw_spirals(faces, 16, rings=2, vertices=vertices)
    # Reference: vertex 5 (first of the four vertices nearest the centroid).
    # Interior reference vertex 5 starts at its closest neighbour 1 (ties: lowest index)
    # and its second ring starts at 2, closing the triangle (1, 2, 6) (edge 0-1 is on
    # the boundary).
    assert raw[5].tolist() == [5, 1, 6, 10, 9, 4, 0, 2, 7, 11, 15, 14, 13, 8]
    # Corner 0 starts towards 5; its one-ring 1, 5, 4 is cut by the boundary between 4
    # and 1, and so is its second ring (between 8 and 2).
    assert raw[0].tolist() == [0, 5, 4, pad, 1, 6, 10, 9, 8, pad, 2]
    # Vertex 6 starts at 5; its second ring is cut twice (bottom and right borders).
    assert raw[6].tolist() == [6, 5, 1, 2, 7, 11, 10, 9, 4, 0, pad, 3, pad, 15, 14]


def test_two_components_hand_checked_and_separate():
    vertices, faces = primitives.two_components()
    n = vertices.shape[0]
    table = spiral_indices(faces, n, length=8, rings=2, vertices=vertices)
    # Octahedron vertex 4 (+z): reference of the octahedron is vertex 0 (+x, first of
    # six equidistant), so ring 1 starts at 0 and runs 0 -> 2 -> 1 -> 3; ring 2 is -z.
    np.testing.assert_array_equal(table[4], [4, 0, 2, 1, 3, 5, n, n])
    # Grid vertex 10 (3x3 grid corner shifted by 6): reference is the grid centre 10.
    assert table[10, 0] == 10
    octahedron = set(range(6))
    for v in range(n):
        members = set(table[v][table[v] < n].tolist())
        assert members <= octahedron if v < 6 else not members & octahedron


def test_spiral_properties_on_a_cap():
    vertices, faces = primitives.spherical_cap(3, 0.2)
    n = vertices.shape[0]
    hops = _hops(faces, n)
    raw = raw_spirals(faces, n, rings=3, vertices=vertices)
    table = spiral_indices(faces, n, length=40, rings=3, vertices=vertices)
    assert table.dtype == np.int32 and table.shape == (n, 40)
    assert table.min() >= 0 and table.max() <= n
    np.testing.assert_array_equal(table[:, 0], np.arange(n))
    for v in range(n):
        members = raw[v][raw[v] < n]
        assert len(set(members.tolist())) == members.shape[0]
        distance = hops[v, members]
        assert (np.diff(distance) >= 0).all(), "rings must come in order"
        np.testing.assert_array_equal(np.sort(members), np.flatnonzero(hops[v] <= 3))
        padded = table[v]
        kept = min(raw[v].shape[0], 40)
        np.testing.assert_array_equal(padded[:kept], raw[v][:kept])
        assert (padded[kept:] == n).all()


def test_first_ring_follows_the_winding_on_interior_vertices():
    vertices, faces = primitives.spherical_cap(3, 0.0)
    n = vertices.shape[0]
    oriented = {tuple(np.roll(face, -k)) for face in faces.tolist() for k in range(3)}
    rings = ordered_one_rings(faces, n)
    interior = ~rings.is_open()
    table = spiral_indices(faces, n, length=7, rings=1, vertices=vertices)
    for v in np.flatnonzero(interior):
        ring = table[v, 1:][table[v, 1:] < n]
        for a, b in zip(ring, np.roll(ring, -1), strict=True):
            assert (v, a, b) in oriented


def test_ring_one_starts_towards_the_reference():
    vertices, faces = primitives.spherical_cap(3, 0.0)
    n = vertices.shape[0]
    reference = 17
    graph = vertex_adjacency(faces, n).tocoo()
    lengths = np.linalg.norm(vertices[graph.row] - vertices[graph.col], axis=1)
    weighted = graph.copy()
    weighted.data = lengths.astype(np.float64)
    distance = scipy.sparse.csgraph.dijkstra(weighted.tocsr(), indices=reference)
    starts = spiral_start_vertices(faces, n, reference_vertices=[reference], vertices=vertices)
    for v in range(n):
        if v == reference:
            neighbours = graph.col[graph.row == v]
            own = np.linalg.norm(vertices[neighbours] - vertices[v], axis=1)
            assert starts[v] == neighbours[np.argmin(own)]
            continue
        step = np.linalg.norm(vertices[starts[v]] - vertices[v])
        assert distance[starts[v]] + step == pytest.approx(distance[v], rel=1e-6)


def test_default_reference_vertices_per_component():
    vertices, faces = primitives.two_components()
    # Octahedron: all six vertices tie, so index 0; the grid's centre is vertex 6 + 4.
    np.testing.assert_array_equal(default_reference_vertices(faces, 15, vertices), [0, 10])
    np.testing.assert_array_equal(default_reference_vertices(faces, 15), [0, 6])


def test_dilation_keeps_centre_then_every_kth():
    vertices, faces = primitives.icosphere(2)
    n = vertices.shape[0]
    plain = raw_spirals(faces, n, rings=2, vertices=vertices)
    dilated = raw_spirals(faces, n, rings=2, dilation=2, vertices=vertices)
    for a, b in zip(plain, dilated, strict=True):
        np.testing.assert_array_equal(b, np.concatenate([a[:1], a[1::2]]))


def test_neural3dmm_length_hand_computed():
    # mean 3.5, population std sqrt(0.75) = 0.866 -> int(5.23) = 5
    assert neural3dmm_length([3, 3, 3, 5]) == 5
    assert neural3dmm_length([7, 7, 7]) == 7


def test_data_driven_length():
    vertices, faces = primitives.spherical_cap(3, 0.3)
    n = vertices.shape[0]
    raw = raw_spirals(faces, n, rings=2, dilation=2, vertices=vertices)
    table = spiral_indices(faces, n, length=None, rings=2, dilation=2, vertices=vertices)
    assert table.shape[1] == neural3dmm_length([r.shape[0] for r in raw])


def test_spiralnet_order_fixed_length_without_padding():
    vertices, faces = primitives.icosphere(2)
    n = vertices.shape[0]
    hops = _hops(faces, n)
    table = spiral_indices(faces, n, length=9, order="spiralnet", vertices=vertices)
    neural = spiral_indices(faces, n, length=30, rings=2, vertices=vertices)
    assert table.shape == (n, 9) and (table < n).all()
    # Same walk as the Neural3DMM order (closed mesh: no cut markers), truncated.
    np.testing.assert_array_equal(table, neural[:, :9])
    for v in range(n):
        assert (np.diff(hops[v, table[v]]) >= 0).all()
    dilated = spiral_indices(faces, n, length=5, dilation=2, order="spiralnet", vertices=vertices)
    np.testing.assert_array_equal(dilated, neural[:, :10:2])


def test_spiralnet_fills_exhausted_components():
    vertices, faces = primitives.two_components()
    n = vertices.shape[0]
    table = spiral_indices(faces, n, length=8, order="spiralnet", vertices=vertices)
    # The octahedron has 6 vertices: vertex 4 = (0, 0, 1) walks 4, 0, 2, 1, 3, 5, then
    # takes the two nearest grid vertices: (3, 0, 0) at squared distance 10 (vertex 6)
    # and (3, 0.5, 0) at 10.25 (vertex 9).
    np.testing.assert_array_equal(table[4], [4, 0, 2, 1, 3, 5, 6, 9])
    padded = spiral_indices(faces, n, length=8, order="spiralnet")
    assert (padded[4, 6:] == n).all()


def test_nearest_vertices():
    vertices, _ = primitives.grid_patch(3, 3)
    points = np.array([[0.1, 0.1, 0.0], [0.9, 0.6, 0.0]])
    np.testing.assert_array_equal(nearest_vertices(points, vertices), [0, 5])


def test_invalid_arguments():
    vertices, faces = primitives.tetrahedron()
    with pytest.raises(ValueError, match="order"):
        spiral_indices(faces, 4, length=4, order="openmesh")
    with pytest.raises(ValueError, match="rings"):
        spiral_indices(faces, 4, length=4, rings=2, order="spiralnet")
    with pytest.raises(ValueError, match="explicit length"):
        spiral_indices(faces, 4, length=None, order="spiralnet")
    with pytest.raises(ValueError, match="dilation"):
        spiral_indices(faces, 4, length=4, dilation=0)


def test_isolated_vertex_gets_only_itself():
    vertices, faces = primitives.tetrahedron()
    vertices = np.concatenate([vertices, [[3.0, 3.0, 3.0]]])
    table = spiral_indices(faces, 5, length=4, rings=1, vertices=vertices)
    np.testing.assert_array_equal(table[4], [4, 5, 5, 5])
