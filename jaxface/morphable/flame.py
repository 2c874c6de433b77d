"""FLAME read from the user's own files, without chumpy.

FLAME (flame.is.tue.mpg.de) cannot ship with jaxface: it is downloaded after registration and
licensed separately. :func:`load_flame` reads the downloaded ``generic_model.pkl`` (FLAME 2020,
a Python 2 pickle holding chumpy arrays and a scipy sparse joint regressor) or ``flame2023.pkl``
with the restricted unpickler of :mod:`jaxface.mesh.pickles`: chumpy objects become numpy arrays,
chumpy itself is never imported and no code in the file runs. Keys read:

=================  =====================================================================
``v_template``     ``[5023, 3]`` mean head, metres
``f``              ``[9976, 3]`` triangles
``shapedirs``      ``[5023, 3, 400]``: 300 identity then 100 expression components
``posedirs``       ``[5023, 3, 36]`` pose correctives
``J_regressor``    ``[5, 5023]`` (scipy sparse)
``kintree_table``  ``[2, 5]``: parents (root's is ignored) and joint ids
``weights``        ``[5023, 5]`` skinning weights
=================  =====================================================================

Optional files (SMIRK's ``assets/`` folder has them all):

* ``eyelids``: ``(l_eyelid.npy, r_eyelid.npy)``, ``[5023, 3]`` each; without them the eyelid
  parameters do nothing;
* ``landmarks``: ``landmark_embedding.npy`` in the DECA/SMIRK layout (a saved dict with
  ``full_lmk_faces_idx [1, 68]`` / ``full_lmk_bary_coords [1, 68, 3]``, or
  ``static_lmk_faces_idx [51]`` / ``static_lmk_bary_coords [51, 3]``, and
  ``dynamic_lmk_faces_idx [79, 17]`` / ``dynamic_lmk_bary_coords [79, 17, 3]``, the latter two
  stored as torch tensors, read without torch): the 68 landmarks (the full embedding, or the
  frontal contour bin and the 51 static points) and the pose-dependent contour;
* ``mediapipe``: ``mediapipe_landmark_embedding.npz`` with ``lmk_face_idx [105]``,
  ``lmk_b_coords [105, 3]`` and ``landmark_indices [105]`` (MediaPipe point of each row);
* ``masks``: ``FLAME_masks.pkl``, a dict of vertex-index arrays (``face``, ``lips``,
  ``eye_region``, ``nose``, ``forehead``, ``neck``, ...); without it the whole head is the face.

See ``docs/morphable.md`` for where the files come from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import scipy.sparse

from jaxface.mesh.pickles import PickleContentError, read_object_npy, read_pickle
from jaxface.morphable.model import (
    BarycentricEmbedding,
    MorphableModel,
    MorphableModelError,
    triangles_within,
)

__all__ = ["FLAME_NUM_SHAPE", "load_flame"]

FLAME_NUM_SHAPE = 300
"""The identity components at the front of FLAME's ``shapedirs`` (the rest are expression)."""

PathLike = str | os.PathLike[str]


def _read(path: PathLike, reader: Any, allow: tuple[str, ...]) -> Any:
    try:
        return reader(path, allow=allow)
    except PickleContentError as err:
        raise MorphableModelError(str(err)) from None


def _field(source: str, fields: Mapping[str, Any], key: str, ndim: int | None,
           kind: str = "float") -> np.ndarray:
    """``fields[key]`` as a dense float64/int64 array of rank ``ndim`` (None: any), or a named
    error."""
    if key not in fields:
        raise MorphableModelError(
            f"{source}: missing key '{key}' (found: {', '.join(sorted(map(str, fields)))})")
    value = fields[key]
    if scipy.sparse.issparse(value):
        value = value.toarray()
    try:
        a = np.asarray(value, np.float64)
    except (TypeError, ValueError):
        raise MorphableModelError(
            f"{source}: '{key}' is a {type(value).__name__}, expected a numeric array") from None
    if ndim is not None and a.ndim != ndim:
        raise MorphableModelError(f"{source}: '{key}' has shape {a.shape}, expected {ndim} axes")
    if kind == "int":
        if not np.all(np.mod(a, 1) == 0):
            raise MorphableModelError(f"{source}: '{key}' holds non-integer values")
        return a.astype(np.int64)
    return a


def _eyelids(paths: tuple[PathLike, PathLike] | None, num_vertices: int) -> np.ndarray:
    if paths is None:
        return np.zeros((2, num_vertices, 3), np.float32)
    if len(paths) != 2:
        raise MorphableModelError(f"eyelids: expected (left, right) files, got {len(paths)}")
    out = []
    for path in paths:
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        try:
            a = np.load(path, allow_pickle=False)
        except ValueError as err:
            raise MorphableModelError(f"{path}: cannot read an eyelid array ({err})") from None
        if a.shape != (num_vertices, 3):
            raise MorphableModelError(
                f"{path}: eyelid shape {a.shape}, expected ({num_vertices}, 3)")
        out.append(a)
    return np.stack(out).astype(np.float32)


def _embedding(source: str, fields: Mapping[str, Any], faces_key: str,
               bary_key: str) -> BarycentricEmbedding:
    faces = _field(source, fields, faces_key, None, "int")
    bary = _field(source, fields, bary_key, faces.ndim + 1)
    if bary.shape != (*faces.shape, 3):
        raise MorphableModelError(
            f"{source}: '{bary_key}' has shape {bary.shape}, expected {(*faces.shape, 3)} for "
            f"'{faces_key}' {faces.shape}")
    return BarycentricEmbedding(faces, bary)


def _landmarks(path: PathLike) -> tuple[BarycentricEmbedding, BarycentricEmbedding | None]:
    source = os.fspath(path)
    if source.lower().endswith(".npz"):
        if not os.path.isfile(source):
            raise FileNotFoundError(f"{source}: no such file")
        with np.load(source, allow_pickle=False) as z:
            fields: Any = {k: z[k] for k in z.files}
    else:
        fields = _read(source, read_object_npy, ("torch",))
    if not isinstance(fields, dict):
        raise MorphableModelError(f"{source}: expected a saved dict, got {type(fields).__name__}")
    contour = None
    if "dynamic_lmk_faces_idx" in fields:
        contour = _embedding(source, fields, "dynamic_lmk_faces_idx", "dynamic_lmk_bary_coords")
        if contour.faces.ndim != 2 or contour.faces.shape[1] != 17:
            raise MorphableModelError(
                f"{source}: 'dynamic_lmk_faces_idx' has shape {contour.faces.shape}, expected "
                "[A, 17]")
    if "full_lmk_faces_idx" in fields:
        full = _embedding(source, fields, "full_lmk_faces_idx", "full_lmk_bary_coords")
        faces, bary = full.faces.reshape(-1), full.bary.reshape(-1, 3)
    elif "static_lmk_faces_idx" in fields and contour is not None:
        static = _embedding(source, fields, "static_lmk_faces_idx", "static_lmk_bary_coords")
        faces = np.concatenate([contour.faces[0], static.faces.reshape(-1)])
        bary = np.concatenate([contour.bary[0], static.bary.reshape(-1, 3)])
    else:
        raise MorphableModelError(
            f"{source}: missing key 'full_lmk_faces_idx' (or 'static_lmk_faces_idx' with "
            f"'dynamic_lmk_faces_idx'); found: {', '.join(sorted(fields))}")
    if faces.shape != (68,):
        raise MorphableModelError(f"{source}: the landmark embedding has {faces.size} points, "
                                  "expected 68")
    return BarycentricEmbedding(faces, bary), contour


def _mediapipe(path: PathLike) -> tuple[BarycentricEmbedding, np.ndarray]:
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise FileNotFoundError(f"{source}: no such file")
    try:
        with np.load(source, allow_pickle=False) as z:
            fields = {k: z[k] for k in z.files}
    except ValueError as err:
        raise MorphableModelError(f"{source}: cannot read .npz ({err})") from None
    emb = _embedding(source, fields, "lmk_face_idx", "lmk_b_coords")
    if emb.faces.ndim != 1:
        raise MorphableModelError(f"{source}: 'lmk_face_idx' must be [L], got {emb.faces.shape}")
    index = _field(source, fields, "landmark_indices", 1, "int")
    if index.shape != emb.faces.shape:
        raise MorphableModelError(
            f"{source}: 'landmark_indices' has shape {index.shape}, expected {emb.faces.shape}")
    return emb, index


def _masks(path: PathLike | None, num_vertices: int) -> dict[str, np.ndarray]:
    if path is None:
        return {"face": np.arange(num_vertices)}
    source = os.fspath(path)
    fields = _read(source, read_pickle, ())
    if not isinstance(fields, dict):
        raise MorphableModelError(f"{source}: expected a dict of vertex indices, got "
                                  f"{type(fields).__name__}")
    masks = {str(k): _field(source, fields, k, 1, "int") for k in fields}
    if "face" not in masks:
        raise MorphableModelError(f"{source}: missing key 'face' (found: {', '.join(masks)})")
    return masks


def load_flame(
    path: PathLike,
    *,
    eyelids: tuple[PathLike, PathLike] | None = None,
    landmarks: PathLike | None = None,
    mediapipe: PathLike | None = None,
    masks: PathLike | None = None,
    name: str | None = None,
) -> MorphableModel:
    """Reads FLAME (2020 or 2023) from the user's files.

    Args:
      path: ``generic_model.pkl`` (FLAME 2020) or ``flame2023.pkl``.
      eyelids: ``(l_eyelid.npy, r_eyelid.npy)``, or None for no eyelid shapes.
      landmarks: ``landmark_embedding.npy`` (DECA/SMIRK layout), or None (no 68 landmarks).
      mediapipe: ``mediapipe_landmark_embedding.npz``, or None (no MediaPipe points).
      masks: ``FLAME_masks.pkl``, or None (the whole head is the rendered face).
      name: the model's name (default: ``"flame:<file name>"``).

    Returns:
      The :class:`MorphableModel` with all 300 identity and 100 expression components
      (:meth:`~MorphableModel.truncated` gives SMIRK's 300 and 50).

    Raises:
      FileNotFoundError: a file that does not exist.
      MorphableModelError: a file that is not what it should be (the message names the file and
        the key).
    """
    source = os.fspath(path)
    raw = _read(source, read_pickle, ("chumpy", "sparse"))
    if not isinstance(raw, dict):
        raise MorphableModelError(f"{source}: expected a dict, got {type(raw).__name__}")
    v_template = _field(source, raw, "v_template", 2)
    v = v_template.shape[0]
    faces = _field(source, raw, "f", 2, "int")
    dirs = _field(source, raw, "shapedirs", 3)
    if dirs.shape[:2] != (v, 3) or dirs.shape[2] <= FLAME_NUM_SHAPE:
        raise MorphableModelError(
            f"{source}: 'shapedirs' has shape {dirs.shape}, expected ({v}, 3, >"
            f"{FLAME_NUM_SHAPE}) ({FLAME_NUM_SHAPE} identity then expression components)")
    posedirs = _field(source, raw, "posedirs", 3)
    if posedirs.shape[:2] != (v, 3):
        raise MorphableModelError(
            f"{source}: 'posedirs' has shape {posedirs.shape}, expected ({v}, 3, P)")
    kintree = _field(source, raw, "kintree_table", 2, "int")
    parents = kintree[0].copy()
    parents[0] = -1
    masks_ = _masks(masks, v)
    lm68, contour = (BarycentricEmbedding.empty(), None) if landmarks is None else \
        _landmarks(landmarks)
    if mediapipe is None:
        mp, mp_index = BarycentricEmbedding.empty(), np.zeros((0,), np.int64)
    else:
        mp, mp_index = _mediapipe(mediapipe)
    num_expression = dirs.shape[2] - FLAME_NUM_SHAPE
    return MorphableModel(
        name=name or f"flame:{os.path.basename(source)}",
        v_template=v_template,
        faces=faces,
        shapedirs=dirs[:, :, :FLAME_NUM_SHAPE],
        exprdirs=dirs[:, :, FLAME_NUM_SHAPE:],
        expression_names=tuple(f"expression{i:03d}" for i in range(num_expression)),
        eyelids=_eyelids(eyelids, v),
        posedirs=posedirs.reshape(3 * v, -1).T,
        j_regressor=_field(source, raw, "J_regressor", 2),
        parents=parents,
        lbs_weights=_field(source, raw, "weights", 2),
        landmarks68=lm68,
        mediapipe_landmarks=mp,
        mediapipe_indices=mp_index,
        masks=masks_,
        face_mask_faces=triangles_within(faces, masks_["face"]),
        contour_embedding=contour,
    )
