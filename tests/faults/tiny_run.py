"""A tiny supervised training run for the fault tests, in-process or as a subprocess.

    python -m tests.faults.tiny_run WORKDIR [--epochs 3] [--result params.npz]
        [--checkpoint-every 3] [--log-every 2] [--pad 0] [--nan-at-step 0]

Fits ``y = x @ w + b`` (32 examples of 3 features, batches of 8: 4 steps per epoch) with SGD
through :func:`jaxface.train.fit`, after recording its config with
:func:`jaxface.train.store_config`. ``--pad N`` adds ``N`` random, untrained parameters (a larger
checkpoint); ``--nan-at-step S`` turns the parameters to NaN after step ``S``. Library errors end
the process with one line on stderr and exit status 2; ``--result`` receives the final
parameters.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

NUM, DIM, BATCH = 32, 3, 8


def data(nan_row: int | None = None) -> dict[str, np.ndarray]:
    """The examples: ``x`` float32 ``[32, 3]``, ``y`` float32 ``[32]`` (one row NaN if asked)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(NUM, DIM)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32) + 0.3).astype(np.float32)
    if nan_row is not None:
        x[nan_row] = np.nan
    return {"x": x, "y": y}


def make_state(pad: int = 0, lr: float = 0.05):
    """A train state with ``w [3]``, ``b []`` and ``pad`` random extra parameters."""
    import jax
    import jax.numpy as jnp
    import optax

    from jaxface.train import TrainState

    params = {"w": jnp.zeros((DIM,)), "b": jnp.zeros(())}
    if pad:
        params["pad"] = jax.random.normal(jax.random.key(1), (pad,))
    tx = optax.sgd(lr)
    return TrainState.create(apply_fn=None, params=params, tx=tx)


def make_step(nan_at_step: int = 0):
    """The jitted supervised step; after step ``nan_at_step`` (if > 0) the parameters are NaN."""
    import jax
    import jax.numpy as jnp

    from jaxface.train import make_supervised_step

    def loss(params, batch):
        pred = batch["x"] @ params["w"] + params["b"]
        return jnp.mean((pred - batch["y"]) ** 2), {}

    step = make_supervised_step(loss)
    if not nan_at_step:
        return step

    @jax.jit
    def poisoned(state, batch, rng):
        state, metrics = step(state, batch, rng)
        bad = state.step >= nan_at_step
        params = jax.tree.map(lambda p: jnp.where(bad, jnp.nan, p), state.params)
        return state.replace(params=params), metrics

    return poisoned


def make_batches(nan_row: int | None = None):
    from jaxface.data.batches import InMemoryBatches
    from jaxface.sharding import data_mesh

    return InMemoryBatches(data(nan_row), BATCH, mesh=data_mesh(), seed=5)


def train(workdir: str, epochs: int, *, checkpoint_every: int = 3, log_every: int = 2,
          pad: int = 0, nan_at_step: int = 0, nan_row: int | None = None, hooks=()):
    """Records the config and runs :func:`jaxface.train.fit`; returns ``(state, info)``."""
    from jaxface.train import LoopConfig, fit, store_config

    store_config(workdir, {"num_epochs": epochs, "checkpoint_every": checkpoint_every,
                           "log_every": log_every, "pad": pad, "lr": 0.05})
    loop = LoopConfig(num_epochs=epochs, checkpoint_every=checkpoint_every, log_every=log_every,
                      progress=False)
    return fit(make_state(pad), make_step(nan_at_step), make_batches(nan_row), loop, workdir,
               hooks=hooks)


def params_of(state) -> dict[str, np.ndarray]:
    import jax

    return {k: np.asarray(v) for k, v in jax.device_get(state.params).items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tiny_run")
    parser.add_argument("workdir")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--checkpoint-every", type=int, default=3)
    parser.add_argument("--log-every", type=int, default=2)
    parser.add_argument("--pad", type=int, default=0)
    parser.add_argument("--nan-at-step", type=int, default=0)
    parser.add_argument("--result", default=None)
    args = parser.parse_args(argv)
    # Ctrl-C as a terminal delivers it: a process started with SIGINT ignored (a test worker's
    # children inherit that) would otherwise never see KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from jaxface.files import write_npz
    from jaxface.train import TrainingInterrupted

    try:
        state, _ = train(os.path.abspath(args.workdir), args.epochs,
                         checkpoint_every=args.checkpoint_every, log_every=args.log_every,
                         pad=args.pad, nan_at_step=args.nan_at_step)
    except (ValueError, OSError, TrainingInterrupted) as err:
        print(f"tiny_run: error: {err}", file=sys.stderr)
        return 2
    if args.result:
        write_npz(args.result, params_of(state))
    return 0


if __name__ == "__main__":
    sys.exit(main())
