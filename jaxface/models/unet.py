"""SMIRK's neural renderer: a U-Net from a rendered face and a masked photo to a photo.

The input is the grey render of the reconstructed mesh and the photo with its face masked out
(:mod:`jaxface.smirk.masking`) concatenated on channels, ``[B, H, W, 6]`` in ``[0, 1]``; the
output is an image ``[B, H, W, 3]`` in ``(0, 1)`` (sigmoid). ``H`` and ``W`` must be multiples
of 16 (four 2x poolings).

The layout is the official generator's (a U-Net of ``features = 32``):

* encoder: four blocks of (conv 3x3 without bias, BatchNorm, ReLU) x 2 at ``f, 2f, 4f, 8f``
  channels, each followed by 2x2 max pooling;
* bottleneck: the same block at ``16f`` channels, then ``res_blocks`` (5) residual blocks, each
  reflect-pad 1, conv 3x3 without bias, BatchNorm, ReLU, reflect-pad 1, conv 3x3 without bias,
  BatchNorm, added to its input;
* decoder: four steps of a 2x2 stride-2 transposed convolution (with bias) halving the channels,
  concatenation with the encoder block of the same size, and a block;
* a 1x1 convolution (with bias) to ``out_channels`` and a sigmoid.

BatchNorm uses PyTorch's defaults (epsilon 1e-5, momentum 0.1, i.e. Flax ``momentum=0.9``);
``train=True`` normalises with the batch statistics and updates the running averages (apply with
``mutable=["batch_stats"]``). Weights use Flax's default initialisers.

Example:
  >>> import jax, jax.numpy as jnp
  >>> net = UNet(features=4, res_blocks=1)
  >>> x = jnp.zeros((2, 16, 16, 6))
  >>> variables = net.init(jax.random.key(0), x)
  >>> net.apply(variables, x).shape
  (2, 16, 16, 3)
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["ResnetBlock", "UNet", "UNetBlock"]

_BN_MOMENTUM = 0.9  # PyTorch momentum 0.1
_BN_EPSILON = 1e-5


def _norm(train: bool, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=_BN_MOMENTUM,
                        epsilon=_BN_EPSILON, name=name)


class UNetBlock(nn.Module):
    """(conv 3x3 without bias, BatchNorm, ReLU) x 2: ``[B, H, W, C] -> [B, H, W, features]``."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        for i in (1, 2):
            x = nn.Conv(self.features, (3, 3), padding=1, use_bias=False, name=f"conv{i}")(x)
            x = nn.relu(_norm(train, f"norm{i}")(x))
        return x


class ResnetBlock(nn.Module):
    """``x + (reflect-pad, conv 3x3, BN, ReLU, reflect-pad, conv 3x3, BN)(x)``, no biases:
    ``[B, H, W, C] -> [B, H, W, C]`` (``H, W >= 2``)."""

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        channels = x.shape[-1]
        y = x
        for i in (1, 2):
            y = jnp.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
            y = nn.Conv(channels, (3, 3), padding="VALID", use_bias=False, name=f"conv{i}")(y)
            y = _norm(train, f"norm{i}")(y)
            if i == 1:
                y = nn.relu(y)
        return x + y


class UNet(nn.Module):
    """SMIRK's generator (module docstring).

    Attributes:
      features: channels of the first level (32 in SMIRK); levels have ``f, 2f, 4f, 8f`` and
        the bottleneck ``16f``.
      res_blocks: residual blocks after the bottleneck (5).
      out_channels: output channels (3).
    """

    features: int = 32
    res_blocks: int = 5
    out_channels: int = 3

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        """``[B, H, W, C_in]`` (H, W multiples of 16) -> ``[B, H, W, out_channels]`` in (0, 1)."""
        if x.ndim != 4 or x.shape[1] % 16 or x.shape[2] % 16:
            raise ValueError(f"UNet: expected [B, H, W, C] with H and W multiples of 16, "
                             f"got {x.shape}")
        f = self.features
        skips = []
        for level in range(4):
            x = UNetBlock(f * 2 ** level, name=f"encoder{level + 1}")(x, train)
            skips.append(x)
            x = nn.max_pool(x, (2, 2), strides=(2, 2))
        x = UNetBlock(16 * f, name="bottleneck")(x, train)
        for i in range(self.res_blocks):
            x = ResnetBlock(name=f"resblock{i + 1}")(x, train)
        for level in reversed(range(4)):
            x = nn.ConvTranspose(f * 2 ** level, (2, 2), strides=(2, 2), padding="VALID",
                                 name=f"upconv{level + 1}")(x)
            x = jnp.concatenate([x, skips[level]], axis=-1)
            x = UNetBlock(f * 2 ** level, name=f"decoder{level + 1}")(x, train)
        x = nn.Conv(self.out_channels, (1, 1), name="conv")(x)
        return nn.sigmoid(x)
