"""The paper's evaluation of generated 4D expressions (Potamias et al., ECCV 2020, Sec. 5).

* per-vertex error (mm) of each generated test sequence against its ground truth, per
  expression and in total (Table 2), and per frame (Fig. 5): the model gets each test
  sequence's own label signal (its phases and intensity) and the subject's neutral face;
* the expression classifier of Sec. 5.3 (:class:`FrameEncoder` + :class:`jaxface.models.
  FrameCodeClassifier`) trained on the real training sequences and applied to the real test
  sequences, to the proposed model's and to the baseline's: precision, recall and F1 per
  expression and their macro average (Table 3);
* :func:`intensity_following`: the displacement magnitude over time of sequences generated from
  requested curves, correlated with the curve (what the user command promises);
* :func:`interpolate_codes`: latent interpolation between two expressions (Sec. 5.5).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.data.batches import InMemoryBatches
from jaxface.express.data import ExpressionSequences
from jaxface.express.model import TrainedModel, fit_motion_basis
from jaxface.express.signal import Phases, intensity_curve, label_signal
from jaxface.models import create_model
from jaxface.train import (
    LoopConfig,
    create_optimizer,
    create_train_state,
    fit,
    make_supervised_step,
    map_in_batches,
)

__all__ = [
    "ClassifierScores",
    "FrameEncoder",
    "classification_scores",
    "error_table",
    "intensity_following",
    "interpolate_codes",
    "per_frame_errors",
    "resample_frames",
    "train_classifier",
]


def error_table(errors: np.ndarray, labels: np.ndarray, label_names: Sequence[str]
                ) -> dict[str, float]:
    """Mean per-vertex error (mm) per expression and ``"total"`` over all real frames.

    Args:
      errors: ``[S, T]`` per-frame mean errors, NaN on padding.
      labels: ``[S]`` expression of each sequence.
      label_names: names of the labels.
    """
    out = {name: float(np.nanmean(errors[labels == i])) for i, name in enumerate(label_names)
           if np.any(labels == i)}
    out["total"] = float(np.nanmean(errors))
    return out


def per_frame_errors(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-frame curve (Fig. 5): mean error at each frame position over the sequences
    that have it, and how many do. Returns ``(mean [T], count [T])``."""
    count = np.sum(np.isfinite(errors), axis=0)
    with np.errstate(invalid="ignore"):
        mean = np.nansum(errors, axis=0) / np.maximum(count, 1)
    return np.where(count > 0, mean, np.nan), count


def resample_frames(displacements: np.ndarray, lengths: np.ndarray, num_frames: int
                    ) -> np.ndarray:
    """Each sequence's real frames linearly resampled in time to ``num_frames``.

    Args:
      displacements: ``[S, T, N, 3]`` padded sequences.
      lengths: ``[S]`` real frames.
      num_frames: output length.

    Returns:
      float32 ``[S, num_frames, N, 3]``.
    """
    out = np.zeros((len(displacements), num_frames, *displacements.shape[2:]), np.float32)
    for i, (seq, n) in enumerate(zip(displacements, lengths, strict=True)):
        pos = np.linspace(0.0, max(int(n) - 1, 0), num_frames)
        lo = np.floor(pos).astype(int)
        hi = np.minimum(lo + 1, max(int(n) - 1, 0))
        w = (pos - lo)[:, None, None]
        out[i] = (1 - w) * seq[lo] + w * seq[hi]
    return out


@dataclasses.dataclass(frozen=True)
class FrameEncoder:
    """The classifier's frame encoder: PCA coefficients of a frame's displacement.

    Attributes:
      mean: float ``[N, 3]``.
      components: float ``[K, N, 3]``.
      num_frames: frames per sequence after resampling.
    """

    mean: np.ndarray
    components: np.ndarray
    num_frames: int

    @classmethod
    def fit(cls, train: ExpressionSequences, num_components: int, num_frames: int,
            seed: int = 0) -> FrameEncoder:
        """PCA of the training motions (:func:`jaxface.express.model.fit_motion_basis`)."""
        mean, comps = fit_motion_basis(train, num_components, seed=seed)
        return cls(mean, comps, num_frames)

    def __call__(self, displacements: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Codes ``[S, num_frames, K]`` of padded sequences ``[S, T, N, 3]``."""
        frames = resample_frames(displacements, lengths, self.num_frames)
        flat = (frames - self.mean).reshape(*frames.shape[:2], -1)
        return np.einsum("stc,kc->stk", flat, self.components.reshape(len(self.components), -1))


def train_classifier(config, codes: np.ndarray, labels: np.ndarray, num_classes: int,
                     workdir: str, seed: int):
    """Trains the frame-code classifier on real training sequences.

    Args:
      config: the express config (``classifier`` block, loop fields).
      codes: ``[S, T_c, K]`` frame codes of the training sequences.
      labels: ``[S]`` their expressions.
      num_classes: number of labels.
      workdir: the classifier's run folder.
      seed: its initialisation and batching seed.

    Returns:
      ``predict(codes [M, T_c, K]) -> labels [M]``.
    """
    c = config.classifier
    model = create_model(c, num_classes=num_classes)
    batches = InMemoryBatches({"codes": codes, "label": labels}, c.batch_size, seed=seed,
                              what="classifier sequences")
    tx = create_optimizer(c.learning_rate, weight_decay=c.weight_decay, decay_rate=1.0,
                          steps_per_epoch=batches.steps_per_epoch)
    state = create_train_state(model, jax.random.key(seed), (jnp.zeros((1, *codes.shape[1:])),),
                               tx)

    def loss_fn(params, batch):
        logits = model.apply({"params": params}, batch["codes"])
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
        return loss, {"accuracy": jnp.mean(jnp.argmax(logits, -1) == batch["label"])}

    loop = dataclasses.replace(LoopConfig.from_config(config, c.num_epochs, desc="classifier"),
                               seed=seed)
    state, _ = fit(state, make_supervised_step(loss_fn), batches, loop, workdir)
    params = jax.device_get(state.params)
    apply = jax.jit(lambda p, x: jnp.argmax(model.apply({"params": p}, x), -1))

    def predict(x: np.ndarray) -> np.ndarray:
        return map_in_batches(lambda chunk: apply(params, chunk), (np.asarray(x, np.float32),),
                              c.batch_size)

    return predict


@dataclasses.dataclass(frozen=True)
class ClassifierScores:
    """Precision, recall and F1 per expression, and their macro averages.

    Attributes:
      precision, recall, f1: float ``[C]``.
      label_names: the expressions.
    """

    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    label_names: tuple[str, ...]

    def rows(self) -> dict[str, tuple[float, float, float]]:
        """expression -> (precision, recall, F1), plus ``"total"`` (macro averages)."""
        out = {n: (float(p), float(r), float(f)) for n, p, r, f in
               zip(self.label_names, self.precision, self.recall, self.f1, strict=True)}
        out["total"] = (float(self.precision.mean()), float(self.recall.mean()),
                        float(self.f1.mean()))
        return out


def classification_scores(true: np.ndarray, pred: np.ndarray, label_names: Sequence[str]
                          ) -> ClassifierScores:
    """Per-class precision, recall and F1 (0 where undefined).

    Example:
      >>> s = classification_scores(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ("a", "b"))
      >>> [round(x, 3) for x in s.rows()["b"]]
      [0.667, 1.0, 0.8]
    """
    c = len(label_names)
    p, r, f = np.zeros(c), np.zeros(c), np.zeros(c)
    for k in range(c):
        tp = np.sum((pred == k) & (true == k))
        predicted, actual = np.sum(pred == k), np.sum(true == k)
        p[k] = tp / predicted if predicted else 0.0
        r[k] = tp / actual if actual else 0.0
        f[k] = 2 * p[k] * r[k] / (p[k] + r[k]) if p[k] + r[k] else 0.0
    return ClassifierScores(p, r, f, tuple(label_names))


def intensity_following(model: TrainedModel, num_classes: int, num_frames: int,
                        intensities: Sequence[float], label_names: Sequence[str]
                        ) -> dict[str, dict]:
    """How the generated motion follows requested curves.

    For every expression and intensity ``s``, the default curve of ``num_frames``
    (:meth:`Phases.default`); the generated sequence's per-frame displacement
    magnitude is correlated (Pearson) with the curve.

    Returns:
      expression -> ``{"r": [per intensity], "peak_mm": [per intensity], "curve": [T],
      "magnitude_mm": [[T] per intensity]}``.
    """
    t = num_frames
    curve = intensity_curve(t, Phases.default(t))
    signals = np.stack([label_signal(c, num_classes, curve, s)
                        for c in range(num_classes) for s in intensities])
    disp = model.generate(signals)
    out = {}
    k = len(intensities)
    for c, name in enumerate(label_names):
        mags = [1000.0 * np.linalg.norm(disp[c * k + j], axis=-1).mean(axis=-1)
                for j in range(k)]
        out[name] = {
            "r": [float(np.corrcoef(curve, m)[0, 1]) if np.std(m) > 0 else 0.0 for m in mags],
            "peak_mm": [float(m.max()) for m in mags],
            "curve": curve.tolist(),
            "magnitude_mm": [m.tolist() for m in mags],
        }
    return out


def interpolate_codes(model: TrainedModel, num_classes: int, a: int, b: int, steps: int,
                      num_frames: int) -> np.ndarray:
    """Apex displacements decoded from codes interpolated between two expressions (Sec. 5.5).

    Both expressions are encoded from a full-intensity curve; their codes at the apex frame are
    blended linearly in ``steps`` steps (endpoints included) and decoded.

    Returns:
      float32 ``[steps, N, 3]``.
    """
    phases = Phases(0, num_frames // 2, num_frames - 1, num_frames - 1)
    curve = intensity_curve(num_frames, phases)
    codes = model.encode(np.stack([label_signal(a, num_classes, curve),
                                   label_signal(b, num_classes, curve)]))
    za, zb = codes[0, num_frames // 2], codes[1, num_frames // 2]
    alpha = np.linspace(0.0, 1.0, steps)[:, None]
    blend = ((1 - alpha) * za + alpha * zb)[:, None, :]
    return model.decode(blend)[:, 0]

