"""Spiral convolution layer: forward and forward+backward, every implementation, side by side.

Shapes: the five spiral layers of S2D-Dec on the 6990-vertex face hierarchy at batch 16 (level
sizes 6990/1748/437/110, their spiral lengths, channels 128->64, 64->32, 32->32, 32->16, 16->3);
quick runs take the two full-resolution layers of the 1790-vertex hierarchy.
For each shape and pass, the jaxface implementations (:data:`jaxface.nn.SPIRAL_IMPLS`, float32,
and the ``"auto"`` choice in bfloat16) and the three PyTorch references run interleaved:

* ``torch/official``: the Neural3DMM-style layer (advanced-index gather with a per-call repeated
  index on ``[B, N + 1, C]`` features with a dummy row, ``Linear``, dummy-row mask);
* ``torch/spiralnet_pp``: ``index_select`` on the same padded features, then ``Linear``;
* ``torch/projected``: project first (one matmul), then one CSR sparse matrix product with a
  precomputed transpose for the backward pass
  (:class:`benchmarks.reference_torch.folded.ProjectedSpiralConv`).

Ratios against "the fastest PyTorch layer" take the fastest of the three in each round.

The forward+backward pass returns the output and its vector-Jacobian product with a fixed
random ``g`` (the gradients of ``sum(y * g)`` with respect to the input, the kernel and the
bias), as PyTorch's ``autograd.grad`` does after its forward pass
(:func:`benchmarks.common.output_and_grads`). The references are checked first to compute the
same function on the same weights and indices (``kind="parity"`` records).
"""

from __future__ import annotations

import importlib

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.analytic import spiral_conv_cost
from benchmarks.common import (
    JaxStep,
    interleave,
    memory_fields,
    output_and_grads,
    paired_ratio,
    timing_fields,
)
from benchmarks.fixtures import S2D_CHANNELS, topology_for

NAME = "spiral_conv"


def layer_shapes(topology, quick: bool) -> list[tuple[int, int, int, int, int]]:
    """``(level, N, L, C, C_out)`` of S2D-Dec's spiral layers, finest (most expensive) first."""
    levels = topology.num_levels
    shapes = []
    for step, level in enumerate(range(levels - 2, -1, -1)):
        shapes.append((level, S2D_CHANNELS[step], S2D_CHANNELS[step + 1]))
    shapes.append((0, S2D_CHANNELS[-1], 3))
    shapes = sorted(shapes, key=lambda s: s[0])
    out = [(lvl, topology.level_sizes[lvl], topology.spiral_lengths[lvl], c, o)
           for lvl, c, o in shapes]
    return out[:2] if quick else out


def variant_fields(name: str, runner, timings: dict, args: tuple, *, batch: int, n: int,
                   length: int, c_in: int, c_out: int, backward: bool, auto: str):
    """The cost and the JAX-side fields of one timed variant of the spiral layer.

    Args:
      name: the variant, ``"<backend>/<impl>[/bf16]"``.
      runner: its runner (a :class:`JaxStep` for JAX variants).
      timings: every variant's timing of the same round (torch variants give the speedups).
      args: the arguments the JAX runner was timed with (for its memory fields).
      batch, n, length, c_in, c_out: the layer's shape.
      backward: whether the gradient was timed too.
      auto: the implementation the layer picks by itself.

    Returns:
      ``(cost, bf16, fields)``: :func:`spiral_conv_cost`'s dict, whether the variant runs in
      bfloat16, and (JAX variants) compile/memory fields, ``auto`` and the paired speedups
      against every torch variant and the best one.
    """
    impl = name.split("/")[1]
    bf16 = name.endswith("/bf16")
    cost = spiral_conv_cost(batch, n, length, c_in, c_out, backward=backward,
                            impl=impl if name.startswith("jax/") else "gather_matmul",
                            itemsize=2 if bf16 else 4)
    fields: dict = {}
    if isinstance(runner, JaxStep):
        fields.update(runner.fields(strict=True))
        fields.update(memory_fields(runner.jitted, *args))
        fields["auto"] = impl == auto and not bf16
        torch_names = [nm for nm in timings if nm.startswith("torch/")]
        if torch_names:
            best = min(torch_names, key=lambda nm: timings[nm].median_s)
            fields["speedup_vs"] = {nm: paired_ratio(timings[nm], timings[name])
                                    for nm in torch_names}
            fields["speedup_vs_best_torch"] = paired_ratio(timings[best], timings[name])
            fields["best_torch"] = best
    return cost, bf16, fields


def _torch_layers(idx: np.ndarray, kernel: np.ndarray, bias: np.ndarray, c_in: int):
    import torch

    from benchmarks.reference_torch import copy_linear
    from benchmarks.reference_torch.folded import ProjectedSpiralConv, folded_spiral_matrix
    from benchmarks.reference_torch.official_s2d import DummyRowSpiralConv, spirals_with_dummy
    from benchmarks.reference_torch.spiralnet_pp import IndexSelectSpiralConv

    n, length = idx.shape
    c_out = kernel.shape[1]
    official = DummyRowSpiralConv(c_in, c_out, length, activation="identity")
    spiralnet = IndexSelectSpiralConv(c_in, c_out, idx)
    # Project first, then one CSR SpMM; like SpiralNet++'s layer it reads the extra row N.
    projected = ProjectedSpiralConv(c_in, c_out, length,
                                    folded_spiral_matrix(idx, n + 1, dummy_input=n),
                                    (n, (n + 1) * length))
    for layer in (official, spiralnet, projected):
        copy_linear(layer.linear, kernel, bias)
    spirals = torch.from_numpy(spirals_with_dummy(idx))
    return official, spiralnet, projected, spirals


def torch_layer_inputs(x_np: np.ndarray, g_np: np.ndarray, tensor) -> tuple:
    """The PyTorch layers' inputs: ``(xt, gt, gt_off)``, the input with the dummy row they read
    (requiring grad), the cotangent, and the official layer's cotangent (it writes the dummy row
    too). ``tensor(array, grad=...)`` makes a tensor on the reference's device."""
    batch = x_np.shape[0]

    def padded(a):
        return np.concatenate([a, np.zeros((batch, 1, a.shape[2]), np.float32)], axis=1)

    return tensor(padded(x_np), grad=True), tensor(g_np), tensor(padded(g_np))


def _torch_layer_table(official, spiralnet, projected, spirals, gt, gt_off):
    """``name -> (layer, extra args, cotangent)`` of the three PyTorch layers."""
    return {"torch/official": (official, (spirals,), gt_off),
            "torch/spiralnet_pp": (spiralnet, (), gt),
            "torch/projected": (projected, (), gt)}


def torch_layer_runners(official, spiralnet, projected, spirals, xt, gt, gt_off):
    """The PyTorch layers' runners by pass: ``{"forward": {name: fn}, "forward_backward":
    {...}}``. The forward runs without autograd; forward+backward returns
    ``autograd.grad`` of the output with the cotangent for the input, weight and bias (the
    official layer reads ``spirals`` and writes the dummy row, hence ``gt_off``)."""
    import torch

    layers = _torch_layer_table(official, spiralnet, projected, spirals, gt, gt_off)

    def forward(layer, args):
        def run():
            with torch.no_grad():
                return layer(xt, *args)
        return run

    def forward_backward(layer, args, cot):
        params = (xt, layer.linear.weight, layer.linear.bias)

        def run():
            return torch.autograd.grad(layer(xt, *args), params, cot)
        return run

    return {"forward": {n: forward(lay, args) for n, (lay, args, _) in layers.items()},
            "forward_backward": {n: forward_backward(lay, args, cot)
                                 for n, (lay, args, cot) in layers.items()}}


def record_torch_parity(recorder, layers: tuple, n: int, y_ref, grads_ref, **fields) -> None:
    """One parity record per PyTorch layer against the JAX output ``y_ref [B, N, C_out]`` and
    its gradients ``(d_x, d_kernel)``.

    Args:
      layers: ``(official, spiralnet, projected, spirals, xt, gt, gt_off)``.
      fields: the record's further fields (case, shape, ``against``, ...).
    """
    import torch

    official, spiralnet, projected, spirals, xt, gt, gt_off = layers
    table = _torch_layer_table(official, spiralnet, projected, spirals, gt, gt_off)
    for name, (layer, args, cot) in table.items():
        out = layer(xt, *args)
        d_x, d_w = torch.autograd.grad(out, (xt, layer.linear.weight), cot)
        y_t = out.detach().cpu().numpy()[:, :n]
        recorder.add(
            kind="parity", variant=name, backend="torch", dtype="float32", **fields,
            max_abs_diff_output=float(np.abs(y_t - y_ref).max()),
            max_abs_output=float(np.abs(y_ref).max()),
            max_abs_diff_grad_input=float(
                np.abs(d_x.cpu().numpy()[:, :n] - np.asarray(grads_ref[0])).max()),
            max_abs_diff_grad_kernel=float(
                np.abs(d_w.cpu().numpy().T - np.asarray(grads_ref[1])).max()),
            max_abs_grad_kernel=float(np.abs(np.asarray(grads_ref[1])).max()))


def run(ctx) -> None:
    """Times every implementation per shape and pass; records parity and ratios."""
    sc = importlib.import_module("jaxface.nn.spiral_conv")
    topology = topology_for("face1" if ctx.quick else "face2", ctx.cache_dir)
    batch = 16
    rounds = ctx.rounds(5, 3)
    impls = list(sc.SPIRAL_IMPLS)
    rng = np.random.default_rng(0)
    for level, n, length, c_in, c_out in layer_shapes(topology, ctx.quick):
        idx = np.asarray(topology.spirals[level], np.int32)
        auto = sc.select_spiral_impl(c_in, c_out)
        chosen = impls if not ctx.quick else [auto, auto.removesuffix("_inverse")]
        x_np = rng.standard_normal((batch, n, c_in), dtype=np.float32)
        k_np = (rng.standard_normal((length * c_in, c_out), dtype=np.float32)
                / np.sqrt(length * c_in)).astype(np.float32)
        b_np = (0.1 * rng.standard_normal(c_out)).astype(np.float32)
        g_np = rng.standard_normal((batch, n, c_out), dtype=np.float32)
        x, k, b, g = (jnp.asarray(a) for a in (x_np, k_np, b_np, g_np))
        shape = {"level": level, "vertices": n, "spiral_length": length, "c_in": c_in,
                 "c_out": c_out, "batch": batch}
        label = f"level{level} {c_in}->{c_out} (N={n}, L={length})"
        ctx.log(f"  {label}")

        def fwd(impl, dtype=jnp.float32):
            def f(x, k, b):
                return sc.spiral_conv(x.astype(dtype), idx, k.astype(dtype), b.astype(dtype),
                                      impl=impl)
            return f

        def fwd_bwd(impl, dtype=jnp.float32):
            def f(x, k, b, g):
                def layer(x, k, b):
                    y = sc.spiral_conv(x.astype(dtype), idx, k.astype(dtype), b.astype(dtype),
                                       impl=impl)
                    return y.astype(jnp.float32)
                return output_and_grads(layer, g, x, k, b)
            return f

        torch_ready = ctx.torch
        if torch_ready:
            import torch

            official, spiralnet, projected, spirals_t = _torch_layers(idx, k_np, b_np, c_in)
            xt, gt, gt_off = torch_layer_inputs(
                x_np, g_np, lambda a, grad=False: torch.from_numpy(a).requires_grad_(grad))
            torch_runners = torch_layer_runners(official, spiralnet, projected, spirals_t, xt,
                                                gt, gt_off)
            # Parity on shared weights.
            y_ref = np.asarray(jax.jit(fwd(auto))(x, k, b))
            _, grads_ref = jax.jit(fwd_bwd(auto))(x, k, b, g)
            record_torch_parity(ctx.recorder,
                                (official, spiralnet, projected, spirals_t, xt, gt, gt_off),
                                n, y_ref, grads_ref, case=NAME, against=f"jax/{auto}", **shape)

        for mode in ("forward", "forward_backward"):
            runners = {}
            for impl in chosen:
                f = jax.jit(fwd(impl) if mode == "forward" else fwd_bwd(impl))
                args = (x, k, b) if mode == "forward" else (x, k, b, g)
                runners[f"jax/{impl}"] = JaxStep(impl, lambda f=f, a=args: f(*a), f, ctx.counter)
            fb = jax.jit(fwd(auto, jnp.bfloat16) if mode == "forward"
                         else fwd_bwd(auto, jnp.bfloat16))
            args = (x, k, b) if mode == "forward" else (x, k, b, g)
            runners[f"jax/{auto}/bf16"] = JaxStep("bf16", lambda f=fb, a=args: f(*a), fb,
                                                  ctx.counter)
            if torch_ready:
                runners.update(torch_runners[mode])
            timings = interleave(runners, rounds=rounds, warmup=1, counter=ctx.counter,
                                 min_round_s=0.05)
            for name, t in timings.items():
                cost, bf16, fields = variant_fields(
                    name, runners[name], timings,
                    (x, k, b) if mode == "forward" else (x, k, b, g), batch=batch, n=n,
                    length=length, c_in=c_in, c_out=c_out, backward=mode != "forward",
                    auto=auto)
                ctx.recorder.add(
                    case=NAME, kind="timing", variant=name, mode=mode,
                    backend=name.split("/")[0],
                    dtype="bfloat16" if bf16 else "float32", **shape,
                    bytes_materialised=cost["bytes_materialised"],
                    **timing_fields(t, batch=batch, flops=cost["flops"],
                                    bytes_moved=cost["bytes_min"], peaks=ctx.peaks),
                    **fields,
                )
                best = fields.get("best_torch")
                if fields.get("auto") and best is not None:
                    ctx.log(f"    {mode}: jax/{auto} {1e3 * t.median_s:.1f} ms, "
                            f"{best} {1e3 * timings[best].median_s:.1f} ms, "
                            f"speedup {fields['speedup_vs_best_torch']:.2f}x")
