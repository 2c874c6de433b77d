"""The machine figures come from: processor model and load average (numpy-free, no side effects)."""

from __future__ import annotations

import os
import platform
import time

__all__ = ["cpu_model", "describe", "load_average", "load_text", "run_record"]


def cpu_model() -> str:
    """The processor's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> tuple[float, float, float] | None:
    """The 1, 5 and 15 minute load averages, or ``None`` where the system has none."""
    try:
        return os.getloadavg()
    except (OSError, AttributeError):
        return None


def load_text() -> str:
    """The load averages as ``"0.5, 1.2, 2.0"`` (``"n/a"`` where unknown)."""
    load = load_average()
    return "n/a" if load is None else ", ".join(f"{x:.1f}" for x in load)


def describe() -> str:
    """``"2 CPU cores (model name), Python 3.11.7"``."""
    return f"{os.cpu_count()} CPU cores ({cpu_model()}), Python {platform.python_version()}"


def run_record(command: str, started: float, load_before: str) -> dict:
    """What a report says about its run.

    Args:
      command: the command line that produced it.
      started: ``time.perf_counter()`` at the start of the run.
      load_before: :func:`load_text` at the start of the run.

    Returns:
      ``{"command", "machine", "seconds", "load_before", "load_after"}``.
    """
    return {"command": command, "machine": describe(),
            "seconds": time.perf_counter() - started, "load_before": load_before,
            "load_after": load_text()}
