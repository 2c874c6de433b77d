"""What the configs share: the mode of ``get_config(arg)`` and the fields every run has."""

from __future__ import annotations

from collections.abc import Sequence

import ml_collections

__all__ = ["base_config", "parse_mode"]


def base_config(mode: str, *, seed: int) -> ml_collections.ConfigDict:
    """The fields every experiment has: its mode, the dataset, the seed and the loop's periods.

    The dataset is the CoMA-scale procedural set (``faces4d/coma_scale``) at the builder's
    current version, under ``~/.cache/jaxface/datasets``; checkpoints every 1000 steps, metrics
    every 50, a progress bar (see :class:`jaxface.train.LoopConfig`).
    """
    c = ml_collections.ConfigDict()
    c.mode = mode
    c.dataset = "faces4d"
    c.dataset_config = "coma_scale"
    c.data_dir = "~/.cache/jaxface/datasets"
    c.dataset_version = ""  # "": the builder's current version (generated sets)
    c.seed = seed
    c.checkpoint_every = 1000
    c.log_every = 50
    c.progress = True
    return c


def parse_mode(arg: str | None, modes: Sequence[str]) -> str:
    """The mode named by a config argument (``None`` and ``""`` mean ``modes[0]``).

    Args:
      arg: the text after the colon of ``--config=file.py:arg``.
      modes: the config's modes, the default first.

    Raises:
      ValueError: ``arg`` is not one of ``modes``.

    Example:
      >>> parse_mode("cpu", ("paper", "cpu", "test"))
      'cpu'
      >>> parse_mode(None, ("paper", "cpu", "test"))
      'paper'
    """
    mode = arg or modes[0]
    if mode not in modes:
        raise ValueError(f"unknown config mode {arg!r}; choose from {', '.join(modes)}")
    return mode
