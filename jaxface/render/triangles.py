"""Screen-space measures of triangles, for sampling points on the visible surface (SMIRK's
masking samples pixels on front-facing triangles with probability proportional to their
projected area).

The official masking computes per-vertex normals of the projected vertices
(``(s (x + tx), -s (y + ty), -s z)``: a rotation of the world by 180° about x, scaled, so
orientation is kept), averages the z component over each triangle's three vertices and counts a
triangle as front-facing when that average is below 0.05 (toward the viewer is -z on screen).
The depth offset of :func:`~jaxface.render.camera.project_orthographic` changes neither normals
nor areas, so its screen vertices can be passed as they are.

Example:
  >>> import numpy as np
  >>> s = np.array([[[0, 0, 10], [1, 0, 10], [0, 1, 10]]], np.float32)
  >>> np.asarray(projected_area(s, np.array([[0, 1, 2]])))
  array([[0.5]], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.render.rasterizer import triangle_corners
from jaxface.render.shading import vertex_normals

__all__ = [
    "FRONT_FACING_THRESHOLD",
    "face_normals_screen",
    "front_facing",
    "projected_area",
]

#: A triangle is front-facing when its mean screen vertex normal has z below this.
FRONT_FACING_THRESHOLD = 0.05


def face_normals_screen(screen_vertices: jax.typing.ArrayLike, faces) -> jax.Array:
    """Per triangle, the mean of its three unit vertex normals computed in screen space.

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points (x right, y down, depth).
      faces: ``int [F, 3]`` triangles.

    Returns:
      ``float [B, F, 3]``; z < 0 points toward the viewer.
    """
    normals = vertex_normals(screen_vertices, faces)
    return jnp.mean(triangle_corners(normals, faces), axis=2)


def front_facing(
    screen_vertices: jax.typing.ArrayLike, faces, threshold: float = FRONT_FACING_THRESHOLD
) -> jax.Array:
    """Whether each triangle faces the viewer, by the official masking's rule.

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points.
      faces: ``int [F, 3]`` triangles.
      threshold: largest mean screen normal z that still counts as front-facing.

    Returns:
      ``bool [B, F]``.
    """
    return face_normals_screen(screen_vertices, faces)[..., 2] < threshold


def projected_area(screen_vertices: jax.typing.ArrayLike, faces) -> jax.Array:
    """Unsigned area of each triangle's x-y projection, in screen (NDC) units.

    Multiply by ``(min(H, W) / 2) ** 2`` for square pixels.

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points.
      faces: ``int [F, 3]`` triangles.

    Returns:
      ``float [B, F]``.
    """
    screen = jnp.asarray(screen_vertices)
    if screen.ndim != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen_vertices must be [B, V, 3], got {screen.shape}")
    tri = triangle_corners(screen[..., :2], faces)  # [B, F, 3, 2]
    e1 = tri[:, :, 1] - tri[:, :, 0]
    e2 = tri[:, :, 2] - tri[:, :, 0]
    return 0.5 * jnp.abs(e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0])
