"""Training S2D-Dec: optimizer, jitted data-parallel train step, training loop with resume.

The step is a pure function ``(state, batch, rng) -> (state, metrics)`` compiled once with
``jax.jit``; the state is replicated and the batch sharded along the ``data`` mesh axis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state
from tqdm.auto import tqdm

from jaxface.losses.s2d import s2d_loss
from jaxface.train import (
    Checkpoints,
    MetricsWriter,
    Throughput,
    check_finite,
    global_norm,
    replicate,
    shard_batch,
)

__all__ = [
    "TrainState",
    "create_optimizer",
    "create_train_state",
    "fit",
    "make_train_step",
    "predict_in_batches",
]


class TrainState(train_state.TrainState):
    """Flax's train state (step, params, optimizer state, apply_fn)."""


def create_optimizer(
    learning_rate: float, *, weight_decay: float, decay_rate: float, steps_per_epoch: int
) -> optax.GradientTransformation:
    """Adam with L2 weight decay added to the gradient (PyTorch ``Adam(weight_decay=…)``
    semantics, as the official code) and a learning rate multiplied by ``decay_rate`` after every
    epoch (``StepLR(gamma)``)."""
    schedule = optax.exponential_decay(
        learning_rate, transition_steps=max(1, steps_per_epoch), decay_rate=decay_rate,
        staircase=True,
    )
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_adam(),
        optax.scale_by_learning_rate(schedule),
    )


def create_train_state(model, rng: jax.Array, example_inputs: tuple, tx) -> TrainState:
    """Initialises parameters from example inputs (shapes only matter)."""
    params = model.init(rng, *example_inputs)["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    # An array step counter: the jitted step then sees the same input types on every call
    # (a Python int would force a second trace after the first update).
    return state.replace(step=jnp.zeros((), jnp.int32))


def make_train_step(
    predict: Callable[[Any, dict[str, jax.Array]], jax.Array],
    target: Callable[[dict[str, jax.Array]], jax.Array],
    weights: np.ndarray | None,
    *,
    beta_dr: float,
    beta_pr: float,
    form: str,
) -> Callable:
    """Returns the jitted ``train_step(state, batch, rng) -> (state, metrics)``.

    Args:
      predict: ``(params, batch) -> [B, N, 3]`` the model's prediction of the quantity the loss
        compares (a displacement for S2D-Dec).
      target: ``batch -> [B, N, 3]`` the ground truth of that quantity.
      weights: float ``[N]`` vertex weights of ``L_pr`` or ``None`` (unweighted).
      beta_dr, beta_pr, form: see :func:`jaxface.losses.s2d.s2d_loss`.
    """
    w = None if weights is None else jnp.asarray(weights, jnp.float32)

    def train_step(state: TrainState, batch, rng):
        del rng  # the decoder is deterministic

        def loss_fn(params):
            loss, parts = s2d_loss(
                predict(params, batch), target(batch), w, beta_dr=beta_dr, beta_pr=beta_pr,
                form=form,
            )
            return loss, parts

        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        state = state.apply_gradients(grads=grads)
        metrics = {"loss": loss, "grad_norm": global_norm(grads), **parts}
        return state, metrics

    return jax.jit(train_step, donate_argnums=0)


def fit(
    state: TrainState,
    train_step: Callable,
    batches: Callable[[int], Iterator[dict[str, np.ndarray]]],
    *,
    mesh,
    num_epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    workdir: str,
    checkpoint_every: int,
    log_every: int = 50,
    seed: int = 0,
    progress: bool = True,
) -> tuple[TrainState, list[dict[str, float]]]:
    """Runs (or resumes) training; returns the final state and the logged metrics.

    ``batches(epoch)`` yields the host-local numpy batches of one epoch; the loop resumes from
    the latest checkpoint in ``workdir`` and skips the batches already consumed, so a run
    killed at any point continues exactly where its last checkpoint left off.
    """
    ckpt = Checkpoints(workdir, save_every=checkpoint_every)
    state, start = ckpt.restore_or(replicate(state, mesh))
    writer = MetricsWriter(workdir)
    total = num_epochs * steps_per_epoch
    rng = jax.random.key(seed)
    meter = Throughput()
    history: list[dict[str, float]] = []
    bar = tqdm(total=total, initial=start, disable=not progress, desc="train", unit="step")
    step = start
    try:
        for epoch in range(start // steps_per_epoch, num_epochs):
            skip = start - epoch * steps_per_epoch if epoch == start // steps_per_epoch else 0
            for i, host_batch in enumerate(batches(epoch)):
                if i < skip:
                    continue
                batch = shard_batch(host_batch, mesh)
                state, metrics = train_step(state, batch, jax.random.fold_in(rng, step))
                step += 1
                meter.add(batch_size)
                bar.update(1)
                if step % log_every == 0 or step == total:
                    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    check_finite(host, step)
                    host.update(meshes_per_s=meter.rate(), epoch=epoch, time=time.time())
                    writer.write(step, host)
                    history.append({"step": step, **host})
                    bar.set_postfix(loss=f"{host['loss']:.3g}", mps=f"{host['meshes_per_s']:.0f}")
                ckpt.save(step, state)
        ckpt.save(step, state, force=True)
    finally:
        bar.close()
        ckpt.close()
    return state, history


def predict_in_batches(fn, params, inputs: tuple[np.ndarray, ...], batch_size: int = 64):
    """Runs the jitted ``fn(params, *inputs)`` over arrays in fixed-size batches (the last one
    padded, so ``fn`` compiles once); returns numpy."""
    n = inputs[0].shape[0]
    outs = []
    for start in range(0, n, batch_size):
        chunk = [x[start : start + batch_size] for x in inputs]
        m = chunk[0].shape[0]
        if m < batch_size:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - m, 0)]) for c in chunk]
        outs.append(np.asarray(fn(params, *chunk))[:m])
    return np.concatenate(outs)
