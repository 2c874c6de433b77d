"""Spiral vertex orderings for spiral mesh convolutions (Neural3DMM and SpiralNet++ styles).

A spiral of vertex ``v`` lists ``v`` itself, then its one-ring, then its two-ring, and
so on; each ring is walked counter-clockwise with respect to the face winding. Spiral
convolutions gather features along these index lists, so the order must be the same
for every mesh of one topology; it depends only on the faces (and, for the starting
direction, on the template coordinates).

Conventions shared by both orders:

* **Padding** uses the explicit dummy index ``N`` (the number of vertices), never -1:
  models append one zero row to their features and keep it zero.
* **Start of ring 1**: the neighbour of ``v`` on the shortest path (Dijkstra, Euclidean
  edge lengths; hop counts when no coordinates are given) from ``v`` towards the
  nearest reference vertex of its connected component. A reference vertex itself
  starts at its closest neighbour. Components without a given reference vertex get the
  vertex nearest their centroid (without coordinates: their lowest vertex index).
* **Start of ring k+1**: ring k+1 is collected by walking, for each member ``w`` of
  ring k in order, the one-ring of ``w`` counter-clockwise starting just after the
  previous member of ring k. The first vertex found is therefore the vertex that closes
  the triangle of ring k's last and first vertex, and every ring holds exactly the
  vertices at that graph distance (breadth-first rings).
* **Boundaries**: where a ring is cut by the mesh boundary, the walk continues on the
  other side of the cut, so a boundary vertex's one-ring reads
  ``[start, ... counter-clockwise ..., <cut>, ... up to just before start]``, the same
  sequence as walking the other way and inserting the vertices reversed.

``order="neural3dmm"`` walks a fixed number of rings, marks each cut inside a ring with
one padding index (Neural3DMM's dummy between the two halves of a cut ring), applies
dilation as ``s[:1] + s[1::dilation]``, and pads or truncates to a length that is either
given or data-driven (``int(mean + 2 std)`` of the raw lengths).

``order="spiralnet"`` has no cut markers: rings are added until the spiral holds
``length * dilation`` vertices, it is truncated to that many and ``[::dilation]`` is
applied. When a connected component runs out of rings first, the remaining slots are
filled with the vertices nearest the centre in Euclidean distance (any component, as
SpiralNet++'s k-nearest-neighbour fallback does) when ``vertices`` are given, and with
padding ``N`` otherwise or when the mesh has too few vertices. SpiralNet++ takes the
ring-1 start from OpenMesh's half-edge order; jaxface uses the reference-vertex rule
above for both orders, so its spirals do not reproduce OpenMesh's start vertices.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.spatial

from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import connected_components, edges, validate_faces, validate_vertices

__all__ = [
    "OrderedOneRings",
    "default_reference_vertices",
    "nearest_vertices",
    "neural3dmm_length",
    "ordered_one_rings",
    "raw_spirals",
    "spiral_indices",
    "spiral_start_vertices",
]

ORDERS = ("neural3dmm", "spiralnet")


@dataclasses.dataclass(frozen=True)
class OrderedOneRings:
    """Counter-clockwise one-rings of every vertex, stored flat (CSR layout).

    Attributes:
      offsets: ``[N + 1]`` int64; vertex ``v``'s ring is
        ``neighbours[offsets[v]:offsets[v + 1]]``.
      neighbours: ``[sum of degrees]`` int32 neighbour indices, counter-clockwise
        around each vertex (seen from the side the face winding points to).
      breaks: ``[sum of degrees]`` bool; True where no face joins a neighbour to the
        next one in the (cyclic) list, i.e. where the ring crosses the mesh
        boundary. An interior vertex of a manifold has no breaks; a boundary vertex
        has one, after its last neighbour.
    """

    offsets: np.ndarray
    neighbours: np.ndarray
    breaks: np.ndarray

    def ring(self, vertex: int) -> tuple[np.ndarray, np.ndarray]:
        """``(neighbours, breaks)`` of one vertex."""
        start, stop = self.offsets[vertex], self.offsets[vertex + 1]
        return self.neighbours[start:stop], self.breaks[start:stop]

    def is_open(self) -> np.ndarray:
        """``[N]`` bool: True for vertices whose ring has a break (boundary vertices)."""
        count = self.offsets.shape[0] - 1
        owner = np.repeat(np.arange(count), np.diff(self.offsets))
        result = np.zeros(count, bool)
        result[owner[self.breaks]] = True
        return result


def _fan_order(pairs: list[tuple[int, int]]) -> tuple[list[int], list[bool]]:
    """Orders one vertex's neighbours from its ``(b, c)`` corner pairs (b before c CCW)."""
    successors: dict[int, list[int]] = {}
    targets: set[int] = set()
    for b, c in pairs:
        successors.setdefault(b, []).append(c)
        targets.add(c)
    nodes = sorted(set(successors) | targets)
    order: list[int] = []
    visited: set[int] = set()

    def walk(current: int) -> None:
        while True:
            order.append(current)
            visited.add(current)
            following = [c for c in successors.get(current, ()) if c not in visited]
            if not following:
                return
            current = following[0]

    for node in nodes:  # open fans first, each from its first vertex
        if node not in targets and node not in visited:
            walk(node)
    for node in nodes:  # then closed fans
        if node not in visited:
            walk(node)
    size = len(order)
    breaks = [order[(i + 1) % size] not in successors.get(order[i], ()) for i in range(size)]
    return order, breaks


def ordered_one_rings(faces, num_vertices: int) -> OrderedOneRings:
    """Counter-clockwise ordered one-ring of every vertex.

    For a face ``(a, b, c)`` the neighbour ``c`` follows ``b`` around ``a`` (and so on
    cyclically). Fans are chained along these relations; each ring is stored starting at
    the first vertex of an open fan, or at the lowest index for a closed ring.
    Non-manifold vertices (several fans) list their fans one after another with a break
    after each.

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.

    Returns:
      The rings in CSR layout.
    """
    f = validate_faces(faces, num_vertices)
    centre = f.T.ravel()
    after = f[:, [1, 2, 0]].T.ravel()
    before = f[:, [2, 0, 1]].T.ravel()
    order = np.argsort(centre, kind="stable")
    centre, after, before = centre[order], after[order], before[order]
    bounds = np.searchsorted(centre, np.arange(num_vertices + 1))
    after_list, before_list = after.tolist(), before.tolist()
    offsets = np.zeros(num_vertices + 1, np.int64)
    neighbours: list[int] = []
    breaks: list[bool] = []
    for v in range(num_vertices):
        lo, hi = bounds[v], bounds[v + 1]
        if hi > lo:
            pairs = list(zip(after_list[lo:hi], before_list[lo:hi], strict=True))
            ring, ring_breaks = _fan_order(pairs)
            neighbours.extend(ring)
            breaks.extend(ring_breaks)
        offsets[v + 1] = len(neighbours)
    return OrderedOneRings(offsets, np.asarray(neighbours, np.int32),
                           np.asarray(breaks, bool))


def nearest_vertices(points, vertices) -> np.ndarray:
    """Index of the vertex nearest to each point (Euclidean).

    Used to re-find reference vertices on coarser meshes: pass the level-0 reference
    positions and the coarse vertices.

    Args:
      points: ``[P, 3]`` query positions.
      vertices: ``[N, 3]`` candidate vertices.

    Returns:
      ``[P]`` int32 indices into ``vertices``.
    """
    points = np.asarray(points, np.float64).reshape(-1, 3)
    tree = scipy.spatial.cKDTree(np.asarray(vertices, np.float64))
    _, index = tree.query(points, k=1)
    return np.asarray(index, np.int32).reshape(-1)


def default_reference_vertices(faces, num_vertices: int, vertices=None) -> np.ndarray:
    """One deterministic reference vertex per connected component that has faces.

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.
      vertices: Optional ``[N, 3]`` coordinates. With them, each component's vertex
        nearest its centroid is chosen; without, its lowest index.

    Returns:
      ``[C]`` int32 vertex indices, one per component with faces, ordered by component
      label.
    """
    f = validate_faces(faces, num_vertices)
    _, labels = connected_components(f, num_vertices)
    used = np.zeros(num_vertices, bool)
    used[f.ravel()] = True
    chosen = []
    for label in np.unique(labels[used]):
        members = np.flatnonzero(labels == label)
        if vertices is None:
            chosen.append(int(members[0]))
            continue
        points = np.asarray(vertices, np.float64)[members]
        distance = np.linalg.norm(points - points.mean(axis=0), axis=1)
        chosen.append(int(members[np.argmin(distance)]))
    return np.asarray(chosen, np.int32)


def _weighted_graph(f: np.ndarray, num_vertices: int, vertices) -> scipy.sparse.csr_array:
    e = edges(f).astype(np.int64)
    if vertices is None:
        weight = np.ones(e.shape[0])
    else:
        weight = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
        positive = weight[weight > 0]
        floor = (positive.min() if positive.size else 1.0) * 1e-9
        weight = np.maximum(weight, floor)  # zero-length edges must stay edges
    return scipy.sparse.csr_array((weight, (e[:, 0], e[:, 1])),
                                  shape=(num_vertices, num_vertices))


def _closest_neighbours(f: np.ndarray, num_vertices: int, vertices) -> np.ndarray:
    e = edges(f).astype(np.int64)
    both = np.concatenate([e, e[:, ::-1]])
    if vertices is None:
        key = np.zeros(both.shape[0])
    else:
        key = np.linalg.norm(vertices[both[:, 0]] - vertices[both[:, 1]], axis=1)
    order = np.lexsort((both[:, 1], key, both[:, 0]))
    both = both[order]
    closest = np.full(num_vertices, -1, np.int64)
    first = np.ones(both.shape[0], bool)
    first[1:] = both[1:, 0] != both[:-1, 0]
    closest[both[first, 0]] = both[first, 1]
    return closest


def _resolve_references(f, num_vertices, reference_vertices, vertices) -> np.ndarray:
    _, labels = connected_components(f, num_vertices)
    automatic = default_reference_vertices(f, num_vertices, vertices)
    if reference_vertices is None:
        return automatic
    given = np.asarray(reference_vertices, np.int64).reshape(-1)
    if given.size and (given.min() < 0 or given.max() >= num_vertices):
        raise MeshError(f"expected vertex indices in [0, {num_vertices}), got "
                        f"{given.tolist()}", field="reference_vertices")
    covered = set(labels[given].tolist())
    extra = [r for r in automatic.tolist() if labels[r] not in covered]
    return np.asarray(sorted(set(given.tolist())) + extra, np.int32)


def spiral_start_vertices(
    faces,
    num_vertices: int,
    *,
    reference_vertices=None,
    vertices=None,
) -> np.ndarray:
    """First vertex of ring 1 for every vertex (the reference-direction rule).

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.
      reference_vertices: Optional vertex indices (one per component is typical).
        Components without one get :func:`default_reference_vertices`.
      vertices: Optional ``[N, 3]`` coordinates for Euclidean shortest paths and
        closest neighbours; without them hop counts and lowest indices decide.

    Returns:
      ``[N]`` int32: the neighbour towards the nearest reference vertex (the closest
      neighbour for a reference vertex itself), or -1 for vertices without faces.
    """
    f = validate_faces(faces, num_vertices)
    coords = None if vertices is None else validate_vertices(vertices)
    references = _resolve_references(f, num_vertices, reference_vertices, coords)
    closest = _closest_neighbours(f, num_vertices, coords)
    if references.size == 0:
        return closest.astype(np.int32)
    graph = _weighted_graph(f, num_vertices, coords)
    _, predecessors, _ = scipy.sparse.csgraph.dijkstra(
        graph, directed=False, indices=references, return_predecessors=True, min_only=True)
    start = np.where(predecessors >= 0, predecessors, closest)
    return start.astype(np.int32)


def _walk_rings(
    centre: int,
    first: int,
    rings_list: list[list[int]],
    breaks_list: list[list[bool]],
    max_rings: int,
    enough: int,
) -> list[tuple[list[int], list[bool]]]:
    """Rings of ``centre`` as ``(members, cut_before)`` lists, walked counter-clockwise.

    ``cut_before[i]`` says the ring is cut by the boundary between member ``i - 1`` and
    member ``i`` (cyclically for ``i = 0``). Stops after ``max_rings`` rings, when a
    ring is empty, or once ``1 + sum(len(ring))`` reaches ``enough``.
    """
    ring = rings_list[centre]
    if not ring or first < 0:
        return []
    seen = {centre}
    members: list[tuple[int, int]] = [(centre, ring.index(first) - 1)]  # (vertex, anchor)
    cuts = [False]
    rings: list[tuple[list[int], list[bool]]] = []
    total = 1
    while len(rings) < max_rings and total < enough:
        new_members: list[int] = []
        new_cuts: list[bool] = []
        pending = False
        count = len(members)
        for index in range(count):
            w, anchor = members[index]
            if cuts[index]:
                pending = True
            neighbours, breaks = rings_list[w], breaks_list[w]
            degree = len(neighbours)
            if anchor < 0 and w != centre:
                anchor = _fallback_anchor(neighbours, breaks, seen)
                if anchor < 0:
                    continue
            elif w == centre:
                anchor %= degree
            local = False
            for step in range(1, degree + 1):
                position = (anchor + step) % degree
                if breaks[position - 1]:
                    local = True
                vertex = neighbours[position]
                if vertex not in seen:
                    seen.add(vertex)
                    new_members.append(vertex)
                    new_cuts.append(pending or local)
                    pending = local = False
        if not new_members:
            break
        if pending:
            new_cuts[0] = True
        rings.append((new_members, new_cuts))
        total += len(new_members)
        size = len(new_members)
        members = []
        for index, vertex in enumerate(new_members):
            previous = new_members[index - 1]
            anchor = -1
            if size > 1 and not new_cuts[index]:
                try:
                    anchor = rings_list[vertex].index(previous)
                except ValueError:
                    anchor = -1
            members.append((vertex, anchor))
        cuts = new_cuts
    return rings


def _fallback_anchor(neighbours: list[int], breaks: list[bool], seen: set[int]) -> int:
    """Anchor when the previous ring member is no neighbour: a cut, else a seen vertex."""
    degree = len(neighbours)
    for position in range(degree):
        if breaks[position] and neighbours[(position + 1) % degree] not in seen:
            return position
    for position in range(degree):
        if neighbours[position] in seen and neighbours[(position + 1) % degree] not in seen:
            return position
    return -1


def _prepare(faces, num_vertices, reference_vertices, vertices):
    f = validate_faces(faces, num_vertices)
    coords = None if vertices is None else validate_vertices(vertices)
    if coords is not None and coords.shape[0] != num_vertices:
        raise MeshError(f"expected {num_vertices} vertices, got {coords.shape[0]}",
                        field="vertices")
    starts = spiral_start_vertices(f, num_vertices, reference_vertices=reference_vertices,
                                   vertices=coords).tolist()
    one_rings = ordered_one_rings(f, num_vertices)
    offsets = one_rings.offsets.tolist()
    flat, flat_breaks = one_rings.neighbours.tolist(), one_rings.breaks.tolist()
    rings_list = [flat[offsets[v]:offsets[v + 1]] for v in range(num_vertices)]
    breaks_list = [flat_breaks[offsets[v]:offsets[v + 1]] for v in range(num_vertices)]
    return coords, starts, rings_list, breaks_list


def _check_positive(name: str, value: int) -> int:
    if int(value) != value or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def raw_spirals(
    faces,
    num_vertices: int,
    *,
    rings: int = 1,
    dilation: int = 1,
    reference_vertices=None,
    vertices=None,
) -> list[np.ndarray]:
    """Unpadded Neural3DMM-order spirals, after dilation.

    Args:
      faces: ``[F, 3]`` integer vertex indices.
      num_vertices: Number of vertices ``N``.
      rings: Number of rings to walk (Neural3DMM's step size).
      dilation: Keep the centre, then every ``dilation``-th entry.
      reference_vertices: Optional reference vertex indices (see module docstring).
      vertices: Optional ``[N, 3]`` coordinates (Euclidean shortest paths).

    Returns:
      ``N`` int32 arrays; entry ``v`` starts with ``v``, and the value ``N`` marks a cut
      of a ring by the mesh boundary. Vertices without faces give ``[v]``.
    """
    rings = _check_positive("rings", rings)
    dilation = _check_positive("dilation", dilation)
    _, starts, rings_list, breaks_list = _prepare(faces, num_vertices, reference_vertices,
                                                  vertices)
    spirals = []
    for v in range(num_vertices):
        sequence = [v]
        for members, cuts in _walk_rings(v, starts[v], rings_list, breaks_list, rings,
                                         num_vertices + 1):
            for index, (member, cut) in enumerate(zip(members, cuts, strict=True)):
                if cut and index > 0:
                    sequence.append(num_vertices)
                sequence.append(member)
        if dilation > 1:
            sequence = sequence[:1] + sequence[1::dilation]
        spirals.append(np.asarray(sequence, np.int32))
    return spirals


def neural3dmm_length(raw_lengths, num_stds: float = 2.0) -> int:
    """Data-driven spiral length: ``int(mean + num_stds * std)`` of the raw lengths.

    Args:
      raw_lengths: Lengths of the unpadded spirals (e.g. ``[len(s) for s in raw]``).
      num_stds: Number of (population) standard deviations above the mean.

    Returns:
      The length, at least 1.
    """
    lengths = np.asarray(raw_lengths, np.float64).reshape(-1)
    if lengths.size == 0:
        raise ValueError("raw_lengths is empty")
    return max(1, int(lengths.mean() + num_stds * lengths.std()))


def spiral_indices(
    faces,
    num_vertices: int,
    *,
    length: int | None,
    rings: int | None = None,
    dilation: int = 1,
    reference_vertices=None,
    vertices=None,
    order: str = "neural3dmm",
) -> np.ndarray:
    """Fixed-length spiral index table ``[N, L]`` padded with the dummy index ``N``.

    Args:
      faces: ``[F, 3]`` integer vertex indices (counter-clockwise winding).
      num_vertices: Number of vertices ``N``.
      length: Spiral length ``L``. With ``order="neural3dmm"``, ``None`` means the
        data-driven :func:`neural3dmm_length` of the raw spirals. Required for
        ``"spiralnet"``.
      rings: ``"neural3dmm"`` only: rings to walk (default 1). Must be None for
        ``"spiralnet"``, whose ring count follows from ``length * dilation``.
      dilation: Dilation factor (see module docstring).
      reference_vertices: Optional reference vertex indices, e.g. one per component.
      vertices: Optional ``[N, 3]`` template coordinates: Euclidean shortest paths to
        the references and, for ``"spiralnet"``, the nearest-vertex fill.
      order: ``"neural3dmm"`` or ``"spiralnet"``.

    Returns:
      ``[N, L]`` int32; row ``v`` starts with ``v``; entries equal to ``N`` are padding.
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    dilation = _check_positive("dilation", dilation)
    if order == "neural3dmm":
        raw = raw_spirals(faces, num_vertices, rings=1 if rings is None else rings,
                          dilation=dilation, reference_vertices=reference_vertices,
                          vertices=vertices)
        if length is None:
            length = neural3dmm_length([s.shape[0] for s in raw])
        length = _check_positive("length", length)
        table = np.full((num_vertices, length), num_vertices, np.int32)
        for v, sequence in enumerate(raw):
            kept = sequence[:length]
            table[v, :kept.shape[0]] = kept
        return table

    if rings is not None:
        raise ValueError("rings is not used with order='spiralnet'; set length instead")
    if length is None:
        raise ValueError("order='spiralnet' needs an explicit length")
    length = _check_positive("length", length)
    coords, starts, rings_list, breaks_list = _prepare(faces, num_vertices,
                                                       reference_vertices, vertices)
    target = length * dilation
    tree = None
    table = np.full((num_vertices, length), num_vertices, np.int32)
    for v in range(num_vertices):
        sequence = [v]
        for members, _ in _walk_rings(v, starts[v], rings_list, breaks_list,
                                      num_vertices, target):
            sequence.extend(members)
        if len(sequence) < target and coords is not None:
            if tree is None:
                tree = scipy.spatial.cKDTree(coords)
            k = min(num_vertices, target + len(sequence))
            _, nearest = tree.query(coords[v], k=k)
            present = set(sequence)
            for candidate in np.atleast_1d(nearest).tolist():
                if len(sequence) >= target:
                    break
                if candidate not in present:
                    sequence.append(candidate)
                    present.add(candidate)
        sequence = sequence[:target][::dilation]
        table[v, :len(sequence)] = sequence
    return table
