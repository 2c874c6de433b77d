"""Connectivity and differential quantities of triangle meshes (numpy/scipy).

All functions take ``faces`` as an integer array ``[F, 3]`` of vertex indices whose
winding (counter-clockwise seen from outside) defines the orientation, and
``vertices`` as a float array ``[N, 3]``. Vertices that no face references are allowed
everywhere: they are isolated vertices of the graph.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from jaxface.mesh.errors import MeshError

__all__ = [
    "boundary_loops",
    "connected_components",
    "cotangent_laplacian",
    "cotangent_weights",
    "edges",
    "face_normals",
    "validate_faces",
    "validate_vertices",
    "vertex_adjacency",
    "vertex_normals",
]


def validate_vertices(vertices, *, source=None) -> np.ndarray:
    """Checks a vertex array and returns it as float64.

    Args:
      vertices: ``[N, 3]`` float array.
      source: File the array came from, used in error messages.

    Returns:
      ``[N, 3]`` float64 copy-free view when possible.

    Raises:
      MeshError: if the shape is not ``[N, 3]`` or a coordinate is NaN or infinite.
    """
    array = np.asarray(vertices)
    if array.ndim != 2 or array.shape[1] != 3:
        raise MeshError(f"expected an array of shape [N, 3], got {array.shape}",
                        source=source, field="vertices")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise MeshError(f"expected real coordinates, got dtype {array.dtype}",
                        source=source, field="vertices")
    array = array.astype(np.float64, copy=False)
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise MeshError(
            f"expected finite coordinates, found {int(bad.sum())} vertices with NaN or inf "
            f"(first: vertex {first})", source=source, field="vertices")
    return array


def validate_faces(faces, num_vertices: int, *, source=None) -> np.ndarray:
    """Checks a triangle index array and returns it as int64.

    Args:
      faces: ``[F, 3]`` integer array of vertex indices.
      num_vertices: Number of vertices ``N``; every index must lie in ``[0, N)``.
      source: File the array came from, used in error messages.

    Returns:
      ``[F, 3]`` int64 array.

    Raises:
      MeshError: if the shape is not ``[F, 3]``, an index is out of range, or a face
        repeats a vertex.
    """
    array = np.asarray(faces)
    if array.ndim != 2 or array.shape[1] != 3:
        raise MeshError(f"expected triangles, an array of shape [F, 3], got {array.shape}",
                        source=source, field="faces")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.array_equal(array, np.round(array)):
            raise MeshError(f"expected integer vertex indices, got dtype {array.dtype}",
                            source=source, field="faces")
    array = array.astype(np.int64, copy=False)
    if array.size:
        low, high = int(array.min()), int(array.max())
        if low < 0 or high >= num_vertices:
            raise MeshError(
                f"expected vertex indices in [0, {num_vertices}), found indices in "
                f"[{low}, {high}]", source=source, field="faces")
        repeated = ((array[:, 0] == array[:, 1]) | (array[:, 1] == array[:, 2])
                    | (array[:, 0] == array[:, 2]))
        if repeated.any():
            first = int(np.flatnonzero(repeated)[0])
            raise MeshError(
                f"expected three distinct vertices per face, found {int(repeated.sum())} "
                f"degenerate faces (first: face {first} = {array[first].tolist()})",
                source=source, field="faces")
    return array


def _faces_array(faces) -> np.ndarray:
    array = np.asarray(faces, dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 3:
        raise MeshError(f"expected an array of shape [F, 3], got {array.shape}", field="faces")
    return array


def edges(faces) -> np.ndarray:
    """Undirected edges of a triangle mesh.

    Args:
      faces: ``[F, 3]`` integer vertex indices.

    Returns:
      ``[E, 2]`` int32 array, each row ``(i, j)`` with ``i < j``, rows unique and sorted
      lexicographically.
    """
    f = _faces_array(faces)
    pairs = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    pairs = np.sort(pairs, axis=1)
    return np.unique(pairs, axis=0).astype(np.int32).reshape(-1, 2)


def vertex_adjacency(faces, num_vertices: int) -> scipy.sparse.csr_array:
    """Symmetric 0/1 vertex adjacency matrix.

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.

    Returns:
      ``[N, N]`` ``scipy.sparse.csr_array`` of float64 with a 1 at ``(i, j)`` and
      ``(j, i)`` for every edge and zeros on the diagonal.
    """
    e = edges(faces).astype(np.int64)
    rows = np.concatenate([e[:, 0], e[:, 1]])
    cols = np.concatenate([e[:, 1], e[:, 0]])
    data = np.ones(rows.shape[0], dtype=np.float64)
    matrix = scipy.sparse.csr_array((data, (rows, cols)), shape=(num_vertices, num_vertices))
    matrix.sort_indices()
    return matrix


def connected_components(faces, num_vertices: int) -> tuple[int, np.ndarray]:
    """Connected components of the vertex graph.

    Vertices that no face references form one component each.

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.

    Returns:
      ``(count, labels)``: the number of components and an ``[N]`` int32 label per
      vertex. Labels are numbered in order of each component's lowest vertex index.
    """
    count, labels = scipy.sparse.csgraph.connected_components(
        vertex_adjacency(faces, num_vertices), directed=False)
    return int(count), labels.astype(np.int32)


def boundary_loops(faces) -> list[np.ndarray]:
    """Closed boundary loops, ordered along the face winding.

    A boundary edge belongs to exactly one face. Each loop follows the direction of its
    edges in their faces (so the loop around a counter-clockwise disc runs
    counter-clockwise), starts at its lowest vertex index, and does not repeat its first
    vertex at the end. A vertex where several loops touch appears once in each loop.

    Args:
      faces: ``[F, 3]`` integer vertex indices.

    Returns:
      List of int32 arrays of vertex indices, longest loop first (ties: lowest first
      vertex first). Empty for a closed mesh.
    """
    f = _faces_array(faces)
    if f.shape[0] == 0:
        return []
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    undirected = np.sort(directed, axis=1)
    _, inverse, counts = np.unique(undirected, axis=0, return_inverse=True, return_counts=True)
    boundary = directed[counts[inverse.ravel()] == 1]
    if boundary.shape[0] == 0:
        return []
    order = np.lexsort((boundary[:, 1], boundary[:, 0]))
    boundary = boundary[order]
    outgoing: dict[int, list[int]] = {}
    for index, (start, _) in enumerate(boundary.tolist()):
        outgoing.setdefault(start, []).append(index)
    used = np.zeros(boundary.shape[0], dtype=bool)
    starts = boundary[:, 0].tolist()
    ends = boundary[:, 1].tolist()
    loops = []
    for first in range(boundary.shape[0]):
        if used[first]:
            continue
        used[first] = True
        loop = [starts[first]]
        current = ends[first]
        while current != loop[0]:
            candidates = [h for h in outgoing.get(current, []) if not used[h]]
            if not candidates:
                break
            used[candidates[0]] = True
            loop.append(current)
            current = ends[candidates[0]]
        if current != loop[0]:
            loop.append(current)
        loop_array = np.asarray(loop, dtype=np.int32)
        loop_array = np.roll(loop_array, -int(np.argmin(loop_array)))
        loops.append(loop_array)
    loops.sort(key=lambda loop: (-loop.shape[0], int(loop[0])))
    return loops


def face_normals(vertices, faces, *, normalize: bool = True) -> np.ndarray:
    """Per-face normals from the face winding.

    Args:
      vertices: ``[N, 3]`` float coordinates.
      faces: ``[F, 3]`` integer vertex indices.
      normalize: If True return unit normals (zero for degenerate faces); otherwise
        return the cross products ``(v1 - v0) x (v2 - v0)``, whose length is twice
        the face area.

    Returns:
      ``[F, 3]`` normals in the floating dtype of ``vertices`` (float64 for integer
      input).
    """
    v = np.asarray(vertices)
    dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float64
    v = v.astype(np.float64, copy=False)
    f = _faces_array(faces)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    if normalize:
        norm = np.linalg.norm(cross, axis=1, keepdims=True)
        cross = np.divide(cross, norm, out=np.zeros_like(cross), where=norm > 0)
    return cross.astype(dtype)


def vertex_normals(vertices, faces) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Each vertex normal is the normalised sum of the cross products of its faces (each
    proportional to face area times face normal). Vertices without faces, or whose
    faces cancel, get a zero vector.

    Args:
      vertices: ``[N, 3]`` float coordinates.
      faces: ``[F, 3]`` integer vertex indices.

    Returns:
      ``[N, 3]`` normals in the floating dtype of ``vertices`` (float64 for integer
      input).
    """
    v = np.asarray(vertices)
    dtype = v.dtype if np.issubdtype(v.dtype, np.floating) else np.float64
    f = _faces_array(faces)
    cross = face_normals(v.astype(np.float64), f, normalize=False)
    summed = np.zeros((v.shape[0], 3), dtype=np.float64)
    for corner in range(3):
        np.add.at(summed, f[:, corner], cross)
    norm = np.linalg.norm(summed, axis=1, keepdims=True)
    unit = np.divide(summed, norm, out=np.zeros_like(summed), where=norm > 0)
    return unit.astype(dtype)


def cotangent_weights(vertices, faces) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half-cotangent weights of every face corner.

    Args:
      vertices: ``[N, 3]`` float coordinates.
      faces: ``[F, 3]`` integer vertex indices.

    Returns:
      ``(rows, cols, weights)`` of length ``3F``: for the corner at ``faces[:, k]`` the
      weight ``cot(angle) / 2`` belongs to the opposite edge ``(rows, cols)``.
      Degenerate faces contribute zero.
    """
    v = np.asarray(vertices, dtype=np.float64)
    f = _faces_array(faces)
    rows, cols, weights = [], [], []
    for corner in range(3):
        i, j, k = f[:, corner], f[:, (corner + 1) % 3], f[:, (corner + 2) % 3]
        a = v[j] - v[i]
        b = v[k] - v[i]
        dot = np.einsum("ij,ij->i", a, b)
        cross = np.linalg.norm(np.cross(a, b), axis=1)
        cot = np.divide(dot, cross, out=np.zeros_like(dot), where=cross > 0)
        rows.append(j)
        cols.append(k)
        weights.append(0.5 * cot)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)


def cotangent_laplacian(vertices, faces) -> scipy.sparse.csr_array:
    """Cotangent discretisation of the Laplace-Beltrami operator (no mass matrix).

    ``L[i, j] = -(cot(alpha_ij) + cot(beta_ij)) / 2`` for every edge ``(i, j)``, where
    ``alpha_ij`` and ``beta_ij`` are the angles opposite the edge in its (one or two)
    faces, and ``L[i, i] = -sum_j L[i, j]``. The matrix is symmetric, its rows sum to
    zero, and it is positive semi-definite when all weights are non-negative (so
    ``x @ L @ x`` is the Dirichlet energy of a field ``x``).

    Args:
      vertices: ``[N, 3]`` float coordinates.
      faces: ``[F, 3]`` integer vertex indices.

    Returns:
      ``[N, N]`` ``scipy.sparse.csr_array`` of float64.
    """
    n = np.asarray(vertices).shape[0]
    rows, cols, weights = cotangent_weights(vertices, faces)
    off = scipy.sparse.coo_array(
        (np.concatenate([-weights, -weights]),
         (np.concatenate([rows, cols]), np.concatenate([cols, rows]))), shape=(n, n)).tocsr()
    diagonal = -np.asarray(off.sum(axis=1)).ravel()
    laplacian = (off + scipy.sparse.diags_array(diagonal, shape=(n, n))).tocsr()
    laplacian.sort_indices()
    return laplacian
