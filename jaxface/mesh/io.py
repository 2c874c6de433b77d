"""Reading and writing triangle meshes (PLY, OBJ) without touching vertex order.

Registered face datasets rely on vertex correspondence: vertex ``i`` of every frame is
the same point of the face. ``read_mesh`` therefore loads PLY through trimesh with
``process=False, maintain_order=True`` and checks the vertex count against the header,
so nothing was merged, dropped or reordered; a body that does not hold what the header
declares (a truncated file, wrong counts, extra data) is refused with both sizes. OBJ is
read by a small parser of the ``v`` and ``f`` lines instead: trimesh splits and reorders
OBJ vertices whenever faces carry texture coordinates (``f 1/4 2/5 3/6``, as in UV-mapped
templates such as FLAME's), which would break correspondence. Texture coordinates and
normals are ignored. Quads and polygons are refused rather than silently triangulated.

Writers produce float32 coordinates with int32 indices (binary little-endian PLY by
default, ASCII PLY or OBJ on request) and write atomically: a temporary file in the
target folder is renamed over the destination with ``os.replace``.
"""

from __future__ import annotations

import os

import numpy as np

from jaxface.files import write_atomic
from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import validate_faces, validate_vertices

__all__ = [
    "check_topology",
    "read_mesh",
    "write_mesh",
    "write_sequence",
]

_FORMATS = (".ply", ".obj")


def _format_of(path: str) -> str:
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in _FORMATS:
        raise MeshError(f"expected a .ply or .obj file, got suffix {suffix or '(none)'!r}",
                        source=path, field="path")
    return suffix[1:]


_PLY_SIZES = {"char": 1, "int8": 1, "uchar": 1, "uint8": 1, "short": 2, "int16": 2,
              "ushort": 2, "uint16": 2, "int": 4, "int32": 4, "uint": 4, "uint32": 4,
              "float": 4, "float32": 4, "double": 8, "float64": 8}
_PLY_CODES = {1: "B", 2: "H", 4: "I"}


class _PlyHeader:
    """What a PLY header declares: format, header length and elements with their properties.

    Attributes:
      format: ``"ascii"``, ``"binary_little_endian"`` or ``"binary_big_endian"``.
      length: bytes of the header (through the ``end_header`` line).
      elements: ``[(name, count, properties)]``; a property is a scalar type name or
        ``("list", count type, item type)``.
    """

    def __init__(self):
        self.format = ""
        self.length = 0
        self.elements: list[tuple[str, int, list]] = []

    @property
    def counts(self) -> dict[str, int]:
        return {name: count for name, count, _ in self.elements}

    def describe(self) -> str:
        """E.g. ``"42 vertices and 80 faces"``."""
        words = {"vertex": "vertices", "face": "faces"}
        return " and ".join(f"{count} {words.get(name, name)}" for name, count, _ in self.elements)


def _ply_header(path: str) -> _PlyHeader:
    """The declarations of a PLY header (raises :class:`MeshError` for a malformed one)."""
    header = _PlyHeader()
    with open(path, "rb") as stream:
        magic = stream.readline()
        if magic.strip() != b"ply":
            raise MeshError("not a PLY file (first line is not 'ply')", source=path,
                            field="header")
        for _ in range(10_000):
            line = stream.readline()
            if not line:
                raise MeshError("PLY header has no 'end_header' line", source=path,
                                field="header")
            words = line.decode("ascii", errors="replace").split()
            if words and words[0] == "end_header":
                header.length = stream.tell()
                return header
            if words and words[0] == "format" and len(words) >= 2:
                header.format = words[1]
            elif words and words[0] == "element":
                if len(words) != 3 or not words[2].isdigit():
                    raise MeshError(f"malformed element line {line.strip()!r}", source=path,
                                    field="header")
                header.elements.append((words[1], int(words[2]), []))
            elif words and words[0] == "property" and header.elements:
                if len(words) == 5 and words[1] == "list":
                    header.elements[-1][2].append(("list", words[2], words[3]))
                elif len(words) == 3:
                    header.elements[-1][2].append(words[1])
    raise MeshError("PLY header is too long", source=path, field="header")


def _ply_header_counts(path: str) -> dict[str, int]:
    """Element counts declared in a PLY header, e.g. ``{"vertex": 5023, "face": 9976}``."""
    return _ply_header(path).counts


def _binary_body_end(data: bytes, header: _PlyHeader) -> int | None:
    """Offset where the declared binary elements end, or ``None`` when the data runs out."""
    order = "<" if header.format == "binary_little_endian" else ">"
    offset = header.length
    for _, count, properties in header.elements:
        if all(isinstance(p, str) for p in properties):
            offset += count * sum(_PLY_SIZES.get(p, 0) for p in properties)
            continue
        if len(properties) == 1 and _PLY_SIZES.get(properties[0][1]) == 1:
            stride = 1 + 3 * _PLY_SIZES.get(properties[0][2], 0)  # all triangles: one stride
            if offset + count * stride <= len(data) and bool(np.all(np.frombuffer(
                    data, np.uint8, count=count * stride, offset=offset)[::stride] == 3)):
                offset += count * stride
                continue
        for _ in range(count):
            for prop in properties:
                if isinstance(prop, str):
                    offset += _PLY_SIZES.get(prop, 0)
                    continue
                size = _PLY_SIZES.get(prop[1], 0)
                if size not in _PLY_CODES or offset + size > len(data):
                    return None
                items = int.from_bytes(data[offset:offset + size],
                                       "little" if order == "<" else "big")
                offset += size + items * _PLY_SIZES.get(prop[2], 0)
            if offset > len(data):
                return None
    return offset if offset <= len(data) else None


def _check_ply_body(path: str, header: _PlyHeader) -> None:
    """Raises :class:`MeshError` when the body does not hold what the header declares."""
    with open(path, "rb") as stream:
        data = stream.read()
    body = len(data) - header.length
    if header.format == "ascii":
        lines = sum(1 for line in data[header.length:].splitlines() if line.strip())
        declared = sum(count for _, count, _ in header.elements)
        if lines != declared:
            raise MeshError(
                f"declares {header.describe()} ({declared} lines) but the body has {lines} "
                "lines: the file is truncated or its header counts are wrong",
                source=path, field="header")
        return
    if header.format not in ("binary_little_endian", "binary_big_endian"):
        return
    end = _binary_body_end(data, header)
    if end is None:
        raise MeshError(
            f"declares {header.describe()} but the body ends before them ({body} bytes): the "
            "file is truncated or its header counts are wrong", source=path, field="header")
    if end != len(data):
        raise MeshError(
            f"declares {header.describe()} ({end - header.length} bytes) but the body has "
            f"{body} bytes: extra data after them, or the header counts are wrong",
            source=path, field="header")


def _obj_index(token: bytes, count: int, line: int, path: str) -> int:
    """0-based vertex index of one OBJ face token (``7``, ``7/3``, ``7//2``, ``-1``)."""
    try:
        value = int(token.split(b"/", 1)[0])
    except ValueError as err:
        raise MeshError(f"line {line}: unreadable face index {token[:30]!r}", source=path,
                        field="faces") from err
    if value == 0:
        raise MeshError(f"line {line}: OBJ indices start at 1, found 0", source=path,
                        field="faces")
    return value - 1 if value > 0 else count + value


def _read_obj(path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(vertices [N, 3] float64, faces [F, 3] int64)`` from the ``v`` and ``f`` lines."""
    coordinates: list[list[float]] = []
    faces: list[list[int]] = []
    polygons: dict[int, int] = {}
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            words = raw.split()
            if not words:
                continue
            if words[0] == b"v":
                try:
                    point = [float(word) for word in words[1:4]]
                except ValueError as err:
                    raise MeshError(f"line {number}: unreadable vertex {raw.strip()[:60]!r}",
                                    source=path, field="vertices") from err
                if len(point) != 3:
                    raise MeshError(f"line {number}: expected 3 coordinates per vertex",
                                    source=path, field="vertices")
                coordinates.append(point)
            elif words[0] == b"f":
                size = len(words) - 1
                if size != 3:
                    polygons[size] = polygons.get(size, 0) + 1
                    continue
                count = len(coordinates)
                faces.append([_obj_index(word, count, number, path) for word in words[1:]])
    if polygons:
        total = sum(polygons.values())
        raise MeshError(
            f"expected triangles (3 indices per face), found {total} faces with "
            f"{sorted(polygons)} indices; triangulate the mesh first", source=path,
            field="faces")
    if not faces:
        raise MeshError("expected a triangle mesh, the file has no faces", source=path,
                        field="faces")
    return np.asarray(coordinates, np.float64).reshape(-1, 3), np.asarray(faces, np.int64)


def _load_ply(path: str) -> tuple[np.ndarray, np.ndarray]:
    import trimesh  # deferred: trimesh import is slow and only needed for reading PLY

    try:
        loaded = trimesh.load(path, file_type="ply", process=False, maintain_order=True)
    except Exception as err:  # trimesh raises many types for malformed files
        raise MeshError(f"could not parse the PLY file ({err})", source=path) from err
    if isinstance(loaded, trimesh.Scene):
        geometries = list(loaded.geometry.values())
        if len(geometries) != 1:
            raise MeshError(f"expected one mesh, the file holds {len(geometries)} geometries",
                            source=path)
        loaded = geometries[0]
    faces = getattr(loaded, "faces", None)
    vertices = getattr(loaded, "vertices", None)
    if vertices is None or faces is None or len(faces) == 0:
        raise MeshError("expected a triangle mesh, the file has no faces", source=path,
                        field="faces")
    return np.asarray(vertices), np.asarray(faces)


def read_mesh(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Reads a triangle mesh from a PLY (ASCII or binary) or OBJ file.

    Vertices keep the file's order, including duplicated positions and vertices that no
    face uses. Texture coordinates, normals and colours are ignored.

    Args:
      path: A ``.ply`` or ``.obj`` file.

    Returns:
      ``(vertices, faces)``: ``[N, 3]`` float32 coordinates and ``[F, 3]`` int32
      indices, both in file order.

    Raises:
      MeshError: naming the file, if it is missing, has another suffix, cannot be
        parsed, declares more or less data in its (PLY) header than its body holds, has
        no faces, has quads or other polygons, has NaN or infinite coordinates, or has
        out-of-range indices.
    """
    path = os.fspath(path)
    kind = _format_of(path)
    if not os.path.exists(path):
        raise MeshError("file not found", source=path)
    if not os.path.isfile(path):
        raise MeshError("not a regular file", source=path)

    if kind == "ply":
        header = _ply_header(path)
        _check_ply_body(path, header)
        declared = header.counts
        vertices, faces = _load_ply(path)
        if "vertex" in declared and declared["vertex"] != vertices.shape[0]:
            raise MeshError(
                f"the header declares {declared['vertex']} vertices but "
                f"{vertices.shape[0]} were read", source=path, field="vertices")
        if declared.get("face", faces.shape[0]) != faces.shape[0]:
            raise MeshError(
                f"expected triangles (3 indices per face), but the {declared['face']} "
                f"declared faces became {faces.shape[0]} triangles: the file has quads or "
                "polygons; triangulate it first", source=path, field="faces")
    else:
        vertices, faces = _read_obj(path)
    vertices = validate_vertices(vertices, source=path)
    faces = validate_faces(faces, vertices.shape[0], source=path)
    return vertices.astype(np.float32), faces.astype(np.int32)


def check_topology(
    vertices,
    faces,
    template_faces,
    template_num_vertices: int,
    *,
    source: str | os.PathLike[str] | None = None,
) -> None:
    """Checks that a mesh has a template's topology.

    Faces are compared as a set of oriented triangles: face order and cyclic rotation
    of a face's indices do not matter, orientation and the indices themselves do.

    Args:
      vertices: ``[N, 3]`` coordinates of the mesh.
      faces: ``[F, 3]`` indices of the mesh.
      template_faces: ``[F_t, 3]`` indices of the template.
      template_num_vertices: The template's vertex count.
      source: File the mesh came from, used in error messages.

    Raises:
      MeshError: if the vertex count or the faces differ from the template's.
    """
    num_vertices = np.asarray(vertices).shape[0]
    if num_vertices != template_num_vertices:
        raise MeshError(
            f"expected the template's {template_num_vertices} vertices, found {num_vertices}",
            source=source, field="vertices")
    mine = _canonical_faces(faces)
    theirs = _canonical_faces(template_faces)
    if mine.shape != theirs.shape:
        raise MeshError(f"expected the template's {theirs.shape[0]} faces, found "
                        f"{mine.shape[0]}", source=source, field="faces")
    differ = np.flatnonzero((mine != theirs).any(axis=1))
    if differ.size:
        raise MeshError(
            f"expected the template's faces, {differ.size} of {mine.shape[0]} differ "
            f"(first difference: {mine[differ[0]].tolist()} vs template "
            f"{theirs[differ[0]].tolist()})", source=source, field="faces")


def _canonical_faces(faces) -> np.ndarray:
    f = np.asarray(faces, dtype=np.int64).reshape(-1, 3)
    shift = np.argmin(f, axis=1)
    rows = np.arange(f.shape[0])[:, None]
    rotated = f[rows, (shift[:, None] + np.arange(3)) % 3]
    order = np.lexsort(rotated.T[::-1])
    return rotated[order]


def _ply_bytes(vertices: np.ndarray, faces: np.ndarray, ascii: bool) -> bytes:
    header = (
        "ply\n"
        f"format {'ascii' if ascii else 'binary_little_endian'} 1.0\n"
        "comment written by jaxface\n"
        f"element vertex {vertices.shape[0]}\n"
        "property float x\nproperty float y\nproperty float z\n"
        f"element face {faces.shape[0]}\n"
        "property list uchar int vertex_indices\n"
        "end_header\n"
    ).encode("ascii")
    if ascii:
        lines = [" ".join(f"{c:.9g}" for c in row) for row in vertices.tolist()]
        lines += [f"3 {a} {b} {c}" for a, b, c in faces.tolist()]
        return header + ("\n".join(lines) + "\n").encode("ascii")
    records = np.empty(faces.shape[0], dtype=[("count", "u1"), ("indices", "<i4", (3,))])
    records["count"] = 3
    records["indices"] = faces
    return header + vertices.astype("<f4").tobytes() + records.tobytes()


def _obj_bytes(vertices: np.ndarray, faces: np.ndarray) -> bytes:
    lines = ["# written by jaxface"]
    lines += ["v " + " ".join(f"{c:.9g}" for c in row) for row in vertices.tolist()]
    lines += [f"f {a + 1} {b + 1} {c + 1}" for a, b, c in faces.tolist()]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_mesh(path: str | os.PathLike[str], vertices, faces, *, ascii: bool = False) -> None:
    """Writes a triangle mesh; the format follows the suffix (``.ply`` or ``.obj``).

    Coordinates are stored as float32 (PLY ``float``; OBJ with 9 significant digits, so
    float32 values read back exactly). Missing parent folders are created.

    Args:
      path: Destination file.
      vertices: ``[N, 3]`` float coordinates.
      faces: ``[F, 3]`` integer indices.
      ascii: For PLY, write ASCII instead of binary little-endian. Ignored for OBJ.

    Raises:
      MeshError: for another suffix, a malformed array or non-finite coordinates.
    """
    path = os.fspath(path)
    kind = _format_of(path)
    v = validate_vertices(vertices).astype(np.float32)
    f = validate_faces(faces, v.shape[0]).astype(np.int32)
    payload = _ply_bytes(v, f, ascii) if kind == "ply" else _obj_bytes(v, f)
    write_atomic(path, payload)


def write_sequence(
    folder: str | os.PathLike[str],
    frames,
    faces,
    *,
    fmt: str = "ply",
    prefix: str = "frame",
    ascii: bool = False,
) -> list[str]:
    """Writes one mesh file per frame: ``folder/{prefix}_{t:06d}.{fmt}``.

    Args:
      folder: Output folder, created if missing.
      frames: ``[T, N, 3]`` float coordinates, one mesh per frame.
      faces: ``[F, 3]`` integer indices shared by all frames.
      fmt: ``"ply"`` or ``"obj"``.
      prefix: File name prefix.
      ascii: For PLY, write ASCII instead of binary.

    Returns:
      The ``T`` written paths, in frame order.

    Raises:
      MeshError: for a malformed array, non-finite coordinates or an unknown format.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.shape[2] != 3:
        raise MeshError(f"expected an array of shape [T, N, 3], got {frames.shape}",
                        field="frames")
    if fmt not in ("ply", "obj"):
        raise MeshError(f"expected 'ply' or 'obj', got {fmt!r}", field="fmt")
    folder = os.fspath(folder)
    f = validate_faces(faces, frames.shape[1]).astype(np.int32)
    paths: list[str] = []
    for t, frame in enumerate(frames):
        path = os.path.join(folder, f"{prefix}_{t:06d}.{fmt}")
        try:
            v = validate_vertices(frame).astype(np.float32)
        except MeshError as err:
            raise MeshError(f"frame {t}: {err.detail}", source=path, field="vertices") from err
        payload = _ply_bytes(v, f, ascii) if fmt == "ply" else _obj_bytes(v, f)
        write_atomic(path, payload)
        paths.append(path)
    return paths
