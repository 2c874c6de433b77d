"""S2D-Dec's optimizer against a numpy Adam with L2 decay and a per-epoch step decay."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.s2d import create_optimizer


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


def test_validation_split_and_plateau_stop(tiny_faces4d, tmp_path):
    from jaxface.configs import s2d
    from jaxface.s2d import load_protocol, train_s2d
    from jaxface.s2d.data import validation_sequences

    seqs = list(range(10))
    train, val = validation_sequences(seqs, 0.25, seed=3)
    assert len(val) == 2 and sorted(train + val) == seqs
    assert validation_sequences(seqs, 0.25, seed=3) == (train, val)
    assert validation_sequences(seqs, 0.0, seed=3) == (seqs, [])
    with pytest.raises(ValueError, match="validation.fraction must be in"):
        validation_sequences(seqs, 1.0, seed=3)

    data_dir, _ = tiny_faces4d
    config = s2d.get_config("test")
    config.data_dir = data_dir
    config.validation.fraction = 0.2
    config.validation.patience = 2
    config.validation.min_delta_mm = 1.0  # stops as soon as the error moves by less than 1 mm
    config.optim.num_epochs = 40
    data = load_protocol(config)
    assert data.validation is not None
    held = {(s, e) for s, e in zip(data.validation.subjects, data.validation.expressions,
                                   strict=True)}
    trained = set(zip(data.train.subjects, data.train.expressions, strict=True))
    assert held and not held & trained
    _, info = train_s2d(config, str(tmp_path), data)
    history = info["validation"]
    assert info["stopped_early"] and info["steps"] < 40 * (len(data.train) // 8)
    assert len(history) >= 3 and all(np.isfinite(h["val_error_mm"]) for h in history)
    assert history[-1]["step"] == info["steps"]
