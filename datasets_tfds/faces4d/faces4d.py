"""faces4d: jaxface's embedded, licence-free 4D face dataset (CoMA's 12 or the 6 basic labels).

Nothing is downloaded: the meshes are generated on the jaxface face template, in metres, with 68
iBUG landmarks read off the template's landmark vertices. Two versions:

* ``2.0.0`` (default): :class:`jaxface.data.performances.PerformanceFaces`, ARKit performances
  driven by a real expression basis (Face Cap's 52 blendshapes carried into each identity's local
  surface frames) and real dynamics (a Face Cap capture, MediaPipe scores of two real videos);
  identities: the 1.x ones plus MediaPipe's canonical face; several takes per subject and label.
* ``1.0.0``: :class:`jaxface.data.procedural.ProceduralFaces`, procedural muscle-like actions, one
  sequence per subject and label; still built bit-for-bit
  (``Faces4d(config=..., version="1.0.0")``) so that old results stay reproducible.

Configs (2.0.0; 1.0.0 has the first three with one take and no canonical face):

* ``tiny``: 3 subjects x 12 expressions x 1 take, 12-20 frames, 468 vertices; for tests and
  smoke runs.
* ``coma_scale``: 12 subjects x 12 expressions x 3 takes, 60-150 frames, 6990 vertices.
* ``coma_scale_lite``: the same on 1790 vertices (CPU-sized experiments).
* ``coma_scale_100`` (2.0.0 only): 100 subjects x 12 expressions x 3 takes, 60-150 frames, 1790
  vertices.
* ``basic6`` (2.0.0 only): the six basic expressions (happy, sad, surprise, angry, disgust, fear;
  EMFACS prototypes, :data:`jaxface.data.arkit_labels.BASIC_EXPRESSIONS`), 36 subjects x 2 takes,
  48-96 frames at 24 fps, 1790 vertices: the label set of 4DFAB-trained expression generators.
* ``basic6_tiny`` (2.0.0 only): 3 subjects x 6 basic expressions x 1 take, 12-20 frames, 468
  vertices; for tests.

Examples: one per mesh in split ``frames``, sorted by (subject, expression, take, frame); the
sequence index records each sequence's apex frame (takes of one subject and expression are
consecutive sequences, take 0 first). Protocols: ``interpolation`` (frames ranked within each
subject and expression across its takes, in dataset order), ``extrapolation_<expression>``, and
the S2D folds the subject/expression counts allow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds.common import MeshSequenceBuilder, SequenceSource
from jaxface.data.arkit_labels import BASIC_EXPRESSIONS
from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.splits import Split, coma_protocols

__all__ = ["Faces4d", "Faces4dConfig", "TakeSource"]

@dataclasses.dataclass(eq=False)
class Faces4dConfig(tfds.core.BuilderConfig):
    """A builder config of one version: what it generates.

    Attributes:
      procedural: the 1.x dataset's size and seed (``version`` 1.x).
      performance: the 2.x dataset's size and seed (``version`` 2.x).
    """

    procedural: ProceduralConfig | None = None
    performance: PerformanceConfig | None = None


@dataclasses.dataclass(frozen=True)
class TakeSource(SequenceSource):
    """A 2.x sequence: one take of a subject's expression.

    Attributes:
      take: take index in ``[0, takes)``.
    """

    take: int = 0


_V1 = "1.0.0"
_V2 = "2.0.0"
_RELEASE_NOTES = {
    _V2: "ARKit performances: Face Cap's 52 blendshapes in each identity's local frames, labels "
    "as distributions over their weights, real dynamics (Face Cap capture, MediaPipe scores of "
    "two videos), 3 takes per subject and label (1 in 'tiny'), MediaPipe's canonical face as "
    "subject Canon_000_S, config 'coma_scale_100'.",
    _V1: "One example per mesh (split 'frames') with 68 landmarks; CoMA/S2D protocols, "
    "per-vertex statistics, template and sequence index stored with the data.",
}


def _v2(name: str, description: str, performance: PerformanceConfig) -> Faces4dConfig:
    return Faces4dConfig(
        name=name, description=description, version=_V2, release_notes=_RELEASE_NOTES,
        performance=performance,
    )


def _v1(name: str, description: str, procedural: ProceduralConfig) -> Faces4dConfig:
    return Faces4dConfig(
        name=name, description=description, version=_V1, release_notes=_RELEASE_NOTES,
        procedural=procedural,
    )


class Faces4d(MeshSequenceBuilder):
    """Generated 4D face sequences (12 CoMA expression classes, jaxface face template).

    The ``basic6`` configs have the six basic expressions instead (the first paragraph above is
    the TFDS description that every prepared config records, kept as 2.0.0 was released).
    """

    # Every config exists in each version it has (TFDS prepares a config only at its own
    # version); the first one is the default config.
    VERSION = tfds.core.Version(_V2)
    SUPPORTED_VERSIONS = [tfds.core.Version(_V1)]
    RELEASE_NOTES = _RELEASE_NOTES
    BUILDER_CONFIGS = [
        _v2("tiny", "3 subjects x 12 expressions x 1 take, 12-20 frames, 468 vertices "
            "(about a second).", PerformanceConfig.tiny()),
        _v2("coma_scale", "12 subjects x 12 expressions x 3 takes, 60-150 frames, 6990 "
            "vertices.", PerformanceConfig()),
        _v2("coma_scale_lite", "12 subjects x 12 expressions x 3 takes, 60-150 frames, 1790 "
            "vertices (one subdivision of the template: CPU-sized experiments).",
            PerformanceConfig(template_subdivisions=1)),
        _v2("coma_scale_100", "100 subjects x 12 expressions x 3 takes, 60-150 frames, 1790 "
            "vertices.", PerformanceConfig(num_subjects=100, template_subdivisions=1)),
        _v2("basic6", "36 subjects x 6 basic expressions (happy, sad, surprise, angry, disgust, "
            "fear) x 2 takes, 48-96 frames at 24 fps, 1790 vertices.",
            PerformanceConfig(num_subjects=36, expressions=BASIC_EXPRESSIONS, takes=2,
                              min_frames=48, max_frames=96, fps=24.0, template_subdivisions=1)),
        _v2("basic6_tiny", "3 subjects x 6 basic expressions x 1 take, 12-20 frames, 468 "
            "vertices (about a second).", PerformanceConfig.tiny(expressions=BASIC_EXPRESSIONS)),
        _v1("tiny", "3 subjects x 12 expressions, 12-20 frames, 468 vertices (seconds).",
            ProceduralConfig.tiny()),
        _v1("coma_scale", "12 subjects x 12 expressions, 60-150 frames, 6990 vertices.",
            ProceduralConfig()),
        _v1("coma_scale_lite", "12 subjects x 12 expressions, 60-150 frames, 1790 vertices "
            "(one subdivision of the template: CPU-sized experiments).",
            ProceduralConfig(template_subdivisions=1)),
    ]
    DEFAULT_CONFIG_NAME = "coma_scale"

    @property
    def _is_v1(self) -> bool:
        return self.builder_config.procedural is not None

    @property
    def _faces(self) -> ProceduralFaces | PerformanceFaces:
        if not hasattr(self, "_generator"):
            config = self.builder_config
            if self._is_v1:
                self._generator = ProceduralFaces(config.procedural)
            else:
                self._generator = PerformanceFaces(config.performance)
        return self._generator

    def _num_vertices(self) -> int:
        return int(self._faces.template.vertices.shape[0])

    def _has_landmarks(self) -> bool:
        return True

    def _landmark_definition(self) -> Any:
        return self._faces.template.landmarks

    def _sequences(self, dl_manager) -> list[SequenceSource]:
        faces = self._faces
        names = faces.subject_names
        out: list[SequenceSource] = []
        for index in sorted(range(len(names)), key=names.__getitem__):
            for expr in sorted(faces.expressions):
                if self._is_v1:
                    out.append(
                        SequenceSource(
                            subject=names[index],
                            expression=expr,
                            frame_numbers=tuple(range(faces.num_frames(index, expr))),
                            apex=faces.apex_frame(index, expr),
                        )
                    )
                    continue
                for take in range(faces.config.takes):
                    out.append(
                        TakeSource(
                            subject=names[index],
                            expression=expr,
                            frame_numbers=tuple(range(faces.num_frames(index, expr, take))),
                            apex=faces.apex_frame(index, expr, take),
                            take=take,
                        )
                    )
        return out

    def _load_sequence(self, sequence: SequenceSource) -> tuple[np.ndarray, np.ndarray]:
        faces = self._faces
        index = faces.subject_names.index(sequence.subject)
        if self._is_v1:
            vertices = faces.sequence(index, sequence.expression)
        else:
            vertices = faces.sequence(index, sequence.expression, sequence.take)
        return vertices, np.asarray(faces.template.faces, np.int32)

    def _template(self, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self._faces.template.vertices, np.float32), faces

    def _expressions(self, sequences) -> tuple[str, ...]:
        return tuple(sorted(self._faces.expressions))

    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        if self._is_v1:
            return coma_protocols(subjects, expressions, frames)
        # The takes of one subject and expression are consecutive, take-major: rank their frames
        # in dataset order so that interpolation's sorted (subject, expression, frame) order is
        # the dataset order.
        position = np.zeros(len(frames), np.int64)
        for i in range(1, len(frames)):
            same = subjects[i] == subjects[i - 1] and expressions[i] == expressions[i - 1]
            position[i] = position[i - 1] + 1 if same else 0
        return coma_protocols(subjects, expressions, position)

    def _extra_metadata(self) -> dict[str, Any]:
        config = self.builder_config
        if self._is_v1:
            return {"procedural_config": dataclasses.asdict(config.procedural)}
        performance = config.performance
        return {
            # The 1.x configuration whose subjects are this dataset's procedural identities.
            "procedural_config": dataclasses.asdict(performance.identity_config()),
            "performance_config": dataclasses.asdict(performance),
            "takes": performance.takes,
        }
