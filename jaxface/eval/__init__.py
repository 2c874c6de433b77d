"""Evaluation: per-vertex errors in mm, summaries, result tables and cumulative-error plots."""

from jaxface.eval.errors import (
    ErrorDistribution,
    cumulative_curve,
    format_results_table,
    per_vertex_errors_mm,
    summarize,
    write_results,
)
from jaxface.eval.plots import plot_cumulative_errors, plot_curves

__all__ = [
    "ErrorDistribution",
    "cumulative_curve",
    "format_results_table",
    "per_vertex_errors_mm",
    "plot_cumulative_errors",
    "plot_curves",
    "summarize",
    "write_results",
]
