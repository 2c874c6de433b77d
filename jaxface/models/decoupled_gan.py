"""The decoupled 3D face GAN (Fernández Abrevaya et al., ICCV 2019, §4.2 and supplement).

* :class:`DecoupledGenerator`: the codes ``z = [z_id, z_exp, noise]`` go through two fully
  connected layers (an intermediate representation with a (leaky) ReLU) to the stacked 3D
  displacements of every vertex from a reference mesh.
* :class:`DecoupledCritic`: a DC-GAN-style 2D network on the geometry image of a mesh (the fixed
  mapping layer :class:`jaxface.nn.GeometryMapping` sits between the two). Its first convolution
  blocks are shared; the remaining blocks are duplicated for three heads: real/fake score,
  identity class and expression class. The heads' flattened inputs (the second-to-last layer)
  are the features of the paper's feature loss.

Every convolution is a DC-GAN block: ``4 x 4`` kernel, stride 2, padding 1 (the image halves),
then a leaky ReLU. The critic has no normalisation layer, so its score is a per-example function
of its input, as the WGAN-GP gradient penalty assumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxface.models.strided_conv import StridedConv

__all__ = ["CriticOutput", "DecoupledCritic", "DecoupledGenerator"]


def _activation(name: str, negative_slope: float):
    if name == "relu":
        return nn.relu
    if name == "leaky_relu":
        return lambda x: nn.leaky_relu(x, negative_slope)
    raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {name!r}")


_OUTPUT_INITS = {"lecun": nn.initializers.lecun_normal(), "zeros": nn.initializers.zeros}


class DecoupledGenerator(nn.Module):
    """``(z_id [B, I], z_exp [B, E], noise [B, Z])`` -> displacements ``[B, N, 3]``.

    Attributes:
      num_vertices: ``N``, vertices of the reference mesh.
      hidden: size of the intermediate representation.
      activation: ``"relu"`` (paper text) or ``"leaky_relu"`` (supplement's figure).
      negative_slope: slope of the leaky ReLU.
      output_init: initialiser of the output layer's kernel: ``"lecun"`` (Flax's default) or
        ``"zeros"``, which starts every sample at the reference mesh (smooth) instead of at
        per-vertex noise of the data's scale.

    Example:
      >>> g = DecoupledGenerator(num_vertices=5, hidden=8)
      >>> z = jnp.ones((2, 3))
      >>> params = g.init(jax.random.key(0), z, z[:, :2], z[:, :1])["params"]
      >>> g.apply({"params": params}, z, z[:, :2], z[:, :1]).shape
      (2, 5, 3)
    """

    num_vertices: int
    hidden: int = 512
    activation: str = "relu"
    negative_slope: float = 0.2
    output_init: str = "lecun"

    @nn.compact
    def __call__(self, z_id: jax.Array, z_exp: jax.Array, noise: jax.Array) -> jax.Array:
        """Returns the displacements ``[B, N, 3]`` of the codes (rows are examples)."""
        if self.output_init not in _OUTPUT_INITS:
            raise ValueError(f"output_init must be one of {', '.join(_OUTPUT_INITS)}, got "
                             f"{self.output_init!r}")
        z = jnp.concatenate([z_id, z_exp, noise], axis=-1)
        act = _activation(self.activation, self.negative_slope)
        h = act(nn.Dense(self.hidden, name="hidden")(z))
        out = nn.Dense(3 * self.num_vertices, kernel_init=_OUTPUT_INITS[self.output_init],
                       name="out")(h)
        return out.reshape(z.shape[0], self.num_vertices, 3)


class CriticOutput(NamedTuple):
    """What the critic computes for a batch of ``B`` geometry images.

    Attributes:
      score: ``[B]`` real/fake (Wasserstein) score.
      identity_logits: ``[B, K_id]``.
      expression_logits: ``[B, K_exp]``.
      identity_features: ``[B, F]`` second-to-last layer of the identity branch.
      expression_features: ``[B, F]`` second-to-last layer of the expression branch.
    """

    score: jax.Array
    identity_logits: jax.Array
    expression_logits: jax.Array
    identity_features: jax.Array
    expression_features: jax.Array


class DecoupledCritic(nn.Module):
    """Geometry images ``[B, H, W, C]`` -> :class:`CriticOutput`.

    Attributes:
      num_identities: identity classes ``K_id``.
      num_expressions: expression classes ``K_exp``.
      shared_channels: output channels of the shared convolution blocks (paper: two blocks).
      branch_channels: output channels of each head's own convolution blocks (paper: two).
      negative_slope: slope of the leaky ReLUs.
      conv_impl: form of the stride-2 convolutions
        (:data:`jaxface.models.strided_conv.STRIDED_CONV_IMPLS`; ``"auto"``: patches and a
        matmul on CPU, XLA's convolution elsewhere). The parameters are those of
        ``flax.linen.Conv`` either way.

    Example:
      >>> d = DecoupledCritic(num_identities=3, num_expressions=4, shared_channels=(4, 4),
      ...                     branch_channels=(8,))
      >>> x = jnp.zeros((2, 16, 16, 3))
      >>> out = d.apply(d.init(jax.random.key(0), x), x)
      >>> out.score.shape, out.identity_logits.shape, out.expression_features.shape
      ((2,), (2, 3), (2, 32))
    """

    num_identities: int
    num_expressions: int
    shared_channels: Sequence[int] = (64, 128)
    branch_channels: Sequence[int] = (256, 512)
    negative_slope: float = 0.2
    conv_impl: str = "auto"

    def _block(self, x: jax.Array, features: int, name: str) -> jax.Array:
        conv = StridedConv(features, (4, 4), 2, impl=self.conv_impl, padding=((1, 1), (1, 1)),
                           name=name)
        return nn.leaky_relu(conv(x), self.negative_slope)

    @nn.compact
    def __call__(self, images: jax.Array) -> CriticOutput:
        """Scores, logits and features of a batch of geometry images."""
        if images.ndim != 4:
            raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")
        levels = len(self.shared_channels) + len(self.branch_channels)
        if images.shape[1] % 2**levels or images.shape[2] % 2**levels:
            raise ValueError(f"image size {images.shape[1:3]} must be divisible by 2^{levels} "
                             f"(one halving per convolution block)")
        x = images
        for i, c in enumerate(self.shared_channels):
            x = self._block(x, c, f"shared_{i}")

        def branch(name: str, outputs: int) -> tuple[jax.Array, jax.Array]:
            h = x
            for i, c in enumerate(self.branch_channels):
                h = self._block(h, c, f"{name}_{i}")
            features = h.reshape(h.shape[0], -1)
            return nn.Dense(outputs, name=f"{name}_out")(features), features

        score, _ = branch("adversarial", 1)
        id_logits, id_features = branch("identity", self.num_identities)
        exp_logits, exp_features = branch("expression", self.num_expressions)
        return CriticOutput(score[:, 0], id_logits, exp_logits, id_features, exp_features)
