"""UV parameterisation and geometry-image sampling maps (Fernandez Abrevaya et al. 2019, §4.1).

The geometry mapping layer turns a mesh into an image: every pixel stores the three
vertices of the UV triangle containing its centre and the barycentric coordinates of
the centre, so an image of any per-vertex quantity is
``sum_k barycentric[..., k] * values[vertex_indices[..., k]]``. Both arrays depend only
on the template and a UV parameterisation, so they are computed once here (numpy) and
used as constants by models.

``harmonic_uv`` computes that parameterisation for a disc-like mesh: the outer boundary
loop goes to the boundary of the unit square and the interior solves a Laplace
equation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import (
    boundary_loops,
    connected_components,
    cotangent_weights,
    validate_faces,
    validate_vertices,
)

__all__ = ["GeometryImageMap", "harmonic_uv", "rasterize_uv"]


def _square_boundary(points: np.ndarray) -> np.ndarray:
    """Places a closed loop of 3D points on the unit square's boundary, counter-clockwise.

    Corners go to the loop vertices closest to arc-length fractions 0, 1/4, 1/2 and 3/4;
    vertices between two corners are spaced by arc length along that side.
    """
    segment = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
    arc = np.concatenate([[0.0], np.cumsum(segment)])  # arc[-1] closes the loop
    total = arc[-1]
    if total <= 0:
        raise MeshError("the outer boundary loop has zero length", field="faces")
    corners = [0]
    for k in (1, 2, 3):
        index = int(np.argmin(np.abs(arc[:-1] / total - k / 4.0)))
        corners.append(min(max(index, corners[-1] + 1), points.shape[0] - (4 - k)))
    corners.append(points.shape[0])  # the loop closes at vertex 0
    side_start = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], np.float64)
    side_end = np.roll(side_start, -1, axis=0)
    uv = np.zeros((points.shape[0], 2))
    for side in range(4):
        lo, hi = corners[side], corners[side + 1]
        t = (arc[lo:hi] - arc[lo]) / max(arc[hi] - arc[lo], np.finfo(float).tiny)
        uv[lo:hi] = side_start[side] + t[:, None] * (side_end[side] - side_start[side])
    return uv


def harmonic_uv(
    vertices,
    faces,
    *,
    corner_vertex: int | None = None,
    allow_other_components: bool = False,
) -> np.ndarray:
    """Harmonic map of a disc-like mesh onto the unit square.

    The longest boundary loop (by arc length) is mapped to the square's boundary in
    counter-clockwise order (so faces wound counter-clockwise keep positive area in
    UV): its four corners are the loop vertices nearest to a quarter, half and three
    quarters of the loop's arc length from the first corner, and the vertices between
    corners are spaced by arc length. Interior vertices solve ``L u = 0`` with the
    cotangent Laplacian, whose negative weights (obtuse angles) are clamped to a tiny
    positive value; with positive weights and a convex boundary the map of a disc has
    no flipped triangles (Tutte/Floater). Other boundary loops (holes such as eyes or a
    mouth) are free, i.e. natural boundary conditions.

    Args:
      vertices: ``[N, 3]`` coordinates.
      faces: ``[F, 3]`` triangles.
      corner_vertex: Vertex of the outer loop placed at ``(0, 0)``; default: the
        loop's lowest vertex index.
      allow_other_components: If False, vertices outside the outer loop's connected
        component raise an error; if True they get NaN coordinates.

    Returns:
      ``[N, 2]`` float64 UV coordinates in ``[0, 1]^2``.

    Raises:
      MeshError: if the mesh has no boundary, the outer loop has fewer than 4
        vertices, ``corner_vertex`` is not on it, or (by default) the mesh has other
        components.
    """
    v = validate_vertices(vertices)
    f = validate_faces(faces, v.shape[0])
    n = v.shape[0]
    loops = boundary_loops(f)
    if not loops:
        raise MeshError("expected a disc-like mesh with a boundary, the mesh is closed",
                        field="faces")
    lengths = [np.linalg.norm(v[np.roll(loop, -1)] - v[loop], axis=1).sum() for loop in loops]
    outer = loops[int(np.argmax(lengths))].astype(np.int64)
    if outer.shape[0] < 4:
        raise MeshError(f"the outer boundary loop has {outer.shape[0]} vertices, expected "
                        "at least 4 (one per square corner)", field="faces")
    if corner_vertex is not None:
        where = np.flatnonzero(outer == corner_vertex)
        if where.size == 0:
            raise MeshError(f"corner_vertex {corner_vertex} is not on the outer boundary",
                            field="corner_vertex")
        outer = np.roll(outer, -int(where[0]))
    _, labels = connected_components(f, n)
    inside = labels == labels[outer[0]]
    if not allow_other_components and not inside.all():
        raise MeshError(
            f"expected one connected disc, {int((~inside).sum())} vertices lie in other "
            "components (pass allow_other_components=True to leave them out)",
            field="faces")

    rows, cols, weights = cotangent_weights(v, f)
    matrix = scipy.sparse.coo_array((weights, (rows, cols)), shape=(n, n)).tocsr()
    matrix = matrix + matrix.T
    positive = np.abs(matrix.data[matrix.data != 0])
    floor = 1e-8 * (positive.mean() if positive.size else 1.0)
    matrix.data = np.maximum(matrix.data, floor)  # clamp negative and zero weights
    degree = np.asarray(matrix.sum(axis=1)).ravel()

    uv = np.full((n, 2), np.nan)
    uv[outer] = _square_boundary(v[outer])
    fixed = np.zeros(n, bool)
    fixed[outer] = True
    free = np.flatnonzero(inside & ~fixed)
    if free.size:
        laplacian = (scipy.sparse.diags_array(degree) - matrix).tocsr()
        system = laplacian[free][:, free].tocsc()
        rhs = -(laplacian[free][:, outer] @ uv[outer])
        solution = scipy.sparse.linalg.spsolve(system, rhs)
        uv[free] = np.asarray(solution).reshape(-1, 2)
    return uv


@dataclasses.dataclass(frozen=True)
class GeometryImageMap:
    """Per-pixel sampling of a mesh into an ``H x W`` geometry image.

    Pixel ``(i, j)`` has its centre at ``u = (j + 0.5) / W``, ``v = (i + 0.5) / H``:
    columns follow ``u`` and **row 0 is v = 0** (flip rows, ``[::-1]``, to display with v
    pointing up).

    Attributes:
      vertex_indices: ``[H, W, 3]`` int32 corners of the UV triangle containing the
        pixel centre; 0 where ``mask`` is False.
      barycentric: ``[H, W, 3]`` float32 weights of those corners (sum 1); 0 where
        ``mask`` is False.
      mask: ``[H, W]`` bool, True where a triangle covers the pixel centre.
    """

    vertex_indices: np.ndarray
    barycentric: np.ndarray
    mask: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.mask.shape)

    def interpolate(self, values) -> np.ndarray:
        """Geometry image of per-vertex values (numpy reference of the mapping layer).

        Args:
          values: ``[..., N, C]`` per-vertex values.

        Returns:
          ``[..., H, W, C]`` images; uncovered pixels are 0.
        """
        values = np.asarray(values)
        gathered = np.take(values, self.vertex_indices, axis=-2)  # [..., H, W, 3, C]
        return (gathered * self.barycentric[..., None]).sum(axis=-2)


def rasterize_uv(uv, faces, height: int, width: int) -> GeometryImageMap:
    """Finds, for every pixel centre, its UV triangle and barycentric coordinates.

    Each triangle is tested against the pixel centres inside its bounding box (all
    triangles at once, vectorised). A centre on a shared edge goes to the triangle in
    which it lies deepest (largest smallest barycentric coordinate; ties to the lowest
    face index). Faces with non-finite UVs or zero UV area are skipped.

    Args:
      uv: ``[N, 2]`` UV coordinates (normally in ``[0, 1]^2``).
      faces: ``[F, 3]`` triangles.
      height: Image height ``H`` (rows, along v).
      width: Image width ``W`` (columns, along u).

    Returns:
      The :class:`GeometryImageMap`.
    """
    if height < 1 or width < 1:
        raise ValueError(f"height and width must be positive, got {height}, {width}")
    uv = np.asarray(uv, np.float64)
    if uv.ndim != 2 or uv.shape[1] != 2:
        raise MeshError(f"expected an array of shape [N, 2], got {uv.shape}", field="uv")
    f = validate_faces(faces, uv.shape[0])
    corners = uv[f]  # [F, 3, 2]
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    usable = np.isfinite(corners).all(axis=(1, 2)) & (np.abs(area) > 1e-300)
    ids = np.flatnonzero(usable)
    low = corners[ids].min(axis=1)
    high = corners[ids].max(axis=1)
    j0 = np.clip(np.ceil(low[:, 0] * width - 0.5), 0, width).astype(np.int64)
    j1 = np.clip(np.floor(high[:, 0] * width - 0.5), -1, width - 1).astype(np.int64)
    i0 = np.clip(np.ceil(low[:, 1] * height - 0.5), 0, height).astype(np.int64)
    i1 = np.clip(np.floor(high[:, 1] * height - 0.5), -1, height - 1).astype(np.int64)
    n_cols = np.maximum(j1 - j0 + 1, 0)
    n_rows = np.maximum(i1 - i0 + 1, 0)
    counts = n_cols * n_rows
    face = np.repeat(ids, counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    cols_per = np.repeat(n_cols, counts)
    col = np.repeat(j0, counts) + offset % np.maximum(cols_per, 1)
    row = np.repeat(i0, counts) + offset // np.maximum(cols_per, 1)
    point = np.stack([(col + 0.5) / width, (row + 0.5) / height], axis=1)

    pa, pb, pc = uv[f[face, 0]], uv[f[face, 1]], uv[f[face, 2]]

    def cross(p, q, r):
        return (q[:, 0] - p[:, 0]) * (r[:, 1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[:, 0] - p[:, 0])

    total = area[face]
    weights = np.stack([cross(point, pb, pc), cross(pa, point, pc), cross(pa, pb, point)], 1)
    weights /= total[:, None]
    depth = weights.min(axis=1)
    inside = depth >= -1e-9
    face, row, col = face[inside], row[inside], col[inside]
    weights, depth = weights[inside], depth[inside]
    pixel = row * width + col
    order = np.lexsort((face, -depth, pixel))
    first = np.ones(order.shape[0], bool)
    first[1:] = pixel[order][1:] != pixel[order][:-1]
    chosen = order[first]

    vertex_indices = np.zeros((height * width, 3), np.int32)
    barycentric = np.zeros((height * width, 3), np.float32)
    mask = np.zeros(height * width, bool)
    best = np.clip(weights[chosen], 0.0, None)
    best /= best.sum(axis=1, keepdims=True)
    vertex_indices[pixel[chosen]] = f[face[chosen]]
    barycentric[pixel[chosen]] = best
    mask[pixel[chosen]] = True
    return GeometryImageMap(vertex_indices.reshape(height, width, 3),
                            barycentric.reshape(height, width, 3), mask.reshape(height, width))
