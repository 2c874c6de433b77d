"""Training utilities: device mesh and sharding, checkpoints, metrics, the training loop."""

from jaxface.files import write_json
from jaxface.train.checkpoint import CheckpointError, Checkpoints, write_config
from jaxface.train.loop import apply_in_batches, fit, map_in_batches
from jaxface.train.metrics import (
    MetricsWriter,
    NonFiniteError,
    Throughput,
    check_finite,
    global_norm,
    num_params,
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
from jaxface.train.supervised import (
    TrainState,
    create_train_state,
    jit_train_step,
    make_supervised_step,
)

__all__ = [
    "DATA_AXIS",
    "CheckpointError",
    "Checkpoints",
    "MetricsWriter",
    "NonFiniteError",
    "Throughput",
    "TrainState",
    "apply_in_batches",
    "batch_sharding",
    "check_finite",
    "create_train_state",
    "data_mesh",
    "global_norm",
    "fit",
    "initialize_distributed",
    "jit_train_step",
    "make_supervised_step",
    "num_params",
    "map_in_batches",
    "replicate",
    "replicated",
    "shard_batch",
    "write_config",
    "write_json",
]
