"""The encoders' pretrain stage: one jitted step over renders and real frames.

Each step draws its renders (:func:`jaxface.smirk.synthetic.render_synthetic`) and cuts random
crops of the real frames of its batch (:func:`jaxface.smirk.augment.random_crops`), jitters
both, runs the three encoders (:class:`jaxface.models.FaceEncoder`, BatchNorm in training
mode) and the morphable model, and minimises

    w_lmk * L_landmarks(all)                                  (official: 100, MSE on screen)
  + w_param * MSE(parameters, truth)(renders)                 (shape, expression, jaw,
  + w_vert * L1(unposed vertices in cm, truth)(renders)        eyelids, head pose)
  + w_expr * |expression|^2 + w_shape * |shape|^2 + w_jaw * |jaw|^2   (real frames)

with Adam and a cosine decay to 1 % restarted every epoch (the official schedule). The step is
``(state, batch, rng) -> (state, metrics)`` and goes through :func:`jaxface.train.fit`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.data.batches import InMemoryBatches
from jaxface.models import create_model
from jaxface.models.face_encoder import FaceEncoding
from jaxface.models.timm_weights import load_timm_weights
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.sharding import batch_sharding, replicated
from jaxface.smirk.augment import colour_jitter, random_crops
from jaxface.smirk.fitting import encoding_params
from jaxface.smirk.frames import FaceFrames
from jaxface.smirk.landmarks import landmark_loss, pixels_to_screen
from jaxface.smirk.synthetic import SyntheticConfig, render_synthetic
from jaxface.train import LoopConfig, TrainState, fit, num_params, store_config
from jaxface.train.metrics import global_norm

__all__ = [
    "EncoderState",
    "TrainedEncoders",
    "build_encoder",
    "create_encoder_state",
    "encoder_schedule",
    "initial_variables",
    "make_train_step",
    "pretrain_config",
    "train_encoders",
]


def build_encoder(config, model: MorphableModel):
    """The :class:`jaxface.models.FaceEncoder` of ``config.model`` sized for ``model``."""
    cfg = config.model.copy_and_resolve_references()
    with cfg.unlocked():
        cfg.num_shape = model.num_shape
        cfg.num_expression = model.num_expression
    return create_model(cfg)


class EncoderState(TrainState):
    """A train state with BatchNorm statistics."""

    batch_stats: Any = None


def encoder_schedule(config, steps_per_epoch: int) -> optax.Schedule:
    """Cosine from the base rate to ``cosine_floor`` of it over each epoch, restarted."""
    o = config.optim
    lr = float(o.learning_rate)

    def schedule(step):
        t = (step % steps_per_epoch) / steps_per_epoch
        return lr * (o.cosine_floor + (1.0 - o.cosine_floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)))

    return schedule


def initial_variables(config, encoder) -> dict[str, Any]:
    """The encoders' initial variables: random (the official heads' initialisation), with the
    backbones read from ``config.model.imagenet_weights`` where a file is named."""
    size = int(config.image_size)
    variables = encoder.init(jax.random.key(config.seed), jnp.zeros((1, size, size, 3)))
    files = dict(config.model.get("imagenet_weights") or {})
    for name in ("pose", "shape", "expression"):
        variant = getattr(encoder, f"{name}_backbone")
        if files.get(variant):
            variables = load_timm_weights(variables, os.path.expanduser(files[variant]),
                                          scope=(f"{name}_encoder", "backbone"))
    return variables


def create_encoder_state(config, encoder, steps_per_epoch: int) -> EncoderState:
    """Initial state (:func:`initial_variables`) with Adam on the schedule of the config."""
    variables = initial_variables(config, encoder)
    tx = optax.adam(encoder_schedule(config, steps_per_epoch))
    if config.optim.grad_clip:
        tx = optax.chain(optax.clip_by_global_norm(float(config.optim.grad_clip)), tx)
    state = EncoderState.create(apply_fn=encoder.apply, params=variables["params"], tx=tx,
                                batch_stats=variables["batch_stats"])
    return state.replace(step=jnp.zeros((), jnp.int32))


def _mse(a, b):
    return jnp.mean(jnp.sum((a - b) ** 2, axis=-1))


def _unposed(model: MorphableModel, params: FaceParams) -> jax.Array:
    """Vertices with the head pose removed (the jaw stays), ``[B, V, 3]``."""
    return morph(model, params.replace(pose=jnp.zeros_like(params.pose))).vertices


def make_train_step(config, encoder, model: MorphableModel, mesh=None):
    """The jitted pretrain step (module docstring); ``mesh`` shards the batch along ``data``."""
    size = int(config.image_size)
    n_syn = int(config.data.synthetic_per_batch)
    syn_cfg = SyntheticConfig.from_config(config)
    a, w = config.augment, config.loss
    mp_rows = np.asarray(model.mediapipe_indices, np.int32)

    def constrain(x):
        return x if mesh is None else jax.lax.with_sharding_constraint(x, batch_sharding(mesh))

    def step(state: EncoderState, batch: dict[str, jax.Array], rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        k_syn, k_crop, k_jit = jax.random.split(rng, 3)
        syn = render_synthetic(k_syn, model, syn_cfg, n_syn, size)
        crops, pts, _ = random_crops(k_crop, batch["image"], batch["landmarks"], size,
                                     scale_range=tuple(a.scale_range), shift=float(a.shift),
                                     rotation_deg=float(a.rotation_deg))
        real_targets = pixels_to_screen(pts, size)[:, mp_rows]
        images = colour_jitter(k_jit, jnp.concatenate([syn.image, crops]),
                               brightness=a.brightness, contrast=a.contrast,
                               saturation=a.saturation, blur_prob=a.blur_prob,
                               noise_std=a.noise_std)
        images = constrain(images)
        targets = jnp.concatenate([syn.landmarks, real_targets])
        n_real = crops.shape[0]
        real = jnp.concatenate([jnp.zeros(n_syn), jnp.ones(n_real)])
        truth_unposed = _unposed(model, syn.params)

        def loss_fn(params):
            enc, updates = encoder.apply(
                {"params": params, "batch_stats": state.batch_stats}, images, train=True,
                mutable=["batch_stats"])
            enc: FaceEncoding
            face = encoding_params(enc)
            l_lmk = landmark_loss(morph(model, face), enc.cam, targets)
            p = jax.tree.map(lambda x: x[:n_syn], face)
            t = syn.params
            l_param = (_mse(p.shape, t.shape) / max(model.num_shape, 1)
                       + _mse(p.expression, t.expression) / max(model.num_expression, 1)
                       + _mse(p.jaw, t.jaw) + _mse(p.eyelids, t.eyelids) + _mse(p.pose, t.pose))
            l_vert = 100.0 * jnp.mean(jnp.abs(_unposed(model, p) - truth_unposed))

            def real_mean(x):
                return jnp.sum(real * jnp.sum(x ** 2, axis=-1)) / n_real

            l_reg = (w.expression_reg * real_mean(face.expression)
                     + w.shape_reg * real_mean(face.shape) + w.jaw_reg * real_mean(face.jaw))
            loss = w.landmarks * l_lmk + w.parameters * l_param + w.vertices * l_vert + l_reg
            parts = {"landmarks": l_lmk, "parameters": l_param, "vertices_cm": l_vert,
                     "regularisers": l_reg}
            return loss, (parts, updates["batch_stats"])

        (loss, (parts, stats)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads).replace(batch_stats=stats)
        return state, {"loss": loss, "grad_norm": global_norm(grads), **parts}

    kwargs: dict[str, Any] = {"donate_argnums": 0}
    if mesh is not None:
        rep = replicated(mesh)
        kwargs.update(in_shardings=(rep, batch_sharding(mesh), rep), out_shardings=(rep, rep))
    return jax.jit(step, **kwargs)


@dataclasses.dataclass(frozen=True)
class TrainedEncoders:
    """The encoders' module and trained variables."""

    encoder: Any
    variables: dict[str, Any]
    image_size: int

    def __call__(self, images: jax.Array) -> FaceEncoding:
        """Encodes ``[B, H, W, 3]`` images in [0, 1] (BatchNorm with its running averages)."""
        return _apply(self.encoder, self.variables, images)


@functools.lru_cache(maxsize=8)
def _jitted_apply(encoder):
    return jax.jit(functools.partial(encoder.apply, train=False))


def _apply(encoder, variables, images):
    return _jitted_apply(encoder)(variables, images)


def pretrain_config(config) -> dict[str, Any]:
    """The encoders' own config: without the ``core`` block (and a core run's ``stage``
    marker). A pretrain run stores it as its ``config.json``, so the core stage's settings (or
    switching it on) leave the run resumable, and a packed copy of either stage's encoders
    stores it too."""
    return {k: v for k, v in config.to_dict().items() if k not in ("core", "stage")}


def train_encoders(config, workdir: str, model: MorphableModel, frames: FaceFrames, *,
                   desc: str = "encoders") -> tuple[TrainedEncoders, dict[str, Any]]:
    """Runs (or resumes) the pretrain stage in ``workdir``.

    Args:
      config: an image-to-3D config (:mod:`jaxface.configs.smirk`).
      workdir: the run's folder (checkpoints, metrics, ``config.json``).
      model: the morphable model (already truncated to the config's sizes).
      frames: the real training frames (context crops).
      desc: progress label.

    Returns:
      The trained encoders and a summary (steps, time, parameter count, final metrics).
    """
    workdir = os.path.abspath(workdir)
    store_config(workdir, pretrain_config(config))
    encoder = build_encoder(config, model)
    per_batch = int(config.data.real_per_batch) + int(config.data.synthetic_per_batch)
    epoch_real = int(config.data.samples_per_epoch) * int(config.data.real_per_batch) // per_batch
    batches = InMemoryBatches(frames.arrays(), int(config.data.real_per_batch), seed=config.seed,
                              what="real frames", epoch_examples=epoch_real)
    state = create_encoder_state(config, encoder, batches.steps_per_epoch)
    step = make_train_step(config, encoder, model, batches.mesh)
    state, run = fit(state, step, batches,
                     LoopConfig.from_config(config, config.optim.num_epochs, desc=desc), workdir)
    variables = jax.device_get({"params": state.params, "batch_stats": state.batch_stats})
    info = {**run.summary(), "final": run.final, "num_params": num_params(state.params)}
    return TrainedEncoders(encoder, variables, int(config.image_size)), info
