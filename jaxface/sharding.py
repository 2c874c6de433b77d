"""Data parallelism over a 1-D ``("data",)`` device mesh.

Parameters and optimizer state are replicated; batches are sharded along their leading axis.
The same code runs on one CPU, one GPU, or many hosts (after :func:`initialize_distributed`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

__all__ = [
    "DATA_AXIS",
    "batch_sharding",
    "data_mesh",
    "initialize_distributed",
    "replicate",
    "replicated",
    "shard_batch",
]

DATA_AXIS = "data"


def initialize_distributed(enabled: bool | None = None) -> bool:
    """Starts JAX's multi-controller runtime when configured.

    Args:
      enabled: ``True`` to initialise, ``False`` to skip; ``None`` reads the environment variable
        ``JAXFACE_DISTRIBUTED`` (``1`` enables). Coordinator address, process count and id come
        from the usual JAX environment (or a cluster auto-detected by JAX).

    Returns:
      Whether ``jax.distributed.initialize()`` was called.
    """
    if enabled is None:
        enabled = os.environ.get("JAXFACE_DISTRIBUTED", "0") == "1"
    if enabled:
        jax.distributed.initialize()
    return bool(enabled)


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"data"`` over ``devices`` (default: all devices of all hosts)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays whose leading axis is the batch."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Sharding of arrays copied on every device (parameters, optimizer state)."""
    return NamedSharding(mesh, PartitionSpec())


def replicate(tree, mesh: Mesh):
    """Places every leaf of ``tree`` on all devices of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))


def shard_batch(batch, mesh: Mesh):
    """Turns a host-local batch (pytree of numpy arrays) into global arrays sharded on ``data``.

    Each process passes its own slice of the global batch (``global_batch // process_count``
    rows). The global leading dimension must be divisible by the number of devices.

    Raises:
      ValueError: if a leaf's leading dimension is not divisible by the mesh size.
    """
    sharding = batch_sharding(mesh)
    n_dev = mesh.devices.size
    n_proc = jax.process_count()

    def put(x):
        x = np.asarray(x)
        if (x.shape[0] * n_proc) % n_dev:
            raise ValueError(
                f"global batch dimension {x.shape[0] * n_proc} is not divisible by the "
                f"{n_dev} devices of the data mesh"
            )
        return jax.make_array_from_process_local_data(sharding, x)

    return jax.tree.map(put, batch)
