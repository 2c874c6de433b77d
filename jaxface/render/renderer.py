"""SMIRK's renderer in one call: orthographic projection, hard rasterisation and Lambertian
shading (the official ``Renderer.forward`` with its default lights and grey albedo).

Example:
  >>> import numpy as np
  >>> v = np.array([[[-0.1, -0.1, 0.0], [0.1, -0.1, 0.0], [0.0, 0.1, 0.0]]], np.float32)
  >>> out = render(v, np.array([[0, 1, 2]]), np.array([[4.0, 0.0, 0.0]], np.float32), 16)
  >>> out.image.shape, out.mask.shape, int(out.mask.sum())
  ((1, 16, 16, 3), (1, 16, 16), 18)
"""

from __future__ import annotations

from typing import NamedTuple

import jax

from jaxface.render.camera import DEPTH_OFFSET, project_orthographic
from jaxface.render.rasterizer import DEFAULT_CHUNK_SIZE, Fragments, rasterize
from jaxface.render.shading import ALBEDO, LIGHT_INTENSITY, OFFICIAL_LIGHTS, shade_lambertian

__all__ = ["Rendered", "render"]


class Rendered(NamedTuple):
    """What :func:`render` returns.

    Attributes:
      image: ``float [B, H, W, 3]`` shaded image (0 on background).
      mask: ``float [B, H, W]`` 1 where a triangle covers the pixel centre, else 0.
      fragments: the :class:`~jaxface.render.rasterizer.Fragments` (``pix_to_face``, ``bary``,
        ``zbuf``).
      screen_vertices: ``float [B, V, 3]`` the projected vertices (x right, y down in NDC,
        depth); their x-y are where landmarks land on the image.
    """

    image: jax.Array
    mask: jax.Array
    fragments: Fragments
    screen_vertices: jax.Array


def render(
    vertices: jax.typing.ArrayLike,
    faces,
    cam: jax.typing.ArrayLike,
    image_size: int | tuple[int, int] = 224,
    *,
    albedo: jax.typing.ArrayLike = ALBEDO,
    lights: jax.typing.ArrayLike = OFFICIAL_LIGHTS,
    intensity: float = LIGHT_INTENSITY,
    depth_offset: float = DEPTH_OFFSET,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Rendered:
    """Renders meshes with SMIRK's orthographic camera and Lambertian shading.

    Gradients reach ``vertices`` and ``cam`` through the barycentrics of covered pixels and
    through the normals (which depend on ``vertices`` only); which triangle covers a pixel is
    decided outside the gradient.

    Args:
      vertices: ``float [B, V, 3]`` world vertices (x right, y up, z toward the viewer).
      faces: ``int [F, 3]`` counter-clockwise triangles (a numpy constant; e.g. only the
        face-mask triangles: vertices on no triangle are ignored).
      cam: ``float [B, 3]`` orthographic cameras ``(scale, tx, ty)``.
      image_size: an int (square) or ``(H, W)``; static.
      albedo: scalar, RGB ``[3]``, or per-vertex ``[V, 3]`` / ``[B, V, 3]`` colours.
      lights: ``float [L, 3]`` unit directions toward the lights.
      intensity: intensity of each light.
      depth_offset: added to the screen depth (the official +10).
      chunk_size: candidates per step of the visibility loop.

    Returns:
      :class:`Rendered`.
    """
    screen = project_orthographic(vertices, cam, depth_offset)
    fragments = rasterize(screen, faces, image_size, chunk_size=chunk_size)
    image = shade_lambertian(fragments, vertices, faces, lights=lights, intensity=intensity,
                             albedo=albedo)
    mask = fragments.mask.astype(image.dtype)
    return Rendered(image, mask, fragments, screen)

