"""The core stage's driver: the pretrain stage's encoders refined with the U-Net generator.

:func:`train_core` starts from the pretrain stage's :class:`~jaxface.smirk.train.TrainedEncoders`,
builds the core state (:func:`jaxface.smirk.core.create_core_state`: the encoders' variables and
a fresh generator) and runs the jitted core step (:func:`jaxface.smirk.core.make_core_step`)
through :func:`jaxface.train.fit` over the real frames (``core.batch_size`` per batch, epochs of
``core.samples_per_epoch`` frames, ``core.num_epochs`` epochs). Its run folder holds its own
``config.json`` (the config with ``stage = "core"``) and checkpoints; a second call resumes.
The refined encoders come back as a :class:`~jaxface.smirk.train.TrainedEncoders`, so the
reconstruction, the evaluation and the packed copies read them as they read the pretrain's.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.batches import InMemoryBatches
from jaxface.morphable.forward import morph
from jaxface.morphable.model import MorphableModel
from jaxface.render import render
from jaxface.smirk.core import CoreState, build_generator, create_core_state, make_core_step
from jaxface.smirk.fitting import encoding_params
from jaxface.smirk.frames import FaceFrames
from jaxface.smirk.masking import MaskingConfig, mask_face, triangle_weights
from jaxface.smirk.train import TrainedEncoders, build_encoder
from jaxface.train import LoopConfig, fit, num_params, restore_latest, store_config

__all__ = [
    "CORE_STAGE",
    "core_encoders",
    "core_images",
    "core_run_config",
    "has_core_checkpoint",
    "is_core_run",
    "restore_core",
    "train_core",
]

#: The ``stage`` entry of a core run's ``config.json`` (a pretrain run has none).
CORE_STAGE = "core"


def core_run_config(config) -> dict[str, Any]:
    """The ``config.json`` of a core run: the config with ``stage = "core"``."""
    return {**config.to_dict(), "stage": CORE_STAGE}


def is_core_run(config) -> bool:
    """Whether a run's stored config is a core run's (:func:`core_run_config`)."""
    return config.get("stage") == CORE_STAGE


def has_core_checkpoint(workdir: str) -> bool:
    """Whether ``workdir`` is a core run with at least one checkpoint."""
    ckpts = os.path.join(workdir, "checkpoints")
    return (os.path.isfile(os.path.join(workdir, "config.json")) and os.path.isdir(ckpts)
            and any(name.isdigit() for name in os.listdir(ckpts)))


def core_encoders(state: CoreState, encoder, image_size: int) -> TrainedEncoders:
    """The encoder part of a core state (host arrays) as :class:`TrainedEncoders`."""
    variables = jax.device_get({"params": state.encoder_params,
                                "batch_stats": state.batch_stats["encoder"]})
    return TrainedEncoders(encoder, variables, int(image_size))


def _state_like(config, encoder, generator) -> CoreState:
    size = int(config.image_size)
    enc_vars = jax.eval_shape(lambda: encoder.init(jax.random.key(0),
                                                   jnp.zeros((1, size, size, 3))))
    return jax.eval_shape(lambda: create_core_state(config, generator, enc_vars, 1))


def restore_core(workdir: str, config, model: MorphableModel) -> tuple[CoreState, Any, Any]:
    """The latest checkpoint of a core run: ``(state on the host, encoder, generator)``.

    Raises:
      CheckpointError: no checkpoint, or none that reads back.
    """
    encoder, generator = build_encoder(config, model), build_generator(config)
    restored, _ = restore_latest(workdir, _state_like(config, encoder, generator))
    return jax.device_get(restored), encoder, generator


def train_core(config, workdir: str, model: MorphableModel, frames: FaceFrames,
               encoders: TrainedEncoders, *, desc: str = "core") -> tuple[TrainedEncoders,
                                                                           dict[str, Any]]:
    """Runs (or resumes) the core stage in ``workdir``.

    Args:
      config: an image-to-3D config (:mod:`jaxface.configs.smirk`, its ``core`` block).
      workdir: the core run's folder (checkpoints, metrics, ``config.json``).
      model: the morphable model (truncated to the config's sizes).
      frames: the real training frames (context crops).
      encoders: the pretrain stage's encoders (the starting point; only the expression encoder
        moves).

    Returns:
      The refined encoders and a summary (steps, time, parameter counts, final metrics).

    Raises:
      ValueError: ``encoders`` were trained at another image size than the config's.
    """
    if encoders.image_size != int(config.image_size):
        raise ValueError(f"train_core: the encoders read {encoders.image_size} px images, "
                         f"config image_size is {int(config.image_size)}")
    workdir = os.path.abspath(workdir)
    store_config(workdir, core_run_config(config))
    c = config.core
    generator = build_generator(config)
    batches = InMemoryBatches(frames.arrays(), int(c.batch_size), seed=config.seed,
                              what="real frames", epoch_examples=int(c.samples_per_epoch))
    state = create_core_state(config, generator, encoders.variables, batches.steps_per_epoch)
    step = make_core_step(config, encoders.encoder, generator, model, batches.steps_per_epoch,
                          batches.mesh)
    state, run = fit(state, step, batches,
                     LoopConfig.from_config(config, c.num_epochs, desc=desc), workdir)
    info = {**run.summary(), "final": run.final,
            "num_params": num_params(state.encoder_params["expression_encoder"]),
            "generator_params": num_params(state.generator_params)}
    return core_encoders(state, encoders.encoder, int(config.image_size)), info


def core_images(config, model: MorphableModel, state: CoreState, encoder, generator,
                images: np.ndarray, landmarks: np.ndarray, key: jax.Array) -> dict[str, np.ndarray]:
    """The core stage's reconstruction path at inference (BatchNorm on running averages).

    Args:
      images: ``float32 [B, S, S, 3]`` in [0, 1] (``S`` the config's image size).
      landmarks: ``float32 [B, N, 2]`` their face landmarks in screen coordinates (the hull of
        the masked photo).
      key: the masked photo's samples and holes.

    Returns:
      ``{"render", "masked", "output"}``: ``float32 [B, S, S, 3]`` the grey render of the
      encoders' mesh, the generator's masked photo and its output.
    """
    size = int(config.image_size)
    enc = core_encoders(state, encoder, size)(jnp.asarray(images))
    out = morph(model, encoding_params(enc))
    rendered = render(out.vertices, np.asarray(model.face_mask_faces), enc.cam, size)
    masked = mask_face(key, jnp.asarray(images), jnp.asarray(landmarks),
                       rendered.screen_vertices, np.asarray(model.faces),
                       jnp.asarray(triangle_weights(model)), rendered.mask,
                       MaskingConfig.from_config(config.core.masking))
    x = jnp.concatenate([rendered.image, masked.image], axis=-1)
    y = generator.apply({"params": state.generator_params,
                         "batch_stats": state.batch_stats["generator"]}, x, train=False)
    return {"render": np.asarray(rendered.image), "masked": np.asarray(masked.image),
            "output": np.asarray(y)}
