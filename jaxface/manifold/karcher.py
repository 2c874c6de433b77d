"""Karcher (intrinsic) mean on the SRVF sphere, and the choice of the GAN's reference point."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

from jaxface.manifold.sphere import SphereConfig, exp_map, log_map, norm, project_to_sphere

__all__ = ["karcher_mean", "reference_point"]


def karcher_mean(
    qs: jax.Array,
    *,
    max_iters: int = 100,
    step: float = 0.5,
    tol: float = 1e-5,
    init: jax.Array | None = None,
    return_iterations: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Intrinsic mean of points on the sphere by Riemannian gradient descent.

    Iterates ``v = mean_i log_mu(q_i)``, ``mu <- exp_mu(step * v)`` (renormalised to the sphere
    against round-off) until ``|v| < tol`` or ``max_iters`` updates, in a ``lax.while_loop``
    (jittable; not reverse-differentiable). This is the TPAMI code's ``Karcher_Mean.m`` (which
    starts at the first sample and uses ``step = 0.9`` and ``tol = 0.01``) with a smaller step and
    tolerance. The mean is unique when the points lie in an open hemisphere.

    Args:
      qs: ``[M, T, D]`` points on the sphere.
      max_iters: maximal number of updates (static).
      step: update step in ``(0, 1]``.
      tol: stop once the norm of the mean log map falls below this.
      init: ``[T, D]`` starting point; ``None`` starts at ``qs[0]``.
      return_iterations: also return the number of updates made.

    Returns:
      ``[T, D]`` mean, and with ``return_iterations`` an int32 scalar.
    """
    qs = jnp.asarray(qs)
    if qs.ndim != 3:
        raise ValueError(f"qs must have shape [M, T, D]; got {qs.shape}.")
    mu0 = project_to_sphere(qs[0] if init is None else jnp.asarray(init, qs.dtype))

    def gradient(mu):
        v = jnp.mean(log_map(mu[None], qs), axis=0)
        return v, norm(v)

    def cond(state):
        i, _, _, v_norm = state
        return (i < max_iters) & (v_norm >= tol)

    def body(state):
        i, mu, v, _ = state
        mu = project_to_sphere(exp_map(mu, step * v))
        v, v_norm = gradient(mu)
        return i + 1, mu, v, v_norm

    v0, n0 = gradient(mu0)
    iters, mu, _, _ = lax.while_loop(cond, body, (jnp.int32(0), mu0, v0, n0))
    if return_iterations:
        return mu, iters
    return mu


def reference_point(
    qs: jax.Array, config: SphereConfig | None = None, **karcher_kwargs
) -> jax.Array:
    """The point whose tangent space hosts the GAN, as chosen by ``config.reference``.

    Args:
      qs: ``[M, T, D]`` training SRVFs on the sphere.
      config: ``reference == "mean"`` (paper) returns :func:`karcher_mean` of ``qs``; ``"sample"``
        (official code) returns ``qs[config.reference_index]``. ``None``: ``SphereConfig()``.
      **karcher_kwargs: forwarded to :func:`karcher_mean`.

    Returns:
      ``[T, D]`` reference point.
    """
    qs = jnp.asarray(qs)
    config = SphereConfig() if config is None else config
    if config.reference == "sample":
        return qs[config.reference_index]
    return karcher_mean(qs, **karcher_kwargs)
