"""Spiral convolution on meshes with a fixed topology.

A spiral convolution gathers, for every vertex ``n``, the features of the ``L`` vertices listed in
row ``n`` of a precomputed spiral index array and applies one linear map to their concatenation:

    out[b, n] = concat_l(x_pad[b, indices[n, l]]) @ kernel + bias

``x_pad`` is ``x`` with one extra *dummy* row at index ``N``: spiral entries equal to ``N`` mark
padding and read zeros (or a per-example ``padding`` vector). Negative indices are invalid. The
dummy row is never materialised; padded entries are masked in the gather.

Implementations (``impl``):

* ``"gather_matmul"``: materialise the gathered ``[B, N, L*C]`` tensor, then one matmul.
* ``"matmul_gather"``: project first, ``y_l = x @ W_l`` (one ``[C, L*C_out]`` matmul), then gather
  and sum, ``out[n] = sum_l y_l[indices[n, l]]``. The intermediate holds ``L*C_out`` values per
  vertex instead of ``L*C``, so it moves fewer bytes when ``C_out < C``.
* ``"gather_matmul_inverse"`` / ``"matmul_gather_inverse"``: the same forward passes, with a
  :func:`jax.custom_vjp` gather whose backward pass w.r.t. ``x`` is a *gather* over precomputed
  inverse spiral indices (:func:`inverse_spiral_indices`) instead of the scatter-add that
  autodiff produces. Vertices are grouped by the length of their inverse lists, one dense
  gather-sum per group, written by a scatter with unique, sorted indices, so the backward pass
  needs no atomics and is deterministic. These need concrete (numpy) indices; the plan is
  cached per topology. Being custom VJPs they support reverse mode to any order (e.g. a
  gradient penalty) but not forward mode (:func:`jax.jvp`, :func:`jax.jacfwd`): use the
  plain variants for that.
* ``"auto"``: see :func:`select_spiral_impl`.
* ``"auto_autodiff"``: always a plain variant with autodiff's backward (no custom VJP; supports
  forward mode), chosen by the same function for that backward (it projects first only where
  ``2 * C_out <= C``).

Up-sampled input (``upsampling=(up_indices, up_weights)``): decoders convolve the up-sampling
of a coarser level. Every step of that is linear, so a projecting implementation computes
``x_coarse @ W_l`` on the ``M`` coarse vertices and reads the result with one weighted gather
whose table (:func:`upsampled_spiral_table`) composes the spiral with the interpolation; its
backward pass is a weighted gather over the inverse table. On S2D-Dec's face hierarchy this cuts
the decoder's matmul FLOPs about 4x and removes the up-sampled and projected fine-level tensors
(1.5x on the CPU training step, ``benchmarks/README.md``).

Down-sampled output (``downsampling=down_indices``): an encoder keeps a quarter of a level's
vertices after each convolution, so the layer computes only those rows of its spiral table (the
activation in between is elementwise). 3.9x on the Neural3DMM encoder's forward+backward on
CPU (6990 vertices, batch 16).

All gathers take whole batch columns (the batch is a passthrough axis of the gather), so a
batch sharded along ``B`` stays sharded (only the weight gradient is all-reduced).

Measured speeds of every implementation per layer shape are in ``benchmarks/README.md``
(``python -m benchmarks.run``).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxface.nn._spiral_gathers import (
    gather_then_matmul,
    inverse_spiral_indices,
    matmul_then_gather,
    upsampled_spiral_table,
)
from jaxface.nn.pooling import check_upsampling, upsample

__all__ = [
    "SPIRAL_IMPLS",
    "SpiralConv",
    "inverse_spiral_indices",
    "resolve_spiral_impl",
    "select_spiral_impl",
    "spiral_conv",
    "upsampled_spiral_table",
]

#: Accepted values of ``impl`` (besides ``"auto"`` and ``"auto_autodiff"``).
SPIRAL_IMPLS = (
    "gather_matmul",
    "matmul_gather",
    "gather_matmul_inverse",
    "matmul_gather_inverse",
)


# --------------------------------------------------------------------------------------------
# Functional op
# --------------------------------------------------------------------------------------------


def _concrete(indices: Any) -> np.ndarray | None:
    """Returns ``indices`` as numpy if its values are known at trace time, else ``None``."""
    if isinstance(indices, jax.core.Tracer):
        return None
    return np.asarray(indices)


def _check_indices(indices: Any, n: int, c: int, kernel: jax.Array) -> np.ndarray | None:
    """Checks the shapes (and concrete values) of ``indices`` and ``kernel``; returns the
    indices as numpy when they are concrete, else ``None``."""
    idx_shape = tuple(np.shape(indices))
    if len(idx_shape) != 2 or idx_shape[0] != n:
        raise ValueError(f"indices must be [N={n}, L], got shape {idx_shape}")
    length = idx_shape[1]
    if kernel.ndim != 2 or kernel.shape[0] != length * c:
        raise ValueError(f"kernel must be [L*C={length * c}, C_out], got shape {kernel.shape}")
    concrete = _concrete(indices)
    if concrete is not None and concrete.size:
        if not np.issubdtype(concrete.dtype, np.integer):
            raise ValueError(f"indices must be integers, got {concrete.dtype}")
        lo, hi = int(concrete.min()), int(concrete.max())
        if lo < 0 or hi > n:
            raise ValueError(
                f"indices must lie in [0, {n}] ({n} = dummy/padding); got [{lo}, {hi}]"
            )
    return concrete


def _rows_of(indices: Any, concrete: np.ndarray | None, rows: Any, n: int):
    """The spiral table's rows ``rows`` (checked to be int ``[M]`` in ``[0, N)``), as given and
    as numpy (``None`` when traced)."""
    if np.ndim(rows) != 1:
        raise ValueError(f"downsampling must be [M] vertex indices, got shape {np.shape(rows)}")
    rows_np = _concrete(rows)
    if rows_np is not None:
        if not np.issubdtype(rows_np.dtype, np.integer):
            raise ValueError(f"downsampling must be integers, got {rows_np.dtype}")
        if rows_np.size and (rows_np.min() < 0 or rows_np.max() >= n):
            raise ValueError(f"downsampling must lie in [0, {n})")
    if concrete is not None and rows_np is not None:
        subset = concrete[rows_np]
        return subset, subset
    return jnp.asarray(indices)[jnp.asarray(rows, jnp.int32)], None


def select_spiral_impl(in_features: int, out_features: int, concrete: bool = True) -> str:
    """The implementation that ``impl="auto"`` picks.

    Rule: project first (``"matmul_gather"``), whose intermediate holds ``L * out_features``
    values per vertex against ``L * in_features`` for gather-then-matmul, when
    ``out_features <= in_features`` with concrete indices, and when
    ``2 * out_features <= in_features`` with traced ones; otherwise ``"gather_matmul"``. With
    concrete indices the custom-VJP ``*_inverse`` variant is used: its backward pass was as fast
    or faster in every measured shape, and it is deterministic. Traced indices fall back to the
    plain autodiff variant, whose scatter-add backward costs more after a projection.

    Forward+backward on CPU, batch 16, S2D-Dec's face hierarchy: projecting first was faster
    with the custom VJP for 32->16 at 6990 vertices (50 against 81 ms), 32->32 at 6990 and
    1748 vertices (78 against 106 ms, 23 against 38 ms) and 128->64 at 110 (4.5 against 7.7
    ms), about even for 32->64, and slower for 3->32 (15 against 3.7 ms at 1748 vertices). With
    the autodiff backward gather-then-matmul stayed faster at 32->32 (33 against 46 ms).

    Args:
      in_features: input channels ``C``.
      out_features: output channels ``C_out``.
      concrete: whether the spiral indices are concrete (numpy) values.

    Returns:
      One of :data:`SPIRAL_IMPLS`.

    Example:
      >>> select_spiral_impl(32, 3)
      'matmul_gather_inverse'
    """
    project_first = out_features * (1 if concrete else 2) <= in_features
    base = "matmul_gather" if project_first else "gather_matmul"
    return base + "_inverse" if concrete else base


def resolve_spiral_impl(
    impl: str, in_features: int, out_features: int, concrete: bool = True
) -> str:
    """The implementation a spiral convolution with ``impl`` runs: ``"auto"`` and
    ``"auto_autodiff"`` resolved by :func:`select_spiral_impl`, any other name checked.

    Args:
      impl: ``"auto"``, ``"auto_autodiff"`` or one of :data:`SPIRAL_IMPLS`.
      in_features: input channels ``C``.
      out_features: output channels ``C_out``.
      concrete: whether the spiral indices are concrete (numpy) values.

    Returns:
      One of :data:`SPIRAL_IMPLS`.

    Raises:
      ValueError: for an unknown ``impl``.

    Example:
      >>> resolve_spiral_impl("auto_autodiff", 32, 16)
      'matmul_gather'
    """
    if impl in ("auto", "auto_autodiff"):
        return select_spiral_impl(in_features, out_features, impl == "auto" and concrete)
    if impl not in SPIRAL_IMPLS:
        raise ValueError(
            f"impl must be 'auto', 'auto_autodiff' or one of {SPIRAL_IMPLS}, got {impl!r}"
        )
    return impl


def spiral_conv(
    x: jax.Array,
    indices: Any,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    padding: jax.Array | None = None,
    precision: Any = None,
    impl: str = "auto",
    upsampling: tuple[Any, Any] | None = None,
    downsampling: Any = None,
) -> jax.Array:
    """Spiral convolution: gather each vertex's spiral, then one linear map.

    Args:
      x: ``[B, N, C]`` float features; any number of leading batch dims ``[..., N, C]`` (also
        none, e.g. inside :func:`jax.vmap`). With ``upsampling``: ``[..., M, C]`` features of
        the coarser level.
      indices: int ``[N, L]`` spiral indices in ``[0, N]``; ``N`` is the dummy (padding) index.
        Numpy (concrete) for the ``*_inverse`` implementations.
      kernel: ``[L*C, C_out]`` float weights, the row-major flattening of ``[L, C, C_out]`` (the
        transpose of a PyTorch ``Linear(L*C, C_out)`` weight).
      bias: optional ``[C_out]``.
      padding: optional ``[B, C]`` (``[..., C]``) features read at the dummy index (zeros when
        ``None``).
      precision: matmul precision, passed to :func:`jax.numpy.matmul`.
      impl: ``"auto"``, ``"auto_autodiff"`` or one of :data:`SPIRAL_IMPLS`.
      upsampling: optional ``(up_indices [N, K], up_weights [N, K])``: convolve
        ``upsample(x, up_indices, up_weights)`` (:func:`jaxface.nn.upsample`) instead of ``x``.
        With concrete arrays and a projecting implementation (``"matmul_gather*"``) the
        up-sampling is folded into the spiral gather: the projection runs on the ``M`` coarse
        vertices (``N / M`` times fewer FLOPs) and one weighted gather
        (:func:`upsampled_spiral_table`) reads the projected rows, with no up-sampled tensor in
        between. Other implementations up-sample first. Both compute the same linear map.
      downsampling: optional int ``[M]`` vertices in ``[0, N)`` (an encoder's ``down_indices``):
        return the output at those vertices only, ``[..., M, C_out]``, as
        :func:`jaxface.nn.downsample` of the full output would, computing only those ``M`` rows
        of the spiral table. Not combined with ``upsampling``.

    Returns:
      ``[B, N, C_out]`` (``[..., N, C_out]``; ``[..., M, C_out]`` with ``downsampling``) in the
      promoted dtype of ``x`` and ``kernel``.

    Raises:
      ValueError: on inconsistent shapes, out-of-range concrete indices, unknown ``impl``, or an
        ``*_inverse`` implementation with traced indices.

    Example:
      >>> x = jnp.ones((2, 3, 4))
      >>> idx = np.array([[0, 1], [1, 2], [2, 3]], np.int32)  # 3 marks padding
      >>> spiral_conv(x, idx, jnp.ones((8, 5))).shape
      (2, 3, 5)
      >>> spiral_conv(x, idx, jnp.ones((8, 5)))[0, :, 0]
      Array([8., 8., 4.], dtype=float32)
    """
    x = jnp.asarray(x)
    kernel = jnp.asarray(kernel)
    if x.ndim < 2:
        raise ValueError(f"x must be [..., N, C], got shape {x.shape}")
    lead, c = x.shape[:-2], x.shape[-1]
    batch = int(np.prod(lead, dtype=np.int64))
    n = x.shape[-2] if upsampling is None else np.shape(upsampling[0])[0]
    concrete = _check_indices(indices, n, c, kernel)
    if downsampling is not None:
        if upsampling is not None:
            raise ValueError("spiral_conv takes upsampling or downsampling, not both")
        indices, concrete = _rows_of(indices, concrete, downsampling, n)
    impl = resolve_spiral_impl(impl, c, kernel.shape[1], concrete is not None)
    inverse = impl.endswith("_inverse")
    if inverse and concrete is None:
        raise ValueError(f"impl={impl!r} needs concrete (numpy) indices, got a tracer")
    if padding is not None:
        padding = jnp.asarray(padding, x.dtype)
        if padding.shape != (*lead, c):
            raise ValueError(f"padding must be [..., C] = {(*lead, c)}, got {padding.shape}")
        padding = padding.reshape(batch, c)

    args = (indices, concrete, kernel, padding, precision, inverse)
    projects = impl.startswith("matmul_gather")
    up = None if upsampling is None else tuple(_concrete(a) for a in upsampling)
    if up is not None and projects and concrete is not None and all(a is not None for a in up):
        check_upsampling(*up, x.shape[-2])
        out = matmul_then_gather(x.reshape(batch, -1, c), *args, upsampling=up)
    else:
        if upsampling is not None:
            x = upsample(x, *upsampling)
        form = matmul_then_gather if projects else gather_then_matmul
        out = form(x.reshape(batch, n, c), *args)
    if bias is not None:
        out = out + jnp.asarray(bias, out.dtype)
    return out.reshape(*lead, np.shape(indices)[0], kernel.shape[1])


# --------------------------------------------------------------------------------------------
# Module
# --------------------------------------------------------------------------------------------


class SpiralConv(nn.Module):
    """Spiral convolution layer with its spiral indices held as a constant.

    The activation stays outside the layer.

    Attributes:
      features: output channels ``C_out``.
      indices: int ``[N, L]`` numpy spiral indices in ``[0, N]`` (``N`` = dummy/padding).
      use_bias: whether to add a bias (initialised to zero).
      dtype: compute dtype (e.g. ``jnp.bfloat16``); ``None`` promotes inputs and params.
      param_dtype: parameter dtype.
      precision: matmul precision.
      impl: ``"auto"``, ``"auto_autodiff"`` or one of :data:`SPIRAL_IMPLS`.
      upsampling: optional numpy ``(up_indices [N, K], up_weights [N, K])``: the layer reads
        the up-sampling of its input ``[B, M, C]`` (see :func:`spiral_conv`).
      downsampling: optional numpy ``[M]`` vertices: the layer returns its output at those
        vertices only, ``[B, M, features]`` (see :func:`spiral_conv`).
      kernel_init: kernel initialiser for ``[L*C, C_out]``; Xavier-uniform with
        ``fan_in = L*C``, ``fan_out = C_out``.
      bias_init: bias initialiser.

    Example:
      >>> idx = np.array([[0, 1], [1, 2], [2, 3]], np.int32)
      >>> layer = SpiralConv(features=5, indices=idx)
      >>> params = layer.init(jax.random.key(0), jnp.ones((2, 3, 4)))
      >>> params["params"]["kernel"].shape, params["params"]["bias"].shape
      ((8, 5), (5,))
      >>> layer.apply(params, jnp.ones((2, 3, 4))).shape
      (2, 3, 5)
    """

    features: int
    indices: Any
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    precision: Any = None
    impl: str = "auto"
    upsampling: Any = None
    downsampling: Any = None
    kernel_init: Any = nn.initializers.xavier_uniform()
    bias_init: Any = nn.initializers.zeros_init()

    @nn.compact
    def __call__(self, x: jax.Array, padding: jax.Array | None = None) -> jax.Array:
        """Applies the layer.

        Args:
          x: ``[B, N, C]`` features (``[B, M, C]`` of the coarser level with ``upsampling``).
          padding: optional ``[B, C]`` features read at the dummy index.

        Returns:
          ``[B, N, features]`` in ``dtype`` (or the promoted input/param dtype).
        """
        length = np.shape(self.indices)[1]
        kernel = self.param(
            "kernel", self.kernel_init, (length * x.shape[-1], self.features), self.param_dtype
        )
        bias = (
            self.param("bias", self.bias_init, (self.features,), self.param_dtype)
            if self.use_bias
            else None
        )
        x, kernel, bias, padding = nn.dtypes.promote_dtype(
            x, kernel, bias, padding, dtype=self.dtype
        )
        return spiral_conv(
            x,
            self.indices,
            kernel,
            bias,
            padding=padding,
            precision=self.precision,
            impl=self.impl,
            upsampling=self.upsampling,
            downsampling=self.downsampling,
        )
