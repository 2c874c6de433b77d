"""Training: states and jitted steps, the one training driver, checkpoints and metrics.

Every model trains through :func:`fit`: a jitted step ``(state, batch, rng) -> (state,
metrics)`` over the device batches of :mod:`jaxface.data.batches`, with checkpointing, resume,
metrics, a progress bar, a non-finite guard and periodic evaluation as hooks. A run's work
directory is locked while it trains and keeps the config it was started with
(:func:`store_config`). Device meshes and shardings are in :mod:`jaxface.sharding`.
"""

from jaxface.train.checkpoint import (
    CheckpointError,
    Checkpoints,
    restore_latest,
    write_config,
)
from jaxface.train.loop import (
    Hook,
    LogMetrics,
    LoopConfig,
    PeriodicEval,
    Plateau,
    ReportProgress,
    SaveCheckpoint,
    TrainInfo,
    TrainingInterrupted,
    apply_in_batches,
    fit,
    kept_params,
    map_in_batches,
)
from jaxface.train.metrics import (
    MetricsWriter,
    NonFiniteError,
    Throughput,
    all_finite,
    check_finite,
    global_norm,
    num_params,
    read_jsonl,
    rewind_jsonl,
)
from jaxface.train.optimizers import SCHEDULES, create_optimizer, decay_schedule
from jaxface.train.steps import (
    TrainState,
    create_train_state,
    jit_train_step,
    make_supervised_step,
)
from jaxface.train.workdir import (
    RESUMABLE_FIELDS,
    ConfigMismatchError,
    WorkdirBusyError,
    config_changes,
    lock_workdir,
    read_config,
    store_config,
)

__all__ = [
    "RESUMABLE_FIELDS",
    "SCHEDULES",
    "CheckpointError",
    "Checkpoints",
    "ConfigMismatchError",
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
    "TrainingInterrupted",
    "WorkdirBusyError",
    "all_finite",
    "apply_in_batches",
    "check_finite",
    "config_changes",
    "create_optimizer",
    "create_train_state",
    "decay_schedule",
    "fit",
    "global_norm",
    "jit_train_step",
    "kept_params",
    "lock_workdir",
    "make_supervised_step",
    "map_in_batches",
    "num_params",
    "read_config",
    "read_jsonl",
    "restore_latest",
    "rewind_jsonl",
    "store_config",
    "write_config",
]
