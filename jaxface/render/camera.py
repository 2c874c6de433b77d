"""The orthographic camera of SMIRK's renderer and the screen space the rasteriser works in.

World coordinates: x to the viewer's right, y up, z toward the viewer (the face template's and
FLAME's frame). A camera ``cam = (s, tx, ty)`` scales and shifts them (no rotation: the head pose
is part of the mesh):

    X = s (x + tx),   Y = s (y + ty),   Z = s z.

**Screen space** is what :func:`project_orthographic` returns and what the rasteriser reads:
``(X, -Y, DEPTH_OFFSET - Z)``, i.e. x to the right, y **down**, and a depth that is smaller
nearer the viewer. Its x and y are normalised device coordinates: the shorter image side spans
[-1, 1], pixels are square, and the pixel in row ``i``, column ``j`` of an ``H x W`` image has its
centre at

    x = (2 j + 1 - W) / S,   y = (2 i + 1 - H) / S,   S = min(H, W),

so row 0 is the top of the image and a face with +y up appears upright. These are exactly the
official renderer's "transformed vertices" (its landmarks live in the same x/y), with the +10
depth shift it applies before rasterising folded in. pytorch3d's NDC (+x left, +y up, +z into the
screen) is ``(-x, -y, depth)`` of this space; its pixel grid is the same.

Example:
  >>> import numpy as np
  >>> v = np.array([[[0.0, 0.1, 0.05]]], np.float32)
  >>> np.asarray(project_orthographic(v, np.array([[2.0, 0.0, 0.0]], np.float32))).round(3)
  array([[[ 0. , -0.2,  9.9]]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "DEPTH_OFFSET",
    "image_shape",
    "pixel_centers",
    "project_orthographic",
    "screen_to_pixel",
]

#: Added to the depth so the mesh lies in front of the image plane (depth >= 0), as the official
#: renderer does (pytorch3d skips points with negative depth).
DEPTH_OFFSET = 10.0


def image_shape(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` of an image size given as an int (square) or a ``(height, width)`` pair.

    Raises:
      ValueError: if a side is not a positive integer.
    """
    if isinstance(image_size, int | np.integer):
        h = w = int(image_size)
    else:
        try:
            h, w = (int(s) for s in image_size)
        except (TypeError, ValueError):
            raise ValueError(
                f"image_size must be an int or (height, width), got {image_size!r}") from None
    if h <= 0 or w <= 0:
        raise ValueError(f"image_size must be positive, got {(h, w)}")
    return h, w


def project_orthographic(
    vertices: jax.typing.ArrayLike, cam: jax.typing.ArrayLike, depth_offset: float = DEPTH_OFFSET
) -> jax.Array:
    """Projects world points with the orthographic cameras ``cam = (s, tx, ty)`` to screen space.

    Args:
      vertices: ``float [B, V, 3]`` world points (x right, y up, z toward the viewer).
      cam: ``float [B, 3]`` per-example ``(scale, tx, ty)``.
      depth_offset: added to the depth (the official renderer's +10).

    Returns:
      ``float [B, V, 3]`` screen points ``(s (x + tx), -s (y + ty), depth_offset - s z)``:
      x right and y down in NDC (see the module docstring), depth smaller nearer the viewer.
    """
    vertices = jnp.asarray(vertices)
    cam = jnp.asarray(cam)
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be [B, V, 3], got {vertices.shape}")
    if cam.shape != (vertices.shape[0], 3):
        raise ValueError(f"cam must be [B, 3] = (scale, tx, ty) with B={vertices.shape[0]}, "
                         f"got {cam.shape}")
    s = cam[:, None, 0]
    x = s * (vertices[..., 0] + cam[:, None, 1])
    y = s * (vertices[..., 1] + cam[:, None, 2])
    z = s * vertices[..., 2]
    return jnp.stack([x, -y, depth_offset - z], axis=-1)


def pixel_centers(image_size: int | tuple[int, int]) -> np.ndarray:
    """Screen coordinates of the pixel centres.

    Args:
      image_size: an int (square) or ``(H, W)``.

    Returns:
      ``float32 [H, W, 2]``: ``(x, y)`` of the centre of pixel ``(row, col)``.
    """
    h, w = image_shape(image_size)
    s = float(min(h, w))
    x = (2.0 * np.arange(w) + 1.0 - w) / s
    y = (2.0 * np.arange(h) + 1.0 - h) / s
    xx, yy = np.meshgrid(x, y)
    return np.stack([xx, yy], axis=-1).astype(np.float32)


def screen_to_pixel(points: jax.typing.ArrayLike, image_size: int | tuple[int, int]) -> jax.Array:
    """Continuous pixel coordinates ``(col, row)`` of screen points (pixel ``j`` spans
    ``[j, j + 1)``, so its centre is ``j + 0.5``; ``floor`` gives the pixel a point falls in, as
    the official masking does with ``0.5 (1 + p) * 224``).

    Args:
      points: ``float [..., 2]`` (or ``[..., 3]``; the depth is dropped) screen points.
      image_size: an int (square) or ``(H, W)``.

    Returns:
      ``float [..., 2]`` ``(col, row)``.
    """
    h, w = image_shape(image_size)
    s = float(min(h, w))
    p = jnp.asarray(points)[..., :2]
    return jnp.stack([0.5 * (p[..., 0] * s + w), 0.5 * (p[..., 1] * s + h)], axis=-1)
