"""The SRVF hypersphere: inner product, exponential/logarithm maps, geodesics.

An SRVF sampled at ``T`` frames is an array ``q`` of shape ``[..., T, D]`` (frames x features;
``D = 204`` for 68 landmarks in 3D, each frame flattened row-major as ``[x1, y1, z1, x2, ...]``).
Leading axes are batch axes and broadcast. The inner product approximates the
``L2([0, 1], R^D)`` integral with a Riemann sum over the ``T`` samples,

    <q1, q2> = sum_{t, d} q1[t, d] * q2[t, d] / T,

so a unit-norm SRVF has Frobenius norm ``sqrt(T)``. This is the convention of the official
Motion3DGAN code.

Every map is written so that it returns exact values and finite gradients at the singular points of
its textbook formula: ``theta -> 0`` (``q = p``, zero tangent vectors) uses Taylor series selected
by a double ``jnp.where`` (the unused branch is evaluated at a harmless argument so that no NaN or
inf leaks into ``jax.grad``), and angles are computed as ``atan2(||u||, <p, q>)`` rather than
``arccos`` (whose derivative is infinite at +-1). At the antipode (``theta = pi``) the logarithm map
is ill-defined (every direction is a shortest geodesic); see :func:`log_map`.

Differences between the paper and the official code are collected in :class:`SphereConfig`; the
defaults follow the paper.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

__all__ = [
    "SphereConfig",
    "exp_map",
    "geodesic_distance",
    "geodesic_path",
    "inner",
    "log_map",
    "norm",
    "project_to_sphere",
    "project_to_tangent",
]

# Below this squared angle the Taylor series are used (theta < 1e-3; the truncation error, theta^6 /
# 720, is below float64 resolution).
_SERIES_THETA2 = 1e-6
# Squared norm of the log-map direction below which the direction is treated as undefined (see
# `log_map`).
_TINY_U2 = 1e-24


@dataclasses.dataclass(frozen=True)
class SphereConfig:
    """Choices where the official Motion3DGAN code departs from the paper (defaults: the paper).

    The dataclass is frozen and hashable, so it can be closed over or passed as a static argument
    under ``jax.jit``.

    Attributes:
      cos_clip: If set, :func:`log_map` and :func:`geodesic_distance` compute the angle as
        ``arccos(clip(<p, q>, -cos_clip, cos_clip))``, as the official TensorFlow code does with
        ``0.98``. This floors every angle at ``arccos(0.98) = 0.2003`` rad, so even
        ``log_map(p, p)`` has a length of 0.2 (in a direction set by round-off). ``None``
        (default, the paper) uses the exact angle.
      reference: Where the tangent space of the GAN lives. ``"mean"`` (default, the paper: "the
        mean SRVF of the CoMA data") is the Karcher mean of the training SRVFs; ``"sample"``
        (official code) is one training SRVF, ``qs[reference_index]``. See
        :func:`jaxface.manifold.reference_point`.
      reference_index: The training sample used when ``reference == "sample"``.
      inverse_spacing: Time step of the cumulative integral in
        :func:`jaxface.manifold.srvf_inverse`. ``"forward"`` (default) is ``1/T``, the step
        :func:`jaxface.manifold.srvf` differentiates with, so that the inverse reproduces the
        curve; ``"linspace"`` (official code) is ``1/(T-1)``, which inflates the recovered
        motion by ``T/(T-1)`` (3.4% for ``T = 30``).
    """

    cos_clip: float | None = None
    reference: Literal["mean", "sample"] = "mean"
    reference_index: int = 0
    inverse_spacing: Literal["forward", "linspace"] = "forward"

    def __post_init__(self):
        if self.cos_clip is not None and not 0.0 < self.cos_clip <= 1.0:
            raise ValueError(f"cos_clip must lie in (0, 1], got {self.cos_clip}.")
        if self.reference not in ("mean", "sample"):
            raise ValueError(f"reference must be 'mean' or 'sample', got {self.reference!r}.")
        if self.inverse_spacing not in ("forward", "linspace"):
            raise ValueError(
                f"inverse_spacing must be 'forward' or 'linspace', got {self.inverse_spacing!r}."
            )

    @classmethod
    def official(cls) -> "SphereConfig":
        """The released code's choices: clip 0.98, one sample as reference, ``1/(T-1)`` inverse."""
        return cls(cos_clip=0.98, reference="sample", inverse_spacing="linspace")


def _check_rank(*arrays: jax.Array) -> None:
    for a in arrays:
        if a.ndim < 2:
            raise ValueError(f"SRVFs must have shape [..., T, D]; got an array of shape {a.shape}.")


def inner(q1: jax.Array, q2: jax.Array) -> jax.Array:
    """Inner product of the SRVF space, ``sum(q1 * q2) / T`` over the last two axes.

    Args:
      q1: ``[..., T, D]`` float array.
      q2: ``[..., T, D]`` float array (broadcasts against ``q1``).

    Returns:
      ``[...]`` float array.

    Example:
      >>> import jax.numpy as jnp
      >>> q = jnp.ones((30, 204)) / jnp.sqrt(204.0)
      >>> round(float(inner(q, q)), 5)
      1.0
    """
    q1, q2 = jnp.asarray(q1), jnp.asarray(q2)
    _check_rank(q1, q2)
    return jnp.sum(q1 * q2, axis=(-2, -1)) / q1.shape[-2]


def _safe_sqrt(x: jax.Array) -> jax.Array:
    """``sqrt(x)`` for ``x >= 0`` with a zero (not infinite) gradient at ``x = 0``."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def norm(q: jax.Array) -> jax.Array:
    """Norm induced by :func:`inner`, with a finite (zero) gradient at ``q = 0``.

    Args:
      q: ``[..., T, D]`` float array.

    Returns:
      ``[...]`` float array.
    """
    return _safe_sqrt(inner(q, q))


def project_to_sphere(q: jax.Array) -> jax.Array:
    """Rescale ``q`` to unit norm (a zero array is returned unchanged).

    Args:
      q: ``[..., T, D]`` float array.

    Returns:
      ``[..., T, D]`` array with ``norm == 1`` wherever ``q != 0``.
    """
    q = jnp.asarray(q)
    n = norm(q)
    n = jnp.where(n > 0, n, 1.0)
    return q / n[..., None, None]


def project_to_tangent(p: jax.Array, v: jax.Array) -> jax.Array:
    """Orthogonal projection of ``v`` onto the tangent space at ``p``: ``v - <v, p> / <p, p> * p``.

    Args:
      p: ``[..., T, D]`` base point (normally of unit norm; any non-zero ``p`` works).
      v: ``[..., T, D]`` vector (broadcasts against ``p``).

    Returns:
      ``[..., T, D]`` vector with ``<result, p> = 0``.
    """
    p, v = jnp.asarray(p), jnp.asarray(v)
    pp = inner(p, p)
    pp = jnp.where(pp > 0, pp, 1.0)
    return v - (inner(v, p) / pp)[..., None, None] * p


def exp_map(p: jax.Array, v: jax.Array) -> jax.Array:
    """Exponential map at ``p``: ``cos(|v|) p + sin(|v|) / |v| v``.

    ``v`` is used as given (not projected): for a tangent ``v`` and a unit ``p`` the result lies on
    the sphere; a non-tangent ``v`` gives an off-sphere point, as in the official code, whose
    generator output is not tangent. For ``|v| < 1e-3`` both coefficients are evaluated by their
    Taylor series in ``|v|^2``, so ``exp_map(p, 0) = p`` exactly and the gradient at ``v = 0`` is
    finite (it is the identity on ``v``).

    Args:
      p: ``[..., T, D]`` base point on the sphere.
      v: ``[..., T, D]`` tangent vector at ``p`` (broadcasts against ``p``).

    Returns:
      ``[..., T, D]`` point.
    """
    p, v = jnp.asarray(p), jnp.asarray(v)
    theta2 = inner(v, v)
    small = theta2 < _SERIES_THETA2
    theta = jnp.sqrt(jnp.where(small, 1.0, theta2))
    cos_t = jnp.where(small, 1.0 - theta2 / 2.0 + theta2**2 / 24.0, jnp.cos(theta))
    sinc_t = jnp.where(small, 1.0 - theta2 / 6.0 + theta2**2 / 120.0, jnp.sin(theta) / theta)
    return cos_t[..., None, None] * p + sinc_t[..., None, None] * v


def _split(p: jax.Array, q: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``c = <p, q>`` and the part ``u`` of ``q`` orthogonal to ``p``.

    ``u`` is computed from the difference ``d = q - p`` as ``u = d - <d, p> / <p, p> p`` (equal to
    ``q - <q, p> / <p, p> p``), which avoids cancellation for nearby points and makes ``u`` exactly
    zero for ``q = p``.
    """
    c = inner(p, q)
    d = q - p
    pp = inner(p, p)
    pp = jnp.where(pp > 0, pp, 1.0)
    u = d - (inner(d, p) / pp)[..., None, None] * p
    return c, u


def _log_ratio(c: jax.Array, u2: jax.Array, cos_clip: float | None) -> jax.Array:
    """The factor ``theta / |u|`` of the log map, guarded at ``|u| -> 0``.

    Args:
      c: ``[...]`` inner product ``<p, q>``.
      u2: ``[...]`` squared norm of ``u = q - <p, q> p``.
      cos_clip: See :class:`SphereConfig`.

    Returns:
      ``[...]`` float array.
    """
    if cos_clip is not None:
        # Official behaviour: theta = arccos(clip(c)); zero vector where u vanishes.
        defined = u2 >= _TINY_U2
        u_norm = jnp.sqrt(jnp.where(defined, u2, 1.0))
        theta = jnp.arccos(jnp.clip(c, -cos_clip, cos_clip))
        return jnp.where(defined, theta / u_norm, 0.0)
    # theta = atan2(|u|, c). Near theta = 0 (c > 0, |u| << c): atan(x)/|u| = (1 - x^2/3 + x^4/5)/c
    # with x = |u|/c.
    series = (c > 0.5) & (u2 < _SERIES_THETA2 * c**2)
    exact = ~series & (u2 >= _TINY_U2)
    c_s = jnp.where(series, c, 1.0)
    x2 = jnp.where(series, u2, 0.0) / c_s**2
    ratio_series = (1.0 - x2 / 3.0 + x2**2 / 5.0) / c_s
    u_norm = jnp.sqrt(jnp.where(exact, u2, 1.0))
    ratio_exact = jnp.arctan2(u_norm, jnp.where(exact, c, 1.0)) / u_norm
    return jnp.where(series, ratio_series, jnp.where(exact, ratio_exact, 0.0))


def log_map(p: jax.Array, q: jax.Array, *, cos_clip: float | None = None) -> jax.Array:
    """Logarithm map at ``p``: the tangent vector at ``p`` pointing to ``q`` with length ``theta``.

    With ``u = q - <p, q> p`` (the part of ``q`` orthogonal to ``p``) the result is
    ``u * theta / |u|`` where ``theta = atan2(|u|, <p, q>)`` (equal to ``arccos<p, q>`` for unit
    ``q``; for an off-sphere ``q`` it is the angle between ``p`` and ``q``). Guards:

    * ``theta -> 0``: ``theta / |u|`` is evaluated by its series, so ``log_map(p, p) = 0`` exactly
      and gradients are finite (the derivative of the map at ``q = p`` is the tangent projection).
    * ``theta -> pi``: the map is ill-defined at the antipode ``q = -p`` (every direction is a
      minimising geodesic). When ``|u|^2 < 1e-24`` and ``<p, q> <= 0.5`` (an antipodal ``q``, or a
      ``q`` near zero) the zero vector is returned; just outside that region the result has length
      close to ``pi`` in the direction of ``u``, which is dominated by round-off. Values and
      gradients stay finite throughout.

    Args:
      p: ``[..., T, D]`` base point on the sphere.
      q: ``[..., T, D]`` point (broadcasts against ``p``).
      cos_clip: Official-code option, see :class:`SphereConfig` (``0.98`` there); ``None``
        (default, the paper) uses the exact angle.

    Returns:
      ``[..., T, D]`` tangent vector at ``p``.
    """
    p, q = jnp.asarray(p), jnp.asarray(q)
    c, u = _split(p, q)
    ratio = _log_ratio(c, inner(u, u), cos_clip)
    return ratio[..., None, None] * u


def geodesic_distance(p: jax.Array, q: jax.Array, *, cos_clip: float | None = None) -> jax.Array:
    """Great-circle distance ``theta`` between ``p`` and ``q``.

    Computed as ``atan2(|q - <p, q> p|, <p, q>)`` (accurate near 0 and pi; equals ``arccos<p, q>``
    for unit inputs). Like ``|x|`` at 0, the distance is not differentiable at ``q = p``; its
    gradient there is defined as zero.

    Args:
      p: ``[..., T, D]`` point on the sphere.
      q: ``[..., T, D]`` point on the sphere (broadcasts against ``p``).
      cos_clip: Official-code option: ``arccos(clip(<p, q>, -cos_clip, cos_clip))`` (``0.98``
        there). Not symmetric in round-off but symmetric in exact arithmetic.

    Returns:
      ``[...]`` float array in ``[0, pi]``.
    """
    p, q = jnp.asarray(p), jnp.asarray(q)
    c, u = _split(p, q)
    if cos_clip is not None:
        return jnp.arccos(jnp.clip(c, -cos_clip, cos_clip))
    return jnp.arctan2(norm(u), c)


def geodesic_path(q1: jax.Array, q2: jax.Array, taus: jax.Array) -> jax.Array:
    """Points ``psi(tau)`` of the shortest great circle from ``q1`` (tau 0) to ``q2`` (tau 1).

    ``psi(tau) = (sin((1 - tau) theta) q1 + sin(tau theta) q2) / sin(theta)`` (paper, Sec. 4.4),
    evaluated as ``exp_map(q1, tau * log_map(q1, q2))``, which is the same curve for unit inputs and
    inherits the guards of both maps (``q1 = q2`` gives a constant path; antipodal inputs give the
    constant path at ``q1``).

    Args:
      q1: ``[..., T, D]`` start point on the sphere.
      q2: ``[..., T, D]`` end point on the sphere (broadcasts against ``q1``).
      taus: ``[K]`` path parameters (``[0, 1]`` interpolates, values outside extrapolate).

    Returns:
      ``[..., K, T, D]`` points.
    """
    q1, q2 = jnp.asarray(q1), jnp.asarray(q2)
    taus = jnp.asarray(taus)
    if taus.ndim != 1:
        raise ValueError(f"taus must have shape [K]; got {taus.shape}.")
    v = log_map(q1, q2)
    return exp_map(q1[..., None, :, :], taus[:, None, None] * v[..., None, :, :])
