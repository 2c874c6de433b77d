"""Label signal -> 4D expression: the LSTM + spiral decoder of Potamias et al. (ECCV 2020).

The model of eq. 4, ``x_t = D(E(e)_t) + x_id``: an LSTM encoder ``E`` reads the label signal
``e`` ``[B, T, C]`` (one expression one-hot times an onset/apex/offset intensity curve) and
emits a latent code ``z_t`` (64) per frame; a mesh decoder ``D`` turns each code into a
per-vertex displacement that is added to the subject's neutral face (by the caller). The
decoder never sees the identity: the paper's model is subject-independent.

Decoders:

* :class:`SpiralMeshDecoder` (the proposed model, Table 1): dense ``64 -> n_K x 64`` on the
  coarsest level, then four [up-sample + SpiralConv + ReLU] stages with 32/16/8/3 channels on a
  hierarchy of factor 5 (28431 -> 5687 -> 1138 -> 228 -> 46 on 4DFAB's template). The last
  convolution outputs the displacement; whether the paper applies a ReLU after it is not in the
  text (``output_activation``, default off: a ReLU would forbid negative displacements). As in
  the Neural3DMM setting the paper builds on, the network works in per-vertex standardised
  units: its output is multiplied by the training displacements' standard deviation (and a
  shift may be added: ``mean``/``std``, data held as constants). Without this the outputs start
  orders of magnitude larger than millimetre motions in metres, the first updates switch every
  ReLU off and the decoder collapses to one constant shape.
* :class:`LinearBasisDecoder` (the baseline): the code is the coefficient vector of a PCA basis
  of the training motions (frame minus the subject's neutral), ``mean + z @ components``; the
  basis is data (fitted on the training set, held as constants), not parameters.

Unverified in the paper's text, hence fields: the LSTM's hidden size (``hidden_size``) and the
spiral length.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxface.models.s2d import ACTIVATIONS, SpiralTopology
from jaxface.nn import SpiralConv

__all__ = ["ExpressionLSTM", "LinearBasisDecoder", "SpiralMeshDecoder"]


class SpiralMeshDecoder(nn.Module):
    """Latent code ``[B, Z]`` -> displacement ``[B, N_0, out]`` through a spiral hierarchy.

    Attributes:
      topology: spirals and up-sampling arrays, finest level first (``num_levels`` = K+1).
      channels: the dense layer's feature count on the coarsest level, then the output channels
        of the spiral convolution after each up-sampling (coarse to fine): ``num_levels``
        entries, the last one the output's. Potamias et al.: ``(64, 32, 16, 8, 3)``.
      activation: a key of :data:`jaxface.models.s2d.ACTIVATIONS`, applied after every spiral
        convolution but the last.
      output_activation: apply ``activation`` after the last convolution too.
      mean: optional float ``[N_0, out]`` added to the output (the training mean).
      std: optional float ``[N_0, out]`` multiplying the output first (the training spread).
      dtype: compute dtype (parameters stay float32).
    """

    topology: SpiralTopology
    channels: Sequence[int] = (64, 32, 16, 8, 3)
    activation: str = "relu"
    output_activation: bool = False
    mean: np.ndarray | None = None
    std: np.ndarray | None = None
    dtype: jnp.dtype | None = None

    @nn.compact
    def __call__(self, code: jax.Array) -> jax.Array:
        """Args: code ``[B, Z]``. Returns float32 ``[B, N_0, channels[-1]]``."""
        topo = self.topology
        if len(self.channels) != topo.num_levels:
            raise ValueError(
                f"channels {tuple(self.channels)} must have one entry per level "
                f"({topo.num_levels}): the dense layer, then each up-sampled level"
            )
        act = ACTIVATIONS[self.activation]
        n_coarse = topo.level_sizes[-1]
        x = nn.Dense(n_coarse * self.channels[0], dtype=self.dtype, name="dense")(code)
        x = x.reshape(code.shape[0], n_coarse, self.channels[0])
        last = topo.num_levels - 2
        for step, level in enumerate(range(last, -1, -1)):
            features = self.channels[step + 1]
            x = SpiralConv(features, topo.spirals[level], dtype=self.dtype,
                           upsampling=(topo.up_indices[level], topo.up_weights[level]),
                           name=f"conv_{step}")(x)
            if level > 0 or self.output_activation:
                x = act(x)
        x = x.astype(jnp.float32)
        if self.std is not None:
            x = x * jnp.asarray(self.std, jnp.float32)
        if self.mean is not None:
            x = x + jnp.asarray(self.mean, jnp.float32)
        return x


class LinearBasisDecoder(nn.Module):
    """Latent code ``[B, K]`` -> ``mean + code @ components`` ``[B, N, 3]`` (no parameters).

    Attributes:
      mean: float ``[N, 3]`` mean displacement of the training frames.
      components: float ``[K, N, 3]`` principal directions (rows orthonormal when flattened).
    """

    mean: np.ndarray
    components: np.ndarray

    def __call__(self, code: jax.Array) -> jax.Array:
        """Args: code ``[B, K]`` (``K`` = the number of components). Returns ``[B, N, 3]``."""
        k = self.components.shape[0]
        if code.shape[-1] != k:
            raise ValueError(f"code has {code.shape[-1]} entries; the basis has {k} components")
        comps = jnp.asarray(self.components, jnp.float32)
        return jnp.asarray(self.mean, jnp.float32) + jnp.einsum("bk,knc->bnc", code, comps)


class ExpressionLSTM(nn.Module):
    """Label signal ``[B, T, C]`` -> per-frame displacement ``[B, T, N, 3]``.

    Attributes:
      decoder: the mesh decoder, ``[B*T, latent_size] -> [B*T, N, 3]``.
      hidden_size: LSTM width (unverified in the paper; a field).
      latent_size: per-frame code (the paper: 64; the baseline's number of PCA components).
    """

    decoder: nn.Module
    hidden_size: int = 128
    latent_size: int = 64

    def setup(self):
        self.lstm = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size))
        self.to_latent = nn.Dense(self.latent_size)

    def encode(self, signal: jax.Array) -> jax.Array:
        """The per-frame latent codes ``z_t`` ``[B, T, latent_size]`` of a signal ``[B, T, C]``."""
        return self.to_latent(self.lstm(signal))

    def decode(self, codes: jax.Array) -> jax.Array:
        """Displacements ``[..., N, 3]`` of codes ``[..., latent_size]``."""
        lead = codes.shape[:-1]
        out = self.decoder(codes.reshape(-1, codes.shape[-1]))
        return out.reshape(*lead, *out.shape[1:])

    def __call__(self, signal: jax.Array) -> jax.Array:
        """Args: signal ``[B, T, C]``. Returns float32 ``[B, T, N, 3]``."""
        return self.decode(self.encode(signal))
