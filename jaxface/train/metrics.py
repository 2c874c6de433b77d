"""Training metrics: global norms, finiteness checks, JSON-lines logs, throughput.

The logs are append-only JSON lines; :func:`read_jsonl` skips a last line cut short (a process
killed or a disk filled mid-append) and :func:`rewind_jsonl` drops the records past a step, so a
resumed run continues the log of its checkpoint without duplicates.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.files import disk_full_error, is_disk_full, write_atomic

__all__ = [
    "MetricsWriter",
    "NonFiniteError",
    "Throughput",
    "all_finite",
    "check_finite",
    "global_norm",
    "num_params",
    "read_jsonl",
    "rewind_jsonl",
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


@jax.jit
def _leaves_finite(leaves: list[jax.Array]) -> jax.Array:
    # One test over the leaves concatenated: XLA:CPU fuses the concatenation into it (the
    # leaves are read in place; a byte per element is written and reduced) and compiles a
    # few kernels. A reduction per leaf compiles one kernel each: 6.9 s against 0.9 s for the
    # 1140 leaves of the image-to-3D encoders' training state on CPU.
    dtype = jnp.result_type(jnp.float32, *leaves)
    return jnp.all(jnp.isfinite(jnp.concatenate([x.reshape(-1).astype(dtype) for x in leaves])))


def all_finite(tree) -> bool:
    """Whether every floating-point leaf of ``tree`` is finite (no NaN, no infinity).

    The check runs where the leaves are (on the devices for a training state) and only one
    boolean comes back to the host. Integer leaves and PRNG keys are not checked.

    Example:
      >>> all_finite({"w": jnp.ones(3), "step": jnp.asarray(2)})
      True
      >>> all_finite({"w": jnp.array([1.0, jnp.nan])})
      False
    """
    leaves = [x for x in jax.tree.leaves(tree)
              if hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return True
    return bool(_leaves_finite(leaves))


def read_jsonl(path: str) -> list[dict[str, float]]:
    """The records of a JSON-lines metrics file (``[]`` when it does not exist).

    A last line that is cut short (the writer was killed or the disk filled mid-append) is
    skipped; a damaged line before the last one raises ``ValueError`` naming the file and line.
    """
    if not os.path.isfile(path):
        return []
    with open(path, "rb") as f:
        lines = [line for line in f.read().split(b"\n") if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except ValueError as err:
            if number == len(lines):
                break
            raise ValueError(f"{path}: line {number} is not a JSON record ({err})") from err
    return records


def rewind_jsonl(path: str, step: int) -> list[dict[str, float]]:
    """Drops the records after ``step`` (and a cut-short last line); returns those kept.

    The file is rewritten atomically, and only when something is dropped.
    """
    if not os.path.isfile(path):
        return []
    with open(path, "rb") as f:
        raw = f.read()
    records = read_jsonl(path)
    kept = [r for r in records if r.get("step", 0) <= step]
    text = "".join(json.dumps(r) + "\n" for r in kept)
    if text.encode("utf-8") != raw:
        write_atomic(path, text.encode("utf-8"))
    return kept


class MetricsWriter:
    """Appends one JSON object per call to ``<workdir>/metrics.jsonl`` (process 0 only)."""

    def __init__(self, workdir: str, filename: str = "metrics.jsonl"):
        self.path = os.path.join(os.path.abspath(workdir), filename)
        self._enabled = jax.process_index() == 0
        if self._enabled:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)

    @property
    def enabled(self) -> bool:
        """Whether this process writes (process 0)."""
        return self._enabled

    def rewind(self, step: int) -> list[dict[str, float]]:
        """The records up to ``step``; process 0 also drops later ones from the file
        (:func:`rewind_jsonl`)."""
        if self._enabled:
            return rewind_jsonl(self.path, step)
        return [r for r in read_jsonl(self.path) if r.get("step", 0) <= step]

    def write(self, step: int, metrics: Mapping[str, float]) -> None:
        if not self._enabled:
            return
        record = {"step": int(step)}
        record.update({k: float(np.asarray(v)) for k, v in metrics.items()})
        line = json.dumps(record) + "\n"
        try:
            with open(self.path, "a") as f:
                f.write(line)
        except OSError as err:
            if is_disk_full(err):
                raise disk_full_error(self.path, len(line), f"the metrics of step {step}") from err
            raise


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
