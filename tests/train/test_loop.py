"""The shared training loop, supervised steps and fixed-shape batched inference."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.train import (
    create_train_state,
    data_mesh,
    fit,
    make_supervised_step,
    map_in_batches,
)

NUM, DIM, BATCH = 32, 3, 8


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM, DIM)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
    return x, y


def _loss(params, batch):
    pred = batch["x"] @ params["w"] + params["b"]
    return jnp.mean((pred - batch["y"]) ** 2), {"abs_err": jnp.mean(jnp.abs(pred - batch["y"]))}


class _Linear(nn.Module):
    @nn.compact
    def __call__(self, x):
        w = self.param("w", nn.initializers.zeros, (DIM,))
        b = self.param("b", nn.initializers.zeros, ())
        return x @ w + b


def _state(lr=0.1):
    return create_train_state(_Linear(), jax.random.key(0), (jnp.zeros((1, DIM)),), optax.sgd(lr))


def _batches(epoch):
    x, y = _data()
    order = np.random.default_rng([5, epoch]).permutation(NUM)
    for i in range(NUM // BATCH):
        idx = order[i * BATCH:(i + 1) * BATCH]
        yield {"x": x[idx], "y": y[idx]}


def test_supervised_step_matches_numpy_gradient_descent():
    state = _state(lr=0.1)
    assert state.step.dtype == jnp.int32
    step = make_supervised_step(_loss)
    batch = next(_batches(0))
    new, metrics = step(state, batch, jax.random.key(0))
    # numpy reference: one SGD step on the mean squared error from w = 0, b = 0
    x, y = batch["x"], batch["y"]
    resid = -y
    grad_w = 2 * x.T @ resid / len(y)
    grad_b = 2 * resid.mean()
    np.testing.assert_allclose(new.params["w"], -0.1 * grad_w, rtol=1e-5)
    np.testing.assert_allclose(new.params["b"], -0.1 * grad_b, rtol=1e-5)
    assert float(metrics["loss"]) == pytest.approx(np.mean(y**2), rel=1e-5)
    assert float(metrics["grad_norm"]) == pytest.approx(
        np.sqrt((grad_w**2).sum() + grad_b**2), rel=1e-5)
    assert set(metrics) == {"loss", "grad_norm", "abs_err"}
    assert all(np.isfinite(np.asarray(v)).all() for v in jax.tree.leaves(new.params))


@pytest.mark.multidevice
def test_sharded_supervised_step_equals_the_unsharded_one():
    mesh = data_mesh()
    batch = next(_batches(0))
    plain, m1 = make_supervised_step(_loss)(_state(), batch, jax.random.key(0))
    from jaxface.train import replicate, shard_batch

    sharded, m2 = make_supervised_step(_loss, mesh=mesh)(
        replicate(_state(), mesh), shard_batch(batch, mesh), jax.random.key(0))
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(sharded.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert float(m1["loss"]) == pytest.approx(float(m2["loss"]), rel=1e-6)


def _fit(workdir, num_epochs, progress=False):
    return fit(
        _state(), make_supervised_step(_loss), _batches, mesh=data_mesh(), num_epochs=num_epochs,
        steps_per_epoch=NUM // BATCH, batch_size=BATCH, workdir=str(workdir),
        checkpoint_every=3, log_every=2, seed=0, progress=progress, rate_key="rows_per_s",
    )


def test_fit_trains_logs_and_resumes_to_the_same_parameters(tmp_path):
    straight, history = _fit(tmp_path / "a", num_epochs=3)
    assert int(straight.step) == 12
    assert history[-1]["loss"] < history[0]["loss"]
    assert [h["step"] for h in history] == [2, 4, 6, 8, 10, 12]
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text()
               .splitlines()]
    assert records[-1]["step"] == 12 and records[-1]["rows_per_s"] > 0
    assert {"loss", "grad_norm", "abs_err", "epoch"} <= set(records[-1])
    # Stopped after one epoch, then resumed to three: the same parameters.
    _fit(tmp_path / "b", num_epochs=1)
    resumed, later = _fit(tmp_path / "b", num_epochs=3)
    assert int(resumed.step) == 12 and later[0]["step"] == 6
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # A finished run resumed again trains nothing more.
    again, none = _fit(tmp_path / "b", num_epochs=3)
    assert int(again.step) == 12 and none == []


def test_map_in_batches_pads_the_last_chunk_and_compiles_once():
    traces = []

    @jax.jit
    def fn(a, b):
        traces.append(a.shape)
        return a * 2.0, {"sum": a.sum(axis=1) + b}

    a = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    b = np.arange(23, dtype=np.float32)
    doubled, extra = map_in_batches(fn, (a, b), batch_size=8)
    np.testing.assert_array_equal(doubled, a * 2.0)
    np.testing.assert_array_equal(extra["sum"], a.sum(axis=1) + b)
    assert traces == [(8, 2)]
    with pytest.raises(ValueError, match="at least one row"):
        map_in_batches(fn, (a[:0], b[:0]))
