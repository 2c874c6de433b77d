"""WGAN-GP terms against hand-computed cases, and the Fréchet distance against closed forms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from jaxface.losses import (
    frechet_distance,
    frechet_distance_from_stats,
    gradient_penalty,
    tangent_l1,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from jaxface.models import Motion3DGANCritic


@pytest.fixture
def keys():
    """Fresh PRNG keys of the RBG implementation, which compiles far faster on CPU than threefry."""

    def _gen():
        key = jax.random.key(0, impl="rbg")
        while True:
            key, sub = jax.random.split(key)
            yield sub

    return _gen()


def test_gradient_penalty_linear_critic(rng, keys):
    w = rng.normal(size=(6, 5)).astype(np.float32)
    real, fake = rng.normal(size=(2, 3, 6, 5)).astype(np.float32)
    critic = lambda x: jnp.sum(x * w, axis=(1, 2))  # gradient w at every point
    gp = jax.jit(lambda r, f, k: gradient_penalty(critic, r, f, k, weight=10.0))(
        real, fake, next(keys)
    )
    np.testing.assert_allclose(gp, 10.0 * (np.linalg.norm(w) - 1.0) ** 2, rtol=1e-5)
    unit = lambda x: jnp.sum(x * (w / np.linalg.norm(w)), axis=(1, 2))
    np.testing.assert_allclose(gradient_penalty(unit, real, fake, next(keys)), 0.0, atol=1e-9)


def test_gradient_penalty_quadratic_critic_per_example_alpha(rng, keys):
    real, fake = rng.normal(size=(2, 4, 7)).astype(np.float32)
    key = next(keys)
    critic = lambda x: 0.5 * jnp.sum(x**2, axis=1)  # gradient = the interpolate itself
    alpha = np.asarray(jax.random.uniform(key, (4, 1)))
    interp = real + alpha * (fake - real)
    expected = 3.0 * np.mean((np.linalg.norm(interp, axis=1) - 1.0) ** 2)
    np.testing.assert_allclose(
        gradient_penalty(critic, real, fake, key, weight=3.0), expected, rtol=1e-5
    )
    assert len(np.unique(alpha)) == 4


def test_gradient_penalty_with_flax_critic_closure(rng, keys):
    # One conv stage keeps the double-backward compile short; batch norm as in the official critic.
    critic = Motion3DGANCritic(channels=(4,), hidden=8, norm="batch")
    cond = jax.nn.one_hot(jnp.arange(3), 12)
    real, fake = rng.normal(size=(2, 3, 8, 16)).astype(np.float32)  # a small [B, T, F]
    params = jax.jit(critic.init)(next(keys), real, cond)
    key = next(keys)
    gp_fn = lambda p: gradient_penalty(lambda x: critic.apply(p, x, cond), real, fake, key)
    value_and_grad = jax.jit(jax.value_and_grad(gp_fn))
    gp, grads = value_and_grad(params)
    assert np.isfinite(float(gp)) and float(gp) >= 0
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(grads))
    # A critic with zero input gradient (exactly zero norm) still has a finite penalty gradient.
    gp0, g0 = value_and_grad(jax.tree_util.tree_map(jnp.zeros_like, params))
    np.testing.assert_allclose(gp0, 10.0, rtol=1e-6)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in jax.tree_util.tree_leaves(g0))


def test_wasserstein_terms(rng):
    real, fake = rng.normal(size=(2, 5))
    np.testing.assert_allclose(
        wasserstein_critic_loss(real, fake), fake.mean() - real.mean(), rtol=1e-6
    )
    np.testing.assert_allclose(wasserstein_generator_loss(fake), -fake.mean(), rtol=1e-6)
    a, b = rng.normal(size=(2, 2, 3, 4))
    np.testing.assert_allclose(tangent_l1(a, b), np.abs(a - b).mean(), rtol=1e-6)


def test_frechet_distance_diagonal_gaussians(rng):
    mu1, mu2 = rng.normal(size=(2, 6))
    v1, v2 = rng.uniform(0.1, 2.0, size=(2, 6))
    closed = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    np.testing.assert_allclose(
        frechet_distance_from_stats(mu1, np.diag(v1), mu2, np.diag(v2)), closed, rtol=1e-10
    )

    # Samples with exactly diagonal sample covariance: orthogonal +-1 columns of a Hadamard matrix.
    n = 16
    h = scipy.linalg.hadamard(n)[:, 1:7].astype(np.float64)  # columns sum to 0 and are orthogonal
    feats_a = mu1 + h * np.sqrt(v1 * (n - 1) / n)
    feats_b = mu2 + h[::-1] * np.sqrt(v2 * (n - 1) / n)
    np.testing.assert_allclose(np.cov(feats_a, rowvar=False), np.diag(v1), atol=1e-12)
    np.testing.assert_allclose(frechet_distance(feats_a, feats_b), closed, rtol=1e-8)
    assert abs(frechet_distance(feats_a, feats_a)) < 1e-8


def test_frechet_distance_singular_and_invalid(rng):
    # Fewer samples than features: singular covariances, handled by the eps fallback.
    a = rng.normal(size=(5, 20))
    b = rng.normal(size=(5, 20)) + 1.0
    d = frechet_distance(a, b)
    assert np.isfinite(d) and d > 0
    with pytest.raises(ValueError):
        frechet_distance(a, b[:, :3])
