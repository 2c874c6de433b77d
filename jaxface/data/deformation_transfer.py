"""Carrying displacement fields from one face to another through local surface frames.

A displacement field defined on a source face (e.g. a blendshape on the template) is moved to a
target face with the same topology by expressing each vertex's displacement in the source's local
surface frame and re-expressing it in the target's:

* the frame at a vertex is ``(t1, t2, n)``: ``n`` its unit normal (vertex normals averaged with
  Gaussian weights over ``radius``, so creases at the lip corners and nostrils do not tilt it),
  ``t1`` the direction of steepest ascent along the surface of a scalar attached to the vertices
  (by default the source's height ``y``, the same values on both faces, so ``t1`` points "up the
  face" on both), averaged the same way and made orthogonal to ``n``, and ``t2 = n x t1``;
* the length is scaled by ``sqrt(a_target_i / a_source_i)``, with ``a`` the vertex areas
  (lumped mass) averaged with the same Gaussian weights: a displacement grows with the local size
  of the face.

The frames move with the surface, so a rigidly moved target gets rigidly moved displacements, and
a target equal to the source gets the fields back (to rounding, about 1e-16 relative).

Example:
  >>> from jaxface.data.template import load_face_template
  >>> t = load_face_template(0)
  >>> d = np.zeros((1, 468, 3)); d[0, :, 2] = 1e-3
  >>> same = transfer_displacements(d, t.vertices, t.vertices, t.faces)
  >>> bool(np.allclose(same, d, rtol=0, atol=1e-15))
  True
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.spatial

from jaxface.mesh import topology

__all__ = [
    "local_frames",
    "smoothed_normals",
    "smoothed_vertex_areas",
    "surface_gradients",
    "transfer_displacements",
]

_MM = 1e-3


def _gaussian_neighbourhood(vertices: np.ndarray, radius: float) -> scipy.sparse.csr_matrix:
    """Row-normalised Gaussian weights between vertices closer than ``2.5 radius``: ``[N, N]``."""
    tree = scipy.spatial.cKDTree(vertices)
    dist = tree.sparse_distance_matrix(tree, 2.5 * radius, output_type="coo_matrix")
    n = vertices.shape[0]
    w = scipy.sparse.coo_matrix(
        (np.exp(-0.5 * (dist.data / radius) ** 2), (dist.row, dist.col)), shape=(n, n)
    ).tocsr()
    w = w + scipy.sparse.identity(n, format="csr")  # zero distances are not stored
    return w


def smoothed_normals(
    vertices: np.ndarray, faces: np.ndarray, radius: float = 8 * _MM
) -> np.ndarray:
    """Unit vertex normals averaged with Gaussian weights.

    Args:
      vertices: ``float [N, 3]`` positions, metres.
      faces: ``int [F, 3]`` triangles.
      radius: standard deviation of the Gaussian, metres.

    Returns:
      ``float64 [N, 3]`` unit normals.
    """
    v = np.asarray(vertices, np.float64)
    normals = topology.vertex_normals(v, np.asarray(faces)).astype(np.float64)
    avg = _gaussian_neighbourhood(v, radius) @ normals
    return avg / np.maximum(np.linalg.norm(avg, axis=1, keepdims=True), 1e-12)


def smoothed_vertex_areas(
    vertices: np.ndarray, faces: np.ndarray, radius: float = 8 * _MM
) -> np.ndarray:
    """Vertex areas (a third of the adjacent triangles' areas) averaged with Gaussian weights.

    Args:
      vertices: ``float [N, 3]`` positions, metres.
      faces: ``int [F, 3]`` triangles.
      radius: standard deviation of the Gaussian, metres.

    Returns:
      ``float64 [N]`` areas, square metres.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    mass = np.zeros(len(v))
    for k in range(3):
        np.add.at(mass, f[:, k], area / 3.0)
    w = _gaussian_neighbourhood(v, radius)
    return (w @ mass) / np.asarray(w.sum(axis=1)).ravel()


def surface_gradients(
    vertices: np.ndarray, faces: np.ndarray, scalar: np.ndarray, radius: float = 8 * _MM
) -> np.ndarray:
    """Gradient along the surface of a piecewise-linear scalar, averaged with Gaussian weights.

    Args:
      vertices: ``float [N, 3]`` positions, metres.
      faces: ``int [F, 3]`` triangles.
      scalar: ``float [N]`` values at the vertices.
      radius: standard deviation of the Gaussian, metres.

    Returns:
      ``float64 [N, 3]``: the per-triangle gradients, area-weighted onto the vertices, then
      averaged over the neighbourhood.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    s = np.asarray(scalar, np.float64)
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    double_area = np.linalg.norm(cross, axis=1)
    n = cross / np.maximum(double_area, 1e-300)[:, None]
    grad = (
        s[f[:, 0], None] * np.cross(n, c - b)
        + s[f[:, 1], None] * np.cross(n, a - c)
        + s[f[:, 2], None] * np.cross(n, b - a)
    ) / np.maximum(double_area, 1e-300)[:, None]
    out = np.zeros_like(v)
    for k in range(3):
        np.add.at(out, f[:, k], grad * double_area[:, None])
    return _gaussian_neighbourhood(v, radius) @ out


def local_frames(
    vertices: np.ndarray, faces: np.ndarray, scalar: np.ndarray, radius: float = 8 * _MM
) -> np.ndarray:
    """Orthonormal surface frames ``(t1, t2, n)`` at the vertices (see the module docstring).

    Args:
      vertices: ``float [N, 3]`` positions, metres.
      faces: ``int [F, 3]`` triangles.
      scalar: ``float [N]`` the scalar whose surface gradient gives ``t1``.
      radius: smoothing radius, metres.

    Returns:
      ``float64 [N, 3, 3]``: row 0 ``t1``, row 1 ``t2``, row 2 the normal ``n``.
    """
    n = smoothed_normals(vertices, faces, radius)
    g = surface_gradients(vertices, faces, scalar, radius)
    t1 = g - np.sum(g * n, axis=1, keepdims=True) * n
    length = np.linalg.norm(t1, axis=1, keepdims=True)
    if np.any(length < 1e-9):
        raise ValueError("local_frames: the scalar has no gradient along the surface somewhere")
    t1 = t1 / length
    return np.stack([t1, np.cross(n, t1), n], axis=1)


def transfer_displacements(
    displacements: np.ndarray,
    source: np.ndarray,
    target: np.ndarray,
    faces: np.ndarray,
    *,
    radius: float = 8 * _MM,
    scale: bool = True,
    scalar: np.ndarray | None = None,
) -> np.ndarray:
    """Moves displacement fields from the source face to the target face (see the module doc).

    Args:
      displacements: ``float [K, N, 3]`` fields on ``source``, metres.
      source: ``float [N, 3]`` the face the fields are defined on.
      target: ``float [N, 3]`` a face with the same topology.
      faces: ``int [F, 3]`` the shared triangles.
      radius: smoothing radius of the normals and areas, metres.
      scale: scale the fields by the local size ratio ``sqrt(area_target / area_source)``.
      scalar: ``float [N]`` the vertex scalar whose gradient orients the tangents (default: the
        source's ``y``).

    Returns:
      ``float64 [K, N, 3]`` the fields on ``target``; equal to ``displacements`` (to rounding)
      when ``target == source``.
    """
    d = np.asarray(displacements, np.float64)
    s = np.asarray(source, np.float64)[:, 1] if scalar is None else np.asarray(scalar)
    frame_s = local_frames(source, faces, s, radius)
    frame_t = local_frames(target, faces, s, radius)
    rot = np.einsum("nki,nkj->nij", frame_t, frame_s)  # F_target^T F_source
    out = np.einsum("nij,knj->kni", rot, d)
    if scale:
        area_t = smoothed_vertex_areas(target, faces, radius)
        ratio = np.sqrt(area_t / smoothed_vertex_areas(source, faces, radius))
        out = out * ratio[None, :, None]
    return out
