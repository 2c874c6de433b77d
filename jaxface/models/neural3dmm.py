"""The Neural3DMM variant used as a baseline by S2D (Otberdout et al. 2022, §4.2).

A spiral mesh autoencoder (Bouritsas et al. 2019) whose 16-d latent code of the *neutral* face
is concatenated with the 204-d landmark displacement; the decoder predicts the expressive face's
coordinates directly (not a displacement), trained with the weighted ``L_pr`` loss. Inputs and
outputs are per-vertex standardised with the training statistics.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxface.models.s2d import ACTIVATIONS, S2DDecoder, SpiralTopology
from jaxface.nn import SpiralConv

__all__ = ["Neural3DMM", "SpiralEncoder"]


class SpiralEncoder(nn.Module):
    """Mesh ``[B, N_0, C]`` → latent ``[B, latent]``: [SpiralConv + act + down-sample] per level.

    Attributes:
      topology: needs ``down_indices``.
      channels: one entry per level except the coarsest (Neural3DMM: ``(16, 32, 64, 128)``).
      latent: size of the code.
    """

    topology: SpiralTopology
    channels: Sequence[int] = (16, 32, 64, 128)
    latent: int = 16
    activation: str = "elu"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        topo = self.topology
        if not topo.down_indices:
            raise ValueError("SpiralEncoder needs a topology with down_indices")
        if len(self.channels) != topo.num_levels - 1:
            raise ValueError(
                f"encoder channels {tuple(self.channels)} need one entry per level but the "
                f"coarsest ({topo.num_levels - 1})"
            )
        act = ACTIVATIONS[self.activation]
        for level, feats in enumerate(self.channels):
            # Only the vertices the down-sampling keeps are computed.
            conv = SpiralConv(feats, topo.spirals[level], dtype=self.dtype,
                              downsampling=topo.down_indices[level], name=f"conv_{level}")
            x = act(conv(x))
        x = x.reshape(x.shape[0], -1)
        return nn.Dense(self.latent, dtype=self.dtype, name="latent")(x)


class Neural3DMM(nn.Module):
    """(neutral ``[B, N, 3]`` standardised, landmark displacement ``[B, 204]``) → ``[B, N, 3]``.

    The output is the expressive face in the same standardised coordinates as the input.
    """

    topology: SpiralTopology
    encoder_channels: Sequence[int] = (16, 32, 64, 128)
    decoder_channels: Sequence[int] = (128, 64, 32, 32, 16)
    latent: int = 16
    activation: str = "elu"
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, neutral: jax.Array, displacement: jax.Array) -> jax.Array:
        z = SpiralEncoder(
            self.topology, self.encoder_channels, self.latent, self.activation, self.dtype,
            name="encoder",
        )(neutral)
        code = jnp.concatenate([z, displacement.astype(z.dtype)], axis=-1)
        return S2DDecoder(
            self.topology, self.decoder_channels, activation=self.activation,
            learned_padding=False, dtype=self.dtype, name="decoder",
        )(code)
