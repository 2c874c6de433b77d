"""S2D-Dec: sparse landmark displacements → dense per-vertex displacements.

The decoder of Otberdout et al. (CVPR 2022, §3.2). The default configuration is the official
architecture: the flattened normalised landmark displacement (68×3 = 204) goes through one
dense layer (no activation) to (coarsest level + a dummy row) × 128 features, then four times
[up-sample one level + SpiralConv + ELU] with 64/32/32/16 channels, and a final linear
SpiralConv to 3 channels at full resolution. The output is the displacement; the prediction is
``neutral + displacement``.

The official code keeps an explicit dummy vertex at every level. jaxface keeps the padding
implicit (spiral index ``N`` reads zeros) except for the one place where the official model
really uses a value there: the dense layer's extra row, which the first spiral convolution reads
as its padding (``learned_padding=True``, the default; 666,083 parameters on the FLAME
hierarchy with spiral lengths 15/14/9/9/7). With ``learned_padding=False`` the dense layer emits
only the real coarsest vertices.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxface.mesh.cache import load_or_build_topology
from jaxface.nn import SpiralConv

__all__ = ["ACTIVATIONS", "S2DDecoder", "SpiralTopology", "build_topology"]

log = logging.getLogger(__name__)

ACTIVATIONS = {
    "elu": nn.elu,
    "relu": nn.relu,
    "leaky_relu": nn.leaky_relu,
    "gelu": nn.gelu,
    "silu": nn.silu,
    "identity": lambda x: x,
}


@dataclass(frozen=True, eq=False)
class SpiralTopology:
    """The constant arrays of a spiral encoder/decoder, finest level first.

    Attributes:
      spirals: per level ``i``, int32 ``[n_i, L_i]`` spiral indices (padding index ``n_i``).
      up_indices: per level ``i < K``, int32 ``[n_i, 3]``: coarse (level ``i+1``) vertices.
      up_weights: per level ``i < K``, float32 ``[n_i, 3]`` barycentric weights (rows sum to 1).
      down_indices: per level ``i < K``, int32 ``[n_{i+1}]``: the vertices of level ``i`` kept
        at level ``i+1`` (needed by encoders only; may be empty).
    """

    spirals: tuple[np.ndarray, ...]
    up_indices: tuple[np.ndarray, ...]
    up_weights: tuple[np.ndarray, ...]
    down_indices: tuple[np.ndarray, ...] = ()

    def __post_init__(self):
        k = len(self.spirals)
        if len(self.up_indices) != k - 1 or len(self.up_weights) != k - 1:
            raise ValueError(
                f"topology has {k} spiral levels but {len(self.up_indices)} up-sampling index "
                f"arrays and {len(self.up_weights)} weight arrays; expected {k - 1} of each"
            )
        for i, (idx, w) in enumerate(zip(self.up_indices, self.up_weights, strict=True)):
            if idx.shape != w.shape or idx.shape[0] != self.spirals[i].shape[0]:
                raise ValueError(
                    f"level {i}: up-sampling arrays {idx.shape}/{w.shape} do not match the "
                    f"{self.spirals[i].shape[0]} vertices of its spirals"
                )
            if idx.max() >= self.spirals[i + 1].shape[0]:
                raise ValueError(f"level {i}: up-sampling index out of range of level {i + 1}")
        if self.down_indices and len(self.down_indices) != k - 1:
            raise ValueError(
                f"topology has {k} spiral levels but {len(self.down_indices)} down-sampling "
                f"index arrays; expected {k - 1}"
            )

    @classmethod
    def from_hierarchy(cls, hierarchy, spirals) -> "SpiralTopology":
        """Collects the arrays of a :class:`jaxface.mesh.MeshHierarchy` and its spirals."""
        k = hierarchy.num_levels
        return cls(
            spirals=tuple(np.asarray(s, np.int32) for s in spirals),
            up_indices=tuple(hierarchy.up_indices(i) for i in range(1, k)),
            up_weights=tuple(hierarchy.up_weights(i) for i in range(1, k)),
            down_indices=tuple(hierarchy.down_indices(i) for i in range(1, k)),
        )

    @property
    def num_levels(self) -> int:
        return len(self.spirals)

    @property
    def level_sizes(self) -> tuple[int, ...]:
        return tuple(int(s.shape[0]) for s in self.spirals)

    @property
    def spiral_lengths(self) -> tuple[int, ...]:
        return tuple(int(s.shape[1]) for s in self.spirals)


def build_topology(vertices: np.ndarray, faces: np.ndarray, cfg) -> SpiralTopology:
    """The hierarchy and spirals of a template, loaded from the cache or built once.

    Args:
      vertices: float ``[N, 3]`` template vertices.
      faces: int ``[F, 3]`` template faces.
      cfg: a config's ``topology`` block (``factors``, ``lengths``, ``rings``, ``dilations``,
        ``reference_vertices``, optionally ``method``: a decimation method of
        :func:`jaxface.mesh.build_hierarchy`; without it ``"qslim"``, the hierarchy every
        stored run and the shipped models were trained on).
    """
    hierarchy, spirals, path = load_or_build_topology(
        vertices, faces,
        method=cfg.get("method") or "qslim",
        factors=tuple(cfg.factors),
        spiral_lengths=None if cfg.lengths is None else tuple(cfg.lengths),
        rings=tuple(cfg.rings),
        dilations=tuple(cfg.dilations),
        reference_vertices=(None if cfg.reference_vertices is None
                            else tuple(cfg.reference_vertices)),
    )
    log.info("topology %s from %s", hierarchy.sizes, path)
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


class S2DDecoder(nn.Module):
    """Landmark displacement ``[B, 204]`` → dense displacement ``[B, N, 3]``.

    Attributes:
      topology: spirals and up-sampling arrays, finest level first (``num_levels`` = K+1).
      channels: the dense layer's feature count, then one entry per up-sampled level
        (coarse to fine): length ``num_levels``. Official: ``(128, 64, 32, 32, 16)``.
      out_features: channels of the final linear SpiralConv (3 for xyz).
      activation: a key of :data:`ACTIVATIONS`.
      learned_padding: the dense layer emits an extra row read as padding by the first spiral
        convolution (the official model's dummy vertex).
      dtype: compute dtype (parameters stay float32).
      spiral_impl: ``impl`` of every spiral convolution (:class:`jaxface.nn.SpiralConv`).
    """

    topology: SpiralTopology
    channels: Sequence[int] = (128, 64, 32, 32, 16)
    out_features: int = 3
    activation: str = "elu"
    learned_padding: bool = True
    dtype: jnp.dtype | None = None
    spiral_impl: str = "auto"

    @nn.compact
    def __call__(self, displacement: jax.Array) -> jax.Array:
        """Args: displacement ``[B, D]`` (D = 204 for 68 landmarks). Returns ``[B, N_0, 3]``."""
        topo = self.topology
        if len(self.channels) != topo.num_levels:
            raise ValueError(
                f"channels {tuple(self.channels)} must have one entry per level "
                f"({topo.num_levels}): the dense layer, then each up-sampled level"
            )
        act = ACTIVATIONS[self.activation]
        batch = displacement.shape[0]
        n_coarse = topo.level_sizes[-1]
        rows = n_coarse + int(self.learned_padding)
        x = nn.Dense(rows * self.channels[0], dtype=self.dtype, name="dense")(displacement)
        x = x.reshape(batch, rows, self.channels[0])
        padding = None
        if self.learned_padding:
            x, padding = x[:, :n_coarse], x[:, n_coarse]
        for step, level in enumerate(range(topo.num_levels - 2, -1, -1)):
            features = self.channels[step + 1]
            conv = SpiralConv(
                features, topo.spirals[level], dtype=self.dtype, impl=self.spiral_impl,
                upsampling=(topo.up_indices[level], topo.up_weights[level]), name=f"conv_{step}",
            )
            x = act(conv(x, padding=padding))
            padding = None
        out = SpiralConv(
            self.out_features, topo.spirals[0], dtype=self.dtype, impl=self.spiral_impl,
            name="conv_out",
        )(x)
        return out.astype(jnp.float32)
