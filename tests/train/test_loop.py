"""The shared training loop, supervised steps and fixed-shape batched inference."""

import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.data.batches import InMemoryBatches
from jaxface.sharding import data_mesh, replicate, shard_batch
from jaxface.train import (
    LoopConfig,
    NonFiniteError,
    PeriodicEval,
    Plateau,
    create_train_state,
    fit,
    kept_params,
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


def _first_batch():
    x, y = _data()
    return {"x": x[:BATCH], "y": y[:BATCH]}


def _batches(seed=5):
    x, y = _data()
    return InMemoryBatches({"x": x, "y": y}, BATCH, mesh=data_mesh(), seed=seed)


def test_supervised_step_matches_numpy_gradient_descent():
    state = _state(lr=0.1)
    assert state.step.dtype == jnp.int32
    step = make_supervised_step(_loss)
    batch = _first_batch()
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


def test_supervised_step_traces_once_over_many_steps():
    traces = []

    def loss(params, batch):
        traces.append(1)  # runs only while tracing
        return _loss(params, batch)

    step = make_supervised_step(loss)
    state = _state()
    for _ in range(3):
        state, _ = step(state, _first_batch(), jax.random.key(0))
    assert int(state.step) == 3
    assert len(traces) == 1  # the int32 step counter keeps the input types fixed


@pytest.mark.multidevice
def test_sharded_supervised_step_equals_the_unsharded_one():
    mesh = data_mesh()
    batch = _first_batch()
    plain, m1 = make_supervised_step(_loss)(_state(), batch, jax.random.key(0))
    sharded, m2 = make_supervised_step(_loss, mesh=mesh)(
        replicate(_state(), mesh), shard_batch(batch, mesh), jax.random.key(0))
    for a, b in zip(jax.tree.leaves(plain.params), jax.tree.leaves(sharded.params), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert float(m1["loss"]) == pytest.approx(float(m2["loss"]), rel=1e-6)


def _fit(workdir, num_epochs, progress=False, hooks=()):
    loop = LoopConfig(num_epochs=num_epochs, checkpoint_every=3, log_every=2, seed=0,
                      progress=progress)
    return fit(_state(), make_supervised_step(_loss), _batches(), loop, str(workdir),
               hooks=hooks)


def test_fit_trains_logs_and_resumes_to_the_same_parameters(tmp_path):
    straight, info = _fit(tmp_path / "a", num_epochs=3)
    history = info.history
    assert int(straight.step) == 12 and info.steps == 12 and not info.stopped_early
    assert history[-1]["loss"] < history[0]["loss"]
    assert [h["step"] for h in history] == [2, 4, 6, 8, 10, 12]
    records = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text()
               .splitlines()]
    assert records[-1]["step"] == 12 and records[-1]["examples_per_s"] > 0
    assert {"loss", "grad_norm", "abs_err", "epoch"} <= set(records[-1])
    assert info.final == history[-1] and info.examples_per_s == history[-1]["examples_per_s"]
    # Stopped after one epoch, then resumed to three: the same parameters.
    _fit(tmp_path / "b", num_epochs=1)
    resumed, later = _fit(tmp_path / "b", num_epochs=3)
    assert int(resumed.step) == 12 and later.history[0]["step"] == 6
    for a, b in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params),
                    strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    # A finished run resumed again trains nothing more and keeps its figures.
    again, none = _fit(tmp_path / "b", num_epochs=3)
    assert int(again.step) == 12 and none.history == [] and none.start_step == 12
    assert none.final == later.history[-1]
    assert none.train_time_s == later.history[-1]["train_time_s"] > later.history[0]["train_time_s"]


def test_fit_matches_a_numpy_sgd_loop_over_the_same_batches(tmp_path):
    state, _ = _fit(tmp_path, num_epochs=2)
    x, y = _data()
    w, b = np.zeros(DIM), 0.0
    batches = _batches()
    for epoch in range(2):
        for idx in batches.order(epoch):
            resid = x[idx] @ w + b - y[idx]
            w = w - 0.1 * 2 * x[idx].T @ resid / BATCH
            b = b - 0.1 * 2 * resid.mean()
    np.testing.assert_allclose(state.params["w"], w, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(state.params["b"], b, rtol=1e-4, atol=1e-6)


def test_periodic_eval_logs_and_can_stop_the_run(tmp_path):
    x, y = _data()

    def evaluate(state):
        pred = x @ np.asarray(state.params["w"]) + float(state.params["b"])
        return {"val_mse": float(np.mean((pred - y) ** 2))}

    def stop(history):  # stop once the validation error is below 1
        return history[-1]["val_mse"] < 1.0

    hook = PeriodicEval(evaluate, every=2, workdir=str(tmp_path), stop=stop)
    state, info = _fit(tmp_path, num_epochs=50, hooks=(hook,))
    assert info.stopped_early and info.steps < 50 * (NUM // BATCH)
    assert hook.history[-1]["val_mse"] < 1.0 <= hook.history[-2]["val_mse"]
    assert info.steps == hook.history[-1]["step"] == int(state.step)
    records = [json.loads(line) for line in (tmp_path / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [h["step"] for h in hook.history]
    # Run again with the same rule: the history is read back and nothing more is trained.
    hook2 = PeriodicEval(evaluate, every=2, workdir=str(tmp_path), stop=stop)
    state2, same = _fit(tmp_path, num_epochs=50, hooks=(hook2,))
    assert same.stopped_early and same.steps == info.steps and same.history == []
    assert hook2.history == hook.history
    # Without the rule, resuming continues from the last (checkpointed) step.
    _, again = _fit(tmp_path, num_epochs=50, hooks=())
    assert again.history[0]["step"] > info.steps


def test_periodic_eval_keeps_the_best_parameters_across_a_resume(tmp_path):
    values = {2: 5.0, 4: 3.0, 6: 4.0, 8: 2.0, 10: 2.5, 12: 2.4, 14: 2.3, 16: 1.0}
    seen = {}

    def evaluate(state):
        step = int(state.step)
        seen[step] = jax.tree.map(np.array, jax.device_get(state.params))
        return {"val": values[step]}

    def hook():
        rule = Plateau("val", patience=3)
        return PeriodicEval(evaluate, every=2, workdir=str(tmp_path), stop=rule, keep_best=rule)

    first = hook()
    _fit(tmp_path, num_epochs=2, hooks=(first,))  # 8 steps; the best so far is step 8's
    assert first.best() == {"step": 8, "val": 2.0}
    assert kept_params(tmp_path)[1] == {"step": 8, "val": 2.0}
    # A file left by an evaluation the resumed run drops is never chosen, and is removed.
    (tmp_path / "best" / "step_000000010.npz").write_bytes(b"not parameters")
    second = hook()
    state, info = _fit(tmp_path, num_epochs=50, hooks=(second,))
    assert info.stopped_early and int(state.step) == 14  # 10, 12, 14 do not improve on 8
    assert second.best()["step"] == 8
    for got in (second.best_params(), kept_params(tmp_path)[0]):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(seen[8]), strict=True):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(state.params["w"], seen[8]["w"])  # the last state moved on
    assert sorted(p.name for p in (tmp_path / "best").iterdir()) == [
        "kept.json", "step_000000008.npz"]
    # Without keep_best there is nothing to keep.
    assert PeriodicEval(evaluate, 2, str(tmp_path / "plain")).best_params() is None
    assert kept_params(tmp_path / "plain") is None
    (tmp_path / "best" / "step_000000008.npz").unlink()
    with pytest.raises(FileNotFoundError, match="best evaluation \\(step 8\\)"):
        kept_params(tmp_path)


def test_plateau_rule():
    stop = Plateau("val", patience=2, min_delta=0.1)
    values = [5.0, 4.0, 3.95, 3.92, 3.5]
    # 3.95 and 3.92 do not improve on 4.0 by 0.1; 3.5 does.
    assert [stop([{"val": v} for v in values[:n]]) for n in range(1, 6)] == [
        False, False, False, True, False]
    assert stop.best([{"val": v} for v in values]) == 4
    up = Plateau("acc", patience=1, mode="max")
    assert up([{"acc": 0.5}, {"acc": 0.4}]) and not up([{"acc": 0.5}, {"acc": 0.6}])
    with pytest.raises(ValueError, match="mode must be"):
        Plateau("val", patience=1, mode="up")


def test_non_finite_metrics_stop_the_run_with_a_clear_error(tmp_path):
    def bad_loss(params, batch):
        loss, parts = _loss(params, batch)
        return loss * jnp.where(params["w"][0] > 0.5, jnp.nan, 1.0), parts

    loop = LoopConfig(num_epochs=20, log_every=1, progress=False)
    state = create_train_state(_Linear(), jax.random.key(0), (jnp.zeros((1, DIM)),),
                               optax.sgd(0.1))
    # w[0] grows from 0 towards the data's 1.0; the loss turns NaN past 0.5.
    with pytest.raises(NonFiniteError, match="loss is nan.* at step 4"):
        fit(state, make_supervised_step(bad_loss), _batches(), loop, str(tmp_path))


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
