"""Scaling of time and memory with vertex count, batch size and spiral length.

* ``vertices``: the S2D-Dec train step (``jax/auto``, batch 16) on the face template at 1790,
  6990, 27,614 and 109,758 vertices and on icospheres of 40,962 and 163,842 vertices (same
  decimation and spiral parameters, so 5 levels everywhere; the 468-vertex template is too
  small for four decimations by 4). Each point's topology is built cold, its two parts timed
  (``kind="topology"`` records: ``build_hierarchy``, the QSlim decimation and up-sampling
  weights, and ``spirals_for``), so the sweep also shows how the build scales;
* ``batch``: the same step on 6990 vertices at batch 1, 4, 16 and 64;
* ``spiral_length``: one spiral layer forward+backward (``impl="auto"``, batch 16, level 0 of
  the 6990-vertex hierarchy, 32->32 and 32->16 channels) with spirals truncated to 3..25
  entries (Neural3DMM order, 3 rings).

Each sweep's points are built first and then timed interleaved, round by round. Every point
reports the median step time, the time per mesh and per vertex, the XLA temporary and peak
memory of the executable (also per mesh and per vertex and mesh), and (``vertices``,
``batch``) the analytic FLOPs and bytes.
"""

from __future__ import annotations

import resource
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.analytic import s2d_step_cost, spiral_conv_cost
from benchmarks.cases.s2d_train import build_jax
from benchmarks.common import JaxStep, interleave, memory_fields, output_and_grads, timing_fields
from benchmarks.fixtures import S2D_CHANNELS, S2D_TOPOLOGY, mesh_for, s2d_setup, topology_for
from jaxface.train import num_params as count_params

NAME = "scaling"


def _max_rss_bytes() -> int:
    """The process's peak resident set so far (Linux reports KiB)."""
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def cold_topology(ctx, mesh: str):
    """Builds the S2D topology of ``mesh`` without the cache, timing its two parts.

    Records ``kind="topology"``: seconds of ``build_hierarchy`` and ``spirals_for``, per
    vertex, and the process's peak resident memory after the build (a lower bound of the
    build's own peak when it grew).

    Returns:
      The :class:`~jaxface.models.s2d.SpiralTopology`.
    """
    from jaxface.mesh import build_hierarchy, spirals_for
    from jaxface.models.s2d import SpiralTopology

    vertices, faces = mesh_for(mesh)
    rss_before = _max_rss_bytes()
    t0 = time.perf_counter()
    hierarchy = build_hierarchy(vertices, faces, S2D_TOPOLOGY["factors"])
    t_h = time.perf_counter() - t0
    t0 = time.perf_counter()
    spirals = spirals_for(hierarchy, rings=S2D_TOPOLOGY["rings"],
                          dilations=S2D_TOPOLOGY["dilations"])
    t_s = time.perf_counter() - t0
    n = int(vertices.shape[0])
    rss_after = _max_rss_bytes()
    ctx.recorder.add(
        case=NAME, kind="topology", sweep="vertices", backend="numpy", mesh=mesh, vertices=n,
        faces=int(faces.shape[0]), level_sizes=list(hierarchy.sizes),
        spiral_lengths=[int(s.shape[1]) for s in spirals],
        build_hierarchy_s=t_h, spirals_for_s=t_s, total_s=t_h + t_s,
        us_per_vertex=1e6 * (t_h + t_s) / n,
        max_rss_bytes_after=rss_after, max_rss_grew=rss_after > rss_before,
    )
    ctx.log(f"    topology: {mesh} N={n}: build_hierarchy {t_h:.1f} s, "
            f"spirals_for {t_s:.1f} s, peak RSS {rss_after / 2**30:.1f} GiB")
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def _s2d_sweep(ctx, points: list[tuple[str, int]], sweep: str, rounds: int,
               cold: bool = False) -> None:
    """Builds the S2D-Dec step at every ``(mesh, batch)`` point, times them interleaved.

    With ``cold`` every point's topology is built here (:func:`cold_topology`) instead of
    read from the topology cache.
    """
    built = {}
    for mesh, batch in points:
        topology = cold_topology(ctx, mesh) if cold else None
        setup = s2d_setup(mesh, batch, cache_dir=ctx.cache_dir, topology=topology)
        setup, runner = build_jax("auto", mesh, batch, ctx, setup=setup)
        built[f"{mesh}/B{batch}"] = (mesh, batch, setup, runner)
    timings = interleave({k: v[3] for k, v in built.items()}, rounds=rounds, warmup=1,
                         counter=ctx.counter)
    for key, (mesh, batch, setup, runner) in built.items():
        t = timings[key]
        topo = setup.topology
        num_params = count_params(runner.holder["state"].params)
        cost = s2d_step_cost(batch, topo.level_sizes, topo.spiral_lengths, S2D_CHANNELS,
                             num_params=num_params)
        n = topo.level_sizes[0]
        memory = memory_fields(runner.jitted, runner.holder["state"], setup.batch, None)
        if memory:
            memory["temp_bytes_per_mesh"] = memory["temp_memory_bytes"] / batch
            memory["temp_bytes_per_vertex_mesh"] = memory["temp_memory_bytes"] / (batch * n)
            memory["peak_bytes_per_mesh"] = memory["peak_memory_bytes"] / batch
        rec = ctx.recorder.add(
            case=NAME, kind="timing", sweep=sweep, variant="jax/auto", backend="jax",
            dtype="float32", mesh=mesh, vertices=n, batch=batch,
            level_sizes=list(topo.level_sizes), spiral_lengths=list(topo.spiral_lengths),
            bytes_materialised=cost["bytes_materialised"],
            **timing_fields(t, batch=batch, flops=cost["flops"], bytes_moved=cost["bytes_min"],
                            peaks=ctx.peaks),
            s_per_mesh=t.median_s / batch,
            ns_per_vertex_mesh=1e9 * t.median_s / (batch * n),
            **memory,
            **runner.fields(strict=True),
        )
        ctx.log(f"    {sweep}: {mesh} N={n} B={batch}: {1e3 * rec['median_s']:.0f} ms/step, "
                f"{rec['ns_per_vertex_mesh']:.0f} ns/vertex/mesh, "
                f"temp {rec.get('temp_memory_bytes', 0) / 2**20:.0f} MiB")


def run(ctx) -> None:
    """Runs the three sweeps, each interleaved across its points."""
    rounds = ctx.rounds(5, 2)
    meshes = ["face1"] if ctx.quick else ["face1", "face2", "face3", "ico6", "face4", "ico7"]
    _s2d_sweep(ctx, [(m, 16) for m in meshes], "vertices", rounds, cold=True)
    base_mesh = "face1" if ctx.quick else "face2"
    if not ctx.quick:
        _s2d_sweep(ctx, [(base_mesh, b) for b in (1, 4, 16, 64)], "batch", rounds)
    _length_sweep(ctx, base_mesh, rounds)


def _length_sweep(ctx, mesh: str, rounds: int) -> None:
    import importlib

    from jaxface.mesh import spiral_indices

    sc = importlib.import_module("jaxface.nn.spiral_conv")
    topo = topology_for(mesh, ctx.cache_dir)
    vertices, faces = mesh_for(mesh)
    n = topo.level_sizes[0]
    lengths = [3, 9] if ctx.quick else [3, 5, 9, 13, 17, 25]
    full = spiral_indices(faces, n, length=max(lengths), rings=3, vertices=vertices)
    batch = 16
    rng = np.random.default_rng(0)
    for c_in, c_out in ((32, 16),) if ctx.quick else ((32, 32), (32, 16)):
        x = jnp.asarray(rng.standard_normal((batch, n, c_in), dtype=np.float32))
        g = jnp.asarray(rng.standard_normal((batch, n, c_out), dtype=np.float32))
        runners, args = {}, {}
        for length in lengths:
            idx = np.ascontiguousarray(full[:, :length])
            k = jnp.asarray(rng.standard_normal((length * c_in, c_out), dtype=np.float32)
                            / np.sqrt(length * c_in))

            def grads(x, k, g, idx=idx):
                return output_and_grads(lambda x, k: sc.spiral_conv(x, idx, k), g, x, k)

            f = jax.jit(grads)
            runners[length] = JaxStep(f"L={length}", lambda f=f, k=k: f(x, k, g), f, ctx.counter)
            args[length] = k
        timings = interleave({f"L={n_}": r for n_, r in runners.items()}, rounds=rounds,
                             warmup=1, counter=ctx.counter, min_round_s=0.05)
        impl = sc.select_spiral_impl(c_in, c_out)
        for length, runner in runners.items():
            t = timings[f"L={length}"]
            cost = spiral_conv_cost(batch, n, length, c_in, c_out, backward=True, impl=impl)
            rec = ctx.recorder.add(
                case=NAME, kind="timing", sweep="spiral_length", variant=f"jax/{impl}",
                backend="jax", dtype="float32", mesh=mesh, vertices=n,
                spiral_length=length, c_in=c_in, c_out=c_out, mode="forward_backward",
                batch=batch, bytes_materialised=cost["bytes_materialised"],
                **timing_fields(t, batch=batch, flops=cost["flops"],
                                bytes_moved=cost["bytes_min"], peaks=ctx.peaks),
                **memory_fields(runner.jitted, x, args[length], g),
                **runner.fields(strict=True),
            )
            ctx.log(f"    spiral_length: {c_in}->{c_out} L={length}: "
                    f"{1e3 * rec['median_s']:.1f} ms")
