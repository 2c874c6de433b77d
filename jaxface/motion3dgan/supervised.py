"""Training the deterministic networks of Table 3 (the LSTM baseline and the classifier).

Both are trained with Adam on the training motions, in a jitted data-parallel step
(:func:`jaxface.train.make_supervised_step`) driven by :func:`jaxface.train.fit` over the
motions held on the devices.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import optax

from jaxface.data.batches import InMemoryBatches
from jaxface.motion3dgan.data import MotionSet
from jaxface.sharding import data_mesh
from jaxface.train import (
    LoopConfig,
    PeriodicEval,
    Plateau,
    create_train_state,
    fit,
    make_supervised_step,
    num_params,
)

__all__ = ["train_on_motions", "validation_hooks"]


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
    validation: MotionSet | None = None,
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
      validation: held-out motions; their mean loss is evaluated while training
        (:func:`validation_hooks`).

    Returns:
      ``(params on the host, info)``; ``info`` has ``steps``, ``train_time_s``, ``final_loss``
      and ``num_params``.
    """
    mesh = data_mesh()
    state = create_train_state(
        model, jax.random.key(config.seed), example_inputs, optax.adam(block.learning_rate)
    )
    batches = InMemoryBatches(train.arrays(tuple(fields)), block.batch_size, mesh=mesh,
                              seed=config.seed, stream=(stream,), what="training motions")
    workdir = os.path.abspath(workdir)
    hooks = []
    if validation is not None:
        arrays = validation.arrays(tuple(fields))
        loss = jax.jit(lambda params, batch: loss_fn(params, batch)[0])

        def evaluate(state) -> dict[str, float]:
            return {"val_loss": float(loss(state.params, arrays))}

        hooks = validation_hooks(config, evaluate, "val_loss", batches.steps_per_epoch, workdir)
    state, run = fit(state, make_supervised_step(loss_fn, mesh=mesh), batches,
                     LoopConfig.from_config(config, block.num_epochs, desc=desc), workdir,
                     hooks=hooks)
    info = {**run.summary(), "final_loss": run.final["loss"] if run.final else None,
            "num_params": num_params(state.params)}
    if hooks and hooks[0].history:
        info["validation"] = hooks[0].history
    return jax.device_get(state.params), info


def validation_hooks(config, evaluate, metric: str, steps_per_epoch: int,
                     workdir: str) -> list[PeriodicEval]:
    """The evaluation hook of a config's ``validation`` block (``every_epochs``, ``patience``,
    ``min_delta``): ``evaluate(state)`` every so many epochs, with a :class:`Plateau` stop on
    ``metric`` (lower is better) when ``patience > 0``."""
    v = config.validation
    stop = Plateau(metric, v.patience, v.min_delta) if v.patience else None
    return [PeriodicEval(evaluate, max(1, round(v.every_epochs * steps_per_epoch)), workdir,
                         stop)]
