"""PyTorch reference implementations that the benchmarks time side by side with jaxface.

Two styles of spiral decoder are provided, both computing the same function as
:class:`jaxface.models.s2d.S2DDecoder` on shared weights (see :func:`load_s2d_params`):

* :mod:`.official_s2d`: the official S2D-Dec / Neural3DMM formulation (advanced-index gather with a
  per-call repeated index, an explicit dummy vertex row, dense up-sampling matrices).
* :mod:`.spiralnet_pp`: the SpiralNet++ formulation (``index_select`` spirals, sparse
  gather-scale-``index_add_`` pooling).

This package imports :mod:`torch`, the project's ``bench`` extra; nothing else in jaxface needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "ReferenceDecoder",
    "copy_linear",
    "load_s2d_params",
    "make_s2d_train_step",
    "s2d_loss",
    "to_numpy_params",
]


class ReferenceDecoder(torch.nn.Module):
    """What the reference S2D-Dec decoders share: the arguments, their checks and the dense layer.

    Args:
      spirals: per level (finest first), int ``[N_i, L_i]`` spiral indices padded with ``N_i``.
      up_indices: per level ``i < K``, int ``[N_i, 3]`` indices into level ``i + 1``.
      up_weights: per level ``i < K``, float ``[N_i, 3]`` weights.
      channels: the dense layer's channels, then one per up-sampled level (coarse to fine).
      out_features: output channels.
      in_features: input size (204 = 68 landmarks x 3).

    Attributes:
      sizes: vertices per level, finest first.
      channels, out_features: as given.
      fc: ``Linear(in_features, (N_K + 1) * channels[0])``: the coarsest level's rows plus the
        padding row read by the first spiral layer's dummy entries.
    """

    def __init__(
        self,
        spirals: Sequence[np.ndarray],
        up_indices: Sequence[np.ndarray],
        up_weights: Sequence[np.ndarray],
        channels: Sequence[int] = (128, 64, 32, 32, 16),
        out_features: int = 3,
        in_features: int = 204,
    ):
        super().__init__()
        levels = len(spirals)
        if len(channels) != levels or len(up_indices) != levels - 1 \
                or len(up_weights) != levels - 1:
            raise ValueError("need one channel entry per level and one up-sampling per step")
        self.sizes = [int(s.shape[0]) for s in spirals]
        self.channels = tuple(channels)
        self.out_features = int(out_features)
        self.fc = torch.nn.Linear(in_features, (self.sizes[-1] + 1) * channels[0])


def s2d_loss(
    pred: torch.Tensor,
    true: torch.Tensor,
    weights: torch.Tensor | None,
    *,
    beta_dr: float = 1.0,
    beta_pr: float = 0.1,
) -> torch.Tensor:
    """The S2D-Dec loss in its ``form="paper"`` (:func:`jaxface.losses.s2d.s2d_loss`).

    Args:
      pred: ``[B, N, 3]`` predicted displacement.
      true: ``[B, N, 3]`` ground-truth displacement.
      weights: ``[N]`` vertex weights of the landmark-weighted term, or ``None`` (all ones).
      beta_dr: weight of the plain displacement L1 term.
      beta_pr: weight of the landmark-weighted term.

    Returns:
      A scalar tensor ``beta_dr * mean_v |r|_1 + beta_pr * mean_v w_v |r|_1``.
    """
    per_vertex = (pred - true).abs().sum(-1)
    loss_dr = per_vertex.mean()
    loss_pr = per_vertex.mean() if weights is None else (per_vertex * weights).mean()
    return beta_dr * loss_dr + beta_pr * loss_pr


def to_numpy_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Converts a (nested) Flax parameter tree to nested dicts of float32 numpy arrays."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            out[key] = to_numpy_params(value)
        else:
            out[key] = np.asarray(value, np.float32)
    return out


def copy_linear(linear: torch.nn.Linear, kernel: np.ndarray, bias: np.ndarray) -> None:
    """Flax ``Dense`` kernel ``[in, out]`` -> torch ``Linear.weight`` ``[out, in]``."""
    kernel = np.asarray(kernel, np.float32)
    if tuple(linear.weight.shape) != (kernel.shape[1], kernel.shape[0]):
        raise ValueError(
            f"kernel {kernel.shape} does not fit Linear weight {tuple(linear.weight.shape)}"
        )
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(np.array(kernel.T, np.float32, order="C")))
        linear.bias.copy_(torch.from_numpy(np.array(bias, np.float32)))


def load_s2d_params(module: torch.nn.Module, params: Mapping[str, Any]) -> None:
    """Copies the parameters of a :class:`jaxface.models.s2d.S2DDecoder` into a reference module.

    Both reference decoders name their layers ``fc`` (the dense layer), ``convs[i]`` (the
    up-sampled levels, coarse to fine) and ``conv_out``, each holding a ``linear``. The spiral
    kernels keep their row-major ``[L * C, C_out]`` layout, so only the transpose is needed.

    Args:
      module: an ``OfficialS2DDecoder`` or ``SpiralNetPPDecoder``.
      params: the decoder's Flax ``params`` (``{"dense": ..., "conv_0": ..., "conv_out": ...}``).
    """
    p = to_numpy_params(params)
    copy_linear(module.fc, p["dense"]["kernel"], p["dense"]["bias"])
    for i, conv in enumerate(module.convs):
        copy_linear(conv.linear, p[f"conv_{i}"]["kernel"], p[f"conv_{i}"]["bias"])
    copy_linear(module.conv_out.linear, p["conv_out"]["kernel"], p["conv_out"]["bias"])


def make_s2d_train_step(
    module: torch.nn.Module,
    weights: np.ndarray | None,
    *,
    learning_rate: float = 1e-3,
    weight_decay: float = 5e-5,
    sync: bool = True,
) -> Callable[[torch.Tensor, torch.Tensor], float | torch.Tensor]:
    """An eager training step ``(landmark_displacement, displacement) -> loss``.

    Adam with L2 weight decay added to the gradient (``torch.optim.Adam(weight_decay=...)``, the
    semantics of :func:`jaxface.train.create_optimizer`) and the paper-form S2D loss. The
    weights live on the module's device (move the module first); inputs must be there too.

    Args:
      module: a reference decoder mapping ``[B, 204]`` to ``[B, N, 3]``.
      weights: float ``[N]`` landmark-distance weights or ``None``.
      learning_rate: Adam learning rate.
      weight_decay: L2 coefficient.
      sync: return the loss as a Python float (on a GPU this waits for the step); ``False``
        returns the detached loss tensor without waiting.

    Returns:
      The step function; it updates ``module`` in place and returns the loss.
    """
    optimizer = torch.optim.Adam(module.parameters(), lr=learning_rate, weight_decay=weight_decay)
    device = next(module.parameters()).device
    w = (None if weights is None
         else torch.as_tensor(np.asarray(weights, np.float32), device=device))

    def step(landmark_displacement: torch.Tensor,
             displacement: torch.Tensor) -> float | torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = s2d_loss(module(landmark_displacement), displacement, w)
        loss.backward()
        optimizer.step()
        return float(loss.detach()) if sync else loss.detach()

    return step
