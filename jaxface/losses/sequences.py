"""Losses of mesh sequences of different lengths (padded, with a frame mask).

Potamias et al. (ECCV 2020, eq. 5): ``L = L_r + L_c`` with the reconstruction term
``L_r = |x̂_t - x_t|_1`` and the temporal-coherence term
``L_c = |(x̂_t - x̂_{t-1}) - (x_t - x_{t-1})|_1``, both averaged over the real frames (and
frame pairs) of the batch, the vertices and the coordinates.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["masked_sequence_l1"]


def masked_sequence_l1(
    pred: jax.Array, target: jax.Array, mask: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """The reconstruction and temporal-coherence L1 terms over the real frames.

    Args:
      pred: ``[B, T, N, 3]`` predicted sequences (padded).
      target: ``[B, T, N, 3]`` ground truth (padded).
      mask: ``[B, T]`` 1 on real frames, 0 on padding (a prefix of each row is real).

    Returns:
      ``(l_r, l_c)``: float32 scalars, mean absolute errors per coordinate.
    """
    mask = mask.astype(jnp.float32)
    per_coord = pred.shape[2] * pred.shape[3]
    err = jnp.abs(pred - target).sum(axis=(2, 3))
    l_r = (err * mask).sum() / (jnp.maximum(mask.sum(), 1.0) * per_coord)
    pair = mask[:, 1:] * mask[:, :-1]
    d = (pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])
    l_c = (jnp.abs(d).sum(axis=(2, 3)) * pair).sum() / (jnp.maximum(pair.sum(), 1.0) * per_coord)
    return l_r, l_c
