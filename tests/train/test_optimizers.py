"""The spiral decoders' optimizer against a numpy Adam with L2 decay and a per-epoch step decay."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.train import create_optimizer


def _numpy_adam_l2(grads, params, lr, weight_decay, decay_rate, steps_per_epoch):
    m = np.zeros_like(params)
    v = np.zeros_like(params)
    out = []
    p = params.copy()
    for t, g in enumerate(grads, start=1):
        g = g + weight_decay * p
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
        rate = lr * decay_rate ** ((t - 1) // steps_per_epoch)
        p = p - rate * m_hat / (np.sqrt(v_hat) + 1e-8)
        out.append(p.copy())
    return out


def test_adam_with_l2_and_epoch_decay_matches_numpy(rng):
    params = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(7)]
    tx = create_optimizer(1e-2, weight_decay=0.1, decay_rate=0.5, steps_per_epoch=3)
    p = jnp.asarray(params, jnp.float32)
    state = tx.init(p)
    want = _numpy_adam_l2(grads, params, 1e-2, 0.1, 0.5, 3)
    for g, expected in zip(grads, want, strict=True):
        updates, state = tx.update(jnp.asarray(g, jnp.float32), state, p)
        p = optax.apply_updates(p, updates)
        np.testing.assert_allclose(np.asarray(p), expected, rtol=1e-5, atol=1e-6)
    assert create_optimizer(1e-3, weight_decay=0, decay_rate=1, steps_per_epoch=0) is not None
    with pytest.raises(TypeError):
        create_optimizer(1e-3)
