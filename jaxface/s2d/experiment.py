"""The S2D-Dec experiment: train on one protocol/fold of a prepared dataset, then evaluate.

``train_and_evaluate(config, workdir)`` is the entry point of ``experiments/s2d/main.py``.
Configs are :mod:`jaxface.configs.s2d`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from jaxface.eval.errors import per_vertex_errors_mm, summarize
from jaxface.files import write_json, write_npy
from jaxface.s2d.data import load_protocol
from jaxface.s2d.train import train_s2d

__all__ = ["train_and_evaluate"]


def train_and_evaluate(config, workdir: str) -> dict[str, Any]:
    """Trains S2D-Dec on the configured protocol and evaluates it on its test part.

    Writes into ``workdir``: ``config.json``, ``template.npz``, ``checkpoints/``,
    ``metrics.jsonl``, ``test_errors_mm.npy`` and ``results.json``; resumes from the latest
    checkpoint when run again.

    Returns:
      ``{"protocol", "test": summary (mm), "steps", "train_time_s", "examples_per_s", ...}``.
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
    write_npy(os.path.join(workdir, "test_errors_mm.npy"), errors.astype(np.float32))
    write_json(os.path.join(workdir, "results.json"), results)
    return results
