"""Optimizers shared by the systems.

:func:`create_optimizer` is the recipe of the spiral-decoder papers (Neural3DMM, S2D, Potamias
et al.): Adam with L2 weight decay added to the gradient and a learning rate multiplied by a
constant after every epoch.
"""

from __future__ import annotations

import optax

__all__ = ["create_optimizer"]


def create_optimizer(
    learning_rate: float, *, weight_decay: float, decay_rate: float, steps_per_epoch: int
) -> optax.GradientTransformation:
    """Adam with L2 weight decay added to the gradient (PyTorch ``Adam(weight_decay=…)``
    semantics, as the official S2D code) and a learning rate multiplied by ``decay_rate`` after
    every epoch (``StepLR(gamma)``).

    Args:
      learning_rate: the first epoch's learning rate.
      weight_decay: L2 coefficient added to the gradient.
      decay_rate: factor applied to the learning rate after each epoch.
      steps_per_epoch: optimizer steps per epoch (0 is taken as 1).

    Returns:
      The optax transformation.
    """
    schedule = optax.exponential_decay(
        learning_rate, transition_steps=max(1, steps_per_epoch), decay_rate=decay_rate,
        staircase=True,
    )
    return optax.chain(
        optax.add_decayed_weights(weight_decay),
        optax.scale_by_adam(),
        optax.scale_by_learning_rate(schedule),
    )
