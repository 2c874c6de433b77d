"""Square-root velocity function (SRVF) of a landmark curve and its inverse.

A landmark curve is an array ``[T, *point_shape]`` (e.g. ``[30, 68, 3]``): ``T`` frames of
landmarks, each frame flattened row-major to ``D = prod(point_shape)`` features
(``[x1, y1, z1, x2, ...]`` for ``[68, 3]``). The SRVF ``q`` has shape ``[T, D]`` (frames x
features), the layout used throughout :mod:`jaxface.manifold`.

Forward (official ``curve_to_q``): velocity ``v = gradient(curve, 1/T)`` (central differences
inside, one-sided at the ends, as ``numpy.gradient``), length ``L = sum_t |v_t| / T``,
``v <- v / L``, and ``q_t = v_t / sqrt(|v_t|)``, or ``q_t = 1e-4 * v_t`` where
``sqrt(|v_t|) <= 1e-4`` (the zero-velocity convention). After the length normalisation
``<q, q> = 1`` up to the frames caught by the guard, so ``q`` lies on the unit sphere of
:mod:`jaxface.manifold.sphere`. ``L`` is the curve's length (the "intensity" that
:func:`srvf_inverse` needs to restore the amplitude).

Inverse (paper eq. 4): ``curve_t = neutral + intensity * cumtrapz(q |q|)_t``. The official code
integrates over ``linspace(0, 1, T)`` (step ``1/(T-1)``) although the forward pass differentiated
with step ``1/T``; the default here is the consistent ``1/T``. See
:class:`jaxface.manifold.SphereConfig`.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

__all__ = ["srvf", "srvf_inverse", "time_gradient"]

# Official zero-velocity threshold on sqrt(|v_t|) and the factor applied below it.
_ZERO_VELOCITY_EPS = 1e-4


def _safe_frame_norm(x: jax.Array) -> jax.Array:
    """Euclidean norm over the last axis with a zero (finite) gradient at zero vectors."""
    sq = jnp.sum(x * x, axis=-1)
    positive = sq > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)


def time_gradient(x: jax.Array, spacing: float, *, axis: int = -2) -> jax.Array:
    """Derivative along ``axis`` like ``numpy.gradient(x, spacing, axis=axis)`` (first-order edges).

    Args:
      x: float array with at least 2 samples along ``axis``.
      spacing: sample spacing.
      axis: the time axis.

    Returns:
      Array of the shape of ``x``.
    """
    x = jnp.moveaxis(jnp.asarray(x), axis, 0)
    if x.shape[0] < 2:
        raise ValueError(f"Need at least 2 time samples, got {x.shape[0]}.")
    first = (x[1:2] - x[0:1]) / spacing
    last = (x[-1:] - x[-2:-1]) / spacing
    middle = (x[2:] - x[:-2]) / (2.0 * spacing)
    return jnp.moveaxis(jnp.concatenate([first, middle, last], axis=0), 0, axis)


def _flatten_time_major(curve: jax.Array, time_axis: int) -> tuple[jax.Array, tuple[int, ...]]:
    """Reshape ``[*batch, T, *point]`` to ``[*batch, T, D]``; returns it and the batch shape."""
    if not 0 <= time_axis < curve.ndim:
        raise ValueError(
            f"time_axis={time_axis} is out of range for an array of rank {curve.ndim}."
        )
    batch = curve.shape[:time_axis]
    num_features = math.prod(curve.shape[time_axis + 1 :])
    return curve.reshape(*batch, curve.shape[time_axis], num_features), batch


def srvf(
    curve: jax.Array,
    *,
    time_axis: int = 0,
    spacing: float | None = None,
    return_length: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """SRVF of a landmark curve, normalised to the unit sphere.

    NaN-free in value and gradient, including constant curves (``L = 0``; all velocities are then
    zero and ``q = 0``, which is off the sphere; such a curve has no direction of motion) and frames
    with zero velocity.

    Args:
      curve: ``[*batch, T, *point_shape]`` float array, e.g. ``[T, 68, 3]`` or ``[B, T, 204]``;
        the axes after ``time_axis`` are flattened row-major into ``D`` features.
      time_axis: index of the time axis; the axes before it are batch axes.
      spacing: time step of the derivative; ``None`` (default, official) is ``1/T``.
      return_length: also return the length ``L`` (intensity).

    Returns:
      ``q`` of shape ``[*batch, T, D]``, and with ``return_length`` also ``L`` of shape
      ``[*batch]``.

    Example:
      >>> import jax.numpy as jnp
      >>> t = jnp.linspace(0.0, 1.0, 30)[:, None, None]
      >>> q = srvf(t * jnp.ones((30, 68, 3)))
      >>> q.shape
      (30, 204)
    """
    curve = jnp.asarray(curve)
    x, _ = _flatten_time_major(curve, time_axis)
    num_frames = x.shape[-2]
    h = 1.0 / num_frames if spacing is None else spacing
    v = time_gradient(x, h, axis=-2)
    length = jnp.sum(_safe_frame_norm(v), axis=-1) / num_frames
    moving = length > 0
    v = v / jnp.where(moving, length, 1.0)[..., None, None]
    speed = _safe_frame_norm(v)
    big = speed > _ZERO_VELOCITY_EPS**2  # sqrt(|v_t|) > eps, without sqrt's infinite slope at 0
    root = jnp.sqrt(jnp.where(big, speed, 1.0))
    q = jnp.where(big[..., None], v / root[..., None], v * _ZERO_VELOCITY_EPS)
    if return_length:
        return q, length
    return q


def _split_point_shape(neutral_shape: tuple[int, ...], num_features: int) -> int:
    """Smallest number of trailing axes of ``neutral_shape`` with ``num_features`` elements."""
    prod = 1
    for k in range(1, len(neutral_shape) + 1):
        prod *= neutral_shape[-k]
        if prod == num_features:
            return k
    raise ValueError(
        f"The neutral shape {neutral_shape} has no trailing axes with {num_features} elements."
    )


def srvf_inverse(
    q: jax.Array,
    neutral: jax.Array,
    intensity: jax.Array | float = 1.0,
    *,
    spacing: float | str | None = None,
) -> jax.Array:
    """Landmark curve from an SRVF (paper eq. 4): ``neutral + intensity * cumtrapz(q |q|)``.

    ``|q_t|`` is the per-frame Euclidean norm. Frame 0 equals ``neutral``. With the default spacing
    ``srvf_inverse(srvf(c), c[0], L) ~ c`` where ``L`` is the length returned by :func:`srvf` (exact
    for curves linear in time; second-order accurate otherwise because the forward derivative is a
    finite difference).

    Args:
      q: ``[*batch, T, D]`` SRVF.
      neutral: ``[*batch, *point_shape]`` starting configuration (the normalised neutral
        landmarks, e.g. ``[68, 3]``), with ``prod(point_shape) = D``; ``point_shape`` is the
        shortest run of trailing axes with ``D`` elements. Batch axes broadcast against those of
        ``q``.
      intensity: ``[*batch]`` or scalar amplitude (the curve length ``L``; the official code uses
        a fixed 0.2).
      spacing: integration step. ``None`` or ``"forward"`` (default): ``1/T``, consistent with
        :func:`srvf`; ``"linspace"``: ``1/(T-1)``, the official code's ``linspace(0, 1, T)``; or
        a float.

    Returns:
      ``[*batch, T, *point_shape]`` landmark curve.
    """
    q = jnp.asarray(q)
    neutral = jnp.asarray(neutral)
    if q.ndim < 2:
        raise ValueError(f"q must have shape [..., T, D]; got {q.shape}.")
    num_frames, num_features = q.shape[-2:]
    if spacing is None or spacing == "forward":
        h = 1.0 / num_frames
    elif spacing == "linspace":
        h = 1.0 / (num_frames - 1)
    elif isinstance(spacing, str):
        raise ValueError(f"spacing must be 'forward', 'linspace' or a float, got {spacing!r}.")
    else:
        h = float(spacing)
    k = _split_point_shape(neutral.shape, num_features)
    point_shape = neutral.shape[neutral.ndim - k :]
    neutral_flat = neutral.reshape(*neutral.shape[: neutral.ndim - k], num_features)

    f = q * _safe_frame_norm(q)[..., None]
    steps = 0.5 * h * (f[..., 1:, :] + f[..., :-1, :])
    integral = jnp.concatenate([jnp.zeros_like(f[..., :1, :]), jnp.cumsum(steps, axis=-2)], axis=-2)
    intensity = jnp.asarray(intensity, dtype=integral.dtype)
    curve = neutral_flat[..., None, :] + intensity[..., None, None] * integral
    return curve.reshape(*curve.shape[:-1], *point_shape)
