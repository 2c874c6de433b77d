"""The GPU benchmark: jaxface on one GPU beside PyTorch CUDA, in one command of under 10 minutes.

    python -m benchmarks.gpu                   # on a machine with one NVIDIA GPU
    python -m benchmarks.gpu --dry-run         # the smallest shapes, on any machine (a rehearsal)

Writes ``<out>/<name>.jsonl`` (one JSON line per measurement, appended as the run goes) and
``<out>/<name>.md`` (:func:`benchmarks.report.summarize`). Parts, in this order (one that fails
is recorded as an error and the others go on; one that would overrun ``--budget-s`` is recorded
as skipped):

1. ``device``: JAX's devices and device kind; jax, jaxlib, CUDA plugin, torch, CUDA, cuDNN and
   driver versions (``nvidia-smi``); the HBM bandwidth of the device from :data:`HBM_BANDWIDTH`
   (by name; ``--hbm-gbps`` for a device missing from it, else the measured copy); a measured
   1 GiB copy and an 8192² float32 matmul in JAX and PyTorch.
2. ``s2d_train``: the S2D-Dec train step at the paper's batch (``jaxface/configs/s2d.py``
   paper mode: 16) on the 6990-vertex face hierarchy of ``faces4d/coma_scale``: ``jax/auto``
   (the library as shipped) and its variants, the official-style, SpiralNet++-style and folded
   PyTorch steps on the same initial weights (parity recorded), and the SpiralNet++-style decoder
   through ``torch.compile`` (compile time recorded apart), all interleaved round by round.
3. ``spiral_conv``: the five spiral layers of that decoder at the paper's batch, forward and
   forward+backward, every ``jaxface.nn`` implementation beside the PyTorch layers (eager and
   compiled); each time is compared with its **bandwidth floor**: the bytes a fused layer
   moves (:func:`benchmarks.analytic.spiral_conv_cost`) over the device's HBM bandwidth.
4. ``data_feed``: the step fed by :class:`jaxface.data.batches.InMemoryBatches` (the paper's
   20,466 meshes held on the device, one on-device gather per step) against the step on a
   fixed batch, interleaved; and the gather on its own.
5. ``motion3dgan_train``: the Motion3DGAN step at the paper's size (``jaxface/configs/
   motion3dgan.py`` paper mode: generator base channels 1024, batch 128, 4 critic updates).
6. ``projection``: the wall time of the paper's full trainings at the measured rates: S2D-Dec
   300 epochs of CoMA's 20,466 meshes at batch 16 (and of one fold's 9 training identities),
   Motion3DGAN 8000 epochs of the 545 training sub-sequences at batch 128.
7. ``spiral_conv`` again at batch 256 (forward+backward, the layer where bandwidth dominates
   launch overhead) and ``s2d_train`` ``jax/auto`` at batches 64 and 256.

Settings (each implementation at its fastest, recorded in the ``run`` record):

* PyTorch: ``torch.set_float32_matmul_precision("high")`` (TF32 matmuls),
  ``torch.backends.cudnn.benchmark = True``, ``torch.compile`` with the inductor backend; a
  PyTorch runner returns its tensors and :func:`benchmarks.common.block` synchronises the CUDA
  device at the end of every timed round (as ``block_until_ready`` does for JAX).
* JAX: float32 dots at JAX's default precision, which is TF32 on Ampere and newer GPUs (the
  same arithmetic as PyTorch's ``"high"``); no XLA flags are set (``XLA_FLAGS`` as found is
  recorded); ``XLA_PYTHON_CLIENT_MEM_FRACTION=0.45`` unless already set, so JAX and PyTorch
  share the device memory.

A run whose JAX backend is not a GPU is not a GPU result: without ``--dry-run`` the command
refuses to run (exit status 2); with it every record says ``gpu_result: false`` and the
summary writes no GPU headline. A dry run on a GPU is not a result either (its shapes are not
the paper's). The dry run compiles ``torch.compile`` with the ``aot_eager`` backend on a CPU
(the same capture, no code generation).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.analytic import s2d_step_cost, s2d_variant_layers
from benchmarks.common import (
    CompileCounter,
    JaxStep,
    Recorder,
    block,
    compile_counter,
    interleave,
    machine_info,
    memory_fields,
    output_and_grads,
    paired_ratio,
    timing_fields,
    torch_available,
    utc_now,
)
from jaxface.files import write_atomic

__all__ = [
    "COMA_MESHES",
    "HBM_BANDWIDTH",
    "MOTION3DGAN_TRAIN_SEQUENCES",
    "GpuContext",
    "hbm_bandwidth",
    "main",
    "parse_args",
]

#: Peak HBM bandwidth by device name, bytes/s (vendor datasheets): ``(words that must all
#: appear in the device name, label, bandwidth)``, first match wins. JAX's ``device_kind`` and
#: ``torch.cuda.get_device_name`` both give names such as ``"NVIDIA H100 80GB HBM3"`` (SXM),
#: ``"NVIDIA H100 PCIe"``, ``"NVIDIA H100 NVL"`` or ``"NVIDIA H200"``.
HBM_BANDWIDTH: tuple[tuple[tuple[str, ...], str, float], ...] = (
    (("H200",), "H200 (141 GB HBM3e)", 4.8e12),
    (("H100", "PCIE"), "H100 PCIe (80 GB HBM2e)", 2.0e12),
    (("H100", "NVL"), "H100 NVL (94 GB HBM3)", 3.9e12),
    (("H100",), "H100 SXM (80 GB HBM3)", 3.35e12),
    (("A100", "PCIE", "80GB"), "A100 PCIe 80 GB (HBM2e)", 1.935e12),
    (("A100", "80GB"), "A100 SXM 80 GB (HBM2e)", 2.039e12),
    (("A100",), "A100 40 GB (HBM2)", 1.555e12),
)

#: Meshes of CoMA (12 subjects x 12 expressions), the S2D paper's data set.
COMA_MESHES = 20_466
#: Share of CoMA a cross-validation fold trains on (9 of 12 identities or expressions).
COMA_FOLD_TRAIN_SHARE = 9 / 12
#: Motion3DGAN's training sub-sequences (689 in the official list, the first sample of each
#: identity and expression, 144, held out for testing).
MOTION3DGAN_TRAIN_SEQUENCES = 545

_RUN_CASE = "run"


def hbm_bandwidth(device_name: str | None) -> tuple[str, float] | None:
    """``(label, bytes/s)`` of a device name in :data:`HBM_BANDWIDTH`, or ``None``.

    Words match whole (``"GH200"`` is not an H200), case-insensitively.
    """
    if not device_name:
        return None
    name = device_name.upper().replace("-", " ")
    for words, label, bandwidth in HBM_BANDWIDTH:
        if all(re.search(rf"\b{w}\b", name) for w in words):
            return label, bandwidth
    return None


# --------------------------------------------------------------------------------------------
# Context
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class GpuContext:
    """What every part receives.

    Attributes:
      recorder: where records go.
      counter: the process-wide compile counter.
      dry_run: the smallest shapes (a rehearsal, never a result).
      gpu: whether JAX's default backend is a GPU.
      torch_device: the PyTorch device of the references (``None``: no comparable PyTorch).
      compile_backend: ``torch.compile`` backend.
      mesh: benchmark mesh of the S2D-Dec cases (:func:`benchmarks.fixtures.mesh_for`).
      batch: the paper's S2D-Dec batch (dry run: smaller).
      rounds: timed rounds.
      min_round_s: runners faster than this repeat within a round.
      peaks: ``{"gflops", "gbps"}``: the measured matmul rate and the HBM bandwidth.
      hbm: ``(label, bytes/s)`` of the device: the bandwidth of its bandwidth floors
        (``None`` until the ``device`` part measured a copy when its name is not in the
        table).
      cache_dir: topology cache folder.
      deadline: ``time.perf_counter()`` value after which optional parts are skipped.
      shared: values handed from one part to a later one.
      log: progress printer.
    """

    recorder: Recorder
    counter: CompileCounter
    dry_run: bool
    gpu: bool
    torch_device: str | None
    compile_backend: str
    mesh: str
    batch: int
    rounds: int
    min_round_s: float
    peaks: dict[str, float]
    hbm: tuple[str, float] | None
    cache_dir: str | None
    deadline: float
    shared: dict[str, Any]
    log: Callable[[str], None] = print

    def remaining_s(self) -> float:
        """Seconds left of the budget."""
        return self.deadline - time.perf_counter()

    def allows(self, part: str, estimate_s: float) -> bool:
        """Whether ``part`` (about ``estimate_s`` seconds) fits the budget; records a skip."""
        if self.dry_run or self.remaining_s() >= estimate_s:
            return True
        self.recorder.add(case=part, kind="skipped",
                          reason=f"time budget: {self.remaining_s():.0f} s left, the part "
                                 f"needs about {estimate_s:.0f} s")
        self.log(f"  skipped {part}: {self.remaining_s():.0f} s of the budget left")
        return False

    def torch_tensor(self, array: np.ndarray, *, grad: bool = False):
        """A numpy array as a PyTorch tensor on :attr:`torch_device`."""
        import torch

        t = torch.from_numpy(np.array(array, order="C")).to(self.torch_device)  # a copy
        return t.requires_grad_(True) if grad else t

    def bandwidth_fields(self, median_s: float, bytes_min: float,
                         bytes_materialised: float) -> dict[str, Any]:
        """The bandwidth floor of a measurement: ``bytes / HBM bandwidth`` and the time's
        multiple of it (target: within 3x)."""
        if self.hbm is None:
            return {}
        floor = bytes_min / self.hbm[1]
        return {
            "bandwidth_floor_s": floor,
            "times_bandwidth_floor": median_s / floor if floor > 0 else None,
            "within_3x_bandwidth_floor": bool(floor > 0 and median_s <= 3 * floor),
            "materialised_floor_s": bytes_materialised / self.hbm[1],
        }


# --------------------------------------------------------------------------------------------
# Device
# --------------------------------------------------------------------------------------------


def _versions(names: tuple[str, ...]) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _nvidia_smi() -> dict[str, str] | None:
    """The first GPU's name, driver, memory and clocks from ``nvidia-smi`` (``None`` without)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    keys = ("name", "driver_version", "memory_total_mib", "max_sm_clock_mhz",
            "max_memory_clock_mhz", "pci_bus_id")
    query = "name,driver_version,memory.total,clocks.max.sm,clocks.max.memory,pci.bus_id"
    try:
        proc = subprocess.run([exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    if proc.returncode or not proc.stdout.strip():
        return {"error": (proc.stderr or proc.stdout).strip()[-300:]}
    fields = [f.strip() for f in proc.stdout.strip().splitlines()[0].split(",")]
    return dict(zip(keys, fields, strict=False))


def _torch_info() -> dict[str, Any]:
    if not torch_available():
        return {"torch": None}
    import torch

    info: dict[str, Any] = {"torch": torch.__version__, "torch_cuda": torch.version.cuda,
                            "torch_cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(
            torch_device_name=torch.cuda.get_device_name(0),
            torch_capability=list(torch.cuda.get_device_capability(0)),
            torch_device_memory_bytes=int(props.total_memory),
            torch_multiprocessors=int(props.multi_processor_count),
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def describe_device() -> dict[str, Any]:
    """The accelerator and software of this run (JAX's first device, PyTorch, the driver)."""
    dev = jax.devices()[0]
    info: dict[str, Any] = {
        "jax_platform": dev.platform,
        "jax_backend": jax.default_backend(),
        "device_kind": dev.device_kind,
        "jax_devices": [str(d) for d in jax.devices()],
        "device_count": jax.device_count(),
        "versions": _versions(("jax", "jaxlib", "jax-cuda12-plugin", "jax-cuda12-pjrt",
                               "jax-cuda13-plugin", "jax-cuda13-pjrt", "flax", "optax",
                               "torch", "triton")),
        "nvidia_smi": _nvidia_smi(),
        **_torch_info(),
    }
    gpu = dev.platform in ("gpu", "cuda", "rocm")
    info["gpu"] = gpu
    names = [info.get("device_kind"), info.get("torch_device_name"),
             (info.get("nvidia_smi") or {}).get("name")]
    hbm = next((h for h in (hbm_bandwidth(n) for n in names if gpu) if h), None)
    info["hbm_label"], info["hbm_bytes_per_s"] = hbm if hbm else (None, None)
    info["hbm_source"] = "HBM_BANDWIDTH (datasheet)" if hbm else None
    return info


def _torch_device(device: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(torch device, why there is none)`` comparable with JAX's device."""
    if device.get("torch") is None:
        return None, "PyTorch is not installed (the bench extra)"
    if device["gpu"]:
        if device.get("torch_cuda_available"):
            return "cuda", None
        return None, (f"PyTorch {device['torch']} has no CUDA device; a CPU PyTorch beside a "
                      "GPU JAX is no comparison")
    return "cpu", None


@contextlib.contextmanager
def fastest_torch() -> Iterator[dict[str, Any]]:
    """PyTorch at its fastest float32 setting inside the block (TF32 matmuls, cuDNN autotuning);
    the previous settings come back afterwards. Yields the settings as recorded."""
    if not torch_available():
        yield {}
        return
    import torch

    old = (torch.get_float32_matmul_precision(), torch.backends.cudnn.benchmark)
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.benchmark = True
    try:
        yield {
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda.matmul.fp32_precision": torch.backends.cuda.matmul.fp32_precision,
            "cudnn.conv.fp32_precision": torch.backends.cudnn.conv.fp32_precision,
            "cudnn.benchmark": torch.backends.cudnn.benchmark,
        }
    finally:
        torch.set_float32_matmul_precision(old[0])
        torch.backends.cudnn.benchmark = old[1]


def measure_peaks(ctx: GpuContext) -> None:
    """A float32 matmul and a large copy in JAX and PyTorch; sets ``ctx.peaks``.

    ``ctx.peaks["gbps"]`` (and ``ctx.hbm``, the bandwidth floors' basis) is the HBM bandwidth
    of :data:`HBM_BANDWIDTH` when the device is in it, else the best measured copy.
    """
    n, copy_mib = (256, 16) if ctx.dry_run else (8192, 1024)
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    a = jnp.asarray(a_np)
    matmul = jax.jit(lambda x, y: x @ y)
    count = copy_mib * 2**20 // 4
    src = jnp.asarray(rng.standard_normal(count, dtype=np.float32))
    copy = jax.jit(lambda x: x * 1.0 + 0.0)
    runners: dict[str, Any] = {
        f"jax/matmul{n}": JaxStep("matmul", lambda: matmul(a, a), matmul, ctx.counter),
        f"jax/copy{copy_mib}MiB": JaxStep("copy", lambda: copy(src), copy, ctx.counter),
    }
    if ctx.torch_device is not None:
        ta = ctx.torch_tensor(a_np)
        tsrc = ctx.torch_tensor(np.asarray(src))
        tdst = tsrc.clone()
        runners[f"torch/matmul{n}"] = lambda: ta @ ta
        runners[f"torch/copy{copy_mib}MiB"] = lambda: tdst.copy_(tsrc)
    timings = interleave(runners, rounds=ctx.rounds, warmup=2, counter=ctx.counter,
                         min_round_s=ctx.min_round_s)
    best = {"gflops": 0.0, "gbps": 0.0}
    for name, t in timings.items():
        is_matmul = "matmul" in name
        fields = (timing_fields(t, flops=2.0 * n**3) if is_matmul
                  else timing_fields(t, bytes_moved=2.0 * count * 4))
        runner = runners[name]
        rec = ctx.recorder.add(
            case="device", kind="peak", variant=name, backend=name.split("/")[0],
            dtype="float32", shape=[n, n] if is_matmul else [count], **fields,
            **(runner.fields(strict=True) if isinstance(runner, JaxStep) else {}))
        key = "gflops" if is_matmul else "gbps"
        best[key] = max(best[key], rec["gflops_per_s" if is_matmul else "gb_per_s"])
    if ctx.hbm is None:  # a device missing from the table: the floors use the measured copy
        ctx.hbm = (f"measured copy ({best['gbps']:.0f} GB/s)", best["gbps"] * 1e9)
    ctx.peaks["gflops"] = best["gflops"]
    ctx.peaks["gbps"] = ctx.hbm[1] / 1e9
    ctx.recorder.add(case="device", kind="bandwidth", label=ctx.hbm[0],
                     bytes_per_s=ctx.hbm[1], measured_copy_gbps=best["gbps"],
                     copy_fraction_of_floor_bandwidth=best["gbps"] * 1e9 / ctx.hbm[1])
    ctx.log(f"  matmul {best['gflops'] / 1e3:.1f} TFLOP/s, copy {best['gbps']:.0f} GB/s; "
            f"floors at {ctx.hbm[0]}, {ctx.hbm[1] / 1e12:.3g} TB/s")


# --------------------------------------------------------------------------------------------
# S2D-Dec train step
# --------------------------------------------------------------------------------------------


def _s2d_shape(setup, batch: int) -> dict[str, Any]:
    from jaxface.train import num_params

    topo = setup.topology
    return {"vertices": topo.level_sizes[0], "batch": batch,
            "level_sizes": list(topo.level_sizes), "spiral_lengths": list(topo.spiral_lengths),
            "num_params": num_params(setup.state.params)}


def s2d_train(ctx: GpuContext) -> None:
    """The S2D-Dec step, jaxface's variants beside the PyTorch references (eager, compiled)."""
    from benchmarks.cases.s2d_train import (
        build_jax,
        compiled_reference,
        record_parity,
        torch_references,
    )
    from benchmarks.fixtures import S2D_CHANNELS, s2d_setup

    batch = ctx.batch
    base = s2d_setup(ctx.mesh, batch, cache_dir=ctx.cache_dir)
    params_np = jax.device_get(base.state.params)  # host copy: the steps donate the state
    shape = {"mesh": ctx.mesh, **_s2d_shape(base, batch)}
    base, auto = build_jax("auto", ctx.mesh, batch, ctx, setup=base)
    runners: dict[str, Any] = {"jax/auto": auto}
    impl_of = {"jax/auto": "auto"}
    variants = [("jax/auto/bf16", "auto", jnp.bfloat16)]
    if not ctx.dry_run:
        variants = [("jax/auto_autodiff", "auto_autodiff", None),
                    ("jax/gather_matmul_autodiff", "gather_matmul", None), *variants]
    for name, impl, dtype in variants:
        runners[name] = build_jax(impl, ctx.mesh, batch, ctx, dtype)[1]
        impl_of[name] = impl
    ctx.log(f"  S2D-Dec {shape['level_sizes']}, batch {batch}, {shape['num_params']} params")

    compile_s: dict[str, float] = {}
    if ctx.torch_device is not None:
        refs = torch_references(base, params_np, device=ctx.torch_device, sync=False)
        record_parity(ctx, base, params_np, refs, shape)
        dt = ctx.torch_tensor(base.numpy_batch["landmark_displacement"])
        yt = ctx.torch_tensor(base.numpy_batch["displacement"])
        try:
            refs["spiralnet_pp_compiled"] = compiled_reference(
                base, params_np, device=ctx.torch_device, backend=ctx.compile_backend,
                sync=False)
            t0 = time.perf_counter()
            block(refs["spiralnet_pp_compiled"][1](dt, yt))  # compiles
            compile_s["torch/spiralnet_pp_compiled"] = time.perf_counter() - t0
            ctx.log(f"    torch.compile ({ctx.compile_backend}): "
                    f"{compile_s['torch/spiralnet_pp_compiled']:.1f} s")
        except Exception as err:  # noqa: BLE001 - the eager references still run.
            refs.pop("spiralnet_pp_compiled", None)
            ctx.recorder.add(case="s2d_train", kind="error", variant="torch/spiralnet_pp_compiled",
                             error=f"{type(err).__name__}: {err}")
        for name, (_, step) in refs.items():
            runners[f"torch/{name}"] = lambda step=step: step(dt, yt)

    timings = interleave(runners, rounds=ctx.rounds, warmup=1, counter=ctx.counter,
                         min_round_s=ctx.min_round_s)
    torch_names = [n for n in timings if n.startswith("torch/")]
    for name, t in timings.items():
        runner = runners[name]
        bf16 = name.endswith("/bf16")
        layout = s2d_variant_layers(name, impl_of.get(name, "auto"), base.topology.num_levels)
        cost = s2d_step_cost(batch, base.topology.level_sizes, base.topology.spiral_lengths,
                             S2D_CHANNELS, num_params=shape["num_params"],
                             itemsize=2 if bf16 else 4, **layout)
        fields: dict[str, Any] = {}
        if isinstance(runner, JaxStep):
            fields.update(runner.fields(strict=True))
            fields.update(memory_fields(runner.jitted, runner.holder["state"], base.batch, None))
            fields["speedup_vs"] = {n: paired_ratio(timings[n], t) for n in torch_names}
        else:
            fields["torch_device"] = ctx.torch_device
            if name in compile_s:
                fields["compile_s"] = compile_s[name]
                fields["compile_backend"] = ctx.compile_backend
        rec = ctx.recorder.add(
            case="s2d_train", kind="timing", variant=name, setting="gpu_fastest",
            backend=name.split("/")[0], dtype="bfloat16" if bf16 else "float32", **shape,
            bytes_materialised=cost["bytes_materialised"],
            **timing_fields(t, batch=batch, flops=cost["flops"], bytes_moved=cost["bytes_min"],
                            peaks=ctx.peaks),
            **ctx.bandwidth_fields(t.median_s, cost["bytes_min"], cost["bytes_materialised"]),
            **fields)
        if name == "jax/auto":
            ctx.shared["s2d"] = {"step_s": rec["median_s"], "setup": base, "runner": runner,
                                 "shape": shape}
    ctx.shared["s2d_steps"] = {n: t.median_s for n, t in timings.items()}
    ctx.log("    " + ", ".join(f"{n} {1e3 * t.median_s:.2f} ms" for n, t in timings.items()))
    for n in torch_names:
        ctx.log(f"      jax/auto vs {n}: {paired_ratio(timings[n], timings['jax/auto']):.2f}x")


def s2d_batch_sweep(ctx: GpuContext) -> None:
    """``jax/auto`` at larger batches (meshes/s beyond the paper's batch)."""
    from benchmarks.cases.s2d_train import build_jax
    from benchmarks.fixtures import S2D_CHANNELS

    batches = (2 * ctx.batch,) if ctx.dry_run else (64, 256)
    runners, setups = {}, {}
    for b in batches:
        setups[b], runners[f"jax/auto/B{b}"] = build_jax("auto", ctx.mesh, b, ctx)
    timings = interleave(runners, rounds=ctx.rounds, warmup=1, counter=ctx.counter,
                         min_round_s=ctx.min_round_s)
    for b in batches:
        name, setup = f"jax/auto/B{b}", setups[b]
        t, runner = timings[name], runners[name]
        shape = {"mesh": ctx.mesh, **_s2d_shape(setup, b)}
        cost = s2d_step_cost(b, setup.topology.level_sizes, setup.topology.spiral_lengths,
                             S2D_CHANNELS, num_params=shape["num_params"])
        rec = ctx.recorder.add(
            case="s2d_train", kind="timing", variant="jax/auto", setting=f"batch_{b}",
            sweep="batch", backend="jax", dtype="float32", **shape,
            bytes_materialised=cost["bytes_materialised"],
            **timing_fields(t, batch=b, flops=cost["flops"], bytes_moved=cost["bytes_min"],
                            peaks=ctx.peaks),
            **ctx.bandwidth_fields(t.median_s, cost["bytes_min"], cost["bytes_materialised"]),
            **runner.fields(strict=True),
            **memory_fields(runner.jitted, runner.holder["state"], setup.batch, None))
        ctx.log(f"    batch {b}: {1e3 * rec['median_s']:.2f} ms, "
                f"{rec['meshes_per_s']:.0f} meshes/s")


# --------------------------------------------------------------------------------------------
# Spiral layers
# --------------------------------------------------------------------------------------------


def _layer_fn(idx: np.ndarray, impl: str, *, backward: bool, dtype: Any = jnp.float32):
    """The jitted spiral layer ``(x, k, b) -> y`` or, with ``backward``, the output and the
    gradients of ``sum(y * g)``: ``(x, k, b, g) -> (y, (dx, dk, db))``.

    Args:
      idx: int ``[N, L]`` spiral indices.
      impl: a name of :data:`jaxface.nn.SPIRAL_IMPLS`.
      backward: the forward+backward function.
      dtype: compute dtype (inputs are cast to it; the loss is summed in float32).
    """
    from jaxface.nn import spiral_conv as layer

    def forward(x, k, b):  # [B, N, C], [L * C, C_out], [C_out] -> [B, N, C_out]
        return layer(x.astype(dtype), idx, k.astype(dtype), b.astype(dtype), impl=impl)

    def grads(x, k, b, g):  # g: [B, N, C_out]
        return output_and_grads(lambda x, k, b: forward(x, k, b).astype(jnp.float32), g, x, k, b)

    return jax.jit(grads if backward else forward)


def _spiral_torch(ctx: GpuContext, idx, k_np, b_np, c_in, x_np, g_np, compiled: bool):
    """The PyTorch layer runners (official, SpiralNet++, optionally compiled) on the device.

    Returns:
      ``(runners by pass, parity inputs, compile seconds)``: ``{"forward": {...},
      "forward_backward": {...}}``.
    """
    import torch

    from benchmarks.cases.spiral_conv import (
        _torch_layers,
        torch_layer_inputs,
        torch_layer_runners,
    )

    official, spiralnet, projected, spirals = _torch_layers(idx, k_np, b_np, c_in)
    for layer in (official, spiralnet, projected):
        layer.to(ctx.torch_device)
    spirals = spirals.to(ctx.torch_device)
    xt, gt, gt_off = torch_layer_inputs(x_np, g_np, ctx.torch_tensor)

    out = torch_layer_runners(official, spiralnet, projected, spirals, xt, gt, gt_off)
    compile_s = None
    if compiled:
        try:
            layer = torch.compile(spiralnet, backend=ctx.compile_backend)
            params = (xt, spiralnet.linear.weight, spiralnet.linear.bias)

            def run_compiled():
                return torch.autograd.grad(layer(xt), params, gt)

            t0 = time.perf_counter()
            block(run_compiled())
            compile_s = time.perf_counter() - t0
            out["forward_backward"]["torch/spiralnet_pp_compiled"] = run_compiled
        except Exception as err:  # noqa: BLE001 - the eager layers still run.
            ctx.recorder.add(case="spiral_conv", kind="error",
                             variant="torch/spiralnet_pp_compiled",
                             error=f"{type(err).__name__}: {err}")
    parity = (official, spiralnet, projected, spirals, xt, gt, gt_off)
    return out, parity, compile_s


def spiral_conv(ctx: GpuContext, batch: int, *, every_impl: bool,
                part: str = "spiral_conv") -> None:
    """The S2D-Dec spiral layers at ``batch``, against their bandwidth floor and PyTorch.

    Args:
      every_impl: time every :data:`jaxface.nn.SPIRAL_IMPLS`, bfloat16, the forward pass, and
        the compiled PyTorch layer (the paper's batch); otherwise ``impl="auto"`` and the
        eager PyTorch layers, forward+backward only.
    """
    from benchmarks.cases.spiral_conv import layer_shapes, record_torch_parity, variant_fields
    from benchmarks.fixtures import topology_for
    from jaxface.nn import SPIRAL_IMPLS, select_spiral_impl

    topology = topology_for(ctx.mesh, ctx.cache_dir)
    shapes = layer_shapes(topology, ctx.dry_run)[: 1 if ctx.dry_run else None]
    rng = np.random.default_rng(0)
    for level, n, length, c_in, c_out in shapes:
        if not every_impl and not ctx.allows(part, 20.0):
            return
        idx = np.asarray(topology.spirals[level], np.int32)
        auto = select_spiral_impl(c_in, c_out)
        x_np = rng.standard_normal((batch, n, c_in), dtype=np.float32)
        k_np = (rng.standard_normal((length * c_in, c_out), dtype=np.float32)
                / np.sqrt(length * c_in)).astype(np.float32)
        b_np = (0.1 * rng.standard_normal(c_out)).astype(np.float32)
        g_np = rng.standard_normal((batch, n, c_out), dtype=np.float32)
        x, k, b, g = (jnp.asarray(a) for a in (x_np, k_np, b_np, g_np))
        shape = {"level": level, "vertices": n, "spiral_length": length, "c_in": c_in,
                 "c_out": c_out, "batch": batch}
        ctx.log(f"  level{level} {c_in}->{c_out} (N={n}, L={length}), batch {batch}")

        torch_runners, compile_s = {}, None
        if ctx.torch_device is not None:
            compiled = every_impl and ctx.allows(f"{part}/torch.compile", 60.0)
            torch_runners, parity, compile_s = _spiral_torch(ctx, idx, k_np, b_np, c_in, x_np,
                                                             g_np, compiled)
            if every_impl:
                y_ref = np.asarray(_layer_fn(idx, auto, backward=False)(x, k, b))
                _, grads_ref = _layer_fn(idx, auto, backward=True)(x, k, b, g)
                record_torch_parity(ctx.recorder, parity, n, y_ref, grads_ref,
                                    case="spiral_conv", against="jax/auto",
                                    torch_device=ctx.torch_device, **shape)

        modes = ("forward", "forward_backward") if every_impl else ("forward_backward",)
        for mode in modes:
            impls = (list(SPIRAL_IMPLS) if every_impl and mode == "forward_backward"
                     else [auto])
            args = (x, k, b) if mode == "forward" else (x, k, b, g)
            runners: dict[str, Any] = {}
            variants = [(f"jax/{impl}", impl, jnp.float32) for impl in impls]
            if every_impl and mode == "forward_backward":
                variants.append((f"jax/{auto}/bf16", auto, jnp.bfloat16))
            for name, impl, dtype in variants:
                f = _layer_fn(idx, impl, backward=mode != "forward", dtype=dtype)
                runners[name] = JaxStep(name, lambda f=f, a=args: f(*a), f, ctx.counter)
            runners.update(torch_runners.get(mode, {}))
            timings = interleave(runners, rounds=ctx.rounds, warmup=1, counter=ctx.counter,
                                 min_round_s=ctx.min_round_s)
            for name, t in timings.items():
                runner = runners[name]
                cost, bf16, fields = variant_fields(
                    name, runner, timings, args, batch=batch, n=n, length=length, c_in=c_in,
                    c_out=c_out, backward=mode != "forward", auto=auto)
                if not isinstance(runner, JaxStep):
                    fields["torch_device"] = ctx.torch_device
                    if name.endswith("_compiled"):
                        fields["compile_s"] = compile_s
                        fields["compile_backend"] = ctx.compile_backend
                rec = ctx.recorder.add(
                    case="spiral_conv", kind="timing", variant=name, mode=mode,
                    backend=name.split("/")[0], dtype="bfloat16" if bf16 else "float32",
                    **shape, bytes_materialised=cost["bytes_materialised"],
                    **timing_fields(t, batch=batch, flops=cost["flops"],
                                    bytes_moved=cost["bytes_min"], peaks=ctx.peaks),
                    **ctx.bandwidth_fields(t.median_s, cost["bytes_min"],
                                           cost["bytes_materialised"]),
                    **fields)
                if fields.get("auto") and mode == "forward_backward":
                    floor = rec.get("times_bandwidth_floor")
                    ctx.log(f"    {mode}: jax/{auto} {1e6 * t.median_s:.0f} us"
                            + (f", {floor:.1f}x its bandwidth floor" if floor else "")
                            + (f", {fields['speedup_vs_best_torch']:.2f}x {fields['best_torch']}"
                               if "best_torch" in fields else ""))


# --------------------------------------------------------------------------------------------
# Data feed
# --------------------------------------------------------------------------------------------


def data_feed(ctx: GpuContext) -> None:
    """The S2D-Dec step fed by :class:`InMemoryBatches` against the step on a fixed batch.

    Holds ``COMA_MESHES`` synthetic pairs (dry run: 8 batches) of the benchmark mesh on the
    device, the paper's data size; each step gathers its batch on the device while the previous
    step runs (the prefetch thread), as ``jaxface.s2d`` trains with ``config.loader="memory"``.
    """
    from benchmarks.cases.data_pipeline import _forever, _time_chunks
    from jaxface.data.batches import InMemoryBatches
    from jaxface.sharding import batch_sharding, data_mesh, replicated

    s2d = ctx.shared.get("s2d")
    if s2d is None:
        raise RuntimeError("data_feed needs the s2d_train part's step")
    setup, runner = s2d["setup"], s2d["runner"]
    n = setup.topology.level_sizes[0]
    batch = ctx.batch
    count = 8 * batch if ctx.dry_run else COMA_MESHES
    rng = np.random.default_rng(0)
    block_rows = min(count, 512)
    d_block = rng.standard_normal((block_rows, 204), dtype=np.float32)
    y_block = (0.01 * rng.standard_normal((block_rows, n, 3))).astype(np.float32)
    arrays = {"landmark_displacement": np.empty((count, 204), np.float32),
              "displacement": np.empty((count, n, 3), np.float32)}
    for lo in range(0, count, block_rows):
        hi = min(count, lo + block_rows)
        arrays["landmark_displacement"][lo:hi] = d_block[: hi - lo]
        arrays["displacement"][lo:hi] = y_block[: hi - lo]
    mesh = data_mesh(jax.devices()[:1])
    t0 = time.perf_counter()
    batches = InMemoryBatches(arrays, batch, mesh=mesh, seed=0)
    jax.block_until_ready(batches.data)
    load_s = time.perf_counter() - t0
    del arrays
    holder = runner.holder
    holder["state"] = jax.device_put(holder["state"], replicated(mesh))
    fixed = jax.device_put(setup.batch, batch_sharding(mesh))
    stream = _forever(batches)
    step = setup.step

    def alone():
        holder["state"], _ = step(holder["state"], fixed, None)
        return holder["state"]

    def fed():
        holder["state"], _ = step(holder["state"], next(stream), None)
        return holder["state"]

    try:
        runners = {"step_alone": JaxStep("step_alone", alone, step, ctx.counter),
                   "step_fed": JaxStep("step_fed", fed, step, ctx.counter)}
        timings = interleave(runners, rounds=ctx.rounds, warmup=2, counter=ctx.counter,
                             min_round_s=ctx.min_round_s)
        chunks, per_chunk = (2, 4) if ctx.dry_run else (5, 50)
        gather = _time_chunks(stream, chunks, per_chunk)
    finally:
        stream.close()
    common = {"case": "data_feed", "kind": "timing", "backend": "jax", "dtype": "float32",
              "mesh": ctx.mesh, "vertices": n, "batch": batch, "examples_on_device": count,
              "resident_bytes": batches.resident_bytes, "load_s": load_s}
    ratio = paired_ratio(timings["step_fed"], timings["step_alone"])
    for name, t in timings.items():
        ctx.recorder.add(variant=name, **common, **timing_fields(t, batch=batch),
                         **runners[name].fields(),
                         **({"fed_over_alone": ratio, "keeps_up": ratio <= 1.05}
                            if name == "step_fed" else {}))
    rec = ctx.recorder.add(variant="gather_alone", **common, **timing_fields(gather, batch=batch))
    ctx.shared["s2d_fed_step_s"] = timings["step_fed"].median_s
    ctx.log(f"    step alone {1e3 * timings['step_alone'].median_s:.2f} ms, fed "
            f"{1e3 * timings['step_fed'].median_s:.2f} ms ({ratio:.2f}x), gather alone "
            f"{rec['meshes_per_s']:.0f} meshes/s; {batches.resident_bytes / 2**30:.2f} GiB "
            "on the device")


# --------------------------------------------------------------------------------------------
# Motion3DGAN
# --------------------------------------------------------------------------------------------


def motion3dgan_train(ctx: GpuContext) -> None:
    """The Motion3DGAN step at the paper's configuration (dry run: tiny networks)."""
    from benchmarks.cases.motion3dgan_train import build
    from jaxface.configs import motion3dgan

    cfg = motion3dgan.get_config("paper")
    if ctx.dry_run:
        size = {"batch": 4, "base_channels": 16, "n_critic": 1, "critic_channels": (16, 8, 4),
                "critic_hidden": 64}
    else:
        size = {"batch": int(cfg.optim.batch_size),
                "base_channels": int(cfg.model.gen_base_channels),
                "n_critic": int(cfg.optim.n_critic),
                "critic_channels": tuple(int(c) for c in cfg.model.critic_channels),
                "critic_hidden": int(cfg.model.critic_hidden)}
    runner, flops, num_params = build(size["batch"], size["base_channels"], size["n_critic"],
                                      True, ctx.counter, critic_channels=size["critic_channels"],
                                      critic_hidden=size["critic_hidden"])
    name = f"jax/n_critic{size['n_critic']}"
    t = interleave({name: runner}, rounds=ctx.rounds, warmup=1, counter=ctx.counter,
                   min_round_s=ctx.min_round_s)[name]
    rec = ctx.recorder.add(
        case="motion3dgan_train", kind="timing", variant=name, backend="jax", dtype="float32",
        batch=size["batch"], gen_base_channels=size["base_channels"],
        n_critic=size["n_critic"], critic_channels=list(size["critic_channels"]),
        critic_hidden=size["critic_hidden"], num_params=num_params, donated=True,
        paper_size=not ctx.dry_run,
        **timing_fields(t, batch=size["batch"], flops=flops, peaks=ctx.peaks),
        **runner.fields(strict=True),
        **memory_fields(runner.jitted, runner.holder["state"], *runner.args))
    ctx.shared["gan"] = {"step_s": rec["median_s"], "batch": size["batch"]}
    ctx.log(f"    {name}, batch {size['batch']}, base {size['base_channels']}: "
            f"{1e3 * rec['median_s']:.1f} ms/step, {rec['gflops_per_s'] / 1e3:.1f} TFLOP/s")


# --------------------------------------------------------------------------------------------
# Projections
# --------------------------------------------------------------------------------------------


def _project(ctx: GpuContext, system: str, basis: str, step_s: float, examples: int,
             batch: int, epochs: int, **extra) -> dict[str, Any]:
    steps_per_epoch = examples // batch  # full batches, as jaxface.data.batches cuts them
    steps = steps_per_epoch * epochs
    return ctx.recorder.add(
        case="projection", kind="projection", system=system, basis=basis,
        dataset_examples=examples, batch=batch, epochs=epochs, steps_per_epoch=steps_per_epoch,
        steps=steps, step_s=step_s, projected_s=steps * step_s,
        projected_h=steps * step_s / 3600, **extra)


def projection(ctx: GpuContext) -> None:
    """Wall time of the papers' full trainings at the measured step rates."""
    from jaxface.configs import motion3dgan, s2d

    s2d_cfg, gan_cfg = s2d.get_config("paper"), motion3dgan.get_config("paper")
    s2d_epochs = int(s2d_cfg.optim.num_epochs)
    paper_batch = int(s2d_cfg.optim.batch_size)
    note = {} if ctx.batch == paper_batch else {"note": f"measured at batch {ctx.batch}"}
    steps = ctx.shared.get("s2d_steps", {})
    fold = round(COMA_MESHES * COMA_FOLD_TRAIN_SHARE)
    for variant, step_s in steps.items():
        _project(ctx, "s2d_dec", f"{variant}, step alone", step_s, COMA_MESHES, paper_batch,
                 s2d_epochs, variant=variant, data="CoMA, all 20,466 meshes", **note)
    if "jax/auto" in steps:
        _project(ctx, "s2d_dec", "jax/auto, step alone", steps["jax/auto"], fold, paper_batch,
                 s2d_epochs, variant="jax/auto",
                 data="one fold's training part (9 of 12 identities)", **note)
    if "s2d_fed_step_s" in ctx.shared:
        rec = _project(ctx, "s2d_dec", "jax/auto, fed by InMemoryBatches",
                       ctx.shared["s2d_fed_step_s"], COMA_MESHES, paper_batch, s2d_epochs,
                       variant="jax/auto", data="CoMA, all 20,466 meshes", **note)
        ctx.log(f"    S2D-Dec, 300 epochs of 20,466 meshes: {rec['projected_h']:.2f} h")
    gan = ctx.shared.get("gan")
    if gan is not None:
        gan_note = {} if not ctx.dry_run else {"note": "tiny networks (dry run)"}
        rec = _project(ctx, "motion3dgan", "jax/n_critic4, step alone" if not ctx.dry_run
                       else "jax, step alone", gan["step_s"], MOTION3DGAN_TRAIN_SEQUENCES,
                       int(gan_cfg.optim.batch_size), int(gan_cfg.optim.num_epochs),
                       variant="jax", data="545 training sub-sequences", **gan_note)
        ctx.log(f"    Motion3DGAN, 8000 epochs: {rec['projected_h']:.2f} h")


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gpu", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry-run", action="store_true",
                        help="smallest shapes and 2 rounds on any machine (never a GPU result)")
    parser.add_argument("--out", default=os.path.join("benchmarks", "results"),
                        help="output folder (default benchmarks/results)")
    parser.add_argument("--name", default=None,
                        help="file stem of the outputs (default gpu-<UTC time>[-dry-run])")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="seconds after which optional parts are skipped (default 480: "
                             "the whole command stays under 10 minutes with start-up)")
    parser.add_argument("--cache-dir", default=None,
                        help="topology cache folder (default: jaxface's cache folder)")
    parser.add_argument("--no-torch", action="store_true",
                        help="skip the PyTorch references even if torch is installed")
    parser.add_argument("--hbm-gbps", type=float, default=None,
                        help="the device's memory bandwidth in GB/s for the floors, where its "
                             "name is not in HBM_BANDWIDTH (or to override the table)")
    args = parser.parse_args(argv)
    if args.hbm_gbps is not None and args.hbm_gbps <= 0:
        parser.error(f"--hbm-gbps must be positive, got {args.hbm_gbps}")
    return args


def _parts(ctx: GpuContext) -> list[tuple[str, float, Callable[[], None]]]:
    """``(name, estimated seconds, run)`` in run order, most important first."""
    big = 256 if not ctx.dry_run else 2 * ctx.batch
    return [
        ("device", 30.0, lambda: measure_peaks(ctx)),
        ("s2d_train", 150.0, lambda: s2d_train(ctx)),
        ("spiral_conv", 120.0, lambda: spiral_conv(ctx, ctx.batch, every_impl=True)),
        ("data_feed", 40.0, lambda: data_feed(ctx)),
        ("motion3dgan_train", 90.0, lambda: motion3dgan_train(ctx)),
        ("projection", 0.0, lambda: projection(ctx)),
        ("spiral_conv_large_batch", 40.0,
         lambda: spiral_conv(ctx, big, every_impl=False, part="spiral_conv_large_batch")),
        ("s2d_batch_sweep", 40.0, lambda: s2d_batch_sweep(ctx)),
    ]


def main(argv: list[str] | None = None) -> int:
    """Runs the GPU benchmark; returns the exit status (2: no GPU without ``--dry-run``, 1: a
    part failed)."""
    from benchmarks.report import summarize

    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    t_start = time.perf_counter()
    device = describe_device()
    if args.hbm_gbps is not None:
        device["hbm_label"] = f"{args.hbm_gbps:g} GB/s (--hbm-gbps)"
        device["hbm_bytes_per_s"] = args.hbm_gbps * 1e9
        device["hbm_source"] = "--hbm-gbps"
    if not device["gpu"] and not args.dry_run:
        print(f"benchmarks.gpu: JAX's backend here is {device['jax_backend']!r} "
              f"({device['device_kind']}), not a GPU, and a CPU run is not a GPU result; "
              "run it where `python -c 'import jax; print(jax.devices())'` lists a GPU (jax "
              "with CUDA, PyTorch with CUDA), or add --dry-run to rehearse it here",
              file=sys.stderr)
        return 2
    torch_device, no_torch_reason = (None, "--no-torch") if args.no_torch \
        else _torch_device(device)
    started = utc_now()
    name = args.name or ("gpu-" + started.replace(":", "").replace("-", "")[:15]
                         + ("-dry-run" if args.dry_run else ""))
    os.makedirs(args.out, exist_ok=True)
    jsonl, md = (os.path.join(args.out, name + ext) for ext in (".jsonl", ".md"))
    if os.path.exists(jsonl):
        os.remove(jsonl)
    gpu_result = bool(device["gpu"] and not args.dry_run)
    label = (f"{device['device_kind']} ({device['jax_platform']})" if device["gpu"]
             else f"cpu ({machine_info()['cpu']})")
    recorder = Recorder(jsonl, name, common={"device": label, "gpu_result": gpu_result})
    command = "python -m benchmarks.gpu " + " ".join(shlex.quote(a) for a in argv)
    failed = False
    with fastest_torch() as torch_settings, \
            tempfile.TemporaryDirectory(prefix="jaxface-gpu-bench-") as scratch:
        compile_backend = "inductor" if device["gpu"] else "aot_eager"
        ctx = GpuContext(
            recorder=recorder, counter=compile_counter(), dry_run=args.dry_run,
            gpu=device["gpu"], torch_device=torch_device, compile_backend=compile_backend,
            mesh="face1" if args.dry_run else "face2", batch=8 if args.dry_run else 16,
            rounds=2 if args.dry_run else 9, min_round_s=0.0 if args.dry_run else 0.05,
            peaks={}, hbm=(device["hbm_label"], device["hbm_bytes_per_s"])
            if device["hbm_label"] else None,
            cache_dir=args.cache_dir or (scratch if args.dry_run else None),
            deadline=t_start + args.budget_s, shared={})
        recorder.add(
            case=_RUN_CASE, kind="machine", preset="gpu", machine=machine_info(),
            accelerator=device, started=started, dry_run=args.dry_run, command=command,
            torch_device=torch_device, no_torch_reason=no_torch_reason,
            settings={
                "torch": torch_settings if torch_device else None,
                "torch_compile_backend": compile_backend if torch_device else None,
                "jax_default_matmul_precision": jax.config.jax_default_matmul_precision
                or "default (TF32 for float32 dots on Ampere and newer GPUs)",
                "XLA_FLAGS": os.environ.get("XLA_FLAGS", ""),
                "XLA_PYTHON_CLIENT_MEM_FRACTION":
                    os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION"),
            },
            mesh=ctx.mesh, batch=ctx.batch, rounds=ctx.rounds, budget_s=args.budget_s)
        print(f"benchmarks.gpu: {label}, torch on {torch_device or 'none'}"
              f"{'' if gpu_result else ' (not a GPU result)'}", flush=True)
        for part, estimate, run in _parts(ctx):
            if not ctx.allows(part, estimate):
                continue
            print(f"[{part}]", flush=True)
            t0 = time.perf_counter()
            try:
                run()
            except Exception as err:  # noqa: BLE001 - record and go on with the other parts.
                failed = True
                traceback.print_exc()
                recorder.add(case=part, kind="error", error=f"{type(err).__name__}: {err}")
            print(f"[{part}] {time.perf_counter() - t0:.0f} s", flush=True)
        ctx.shared.clear()  # the step, its state and the held data set go before the report
    total = time.perf_counter() - t_start
    end = {"finished": utc_now(), "total_s": round(total, 1),
           "load_average_end": [round(x, 2) for x in os.getloadavg()]
           if hasattr(os, "getloadavg") else None}
    recorder.records[0].update(end)
    write_atomic(jsonl, "".join(json.dumps(r) + "\n" for r in recorder.records).encode("utf-8"))
    write_atomic(md, summarize(recorder.records, command=command).encode("utf-8"))
    print(f"wrote {jsonl} and {md} ({total:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    # Read when the GPU backend starts, i.e. after this line: JAX and PyTorch share the device.
    os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
    sys.exit(main())
