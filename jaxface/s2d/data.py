"""S2D-Dec's data: a protocol's training/test pairs and the device batches training consumes.

``load_protocol(config)`` opens the configured dataset (:func:`jaxface.data.open_dataset`),
reads the protocol's split and builds the test pairs and, depending on ``config.loader``, the
training pairs in memory (``"memory"``) or only their frame index (``"stream"``: every batch is
read from the dataset by grain and turned into pairs on the host). :func:`training_batches`
returns the matching :class:`jaxface.data.batches.Batches`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from jaxface.data.batches import Batches, InMemoryBatches, StreamingBatches
from jaxface.data.datasets import DatasetView, open_dataset
from jaxface.data.landmarks import extract_landmarks
from jaxface.data.layout import SequenceInfo
from jaxface.data.source import load_sequence, load_split_arrays
from jaxface.losses.s2d import landmark_distance_weights
from jaxface.models import SpiralTopology
from jaxface.s2d.model import build_topology
from jaxface.s2d.pairs import PairTransform, S2DFrames, S2DPairs, make_pairs

__all__ = [
    "INNER_LANDMARKS",
    "LOADERS",
    "ProtocolData",
    "covered_pairs",
    "load_pairs",
    "load_protocol",
    "loss_weights",
    "protocol_name",
    "training_batches",
    "validation_sequences",
]

# The 51 inner landmarks (iBUG order: 17 contour points first).
INNER_LANDMARKS = slice(17, 68)
#: How training frames reach the devices (``config.loader``).
LOADERS = ("memory", "stream")


@dataclasses.dataclass
class ProtocolData:
    """Everything one protocol/fold run needs, loaded once.

    Attributes:
      view: the dataset.
      protocol: the protocol name (e.g. ``"identity_fold1"``).
      train: the training pairs, or their frame index when streaming.
      test: the test pairs (``None`` for a training-only run).
      topology: the template's spiral topology.
      validation: pairs of training-part sequences held out of training (``None``: none).
    """

    view: DatasetView
    protocol: str
    train: S2DPairs | S2DFrames
    test: S2DPairs | None
    topology: SpiralTopology
    validation: S2DPairs | None = None


def protocol_name(protocol: str, fold: int) -> str:
    """``("identity", 1)`` → ``"identity_fold1"``; other protocol names pass through."""
    if protocol in ("identity", "expression"):
        return f"{protocol}_fold{fold}"
    return protocol


def load_pairs(view: DatasetView, sequences: Sequence[SequenceInfo],
               frame_stride: int = 1) -> S2DPairs:
    """The S2D pairs of whole sequences (every ``frame_stride``-th frame with frame 0)."""
    frames = [load_sequence(view.source, s)["vertices"] for s in sequences]
    return make_pairs(
        frames, view.landmarks, view.faces,
        subjects=[s.subject for s in sequences],
        expressions=[s.expression for s in sequences],
        frame_stride=frame_stride,
    )


def covered_pairs(view: DatasetView, covered: Mapping[int, Iterable[int]],
                  frame_stride: int = 1) -> S2DPairs:
    """The S2D pairs of chosen frames of chosen sequences.

    Args:
      view: the dataset.
      covered: sequence index -> frame positions (within the sequence) to pair with the
        sequence's frame 0.
      frame_stride: keep every ``frame_stride``-th chosen frame.
    """
    frames, subjects, expressions = [], [], []
    for seq in sorted(covered):
        info = view.sequences[seq]
        keep = sorted(set(covered[seq]) - {0})
        idx = np.asarray([info.start] + [info.start + t for t in keep], np.int64)
        frames.append(load_split_arrays(view.source, idx, features=("vertices",))["vertices"])
        subjects.append(info.subject)
        expressions.append(info.expression)
    return make_pairs(frames, view.landmarks, view.faces, subjects=subjects,
                      expressions=expressions, frame_stride=frame_stride)


def frame_index(view: DatasetView, sequences: Sequence[SequenceInfo],
                frame_stride: int = 1) -> S2DFrames:
    """The :class:`S2DFrames` of whole sequences (the frames :func:`load_pairs` would pair)."""
    if not sequences:
        raise ValueError("no sequences given")
    examples, rows, neutrals, ids = [], [], [], []
    for s in sequences:
        chosen = s.indices[frame_stride::frame_stride]
        if not len(chosen):
            continue
        examples.append(chosen)
        rows.append(np.full(len(chosen), len(ids), np.int32))
        ids.append(s.index)
    if not ids:
        raise ValueError(f"no frame left with frame_stride={frame_stride}")
    first = np.asarray([view.sequences[i].start for i in ids], np.int64)
    neutrals = load_split_arrays(view.source, first, features=("vertices",))["vertices"]
    neutrals = neutrals.astype(np.float32)
    return S2DFrames(
        examples=np.concatenate(examples), sequence=np.concatenate(rows),
        sequence_ids=np.asarray(ids, np.int64), neutrals=neutrals,
        neutral_landmarks=np.asarray(extract_landmarks(neutrals, view.landmarks, view.faces),
                                     np.float32),
    )


def validation_sequences(sequences: Sequence[SequenceInfo], fraction: float,
                         seed: int) -> tuple[list[SequenceInfo], list[SequenceInfo]]:
    """Splits training sequences into ``(train, validation)``: a seeded random ``fraction`` of
    whole sequences (at least one when ``fraction > 0``) is held out, in dataset order.

    Raises:
      ValueError: ``fraction`` outside ``[0, 1)`` or nothing left to train on.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"validation.fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0:
        return list(sequences), []
    count = max(1, round(fraction * len(sequences)))
    if count >= len(sequences):
        raise ValueError(f"validation.fraction {fraction} leaves no training sequence out of "
                         f"{len(sequences)}")
    held = set(np.random.default_rng([seed, 17]).permutation(len(sequences))[:count].tolist())
    return ([s for i, s in enumerate(sequences) if i not in held],
            [s for i, s in enumerate(sequences) if i in held])


def load_protocol(config) -> ProtocolData:
    """Loads the configured protocol's train/validation/test data and the template topology.

    Args:
      config: an S2D config (``dataset``, ``dataset_config``, ``data_dir``, ``protocol``,
        ``fold``, ``frame_stride``, ``eval_frame_stride``, ``loader``, ``topology``,
        ``validation.fraction``, ``seed``).

    Raises:
      ValueError: an unknown ``loader``.
    """
    loader = config.get("loader", "memory")
    if loader not in LOADERS:
        raise ValueError(f"config.loader must be one of {', '.join(LOADERS)}, got {loader!r}")
    view = open_dataset(config)
    protocol = protocol_name(config.protocol, config.fold)
    split = view.split(protocol)
    fraction = config.validation.fraction if "validation" in config else 0.0
    train_seqs, val_seqs = validation_sequences(view.sequences_of(split.train), fraction,
                                                config.seed)
    return ProtocolData(
        view=view,
        protocol=protocol,
        train=(load_pairs(view, train_seqs, config.frame_stride) if loader == "memory"
               else frame_index(view, train_seqs, config.frame_stride)),
        test=load_pairs(view, view.sequences_of(split.test), config.eval_frame_stride),
        topology=build_topology(view.vertices, view.faces, config.topology),
        validation=load_pairs(view, val_seqs, config.eval_frame_stride) if val_seqs else None,
    )


def loss_weights(view: DatasetView, mode: str) -> np.ndarray | None:
    """The ``L_pr`` vertex weights of the template (``None`` when ``mode == "none"``)."""
    if mode == "none":
        return None
    lms = np.asarray(extract_landmarks(view.vertices, view.landmarks, view.faces))
    return landmark_distance_weights(view.vertices, lms[INNER_LANDMARKS], mode=mode)


def training_batches(config, data: ProtocolData, *, with_meshes: bool = False) -> Batches:
    """The device batches of the training pairs (``config.optim.batch_size``, ``config.seed``).

    Batches hold ``landmark_displacement [B, 204]`` and ``displacement [B, N, 3]``; with
    ``with_meshes`` also ``neutral`` and ``target`` ``[B, N, 3]``.
    """
    kwargs = dict(seed=config.seed, what="training frames")
    if isinstance(data.train, S2DPairs):
        return InMemoryBatches(data.train.arrays(with_meshes), config.optim.batch_size, **kwargs)
    transform = PairTransform(data.train, data.view.landmarks, data.view.faces, with_meshes)
    return StreamingBatches(data.view.source, config.optim.batch_size,
                            indices=data.train.examples, transform=transform, **kwargs)
