"""A convolutional embedding network for triplet-loss face similarity.

The decoupling metric of Fernández Abrevaya et al. (ICCV 2019, §5.3 and supplement) trains two
such networks, one for identity and one for expression, on an image of each mesh (an orthographic
projection whose RGB channels encode the surface normals) with the triplet loss; two meshes are
"the same" when their embeddings are closer than a threshold. The paper uses a ResNet-18; this
module is a plain strided CNN (``channels`` sets its width and depth), a documented departure
that keeps the metric trainable on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxface.models.strided_conv import StridedConv

__all__ = ["FaceEmbedding"]


class FaceEmbedding(nn.Module):
    """Images ``[B, H, W, C]`` -> unit-norm embeddings ``[B, D]``.

    Each entry of ``channels`` is a ``3 x 3`` convolution with stride 2 and a ReLU; the last
    feature map is averaged over space and mapped to ``D`` values, normalised to unit length.

    Attributes:
      channels: output channels of the convolutions.
      embedding_dim: ``D``.
      conv_impl: form of the convolutions
        (:data:`jaxface.models.strided_conv.STRIDED_CONV_IMPLS`; ``"auto"``: patches and a
        matmul on CPU, 1.8x faster training there, XLA's convolution elsewhere). The parameters
        are those of ``flax.linen.Conv`` either way.

    Example:
      >>> net = FaceEmbedding(channels=(4, 8), embedding_dim=6)
      >>> x = jnp.ones((2, 16, 16, 3))
      >>> e = net.apply(net.init(jax.random.key(0), x), x)
      >>> e.shape, bool(jnp.allclose(jnp.linalg.norm(e, axis=-1), 1.0))
      ((2, 6), True)
    """

    channels: Sequence[int] = (32, 64, 128, 128)
    embedding_dim: int = 64
    conv_impl: str = "auto"

    @nn.compact
    def __call__(self, images: jax.Array) -> jax.Array:
        """Unit-norm embeddings of a batch of images."""
        x = images
        for i, c in enumerate(self.channels):
            x = nn.relu(StridedConv(c, (3, 3), 2, impl=self.conv_impl, name=f"conv_{i}")(x))
        x = jnp.mean(x, axis=(1, 2))
        e = nn.Dense(self.embedding_dim, name="embedding")(x)
        norm = jnp.sqrt(jnp.sum(jnp.square(e), axis=-1, keepdims=True) + 1e-12)
        return e / norm
