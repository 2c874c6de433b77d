import os
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxface.train import CheckpointError, Checkpoints, write_config


def _state(seed=0):
    params = {"w": jnp.arange(6.0).reshape(2, 3) + seed, "b": jnp.zeros(3)}
    opt = optax.adam(1e-3)
    return {"params": params, "opt_state": opt.init(params), "step": jnp.asarray(seed)}


def test_round_trip_keeps_structure(tmp_path):
    ckpt = Checkpoints(str(tmp_path), save_every=1, async_save=False)
    state = _state(seed=3)
    assert ckpt.save(5, state)
    ckpt.close()
    fresh = Checkpoints(str(tmp_path))
    restored, step = fresh.restore_or(_state(seed=0))
    assert step == 5
    assert jax.tree.structure(restored) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_empty_workdir_returns_given_state(tmp_path):
    state = _state()
    restored, step = Checkpoints(str(tmp_path)).restore_or(state)
    assert step == 0 and restored is state


def test_save_every(tmp_path):
    ckpt = Checkpoints(str(tmp_path), save_every=10, async_save=False)
    assert not ckpt.save(3, _state())
    assert ckpt.save(10, _state())
    assert ckpt.save(11, _state(), force=True)
    ckpt.close()
    assert Checkpoints(str(tmp_path)).latest_step == 11


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    ckpt = Checkpoints(str(tmp_path), async_save=False)
    ckpt.save(1, _state(), force=True)
    ckpt.close()
    # Truncate every data file of the checkpoint.
    for root, _, files in os.walk(os.path.join(tmp_path, "checkpoints", "1")):
        for name in files:
            if not name.startswith("_CHECKPOINT_METADATA"):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        Checkpoints(str(tmp_path)).restore_or(_state())


def test_wrong_structure_is_a_clear_error(tmp_path):
    ckpt = Checkpoints(str(tmp_path), async_save=False)
    ckpt.save(1, {"a": jnp.zeros(3)}, force=True)
    ckpt.close()
    with pytest.raises(CheckpointError, match="different model"):
        Checkpoints(str(tmp_path)).restore_or({"a": jnp.zeros(4), "b": jnp.zeros(2)})


def test_write_config(tmp_path):
    path = write_config(str(tmp_path), {"lr": 1e-3, "name": "x"})
    assert os.path.exists(path) and not os.path.exists(path + ".tmp")


_RESTORE_ON_ONE_DEVICE = """
import sys
import jax
jax.config.update("jax_num_cpu_devices", 1)
import jax.numpy as jnp
import numpy as np
from jaxface.train import Checkpoints
like = jax.eval_shape(lambda: {"w": jnp.zeros((4, 3)), "step": jnp.zeros((), jnp.int32)})
ckpt = Checkpoints(sys.argv[1])
restored, step = ckpt.restore_or(like)
ckpt.close()
assert jax.device_count() == 1 and step == 7, (jax.device_count(), step)
np.testing.assert_array_equal(restored["w"], np.arange(12.0).reshape(4, 3))
print("ok")
"""


def test_a_state_saved_on_8_devices_restores_on_one(tmp_path):
    import subprocess
    import sys

    from jaxface.sharding import data_mesh, replicated

    mesh = data_mesh()
    assert mesh.devices.size == 8
    state = jax.device_put({"w": jnp.arange(12.0).reshape(4, 3),
                            "step": jnp.asarray(7, jnp.int32)}, replicated(mesh))
    ckpt = Checkpoints(str(tmp_path))
    ckpt.save(7, state, force=True)
    ckpt.close()
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", _RESTORE_ON_ONE_DEVICE, str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


def test_partial_save_is_removed_even_when_late_writes_recreate_it(tmp_path):
    # After a failed save, writes of the same save still in flight may land after the first
    # removal; the removal waits until the folder stays clean.
    ckpt = Checkpoints(str(tmp_path), async_save=False)
    partial = os.path.join(ckpt.directory, "9.orbax-checkpoint-tmp")
    os.makedirs(os.path.join(partial, "d"))

    def late_write():
        time.sleep(0.08)
        os.makedirs(os.path.join(partial, "d"), exist_ok=True)
        with open(os.path.join(partial, "d", "chunk"), "wb") as f:
            f.write(b"x")

    writer = threading.Thread(target=late_write)
    writer.start()
    ckpt._remove_partial()
    writer.join()
    assert not os.path.exists(partial)


def test_replicated_and_sharded_leaves_restore_into_the_target_sharding(tmp_path):
    # Replicated leaves are written once (their first device's copy); a leaf sharded over the
    # devices is written by its shards. Both come back in the sharding of the restore target.
    from jax.sharding import NamedSharding, PartitionSpec

    from jaxface.sharding import data_mesh, replicated
    from jaxface.train.checkpoint import _one_copy

    mesh = data_mesh()
    split = NamedSharding(mesh, PartitionSpec("data"))
    state = {"w": jax.device_put(jnp.arange(12.0).reshape(4, 3), replicated(mesh)),
             "rows": jax.device_put(jnp.arange(16.0).reshape(8, 2), split),
             "step": jax.device_put(jnp.asarray(3, jnp.int32), replicated(mesh))}
    one = _one_copy(state["w"])
    assert len(one.sharding.device_set) == 1
    np.testing.assert_array_equal(np.asarray(one), np.asarray(state["w"]))
    assert _one_copy(state["rows"]) is state["rows"]
    ckpt = Checkpoints(str(tmp_path), async_save=False)
    ckpt.save(3, state, force=True)
    restored, step = Checkpoints(str(tmp_path)).restore_or(state)
    assert step == 3
    for name in state:
        np.testing.assert_array_equal(np.asarray(restored[name]), np.asarray(state[name]))
        assert restored[name].sharding == state[name].sharding, name
