"""Per-vertex reconstruction errors in millimetres, their summaries and result tables.

Meshes are in metres; the reported error of a vertex is the Euclidean distance between its
predicted and ground-truth positions times 1000 (mm). Results are reported as
``mean ± std`` over all vertices of all evaluated meshes, plus the median, and the
cumulative distribution of the per-vertex errors.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "cumulative_curve",
    "format_results_table",
    "per_vertex_errors_mm",
    "summarize",
    "write_results",
]


def per_vertex_errors_mm(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Euclidean distance of each predicted vertex to its target, in millimetres.

    Args:
      pred: float ``[..., N, 3]`` predicted vertices (metres).
      target: float ``[..., N, 3]`` ground-truth vertices (metres).

    Returns:
      float64 ``[..., N]`` errors in mm (``1000 * ||pred - target||``).

    Examples:
      >>> per_vertex_errors_mm(np.array([[0.003, 0.004, 0.0]]), np.zeros((1, 3)))
      array([5.])
    """
    pred = np.asarray(pred, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if pred.shape != target.shape or pred.ndim < 2 or pred.shape[-1] != 3:
        raise ValueError(
            f"pred and target must share a shape [..., N, 3]; got {pred.shape}, {target.shape}"
        )
    return 1000.0 * np.linalg.norm(pred - target, axis=-1)


def summarize(errors: np.ndarray) -> dict[str, float | int]:
    """Mean, standard deviation (population, ddof=0), median and count of errors.

    Args:
      errors: float array of any shape (e.g. ``[num_meshes, N]`` per-vertex errors in mm).

    Returns:
      ``{"mean": float, "std": float, "median": float, "count": int}``; NaN statistics for
      an empty array.

    Examples:
      >>> summarize(np.array([1.0, 2.0, 3.0, 6.0]))
      {'mean': 3.0, 'std': 1.8708286933869707, 'median': 2.5, 'count': 4}
    """
    flat = np.asarray(errors, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        return {"mean": math.nan, "std": math.nan, "median": math.nan, "count": 0}
    return {
        "mean": float(np.mean(flat)),
        "std": float(np.std(flat)),
        "median": float(np.median(flat)),
        "count": int(flat.size),
    }


def cumulative_curve(
    errors: np.ndarray, max_mm: float = 3.0, num: int = 301
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of errors at or below each threshold (the empirical CDF).

    Args:
      errors: float array of any shape, in mm.
      max_mm: largest threshold.
      num: number of thresholds, evenly spaced on ``[0, max_mm]``.

    Returns:
      ``(thresholds [num], fraction [num])``, float64; ``fraction[i]`` is the fraction of
      errors ``<= thresholds[i]`` (non-decreasing, in [0, 1]).
    """
    if num < 1 or not max_mm >= 0:
        raise ValueError(f"need num >= 1 and max_mm >= 0, got {num}, {max_mm}")
    flat = np.sort(np.asarray(errors, dtype=np.float64).reshape(-1))
    thresholds = np.linspace(0.0, float(max_mm), int(num))
    if flat.size == 0:
        return thresholds, np.zeros_like(thresholds)
    counts = np.searchsorted(flat, thresholds, side="right")
    return thresholds, counts / flat.size


def _cell(summary: Mapping[str, float] | None, decimals: int, median: bool) -> str:
    if summary is None:
        return "–"
    text = f"{summary['mean']:.{decimals}f} ± {summary['std']:.{decimals}f}"
    if median:
        text += f" ({summary['median']:.{decimals}f})"
    return text


def format_results_table(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    protocols: Sequence[str] | None = None,
    *,
    decimals: int = 2,
    median: bool = False,
    method_header: str = "Method",
) -> str:
    """Formats ``{method: {protocol: summary}}`` as a Markdown table of ``mean ± std``.

    One row per method (in the mapping's order) and one column per protocol; missing
    entries are shown as "–".

    Args:
      results: per method and protocol, a :func:`summarize` dictionary.
      protocols: column order; defaults to the protocols in order of first appearance.
      decimals: digits after the decimal point.
      median: also show the median in parentheses.
      method_header: header of the first column.

    Returns:
      The Markdown table, ending with a newline.

    Examples:
      >>> s = {"mean": 0.5, "std": 0.25, "median": 0.4, "count": 10}
      >>> print(format_results_table({"PCA-38": {"Expr": s}}), end="")
      | Method | Expr |
      |---|---|
      | PCA-38 | 0.50 ± 0.25 |
    """
    if protocols is None:
        protocols = []
        for per_protocol in results.values():
            protocols.extend(p for p in per_protocol if p not in protocols)
    lines = [
        "| " + " | ".join([method_header, *protocols]) + " |",
        "|" + "---|" * (len(protocols) + 1),
    ]
    for method, per_protocol in results.items():
        cells = [_cell(per_protocol.get(p), decimals, median) for p in protocols]
        lines.append("| " + " | ".join([method, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write_results(
    results: Mapping[str, Mapping[str, Mapping[str, float]]],
    path: str | os.PathLike,
    protocols: Sequence[str] | None = None,
    *,
    decimals: int = 2,
    median: bool = False,
    title: str | None = None,
) -> tuple[Path, Path]:
    """Writes a results table as Markdown (``path``) and the raw summaries as JSON.

    Args:
      results: ``{method: {protocol: summary}}`` (see :func:`format_results_table`).
      path: the Markdown file; the JSON file is the same path with suffix ``.json``.
      protocols: column order of the Markdown table.
      decimals: digits after the decimal point in the Markdown table.
      median: also show the median in the Markdown table.
      title: optional heading written above the table.

    Returns:
      ``(markdown_path, json_path)``.
    """
    md_path = Path(path)
    json_path = md_path.with_suffix(".json")
    md_path.parent.mkdir(parents=True, exist_ok=True)
    table = format_results_table(results, protocols, decimals=decimals, median=median)
    md_path.write_text((f"# {title}\n\n" if title else "") + table)
    plain = {
        method: {
            protocol: {key: (int(v) if key == "count" else float(v)) for key, v in s.items()}
            for protocol, s in per_protocol.items()
        }
        for method, per_protocol in results.items()
    }
    json_path.write_text(json.dumps(plain, indent=2) + "\n")
    return md_path, json_path
