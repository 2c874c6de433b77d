"""Train states and jitted data-parallel steps of single-loss (supervised) models.

Every step is a pure function ``(state, batch, rng) -> (state, metrics)``. :func:`jit_train_step`
compiles one with the input state's buffers donated and, given a 1-D ``("data",)`` mesh, with the
state and key replicated and the batch sharded along ``"data"``; :func:`make_supervised_step`
builds the step of a model trained by one differentiable loss.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax.training import train_state
from jax.sharding import Mesh

from jaxface.sharding import batch_sharding, replicated
from jaxface.train.metrics import global_norm

__all__ = [
    "TrainState",
    "create_train_state",
    "jit_train_step",
    "make_supervised_step",
]


class TrainState(train_state.TrainState):
    """Flax's train state (step, params, optimizer state, apply_fn)."""


def create_train_state(model, rng: jax.Array, example_inputs: tuple, tx) -> TrainState:
    """Initialises ``model``'s parameters from example inputs (shapes only matter).

    The step counter is an int32 array, so the jitted step sees the same input types on every
    call (a Python int would force a second trace after the first update).
    """
    params = model.init(rng, *example_inputs)["params"]
    state = TrainState.create(apply_fn=model.apply, params=params, tx=tx)
    return state.replace(step=jnp.zeros((), jnp.int32))


def jit_train_step(train_step: Callable, *, mesh: Mesh | None = None, donate: bool = True):
    """``jax.jit`` of a step ``(state, batch, rng) -> (state, metrics)``.

    Args:
      train_step: the step.
      mesh: when given, the state, the key and the metrics are replicated over ``mesh`` and
        the batch is sharded along ``"data"``; otherwise shardings follow the arguments.
      donate: donate the input state's buffers.
    """
    kwargs: dict[str, Any] = {"donate_argnums": 0} if donate else {}
    if mesh is not None:
        rep = replicated(mesh)
        kwargs.update(in_shardings=(rep, batch_sharding(mesh), rep), out_shardings=(rep, rep))
    return jax.jit(train_step, **kwargs)


def make_supervised_step(
    loss_fn: Callable[[Any, dict[str, jax.Array]], tuple[jax.Array, dict[str, jax.Array]]],
    *,
    mesh: Mesh | None = None,
) -> Callable:
    """The jitted step of a deterministic model trained by one loss.

    Args:
      loss_fn: ``(params, batch) -> (scalar loss, dict of scalar metrics)``.
      mesh: see :func:`jit_train_step`.

    Returns:
      ``train_step(state, batch, rng) -> (state, metrics)`` (``rng`` unused) applying one
      optimizer update; metrics are ``loss``, ``grad_norm`` and ``loss_fn``'s own.
    """

    def train_step(state: TrainState, batch, rng):
        del rng  # deterministic model

        (loss, parts), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, batch)
        state = state.apply_gradients(grads=grads)
        return state, {"loss": loss, "grad_norm": global_norm(grads), **parts}

    return jit_train_step(train_step, mesh=mesh)
