"""S2D-Dec in PyTorch with the up-sampling folded into project-first spiral layers.

The strongest eager formulation the benchmarks could write for PyTorch; it computes the same
linear maps as :mod:`.spiralnet_pp`, in the algebraic form jaxface's decoder uses:

* every spiral layer projects first, ``y[s * L + l] = x[s] @ W_l`` (one matmul over the layer's
  input rows), then sums the projected rows its output reads with one sparse matrix:
  ``out = A @ y``, ``A [N, S * L]``;
* a layer after an up-sampling reads the *coarse* rows: ``A`` composes the spiral with the
  interpolation (entry ``(n, u * L + l)`` carries the weight with which fine vertex
  ``spirals[n, l]`` interpolates coarse vertex ``u``), so the projection runs on the coarse level;
* ``A`` is a CSR matrix (``torch.sparse.mm``, MKL's SpMM on CPU), and the backward pass
  multiplies by a precomputed CSR ``A^T`` (an :class:`torch.autograd.Function`): faster than
  ``index_select`` with its scatter backward, ``torch.sparse.mm`` with a COO matrix (which
  transposes ``A`` in every backward pass) or ``embedding_bag`` in a side-by-side timing of the
  6990-vertex layer (29.5, 142, 49 and 32 ms forward+backward on 2 CPU threads);
* the first layer's dummy spiral entries read the dense layer's padding row (row ``M``), the
  later ones read zeros (their entries are dropped), as in :mod:`.spiralnet_pp`.

Written from that description for the benchmarks; with the same weights it computes the same
function as :class:`jaxface.models.s2d.S2DDecoder` (``learned_padding=True``).
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.reference_torch import ReferenceDecoder

__all__ = ["FoldedSpiralDecoder", "ProjectedSpiralConv", "folded_spiral_matrix"]


def folded_spiral_matrix(
    spirals: np.ndarray,
    num_inputs: int,
    up_indices: np.ndarray | None = None,
    up_weights: np.ndarray | None = None,
    dummy_input: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The COO entries of ``A [N, num_inputs * L]`` (duplicates summed, zeros dropped).

    Args:
      spirals: int ``[N, L]`` fine spiral indices, ``N`` = dummy.
      num_inputs: ``S``, the rows of the layer input.
      up_indices: optional int ``[N, K]`` input rows interpolated into each fine vertex.
      up_weights: optional float ``[N, K]``.
      dummy_input: the input row read by dummy entries (``None``: they read zeros).

    Returns:
      ``(rows, cols, values)``: int64, int64, float32 ``[nnz]``, sorted by row, then column.
    """
    spirals = np.asarray(spirals, np.int64)
    n, length = spirals.shape
    dummy = spirals == n
    vertex = np.where(dummy, 0, spirals)
    if up_indices is None:
        src = vertex[..., None]
        weight = np.ones(src.shape)
    else:
        src = np.asarray(up_indices, np.int64)[vertex]
        weight = np.asarray(up_weights, np.float64)[vertex]
    weight = np.where(dummy[..., None], 0.0, weight)
    rows = np.broadcast_to(np.arange(n)[:, None, None], src.shape).reshape(-1)
    cols = (src * length + np.arange(length)[None, :, None]).reshape(-1)
    values = weight.reshape(-1)
    if dummy_input is not None:
        at_dummy = np.nonzero(dummy.reshape(-1))[0]
        rows = np.append(rows, at_dummy // length)
        cols = np.append(cols, dummy_input * length + at_dummy % length)
        values = np.append(values, np.ones(at_dummy.size))
    keys, inverse = np.unique(rows * (num_inputs * length) + cols, return_inverse=True)
    summed = np.bincount(inverse.reshape(-1), weights=values, minlength=keys.size)
    keep = summed != 0
    rows, cols = np.divmod(keys[keep], num_inputs * length)
    return rows, cols, summed[keep].astype(np.float32)


class _SparseRows(torch.autograd.Function):
    """``A @ y`` with a CSR ``A`` and its precomputed CSR transpose for the backward pass."""

    @staticmethod
    def forward(ctx, y, a, a_t):
        ctx.a_t = a_t
        return torch.sparse.mm(a, y)

    @staticmethod
    def backward(ctx, grad):
        return torch.sparse.mm(ctx.a_t, grad.contiguous()), None, None


class ProjectedSpiralConv(nn.Module):
    """Project-first spiral layer: ``out = A @ (x @ W_l)_l + b``.

    Args:
      in_features: input channels ``C``.
      out_features: output channels ``C_out``.
      length: spiral length ``L``.
      coo: ``(rows, cols, values)`` of ``A`` (:func:`folded_spiral_matrix`).
      shape: ``(N, S * L)``.
    """

    def __init__(self, in_features: int, out_features: int, length: int, coo, shape):
        super().__init__()
        self.length = length
        self.linear = nn.Linear(length * in_features, out_features)
        rows, cols, values = (torch.from_numpy(np.asarray(a)) for a in coo)
        with warnings.catch_warnings():  # PyTorch calls its sparse CSR support beta
            warnings.simplefilter("ignore", UserWarning)
            a = torch.sparse_coo_tensor(torch.stack([rows, cols]), values, shape).coalesce()
            self.register_buffer("a", a.to_sparse_csr())
            self.register_buffer("a_t", a.t().coalesce().to_sparse_csr())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, S, C]`` to ``[B, N, C_out]``."""
        batch, rows, c = x.shape
        c_out = self.linear.out_features
        # W_l = weight[:, l * C:(l + 1) * C].T, stacked as [C, L * C_out].
        w = self.linear.weight.view(c_out, self.length, c).permute(2, 1, 0)
        y = x @ w.reshape(c, self.length * c_out)  # [B, S, L * C_out]
        y = y.view(batch, rows * self.length, c_out).transpose(0, 1)
        out = _SparseRows.apply(y.reshape(rows * self.length, batch * c_out), self.a, self.a_t)
        return out.view(-1, batch, c_out).transpose(0, 1) + self.linear.bias


class FoldedSpiralDecoder(ReferenceDecoder):
    """S2D-Dec with folded up-sampling: ``[B, 204]`` -> ``[B, N, 3]``.

    Arguments as :class:`benchmarks.reference_torch.ReferenceDecoder`.
    """

    def __init__(self, spirals, up_indices, up_weights, **kwargs):
        super().__init__(spirals, up_indices, up_weights, **kwargs)
        levels, sizes, channels = len(spirals), self.sizes, self.channels
        convs = []
        for step, level in enumerate(range(levels - 2, -1, -1)):
            inputs = sizes[level + 1] + (1 if step == 0 else 0)  # the padding row first
            length = int(spirals[level].shape[1])
            coo = folded_spiral_matrix(
                spirals[level], inputs, up_indices[level], up_weights[level],
                dummy_input=sizes[level + 1] if step == 0 else None,
            )
            convs.append(ProjectedSpiralConv(channels[step], channels[step + 1], length, coo,
                                             (sizes[level], inputs * length)))
        self.convs = nn.ModuleList(convs)
        length = int(spirals[0].shape[1])
        self.conv_out = ProjectedSpiralConv(
            channels[-1], self.out_features, length, folded_spiral_matrix(spirals[0], sizes[0]),
            (sizes[0], sizes[0] * length),
        )

    def forward(self, landmark_displacement: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, in_features]`` to ``[B, N_0, out_features]``."""
        batch = landmark_displacement.shape[0]
        x = self.fc(landmark_displacement).view(batch, self.sizes[-1] + 1, self.channels[0])
        for conv in self.convs:
            x = F.elu(conv(x))
        return self.conv_out(x)
