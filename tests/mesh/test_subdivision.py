"""Tests for jaxface.mesh.subdivision."""

import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.mesh.subdivision import subdivide, subdivision_operator, unique_edges


def _octahedron():
    v = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64
    )
    f = np.array(
        [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4], [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]],
        np.int32,
    )
    return v, f


def _grid(n=5):
    xs, ys = np.meshgrid(np.arange(n, dtype=np.float64), np.arange(n, dtype=np.float64))
    v = np.stack([xs.ravel(), ys.ravel(), np.zeros(n * n)], axis=1)
    faces = []
    for r in range(n - 1):
        for c in range(n - 1):
            a, b, d, e = r * n + c, r * n + c + 1, (r + 1) * n + c, (r + 1) * n + c + 1
            faces += [[a, b, e], [a, e, d]]
    return v, np.asarray(faces, np.int32)


def _face_normals(v, f):
    return np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])


def test_single_triangle_midpoint_layout():
    v = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0]], np.float32)
    f = np.array([[0, 1, 2]], np.int32)
    s = subdivide(v, f, scheme="midpoint")
    assert s.vertices.dtype == np.float32 and s.faces.dtype == np.int32
    np.testing.assert_array_equal(s.edges, [[0, 1], [0, 2], [1, 2]])
    np.testing.assert_allclose(s.vertices, [[0, 0, 0], [2, 0, 0], [0, 2, 0],
                                            [1, 0, 0], [0, 1, 0], [1, 1, 0]])
    # Children of face 0 keep the winding (all normals +z) and cover the parent.
    assert np.all(_face_normals(s.vertices, s.faces)[:, 2] > 0)
    np.testing.assert_array_equal(np.sort(s.faces[3]), [3, 4, 5])


@pytest.mark.parametrize("scheme", ["loop", "midpoint"])
def test_counts_and_original_indices_on_face_template(scheme):
    base = load_face_template(0)
    v, f = base.vertices, base.faces
    n, nf = len(v), len(f)
    ne = len(unique_edges(f)[0])
    s1 = subdivide(v, f, scheme=scheme)
    assert s1.vertices.shape == (n + ne, 3) and s1.faces.shape == (4 * nf, 3)
    assert (n, ne, nf) == (468, 1322, 852)
    s2 = subdivide(s1.vertices, s1.faces, scheme=scheme)
    assert len(s2.vertices) == 6990  # N'' = N + E + (2E + 3F)
    # New vertex N + k lies between the endpoints of edge k (its parent edge).
    a, b = s1.edges[:, 0], s1.edges[:, 1]
    mid = 0.5 * (v[a] + v[b])
    offset = np.linalg.norm(s1.vertices[n:] - mid, axis=1)
    assert np.max(offset) < 0.5 * np.min(np.linalg.norm(v[a] - v[b], axis=1)) + 5e-3
    if scheme == "midpoint":
        np.testing.assert_array_equal(s1.vertices[:n], v)
        np.testing.assert_allclose(s1.vertices[n:], mid, atol=1e-7)
    else:
        moved = np.linalg.norm(s1.vertices[:n] - v, axis=1)
        assert 0 < np.max(moved) < 5e-3  # smoothed a little, not relocated
    # The operator is affine (rows sum to 1) and reproduces the vertices.
    np.testing.assert_allclose(np.asarray(s1.operator.sum(axis=1)).ravel(), 1.0, atol=1e-12)
    np.testing.assert_allclose(s1.operator @ v.astype(np.float64), s1.vertices, atol=1e-6)


def test_orientation_is_preserved():
    v, f = _octahedron()
    parent_n = _face_normals(v, f)
    for scheme in ("loop", "midpoint"):
        s = subdivide(v, f, scheme=scheme)
        child_n = _face_normals(s.vertices, s.faces)
        dots = np.einsum("ij,ij->i", child_n, np.repeat(parent_n, 4, axis=0))
        assert np.all(dots > 0)
        # Closed mesh stays closed: every directed edge is matched by its reverse.
        directed = {tuple(e) for t in s.faces.tolist() for e in zip(t, t[1:] + t[:1], strict=True)}
        assert all((b, a) in directed for a, b in directed)


def test_loop_interior_and_boundary_rules():
    v, f = _octahedron()
    s = subdivide(v, f, scheme="loop")
    # Regular closed octahedron: every even vertex has valence 4 and shrinks towards the centre.
    beta = (5 / 8 - (3 / 8 + 0.25 * np.cos(2 * np.pi / 4)) ** 2) / 4
    np.testing.assert_allclose(np.linalg.norm(s.vertices[:6], axis=1), 1 - 4 * beta, atol=1e-12)
    # Odd vertex on edge (0, 2): 3/8 (v0 + v2) + 1/8 (v4 + v5).
    k = int(np.nonzero((s.edges[:, 0] == 0) & (s.edges[:, 1] == 2))[0][0])
    np.testing.assert_allclose(s.vertices[6 + k], 3 / 8 * (v[0] + v[2]) + 1 / 8 * (v[4] + v[5]))

    gv, gf = _grid(4)
    gs = subdivide(gv, gf, scheme="loop")
    np.testing.assert_allclose(gs.vertices[:, 2], 0.0)  # planar stays planar
    # Boundary corner 0 (neighbours 1 and 4 on the boundary): 3/4 v + 1/8 (b0 + b1).
    np.testing.assert_allclose(gs.vertices[0], 0.75 * gv[0] + 0.125 * (gv[1] + gv[4]))
    # Boundary edge (0, 1): plain midpoint.
    k = int(np.nonzero((gs.edges[:, 0] == 0) & (gs.edges[:, 1] == 1))[0][0])
    np.testing.assert_allclose(gs.vertices[16 + k], 0.5 * (gv[0] + gv[1]))


def test_deterministic_and_operator_applies_to_fields():
    v, f = _grid(5)
    op1, faces1, edges1 = subdivision_operator(f, len(v))
    op2, faces2, edges2 = subdivision_operator(f[::-1].copy()[::-1], len(v))
    assert (op1 != op2).nnz == 0
    np.testing.assert_array_equal(faces1, faces2)
    np.testing.assert_array_equal(edges1, edges2)
    field = np.random.default_rng(0).normal(size=(len(v), 5))
    np.testing.assert_allclose(op1 @ field, subdivide(field, f).vertices, atol=1e-12)


def test_errors():
    v, f = _octahedron()
    with pytest.raises(ValueError, match="unknown subdivision scheme"):
        subdivide(v, f, scheme="catmull")
    fan = np.array([[0, 1, 2], [0, 1, 3], [0, 1, 4]], np.int32)  # edge (0, 1) in three faces
    with pytest.raises(ValueError, match="non-manifold"):
        subdivide(np.zeros((5, 3)), fan)
    with pytest.raises(ValueError, match="num_vertices"):
        subdivision_operator(f, 3)
