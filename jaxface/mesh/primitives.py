"""Small deterministic triangle meshes for tests and examples.

Every function returns ``(vertices, faces)``: ``[N, 3]`` float32 coordinates and
``[F, 3]`` int32 indices wound counter-clockwise seen from outside (closed meshes) or
from ``+z`` (flat patches).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "grid_patch",
    "icosphere",
    "octahedron",
    "spherical_cap",
    "tetrahedron",
    "two_components",
]


def tetrahedron() -> tuple[np.ndarray, np.ndarray]:
    """A regular tetrahedron inscribed in the unit sphere.

    Returns:
      ``(vertices [4, 3] float32, faces [4, 3] int32)``, outward winding.
    """
    vertices = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], np.float64)
    vertices /= np.sqrt(3.0)
    faces = np.array([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]], np.int32)
    return vertices.astype(np.float32), faces


def octahedron() -> tuple[np.ndarray, np.ndarray]:
    """A regular octahedron with vertices on the coordinate axes.

    Vertex order: ``+x, -x, +y, -y, +z, -z``.

    Returns:
      ``(vertices [6, 3] float32, faces [8, 3] int32)``, outward winding.
    """
    vertices = np.array(
        [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float32)
    faces = np.array(
        [[0, 2, 4], [2, 1, 4], [1, 3, 4], [3, 0, 4],
         [2, 0, 5], [1, 2, 5], [3, 1, 5], [0, 3, 5]], np.int32)
    return vertices, faces


def _icosahedron() -> tuple[np.ndarray, np.ndarray]:
    phi = (1.0 + np.sqrt(5.0)) / 2.0
    vertices = np.array(
        [[-1, phi, 0], [1, phi, 0], [-1, -phi, 0], [1, -phi, 0],
         [0, -1, phi], [0, 1, phi], [0, -1, -phi], [0, 1, -phi],
         [phi, 0, -1], [phi, 0, 1], [-phi, 0, -1], [-phi, 0, 1]], np.float64)
    faces = np.array(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
         [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
         [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
         [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
    return vertices / np.linalg.norm(vertices, axis=1, keepdims=True), faces


def icosphere(subdivisions: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """A unit sphere made by repeated 1-to-4 subdivision of an icosahedron.

    Sizes: ``10 * 4**s + 2`` vertices and ``20 * 4**s`` faces (s=5: 10242 vertices).

    Args:
      subdivisions: Number of subdivision steps, >= 0.

    Returns:
      ``(vertices [N, 3] float32, faces [F, 3] int32)``, outward winding.
    """
    if subdivisions < 0:
        raise ValueError(f"subdivisions must be >= 0, got {subdivisions}")
    vertices, faces = _icosahedron()
    for _ in range(subdivisions):
        n = vertices.shape[0]
        pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
        unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
        midpoints = vertices[unique[:, 0]] + vertices[unique[:, 1]]
        midpoints /= np.linalg.norm(midpoints, axis=1, keepdims=True)
        vertices = np.concatenate([vertices, midpoints])
        mid = (inverse.ravel() + n).reshape(3, -1).T  # columns: m01, m12, m20
        a, b, c = faces[:, 0], faces[:, 1], faces[:, 2]
        m01, m12, m20 = mid[:, 0], mid[:, 1], mid[:, 2]
        faces = np.concatenate([
            np.stack([a, m01, m20], 1), np.stack([b, m12, m01], 1),
            np.stack([c, m20, m12], 1), np.stack([m01, m12, m20], 1)])
    return vertices.astype(np.float32), faces.astype(np.int32)


def grid_patch(rows: int = 4, cols: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """A flat triangulated grid covering the unit square in the plane ``z = 0``.

    Vertex ``i * cols + j`` sits at ``(j / (cols - 1), i / (rows - 1), 0)``. Each grid
    cell is split along its diagonal from ``(i, j)`` to ``(i + 1, j + 1)``.

    Args:
      rows: Number of vertex rows, >= 2.
      cols: Number of vertex columns, >= 2.

    Returns:
      ``(vertices [rows*cols, 3] float32, faces [2*(rows-1)*(cols-1), 3] int32)``,
      counter-clockwise seen from ``+z``.
    """
    if rows < 2 or cols < 2:
        raise ValueError(f"grid_patch needs rows, cols >= 2, got {rows}, {cols}")
    y, x = np.meshgrid(np.linspace(0.0, 1.0, rows), np.linspace(0.0, 1.0, cols), indexing="ij")
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(rows * cols)], axis=1)
    i, j = np.meshgrid(np.arange(rows - 1), np.arange(cols - 1), indexing="ij")
    v00 = (i * cols + j).ravel()
    v01, v10, v11 = v00 + 1, v00 + cols, v00 + cols + 1
    faces = np.stack([np.stack([v00, v01, v11], 1), np.stack([v00, v11, v10], 1)], 1)
    return vertices.astype(np.float32), faces.reshape(-1, 3).astype(np.int32)


def spherical_cap(subdivisions: int = 3, min_z: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A disc-like cap of the unit icosphere: the faces with all vertices at ``z >= min_z``.

    Unused vertices are dropped and the rest keep their relative order. ``subdivisions=5``
    with ``min_z=0`` gives a ~5k-vertex open surface with one boundary loop.

    Args:
      subdivisions: Icosphere subdivision level.
      min_z: Height threshold in ``(-1, 1)``.

    Returns:
      ``(vertices [N, 3] float32, faces [F, 3] int32)``, outward winding.
    """
    vertices, faces = icosphere(subdivisions)
    keep = (vertices[faces, 2] >= min_z).all(axis=1)
    faces = faces[keep]
    used = np.unique(faces)
    remap = np.full(vertices.shape[0], -1, np.int64)
    remap[used] = np.arange(used.shape[0])
    return vertices[used], remap[faces].astype(np.int32)


def two_components() -> tuple[np.ndarray, np.ndarray]:
    """An octahedron (vertices 0-5) next to a 3x3 grid patch (vertices 6-14).

    The grid is shifted by ``+3`` along ``x`` so the components do not touch. One
    component is closed, the other has a boundary loop of 8 vertices.

    Returns:
      ``(vertices [15, 3] float32, faces [16, 3] int32)``.
    """
    v_oct, f_oct = octahedron()
    v_grid, f_grid = grid_patch(3, 3)
    v_grid = v_grid + np.array([3.0, 0.0, 0.0], np.float32)
    vertices = np.concatenate([v_oct, v_grid])
    faces = np.concatenate([f_oct, f_grid + v_oct.shape[0]]).astype(np.int32)
    return vertices, faces
