"""Triangle-mesh subdivision (Loop and midpoint) that keeps the original vertex indices.

One step splits every triangle into four. The ``N`` original ("even") vertices keep indices
``0..N-1``; one new ("odd") vertex per edge is appended, at index ``N + k`` for the ``k``-th edge of
:attr:`Subdivision.edges`, whose rows are the unique undirected edges ``(i, j)`` with ``i < j``
sorted lexicographically. Child faces of parent face ``f`` are ``4f .. 4f + 3`` and keep its
orientation.

* ``scheme="midpoint"``: new vertices at edge midpoints; original vertices do not move (the surface
  is unchanged, only resampled).
* ``scheme="loop"``: Loop's (1987) approximating scheme. Interior odd vertices are
  ``3/8 (a + b) + 1/8 (c + d)``; interior even vertices of valence ``n`` become
  ``(1 - n beta) v + beta sum(neighbours)`` with Loop's ``beta``. On boundary loops (the mouth, eyes
  and outline of a face mask) the cubic B-spline rules are used: odd ``1/2 (a + b)``, even
  ``3/4 v + 1/8 (b0 + b1)``, so boundaries stay curves of their own. The original vertices keep
  their indices but **move** (the surface is smoothed and shrinks slightly).

Both schemes are linear in the positions, so each step is a sparse ``[N + E, N]`` matrix
(:attr:`Subdivision.operator`) that can be applied to any per-vertex field (displacements, colours,
whole sequences).

Vertex counts: ``N' = N + E``, ``F' = 4 F``, ``E' = 2 E + 3 F``; the 468-vertex face template gives
1790 and then 6990 vertices.

Example:
  >>> import numpy as np
  >>> v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
  >>> f = np.array([[0, 1, 2]], np.int32)
  >>> s = subdivide(v, f, scheme="midpoint")
  >>> s.vertices.shape, s.faces.shape, s.edges.tolist()
  ((6, 3), (4, 3), [[0, 1], [0, 2], [1, 2]])
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import numpy as np
import scipy.sparse

__all__ = ["Subdivision", "subdivide", "subdivision_operator", "unique_edges"]

Scheme = Literal["loop", "midpoint"]


@dataclasses.dataclass(frozen=True)
class Subdivision:
    """Result of one subdivision step.

    Attributes:
      vertices: ``float [N + E, 3]`` new positions (dtype of the input, float32 by default).
      faces: ``int32 [4 F, 3]`` child triangles; children of face ``f`` are rows ``4f .. 4f + 3``.
      edges: ``int32 [E, 2]`` parent edges; new vertex ``N + k`` lies on edge ``edges[k]``.
      operator: ``scipy.sparse.csr_matrix [N + E, N]`` with ``vertices = operator @ old_vertices``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    edges: np.ndarray
    operator: scipy.sparse.csr_matrix


def unique_edges(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges of a triangle mesh.

    Args:
      faces: ``int [F, 3]`` triangles.

    Returns:
      ``(edges, face_edges)``: ``int64 [E, 2]`` sorted rows ``(i < j)`` in lexicographic order, and
      ``int64 [F, 3]`` the edge index of each face's edges ``(v0 v1), (v1 v2), (v2 v0)``.
    """
    f = np.asarray(faces, np.int64)
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be [F, 3], got {f.shape}")
    half = np.stack([f, np.roll(f, -1, axis=1)], axis=-1).reshape(-1, 2)  # [3F, 2]
    half = np.sort(half, axis=1)
    edges, inverse = np.unique(half, axis=0, return_inverse=True)
    return edges, inverse.reshape(-1, 3)


def _loop_beta(n: np.ndarray) -> np.ndarray:
    n = np.maximum(n.astype(np.float64), 1.0)
    return (5.0 / 8.0 - (3.0 / 8.0 + 0.25 * np.cos(2.0 * np.pi / n)) ** 2) / n


def subdivision_operator(
    faces: np.ndarray, num_vertices: int, *, scheme: Scheme = "loop"
) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """Topology-only part of one subdivision step.

    Args:
      faces: ``int [F, 3]`` consistently oriented manifold triangles.
      num_vertices: ``N``, the number of vertices (isolated ones are kept unchanged).
      scheme: ``"loop"`` or ``"midpoint"``.

    Returns:
      ``(operator, new_faces, edges)``: ``csr_matrix float64 [N + E, N]``, ``int32 [4F, 3]`` and
      ``int32 [E, 2]`` as described in the module docstring.
    """
    if scheme not in ("loop", "midpoint"):
        raise ValueError(f"unknown subdivision scheme {scheme!r}; use 'loop' or 'midpoint'")
    f = np.asarray(faces, np.int64)
    n = int(num_vertices)
    edges, face_edges = unique_edges(f)
    num_edges = len(edges)
    if f.size and f.max() >= n:
        raise ValueError(f"faces reference vertex {f.max()} but num_vertices={n}")

    # Opposite vertex of each face corner's edge: face edge k = (f[k], f[k+1]) faces f[k+2].
    opp = np.roll(f, -2, axis=1)  # [F, 3]
    edge_faces = np.bincount(face_edges.ravel(), minlength=num_edges)
    if edge_faces.max(initial=0) > 2:
        raise ValueError("non-manifold mesh: an edge belongs to more than two faces")
    boundary_edge = edge_faces == 1

    rows, cols, vals = [], [], []
    odd_row = n + np.arange(num_edges)
    if scheme == "midpoint":
        rows += [np.arange(n), odd_row, odd_row]
        cols += [np.arange(n), edges[:, 0], edges[:, 1]]
        vals += [np.ones(n), np.full(num_edges, 0.5), np.full(num_edges, 0.5)]
    else:
        # Odd vertices.
        w_end = np.where(boundary_edge, 0.5, 3.0 / 8.0)
        rows += [odd_row, odd_row]
        cols += [edges[:, 0], edges[:, 1]]
        vals += [w_end, w_end]
        fe = face_edges.ravel()
        interior_corner = ~boundary_edge[fe]
        rows.append(n + fe[interior_corner])
        cols.append(opp.ravel()[interior_corner])
        vals.append(np.full(int(interior_corner.sum()), 1.0 / 8.0))

        # Even vertices.
        boundary_vertex = np.zeros(n, bool)
        boundary_vertex[edges[boundary_edge].ravel()] = True
        valence = np.bincount(edges.ravel(), minlength=n)
        beta = _loop_beta(valence)
        interior_v = ~boundary_vertex & (valence > 0)
        # Interior: (1 - n beta) v + beta * neighbours.
        self_w = np.ones(n)
        self_w[interior_v] = 1.0 - valence[interior_v] * beta[interior_v]
        self_w[boundary_vertex] = 0.75
        rows.append(np.arange(n))
        cols.append(np.arange(n))
        vals.append(self_w)
        for a, b in ((0, 1), (1, 0)):
            src, dst = edges[:, a], edges[:, b]
            keep = interior_v[src]
            rows.append(src[keep])
            cols.append(dst[keep])
            vals.append(beta[src[keep]])
            keep_b = boundary_vertex[src] & boundary_edge
            rows.append(src[keep_b])
            cols.append(dst[keep_b])
            vals.append(np.full(int(keep_b.sum()), 1.0 / 8.0))
        bcount = np.bincount(edges[boundary_edge].ravel(), minlength=n)
        if np.any(bcount[boundary_vertex] != 2):
            raise ValueError("boundary vertex with other than two boundary edges (non-manifold)")

    op = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n + num_edges, n),
    ).tocsr()
    op.sum_duplicates()

    m = n + face_edges  # [F, 3] new vertex on edges (v0v1), (v1v2), (v2v0)
    v0, v1, v2 = f[:, 0], f[:, 1], f[:, 2]
    e01, e12, e20 = m[:, 0], m[:, 1], m[:, 2]
    new_faces = np.stack(
        [
            np.stack([v0, e01, e20], axis=1),
            np.stack([e01, v1, e12], axis=1),
            np.stack([e20, e12, v2], axis=1),
            np.stack([e01, e12, e20], axis=1),
        ],
        axis=1,
    ).reshape(-1, 3)
    return op, new_faces.astype(np.int32), edges.astype(np.int32)


def subdivide(
    vertices: np.ndarray, faces: np.ndarray, *, scheme: Scheme = "loop"
) -> Subdivision:
    """Subdivides a triangle mesh once.

    Args:
      vertices: ``float [N, 3]`` positions.
      faces: ``int [F, 3]`` consistently oriented manifold triangles.
      scheme: ``"loop"`` (smooth, moves original vertices) or ``"midpoint"`` (keeps them in place).

    Returns:
      A :class:`Subdivision` with ``N + E`` vertices and ``4 F`` faces; the first ``N`` vertices
      correspond to the input vertices (same indices).
    """
    v = np.asarray(vertices)
    if v.ndim != 2:
        raise ValueError(f"vertices must be [N, C], got {v.shape}")
    dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float32
    op, new_faces, edges = subdivision_operator(faces, v.shape[0], scheme=scheme)
    new_v = (op @ v.astype(np.float64)).astype(dtype)
    return Subdivision(vertices=new_v, faces=new_faces, edges=edges, operator=op)
