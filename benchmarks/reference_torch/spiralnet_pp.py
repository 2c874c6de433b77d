"""The SpiralNet++ formulation of S2D-Dec in PyTorch.

Written for the benchmarks from the published description of SpiralNet++ (Gong et al., ICCV-W
2019):

* the spiral layer holds its flattened ``[N * L]`` index table as a buffer, gathers with
  ``torch.index_select`` along the vertex axis, views the result as ``[B, N, L * C]`` and applies
  ``Linear(L * C, C_out)``; the activation stays outside the layer;
* pooling is a sparse matrix in COO form applied as gather-scale-scatter:
  ``index_select`` the source rows, multiply by the values, ``index_add_`` into the output rows.

SpiralNet++ spirals have a fixed length with no padding. jaxface's Neural3DMM-order spirals pad
short (boundary) spirals with the index ``N``, so the layer input carries one extra row ``N``:
the up-sampling writes ``N_fine + 1`` rows, the extra one holding the coarse dummy row (the dense
layer's padding row) at the first level and zeros after it, and the final layer's input gets a
zero row appended. With the same tables and weights it computes the same function as
:class:`jaxface.models.s2d.S2DDecoder` (``learned_padding=True``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.reference_torch import ReferenceDecoder

__all__ = ["IndexSelectSpiralConv", "ScatterPool", "SpiralNetPPDecoder", "upsampling_coo"]


class IndexSelectSpiralConv(nn.Module):
    """Spiral layer with a fixed ``[N, L]`` index table gathered by ``index_select``.

    Args:
      in_features: input channels ``C``.
      out_features: output channels ``C_out``.
      spirals: int ``[N, L]`` indices into the input's vertex axis (``N`` reads the extra row).
    """

    def __init__(self, in_features: int, out_features: int, spirals: np.ndarray):
        super().__init__()
        spirals = np.asarray(spirals, np.int64)
        self.num_vertices, self.length = spirals.shape
        self.register_buffer("indices", torch.from_numpy(spirals.reshape(-1).copy()))
        self.linear = nn.Linear(self.length * in_features, out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, N + 1, C]`` (row ``N`` read by padding entries) to ``[B, N, C_out]``."""
        batch = x.shape[0]
        gathered = torch.index_select(x, 1, self.indices)
        return self.linear(gathered.view(batch, self.num_vertices, -1))


def upsampling_coo(
    up_indices: np.ndarray, up_weights: np.ndarray, num_coarse: int, *, map_dummy: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The COO entries of an up-sampling matrix with ``N_fine + 1`` output rows.

    Args:
      up_indices: int ``[N_fine, K]`` coarse vertex indices.
      up_weights: float ``[N_fine, K]`` weights; zero weights are dropped.
      num_coarse: ``N_coarse``.
      map_dummy: add the entry ``(N_fine, N_coarse, 1)`` carrying the coarse dummy row over.

    Returns:
      ``(rows, cols, values)``: int64, int64 and float32 ``[nnz]``.
    """
    up_indices = np.asarray(up_indices, np.int64)
    up_weights = np.asarray(up_weights, np.float32)
    n_fine, k = up_indices.shape
    rows = np.repeat(np.arange(n_fine, dtype=np.int64), k)
    cols = up_indices.reshape(-1)
    values = up_weights.reshape(-1)
    keep = values != 0
    rows, cols, values = rows[keep], cols[keep], values[keep]
    if map_dummy:
        rows = np.append(rows, n_fine)
        cols = np.append(cols, num_coarse)
        values = np.append(values, np.float32(1.0))
    return rows, cols, values.astype(np.float32)


class ScatterPool(nn.Module):
    """Sparse pooling ``out[:, r] += v * x[:, c]`` for the COO entries ``(r, c, v)``.

    Args:
      rows: int ``[nnz]`` output rows.
      cols: int ``[nnz]`` input rows.
      values: float ``[nnz]`` weights.
      num_out: output rows.
    """

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, num_out: int):
        super().__init__()
        self.num_out = int(num_out)
        self.register_buffer("rows", torch.from_numpy(np.asarray(rows, np.int64)))
        self.register_buffer("cols", torch.from_numpy(np.asarray(cols, np.int64)))
        self.register_buffer("values", torch.from_numpy(np.asarray(values, np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, M, C]`` to ``[B, num_out, C]``."""
        gathered = torch.index_select(x, 1, self.cols) * self.values.view(1, -1, 1)
        out = x.new_zeros((x.shape[0], self.num_out, x.shape[2]))
        return out.index_add_(1, self.rows, gathered)


class SpiralNetPPDecoder(ReferenceDecoder):
    """S2D-Dec in the SpiralNet++ formulation: ``[B, 204]`` -> ``[B, N, 3]``.

    Arguments as :class:`benchmarks.reference_torch.ReferenceDecoder`.
    """

    def __init__(self, spirals, up_indices, up_weights, **kwargs):
        super().__init__(spirals, up_indices, up_weights, **kwargs)
        levels, sizes, channels = len(spirals), self.sizes, self.channels
        pools, convs = [], []
        for step, level in enumerate(range(levels - 2, -1, -1)):
            rows, cols, values = upsampling_coo(
                up_indices[level], up_weights[level], sizes[level + 1], map_dummy=step == 0
            )
            pools.append(ScatterPool(rows, cols, values, sizes[level] + 1))
            convs.append(IndexSelectSpiralConv(channels[step], channels[step + 1], spirals[level]))
        self.pools = nn.ModuleList(pools)
        self.convs = nn.ModuleList(convs)
        self.conv_out = IndexSelectSpiralConv(channels[-1], self.out_features, spirals[0])

    def forward(self, landmark_displacement: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, in_features]`` to ``[B, N_0, out_features]``."""
        batch = landmark_displacement.shape[0]
        x = self.fc(landmark_displacement).view(batch, self.sizes[-1] + 1, self.channels[0])
        for pool, conv in zip(self.pools, self.convs, strict=True):
            x = F.elu(conv(pool(x)))
        return self.conv_out(F.pad(x, (0, 0, 0, 1)))
