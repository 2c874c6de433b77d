"""The official S2D-Dec formulation in PyTorch (Neural3DMM-style spiral layers).

Written for the benchmarks from the published description of the official S2D-Dec decoder
(Otberdout et al., CVPR 2022), whose spiral layer follows Neural3DMM (Bouritsas et al., ICCV 2019):

* every level carries an explicit **dummy vertex** (row ``N`` of a ``[B, N + 1, C]`` tensor); the
  spiral table has ``N + 1`` rows, padding entries point at the dummy, and the dummy's own row is
  all dummy;
* the spiral layer builds a per-call index pair, the spiral table **repeated over the batch** and a
  matching batch index, gathers ``x[batch_idx, spiral_idx]`` by advanced indexing to
  ``[B * (N + 1), L * C]``, applies ``Linear(L * C, C_out)`` and ELU, and multiplies by a mask that
  zeroes the dummy row;
* up-sampling is a **dense** ``(N_fine + 1) x (N_coarse + 1)`` matrix applied with
  ``torch.matmul``, padded so the dummy maps onto the dummy;
* the decoder is ``Linear(204, (N_K + 1) * 128)``, a reshape, then per level [up-sample, spiral
  layer + ELU], then a linear spiral layer to 3 channels; the dummy row is dropped at the end.

With the same spiral tables, up-sampling arrays and weights it computes the same function as
:class:`jaxface.models.s2d.S2DDecoder` (``learned_padding=True``): jaxface's implicit padding index
``N`` reads the dense layer's extra row at the first spiral layer and zeros afterwards, which is
what the masked dummy row holds here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.reference_torch import ReferenceDecoder

__all__ = ["DummyRowSpiralConv", "OfficialS2DDecoder", "dense_upsampling", "spirals_with_dummy"]


def spirals_with_dummy(spirals: np.ndarray) -> np.ndarray:
    """Appends the dummy vertex's own spiral (all entries ``N``) to an ``[N, L]`` table.

    Args:
      spirals: int ``[N, L]`` spiral indices in ``[0, N]`` (``N`` marks padding).

    Returns:
      int64 ``[N + 1, L]``.
    """
    spirals = np.asarray(spirals, np.int64)
    n, length = spirals.shape
    return np.concatenate([spirals, np.full((1, length), n, np.int64)], axis=0)


def dense_upsampling(up_indices: np.ndarray, up_weights: np.ndarray, num_coarse: int) -> np.ndarray:
    """The dense ``(N_fine + 1) x (N_coarse + 1)`` up-sampling matrix, dummy mapped to itself.

    Args:
      up_indices: int ``[N_fine, K]`` coarse vertex indices.
      up_weights: float ``[N_fine, K]`` barycentric weights.
      num_coarse: ``N_coarse``.

    Returns:
      float32 ``[N_fine + 1, N_coarse + 1]``.
    """
    up_indices = np.asarray(up_indices, np.int64)
    n_fine = up_indices.shape[0]
    u = np.zeros((n_fine + 1, num_coarse + 1), np.float32)
    rows = np.repeat(np.arange(n_fine), up_indices.shape[1])
    np.add.at(u, (rows, up_indices.reshape(-1)), np.asarray(up_weights, np.float32).reshape(-1))
    u[n_fine, num_coarse] = 1.0
    return u


class DummyRowSpiralConv(nn.Module):
    """Neural3DMM-style spiral layer on ``[B, N + 1, C]`` features (dummy row last).

    Args:
      in_features: input channels ``C``.
      out_features: output channels ``C_out``.
      length: spiral length ``L``.
      activation: ``"elu"`` or ``"identity"``.
    """

    def __init__(self, in_features: int, out_features: int, length: int, activation: str = "elu"):
        super().__init__()
        if activation not in ("elu", "identity"):
            raise ValueError(f"activation must be 'elu' or 'identity', got {activation!r}")
        self.in_features = in_features
        self.out_features = out_features
        self.length = length
        self.activation = activation
        self.linear = nn.Linear(length * in_features, out_features)

    def forward(self, x: torch.Tensor, spirals: torch.Tensor) -> torch.Tensor:
        """Applies the layer.

        Args:
          x: ``[B, N + 1, C]`` features, row ``N`` the dummy vertex.
          spirals: int64 ``[N + 1, L]`` spiral table (:func:`spirals_with_dummy`).

        Returns:
          ``[B, N + 1, C_out]`` with the dummy row zeroed.
        """
        batch, rows, channels = x.shape
        length = spirals.shape[1]
        # The per-call index construction of the official layer.
        spiral_idx = spirals.unsqueeze(0).repeat(batch, 1, 1).reshape(-1)
        batch_idx = (torch.arange(batch, device=x.device).view(batch, 1)
                     .repeat(1, rows * length).reshape(-1))
        gathered = x[batch_idx, spiral_idx, :].reshape(batch * rows, length * channels)
        out = self.linear(gathered)
        if self.activation == "elu":
            out = F.elu(out)
        out = out.reshape(batch, rows, self.out_features)
        mask = torch.ones((1, rows, 1), dtype=out.dtype, device=out.device)
        mask[0, -1, 0] = 0.0
        return out * mask


class OfficialS2DDecoder(ReferenceDecoder):
    """S2D-Dec in the official formulation: ``[B, 204]`` landmark displacement -> ``[B, N, 3]``.

    Arguments as :class:`benchmarks.reference_torch.ReferenceDecoder`.
    """

    def __init__(self, spirals, up_indices, up_weights, **kwargs):
        super().__init__(spirals, up_indices, up_weights, **kwargs)
        levels, sizes, channels = len(spirals), self.sizes, self.channels
        for i, s in enumerate(spirals):
            self.register_buffer(f"spirals_{i}", torch.from_numpy(spirals_with_dummy(s)))
        for i in range(levels - 1):
            u = dense_upsampling(up_indices[i], up_weights[i], sizes[i + 1])
            self.register_buffer(f"up_{i}", torch.from_numpy(u))
        convs = []
        for step, level in enumerate(range(levels - 2, -1, -1)):
            convs.append(
                DummyRowSpiralConv(channels[step], channels[step + 1], spirals[level].shape[1])
            )
        self.convs = nn.ModuleList(convs)
        self.conv_out = DummyRowSpiralConv(
            channels[-1], self.out_features, spirals[0].shape[1], activation="identity"
        )

    def forward(self, landmark_displacement: torch.Tensor) -> torch.Tensor:
        """Maps ``[B, in_features]`` to ``[B, N_0, out_features]``."""
        batch = landmark_displacement.shape[0]
        levels = len(self.sizes)
        x = self.fc(landmark_displacement).view(batch, self.sizes[-1] + 1, self.channels[0])
        for step, level in enumerate(range(levels - 2, -1, -1)):
            x = torch.matmul(getattr(self, f"up_{level}"), x)
            x = self.convs[step](x, getattr(self, f"spirals_{level}"))
        x = self.conv_out(x, self.spirals_0)
        return x[:, :-1]
