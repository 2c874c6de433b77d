"""Face data: the template, landmarks, the procedural 4D faces and prepared datasets.

Everything exported here is numpy-only (the TFDS builders import it without JAX):

* :mod:`~jaxface.data.template`, :mod:`~jaxface.data.landmarks`,
  :mod:`~jaxface.data.expression_basis`, :mod:`~jaxface.data.canonical_face`: the face
  template, 68-landmark definitions, the ARKit expression basis of a real capture and
  MediaPipe's canonical face;
* :mod:`~jaxface.data.performances` (faces4d 2.x) and :mod:`~jaxface.data.procedural` (1.x):
  the embedded 4D face generators, with :mod:`~jaxface.data.arkit_labels`,
  :mod:`~jaxface.data.face_dynamics` and :mod:`~jaxface.data.deformation_transfer`;
  :mod:`~jaxface.data.realism` measures how close a set is to real expression data;
* :mod:`~jaxface.data.layout`: the files of a prepared dataset; :mod:`~jaxface.data.source`:
  random access to its examples; :mod:`~jaxface.data.datasets`: the dataset registry,
  :func:`prepare_dataset` and :func:`open_dataset`;
* :mod:`~jaxface.data.splits`, :mod:`~jaxface.data.stats`, :mod:`~jaxface.data.subsequences`:
  protocols, normalisation statistics and neutral -> apex sub-sequences.

The device iterator that training consumes lives in :mod:`jaxface.data.batches` (JAX, grain).
"""

from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.datasets import (
    DATASETS,
    DatasetSpec,
    DatasetView,
    open_dataset,
    prepare_dataset,
)
from jaxface.data.deformation_transfer import transfer_displacements
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
from jaxface.data.performances import CANONICAL_SUBJECT, PerformanceConfig, PerformanceFaces
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces
from jaxface.data.source import open_source
from jaxface.data.template import FaceTemplate, load_face_template

__all__ = [
    "CANONICAL_SUBJECT",
    "DATASETS",
    "EXPRESSIONS",
    "DatasetSpec",
    "DatasetView",
    "ExpressionBasis",
    "FaceTemplate",
    "LandmarkDefinition",
    "LandmarkEmbeddingError",
    "PerformanceConfig",
    "PerformanceFaces",
    "ProceduralConfig",
    "ProceduralFaces",
    "SequenceInfo",
    "dataset_dir",
    "extract_landmarks",
    "from_flame_embedding",
    "from_flame_embeddings",
    "landmark_displacement",
    "load_canonical_face",
    "load_expression_basis",
    "load_face_template",
    "normalize_landmarks",
    "open_dataset",
    "open_source",
    "prepare_dataset",
    "transfer_displacements",
]
