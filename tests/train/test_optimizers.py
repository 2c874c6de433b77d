"""The optimizers: the spiral decoders' Adam with L2 decay and per-epoch step decay against numpy,
and the whole-run decay schedules against their formulas."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.train import create_optimizer, decay_schedule


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


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_decay_schedule_matches_its_formula(kind):
    lr, total, final = 3e-4, 40, 0.1
    schedule = decay_schedule(kind, lr, total_steps=total, final_fraction=final)
    steps = np.arange(0, 50)
    t = np.minimum(steps, total) / total
    if kind == "linear":
        expected = lr * (1 - t) + lr * final * t
    else:
        expected = lr * (final + (1 - final) * 0.5 * (1 + np.cos(np.pi * t)))
    got = np.array([float(schedule(s)) for s in steps])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-12)


def test_constant_schedule_is_the_plain_rate():
    assert decay_schedule("constant", 1e-3, total_steps=0) == 1e-3


@pytest.mark.parametrize("kind, total, final, match", [
    ("step", 10, 0.0, "unknown learning-rate schedule 'step'"),
    ("linear", 0, 0.0, "total_steps >= 1"),
    ("cosine", 10, 1.5, r"final_fraction must lie in \[0, 1\]"),
])
def test_decay_schedule_rejects_bad_arguments(kind, total, final, match):
    with pytest.raises(ValueError, match=match):
        decay_schedule(kind, 1e-3, total_steps=total, final_fraction=final)
