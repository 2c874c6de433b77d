"""The Table 3 "LSTM" baseline: a deterministic label + neutral -> landmark-motion generator.

The paper compares Motion3DGAN with "an LSTM to generate the per-frame expression", modelled on
Potamias et al. (ECCV 2020) and "trained on the same data used for Motion3DGAN":
:class:`jaxface.models.LSTMLandmarkGenerator` reads a per-frame neutral-to-apex expression code
(:func:`jaxface.models.expression_code`, one-hot label times a 0 -> 1 ramp) and the normalised
neutral landmarks, and outputs the landmark sequence. It is trained here on the resampled,
normalised training sub-sequences with :func:`jaxface.models.sequence_l1_loss` (L1 plus the L1 of
frame differences), Adam, in a jitted data-parallel step with the resumable loop of
:func:`jaxface.train.fit`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state

from jaxface.models import LSTMLandmarkGenerator, sequence_l1_loss
from jaxface.motion3dgan.data import MotionSet
from jaxface.train import (
    batch_sharding,
    data_mesh,
    fit,
    global_norm,
    map_in_batches,
    replicated,
)

__all__ = [
    "create_lstm_generator",
    "generate_lstm_landmarks",
    "make_lstm_train_step",
    "train_lstm_generator",
]


def create_lstm_generator(config, num_classes: int) -> LSTMLandmarkGenerator:
    """The baseline of a config's ``baseline`` block (``hidden_size``, ``latent_size``)."""
    return LSTMLandmarkGenerator(
        num_frames=config.num_frames,
        num_classes=num_classes,
        hidden_size=config.baseline.hidden_size,
        latent_size=config.baseline.latent_size,
    )


def make_lstm_train_step(
    model: LSTMLandmarkGenerator, *, temporal_weight: float, mesh=None
) -> Callable:
    """Returns the jitted ``train_step(state, batch, rng) -> (state, metrics)``.

    The batch holds ``label`` int32 ``[B]``, ``neutral`` float32 ``[B, K, 3]`` and ``landmarks``
    float32 ``[B, T, K, 3]`` (the target); metrics are ``loss`` and ``grad_norm``. With ``mesh``
    the state is replicated and the batch sharded along ``"data"``.
    """

    def train_step(state: train_state.TrainState, batch, rng):
        del rng  # deterministic model

        def loss_fn(params):
            pred = model.apply({"params": params}, batch["label"], batch["neutral"])
            return sequence_l1_loss(pred, batch["landmarks"], temporal_weight)

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        state = state.apply_gradients(grads=grads)
        return state, {"loss": loss, "grad_norm": global_norm(grads)}

    kwargs: dict[str, Any] = {"donate_argnums": 0}
    if mesh is not None:
        rep = replicated(mesh)
        kwargs.update(in_shardings=(rep, batch_sharding(mesh), rep), out_shardings=(rep, rep))
    return jax.jit(train_step, **kwargs)


def train_lstm_generator(
    config, workdir: str, train: MotionSet
) -> tuple[LSTMLandmarkGenerator, Any, dict[str, Any]]:
    """Trains (or resumes) the LSTM baseline on the training motions.

    Args:
      config: experiment config; uses ``num_frames``, ``seed``, ``checkpoint_every``,
        ``log_every``, ``progress`` and the ``baseline`` block (``hidden_size``, ``latent_size``,
        ``learning_rate``, ``batch_size``, ``num_epochs``, ``temporal_weight``).
      workdir: run folder.
      train: training motions.

    Returns:
      ``(model, params on the host, info)``.
    """
    b = config.baseline
    mesh = data_mesh()
    model = create_lstm_generator(config, train.num_classes)
    tx = optax.adam(b.learning_rate)
    params = model.init(
        jax.random.key(config.seed), jnp.zeros((1,), jnp.int32), jnp.asarray(train.neutral[:1])
    )["params"]
    state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    state = state.replace(step=jnp.zeros((), jnp.int32))  # same input types on every call
    step = make_lstm_train_step(model, temporal_weight=b.temporal_weight, mesh=mesh)
    steps_per_epoch = len(train) // b.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"{len(train)} training motions are fewer than one batch of {b.batch_size}"
        )

    def batches(epoch: int):
        return train.epoch(
            b.batch_size, np.random.default_rng([config.seed, 7, epoch]),
            ("label", "neutral", "landmarks"),
        )

    t0 = time.perf_counter()
    state, history = fit(
        state, step, batches, mesh=mesh, num_epochs=b.num_epochs,
        steps_per_epoch=steps_per_epoch, batch_size=b.batch_size,
        workdir=os.path.abspath(workdir), checkpoint_every=config.checkpoint_every,
        log_every=config.log_every, seed=config.seed, progress=config.progress,
        desc="LSTM generator",
    )
    info = {
        "steps": int(state.step),
        "train_time_s": time.perf_counter() - t0,
        "final_loss": history[-1]["loss"] if history else None,
        "num_params": int(sum(x.size for x in jax.tree.leaves(state.params))),
    }
    return model, jax.device_get(state.params), info


def generate_lstm_landmarks(
    model: LSTMLandmarkGenerator, params: Any, labels: np.ndarray, neutral: np.ndarray,
    batch_size: int = 64,
) -> np.ndarray:
    """Landmark sequences of the baseline.

    Args:
      model: the baseline.
      params: its parameters.
      labels: int ``[M]`` expression labels.
      neutral: float32 ``[M, K, 3]`` normalised neutral landmarks.
      batch_size: sequences per call (the last call is padded, so it compiles once).

    Returns:
      float32 ``[M, T, K, 3]``.
    """
    apply = jax.jit(lambda p, y, n: model.apply({"params": p}, y, n))
    return map_in_batches(
        lambda y, n: apply(params, y, n),
        (np.asarray(labels, np.int32), np.asarray(neutral, np.float32)),
        batch_size,
    )
