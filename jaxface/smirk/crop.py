"""Face crops: the similarity transform around the landmarks and the image warp, in JAX.

The official pipeline crops a square around MediaPipe's landmark bounding box, scaled by 1.4 at
test time and by a random factor in [1.2, 1.8] (plus a small shift and rotation) in training,
and resizes it to 224 x 224. Here the crop is one 2 x 3 matrix ``A`` mapping input pixel
positions ``(column, row)`` to crop pixel positions, so landmarks follow with
:func:`transform_points` and images with :func:`warp_image` (bilinear, zeros outside). Both are
pure ``jnp`` functions: training runs the augmentation on the device, inside the jitted step,
and inference uses the same code.

Pixel positions are continuous with pixel ``(i, j)``'s centre at ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.ndimage import map_coordinates

__all__ = [
    "compose",
    "crop_matrix",
    "invert",
    "transform_points",
    "warp_image",
]


def crop_matrix(points: jax.Array, out_size: int, scale: jax.Array | float = 1.4, *,
                shift: jax.Array | None = None, rotation: jax.Array | float = 0.0) -> jax.Array:
    """The similarity that maps a square around ``points`` onto an ``out_size`` crop.

    The square is centred on the points' bounding box, its side ``scale`` times the box's
    longer side; ``shift`` moves it by a fraction of that side and ``rotation`` (radians)
    turns it about its centre.

    Args:
      points: ``[..., N, 2]`` pixel positions ``(column, row)`` in the input image.
      out_size: the crop's side in pixels.
      scale: ``[...]`` or a float; the side of the square over the box's longer side.
      shift: ``[..., 2]`` the centre's offset as a fraction of the square's side (default 0).
      rotation: ``[...]`` or a float; radians the content turns about the crop's centre
        (positive turns it clockwise on screen, as rows go down).

    Returns:
      ``[..., 2, 3]`` ``A`` with ``crop = A[:, :2] @ p + A[:, 2]``.
    """
    points = jnp.asarray(points, jnp.float32)
    lo, hi = points.min(axis=-2), points.max(axis=-2)
    centre = 0.5 * (lo + hi)
    side = jnp.max(hi - lo, axis=-1) * jnp.asarray(scale, jnp.float32)
    if shift is not None:
        centre = centre + jnp.asarray(shift, jnp.float32) * side[..., None]
    s = out_size / side
    rot = jnp.asarray(rotation, jnp.float32) * jnp.ones_like(s)
    cos, sin = jnp.cos(rot), jnp.sin(rot)
    linear = s[..., None, None] * jnp.stack(
        [jnp.stack([cos, -sin], -1), jnp.stack([sin, cos], -1)], -2)
    offset = 0.5 * out_size - jnp.einsum("...ij,...j->...i", linear, centre)
    return jnp.concatenate([linear, offset[..., None]], axis=-1)


def transform_points(matrix: jax.Array, points: jax.Array) -> jax.Array:
    """Applies ``[..., 2, 3]`` matrices to ``[..., N, 2]`` points; returns ``[..., N, 2]``."""
    return jnp.einsum("...ij,...nj->...ni", matrix[..., :2], points) + matrix[..., None, :, 2]


def invert(matrix: jax.Array) -> jax.Array:
    """The inverse of ``[..., 2, 3]`` affine matrices."""
    linear = jnp.linalg.inv(matrix[..., :2])
    return jnp.concatenate([linear, -jnp.einsum("...ij,...j->...i", linear, matrix[..., 2])[
        ..., None]], axis=-1)


def compose(outer: jax.Array, inner: jax.Array) -> jax.Array:
    """``outer ∘ inner`` of ``[..., 2, 3]`` affine matrices (``inner`` applied first)."""
    linear = outer[..., :2] @ inner[..., :2]
    offset = jnp.einsum("...ij,...j->...i", outer[..., :2], inner[..., 2]) + outer[..., 2]
    return jnp.concatenate([linear, offset[..., None]], axis=-1)


def warp_image(image: jax.Array, matrix: jax.Array, out_size: int | tuple[int, int]) -> jax.Array:
    """Resamples ``image`` through ``matrix`` (bilinear, zeros outside).

    Args:
      image: ``[H, W, C]`` (any real dtype; computed in float32).
      matrix: ``[2, 3]`` input pixel positions -> output pixel positions.
      out_size: output side, or ``(height, width)``.

    Returns:
      ``float32 [out_h, out_w, C]``. Use ``jax.vmap`` for batches.
    """
    out_h, out_w = (out_size, out_size) if isinstance(out_size, int) else out_size
    inv = invert(matrix)
    cols, rows = jnp.meshgrid(jnp.arange(out_w, dtype=jnp.float32) + 0.5,
                              jnp.arange(out_h, dtype=jnp.float32) + 0.5)  # [out_h, out_w]
    src = transform_points(inv, jnp.stack([cols.ravel(), rows.ravel()], -1))  # [out_h out_w, 2]
    # map_coordinates indexes pixel centres at integers.
    coords = [src[:, 1] - 0.5, src[:, 0] - 0.5]
    image = jnp.asarray(image, jnp.float32)
    channels = [map_coordinates(image[..., c], coords, order=1, mode="constant", cval=0.0)
                for c in range(image.shape[-1])]
    return jnp.stack(channels, -1).reshape(out_h, out_w, image.shape[-1])
