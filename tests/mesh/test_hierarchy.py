"""Tests for jaxface.mesh.hierarchy: level sizes, sampling invariants, coarse mesh validity."""

import math

import numpy as np
import pytest
import scipy.sparse

from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.hierarchy import (
    MeshHierarchy,
    build_hierarchy,
    closest_points_on_mesh,
    level_reference_vertices,
    spirals_for,
)
from jaxface.mesh.topology import connected_components, edges


@pytest.fixture(scope="module")
def sphere_hierarchy():
    vertices, faces = primitives.icosphere(3)
    return build_hierarchy(vertices, faces, (4, 4, 4))


@pytest.fixture(scope="module")
def cap_hierarchy():
    vertices, faces = primitives.spherical_cap(4, 0.0)
    return build_hierarchy(vertices, faces, (4, 4, 4))


def _up(hierarchy, i, values):
    index, weight = hierarchy.up_indices(i), hierarchy.up_weights(i)
    return (values[index] * weight[..., None]).sum(axis=1)


def test_level_sizes_are_ceil_of_ratio(sphere_hierarchy, cap_hierarchy):
    assert sphere_hierarchy.sizes == (642, 161, 41, 11)
    n = cap_hierarchy.sizes[0]
    expected = [n]
    for _ in range(3):
        expected.append(math.ceil(expected[-1] / 4))
    assert cap_hierarchy.sizes == tuple(expected)
    vertices, faces = primitives.grid_patch(10, 10)
    assert build_hierarchy(vertices, faces, (3, 2.5)).sizes == (100, 34, 14)


@pytest.mark.parametrize("name", ["sphere_hierarchy", "cap_hierarchy"])
def test_down_indices_select_original_positions(name, request):
    hierarchy = request.getfixturevalue(name)
    for i in range(1, hierarchy.num_levels):
        down = hierarchy.down_indices(i)
        assert down.dtype == np.int32
        assert (np.diff(down) > 0).all(), "ascending and unique"
        np.testing.assert_array_equal(hierarchy.vertices(i), hierarchy.vertices(i - 1)[down])
        assert hierarchy.vertices(i).dtype == np.float32


@pytest.mark.parametrize("name", ["sphere_hierarchy", "cap_hierarchy"])
def test_up_sampling_invariants(name, request):
    hierarchy = request.getfixturevalue(name)
    for i in range(1, hierarchy.num_levels):
        index, weight = hierarchy.up_indices(i), hierarchy.up_weights(i)
        assert index.shape == (hierarchy.sizes[i - 1], 3) and index.dtype == np.int32
        assert weight.dtype == np.float32 and (weight >= 0).all()
        assert index.min() >= 0 and index.max() < hierarchy.sizes[i]
        np.testing.assert_allclose(weight.sum(axis=1), 1.0, atol=1e-6)
        down = hierarchy.down_indices(i)
        own = np.arange(down.shape[0])
        np.testing.assert_array_equal(index[down], np.stack([own] * 3, axis=1))
        np.testing.assert_array_equal(weight[down], [[1, 0, 0]] * down.shape[0])
        # A constant field is preserved exactly (up to float32 rounding of the weights).
        ones = np.ones((hierarchy.sizes[i], 2))
        np.testing.assert_allclose(_up(hierarchy, i, ones), 1.0, atol=1e-6)
        # Down then up returns the survivors' values unchanged.
        field = np.random.default_rng(i).standard_normal((hierarchy.sizes[i - 1], 1))
        np.testing.assert_allclose(_up(hierarchy, i, field[down])[down], field[down], atol=1e-6)


def test_smooth_field_survives_down_then_up(cap_hierarchy):
    vertices = cap_hierarchy.vertices(0).astype(np.float64)
    field = np.sin(2.0 * vertices[:, 0]) + vertices[:, 1] ** 2
    spread = field.max() - field.min()
    coarse = field[cap_hierarchy.down_indices(1)]
    back = _up(cap_hierarchy, 1, coarse[:, None])[:, 0]
    assert np.abs(back - field).max() < 0.02 * spread
    assert np.abs(back - field).mean() < 0.004 * spread


def test_up_weights_give_the_closest_surface_point(sphere_hierarchy):
    """Against a brute-force search over densely sampled coarse triangles."""
    level = 2
    fine = sphere_hierarchy.vertices(level - 1).astype(np.float64)
    coarse = sphere_hierarchy.vertices(level).astype(np.float64)
    faces = sphere_hierarchy.faces(level)
    found = _up(sphere_hierarchy, level, coarse)
    ours = np.linalg.norm(found - fine, axis=1)
    steps = 24
    a, b = np.meshgrid(np.arange(steps + 1), np.arange(steps + 1), indexing="ij")
    keep = a + b <= steps
    bary = np.stack([a[keep], b[keep], steps - a[keep] - b[keep]], axis=1) / steps
    samples = np.einsum("sk,fkd->fsd", bary, coarse[faces]).reshape(-1, 3)
    brute = np.linalg.norm(fine[:, None, :] - samples[None], axis=2).min(axis=1)
    longest = np.linalg.norm(coarse[edges(faces)[:, 0]] - coarse[edges(faces)[:, 1]], axis=1).max()
    assert (ours <= brute + 1e-6).all()
    assert (ours >= brute - longest / steps).all()


def test_closest_points_on_a_single_triangle_hand_checked():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float64)
    faces = np.array([[0, 1, 2]])
    points = np.array([
        [0.25, 0.25, 1.0],   # above the face
        [2.0, -1.0, 0.0],    # beyond corner 1
        [0.5, -1.0, 0.5],    # beside edge 0-1
        [1.0, 1.0, 0.0],     # beside the hypotenuse
    ])
    face, bary, dist2 = closest_points_on_mesh(points, vertices, faces)
    np.testing.assert_array_equal(face, [0, 0, 0, 0])
    np.testing.assert_allclose(bary, [[0.5, 0.25, 0.25], [0, 1, 0], [0.5, 0.5, 0], [0, 0.5, 0.5]],
                               atol=1e-12)
    np.testing.assert_allclose(dist2, [1.0, 2.0, 1.25, 0.5], atol=1e-12)


@pytest.mark.parametrize("name, euler", [("sphere_hierarchy", 2), ("cap_hierarchy", 1)])
def test_coarse_meshes_are_valid(name, euler, request):
    hierarchy = request.getfixturevalue(name)
    for level in hierarchy.levels:
        faces = level.faces.astype(np.int64)
        directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        undirected = np.sort(directed, axis=1)
        _, per_edge = np.unique(undirected, axis=0, return_counts=True)
        assert per_edge.max() <= 2, "manifold edges"
        assert np.unique(directed, axis=0).shape[0] == directed.shape[0], "consistent winding"
        assert np.unique(faces).shape[0] == level.num_vertices, "every vertex in a face"
        assert level.num_vertices - per_edge.shape[0] + faces.shape[0] == euler
        v = level.vertices.astype(np.float64)
        normal = np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])
        assert (np.einsum("ij,ij->i", normal, v[faces].mean(axis=1)) > 0).all(), "no flips"


def test_flat_grid_is_reproduced_exactly():
    vertices, faces = primitives.grid_patch(12, 12)
    hierarchy = build_hierarchy(vertices, faces, (4, 4))
    for i in (1, 2):
        fine = hierarchy.vertices(i - 1).astype(np.float64)
        back = _up(hierarchy, i, hierarchy.vertices(i).astype(np.float64))
        np.testing.assert_allclose(back, fine, atol=1e-6)  # the border keeps its shape
        v = hierarchy.vertices(i)
        f = hierarchy.faces(i)
        normal_z = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])[:, 2]
        assert (normal_z > 0).all()


def test_components_are_kept():
    vertices, faces = primitives.two_components()
    hierarchy = build_hierarchy(vertices, faces, (2,))
    assert hierarchy.sizes == (15, 8)
    count, labels = connected_components(hierarchy.faces(1), 8)
    assert count == 2
    survivors = hierarchy.down_indices(1)
    assert set(labels[survivors < 6].tolist()).isdisjoint(labels[survivors >= 6].tolist())


def test_too_small_targets_raise():
    vertices, faces = primitives.tetrahedron()
    with pytest.raises(MeshError, match="cannot keep only 2 vertices"):
        build_hierarchy(vertices, faces, (2,))
    with pytest.raises(ValueError, match="factors"):
        build_hierarchy(vertices, faces, (0.5,))
    with pytest.raises(ValueError, match="method"):
        build_hierarchy(vertices, faces, (1,), method="meshlab")


def test_transforms_match_gathers(cap_hierarchy):
    values = np.random.default_rng(0).standard_normal((cap_hierarchy.sizes[0], 3))
    rows, cols, vals = cap_hierarchy.down_transform(1)
    down = scipy.sparse.coo_array((vals, (rows, cols)),
                                  shape=(cap_hierarchy.sizes[1], cap_hierarchy.sizes[0]))
    np.testing.assert_allclose(down @ values, values[cap_hierarchy.down_indices(1)])
    coarse = values[cap_hierarchy.down_indices(1)]
    rows, cols, vals = cap_hierarchy.up_transform(1)
    up = scipy.sparse.coo_array((vals, (rows, cols)),
                                shape=(cap_hierarchy.sizes[0], cap_hierarchy.sizes[1]))
    np.testing.assert_allclose(up @ coarse, _up(cap_hierarchy, 1, coarse), atol=1e-6)


def test_arrays_round_trip(cap_hierarchy):
    restored = MeshHierarchy.from_arrays(cap_hierarchy.to_arrays())
    assert restored.sizes == cap_hierarchy.sizes
    assert restored.factors == cap_hierarchy.factors
    for a, b in zip(restored.levels, cap_hierarchy.levels, strict=True):
        np.testing.assert_array_equal(a.vertices, b.vertices)
        np.testing.assert_array_equal(a.faces, b.faces)
    assert restored.levels[0].down_indices is None
    np.testing.assert_array_equal(restored.up_weights(2), cap_hierarchy.up_weights(2))
    with pytest.raises(IndexError):
        cap_hierarchy.down_indices(0)


def test_spirals_for_every_level(cap_hierarchy):
    references = [5]
    per_level = level_reference_vertices(cap_hierarchy, references)
    position = cap_hierarchy.vertices(0)[5]
    for i, refs in enumerate(per_level):
        distances = np.linalg.norm(cap_hierarchy.vertices(i) - position, axis=1)
        assert refs.tolist() == [int(np.argmin(distances))]
    tables = spirals_for(cap_hierarchy, lengths=[12, None, 7, 5], rings=[2, 2, 1, 1],
                         dilations=[2, 1, 1, 1], reference_vertices=references)
    assert [t.shape[0] for t in tables] == list(cap_hierarchy.sizes)
    assert tables[0].shape[1] == 12 and tables[2].shape[1] == 7 and tables[3].shape[1] == 5
    for i, table in enumerate(tables):
        np.testing.assert_array_equal(table[:, 0], np.arange(cap_hierarchy.sizes[i]))
        assert table.max() <= cap_hierarchy.sizes[i]
    with pytest.raises(ValueError, match="one entry per level"):
        spirals_for(cap_hierarchy, lengths=[9, 9])


def test_undecimatable_mesh_raises():
    # Two tetrahedra sharing vertex 0: every collapse would duplicate a face.
    vertices, faces = primitives.tetrahedron()
    mirrored = 2 * vertices[0] - vertices[1:]
    vertices = np.concatenate([vertices, mirrored])
    faces = np.concatenate([faces, np.where(faces == 0, 0, faces + 3)])
    with pytest.raises(MeshError, match="cannot decimate below 7 vertices"):
        build_hierarchy(vertices, faces, (7 / 5,))
