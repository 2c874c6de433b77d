"""Optimizers shared by the systems.

:func:`create_optimizer` is the recipe of the spiral-decoder papers (Neural3DMM, S2D, Potamias
et al.): Adam with L2 weight decay added to the gradient and a learning rate multiplied by a
constant after every epoch. :func:`decay_schedule` is the learning rate of a run that decays
over its whole length (the GANs' option).
"""

from __future__ import annotations

import optax

__all__ = ["SCHEDULES", "create_optimizer", "decay_schedule"]

SCHEDULES = ("constant", "linear", "cosine")


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


def decay_schedule(kind: str, learning_rate: float, *, total_steps: int,
                   final_fraction: float = 0.0) -> float | optax.Schedule:
    """A learning rate that starts at ``learning_rate`` and, for ``"linear"`` and ``"cosine"``,
    falls to ``final_fraction * learning_rate`` at ``total_steps`` (and stays there).

    ``"constant"`` returns ``learning_rate`` itself, so an optimizer built with it keeps no step
    counter (its state is that of a plain rate, and older checkpoints still restore).

    Args:
      kind: one of :data:`SCHEDULES`; ``"constant"`` ignores the other arguments.
      learning_rate: the rate at step 0.
      total_steps: the run's length in optimizer steps (at least 1 for a decay).
      final_fraction: the end rate as a fraction of the first, in ``[0, 1]``.

    Raises:
      ValueError: an unknown kind, ``total_steps < 1`` or a fraction outside ``[0, 1]``.
    """
    if kind not in SCHEDULES:
        raise ValueError(f"unknown learning-rate schedule {kind!r}; expected one of {SCHEDULES}")
    if kind == "constant":
        return float(learning_rate)
    if total_steps < 1:
        raise ValueError(f"a {kind} schedule needs total_steps >= 1, got {total_steps}")
    if not 0.0 <= final_fraction <= 1.0:
        raise ValueError(f"final_fraction must lie in [0, 1], got {final_fraction}")
    if kind == "linear":
        return optax.linear_schedule(learning_rate, learning_rate * final_fraction, total_steps)
    return optax.cosine_decay_schedule(learning_rate, total_steps, alpha=final_fraction)
