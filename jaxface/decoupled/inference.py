"""Using a trained decoupled face GAN: sample faces, transfer expressions, fit to data.

A trained run directory (``experiments/decoupled/main.py --workdir RUN``) holds ``config.json``,
``template.npz``, ``labels.json`` and orbax checkpoints; :meth:`DecoupledFaceModel.load` rebuilds
the generator from them.

* :meth:`~DecoupledFaceModel.sample`: faces of random or labelled codes (an identity label uses
  the fixed code the model was trained with for that training subject, likewise an expression
  label);
* :meth:`~DecoupledFaceModel.fit_mesh` / :meth:`~DecoupledFaceModel.fit_landmarks`: codes of a
  mesh of the template's topology, or of its 68 landmarks (Adam from a random start, eq. 13);
* :meth:`~DecoupledFaceModel.transfer`: the expression of one face on another, by fitting both
  and exchanging ``z_exp`` (the paper's replacement transfer).

Meshes are float32 ``[N, 3]`` (or ``[B, N, 3]``) in the units of the training data (metres).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np

from jaxface.decoupled.codes import CodeModel, gan_code_model
from jaxface.decoupled.fitting import FitResult, PointSelection, fit_codes
from jaxface.decoupled.model import RunTemplate, create_gan, load_template
from jaxface.decoupled.train import LossWeights, create_state
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology, read_mesh
from jaxface.train import read_config, restore_latest

__all__ = ["DecoupledFaceModel"]


@dataclasses.dataclass
class DecoupledFaceModel:
    """A trained generator with its template and label codes.

    Attributes:
      model: the generator as a :class:`~jaxface.decoupled.codes.CodeModel`.
      template: reference mesh, faces, landmarks, scale and label names.
      identity_codes: float32 ``[K_id, I]`` the fixed code of every identity label.
      expression_codes: float32 ``[K_exp, E]`` the fixed code of every expression label.
    """

    model: CodeModel
    template: RunTemplate
    identity_codes: np.ndarray
    expression_codes: np.ndarray

    @classmethod
    def load(cls, workdir: str) -> DecoupledFaceModel:
        """Loads the latest checkpoint of a trained run directory.

        Raises:
          FileNotFoundError: the folder is not a trained run (names the missing file).
          CheckpointError: no checkpoint, or one that cannot be read.
        """
        workdir = os.path.abspath(workdir)
        config = read_config(workdir, "decoupled face GAN run")
        template = load_template(workdir)
        gan = create_gan(config, reference=template.reference, faces=template.faces,
                         scale=template.scale, num_identities=len(template.identity_names),
                         num_expressions=len(template.expression_names))
        abstract = jax.eval_shape(lambda: create_state(gan, 0, LossWeights.from_config(config)))
        state, _ = restore_latest(workdir, abstract)
        state = jax.device_get(state)
        return cls(gan_code_model(gan, state.gen_params), template,
                   np.asarray(state.identity_codes), np.asarray(state.expression_codes))

    @property
    def faces(self) -> np.ndarray:
        return self.template.faces

    @property
    def num_vertices(self) -> int:
        return int(self.template.reference.shape[0])

    def read_mesh(self, path: str) -> np.ndarray:
        """Reads a mesh file and checks it has the template's topology; float32 ``[N, 3]``."""
        vertices, faces = read_mesh(path)
        check_topology(vertices, faces, self.faces, self.num_vertices, source=path)
        return np.asarray(vertices, np.float32)

    def _label(self, value: int | str | None, names: tuple[str, ...], what: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, str) and not value.lstrip("-").isdigit():
            if value not in names:
                raise ValueError(f"unknown {what} {value!r}; the model knows {', '.join(names)}")
            return names.index(value)
        index = int(value)
        if not 0 <= index < len(names):
            raise ValueError(f"{what} label {index} is out of range [0, {len(names)})")
        return index

    def decode(self, z_id: np.ndarray, z_exp: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Meshes ``[B, N, 3]`` of codes ``[B, I]``, ``[B, E]``, ``[B, Z]``."""
        return self.model.meshes(z_id, z_exp, noise)

    def sample(self, num: int, *, seed: int = 0, identity: int | str | None = None,
               expression: int | str | None = None,
               zero_noise: bool = False) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
        """``num`` faces: random codes, or the fixed code of an identity / expression label
        (index or name) for every face.

        Returns:
          ``(meshes [num, N, 3], (z_id, z_exp, noise))``.

        Raises:
          ValueError: ``num < 1`` or an unknown label.
        """
        if num < 1:
            raise ValueError(f"the number of samples must be positive, got {num}")
        z_id, z_exp, noise = self.model.sample_codes(jax.random.key(seed), num)
        i = self._label(identity, self.template.identity_names, "identity")
        e = self._label(expression, self.template.expression_names, "expression")
        if i is not None:
            z_id = np.repeat(self.identity_codes[i : i + 1], num, axis=0)
        if e is not None:
            z_exp = np.repeat(self.expression_codes[e : e + 1], num, axis=0)
        if zero_noise:
            noise = np.zeros_like(noise)
        return self.decode(z_id, z_exp, noise), (z_id, z_exp, noise)

    def fit_mesh(self, meshes: np.ndarray, *, regularization: float = 0.01, steps: int = 500,
                 learning_rate: float = 0.05, seed: int = 0) -> FitResult:
        """Codes of meshes ``[N, 3]`` or ``[T, N, 3]`` of the template's topology (all vertices).

        Raises:
          MeshError: the meshes do not have the template's vertex count.
        """
        meshes = np.asarray(meshes, np.float32)
        meshes = meshes[None] if meshes.ndim == 2 else meshes
        if meshes.ndim != 3 or meshes.shape[1:] != (self.num_vertices, 3):
            raise MeshError(f"expected meshes [T, {self.num_vertices}, 3], got "
                            f"{list(meshes.shape)}", field="vertices")
        return fit_codes(self.model, meshes, PointSelection.all_vertices(self.num_vertices),
                         regularization, steps=steps, learning_rate=learning_rate,
                         key=jax.random.key(seed))

    def fit_landmarks(self, landmarks: np.ndarray, *, regularization: float = 0.1,
                      steps: int = 500, learning_rate: float = 0.05, seed: int = 0) -> FitResult:
        """Codes whose face matches 68 landmarks ``[68, 3]`` or ``[T, 68, 3]`` (eq. 13).

        Raises:
          ValueError: the model has no landmark definition or the landmarks' shape is wrong.
        """
        if self.template.landmarks is None:
            raise ValueError("this model's template has no landmark definition")
        selection = PointSelection.landmarks(self.template.landmarks, self.faces)
        lms = np.asarray(landmarks, np.float32)
        lms = lms[None] if lms.ndim == 2 else lms
        if lms.ndim != 3 or lms.shape[1:] != (selection.num_points, 3):
            raise ValueError(f"expected landmarks [T, {selection.num_points}, 3], got "
                             f"{list(np.shape(landmarks))}")
        return fit_codes(self.model, lms, selection, regularization, steps=steps,
                         learning_rate=learning_rate, key=jax.random.key(seed))

    def transfer(self, source: np.ndarray, target: np.ndarray, **fit_options
                 ) -> tuple[np.ndarray, FitResult, FitResult]:
        """The expression of ``source [N, 3]`` on the identity of ``target [N, 3]``.

        Both meshes are fitted (:meth:`fit_mesh`); the result decodes the target's identity
        code and noise with the source's expression code.

        Returns:
          ``(result [N, 3], source fit, target fit)``.
        """
        fits = self.fit_mesh(np.stack([source, target]), **fit_options)
        mesh = self.decode(fits.z_id[1:], fits.z_exp[:1], fits.noise[1:])[0]
        one = [FitResult(*(np.asarray(getattr(fits, f.name))[k : k + 1]
                           for f in dataclasses.fields(FitResult))) for k in (0, 1)]
        return mesh, one[0], one[1]
