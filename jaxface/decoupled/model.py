"""The decoupled face GAN's networks, fixed layers and run template.

:class:`FaceGAN` bundles what training and inference share: the generator and the critic (built
by name from the config, :func:`jaxface.models.create_model`), the fixed geometry mapping layer
(:class:`jaxface.nn.GeometryMapping`, from the template's harmonic UV chart rasterised at
``image_size``), the template's cotangent Laplacian, the reference mesh and the data scale.

Units: the networks work on *scaled displacements* ``(vertices - reference) / scale``, with
``scale`` the RMS displacement of the training meshes from the reference, so that they see
values of order one; the generator's output is such a displacement, and the critic sees the
geometry image of it (the geometry image of the vertex positions, shifted by a constant image and
divided by ``scale``).

A trained run directory holds ``config.json``, ``template.npz`` (reference vertices, faces,
landmark definition; :func:`save_template`), ``labels.json`` (class names and scale) and the
orbax checkpoints of the :class:`jaxface.decoupled.train.GANState`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import jax
import numpy as np
import optax

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.decoupled.losses import SparseLaplacian
from jaxface.files import write_json, write_npz
from jaxface.mesh.uv import GeometryImageMap, harmonic_uv, rasterize_uv
from jaxface.models import CriticOutput, DecoupledCritic, DecoupledGenerator, create_model
from jaxface.nn import GeometryMapping
from jaxface.train import TrainState, decay_schedule

__all__ = [
    "LABELS_FILE",
    "TEMPLATE_FILE",
    "FaceGAN",
    "RunTemplate",
    "create_gan",
    "create_train_state",
    "geometry_map",
    "load_template",
    "save_template",
]

TEMPLATE_FILE = "template.npz"
LABELS_FILE = "labels.json"


def create_train_state(model, seed: int, example_inputs: tuple, tx) -> TrainState:
    """:func:`jaxface.train.create_train_state` with a jitted ``init`` drawing from JAX's ``rbg``
    generator: an eager init compiles every layer's ops one by one, and the default threefry
    generator compiles one large program per parameter shape (seconds per network on a CPU)."""
    key = jax.random.key(int(seed), impl="rbg")
    params = jax.jit(model.init)(key, *example_inputs)["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    return state.replace(step=jax.numpy.zeros((), jax.numpy.int32))


def geometry_map(vertices: np.ndarray, faces: np.ndarray, size: int) -> GeometryImageMap:
    """The template's geometry-image sampling map: harmonic UV chart (outer boundary on the unit
    square, :func:`jaxface.mesh.uv.harmonic_uv`) rasterised at ``size x size``."""
    uv = harmonic_uv(vertices, faces, allow_other_components=True)
    return rasterize_uv(uv, faces, int(size), int(size))


@dataclasses.dataclass(frozen=True, eq=False)
class FaceGAN:
    """The networks, fixed layers and optimizers of one decoupled face GAN.

    Attributes:
      generator: codes -> scaled displacements.
      critic: geometry images -> :class:`jaxface.models.CriticOutput`.
      mapping: the fixed geometry mapping layer (numpy index and weight images).
      laplacian: the template's cotangent Laplacian (numpy COO).
      reference: float32 ``[N, 3]`` reference mesh (the template).
      faces: int32 ``[F, 3]``.
      scale: metres per scaled unit.
      identity_dim, expression_dim, noise_dim: sizes of ``z_id``, ``z_exp`` and the noise.
      gen_tx, critic_tx: the optimizers.
    """

    generator: DecoupledGenerator
    critic: DecoupledCritic
    mapping: GeometryMapping
    laplacian: SparseLaplacian
    reference: np.ndarray
    faces: np.ndarray
    scale: float
    identity_dim: int
    expression_dim: int
    noise_dim: int
    gen_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation

    @property
    def num_vertices(self) -> int:
        return int(self.reference.shape[0])

    @property
    def num_identities(self) -> int:
        return self.critic.num_identities

    @property
    def num_expressions(self) -> int:
        return self.critic.num_expressions

    def displacements(self, gen_params: Any, z_id: jax.Array, z_exp: jax.Array,
                      noise: jax.Array) -> jax.Array:
        """Scaled displacements ``[B, N, 3]`` of codes ``[B, I]``, ``[B, E]``, ``[B, Z]``."""
        return self.generator.apply({"params": gen_params}, z_id, z_exp, noise)

    def meshes(self, gen_params: Any, z_id: jax.Array, z_exp: jax.Array,
               noise: jax.Array) -> jax.Array:
        """Vertices ``[B, N, 3]`` (metres) of codes: ``reference + scale * displacements``."""
        d = self.displacements(gen_params, z_id, z_exp, noise)
        return jax.numpy.asarray(self.reference) + self.scale * d

    def scaled(self, vertices: jax.Array) -> jax.Array:
        """Scaled displacements ``(vertices - reference) / scale`` of meshes ``[B, N, 3]``."""
        return (vertices - jax.numpy.asarray(self.reference)) / self.scale

    def images(self, displacements: jax.Array) -> jax.Array:
        """Geometry images ``[B, H, W, 3]`` of scaled displacements ``[B, N, 3]``."""
        return self.mapping.apply({}, displacements)

    def critique(self, critic_params: Any, images: jax.Array) -> CriticOutput:
        """The critic's scores, logits and features of geometry images."""
        return self.critic.apply({"params": critic_params}, images)


def create_gan(config, *, reference: np.ndarray, faces: np.ndarray, scale: float,
               num_identities: int, num_expressions: int, steps_per_epoch: int = 1) -> FaceGAN:
    """Builds the :class:`FaceGAN` of a config and a template.

    Args:
      config: a :mod:`jaxface.configs.decoupled` config (``generator``, ``critic``, ``codes``,
        ``image_size``, ``optim``).
      reference: float ``[N, 3]`` the template's vertices.
      faces: int ``[F, 3]``.
      scale: the data scale (metres per scaled unit).
      num_identities, num_expressions: classes of the auxiliary classifiers.
      steps_per_epoch: generator steps per epoch; with ``optim.schedule`` "linear" or
        "cosine" both learning rates decay over ``optim.num_epochs`` epochs of this length
        (the critic's over its ``n_critic`` updates per step).

    Raises:
      ValueError: a non-positive scale, an odd batch (codes are drawn in pairs) or an unknown
        schedule.
    """
    if not scale > 0:
        raise ValueError(f"the data scale must be positive, got {scale}")
    if int(config.optim.batch_size) % 2:
        raise ValueError(f"config.optim.batch_size must be even (samples come in pairs), got "
                         f"{config.optim.batch_size}")
    reference = np.asarray(reference, np.float32)
    faces = np.asarray(faces, np.int32)
    gim = geometry_map(reference, faces, config.image_size)
    o = config.optim
    gen_steps = int(o.num_epochs) * max(1, int(steps_per_epoch))

    def rate(updates_per_step: int):
        try:
            return decay_schedule(o.get("schedule", "constant"), o.learning_rate,
                                  total_steps=gen_steps * updates_per_step,
                                  final_fraction=o.get("final_fraction", 0.0))
        except ValueError as e:
            raise ValueError(f"config.optim (schedule, final_fraction): {e}") from e

    return FaceGAN(
        generator=create_model(config.generator, num_vertices=reference.shape[0]),
        critic=create_model(config.critic, num_identities=num_identities,
                            num_expressions=num_expressions),
        mapping=GeometryMapping(gim.vertex_indices, gim.barycentric, gim.mask),
        laplacian=SparseLaplacian.of_mesh(reference, faces),
        reference=reference,
        faces=faces,
        scale=float(scale),
        identity_dim=int(config.codes.identity_dim),
        expression_dim=int(config.codes.expression_dim),
        noise_dim=int(config.codes.noise_dim),
        gen_tx=optax.adam(rate(1), b1=o.b1, b2=o.b2),
        critic_tx=optax.adam(rate(int(o.n_critic)), b1=o.b1, b2=o.b2),
    )


@dataclasses.dataclass(frozen=True)
class RunTemplate:
    """What a trained run stores besides its config and checkpoints.

    Attributes:
      reference: float32 ``[N, 3]`` reference mesh (template).
      faces: int32 ``[F, 3]``.
      landmarks: the 68-landmark definition of the topology, or ``None``.
      scale: metres per scaled unit.
      identity_names: name of every identity class.
      expression_names: name of every expression class.
    """

    reference: np.ndarray
    faces: np.ndarray
    landmarks: LandmarkDefinition | None
    scale: float
    identity_names: tuple[str, ...]
    expression_names: tuple[str, ...]


def save_template(workdir: str, run: RunTemplate) -> None:
    """Writes ``template.npz`` and ``labels.json`` into a run directory (atomically)."""
    workdir = os.path.abspath(workdir)
    arrays = {"vertices": np.asarray(run.reference, np.float32),
              "faces": np.asarray(run.faces, np.int32)}
    if run.landmarks is not None:
        for name in ("vertex_indices", "face_indices", "barycentric"):
            value = getattr(run.landmarks, name)
            if value is not None:
                arrays[f"landmarks/{name}"] = np.asarray(value)
    write_npz(os.path.join(workdir, TEMPLATE_FILE), arrays)
    write_json(os.path.join(workdir, LABELS_FILE),
               {"scale": run.scale, "identities": list(run.identity_names),
                "expressions": list(run.expression_names)})


def load_template(workdir: str) -> RunTemplate:
    """Reads a run's ``template.npz`` and ``labels.json``.

    Raises:
      FileNotFoundError: naming the missing file.
      ValueError: ``labels.json`` is not valid or lacks a field.
    """
    workdir = os.path.abspath(workdir)
    paths = [os.path.join(workdir, name) for name in (TEMPLATE_FILE, LABELS_FILE)]
    for path in paths:
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{workdir} is not a trained decoupled face GAN run: "
                                    f"{os.path.basename(path)} is missing")
    with np.load(paths[0]) as z:
        vertices, faces = np.array(z["vertices"]), np.array(z["faces"])
        fields = {k.split("/", 1)[1]: np.array(z[k]) for k in z.files if "/" in k}
    with open(paths[1]) as f:
        try:
            labels = json.load(f)
            return RunTemplate(vertices, faces, LandmarkDefinition(**fields) if fields else None,
                               float(labels["scale"]), tuple(labels["identities"]),
                               tuple(labels["expressions"]))
        except (json.JSONDecodeError, KeyError) as err:
            raise ValueError(f"{paths[1]}: not a valid labels file ({err!r})") from err
