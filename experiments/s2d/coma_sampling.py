"""CoMA's mesh sampling as CoMA's code does it, in numpy: the reference for hierarchy quality.

CoMA (Ranjan et al., ECCV 2018) builds its down/up-sampling matrices with a quadric half-edge
collapse and a closest-point transfer; Neural3DMM, SpiralNet++ and the official S2D release use
the same algorithm and ship its ``downsampling_matrices.pkl``. This module reproduces what that
algorithm computes, so that :mod:`experiments.s2d.hierarchy_quality` can compare jaxface's
hierarchies with CoMA's on templates for which no published file exists:

* **Quadrics**: every face adds the outer product of its plane ``[n, -n.a]`` (unit normal, from
  the SVD of ``[v | 1]``) to its three corners' 4x4 quadrics. No area weighting, no boundary
  planes.
* **Collapse order**: a heap of the template's edges keyed by ``min(p_r^T Q p_r, p_c^T Q p_c)``
  with ``Q = Q_r + Q_c`` at the original positions. A popped edge whose recomputed cost rose is
  pushed back; otherwise the endpoint with the larger cost is removed (on equal costs the first
  one) and the other stays where it is. Both quadrics become ``Q``. Faces that lose a corner are
  dropped; nothing else is checked (no manifold, flip or boundary test). The loop stops when at
  most ``ceil(n / factor)`` vertices still belong to a face.
* **Down-sampling** selects the vertices left in a face, in ascending order.
* **Up-sampling** (``setup_deformation_transfer``): each fine vertex is projected onto the closest
  point of the coarse surface. Inside a triangle, the weights solve ``[v0 v1 v2] w = p`` by least
  squares (the barycentric coordinates unless the triangle's plane passes near the origin); on
  an edge, ``[v0 v1] w = x`` is solved for the *unprojected* vertex ``x`` (two weights that need
  not sum to 1); at a vertex the weight is 1.

CoMA rewrites the queued pairs of a removed vertex in place; here each queued pair is resolved
through the collapse history when it is popped, which gives the same collapses up to the order
of exactly equal costs.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence

import numpy as np

from jaxface.mesh.hierarchy import closest_points_on_mesh
from jaxface.mesh.topology import edges

__all__ = ["ComaHierarchy", "coma_decimate", "coma_hierarchy", "coma_up_sampling",
           "coma_vertex_quadrics"]


@dataclasses.dataclass(frozen=True)
class ComaHierarchy:
    """Levels and sampling matrices as CoMA's ``generate_transform_matrices`` returns them.

    Attributes:
      vertices: per level, float64 ``[n_i, 3]`` (level 0 is the template).
      faces: per level, int64 ``[f_i, 3]`` (duplicate faces are kept, as in CoMA).
      down_indices: per step ``i = 1..K``, int64 ``[n_i]`` ascending level ``i-1`` vertices.
      up_indices: per step, int64 ``[n_{i-1}, 3]`` level ``i`` vertices.
      up_weights: per step, float64 ``[n_{i-1}, 3]`` weights (rows need not sum to 1).
    """

    vertices: tuple[np.ndarray, ...]
    faces: tuple[np.ndarray, ...]
    down_indices: tuple[np.ndarray, ...]
    up_indices: tuple[np.ndarray, ...]
    up_weights: tuple[np.ndarray, ...]

    @property
    def sizes(self) -> tuple[int, ...]:
        """Vertex count of every level."""
        return tuple(int(v.shape[0]) for v in self.vertices)


def coma_vertex_quadrics(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``[N, 4, 4]`` sums of the unit-normal plane quadrics of every vertex's faces.

    Args:
      vertices: float ``[N, 3]``.
      faces: int ``[F, 3]``.
    """
    corners = np.concatenate([vertices[faces], np.ones(faces.shape + (1,))], axis=2)
    planes = np.linalg.svd(corners)[2][:, -1, :]  # [F, 4]: null vector of [v | 1]
    norm = np.linalg.norm(planes[:, :3], axis=1, keepdims=True)
    planes = planes / norm
    per_face = planes[:, :, None] * planes[:, None, :]
    quadrics = np.zeros((vertices.shape[0], 4, 4))
    for k in range(3):
        np.add.at(quadrics, faces[:, k], per_face)
    return quadrics


def coma_decimate(vertices, faces, target: int) -> tuple[np.ndarray, np.ndarray]:
    """CoMA's quadric half-edge collapse down to ``target`` vertices.

    Args:
      vertices: float ``[N, 3]``.
      faces: int ``[F, 3]``.
      target: the number of vertices that may remain in a face.

    Returns:
      ``(survivors [m] ascending, faces [f, 3] indexing the survivors)`` with ``m <= target``.

    Raises:
      ValueError: when the edge queue runs out first (CoMA's code fails there as well).
    """
    v = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    quadrics = coma_vertex_quadrics(v, faces)
    homogeneous = np.concatenate([v, np.ones((v.shape[0], 1))], axis=1)
    pairs = edges(faces).astype(np.int64)
    order = np.lexsort((pairs[:, 0], pairs[:, 1]))
    pairs = pairs[order]

    def costs(r: int, c: int) -> tuple[float, float, np.ndarray]:
        total = quadrics[r] + quadrics[c]
        return (float(homogeneous[r] @ total @ homogeneous[r]),
                float(homogeneous[c] @ total @ homogeneous[c]), total)

    q = quadrics[pairs[:, 0]] + quadrics[pairs[:, 1]]
    keep_r = np.einsum("ei,eij,ej->e", homogeneous[pairs[:, 0]], q, homogeneous[pairs[:, 0]])
    keep_c = np.einsum("ei,eij,ej->e", homogeneous[pairs[:, 1]], q, homogeneous[pairs[:, 1]])
    heap = [(float(cost), int(r), int(c)) for cost, r, c in
            zip(np.minimum(keep_r, keep_c), pairs[:, 0], pairs[:, 1], strict=True)]
    heapq.heapify(heap)

    parent = np.arange(v.shape[0])

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:
            parent[i], i = root, parent[i]
        return int(root)

    face_list = faces.tolist()
    face_alive = [True] * len(face_list)
    vertex_faces: list[set[int]] = [set() for _ in range(v.shape[0])]
    for index, face in enumerate(face_list):
        for vertex in face:
            vertex_faces[vertex].add(index)
    in_faces = sum(1 for s in vertex_faces if s)
    count = v.shape[0]
    while count > target:
        if not heap:
            raise ValueError(f"the edge queue ran out at {count} vertices (target {target})")
        stored, r0, c0 = heapq.heappop(heap)
        r, c = find(r0), find(c0)
        if r == c:
            continue
        keep_r_cost, keep_c_cost, total = costs(r, c)
        cost = min(keep_r_cost, keep_c_cost)
        if cost > stored:
            heapq.heappush(heap, (cost, r, c))
            continue
        keep, destroy = (r, c) if keep_r_cost < keep_c_cost else (c, r)
        parent[destroy] = keep
        touched = {x for f in vertex_faces[destroy] for x in face_list[f]} | {keep, destroy}
        before = sum(1 for x in touched if vertex_faces[x])
        for f in vertex_faces[destroy]:
            face = [keep if x == destroy else x for x in face_list[f]]
            face_list[f] = face
            if len(set(face)) < 3:
                face_alive[f] = False
                for x in face:
                    vertex_faces[x].discard(f)
            else:
                vertex_faces[keep].add(f)
        vertex_faces[destroy] = set()
        in_faces += sum(1 for x in touched if vertex_faces[x]) - before
        quadrics[r] = total
        quadrics[c] = total
        count = in_faces
    live = np.asarray([f for f, alive in zip(face_list, face_alive, strict=True) if alive],
                      np.int64).reshape(-1, 3)
    survivors = np.unique(live)
    remap = np.full(v.shape[0], -1, np.int64)
    remap[survivors] = np.arange(survivors.shape[0])
    return survivors, remap[live]


def coma_up_sampling(fine, coarse, coarse_faces) -> tuple[np.ndarray, np.ndarray]:
    """CoMA's ``setup_deformation_transfer(coarse, fine)`` as index and weight arrays.

    Args:
      fine: float ``[n, 3]`` vertices to express.
      coarse: float ``[m, 3]`` coarse vertices.
      coarse_faces: int ``[f, 3]`` coarse triangles.

    Returns:
      ``(indices [n, 3] int64, weights [n, 3] float64)``; unused slots hold weight 0.
    """
    fine = np.asarray(fine, np.float64)
    coarse = np.asarray(coarse, np.float64)
    coarse_faces = np.asarray(coarse_faces, np.int64)
    face, bary, _ = closest_points_on_mesh(fine, coarse, coarse_faces)
    indices = coarse_faces[face]
    corners = coarse[indices]  # [n, 3 corners, 3 xyz]
    inside = bary > 0
    parts = inside.sum(axis=1)
    weights = np.zeros_like(bary)
    # Inside a triangle: least squares [v0 v1 v2] w = p for the projected point p.
    tri = parts == 3
    if tri.any():
        point = np.einsum("nk,nkd->nd", bary[tri], corners[tri])
        matrix = np.swapaxes(corners[tri], 1, 2)  # columns are the corners
        weights[tri] = np.einsum("nkd,nd->nk", np.linalg.pinv(matrix, rcond=1e-15), point)
    # On an edge: least squares [va vb] w = x for the unprojected vertex x.
    edge = parts == 2
    if edge.any():
        slots = np.argsort(~inside[edge], axis=1, kind="stable")[:, :2]  # the two corners used
        pair = np.take_along_axis(corners[edge], slots[:, :, None], axis=1)  # [e, 2, 3]
        matrix = np.swapaxes(pair, 1, 2)  # [e, 3, 2]
        w = np.einsum("nkd,nd->nk", np.linalg.pinv(matrix, rcond=1e-15), fine[edge])
        rows = np.zeros((w.shape[0], 3))
        np.put_along_axis(rows, slots, w, axis=1)
        weights[edge] = rows
    vertex = parts <= 1
    weights[vertex] = inside[vertex].astype(np.float64)
    return indices, weights


def coma_hierarchy(vertices, faces, factors: Sequence[float] = (4, 4, 4, 4)) -> ComaHierarchy:
    """CoMA's ``generate_transform_matrices``: levels, down- and up-sampling.

    Args:
      vertices: float ``[N, 3]`` template.
      faces: int ``[F, 3]`` template triangles.
      factors: decimation factor per step; step ``i`` keeps ``ceil(n_{i-1} / factor)`` vertices.

    Returns:
      The :class:`ComaHierarchy`.
    """
    level_vertices = [np.asarray(vertices, np.float64)]
    level_faces = [np.asarray(faces, np.int64)]
    downs, up_idx, up_w = [], [], []
    for factor in factors:
        target = math.ceil(level_vertices[-1].shape[0] / float(factor))
        survivors, coarse_faces = coma_decimate(level_vertices[-1], level_faces[-1], target)
        coarse = level_vertices[-1][survivors]
        index, weight = coma_up_sampling(level_vertices[-1], coarse, coarse_faces)
        level_vertices.append(coarse)
        level_faces.append(coarse_faces)
        downs.append(survivors)
        up_idx.append(index)
        up_w.append(weight)
    return ComaHierarchy(tuple(level_vertices), tuple(level_faces), tuple(downs), tuple(up_idx),
                         tuple(up_w))
