"""The 4D expression model's data: whole sequences with their label signals, split by identity.

``load_expression_data(config)`` opens the configured dataset (:func:`jaxface.data.open_dataset`,
by default faces4d's six basic expressions, ``basic6``; a prepared 4DFAB release is opened with
``--config.dataset=fourdfab --config.dataset_config=default``: no landmarks are needed), keeps
every ``frame_stride``-th frame of each sequence (the paper samples 4DFAB's 60 fps about every
5 frames), and splits the subjects:
a seeded ``test_fraction`` of them is test (the paper: 27 of 180 unseen subjects), a seeded
``validation.fraction`` of the others is held out of training for the stopping rule, the rest
trains. Per sequence it keeps the neutral face (frame 0), the displacements of every frame from
it (padded to the longest sequence, with a frame mask), the phases read off the motion and the
label signal scaled by the intensity of eq. 6, whose statistics come from the training subjects
only (:mod:`jaxface.express.signal`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from jaxface.data.batches import InMemoryBatches
from jaxface.data.datasets import DatasetView, open_dataset
from jaxface.data.layout import SequenceInfo, load_label_names
from jaxface.data.source import load_sequence
from jaxface.express.signal import (
    IntensityStatistics,
    Phases,
    intensity_curve,
    label_signal,
    mean_deformation,
    motion_magnitude,
    phases_from_motion,
)

__all__ = [
    "ExpressionData",
    "ExpressionSequences",
    "load_expression_data",
    "subject_split",
    "training_batches",
]


@dataclasses.dataclass(frozen=True)
class ExpressionSequences:
    """Whole sequences, padded to a common length ``T``.

    Attributes:
      neutrals: float32 ``[S, N, 3]`` each sequence's frame 0 (the subject's neutral face).
      displacements: float32 ``[S, T, N, 3]`` frame minus neutral (zeros past the end).
      mask: float32 ``[S, T]`` 1 on real frames.
      signal: float32 ``[S, T, C]`` the label signal (zeros past the end).
      labels: int32 ``[S]`` expression index into ``label_names``.
      phases: int32 ``[S, 4]`` onset, apex, offset, end (:class:`jaxface.express.signal.Phases`).
      deformation: float32 ``[S]`` each sequence's ``m`` (eq. 6).
      scale: float32 ``[S]`` each sequence's intensity ``s``.
      subjects: ``[S]`` subject names.
      sequence: int32 ``[S]`` index in the dataset's sequence list.
      label_names: the expression of each label.
    """

    neutrals: np.ndarray
    displacements: np.ndarray
    mask: np.ndarray
    signal: np.ndarray
    labels: np.ndarray
    phases: np.ndarray
    deformation: np.ndarray
    scale: np.ndarray
    subjects: np.ndarray
    sequence: np.ndarray
    label_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def lengths(self) -> np.ndarray:
        """int32 ``[S]`` real frames per sequence."""
        return self.mask.sum(axis=1).astype(np.int32)

    @property
    def num_frames(self) -> int:
        """``T``, the padded length."""
        return int(self.mask.shape[1])

    @property
    def num_classes(self) -> int:
        return len(self.label_names)

    def subset(self, idx: Sequence[int] | np.ndarray) -> ExpressionSequences:
        """The sequences ``idx`` (in that order)."""
        idx = np.asarray(idx, np.int64)
        return dataclasses.replace(self, **{
            f.name: getattr(self, f.name)[idx]
            for f in dataclasses.fields(self) if f.name != "label_names"
        })

    def with_intensity(self, stats: IntensityStatistics) -> ExpressionSequences:
        """The same sequences with ``scale`` and ``signal`` from ``stats`` (eq. 6)."""
        scale = stats.scale(self.deformation, self.labels)
        signal = np.zeros_like(self.signal)
        for i in range(len(self)):
            curve = intensity_curve(self.num_frames, Phases(*self.phases[i].tolist()))
            signal[i] = label_signal(int(self.labels[i]), self.num_classes, curve,
                                     float(scale[i])) * self.mask[i, :, None]
        return dataclasses.replace(self, scale=scale, signal=signal)

    def frames(self) -> np.ndarray:
        """float32 ``[S, T, N, 3]`` the meshes (padding frames equal the neutral)."""
        return self.neutrals[:, None] + self.displacements

    def arrays(self) -> dict[str, np.ndarray]:
        """The training arrays: ``signal [S, T, C]``, ``displacement [S, T, N, 3]``, ``mask
        [S, T]``."""
        return {"signal": self.signal, "displacement": self.displacements, "mask": self.mask}


@dataclasses.dataclass
class ExpressionData:
    """One run's data.

    Attributes:
      view: the dataset.
      train: training sequences (training subjects minus the validation ones).
      validation: held-out training subjects' sequences (``None`` without validation).
      test: the unseen test subjects' sequences.
      stats: the intensity statistics of the training sequences.
    """

    view: DatasetView
    train: ExpressionSequences
    validation: ExpressionSequences | None
    test: ExpressionSequences | None
    stats: IntensityStatistics


def subject_split(subjects: Sequence[str], test_fraction: float, validation_fraction: float,
                  seed: int) -> tuple[list[str], list[str], list[str]]:
    """Identity-independent split: ``(train, validation, test)`` subject names, each sorted.

    A seeded permutation of the sorted names gives the test subjects first
    (``round(test_fraction * n)``, at least one), then the validation subjects
    (``round(validation_fraction * rest)``, at least one when the fraction is positive).

    Raises:
      ValueError: fractions outside ``[0, 1)`` or no training subject left.
    """
    names = sorted(set(subjects))
    for what, f in (("test_fraction", test_fraction), ("validation.fraction",
                                                        validation_fraction)):
        if not 0.0 <= f < 1.0:
            raise ValueError(f"{what} must be in [0, 1), got {f}")
    order = [names[i] for i in np.random.default_rng([seed, 23]).permutation(len(names))]
    n_test = max(1, round(test_fraction * len(names))) if test_fraction > 0 else 0
    rest = order[n_test:]
    n_val = max(1, round(validation_fraction * len(rest))) if validation_fraction > 0 else 0
    if len(rest) - n_val < 1:
        raise ValueError(f"{len(names)} subjects leave none for training with test_fraction="
                         f"{test_fraction} and validation.fraction={validation_fraction}")
    return sorted(rest[n_val:]), sorted(rest[:n_val]), sorted(order[:n_test])


def _load_sequences(view: DatasetView, infos: Sequence[SequenceInfo], label_names: tuple[str, ...],
                    frame_stride: int, num_frames: int) -> ExpressionSequences:
    """Reads, sub-samples and pads sequences (intensity 1 until :meth:`with_intensity`)."""
    s, n = len(infos), view.vertices.shape[0]
    c = len(label_names)
    out = {
        "neutrals": np.zeros((s, n, 3), np.float32),
        "displacements": np.zeros((s, num_frames, n, 3), np.float32),
        "mask": np.zeros((s, num_frames), np.float32),
        "phases": np.zeros((s, 4), np.int32),
        "deformation": np.zeros(s, np.float32),
    }
    labels = np.zeros(s, np.int32)
    for i, info in enumerate(infos):
        frames = load_sequence(view.source, info)["vertices"][::frame_stride][:num_frames]
        frames = np.asarray(frames, np.float32)
        length = len(frames)
        out["neutrals"][i] = frames[0]
        out["displacements"][i, :length] = frames - frames[:1]
        out["mask"][i, :length] = 1.0
        out["phases"][i] = phases_from_motion(motion_magnitude(frames)).as_array()
        out["deformation"][i] = mean_deformation(frames)
        labels[i] = label_names.index(info.expression)
    seqs = ExpressionSequences(
        **out, signal=np.zeros((s, num_frames, c), np.float32), labels=labels,
        scale=np.ones(s, np.float32), subjects=np.asarray([x.subject for x in infos]),
        sequence=np.asarray([x.index for x in infos], np.int32), label_names=label_names,
    )
    return seqs


def load_expression_data(config) -> ExpressionData:
    """Loads the configured dataset, split by identity, with label signals.

    Args:
      config: an express config (``dataset``, ``dataset_config``, ``data_dir``,
        ``dataset_version``, ``frame_stride``, ``max_frames``, ``test_fraction``,
        ``validation.fraction``, ``intensity.min_scale``, ``seed``).

    Raises:
      ValueError: bad fractions, or an expression without training sequences.
    """
    view = open_dataset(config, verbose=False, require_landmarks=False)
    label_names = load_label_names(view.path)
    train_s, val_s, test_s = subject_split(
        [s.subject for s in view.sequences], config.test_fraction, config.validation.fraction,
        config.seed)
    stride = int(config.frame_stride)
    if stride < 1:
        raise ValueError(f"frame_stride must be >= 1, got {stride}")
    longest = max(-(-s.length // stride) for s in view.sequences)
    num_frames = min(longest, config.max_frames) if config.max_frames else longest

    def part(names: list[str]) -> ExpressionSequences | None:
        chosen = set(names)
        infos = [s for s in view.sequences if s.subject in chosen]
        return _load_sequences(view, infos, label_names, stride, num_frames) if infos else None

    train = part(train_s)
    stats = IntensityStatistics.fit(train.deformation, train.labels, len(label_names),
                                    config.intensity.min_scale)
    validation, test = part(val_s), part(test_s)
    return ExpressionData(
        view=view,
        train=train.with_intensity(stats),
        validation=None if validation is None else validation.with_intensity(stats),
        test=None if test is None else test.with_intensity(stats),
        stats=stats,
    )


def training_batches(config, sequences: ExpressionSequences) -> InMemoryBatches:
    """The device batches of the training sequences (``config.optim.batch_size``)."""
    return InMemoryBatches(sequences.arrays(), config.optim.batch_size, seed=config.seed,
                           what="training sequences")
