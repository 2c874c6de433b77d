"""The S2D-Dec training step, jaxface against the official, SpiralNet++ and folded formulations.

Setup (:func:`benchmarks.fixtures.s2d_setup`): the official S2D-Dec (channels 128/64/32/32/16)
on the 6990-vertex face hierarchy (1790 in quick runs), batch 16, paper-form loss, Adam with
weight decay; a fixed batch already on the device (no loader), float32.

Runners, interleaved round by round:

* ``jax/auto``: the library as shipped (``make_train_step``; each spiral layer uses
  ``select_spiral_impl``: custom-VJP gather backward, matmul-first where ``C_out <= C``, the
  up-sampling in front of those folded into the spiral gather, so they project on the coarse
  level);
* ``jax/auto_autodiff``: autodiff's scatter-add backward everywhere, matmul-first where
  ``2 C_out <= C`` (``S2DDecoder(spiral_impl="auto_autodiff")``);
* ``jax/gather_matmul_autodiff``: gather-then-matmul with autodiff everywhere (the plain
  formulation, ``spiral_impl="gather_matmul"``);
* ``jax/auto/bf16``: ``S2DDecoder(dtype=bfloat16)`` (parameters and loss stay float32);
* ``jax/auto/ynn_reduce_off`` (full runs on CPU): ``jax/auto``'s step compiled with
  :data:`YNN_REDUCE_OFF` (not what jaxface ships: an experimental, process-wide XLA option that
  users may set through ``XLA_FLAGS``);
* ``torch/official``, ``torch/spiralnet_pp`` and ``torch/folded``:
  :mod:`benchmarks.reference_torch`, with the same initial weights. ``torch/folded`` is the
  algebra of ``jax/auto`` (project first on the coarse level, one CSR sparse product per layer
  with a precomputed transpose): the strongest eager PyTorch step the benchmarks have;
* ``torch/spiralnet_pp_compiled`` (full runs): the SpiralNet++-style decoder through
  ``torch.compile`` (inductor), its compile time recorded apart.

Every PyTorch reference runs at each thread count of ``--torch-threads`` (setting
``torch_<n>_threads``), interleaved with ``jax/auto`` (the other JAX variants run in the first
setting only): the headline ratio is against each reference at its fastest setting. Full runs
then time ``jax/auto`` against ``torch/spiralnet_pp`` and ``torch/folded`` in two fresh
processes, one with glibc's default allocator and one with the tuned one
(:data:`benchmarks.common.ALLOCATOR_ENV`), counting minor page faults per step (a process's
allocator cannot be switched back once its heap has grown, hence the processes).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.analytic import s2d_step_cost, s2d_variant_layers
from benchmarks.common import (
    ALLOCATOR_ENV,
    JaxStep,
    Timing,
    compile_counter,
    interleave,
    memory_fields,
    paired_ratio,
    timing_fields,
    torch_peak_memory,
    torch_threads,
)
from benchmarks.fixtures import S2D_CHANNELS, s2d_setup
from jaxface.train import num_params as count_params

NAME = "s2d_train"


#: The XLA:CPU option of the ``jax/auto/ynn_reduce_off`` variant (``benchmarks/README.md``): the
#: sums over spiral positions stay in XLA's own loops, which read the gathered rows directly,
#: instead of going to YNNPACK's reduction, which reads a materialised buffer. YNNPACK keeps the
#: dots; with jaxlib 0.10.2, whose default YNNPACK fusions are dots and reductions, this is what
#: ``XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-reduce`` sets for a whole process.
YNN_REDUCE_OFF = {"xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_DOT"}


def jax_runner(name: str, setup, counter, compiled=None) -> JaxStep:
    """A :class:`JaxStep` threading a donated S2D-Dec state through ``setup.step``, or through
    ``compiled``, an executable of it compiled with other options (then there is no jitted
    function whose traces to count)."""
    holder = {"state": setup.state}
    jitted = setup.step if compiled is None else None
    run = compiled or setup.step

    def call():
        holder["state"], _ = run(holder["state"], setup.batch, None)
        return holder["state"]

    step = JaxStep(name, call, jitted, counter)
    step.holder = holder
    return step


def build_with_options(name: str, mesh: str, batch: int, ctx, options: dict) -> JaxStep | None:
    """``jax/auto``'s step compiled with XLA ``options``, or ``None`` when the installed XLA
    does not know one of them (the options are experimental; jax is not pinned).

    The runner carries ``compiler_options`` and ``options_compile_s`` (the compile, timed here:
    the step is compiled before its first call) for its records.

    Raises:
      jax.errors.JaxRuntimeError: any other compile failure.
    """
    setup = s2d_setup(mesh, batch, cache_dir=ctx.cache_dir)
    t0 = time.perf_counter()
    lowered = setup.step.lower(setup.state, setup.batch, None)
    try:
        compiled = lowered.compile(compiler_options=options)
    except jax.errors.JaxRuntimeError as e:
        if not any(key in str(e) for key in options):
            raise
        return None
    runner = jax_runner(name, setup, ctx.counter, compiled)
    runner.options_compile_s = time.perf_counter() - t0
    runner.compiler_options = dict(options)
    return runner


def build_jax(impl: str, mesh: str, batch: int, ctx, dtype=None, setup=None, counter=None):
    """Builds the setup (unless given; its spiral layers use ``impl``) and compiles its step.

    Args:
      impl: ``"auto"``, ``"auto_autodiff"`` or one implementation for every spiral layer
        (:class:`jaxface.nn.SpiralConv`'s ``impl``); a given ``setup`` must have been built
        with it.

    Returns:
      ``(setup, runner)``; the setup's initial state is donated by the first call.
    """
    if setup is None:
        setup = s2d_setup(mesh, batch, dtype=dtype, spiral_impl=impl, cache_dir=ctx.cache_dir)
    return setup, jax_runner(f"jax/{impl}", setup, counter or ctx.counter)


def compiled_reference(setup, params_np, *, device: str = "cpu", backend: str = "inductor",
                       sync: bool = True):
    """The SpiralNet++-style decoder through ``torch.compile`` and its eager-optimizer step.

    Args:
      device: the PyTorch device the module and its step run on.
      backend: ``torch.compile``'s backend.
      sync: see :func:`benchmarks.reference_torch.make_s2d_train_step`.
    """
    import torch

    from benchmarks.reference_torch import load_s2d_params, make_s2d_train_step
    from benchmarks.reference_torch.spiralnet_pp import SpiralNetPPDecoder

    topo = setup.topology
    module = SpiralNetPPDecoder(topo.spirals, topo.up_indices, topo.up_weights,
                                channels=S2D_CHANNELS)
    load_s2d_params(module, params_np)
    compiled = torch.compile(module.to(device), backend=backend)
    return compiled, make_s2d_train_step(compiled, setup.weights, sync=sync)


def torch_references(setup, params_np, *, device: str = "cpu", sync: bool = True):
    """The three reference decoders with the JAX initial weights, and their train steps.

    Args:
      device: the PyTorch device the modules and their steps run on.
      sync: see :func:`benchmarks.reference_torch.make_s2d_train_step`.
    """
    from benchmarks.reference_torch import load_s2d_params, make_s2d_train_step
    from benchmarks.reference_torch.folded import FoldedSpiralDecoder
    from benchmarks.reference_torch.official_s2d import OfficialS2DDecoder
    from benchmarks.reference_torch.spiralnet_pp import SpiralNetPPDecoder

    topo = setup.topology
    out = {}
    for name, cls in (("official", OfficialS2DDecoder), ("spiralnet_pp", SpiralNetPPDecoder),
                      ("folded", FoldedSpiralDecoder)):
        module = cls(topo.spirals, topo.up_indices, topo.up_weights, channels=S2D_CHANNELS)
        load_s2d_params(module, params_np)
        module.to(device)
        out[name] = (module, make_s2d_train_step(module, setup.weights, sync=sync))
    return out


def record_parity(ctx, setup, params_np, refs, shape) -> None:
    """Forward output, loss and parameter-gradient agreement of the references with jaxface
    (each reference on its own device)."""
    import torch

    from benchmarks.reference_torch import s2d_loss as torch_loss
    from jaxface.losses.s2d import s2d_loss

    d = setup.numpy_batch["landmark_displacement"]
    y = setup.numpy_batch["displacement"]
    params = jax.tree.map(jnp.asarray, params_np)
    w = jnp.asarray(setup.weights)

    def loss_fn(p):
        pred = setup.model.apply({"params": p}, d)
        return s2d_loss(pred, y, w, beta_dr=1.0, beta_pr=0.1, form="paper")[0], pred

    (loss, pred), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(params)
    pred = np.asarray(pred)
    scale = max(float(np.abs(g).max()) for g in jax.tree.leaves(grads))
    def host(t):
        return t.detach().cpu().numpy()

    for name, (module, _) in refs.items():
        device = next(module.parameters()).device
        module.zero_grad(set_to_none=True)
        out = module(torch.from_numpy(d).to(device))
        t_loss = torch_loss(out, torch.from_numpy(y).to(device),
                            torch.from_numpy(setup.weights).to(device))
        t_loss.backward()
        diffs = [np.abs(host(module.fc.weight.grad).T - np.asarray(grads["dense"]["kernel"]))]
        for i, conv in enumerate(module.convs):
            diffs.append(np.abs(host(conv.linear.weight.grad).T
                                - np.asarray(grads[f"conv_{i}"]["kernel"])))
        diffs.append(np.abs(host(module.conv_out.linear.weight.grad).T
                            - np.asarray(grads["conv_out"]["kernel"])))
        module.zero_grad(set_to_none=True)
        diff_out = float(np.abs(host(out) - pred).max())
        ctx.recorder.add(
            case=NAME, kind="parity", variant=f"torch/{name}", backend="torch",
            against="jax/auto", dtype="float32", torch_device=str(device), **shape,
            max_abs_diff_output=diff_out,
            max_abs_output=float(np.abs(pred).max()),
            loss_diff=abs(t_loss.item() - float(loss)),
            max_abs_diff_grad_kernels=float(max(x.max() for x in diffs)),
            max_abs_grad=scale,
        )
        ctx.log(f"    parity {name}: output {diff_out:.2e}, "
                f"kernel grads {max(x.max() for x in diffs):.2e} (max |grad| {scale:.2e})")


def run(ctx) -> None:
    """Runs the comparison; stores ``ctx.shared["s2d_meshes_per_s"]``."""
    mesh, batch = ("face1" if ctx.quick else "face2"), 16
    rounds = ctx.rounds(7, 2)
    base = s2d_setup(mesh, batch, cache_dir=ctx.cache_dir)
    params_np = jax.device_get(base.state.params)  # host copy: the steps donate the state
    base, auto = build_jax("auto", mesh, batch, ctx, setup=base)
    topo = base.topology
    num_params = count_params(base.state.params)
    shape = {"mesh": mesh, "vertices": topo.level_sizes[0], "batch": batch,
             "level_sizes": list(topo.level_sizes), "spiral_lengths": list(topo.spiral_lengths),
             "num_params": num_params}
    ctx.log(f"  S2D-Dec on {topo.level_sizes}, L={topo.spiral_lengths}, {num_params} params")

    runners = {"jax/auto": auto}
    impl_of = {"jax/auto": "auto"}  # the spiral impl of every JAX variant
    variants = [("jax/auto_autodiff", "auto_autodiff", None),
                ("jax/gather_matmul_autodiff", "gather_matmul", None),
                ("jax/auto/bf16", "auto", jnp.bfloat16)]
    if ctx.quick:
        variants = []
    for name, impl, dtype in variants:
        runners[name] = build_jax(impl, mesh, batch, ctx, dtype)[1]
        impl_of[name] = impl
    if not ctx.quick and jax.default_backend() == "cpu":
        tuned = build_with_options("jax/auto/ynn_reduce_off", mesh, batch, ctx, YNN_REDUCE_OFF)
        if tuned is None:
            ctx.log("    jax/auto/ynn_reduce_off not run: this XLA does not know "
                    f"{sorted(YNN_REDUCE_OFF)}")
        else:
            runners["jax/auto/ynn_reduce_off"] = tuned

    refs = {}
    compile_s = {}
    if ctx.torch:
        import torch

        refs = torch_references(base, params_np)
        record_parity(ctx, base, params_np, refs, shape)
        dt = torch.from_numpy(base.numpy_batch["landmark_displacement"])
        yt = torch.from_numpy(base.numpy_batch["displacement"])
        if not ctx.quick:
            refs["spiralnet_pp_compiled"] = compiled_reference(base, params_np)
            with torch_threads(ctx.torch_thread_settings[0]):
                t0 = time.perf_counter()
                refs["spiralnet_pp_compiled"][1](dt, yt)  # compiles
                compile_s["torch/spiralnet_pp_compiled"] = time.perf_counter() - t0
            ctx.log(f"    torch.compile: {compile_s['torch/spiralnet_pp_compiled']:.0f} s")
        for name, (_, step) in refs.items():
            runners[f"torch/{name}"] = lambda step=step: step(dt, yt)

    def measure(runner_set, tag: str, threads: int | None, allocator: str, first: bool):
        timings = interleave(runner_set, rounds=rounds, warmup=1, counter=ctx.counter)
        torch_names = [n for n in timings if n.startswith("torch/")]
        results = {}
        for name, t in timings.items():
            runner = runner_set[name]
            bf16 = name.endswith("/bf16")
            layout = s2d_variant_layers(name, impl_of.get(name, "auto"), topo.num_levels)
            cost = s2d_step_cost(batch, topo.level_sizes, topo.spiral_lengths, S2D_CHANNELS,
                                 num_params=num_params, itemsize=2 if bf16 else 4, **layout)
            fields = {}
            if isinstance(runner, JaxStep):
                fields.update(runner.fields(strict=True))
                fields.update(
                    memory_fields(runner.jitted, runner.holder["state"], base.batch, None))
                fields["speedup_vs"] = {n: paired_ratio(timings[n], t) for n in torch_names}
            elif first and not ctx.quick:
                peak = torch_peak_memory(runner)
                if peak is not None:
                    fields["temp_memory_bytes"] = peak
            if name.startswith("torch/"):
                fields["torch_threads"] = threads
            if name in compile_s:
                fields["compile_s"] = compile_s[name]
            if getattr(runner, "compiler_options", None):
                fields["compile_s"] = round(runner.options_compile_s, 4)
                fields["compiler_options"] = runner.compiler_options
            rec = ctx.recorder.add(
                case=NAME, kind="timing", variant=name, setting=tag, allocator=allocator,
                backend=name.split("/")[0], 
                dtype="bfloat16" if bf16 else "float32", **shape,
                bytes_materialised=cost["bytes_materialised"],
                **timing_fields(t, batch=batch, flops=cost["flops"],
                                bytes_moved=cost["bytes_min"], peaks=ctx.peaks),
                **fields,
            )
            results[name] = rec
        line = ", ".join(f"{n} {1e3 * timings[n].median_s:.0f} ms" for n in timings)
        ctx.log(f"    [{tag}] {line}")
        for n in torch_names:
            ratio = paired_ratio(timings[n], timings["jax/auto"])
            ctx.log(f"      jax/auto speedup vs {n}: {ratio:.2f}x")
        return results

    torch_runners = {n: r for n, r in runners.items() if n.startswith("torch/")}
    settings = ctx.torch_thread_settings if refs else (None,)
    for i, threads in enumerate(settings):
        runner_set = runners if i == 0 else {"jax/auto": runners["jax/auto"], **torch_runners}
        tag = "no_torch" if threads is None else f"torch_{threads}_threads"
        if threads is None:
            results = measure(runner_set, tag, None, ctx.allocator, i == 0)
        else:
            with torch_threads(threads):
                results = measure(runner_set, tag, threads, ctx.allocator, i == 0)
        if i == 0:
            ctx.shared["s2d_meshes_per_s"] = results["jax/auto"]["meshes_per_s"]
    if refs and not ctx.quick:
        for allocator in ("default", "tuned"):
            _allocator_comparison(ctx, allocator, mesh, batch, rounds, shape)


def _allocator_comparison(ctx, allocator: str, mesh: str, batch: int, rounds: int, shape) -> None:
    """Runs :func:`allocator_child` in a fresh process with ``allocator``; records its timings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MALLOC_") and k != "JAXFACE_BENCH_ALLOCATOR"}
    if allocator == "tuned":
        env.update(ALLOCATOR_ENV)
    config = {"mesh": mesh, "batch": batch, "rounds": rounds, "cache_dir": ctx.cache_dir,
              "torch_threads": ctx.torch_threads}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.cases.s2d_train", json.dumps(config)],
        cwd=root, env=env, capture_output=True, text=True, timeout=900, check=False)
    lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
    if proc.returncode or not lines:
        raise RuntimeError(f"allocator child ({allocator}) failed: {proc.stderr[-2000:]}")
    result = json.loads(lines[-1])
    timings = {n: Timing(r["times_s"]) for n, r in result.items()}
    for name, res in result.items():
        fields = {"minor_page_faults_per_step": res["faults_per_step"]}
        if name == "jax/auto":
            fields["speedup_vs"] = {n: paired_ratio(timings[n], timings["jax/auto"])
                                    for n in timings if n.startswith("torch/")}
        else:
            fields["torch_threads"] = ctx.torch_threads
        ctx.recorder.add(
            case=NAME, kind="timing", variant=name, setting=f"own_process_{allocator}_allocator",
            allocator=allocator, backend=name.split("/")[0], 
            dtype="float32", **shape, **timing_fields(timings[name], batch=batch), **fields)
    ctx.log(f"    [own process, {allocator} allocator] " + ", ".join(
        f"{n} {1e3 * timings[n].median_s:.0f} ms "
        f"({result[n]['faults_per_step']:.0f} page faults/step)"
        for n in timings))


def allocator_child(config: dict) -> dict:
    """``jax/auto``, ``torch/spiralnet_pp`` and ``torch/folded`` S2D-Dec steps, interleaved, in
    this process.

    Returns:
      name -> ``{"times_s": [...], "faults_per_step": median minor page faults per step}``.
    """
    import torch

    torch.set_num_threads(config["torch_threads"])
    counter = compile_counter()
    setup = s2d_setup(config["mesh"], config["batch"], cache_dir=config["cache_dir"])
    params_np = jax.device_get(setup.state.params)  # host copy: the steps donate the state
    _, runner = build_jax("auto", config["mesh"], config["batch"], None, setup=setup,
                          counter=counter)
    refs = torch_references(setup, params_np)
    dt = torch.from_numpy(setup.numpy_batch["landmark_displacement"])
    yt = torch.from_numpy(setup.numpy_batch["displacement"])
    runners = {"jax/auto": runner}
    for name in ("spiralnet_pp", "folded"):
        runners[f"torch/{name}"] = lambda step=refs[name][1]: step(dt, yt)
    faults = {n: [] for n in runners}

    def counted(name):
        def run():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            out = runners[name]()
            jax.block_until_ready(out)
            faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
            return out
        return run

    timings = interleave({n: counted(n) for n in runners}, rounds=config["rounds"], warmup=2,
                         counter=counter)
    return {n: {"times_s": t.times_s,
                "faults_per_step": float(np.median(faults[n][-config["rounds"]:]))}
            for n, t in timings.items()}


if __name__ == "__main__":
    print(json.dumps(allocator_child(json.loads(sys.argv[1]))))
