"""Per-vertex reconstruction errors in millimetres, their summaries and result tables.

Meshes are in metres; the reported error of a vertex is the Euclidean distance between its
predicted and ground-truth positions times 1000 (mm). Results are reported as
``mean ± std`` over all vertices of all evaluated meshes, plus the median, and the
cumulative distribution of the per-vertex errors.

:class:`ErrorDistribution` keeps what those reports need of millions of errors in a few
kilobytes (exact count, mean and variance; a 1 µm histogram for the median and the curve), and
pools the distributions of several folds exactly as pooling their errors would.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "ErrorDistribution",
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


@dataclasses.dataclass(frozen=True)
class ErrorDistribution:
    """A compact, poolable record of many non-negative errors (mm).

    Attributes:
      count: number of errors.
      mean: their mean (exact, float64).
      m2: sum of squared deviations from the mean (exact; ``std = sqrt(m2 / count)``).
      counts: int64 ``[K]`` histogram; bin ``k`` holds the errors in
        ``[k * resolution_mm, (k + 1) * resolution_mm)``, the last bin also the maximum.
      resolution_mm: bin width (default 1 µm, below the tables' printed precision).

    The mean and standard deviation are those of the errors themselves; the median is read
    off the histogram (linear within its bin, so within ``resolution_mm`` of
    :func:`numpy.median`), and :meth:`cumulative` is exact at thresholds on bin edges.
    """

    count: int
    mean: float
    m2: float
    counts: np.ndarray
    resolution_mm: float = 1e-3

    @classmethod
    def of(cls, errors: np.ndarray, resolution_mm: float = 1e-3) -> ErrorDistribution:
        """The distribution of ``errors`` (float array of any shape, mm, finite and >= 0).

        Raises:
          ValueError: a negative or non-finite error, or a resolution that is not positive.
        """
        if not resolution_mm > 0:
            raise ValueError(f"resolution_mm must be positive, got {resolution_mm}")
        flat = np.asarray(errors, dtype=np.float64).reshape(-1)
        if flat.size and not (np.all(np.isfinite(flat)) and flat.min() >= 0):
            raise ValueError("errors must be finite and non-negative; got "
                             f"min {np.nanmin(flat)}, {np.count_nonzero(~np.isfinite(flat))} "
                             "non-finite")
        if flat.size == 0:
            return cls(0, math.nan, 0.0, np.zeros(0, np.int64), float(resolution_mm))
        bins = np.floor(flat / resolution_mm).astype(np.int64)
        mean = float(flat.mean())
        return cls(int(flat.size), mean, float(np.sum((flat - mean) ** 2)),
                   np.bincount(bins).astype(np.int64), float(resolution_mm))

    @classmethod
    def pooled(cls, parts: Sequence[ErrorDistribution]) -> ErrorDistribution:
        """The distribution of all the parts' errors together (the parts share a resolution).

        Means and variances combine exactly (Chan et al.'s pairwise update); histograms add.
        """
        parts = [p for p in parts if p.count]
        if not parts:
            return cls.of(np.zeros(0))
        resolution = parts[0].resolution_mm
        if any(p.resolution_mm != resolution for p in parts):
            raise ValueError("can only pool distributions of one resolution, got "
                             f"{sorted({p.resolution_mm for p in parts})}")
        count, mean, m2 = 0, 0.0, 0.0
        for p in parts:
            total = count + p.count
            delta = p.mean - mean
            mean += delta * p.count / total
            m2 += p.m2 + delta * delta * count * p.count / total
            count = total
        counts = np.zeros(max(len(p.counts) for p in parts), np.int64)
        for p in parts:
            counts[: len(p.counts)] += p.counts
        return cls(count, mean, m2, counts, resolution)

    def summary(self) -> dict[str, float | int]:
        """``{"mean", "std", "median", "count"}`` as :func:`summarize` gives for the errors."""
        if self.count == 0:
            return {"mean": math.nan, "std": math.nan, "median": math.nan, "count": 0}
        return {"mean": float(self.mean), "std": float(math.sqrt(self.m2 / self.count)),
                "median": self.quantile(0.5), "count": int(self.count)}

    def quantile(self, q: float) -> float:
        """The ``q``-quantile (0 <= q <= 1), linear within its histogram bin."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"q must lie in [0, 1], got {q}")
        if self.count == 0:
            return math.nan
        below = np.concatenate([[0], np.cumsum(self.counts)])
        rank = q * self.count
        # The bin k with below[k] < rank <= below[k + 1]; rank 0 starts the first filled bin.
        k = max(int(np.searchsorted(below, rank, side="left")) - 1, 0)
        while self.counts[k] == 0:
            k += 1
        inside = (rank - below[k]) / self.counts[k]
        return float((k + min(max(inside, 0.0), 1.0)) * self.resolution_mm)

    def cumulative(self, thresholds: np.ndarray) -> np.ndarray:
        """Fraction of errors below each threshold (float64, shaped like ``thresholds``)."""
        thresholds = np.asarray(thresholds, dtype=np.float64)
        if self.count == 0:
            return np.zeros_like(thresholds)
        below = np.concatenate([[0], np.cumsum(self.counts)])
        edge = np.clip(np.round(thresholds / self.resolution_mm).astype(np.int64), 0,
                       len(self.counts))
        return below[edge] / self.count

    def to_bytes(self) -> bytes:
        """A compressed ``.npz`` of the record (see :meth:`from_bytes`)."""
        buffer = io.BytesIO()
        np.savez_compressed(buffer, count=np.int64(self.count), mean=np.float64(self.mean),
                            m2=np.float64(self.m2), counts=self.counts,
                            resolution_mm=np.float64(self.resolution_mm))
        return buffer.getvalue()

    @classmethod
    def load(cls, path: str | os.PathLike) -> ErrorDistribution:
        """Reads a record written from :meth:`to_bytes`.

        Raises:
          ValueError: the file lacks a field or its histogram disagrees with its count.
        """
        with np.load(path, allow_pickle=False) as f:
            missing = {"count", "mean", "m2", "counts", "resolution_mm"} - set(f.files)
            if missing:
                raise ValueError(f"{path}: not an error distribution (missing {sorted(missing)})")
            out = cls(int(f["count"]), float(f["mean"]), float(f["m2"]),
                      f["counts"].astype(np.int64), float(f["resolution_mm"]))
        if int(out.counts.sum()) != out.count:
            raise ValueError(f"{path}: histogram holds {int(out.counts.sum())} errors, "
                             f"count says {out.count}")
        return out


def cumulative_curve(
    errors: np.ndarray | ErrorDistribution, max_mm: float = 3.0, num: int = 301
) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of errors at or below each threshold (the empirical CDF).

    Args:
      errors: float array of any shape, in mm, or their :class:`ErrorDistribution` (whose
        fractions are those of the errors below each threshold's nearest bin edge).
      max_mm: largest threshold.
      num: number of thresholds, evenly spaced on ``[0, max_mm]``.

    Returns:
      ``(thresholds [num], fraction [num])``, float64; ``fraction[i]`` is the fraction of
      errors ``<= thresholds[i]`` (non-decreasing, in [0, 1]).
    """
    if num < 1 or not max_mm >= 0:
        raise ValueError(f"need num >= 1 and max_mm >= 0, got {num}, {max_mm}")
    thresholds = np.linspace(0.0, float(max_mm), int(num))
    if isinstance(errors, ErrorDistribution):
        return thresholds, errors.cumulative(thresholds)
    flat = np.sort(np.asarray(errors, dtype=np.float64).reshape(-1))
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
