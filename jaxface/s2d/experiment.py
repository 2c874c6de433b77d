"""The S2D-Dec experiment: train on one protocol/fold of a prepared dataset, then evaluate.

``train_and_evaluate(config, workdir)`` is the one entry point used by
``experiments/s2d/main.py``, by the tables command and by tests. Configs are
``ml_collections.ConfigDict`` (see ``experiments/s2d/configs``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.commands.prepare import prepare_dataset
from jaxface.data import pipeline
from jaxface.data.landmarks import LandmarkDefinition, extract_landmarks
from jaxface.eval.errors import per_vertex_errors_mm, summarize
from jaxface.losses.s2d import landmark_distance_weights
from jaxface.mesh.cache import load_or_build_topology
from jaxface.models.neural3dmm import Neural3DMM
from jaxface.models.s2d import S2DDecoder, SpiralTopology
from jaxface.s2d.pairs import S2DPairs, make_pairs
from jaxface.s2d.train import create_optimizer, make_train_step
from jaxface.train import (
    create_train_state,
    data_mesh,
    fit,
    map_in_batches,
    num_params,
    write_config,
    write_json,
)

__all__ = [
    "INNER_LANDMARKS",
    "DatasetView",
    "ProtocolData",
    "build_topology",
    "load_protocol",
    "loss_weights",
    "open_dataset",
    "protocol_name",
    "s2d_model",
    "train_and_evaluate",
    "train_model",
    "train_neural3dmm",
    "train_s2d",
]

log = logging.getLogger(__name__)

# The 51 inner landmarks (iBUG order: 17 contour points first).
INNER_LANDMARKS = slice(17, 68)


class DatasetView:
    """A prepared dataset's template, landmark definition, sequences and protocols."""

    def __init__(self, path: str):
        self.path = path
        self.template = pipeline.load_template(path)
        self.faces = self.template["faces"]
        self.vertices = self.template["vertices"]
        fields = {
            k.split("/", 1)[1]: v for k, v in self.template.items() if k.startswith("landmarks/")
        }
        if not fields:
            raise ValueError(
                f"dataset at {path} has no landmark definition; S2D needs 68 landmarks (for "
                "CoMA, prepare it with FLAME's landmark embedding)"
            )
        self.landmarks = LandmarkDefinition(**fields)
        self.sequences = pipeline.load_sequences(path)
        self._source = None

    @property
    def source(self):
        if self._source is None:
            self._source = pipeline.open_source(self.path)
        return self._source

    def sequences_of(self, indices: np.ndarray) -> list[pipeline.SequenceInfo]:
        """The sequences whose frames are all in ``indices`` (a split part)."""
        chosen = np.zeros(len(self.source), bool)
        chosen[np.asarray(indices, np.int64)] = True
        return [s for s in self.sequences if chosen[s.start : s.stop].all()]

    def pairs(self, sequences, frame_stride: int = 1) -> S2DPairs:
        frames = [pipeline.load_sequence(self.source, s)["vertices"] for s in sequences]
        return make_pairs(
            frames, self.landmarks, self.faces,
            subjects=[s.subject for s in sequences],
            expressions=[s.expression for s in sequences],
            frame_stride=frame_stride,
        )


def open_dataset(config, *, verbose: bool = True) -> DatasetView:
    """Finds (and, for the procedural set, prepares when missing) the configured dataset.

    Args:
      config: with ``dataset`` (e.g. ``"faces4d"``), ``dataset_config`` and ``data_dir``.
      verbose: print what preparing does.

    Raises:
      FileNotFoundError: a licence-gated dataset that has not been prepared.
    """
    data_dir = os.path.expanduser(config.data_dir)
    try:
        path = pipeline.dataset_dir(config.dataset, data_dir=data_dir, config=config.dataset_config)
    except FileNotFoundError:
        if config.dataset != "faces4d":
            raise
        path = prepare_dataset("faces4d", data_dir=data_dir, config=config.dataset_config,
                               verbose=verbose)
    return DatasetView(path)


def protocol_name(protocol: str, fold: int) -> str:
    """``("identity", 1)`` → ``"identity_fold1"``; other protocol names pass through."""
    if protocol in ("identity", "expression"):
        return f"{protocol}_fold{fold}"
    return protocol


def build_topology(vertices: np.ndarray, faces: np.ndarray, cfg) -> SpiralTopology:
    """The hierarchy and spirals of the template, loaded from the cache or built once."""
    hierarchy, spirals, path = load_or_build_topology(
        vertices, faces,
        factors=tuple(cfg.factors),
        spiral_lengths=None if cfg.lengths is None else tuple(cfg.lengths),
        rings=tuple(cfg.rings),
        dilations=tuple(cfg.dilations),
        reference_vertices=(None if cfg.reference_vertices is None
                            else tuple(cfg.reference_vertices)),
    )
    log.info("topology %s from %s", hierarchy.sizes, path)
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def loss_weights(view: DatasetView, mode: str) -> np.ndarray | None:
    """The ``L_pr`` vertex weights of the template (``None`` when ``mode == "none"``)."""
    if mode == "none":
        return None
    lms = np.asarray(extract_landmarks(view.vertices, view.landmarks, view.faces))
    return landmark_distance_weights(view.vertices, lms[INNER_LANDMARKS], mode=mode)


def _dtype(name: str):
    return jnp.bfloat16 if name == "bfloat16" else None


def s2d_model(topology: SpiralTopology, cfg) -> S2DDecoder:
    """The S2D-Dec of a ``config.model`` block."""
    return S2DDecoder(
        topology, channels=tuple(cfg.channels), activation=cfg.activation,
        learned_padding=cfg.learned_padding, dtype=_dtype(cfg.compute_dtype),
    )


@dataclasses.dataclass
class ProtocolData:
    """Everything one protocol/fold run needs, loaded once (``test`` is ``None`` for a
    training-only run)."""

    view: DatasetView
    protocol: str
    train: S2DPairs
    test: S2DPairs | None
    topology: SpiralTopology


def load_protocol(config) -> ProtocolData:
    """Loads the configured protocol's train/test pairs and the template topology."""
    view = open_dataset(config)
    protocol = protocol_name(config.protocol, config.fold)
    split = pipeline.load_split(view.path, protocol)
    return ProtocolData(
        view=view,
        protocol=protocol,
        train=view.pairs(view.sequences_of(split.train), config.frame_stride),
        test=view.pairs(view.sequences_of(split.test), config.eval_frame_stride),
        topology=build_topology(view.vertices, view.faces, config.topology),
    )


def train_model(
    config,
    workdir: str,
    model,
    example_inputs: tuple,
    predict,
    target,
    pairs: S2DPairs,
    *,
    weights: np.ndarray | None,
    beta_dr: float,
    beta_pr: float,
    with_meshes: bool = False,
) -> tuple[Any, dict[str, Any]]:
    """Trains ``model`` on ``pairs`` with the S2D loss family (resuming from ``workdir``).

    Args:
      predict: ``(params, batch) -> [B, N, 3]``; ``target``: ``batch -> [B, N, 3]``.
      with_meshes: batches also carry ``neutral`` and ``target`` meshes.

    Returns:
      ``(params on the host, info)`` with the step count, wall time and throughput.
    """
    mesh = data_mesh()
    batch_size = config.optim.batch_size
    num_steps = pipeline.steps_per_epoch(len(pairs), batch_size, mesh=mesh,
                                         what="training frames")
    tx = create_optimizer(
        config.optim.learning_rate, weight_decay=config.optim.weight_decay,
        decay_rate=config.optim.decay_rate, steps_per_epoch=num_steps,
    )
    state = create_train_state(model, jax.random.key(config.seed), example_inputs, tx)
    train_step = make_train_step(
        predict, target, weights, beta_dr=beta_dr, beta_pr=beta_pr, form=config.loss.form
    )

    def batches(epoch: int):
        return pairs.epoch(batch_size, np.random.default_rng([config.seed, epoch]), with_meshes)

    t0 = time.perf_counter()
    state, history = fit(
        state, train_step, batches, mesh=mesh, num_epochs=config.optim.num_epochs,
        steps_per_epoch=num_steps, batch_size=batch_size, workdir=workdir,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        seed=config.seed, progress=config.progress, desc="S2D", rate_key="meshes_per_s",
    )
    info = {
        "steps": int(state.step),
        "train_time_s": time.perf_counter() - t0,
        "meshes_per_s": history[-1]["meshes_per_s"] if history else None,
        "final_loss": history[-1]["loss"] if history else None,
        "num_params": num_params(state.params),
    }
    return jax.device_get(state.params), info


def train_s2d(config, workdir: str, data: ProtocolData):
    """Trains S2D-Dec; returns ``(predict_fn(test_pairs) -> meshes [M, N, 3], info)``.

    ``workdir`` receives ``config.json`` and ``template.npz`` beside the checkpoints, so the
    run can be loaded for inference (:class:`jaxface.s2d.inference.S2DInference`).
    """
    from jaxface.s2d.inference import save_template

    write_config(workdir, config.to_dict())
    save_template(workdir, data.view.vertices, data.view.faces, data.view.landmarks)
    model = s2d_model(data.topology, config.model)
    params, info = train_model(
        config, workdir, model, (jnp.zeros((1, 204), jnp.float32),),
        lambda p, b: model.apply({"params": p}, b["landmark_displacement"]),
        lambda b: b["displacement"], data.train,
        weights=loss_weights(data.view, config.loss.weights),
        beta_dr=config.loss.beta_dr, beta_pr=config.loss.beta_pr,
    )
    apply = jax.jit(lambda p, d: model.apply({"params": p}, d))

    def predict(pairs: S2DPairs) -> np.ndarray:
        disp = map_in_batches(functools.partial(apply, params), (pairs.landmark_displacement,),
                              config.eval_batch_size)
        return pairs.neutrals[pairs.sequence] + disp

    return predict, info


def train_neural3dmm(config, workdir: str, data: ProtocolData):
    """Trains the Neural3DMM variant (predicts coordinates, weighted ``L_pr`` only)."""
    cfg = config.neural3dmm
    topo = data.topology
    model = Neural3DMM(
        topo, encoder_channels=tuple(cfg.encoder_channels),
        decoder_channels=tuple(cfg.decoder_channels), latent=cfg.latent,
        activation=config.model.activation, dtype=_dtype(config.model.compute_dtype),
    )
    everything = np.concatenate([data.train.neutrals, data.train.targets])
    mean = jnp.asarray(everything.mean(0))
    std = jnp.asarray(np.maximum(everything.std(0), 1e-6))

    def forward(p, neutral, d):
        return model.apply({"params": p}, (neutral - mean) / std, d) * std + mean

    n = topo.level_sizes[0]
    params, info = train_model(
        config, workdir, model,
        (jnp.zeros((1, n, 3), jnp.float32), jnp.zeros((1, 204), jnp.float32)),
        lambda p, b: forward(p, b["neutral"], b["landmark_displacement"]),
        lambda b: b["target"], data.train,
        weights=loss_weights(data.view, config.loss.weights), beta_dr=0.0, beta_pr=1.0,
        with_meshes=True,
    )
    apply = jax.jit(forward)

    def predict(pairs: S2DPairs) -> np.ndarray:
        neutral = pairs.neutrals[pairs.sequence]
        return map_in_batches(functools.partial(apply, params),
                              (neutral, pairs.landmark_displacement), config.eval_batch_size)

    return predict, info


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
    """Trains S2D-Dec on the configured protocol and evaluates it on its test part.

    Writes into ``workdir``: ``config.json``, ``checkpoints/``, ``metrics.jsonl``,
    ``test_errors_mm.npy`` and ``results.json``; resumes from the latest checkpoint when run
    again.

    Returns:
      ``{"protocol", "test": summary (mm), "steps", "train_time_s", "meshes_per_s", ...}``.
    """
    workdir = os.path.abspath(workdir)
    data = load_protocol(config)
    predict, info = train_s2d(config, workdir, data)
    errors = per_vertex_errors_mm(predict(data.test), data.test.targets)
    results = {
        "protocol": data.protocol,
        "test": summarize(errors),
        "train_frames": len(data.train),
        "test_frames": len(data.test),
        "level_sizes": list(data.topology.level_sizes),
        "spiral_lengths": list(data.topology.spiral_lengths),
        **info,
    }
    np.save(os.path.join(workdir, "test_errors_mm.npy"), errors.astype(np.float32))
    write_json(os.path.join(workdir, "results.json"), results)
    return results
