"""A Neural3DMM-style spiral mesh autoencoder with a free latent code.

The encoder is :class:`jaxface.models.SpiralEncoder` (spiral convolutions and down-sampling to a
``latent``-d code) and the decoder :class:`jaxface.models.S2DDecoder` (a dense layer, then
up-sampling and spiral convolutions) applied to that code. Used as the expression model of the
DeepFLAME-style baseline of the decoupled face GAN's comparisons (a PCA identity space plus an
autoencoder of displacements from the neutral face).
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxface.models.neural3dmm import SpiralEncoder
from jaxface.models.s2d import S2DDecoder, SpiralTopology

__all__ = ["MeshAutoencoder"]


class MeshAutoencoder(nn.Module):
    """Meshes ``[B, N, 3]`` -> reconstructions ``[B, N, 3]`` through a ``[B, latent]`` code.

    Attributes:
      topology: spirals, up- and down-sampling arrays of the template.
      encoder_channels: one entry per level but the coarsest.
      decoder_channels: the dense layer's features, then one entry per up-sampled level.
      latent: size of the code.
      activation: a key of :data:`jaxface.models.s2d.ACTIVATIONS`.
      dtype: compute dtype (parameters stay float32).
    """

    topology: SpiralTopology
    encoder_channels: Sequence[int] = (16, 32, 64, 128)
    decoder_channels: Sequence[int] = (128, 64, 32, 32, 16)
    latent: int = 16
    activation: str = "elu"
    dtype: jnp.dtype | None = None

    def setup(self):
        self.encoder = SpiralEncoder(self.topology, self.encoder_channels, self.latent,
                                     self.activation, self.dtype)
        self.decoder = S2DDecoder(self.topology, self.decoder_channels,
                                  activation=self.activation, learned_padding=False,
                                  dtype=self.dtype)

    def encode(self, x: jax.Array) -> jax.Array:
        """Codes ``[B, latent]`` of meshes ``[B, N, 3]``."""
        return self.encoder(x)

    def decode(self, code: jax.Array) -> jax.Array:
        """Meshes ``[B, N, 3]`` of codes ``[B, latent]``."""
        return self.decoder(code)

    def __call__(self, x: jax.Array) -> jax.Array:
        """The reconstruction ``decode(encode(x))``."""
        return self.decode(self.encode(x))
