"""The Motion3DGAN experiment: train on the configured dataset and split, sample every label.

``train_and_evaluate(config, workdir)`` is the entry point of ``experiments/motion3dgan/main.py``;
Table 3 is :func:`jaxface.motion3dgan.evaluate.run_table3`. Configs are
:mod:`jaxface.configs.motion3dgan`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np

from jaxface.data.datasets import open_dataset
from jaxface.files import write_json, write_npz
from jaxface.manifold import norm
from jaxface.motion3dgan.data import MotionSet, load_motion_splits
from jaxface.motion3dgan.train import make_sample_fn, train_gan
from jaxface.train import store_config

__all__ = ["nearest_label_agreement", "train_and_evaluate"]


def nearest_label_agreement(
    samples: np.ndarray, sample_labels: np.ndarray, train: MotionSet
) -> float:
    """Fraction of samples whose geodesically nearest training SRVF has the sample's label.

    Args:
      samples: float ``[S, T, D]`` generated SRVFs.
      sample_labels: int ``[S]`` their labels.
      train: the training motions.
    """
    inner = np.einsum("std,mtd->sm", samples, train.q) / samples.shape[1]
    nearest = np.argmax(inner, axis=1)
    return float(np.mean(train.labels[nearest] == sample_labels))


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
    """Trains Motion3DGAN on the configured dataset and split, then samples every label.

    Writes into ``workdir``: ``config.json``, ``checkpoints/``, ``metrics.jsonl``,
    ``samples.npz`` (``q [K * n, T, D]``, ``label [K * n]``) and ``results.json``; resumes when
    run again. The quality check is the nearest-neighbour label agreement: the fraction of
    samples whose geodesically nearest training SRVF carries the requested label (Table 3, with
    a trained classifier and FID, is :mod:`jaxface.motion3dgan.evaluate`).

    Returns:
      ``{"train_motions", "test_motions", "nearest_label_agreement", "steps", ...}``.
    """
    workdir = os.path.abspath(workdir)
    store_config(workdir, config.to_dict())
    view = open_dataset(config, verbose=False)
    train, test = load_motion_splits(
        view.path, config.split_rule, num_frames=config.num_frames,
        min_frames=config.min_frames, source=view.source,
    )
    models, state, info = train_gan(config, workdir, train)
    sample = make_sample_fn(models)
    labels = np.repeat(np.arange(train.num_classes, dtype=np.int32), config.samples_per_label)
    q = np.asarray(sample(state.gen_params, state.reference, labels, jax.random.key(config.seed)))
    write_npz(os.path.join(workdir, "samples.npz"), {"q": q, "label": labels})
    norms = np.asarray(norm(q))  # 1 on the sphere
    results = {
        "dataset": view.path,
        "train_motions": len(train),
        "test_motions": len(test),
        "nearest_label_agreement": nearest_label_agreement(q, labels, train),
        "sample_norm": {"min": float(norms.min()), "max": float(norms.max())},
        **info,
    }
    write_json(os.path.join(workdir, "results.json"), results)
    return results
