"""Training augmentation on the device: random face crops and photometric jitter.

The official pipeline crops at a random scale in [1.2, 1.8] around the landmark box with a 5 %
shift, 10 % scale and 10 degree rotation jitter (albumentations' ShiftScaleRotate), then applies
colour jitter, blur and noise. Here the same is drawn per example from a JAX key and applied in
the jitted step, so a batch of context crops (:mod:`jaxface.smirk.frames`) becomes a batch of
224 x 224 training images without host work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxface.smirk.crop import crop_matrix, transform_points, warp_image

__all__ = ["colour_jitter", "random_crops"]


def random_crops(rng: jax.Array, images: jax.Array, landmarks: jax.Array, out_size: int, *,
                 scale_range: tuple[float, float] = (1.2, 1.8), shift: float = 0.05,
                 rotation_deg: float = 10.0) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Random similarity crops around each example's landmarks.

    Args:
      rng: a key.
      images: ``[B, S, S, 3]`` context crops (uint8 or float in [0, 255]).
      landmarks: ``[B, L, 2]`` pixels of the context crops (the box is taken over all ``L``).
      out_size: crop side.
      scale_range: the square's side over the landmark box's longer side, uniform.
      shift: the largest centre offset, a fraction of the square's side (uniform per axis).
      rotation_deg: the largest turn (uniform).

    Returns:
      ``(images float32 [B, out, out, 3] in [0, 1], landmarks [B, L, 2] crop pixels,
      matrices [B, 2, 3])``.
    """
    b = images.shape[0]
    k_scale, k_shift, k_rot = jax.random.split(rng, 3)
    scale = jax.random.uniform(k_scale, (b,), minval=scale_range[0], maxval=scale_range[1])
    offset = jax.random.uniform(k_shift, (b, 2), minval=-shift, maxval=shift)
    rot = jnp.deg2rad(jax.random.uniform(k_rot, (b,), minval=-rotation_deg,
                                         maxval=rotation_deg))
    matrices = crop_matrix(landmarks, out_size, scale, shift=offset, rotation=rot)
    crops = jax.vmap(warp_image, in_axes=(0, 0, None))(images, matrices, out_size)
    return jnp.clip(crops / 255.0, 0.0, 1.0), transform_points(matrices, landmarks), matrices


def _blur3(images: jax.Array) -> jax.Array:
    """A 3 x 3 binomial blur of ``[B, H, W, C]`` (edges replicated)."""
    k = jnp.array([0.25, 0.5, 0.25], images.dtype)
    padded = jnp.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    rows = k[0] * padded[:, :-2] + k[1] * padded[:, 1:-1] + k[2] * padded[:, 2:]
    return k[0] * rows[:, :, :-2] + k[1] * rows[:, :, 1:-1] + k[2] * rows[:, :, 2:]


def colour_jitter(rng: jax.Array, images: jax.Array, *, brightness: float = 0.2,
                  contrast: float = 0.2, saturation: float = 0.2, blur_prob: float = 0.2,
                  noise_std: float = 0.02) -> jax.Array:
    """Per-example brightness, contrast, saturation, occasional blur and Gaussian noise.

    Args:
      rng: a key.
      images: ``float32 [B, H, W, 3]`` in [0, 1].
      brightness, contrast, saturation: the largest relative change (uniform, per example).
      blur_prob: chance of a 3 x 3 blur.
      noise_std: the largest noise standard deviation (uniform, per example).

    Returns:
      ``float32 [B, H, W, 3]`` in [0, 1].
    """
    b = images.shape[0]
    ks = jax.random.split(rng, 6)

    def factor(key, amount):
        return 1.0 + jax.random.uniform(key, (b, 1, 1, 1), minval=-amount, maxval=amount)

    x = images * factor(ks[0], brightness)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    x = (x - mean) * factor(ks[1], contrast) + mean
    grey = x.mean(axis=-1, keepdims=True)
    x = (x - grey) * factor(ks[2], saturation) + grey
    blur = jax.random.bernoulli(ks[3], float(blur_prob), (b, 1, 1, 1))
    x = jnp.where(blur, _blur3(x), x)
    std = jax.random.uniform(ks[4], (b, 1, 1, 1), maxval=noise_std)
    x = x + std * jax.random.normal(ks[5], x.shape)
    return jnp.clip(x, 0.0, 1.0)
