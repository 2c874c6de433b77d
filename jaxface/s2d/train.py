"""Training S2D-Dec: the optimizer and the jitted data-parallel train step.

The step is a pure function ``(state, batch, rng) -> (state, metrics)`` compiled once with
``jax.jit``; the state is replicated and the batch sharded along the ``data`` mesh axis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.losses.s2d import s2d_loss
from jaxface.train import make_supervised_step

__all__ = ["create_optimizer", "make_train_step"]


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

    def loss_fn(params, batch):
        return s2d_loss(predict(params, batch), target(batch), w, beta_dr=beta_dr,
                        beta_pr=beta_pr, form=form)

    return make_supervised_step(loss_fn)
