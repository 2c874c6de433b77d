"""The one training driver: ``fit(state, step, batches, loop, workdir) -> (state, info)``.

``fit`` runs any jitted step ``(state, batch, rng) -> (state, metrics)`` over the device batches
of a :class:`jaxface.data.batches.Batches`. Everything around the step is a *hook*, called after
every step with ``(step, state, metrics)`` in the manner of clu's periodic actions:

* :class:`LogMetrics` (every ``log_every`` steps): fetches the metrics, stops the run on NaN or
  infinity (:class:`jaxface.train.NonFiniteError`, the non-finite guard), appends them with the
  throughput to ``<workdir>/metrics.jsonl`` and keeps them for :class:`TrainInfo`;
* :class:`SaveCheckpoint` (every ``checkpoint_every`` steps, and at the end);
* :class:`ReportProgress`: the progress bar;
* :class:`PeriodicEval`: any ``evaluate(state) -> metrics`` every ``n`` steps (validation
  losses), written beside the training metrics; a stop rule such as :class:`Plateau` can end
  the run early.

``fit`` restores the latest checkpoint of ``workdir`` first and starts from the batch after the
last one consumed, so a run killed at any point continues exactly where its last checkpoint left
off and draws the same batches and random numbers as an uninterrupted one; the metrics logged
after that checkpoint are dropped from the logs, which then read as the uninterrupted run's.

Faults end a run with one clear error and nothing lost: the work directory is locked while
training (a second process stops with :class:`jaxface.train.WorkdirBusyError`); a NaN or
infinite state is never saved (:class:`jaxface.train.NonFiniteError`, checked on the devices
before every save, whatever the logging period); Ctrl-C raises :class:`TrainingInterrupted`
("stopped at step N, checkpoint M kept"); a full disk raises
:class:`jaxface.files.DiskFullError`. A run that has already finished trains nothing, says so
(a log warning) and reports the figures of its last logged step.

``map_in_batches`` and ``apply_in_batches`` run a jitted function (a module's ``apply``) over
arrays in fixed-size chunks, so inference compiles once.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jax
import numpy as np
from tqdm.auto import tqdm

from jaxface.data.batches import Batches
from jaxface.files import flatten_tree, unflatten_tree, write_json, write_npz
from jaxface.sharding import replicate
from jaxface.train.checkpoint import Checkpoints
from jaxface.train.metrics import (
    MetricsWriter,
    Throughput,
    check_finite,
    read_jsonl,
)
from jaxface.train.workdir import lock_workdir

__all__ = [
    "Hook",
    "LogMetrics",
    "LoopConfig",
    "PeriodicEval",
    "Plateau",
    "ReportProgress",
    "SaveCheckpoint",
    "TrainInfo",
    "TrainingInterrupted",
    "apply_in_batches",
    "fit",
    "kept_params",
    "map_in_batches",
    "read_jsonl",
]

logger = logging.getLogger(__name__)

_INT64 = 2**63


@dataclasses.dataclass(frozen=True)
class LoopConfig:
    """How long to train and how often to log and save.

    Attributes:
      num_epochs: epochs to train in total (a resumed run trains the rest).
      checkpoint_every: steps between checkpoints (the last step is always saved).
      log_every: steps between metric records.
      seed: base PRNG seed of the step's ``rng``.
      progress: show a progress bar.
      desc: progress-bar label.
      progress_metric: the metric shown in the progress bar.

    Raises:
      ValueError: ``num_epochs``, ``checkpoint_every`` or ``log_every`` below 1 (a run of no
        epochs trains nothing), or a seed that does not fit in 64 bits.
    """

    num_epochs: int
    checkpoint_every: int = 1000
    log_every: int = 50
    seed: int = 0
    progress: bool = True
    desc: str = "train"
    progress_metric: str = "loss"

    def __post_init__(self):
        for name in ("num_epochs", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        if not -_INT64 <= self.seed < _INT64:
            raise ValueError(f"seed must fit in 64 bits (a signed int64), got {self.seed}")

    @classmethod
    def from_config(cls, config, num_epochs: int, **overrides) -> LoopConfig:
        """The loop of an experiment config (``seed``, ``checkpoint_every``, ``log_every``,
        ``progress``), for ``num_epochs`` epochs; ``overrides`` set the other fields."""
        return cls(num_epochs=int(num_epochs), checkpoint_every=int(config.checkpoint_every),
                   log_every=int(config.log_every), seed=int(config.seed),
                   progress=bool(config.progress), **overrides)


@dataclasses.dataclass
class TrainInfo:
    """What a :func:`fit` call did.

    Attributes:
      steps: the state's step count at the end.
      train_time_s: wall time spent training the run: this call's (restore, steps, saves) plus
        that of the earlier calls it resumed, as their metrics recorded it.
      examples_per_s: throughput of the last logged interval (``None`` if nothing was logged).
      final: the last logged metrics of the run, this call's or, when it logged none (a
        finished run run again), the earlier calls' (``None`` if nothing was ever logged).
      history: every logged record ``{"step", metric: value, ...}`` of this call.
      stopped_early: a hook ended the run before ``num_epochs``.
      start_step: the step this call resumed from (0 for a new run); a call that trained
        nothing has ``steps == start_step``.
    """

    steps: int
    train_time_s: float
    examples_per_s: float | None
    final: dict[str, float] | None
    history: list[dict[str, float]]
    stopped_early: bool = False
    start_step: int = 0

    def summary(self) -> dict[str, Any]:
        """The JSON-friendly fields (everything but the history)."""
        return {"steps": self.steps, "train_time_s": self.train_time_s,
                "examples_per_s": self.examples_per_s, "final": self.final,
                "stopped_early": self.stopped_early}


class TrainingInterrupted(KeyboardInterrupt):
    """Training was interrupted (Ctrl-C); the message says where it stopped and what was kept.

    Attributes:
      step: the last step completed.
      checkpoint: the newest checkpoint kept (``None`` if none was saved yet).
    """

    def __init__(self, message: str, step: int, checkpoint: int | None):
        super().__init__(message)
        self.step, self.checkpoint = step, checkpoint

    def __str__(self) -> str:
        return str(self.args[0])


class Hook(Protocol):
    """Called after every step; returning ``True`` ends the run after this step.

    A hook may also define ``start(step) -> bool``, called once with the restored step before
    training; returning ``True`` means the run had already ended (nothing more is trained); and
    ``finish(step)``, called once after the final checkpoint of a run that was not interrupted.
    """

    def __call__(self, step: int, state: Any, metrics: Mapping[str, jax.Array]) -> bool | None:
        ...


class LogMetrics:
    """Every ``every`` steps: fetch the metrics, check them, write them, keep them.

    Args:
      workdir: run folder (``metrics.jsonl``).
      every: steps between records (and the last step of the run).
      batch_size: examples per step (for ``examples_per_s``).
      last_step: the run's final step (always logged).
    """

    def __init__(self, workdir: str, every: int, batch_size: int, last_step: int):
        self.writer = MetricsWriter(workdir)
        self.every = max(1, int(every))
        self.batch_size = batch_size
        self.last_step = last_step
        self.meter = Throughput()
        self.history: list[dict[str, float]] = []
        self.earlier: list[dict[str, float]] = []
        self.epoch = 0
        self._t0 = time.perf_counter()
        self.prior_time = 0.0

    def resume(self, step: int) -> list[dict[str, float]]:
        """Keeps the records up to ``step`` (the restored checkpoint) and returns them.

        Records logged after that checkpoint by a run that was killed are dropped (the resumed
        run logs those steps again), so the log reads as an uninterrupted run's.
        """
        self.earlier = self.writer.rewind(step)
        if self.earlier:
            self.prior_time = float(self.earlier[-1].get("train_time_s", 0.0))
        return self.earlier

    def train_time(self) -> float:
        """Seconds spent training the run so far (earlier calls included)."""
        return self.prior_time + time.perf_counter() - self._t0

    def __call__(self, step, state, metrics):
        del state
        self.meter.add(self.batch_size)
        if step % self.every and step != self.last_step:
            return None
        host = {k: float(v) for k, v in jax.device_get(dict(metrics)).items()}
        check_finite(host, step)
        host.update(examples_per_s=self.meter.rate(), epoch=self.epoch, time=time.time(),
                    train_time_s=self.train_time())
        self.writer.write(step, host)
        self.history.append({"step": step, **host})
        return None


class SaveCheckpoint:
    """Saves the state every ``checkpoint_every`` steps (:class:`Checkpoints` decides)."""

    def __init__(self, checkpoints: Checkpoints):
        self.checkpoints = checkpoints

    def __call__(self, step, state, metrics):
        del metrics
        self.checkpoints.save(step, state)


class ReportProgress:
    """A progress bar of the run, showing one metric and the throughput when logged."""

    def __init__(self, total: int, initial: int, log: LogMetrics, *, desc: str, metric: str,
                 enabled: bool):
        self.bar = tqdm(total=total, initial=min(initial, total), disable=not enabled,
                        desc=desc, unit="step", leave=False)
        self.log = log
        self.metric = metric
        self._shown = len(log.history)

    def __call__(self, step, state, metrics):
        del step, state, metrics
        self.bar.update(1)
        if len(self.log.history) > self._shown:
            self._shown = len(self.log.history)
            last = self.log.history[-1]
            postfix = {"per_s": f"{last['examples_per_s']:.0f}"}
            if self.metric in last:
                postfix[self.metric] = f"{last[self.metric]:.3g}"
            self.bar.set_postfix(postfix)

    def close(self):
        self.bar.close()


class PeriodicEval:
    """Runs ``evaluate(state) -> metrics`` every ``every`` steps and logs the result.

    A resumed run reads back the evaluations up to its restored step from ``eval.jsonl``, so a
    stop rule sees the whole history, and a run that had already stopped does not train again.

    With ``keep_best``, the parameters of every evaluation that becomes the best so far are
    saved to ``<workdir>/best/step_<N>.npz`` (float32 ``.npz`` of the flattened tree), and
    :meth:`best_params` returns those of the best evaluation: exactly the state that was
    evaluated, also across resumes (a file of an evaluation a resumed run dropped is never
    chosen, and the files of superseded bests are removed when the run ends, :meth:`finish`).

    Args:
      evaluate: returns scalar metrics of the current state (e.g. a validation loss).
      every: steps between evaluations.
      workdir: run folder; records go to ``<workdir>/eval.jsonl``.
      stop: optional ``history -> bool`` deciding from all evaluations so far (a list of
        metric dicts with their ``step``) whether to end the run (e.g. :class:`Plateau`).
      keep_best: optional rule with ``best(history) -> index`` (e.g. :class:`Plateau`) naming
        the evaluation whose parameters to keep.
    """

    def __init__(self, evaluate: Callable[[Any], Mapping[str, float]], every: int, workdir: str,
                 stop: Callable[[list[dict[str, float]]], bool] | None = None,
                 keep_best: Plateau | None = None):
        self.evaluate = evaluate
        self.every = max(1, int(every))
        self.writer = MetricsWriter(workdir, "eval.jsonl")
        self.best_dir = os.path.join(os.path.abspath(workdir), "best")
        self.stop = stop
        self.keep_best = keep_best
        self.history: list[dict[str, float]] = []

    def start(self, step: int) -> bool:
        """Reads the evaluations of steps ``<= step`` back (dropping later ones, logged by a
        killed run after its last checkpoint); returns whether the run had stopped."""
        self.history = self.writer.rewind(step)
        return bool(self.history and self.stop is not None and self.stop(self.history))

    def __call__(self, step, state, metrics):
        del metrics
        if step % self.every:
            return None
        result = {k: float(v) for k, v in self.evaluate(state).items()}
        check_finite(result, step)
        self.writer.write(step, result)
        self.history.append({"step": step, **result})
        if self.keep_best is not None and (
                self.keep_best.best(self.history) == len(self.history) - 1):
            write_npz(self._best_path(step), flatten_tree(jax.device_get(state.params)))
        return bool(self.stop is not None and self.stop(self.history))

    def _best_path(self, step: int) -> str:
        return _best_file(self.best_dir, step)

    def best(self) -> dict[str, float] | None:
        """The best evaluation's record (``{"step", metric: value}``), ``None`` without
        ``keep_best`` or evaluations."""
        if self.keep_best is None or not self.history:
            return None
        return self.history[self.keep_best.best(self.history)]

    def best_params(self) -> Any:
        """The parameters of :meth:`best` (a nested dict of numpy arrays) or ``None``.

        Raises:
          FileNotFoundError: the best evaluation's parameter file is missing.
        """
        record = self.best()
        return None if record is None else _read_best(self.best_dir, record["step"])

    def finish(self, step: int) -> None:
        """The run has ended: records the best evaluation in ``best/kept.json`` (what
        :func:`kept_params` reads) and removes the files of the other evaluations."""
        del step
        record = self.best()
        if record is None or not os.path.isdir(self.best_dir):
            return
        keep = os.path.basename(self._best_path(record["step"]))
        write_json(os.path.join(self.best_dir, KEPT_FILE), record)
        for name in os.listdir(self.best_dir):
            if name != keep and name.startswith("step_"):
                os.remove(os.path.join(self.best_dir, name))


KEPT_FILE = "kept.json"


def _best_file(best_dir: str, step: int) -> str:
    """The parameters saved for the evaluation at ``step``."""
    return os.path.join(best_dir, f"step_{int(step):09d}.npz")


def _read_best(best_dir: str, step: int) -> dict[str, Any]:
    path = _best_file(best_dir, step)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: the parameters of the best evaluation (step {step}) "
                                "are missing; train the run again")
    with np.load(path, allow_pickle=False) as f:
        return unflatten_tree({k: f[k] for k in f.files})


def kept_params(workdir: str) -> tuple[dict[str, Any], dict[str, float]] | None:
    """The parameters a finished run kept from its best evaluation, with that evaluation's
    record (``{"step", metric: value}``); ``None`` when the run keeps its last state (read its
    latest checkpoint instead).

    Raises:
      FileNotFoundError: ``best/kept.json`` names a parameter file that is missing.
    """
    best_dir = os.path.join(os.path.abspath(workdir), "best")
    path = os.path.join(best_dir, KEPT_FILE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    return _read_best(best_dir, record["step"]), record


class Plateau:
    """A stop rule: the metric has not improved by ``min_delta`` for ``patience`` evaluations.

    Args:
      metric: the evaluated metric to watch.
      patience: evaluations without improvement before stopping.
      min_delta: the smallest change that counts as an improvement (in the metric's units).
      mode: ``"min"`` (lower is better) or ``"max"``.

    Example:
      >>> stop = Plateau("val", patience=2)
      >>> [stop([{"val": v} for v in values]) for values in ([3, 2], [3, 2, 2.5], [3, 2, 2.5, 2])]
      [False, False, True]
    """

    def __init__(self, metric: str, patience: int, min_delta: float = 0.0, mode: str = "min"):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        self.metric, self.patience, self.min_delta = metric, int(patience), float(min_delta)
        self.sign = 1.0 if mode == "min" else -1.0

    def best(self, history: Sequence[Mapping[str, float]]) -> int:
        """Index of the best evaluation (the first one when tied within ``min_delta``)."""
        best, value = 0, self.sign * history[0][self.metric]
        for i, record in enumerate(history[1:], start=1):
            if self.sign * record[self.metric] < value - self.min_delta:
                best, value = i, self.sign * record[self.metric]
        return best

    def __call__(self, history: Sequence[Mapping[str, float]]) -> bool:
        return bool(history) and len(history) - 1 - self.best(history) >= self.patience


def fit(
    state: Any,
    train_step: Callable,
    batches: Batches,
    loop: LoopConfig,
    workdir: str,
    *,
    hooks: Sequence[Hook] = (),
) -> tuple[Any, TrainInfo]:
    """Runs (or resumes) training; returns the final state (on the devices) and its info.

    Args:
      state: initial state, a pytree with an int32 ``step``; replicated over the batches' mesh.
      train_step: the jitted ``(state, batch, rng) -> (state, metrics)``; ``rng`` is one fixed
        key (``loop.seed``), steps fold in their own ``state.step``.
      batches: the device batches (their ``steps_per_epoch`` sets the epoch length).
      loop: duration, logging and checkpoint periods.
      workdir: run folder (``checkpoints/``, ``metrics.jsonl``).
      hooks: more hooks, called after the built-in logging and checkpointing ones.

    Raises:
      CheckpointError: no checkpoint can be read (a damaged latest one is skipped when an
        older one can).
      DiskFullError: the device is full (names the file and the bytes it needed).
      NonFiniteError: a logged metric, or the state about to be saved, is NaN or infinite.
      TrainingInterrupted: Ctrl-C (names the last step and the checkpoint kept).
      WorkdirBusyError: another process is training in ``workdir``.
    """
    workdir = os.path.abspath(workdir)
    steps_per_epoch = batches.steps_per_epoch
    total = loop.num_epochs * steps_per_epoch
    with lock_workdir(workdir):
        log = LogMetrics(workdir, loop.log_every, batches.batch_size, total)
        ckpt = Checkpoints(workdir, save_every=loop.checkpoint_every)
        progress = None
        step = start = 0
        stopped = False
        try:
            state, start = ckpt.restore_or(replicate(state, batches.mesh))
            step = start
            log.resume(start)
            progress = ReportProgress(total, start, log, desc=loop.desc,
                                      metric=loop.progress_metric, enabled=loop.progress)
            all_hooks = (log, SaveCheckpoint(ckpt), progress, *hooks)
            stopped = any([bool(h.start(start)) for h in hooks if hasattr(h, "start")])
            if stopped or start >= total:
                why = f"stopped early at step {start}" if stopped else f"step {start} of {total}"
                logger.warning("%s: the run is already complete (%s); nothing to train",
                               workdir, why)
            rng = jax.random.key(loop.seed)
            first_epoch = loop.num_epochs if stopped else start // steps_per_epoch
            for epoch in range(first_epoch, loop.num_epochs):
                log.epoch = epoch
                with batches.epoch(epoch, start=max(0, step - epoch * steps_per_epoch)) as it:
                    for batch in it:
                        state, metrics = train_step(state, batch, rng)
                        step += 1
                        stop = [bool(h(step, state, metrics)) for h in all_hooks]
                        if any(stop):
                            stopped = True
                            break
                if stopped:
                    break
            ckpt.save(step, state, force=True)
            for hook in hooks:
                if hasattr(hook, "finish"):
                    hook.finish(step)
        except KeyboardInterrupt as err:
            kept = ckpt.settle()  # a save in flight completes
            kept_text = f"checkpoint {kept} kept" if kept is not None else "no checkpoint yet"
            raise TrainingInterrupted(
                f"stopped at step {step}, {kept_text} ({workdir}); run again to resume",
                step, kept) from err
        finally:
            if progress is not None:
                progress.close()
            ckpt.close()
    history = log.history
    run = log.earlier + history
    trained = step > start
    info = TrainInfo(
        steps=int(jax.device_get(state.step)) if hasattr(state, "step") else step,
        train_time_s=log.train_time() if trained or not log.earlier else log.prior_time,
        examples_per_s=run[-1]["examples_per_s"] if run else None,
        final=run[-1] if run else None,
        history=history,
        stopped_early=stopped,
        start_step=start,
    )
    return state, info


def map_in_batches(
    fn: Callable[..., Any], inputs: tuple[np.ndarray, ...], batch_size: int = 64
) -> Any:
    """Applies a jitted ``fn(*chunk)`` to arrays in fixed-size chunks; returns numpy.

    The last chunk is padded by repeating its final row, so ``fn`` compiles once. ``fn`` may
    return an array or a pytree of arrays (each with the chunk as leading axis). Bind
    parameters with ``functools.partial(apply, params)``.

    Args:
      fn: maps ``[batch_size, ...]`` inputs to outputs with a leading ``batch_size`` axis.
      inputs: arrays with a common leading dimension ``M``.
      batch_size: rows per call.

    Returns:
      ``fn``'s outputs concatenated over the ``M`` rows (same pytree structure).

    Raises:
      ValueError: ``inputs`` have no rows.
    """
    n = inputs[0].shape[0]
    if n == 0:
        raise ValueError("map_in_batches needs at least one row")
    outs = []
    for start in range(0, n, batch_size):
        chunk = [np.asarray(x[start : start + batch_size]) for x in inputs]
        m = chunk[0].shape[0]
        if m < batch_size:
            chunk = [np.concatenate([c, np.repeat(c[-1:], batch_size - m, 0)]) for c in chunk]
        outs.append(jax.tree.map(lambda y, m=m: np.asarray(y)[:m], fn(*chunk)))
    return jax.tree.map(lambda *ys: np.concatenate(ys), *outs)


@functools.partial(jax.jit, static_argnums=0)
def _apply(module, params, *inputs):
    return module.apply({"params": params}, *inputs)


def apply_in_batches(
    module, params: Any, inputs: tuple[np.ndarray, ...], batch_size: int = 64
) -> Any:
    """``module.apply({"params": params}, *inputs)`` over arrays in fixed-size batches.

    The jitted apply is cached per module (a static argument) and batch shape, so repeated calls
    with the same module compile once. Returns numpy, with :func:`map_in_batches`'s padding.
    """
    return map_in_batches(functools.partial(_apply, module, params), inputs, batch_size)
