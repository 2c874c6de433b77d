"""Row gathers that keep a leading batch axis: shared by the spiral convolution and the
up-sampling. Private to :mod:`jaxface.nn`.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp


def take_rows(src: jax.Array, idx: Any) -> jax.Array:
    """``src[:, idx]`` for in-bounds indices: ``[B, S, C], [*I] -> [B, *I, C]``.

    Expressed as a gather with an explicit batch dimension (indices broadcast over ``B``): the
    output comes out batch-major without a transpose, and a batch-sharded ``src`` stays sharded.
    """
    idx = jnp.asarray(idx, jnp.int32)
    batch, _, channels = src.shape
    starts = jnp.broadcast_to(idx[None, ..., None], (batch, *idx.shape, 1))
    dnums = jax.lax.GatherDimensionNumbers(
        offset_dims=(idx.ndim + 1,),
        collapsed_slice_dims=(1,),
        start_index_map=(1,),
        operand_batching_dims=(0,),
        start_indices_batching_dims=(0,),
    )
    return jax.lax.gather(
        src,
        starts,
        dnums,
        slice_sizes=(1, 1, channels),
        mode=jax.lax.GatherScatterMode.PROMISE_IN_BOUNDS,
    )
