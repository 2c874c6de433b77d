"""Machine peaks: float32 matmul throughput and memory bandwidth, measured here and now.

* matmul: a square float32 matmul (``2 n^3`` FLOPs) in JAX (jit) and, when available, PyTorch
  at the run's thread count; the best median is the machine's GFLOP/s peak;
* bandwidth: a large array copy into a preallocated buffer (numpy ``copyto``, read + write
  bytes), and the same copy as a jitted JAX op; the best median is the GB/s peak.

Later cases divide their achieved rates by these peaks (``flops_fraction``,
``bandwidth_fraction``, ``roofline_fraction``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import JaxStep, interleave, timing_fields

NAME = "machine"


def run(ctx) -> None:
    """Measures the peaks and stores them in ``ctx.peaks``."""
    n = 1024 if ctx.quick else 2048
    copy_mb = 128 if ctx.quick else 256
    rounds = ctx.rounds(9, 5)
    rng = np.random.default_rng(0)
    a_np = rng.standard_normal((n, n), dtype=np.float32)
    b_np = rng.standard_normal((n, n), dtype=np.float32)
    a, b = jnp.asarray(a_np), jnp.asarray(b_np)
    matmul = jax.jit(lambda x, y: x @ y)
    runners = {"jax_matmul": JaxStep("jax_matmul", lambda: matmul(a, b), matmul, ctx.counter)}
    if ctx.torch:
        import torch

        ta, tb = torch.from_numpy(a_np), torch.from_numpy(b_np)
        runners["torch_matmul"] = lambda: ta @ tb
    timings = interleave(runners, rounds=rounds, warmup=2, counter=ctx.counter, min_round_s=0.05)
    flops = 2.0 * n**3
    best = 0.0
    for name, t in timings.items():
        backend = name.split("_")[0]
        rec = ctx.recorder.add(
            case=NAME, kind="peak", variant=f"{backend}/matmul{n}", backend=backend,
            dtype="float32", shape=[n, n],
            **timing_fields(t, flops=flops),
            **(runners[name].fields(strict=True) if isinstance(runners[name], JaxStep) else {}),
        )
        best = max(best, rec["gflops_per_s"])
    ctx.peaks["gflops"] = best

    count = copy_mb * 2**20 // 4
    src_np = rng.standard_normal(count, dtype=np.float32)
    dst_np = np.empty_like(src_np)
    src = jnp.asarray(src_np)
    jcopy = jax.jit(lambda x: x * 1.0 + 0.0)
    copies = {
        "numpy_copy": lambda: np.copyto(dst_np, src_np),
        "jax_copy": JaxStep("jax_copy", lambda: jcopy(src), jcopy, ctx.counter),
    }
    timings = interleave(copies, rounds=rounds, warmup=2, counter=ctx.counter)
    moved = 2.0 * count * 4
    best = 0.0
    for name, t in timings.items():
        backend = name.split("_")[0]
        rec = ctx.recorder.add(
            case=NAME, kind="peak", variant=f"{backend}/copy{copy_mb}MiB", backend=backend,
            dtype="float32", shape=[count],
            **timing_fields(t, bytes_moved=moved),
            **(copies[name].fields(strict=True) if isinstance(copies[name], JaxStep) else {}),
        )
        best = max(best, rec["gb_per_s"])
    ctx.peaks["gbps"] = best
    ctx.log(f"  peaks: {ctx.peaks['gflops']:.1f} GFLOP/s, {ctx.peaks['gbps']:.1f} GB/s")
