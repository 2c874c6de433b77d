"""Evaluation plots: cumulative per-vertex error curves and curves over time.

matplotlib is imported inside the functions and figures are drawn on an Agg canvas, so
importing this module neither imports matplotlib nor changes its global backend.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from jaxface.eval.errors import ErrorDistribution, cumulative_curve

__all__ = ["plot_cumulative_errors", "plot_curves"]


def plot_cumulative_errors(
    errors: Mapping[str, np.ndarray | ErrorDistribution],
    path: str | os.PathLike,
    *,
    max_mm: float = 3.0,
    num: int = 301,
    title: str | None = None,
    dpi: int = 150,
    figsize: tuple[float, float] = (5.0, 4.0),
) -> Path:
    """Plots, per method, the percentage of vertices with error below each threshold.

    One curve per method, in the mapping's order (the cumulative per-vertex error plot of
    the S2D evaluation).

    Args:
      errors: ``{method: per-vertex errors in mm}``, arrays of any shape or
        :class:`~jaxface.eval.errors.ErrorDistribution` records.
      path: output PNG file (parent folders are created).
      max_mm: largest threshold on the x axis (mm).
      num: number of thresholds.
      title: optional plot title.
      dpi: resolution of the PNG.
      figsize: figure size in inches.

    Returns:
      The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=figsize, dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for method, err in errors.items():
        thresholds, fraction = cumulative_curve(err, max_mm=max_mm, num=num)
        ax.plot(thresholds, 100.0 * fraction, label=method, linewidth=1.5)
    ax.set_xlim(0.0, max_mm)
    ax.set_ylim(0.0, 100.0)
    ax.set_xlabel("Per-vertex error (mm)")
    ax.set_ylabel("Vertices with smaller error (%)")
    ax.grid(True, alpha=0.3)
    if errors:
        ax.legend(loc="lower right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def plot_curves(
    panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    path: str | os.PathLike,
    *,
    xlabel: str,
    ylabel: str,
    cols: int = 3,
    dpi: int = 120,
    panel_size: tuple[float, float] = (3.6, 2.8),
    styles: Mapping[str, str] | None = None,
) -> Path:
    """Line plots in a grid of panels, one legend per panel.

    Args:
      panels: ``{panel title: {curve label: (x [M], y [M])}}``.
      path: output PNG file (parent folders are created).
      xlabel: x axis label.
      ylabel: y axis label.
      cols: panels per row.
      dpi: resolution.
      panel_size: size of one panel in inches.
      styles: optional matplotlib format string per curve label (e.g. ``"k--"``).

    Returns:
      The written path.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = max(1, min(cols, len(panels)))
    rows = -(-len(panels) // cols)
    fig = Figure(figsize=(panel_size[0] * cols, panel_size[1] * rows), dpi=dpi)
    FigureCanvasAgg(fig)
    for i, (title, curves) in enumerate(panels.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        for label, (x, y) in curves.items():
            fmt = (styles or {}).get(label, "-")
            ax.plot(np.asarray(x), np.asarray(y), fmt, label=label, linewidth=1.4)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path
