"""Training metrics: norms, parameter counts, the non-finite guard, the JSON-lines writer."""

import json

import jax
import numpy as np
import pytest

from jaxface.train import (
    MetricsWriter,
    NonFiniteError,
    Throughput,
    check_finite,
    global_norm,
    num_params,
)


def test_global_norm_and_num_params_against_numpy(rng):
    tree = {"a": rng.normal(size=(3, 4)).astype(np.float32), "b": [rng.normal(size=5)]}
    want = np.sqrt(np.sum(tree["a"] ** 2) + np.sum(tree["b"][0] ** 2))
    assert float(global_norm(tree)) == pytest.approx(want, rel=1e-6)
    assert float(jax.jit(global_norm)(tree)) == pytest.approx(want, rel=1e-6)
    assert num_params(tree) == 17


def test_finite_check_names_every_bad_metric():
    check_finite({"loss": 1.0, "grad_norm": 0.0}, step=1)
    with pytest.raises(NonFiniteError, match="loss is nan at step 7"):
        check_finite({"loss": float("nan")}, step=7)
    with pytest.raises(NonFiniteError, match="loss is inf, grad_norm is nan at step 2"):
        check_finite({"loss": float("inf"), "ok": 1.0, "grad_norm": float("nan")}, step=2)


def test_metrics_writer_appends_json_lines(tmp_path):
    writer = MetricsWriter(str(tmp_path / "run"))
    writer.write(1, {"loss": np.float32(0.5), "rate": 3})
    writer.write(2, {"loss": 0.25})
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines] == [{"step": 1, "loss": 0.5, "rate": 3.0},
                                              {"step": 2, "loss": 0.25}]


def test_metrics_writer_writes_on_process_zero_only(tmp_path, monkeypatch):
    monkeypatch.setattr(jax, "process_index", lambda: 1)
    writer = MetricsWriter(str(tmp_path / "other"))
    writer.write(1, {"loss": 1.0})
    assert not (tmp_path / "other").exists()


def test_throughput_counts_examples_between_calls():
    meter = Throughput()
    meter.add(10)
    assert meter.rate() > 0
    assert meter.rate() == 0.0


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_all_finite_finds_one_bad_value_in_any_leaf_and_dtype(bad):
    import jax.numpy as jnp

    from jaxface.train import all_finite

    tree = {"f32": jnp.arange(6.0).reshape(2, 3), "bf16": jnp.ones((4,), jnp.bfloat16),
            "c64": jnp.ones((2,), jnp.complex64), "scalar": jnp.asarray(2.0),
            "ints": jnp.arange(3), "key": jax.random.key(0)}
    assert all_finite(tree) and all_finite({}) and all_finite({"ints": jnp.arange(2)})
    for name in ("f32", "bf16", "c64", "scalar"):
        leaf = tree[name]
        flat = leaf.reshape(-1).at[-1].set(bad).reshape(leaf.shape)
        assert not all_finite({**tree, name: flat}), name
    imaginary = tree["c64"].at[0].set(complex(0.0, bad))
    assert not all_finite({**tree, "c64": imaginary})
