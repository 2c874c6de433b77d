"""Morphable face models with FLAME's structure: template, identity and expression bases, a jaw
joint with linear-blend skinning, eyelid shapes, landmark embeddings and mask regions, evaluated
in pure JAX. Two sources behind one API: FLAME read from a user's file, and the open model that
ships with jaxface (see ``docs/morphable.md``). Submodules:

* :mod:`jaxface.morphable.model`: :class:`MorphableModel` (numpy constants, validated) and
  :class:`BarycentricEmbedding`;
* :mod:`jaxface.morphable.lbs`: ``rodrigues``, ``batch_rigid_transform``, ``lbs``;
* :mod:`jaxface.morphable.forward`: :class:`FaceParams`, :func:`morph` (-> :class:`FaceOutput`),
  ``contour_landmarks`` (the pose-dependent jaw line of FLAME's dynamic embedding);
* :mod:`jaxface.morphable.flame`: :func:`load_flame` (``generic_model.pkl`` without chumpy);
* :mod:`jaxface.morphable.open_model`: :func:`load_open_model` (the default).
"""

from jaxface.morphable.flame import load_flame
from jaxface.morphable.forward import (
    FaceOutput,
    FaceParams,
    contour_landmarks,
    embed_points,
    morph,
    shaped_vertices,
)
from jaxface.morphable.lbs import batch_rigid_transform, lbs, pose_features, rodrigues
from jaxface.morphable.model import (
    BarycentricEmbedding,
    MorphableModel,
    MorphableModelError,
    triangles_within,
)
from jaxface.morphable.open_model import load_open_model

__all__ = [
    "BarycentricEmbedding",
    "FaceOutput",
    "FaceParams",
    "MorphableModel",
    "MorphableModelError",
    "batch_rigid_transform",
    "contour_landmarks",
    "embed_points",
    "lbs",
    "load_flame",
    "load_open_model",
    "morph",
    "pose_features",
    "rodrigues",
    "shaped_vertices",
    "triangles_within",
]
