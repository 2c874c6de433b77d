"""Landmarks between the morphable model and images: projection, normalisation, the loss.

Image landmarks (MediaPipe's, in crop pixels ``(column, row)``) and the model's projected
points meet in the renderer's screen space (:mod:`jaxface.render.camera`): x right, y down,
the square image spanning ``[-1, 1]``. The official landmark loss is the mean squared error
there, weighted by 100.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.morphable.forward import FaceOutput
from jaxface.render.camera import project_orthographic

__all__ = ["landmark_loss", "pixels_to_screen", "project_points", "screen_to_pixels"]


def pixels_to_screen(points: jax.Array, image_size: int) -> jax.Array:
    """``[..., 2]`` pixel positions of a square image -> screen ``x, y`` in ``[-1, 1]``."""
    return 2.0 * jnp.asarray(points) / image_size - 1.0


def screen_to_pixels(points: jax.Array, image_size: int) -> jax.Array:
    """Screen ``x, y`` (``[..., 2]`` or ``[..., 3]``) -> pixel positions of a square image."""
    return 0.5 * (jnp.asarray(points)[..., :2] + 1.0) * image_size


def project_points(points: jax.Array, cam: jax.Array) -> jax.Array:
    """``[B, L, 3]`` model points seen by the cameras ``[B, 3]`` -> screen ``[B, L, 2]``."""
    return project_orthographic(points, cam)[..., :2]


def landmark_loss(output: FaceOutput, cam: jax.Array, target: jax.Array,
                  weights: jax.Array | None = None) -> jax.Array:
    """Mean squared screen distance between the model's MediaPipe points and image landmarks.

    Args:
      output: the morphable model's output for ``B`` faces (its ``mediapipe`` points, ``L``).
      cam: ``[B, 3]`` cameras.
      target: ``[B, L, 2]`` landmarks in screen coordinates (:func:`pixels_to_screen`).
      weights: ``[B]`` per-example weights (default 1); the mean is over their sum.

    Returns:
      A scalar: ``sum_b w_b mean_l |p_bl - t_bl|^2 / sum_b w_b``.
    """
    err = jnp.sum((project_points(output.mediapipe, cam) - target) ** 2, axis=-1).mean(-1)
    if weights is None:
        return err.mean()
    return jnp.sum(weights * err) / jnp.maximum(jnp.sum(weights), 1e-8)
