"""Mesh down- and up-sampling with precomputed index arrays.

Down-sampling keeps a subset of the finer level's vertices (``down_indices [M]``, the surviving
vertices in coarse order). Up-sampling interpolates every fine vertex from at most three coarse
vertices (``up_indices [N_fine, 3]``, ``up_weights [N_fine, 3]`` with rows summing to one; unused
slots carry weight zero). Both are gathers, so their cost is linear in the output size and they
shard along the batch axis like any elementwise op.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Downsample", "Upsample", "downsample", "upsample"]


def _check_features(x: jax.Array) -> None:
    if x.ndim < 2:
        raise ValueError(f"x must be [..., N, C], got shape {x.shape}")


def downsample(x: jax.Array, down_indices: Any) -> jax.Array:
    """Selects the surviving vertices along the vertex axis.

    Args:
      x: ``[..., N, C]`` features of the finer level (usually ``[B, N, C]``).
      down_indices: int ``[M]`` indices in ``[0, N)`` of the vertices kept, in coarse order.

    Returns:
      ``[..., M, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.arange(8.0).reshape(1, 4, 2)
      >>> downsample(x, np.array([0, 3]))
      Array([[[0., 1.],
              [6., 7.]]], dtype=float32)
    """
    x = jnp.asarray(x)
    _check_features(x)
    idx = jnp.asarray(down_indices, jnp.int32)
    if idx.ndim != 1:
        raise ValueError(f"down_indices must be [M], got shape {idx.shape}")
    concrete = None if isinstance(down_indices, jax.core.Tracer) else np.asarray(down_indices)
    sorted_unique = False
    if concrete is not None and concrete.size:
        if concrete.min() < 0 or concrete.max() >= x.shape[-2]:
            raise ValueError(f"down_indices must lie in [0, {x.shape[-2]})")
        sorted_unique = bool(np.all(np.diff(concrete) > 0))
    return x.at[..., idx, :].get(
        mode="promise_in_bounds",
        indices_are_sorted=sorted_unique,
        unique_indices=sorted_unique,
    )


def check_upsampling(up_indices: Any, up_weights: Any, num_coarse: int) -> None:
    """Checks up-sampling arrays: both ``[N_fine, K]``, concrete indices in
    ``[0, num_coarse)``.

    Raises:
      ValueError: naming the array and what was expected.
    """
    if np.ndim(up_indices) != 2 or np.shape(up_weights) != np.shape(up_indices):
        raise ValueError(
            f"up_indices and up_weights must both be [N_fine, K], got {np.shape(up_indices)} "
            f"and {np.shape(up_weights)}"
        )
    concrete = None if isinstance(up_indices, jax.core.Tracer) else np.asarray(up_indices)
    if concrete is not None and concrete.size:
        if concrete.min() < 0 or concrete.max() >= num_coarse:
            raise ValueError(f"up_indices must lie in [0, {num_coarse})")


def upsample(x: jax.Array, up_indices: Any, up_weights: Any) -> jax.Array:
    """Interpolates fine-level features from coarse ones: a 3-wide gather times weights.

    ``out[..., f, :] = sum_k up_weights[f, k] * x[..., up_indices[f, k], :]``.

    A spiral convolution that reads the result can take the up-sampling itself
    (``SpiralConv(..., upsampling=(up_indices, up_weights))``, :func:`jaxface.nn.spiral_conv`),
    which folds it into its gather and projects on the coarse level.

    Args:
      x: ``[..., M, C]`` features of the coarser level (usually ``[B, M, C]``).
      up_indices: int ``[N_fine, K]`` (``K = 3``) coarse vertex indices in ``[0, M)``.
      up_weights: float ``[N_fine, K]`` interpolation weights (rows sum to one).

    Returns:
      ``[..., N_fine, C]``, same dtype as ``x``.

    Example:
      >>> x = jnp.array([[[0.0], [2.0], [4.0]]])
      >>> idx = np.array([[0, 1, 2], [1, 1, 1]])
      >>> w = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0]], np.float32)
      >>> upsample(x, idx, w)
      Array([[[1.],
              [2.]]], dtype=float32)
    """
    x = jnp.asarray(x)
    _check_features(x)
    check_upsampling(up_indices, up_weights, x.shape[-2])
    idx = jnp.asarray(up_indices, jnp.int32)
    weights = jnp.asarray(up_weights, x.dtype)
    gathered = x.at[..., idx, :].get(mode="promise_in_bounds")  # [..., N_fine, K, C]
    return jnp.einsum("...fkc,fk->...fc", gathered, weights)


class Downsample(nn.Module):
    """Down-sampling by vertex selection (no parameters).

    Attributes:
      down_indices: int ``[M]`` numpy indices of the kept vertices.

    Example:
      >>> layer = Downsample(down_indices=np.array([0, 2]))
      >>> layer.apply({}, jnp.ones((2, 3, 4))).shape
      (2, 2, 4)
    """

    down_indices: Any

    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps ``[..., N, C]`` to ``[..., M, C]``."""
        return downsample(x, self.down_indices)


class Upsample(nn.Module):
    """Up-sampling by 3-wide barycentric interpolation (no parameters).

    Attributes:
      up_indices: int ``[N_fine, 3]`` numpy coarse vertex indices.
      up_weights: float ``[N_fine, 3]`` numpy weights (rows sum to one).

    Example:
      >>> layer = Upsample(up_indices=np.zeros((5, 3), np.int32),
      ...                  up_weights=np.full((5, 3), 1 / 3, np.float32))
      >>> layer.apply({}, jnp.ones((2, 3, 4))).shape
      (2, 5, 4)
    """

    up_indices: Any
    up_weights: Any

    def __call__(self, x: jax.Array) -> jax.Array:
        """Maps ``[..., M, C]`` to ``[..., N_fine, C]``."""
        return upsample(x, self.up_indices, self.up_weights)
