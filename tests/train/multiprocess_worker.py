"""One process of the multi-process training test (run by test_multiprocess.py).

    python -m tests.train.multiprocess_worker <memory|stream> <workdir> <out.json>

Reads the coordinator, process count and rank from the environment
(``jaxface.sharding.initialize_distributed``) and trains a linear model with
``jaxface.train.fit`` over 2 CPU devices per process.
"""

import json
import sys


def main(kind: str, workdir: str, out: str) -> None:
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    from jaxface.sharding import initialize_distributed

    initialize_distributed()
    import flax.linen as nn
    import jax.numpy as jnp
    import numpy as np
    import optax

    from jaxface.data.batches import InMemoryBatches, StreamingBatches
    from jaxface.sharding import data_mesh
    from jaxface.train import LoopConfig, create_train_state, fit, make_supervised_step

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)

    class Linear(nn.Module):
        @nn.compact
        def __call__(self, v):
            return nn.Dense(1)(v)[..., 0]

    def loss(params, batch):
        pred = Linear().apply({"params": params}, batch["x"])
        return jnp.mean((pred - batch["y"]) ** 2), {}

    mesh = data_mesh()
    state = create_train_state(Linear(), jax.random.key(0), (jnp.zeros((1, 3)),), optax.sgd(0.05))
    if kind == "memory":
        batches = InMemoryBatches({"x": x, "y": y}, 8, mesh=mesh, seed=1)
    else:
        source = [{"x": x[i], "y": y[i]} for i in range(len(x))]
        batches = StreamingBatches(source, 8, mesh=mesh, seed=1, read_threads=0)
    state, info = fit(state, make_supervised_step(loss, mesh=mesh), batches,
                      LoopConfig(num_epochs=3, log_every=4, progress=False), workdir)
    params = jax.tree.map(lambda a: np.asarray(a.addressable_data(0)).tolist(), state.params)
    record = {"processes": jax.process_count(), "devices": jax.device_count(),
              "steps": info.steps, "params": params}
    with open(out, "w") as f:
        json.dump(record, f)


if __name__ == "__main__":
    main(*sys.argv[1:4])
