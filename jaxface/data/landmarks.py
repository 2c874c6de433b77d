"""Sparse facial landmarks on dense meshes: definitions, extraction and the S2D normalisation.

A :class:`LandmarkDefinition` locates ``K`` landmarks (68 for the iBUG layout) on a fixed mesh
topology, either as vertex indices or as barycentric points on faces (the FLAME/RingNet embedding
format, ``lmk_face_idx`` + ``lmk_b_coords``). :func:`extract_landmarks` reads them off any batch of
meshes; it is written with array operations that work on numpy arrays and on JAX arrays (also
under ``jit``/``vmap``), returning the same kind of array it is given.

The S2D decoder input is built with :func:`normalize_landmarks` (per frame: subtract the centroid,
divide by the Frobenius norm) and :func:`landmark_displacement`
(``normalized(target) - normalized(neutral)`` flattened row-major, ``[x0, y0, z0, x1, ...]``).

Example:
  >>> import numpy as np
  >>> d = LandmarkDefinition(vertex_indices=np.array([0, 2]))
  >>> v = np.arange(12, dtype=np.float32).reshape(4, 3)
  >>> extract_landmarks(v, d).tolist()
  [[0.0, 1.0, 2.0], [6.0, 7.0, 8.0]]
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from jaxface.mesh.pickles import PickleContentError, read_object_npy, read_pickle

__all__ = [
    "NUM_IBUG_LANDMARKS",
    "LandmarkDefinition",
    "LandmarkEmbeddingError",
    "extract_landmarks",
    "from_flame_embedding",
    "from_flame_embeddings",
    "landmark_displacement",
    "normalize_landmarks",
]

NUM_IBUG_LANDMARKS = 68
_FACE_FIELD = "lmk_face_idx"
_BARY_FIELD = "lmk_b_coords"


class LandmarkEmbeddingError(ValueError):
    """A landmark embedding file is missing, unreadable or malformed."""


@dataclasses.dataclass(frozen=True, eq=False)
class LandmarkDefinition:
    """Where ``K`` landmarks sit on a mesh topology.

    Exactly one form is set:

    * ``vertex_indices``: ``int32 [K]``, landmark ``k`` is vertex ``vertex_indices[k]``;
    * ``face_indices`` ``int32 [K]`` + ``barycentric`` ``float32 [K, 3]``: landmark ``k`` is
      ``sum_j barycentric[k, j] * vertex(faces[face_indices[k], j])``.

    Attributes:
      vertex_indices: ``int32 [K]`` or None.
      face_indices: ``int32 [K]`` or None.
      barycentric: ``float32 [K, 3]`` or None.
    """

    vertex_indices: np.ndarray | None = None
    face_indices: np.ndarray | None = None
    barycentric: np.ndarray | None = None

    def __post_init__(self) -> None:
        has_v = self.vertex_indices is not None
        has_f = self.face_indices is not None or self.barycentric is not None
        if has_v == has_f:
            raise ValueError(
                "LandmarkDefinition needs either vertex_indices or face_indices + barycentric"
            )
        if has_v:
            idx = np.asarray(self.vertex_indices)
            if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(
                    f"vertex_indices must be an int array [K], got {idx.dtype}{idx.shape}"
                )
            object.__setattr__(self, "vertex_indices", np.asarray(idx, dtype=np.int32))
            return
        if self.face_indices is None or self.barycentric is None:
            raise ValueError("face_indices and barycentric must be given together")
        fi = np.asarray(self.face_indices)
        bc = np.asarray(self.barycentric)
        if fi.ndim != 1 or not np.issubdtype(fi.dtype, np.integer):
            raise ValueError(f"face_indices must be an int array [K], got {fi.dtype}{fi.shape}")
        if bc.shape != (fi.shape[0], 3):
            raise ValueError(f"barycentric must be [{fi.shape[0]}, 3], got {bc.shape}")
        object.__setattr__(self, "face_indices", np.asarray(fi, dtype=np.int32))
        object.__setattr__(self, "barycentric", np.asarray(bc, dtype=np.float32))

    @property
    def num_landmarks(self) -> int:
        """``K``, the number of landmarks."""
        if self.vertex_indices is not None:
            return int(self.vertex_indices.shape[0])
        return int(self.face_indices.shape[0])

    @property
    def is_barycentric(self) -> bool:
        """True for the face + barycentric form."""
        return self.vertex_indices is None

    def concatenate(self, other: LandmarkDefinition) -> LandmarkDefinition:
        """Stacks two definitions of the same form (``self`` first).

        Args:
          other: definition on the same topology.

        Returns:
          A definition with ``K_self + K_other`` landmarks.
        """
        if self.is_barycentric != other.is_barycentric:
            raise ValueError("cannot concatenate a vertex-index and a barycentric definition")
        if not self.is_barycentric:
            return LandmarkDefinition(
                vertex_indices=np.concatenate([self.vertex_indices, other.vertex_indices])
            )
        return LandmarkDefinition(
            face_indices=np.concatenate([self.face_indices, other.face_indices]),
            barycentric=np.concatenate([self.barycentric, other.barycentric]),
        )


# --------------------------------------------------------------------------------------------
# FLAME / RingNet embedding files
# --------------------------------------------------------------------------------------------


def _read_pickled(path: str, *, npy: bool) -> Any:
    """The object in a ``.npy`` (saved from a dict) or ``.pkl`` file, decoded by the restricted
    unpickler of :mod:`jaxface.mesh.pickles` (numpy arrays and plain containers only)."""
    try:
        return read_object_npy(path) if npy else read_pickle(path)
    except PickleContentError as err:
        raise LandmarkEmbeddingError(str(err)) from None


def _read_embedding_dict(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise LandmarkEmbeddingError(f"{path}: no such landmark embedding file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as err:
            raise LandmarkEmbeddingError(f"{path}: cannot read .npz ({err})") from err
    if ext in (".npy", ".pkl", ".pickle"):
        obj = _read_pickled(path, npy=ext == ".npy")
    else:
        raise LandmarkEmbeddingError(
            f"{path}: unsupported extension {ext!r} (use .npz, .npy, .pkl)"
        )
    if not isinstance(obj, dict):
        raise LandmarkEmbeddingError(f"{path}: expected a dict of arrays, got {type(obj).__name__}")
    return {str(k): v for k, v in obj.items()}


def from_flame_embedding(
    path: str | os.PathLike[str], *, dynamic_index: int = 0
) -> LandmarkDefinition:
    """Reads a FLAME / RingNet landmark embedding as a barycentric definition.

    Accepted files hold the fields ``lmk_face_idx`` (face indices) and ``lmk_b_coords``
    (barycentric coordinates):

    * ``.npz`` archives (read without pickle);
    * ``.npy`` files saved from a dict (RingNet's ``flame_dynamic_embedding.npy``) and ``.pkl``
      files holding a plain dict (FLAME's ``flame_static_embedding.pkl``). Their pickle stream is
      decoded with an unpickler that only builds numpy arrays and dicts; anything else is refused.

    A static embedding has shapes ``[K]`` / ``[K, 3]``. A dynamic (pose-dependent contour) embedding
    has ``[A, K]`` / ``[A, K, 3]``, one row per yaw bin; ``dynamic_index`` picks the row (0 is the
    frontal, 0 degree, contour used by S2D).

    Args:
      path: the embedding file.
      dynamic_index: row of a dynamic embedding to use.

    Returns:
      A barycentric :class:`LandmarkDefinition`.

    Raises:
      LandmarkEmbeddingError: naming the file and the problem (missing field, bad shape, unsafe
        pickle content).
    """
    path = os.fspath(path)
    fields = _read_embedding_dict(path)
    for key in (_FACE_FIELD, _BARY_FIELD):
        if key not in fields:
            raise LandmarkEmbeddingError(
                f"{path}: missing field '{key}' (found: {', '.join(sorted(fields)) or 'nothing'})"
            )
    face_idx = np.asarray(fields[_FACE_FIELD])
    bary = np.asarray(fields[_BARY_FIELD], dtype=np.float64)
    if face_idx.ndim == 2 and bary.ndim == 3:
        if not 0 <= dynamic_index < face_idx.shape[0]:
            raise LandmarkEmbeddingError(
                f"{path}: dynamic_index {dynamic_index} out of range [0, {face_idx.shape[0]})"
            )
        face_idx, bary = face_idx[dynamic_index], bary[dynamic_index]
    if face_idx.ndim != 1 or bary.shape != (face_idx.shape[0], 3):
        raise LandmarkEmbeddingError(
            f"{path}: '{_FACE_FIELD}' {face_idx.shape} and '{_BARY_FIELD}' {bary.shape} do not "
            "describe K landmarks ([K] and [K, 3])"
        )
    if not np.issubdtype(face_idx.dtype, np.integer):
        if not np.all(np.mod(face_idx, 1) == 0):
            raise LandmarkEmbeddingError(f"{path}: '{_FACE_FIELD}' holds non-integer values")
        face_idx = face_idx.astype(np.int64)
    return LandmarkDefinition(face_indices=face_idx, barycentric=bary)


def from_flame_embeddings(
    static_path: str | os.PathLike[str],
    dynamic_path: str | os.PathLike[str],
    *,
    dynamic_index: int = 0,
) -> LandmarkDefinition:
    """The 68 S2D landmarks: 17 dynamic contour points followed by the 51 static ones.

    Args:
      static_path: FLAME static embedding (51 inner-face landmarks).
      dynamic_path: RingNet dynamic contour embedding (17 points per yaw bin).
      dynamic_index: yaw bin of the contour (0 = frontal).

    Returns:
      A barycentric :class:`LandmarkDefinition` in iBUG order (contour first).
    """
    contour = from_flame_embedding(dynamic_path, dynamic_index=dynamic_index)
    inner = from_flame_embedding(static_path)
    return contour.concatenate(inner)


# --------------------------------------------------------------------------------------------
# Extraction and normalisation (numpy or JAX)
# --------------------------------------------------------------------------------------------


def _xp(*arrays: Any) -> Any:
    """numpy, or jax.numpy if any argument is a JAX array (or tracer)."""
    for a in arrays:
        if type(a).__module__.split(".")[0] in ("jax", "jaxlib"):
            import jax.numpy as jnp

            return jnp
    return np


def extract_landmarks(
    vertices: Any, definition: LandmarkDefinition, faces: Any = None
) -> Any:
    """Reads landmark positions off meshes.

    Args:
      vertices: ``float [..., N, 3]`` numpy or JAX array.
      definition: the landmark definition.
      faces: ``int [F, 3]`` triangles; required for barycentric definitions.

    Returns:
      ``[..., K, 3]`` array of the same kind (numpy or JAX) and float dtype as ``vertices``.
    """
    xp = _xp(vertices)
    v = xp.asarray(vertices)
    if v.ndim < 2 or v.shape[-1] != 3:
        raise ValueError(f"vertices must be [..., N, 3], got {v.shape}")
    if not definition.is_barycentric:
        return v[..., definition.vertex_indices, :]
    if faces is None:
        raise ValueError("a barycentric landmark definition needs the mesh faces")
    tri = np.asarray(faces)[definition.face_indices]  # [K, 3]
    corners = v[..., tri, :]  # [..., K, 3, 3]
    w = xp.asarray(definition.barycentric, dtype=v.dtype)
    return xp.sum(w[..., None] * corners, axis=-2)


def normalize_landmarks(landmarks: Any) -> Any:
    """Centres each landmark configuration and scales it to unit Frobenius norm.

    Args:
      landmarks: ``float [..., K, 3]`` numpy or JAX array.

    Returns:
      ``[..., K, 3]`` with zero centroid and unit Frobenius norm per configuration.
    """
    xp = _xp(landmarks)
    lm = xp.asarray(landmarks)
    centred = lm - xp.mean(lm, axis=-2, keepdims=True)
    norm = xp.sqrt(xp.sum(centred * centred, axis=(-2, -1), keepdims=True))
    return centred / xp.maximum(norm, 1e-12)


def landmark_displacement(target: Any, neutral: Any) -> Any:
    """S2D decoder input: ``normalize(target) - normalize(neutral)``, flattened row-major.

    Args:
      target: ``float [..., K, 3]`` landmarks of the expressive frames.
      neutral: ``float [..., K, 3]`` landmarks of the neutral face; broadcasts against ``target``
        (e.g. one ``[K, 3]`` neutral for ``[T, K, 3]`` frames).

    Returns:
      ``float [..., 3K]`` ordered ``[x0, y0, z0, x1, ...]`` (204 values for 68 landmarks).
    """
    xp = _xp(target, neutral)
    d = normalize_landmarks(xp.asarray(target)) - normalize_landmarks(xp.asarray(neutral))
    return xp.reshape(d, d.shape[:-2] + (d.shape[-2] * d.shape[-1],))
