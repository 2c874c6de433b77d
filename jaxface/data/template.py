"""The jaxface face template: a licence-clean human face mesh with 68 iBUG landmarks.

The base mesh (``jaxface/assets/face_template.npz``, 468 vertices, 852 triangles) has MediaPipe's
face-landmark topology (Apache-2.0) and vertex positions detected by MediaPipe FaceMesh on a
public-domain NASA portrait; see ``jaxface/assets/PROVENANCE.md`` and
``experiments/assets/build_face_template.py`` for how it was made. Coordinates are metres in a
right-handed frame (x to the viewer's right, i.e. the subject's left; y up; z toward the viewer),
the face is 0.15 m wide, symmetric about ``x = 0`` and has a closed, relaxed (neutral) mouth. The
mesh is an open face mask with four boundary loops: the outline, the mouth slit and the two eyes.

:func:`load_face_template` returns it at CoMA-like resolutions by subdivision (0: 468 vertices,
1: 1790, 2: 6990). The original 468 vertices keep their indices at every level, so the landmark
vertex indices stay valid; with the default Loop scheme their positions are smoothed slightly.

The 68 landmarks follow the iBUG / Multi-PIE order (0-16 jaw contour from the subject's right ear
level to the left, 17-26 brows, 27-35 nose, 36-47 eyes, 48-67 mouth); the vertex choice is listed in
:data:`IBUG68_VERTICES`.

Example:
  >>> t = load_face_template(0)
  >>> t.vertices.shape, t.faces.shape, t.landmarks.num_landmarks
  ((468, 3), (852, 3), 68)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

import numpy as np
import scipy.sparse
import scipy.spatial

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.mesh.subdivision import subdivide

__all__ = [
    "IBUG68_GROUPS",
    "IBUG68_VERTICES",
    "MOUTH_CORNERS",
    "MOUTH_LOWER_INNER",
    "MOUTH_UPPER_INNER",
    "NUM_BASE_VERTICES",
    "TEMPLATE_ASSET",
    "FaceTemplate",
    "load_face_template",
]

TEMPLATE_ASSET = "face_template.npz"
NUM_BASE_VERTICES = 468

# The 68 iBUG / Multi-PIE facial landmarks as MediaPipe FaceMesh vertex indices of the base mesh
# (also the asset's ``landmark_indices``). "Right"/"left" are the subject's. The jaw points were
# chosen along the mesh's outer contour at about equal arc length from vertex 127 (temple, level
# with the lower eyelid) through the chin (152) to vertex 356; the rest follow MediaPipe's named
# contours (brow upper edge, nose ridge, eyelid margins, outer and inner lip lines), picked at the
# iBUG spacing. Checked on a labelled render.
IBUG68_VERTICES = (
    # 0-16: jaw contour, subject's right ear level -> chin (8) -> left ear level.
    127, 234, 132, 58, 172, 136, 149, 176, 152, 400, 378, 365, 397, 288, 361, 454, 356,
    # 17-21: right brow, outer -> inner. 22-26: left brow, inner -> outer.
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # 27-30: nose ridge, nasion -> tip. 31-35: nostril base, right -> left (33 = subnasale).
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # 36-41: right eye (outer corner, upper lid x2, inner corner, lower lid x2).
    33, 160, 158, 133, 153, 144,
    # 42-47: left eye (inner corner, upper lid x2, outer corner, lower lid x2).
    362, 385, 387, 263, 373, 380,
    # 48-59: outer lip line, right corner -> upper middle (51) -> left corner -> lower middle (57).
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    # 60-67: inner lip line, right corner -> upper middle (62) -> left corner -> lower middle (66).
    78, 81, 13, 311, 308, 402, 14, 178,
)

# Index ranges of the iBUG-68 groups.
IBUG68_GROUPS = {
    "jaw": tuple(range(0, 17)),
    "right_brow": tuple(range(17, 22)),
    "left_brow": tuple(range(22, 27)),
    "nose_ridge": tuple(range(27, 31)),
    "nose_base": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
}

# Inner-lip (mouth-slit) vertices of the base mesh, subject's right to left, and the slit corners.
MOUTH_UPPER_INNER = (191, 80, 81, 82, 13, 312, 311, 310, 415)
MOUTH_LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
MOUTH_CORNERS = (78, 308)


@dataclasses.dataclass(frozen=True, eq=False)
class FaceTemplate:
    """A face mesh with landmarks.

    Arrays are read-only (templates are cached and shared).

    Attributes:
      vertices: ``float32 [N, 3]`` positions in metres.
      faces: ``int32 [F, 3]`` counter-clockwise (seen from the front) triangles.
      landmarks: the 68 iBUG landmarks as vertex indices.
      name: identifier, e.g. ``"mediapipe468-loop2"``.
      mirror: ``int32 [N]`` index of each vertex's bilateral counterpart (exact on the base mesh,
        nearest mirrored vertex after subdivision).
      from_base: ``scipy.sparse.csr_matrix [N, 468]`` linear map from base-mesh fields to this mesh
        (identity for ``subdivisions=0``); ``vertices == from_base @ base_vertices``.
    """

    vertices: np.ndarray
    faces: np.ndarray
    landmarks: LandmarkDefinition
    name: str
    mirror: np.ndarray
    from_base: scipy.sparse.csr_matrix

    @property
    def num_vertices(self) -> int:
        """``N``."""
        return int(self.vertices.shape[0])

    def landmark_positions(self, vertices: np.ndarray | None = None) -> np.ndarray:
        """The 68 landmarks of ``vertices`` (default: the template itself).

        Args:
          vertices: ``float [..., N, 3]`` meshes with this topology.

        Returns:
          ``[..., 68, 3]`` landmark positions.
        """
        v = self.vertices if vertices is None else np.asarray(vertices)
        return v[..., self.landmarks.vertex_indices, :]


def _read_asset() -> dict[str, np.ndarray]:
    ref = importlib.resources.files("jaxface").joinpath("assets", TEMPLATE_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        return {k: z[k] for k in z.files}


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@functools.lru_cache(maxsize=8)
def load_face_template(subdivisions: int = 2, *, scheme: str = "loop") -> FaceTemplate:
    """Loads the face template, optionally subdivided (cached per process).

    Args:
      subdivisions: number of 1-to-4 subdivision steps: 0 gives 468 vertices, 1 gives 1790, 2 gives
        6990 (CoMA-like resolution; CoMA has 5023).
      scheme: ``"loop"`` (smooth) or ``"midpoint"`` (keeps the base surface), see
        :mod:`jaxface.mesh.subdivision`.

    Returns:
      A :class:`FaceTemplate`; landmark indices refer to base vertices, which keep their indices.
    """
    if subdivisions < 0:
        raise ValueError(f"subdivisions must be >= 0, got {subdivisions}")
    asset = _read_asset()
    base_v = asset["vertices"].astype(np.float32)
    faces = asset["faces"].astype(np.int32)
    lmk = asset["landmark_indices"].astype(np.int32)
    if tuple(lmk.tolist()) != IBUG68_VERTICES:
        raise ValueError(f"{TEMPLATE_ASSET}: landmark_indices differ from IBUG68_VERTICES")
    mirror = asset["mirror"].astype(np.int32)
    v64 = base_v.astype(np.float64)
    op = scipy.sparse.identity(base_v.shape[0], format="csr", dtype=np.float64)
    for _ in range(subdivisions):
        step = subdivide(v64, faces, scheme=scheme)
        v64, faces = step.vertices, step.faces
        op = (step.operator @ op).tocsr()
    if subdivisions:
        mirrored = v64 * np.array([-1.0, 1.0, 1.0])
        _, near = scipy.spatial.cKDTree(v64).query(mirrored)
        mirror = near.astype(np.int32)
        name = f"mediapipe468-{scheme}{subdivisions}"
    else:
        name = "mediapipe468"
    return FaceTemplate(
        vertices=_readonly(v64.astype(np.float32)),
        faces=_readonly(faces.astype(np.int32)),
        landmarks=LandmarkDefinition(vertex_indices=_readonly(lmk)),
        name=name,
        mirror=_readonly(mirror),
        from_base=op,
    )
