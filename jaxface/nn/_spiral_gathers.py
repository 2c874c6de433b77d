"""The machinery of :func:`jaxface.nn.spiral_conv`: batch-preserving gathers, and the
custom-VJP gathers whose backward pass is a gather over inverse spiral indices.

Private: the public op and layer are in :mod:`jaxface.nn.spiral_conv`.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.nn._rows import take_rows

# --------------------------------------------------------------------------------------------
# Inverse spiral indices
# --------------------------------------------------------------------------------------------


def _slots(groups: np.ndarray, num_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """For entries sorted by group (int ``[E]``): each entry's place in its group's list, and
    the ``[num_groups]`` list lengths. Packs ragged lists into a padded ``[G, max]`` table."""
    counts = np.bincount(groups, minlength=num_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return np.arange(groups.size) - starts[groups], counts


def inverse_spiral_indices(indices: np.ndarray, num_vertices: int) -> np.ndarray:
    """Lists, for every vertex, the flat spiral positions that reference it.

    Position ``p`` of the flattened index array stands for the pair ``(n, l) = divmod(p, L)``
    (row-major). Entries equal to ``num_vertices`` (the dummy index) are ignored.

    Args:
      indices: int array of any shape (usually ``[N, L]`` spiral indices), values in
        ``[0, num_vertices]``.
      num_vertices: number of real vertices ``N``; the value ``N`` in ``indices`` is the dummy.

    Returns:
      int32 array ``[num_vertices, K]``, ``K = max(1, max_v count(v))``. Row ``v`` holds the flat
      positions ``p`` with ``indices.flat[p] == v`` in increasing order, padded with
      ``indices.size`` (a dummy position that reads zeros).

    Raises:
      ValueError: if an index lies outside ``[0, num_vertices]``.

    Example:
      >>> inverse_spiral_indices(np.array([[0, 1], [1, 2]]), 2)
      array([[0, 4],
             [1, 2]], dtype=int32)
    """
    flat = np.asarray(indices).reshape(-1).astype(np.int64)
    num_vertices = int(num_vertices)
    if flat.size and (flat.min() < 0 or flat.max() > num_vertices):
        raise ValueError(
            f"indices must lie in [0, {num_vertices}] (the dummy index is {num_vertices}); "
            f"got range [{flat.min()}, {flat.max()}]"
        )
    positions = np.nonzero(flat < num_vertices)[0]
    values = flat[positions]
    order = np.argsort(values, kind="stable")
    values, positions = values[order], positions[order]
    columns, counts = _slots(values, num_vertices)
    width = max(1, int(counts.max()) if counts.size else 1)
    out = np.full((num_vertices, width), flat.size, dtype=np.int32)
    out[values, columns] = positions
    return out


# --------------------------------------------------------------------------------------------
# Gathers
# --------------------------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _sum_axis(x: jax.Array, axis: int) -> jax.Array:
    """``x.sum(axis)`` as a reduction that XLA:CPU keeps in its own loop, fused with the gather
    that produces ``x``.

    The reducer is ``a - (-b)``, which is ``a + b`` exactly (negation is exact, and subtracting
    a negated number is IEEE addition). XLA:CPU hands a plain sum to YNNPACK, which reads only
    materialised buffers, so the gathered ``[B, N, L, C]`` tensor is written out and read back
    (9 + 4 ms for the 6990-vertex 32->16 layer of S2D-Dec); YNNPACK takes only reducers that are
    a single add, so this one stays in XLA's loop, which reads the gathered rows directly. Its
    derivative is the plain sum's.
    """
    zero = jnp.zeros((), x.dtype)
    return jax.lax.reduce(x, zero, lambda a, b: a - (-b), (axis,))


@_sum_axis.defjvp
def _sum_axis_jvp(axis, primals, tangents):
    (x,), (t,) = primals, tangents
    return _sum_axis(x, axis), t.sum(axis)


def _replace(values: jax.Array, mask: Any, fill: Any) -> jax.Array:
    """``where(mask, fill, values)``; ``mask`` broadcasts against ``values``, ``fill=None`` is 0."""
    if mask is None:
        return values
    fill = jnp.zeros((), values.dtype) if fill is None else fill.astype(values.dtype)
    return jnp.where(mask, fill, values)


#: The most gathered rows :func:`_gather_sum` adds in one loop. XLA:CPU rewrites a reduction
#: over more than 32 entries into a materialised reduce-window, and a fused gather-sum over 20 or
#: more rows ran 3x slower than over 17 or fewer in the measurements (the up-sampled spiral
#: gathers of S2D-Dec, 33 and 38 rows: 6 and 4 ms in chunks of at most 16, 90 and 48 ms in one).
_MAX_SUMMED_ROWS = 16


def _gather_sum(
    src: jax.Array, cols: Any, mask: Any = None, fill: Any = None, weights: Any = None
) -> jax.Array:
    """``sum_k weights[:, k] * src[:, cols[:, k]]``, entry ``(r, k)`` replaced by ``fill[:, k]``
    where ``mask[r, k]``.

    Args:
      src: ``[B, S, C]``.
      cols: int ``[R, K]`` in ``[0, S)``.
      mask: ``None`` or bool ``[R, K]``.
      fill: ``None`` (zeros) or ``[B, K, C]`` replacement rows.
      weights: ``None`` (ones) or float ``[R, K]``, applied before the replacement.

    Returns:
      ``[B, R, C]``: one gather to ``[B, R, K, C]`` and a sum over ``K`` (:func:`_sum_axis`),
      which XLA:CPU fuses into one loop (in chunks of at most :data:`_MAX_SUMMED_ROWS` columns,
      added up). Written as ``K`` single-column gathers added up
      instead, each gather is written out, and XLA fuses the additions (and what follows them,
      an activation) into a gather that consumes the result, such as an up-sampling, and
      recomputes them for every entry that gather reads (one such fusion took 90 ms in the
      S2D-Dec step).
    """
    width = np.shape(cols)[1]
    parts = max(1, -(-width // _MAX_SUMMED_ROWS))
    size = -(-width // parts)
    # Sums of low-precision rows accumulate in float32 (XLA:CPU would otherwise convert at
    # every operation of the fused loop: 0.98 s against 0.14 s for the bfloat16 S2D-Dec step).
    acc = jnp.promote_types(src.dtype, jnp.float32)
    out = None
    for start in range(0, width, size):
        cut = slice(start, start + size)
        rows = take_rows(src, cols[:, cut]).astype(acc)
        if weights is not None:
            rows = rows * jnp.asarray(weights, acc)[None, :, cut, None]
        part_mask = None if mask is None else mask[None, :, cut, None]
        part_fill = None if fill is None else fill[:, None, cut, :]
        part = _sum_axis(_replace(rows, part_mask, part_fill), 2)
        out = part if out is None else out + part
    return out.astype(src.dtype)


def _transpose_classes(src, out_row, weights, num_src: int) -> tuple:
    """The transpose of a gather: ``d_src[s] = sum over the entries (s, r, w) of w * g[r]``.

    Source row ``s`` is read by ``c_s`` entries, and ``c_s`` varies (around ``L`` for a spiral
    gather, 1 to 79 for S2D-Dec's finest up-sampled spiral gather). The source rows are grouped
    into classes by ``c_s`` (widths 1, 2, 4, 8, ...): each class is one dense, masked gather-sum at
    most twice as wide as its longest list, written into its rows by a scatter with unique,
    sorted indices (deterministic, no atomics). The most common class spans every row (the
    others' rows masked), so the transpose starts from its output, with no zero-filled buffer.
    Against dense columns plus one scatter per further column (72 of them for that layer) the
    classes made the S2D-Dec step 1.16x faster on CPU.

    Args:
      src: int ``[E]`` source row of each entry, in ``[0, num_src)``.
      out_row: int ``[E]`` output (cotangent) row of each entry.
      weights: float ``[E]``, or ``None`` for ones.
      num_src: ``S``.

    Returns:
      A tuple of ``(src_rows [R_c], out_rows [R_c, W_c], weights [R_c, W_c] or None,
      invalid [R_c, W_c] or None)`` per class, the first spanning all ``S`` rows
      (:func:`_transpose`).
    """
    src = np.asarray(src, np.int64)
    sort = np.argsort(src, kind="stable")
    src, out_row = src[sort], np.asarray(out_row)[sort]
    w = None if weights is None else np.asarray(weights, np.float32)[sort]
    slot, counts = _slots(src, num_src)
    width_of = 2 ** np.ceil(np.log2(np.maximum(counts, 1))).astype(np.int64)
    widths, sizes = np.unique(width_of, return_counts=True)
    base = widths[np.argmax(sizes)]
    classes = []
    for width in [base, *(w for w in widths if w != base)]:
        rows = np.arange(num_src) if width == base else np.nonzero(width_of == width)[0]
        position = np.full(num_src, -1, np.int64)
        position[rows] = np.arange(rows.size)
        mine = (position[src] >= 0) & (width_of[src] == width)
        r, k = position[src[mine]], slot[mine]
        table = np.zeros((rows.size, width), np.int32)
        invalid = np.ones((rows.size, width), bool)
        table[r, k], invalid[r, k] = out_row[mine], False
        table_w = None
        if w is not None:
            table_w = np.zeros((rows.size, width), np.float32)
            table_w[r, k] = w[mine]
        src_rows = rows.astype(np.int32)
        for a in (src_rows, table, table_w, invalid):
            if a is not None:
                a.setflags(write=False)
        classes.append((src_rows, table, table_w, invalid if invalid.any() else None))
    return tuple(classes)


def _transpose(classes: tuple, g: jax.Array) -> jax.Array:
    """``[B, R, C]`` cotangent rows -> ``[B, S, C]`` source rows (:func:`_transpose_classes`)."""
    (_, table, weights, invalid), *others = classes  # the first spans every row
    d_src = _gather_sum(g, table, invalid, None, weights)
    for rows, table, weights, invalid in others:
        d_src = d_src.at[:, rows].set(
            _gather_sum(g, table, invalid, None, weights),
            indices_are_sorted=True,
            unique_indices=True,
            mode="promise_in_bounds",
        )
    return d_src


class _InversePlan:
    """Numpy constants of one spiral table for the custom-VJP gathers.

    Attributes:
      idx: int32 ``[R, L]`` source rows (dummy entries point at row 0).
      is_dummy: bool ``[R, L]`` (``None`` when there is no padding).
      classes: the backward pass's tables (:func:`_transpose_classes`): for every source row,
        the cotangent rows that read it.

    Compared by identity: instances are cached per topology.
    """

    def __init__(self, idx, is_dummy, classes):
        self.idx = idx
        self.is_dummy = is_dummy if is_dummy.any() else None
        self.classes = classes


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gather_inverse(plan: _InversePlan, src: jax.Array, fill: jax.Array | None) -> jax.Array:
    """``[B, N, C] -> [B, N, L, C]`` spiral gather (dummy reads ``fill [B, C]`` or 0).

    The backward pass is :func:`_transpose` (cotangent rows = positions ``n * L + l``).
    """
    mask = None if plan.is_dummy is None else plan.is_dummy[None, :, :, None]
    fill = None if fill is None else fill[:, None, None, :]
    return _replace(take_rows(src, plan.idx), mask, fill)


def _gather_inverse_fwd(plan, src, fill):
    return _gather_inverse(plan, src, fill), fill


def _gather_inverse_bwd(plan, fill, g):
    d_src = _transpose(plan.classes, g.reshape(g.shape[0], -1, g.shape[-1]))
    if fill is None:
        d_fill = None
    elif plan.is_dummy is None:
        d_fill = jnp.zeros_like(fill)
    else:
        d_fill = jnp.einsum("bnlc,nl->bc", g, plan.is_dummy.astype(g.dtype))
    return d_src, d_fill


_gather_inverse.defvjp(_gather_inverse_fwd, _gather_inverse_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _gather_sum_inverse(plan: _InversePlan, src: jax.Array, fill: jax.Array | None) -> jax.Array:
    """``[B, N * L, C] -> [B, N, C]``: ``out[n] = sum_l src[idx[n, l]]`` (dummy of column ``l``
    reads ``fill[:, l]`` of ``fill [B, L, C]``, or 0).

    The backward pass is :func:`_transpose` (cotangent rows = output rows ``n``).

    The forward pass is :func:`_gather_sum`.
    """
    return _gather_sum(src, plan.idx, plan.is_dummy, fill)


def _gather_sum_inverse_fwd(plan, src, fill):
    return _gather_sum_inverse(plan, src, fill), fill


def _gather_sum_inverse_bwd(plan, fill, g):
    d_src = _transpose(plan.classes, g)
    if fill is None:
        d_fill = None
    elif plan.is_dummy is None:
        d_fill = jnp.zeros_like(fill)
    else:
        d_fill = jnp.einsum("bnc,nl->blc", g, plan.is_dummy.astype(g.dtype))
    return d_src, d_fill


_gather_sum_inverse.defvjp(_gather_sum_inverse_fwd, _gather_sum_inverse_bwd)


@functools.lru_cache(maxsize=64)
def _inverse_plan_cached(
    key: bytes, shape: tuple[int, int], layout: str, n: int
) -> _InversePlan:
    indices = np.frombuffer(key, dtype=np.int32).reshape(shape)
    length = shape[1]
    is_dummy = indices == n
    safe = np.where(is_dummy, 0, indices).astype(np.int32)
    positions = np.nonzero(~is_dummy.reshape(-1))[0]
    if layout == "gather_matmul":
        # Source rows: vertices. Cotangent rows: flat positions r * L + l.
        idx = safe
        classes = _transpose_classes(idx.reshape(-1)[positions], positions, None, n)
    else:
        # Source rows: (vertex, position) pairs y[v * L + l]. Cotangent rows: output rows r.
        idx = safe * length + np.arange(length, dtype=np.int32)
        classes = _transpose_classes(
            idx.reshape(-1)[positions], positions // length, None, n * length
        )
    for a in (idx, is_dummy):
        a.setflags(write=False)
    return _InversePlan(idx, is_dummy, classes)


def _inverse_plan(indices: np.ndarray, layout: str, n: int) -> _InversePlan:
    """The plan of an ``[R, L]`` spiral table over ``n`` source vertices (``n`` = dummy)."""
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    return _inverse_plan_cached(indices.tobytes(), indices.shape, layout, int(n))


# --------------------------------------------------------------------------------------------
# Weighted sparse row operators (the up-sampling folded into a spiral gather)
# --------------------------------------------------------------------------------------------


class _SparsePlan:
    """Numpy constants of a weighted sparse row operator and of its transpose.

    ``out[b, r] = sum_j weights[r, j] * src[b, cols[r, j]]`` over the entries that are not
    ``missing``.

    Attributes:
      cols: int32 ``[R, J]`` source rows (missing entries point at row 0).
      weights: float32 ``[R, J]`` (0 where missing).
      missing: bool ``[R, J]`` or ``None`` when every row has ``J`` entries.
      classes: the transpose's tables (:func:`_transpose_classes`).

    Compared by identity: instances are cached per topology.
    """

    def __init__(self, cols, weights, missing, num_src: int):
        self.cols, self.weights = cols, weights
        self.missing = missing if missing.any() else None
        present = ~missing
        out_row = np.broadcast_to(np.arange(cols.shape[0])[:, None], cols.shape)[present]
        self.classes = _transpose_classes(cols[present], out_row, weights[present], num_src)


def upsampled_spiral_table(
    indices: np.ndarray, up_indices: np.ndarray, up_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The spiral gather of up-sampled features as one weighted gather from the coarse level.

    A spiral entry ``(n, l)`` reads fine vertex ``v = indices[n, l]``, which the up-sampling
    interpolates from coarse vertices ``up_indices[v, k]`` with weights ``up_weights[v, k]``.
    With the coarse features projected per spiral position (``y[u * L + l] = x[u] @ W_l``), the
    convolution's output is ``out[n] = sum_j weights[n, j] * y[cols[n, j]]``. Entries that
    reach the same coarse row are merged (weights summed in float64) and zero weights dropped.

    Args:
      indices: int ``[N, L]`` fine-level spiral indices in ``[0, N]`` (``N`` = dummy).
      up_indices: int ``[N, K]`` coarse vertex indices.
      up_weights: float ``[N, K]`` interpolation weights.

    Returns:
      ``(cols [N, J], weights [N, J], missing [N, J])``: int32 rows ``u * L + l`` of the
      projected coarse features, float32 weights (0 where missing), and a bool mask of the
      padding slots of rows with fewer than ``J`` entries. Dummy spiral entries contribute
      nothing here.

    Example:
      >>> cols, w, missing = upsampled_spiral_table(
      ...     np.array([[0, 1], [1, 2]]), np.array([[0, 1], [1, 1]]),
      ...     np.array([[0.5, 0.5], [1.0, 0.0]]))
      >>> cols
      array([[0, 2, 3],
             [2, 0, 0]], dtype=int32)
      >>> w
      array([[0.5, 0.5, 1. ],
             [1. , 0. , 0. ]], dtype=float32)
    """
    indices = np.asarray(indices, np.int64)
    n, length = indices.shape
    up_indices = np.asarray(up_indices, np.int64)
    up_weights = np.asarray(up_weights, np.float64)
    is_dummy = indices == n
    vertex = np.where(is_dummy, 0, indices)
    rows = up_indices[vertex] * length + np.arange(length)[None, :, None]  # [N, L, K]
    weights = np.where(is_dummy[..., None], 0.0, up_weights[vertex])
    num_rows = (int(up_indices.max()) + 1 if up_indices.size else 1) * length
    out_row = np.repeat(np.arange(n), rows[0].size)
    keys, inverse = np.unique(out_row * num_rows + rows.reshape(-1), return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=weights.reshape(-1), minlength=keys.size)
    keep = summed != 0
    keys, summed = keys[keep], summed[keep]
    out_row, col = np.divmod(keys, num_rows)
    slot, counts = _slots(out_row, n)
    width = max(1, int(counts.max()) if counts.size else 1)
    cols = np.zeros((n, width), np.int32)
    table = np.zeros((n, width), np.float32)
    missing = np.ones((n, width), bool)
    cols[out_row, slot], table[out_row, slot], missing[out_row, slot] = col, summed, False
    return cols, table, missing


@functools.lru_cache(maxsize=64)
def _upsampled_plan_cached(key: bytes, n: int, length: int, k: int, m: int) -> _SparsePlan:
    ints = np.frombuffer(key[: 4 * n * (length + k)], dtype=np.int32)
    indices, up_indices = ints[: n * length].reshape(n, length), ints[n * length :].reshape(n, k)
    up_weights = np.frombuffer(key[4 * n * (length + k) :], dtype=np.float32).reshape(n, k)
    plan = _SparsePlan(*upsampled_spiral_table(indices, up_indices, up_weights), m * length)
    for a in (plan.cols, plan.weights):
        a.setflags(write=False)
    return plan


def _upsampled_plan(indices, up_indices, up_weights, num_coarse: int) -> _SparsePlan:
    indices = np.ascontiguousarray(indices, dtype=np.int32)
    up_indices = np.ascontiguousarray(up_indices, dtype=np.int32)
    up_weights = np.ascontiguousarray(up_weights, dtype=np.float32)
    key = indices.tobytes() + up_indices.tobytes() + up_weights.tobytes()
    n, length = indices.shape
    return _upsampled_plan_cached(key, n, length, up_indices.shape[1], int(num_coarse))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _sparse_rows(plan: _SparsePlan, src: jax.Array) -> jax.Array:
    """``[B, S, C] -> [B, R, C]``: ``out[r] = sum_j weights[r, j] * src[cols[r, j]]``.

    The backward pass is :func:`_transpose`.
    """
    return _gather_sum(src, plan.cols, plan.missing, None, plan.weights)


def _sparse_rows_fwd(plan, src):
    return _sparse_rows(plan, src), None


def _sparse_rows_bwd(plan, _, g):
    return (_transpose(plan.classes, g),)


_sparse_rows.defvjp(_sparse_rows_fwd, _sparse_rows_bwd)


# --------------------------------------------------------------------------------------------
# The two forms of the convolution
# --------------------------------------------------------------------------------------------


def _rows_matmul(x: jax.Array, w: jax.Array, precision) -> jax.Array:
    """``x @ w`` with the leading axes of ``x`` merged: ``[B, N, C], [C, D] -> [B, N, D]``.

    As one ``[B*N, C]`` matmul, the weight gradient is a dot with a single contracting axis,
    which XLA:CPU computes in place. A contraction over ``(B, N)`` makes it transpose the large
    ``[B, N, D]`` cotangent first (``benchmarks/README.md``: 18 of 183 ms of the S2D-Dec step).
    """
    out = jnp.matmul(x.reshape(-1, x.shape[-1]), w, precision=precision)
    return out.reshape(*x.shape[:-1], w.shape[-1])


def gather_then_matmul(x, indices, concrete, kernel, padding, precision, inverse: bool):
    """``concat_l(x_pad[:, idx[:, l]]) @ kernel``: ``[B, N, C], [R, L] -> [B, R, C_out]``
    (``R = N`` but for a row subset of the spiral table)."""
    batch, n, c = x.shape
    rows, length = np.shape(indices)
    if inverse:
        gathered = _gather_inverse(_inverse_plan(concrete, "gather_matmul", n), x, padding)
    else:
        idx = jnp.asarray(indices, jnp.int32)
        is_dummy = idx == n
        fill = None if padding is None else padding[:, None, None, :]
        gathered = take_rows(x, jnp.where(is_dummy, 0, idx))
        gathered = _replace(gathered, is_dummy[None, :, :, None], fill)
    return _rows_matmul(gathered.reshape(batch, rows, length * c), kernel, precision)


def matmul_then_gather(
    x, indices, concrete, kernel, padding, precision, inverse: bool, upsampling=None
):
    """``sum_l (x @ W_l)[idx[:, l]]``: ``[B, N, C], [R, L] -> [B, R, C_out]`` (``R = N`` but for
    a row subset of the spiral table).

    With ``upsampling = (up_indices [N, K], up_weights [N, K])`` (numpy), ``x`` is the coarse
    level ``[B, M, C]`` and the convolution reads its up-sampling: the projection runs on the
    ``M`` coarse vertices and one weighted gather (:func:`upsampled_spiral_table`) reads the
    projected rows.
    """
    batch, m, c = x.shape
    n, length = np.shape(indices)
    c_out = kernel.shape[1]
    # y[b, v * L + l] = x[b, v] @ W_l with W_l = kernel[l * C:(l + 1) * C].
    w = kernel.reshape(length, c, c_out).transpose(1, 0, 2).reshape(c, length * c_out)
    y = _rows_matmul(x, w, precision).reshape(batch, m * length, c_out)
    fill = None
    if padding is not None:
        fill = jnp.matmul(padding, w, precision=precision).astype(y.dtype)
        fill = fill.reshape(batch, length, c_out)
    if upsampling is not None:
        plan = _upsampled_plan(concrete, *upsampling, m)
        if inverse:
            out = _sparse_rows(plan, y)
        else:
            out = _gather_sum(y, plan.cols, plan.missing, None, plan.weights)
        is_dummy = concrete == n
        if fill is not None and is_dummy.any():
            out = out + jnp.einsum("nl,blc->bnc", is_dummy.astype(y.dtype), fill)
        return out
    if inverse:
        return _gather_sum_inverse(_inverse_plan(concrete, "matmul_gather", m), y, fill)
    idx = jnp.asarray(indices, jnp.int32)
    is_dummy = idx == m
    cols = jnp.where(is_dummy, 0, idx) * length + jnp.arange(length, dtype=jnp.int32)
    return _gather_sum(y, cols, is_dummy, fill)
