"""The Table 3 "LSTM" baseline: a deterministic label + neutral -> landmark-motion generator.

The paper compares Motion3DGAN with "an LSTM to generate the per-frame expression", modelled on
Potamias et al. (ECCV 2020) and "trained on the same data used for Motion3DGAN":
:class:`jaxface.models.LSTMLandmarkGenerator` reads a per-frame neutral-to-apex expression code
(:func:`jaxface.models.expression_code`, one-hot label times a 0 -> 1 ramp) and the normalised
neutral landmarks, and outputs the landmark sequence. It is trained here on the resampled,
normalised training sub-sequences with :func:`jaxface.models.sequence_l1_loss` (L1 plus the L1 of
frame differences) and Adam (:func:`jaxface.motion3dgan.supervised.train_on_motions`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

from jaxface.models import LSTMLandmarkGenerator, create_model, sequence_l1_loss
from jaxface.motion3dgan.data import MotionSet
from jaxface.motion3dgan.supervised import train_on_motions
from jaxface.train import apply_in_batches

__all__ = [
    "create_lstm_generator",
    "generate_lstm_landmarks",
    "lstm_loss",
    "train_lstm_generator",
]


def create_lstm_generator(config, num_classes: int) -> LSTMLandmarkGenerator:
    """The baseline of a config's ``baseline`` block (``name``, ``hidden_size``,
    ``latent_size``)."""
    return create_model(config.baseline, num_frames=config.num_frames, num_classes=num_classes)


def lstm_loss(model: LSTMLandmarkGenerator, temporal_weight: float) -> Callable:
    """The baseline's training loss ``(params, batch) -> (loss, {})``.

    The batch holds ``label`` int32 ``[B]``, ``neutral`` float32 ``[B, K, 3]`` and ``landmarks``
    float32 ``[B, T, K, 3]`` (the target); the loss is
    :func:`jaxface.models.sequence_l1_loss` of the generated sequence.
    """

    def loss_fn(params, batch):
        pred = model.apply({"params": params}, batch["label"], batch["neutral"])
        return sequence_l1_loss(pred, batch["landmarks"], temporal_weight), {}

    return loss_fn


def train_lstm_generator(
    config, workdir: str, train: MotionSet, validation: MotionSet | None = None
) -> tuple[LSTMLandmarkGenerator, Any, dict[str, Any]]:
    """Trains (or resumes) the LSTM baseline on the training motions.

    Args:
      config: experiment config; uses ``num_frames``, ``seed``, ``checkpoint_every``,
        ``log_every``, ``progress`` and the ``baseline`` block (``hidden_size``, ``latent_size``,
        ``learning_rate``, ``batch_size``, ``num_epochs``, ``temporal_weight``).
      workdir: run folder.
      train: training motions.
      validation: held-out motions whose loss is evaluated while training.

    Returns:
      ``(model, params on the host, info)``.
    """
    b = config.baseline
    model = create_lstm_generator(config, train.num_classes)
    params, info = train_on_motions(
        config, b, workdir, train, model,
        (jnp.zeros((1,), jnp.int32), jnp.asarray(train.neutral[:1])),
        lstm_loss(model, b.temporal_weight), ("label", "neutral", "landmarks"),
        stream=7, desc="LSTM generator", validation=validation,
    )
    return model, params, info


def generate_lstm_landmarks(
    model: LSTMLandmarkGenerator, params: Any, labels: np.ndarray, neutral: np.ndarray,
    batch_size: int = 64,
) -> np.ndarray:
    """Landmark sequences of the baseline.

    Args:
      model: the baseline.
      params: its parameters.
      labels: int ``[M]`` expression labels.
      neutral: float32 ``[M, K, 3]`` normalised neutral landmarks.
      batch_size: sequences per call (the last call is padded, so it compiles once).

    Returns:
      float32 ``[M, T, K, 3]``.
    """
    return apply_in_batches(
        model, params, (np.asarray(labels, np.int32), np.asarray(neutral, np.float32)), batch_size
    )
