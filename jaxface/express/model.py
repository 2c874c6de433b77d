"""The 4D expression model of a run: building it, its PCA basis, and applying trained weights.

A run's folder holds what inference needs besides the checkpoint: the template
(``template.npz``), the intensity statistics and label names (``express.json``) and, for the
PCA baseline, its basis (``basis.npz``); :mod:`jaxface.express.inference` reads them back.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import jax
import numpy as np

from jaxface.baselines import PCA3DMM
from jaxface.express.data import ExpressionSequences
from jaxface.express.signal import IntensityStatistics
from jaxface.files import write_json, write_npz
from jaxface.models import ExpressionLSTM, SpiralTopology, create_model
from jaxface.train import map_in_batches

__all__ = [
    "RUN_FILE",
    "TEMPLATE_FILE",
    "RunInfo",
    "TrainedModel",
    "build_model",
    "displacement_moments",
    "fit_motion_basis",
    "read_run_info",
    "write_run_info",
]

#: The run's label names and intensity statistics.
RUN_FILE = "express.json"
#: The template the run was trained on.
TEMPLATE_FILE = "template.npz"


@dataclasses.dataclass(frozen=True)
class RunInfo:
    """What a run folder holds besides its checkpoints and config.

    Attributes:
      label_names: the expression of each label.
      stats: the intensity statistics of the training sequences.
      num_frames: the training sequences' padded length.
      vertices: float32 ``[N, 3]`` template vertices.
      faces: int32 ``[F, 3]`` template faces.
      basis: ``(mean [N, 3], components [K, N, 3])`` of the PCA decoder, or ``None``.
      moments: ``(mean [N, 3], std [N, 3])`` of a standardised spiral decoder, or ``None``.
    """

    label_names: tuple[str, ...]
    stats: IntensityStatistics
    num_frames: int
    vertices: np.ndarray
    faces: np.ndarray
    basis: tuple[np.ndarray, np.ndarray] | None = None
    moments: tuple[np.ndarray, np.ndarray] | None = None


def fit_motion_basis(train: ExpressionSequences, num_components: int,
                     max_frames: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the training motions (every real frame minus its subject's neutral), by
    :class:`jaxface.baselines.PCA3DMM` (randomized SVD for large sets).

    Args:
      train: training sequences.
      num_components: ``K`` (at most the number of frames minus one).
      max_frames: frames sampled (seeded) when there are more.
      seed: sampling and SVD seed.

    Returns:
      ``(mean [N, 3], components [K, N, 3])`` float32, components orthonormal when flattened.
    """
    frames = train.displacements[train.mask > 0]
    if len(frames) > max_frames:
        frames = frames[np.random.default_rng(seed).choice(len(frames), max_frames, replace=False)]
    pca = PCA3DMM.fit(frames, k=num_components, seed=seed)
    return pca.mean.astype(np.float32), pca.components.astype(np.float32)


def displacement_moments(train: ExpressionSequences, floor: float = 0.1, center: bool = False
                         ) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex shift and standard deviation of the training displacements (real frames).

    Args:
      train: training sequences.
      floor: the standard deviation is at least this fraction of its median (vertices that
        barely move do not get huge standardised targets).
      center: shift by the mean displacement; off by default, so that a zero output of the
        network is no motion, as at every neutral frame (with the shift, the network has to
        produce ``-mean / std`` exactly to hold a face still, and the first frames drift).

    Returns:
      ``(shift [N, 3], std [N, 3])`` float32 (the shift is zero unless ``center``).
    """
    frames = train.displacements[train.mask > 0].astype(np.float64)
    mean = frames.mean(axis=0) if center else np.zeros(frames.shape[1:])
    std = frames.std(axis=0)
    std = np.maximum(std, floor * np.median(std))
    return mean.astype(np.float32), std.astype(np.float32)


def build_model(cfg, *, topology: SpiralTopology | None = None, basis=None,
                moments=None) -> ExpressionLSTM:
    """The :class:`jaxface.models.ExpressionLSTM` of a model config block (``config.model``:
    spiral decoder, needs ``topology`` and, standardised, ``moments``
    (:func:`displacement_moments`); ``config.baseline``: PCA decoder, needs ``basis``)."""
    return create_model(cfg, topology=topology, basis=basis, stats=moments)


@dataclasses.dataclass
class TrainedModel:
    """A model with trained parameters, applied in fixed-size batches.

    Attributes:
      model: the network.
      params: its parameters.
      batch_size: sequences per jitted call.
    """

    model: ExpressionLSTM
    params: Any
    batch_size: int = 16

    @functools.cached_property
    def _jitted(self):
        m = self.model
        return (jax.jit(lambda p, s: m.apply({"params": p}, s)),
                jax.jit(lambda p, s: m.apply({"params": p}, s, method=m.encode)),
                jax.jit(lambda p, z: m.apply({"params": p}, z, method=m.decode)))

    def generate(self, signal: np.ndarray) -> np.ndarray:
        """Displacements ``[S, T, N, 3]`` of label signals ``[S, T, C]``."""
        fn = functools.partial(self._jitted[0], self.params)
        return map_in_batches(fn, (np.asarray(signal, np.float32),), self.batch_size)

    def encode(self, signal: np.ndarray) -> np.ndarray:
        """Latent codes ``[S, T, Z]`` of label signals ``[S, T, C]``."""
        fn = functools.partial(self._jitted[1], self.params)
        return map_in_batches(fn, (np.asarray(signal, np.float32),), self.batch_size)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Displacements ``[S, T, N, 3]`` of latent codes ``[S, T, Z]``."""
        fn = functools.partial(self._jitted[2], self.params)
        return map_in_batches(fn, (np.asarray(codes, np.float32),), self.batch_size)


def write_run_info(workdir: str, label_names, stats: IntensityStatistics, num_frames: int, *,
                   template: tuple[np.ndarray, np.ndarray],
                   basis: tuple[np.ndarray, np.ndarray] | None = None,
                   moments: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """Writes ``template.npz`` (``vertices [N, 3]``, ``faces [F, 3]``), ``express.json`` and,
    for the PCA decoder, ``basis.npz``, for a standardised decoder ``moments.npz``, into
    ``workdir``."""
    write_npz(os.path.join(workdir, TEMPLATE_FILE), {
        "vertices": np.asarray(template[0], np.float32),
        "faces": np.asarray(template[1], np.int32)})
    if basis is not None:
        write_npz(os.path.join(workdir, "basis.npz"), {"mean": basis[0], "components": basis[1]})
    if moments is not None:
        write_npz(os.path.join(workdir, "moments.npz"), {"mean": moments[0], "std": moments[1]})
    write_json(os.path.join(workdir, RUN_FILE), {
        "label_names": list(label_names), "intensity": stats.to_json(),
        "num_frames": int(num_frames)})


def read_run_info(workdir: str) -> RunInfo:
    """What :func:`write_run_info` wrote into a run folder.

    Raises:
      FileNotFoundError: the folder has no ``express.json``.
      ValueError: the file is not a run's.
    """
    path = os.path.join(workdir, RUN_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{workdir}: not a trained 4D expression run (no {RUN_FILE})")
    try:
        with open(path) as f:
            obj = json.load(f)
        names = tuple(obj["label_names"])
        stats = IntensityStatistics.from_json(obj["intensity"])
        num_frames = int(obj["num_frames"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: damaged run file ({err})") from err
    basis = None
    basis_path = os.path.join(workdir, "basis.npz")
    if os.path.isfile(basis_path):
        with np.load(basis_path) as z:
            basis = (z["mean"], z["components"])
    moments = None
    moments_path = os.path.join(workdir, "moments.npz")
    if os.path.isfile(moments_path):
        with np.load(moments_path) as z:
            moments = (z["mean"], z["std"])
    template_path = os.path.join(workdir, TEMPLATE_FILE)
    if not os.path.isfile(template_path):
        raise FileNotFoundError(f"{workdir}: not a trained 4D expression run (no {TEMPLATE_FILE})")
    with np.load(template_path) as z:
        vertices, faces = z["vertices"], z["faces"]
    return RunInfo(names, stats, num_frames, vertices, faces, basis, moments)
