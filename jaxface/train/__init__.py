"""Training utilities: device mesh and sharding, checkpoints, metrics, the training loop."""

from jaxface.train.checkpoint import CheckpointError, Checkpoints, write_config
from jaxface.train.files import write_json
from jaxface.train.loop import fit, map_in_batches
from jaxface.train.metrics import (
    MetricsWriter,
    NonFiniteError,
    Throughput,
    check_finite,
    global_norm,
)
from jaxface.train.sharding import (
    DATA_AXIS,
    batch_sharding,
    data_mesh,
    initialize_distributed,
    replicate,
    replicated,
    shard_batch,
)

__all__ = [
    "DATA_AXIS",
    "CheckpointError",
    "Checkpoints",
    "MetricsWriter",
    "NonFiniteError",
    "Throughput",
    "batch_sharding",
    "check_finite",
    "data_mesh",
    "global_norm",
    "fit",
    "initialize_distributed",
    "map_in_batches",
    "replicate",
    "replicated",
    "shard_batch",
    "write_config",
    "write_json",
]
