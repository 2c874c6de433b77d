"""Training S2D-Dec (and the Neural3DMM baseline): optimizer, jitted step, training runs.

The step is a pure function ``(state, batch, rng) -> (state, metrics)`` compiled once with
``jax.jit``; the state is replicated and the batch sharded along the ``data`` mesh axis. Runs go
through the one training driver, :func:`jaxface.train.fit`, over the device batches of
:func:`jaxface.s2d.data.training_batches`, and resume from their work directory.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.eval.errors import per_vertex_errors_mm
from jaxface.losses.s2d import s2d_loss
from jaxface.models import create_model
from jaxface.s2d.data import ProtocolData, loss_weights, training_batches
from jaxface.s2d.model import save_template
from jaxface.s2d.pairs import S2DPairs
from jaxface.train import (
    LoopConfig,
    PeriodicEval,
    Plateau,
    create_optimizer,
    create_train_state,
    fit,
    make_supervised_step,
    map_in_batches,
    num_params,
    store_config,
)

__all__ = ["make_train_step", "train_neural3dmm", "train_s2d"]

#: ``predict(pairs) -> meshes [M, N, 3]`` of a trained model.
Predictor = Callable[[S2DPairs], np.ndarray]


def make_train_step(
    predict: Callable[[Any, dict[str, jax.Array]], jax.Array],
    target: Callable[[dict[str, jax.Array]], jax.Array],
    weights: np.ndarray | None,
    *,
    beta_dr: float,
    beta_pr: float,
    form: str,
) -> Callable:
    """Returns the jitted ``train_step(state, batch, rng) -> (state, metrics)``.

    Args:
      predict: ``(params, batch) -> [B, N, 3]`` the model's prediction of the quantity the loss
        compares (a displacement for S2D-Dec).
      target: ``batch -> [B, N, 3]`` the ground truth of that quantity.
      weights: float ``[N]`` vertex weights of ``L_pr`` or ``None`` (unweighted).
      beta_dr, beta_pr, form: see :func:`jaxface.losses.s2d.s2d_loss`.
    """
    w = None if weights is None else jnp.asarray(weights, jnp.float32)

    def loss_fn(params, batch):
        return s2d_loss(predict(params, batch), target(batch), w, beta_dr=beta_dr,
                        beta_pr=beta_pr, form=form)

    return make_supervised_step(loss_fn)


def _validation_hook(config, workdir: str, data: ProtocolData, steps_per_epoch: int,
                     predictor: Callable[[Any], Predictor]) -> list[PeriodicEval]:
    """The validation hook of ``config.validation`` (none without validation pairs)."""
    if data.validation is None:
        return []
    v = config.validation
    pairs = data.validation

    def evaluate(state) -> dict[str, float]:
        errors = per_vertex_errors_mm(predictor(state.params)(pairs), pairs.targets)
        return {"val_error_mm": float(np.mean(errors))}

    if v.keep not in ("best", "last"):
        raise ValueError(f"config.validation.keep must be 'best' or 'last', got {v.keep!r}")
    rule = Plateau("val_error_mm", max(1, v.patience), v.min_delta_mm)
    every = max(1, round(v.every_epochs * steps_per_epoch))
    return [PeriodicEval(evaluate, every, workdir, rule if v.patience else None,
                         keep_best=rule if v.keep == "best" else None)]


def _train(config, workdir: str, data: ProtocolData, model, example_inputs: tuple,
           predictor: Callable[[Any], Predictor], predict, target, *, beta_dr: float,
           beta_pr: float, with_meshes: bool, desc: str) -> tuple[Predictor, dict[str, Any]]:
    """Trains ``model`` with the S2D loss family; returns ``(predict, info)``.

    ``predict(params, batch)`` and ``target(batch)`` are what the loss compares;
    ``predictor(params)`` is the trained model's ``pairs -> meshes``, used on the validation
    pairs while training (``config.validation``: mean error in mm, optional plateau stop) and
    returned for the kept parameters: with validation pairs and ``config.validation.keep ==
    "best"`` those of the best validation evaluation, otherwise the last ones.
    ``info["kept"]``, ``info["kept_step"]`` and ``info["val_error_mm"]`` say which.
    """
    batches = training_batches(config, data, with_meshes=with_meshes)
    o = config.optim
    tx = create_optimizer(o.learning_rate, weight_decay=o.weight_decay, decay_rate=o.decay_rate,
                          steps_per_epoch=batches.steps_per_epoch)
    state = create_train_state(model, jax.random.key(config.seed), example_inputs, tx)
    step = make_train_step(predict, target, loss_weights(data.view, config.loss.weights),
                           beta_dr=beta_dr, beta_pr=beta_pr, form=config.loss.form)
    hooks = _validation_hook(config, workdir, data, batches.steps_per_epoch, predictor)
    state, run = fit(state, step, batches, LoopConfig.from_config(config, o.num_epochs, desc=desc),
                     workdir, hooks=hooks)
    params = jax.device_get(state.params)
    info = {**run.summary(), "final_loss": run.final["loss"] if run.final else None,
            "num_params": num_params(state.params)}
    if hooks and hooks[0].history:
        info["validation"] = hooks[0].history
        best = hooks[0].best()
        kept = best or hooks[0].history[-1]
        info["kept"] = "best" if best else "last"
        info["kept_step"], info["val_error_mm"] = kept["step"], kept["val_error_mm"]
        if best is not None:
            params = hooks[0].best_params()
    return predictor(params), info


def train_s2d(config, workdir: str, data: ProtocolData) -> tuple[Predictor, dict[str, Any]]:
    """Trains S2D-Dec; returns ``(predict, info)``.

    ``workdir`` receives ``config.json`` and ``template.npz`` beside the checkpoints, so the
    run can be loaded for inference (:class:`jaxface.s2d.inference.S2DInference`).
    """
    workdir = os.path.abspath(workdir)
    store_config(workdir, config.to_dict())  # refuses a resumed run with another config
    save_template(workdir, data.view.vertices, data.view.faces, data.view.landmarks)
    model = create_model(config.model, topology=data.topology)
    apply = jax.jit(lambda p, d: model.apply({"params": p}, d))

    def predictor(params) -> Predictor:
        def predict(pairs: S2DPairs) -> np.ndarray:
            disp = map_in_batches(functools.partial(apply, params),
                                  (pairs.landmark_displacement,), config.eval_batch_size)
            return pairs.neutrals[pairs.sequence] + disp

        return predict

    return _train(
        config, workdir, data, model, (jnp.zeros((1, 204), jnp.float32),), predictor,
        lambda p, b: model.apply({"params": p}, b["landmark_displacement"]),
        lambda b: b["displacement"],
        beta_dr=config.loss.beta_dr, beta_pr=config.loss.beta_pr, with_meshes=False, desc="S2D",
    )


def train_neural3dmm(config, workdir: str, data: ProtocolData) -> tuple[Predictor, dict[str, Any]]:
    """Trains the Neural3DMM variant (predicts coordinates, weighted ``L_pr`` only).

    ``workdir`` receives ``config.json`` beside the checkpoints (a resumed run with another
    config is refused).
    """
    if not isinstance(data.train, S2DPairs):
        raise ValueError("Neural3DMM standardises with the training meshes' statistics; train it "
                         "with config.loader = 'memory'")
    workdir = os.path.abspath(workdir)
    store_config(workdir, config.to_dict())
    model = create_model(config.neural3dmm, topology=data.topology)
    everything = np.concatenate([data.train.neutrals, data.train.targets])
    mean = jnp.asarray(everything.mean(0))
    std = jnp.asarray(np.maximum(everything.std(0), 1e-6))

    def forward(p, neutral, d):
        return model.apply({"params": p}, (neutral - mean) / std, d) * std + mean

    apply = jax.jit(forward)

    def predictor(params) -> Predictor:
        def predict(pairs: S2DPairs) -> np.ndarray:
            neutral = pairs.neutrals[pairs.sequence]
            return map_in_batches(functools.partial(apply, params),
                                  (neutral, pairs.landmark_displacement), config.eval_batch_size)

        return predict

    n = data.topology.level_sizes[0]
    return _train(
        config, workdir, data, model,
        (jnp.zeros((1, n, 3), jnp.float32), jnp.zeros((1, 204), jnp.float32)), predictor,
        lambda p, b: forward(p, b["neutral"], b["landmark_displacement"]),
        lambda b: b["target"], beta_dr=0.0, beta_pr=1.0, with_meshes=True, desc="Neural3DMM",
    )
