"""Wasserstein-GAN losses for Motion3DGAN and the Fréchet distance used for FID.

Paper eq. 2-3: the critic minimises ``E[D(fake)] - E[D(real)] + lambda * GP`` on tangent vectors
(``real = log_p(q)``, ``fake = log_p(exp_p(G(z, c)))``), and the generator minimises ``-E[D(fake)]``
plus ``alpha2 * L_r`` with the tangent-space L1 reconstruction :func:`tangent_l1` (the official code
adds the mean geodesic distance, :func:`jaxface.manifold.geodesic_distance`, with the same weight).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

__all__ = [
    "frechet_distance",
    "frechet_distance_from_stats",
    "gradient_penalty",
    "tangent_l1",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
]


def gradient_penalty(
    critic_fn: Callable[[jax.Array], jax.Array],
    real: jax.Array,
    fake: jax.Array,
    key: jax.Array,
    *,
    weight: float = 10.0,
) -> jax.Array:
    """WGAN-GP penalty ``weight * mean_b (|grad_x D(x_b)|_2 - 1)^2`` at random interpolates.

    ``x_b = real_b + a_b (fake_b - real_b)`` with one ``a_b ~ U(0, 1)`` per example. The gradient is
    that of ``sum_b D(x_b)`` (with a per-example critic this is each example's own gradient; with
    the official batch-norm critic it reproduces TensorFlow's ``tf.gradients`` of the batch output).
    The norm is the plain Euclidean norm over all of an example's entries, and it is guarded so the
    penalty's own gradient is finite when a critic gradient is exactly zero.

    Args:
      critic_fn: maps ``[B, ...]`` inputs to ``[B]`` (or ``[B, 1]``) scores; typically a closure
        over the critic's params and condition, e.g.
        ``lambda x: critic.apply(params, x, cond)``.
      real: ``[B, ...]`` real samples (tangent vectors ``[B, T, F]``).
      fake: ``[B, ...]`` generated samples, same shape.
      key: PRNG key for the interpolation weights.
      weight: ``lambda`` (10 in the paper and the official code).

    Returns:
      float32 scalar.
    """
    real, fake = jnp.asarray(real), jnp.asarray(fake)
    alpha = jax.random.uniform(key, (real.shape[0],) + (1,) * (real.ndim - 1), real.dtype)
    interpolates = real + alpha * (fake - real)
    grads = jax.grad(lambda x: jnp.sum(critic_fn(x)))(interpolates)
    sq = jnp.sum(jnp.square(grads).reshape(grads.shape[0], -1), axis=-1)
    positive = sq > 0
    grad_norm = jnp.where(positive, jnp.sqrt(jnp.where(positive, sq, 1.0)), 0.0)
    return weight * jnp.mean(jnp.square(grad_norm - 1.0))


def wasserstein_critic_loss(real_scores: jax.Array, fake_scores: jax.Array) -> jax.Array:
    """Critic loss ``mean(D(fake)) - mean(D(real))`` (add :func:`gradient_penalty`).

    Args:
      real_scores: ``[B]`` critic scores of real samples.
      fake_scores: ``[B']`` critic scores of generated samples.

    Returns:
      float32 scalar.
    """
    return jnp.mean(fake_scores) - jnp.mean(real_scores)


def wasserstein_generator_loss(fake_scores: jax.Array) -> jax.Array:
    """Generator adversarial loss ``-mean(D(fake))``.

    Args:
      fake_scores: ``[B]`` critic scores of generated samples.

    Returns:
      float32 scalar.
    """
    return -jnp.mean(fake_scores)


def tangent_l1(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Reconstruction loss ``L_r`` (paper eq. 3): mean absolute difference of tangent vectors.

    The mean over all entries (as in the official code) rather than the sum of the paper's L1 norm;
    the two differ by the constant ``B * T * F``, which rescales ``alpha2``.

    Args:
      pred: ``[B, T, F]`` generated tangent vectors ``log_p(exp_p(G(z, c)))``.
      target: ``[B, T, F]`` real tangent vectors ``log_p(q)`` paired by batch index.

    Returns:
      float32 scalar.
    """
    return jnp.mean(jnp.abs(pred - target))


def frechet_distance_from_stats(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, *, eps: float = 1e-6
) -> float:
    """Fréchet distance between Gaussians: ``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``.

    The matrix square root is ``scipy.linalg.sqrtm``; if it is not finite (singular product),
    ``eps * I`` is added to both covariances and it is recomputed. A complex result with a
    negligible imaginary diagonal is replaced by its real part.

    Args:
      mu1: ``[F]`` mean of the first distribution.
      sigma1: ``[F, F]`` covariance of the first distribution.
      mu2: ``[F]`` mean of the second distribution.
      sigma2: ``[F, F]`` covariance of the second distribution.
      eps: diagonal offset of the fallback.

    Returns:
      Python float.

    Raises:
      ValueError: if the square root has a significant imaginary part.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"Mismatched statistics: {mu1.shape}/{mu2.shape}, {sigma1.shape}/{sigma2.shape}."
        )
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"Imaginary component {np.max(np.abs(covmean.imag))} in the covariance square root."
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def frechet_distance(feats_a: np.ndarray, feats_b: np.ndarray, *, eps: float = 1e-6) -> float:
    """Fréchet distance (FID) between two feature sets, from their means and unbiased covariances.

    Args:
      feats_a: ``[N, F]`` features (e.g. the 512-d classifier features of real sequences).
      feats_b: ``[M, F]`` features of generated sequences.
      eps: see :func:`frechet_distance_from_stats`.

    Returns:
      Python float.
    """
    a = np.asarray(feats_a, np.float64)
    b = np.asarray(feats_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"Features must be [N, F] and [M, F]; got {a.shape} and {b.shape}.")
    return frechet_distance_from_stats(
        a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False), eps=eps
    )
