"""The resumable training loop and fixed-shape batched inference shared by every model.

``fit`` drives any jitted step ``(state, batch, rng) -> (state, metrics)``: it restores the
latest orbax checkpoint of the run, skips the batches already consumed, logs metrics as JSON
lines, checks them for NaN/inf, and saves checkpoints. ``map_in_batches`` runs a jitted function
over arrays in equal-sized chunks so it compiles once; ``apply_in_batches`` does that for a Flax
module's ``apply``, compiled once per module and input shape.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh
from tqdm.auto import tqdm

from jaxface.train.checkpoint import Checkpoints
from jaxface.train.metrics import MetricsWriter, Throughput, check_finite
from jaxface.train.sharding import replicate, shard_batch

__all__ = ["apply_in_batches", "fit", "map_in_batches"]


def fit(
    state: Any,
    train_step: Callable,
    batches: Callable[[int], Iterator[dict[str, np.ndarray]]],
    *,
    mesh: Mesh,
    num_epochs: int,
    steps_per_epoch: int,
    batch_size: int,
    workdir: str,
    checkpoint_every: int,
    log_every: int = 50,
    seed: int = 0,
    progress: bool = True,
    desc: str = "train",
    loss_key: str = "loss",
    rate_key: str = "examples_per_s",
) -> tuple[Any, list[dict[str, float]]]:
    """Runs (or resumes) a training loop; returns the final state and the logged metrics.

    ``train_step(state, batch, rng)`` is called with one fixed base key; steps that need
    randomness fold in their own ``state.step``, so a resumed run draws the same numbers as an
    uninterrupted one. ``batches(epoch)`` yields the host-local numpy batches of one epoch
    (deterministic per epoch). The loop resumes from the latest checkpoint in
    ``<workdir>/checkpoints`` (raising :class:`jaxface.train.CheckpointError` if it cannot be
    read) and skips the batches already consumed, so a run killed at any point continues exactly
    where its last checkpoint left off. Every ``log_every`` steps the metrics (plus ``rate_key``,
    ``epoch`` and ``time``) go to ``<workdir>/metrics.jsonl`` after a NaN/inf check
    (:class:`jaxface.train.NonFiniteError`).

    Args:
      state: initial state (a pytree with an int ``step``); replicated over ``mesh`` here.
      train_step: the jitted step.
      batches: epoch -> iterator of numpy batches of ``batch_size`` rows.
      mesh: the 1-D ``("data",)`` mesh.
      num_epochs: epochs to train in total (a resumed run trains the rest).
      steps_per_epoch: batches per epoch.
      batch_size: rows per batch (for the throughput).
      workdir: run folder.
      checkpoint_every: steps between checkpoints (the last step is always saved).
      log_every: steps between metric records.
      seed: base PRNG seed.
      progress: show a progress bar.
      desc: progress-bar label.
      loss_key: the metric shown in the progress bar.
      rate_key: name of the logged throughput (rows per second), e.g. ``"meshes_per_s"``.
    """
    ckpt = Checkpoints(workdir, save_every=checkpoint_every)
    state, start = ckpt.restore_or(replicate(state, mesh))
    writer = MetricsWriter(workdir)
    total = num_epochs * steps_per_epoch
    rng = jax.random.key(seed)
    meter = Throughput()
    history: list[dict[str, float]] = []
    bar = tqdm(total=total, initial=min(start, total), disable=not progress, desc=desc,
               unit="step", leave=False)
    step = start
    try:
        for epoch in range(start // steps_per_epoch, num_epochs):
            skip = start - epoch * steps_per_epoch if epoch == start // steps_per_epoch else 0
            for i, host_batch in enumerate(batches(epoch)):
                if i < skip:
                    continue
                state, metrics = train_step(state, shard_batch(host_batch, mesh), rng)
                step += 1
                meter.add(batch_size)
                bar.update(1)
                if step % log_every == 0 or step == total:
                    host = {k: float(v) for k, v in jax.device_get(metrics).items()}
                    check_finite(host, step)
                    host.update({rate_key: meter.rate(), "epoch": epoch, "time": time.time()})
                    writer.write(step, host)
                    history.append({"step": step, **host})
                    bar.set_postfix({loss_key: f"{host[loss_key]:.3g}",
                                     "per_s": f"{host[rate_key]:.0f}"})
                ckpt.save(step, state)
        ckpt.save(step, state, force=True)
    finally:
        bar.close()
        ckpt.close()
    return state, history


def map_in_batches(
    fn: Callable[..., Any], inputs: tuple[np.ndarray, ...], batch_size: int = 64
) -> Any:
    """Applies a jitted ``fn(*chunk)`` to arrays in fixed-size chunks; returns numpy.

    The last chunk is padded by repeating its final row, so ``fn`` compiles once. ``fn`` may
    return an array or a pytree of arrays (each with the chunk as leading axis). Bind
    parameters with ``functools.partial(apply, params)``.

    Args:
      fn: maps ``[batch_size, ...]`` inputs to outputs with a leading ``batch_size`` axis.
      inputs: arrays with a common leading dimension ``M``.
      batch_size: rows per call.

    Returns:
      ``fn``'s outputs concatenated over the ``M`` rows (same pytree structure).
    """
    n = inputs[0].shape[0]
    if n == 0:
        raise ValueError("map_in_batches needs at least one row")
    outs = []
    for start in range(0, n, batch_size):
        chunk = [np.asarray(x[start : start + batch_size]) for x in inputs]
        m = chunk[0].shape[0]
        if m < batch_size:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - m, 0)]) for c in chunk]
        outs.append(jax.tree.map(lambda y, m=m: np.asarray(y)[:m], fn(*chunk)))
    return jax.tree.map(lambda *ys: np.concatenate(ys), *outs)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, *inputs):
    return module.apply({"params": params}, *inputs)


def apply_in_batches(
    module, params: Any, inputs: tuple[np.ndarray, ...], batch_size: int = 64
) -> Any:
    """``module.apply({"params": params}, *inputs)`` over arrays in fixed-size batches.

    The jitted apply is cached per module (a static argument) and batch shape, so repeated calls
    with the same module compile once. Returns numpy, with :func:`map_in_batches`'s padding.
    """
    return map_in_batches(functools.partial(_apply, module, params), inputs, batch_size)
