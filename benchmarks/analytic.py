"""Analytic FLOP and byte counts from shapes (the "limit" side of the roofline).

Conventions:

* FLOPs count multiply-adds as two operations; a training step's backward pass costs two
  forward matmuls per layer (input and weight gradients), so a layer's forward+backward is 3x
  its forward.
* ``bytes_min``: the traffic of a fully fused implementation: every layer reads its input and
  writes its output once in the forward pass, and the backward pass reads the output gradient
  and the saved input and writes the input gradient (about twice the forward traffic); weights
  and the gathered spiral tensor never touch memory. This is the floor a kernel can approach.
* ``bytes_materialised``: the same plus writing and reading back the intermediate that the
  unfused formulations materialise: the gathered ``[B, N, L*C]`` tensor (gather-then-matmul) or
  the projected ``[B, N, L*C_out]`` tensor (matmul-then-gather), in the forward pass and, as its
  gradient, in the backward pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["matmul_flops", "s2d_step_cost", "s2d_variant_layers", "spiral_conv_cost"]


def spiral_conv_cost(
    batch: int,
    vertices: int,
    length: int,
    c_in: int,
    c_out: int,
    *,
    backward: bool,
    impl: str = "gather_matmul",
    itemsize: int = 4,
) -> dict[str, float]:
    """FLOPs and bytes of one spiral convolution ``[B, N, C] -> [B, N, C_out]``.

    Args:
      batch: ``B``.
      vertices: ``N``.
      length: spiral length ``L``.
      c_in: ``C``.
      c_out: ``C_out``.
      backward: count forward+backward (gradients w.r.t. input, kernel and bias).
      impl: the formulation whose intermediate ``bytes_materialised`` counts (a name of
        :data:`jaxface.nn.SPIRAL_IMPLS`).
      itemsize: bytes per element (4 for float32, 2 for bfloat16 activations).

    Returns:
      ``{"flops", "bytes_min", "bytes_materialised"}``.
    """
    rows = batch * vertices
    flops = 2.0 * rows * length * c_in * c_out
    x, y = rows * c_in * itemsize, rows * c_out * itemsize
    weights = (length * c_in * c_out + c_out) * 4
    inter = rows * length * (c_in if impl.startswith("gather_matmul") else c_out) * itemsize
    if backward:
        flops *= 3.0
        bytes_min = 2 * x + y + (y + x + x) + 2 * weights
        # Forward: write and read the intermediate. Backward: write its gradient, read it for
        # the input gradient and for the kernel gradient.
        bytes_mat = bytes_min + 2 * inter + 3 * inter
    else:
        bytes_min = x + y + weights
        bytes_mat = bytes_min + 2 * inter
    return {"flops": flops, "bytes_min": float(bytes_min), "bytes_materialised": float(bytes_mat)}


def s2d_step_cost(
    batch: int,
    level_sizes: Sequence[int],
    spiral_lengths: Sequence[int],
    channels: Sequence[int],
    *,
    out_features: int = 3,
    in_features: int = 204,
    num_params: int | None = None,
    impls: Sequence[str] | None = None,
    itemsize: int = 4,
    fold: bool = True,
) -> dict[str, Any]:
    """FLOPs and bytes of one S2D-Dec training step (forward, backward, Adam).

    Args:
      batch: ``B``.
      level_sizes: vertices per level, finest first.
      spiral_lengths: spiral length per level, finest first.
      channels: the dense layer's channels, then each up-sampled level's (coarse to fine).
      out_features: channels of the final spiral layer.
      in_features: decoder input size.
      num_params: parameter count (for the optimizer's traffic).
      impls: per spiral layer (coarse to fine, then the output layer) the formulation counted
        in ``bytes_materialised``; default: jaxface's ``select_spiral_impl`` rule.
      itemsize: bytes per activation element.
      fold: a layer that projects first (``"matmul_gather*"``) after an up-sampling reads the
        coarse level through one weighted gather, as :class:`jaxface.nn.SpiralConv` does with
        ``upsampling``: its three matmuls run on the coarse rows ``M``, plus the weighted sum
        over at most ``3 L`` projected rows per output (forward and transpose), with no
        up-sampled tensor. ``False``: up-sample, then the layer at full size (7.98 GFLOP for
        S2D-Dec at batch 16 on the 6990-vertex hierarchy).

    Returns:
      ``{"flops", "bytes_min", "bytes_materialised", "layers": [per-layer dicts]}``.
    """
    from jaxface.nn import select_spiral_impl

    k = len(level_sizes)
    rows0 = level_sizes[-1] + 1
    layers = []
    dense_flops = 3 * 2.0 * batch * in_features * rows0 * channels[0]
    dense_bytes = 3 * batch * rows0 * channels[0] * itemsize + in_features * rows0 * channels[0] * 8
    layers.append({"layer": "dense", "flops": dense_flops, "bytes_min": dense_bytes,
                   "bytes_materialised": dense_bytes})
    shapes = []
    for step, level in enumerate(range(k - 2, -1, -1)):
        shapes.append((level, channels[step], channels[step + 1], True))
    shapes.append((0, channels[-1], out_features, False))
    for i, (level, c_in, c_out, upsampled) in enumerate(shapes):
        n = level_sizes[level]
        impl = impls[i] if impls is not None else select_spiral_impl(c_in, c_out)
        length = spiral_lengths[level]
        if upsampled and fold and impl.startswith("matmul_gather"):
            m = level_sizes[level + 1]
            cost = spiral_conv_cost(batch, m, length, c_in, c_out, backward=True, impl=impl,
                                    itemsize=itemsize)
            taps = 2 * (2.0 * batch * n * 3 * length * c_out)
            # Output and its gradient at N rows instead of M: written, read, read.
            rows = 3 * batch * (n - m) * c_out * itemsize
            layers.append({"layer": f"level{level}:{c_in}->{c_out}", "impl": impl,
                           "folded": True, "flops": cost["flops"] + taps,
                           "bytes_min": cost["bytes_min"] + rows,
                           "bytes_materialised": cost["bytes_materialised"] + rows})
            continue
        cost = spiral_conv_cost(batch, n, length, c_in, c_out, backward=True,
                                impl=impl, itemsize=itemsize)
        if upsampled:
            # 3-wide weighted gather, forward and input gradient.
            up_flops = 2 * (2.0 * batch * n * 3 * c_in)
            up_bytes = 2 * (batch * level_sizes[level + 1] * c_in + batch * n * c_in) * itemsize
            cost = {
                "flops": cost["flops"] + up_flops,
                "bytes_min": cost["bytes_min"] + up_bytes,
                "bytes_materialised": cost["bytes_materialised"] + up_bytes,
            }
        layers.append({"layer": f"level{level}:{c_in}->{c_out}", "impl": impl, **cost})
    # Loss: read prediction and target, write the prediction's gradient.
    loss_bytes = 3 * batch * level_sizes[0] * out_features * 4
    adam_flops = 12.0 * (num_params or 0)
    adam_bytes = 7 * 4 * (num_params or 0)
    total_flops = sum(layer["flops"] for layer in layers) + adam_flops
    bytes_min = sum(layer["bytes_min"] for layer in layers) + loss_bytes + adam_bytes
    bytes_mat = sum(layer["bytes_materialised"] for layer in layers) + loss_bytes + adam_bytes
    return {
        "flops": total_flops,
        "bytes_min": float(bytes_min),
        "bytes_materialised": float(bytes_mat),
        "layers": layers,
    }


def s2d_variant_layers(variant: str, impl: str, num_levels: int) -> dict[str, Any]:
    """The ``impls`` and ``fold`` arguments of :func:`s2d_step_cost` for a benchmark variant.

    JAX variants run ``impl`` (``"auto*"``: jaxface's rule per layer) with the up-sampling
    folded where a layer projects first; ``torch/folded`` projects first everywhere, folded;
    the other PyTorch references gather first and up-sample at full size.
    """
    if variant == "torch/folded":
        return {"impls": ["matmul_gather"] * num_levels, "fold": True}
    if variant.startswith("torch/"):
        return {"impls": ["gather_matmul"] * num_levels, "fold": False}
    return {"impls": None if impl.startswith("auto") else [impl] * num_levels, "fold": True}


def _eqn_flops(eqn) -> float:
    """FLOPs of one dot_general or convolution equation (0 for other primitives)."""
    name = eqn.primitive.name
    if name == "dot_general":
        (contract, _), _ = eqn.params["dimension_numbers"]
        lhs = eqn.invars[0].aval.shape
        out = eqn.outvars[0].aval.shape
        k = 1
        for d in contract:
            k *= lhs[d]
        size = 1
        for d in out:
            size *= d
        return 2.0 * size * k
    if name == "conv_general_dilated":
        rhs = eqn.invars[1].aval.shape
        out = eqn.outvars[0].aval.shape
        spec = eqn.params["dimension_numbers"].rhs_spec
        size = 1
        for d in out:
            size *= d
        per_output = 1
        for i, d in enumerate(rhs):
            if i != spec[0]:
                per_output *= d
        # A dilated input (the input gradient of a strided convolution) is mostly holes: only
        # one window entry in prod(lhs_dilation) meets a real input value.
        holes = 1
        for d in eqn.params.get("lhs_dilation") or ():
            holes *= d
        return 2.0 * size * per_output / holes
    return 0.0


def _jaxpr_flops(jaxpr) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        total += _eqn_flops(eqn)
        repeat = eqn.params.get("length", 1) if eqn.primitive.name == "scan" else 1
        for value in eqn.params.values():
            for sub in value if isinstance(value, (list, tuple)) else (value,):
                inner = getattr(sub, "jaxpr", None)
                if inner is not None and hasattr(inner, "eqns"):
                    total += repeat * _jaxpr_flops(inner)
                elif hasattr(sub, "eqns"):
                    total += repeat * _jaxpr_flops(sub)
    return total


def matmul_flops(fn, *args: Any) -> float:
    """Matmul and convolution FLOPs of ``fn(*args)``, counted from the shapes in its jaxpr.

    Walks nested jaxprs (jit, custom VJPs, ``lax.scan`` bodies times their length, ``cond``
    branches all counted), so it counts what a compiled step executes for dot products and
    convolutions; elementwise work is left out.
    """
    import jax

    closed = jax.make_jaxpr(fn)(*args)
    return _jaxpr_flops(closed.jaxpr)
