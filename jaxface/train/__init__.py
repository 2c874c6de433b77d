"""Training: states and jitted steps, the one training driver, checkpoints and metrics.

Every model trains through :func:`fit`: a jitted step ``(state, batch, rng) -> (state,
metrics)`` over the device batches of :mod:`jaxface.data.batches`, with checkpointing, resume,
metrics, a progress bar, a non-finite guard and periodic evaluation as hooks. Device meshes and
shardings are in :mod:`jaxface.sharding`.
"""

from jaxface.train.checkpoint import CheckpointError, Checkpoints, write_config
from jaxface.train.loop import (
    Hook,
    LogMetrics,
    LoopConfig,
    PeriodicEval,
    Plateau,
    ReportProgress,
    SaveCheckpoint,
    TrainInfo,
    apply_in_batches,
    fit,
    map_in_batches,
    read_jsonl,
)
from jaxface.train.metrics import (
    MetricsWriter,
    NonFiniteError,
    Throughput,
    check_finite,
    global_norm,
    num_params,
)
from jaxface.train.steps import (
    TrainState,
    create_train_state,
    jit_train_step,
    make_supervised_step,
)

__all__ = [
    "CheckpointError",
    "Checkpoints",
    "Hook",
    "LogMetrics",
    "LoopConfig",
    "MetricsWriter",
    "NonFiniteError",
    "PeriodicEval",
    "Plateau",
    "ReportProgress",
    "SaveCheckpoint",
    "Throughput",
    "TrainInfo",
    "TrainState",
    "apply_in_batches",
    "check_finite",
    "create_train_state",
    "fit",
    "global_norm",
    "jit_train_step",
    "make_supervised_step",
    "map_in_batches",
    "num_params",
    "read_jsonl",
    "write_config",
]
