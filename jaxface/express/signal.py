"""The label signal of Potamias et al. (ECCV 2020): what the expression does, and when.

A sequence of ``T`` frames is described by ``e`` ``[T, C]``: the one-hot of its expression
times an intensity curve that is 0 while the face is neutral, rises linearly during the onset,
is 1 at the apex, falls linearly during the offset and is 0 again (Sec. 5.1, Fig. 2), scaled
from ``[0, 1]`` to ``[0, s]`` by the expression's intensity ``s`` (eq. 6):

    s = (clip((m - mu_e) / sigma_e, -1, 1) + 1) / 2

where ``m`` is the sequence's absolute mean deformation from its neutral frame and ``mu_e``,
``sigma_e`` the mean and standard deviation of ``m`` over the training sequences of expression
``e``. So ``s = 0.5`` is a typical performance, 1 one at least a standard deviation stronger.

The paper's 4DFAB sequences carry annotated phases. Ours are read off the motion
(:func:`phases_from_motion`): the onset starts where the per-frame deformation first reaches
10 % of its maximum, the apex where it first reaches 90 %, the offset where it last is above
90 %, and the face is neutral again after the last frame above 10 %.

A user gives the phases (:class:`Phases`, the ``--onset/--apex/--offset`` frames) or draws the
curve (:func:`curve_from_points`).

Example:
  >>> import numpy as np
  >>> np.round(intensity_curve(8, Phases(onset=1, apex=3, offset=4, end=6)), 2).tolist()
  [0.0, 0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0]
  >>> label_signal(1, 3, intensity_curve(4, Phases(0, 2, 3, 4)), scale=0.5)[:, 1].tolist()
  [0.0, 0.25, 0.5, 0.5]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

__all__ = [
    "IntensityStatistics",
    "Phases",
    "curve_from_points",
    "intensity_curve",
    "label_signal",
    "mean_deformation",
    "motion_magnitude",
    "phases_from_motion",
]


@dataclasses.dataclass(frozen=True)
class Phases:
    """The phase boundaries of one expression, as frame positions.

    Attributes:
      onset: the last neutral frame: the intensity rises from here.
      apex: the first frame at full intensity.
      offset: the last frame at full intensity: the intensity falls from here.
      end: the first neutral frame after the expression (may equal the sequence length: the
        sequence ends before the face is neutral again).
    """

    onset: int
    apex: int
    offset: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.onset <= self.apex <= self.offset <= self.end:
            raise ValueError(
                "phases must satisfy 0 <= onset <= apex <= offset <= end, got "
                f"onset={self.onset}, apex={self.apex}, offset={self.offset}, end={self.end}"
            )

    @classmethod
    def from_user(cls, onset: int, apex: int, offset: int, end: int | None = None) -> Phases:
        """Phases from a user's frames; ``end`` defaults to ``offset + (apex - onset)`` (the
        fall lasts as long as the rise)."""
        if end is None:
            end = offset + (apex - onset)
        return cls(onset, apex, offset, end)

    @classmethod
    def default(cls, num_frames: int) -> Phases:
        """The phases used when none are given: onset at 15 %, apex at 40 %, offset at 60 % and
        neutral again at 85 % of the frames.

        Example:
          >>> Phases.default(20)
          Phases(onset=3, apex=8, offset=12, end=17)
        """
        t = num_frames
        return cls(round(0.15 * t), round(0.4 * t), round(0.6 * t), round(0.85 * t))

    def as_array(self) -> np.ndarray:
        """int32 ``[4]``: onset, apex, offset, end."""
        return np.asarray([self.onset, self.apex, self.offset, self.end], np.int32)


def intensity_curve(num_frames: int, phases: Phases) -> np.ndarray:
    """The onset/apex/offset curve in ``[0, 1]``.

    Args:
      num_frames: ``T``.
      phases: the phase boundaries (frames past ``T`` are allowed: the curve is cut).

    Returns:
      float32 ``[T]``.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    t = np.arange(num_frames, dtype=np.float64)
    rise = np.clip((t - phases.onset) / max(phases.apex - phases.onset, 1e-9), 0.0, 1.0)
    fall = np.clip((phases.end - t) / max(phases.end - phases.offset, 1e-9), 0.0, 1.0)
    curve = np.where(t <= phases.offset, rise, fall)
    if phases.apex == phases.onset:
        curve = np.where((t >= phases.apex) & (t <= phases.offset), 1.0, curve)
    return curve.astype(np.float32)


def curve_from_points(num_frames: int, frames: Sequence[float], values: Sequence[float]
                      ) -> np.ndarray:
    """A user-drawn curve: piecewise linear through ``(frames[i], values[i])``.

    Before the first point and after the last the curve keeps their values.

    Args:
      num_frames: ``T``.
      frames: increasing frame positions.
      values: intensities in ``[0, 1]``, one per frame position.

    Returns:
      float32 ``[T]``.

    Raises:
      ValueError: no points, different lengths, frames not increasing, values outside [0, 1].
    """
    frames = np.asarray(frames, np.float64)
    values = np.asarray(values, np.float64)
    if frames.ndim != 1 or frames.shape != values.shape or not len(frames):
        raise ValueError(f"need as many frames as values (at least one), got {frames.shape} "
                         f"and {values.shape}")
    if np.any(np.diff(frames) <= 0):
        raise ValueError(f"curve frames must increase, got {frames.tolist()}")
    if np.any(values < 0) or np.any(values > 1) or not np.all(np.isfinite(values)):
        raise ValueError(f"curve values must be in [0, 1], got {values.tolist()}")
    return np.interp(np.arange(num_frames), frames, values).astype(np.float32)


def label_signal(label: int, num_classes: int, curve: np.ndarray, scale: float = 1.0
                 ) -> np.ndarray:
    """``e`` ``[T, C]``: the one-hot of ``label`` times ``scale * curve``.

    Args:
      label: expression index in ``[0, num_classes)``.
      num_classes: ``C``.
      curve: ``[T]`` intensity curve in ``[0, 1]``.
      scale: the intensity ``s`` in ``[0, 1]`` (eq. 6).
    """
    if not 0 <= label < num_classes:
        raise ValueError(f"label {label} outside [0, {num_classes})")
    if not 0.0 <= scale <= 1.0:
        raise ValueError(f"intensity must be in [0, 1], got {scale}")
    signal = np.zeros((len(curve), num_classes), np.float32)
    signal[:, label] = scale * np.asarray(curve, np.float32)
    return signal


def motion_magnitude(frames: np.ndarray) -> np.ndarray:
    """Per-frame mean vertex distance from frame 0.

    Args:
      frames: ``[T, N, 3]`` one sequence.

    Returns:
      float64 ``[T]`` (0 at frame 0).
    """
    frames = np.asarray(frames, np.float64)
    return np.linalg.norm(frames - frames[:1], axis=-1).mean(axis=-1)


def mean_deformation(frames: np.ndarray) -> float:
    """``m`` of eq. 6: the absolute mean deformation of a sequence from its neutral frame 0
    (mean over frames and vertices of the vertex distance)."""
    return float(motion_magnitude(frames).mean())


def phases_from_motion(magnitude: np.ndarray, low: float = 0.1, high: float = 0.9) -> Phases:
    """The phases of a sequence read off its motion.

    Args:
      magnitude: ``[T]`` per-frame deformation (:func:`motion_magnitude`).
      low: fraction of the maximum below which the face counts as neutral.
      high: fraction of the maximum above which the face counts as at its apex.

    Returns:
      The phases (a motionless sequence gets an all-neutral curve: every boundary at ``T``).
    """
    m = np.asarray(magnitude, np.float64)
    if m.ndim != 1 or not len(m):
        raise ValueError(f"magnitude must be a non-empty [T] array, got shape {m.shape}")
    peak = m.max()
    t = len(m)
    if not np.isfinite(peak) or peak <= 0:
        return Phases(t, t, t, t)
    active = np.flatnonzero(m >= low * peak)
    full = np.flatnonzero(m >= high * peak)
    onset = max(int(active[0]) - 1, 0)
    apex, offset = int(full[0]), int(full[-1])
    end = min(int(active[-1]) + 1, t)
    return Phases(min(onset, apex), apex, offset, max(end, offset))


@dataclasses.dataclass(frozen=True)
class IntensityStatistics:
    """Per-expression mean and standard deviation of ``m`` (eq. 6), from training sequences.

    Attributes:
      mean: float ``[C]`` (``mu_e``).
      std: float ``[C]`` (``sigma_e``).
      min_scale: the smallest intensity given to a real sequence (the paper's ``s`` is in
        ``(0, 1]``; eq. 6 alone can reach 0).
    """

    mean: np.ndarray
    std: np.ndarray
    min_scale: float = 0.05

    @classmethod
    def fit(cls, deformation: np.ndarray, labels: np.ndarray, num_classes: int,
            min_scale: float = 0.05) -> IntensityStatistics:
        """The statistics of training sequences.

        Args:
          deformation: ``[S]`` each sequence's ``m``.
          labels: ``[S]`` each sequence's expression.
          num_classes: ``C``.
          min_scale: see the attribute.

        Raises:
          ValueError: an expression without training sequences.
        """
        deformation = np.asarray(deformation, np.float64)
        labels = np.asarray(labels)
        mean = np.zeros(num_classes)
        std = np.zeros(num_classes)
        for c in range(num_classes):
            values = deformation[labels == c]
            if not len(values):
                raise ValueError(f"expression {c} has no training sequence")
            mean[c], std[c] = values.mean(), values.std()
        return cls(mean, std, min_scale)

    def scale(self, deformation: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Eq. 6: the intensity ``s`` ``[S]`` of sequences with deformations ``m`` ``[S]``."""
        mu = self.mean[np.asarray(labels)]
        sigma = np.maximum(self.std[np.asarray(labels)], 1e-12)
        s = (np.clip((np.asarray(deformation) - mu) / sigma, -1.0, 1.0) + 1.0) / 2.0
        return np.maximum(s, self.min_scale).astype(np.float32)

    def to_json(self) -> dict:
        """A JSON-able form (:meth:`from_json` reads it)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(),
                "min_scale": self.min_scale}

    @classmethod
    def from_json(cls, obj: dict) -> IntensityStatistics:
        """The statistics written by :meth:`to_json`."""
        return cls(np.asarray(obj["mean"], np.float64), np.asarray(obj["std"], np.float64),
                   float(obj["min_scale"]))
