"""Training metrics: global norms, finiteness checks, JSON-lines logs, throughput."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "MetricsWriter",
    "NonFiniteError",
    "Throughput",
    "check_finite",
    "global_norm",
    "num_params",
]


class NonFiniteError(FloatingPointError):
    """A loss or gradient became NaN or infinite."""


def global_norm(tree) -> jax.Array:
    """L2 norm of all leaves of ``tree`` together (a scalar)."""
    leaves = jax.tree.leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in leaves))


def num_params(tree) -> int:
    """Number of scalars in all leaves of ``tree`` (e.g. a model's parameter count)."""
    return int(sum(np.size(x) for x in jax.tree.leaves(tree)))


def check_finite(metrics: Mapping[str, float], step: int) -> None:
    """Raises :class:`NonFiniteError` naming every metric that is NaN or infinite."""
    bad = {name: float(v) for name, v in metrics.items() if not math.isfinite(float(v))}
    if bad:
        listed = ", ".join(f"{name} is {value}" for name, value in bad.items())
        raise NonFiniteError(
            f"{listed} at step {step}; lower the learning rate or check the input data"
        )


class MetricsWriter:
    """Appends one JSON object per call to ``<workdir>/metrics.jsonl`` (process 0 only)."""

    def __init__(self, workdir: str, filename: str = "metrics.jsonl"):
        self.path = os.path.join(os.path.abspath(workdir), filename)
        self._enabled = jax.process_index() == 0
        if self._enabled:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self._enabled:
            return
        record = {"step": int(step)}
        record.update({k: float(np.asarray(v)) for k, v in metrics.items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class Throughput:
    """Examples per second between calls of :meth:`rate` (wall clock)."""

    def __init__(self):
        self._t = time.perf_counter()
        self._n = 0

    def add(self, n: int) -> None:
        self._n += n

    def rate(self) -> float:
        now = time.perf_counter()
        r = self._n / max(now - self._t, 1e-9)
        self._t, self._n = now, 0
        return r
