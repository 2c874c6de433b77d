"""Geometry mapping: per-vertex features to a geometry image.

A precomputed map rasterises the template's UV triangles into an ``H x W`` grid. Pixel ``p``
stores the three vertices of the triangle covering it (``vertex_indices [H, W, 3]``), its
barycentric coordinates in that triangle (``barycentric [H, W, 3]``) and whether any triangle
covers it (``mask [H, W]``). The layer is

    image[b, h, w] = mask[h, w] * sum_k barycentric[h, w, k] * x[b, vertex_indices[h, w, k]]

a fixed linear map (gather plus weighted sum) without parameters, differentiable in ``x``.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["GeometryMapping", "geometry_image"]


def geometry_image(x: jax.Array, vertex_indices: Any, barycentric: Any, mask: Any) -> jax.Array:
    """Renders per-vertex features into a geometry image.

    Args:
      x: ``[..., N, C]`` per-vertex features (usually ``[B, N, C]``).
      vertex_indices: int ``[H, W, 3]`` vertices of the covering triangle; values at masked-out
        pixels are ignored (any value, e.g. ``0`` or the dummy ``N``).
      barycentric: float ``[H, W, 3]`` barycentric weights of each pixel in that triangle.
      mask: bool ``[H, W]``, ``True`` where a triangle covers the pixel.

    Returns:
      ``[..., H, W, C]`` with the dtype of ``x``; exactly zero where ``mask`` is ``False``.

    Example:
      >>> x = jnp.array([[[0.0], [1.0], [2.0]]])          # [B=1, N=3, C=1]
      >>> vi = np.array([[[0, 1, 2], [0, 0, 0]]])         # [H=1, W=2, 3]
      >>> bc = np.array([[[0.2, 0.3, 0.5], [1.0, 0, 0]]], np.float32)
      >>> geometry_image(x, vi, bc, np.array([[True, False]]))[..., 0]
      Array([[[1.3, 0. ]]], dtype=float32)
    """
    x = jnp.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must be [..., N, C], got shape {x.shape}")
    idx = jnp.asarray(vertex_indices, jnp.int32)
    mask = jnp.asarray(mask, bool)
    if idx.ndim != 3 or idx.shape[-1] != 3:
        raise ValueError(f"vertex_indices must be [H, W, 3], got shape {idx.shape}")
    if np.shape(barycentric) != idx.shape or mask.shape != idx.shape[:2]:
        raise ValueError(
            f"barycentric must be {idx.shape} and mask {idx.shape[:2]}, got "
            f"{np.shape(barycentric)} and {mask.shape}"
        )
    weights = jnp.where(mask[..., None], jnp.asarray(barycentric, x.dtype), 0)
    # Indices outside [0, N) (masked pixels only) read zeros instead of wrapping or clamping.
    gathered = x.at[..., idx, :].get(mode="fill", fill_value=0)  # [..., H, W, 3, C]
    image = jnp.einsum("...hwkc,hwk->...hwc", gathered, weights)
    return jnp.where(mask[..., None], image, jnp.zeros((), x.dtype))


class GeometryMapping(nn.Module):
    """Fixed geometry mapping layer (no parameters): ``[..., N, C] -> [..., H, W, C]``.

    Attributes:
      vertex_indices: int ``[H, W, 3]`` numpy vertex-index images.
      barycentric: float ``[H, W, 3]`` numpy barycentric images.
      mask: bool ``[H, W]`` numpy coverage mask.

    Example:
      >>> layer = GeometryMapping(vertex_indices=np.zeros((4, 5, 3), np.int32),
      ...                         barycentric=np.full((4, 5, 3), 1 / 3, np.float32),
      ...                         mask=np.ones((4, 5), bool))
      >>> layer.apply({}, jnp.ones((2, 3, 3))).shape
      (2, 4, 5, 3)
    """

    vertex_indices: Any
    barycentric: Any
    mask: Any

    def __call__(self, x: jax.Array) -> jax.Array:
        """Renders ``x [..., N, C]`` into ``[..., H, W, C]``."""
        return geometry_image(x, self.vertex_indices, self.barycentric, self.mask)
