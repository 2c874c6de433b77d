"""Timing harness shared by the benchmark cases.

Conventions (style guide, benchmarks item):

* compile time is excluded from step times and reported separately (``compile_s``, ``trace_s``);
* every timed call is closed by ``block_until_ready`` (PyTorch on CPU is synchronous; a
  PyTorch CUDA runner returns tensors, and :func:`block` synchronises their device);
* several repetitions are timed and the **median** is reported, with the raw times kept;
* implementations compared side by side are **interleaved** round by round (the order rotates
  every round), and a ratio is the median of the per-round ratios, so slow phases of a shared,
  loaded machine hit both sides alike;
* every JAX step is checked to compile **once per shape**: no backend compilation may happen
  during the timed rounds, and a jitted step's cache holds one entry.

Records are plain dicts, one JSON line per measurement (:class:`Recorder`).
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import numpy as np

from jaxface.machine import cpu_model, load_average

__all__ = [
    "ALLOCATOR_ENV",
    "CompileCounter",
    "JaxStep",
    "Recorder",
    "Timing",
    "block",
    "compile_counter",
    "configure_allocator",
    "interleave",
    "jax_memory",
    "machine_info",
    "memory_fields",
    "paired_ratio",
    "torch_available",
    "torch_peak_memory",
]


# --------------------------------------------------------------------------------------------
# Machine and environment
# --------------------------------------------------------------------------------------------


def torch_available() -> bool:
    """Whether PyTorch (the ``bench`` extra) can be imported."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def machine_info() -> dict[str, Any]:
    """Describes the machine and software the figures come from."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "numpy": np.__version__,
    }
    try:
        import jaxlib

        info["jaxlib"] = jaxlib.__version__
    except (ImportError, AttributeError):
        pass
    load = load_average()
    if load is not None:
        info["load_average"] = [round(x, 2) for x in load]
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            total = next(line for line in fh if line.startswith("MemTotal"))
        info["memory_gib"] = round(int(total.split()[1]) / 2**20, 1)
    except (OSError, StopIteration):
        pass
    if torch_available():
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def device_label() -> str:
    """A short device description for every record, e.g. ``"cpu (AMD EPYC, 2 cores)"``."""
    dev = jax.devices()[0]
    if dev.platform == "cpu":
        return f"cpu ({cpu_model()}, {os.cpu_count()} cores)"
    return f"{dev.platform} ({dev.device_kind})"


# glibc mallopt parameters.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8

#: Environment of the ``"tuned"`` allocator, read by glibc at process start (``benchmarks.run``
#: re-executes itself with it): one malloc arena (threads other than the main one otherwise get
#: arenas of at most 64 MiB and fall back to ``mmap`` for anything larger), no ``mmap`` for large
#: blocks, no trimming of the heap, and the heap grown 256 MiB at a time.
ALLOCATOR_ENV = {
    "MALLOC_ARENA_MAX": "1",
    "MALLOC_MMAP_MAX_": "0",
    "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1),
    "MALLOC_TOP_PAD_": str(256 * 2**20),
}


def configure_allocator(mode: str) -> bool:
    """Sets how glibc's ``malloc`` serves large blocks (Linux only).

    XLA and PyTorch on CPU allocate their large buffers with ``malloc``. glibc serves blocks above
    its mmap threshold (at most 32 MiB) with a fresh ``mmap`` and unmaps them on ``free``, so
    every step pays a page fault (and the kernel zeroing a page) for every 4 KiB of every large
    temporary. ``"tuned"`` applies :data:`ALLOCATOR_ENV` at run time: large blocks stay in the
    heap (``M_MMAP_MAX = 0``, one arena) and memory is never given back (``M_TRIM_THRESHOLD`` at
    its maximum), so pages are faulted once and reused. Arenas created before the call keep
    their own behaviour, which is why ``benchmarks.run`` sets the environment before start-up
    instead. ``"default"`` restores glibc's behaviour for large blocks (a fresh mapping for every
    block above 32 MiB, glibc's dynamic maximum threshold). The setting applies to both JAX and
    PyTorch in this process.

    Args:
      mode: ``"tuned"`` or ``"default"``.

    Returns:
      Whether the setting was applied (``False`` where glibc's ``mallopt`` is unavailable).
    """
    if mode not in ("tuned", "default"):
        raise ValueError(f"allocator mode must be 'tuned' or 'default', got {mode!r}")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    if mode == "tuned":
        ok = (
            mallopt(_M_ARENA_MAX, 1)
            and mallopt(_M_MMAP_MAX, 0)
            and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
            and mallopt(_M_TOP_PAD, 256 * 2**20)
        )
    else:
        ok = (
            mallopt(_M_MMAP_MAX, 65536)
            and mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
            and mallopt(_M_TRIM_THRESHOLD, 64 * 2**20)
        )
    return bool(ok)


# --------------------------------------------------------------------------------------------
# Compilation accounting
# --------------------------------------------------------------------------------------------


class CompileCounter:
    """Counts backend compilations and sums trace/lower/compile durations (jax.monitoring).

    One process-wide listener is registered on first use; :meth:`snapshot` differences give the
    compilations inside a region.
    """

    _EVENTS = {
        "/jax/core/compile/backend_compile_duration": "compile_s",
        "/jax/core/compile/jaxpr_trace_duration": "trace_s",
        "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower_s",
    }

    def __init__(self) -> None:
        self.compiles = 0
        self.totals = {v: 0.0 for v in self._EVENTS.values()}
        jax.monitoring.register_event_duration_secs_listener(self._on_duration)

    def _on_duration(self, event: str, duration: float, **_: Any) -> None:
        key = self._EVENTS.get(event)
        if key is None:
            return
        self.totals[key] += float(duration)
        if key == "compile_s":
            self.compiles += 1

    def snapshot(self) -> dict[str, float]:
        """Current counters: ``compiles`` and the summed durations."""
        return {"compiles": self.compiles, **self.totals}

    @staticmethod
    def delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
        """``after - before`` for every counter."""
        return {k: after[k] - before[k] for k in after}


_COUNTER: CompileCounter | None = None


def compile_counter() -> CompileCounter:
    """The process-wide :class:`CompileCounter`."""
    global _COUNTER
    if _COUNTER is None:
        _COUNTER = CompileCounter()
    return _COUNTER


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


def block(value: Any) -> Any:
    """Waits for every JAX array in ``value`` and, for PyTorch tensors on a CUDA device, for
    that device's queued work (PyTorch on CPU and other leaves are already computed)."""
    for leaf in jax.tree.leaves(value):
        wait = getattr(leaf, "block_until_ready", None)
        if wait is not None:
            wait()
        elif getattr(leaf, "is_cuda", False) and type(leaf).__module__.startswith("torch"):
            import torch

            torch.cuda.synchronize(leaf.device)
    return value


@dataclasses.dataclass
class Timing:
    """Per-call wall times of one runner.

    Attributes:
      times_s: seconds per call, one entry per timed round (each round may run ``inner`` calls;
        the entry is their mean).
      inner: calls per round.
    """

    times_s: list[float]
    inner: int = 1

    @property
    def median_s(self) -> float:
        """Median seconds per call."""
        return float(statistics.median(self.times_s))

    @property
    def quartiles_s(self) -> tuple[float, float]:
        """Lower and upper quartile of the per-call seconds."""
        q = np.percentile(np.asarray(self.times_s), [25, 75])
        return float(q[0]), float(q[1])


def output_and_grads(fn: Callable, cotangent: Any, *args: Any) -> tuple[Any, tuple]:
    """``(fn(*args), grads)``: the output and its vector-Jacobian product with ``cotangent``.

    The JAX side of a forward+backward timing: what PyTorch's ``autograd.grad(out, params,
    cotangent)`` computes after its forward pass. The output must be returned: the gradients of
    ``sum(fn(*args) * cotangent)`` do not depend on the output's value, so a jitted
    ``jax.grad`` of that loss lets XLA drop most of the forward pass.

    Args:
      fn: the function of ``args``.
      cotangent: an array of the output's shape.
      args: the inputs; a gradient is returned for each.
    """
    out, vjp = jax.vjp(fn, *args)
    return out, vjp(cotangent.astype(out.dtype))


def interleave(
    runners: Mapping[str, Callable[[], Any]],
    *,
    rounds: int,
    warmup: int = 1,
    min_round_s: float = 0.0,
    counter: CompileCounter | None = None,
) -> dict[str, Timing]:
    """Times several runners side by side, one call of each per round, order rotating.

    Args:
      runners: name -> zero-argument callable running one step (it keeps its own state) and
        returning something to block on.
      rounds: timed rounds.
      warmup: untimed calls of each runner before timing (after any compile).
      min_round_s: a runner faster than this is called ``inner`` times per round (calibrated on
        the last warm-up call) so short steps are not dominated by timer and dispatch noise.
      counter: when given, asserts that no backend compilation happens in the timed rounds.

    Returns:
      name -> :class:`Timing`.

    Raises:
      AssertionError: if a compilation happens while timing.
    """
    names = list(runners)
    inner = dict.fromkeys(names, 1)
    for name in names:
        elapsed = 0.0
        for _ in range(max(1, warmup)):
            t0 = time.perf_counter()
            block(runners[name]())
            elapsed = time.perf_counter() - t0
        if min_round_s > 0 and elapsed > 0:
            inner[name] = max(1, min(1000, math.ceil(min_round_s / elapsed)))
    before = counter.snapshot() if counter is not None else None
    times: dict[str, list[float]] = {n: [] for n in names}
    for r in range(rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            run, k = runners[name], inner[name]
            t0 = time.perf_counter()
            for _ in range(k):
                out = run()
            block(out)
            times[name].append((time.perf_counter() - t0) / k)
    if counter is not None:
        grew = counter.snapshot()["compiles"] - before["compiles"]
        if grew:
            raise AssertionError(f"{grew} compilation(s) happened while timing {names}")
    return {n: Timing(times[n], inner[n]) for n in names}


def paired_ratio(slow: Timing, fast: Timing) -> float:
    """Median over rounds of ``slow / fast`` (same round, so same machine state)."""
    pairs = [s / f for s, f in zip(slow.times_s, fast.times_s, strict=False) if f > 0]
    return float(statistics.median(pairs)) if pairs else float("nan")


class JaxStep:
    """A jitted JAX step with its compile accounting, as a zero-argument runner.

    The first call (tracing, lowering, compiling, running) happens in the constructor and is
    timed on its own; the counter tells how many compilations and how long they took.

    Args:
      name: label for error messages.
      call: zero-argument callable that runs one step and returns what to block on (it keeps
        and threads its own state, e.g. a donated train state).
      jitted: the jitted function (for the one-entry cache check); may be ``None``.
      counter: the compile counter.
    """

    def __init__(
        self,
        name: str,
        call: Callable[[], Any],
        jitted: Any = None,
        counter: CompileCounter | None = None,
    ):
        self.name = name
        self.call = call
        self.jitted = jitted
        counter = counter or compile_counter()
        before = counter.snapshot()
        t0 = time.perf_counter()
        block(call())
        self.first_call_s = time.perf_counter() - t0
        self.compile_stats = CompileCounter.delta(before, counter.snapshot())

    def __call__(self) -> Any:
        return self.call()

    def traced_signatures(self) -> int | None:
        """Entries in the jitted function's dispatch cache: one per traced input signature (a
        retrace, e.g. of a weakly typed input that comes back strongly typed, adds an entry even
        when the backend reuses the compiled executable)."""
        size_fn = getattr(self.jitted, "_cache_size", None)
        return None if size_fn is None else int(size_fn())

    def fields(self, *, strict: bool = False) -> dict[str, Any]:
        """Compile fields for a record.

        ``traced_signatures`` counts the jitted function's dispatch-cache entries after the
        warm-up and timed calls, all with one input shape: more than one means the step was
        traced again for the same shapes (e.g. a weakly typed scalar in the initial state that
        the step returns strongly typed). That is recorded (``one_trace_per_shape``) and, with
        ``strict``, raised. Backend compilations are counted separately
        (``compiles_first_call``; :func:`interleave` fails on any during timing).

        Raises:
          AssertionError: with ``strict``, if the function was traced more than once.
        """
        out = {
            "first_call_s": round(self.first_call_s, 4),
            "compile_s": round(self.compile_stats.get("compile_s", 0.0), 4),
            "trace_s": round(
                self.compile_stats.get("trace_s", 0.0) + self.compile_stats.get("lower_s", 0.0), 4
            ),
            "compiles_first_call": int(self.compile_stats.get("compiles", 0)),
        }
        traces = self.traced_signatures()
        if traces is not None:
            out["traced_signatures"] = traces
            out["one_trace_per_shape"] = traces == 1
            if strict and traces != 1:
                raise AssertionError(
                    f"{self.name}: expected one traced signature, the cache holds {traces}")
        return out


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def jax_memory(jitted: Any, *args: Any) -> dict[str, int]:
    """Buffer sizes of a jitted function's executable for ``args`` (XLA buffer assignment).

    ``lower(...).compile()`` reuses the executable compiled by the first call, so this does not
    compile again.

    Returns:
      ``{"temp_bytes", "argument_bytes", "output_bytes", "alias_bytes", "peak_bytes"}`` with
      ``peak_bytes = argument + output + temp - alias`` (everything live while the step runs);
      empty when the backend gives no analysis.
    """
    try:
        stats = jitted.lower(*args).compile().memory_analysis()
    except Exception:  # noqa: BLE001 - memory stats are optional per backend.
        return {}
    if stats is None:
        return {}
    temp = int(stats.temp_size_in_bytes)
    arg = int(stats.argument_size_in_bytes)
    out = int(stats.output_size_in_bytes)
    alias = int(stats.alias_size_in_bytes)
    return {
        "temp_bytes": temp,
        "argument_bytes": arg,
        "output_bytes": out,
        "alias_bytes": alias,
        "peak_bytes": arg + out + temp - alias,
    }


def memory_fields(jitted: Any, *args: Any) -> dict[str, int]:
    """The record fields ``peak_memory_bytes`` and ``temp_memory_bytes`` of :func:`jax_memory`
    (empty when the backend does not report them)."""
    mem = jax_memory(jitted, *args)
    if not mem:
        return {}
    return {"peak_memory_bytes": mem["peak_bytes"], "temp_memory_bytes": mem["temp_bytes"]}


def torch_peak_memory(run: Callable[[], Any]) -> int | None:
    """Peak bytes allocated by PyTorch's CPU allocator during one call of ``run``, above what was
    allocated before it (PyTorch profiler memory events)."""
    try:
        import tempfile

        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return None
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(path)
        with open(path, encoding="utf-8") as fh:
            events = json.load(fh).get("traceEvents", [])
    memory = [e["args"] for e in events if e.get("name") == "[memory]" and "args" in e]
    if not memory:
        return None
    first = memory[0]
    base = int(first["Total Allocated"]) - int(first["Bytes"])
    return int(max(int(m["Total Allocated"]) for m in memory) - base)


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-safe copy: numpy scalars to Python, floats rounded, NaN to None."""
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return None
        return float(f"{value:.6g}")
    return value


class Recorder:
    """Collects measurement records and appends them to a JSONL file as they come.

    Args:
      path: JSONL file (created or appended to); ``None`` keeps records in memory only.
      run_id: identifier stored in every record.
      common: fields added to every record (device, allocator, ...).
    """

    def __init__(self, path: str | None, run_id: str, common: Mapping[str, Any] | None = None):
        self.path = path
        self.run_id = run_id
        self.common = dict(common or {})
        self.records: list[dict[str, Any]] = []
        if path is not None:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)

    def add(self, **fields: Any) -> dict[str, Any]:
        """Adds one record (``case`` and ``kind`` expected among ``fields``); returns it."""
        record = {"run_id": self.run_id, **self.common, **fields}
        record = _clean(record)
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, sort_keys=False) + "\n")
        return record


def timing_fields(
    timing: Timing,
    *,
    batch: int | None = None,
    flops: float | None = None,
    bytes_moved: float | None = None,
    peaks: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Record fields of one timing: median, quartiles, rates and roofline fractions.

    Args:
      timing: the runner's :class:`Timing`.
      batch: meshes (examples) per call, for ``meshes_per_s``.
      flops: floating-point operations per call.
      bytes_moved: bytes read and written per call.
      peaks: ``{"gflops": ..., "gbps": ...}`` of the machine (see the ``machine`` case).
    """
    med = timing.median_s
    q1, q3 = timing.quartiles_s
    out: dict[str, Any] = {
        "median_s": med,
        "q1_s": q1,
        "q3_s": q3,
        "rounds": len(timing.times_s),
        "calls_per_round": timing.inner,
        "times_s": [round(t, 6) for t in timing.times_s],
        "steps_per_s": 1.0 / med if med > 0 else None,
    }
    if batch is not None:
        out["meshes_per_s"] = batch / med if med > 0 else None
    if flops is not None:
        out["flops"] = flops
        out["gflops_per_s"] = flops / med / 1e9
    if bytes_moved is not None:
        out["bytes"] = bytes_moved
        out["gb_per_s"] = bytes_moved / med / 1e9
    if peaks:
        if flops is not None and peaks.get("gflops"):
            out["flops_fraction"] = out["gflops_per_s"] / peaks["gflops"]
        if bytes_moved is not None and peaks.get("gbps"):
            out["bandwidth_fraction"] = out["gb_per_s"] / peaks["gbps"]
        floor = 0.0
        if flops is not None and peaks.get("gflops"):
            floor = max(floor, flops / (peaks["gflops"] * 1e9))
        if bytes_moved is not None and peaks.get("gbps"):
            floor = max(floor, bytes_moved / (peaks["gbps"] * 1e9))
        if floor > 0:
            out["roofline_s"] = floor
            out["roofline_fraction"] = floor / med
    return out


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Sets PyTorch's intra-op thread count inside the block."""
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
