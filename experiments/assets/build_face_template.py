r"""Builds ``jaxface/assets/face_template.npz``, the licence-clean 468-vertex face template.

Where the data comes from:
  * Topology: the 852 triangles of MediaPipe's face-landmark tessellation
    (``FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION`` in
    ``mediapipe/tasks/python/vision/face_landmarker.py``, Apache-2.0). The tessellation is stored as
    2556 directed connections, consecutive triples ``(a, b), (b, c), (c, a)`` of one triangle.
  * Positions: the 468 3D landmarks that MediaPipe's legacy FaceMesh
    (``mp.solutions.face_mesh.FaceMesh(static_image_mode=True)``) detects on
    ``skimage.data.astronaut()``, a NASA portrait shipped with scikit-image and documented there as
    public domain ("No known copyright restrictions").

Processing (all deterministic):
  1. Pixel frame to a right-handed frame: ``X = x W``, ``Y = -y H``, ``Z = -z W``. MediaPipe's
     ``x, y`` are normalised by the image width and height, and its ``z`` is a relative depth on
     the same scale as ``x`` with smaller values closer to the camera. Flipping both ``y`` and
     ``z`` is a proper rotation, so the result is right-handed: x to the viewer's right (the
     subject's left), y up and z toward the viewer. The triangles are checked to be consistently
     oriented (every interior edge is used once in each direction) and counter-clockwise seen
     from +z.
  2. Bilateral symmetry: the mesh is mirrored, registered onto itself (ICP), and the mirror
     correspondence is made one-to-one (Hungarian assignment). The pairing is an involution that
     fixes the midline vertices.
  3. Pose: the symmetry plane is rotated onto ``x = 0``; the pitch is set so that the forehead top
     (vertex 10) and the chin (vertex 152) have the same depth. The shape is then made exactly
     symmetric by averaging it with its mirror image.
  4. Metric scale: the face is scaled to 0.15 m wide (x extent). The depth-to-width ratio printed by
     the script (about 0.74, nose tip to the side contour) is in the anthropometric range, so the
     detected depth is kept as is (one uniform scale for x, y and z).
  5. Neutral expression: the photograph shows an open-mouthed smile. The mouth is closed and the
     smile relaxed by a smooth bi-Laplacian (cotangent) deformation: the inner-lip vertices are
     moved together (lower lip 70 %, upper lip 30 % of the gap, 1 mm slit left), the mouth is
     narrowed to 80 % of its width and the corners lowered by 2 mm and brought forward by 3 mm.
     The upper face (above the nostrils) and the lateral cheeks are fixed; the chin follows the
     lower lip freely.
  6. The bounding box is centred at the origin.

It also records the 68 iBUG-order facial landmarks as vertex indices
(``jaxface.data.template.IBUG68_VERTICES``) and the mirror map.

Rerun (from the repository root). MediaPipe must live in its own virtual environment, because it
pins an old protobuf that would downgrade the project's::

    python3.11 -m venv /tmp/mpvenv
    /tmp/mpvenv/bin/pip install "mediapipe==0.10.14" scikit-image
    /tmp/mpvenv/bin/python -m experiments.assets.build_face_template \
        --out jaxface/assets/face_template.npz

To redo only the geometric processing (steps 1-6) from the raw detection stored in an existing
asset, without MediaPipe (any environment with numpy and scipy)::

    python -m experiments.assets.build_face_template --reuse jaxface/assets/face_template.npz \
        --out /tmp/face_template.npz
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg
import scipy.spatial

from jaxface.data.template import IBUG68_VERTICES
from jaxface.mesh.topology import boundary_loops

__all__ = [
    "MOUTH_INNER_CORNERS",
    "MOUTH_LOWER_INNER",
    "MOUTH_UPPER_INNER",
    "align_and_symmetrize",
    "build_template",
    "check_orientation",
    "detect_landmarks",
    "main",
    "mirror_pairs",
    "neutralize_mouth",
    "tessellation_triangles",
    "to_metric_frame",
]


# Inner-lip (mouth-hole boundary) vertices, paired upper/lower from the subject's right to left.
MOUTH_UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
MOUTH_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_INNER_CORNERS = (78, 308)

_FACE_WIDTH_M = 0.15
_FOREHEAD_TOP, _CHIN = 10, 152


def detect_landmarks(image: np.ndarray) -> np.ndarray:
    """Runs MediaPipe's legacy FaceMesh on one RGB image.

    Args:
      image: ``uint8 [H, W, 3]`` RGB image with one face.

    Returns:
      ``float64 [468, 3]`` normalised landmarks ``(x, y, z)`` as MediaPipe reports them.
    """
    import mediapipe as mp

    face_mesh = mp.solutions.face_mesh
    with face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=False) as fm:
        result = fm.process(np.ascontiguousarray(image))
    if not result.multi_face_landmarks:
        raise RuntimeError("FaceMesh found no face in the image")
    pts = result.multi_face_landmarks[0].landmark
    return np.array([[p.x, p.y, p.z] for p in pts], np.float64)


def tessellation_triangles() -> np.ndarray:
    """Reads the 852 triangles of MediaPipe's face tessellation.

    Returns:
      ``int32 [852, 3]`` triangles in MediaPipe's vertex order.
    """
    from mediapipe.tasks.python.vision import face_landmarker

    conns = face_landmarker.FaceLandmarksConnections.FACE_LANDMARKS_TESSELATION
    c = np.array([[x.start, x.end] for x in conns], np.int64)
    if len(c) % 3:
        raise ValueError(f"{len(c)} connections is not a multiple of 3")
    a, b, d = c[0::3], c[1::3], c[2::3]
    chained = (a[:, 1] == b[:, 0]) & (b[:, 1] == d[:, 0]) & (d[:, 1] == a[:, 0])
    if not np.all(chained):
        raise ValueError("connections are not consecutive triangle triples")
    return np.stack([a[:, 0], b[:, 0], d[:, 0]], axis=1).astype(np.int32)


def to_metric_frame(raw: np.ndarray, width: int, height: int) -> np.ndarray:
    """Maps normalised MediaPipe landmarks to a right-handed pixel-scaled frame.

    Args:
      raw: ``float [N, 3]`` normalised ``(x, y, z)``.
      width: image width in pixels (also the scale of ``z``).
      height: image height in pixels.

    Returns:
      ``float64 [N, 3]`` with x right, y up, z toward the viewer, in pixels.
    """
    raw = np.asarray(raw, np.float64)
    return np.stack([raw[:, 0] * width, -raw[:, 1] * height, -raw[:, 2] * width], axis=1)


def check_orientation(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Checks that the triangles are consistently oriented and face the viewer (+z).

    Args:
      vertices: ``float [N, 3]``.
      faces: ``int [F, 3]``.

    Returns:
      Fraction of triangles whose normal has a positive z component.

    Raises:
      ValueError: if a directed edge is used twice (inconsistent orientation or non-manifold), or if
        most triangles face away from the viewer.
    """
    f = np.asarray(faces, np.int64)
    directed = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    if len(np.unique(directed, axis=0)) != len(directed):
        raise ValueError("a directed edge occurs twice: orientation is inconsistent")
    v = np.asarray(vertices, np.float64)
    n = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    frac = float(np.mean(n[:, 2] > 0))
    if frac < 0.5:
        raise ValueError(f"only {frac:.2f} of the triangles face +z")
    return frac


def _kabsch(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cs, cd = src.mean(0), dst.mean(0)
    u, _, vt = np.linalg.svd((src - cs).T @ (dst - cd))
    d = np.sign(np.linalg.det(u @ vt))
    rot = (u @ np.diag([1.0, 1.0, d]) @ vt).T
    return rot, cd - rot @ cs


def mirror_pairs(points: np.ndarray, iterations: int = 50) -> np.ndarray:
    """Finds each vertex's bilateral counterpart.

    Args:
      points: ``float [N, 3]`` roughly frontal face (x across the face).
      iterations: ICP iterations.

    Returns:
      ``int32 [N]`` involution ``pair`` with ``pair[pair] == arange(N)``.
    """
    p = np.asarray(points, np.float64)
    p = p - p.mean(0)
    q = p * np.array([-1.0, 1.0, 1.0])
    tree = scipy.spatial.cKDTree(p)
    for _ in range(iterations):
        _, idx = tree.query(q)
        rot, t = _kabsch(q, p[idx])
        q = q @ rot.T + t
    cost = np.linalg.norm(q[:, None, :] - p[None, :, :], axis=-1)
    _, pair = scipy.optimize.linear_sum_assignment(cost)
    if not np.array_equal(pair[pair], np.arange(len(p))):
        raise ValueError("mirror correspondence is not an involution")
    return pair.astype(np.int32)


def _rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    v, c = np.cross(a, b), float(a @ b)
    k = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + k + k @ k / (1.0 + c)


def _symmetrize(v: np.ndarray, pair: np.ndarray) -> np.ndarray:
    return 0.5 * (v + v[pair] * np.array([-1.0, 1.0, 1.0]))


def align_and_symmetrize(points: np.ndarray, pair: np.ndarray) -> np.ndarray:
    """Rotates the symmetry plane onto x = 0, levels the pitch and symmetrises.

    Args:
      points: ``float [N, 3]`` face in a right-handed frame (x right, y up, z to the viewer).
      pair: ``int [N]`` mirror map from :func:`mirror_pairs`.

    Returns:
      ``float64 [N, 3]`` exactly symmetric under ``x -> -x`` with the pairing; forehead top and chin
      at equal depth.
    """
    p = np.asarray(points, np.float64)
    moved = pair != np.arange(len(p))
    _, _, vt = np.linalg.svd(p[moved] - p[pair[moved]], full_matrices=False)
    normal = vt[0] * np.sign(vt[0, 0])
    p = (p - p.mean(0)) @ _rotation_between(normal, np.array([1.0, 0.0, 0.0])).T
    p = _symmetrize(p, pair)
    d = p[_FOREHEAD_TOP] - p[_CHIN]
    ang = -np.arctan2(d[2], d[1])
    c, s = np.cos(ang), np.sin(ang)
    p = p @ np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]]).T
    return _symmetrize(p, pair)


def _cotangent_laplacian(
    v: np.ndarray, f: np.ndarray
) -> tuple[scipy.sparse.csr_matrix, np.ndarray]:
    n = len(v)
    rows, cols, vals = [], [], []
    for k in range(3):
        i, j, o = f[:, k], f[:, (k + 1) % 3], f[:, (k + 2) % 3]
        a, b = v[i] - v[o], v[j] - v[o]
        cot = np.einsum("ij,ij->i", a, b) / np.linalg.norm(np.cross(a, b), axis=1)
        rows += [i, j]
        cols += [j, i]
        vals += [0.5 * cot, 0.5 * cot]
    w = scipy.sparse.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
    ).tocsr()
    lap = w - scipy.sparse.diags(np.asarray(w.sum(axis=1)).ravel())
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    mass = np.zeros(n)
    for k in range(3):
        np.add.at(mass, f[:, k], area / 3.0)
    return lap.tocsr(), mass


def neutralize_mouth(
    vertices: np.ndarray,
    faces: np.ndarray,
    pair: np.ndarray,
    *,
    width_factor: float = 0.80,
    lower_share: float = 0.70,
    slit_m: float = 0.001,
) -> np.ndarray:
    """Closes the mouth and relaxes the smile with a bi-Laplacian deformation.

    Args:
      vertices: ``float [N, 3]`` metric, symmetric face (metres).
      faces: ``int [F, 3]``.
      pair: ``int [N]`` mirror map.
      width_factor: new mouth width over the detected one.
      lower_share: fraction of the lip gap closed by the lower lip.
      slit_m: remaining distance between the upper and lower inner lip, metres.

    Returns:
      ``float64 [N, 3]`` deformed (and re-symmetrised) vertices.
    """
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    n = len(v)
    targets: dict[int, np.ndarray] = {}
    for u, lo in zip(MOUTH_UPPER_INNER, MOUTH_LOWER_INNER, strict=True):
        meet = v[u, 1] - (1.0 - lower_share) * (v[u, 1] - v[lo, 1])
        depth = 0.5 * (v[u, 2] + v[lo, 2])
        targets[u] = np.array([v[u, 0] * width_factor, meet + 0.5 * slit_m, depth + 0.001])
        targets[lo] = np.array([v[lo, 0] * width_factor, meet - 0.5 * slit_m, depth])
    for c in MOUTH_INNER_CORNERS:
        targets[c] = np.array([v[c, 0] * width_factor, v[c, 1] - 0.002, v[c, 2] + 0.003])

    nostril_y = v[2, 1]  # subnasale
    fixed = (v[:, 1] > nostril_y - 0.0005) | (np.abs(v[:, 0]) > 0.058)
    outer = max(boundary_loops(f), key=len)
    fixed[[b for b in outer if v[b, 1] > -0.05]] = True
    handles = np.array(sorted(targets), np.int64)
    fixed[handles] = False
    known = fixed.copy()
    known[handles] = True
    disp = np.zeros((n, 3))
    disp[handles] = np.stack([targets[h] for h in handles.tolist()]) - v[handles]

    lap, mass = _cotangent_laplacian(v, f)
    bilap = (lap.T @ scipy.sparse.diags(1.0 / mass) @ lap).tocsr()
    free = ~known
    rhs = -(bilap[free][:, known] @ disp[known])
    disp[free] = scipy.sparse.linalg.spsolve(bilap[free][:, free].tocsc(), rhs)
    return _symmetrize(v + disp, pair)


def build_template(raw: np.ndarray, faces: np.ndarray, width: int, height: int) -> dict:
    """Runs the geometric processing (steps 1-6 of the module docstring).

    Args:
      raw: ``float [468, 3]`` normalised MediaPipe landmarks.
      faces: ``int [852, 3]`` tessellation triangles.
      width: width of the source image in pixels.
      height: height of the source image in pixels.

    Returns:
      Dict of arrays to store: ``vertices`` float32 [468, 3] (metres), ``faces`` int32 [852, 3],
      ``landmark_indices`` int32 [68], ``mirror`` int32 [468], ``mediapipe_landmarks`` float32
      [468, 3], ``source_image_size`` int32 [2] (height, width).
    """
    faces = np.asarray(faces, np.int32)
    raw = np.asarray(raw, np.float32)  # MediaPipe reports float32; what is stored is what is used
    p = to_metric_frame(raw, width, height)
    front = check_orientation(p, faces)
    pair = mirror_pairs(p)
    p = align_and_symmetrize(p, pair)
    p = p - 0.5 * (p.max(0) + p.min(0))
    p = p * (_FACE_WIDTH_M / (p[:, 0].max() - p[:, 0].min()))
    p = neutralize_mouth(p, faces, pair)
    p = p - 0.5 * (p.max(0) + p.min(0))
    p[pair == np.arange(len(p)), 0] = 0.0
    check_orientation(p, faces)
    depth_ratio = (p[4, 2] - p[234, 2]) / (p[454, 0] - p[234, 0])
    print(
        f"front-facing triangles {front:.3f}; "
        f"midline vertices {(pair == np.arange(len(p))).sum()}; "
        f"extent (m) {np.round(p.max(0) - p.min(0), 4)}; nose-tip depth / width {depth_ratio:.3f}",
        file=sys.stderr,
    )
    return {
        "vertices": p.astype(np.float32),
        "faces": faces,
        "landmark_indices": np.asarray(IBUG68_VERTICES, np.int32),
        "mirror": pair.astype(np.int32),
        "mediapipe_landmarks": raw,
        "source_image_size": np.array([height, width], np.int32),
    }


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="destination .npz")
    parser.add_argument(
        "--reuse", default=None, help="existing asset whose raw detection and faces to reprocess"
    )
    args = parser.parse_args(argv)
    if args.reuse:
        with np.load(args.reuse) as src:
            raw = src["mediapipe_landmarks"].astype(np.float64)
            faces = src["faces"]
            height, width = (int(x) for x in src["source_image_size"])
    else:
        import skimage.data

        image = skimage.data.astronaut()
        height, width = image.shape[:2]
        raw = detect_landmarks(image)
        faces = tessellation_triangles()
    arrays = build_template(raw, faces, width, height)
    np.savez_compressed(args.out, **arrays)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
