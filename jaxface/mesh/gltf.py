"""Animated mesh sequences as binary glTF 2.0 (``.glb``): files every 3D tool opens.

:func:`write_glb` stores a sequence of meshes with one topology (``[T, N, 3]`` frames) as a single
mesh with *morph targets* and a ``weights`` animation at the sequence's frame rate, so Blender,
three.js, Windows' 3D Viewer or any other glTF viewer plays it. The file holds:

* the base mesh (the first frame, or a given base): ``POSITION`` (with the ``min``/``max`` the
  specification requires), area-weighted unit ``NORMAL`` s and the triangle indices (16-bit when
  the mesh has fewer than 65535 vertices, 32-bit otherwise);
* ``K`` morph targets (position deltas, with ``min``/``max``, and normal deltas) and per-frame
  weights ``[T, K]``, animated with ``LINEAR`` interpolation at keyframe times ``t / fps``.

The targets are chosen to be compact and exact. A truncated SVD of the frame deltas
``frames - base`` (``[T, 3N]``) gives targets ``S_k V_k`` and weights ``U_k``; the smallest rank
whose float32 reconstruction ``base + weights @ targets`` is within ``tolerance`` (1e-5 m by
default, i.e. 10 micrometres) of every input vertex is kept. Facial motion is smooth, so a few
components usually suffice. When no rank below the number of moving frames meets the tolerance,
the targets are the frame deltas themselves (one-hot weights: exact up to float32 rounding).
The encoding, its rank, the tolerance and the measured largest error are recorded in the mesh's
``extras`` (``jaxface``), and the target names in ``extras.targetNames`` (the convention Blender
and three.js read). Normal targets are the least-squares fit of the per-frame normal deltas with
the same weights (exact for frame-delta targets; viewers renormalise interpolated normals).

The JSON document and the GLB container are built with pygltflib, a maintained implementation of
the glTF 2.0 schema and of the binary container (chunk headers, alignment, reading and writing
both ``.gltf`` and ``.glb``), rather than by hand. :func:`read_glb` reads back what
:func:`write_glb` writes (and other single-mesh glTF files with the same layout): it evaluates the
weights animation at its keyframes and returns the frames. Files are written atomically
(:func:`jaxface.files.write_atomic`).

Coordinates are metres in glTF's frame, which is the library's: x right, y up, z toward the
viewer (the front of the face).

Example:
  >>> import tempfile, os
  >>> from jaxface.mesh.primitives import icosphere
  >>> v, f = icosphere(1)
  >>> frames = np.stack([v * (1.0 + 0.1 * t) for t in range(5)]).astype(np.float32)
  >>> path = os.path.join(tempfile.mkdtemp(), "sphere.glb")
  >>> info = write_glb(path, frames, f, fps=30.0, name="sphere")
  >>> info.num_targets, info.encoding   # a uniform scaling is one component
  (1, 'svd')
  >>> back = read_glb(path)
  >>> back.frames.shape, back.fps, bool(np.abs(back.frames - frames).max() < 1e-5)
  ((5, 42, 3), 30.0, True)
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxface.files import write_atomic
from jaxface.mesh.errors import MeshError
from jaxface.mesh.topology import validate_faces, validate_vertices, vertex_normals

__all__ = [
    "DEFAULT_TOLERANCE",
    "GlbInfo",
    "GlbSequence",
    "glb_size_bound",
    "motion_basis",
    "read_glb",
    "write_glb",
]

#: Largest reconstruction error (metres) the morph-target encoding may have by default.
DEFAULT_TOLERANCE = 1e-5

_FLOAT, _USHORT, _UINT = 5126, 5123, 5125
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_TRIANGLES = 4
_FALLBACK_NORMAL = np.array([0.0, 0.0, 1.0])


@dataclasses.dataclass(frozen=True)
class GlbInfo:
    """What :func:`write_glb` wrote.

    Attributes:
      path: the file.
      num_frames: ``T``, keyframes of the animation.
      num_vertices: ``N``.
      num_targets: ``K``, morph targets (0 for a sequence that does not move).
      encoding: ``"svd"`` (low-rank basis), ``"frames"`` (frame deltas) or ``"static"``.
      max_error: largest distance (metres, per coordinate) between a keyframe as stored and the
        input frame.
      fps: frame rate of the animation.
      bytes: size of the file.
    """

    path: str
    num_frames: int
    num_vertices: int
    num_targets: int
    encoding: str
    max_error: float
    fps: float
    bytes: int


@dataclasses.dataclass(frozen=True)
class GlbSequence:
    """A mesh sequence read from a ``.glb`` file (:func:`read_glb`).

    Attributes:
      frames: float32 ``[T, N, 3]`` vertex positions at the animation's keyframes (``[1, N, 3]``
        for a file without animation).
      faces: int32 ``[F, 3]`` triangles.
      times: float32 ``[T]`` keyframe times in seconds.
      fps: frame rate (from the file's record, else from the keyframe spacing; 0 for one frame).
      name: the mesh's name.
      num_targets: morph targets in the file.
    """

    frames: np.ndarray
    faces: np.ndarray
    times: np.ndarray
    fps: float
    name: str
    num_targets: int


def _check_frames(frames, source=None) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 3 or array.shape[2] != 3 or array.shape[0] < 1:
        raise MeshError(f"expected frames of shape [T, N, 3] with T >= 1, got {array.shape}",
                        source=source, field="frames")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise MeshError(f"expected real coordinates, got dtype {array.dtype}", source=source,
                        field="frames")
    bad = ~np.isfinite(array).all(axis=(1, 2))
    if bad.any():
        raise MeshError(f"expected finite coordinates, frame {int(np.flatnonzero(bad)[0])} has "
                        "NaN or inf values", source=source, field="frames")
    return array.astype(np.float64, copy=False)


def motion_basis(
    frames, base=None, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[np.ndarray, np.ndarray, str, float]:
    """Morph targets and weights that reproduce a sequence within ``tolerance``.

    Args:
      frames: float ``[T, N, 3]`` vertex positions.
      base: float ``[N, 3]`` base mesh (default: the first frame).
      tolerance: largest allowed error in metres (per coordinate) of the float32 reconstruction
        ``base + weights @ targets``.

    Returns:
      ``(targets float32 [K, N, 3], weights float32 [T, K], encoding, max_error)``; ``encoding``
      is ``"svd"`` (the smallest SVD rank that meets ``tolerance``), ``"frames"`` (one target
      per moving frame, one-hot weights: used when the SVD would need as many targets, or cannot
      meet ``tolerance``) or ``"static"`` (``K = 0``: no frame differs from the base).

    Raises:
      MeshError: malformed or non-finite frames or base, or a negative tolerance.

    Example:
      >>> t = np.linspace(0.0, 1.0, 8)[:, None, None]
      >>> frames = np.zeros((8, 4, 3)) + t * np.ones((4, 3)) + t**2 * np.eye(4, 3)
      >>> targets, weights, encoding, error = motion_basis(frames)
      >>> targets.shape, weights.shape, encoding, bool(error < 1e-5)
      ((2, 4, 3), (8, 2), 'svd', True)
    """
    x = _check_frames(frames)
    num_frames, num_vertices = x.shape[:2]
    if not tolerance >= 0.0:
        raise MeshError(f"expected a tolerance >= 0, got {tolerance}", field="tolerance")
    base32 = (x[0] if base is None else validate_vertices(base)).astype(np.float32)
    if base32.shape[0] != num_vertices:
        raise MeshError(f"expected a base of {num_vertices} vertices, got {base32.shape[0]}",
                        field="base")
    deltas = (x - base32).reshape(num_frames, -1)
    moving = np.flatnonzero(np.abs(deltas).max(axis=1) > 0.0)
    if moving.size == 0:
        return (np.zeros((0, num_vertices, 3), np.float32),
                np.zeros((num_frames, 0), np.float32), "static", 0.0)

    def error_of(targets32, weights32):
        stored = base32.reshape(-1).astype(np.float64) + weights32.astype(np.float64) @ targets32
        return float(np.abs(stored - x.reshape(num_frames, -1)).max())

    u, s, vt = np.linalg.svd(deltas, full_matrices=False)
    residual = deltas.copy()
    for k in range(min(len(s), moving.size - 1)):
        residual -= np.outer(u[:, k] * s[k], vt[k])
        if np.abs(residual).max() > tolerance:
            continue
        targets32 = (s[: k + 1, None] * vt[: k + 1]).astype(np.float32)
        weights32 = u[:, : k + 1].astype(np.float32)
        error = error_of(targets32.astype(np.float64), weights32)
        if error <= tolerance:
            return (targets32.reshape(k + 1, num_vertices, 3), weights32, "svd", error)
    targets32 = deltas[moving].astype(np.float32)
    weights32 = np.zeros((num_frames, moving.size), np.float32)
    weights32[moving, np.arange(moving.size)] = 1.0
    error = error_of(targets32.astype(np.float64), weights32)
    return targets32.reshape(-1, num_vertices, 3), weights32, "frames", error


def _unit_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    normals = vertex_normals(vertices.astype(np.float64), faces)
    normals[np.linalg.norm(normals, axis=1) < 0.5] = _FALLBACK_NORMAL
    return normals


def glb_size_bound(num_frames: int, num_vertices: int, num_faces: int, *,
                   normals: bool = True) -> int:
    """An upper bound of the size in bytes of a ``.glb`` that :func:`write_glb` writes.

    Example:
      >>> glb_size_bound(30, 468, 852)
      401048
    """
    per_target = 12 * num_vertices * (2 if normals else 1)
    return (8192 + 1024 * num_frames + 24 * num_vertices + 12 * num_faces + num_frames * per_target
            + 4 * num_frames * (num_frames + 1))


def write_glb(
    path: str | os.PathLike[str],
    frames,
    faces,
    fps: float,
    *,
    name: str = "face",
    base=None,
    tolerance: float = DEFAULT_TOLERANCE,
    normals: bool = True,
) -> GlbInfo:
    """Writes a mesh sequence as an animated binary glTF 2.0 file (morph targets + weights).

    Args:
      path: destination ``.glb`` file (its folder is created).
      frames: float ``[T, N, 3]`` vertex positions in metres, one mesh per frame.
      faces: int ``[F, 3]`` counter-clockwise triangles shared by all frames.
      fps: frame rate: keyframe ``t`` plays at ``t / fps`` seconds.
      name: name of the mesh, its node and its animation.
      base: float ``[N, 3]`` mesh stored as the base (default: the first frame).
      tolerance: largest allowed error of the stored keyframes, metres (:func:`motion_basis`).
      normals: also store normal deltas in the morph targets, so shading follows the motion
        (doubles the size of the targets).

    Returns:
      A :class:`GlbInfo`.

    Raises:
      MeshError: a path without the ``.glb`` suffix, malformed or non-finite frames, faces with
        out-of-range indices, or a frame rate that is not a positive number.
    """
    import pygltflib  # deferred: only the glTF writer and reader need it

    path = os.fspath(path)
    if os.path.splitext(path)[1].lower() != ".glb":
        raise MeshError("expected a .glb file", source=path, field="path")
    if not (isinstance(fps, int | float | np.number) and np.isfinite(fps) and fps > 0):
        raise MeshError(f"expected a positive frame rate, got {fps!r}", source=path, field="fps")
    x = _check_frames(frames, source=path)
    num_frames, num_vertices = x.shape[:2]
    f = validate_faces(faces, num_vertices, source=path)
    if f.shape[0] == 0:
        raise MeshError("expected at least one triangle", source=path, field="faces")
    targets, weights, encoding, error = motion_basis(x, base, tolerance)
    base32 = (x[0] if base is None else np.asarray(base, np.float64)).astype(np.float32)
    num_targets = targets.shape[0]

    blob = bytearray()
    views: list = []
    accessors: list = []

    def add(array: np.ndarray, kind: str, component: int, target: int | None,
            bounds: bool = False) -> int:
        data = np.ascontiguousarray(array)
        views.append(pygltflib.BufferView(buffer=0, byteOffset=len(blob),
                                          byteLength=data.nbytes, target=target))
        blob.extend(data.tobytes())
        blob.extend(b"\0" * (-len(blob) % 4))
        flat = data.reshape(data.shape[0], -1)
        accessors.append(pygltflib.Accessor(
            bufferView=len(views) - 1, componentType=component, count=int(data.shape[0]),
            type=kind,
            min=[float(v) for v in flat.min(axis=0)] if bounds else None,
            max=[float(v) for v in flat.max(axis=0)] if bounds else None))
        return len(accessors) - 1

    position = add(base32, "VEC3", _FLOAT, _ARRAY_BUFFER, bounds=True)
    base_normals = _unit_normals(base32, f)
    normal = add(base_normals.astype(np.float32), "VEC3", _FLOAT, _ARRAY_BUFFER)
    index_type = (np.uint16, _USHORT) if num_vertices < 65535 else (np.uint32, _UINT)
    indices = add(f.reshape(-1).astype(index_type[0]), "SCALAR", index_type[1],
                  _ELEMENT_ARRAY_BUFFER)

    primitive = pygltflib.Primitive(
        attributes=pygltflib.Attributes(POSITION=position, NORMAL=normal), indices=indices,
        mode=_TRIANGLES)
    animations = []
    if num_targets:
        normal_targets = None
        if normals:
            frame_normals = np.stack([_unit_normals(v, f) for v in x]) - base_normals
            normal_targets = np.linalg.lstsq(weights.astype(np.float64),
                                             frame_normals.reshape(num_frames, -1),
                                             rcond=None)[0].reshape(num_targets, num_vertices, 3)
        morphs = []
        for k in range(num_targets):
            attributes = pygltflib.Attributes(
                POSITION=add(targets[k], "VEC3", _FLOAT, _ARRAY_BUFFER, bounds=True))
            if normal_targets is not None:
                attributes.NORMAL = add(normal_targets[k].astype(np.float32), "VEC3", _FLOAT,
                                        _ARRAY_BUFFER)
            morphs.append(attributes)
        primitive.targets = morphs
        times = add((np.arange(num_frames) / float(fps)).astype(np.float32), "SCALAR", _FLOAT,
                    None, bounds=True)
        values = add(weights.reshape(-1), "SCALAR", _FLOAT, None)
        animations.append(pygltflib.Animation(
            name=name,
            samplers=[pygltflib.AnimationSampler(input=times, output=values,
                                                 interpolation="LINEAR")],
            channels=[pygltflib.AnimationChannel(
                sampler=0, target=pygltflib.AnimationChannelTarget(node=0, path="weights"))]))
    target_names = ([f"frame_{int(t):06d}" for t in np.flatnonzero(weights.any(axis=1))]
                    if encoding == "frames" else [f"basis_{k:03d}" for k in range(num_targets)])
    mesh = pygltflib.Mesh(
        name=name, primitives=[primitive],
        weights=[float(w) for w in weights[0]] if num_targets else None,
        extras={"targetNames": target_names, "jaxface": {
            "encoding": encoding, "num_frames": int(num_frames), "fps": float(fps),
            "tolerance_m": float(tolerance), "max_error_m": float(error),
            "normal_targets": bool(normals and num_targets)}})
    document = pygltflib.GLTF2(
        asset=pygltflib.Asset(version="2.0", generator="jaxface"),
        scene=0, scenes=[pygltflib.Scene(nodes=[0])],
        nodes=[pygltflib.Node(name=name, mesh=0)], meshes=[mesh],
        accessors=accessors, bufferViews=views,
        buffers=[pygltflib.Buffer(byteLength=len(blob))], animations=animations)
    document.set_binary_blob(bytes(blob))
    payload = b"".join(document.save_to_bytes())
    write_atomic(path, payload)
    return GlbInfo(path=path, num_frames=int(num_frames), num_vertices=int(num_vertices),
                   num_targets=int(num_targets), encoding=encoding, max_error=float(error),
                   fps=float(fps), bytes=len(payload))


_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32,
           5126: np.float32}
_WIDTHS = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4}


def _accessor(document, blob: bytes, index: int | None, path: str, what: str) -> np.ndarray:
    """The data of one accessor as ``[count, width]`` (tightly packed or strided views)."""
    if index is None or not 0 <= index < len(document.accessors):
        raise MeshError(f"{what}: no accessor {index}", source=path, field="accessors")
    accessor = document.accessors[index]
    if accessor.sparse is not None or accessor.bufferView is None:
        raise MeshError(f"{what}: sparse or empty accessors are not supported", source=path,
                        field="accessors")
    if accessor.componentType not in _DTYPES or accessor.type not in _WIDTHS:
        raise MeshError(f"{what}: unsupported accessor {accessor.componentType}/{accessor.type}",
                        source=path, field="accessors")
    view = document.bufferViews[accessor.bufferView]
    dtype = np.dtype(_DTYPES[accessor.componentType]).newbyteorder("<")
    width = _WIDTHS[accessor.type]
    item = dtype.itemsize * width
    stride = view.byteStride or item
    start = (view.byteOffset or 0) + (accessor.byteOffset or 0)
    end = start + stride * (accessor.count - 1) + item if accessor.count else start
    if view.buffer != 0 or end > len(blob) or end > (view.byteOffset or 0) + view.byteLength:
        raise MeshError(f"{what}: accessor {index} reaches past its buffer", source=path,
                        field="accessors")
    raw = np.frombuffer(blob, np.uint8, count=end - start, offset=start)
    rows = np.lib.stride_tricks.as_strided(raw, (accessor.count, item), (stride, 1))
    return np.ascontiguousarray(rows).view(dtype).reshape(accessor.count, width)


def read_glb(path: str | os.PathLike[str]) -> GlbSequence:
    """Reads a mesh sequence from a ``.glb`` file with one animated (or static) mesh.

    The mesh's first primitive must be triangles with ``POSITION`` (and indices, or none for a
    triangle soup); when an animation drives its node's ``weights``, the frames are the base plus
    the weighted morph targets at each keyframe of that animation.

    Args:
      path: a ``.glb`` file (as :func:`write_glb` writes).

    Returns:
      A :class:`GlbSequence`.

    Raises:
      MeshError: naming the file, when it is missing, not a binary glTF 2.0 file, has no mesh,
        a primitive that is not triangles, or data that does not fit its buffers.
    """
    import pygltflib

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MeshError("file not found", source=path)
    with open(path, "rb") as stream:
        data = stream.read()
    if data[:4] != b"glTF":
        raise MeshError("not a binary glTF file (no 'glTF' magic)", source=path)
    try:
        document = pygltflib.GLTF2.load_from_bytes(data)
    except Exception as err:  # pygltflib raises many types for malformed files
        raise MeshError(f"could not parse the glTF file ({err})", source=path) from err
    blob = document.binary_blob() or b""
    if not document.meshes or not document.meshes[0].primitives:
        raise MeshError("the file holds no mesh", source=path, field="meshes")
    mesh = document.meshes[0]
    primitive = mesh.primitives[0]
    if primitive.mode not in (None, _TRIANGLES):
        raise MeshError(f"expected triangles (mode 4), got mode {primitive.mode}", source=path,
                        field="meshes")
    base = _accessor(document, blob, primitive.attributes.POSITION, path, "POSITION")
    if base.shape[1] != 3:
        raise MeshError("POSITION must be VEC3", source=path, field="accessors")
    num_vertices = base.shape[0]
    if primitive.indices is None:
        faces = np.arange(num_vertices).reshape(-1, 3)
    else:
        faces = _accessor(document, blob, primitive.indices, path, "indices").reshape(-1, 3)
    faces = validate_faces(faces.astype(np.int64), num_vertices, source=path).astype(np.int32)
    morphs = [t.get("POSITION") if isinstance(t, dict) else t.POSITION
              for t in primitive.targets or []]
    targets = np.stack([_accessor(document, blob, index, path, f"target {k}")
                        for k, index in enumerate(morphs)]) if morphs else np.zeros(
        (0, num_vertices, 3), np.float32)
    if targets.shape[1:] != (num_vertices, 3):
        raise MeshError(f"morph targets of shape {targets.shape[1:]}, expected "
                        f"({num_vertices}, 3)", source=path, field="accessors")
    node = next((i for i, n in enumerate(document.nodes or []) if n.mesh == 0), None)
    channel = sampler = None
    for animation in document.animations or []:
        for candidate in animation.channels:
            if candidate.target.node == node and candidate.target.path == "weights":
                channel, sampler = candidate, animation.samplers[candidate.sampler]
                break
        if channel is not None:
            break
    record = (mesh.extras or {}).get("jaxface", {}) if isinstance(mesh.extras, dict) else {}
    if sampler is None or not len(targets):
        weights = np.asarray([mesh.weights or [0.0] * len(targets)], np.float64)
        times = np.zeros(1, np.float32)
    else:
        times = _accessor(document, blob, sampler.input, path, "animation input").reshape(-1)
        values = _accessor(document, blob, sampler.output, path, "animation output")
        per_key = 3 if sampler.interpolation == "CUBICSPLINE" else 1
        if values.size != times.size * per_key * len(targets):
            raise MeshError(f"the weights animation has {values.size} values for {times.size} "
                            f"keyframes of {len(targets)} targets", source=path,
                            field="animations")
        weights = values.reshape(times.size, per_key, len(targets))[:, per_key // 2]
    frames = base[None].astype(np.float64) + np.einsum(
        "tk,knc->tnc", weights.astype(np.float64), targets.astype(np.float64))
    fps = float(record.get("fps", 0.0))
    if not fps and times.size > 1:
        fps = float((times.size - 1) / max(float(times[-1] - times[0]), 1e-12))
    return GlbSequence(frames=frames.astype(np.float32), faces=faces,
                       times=np.asarray(times, np.float32), fps=fps,
                       name=mesh.name or os.path.splitext(os.path.basename(path))[0],
                       num_targets=len(targets))
