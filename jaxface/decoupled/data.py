"""Labelled face meshes for the decoupled face GAN: identity and (sparse) expression labels.

:func:`load_faces` opens the configured dataset (:func:`jaxface.data.open_dataset`, whatever
version it prepares), reads the protocol's training and test sequences and labels every kept
frame:

* identity: the subject, as a class among the training subjects (all labelled, as in the paper;
  ``labels.identity_fraction`` hides the labels of a fraction of the sequences);
* expression: class 0 is ``neutral``, then the dataset's expression labels. The paper's rule for
  BU-4DFE (``labels.expression = "peak"``) labels each sequence's first and last frame neutral and
  its peak frame (plus ``labels.peak_window`` frames on each side) with the sequence's class; every
  other frame is unlabelled (``-1``). ``"strength"`` labels by displacement instead (see
  :func:`strength_labels`).

The peak is the sequence's recorded apex when the dataset has one, else the frame farthest
(RMS) from the first frame. Every frame also carries its *strength*, its RMS displacement from the
sequence's first frame relative to the peak's, which the decoupling metric's expression embedding
uses for its own (denser) labels.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxface.data.batches import InMemoryBatches
from jaxface.data.datasets import DatasetView, open_dataset
from jaxface.data.layout import SequenceInfo, load_label_names
from jaxface.data.source import load_sequence, load_split_arrays

__all__ = [
    "EXPRESSION_RULES",
    "NEUTRAL",
    "FaceData",
    "LabelledFaces",
    "class_weights",
    "expression_classes",
    "label_probabilities",
    "load_faces",
    "strength_labels",
    "training_batches",
]

NEUTRAL = "neutral"
#: How the GAN's expression labels are chosen (``config.labels.expression``).
EXPRESSION_RULES = ("peak", "strength")


@dataclasses.dataclass
class LabelledFaces:
    """Meshes of one topology with their labels, one row per mesh (``M`` rows).

    Attributes:
      vertices: float32 ``[M, N, 3]`` (metres).
      identity: int32 ``[M]`` identity class (training subject) or ``-1`` (hidden / unseen).
      expression: int32 ``[M]`` expression class or ``-1`` (hidden).
      subject: int32 ``[M]`` the dataset's subject id.
      sequence_class: int32 ``[M]`` the expression class of the frame's sequence.
      strength: float32 ``[M]`` RMS displacement from the sequence's first frame over the peak's.
      peak: bool ``[M]`` the frame is its sequence's peak.
      sequence: int32 ``[M]`` the dataset's sequence index.
      frame: int32 ``[M]`` position in the sequence.
    """

    vertices: np.ndarray
    identity: np.ndarray
    expression: np.ndarray
    subject: np.ndarray
    sequence_class: np.ndarray
    strength: np.ndarray
    peak: np.ndarray
    sequence: np.ndarray
    frame: np.ndarray

    def __len__(self) -> int:
        return int(self.vertices.shape[0])

    def subset(self, rows) -> LabelledFaces:
        """The rows ``rows`` (indices or a boolean mask) of every field."""
        return LabelledFaces(**{f.name: getattr(self, f.name)[rows]
                                for f in dataclasses.fields(self)})

    def arrays(self) -> dict[str, np.ndarray]:
        """What training batches hold: ``vertices``, ``identity``, ``expression``."""
        return {"vertices": self.vertices, "identity": self.identity,
                "expression": self.expression}

    def first_frames(self) -> np.ndarray:
        """float32 ``[M, N, 3]``: each row's sequence's first frame (its neutral face).

        Raises:
          ValueError: a sequence's first frame is not among the rows.
        """
        first = {int(s): i for i, (s, f) in enumerate(zip(self.sequence, self.frame,
                                                          strict=True)) if f == 0}
        missing = sorted(set(int(s) for s in self.sequence) - set(first))
        if missing:
            raise ValueError(f"the first frame of sequences {missing[:5]} is not loaded")
        return self.vertices[[first[int(s)] for s in self.sequence]]


@dataclasses.dataclass
class FaceData:
    """A protocol's labelled training and test meshes.

    Attributes:
      view: the dataset.
      protocol: the protocol name.
      identity_names: subject name of every identity class (the training subjects).
      expression_names: name of every expression class (``neutral`` first).
      train: the training frames, with the GAN's (partly hidden) labels.
      test: the test frames; ``identity`` is ``-1`` for subjects not in training.
      reference: float32 ``[N, 3]`` the dataset's template (the generator's reference mesh).
      scale: RMS of the training meshes' displacement from ``reference`` (metres).
    """

    view: DatasetView
    protocol: str
    identity_names: tuple[str, ...]
    expression_names: tuple[str, ...]
    train: LabelledFaces
    test: LabelledFaces
    reference: np.ndarray
    scale: float

    @property
    def num_identities(self) -> int:
        return len(self.identity_names)

    @property
    def num_expressions(self) -> int:
        return len(self.expression_names)


def expression_classes(label_names) -> tuple[tuple[str, ...], np.ndarray]:
    """The expression classes of a dataset's labels: ``neutral`` first, then the labels.

    Args:
      label_names: the dataset's expression name per label.

    Returns:
      ``(class names, class of every label)``; a label named ``neutral`` maps to class 0.

    Example:
      >>> expression_classes(["smile", "neutral", "frown"])
      (('neutral', 'smile', 'frown'), array([1, 0, 2], dtype=int32))
    """
    names = [NEUTRAL]
    classes = []
    for name in label_names:
        if name == NEUTRAL:
            classes.append(0)
        else:
            classes.append(len(names))
            names.append(name)
    return tuple(names), np.asarray(classes, np.int32)


def _rms(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.mean(np.square(a - b), axis=(-2, -1)))


def _peak(view: DatasetView, seq: SequenceInfo) -> tuple[int, np.ndarray | None]:
    """The peak frame of a sequence, and its frames when they had to be read to find it."""
    if seq.apex is not None and 0 <= seq.apex < seq.length:
        return int(seq.apex), None
    frames = load_sequence(view.source, seq)["vertices"]
    return int(np.argmax(_rms(frames, frames[:1]))), frames


def _sequence_rows(view: DatasetView, seq: SequenceInfo, stride: int, window: int):
    """Reads a sequence's kept frames: every ``stride``-th, the first, the last and the peak
    (with ``window`` frames each side). Returns ``(positions, vertices, peak, strength)``."""
    peak, frames = _peak(view, seq)
    keep = set(range(0, seq.length, stride)) | {0, seq.length - 1}
    keep |= set(range(max(0, peak - window), min(seq.length, peak + window + 1)))
    positions = np.asarray(sorted(keep), np.int64)
    if frames is None:
        wanted = np.union1d(positions, [peak])
        read = load_split_arrays(view.source, seq.start + wanted, features=("vertices",))
        by_position = dict(zip(wanted.tolist(), read["vertices"], strict=True))
        vertices = np.stack([by_position[int(p)] for p in positions])
        peak_mesh = by_position[peak]
    else:
        vertices, peak_mesh = frames[positions], frames[peak]
    vertices = vertices.astype(np.float32)
    first = vertices[0]  # position 0 is always kept
    peak_rms = float(_rms(peak_mesh, first))
    strength = _rms(vertices, first[None]) / max(peak_rms, 1e-12)
    return positions, vertices, peak, strength.astype(np.float32)


def strength_labels(faces: LabelledFaces, strong: float, weak: float) -> np.ndarray:
    """Expression classes by displacement: the sequence's class where ``strength >= strong``,
    neutral (0) where ``strength <= weak``, ``-1`` in between. int32 ``[M]``."""
    if not 0 <= weak < strong:
        raise ValueError(f"labels need 0 <= weak < strong, got weak={weak}, strong={strong}")
    out = np.full(len(faces), -1, np.int32)
    out[faces.strength >= strong] = faces.sequence_class[faces.strength >= strong]
    out[faces.strength <= weak] = 0
    return out


def _load_part(view, sequences, class_of_label, identity_of_subject, *, stride, window, rule,
               strong, weak, hide_identity) -> LabelledFaces:
    parts = []
    for seq in sequences:
        positions, vertices, peak, strength = _sequence_rows(view, seq, stride, window)
        m = len(positions)
        seq_class = int(class_of_label[seq.label])
        if rule == "peak":
            expression = np.full(m, -1, np.int32)
            expression[(positions == 0) | (positions == seq.length - 1)] = 0
            expression[np.abs(positions - peak) <= window] = seq_class
        else:
            expression = np.where(strength >= strong, seq_class,
                                  np.where(strength <= weak, 0, -1)).astype(np.int32)
        ident = identity_of_subject.get(seq.subject_id, -1)
        parts.append(dict(
            vertices=vertices,
            identity=np.full(m, -1 if hide_identity.get(seq.index, False) else ident, np.int32),
            expression=expression,
            subject=np.full(m, seq.subject_id, np.int32),
            sequence_class=np.full(m, seq_class, np.int32),
            strength=strength,
            peak=positions == peak,
            sequence=np.full(m, seq.index, np.int32),
            frame=positions.astype(np.int32),
        ))
    return LabelledFaces(**{k: np.concatenate([p[k] for p in parts]) for k in parts[0]})


def load_faces(config) -> FaceData:
    """Loads the configured protocol's labelled training and test meshes.

    Args:
      config: a :mod:`jaxface.configs.decoupled` config (``dataset*``, ``data_dir``,
        ``protocol``, ``frame_stride``, ``eval_frame_stride``, ``labels``, ``seed``).

    Raises:
      ValueError: an unknown label rule, an empty protocol part, or a bad label fraction.
    """
    lab = config.labels
    if lab.expression not in EXPRESSION_RULES:
        raise ValueError(f"config.labels.expression must be one of {', '.join(EXPRESSION_RULES)}"
                         f", got {lab.expression!r}")
    if not 0.0 < lab.identity_fraction <= 1.0:
        raise ValueError(f"config.labels.identity_fraction must be in (0, 1], got "
                         f"{lab.identity_fraction}")
    view = open_dataset(config)
    split = view.split(config.protocol)
    train_seqs, test_seqs = view.sequences_of(split.train), view.sequences_of(split.test)
    if not train_seqs or not test_seqs:
        raise ValueError(f"protocol {config.protocol!r} of {view.path} has "
                         f"{len(train_seqs)} training and {len(test_seqs)} test sequences; "
                         "both parts are needed")
    names, class_of_label = expression_classes(load_label_names(view.path))
    subjects = sorted({s.subject_id: s.subject for s in train_seqs}.items())
    identity_of_subject = {sid: k for k, (sid, _) in enumerate(subjects)}
    rng = np.random.default_rng([int(config.seed), 17])
    hidden = rng.random(len(train_seqs)) >= lab.identity_fraction
    hide = {s.index: bool(h) for s, h in zip(train_seqs, hidden, strict=True)}
    common = dict(window=int(lab.peak_window), strong=lab.strong, weak=lab.weak)
    train = _load_part(view, train_seqs, class_of_label, identity_of_subject,
                       stride=int(config.frame_stride), rule=lab.expression,
                       hide_identity=hide, **common)
    test = _load_part(view, test_seqs, class_of_label, identity_of_subject,
                      stride=int(config.eval_frame_stride), rule="peak", hide_identity={},
                      **common)
    reference = np.asarray(view.vertices, np.float32)
    scale = float(np.sqrt(np.mean(np.square(train.vertices - reference))))
    return FaceData(view=view, protocol=config.protocol,
                    identity_names=tuple(name for _, name in subjects),
                    expression_names=names, train=train, test=test,
                    reference=reference.astype(np.float32), scale=scale)


def class_weights(labels: np.ndarray, num_classes: int, *, balance: bool = True) -> np.ndarray:
    """Per-class weights of a classification loss for unbalanced labels (King and Zeng, 2001).

    ``w_c = n / (K n_c)`` with ``n`` the labelled examples (label ``>= 0``), ``n_c`` those of
    class ``c`` and ``K`` the classes present; absent classes weigh 0. Without ``balance`` the
    present classes weigh 1.

    Returns:
      float32 ``[num_classes]``.

    Example:
      >>> class_weights(np.array([0, 0, 0, 1, -1]), 3)
      array([0.6666667, 2.       , 0.       ], dtype=float32)
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes].astype(float)
    present = counts > 0
    if not balance:
        return present.astype(np.float32)
    weights = np.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def label_probabilities(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """float32 ``[num_classes]`` frequency of every class among the labelled examples (the
    distribution the generator's labelled codes are drawn from).

    Raises:
      ValueError: no example is labelled.
    """
    labels = np.asarray(labels)
    counts = np.bincount(labels[labels >= 0], minlength=num_classes)[:num_classes]
    if counts.sum() == 0:
        raise ValueError("no labelled example: every label is hidden")
    return (counts / counts.sum()).astype(np.float32)


def training_batches(config, faces: LabelledFaces, *, mesh=None) -> InMemoryBatches:
    """Device batches of ``n_critic x batch_size`` training meshes: each train step's critic
    updates each see their own ``batch_size`` real meshes."""
    o = config.optim
    return InMemoryBatches(faces.arrays(), int(o.n_critic) * int(o.batch_size), mesh=mesh,
                           seed=int(config.seed), what="training meshes")
