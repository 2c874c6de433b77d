"""Motion3DGAN training data: neutral -> apex landmark motions as points on the SRVF sphere.

From a prepared mesh-sequence dataset with 68 landmarks per frame (:mod:`jaxface.data.layout`):

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
from collections.abc import Sequence

import jax
import numpy as np

from jaxface.data.datasets import DatasetView
from jaxface.data.layout import load_label_names, load_sequences
from jaxface.data.source import open_source
from jaxface.data.subsequences import SubSequence, dataset_subsequences
from jaxface.manifold import srvf
from jaxface.s2d import ProtocolData, build_topology, covered_pairs

__all__ = [
    "BATCH_KEYS",
    "SPLIT_RULES",
    "MotionSet",
    "covered_frames",
    "label_intensities",
    "load_motion_splits",
    "load_motions",
    "motions_from_subsequences",
    "s2d_training_data",
    "split_motions",
    "validation_split",
]

SPLIT_RULES = ("first_sample", "held_out_subjects", "none")
#: The entries of a training batch (:meth:`MotionSet.batch`).
BATCH_KEYS = ("q", "label", "landmarks", "neutral")


@dataclasses.dataclass(frozen=True)
class MotionSet:
    """Resampled neutral -> apex landmark motions and their SRVFs.

    Attributes:
      q: float32 ``[S, T, D]`` SRVFs on the unit sphere (``D = 3 * num_landmarks``).
      labels: int32 ``[S]`` expression labels.
      landmarks: float32 ``[S, T, K, 3]`` normalised, resampled landmark sequences.
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
    def neutral(self) -> np.ndarray:
        """float32 ``[S, K, 3]`` normalised neutral landmarks (each motion's first frame)."""
        return self.landmarks[:, 0]

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

    def batch(self, idx: np.ndarray, keys: Sequence[str] = BATCH_KEYS) -> dict[str, np.ndarray]:
        """The training batch of motions ``idx``: ``q [B, T, D]``, ``label [B]``, ``landmarks
        [B, T, K, 3]``, ``neutral [B, K, 3]`` (only the entries in ``keys`` are gathered)."""
        unknown = set(keys) - set(BATCH_KEYS)
        if unknown:
            raise ValueError(f"unknown batch entries {sorted(unknown)}; choose from {BATCH_KEYS}")
        gather = {
            "q": lambda: self.q[idx],
            "label": lambda: self.labels[idx],
            "landmarks": lambda: self.landmarks[idx],
            "neutral": lambda: self.landmarks[idx, 0],
        }
        return {k: gather[k]() for k in keys}

    def arrays(self, keys: Sequence[str] = BATCH_KEYS) -> dict[str, np.ndarray]:
        """Every motion's batch entries ``keys`` (what
        :class:`jaxface.data.batches.InMemoryBatches` holds), see :meth:`batch`."""
        return self.batch(np.arange(len(self)), keys)


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
        intensity=np.asarray(length, np.float32),
        sequence=np.asarray(sequence, np.int32),
        start=np.asarray([s.start for s in subs], np.int32),
        stop=np.asarray([s.stop for s in subs], np.int32),
        subjects=np.asarray([s.subject for s in subs], str),
        expressions=np.asarray([s.expression for s in subs], str),
        names=np.asarray([s.name for s in subs], str),
        label_names=tuple(label_names),
    )


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
    sequences = load_sequences(dataset)
    source = open_source(dataset) if source is None else source
    if len(source) and "landmarks" not in source[0]:
        raise ValueError(f"{dataset}: the frames have no 'landmarks' feature; Motion3DGAN needs "
                         "68 landmarks per frame (for CoMA, prepare it with FLAME's landmark "
                         "embedding)")
    subs, seq_index = [], []
    for seq in sequences:
        cut = dataset_subsequences(
            source, [seq], normalize=True, num_frames=num_frames, min_frames=min_frames
        )
        subs += cut
        seq_index += [seq.index] * len(cut)
    if not subs:
        raise ValueError(f"{dataset}: no neutral -> apex sub-sequence has min_frames={min_frames} "
                         "or more source frames")
    return motions_from_subsequences(subs, seq_index, load_label_names(dataset))


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


def validation_split(motions: MotionSet, fraction: float,
                     seed: int) -> tuple[MotionSet, MotionSet | None]:
    """Holds the training motions of a seeded random ``fraction`` of their source sequences out
    for validation (whole sequences, so no validation frame is also a training frame).

    Returns:
      ``(train, validation)``, both in source order; ``validation`` is ``None`` when
      ``fraction == 0``.

    Raises:
      ValueError: ``fraction`` outside ``[0, 1)`` or nothing left to train on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation.fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return motions, None
    sequences = np.unique(motions.sequence)
    count = max(1, round(fraction * len(sequences)))
    if count >= len(sequences):
        raise ValueError(f"validation.fraction {fraction} leaves no training sequence out of "
                         f"{len(sequences)}")
    chosen = sequences[np.random.default_rng([seed, 17]).permutation(len(sequences))[:count]]
    held = np.isin(motions.sequence, chosen)
    return motions.subset(np.flatnonzero(~held)), motions.subset(np.flatnonzero(held))


def load_motion_splits(
    dataset: str, rule: str = "first_sample", *, num_frames: int = 30, min_frames: int = 10,
    source=None,
) -> tuple[MotionSet, MotionSet]:
    """:func:`load_motions` followed by :func:`split_motions`; returns ``(train, test)``."""
    motions = load_motions(dataset, num_frames=num_frames, min_frames=min_frames, source=source)
    return split_motions(motions, rule)


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


def covered_frames(train: MotionSet) -> dict[int, set[int]]:
    """Source sequence -> the frame positions its training sub-sequences span."""
    covered: dict[int, set[int]] = {}
    for seq, a, b in zip(
        train.sequence.tolist(), train.start.tolist(), train.stop.tolist(), strict=True
    ):
        covered.setdefault(seq, set()).update(range(min(a, b), max(a, b) + 1))
    return covered


def s2d_training_data(view: DatasetView, train: MotionSet, topology_config,
                      frame_stride: int = 1,
                      validation: MotionSet | None = None) -> ProtocolData:
    """S2D-Dec training pairs from the frames the training motions cover.

    For every source sequence of ``train``, the frames spanned by its training sub-sequences are
    paired with the sequence's first frame (its neutral face) and read as S2D pairs
    (:func:`jaxface.s2d.covered_pairs`), so S2D-Dec never sees the test sub-sequences' frames.

    Args:
      view: the dataset.
      train: training motions.
      topology_config: the S2D config's ``topology`` block.
      frame_stride: keep every ``frame_stride``-th covered frame.
      validation: held-out motions whose covered frames become the validation pairs.

    Returns:
      A :class:`jaxface.s2d.ProtocolData` without test pairs.
    """
    val = None if validation is None else covered_pairs(view, covered_frames(validation))
    return ProtocolData(
        view=view, protocol="motion3dgan_train",
        train=covered_pairs(view, covered_frames(train), frame_stride), test=None,
        topology=build_topology(view.vertices, view.faces, topology_config), validation=val,
    )
