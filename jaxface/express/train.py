"""Training the 4D expression model and its PCA-blendshape baseline.

Both are :class:`jaxface.models.ExpressionLSTM`: the label signal's LSTM, then the spiral decoder
(``config.model``) or the fixed PCA basis of the training motions (``config.baseline``, the same
latent size). The loss is eq. 5, ``L_r + temporal_weight * L_c`` over the real frames
(:func:`jaxface.losses.masked_sequence_l1`); Adam with L2 weight decay and a per-epoch decay of
the learning rate (:func:`jaxface.train.create_optimizer`). Runs go through the one training
driver, :func:`jaxface.train.fit`, over the device batches of whole sequences, resume from their
work directory and, with validation subjects, stop when the validation error stops improving.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.eval.errors import per_vertex_errors_mm
from jaxface.express.data import ExpressionData, ExpressionSequences, training_batches
from jaxface.express.model import TrainedModel, build_model
from jaxface.losses import masked_sequence_l1
from jaxface.models import SpiralTopology
from jaxface.train import (
    LoopConfig,
    PeriodicEval,
    Plateau,
    create_optimizer,
    create_train_state,
    fit,
    make_supervised_step,
    num_params,
    store_config,
)

__all__ = ["make_loss", "sequence_errors_mm", "train_expression_model"]


def make_loss(model, temporal_weight: float):
    """``loss_fn(params, batch) -> (loss, {"l_r", "l_c"})`` of eq. 5 on padded batches."""

    def loss_fn(params, batch):
        pred = model.apply({"params": params}, batch["signal"])
        l_r, l_c = masked_sequence_l1(pred, batch["displacement"], batch["mask"])
        return l_r + temporal_weight * l_c, {"l_r": l_r, "l_c": l_c}

    return loss_fn


def sequence_errors_mm(pred: np.ndarray, seqs: ExpressionSequences) -> np.ndarray:
    """Per-frame mean vertex error in mm ``[S, T]`` (NaN on padding frames)."""
    errs = per_vertex_errors_mm(pred, seqs.displacements).mean(axis=-1)
    return np.where(seqs.mask > 0, errs, np.nan)


def train_expression_model(config, model_cfg, workdir: str, data: ExpressionData, *,
                           basis=None, topology: SpiralTopology | None = None,
                           moments=None, desc: str = "LSTM") -> tuple[TrainedModel, dict[str, Any]]:
    """Trains one :class:`~jaxface.models.ExpressionLSTM`; returns ``(generate, info)``.

    Args:
      config: the express config (``optim``, ``loss``, ``validation``, loop fields).
      model_cfg: the model block (``config.model`` or ``config.baseline``).
      workdir: the run's folder (checkpoints, metrics, ``config.json``); resumed when present.
      data: the run's data.
      basis: ``(mean, components)`` for the PCA decoder.
      topology: the template's spiral topology for the spiral decoder.
      moments: the training displacements' per-vertex ``(mean, std)`` for a standardised
        spiral decoder (:func:`jaxface.express.model.displacement_moments`).
      desc: progress-bar label.

    Returns:
      The trained model and a summary (steps, time, parameter count, validation history).
    """
    workdir = os.path.abspath(workdir)
    store_config(workdir, config.to_dict())
    model = build_model(model_cfg, topology=topology, basis=basis, moments=moments)
    batches = training_batches(config, data.train)
    o = config.optim
    tx = create_optimizer(o.learning_rate, weight_decay=o.weight_decay, decay_rate=o.decay_rate,
                          steps_per_epoch=batches.steps_per_epoch)
    example = jnp.zeros((1, data.train.num_frames, data.train.num_classes), jnp.float32)
    state = create_train_state(model, jax.random.key(config.seed), (example,), tx)
    step = make_supervised_step(make_loss(model, config.loss.temporal_weight))
    hooks = []
    if data.validation is not None:
        v, val = config.validation, data.validation

        def evaluate(state) -> dict[str, float]:
            pred = TrainedModel(model, state.params, config.eval_batch_size).generate(val.signal)
            return {"val_error_mm": float(np.nanmean(sequence_errors_mm(pred, val)))}

        stop = Plateau("val_error_mm", v.patience, v.min_delta_mm) if v.patience else None
        every = max(1, round(v.every_epochs * batches.steps_per_epoch))
        hooks.append(PeriodicEval(evaluate, every, workdir, stop))
    state, run = fit(state, step, batches, LoopConfig.from_config(config, o.num_epochs, desc=desc),
                     workdir, hooks=hooks)
    info = {**run.summary(), "final_loss": run.final["loss"] if run.final else None,
            "num_params": num_params(state.params)}
    if hooks and hooks[0].history:
        info["validation"] = hooks[0].history
    return TrainedModel(model, jax.device_get(state.params), config.eval_batch_size), info
