"""Per-vertex normalisation statistics, computed once at prepare time and stored with the data.

CoMA-style models train on ``(vertices - mean) / std`` with per-vertex, per-coordinate ``mean`` and
``std`` of the *training* frames (population std, ``ddof=0``). A prepared dataset stores one
:class:`Stats` per protocol (its ``train`` part) plus ``"all"`` in ``stats.npz``; training reads
them with :func:`load_stats` instead of recomputing.

Sums are accumulated in float64 about a fixed shift (the first frame seen), which keeps
``E[x^2] - E[x]^2`` accurate for metre-scale coordinates with sub-millimetre spread.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping

import numpy as np

from jaxface.files import write_npz

__all__ = [
    "MomentSums",
    "PartMoments",
    "Stats",
    "compute_stats",
    "load_stats",
    "save_stats",
    "stats_names",
]

_SEP = "/"


@dataclasses.dataclass(frozen=True)
class Stats:
    """Per-vertex statistics of a set of meshes.

    Attributes:
      mean: float32 ``[N, 3]`` per-vertex mean.
      std: float32 ``[N, 3]`` per-vertex population standard deviation (may contain zeros).
      count: number of meshes.
    """

    mean: np.ndarray
    std: np.ndarray
    count: int

    def normalize(self, vertices: np.ndarray, eps: float = 1e-8) -> np.ndarray:
        """``(vertices - mean) / max(std, eps)`` for ``vertices`` ``[..., N, 3]``."""
        return (vertices - self.mean) / np.maximum(self.std, eps)

    def denormalize(self, normalized: np.ndarray, eps: float = 1e-8) -> np.ndarray:
        """Inverse of :meth:`normalize`."""
        return normalized * np.maximum(self.std, eps) + self.mean


class MomentSums:
    """Running float64 first and second moments of ``[N, 3]`` arrays.

    Args:
      shift: float ``[N, 3]`` subtracted before accumulating (any fixed reference mesh).
    """

    def __init__(self, shift: np.ndarray):
        self.shift = np.asarray(shift, dtype=np.float64)
        self.sum = np.zeros_like(self.shift)
        self.sum_sq = np.zeros_like(self.shift)
        self.count = 0

    def add_centered(self, count: int, s1: np.ndarray, s2: np.ndarray) -> None:
        """Adds precomputed sums of ``x - shift`` and ``(x - shift)**2`` over ``count`` meshes."""
        self.sum += s1
        self.sum_sq += s2
        self.count += int(count)

    def add(self, vertices: np.ndarray) -> None:
        """Adds meshes ``[..., N, 3]``."""
        d = np.asarray(vertices, np.float64).reshape((-1, *self.shift.shape)) - self.shift
        self.add_centered(d.shape[0], d.sum(0), np.square(d).sum(0))

    def finalize(self) -> Stats:
        """The :class:`Stats` of everything added; raises if nothing was added."""
        if self.count == 0:
            raise ValueError("no meshes were added; statistics are undefined")
        m1 = self.sum / self.count
        var = np.maximum(self.sum_sq / self.count - np.square(m1), 0.0)
        return Stats(
            (self.shift + m1).astype(np.float32), np.sqrt(var).astype(np.float32), self.count
        )


class PartMoments:
    """Moments of several example subsets ("parts") accumulated one sequence at a time.

    Each part is a boolean mask over all examples of the dataset, which is written sequence by
    sequence in order. :meth:`add_sequence` receives a whole sequence and adds its frames to every
    part that contains them, computing each distinct mask's sums only once.

    Args:
      masks: part name -> bool ``[num_examples]``.
      shift: float ``[N, 3]`` reference mesh (see :class:`MomentSums`).
    """

    def __init__(self, masks: Mapping[str, np.ndarray], shift: np.ndarray):
        self.masks = {k: np.asarray(v, bool) for k, v in masks.items()}
        self.sums = {k: MomentSums(shift) for k in self.masks}
        self.shift = np.asarray(shift, np.float64)

    def add_sequence(self, start: int, vertices: np.ndarray) -> None:
        """Adds frames ``start .. start + T - 1`` given as vertices ``[T, N, 3]``."""
        d = np.asarray(vertices, np.float64) - self.shift
        t = d.shape[0]
        total = None
        cache: dict[bytes, tuple[int, np.ndarray, np.ndarray]] = {}
        for name, mask in self.masks.items():
            m = mask[start : start + t]
            if m.shape[0] != t:
                raise ValueError(f"sequence at {start} (+{t}) runs past the {mask.size} examples")
            k = int(m.sum())
            if k == 0:
                continue
            key = m.tobytes()
            if key not in cache:
                if total is None:
                    total = (d.sum(0), np.square(d).sum(0))
                if k == t:
                    cache[key] = (t, *total)
                elif 2 * k <= t:
                    sub = d[m]
                    cache[key] = (k, sub.sum(0), np.square(sub).sum(0))
                else:
                    sub = d[~m]
                    cache[key] = (k, total[0] - sub.sum(0), total[1] - np.square(sub).sum(0))
            self.sums[name].add_centered(*cache[key])

    def finalize(self) -> dict[str, Stats]:
        """Part name -> :class:`Stats` (parts with no examples are left out)."""
        return {k: v.finalize() for k, v in self.sums.items() if v.count}


def compute_stats(vertices: np.ndarray) -> Stats:
    """Direct reference: :class:`Stats` of meshes ``[M, N, 3]`` (float64 numpy)."""
    x = np.asarray(vertices, np.float64)
    return Stats(x.mean(0).astype(np.float32), x.std(0).astype(np.float32), x.shape[0])


def save_stats(path: str | os.PathLike, stats: Mapping[str, Stats]) -> None:
    """Writes named :class:`Stats` to one ``.npz`` (keys ``<name>/mean|std|count``)."""
    arrays = {}
    for name, s in stats.items():
        if _SEP in name:
            raise ValueError(f"stats name {name!r} must not contain {_SEP!r}")
        arrays[f"{name}{_SEP}mean"] = s.mean.astype(np.float32)
        arrays[f"{name}{_SEP}std"] = s.std.astype(np.float32)
        arrays[f"{name}{_SEP}count"] = np.asarray(s.count, np.int64)
    write_npz(path, arrays)


def stats_names(path: str | os.PathLike) -> list[str]:
    """Sorted names stored in a stats ``.npz``."""
    with np.load(path) as z:
        return sorted({k.split(_SEP)[0] for k in z.files})


def load_stats(path: str | os.PathLike, name: str = "interpolation") -> Stats:
    """Reads one named :class:`Stats` from a ``.npz`` written by :func:`save_stats`.

    Args:
      path: the ``stats.npz`` file (in a prepared dataset folder).
      name: a protocol name (statistics of its ``train`` part) or ``"all"``.

    Raises:
      FileNotFoundError: if the file is missing.
      KeyError: naming the stored names when ``name`` is not one of them.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no statistics file at {os.fspath(path)}")
    with np.load(path) as z:
        key = f"{name}{_SEP}mean"
        if key not in z.files:
            names = sorted({k.split(_SEP)[0] for k in z.files})
            raise KeyError(f"{os.fspath(path)} has no statistics {name!r}; stored: {names}")
        return Stats(
            np.array(z[key]), np.array(z[f"{name}{_SEP}std"]), int(z[f"{name}{_SEP}count"])
        )
