"""Motion3DGAN's neutral -> apex sub-sequences of landmark sequences.

A CoMA-style sequence goes neutral -> apex -> neutral. Motion3DGAN learns only neutral -> apex
motions, so each sequence gives up to two sub-sequences:

* forward: frames ``0, 1, ..., apex`` (named ``from_0_to_<apex>``);
* backward: the tail read in reverse, frames ``T-1, T-2, ..., apex`` (``from_<T-1>_to_<apex>``),
  which again goes from a neutral face to the apex.

The apex is the frame whose landmarks are farthest (Euclidean norm over all landmark coordinates)
from frame 0. A sub-sequence is kept only when it has at least ``min_frames`` frames (10 in the
official data list), and is then resampled to ``num_frames`` (30) frames uniformly spaced in arc
length (:func:`jaxface.manifold.resample.resample_arclength_np`), so only the path is kept.

Pass landmarks already normalised the way the model expects (Motion3DGAN centres each frame and
scales it to unit Frobenius norm before building curves); this module does not normalise.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from jaxface.manifold.resample import resample_arclength_np

__all__ = [
    "SubSequence",
    "apex_frame",
    "dataset_subsequences",
    "extract_subsequences",
    "stack_subsequences",
]


@dataclasses.dataclass(frozen=True)
class SubSequence:
    """One resampled neutral -> apex sub-sequence.

    Attributes:
      landmarks: float32 ``[num_frames, L, 3]`` resampled landmarks (frame 0 = the neutral end).
      subject: subject name.
      expression: expression name.
      label: expression class index.
      start: source frame index where the sub-sequence starts (0, or ``T-1`` when backward).
      stop: source frame index of the apex, where it ends (inclusive).
    """

    landmarks: np.ndarray
    subject: str
    expression: str
    label: int
    start: int
    stop: int

    @property
    def reversed(self) -> bool:
        """Whether the sub-sequence reads the source backwards (the tail of the sequence)."""
        return self.start > self.stop

    @property
    def source_length(self) -> int:
        """Number of source frames covered, ``|stop - start| + 1``."""
        return abs(self.stop - self.start) + 1

    @property
    def name(self) -> str:
        """Motion3DGAN's data-list name, ``<subject>_<expression>_from_<start>_to_<stop>``."""
        return f"{self.subject}_{self.expression}_from_{self.start}_to_{self.stop}"


def apex_frame(landmarks: np.ndarray) -> int:
    """Index of the frame farthest from frame 0.

    Args:
      landmarks: ``[T, L, 3]`` (or ``[T, D]``) landmark sequence, ``T >= 1``.

    Returns:
      ``argmax_t ||landmarks[t] - landmarks[0]||`` (first maximum on ties).
    """
    x = np.asarray(landmarks, dtype=np.float64)
    if x.ndim < 2 or x.shape[0] < 1:
        raise ValueError(f"expected a [T, ...] landmark sequence, got shape {x.shape}")
    flat = x.reshape(x.shape[0], -1)
    return int(np.argmax(np.linalg.norm(flat - flat[:1], axis=1)))


def extract_subsequences(
    landmarks: np.ndarray,
    *,
    subject: str,
    expression: str,
    label: int,
    num_frames: int = 30,
    min_frames: int = 10,
) -> list[SubSequence]:
    """The forward and backward neutral -> apex sub-sequences of one sequence.

    Args:
      landmarks: float ``[T, L, 3]`` landmark sequence.
      subject: subject name (metadata).
      expression: expression name (metadata).
      label: expression class index (metadata).
      num_frames: frames after arc-length resampling.
      min_frames: minimum number of source frames (apex included) for a sub-sequence to be kept.

    Returns:
      0, 1 or 2 sub-sequences: forward first, then backward.
    """
    x = np.asarray(landmarks, dtype=np.float32)
    if x.ndim != 3 or x.shape[-1] != 3:
        raise ValueError(f"expected landmarks of shape [T, L, 3], got {x.shape}")
    if min_frames < 2:
        raise ValueError(f"min_frames must be >= 2 (arc-length resampling), got {min_frames}")
    t_max = x.shape[0] - 1
    apex = apex_frame(x)
    out = []
    for start, segment in ((0, x[: apex + 1]), (t_max, x[apex:][::-1])):
        if segment.shape[0] >= min_frames:
            out.append(
                SubSequence(
                    landmarks=resample_arclength_np(segment, num_frames).astype(np.float32),
                    subject=subject,
                    expression=expression,
                    label=int(label),
                    start=start,
                    stop=apex,
                )
            )
    return out


def stack_subsequences(subsequences: Iterable[SubSequence]) -> dict[str, np.ndarray]:
    """Stacks sub-sequences into arrays (e.g. for ``np.savez`` or a training set).

    Args:
      subsequences: sub-sequences with equal landmark shapes.

    Returns:
      ``landmarks`` float32 ``[S, num_frames, L, 3]``; ``label`` int64 ``[S]``; ``start``, ``stop``
      int64 ``[S]``; ``subject``, ``expression``, ``name`` unicode ``[S]``.
    """
    subs = list(subsequences)
    if not subs:
        raise ValueError("no sub-sequences to stack")
    meta: Mapping[str, Sequence] = {
        "label": [s.label for s in subs],
        "start": [s.start for s in subs],
        "stop": [s.stop for s in subs],
    }
    return {
        "landmarks": np.stack([s.landmarks for s in subs]).astype(np.float32),
        **{k: np.asarray(v, dtype=np.int64) for k, v in meta.items()},
        "subject": np.asarray([s.subject for s in subs], dtype=str),
        "expression": np.asarray([s.expression for s in subs], dtype=str),
        "name": np.asarray([s.name for s in subs], dtype=str),
    }


def dataset_subsequences(
    source: Sequence[Mapping],
    sequences: Iterable,
    *,
    normalize: bool = True,
    num_frames: int = 30,
    min_frames: int = 10,
) -> list[SubSequence]:
    """Sub-sequences of every sequence of a prepared dataset that has a ``landmarks`` feature.

    Args:
      source: random-access source of the ``frames`` split
        (:func:`jaxface.data.pipeline.open_source`).
      sequences: the sequences to cut, e.g. ``jaxface.data.pipeline.load_sequences(d)`` filtered
        to a protocol's training subjects (anything with ``indices``, ``subject``,
        ``expression`` and ``label``).
      normalize: centre each frame's landmarks and scale them to unit Frobenius norm first
        (:func:`jaxface.data.landmarks.normalize_landmarks`), as Motion3DGAN does.
      num_frames: frames after resampling.
      min_frames: minimum number of source frames per sub-sequence.

    Returns:
      The sub-sequences, sequence by sequence (forward before backward).
    """
    from jaxface.data.landmarks import normalize_landmarks

    out = []
    for seq in sequences:
        idx = [int(i) for i in seq.indices]
        examples = (
            source.__getitems__(idx)
            if hasattr(source, "__getitems__")
            else [source[i] for i in idx]
        )
        landmarks = np.stack([np.asarray(ex["landmarks"], np.float32) for ex in examples])
        if normalize:
            landmarks = np.asarray(normalize_landmarks(landmarks), np.float32)
        out += extract_subsequences(
            landmarks,
            subject=seq.subject,
            expression=seq.expression,
            label=seq.label,
            num_frames=num_frames,
            min_frames=min_frames,
        )
    return out
