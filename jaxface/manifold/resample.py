"""Arc-length resampling of landmark curves to a fixed number of frames.

The official pipeline (``ReSampleCurve``) resamples every sub-sequence to 30 frames uniformly spaced
in arc length: the normalised cumulative chord length ``s_t = sum_{r <= t} |x_r - x_{r-1}| / total``
is the new time, and each feature is linearly interpolated at ``linspace(0, 1, num)``. The result
keeps only the path of the motion; its timing (speed) is discarded.

Repeated frames (zero-length chords) give repeated values of ``s``; MATLAB's ``interp1`` cannot
handle those, so the official code nudges them apart by ``1e-4``. Here the interpolation picks, for
each target, the last sample with ``s <= target``, which is always the start of a chord of positive
length (or the end of the curve), so no nudging is needed. A constant curve (zero total length)
resamples to its first frame repeated.

:func:`resample_arclength` is pure JAX (jittable, differentiable, NaN-free gradients);
:func:`resample_arclength_np` is a NumPy twin for data preparation (no JAX, any number of input
frames without recompiling).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["resample_arclength", "resample_arclength_np"]


def _resample_single(x: jax.Array, num: int) -> jax.Array:
    """Resample ``[T, D]`` to ``[num, D]``."""
    num_frames = x.shape[0]
    diffs = x[1:] - x[:-1]
    sq = jnp.sum(diffs * diffs, axis=-1)
    positive = sq > 0
    chords = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    cum = jnp.concatenate([jnp.zeros((1,), x.dtype), jnp.cumsum(chords)])
    total = cum[-1]
    moving = total > 0
    s = cum / jnp.where(moving, total, 1.0)
    targets = jnp.linspace(0.0, 1.0, num, dtype=x.dtype)
    idx = jnp.clip(jnp.searchsorted(s, targets, side="right") - 1, 0, num_frames - 2)
    s0, s1 = s[idx], s[idx + 1]
    width = s1 - s0
    has_width = width > 0
    w = jnp.where(has_width, (targets - s0) / jnp.where(has_width, width, 1.0), 0.0)
    w = jnp.clip(w, 0.0, 1.0)[:, None]
    out = x[idx] * (1.0 - w) + x[idx + 1] * w
    return jnp.where(moving, out, jnp.broadcast_to(x[0], out.shape))


def resample_arclength(curve: jax.Array, num: int = 30, *, time_axis: int = 0) -> jax.Array:
    """Resample a curve to ``num`` frames uniformly spaced in arc length.

    Args:
      curve: ``[*batch, T, *point_shape]`` float array with ``T >= 2`` (e.g. ``[T, 68, 3]`` or
        ``[T, 204]``); distances are Euclidean over all of ``point_shape``.
      num: number of output frames (static).
      time_axis: index of the time axis; the axes before it are batch axes.

    Returns:
      ``[*batch, num, *point_shape]`` array; the first and last frames equal those of ``curve``.

    Example:
      >>> import jax.numpy as jnp
      >>> curve = jnp.array([[0.0], [1.0], [3.0]])
      >>> [round(float(x), 4) for x in resample_arclength(curve, 4)[:, 0]]
      [0.0, 1.0, 2.0, 3.0]
    """
    curve = jnp.asarray(curve)
    if not jnp.issubdtype(curve.dtype, jnp.floating):
        curve = curve.astype(jnp.float32)
    if not 0 <= time_axis < curve.ndim:
        raise ValueError(
            f"time_axis={time_axis} is out of range for an array of rank {curve.ndim}."
        )
    batch = curve.shape[:time_axis]
    num_frames = curve.shape[time_axis]
    point_shape = curve.shape[time_axis + 1 :]
    if num_frames < 2:
        raise ValueError(f"Need at least 2 frames to resample, got {num_frames}.")
    x = curve.reshape(-1, num_frames, math.prod(point_shape))
    out = jax.vmap(lambda c: _resample_single(c, num))(x)
    return out.reshape(*batch, num, *point_shape)


def resample_arclength_np(curve: np.ndarray, num: int = 30) -> np.ndarray:
    """NumPy version of :func:`resample_arclength` for a single curve (same tie and zero-length
    rules).

    Args:
      curve: ``[T, *point_shape]`` array with ``T >= 2``.
      num: number of output frames.

    Returns:
      ``[num, *point_shape]`` array of ``curve``'s float dtype (float64 for integer input).
    """
    curve = np.asarray(curve)
    if not np.issubdtype(curve.dtype, np.floating):
        curve = curve.astype(np.float64)
    num_frames = curve.shape[0]
    if num_frames < 2:
        raise ValueError(f"Need at least 2 frames to resample, got {num_frames}.")
    x = curve.reshape(num_frames, -1)
    chords = np.linalg.norm(np.diff(x, axis=0), axis=-1)
    cum = np.concatenate([[0.0], np.cumsum(chords)])
    total = cum[-1]
    if total <= 0:
        return np.broadcast_to(curve[:1], (num, *curve.shape[1:])).copy()
    s = cum / total
    targets = np.linspace(0.0, 1.0, num)
    idx = np.clip(np.searchsorted(s, targets, side="right") - 1, 0, num_frames - 2)
    width = s[idx + 1] - s[idx]
    safe = np.where(width > 0, width, 1.0)
    w = np.clip(np.where(width > 0, (targets - s[idx]) / safe, 0.0), 0.0, 1.0)[:, None]
    out = x[idx] * (1.0 - w) + x[idx + 1] * w
    return out.astype(curve.dtype).reshape(num, *curve.shape[1:])
