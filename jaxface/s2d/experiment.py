"""The S2D-Dec experiment: train on one protocol/fold of a prepared dataset, then evaluate.

``train_and_evaluate(config, workdir)`` is the one entry point used by
``experiments/s2d/main.py``, by the tables command and by tests. Configs are
``ml_collections.ConfigDict`` (see ``experiments/s2d/configs``).
"""

from __future__ import annotations

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
from jaxface.models.s2d import S2DDecoder, SpiralTopology
from jaxface.s2d.pairs import S2DPairs, make_pairs
from jaxface.s2d.train import (
    create_optimizer,
    create_train_state,
    fit,
    make_train_step,
    predict_in_batches,
)
from jaxface.train import data_mesh, write_config, write_json

__all__ = [
    "INNER_LANDMARKS",
    "DatasetView",
    "build_topology",
    "loss_weights",
    "open_dataset",
    "protocol_name",
    "train_and_evaluate",
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


def open_dataset(config) -> DatasetView:
    """Finds (and, for the procedural set, prepares when missing) the configured dataset."""
    data_dir = os.path.expanduser(config.data_dir)
    try:
        path = pipeline.dataset_dir(config.dataset, data_dir=data_dir, config=config.dataset_config)
    except FileNotFoundError:
        if config.dataset != "faces4d":
            raise
        path = prepare_dataset("faces4d", data_dir=data_dir, config=config.dataset_config)
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
        reference_vertices=None if cfg.reference_vertices is None else tuple(cfg.reference_vertices),
    )
    log.info("topology %s from %s", hierarchy.sizes, path)
    return SpiralTopology.from_hierarchy(hierarchy, spirals)


def loss_weights(view: DatasetView, mode: str) -> np.ndarray | None:
    """The ``L_pr`` vertex weights of the template (``None`` when ``mode == "none"``)."""
    if mode == "none":
        return None
    lms = np.asarray(extract_landmarks(view.vertices, view.landmarks, view.faces))
    return landmark_distance_weights(view.vertices, lms[INNER_LANDMARKS], mode=mode)


def _model(topology: SpiralTopology, cfg) -> S2DDecoder:
    return S2DDecoder(
        topology, channels=tuple(cfg.channels), activation=cfg.activation,
        learned_padding=cfg.learned_padding,
        dtype=jnp.bfloat16 if cfg.compute_dtype == "bfloat16" else None,
    )


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
    """Trains S2D-Dec on the configured protocol and evaluates it on its test part.

    Writes into ``workdir``: ``config.json``, ``checkpoints/``, ``metrics.jsonl`` and
    ``results.json``; resumes from the latest checkpoint when run again.

    Returns:
      ``{"protocol", "test": summary (mm), "train_time_s", "meshes_per_s", ...}``.
    """
    workdir = os.path.abspath(workdir)
    write_config(workdir, config.to_dict())
    view = open_dataset(config)
    protocol = protocol_name(config.protocol, config.fold)
    split = pipeline.load_split(view.path, protocol)
    train_pairs = view.pairs(view.sequences_of(split.train), config.frame_stride)
    test_pairs = view.pairs(view.sequences_of(split.test), config.eval_frame_stride)
    topology = build_topology(view.vertices, view.faces, config.topology)
    model = _model(topology, config.model)

    mesh = data_mesh()
    batch_size = config.optim.batch_size
    steps_per_epoch = len(train_pairs) // batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"protocol {protocol} has {len(train_pairs)} training frames, fewer than one batch "
            f"of {batch_size}"
        )
    tx = create_optimizer(
        config.optim.learning_rate, weight_decay=config.optim.weight_decay,
        decay_rate=config.optim.decay_rate, steps_per_epoch=steps_per_epoch,
    )
    rng = jax.random.key(config.seed)
    state = create_train_state(model, rng, (jnp.zeros((1, 204), jnp.float32),), tx)
    weights = loss_weights(view, config.loss.weights)
    train_step = make_train_step(
        lambda params, b: model.apply({"params": params}, b["landmark_displacement"]),
        lambda b: b["displacement"],
        weights, beta_dr=config.loss.beta_dr, beta_pr=config.loss.beta_pr,
        form=config.loss.form,
    )

    def batches(epoch: int):
        return train_pairs.epoch(batch_size, np.random.default_rng([config.seed, epoch]))

    t0 = time.perf_counter()
    state, history = fit(
        state, train_step, batches, mesh=mesh, num_epochs=config.optim.num_epochs,
        steps_per_epoch=steps_per_epoch, batch_size=batch_size, workdir=workdir,
        checkpoint_every=config.checkpoint_every, log_every=config.log_every,
        seed=config.seed, progress=config.progress,
    )
    train_time = time.perf_counter() - t0

    predict = jax.jit(lambda p, d: model.apply({"params": p}, d))
    disp = predict_in_batches(predict, jax.device_get(state.params),
                              (test_pairs.landmark_displacement,), config.eval_batch_size)
    pred = test_pairs.neutrals[test_pairs.sequence] + disp
    errors = per_vertex_errors_mm(pred, test_pairs.targets)
    results = {
        "protocol": protocol,
        "test": summarize(errors),
        "train_frames": len(train_pairs),
        "test_frames": len(test_pairs),
        "steps": int(state.step),
        "train_time_s": train_time,
        "meshes_per_s": history[-1]["meshes_per_s"] if history else None,
        "level_sizes": list(topology.level_sizes),
        "spiral_lengths": list(topology.spiral_lengths),
        "num_params": int(sum(x.size for x in jax.tree.leaves(state.params))),
    }
    np.save(os.path.join(workdir, "test_errors_mm.npy"), errors.astype(np.float32))
    write_json(os.path.join(workdir, "results.json"), results)
    return results
