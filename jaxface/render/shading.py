"""Lambertian shading of rasterised meshes, as SMIRK's renderer shades its overlays.

Per-vertex normals are computed from the **world** vertices (area-weighted sums of the incident
triangles' normals, then normalised with pytorch's ``F.normalize(eps=1e-6)``), interpolated at the
pixel centres with the fragments' barycentrics and **not** normalised again. Five directional
lights toward ``(±1, ±1, 1)`` and ``(0, 0, 1)`` (normalised, in world coordinates: the camera
has no rotation), each of intensity 1.7, give

    shading = 1.7 * mean_l clamp(n · l, 0, 1),   image = albedo * shading,

with background pixels 0. The official renderer uses a uniform albedo of 180/255; per-vertex
colours are interpolated like the normals. With albedo ``a`` the image is at most
``a * 1.7 * (1 + 4 / sqrt(3)) / 5 ≈ 1.126 a`` (0.795 for the default), so it stays in [0, 1]
for ``a <= 0.888``; it is not clipped (the official image is not either).

Example:
  >>> import numpy as np
  >>> v = np.array([[[0, 0, 0], [1, 0, 0], [0, 1, 0]]], np.float32)
  >>> np.asarray(vertex_normals(v, np.array([[0, 1, 2]])))[0, 0]
  array([0., 0., 1.], dtype=float32)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.render.rasterizer import Fragments, interpolate, triangle_corners

__all__ = [
    "ALBEDO",
    "LIGHT_INTENSITY",
    "OFFICIAL_LIGHTS",
    "lambertian",
    "shade_lambertian",
    "vertex_normals",
]

_LIGHT_POSITIONS = np.array([[-1, 1, 1], [1, 1, 1], [-1, -1, 1], [1, -1, 1], [0, 0, 1]], np.float64)
#: Unit directions toward the five lights of the official renderer, ``float32 [5, 3]``.
OFFICIAL_LIGHTS = (_LIGHT_POSITIONS / np.linalg.norm(_LIGHT_POSITIONS, axis=1, keepdims=True)
                   ).astype(np.float32)
#: Intensity of each light.
LIGHT_INTENSITY = 1.7
#: The official uniform grey albedo.
ALBEDO = 180.0 / 255.0

# pytorch's F.normalize floor on the norm.
_NORMALIZE_EPS = 1e-6


def vertex_normals(vertices: jax.typing.ArrayLike, faces) -> jax.Array:
    """Unit per-vertex normals: the sum of the incident triangles' cross products
    ``(v1 - v0) x (v2 - v0)`` (area-weighted), divided by ``max(|n|, 1e-6)``.

    Args:
      vertices: ``float [B, V, 3]``.
      faces: ``int [F, 3]`` counter-clockwise (outward-facing) triangles.

    Returns:
      ``float [B, V, 3]`` (zero for vertices on no triangle). Gradients are finite everywhere,
      also at vertices whose normal sums to zero.
    """
    vertices = jnp.asarray(vertices)
    if vertices.ndim != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must be [B, V, 3], got {vertices.shape}")
    faces = jnp.asarray(faces, jnp.int32)
    tri = triangle_corners(vertices, faces)  # [B, F, 3, 3]
    face_n = jnp.cross(tri[:, :, 1] - tri[:, :, 0], tri[:, :, 2] - tri[:, :, 0])
    n = jnp.zeros_like(vertices)
    for corner in range(3):
        n = n.at[:, faces[:, corner]].add(face_n)
    # max(|n|, eps) written so that |n| = 0 has a zero (not NaN) gradient.
    norm = jnp.sqrt(jnp.maximum(jnp.sum(n * n, axis=-1, keepdims=True), _NORMALIZE_EPS**2))
    return n / norm


def lambertian(
    normals: jax.typing.ArrayLike,
    lights: jax.typing.ArrayLike = OFFICIAL_LIGHTS,
    intensity: float = LIGHT_INTENSITY,
) -> jax.Array:
    """Directional Lambertian shading averaged over lights.

    Args:
      normals: ``float [..., 3]`` normals (used as given, not normalised).
      lights: ``float [L, 3]`` unit directions toward the lights.
      intensity: intensity of every light.

    Returns:
      ``float [...]``: ``intensity * mean_l clip(n · l_l, 0, 1)``.
    """
    lights = jnp.asarray(lights, jnp.float32)
    if lights.ndim != 2 or lights.shape[-1] != 3:
        raise ValueError(f"lights must be [L, 3] directions, got {lights.shape}")
    normals = jnp.asarray(normals)
    nx, ny, nz = normals[..., 0], normals[..., 1], normals[..., 2]
    # Unrolled over the (few) lights: elementwise work that fuses, unlike a dot over 3.
    total = sum(jnp.clip(nx * lights[k, 0] + ny * lights[k, 1] + nz * lights[k, 2], 0.0, 1.0)
                for k in range(lights.shape[0]))
    return total * (intensity / lights.shape[0])


def shade_lambertian(
    fragments: Fragments,
    vertices: jax.typing.ArrayLike,
    faces,
    *,
    lights: jax.typing.ArrayLike = OFFICIAL_LIGHTS,
    intensity: float = LIGHT_INTENSITY,
    albedo: jax.typing.ArrayLike = ALBEDO,
) -> jax.Array:
    """Shades the rasterised meshes.

    Args:
      fragments: :class:`~jaxface.render.rasterizer.Fragments` of the meshes.
      vertices: ``float [B, V, 3]`` **world** vertices (the normals are computed from them).
      faces: ``int [F, 3]`` the rasterised triangles.
      lights: ``float [L, 3]`` unit directions toward the lights (world coordinates).
      intensity: intensity of each light.
      albedo: a scalar or ``[3]`` RGB (uniform), or ``float [V, 3]`` / ``[B, V, 3]``
        per-vertex colours (interpolated with the barycentrics).

    Returns:
      ``float [B, H, W, 3]`` image, 0 on background pixels.
    """
    normals = interpolate(fragments, faces, vertex_normals(vertices, faces))
    shading = lambertian(normals, lights, intensity)[..., None]  # [B, H, W, 1]
    albedo = jnp.asarray(albedo, jnp.float32)
    if albedo.ndim <= 1:
        if albedo.ndim == 1 and albedo.shape[0] != 3:
            raise ValueError(f"a uniform albedo must be a scalar or RGB [3], got {albedo.shape}")
        colour = fragments.mask[..., None] * jnp.broadcast_to(albedo, (3,))
    else:
        colour = interpolate(fragments, faces, albedo)
        if colour.shape[-1] != 3:
            raise ValueError(f"per-vertex albedo must be [V, 3] or [B, V, 3], got {albedo.shape}")
    return colour * shading
