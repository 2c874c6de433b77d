"""Motion3DGAN training data: neutral -> apex landmark motions as points on the SRVF sphere.

From a prepared mesh-sequence dataset with 68 landmarks per frame (``jaxface.data.pipeline``):

1. every frame's landmarks are S2D-normalised (centred, unit Frobenius norm;
   :func:`jaxface.data.landmarks.normalize_landmarks`);
2. each sequence gives its forward (``0 -> apex``) and backward (``T-1 -> apex``, the tail read in
   reverse) neutral -> apex sub-sequences, each arc-length resampled to 30 frames
   (:func:`jaxface.data.subsequences.extract_subsequences`);
3. each sub-sequence becomes its SRVF ``q`` ``[30, 204]`` (:func:`jaxface.manifold.srvf`), a point
   of the unit sphere, and its length ``L`` (the "intensity" that
   :func:`jaxface.manifold.srvf_inverse` needs to restore the amplitude). The normalised
   neutral landmarks (frame 0) are kept too, so ``srvf_inverse(q, neutral, L)`` reconstructs
   the landmark sequence.

Splits (:func:`split_motions`):

* ``"first_sample"`` (the paper's Table 3 protocol, "the first expression sample of each identity
  forms the test set"): for every (subject, expression) the first sub-sequence in source order
  goes to test. With the two sub-sequences per sequence of the procedural data this is the
  forward one, so the test set holds one sample per (subject, expression) (144 on the CoMA-scale
  set, as in the paper) and training keeps the backward ones.
* ``"held_out_subjects"``: every motion of the last third of the subjects (sorted by name, at
  least one) is test and the others' are training, so the test subjects are unseen identities
  (a stricter protocol than the paper's; 4 of 12 subjects on the CoMA-scale set).
* ``"none"``: every sub-sequence is training data (for the generation models, which are not
  evaluated).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator, Sequence

import jax
import numpy as np

from jaxface.data import pipeline
from jaxface.data.subsequences import SubSequence, dataset_subsequences
from jaxface.manifold import srvf

__all__ = [
    "SPLIT_RULES",
    "MotionSet",
    "label_intensities",
    "load_motions",
    "load_motion_splits",
    "motions_from_subsequences",
    "open_motion_dataset",
    "split_motions",
]

SPLIT_RULES = ("first_sample", "held_out_subjects", "none")


@dataclasses.dataclass(frozen=True)
class MotionSet:
    """Resampled neutral -> apex landmark motions and their SRVFs.

    Attributes:
      q: float32 ``[S, T, D]`` SRVFs on the unit sphere (``D = 3 * num_landmarks``).
      labels: int32 ``[S]`` expression labels.
      landmarks: float32 ``[S, T, K, 3]`` normalised, resampled landmark sequences.
      neutral: float32 ``[S, K, 3]`` normalised neutral landmarks (``landmarks[:, 0]``).
      intensity: float32 ``[S]`` SRVF lengths ``L`` (``srvf_inverse(q, neutral, L)`` restores
        ``landmarks``).
      sequence: int32 ``[S]`` index of the source sequence in the dataset's ``sequences.json``.
      start: int32 ``[S]`` source frame (position in its sequence) of the neutral end.
      stop: int32 ``[S]`` source frame of the apex.
      subjects: ``[S]`` subject names.
      expressions: ``[S]`` expression names.
      names: ``[S]`` sub-sequence names ``<subject>_<expression>_from_<a>_to_<b>``.
      label_names: the expression name of every label (index = label).
    """

    q: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    neutral: np.ndarray
    intensity: np.ndarray
    sequence: np.ndarray
    start: np.ndarray
    stop: np.ndarray
    subjects: np.ndarray
    expressions: np.ndarray
    names: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.q.shape[0])

    @property
    def reversed(self) -> np.ndarray:
        """bool ``[S]``: whether each sub-sequence reads its source backwards."""
        return self.start > self.stop

    @property
    def num_classes(self) -> int:
        """Number of expression labels."""
        return len(self.label_names)

    def subset(self, idx: Sequence[int] | np.ndarray) -> MotionSet:
        """The motions ``idx`` (in that order)."""
        idx = np.asarray(idx, np.int64)
        fields = {
            f.name: getattr(self, f.name)[idx]
            for f in dataclasses.fields(self)
            if f.name != "label_names"
        }
        return MotionSet(**fields, label_names=self.label_names)

    def batch(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The training batch of motions ``idx``: ``q [B, T, D]``, ``label [B]``, ``landmarks
        [B, T, K, 3]``, ``neutral [B, K, 3]``."""
        return {
            "q": self.q[idx],
            "label": self.labels[idx],
            "landmarks": self.landmarks[idx],
            "neutral": self.neutral[idx],
        }

    def epoch(
        self, batch_size: int, rng: np.random.Generator, keys: Sequence[str] | None = None
    ) -> Iterator[dict[str, np.ndarray]]:
        """Shuffled full batches of one epoch (the last partial batch is dropped).

        Args:
          batch_size: motions per batch.
          rng: the epoch's generator (its permutation fixes the batches).
          keys: batch entries to keep (default: all of :meth:`batch`).
        """
        order = rng.permutation(len(self))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            batch = self.batch(order[start : start + batch_size])
            yield batch if keys is None else {k: batch[k] for k in keys}


_srvf_batch = jax.jit(lambda c: srvf(c, time_axis=1, return_length=True))


def motions_from_subsequences(
    subs: Sequence[SubSequence], sequence: Sequence[int], label_names: Sequence[str]
) -> MotionSet:
    """Computes the SRVFs of resampled sub-sequences.

    Args:
      subs: sub-sequences with normalised landmarks ``[T, K, 3]``.
      sequence: per sub-sequence, its source sequence index.
      label_names: expression name of every label.

    Returns:
      The :class:`MotionSet`.
    """
    if not subs:
        raise ValueError("no sub-sequences: every sequence is shorter than min_frames")
    landmarks = np.stack([s.landmarks for s in subs]).astype(np.float32)
    q, length = _srvf_batch(landmarks)
    return MotionSet(
        q=np.asarray(q, np.float32),
        labels=np.asarray([s.label for s in subs], np.int32),
        landmarks=landmarks,
        neutral=landmarks[:, 0].copy(),
        intensity=np.asarray(length, np.float32),
        sequence=np.asarray(sequence, np.int32),
        start=np.asarray([s.start for s in subs], np.int32),
        stop=np.asarray([s.stop for s in subs], np.int32),
        subjects=np.asarray([s.subject for s in subs], str),
        expressions=np.asarray([s.expression for s in subs], str),
        names=np.asarray([s.name for s in subs], str),
        label_names=tuple(label_names),
    )


def _label_names(dataset: str, sequences: Sequence[pipeline.SequenceInfo]) -> tuple[str, ...]:
    with open(os.path.join(dataset, pipeline.SEQUENCES_FILE)) as f:
        names = json.load(f).get("expressions")
    if names:
        return tuple(names)
    by_label = {s.label: s.expression for s in sequences}
    return tuple(by_label[k] for k in range(max(by_label) + 1))


def load_motions(
    dataset: str, *, num_frames: int = 30, min_frames: int = 10, source=None
) -> MotionSet:
    """All neutral -> apex motions of a prepared dataset (sequence by sequence, forward first).

    Args:
      dataset: a prepared dataset folder with a ``landmarks`` feature.
      num_frames: frames after arc-length resampling (30).
      min_frames: minimum source frames of a sub-sequence (10, as the official data list).
      source: an already opened ``frames`` source of ``dataset`` (default: opened here).

    Returns:
      The :class:`MotionSet`.
    """
    sequences = pipeline.load_sequences(dataset)
    source = pipeline.open_source(dataset) if source is None else source
    subs, seq_index = [], []
    for seq in sequences:
        cut = dataset_subsequences(
            source, [seq], normalize=True, num_frames=num_frames, min_frames=min_frames
        )
        subs += cut
        seq_index += [seq.index] * len(cut)
    return motions_from_subsequences(subs, seq_index, _label_names(dataset, sequences))


def open_motion_dataset(config) -> str:
    """The folder of the configured prepared dataset, preparing the procedural set when missing.

    Args:
      config: with ``dataset`` (e.g. ``"faces4d"``), ``dataset_config`` (``"coma_scale"``,
        ``"small"``, ``"tiny"``) and ``data_dir``.

    Returns:
      ``<data_dir>/<dataset>/<config>/<version>``.

    Raises:
      FileNotFoundError: a licence-gated dataset that has not been prepared.
    """
    from jaxface.commands.prepare import prepare_dataset

    data_dir = os.path.expanduser(config.data_dir)
    try:
        return pipeline.dataset_dir(config.dataset, data_dir=data_dir, config=config.dataset_config)
    except FileNotFoundError:
        if config.dataset != "faces4d":
            raise
        return prepare_dataset(
            "faces4d", data_dir=data_dir, config=config.dataset_config, verbose=False
        )


def split_motions(motions: MotionSet, rule: str = "first_sample") -> tuple[MotionSet, MotionSet]:
    """Deterministic train/test split (see the module docstring).

    Args:
      motions: all motions, in source order (as :func:`load_motions` returns them).
      rule: one of :data:`SPLIT_RULES`.

    Returns:
      ``(train, test)``; ``test`` is empty for ``"none"``.
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"unknown split rule {rule!r}; choose from {', '.join(SPLIT_RULES)}")
    if rule == "none":
        return motions, motions.subset(np.zeros(0, np.int64))
    if rule == "held_out_subjects":
        names = sorted(set(motions.subjects.tolist()))
        if len(names) < 2:
            raise ValueError(
                f"split rule 'held_out_subjects' needs at least 2 subjects, got {len(names)}"
            )
        held_out = names[len(names) - max(1, len(names) // 3):]
        is_test = np.isin(motions.subjects, held_out)
        return motions.subset(np.flatnonzero(~is_test)), motions.subset(np.flatnonzero(is_test))
    seen: set[tuple[str, str]] = set()
    test = []
    keys = zip(motions.subjects.tolist(), motions.expressions.tolist(), strict=True)
    for i, key in enumerate(keys):
        if key not in seen:
            seen.add(key)
            test.append(i)
    is_test = np.zeros(len(motions), bool)
    is_test[test] = True
    return motions.subset(np.flatnonzero(~is_test)), motions.subset(np.flatnonzero(is_test))


def load_motion_splits(
    dataset: str, rule: str = "first_sample", *, num_frames: int = 30, min_frames: int = 10
) -> tuple[MotionSet, MotionSet]:
    """:func:`load_motions` followed by :func:`split_motions`; returns ``(train, test)``."""
    return split_motions(
        load_motions(dataset, num_frames=num_frames, min_frames=min_frames), rule
    )


def label_intensities(motions: MotionSet, statistic: str = "median") -> np.ndarray:
    """Per-label SRVF length used to give generated motions their amplitude.

    A generated SRVF has unit norm; :func:`jaxface.manifold.srvf_inverse` needs a length. The
    official code uses one hand-set constant (0.2); here each label gets the median (or mean)
    length of its training motions, so e.g. a wide mouth opening keeps a larger amplitude than an
    eyebrow raise. Labels without training motions get the overall statistic.

    Args:
      motions: training motions.
      statistic: ``"median"`` or ``"mean"``.

    Returns:
      float32 ``[num_classes]``.
    """
    reduce = {"median": np.median, "mean": np.mean}[statistic]
    overall = float(reduce(motions.intensity))
    out = np.full(motions.num_classes, overall, np.float32)
    for k in range(motions.num_classes):
        chosen = motions.intensity[motions.labels == k]
        if chosen.size:
            out[k] = reduce(chosen)
    return out
