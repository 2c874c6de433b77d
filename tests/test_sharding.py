"""The ("data",) device mesh, replicated states and sharded batches on 8 CPU devices."""

import jax
import numpy as np
import pytest

from jaxface.sharding import DATA_AXIS, data_mesh, replicate, shard_batch


def test_shard_batch_on_all_devices():
    mesh = data_mesh()
    assert mesh.axis_names == (DATA_AXIS,)
    n = mesh.devices.size
    batch = {"x": np.arange(n * 2 * 3, dtype=np.float32).reshape(n * 2, 3)}
    out = shard_batch(batch, mesh)
    assert out["x"].sharding.spec == jax.sharding.PartitionSpec(DATA_AXIS)
    assert len(out["x"].addressable_shards) == n
    np.testing.assert_array_equal(np.asarray(out["x"]), batch["x"])


def test_indivisible_batch_is_rejected():
    mesh = data_mesh()
    if mesh.devices.size == 1:
        pytest.skip("needs several devices")
    with pytest.raises(ValueError, match="not divisible"):
        shard_batch({"x": np.zeros((mesh.devices.size + 1, 2))}, mesh)


def test_jitted_step_on_sharded_batch_matches_unsharded():
    mesh = data_mesh()
    params = replicate({"w": np.ones((3, 2), np.float32)}, mesh)
    x = np.random.default_rng(0).normal(size=(mesh.devices.size * 2, 3)).astype(np.float32)

    @jax.jit
    def loss(p, xb):
        return ((xb @ p["w"]) ** 2).mean()

    np.testing.assert_allclose(
        float(loss(params, shard_batch(x, mesh))), float(((x @ np.ones((3, 2))) ** 2).mean()),
        rtol=1e-6,
    )
