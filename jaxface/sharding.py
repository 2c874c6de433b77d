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


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def initialize_distributed(
    enabled: bool | None = None,
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> bool:
    """Starts JAX's multi-controller runtime (one process per host) when configured.

    Every process runs the same program; each holds or reads its own rows of every batch
    (:mod:`jaxface.data.batches`) and the jitted steps run as one program over all devices.
    Launch, on every host::

        JAXFACE_DISTRIBUTED=1 JAX_COORDINATOR_ADDRESS=host0:1234 JAXFACE_NUM_PROCESSES=2 \
        JAXFACE_PROCESS_ID=<0 or 1> python -m experiments.s2d.main --config=... --workdir=...

    (the work directory on a file system every host sees). Without the address, count and id,
    JAX detects them on a known cluster (SLURM, Open MPI, Kubernetes, Cloud TPU). CPU hosts
    exchange gradients through the gloo collectives.

    Args:
      enabled: ``True`` to initialise, ``False`` to skip; ``None`` reads the environment variable
        ``JAXFACE_DISTRIBUTED`` (``1`` enables).
      coordinator_address: ``host:port`` of process 0 (default ``$JAX_COORDINATOR_ADDRESS``).
      num_processes: number of processes (default ``$JAXFACE_NUM_PROCESSES``).
      process_id: this process's rank (default ``$JAXFACE_PROCESS_ID``).

    Returns:
      Whether ``jax.distributed.initialize()`` was called.

    Raises:
      ValueError: a count or rank in the environment that is not an integer.
    """
    if enabled is None:
        enabled = os.environ.get("JAXFACE_DISTRIBUTED", "0") == "1"
    if not enabled:
        return False
    num_processes = _env_int("JAXFACE_NUM_PROCESSES") if num_processes is None else num_processes
    process_id = _env_int("JAXFACE_PROCESS_ID") if process_id is None else process_id
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address=coordinator_address,
                               num_processes=num_processes, process_id=process_id)
    return True


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
