"""Face data: the template mesh, sparse landmarks and the procedural 4D face dataset.

The data-pipeline modules of this package (``pipeline``, ``splits``, ``stats``,
``subsequences``) are imported from their own modules.
"""

from jaxface.data.landmarks import (
    LandmarkDefinition,
    LandmarkEmbeddingError,
    extract_landmarks,
    from_flame_embedding,
    from_flame_embeddings,
    landmark_displacement,
    normalize_landmarks,
)
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces
from jaxface.data.template import FaceTemplate, load_face_template

__all__ = [
    "EXPRESSIONS",
    "FaceTemplate",
    "LandmarkDefinition",
    "LandmarkEmbeddingError",
    "ProceduralConfig",
    "ProceduralFaces",
    "extract_landmarks",
    "from_flame_embedding",
    "from_flame_embeddings",
    "landmark_displacement",
    "load_face_template",
    "normalize_landmarks",
]
