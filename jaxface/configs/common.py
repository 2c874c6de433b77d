"""What the configs share: the mode of ``get_config(arg)`` and the fields every run has."""

from __future__ import annotations

from collections.abc import Sequence

import ml_collections

__all__ = ["base_config", "parse_mode", "topology_config"]


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


def topology_config(factors=(4, 4, 4, 4), rings=(2, 2, 1, 1, 1),
                    dilations=(2, 2, 1, 1, 1)) -> ml_collections.ConfigDict:
    """A spiral hierarchy block (:func:`jaxface.models.build_topology`).

    The defaults are Neural3DMM's: decimation by 4 per level, spirals of rings (2, 2, 1, 1, 1)
    with dilations (2, 2, 1, 1, 1); spiral lengths from the data (``lengths`` ``None``) and no
    reference vertices.

    Example:
      >>> topology_config((5, 5)).factors
      (5, 5)
    """
    c = ml_collections.ConfigDict()
    c.factors = tuple(factors)
    c.rings = tuple(rings)
    c.dilations = tuple(dilations)
    c.lengths = ml_collections.FieldReference(None, field_type=tuple)
    c.reference_vertices = ml_collections.FieldReference(None, field_type=tuple)
    return c
