"""CoMA-style mesh hierarchies: quadric half-edge decimation, down- and up-sampling.

Level 0 is the template. Level ``i`` keeps exactly ``ceil(n_{i-1} / factor_i)`` of
level ``i-1``'s vertices at their original positions (5023 -> 1256 -> 314 -> 79 -> 20
for FLAME with factors ``(4, 4, 4, 4)``).

* **Down-sampling** is a pure selection: ``down_indices`` ``[n_i]`` lists the surviving
  level ``i-1`` vertices in ascending order, so level ``i``'s vertex ``j`` is level
  ``i-1``'s vertex ``down_indices[j]`` (CoMA's ``D``).
* **Up-sampling** maps every level ``i-1`` vertex to a point of level ``i``'s surface:
  ``up_indices`` ``[n_{i-1}, 3]`` are the corners of a coarse triangle and ``up_weights``
  ``[n_{i-1}, 3]`` the barycentric coordinates of the vertex's closest point on it (rows sum
  to 1, no negative weights). Survivors map to themselves: indices ``(j, j, j)``, weights
  ``(1, 0, 0)`` (CoMA's ``U``, with exact barycentrics instead of CoMA's least-squares fit,
  whose rows on edges need not sum to 1).

Two decimation methods (``method``):

* ``"qslim"`` ports CoMA's quadric half-edge collapse to numpy with a binary heap and
  per-vertex face sets: every vertex gets the sum of the plane quadrics of its faces; an edge
  costs ``min(p_r^T Q p_r, p_c^T Q p_c)`` with ``Q = Q_r + Q_c``; the cheaper endpoint stays
  where it is and the other is removed; the kept vertex inherits ``Q``. Each collapse removes
  exactly one vertex, so the level sizes are exact. Unlike CoMA, a collapse is refused when it
  would break the manifold (link condition, pinching two boundaries together), duplicate a
  face, leave a vertex without faces, or flip a face; boundary edges add plane quadrics
  perpendicular to their face (``boundary_weight``; 0 gives CoMA's quadrics) so that open
  borders keep their shape; equal costs are broken by shorter edge length, then by index.
  Every fine vertex is up-sampled from its closest point on the whole coarse surface. This
  is the default: trained models and the shipped bundle were built with it.
* ``"surface_distance"`` orders the same half-edge collapses (same checks) by what down- then
  up-sampling loses: every removed vertex stays attached to a coarse face near it, and a
  collapse costs the change of the summed squared distances of the vertices it re-attaches
  (the quadric cost only breaks ties); no collapse makes a new sliver face. Vertices facing a
  narrow gap of their boundary (lips at a mouth slit) are also measured in a copy of the
  template where the gap is open (``boundary_weight``), so the two sides of the gap are not
  interpolated from each other; a small closed component (an eyeball) may vanish at a coarse
  level when that costs less, as in CoMA, instead of holding four vertices. Up-sampling
  projects each vertex onto the face it is attached to. On the face template, a FLAME-size
  head and the shapes of ``python -m experiments.s2d.hierarchy_quality`` its error is below
  CoMA's at every level and every single step (``docs/mesh_hierarchies.md``); it takes 6-8x
  as long to build.

If no allowed collapse remains before the target size, the checks are relaxed step by step
(flip test first, then the manifold tests) and a ``RuntimeWarning`` says so. This yields a
valid coarse mesh down to tiny sizes (a closed component stops at a tetrahedron, an open one
at a triangle). fast-simplification's collapse history is not used: it places the kept
vertices at quadric-optimal positions, so its flip checks were made for other positions than
the original ones CoMA-style down-sampling keeps, and a prefix of its history can leave
survivors that belong to no face.

Closest points: the distance to the nearest coarse vertex bounds the distance to the
surface, a ``cKDTree`` over triangle centres yields every triangle that could be closer,
and an exact vectorised point-triangle projection picks the closest (no rtree needed).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import warnings
from collections.abc import Sequence

import numpy as np
import scipy.spatial

from jaxface.mesh.errors import MeshError
from jaxface.mesh.spirals import (
    default_reference_vertices,
    nearest_vertices,
    spiral_indices,
)
from jaxface.mesh.topology import (
    boundary_loops,
    connected_components,
    edges,
    validate_faces,
    validate_vertices,
)

__all__ = [
    "Level",
    "MeshHierarchy",
    "build_hierarchy",
    "closest_points_on_mesh",
    "level_reference_vertices",
    "spirals_for",
]

METHODS = ("qslim", "surface_distance")


@dataclasses.dataclass(frozen=True)
class Level:
    """One level of a :class:`MeshHierarchy`.

    Attributes:
      vertices: ``[n_i, 3]`` float32 coordinates (original template positions).
      faces: ``[f_i, 3]`` int32 triangles.
      down_indices: ``[n_i]`` int32 ascending indices into level ``i-1``'s vertices;
        ``None`` at level 0.
      up_indices: ``[n_{i-1}, 3]`` int32 indices into this level's vertices; ``None`` at
        level 0.
      up_weights: ``[n_{i-1}, 3]`` float32 barycentric weights, rows summing to 1;
        ``None`` at level 0.
    """

    vertices: np.ndarray
    faces: np.ndarray
    down_indices: np.ndarray | None = None
    up_indices: np.ndarray | None = None
    up_weights: np.ndarray | None = None

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])


@dataclasses.dataclass(frozen=True)
class MeshHierarchy:
    """A template and its successively decimated levels.

    Moving from level ``i-1`` to level ``i`` (encoder, ``i >= 1``)::

        x_i = x_prev[..., down_indices(i), :]

    and back (decoder)::

        x_prev = (x_i[..., up_indices(i), :] * up_weights(i)[..., None]).sum(-2)

    Attributes:
      levels: The levels, finest first.
      factors: Decimation factor of each step (``len(levels) - 1`` entries).
      method: Decimation method name.
      boundary_weight: Weight of the boundary-preserving quadrics.
    """

    levels: tuple[Level, ...]
    factors: tuple[float, ...]
    method: str = "qslim"
    boundary_weight: float = 1.0

    @property
    def num_levels(self) -> int:
        return len(self.levels)

    @property
    def sizes(self) -> tuple[int, ...]:
        """Vertex count of every level."""
        return tuple(level.num_vertices for level in self.levels)

    def vertices(self, i: int) -> np.ndarray:
        """``[n_i, 3]`` float32 vertices of level ``i``."""
        return self.levels[i].vertices

    def faces(self, i: int) -> np.ndarray:
        """``[f_i, 3]`` int32 faces of level ``i``."""
        return self.levels[i].faces

    def _coarse(self, i: int) -> Level:
        if not 1 <= i < self.num_levels:
            raise IndexError(f"level {i} has no sampling arrays; use 1..{self.num_levels - 1}")
        return self.levels[i]

    def down_indices(self, i: int) -> np.ndarray:
        """``[n_i]`` int32 indices of level ``i-1`` vertices kept at level ``i``."""
        return self._coarse(i).down_indices

    def up_indices(self, i: int) -> np.ndarray:
        """``[n_{i-1}, 3]`` int32 level-``i`` vertices interpolating each level ``i-1`` vertex."""
        return self._coarse(i).up_indices

    def up_weights(self, i: int) -> np.ndarray:
        """``[n_{i-1}, 3]`` float32 barycentric weights matching :meth:`up_indices`."""
        return self._coarse(i).up_weights

    def down_transform(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Down-sampling from level ``i-1`` to ``i`` as COO ``(rows, cols, vals)``.

        Returns:
          int32 ``rows`` (level ``i`` vertex), int32 ``cols`` (level ``i-1`` vertex) and
          float32 ``vals`` (all ones), each ``[n_i]``.
        """
        down = self.down_indices(i)
        return (np.arange(down.shape[0], dtype=np.int32), down.astype(np.int32),
                np.ones(down.shape[0], np.float32))

    def up_transform(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Up-sampling from level ``i`` to ``i-1`` as COO ``(rows, cols, vals)``.

        Zero weights are dropped.

        Returns:
          int32 ``rows`` (level ``i-1`` vertex), int32 ``cols`` (level ``i`` vertex) and
          float32 ``vals``, each of length ``<= 3 n_{i-1}``.
        """
        index, weight = self.up_indices(i), self.up_weights(i)
        rows = np.repeat(np.arange(index.shape[0], dtype=np.int32), 3)
        keep = weight.ravel() != 0
        return rows[keep], index.ravel()[keep].astype(np.int32), weight.ravel()[keep]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat dict of arrays (``level{i}_{field}``) for ``np.savez``; see :meth:`from_arrays`."""
        arrays: dict[str, np.ndarray] = {
            "factors": np.asarray(self.factors, np.float64),
            "method": np.asarray(self.method),
            "boundary_weight": np.asarray(self.boundary_weight, np.float64),
        }
        for i, level in enumerate(self.levels):
            for field in dataclasses.fields(Level):
                value = getattr(level, field.name)
                if value is not None:
                    arrays[f"level{i}_{field.name}"] = value
        return arrays

    @classmethod
    def from_arrays(cls, arrays) -> MeshHierarchy:
        """Rebuilds a hierarchy from :meth:`to_arrays` output (or a loaded ``.npz``)."""
        factors = tuple(float(f) for f in np.asarray(arrays["factors"]).reshape(-1))
        levels = []
        for i in range(len(factors) + 1):
            fields = {}
            for field in dataclasses.fields(Level):
                key = f"level{i}_{field.name}"
                fields[field.name] = np.asarray(arrays[key]) if key in arrays else None
            levels.append(Level(**fields))
        return cls(tuple(levels), factors, str(np.asarray(arrays["method"])),
                   float(np.asarray(arrays["boundary_weight"])))


# ---------------------------------------------------------------------------------------
# Quadric half-edge decimation.


def _quadrics(vertices: np.ndarray, faces: np.ndarray, boundary_weight: float) -> np.ndarray:
    """``[N, 4, 4]`` plane quadrics of each vertex's faces (plus boundary planes)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    normal = np.cross(b - a, c - a)
    length = np.linalg.norm(normal, axis=1, keepdims=True)
    normal = np.divide(normal, length, out=np.zeros_like(normal), where=length > 0)
    planes = np.concatenate([normal, -np.einsum("ij,ij->i", normal, a)[:, None]], axis=1)
    per_face = planes[:, :, None] * planes[:, None, :]
    quadrics = np.zeros((vertices.shape[0], 4, 4))
    for k in range(3):
        np.add.at(quadrics, faces[:, k], per_face)
    if boundary_weight > 0 and faces.shape[0]:
        directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
        owner = np.tile(np.arange(faces.shape[0]), 3)
        _, inverse, counts = np.unique(np.sort(directed, axis=1), axis=0, return_inverse=True,
                                       return_counts=True)
        on_boundary = counts[inverse.ravel()] == 1
        start, stop = directed[on_boundary, 0], directed[on_boundary, 1]
        edge = vertices[stop] - vertices[start]
        side = np.cross(edge, normal[owner[on_boundary]])
        side_length = np.linalg.norm(side, axis=1, keepdims=True)
        side = np.divide(side, side_length, out=np.zeros_like(side), where=side_length > 0)
        side_planes = np.concatenate(
            [side, -np.einsum("ij,ij->i", side, vertices[start])[:, None]], axis=1)
        per_edge = boundary_weight * side_planes[:, :, None] * side_planes[:, None, :]
        np.add.at(quadrics, start, per_edge)
        np.add.at(quadrics, stop, per_edge)
    return quadrics


class _Decimator:
    """Mutable state of one quadric half-edge decimation run."""

    STAGES = 3  # 0: all checks; 1: no flip check; 2: no manifold check

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, boundary_weight: float):
        self.vertices = vertices
        self.points = vertices.tolist()
        self.faces = faces.tolist()
        self.face_alive = [True] * len(self.faces)
        self.vertex_faces: list[set[int]] = [set() for _ in range(vertices.shape[0])]
        for index, face in enumerate(self.faces):
            for vertex in face:
                self.vertex_faces[vertex].add(index)
        self.alive = np.ones(vertices.shape[0], bool)
        self.count = vertices.shape[0]
        self.version = [0] * vertices.shape[0]
        self.quadrics = _quadrics(vertices, faces, boundary_weight)
        extent = np.ptp(vertices, axis=0).max() if vertices.size else 1.0
        self.zero_cost = 1e-12 * max(float(extent), 1e-30) ** 2
        self.relaxed = 0

    # --- costs -------------------------------------------------------------------------
    def _entries(self, pairs: np.ndarray) -> list[tuple]:
        if pairs.shape[0] == 0:
            return []
        r, c = pairs[:, 0], pairs[:, 1]
        q = self.quadrics[r] + self.quadrics[c]
        hr = np.concatenate([self.vertices[r], np.ones((r.shape[0], 1))], axis=1)
        hc = np.concatenate([self.vertices[c], np.ones((c.shape[0], 1))], axis=1)
        keep_r_cost = np.einsum("ei,eij,ej->e", hr, q, hr)
        keep_c_cost = np.einsum("ei,eij,ej->e", hc, q, hc)
        keep_r = keep_r_cost < keep_c_cost
        cost = np.minimum(keep_r_cost, keep_c_cost)
        cost = np.where(cost < self.zero_cost, 0.0, cost)
        length = np.einsum("ij,ij->i", hr[:, :3] - hc[:, :3], hr[:, :3] - hc[:, :3])
        version = self.version
        return [
            (cst, lng, int(a), int(b), bool(k), version[a], version[b])
            for cst, lng, a, b, k in zip(cost.tolist(), length.tolist(), r.tolist(),
                                         c.tolist(), keep_r.tolist(), strict=True)
        ]

    def _neighbours(self, vertex: int) -> set[int]:
        result: set[int] = set()
        for face in self.vertex_faces[vertex]:
            result.update(self.faces[face])
        result.discard(vertex)
        return result

    def _on_boundary(self, vertex: int) -> bool:
        counts: dict[int, int] = {}
        for face in self.vertex_faces[vertex]:
            for other in self.faces[face]:
                if other != vertex:
                    counts[other] = counts.get(other, 0) + 1
        return any(count == 1 for count in counts.values())

    # --- checks ------------------------------------------------------------------------
    def _allowed(self, remove: int, keep: int, stage: int) -> bool:
        faces_remove = self.vertex_faces[remove]
        faces_keep = self.vertex_faces[keep]
        shared = faces_remove & faces_keep
        if not shared:
            return False
        moved = faces_remove - shared
        if not moved and not (faces_keep - shared):
            return False  # the kept vertex would lose all its faces
        kept_triangles = {frozenset(self.faces[f]) for f in faces_keep - shared}
        for f in moved:
            new = frozenset(keep if v == remove else v for v in self.faces[f])
            if new in kept_triangles:
                return False  # would duplicate a face
        if stage >= 2:
            return True
        if len(shared) > 2:
            return False
        opposite = set()
        for f in shared:
            opposite.update(self.faces[f])
        opposite -= {remove, keep}
        if self._neighbours(remove) & self._neighbours(keep) != opposite:
            return False
        both_boundary = self._on_boundary(remove) and self._on_boundary(keep)
        if both_boundary != (len(shared) == 1):
            return False  # an interior edge joining two boundary points would pinch
        if stage >= 1:
            return True
        points = self.points
        target = points[keep]
        for f in moved:
            corners = [points[v] for v in self.faces[f]]
            before = _normal(*corners)
            corners = [target if v == remove else points[v] for v in self.faces[f]]
            after = _normal(*corners)
            length_before = math.sqrt(_dot(before, before))
            length_after = math.sqrt(_dot(after, after))
            if length_before == 0:
                continue
            if length_after <= 1e-9 * length_before:
                return False  # the face would become degenerate
            if _dot(before, after) <= 1e-3 * length_before * length_after:
                return False  # the face would flip or stand on its edge
        return True

    # --- collapse ----------------------------------------------------------------------
    def _collapse(self, remove: int, keep: int) -> None:
        faces_remove = self.vertex_faces[remove]
        shared = faces_remove & self.vertex_faces[keep]
        for f in shared:
            self.face_alive[f] = False
            for v in self.faces[f]:
                self.vertex_faces[v].discard(f)
        for f in list(faces_remove):
            self.faces[f] = [keep if v == remove else v for v in self.faces[f]]
            self.vertex_faces[keep].add(f)
        self.vertex_faces[remove] = set()
        self.quadrics[keep] += self.quadrics[remove]
        self.version[remove] += 1
        self.version[keep] += 1
        self.alive[remove] = False
        self.count -= 1

    def _all_edges(self) -> np.ndarray:
        live = [self.faces[f] for f in range(len(self.faces)) if self.face_alive[f]]
        if not live:
            return np.zeros((0, 2), np.int64)
        return edges(np.asarray(live, np.int64)).astype(np.int64)

    def _next_stage(self, progress: bool, stage: int, target: int) -> int:
        """The relaxation stage of the next pass over the queue.

        Back to strict (0) after a pass that collapsed something (a relaxed collapse may have
        unblocked strict ones), one stage more relaxed after a pass that could not.

        Raises:
          MeshError: no stage allows a collapse and the target is not reached.
        """
        if progress:
            return 0
        if self.count > target:
            stage += 1
            if stage >= self.STAGES:
                raise MeshError(
                    f"cannot decimate below {self.count} vertices (target {target}) "
                    "without creating duplicate faces or vertices without faces",
                    field="faces")
        return stage

    def run(self, target: int) -> None:
        stage = 0
        while self.count > target:
            heap = self._entries(self._all_edges())
            heapq.heapify(heap)
            progress = False
            while heap and self.count > target:
                _, _, r, c, keep_r, version_r, version_c = heapq.heappop(heap)
                if self.version[r] != version_r or self.version[c] != version_c:
                    continue
                keep, remove = (r, c) if keep_r else (c, r)
                if not self._allowed(remove, keep, stage):
                    continue
                self._collapse(remove, keep)
                progress = True
                self.relaxed += stage > 0
                around = sorted(self._neighbours(keep))
                pairs = np.array([[min(keep, v), max(keep, v)] for v in around], np.int64)
                for entry in self._entries(pairs.reshape(-1, 2)):
                    heapq.heappush(heap, entry)
            stage = self._next_stage(progress, stage, target)

    def result(self) -> tuple[np.ndarray, np.ndarray]:
        """``(survivors [m] ascending, faces [f, 3])`` in the input's vertex indices."""
        survivors = np.flatnonzero(self.alive)
        faces = [self.faces[f] for f in range(len(self.faces)) if self.face_alive[f]]
        unique_faces, seen = [], set()
        for face in faces:
            key = frozenset(face)
            if key not in seen:
                seen.add(key)
                unique_faces.append(face)
        return survivors, np.asarray(unique_faces, np.int64).reshape(-1, 3)


class _SurfaceDecimator(_Decimator):
    """Half-edge collapses ordered by the up-sampling error they add (``"surface_distance"``).

    Every removed vertex is attached to a face of the coarse mesh and keeps its squared
    distance to it. Collapsing ``remove`` into ``keep`` re-projects ``remove`` and the vertices
    attached to ``remove``'s faces onto ``keep``'s faces after the collapse; the cost is the
    change of their summed squared distances (what down-then-up sampling of the template
    loses), then the quadric cost, the edge length and the indices break ties. Both directions
    of an edge are queued; an entry whose endpoints changed since it was queued is evaluated
    again when it comes out of the queue, before anything else is collapsed.

    A gap of the boundary that is a millimetre wide on the template (a mouth slit) costs
    nothing to bridge there, but the shapes open it. So a vertex at a narrow gap
    (:func:`_gap_openings`) also counts its distance in a copy of the template where every gap
    is open (its vertices moved apart by ``boundary_weight`` times the opening): interpolating
    one lip from the other, or from a face that does not follow the lip, costs there.

    A whole component may also go (its vertices are then attached to the nearest remaining
    face) when that costs less and the level keeps its exact size, as CoMA's collapse drops
    small closed parts such as eyeballs at coarse levels.
    """

    SLIVER = 0.1  # no collapse makes a face of lower quality (see _quality) at stage 0

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, boundary_weight: float):
        super().__init__(vertices, faces, boundary_weight)
        self.boundary_weight = float(boundary_weight)
        self.attached: list[list[int]] = [[] for _ in self.faces]
        self.face_array = np.array(faces, np.int64)  # self.faces as an array
        self.error = np.zeros(vertices.shape[0])
        opening = _gap_openings(vertices, faces)
        self.at_gap = np.any(opening != 0, axis=1) & (self.boundary_weight > 0)
        self.opened = vertices + self.boundary_weight * opening
        _, self.labels = connected_components(faces, vertices.shape[0])
        has_faces = np.zeros(vertices.shape[0], bool)
        has_faces[faces.ravel()] = True
        self.component_alive = np.bincount(self.labels[has_faces],
                                           minlength=int(self.labels.max()) + 1)
        self.component_version = [0] * self.component_alive.shape[0]
        self.component_reach = np.zeros(self.component_alive.shape[0])
        self.members = [np.flatnonzero((self.labels == c) & has_faces)
                        for c in range(self.component_alive.shape[0])]
        self.target = 0

    # --- checks ------------------------------------------------------------------------
    def _allowed(self, remove: int, keep: int, stage: int) -> bool:
        """The base checks, and with all checks on (stage 0) no new sliver faces."""
        if not super()._allowed(remove, keep, stage):
            return False
        if stage > 0:
            return True
        points = self.points
        for f in self.vertex_faces[remove] - self.vertex_faces[keep]:
            corners = [points[keep] if v == remove else points[v] for v in self.faces[f]]
            if _quality(*corners) < min(self.SLIVER, _quality(*(points[v] for v in self.faces[f]))):
                return False
        return True

    # --- distances ---------------------------------------------------------------------
    def _pair_distances(self, points, corners) -> np.ndarray:
        """``[P]`` cost of interpolating ``points[p]`` from triangle ``corners[p]`` (vertex ids).

        The squared distance to the triangle, plus, for a vertex at a gap, the squared
        distance in the opened copy of the template.
        """
        v = self.vertices
        cost = _squared_distances(v[points], v[corners[:, 0]], v[corners[:, 1]],
                                  v[corners[:, 2]])
        gap = self.at_gap[points]
        if gap.any():
            o = self.opened
            c = corners[gap]
            cost[gap] += _squared_distances(o[points[gap]], o[c[:, 0]], o[c[:, 1]], o[c[:, 2]])
        return cost

    def _slot_distances(self, points, corners, per_slot) -> np.ndarray:
        """``[S]`` cost of each point slot on its best candidate triangle.

        Args:
          points: ``[S]`` vertex of each slot.
          corners: ``[P, 3]`` candidate triangles, grouped by slot (``per_slot [S]`` each).

        Returns:
          The smallest :meth:`_pair_distances` cost, ``inf`` for slots without candidates.
        """
        best = np.full(points.shape[0], np.inf)
        if corners.shape[0]:
            pair_slot = np.repeat(np.arange(points.shape[0]), per_slot)
            start = (np.cumsum(per_slot) - per_slot)[per_slot > 0]
            best[per_slot > 0] = np.minimum.reduceat(
                self._pair_distances(points[pair_slot], corners), start)
        return best

    # --- costs -------------------------------------------------------------------------
    def _directed(self, directed: list[tuple[int, int]]) -> list[tuple]:
        """Heap entries ``(cost, quadric, length, 0, remove, keep, v_remove, v_keep)``."""
        if not directed:
            return []
        point_ids, stars, num_points = [], [], []
        for remove, keep in directed:
            faces_remove = self.vertex_faces[remove]
            stars.append(faces_remove ^ self.vertex_faces[keep])  # keep's faces afterwards
            start = len(point_ids)
            point_ids.append(remove)
            for f in faces_remove:
                point_ids.extend(self.attached[f])
            num_points.append(len(point_ids) - start)
        m = np.asarray(num_points)
        k = np.asarray([len(star) for star in stars])
        points = np.asarray(point_ids, np.int64)
        pairs = np.asarray(directed, np.int64)
        remove, keep = pairs[:, 0], pairs[:, 1]
        face_ids = np.fromiter((f for star in stars for f in star), np.int64, int(k.sum()))
        face_dir = np.repeat(np.arange(len(directed)), k)
        rows = self.face_array[face_ids].reshape(-1, 3)
        rows = np.where(rows == remove[face_dir, None], keep[face_dir, None], rows)
        point_start = np.cumsum(m) - m
        # Every point of a direction against every face of its new star.
        per_slot = np.repeat(k, m)
        slot_dir = np.repeat(np.arange(len(directed)), m)
        slot_first_face = (np.cumsum(k) - k)[slot_dir]
        pair_slot = np.repeat(np.arange(points.shape[0]), per_slot)
        pair_face = slot_first_face[pair_slot] + (
            np.arange(pair_slot.shape[0]) - (np.cumsum(per_slot) - per_slot)[pair_slot])
        best = self._slot_distances(points, rows[pair_face], per_slot)
        cost = np.add.reduceat(best - self.error[points], point_start)
        cost = np.where(np.abs(cost) < self.zero_cost, 0.0, cost)
        homogeneous = np.concatenate([self.vertices[keep], np.ones((keep.shape[0], 1))], axis=1)
        quadric = np.einsum("ei,eij,ej->e", homogeneous,
                            self.quadrics[remove] + self.quadrics[keep], homogeneous)
        step = self.vertices[remove] - self.vertices[keep]
        length = np.einsum("ij,ij->i", step, step)
        version = self.version
        return [(c, q, ln, 0, r, kp, version[r], version[kp]) for c, q, ln, r, kp in zip(
            cost.tolist(), quadric.tolist(), length.tolist(), remove.tolist(), keep.tolist(),
            strict=True)]

    def _edge_entries(self, vertex: int) -> list[tuple]:
        """Both directions of every edge of ``vertex``."""
        directed = []
        for u in sorted(self._neighbours(vertex)):
            directed += [(vertex, u), (u, vertex)]
        return self._directed(directed)

    def _rest_faces(self, component: int) -> np.ndarray:
        faces = [self.faces[f] for f in range(len(self.faces))
                 if self.face_alive[f] and self.labels[self.faces[f][0]] != component]
        return np.asarray(faces, np.int64).reshape(-1, 3)

    def _component_points(self, component: int) -> list[int]:
        """The component's vertices and every vertex attached to its faces."""
        members = self.members[component]
        points = set(members.tolist())
        for v in members[self.alive[members]].tolist():
            for f in self.vertex_faces[v]:
                points.update(self.attached[f])
        return sorted(points)

    def _component_entry(self, component: int, exact: bool) -> tuple:
        """Heap entry ``(cost, inf, 0, 1, component, -1, version, 0)`` for removing a part.

        The cost needs the distances of the part's points to the rest of the mesh; without
        ``exact`` the last ones computed are reused (the entry is checked when it comes out).
        """
        points = self._component_points(component)
        if exact:
            _, _, dist2 = closest_points_on_mesh(self.vertices[points], self.vertices,
                                                 self._rest_faces(component))
            self.component_reach[component] = float(dist2.sum())
        cost = self.component_reach[component] - float(self.error[points].sum())
        return (cost, math.inf, 0.0, 1, component, -1, self.component_version[component], 0)

    def _removable(self, component: int) -> bool:
        parts = int((self.component_alive > 0).sum())
        alive = int(self.component_alive[component])
        return parts > 1 and 0 < alive <= self.count - self.target

    # --- changes -----------------------------------------------------------------------
    def _attach(self, points: list[int], faces: list[int]) -> None:
        """Attaches each point to the best of ``faces`` and records its cost."""
        rows = np.asarray([self.faces[f] for f in faces], np.int64)
        if len(points) * len(faces) > 1 << 16:  # a whole component onto the rest
            face, _, cost = closest_points_on_mesh(self.vertices[points], self.vertices, rows)
        else:
            tiled = np.tile(np.arange(len(faces)), len(points))
            cost = self._pair_distances(np.repeat(np.asarray(points, np.int64), len(faces)),
                                        rows[tiled]).reshape(len(points), len(faces))
            face = cost.argmin(axis=1)
            cost = cost[np.arange(len(points)), face]
        for p, j, d in zip(points, face.tolist(), cost.tolist(), strict=True):
            self.attached[faces[j]].append(p)
            self.error[p] = d

    def _collapse(self, remove: int, keep: int) -> None:
        faces_remove = list(self.vertex_faces[remove])
        points = [remove]
        touched = set()
        for f in faces_remove:
            points.extend(self.attached[f])
            self.attached[f] = []
            touched.update(self.faces[f])
        super()._collapse(remove, keep)
        for f in faces_remove:
            self.face_array[f] = self.faces[f]
        star = sorted(self.vertex_faces[keep])
        self._attach(points, star)
        for f in star:  # the faces whose attached vertices changed
            touched.update(self.faces[f])
        touched.discard(remove)
        for v in touched:
            self.version[v] += 1
        component = int(self.labels[keep])
        self.component_alive[component] -= 1
        self.component_version[component] += 1

    def _remove_component(self, component: int) -> None:
        points = self._component_points(component)
        members = self.members[component]
        for v in members[self.alive[members]].tolist():
            for f in self.vertex_faces[v]:
                self.face_alive[f] = False
                self.attached[f] = []
            self.vertex_faces[v] = set()
            self.alive[v] = False
            self.version[v] += 1
            self.count -= 1
        rest = [f for f in range(len(self.faces)) if self.face_alive[f]]
        before = [len(self.attached[f]) for f in rest]
        self._attach(points, rest)
        for f, size in zip(rest, before, strict=True):
            if len(self.attached[f]) != size:
                for v in self.faces[f]:
                    self.version[v] += 1
        self.component_alive[component] = 0
        for c in range(self.component_alive.shape[0]):
            self.component_version[c] += 1  # the rest of the mesh changed for every part

    def run(self, target: int) -> None:
        self.target = target
        stage = 0
        while self.count > target:
            heap = self._directed([(int(a), int(b)) for pair in self._all_edges()
                                   for a, b in (pair, pair[::-1])])
            heap.extend(self._component_entry(c, exact=True)
                        for c in range(self.component_alive.shape[0]) if self._removable(c))
            heapq.heapify(heap)
            progress = False
            stale: set[tuple[int, int]] = set()
            while heap and self.count > target:
                entry = heapq.heappop(heap)
                kind, a, b, version_a, version_b = entry[3:]
                if kind == 0 and (self.version[a] != version_a or self.version[b] != version_b):
                    if self.alive[a] and self.alive[b] and (
                            self.vertex_faces[a] & self.vertex_faces[b]):
                        stale.add((a, b))
                    continue
                if kind == 1 and (version_a != self.component_version[a]
                                  or not self._removable(a)):
                    continue
                if stale:  # entries that changed since they were queued, then this one again
                    for new in self._directed(sorted(stale)):
                        heapq.heappush(heap, new)
                    heapq.heappush(heap, entry)
                    stale = set()
                    continue
                if kind == 1:
                    fresh = self._component_entry(a, exact=True)
                    if fresh[0] > entry[0] + self.zero_cost:
                        heapq.heappush(heap, fresh)
                        continue
                    self._remove_component(a)
                    progress = True
                    for other in range(self.component_alive.shape[0]):
                        if self._removable(other):
                            heapq.heappush(heap, self._component_entry(other, exact=True))
                    continue
                remove, keep = a, b
                if not self._allowed(remove, keep, stage):
                    continue
                self._collapse(remove, keep)
                progress = True
                self.relaxed += stage > 0
                component = int(self.labels[keep])
                if self._removable(component):
                    heapq.heappush(heap, self._component_entry(component, exact=False))
                for new in self._edge_entries(keep):
                    heapq.heappush(heap, new)
            stage = self._next_stage(progress, stage, target)


def _normal(a, b, c) -> tuple[float, float, float]:
    ux, uy, uz = b[0] - a[0], b[1] - a[1], b[2] - a[2]
    vx, vy, vz = c[0] - a[0], c[1] - a[1], c[2] - a[2]
    return uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx


def _quality(a, b, c) -> float:
    """Triangle shape: 1 for equilateral, 0 for degenerate (4 sqrt(3) area / sum of edge^2)."""
    nx, ny, nz = _normal(a, b, c)
    edges2 = sum((p[0] - q[0]) ** 2 + (p[1] - q[1]) ** 2 + (p[2] - q[2]) ** 2
                 for p, q in ((a, b), (b, c), (c, a)))
    return 2.0 * math.sqrt(3.0) * math.sqrt(nx * nx + ny * ny + nz * nz) / edges2 if edges2 else 0.0


def _dot(u, v) -> float:
    return u[0] * v[0] + u[1] * v[1] + u[2] * v[2]


#: A boundary vertex faces a gap when a vertex of its loop is closer than this fraction of the
#: way between them along the loop (the lips of a mouth slit, not the rim of a neck).
_GAP_RATIO = 0.25
#: How far each side of a gap moves when it opens, as a fraction of the loop's radius
#: (perimeter / 2 pi): a 5 cm wide mouth slit opens by about 1 cm.
_GAP_OPENING = 0.3


def _gap_openings(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``[N, 3]`` how the vertices at narrow gaps of the boundary move when the gaps open.

    A vertex ``p`` of a boundary loop faces a gap when a vertex ``q`` of the same loop is
    closer in space than ``_GAP_RATIO`` times the shorter way from ``p`` to ``q`` along the
    loop, as across a mouth slit. Opening moves ``p`` away from the nearest such ``q`` by
    ``_GAP_OPENING`` times the loop's radius (perimeter / 2 pi). Other vertices do not move
    (zero rows).
    """
    opening = np.zeros_like(vertices)
    for loop in boundary_loops(faces):
        if loop.shape[0] < 4:
            continue
        points = vertices[loop]
        step = np.linalg.norm(np.roll(points, -1, axis=0) - points, axis=1)
        arc = np.concatenate([[0.0], np.cumsum(step)[:-1]])
        total = float(step.sum())
        along = np.abs(arc[:, None] - arc[None, :])
        along = np.minimum(along, total - along)
        apart = np.linalg.norm(points[:, None] - points[None, :], axis=2)
        across = np.where(apart < _GAP_RATIO * along, apart, np.inf)
        nearest = across.argmin(axis=1)
        at_gap = np.isfinite(across.min(axis=1))
        away = points[at_gap] - points[nearest[at_gap]]
        away /= np.maximum(np.linalg.norm(away, axis=1, keepdims=True), 1e-300)
        opening[loop[at_gap]] = _GAP_OPENING * total / (2 * np.pi) * away
    return opening


def _minimum_size(faces: np.ndarray, num_vertices: int, *, whole_parts: bool = False) -> int:
    """Lower bound on the vertices a valid decimation keeps.

    With ``whole_parts`` a decimation may drop whole components, so only the smallest one
    must stay.
    """
    count, labels = connected_components(faces, num_vertices)
    used = np.zeros(num_vertices, bool)
    used[faces.ravel()] = True
    directed = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), 1)
    pairs, multiplicity = np.unique(directed, axis=0, return_counts=True)
    open_labels = set(labels[pairs[multiplicity == 1, 0]].tolist())
    face_labels = set(labels[used].tolist())
    isolated = int((~used).sum())
    sizes = [3 if label in open_labels else 4 for label in face_labels]
    return isolated + (min(sizes, default=0) if whole_parts else sum(sizes))


def _decimate(vertices: np.ndarray, faces: np.ndarray, target: int, boundary_weight: float,
              method: str = "qslim") -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(survivors [m], coarse faces [f, 3] into the survivors, attached)``.

    ``attached`` (``"surface_distance"`` only) is, per input vertex, the coarse face row it
    is attached to, -1 for survivors; ``None`` for ``"qslim"``.
    """
    whole_parts = method == "surface_distance"
    minimum = _minimum_size(faces, vertices.shape[0], whole_parts=whole_parts)
    if target < minimum:
        rule = ("one component: 3 vertices if open, 4 if closed" if whole_parts
                else "3 per open component, 4 per closed component")
        raise MeshError(
            f"cannot keep only {target} vertices: at least {minimum} must stay (every "
            f"vertex without faces, {rule})", field="faces")
    decimator = (_SurfaceDecimator if whole_parts else _Decimator)(vertices, faces,
                                                                   boundary_weight)
    decimator.run(target)
    if decimator.relaxed:
        warnings.warn(
            f"decimating to {target} vertices needed {decimator.relaxed} collapses that "
            "relax the flip or manifold checks", RuntimeWarning, stacklevel=3)
    survivors, coarse_faces = decimator.result()
    remap = np.full(vertices.shape[0], -1, np.int64)
    remap[survivors] = np.arange(survivors.shape[0])
    attached = None
    if whole_parts:
        row = {frozenset(face): r for r, face in enumerate(coarse_faces.tolist())}
        attached = np.full(vertices.shape[0], -1, np.int64)
        for f, points in enumerate(decimator.attached):
            if points:
                attached[points] = row[frozenset(decimator.faces[f])]
    return survivors, remap[coarse_faces], attached


# ---------------------------------------------------------------------------------------
# Closest points.


def _squared_distances(points, a, b, c, *, edges: bool = False):
    """Squared distances of ``points[k]`` to triangles ``(a[k], b[k], c[k])``, all ``[K, 3]``.

    The distance to the plane where the projection falls inside the triangle, else the
    distance to the nearest edge (degenerate triangles reduce to their edges).

    Returns:
      ``[K]``, and with ``edges`` also ``[K, 3]``: the distances to the segments ab, bc, ca.
    """
    px, py, pz = points.T
    ax, ay, az = a.T
    bx, by, bz = b.T
    cx, cy, cz = c.T
    edges_ = ((ax, ay, az, bx - ax, by - ay, bz - az), (bx, by, bz, cx - bx, cy - by, cz - bz),
              (cx, cy, cz, ax - cx, ay - cy, az - cz))
    # Normal (b - a) x (c - a).
    ux, uy, uz = edges_[0][3:]
    vx, vy, vz = cx - ax, cy - ay, cz - az
    nx, ny, nz = uy * vz - uz * vy, uz * vx - ux * vz, ux * vy - uy * vx
    area2 = nx * nx + ny * ny + nz * nz
    inside = area2 > 0
    best = np.full(px.shape, np.inf)
    per_edge = []
    for ox, oy, oz, ex, ey, ez in edges_:
        qx, qy, qz = px - ox, py - oy, pz - oz
        # Which side of the edge the point is on, seen along the normal.
        side = ((ey * qz - ez * qy) * nx + (ez * qx - ex * qz) * ny + (ex * qy - ey * qx) * nz)
        inside &= side >= 0
        length2 = ex * ex + ey * ey + ez * ez
        t = np.divide(qx * ex + qy * ey + qz * ez, length2, out=np.zeros_like(length2),
                      where=length2 > 0)
        np.clip(t, 0.0, 1.0, out=t)
        dx, dy, dz = qx - t * ex, qy - t * ey, qz - t * ez
        per_edge.append(dx * dx + dy * dy + dz * dz)
        np.minimum(best, per_edge[-1], out=best)
    height = (px - ax) * nx + (py - ay) * ny + (pz - az) * nz
    best[inside] = height[inside] ** 2 / area2[inside]
    return (best, np.stack(per_edge, axis=1)) if edges else best


def _closest_on_triangles(points, a, b, c) -> tuple[np.ndarray, np.ndarray]:
    """Exact closest points of ``points[k]`` on triangles ``(a[k], b[k], c[k])``.

    Returns ``(barycentric [K, 3], squared_distance [K])``; handles degenerate triangles.
    """
    ab, ac, ap = b - a, c - a, points - a
    d1 = np.einsum("ij,ij->i", ab, ap)
    d2 = np.einsum("ij,ij->i", ac, ap)
    bp = points - b
    d3 = np.einsum("ij,ij->i", ab, bp)
    d4 = np.einsum("ij,ij->i", ac, bp)
    cp = points - c
    d5 = np.einsum("ij,ij->i", ab, cp)
    d6 = np.einsum("ij,ij->i", ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den != 0)

    region_a = (d1 <= 0) & (d2 <= 0)
    region_b = (d3 >= 0) & (d4 <= d3)
    region_c = (d6 >= 0) & (d5 <= d6)
    region_ab = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    region_ac = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    region_bc = (va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0)
    t_ab = ratio(d1, d1 - d3)
    t_ac = ratio(d2, d2 - d6)
    t_bc = ratio(d4 - d3, (d4 - d3) + (d5 - d6))
    total = va + vb + vc
    v_face = ratio(vb, total)
    w_face = ratio(vc, total)
    zero, one = np.zeros_like(d1), np.ones_like(d1)
    conditions = [region_a, region_b, region_ab, region_c, region_ac, region_bc]
    u = np.select(conditions, [one, zero, 1 - t_ab, zero, 1 - t_ac, zero], 1 - v_face - w_face)
    v = np.select(conditions, [zero, one, t_ab, zero, zero, 1 - t_bc], v_face)
    w = np.select(conditions, [zero, zero, zero, one, t_ac, t_bc], w_face)
    bary = np.clip(np.stack([u, v, w], axis=1), 0.0, 1.0)
    bary /= bary.sum(axis=1, keepdims=True)
    closest = bary[:, :1] * a + bary[:, 1:2] * b + bary[:, 2:] * c
    return bary, np.einsum("ij,ij->i", points - closest, points - closest)


def _best_per_point(point_ids, face_ids, bary, dist2, num_points):
    order = np.lexsort((face_ids, dist2, point_ids))
    first = np.ones(order.shape[0], bool)
    first[1:] = point_ids[order][1:] != point_ids[order][:-1]
    chosen = order[first]
    best_face = np.full(num_points, -1, np.int64)
    best_bary = np.zeros((num_points, 3))
    best_dist = np.full(num_points, np.inf)
    best_face[point_ids[chosen]] = face_ids[chosen]
    best_bary[point_ids[chosen]] = bary[chosen]
    best_dist[point_ids[chosen]] = dist2[chosen]
    return best_face, best_bary, best_dist


def _evaluate(points, vertices, faces, point_ids, face_ids, chunk=1 << 20):
    bary_parts, dist_parts = [], []
    for start in range(0, point_ids.shape[0], chunk):
        p = point_ids[start:start + chunk]
        f = faces[face_ids[start:start + chunk]]
        bary, dist2 = _closest_on_triangles(points[p], vertices[f[:, 0]], vertices[f[:, 1]],
                                            vertices[f[:, 2]])
        bary_parts.append(bary)
        dist_parts.append(dist2)
    if not bary_parts:
        return np.zeros((0, 3)), np.zeros(0)
    return np.concatenate(bary_parts), np.concatenate(dist_parts)


def closest_points_on_mesh(points, vertices, faces):
    """Exact closest point on a triangle mesh for each query point.

    The distance to the nearest mesh vertex bounds the distance to the surface, so only
    triangles whose bounding sphere comes that close are tested (a ``cKDTree`` over
    triangle centres finds them; unusually large triangles are tested against every
    point).

    Args:
      points: ``[P, 3]`` query positions.
      vertices: ``[N, 3]`` mesh vertices.
      faces: ``[F, 3]`` mesh triangles (at least one).

    Returns:
      ``(face_index [P] int64, barycentric [P, 3] float64, squared_distance [P])``;
      exact ties go to the lowest face index.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64).reshape(-1, 3)
    if faces.shape[0] == 0:
        raise MeshError("expected at least one face to project onto", field="faces")
    num_points = points.shape[0]
    used = np.unique(faces)
    reach, _ = scipy.spatial.cKDTree(vertices[used]).query(points, k=1)
    reach = np.asarray(reach, np.float64).reshape(num_points) * (1 + 1e-9) + 1e-12

    corners = vertices[faces]
    centres = corners.mean(axis=1)
    radii = np.linalg.norm(corners - centres[:, None], axis=2).max(axis=1)
    big = radii > 4.0 * np.median(radii)
    point_parts, face_parts = [], []
    small_ids = np.flatnonzero(~big)
    if small_ids.size:
        tree = scipy.spatial.cKDTree(centres[small_ids])
        found = tree.query_ball_point(points, reach + radii[small_ids].max())
        lengths = np.fromiter((len(x) for x in found), np.int64, num_points)
        p_ids = np.repeat(np.arange(num_points), lengths)
        f_ids = small_ids[np.concatenate([np.asarray(x, np.int64) for x in found] or [[]])
                          .astype(np.int64)]
        point_parts.append(p_ids)
        face_parts.append(f_ids)
    big_ids = np.flatnonzero(big)
    if big_ids.size:
        point_parts.append(np.repeat(np.arange(num_points), big_ids.size))
        face_parts.append(np.tile(big_ids, num_points))
    point_ids = np.concatenate(point_parts)
    face_ids = np.concatenate(face_parts)
    gap = np.linalg.norm(points[point_ids] - centres[face_ids], axis=1) - radii[face_ids]
    keep = gap <= reach[point_ids]
    point_ids, face_ids = point_ids[keep], face_ids[keep]
    bary, dist2 = _evaluate(points, vertices, faces, point_ids, face_ids)
    return _best_per_point(point_ids, face_ids, bary, dist2, num_points)


def _up_sampling(fine_vertices, coarse_vertices, coarse_faces, down_indices, attached=None):
    """Up-sampling arrays of one step: barycentric coordinates of closest points.

    Without ``attached`` each fine vertex is projected onto the whole coarse surface; with
    ``attached`` (``[n_fine]`` coarse face rows, -1 for the survivors) onto its own face.
    """
    if attached is None:
        face, bary, _ = closest_points_on_mesh(fine_vertices, coarse_vertices, coarse_faces)
    else:
        face = np.where(attached < 0, 0, attached)
        corners = coarse_vertices[coarse_faces[face]]
        bary, _ = _closest_on_triangles(fine_vertices, corners[:, 0], corners[:, 1],
                                        corners[:, 2])
    up_indices = coarse_faces[face].astype(np.int64)
    up_weights = bary
    up_indices[down_indices] = np.arange(down_indices.shape[0])[:, None]
    up_weights[down_indices] = (1.0, 0.0, 0.0)
    up_weights = up_weights / up_weights.sum(axis=1, keepdims=True)
    return up_indices.astype(np.int32), up_weights.astype(np.float32)


# ---------------------------------------------------------------------------------------
# Public builders.


def build_hierarchy(
    vertices,
    faces,
    factors: Sequence[float] = (4, 4, 4, 4),
    *,
    method: str = "qslim",
    boundary_weight: float = 1.0,
) -> MeshHierarchy:
    """Builds a CoMA-style hierarchy of decimated meshes with down/up-sampling arrays.

    Args:
      vertices: ``[N, 3]`` template coordinates.
      faces: ``[F, 3]`` template triangles (consistent winding).
      factors: Decimation factor per step (>= 1); level ``i`` has
        ``ceil(n_{i-1} / factors[i-1])`` vertices.
      method: ``"qslim"`` (CoMA's quadric order; the default, which existing models
        depend on) or ``"surface_distance"`` (ordered by the up-sampling error; see the
        module docstring).
      boundary_weight: ``"qslim"``: weight of the boundary-preserving quadrics, 0 reproduces
        CoMA's quadrics. ``"surface_distance"``: how far narrow gaps of the boundary open in
        the copy of the template their vertices are also measured in (1: each side by 0.3
        times the gap loop's radius), 0 measures them like every other vertex.

    Returns:
      The :class:`MeshHierarchy` with ``len(factors) + 1`` levels.

    Raises:
      MeshError: for malformed input or when a level cannot reach its size.
      ValueError: for an unknown method or a factor below 1.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    factors = tuple(float(f) for f in factors)
    if any(not f >= 1.0 for f in factors):
        raise ValueError(f"factors must be >= 1, got {factors}")
    v = validate_vertices(vertices).astype(np.float32)
    f = validate_faces(faces, v.shape[0])
    if f.shape[0] == 0:
        raise MeshError("expected at least one face", field="faces")
    levels = [Level(vertices=v, faces=f.astype(np.int32))]
    for factor in factors:
        fine = levels[-1]
        target = math.ceil(fine.num_vertices / factor)
        survivors, coarse_faces, attached = _decimate(fine.vertices.astype(np.float64),
                                                      fine.faces.astype(np.int64), target,
                                                      boundary_weight, method)
        coarse_vertices = fine.vertices[survivors]
        up_indices, up_weights = _up_sampling(fine.vertices.astype(np.float64),
                                              coarse_vertices.astype(np.float64),
                                              coarse_faces, survivors, attached)
        levels.append(Level(vertices=coarse_vertices, faces=coarse_faces.astype(np.int32),
                            down_indices=survivors.astype(np.int32), up_indices=up_indices,
                            up_weights=up_weights))
    return MeshHierarchy(tuple(levels), factors, method, float(boundary_weight))


def level_reference_vertices(hierarchy: MeshHierarchy, reference_vertices=None) -> list[np.ndarray]:
    """Reference vertices of every level.

    Level 0 uses ``reference_vertices`` (or one per component, see
    :func:`default_reference_vertices`); each coarser level uses, for every level-0
    reference position, the nearest vertex of that level that belongs to a face.

    Args:
      hierarchy: The hierarchy.
      reference_vertices: Optional level-0 vertex indices.

    Returns:
      One int32 array per level.
    """
    level0 = hierarchy.levels[0]
    if reference_vertices is None:
        references = default_reference_vertices(level0.faces, level0.num_vertices,
                                                level0.vertices)
    else:
        references = np.asarray(reference_vertices, np.int64).reshape(-1)
        if references.size and (references.min() < 0 or references.max() >= level0.num_vertices):
            raise MeshError(f"expected vertex indices in [0, {level0.num_vertices}), got "
                            f"{references.tolist()}", field="reference_vertices")
    positions = level0.vertices[references]
    result = [references.astype(np.int32)]
    for level in hierarchy.levels[1:]:
        used = np.unique(level.faces)
        result.append(used[nearest_vertices(positions, level.vertices[used])].astype(np.int32))
    return result


def _per_level(name: str, value, count: int) -> list:
    if value is None or isinstance(value, (int, np.integer)):
        return [value] * count
    values = list(value)
    if len(values) != count:
        raise ValueError(f"{name} needs one entry per level ({count}), got {len(values)}")
    return values


def spirals_for(
    hierarchy: MeshHierarchy,
    *,
    lengths=None,
    rings=None,
    dilations=1,
    reference_vertices=None,
    order: str = "neural3dmm",
) -> list[np.ndarray]:
    """Spiral index tables for every level of a hierarchy.

    Each argument is either one value for all levels or a sequence with one entry per
    level. Reference vertices are re-found at every level with
    :func:`level_reference_vertices`, and the level's own coordinates decide shortest
    paths.

    Args:
      hierarchy: The hierarchy.
      lengths: Spiral length per level; ``None`` entries mean the data-driven
        Neural3DMM length (``order="neural3dmm"`` only).
      rings: Rings per level for ``"neural3dmm"`` (default 1); must be None for
        ``"spiralnet"``.
      dilations: Dilation per level.
      reference_vertices: Optional level-0 reference vertex indices.
      order: ``"neural3dmm"`` or ``"spiralnet"``.

    Returns:
      One ``[n_i, L_i]`` int32 array per level, padded with ``n_i``.
    """
    count = hierarchy.num_levels
    lengths = _per_level("lengths", lengths, count)
    rings = _per_level("rings", rings, count)
    dilations = _per_level("dilations", dilations, count)
    references = level_reference_vertices(hierarchy, reference_vertices)
    tables = []
    for i, level in enumerate(hierarchy.levels):
        tables.append(spiral_indices(
            level.faces, level.num_vertices, length=lengths[i], rings=rings[i],
            dilation=dilations[i], reference_vertices=references[i], vertices=level.vertices,
            order=order))
    return tables
