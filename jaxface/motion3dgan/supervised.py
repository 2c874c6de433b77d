"""Training the deterministic networks of Table 3 (the LSTM baseline and the classifier).

Both are trained with Adam on the training motions, in a jitted data-parallel step
(:func:`jaxface.train.make_supervised_step`) driven by the resumable loop of
:func:`jaxface.train.fit`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import numpy as np
import optax

from jaxface.data import pipeline
from jaxface.motion3dgan.data import MotionSet
from jaxface.train import (
    create_train_state,
    data_mesh,
    fit,
    make_supervised_step,
    num_params,
)

__all__ = ["train_on_motions"]


def train_on_motions(
    config,
    block,
    workdir: str,
    train: MotionSet,
    model: nn.Module,
    example_inputs: tuple,
    loss_fn: Callable[[Any, dict[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]],
    fields: Sequence[str],
    *,
    stream: int,
    desc: str,
) -> tuple[Any, dict[str, Any]]:
    """Trains (or resumes) ``model`` on ``train`` with Adam.

    Args:
      config: experiment config; uses ``seed``, ``checkpoint_every``, ``log_every`` and
        ``progress``.
      block: the model's config block (``learning_rate``, ``batch_size``, ``num_epochs``).
      workdir: run folder.
      train: training motions.
      model: the network.
      example_inputs: inputs of ``model.init`` (shapes only matter).
      loss_fn: ``(params, batch) -> (loss, metrics)``; batches hold ``fields`` of ``train``.
      fields: the :class:`MotionSet` fields each batch carries.
      stream: seeds the epoch shuffles together with ``config.seed`` (one per network).
      desc: progress-bar label.

    Returns:
      ``(params on the host, info)``; ``info`` has ``steps``, ``train_time_s``, ``final_loss``
      and ``num_params``.
    """
    mesh = data_mesh()
    state = create_train_state(
        model, jax.random.key(config.seed), example_inputs, optax.adam(block.learning_rate)
    )
    num_steps = pipeline.steps_per_epoch(len(train), block.batch_size, mesh=mesh,
                                         what="training motions")

    def batches(epoch: int):
        rng = np.random.default_rng([config.seed, stream, epoch])
        return train.epoch(block.batch_size, rng, tuple(fields))

    t0 = time.perf_counter()
    state, history = fit(
        state, make_supervised_step(loss_fn, mesh=mesh), batches, mesh=mesh,
        num_epochs=block.num_epochs, steps_per_epoch=num_steps, batch_size=block.batch_size,
        workdir=os.path.abspath(workdir), checkpoint_every=config.checkpoint_every,
        log_every=config.log_every, seed=config.seed, progress=config.progress, desc=desc,
    )
    info = {
        "steps": int(state.step),
        "train_time_s": time.perf_counter() - t0,
        "final_loss": history[-1]["loss"] if history else None,
        "num_params": num_params(state.params),
    }
    return jax.device_get(state.params), info
