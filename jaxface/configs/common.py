"""What the configs share: reading the mode of ``get_config(arg)``."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["parse_mode"]


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
