"""Training/evaluation pairs for S2D-Dec: (neutral, expressive frame, landmark displacement).

Every frame of a sequence is paired with the sequence's first frame, taken as its neutral face
(as the official evaluation does). The decoder input is the S2D landmark displacement:
``normalize(landmarks(frame)) − normalize(landmarks(neutral))`` flattened xyz-interleaved to
204 values; the target is the dense displacement ``frame − neutral`` in metres.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jaxface.data.landmarks import LandmarkDefinition, extract_landmarks, landmark_displacement

__all__ = ["PairTransform", "S2DFrames", "S2DPairs", "make_pairs"]


@dataclass(frozen=True)
class S2DPairs:
    """Frames of many sequences paired with each sequence's neutral face.

    Attributes:
      neutrals: float32 ``[S, N, 3]``, the first frame of each sequence.
      targets: float32 ``[M, N, 3]``, the expressive frames.
      sequence: int32 ``[M]``, the sequence (row of ``neutrals``) of each frame.
      landmark_displacement: float32 ``[M, 204]``, the decoder input.
      target_landmarks: float32 ``[M, 68, 3]``, landmarks of each frame (metres).
      neutral_landmarks: float32 ``[S, 68, 3]``.
      subjects: per sequence, the subject name.
      expressions: per sequence, the expression name.
    """

    neutrals: np.ndarray
    targets: np.ndarray
    sequence: np.ndarray
    landmark_displacement: np.ndarray
    target_landmarks: np.ndarray
    neutral_landmarks: np.ndarray
    subjects: tuple[str, ...]
    expressions: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self.targets.shape[1])

    def displacements(self, idx: np.ndarray | slice = slice(None)) -> np.ndarray:
        """float32 ``[m, N, 3]`` dense displacements ``target − neutral`` of frames ``idx``."""
        return self.targets[idx] - self.neutrals[self.sequence[idx]]

    def batch(self, idx: np.ndarray, with_meshes: bool = False) -> dict[str, np.ndarray]:
        """The batch of frames ``idx``: ``landmark_displacement [B, 204]`` and
        ``displacement [B, N, 3]``; with ``with_meshes`` also ``neutral`` and ``target``
        ``[B, N, 3]``."""
        out = {
            "landmark_displacement": self.landmark_displacement[idx],
            "displacement": self.displacements(idx),
        }
        if with_meshes:
            out["neutral"] = self.neutrals[self.sequence[idx]]
            out["target"] = self.targets[idx]
        return out

    def arrays(self, with_meshes: bool = False) -> dict[str, np.ndarray]:
        """Every frame's batch entries (what :class:`jaxface.data.batches.InMemoryBatches`
        holds): ``landmark_displacement [M, 204]`` and ``displacement [M, N, 3]``; with
        ``with_meshes`` also ``neutral`` and ``target`` ``[M, N, 3]``."""
        return self.batch(np.arange(len(self)), with_meshes)


@dataclass(frozen=True)
class S2DFrames:
    """Training frames of a prepared dataset referenced by example index (not loaded).

    The streaming form of :class:`S2DPairs`: batches read each frame from the dataset and derive
    its pair with :class:`PairTransform`.

    Attributes:
      examples: int64 ``[M]`` example indices of the frames in the ``frames`` split.
      sequence: int32 ``[M]`` row of ``neutrals`` of each frame.
      sequence_ids: int64 ``[S]`` the dataset's sequence index of each row.
      neutrals: float32 ``[S, N, 3]`` each sequence's first frame.
      neutral_landmarks: float32 ``[S, 68, 3]``.
    """

    examples: np.ndarray
    sequence: np.ndarray
    sequence_ids: np.ndarray
    neutrals: np.ndarray
    neutral_landmarks: np.ndarray

    def __len__(self) -> int:
        return int(self.examples.shape[0])


class PairTransform:
    """Turns a dataset example (one frame) into its S2D training pair, on the host.

    Args:
      frames: the frames' sequence rows and neutral faces.
      landmarks: how to read the 68 landmarks off a mesh.
      faces: int ``[F, 3]`` template faces.
      with_meshes: also return ``neutral`` and ``target``.

    Calling it on an example with ``vertices [N, 3]`` and ``sequence`` (the dataset's sequence
    index) returns the entries of :meth:`S2DPairs.batch` for that frame.
    """

    def __init__(self, frames: S2DFrames, landmarks: LandmarkDefinition, faces: np.ndarray,
                 with_meshes: bool = False):
        self.frames = frames
        self.landmarks = landmarks
        self.faces = np.asarray(faces)
        self.with_meshes = with_meshes
        self.row = {int(s): i for i, s in enumerate(frames.sequence_ids.tolist())}

    def __call__(self, example: Mapping[str, Any]) -> dict[str, np.ndarray]:
        row = self.row[int(example["sequence"])]
        target = np.asarray(example["vertices"], np.float32)
        neutral = self.frames.neutrals[row]
        lms = np.asarray(extract_landmarks(target[None], self.landmarks, self.faces), np.float32)
        out = {
            "landmark_displacement": np.asarray(
                landmark_displacement(lms, self.frames.neutral_landmarks[row][None]),
                np.float32).reshape(-1),
            "displacement": target - neutral,
        }
        if self.with_meshes:
            out["neutral"] = neutral
            out["target"] = target
        return out


def make_pairs(
    sequences: Sequence[np.ndarray],
    landmarks: LandmarkDefinition,
    faces: np.ndarray | None = None,
    *,
    subjects: Sequence[str] | None = None,
    expressions: Sequence[str] | None = None,
    frame_stride: int = 1,
    include_neutral: bool = False,
) -> S2DPairs:
    """Builds :class:`S2DPairs` from mesh sequences.

    Args:
      sequences: per sequence, float ``[T, N, 3]`` frames (frame 0 is the neutral face).
      landmarks: how to read the 68 landmarks off a mesh.
      faces: int ``[F, 3]``, needed for barycentric landmark definitions.
      subjects, expressions: per-sequence names (default: the sequence number as text).
      frame_stride: keep every ``frame_stride``-th frame (1 keeps all).
      include_neutral: also pair frame 0 with itself.

    Returns:
      The pairs, frames ordered by sequence then time.
    """
    if not sequences:
        raise ValueError("no sequences given")
    n = sequences[0].shape[1]
    neutrals, targets, seq_ids, disp, lm_t, lm_n, kept = [], [], [], [], [], [], []
    for s, frames in enumerate(sequences):
        frames = np.asarray(frames, np.float32)
        if frames.ndim != 3 or frames.shape[1:] != (n, 3):
            raise ValueError(
                f"sequence {s} has shape {frames.shape}; expected [T, {n}, 3] like sequence 0"
            )
        start = 0 if include_neutral else frame_stride
        chosen = frames[start::frame_stride]
        if not len(chosen):
            continue
        lms = np.asarray(extract_landmarks(frames[:1], landmarks, faces), np.float32)
        lmt = np.asarray(extract_landmarks(chosen, landmarks, faces), np.float32)
        kept.append(s)
        neutrals.append(frames[0])
        lm_n.append(lms[0])
        targets.append(chosen)
        lm_t.append(lmt)
        disp.append(np.asarray(landmark_displacement(lmt, lms[0]), np.float32))
        seq_ids.append(np.full(len(chosen), len(neutrals) - 1, np.int32))
    if not kept:
        raise ValueError(f"no frame left with frame_stride={frame_stride}")
    subjects = [str(i) for i in range(len(sequences))] if subjects is None else list(subjects)
    expressions = (
        [str(i) for i in range(len(sequences))] if expressions is None else list(expressions)
    )
    return S2DPairs(
        neutrals=np.stack(neutrals),
        targets=np.concatenate(targets),
        sequence=np.concatenate(seq_ids),
        landmark_displacement=np.concatenate(disp).reshape(-1, 204),
        target_landmarks=np.concatenate(lm_t),
        neutral_landmarks=np.stack(lm_n),
        subjects=tuple(subjects[i] for i in kept),
        expressions=tuple(expressions[i] for i in kept),
    )
