"""A morphable face model with FLAME's structure, as numpy constants.

:class:`MorphableModel` holds what FLAME (Li et al., SIGGRAPH Asia 2017) is made of, in FLAME's
layout, so that one JAX evaluation (:func:`jaxface.morphable.forward.morph`) serves FLAME read
from a user's file (:func:`jaxface.morphable.flame.load_flame`) and the open model that ships
with jaxface (:func:`jaxface.morphable.open_model.load_open_model`):

* a template mesh in metres, linear identity (``shapedirs``) and expression (``exprdirs``)
  bases and two eyelid-closing shapes (SMIRK's addition);
* a kinematic tree of ``J`` joints (FLAME: 0 global, 1 neck, 2 jaw, 3 and 4 the eyes) located by
  a joint regressor, linear-blend-skinning weights and optional pose correctives;
* landmarks as barycentric points on triangles (the 68 iBUG points, MediaPipe points, and
  optionally FLAME's pose-dependent jaw contour);
* vertex masks of face regions and the triangles that are rendered (the "face" region).

Arrays are read-only numpy arrays; they are constants of the JAX computation, never parameters.

Example:
  >>> from jaxface.morphable.open_model import load_open_model
  >>> m = load_open_model()
  >>> m.num_vertices, m.num_joints, m.truncated(20, 10).shapedirs.shape
  (468, 5, (468, 3, 20))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np

__all__ = [
    "MEDIAPIPE_POINTS",
    "BarycentricEmbedding",
    "MorphableModel",
    "MorphableModelError",
    "triangles_within",
]

MEDIAPIPE_POINTS = 478
"""Points of MediaPipe's face mesh with irises (468 without); bounds ``mediapipe_indices``."""


class MorphableModelError(ValueError):
    """A morphable model, or a file it is read from, that cannot be used as given. The message
    names the model or file and the field."""


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


@dataclasses.dataclass(frozen=True, eq=False)
class BarycentricEmbedding:
    """Points on a mesh as barycentric coordinates in triangles.

    Point ``l`` is ``sum_k bary[l, k] * vertices[mesh_faces[faces[l], k]]``. A pose-dependent
    contour (FLAME's dynamic embedding) has one more leading axis: ``faces [A, L]`` and
    ``bary [A, L, 3]``, one row per head-yaw bin.

    Attributes:
      faces: ``int32 [L]`` (or ``[A, L]``) triangle indices into the model's ``faces``.
      bary: ``float32 [L, 3]`` (or ``[A, L, 3]``) barycentric coordinates.
    """

    faces: np.ndarray
    bary: np.ndarray

    def __post_init__(self) -> None:
        faces = np.asarray(self.faces)
        bary = np.asarray(self.bary)
        if not np.issubdtype(faces.dtype, np.integer) and faces.size:
            if not np.all(np.mod(faces, 1) == 0):
                raise MorphableModelError(f"embedding faces must be integers, got {faces.dtype}")
        if bary.shape != (*faces.shape, 3):
            raise MorphableModelError(
                f"embedding bary must have shape {(*faces.shape, 3)} for faces {faces.shape}, "
                f"got {bary.shape}"
            )
        object.__setattr__(self, "faces", _readonly(faces.astype(np.int32)))
        object.__setattr__(self, "bary", _readonly(bary.astype(np.float32)))

    @property
    def num_points(self) -> int:
        """``L``."""
        return int(self.faces.shape[-1])

    @classmethod
    def empty(cls) -> BarycentricEmbedding:
        """No points (a model read without a landmark file)."""
        return cls(np.zeros((0,), np.int32), np.zeros((0, 3), np.float32))

    @classmethod
    def at_vertices(cls, vertices: np.ndarray, mesh_faces: np.ndarray) -> BarycentricEmbedding:
        """Vertices as points: each on an incident triangle with a one-hot coordinate.

        Args:
          vertices: ``int [L]`` vertex indices.
          mesh_faces: ``int [F, 3]`` the mesh's triangles.

        Returns:
          The embedding; the triangle of vertex ``v`` is the first one (lowest index) using it.
        """
        vertices = np.asarray(vertices, np.int64)
        used, first = np.unique(np.asarray(mesh_faces, np.int64).ravel(), return_index=True)
        slot = np.searchsorted(used, vertices)
        if vertices.size and (slot.max() >= used.size or np.any(used[slot] != vertices)):
            raise MorphableModelError("at_vertices: a vertex is used by no triangle")
        faces, corner = np.divmod(first[slot], 3)  # first use: lowest triangle, then corner
        bary = np.zeros((vertices.size, 3), np.float32)
        bary[np.arange(vertices.size), corner] = 1.0
        return cls(faces, bary)


@dataclasses.dataclass(frozen=True, eq=False)
class MorphableModel:
    """A morphable face model with FLAME's structure (numpy, read-only).

    ``V`` vertices, ``F`` triangles, ``S`` shape and ``E`` expression components, ``J`` joints.

    Attributes:
      name: identifier, e.g. ``"flame2020"`` or ``"jaxface-open"``.
      v_template: ``float32 [V, 3]`` the mean face, metres (FLAME's unit).
      faces: ``int32 [F, 3]`` triangles (FLAME's orientation: counter-clockwise seen from outside).
      shapedirs: ``float32 [V, 3, S]`` identity displacement per unit shape coefficient, metres.
      exprdirs: ``float32 [V, 3, E]`` expression displacement per unit coefficient, metres.
      expression_names: the ``E`` expression names.
      eyelids: ``float32 [2, V, 3]`` eyelid-closing displacements (left, right: the subject's),
        added with the eyelid coefficients in ``[0, 1]``.
      posedirs: ``float32 [P, V * 3]`` pose correctives with ``P = 9 (J - 1)``: the displacement
        (flattened ``[V, 3]`` row-major) per element of ``R_j - I`` of the non-root joints, in
        FLAME's order; or None.
      j_regressor: ``float32 [J, V]`` joint locations as linear combinations of the shaped
        vertices.
      parents: ``int32 [J]`` the parent of each joint, ``-1`` for the root (joint 0); parents
        precede their children.
      lbs_weights: ``float32 [V, J]`` skinning weights (rows sum to 1).
      landmarks68: the 68 iBUG landmarks (``L = 68``, or 0 when unknown).
      mediapipe_landmarks: ``L_mp`` MediaPipe face-mesh points.
      mediapipe_indices: ``int32 [L_mp]`` the MediaPipe point index of each row of
        ``mediapipe_landmarks``.
      masks: region name -> ``int32`` sorted vertex indices; always has ``"face"``.
      face_mask_faces: ``int32 [F_face, 3]`` the triangles rendered: those of ``faces`` whose
        three corners are in ``masks["face"]`` (full-mesh vertex indices, same order as
        ``faces``).
      contour_embedding: optional pose-dependent jaw contour, ``faces [A, 17]`` and
        ``bary [A, 17, 3]`` (FLAME's dynamic embedding: 79 yaw bins).
      uv: optional ``float32 [F, 3, 2]`` texture coordinates of each triangle corner.
    """

    name: str
    v_template: np.ndarray
    faces: np.ndarray
    shapedirs: np.ndarray
    exprdirs: np.ndarray
    expression_names: tuple[str, ...]
    eyelids: np.ndarray
    posedirs: np.ndarray | None
    j_regressor: np.ndarray
    parents: np.ndarray
    lbs_weights: np.ndarray
    landmarks68: BarycentricEmbedding
    mediapipe_landmarks: BarycentricEmbedding
    mediapipe_indices: np.ndarray
    masks: Mapping[str, np.ndarray]
    face_mask_faces: np.ndarray
    contour_embedding: BarycentricEmbedding | None = None
    uv: np.ndarray | None = None

    def __post_init__(self) -> None:
        _Validator(self).run()

    # -- sizes -----------------------------------------------------------------------------

    @property
    def num_vertices(self) -> int:
        """``V``."""
        return int(self.v_template.shape[0])

    @property
    def num_shape(self) -> int:
        """``S``, the number of identity components."""
        return int(self.shapedirs.shape[2])

    @property
    def num_expression(self) -> int:
        """``E``, the number of expression components."""
        return int(self.exprdirs.shape[2])

    @property
    def num_joints(self) -> int:
        """``J``."""
        return int(self.parents.shape[0])

    # -- derived models and meshes ---------------------------------------------------------

    def truncated(self, num_shape: int, num_expression: int) -> MorphableModel:
        """The model with the first ``num_shape`` identity and ``num_expression`` expression
        components (SMIRK uses FLAME's first 300 and 50).

        Raises:
          MorphableModelError: asking for more components than the model has.
        """
        if not 0 <= num_shape <= self.num_shape:
            raise MorphableModelError(
                f"{self.name}: num_shape must be in [0, {self.num_shape}], got {num_shape}")
        if not 0 <= num_expression <= self.num_expression:
            raise MorphableModelError(
                f"{self.name}: num_expression must be in [0, {self.num_expression}], got "
                f"{num_expression}")
        return dataclasses.replace(
            self,
            shapedirs=self.shapedirs[:, :, :num_shape],
            exprdirs=self.exprdirs[:, :, :num_expression],
            expression_names=self.expression_names[:num_expression],
        )

    def face_submesh(self) -> tuple[np.ndarray, np.ndarray]:
        """The rendered region as its own mesh (SMIRK renders this sub-mesh).

        Returns:
          ``(vertex_indices int32 [V_face], faces int32 [F_face, 3])``: the sorted vertices of
          ``masks["face"]`` and ``face_mask_faces`` re-indexed into them.
        """
        keep = self.masks["face"]
        new_index = np.full(self.num_vertices, -1, np.int64)
        new_index[keep] = np.arange(keep.size)
        return keep, new_index[self.face_mask_faces].astype(np.int32)


def triangles_within(faces: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """The triangles of ``faces`` whose three corners are all in ``vertices``.

    Args:
      faces: ``int [F, 3]``.
      vertices: ``int [K]`` vertex indices.

    Returns:
      ``int32 [F_in, 3]``, in the order of ``faces``.
    """
    faces = np.asarray(faces)
    inside = np.zeros(int(faces.max()) + 1 if faces.size else 0, bool)
    inside[np.asarray(vertices)] = True
    return faces[inside[faces].all(axis=1)].astype(np.int32)


class _Validator:
    """Checks and normalises the fields of a :class:`MorphableModel` in place."""

    def __init__(self, model: MorphableModel) -> None:
        self.m = model

    def fail(self, field: str, detail: str) -> None:
        raise MorphableModelError(f"{self.m.name}: {field}: {detail}")

    def set(self, field: str, value: object) -> None:
        object.__setattr__(self.m, field, value)

    def array(self, field: str, shape: tuple, kind: str) -> np.ndarray:
        """The field as a read-only float32/int32 array of ``shape`` (``None`` = any size)."""
        a = np.asarray(getattr(self.m, field))
        ok_rank = a.ndim == len(shape)
        if not ok_rank or any(want is not None and got != want
                              for got, want in zip(a.shape, shape, strict=True)):
            want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
            self.fail(field, f"expected shape {want}, got {list(a.shape)}")
        if kind == "int":
            if a.size and not np.issubdtype(a.dtype, np.integer):
                self.fail(field, f"expected integers, got {a.dtype}")
            a = a.astype(np.int32)
        else:
            if not np.issubdtype(a.dtype, np.number) or not np.all(np.isfinite(a)):
                self.fail(field, "expected finite numbers")
            a = a.astype(np.float32)
        a = _readonly(a)
        self.set(field, a)
        return a

    def indices(self, field: str, values: np.ndarray, bound: int, what: str) -> None:
        if values.size and (values.min() < 0 or values.max() >= bound):
            self.fail(field, f"indices must be in [0, {bound}) ({what}), got "
                      f"[{values.min()}, {values.max()}]")

    def run(self) -> None:
        m = self.m
        if not isinstance(m.name, str) or not m.name:
            raise MorphableModelError("a morphable model needs a non-empty name")
        v = self.array("v_template", (None, 3), "float").shape[0]
        faces = self.array("faces", (None, 3), "int")
        self.indices("faces", faces, v, "vertices")
        self.array("shapedirs", (v, 3, None), "float")
        e = self.array("exprdirs", (v, 3, None), "float").shape[2]
        names = tuple(str(n) for n in m.expression_names)
        if len(names) != e:
            self.fail("expression_names", f"expected {e} names (exprdirs), got {len(names)}")
        self.set("expression_names", names)
        self.array("eyelids", (2, v, 3), "float")
        parents = self.array("parents", (None,), "int")
        j = parents.shape[0]
        if j < 1 or parents[0] != -1 or any(not 0 <= parents[i] < i for i in range(1, j)):
            self.fail("parents", f"expected -1 for joint 0 and parents[i] in [0, i), got "
                      f"{parents.tolist()}")
        self.array("j_regressor", (j, v), "float")
        weights = self.array("lbs_weights", (v, j), "float")
        if not np.allclose(weights.sum(axis=1), 1.0, atol=1e-4):
            self.fail("lbs_weights", "rows must sum to 1")
        if m.posedirs is not None:
            self.array("posedirs", (9 * (j - 1), 3 * v), "float")
        self.embedding("landmarks68", m.landmarks68, faces.shape[0])
        if m.landmarks68.num_points not in (0, 68) or m.landmarks68.faces.ndim != 1:
            self.fail("landmarks68",
                      f"expected 68 points (or none), got {m.landmarks68.faces.shape}")
        self.embedding("mediapipe_landmarks", m.mediapipe_landmarks, faces.shape[0])
        if m.mediapipe_landmarks.faces.ndim != 1:
            self.fail("mediapipe_landmarks", "expected faces [L] and bary [L, 3]")
        mp = self.array("mediapipe_indices", (m.mediapipe_landmarks.num_points,), "int")
        self.indices("mediapipe_indices", mp, MEDIAPIPE_POINTS, "MediaPipe points")
        if np.unique(mp).size != mp.size:
            self.fail("mediapipe_indices", "indices must be unique")
        self.masks(v)
        ff = self.array("face_mask_faces", (None, 3), "int")
        face = np.zeros(v, bool)
        face[m.masks["face"]] = True
        if ff.size and not face[ff].all():
            self.fail("face_mask_faces", "every corner must be in masks['face']")
        if m.contour_embedding is not None:
            self.embedding("contour_embedding", m.contour_embedding, faces.shape[0])
            if m.contour_embedding.faces.ndim != 2 or m.contour_embedding.num_points != 17:
                self.fail("contour_embedding",
                          f"expected faces [A, 17], got {m.contour_embedding.faces.shape}")
        if m.uv is not None:
            self.array("uv", (faces.shape[0], 3, 2), "float")

    def embedding(self, field: str, emb: BarycentricEmbedding, num_faces: int) -> None:
        if not isinstance(emb, BarycentricEmbedding):
            self.fail(field, f"expected a BarycentricEmbedding, got {type(emb).__name__}")
        self.indices(field, emb.faces, num_faces, "triangles")

    def masks(self, v: int) -> None:
        masks = dict(self.m.masks)
        if "face" not in masks:
            self.fail("masks", f"needs a 'face' region, got {sorted(masks)}")
        out = {}
        for name, idx in masks.items():
            idx = np.asarray(idx)
            if idx.ndim != 1 or (idx.size and not np.issubdtype(idx.dtype, np.integer)):
                self.fail(f"masks[{name!r}]", f"expected int vertex indices [K], got "
                          f"{idx.dtype}{list(idx.shape)}")
            self.indices(f"masks[{name!r}]", idx, v, "vertices")
            out[str(name)] = _readonly(np.unique(idx).astype(np.int32))
        self.set("masks", out)
