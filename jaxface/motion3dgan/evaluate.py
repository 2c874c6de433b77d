"""Table 3 of the paper: expression classification accuracy and FID of generated 4D expressions.

Protocol (paper §4.3):

* An expression classifier, one LSTM layer followed by a fully connected layer with 512 outputs
  (the FID features) and a linear head (:class:`jaxface.models.LSTMExpressionClassifier`), is
  trained on the Motion3DGAN training sub-sequences (landmark sequences).
* The test set holds the first sample of every (subject, expression)
  (:func:`jaxface.motion3dgan.data.split_motions`).
* Three landmark generators are compared: the ground-truth test sequences ("GT lands"),
  Motion3DGAN and the deterministic LSTM baseline. Each generator makes one sequence per test
  sample, with the test sample's label and normalised neutral landmarks (so every label gets as
  many sequences as it has test samples). A Motion3DGAN SRVF is turned into landmarks with the
  median SRVF length of its label's training motions
  (:func:`jaxface.motion3dgan.data.label_intensities`).
* Gen-LM rows classify the generated landmark sequences; Det-LM rows classify landmarks re-read
  from meshes: each frame's landmark displacement goes through a trained S2D-Dec, is added to the
  test subject's neutral mesh, and the 68 landmarks are extracted and normalised again.
* Accuracy is the percentage of sequences classified as their label. FID is the Fréchet distance
  between the 512-d features of a generator's sequences and those of the ground truth of the
  same row (Gen-LM: the GT test landmarks; Det-LM: the landmarks re-read from the S2D-Dec meshes
  of the GT test landmarks).

S2D-Dec for the Det-LM rows is trained with :func:`jaxface.s2d.train_s2d` on the
frames that the Motion3DGAN training sub-sequences cover (each paired with its sequence's first
frame), so it never sees the test sub-sequences' frames; a previous run's S2D-Dec is reused by
pointing ``table3.s2d_workdir`` at its work directory.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.data.datasets import open_dataset
from jaxface.data.landmarks import extract_landmarks, normalize_landmarks
from jaxface.data.source import load_split_arrays
from jaxface.files import write_atomic, write_json, write_npz
from jaxface.losses import frechet_distance
from jaxface.models import LSTMExpressionClassifier, create_model
from jaxface.motion3dgan.applications import decode_meshes, motion_to_landmarks
from jaxface.motion3dgan.baseline import generate_lstm_landmarks, train_lstm_generator
from jaxface.motion3dgan.data import (
    MotionSet,
    label_intensities,
    load_motion_splits,
    s2d_training_data,
    validation_split,
)
from jaxface.motion3dgan.supervised import train_on_motions
from jaxface.motion3dgan.train import make_sample_fn, train_gan
from jaxface.s2d import S2DInference, train_s2d
from jaxface.train import apply_in_batches, store_config

__all__ = [
    "METHODS",
    "ROWS",
    "accuracy",
    "classifier_loss",
    "classify",
    "create_classifier",
    "detected_landmarks",
    "generate_landmarks",
    "run_table3",
    "table3_markdown",
    "table3_metrics",
    "train_classifier",
]

#: Table 3 columns (landmark generators) and rows (where the landmarks are read).
METHODS = ("GT", "Motion3DGAN", "LSTM")
ROWS = ("Gen-LM", "Det-LM")


# ----------------------------------------------------------------------------- classifier


def create_classifier(config, num_classes: int) -> LSTMExpressionClassifier:
    """The classifier of a config's ``classifier`` block (``name``, ``hidden_size``,
    ``feature_size``)."""
    return create_model(config.classifier, num_classes=num_classes)


def classifier_loss(model: LSTMExpressionClassifier) -> Callable:
    """The classifier's training loss ``(params, batch) -> (loss, {"accuracy"})``.

    The batch holds ``landmarks`` float32 ``[B, T, K, 3]`` and ``label`` int32 ``[B]``; the loss
    is the softmax cross-entropy, ``accuracy`` the batch's fraction of correct labels.
    """

    def loss_fn(params, batch):
        logits, _ = model.apply({"params": params}, batch["landmarks"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        acc = jnp.mean((jnp.argmax(logits, -1) == batch["label"]).astype(jnp.float32))
        return loss, {"accuracy": acc}

    return loss_fn


def train_classifier(
    config, workdir: str, train: MotionSet, validation: MotionSet | None = None
) -> tuple[LSTMExpressionClassifier, Any, dict[str, Any]]:
    """Trains (or resumes) the expression classifier on the training landmark sequences.

    Args:
      config: experiment config; uses ``seed``, ``checkpoint_every``, ``log_every``,
        ``progress`` and the ``classifier`` block (``hidden_size``, ``feature_size``,
        ``learning_rate``, ``batch_size``, ``num_epochs``).
      workdir: run folder.
      train: training motions (their ``landmarks`` and ``labels``).
      validation: held-out motions whose loss is evaluated while training.

    Returns:
      ``(model, params on the host, info)``.
    """
    model = create_classifier(config, train.num_classes)
    params, info = train_on_motions(
        config, config.classifier, workdir, train, model, (jnp.asarray(train.landmarks[:1]),),
        classifier_loss(model), ("landmarks", "label"), stream=11, desc="classifier",
        validation=validation,
    )
    return model, params, info


def classify(
    model: LSTMExpressionClassifier, params: Any, sequences: np.ndarray, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and FID features of landmark sequences.

    Args:
      model: the classifier.
      params: its parameters.
      sequences: float ``[M, T, K, 3]`` normalised landmark sequences.
      batch_size: sequences per call.

    Returns:
      ``(logits [M, num_classes], features [M, feature_size])`` float32.
    """
    return apply_in_batches(model, params, (np.asarray(sequences, np.float32),), batch_size)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Classification accuracy in percent.

    Args:
      logits: float ``[M, C]``.
      labels: int ``[M]``.
    """
    return float(100.0 * np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


# ----------------------------------------------------------------------------- S2D-Dec


def detected_landmarks(
    decode: Callable[[np.ndarray], np.ndarray],
    sequences: np.ndarray,
    neutral_landmarks: np.ndarray,
    neutral_meshes: np.ndarray,
    definition,
    faces: np.ndarray,
) -> np.ndarray:
    """Det-LM: landmarks re-read from the S2D-Dec meshes of landmark sequences.

    Args:
      decode: S2D-Dec, ``[M, 204] -> [M, N, 3]`` dense displacements.
      sequences: float ``[S, T, K, 3]`` normalised landmark sequences.
      neutral_landmarks: float ``[S, K, 3]`` the neutral configurations they start from.
      neutral_meshes: float ``[S, N, 3]`` the neutral faces to deform.
      definition: the dataset's :class:`jaxface.data.LandmarkDefinition`.
      faces: int ``[F, 3]`` template faces.

    Returns:
      float32 ``[S, T, K, 3]`` normalised landmarks of the decoded meshes.
    """
    seqs = np.asarray(sequences, np.float32)
    s, t = seqs.shape[:2]
    out = np.empty_like(seqs)
    per_call = max(1, 256 // t)  # bounds the decoded meshes held at once
    for lo in range(0, s, per_call):
        hi = min(s, lo + per_call)
        meshes = decode_meshes(decode, seqs[lo:hi], neutral_landmarks[lo:hi],
                               neutral_meshes[lo:hi])
        lms = extract_landmarks(meshes, definition, faces)
        out[lo:hi] = np.asarray(normalize_landmarks(lms), np.float32)
    return out


# ----------------------------------------------------------------------------- Table 3


def table3_markdown(results: dict[str, Any]) -> str:
    """The Markdown table of :func:`run_table3`'s results (paper Table 3 layout)."""
    acc, fid = results["accuracy"], results["fid"]
    lines = [
        "| Method | Acc. GT lands (%) ↑ | Acc. Motion3DGAN (%) ↑ | Acc. LSTM (%) ↑ "
        "| FID Motion3DGAN ↓ | FID LSTM ↓ |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in ROWS:
        lines.append(
            f"| {row} | {acc[row]['GT']:.2f} | {acc[row]['Motion3DGAN']:.2f} | "
            f"{acc[row]['LSTM']:.2f} | {fid[row]['Motion3DGAN']:.2f} | {fid[row]['LSTM']:.2f} |"
        )
    n = results["num_test"]
    lines += [
        "",
        f"{n} test sequences ({results['num_test_per_label']} per label), "
        f"{results['num_train']} training sequences; one generated sequence per test sample and "
        "method. FID: 512-d classifier features against the ground truth of the same row.",
    ]
    return "\n".join(lines) + "\n"


def _neutral_meshes(view, test: MotionSet) -> np.ndarray:
    """float32 ``[S, N, 3]``: the mesh each test motion starts from."""
    pairs = zip(test.sequence.tolist(), test.start.tolist(), strict=True)
    idx = np.asarray([view.sequences[s].start + a for s, a in pairs], np.int64)
    return load_split_arrays(view.source, idx, features=("vertices",))["vertices"]


class _Stages:
    """Wall time of each named stage of a run."""

    def __init__(self):
        self.wall_s: dict[str, float] = {}
        self._t0 = time.perf_counter()

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.wall_s[name] = round(now - self._t0, 1)
        self._t0 = now


def generate_landmarks(config, models, gan_state, lstm, lstm_params, train: MotionSet,
                       test: MotionSet) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The Gen-LM sequences of every method for the test motions' labels and neutral faces.

    Returns:
      ``({"GT", "Motion3DGAN", "LSTM"} -> float32 [S, T, K, 3], Motion3DGAN SRVFs [S, T, D])``.
    """
    intensity = label_intensities(train, config.intensity_statistic)
    q = np.asarray(
        make_sample_fn(models)(gan_state.gen_params, jnp.asarray(gan_state.reference),
                               jnp.asarray(test.labels), jax.random.key(config.table3.sample_seed)),
        np.float32,
    )
    generated = {
        "GT": test.landmarks,
        "Motion3DGAN": motion_to_landmarks(
            q, test.neutral, intensity[test.labels], spacing=config.sphere.inverse_spacing
        ),
        "LSTM": generate_lstm_landmarks(lstm, lstm_params, test.labels, test.neutral),
    }
    return generated, q


def table3_metrics(clf, clf_params, rows: dict[str, dict[str, np.ndarray]], labels: np.ndarray):
    """Accuracy (%) and FID of every row (``"Gen-LM"``/``"Det-LM"``) and method.

    Args:
      clf, clf_params: the trained classifier.
      rows: row -> method -> landmark sequences ``[S, T, K, 3]`` (``"GT"`` among the methods).
      labels: int ``[S]``.

    Returns:
      ``(accuracy[row][method], fid[row][method], outputs[row][method] = (logits, features))``;
      FID compares each method's features with the ground truth's of the same row.
    """
    acc: dict[str, dict[str, float]] = {}
    fid: dict[str, dict[str, float]] = {}
    outputs = {}
    for row, sets in rows.items():
        outputs[row] = {m: classify(clf, clf_params, seqs) for m, seqs in sets.items()}
        acc[row] = {m: accuracy(logits, labels) for m, (logits, _) in outputs[row].items()}
        fid[row] = {
            m: frechet_distance(outputs[row]["GT"][1], feats)
            for m, (_, feats) in outputs[row].items() if m != "GT"
        }
    return acc, fid, outputs


def run_table3(config, workdir: str) -> dict[str, Any]:
    """Trains everything Table 3 needs and writes ``table3.md`` and ``table3.json``.

    Work directory layout: ``config.json``; ``s2d/``, ``gan/``, ``lstm/``, ``classifier/`` (each
    a resumable run with ``checkpoints/`` and ``metrics.jsonl``); ``generated.npz`` (the
    generated and re-detected landmark sequences); ``table3.md``, ``table3.json``. Running again
    with the same work directory resumes or reuses every finished stage.

    Args:
      config: a :mod:`jaxface.configs.motion3dgan` config.
      workdir: work directory.

    Returns:
      The results dict written to ``table3.json``: ``accuracy[row][method]`` (%),
      ``fid[row][method]``, sizes, per-stage training info and wall times.

    Raises:
      ValueError: the split rule leaves no test motions.
    """
    t_start = time.perf_counter()
    workdir = os.path.abspath(workdir)
    store_config(workdir, config.to_dict())
    stages = _Stages()

    view = open_dataset(config, verbose=False)
    train, test = load_motion_splits(
        view.path, config.split_rule, num_frames=config.num_frames,
        min_frames=config.min_frames, source=view.source,
    )
    if len(test) == 0:
        raise ValueError(f"split rule {config.split_rule!r} leaves no test motions")
    neutral_meshes = _neutral_meshes(view, test)
    fraction = config.validation.fraction if "validation" in config else 0.0
    train, validation = validation_split(train, fraction, config.seed)
    stages.done("data")

    t3 = config.table3
    s2d_dir = t3.s2d_workdir or os.path.join(workdir, "s2d")
    s2d_data = s2d_training_data(view, train, config.s2d.topology, t3.s2d_frame_stride,
                                 validation if config.s2d.validation.patience else None)
    _, s2d_info = train_s2d(config.s2d, s2d_dir, s2d_data)
    decode = S2DInference.load(s2d_dir).decode
    s2d_info["train_frames"] = len(s2d_data.train)
    stages.done("s2d")
    models, gan_state, gan_info = train_gan(config, os.path.join(workdir, "gan"), train,
                                            validation=validation)
    stages.done("gan")
    lstm, lstm_params, lstm_info = train_lstm_generator(
        config, os.path.join(workdir, "lstm"), train, validation)
    stages.done("lstm")
    clf, clf_params, clf_info = train_classifier(config, os.path.join(workdir, "classifier"),
                                                 train, validation)
    stages.done("classifier")

    generated, q = generate_landmarks(config, models, gan_state, lstm, lstm_params, train, test)
    stages.done("generate")
    detected = {
        m: detected_landmarks(decode, seqs, test.neutral, neutral_meshes, view.landmarks,
                              view.faces)
        for m, seqs in generated.items()
    }
    stages.done("det_lm")
    write_npz(os.path.join(workdir, "generated.npz"), {
        "labels": test.labels, "motion3dgan_q": q,
        **{f"gen_{m}": v for m, v in generated.items()},
        **{f"det_{m}": v for m, v in detected.items()},
    })

    acc, fid, outputs = table3_metrics(clf, clf_params,
                                       {"Gen-LM": generated, "Det-LM": detected}, test.labels)
    train_logits, train_feats = classify(clf, clf_params, train.landmarks)
    test_feats = outputs["Gen-LM"]["GT"][1]  # the GT of Gen-LM is the test landmarks
    stages.done("metrics")

    counts = np.bincount(test.labels, minlength=test.num_classes)
    per_label = (
        str(int(counts[0])) if np.all(counts == counts[0]) else f"{counts.min()}-{counts.max()}"
    )
    results = {
        "dataset": view.path,
        "split_rule": config.split_rule,
        "num_train": len(train),
        "num_validation": 0 if validation is None else len(validation),
        "num_test": len(test),
        "num_test_per_label": per_label,
        "label_names": list(test.label_names),
        "accuracy": acc,
        "fid": fid,
        "fid_gt_train_vs_test": frechet_distance(train_feats, test_feats),
        "classifier_train_accuracy": accuracy(train_logits, train.labels),
        "label_intensity": label_intensities(train, config.intensity_statistic).tolist(),
        "s2d": s2d_info,
        "gan": gan_info,
        "lstm": lstm_info,
        "classifier": clf_info,
        "stage_wall_s": stages.wall_s,
        "wall_s": round(time.perf_counter() - t_start, 1),
        "devices": [str(d) for d in jax.devices()],
    }
    write_json(os.path.join(workdir, "table3.json"), results)
    write_atomic(os.path.join(workdir, "table3.md"), table3_markdown(results).encode("utf-8"))
    return results
