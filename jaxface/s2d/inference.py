"""Using a trained S2D-Dec: animate a neutral face, transfer motion, neutralise expressions.

A trained run directory (``experiments/s2d/main.py --workdir RUN``) holds ``config.json``,
``template.npz`` (the template's faces, vertices and landmark definition) and orbax
checkpoints; :meth:`S2DInference.load` rebuilds the decoder from them (the topology comes
from the topology cache, built once).

All meshes are float32 ``[N, 3]`` (or ``[T, N, 3]``) in the units of the training data
(metres); landmark displacements are the S2D decoder input
``normalize(target landmarks) − normalize(neutral landmarks)`` flattened to 204 values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.landmarks import LandmarkDefinition, extract_landmarks, landmark_displacement
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology, read_mesh
from jaxface.models import S2DDecoder, create_model
from jaxface.s2d.model import build_topology, load_template
from jaxface.train import (
    apply_in_batches,
    create_optimizer,
    create_train_state,
    kept_params,
    read_config,
    restore_latest,
)

__all__ = ["S2DInference"]


@dataclass
class S2DInference:
    """A trained S2D-Dec with its template.

    Attributes:
      model: the decoder.
      params: its parameters.
      vertices: float32 ``[N, 3]`` template vertices.
      faces: int32 ``[F, 3]`` template faces.
      landmarks: how to read the 68 landmarks off a mesh of this topology.
    """

    model: S2DDecoder
    params: dict
    vertices: np.ndarray
    faces: np.ndarray
    landmarks: LandmarkDefinition

    @classmethod
    def load(cls, workdir: str) -> S2DInference:
        """Loads a trained run directory: the parameters it kept from its best validation
        evaluation (``config.validation.keep = "best"``), otherwise its latest checkpoint.

        Raises:
          FileNotFoundError: the folder is not a trained S2D run (names the missing file).
          CheckpointError: the checkpoint cannot be read.
        """
        workdir = os.path.abspath(workdir)
        config = read_config(workdir, "S2D-Dec run")
        if "name" not in config.model:  # runs written before models were named
            config.model.name = "s2d_decoder"
        vertices, faces, landmarks = load_template(workdir)
        topology = build_topology(vertices, faces, config.topology)
        model = create_model(config.model, topology=topology)
        kept = kept_params(workdir)
        if kept is not None:
            return cls(model, kept[0], vertices, faces, landmarks)
        restored, _ = restore_latest(workdir, _state_structure(config, model))
        return cls(model, jax.device_get(restored.params), vertices, faces, landmarks)

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    def check_mesh(self, vertices: np.ndarray, faces: np.ndarray, source: str | None = None):
        """Raises :class:`MeshError` unless the mesh has the model's template topology."""
        check_topology(vertices, faces, self.faces, self.num_vertices, source=source)

    def read_mesh(self, path: str) -> np.ndarray:
        """Reads a mesh file and checks its topology; returns float32 ``[N, 3]``."""
        vertices, faces = read_mesh(path)
        self.check_mesh(vertices, faces, source=path)
        return vertices

    def landmarks_of(self, meshes: np.ndarray) -> np.ndarray:
        """float32 ``[..., 68, 3]`` landmarks of meshes ``[..., N, 3]``."""
        return np.asarray(extract_landmarks(np.asarray(meshes, np.float32), self.landmarks,
                                            self.faces), np.float32)

    def decode(self, displacements: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Dense displacements ``[T, N, 3]`` from landmark displacements ``[T, 204]``."""
        d = np.asarray(displacements, np.float32).reshape(-1, 204)
        if not np.isfinite(d).all():
            raise ValueError("landmark displacements contain NaN or infinite values")
        return apply_in_batches(self.model, self.params, (d,), batch_size)

    def animate(self, neutral: np.ndarray, displacements: np.ndarray) -> np.ndarray:
        """``neutral [N, 3]`` + landmark displacements ``[T, 204]`` → meshes ``[T, N, 3]``."""
        neutral = np.asarray(neutral, np.float32)
        if neutral.shape != (self.num_vertices, 3):
            raise MeshError(f"expected a neutral face [{self.num_vertices}, 3], got "
                            f"{list(neutral.shape)}", field="vertices")
        return neutral[None] + self.decode(displacements)

    def animate_to_landmarks(self, neutral: np.ndarray, target_landmarks: np.ndarray):
        """Deforms ``neutral`` so its landmarks follow ``target_landmarks [T, 68, 3]``."""
        target = np.asarray(target_landmarks, np.float32)
        if target.ndim == 2:
            target = target[None]
        if target.shape[1:] != (68, 3):
            raise ValueError(f"expected target landmarks [T, 68, 3], got {list(target.shape)}")
        d = landmark_displacement(target, self.landmarks_of(neutral))
        return self.animate(neutral, np.asarray(d))

    def transfer(self, source_frames: np.ndarray, target_neutral: np.ndarray) -> np.ndarray:
        """Expression/speech transfer: the motion of ``source_frames [T, N, 3]`` (relative to
        its first frame) applied to ``target_neutral [N, 3]``; returns ``[T, N, 3]``."""
        lms = self.landmarks_of(source_frames)
        d = landmark_displacement(lms, lms[0])
        return self.animate(target_neutral, np.asarray(d))

    def neutralize(self, expressive: np.ndarray, reference_neutral: np.ndarray | None = None):
        """Removes the expression of a face (paper §4.4): the displacement from its landmarks to
        those of a neutral reference (default: the template) is decoded and added."""
        expressive = np.asarray(expressive, np.float32)
        ref = self.vertices if reference_neutral is None else reference_neutral
        d = landmark_displacement(self.landmarks_of(ref), self.landmarks_of(expressive))
        return self.animate(expressive, np.asarray(d).reshape(1, 204))[0]


def _state_structure(config, model):
    """An abstract train state with the structure the run saved."""
    tx = create_optimizer(config.optim.learning_rate, weight_decay=config.optim.weight_decay,
                          decay_rate=config.optim.decay_rate, steps_per_epoch=1)
    return jax.eval_shape(
        lambda: create_train_state(model, jax.random.key(0), (jnp.zeros((1, 204)),), tx)
    )
