"""Face data: the template, landmarks, the procedural 4D faces and prepared datasets.

Everything exported here is numpy-only (the TFDS builders import it without JAX):

* :mod:`~jaxface.data.template`, :mod:`~jaxface.data.landmarks`,
  :mod:`~jaxface.data.expression_basis`, :mod:`~jaxface.data.procedural`: the face template,
  68-landmark definitions, the ARKit expression basis of a real capture and the procedural 4D
  face generator;
* :mod:`~jaxface.data.layout`: the files of a prepared dataset; :mod:`~jaxface.data.source`:
  random access to its examples; :mod:`~jaxface.data.datasets`: the dataset registry,
  :func:`prepare_dataset` and :func:`open_dataset`;
* :mod:`~jaxface.data.splits`, :mod:`~jaxface.data.stats`, :mod:`~jaxface.data.subsequences`:
  protocols, normalisation statistics and neutral -> apex sub-sequences.

The device iterator that training consumes lives in :mod:`jaxface.data.batches` (JAX, grain).
"""

from jaxface.data.datasets import (
    DATASETS,
    DatasetSpec,
    DatasetView,
    open_dataset,
    prepare_dataset,
)
from jaxface.data.expression_basis import ExpressionBasis, load_expression_basis
from jaxface.data.landmarks import (
    LandmarkDefinition,
    LandmarkEmbeddingError,
    extract_landmarks,
    from_flame_embedding,
    from_flame_embeddings,
    landmark_displacement,
    normalize_landmarks,
)
from jaxface.data.layout import SequenceInfo, dataset_dir
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces
from jaxface.data.source import open_source
from jaxface.data.template import FaceTemplate, load_face_template

__all__ = [
    "DATASETS",
    "EXPRESSIONS",
    "DatasetSpec",
    "DatasetView",
    "ExpressionBasis",
    "FaceTemplate",
    "LandmarkDefinition",
    "LandmarkEmbeddingError",
    "ProceduralConfig",
    "ProceduralFaces",
    "SequenceInfo",
    "dataset_dir",
    "extract_landmarks",
    "from_flame_embedding",
    "from_flame_embeddings",
    "landmark_displacement",
    "load_expression_basis",
    "load_face_template",
    "normalize_landmarks",
    "open_dataset",
    "open_source",
    "prepare_dataset",
]
