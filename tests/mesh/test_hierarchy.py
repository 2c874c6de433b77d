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


@pytest.fixture(scope="module")
def surface_sphere_hierarchy():
    vertices, faces = primitives.icosphere(3)
    return build_hierarchy(vertices, faces, (4, 4, 4), method="surface_distance")


@pytest.fixture(scope="module")
def surface_cap_hierarchy():
    vertices, faces = primitives.spherical_cap(4, 0.0)
    return build_hierarchy(vertices, faces, (4, 4, 4), method="surface_distance")


ALL = ["sphere_hierarchy", "cap_hierarchy", "surface_sphere_hierarchy", "surface_cap_hierarchy"]


def _up(hierarchy, i, values):
    index, weight = hierarchy.up_indices(i), hierarchy.up_weights(i)
    return (values[index] * weight[..., None]).sum(axis=1)


def test_level_sizes_are_ceil_of_ratio(sphere_hierarchy, cap_hierarchy, surface_sphere_hierarchy,
                                      surface_cap_hierarchy):
    assert sphere_hierarchy.sizes == surface_sphere_hierarchy.sizes == (642, 161, 41, 11)
    assert surface_cap_hierarchy.sizes == cap_hierarchy.sizes
    n = cap_hierarchy.sizes[0]
    expected = [n]
    for _ in range(3):
        expected.append(math.ceil(expected[-1] / 4))
    assert cap_hierarchy.sizes == tuple(expected)
    vertices, faces = primitives.grid_patch(10, 10)
    assert build_hierarchy(vertices, faces, (3, 2.5)).sizes == (100, 34, 14)


@pytest.mark.parametrize("name", ALL)
def test_down_indices_select_original_positions(name, request):
    hierarchy = request.getfixturevalue(name)
    for i in range(1, hierarchy.num_levels):
        down = hierarchy.down_indices(i)
        assert down.dtype == np.int32
        assert (np.diff(down) > 0).all(), "ascending and unique"
        np.testing.assert_array_equal(hierarchy.vertices(i), hierarchy.vertices(i - 1)[down])
        assert hierarchy.vertices(i).dtype == np.float32


@pytest.mark.parametrize("name", ALL)
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


@pytest.mark.parametrize("name", ["cap_hierarchy", "surface_cap_hierarchy"])
def test_smooth_field_survives_down_then_up(name, request):
    cap_hierarchy = request.getfixturevalue(name)
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


@pytest.mark.parametrize("name, euler", [("sphere_hierarchy", 2), ("cap_hierarchy", 1),
                                         ("surface_sphere_hierarchy", 2),
                                         ("surface_cap_hierarchy", 1)])
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
        normal /= np.linalg.norm(normal, axis=1, keepdims=True)
        centre = v[faces].mean(axis=1)
        centre /= np.linalg.norm(centre, axis=1, keepdims=True)
        # Outward, up to slivers along a cap's rim that stand on the rim plane (cosine ~1e-7).
        assert (np.einsum("ij,ij->i", normal, centre) > -1e-6).all(), "no flips"


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
    with pytest.raises(MeshError, match="cannot keep only 2 vertices: at least 4 must stay"):
        build_hierarchy(vertices, faces, (2,), method="surface_distance")


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


# ---------------------------------------------------------------------------------------
# Both decimation methods; "surface_distance" against hand-made cases and CoMA's algorithm.

METHODS = ("qslim", "surface_distance")


def _dense_up(hierarchy, i):
    """``U_i`` as a dense ``[n_{i-1}, n_i]`` matrix."""
    dense = np.zeros((hierarchy.sizes[i - 1], hierarchy.sizes[i]))
    rows = np.arange(hierarchy.sizes[i - 1])[:, None]
    np.add.at(dense, (rows, hierarchy.up_indices(i)), hierarchy.up_weights(i))
    return dense


def _errors(down, up_indices, up_weights, shape):
    """Mean error per single step and per level of ``x -> U..U D..D x`` (numpy reference)."""
    x = [np.asarray(shape, np.float64)]
    for d in down:
        x.append(x[-1][d])

    def up(i, values):
        return (values[up_indices[i - 1]] * up_weights[i - 1][..., None]).sum(axis=1)

    steps = [np.linalg.norm(up(i, x[i]) - x[i - 1], axis=1).mean() for i in range(1, len(x))]
    levels = []
    for i in range(1, len(x)):
        y = x[i]
        for j in range(i, 0, -1):
            y = up(j, y)
        levels.append(np.linalg.norm(y - x[0], axis=1).mean())
    return np.asarray(steps), np.asarray(levels)


def _hierarchy_errors(hierarchy, shape):
    k = range(1, hierarchy.num_levels)
    return _errors([hierarchy.down_indices(i) for i in k], [hierarchy.up_indices(i) for i in k],
                   [hierarchy.up_weights(i) for i in k], shape)


@pytest.mark.parametrize("method", METHODS)
def test_flat_grid_weights_are_the_exact_barycentrics(method):
    """Any coarse triangulation of the square that keeps its corners is optimal (no error);
    the weights must be the barycentric coordinates of the containing coarse triangle."""
    vertices, faces = primitives.grid_patch(9, 9)
    hierarchy = build_hierarchy(vertices, faces, (4, 4), method=method)
    assert hierarchy.sizes == (81, 21, 6)
    for i in (1, 2):
        fine = hierarchy.vertices(i - 1).astype(np.float64)[:, :2]
        coarse = hierarchy.vertices(i).astype(np.float64)[:, :2]
        tri = hierarchy.faces(i)
        # Independent reference: solve [a b c; 1 1 1] w = [p; 1] for every coarse triangle and
        # keep the one whose coordinates are all non-negative.
        system = np.concatenate([np.swapaxes(coarse[tri], 1, 2), np.ones((tri.shape[0], 1, 3))],
                                axis=1)  # [T, 3, 3]
        rhs = np.concatenate([fine, np.ones((fine.shape[0], 1))], axis=1)  # [n, 3]
        bary = np.einsum("tij,nj->nti", np.linalg.inv(system), rhs)  # [n, T, 3]
        inside = (bary >= -1e-9).all(axis=2)
        assert inside.any(axis=1).all(), "the coarse mesh covers the square"
        choice = inside.argmax(axis=1)
        expected = np.zeros((fine.shape[0], coarse.shape[0]))
        rows = np.arange(fine.shape[0])[:, None]
        np.add.at(expected, (rows, tri[choice]), bary[np.arange(fine.shape[0]), choice])
        np.testing.assert_allclose(_dense_up(hierarchy, i), expected, atol=1e-5)
    steps, levels = _hierarchy_errors(hierarchy, hierarchy.vertices(0))
    np.testing.assert_allclose(np.concatenate([steps, levels]), 0.0, atol=1e-6)


def test_regular_sphere_up_sampling_and_decimation():
    """Icosphere(2) keeps icosphere(1)'s 42 vertices first: with that coarse mesh each new
    vertex is an edge midpoint pushed onto the sphere, whose closest coarse point is the
    edge's midpoint, weights (1/2, 1/2)."""
    from experiments.s2d.coma_sampling import coma_hierarchy

    fine, fine_faces = primitives.icosphere(2)
    fine = fine.astype(np.float64)
    _, coarse_faces = primitives.icosphere(1)
    face, bary, dist2 = closest_points_on_mesh(fine[42:], fine[:42], coarse_faces)
    np.testing.assert_allclose(np.sort(bary, axis=1), [[0.0, 0.5, 0.5]] * 120, atol=1e-6)
    corners = coarse_faces[face][np.arange(120)[:, None], np.argsort(bary, axis=1)[:, 1:]]
    np.testing.assert_allclose(fine[corners].mean(axis=1) / np.linalg.norm(
        fine[corners].mean(axis=1), axis=1, keepdims=True), fine[42:], atol=1e-6)
    regular = np.concatenate([np.zeros(42), np.sqrt(dist2)]).mean()
    factors = (162 / 42,)
    ours = build_hierarchy(fine, fine_faces, factors, method="surface_distance")
    assert ours.sizes == (162, 42)
    (step,), _ = _hierarchy_errors(ours, fine)
    (quadric,), _ = _hierarchy_errors(build_hierarchy(fine, fine_faces, factors), fine)
    coma = coma_hierarchy(fine, fine_faces, factors)
    (reference,), _ = _errors(coma.down_indices, coma.up_indices, coma.up_weights, fine)
    assert regular <= step <= 1.3 * regular
    assert step < quadric and step < reference


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("mesh", ["sphere", "cap", "grid", "two_components", "face"])
def test_rows_of_d_and_u_sum_to_one(method, mesh):
    from jaxface.data.template import load_face_template

    if mesh == "face":
        template = load_face_template(0)
        vertices, faces, factors = template.vertices, template.faces, (4, 4)
    else:
        vertices, faces = {"sphere": lambda: primitives.icosphere(3),
                           "cap": lambda: primitives.spherical_cap(4, 0.0),
                           "grid": lambda: primitives.grid_patch(12, 12),
                           "two_components": primitives.two_components}[mesh]()
        factors = (2,) if mesh == "two_components" else (4, 4)
    hierarchy = build_hierarchy(vertices, faces, factors, method=method)
    for i in range(1, hierarchy.num_levels):
        rows, cols, vals = hierarchy.down_transform(i)
        down = scipy.sparse.coo_array((vals, (rows, cols)),
                                      shape=(hierarchy.sizes[i], hierarchy.sizes[i - 1]))
        np.testing.assert_array_equal(down.sum(axis=1), 1.0)
        assert (np.diff(down.tocsr().indptr) == 1).all(), "one-hot rows"
        weights = hierarchy.up_weights(i)
        assert (weights >= 0).all(), "no negative up-sampling weights"
        np.testing.assert_allclose(_dense_up(hierarchy, i).sum(axis=1), 1.0, atol=1e-6)
        assert (hierarchy.up_indices(i) < hierarchy.sizes[i]).all()


def test_surface_distance_is_not_above_coma_on_the_face_template():
    """Every single step and every level, on the 468-vertex face template and on three
    expressions of the ARKit basis, against the numpy reference of CoMA's algorithm."""
    from experiments.s2d.coma_sampling import coma_hierarchy
    from jaxface.data.expression_basis import load_expression_basis
    from jaxface.data.template import load_face_template

    template = load_face_template(0)
    vertices = template.vertices.astype(np.float64)
    basis = load_expression_basis(0)
    shapes = [vertices] + [vertices + basis.apply(basis.weights[t]) for t in (315, 149, 156)]
    factors = (4, 4, 4)
    with pytest.warns(RuntimeWarning, match="relax the flip or manifold checks"):
        ours = build_hierarchy(vertices, template.faces, factors, method="surface_distance")
    coma = coma_hierarchy(vertices, template.faces, factors)
    assert ours.sizes == coma.sizes == (468, 117, 30, 8)
    for shape in shapes:
        steps, levels = _hierarchy_errors(ours, shape)
        ref_steps, ref_levels = _errors(coma.down_indices, coma.up_indices, coma.up_weights,
                                        shape)
        assert (steps <= ref_steps).all(), (steps, ref_steps)
        assert (levels <= ref_levels).all(), (levels, ref_levels)


def test_small_closed_part_may_vanish():
    """A small closed part inside a cap (an eyeball in a head) goes at a coarse level instead
    of holding four of its vertices; the level keeps its exact size and the part's vertices
    are up-sampled from the rest."""
    cap, cap_faces = primitives.spherical_cap(3, 0.0)
    eye, eye_faces = primitives.icosphere(1)
    vertices = np.concatenate([cap, 0.05 * eye + np.array([0, 0, 0.96], np.float32)])
    faces = np.concatenate([cap_faces, eye_faces + cap.shape[0]])
    ours = build_hierarchy(vertices, faces, (4, 4), method="surface_distance")
    assert ours.sizes == (379, 95, 24)
    kept = np.arange(vertices.shape[0])[ours.down_indices(1)][ours.down_indices(2)]
    assert (kept < cap.shape[0]).all()
    np.testing.assert_allclose(_dense_up(ours, 2).sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(MeshError, match="at least 7 must stay"):
        build_hierarchy(vertices, faces, (4, 4, 4))  # qslim keeps 4 per closed part
    two, two_faces = primitives.two_components()
    smallest = build_hierarchy(two, two_faces, (5,), method="surface_distance")
    assert smallest.sizes == (15, 3)
    assert (smallest.down_indices(1) >= 6).all(), "the octahedron went, the grid's triangle stays"


def _lips(hierarchy, i):
    """Upper and lower lip at level ``i``: the lowest boundary loop but the outline, split at
    its leftmost and rightmost vertices, without the corners (the outer 15 % of the width on
    each side, where the lips meet)."""
    from jaxface.mesh.topology import boundary_loops

    vertices = hierarchy.vertices(i)
    loops = boundary_loops(hierarchy.faces(i))[1:]
    mouth = min(loops, key=lambda loop: vertices[loop, 1].mean())
    x = vertices[mouth, 0]
    a, b = sorted([int(np.argmin(x)), int(np.argmax(x))])
    one, two = mouth[a + 1:b], np.concatenate([mouth[b + 1:], mouth[:a]])
    if vertices[one, 1].mean() < vertices[two, 1].mean():
        one, two = two, one
    middle = np.abs(vertices[:, 0] - (x.max() + x.min()) / 2) < 0.35 * (x.max() - x.min())
    return one[middle[one]], two[middle[two]]


def _lip_crossings(hierarchy, i):
    """``(middle lip vertices of level i-1 per lip, those taking weight from the other lip)``."""
    upper, lower = _lips(hierarchy, i - 1)
    side = np.zeros(hierarchy.sizes[i - 1], int)
    side[upper], side[lower] = 1, -1
    coarse_side = side[hierarchy.down_indices(i)]
    index, weight = hierarchy.up_indices(i), hierarchy.up_weights(i)
    lips = np.concatenate([upper, lower])
    used = coarse_side[index[lips]] * (weight[lips] > 1e-6)
    return (upper.size, lower.size), int((used == -side[lips][:, None]).any(axis=1).sum())


def test_lips_are_not_interpolated_from_each_other():
    """The face template's mouth slit is 1 mm wide: bridging it costs nothing on the template,
    but an open mouth pulls the lips apart. Both lips keep vertices at every level and no lip
    vertex takes weight from the other lip; without the gap term (``boundary_weight=0``) the
    upper lip keeps fewer."""
    from jaxface.data.template import load_face_template

    template = load_face_template(1)
    kept = {}
    for boundary_weight in (1.0, 0.0):
        hierarchy = build_hierarchy(template.vertices, template.faces, (4, 4),
                                    method="surface_distance", boundary_weight=boundary_weight)
        (upper, lower), crossed = _lip_crossings(hierarchy, 2)
        kept[boundary_weight] = min(upper, lower)
        if boundary_weight:
            assert crossed == 0 and _lip_crossings(hierarchy, 1)[1] == 0
    assert kept[1.0] >= 3 and kept[0.0] < kept[1.0]
