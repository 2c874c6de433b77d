"""A trained 4D expression model applied to a user's neutral face.

:func:`load_expression_model` reads a run folder written by the experiment
(:mod:`jaxface.express.experiment`: ``proposed/`` or ``baseline/``) and returns an
:class:`ExpressionModel`, whose :meth:`~ExpressionModel.animate` turns a neutral face of the
run's template topology, an expression, an intensity and the phases (or a drawn curve) into a
mesh sequence.
"""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.express.model import RunInfo, TrainedModel, build_model, read_run_info
from jaxface.express.signal import Phases, intensity_curve, label_signal
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology, read_mesh
from jaxface.models import build_topology
from jaxface.train import (
    create_optimizer,
    create_train_state,
    read_config,
    restore_latest,
)

__all__ = ["ExpressionModel", "load_expression_model"]


@dataclasses.dataclass
class ExpressionModel:
    """A trained model with its template, labels and intensity statistics.

    Attributes:
      trained: the network and its parameters.
      info: the run's template, label names and statistics.
    """

    trained: TrainedModel
    info: RunInfo

    @property
    def label_names(self) -> tuple[str, ...]:
        return self.info.label_names

    @property
    def num_vertices(self) -> int:
        return int(self.info.vertices.shape[0])

    def label(self, expression: str) -> int:
        """The label of an expression name.

        Raises:
          ValueError: an unknown expression (the message lists the known ones).
        """
        if expression not in self.label_names:
            raise ValueError(f"unknown expression {expression!r}; this model knows "
                             f"{', '.join(self.label_names)}")
        return self.label_names.index(expression)

    def read_neutral(self, path: str) -> np.ndarray:
        """Reads a neutral face and checks it has the model's template topology.

        Raises:
          MeshError: unreadable file or another topology (naming the file and what differs).
        """
        vertices, faces = read_mesh(path)
        check_topology(vertices, faces, self.info.faces, self.num_vertices, source=path)
        return np.asarray(vertices, np.float32)

    def signal(self, expression: str, curve: np.ndarray, intensity: float) -> np.ndarray:
        """The label signal ``[T, C]`` of an expression, a curve ``[T]`` and an intensity."""
        return label_signal(self.label(expression), len(self.label_names), curve, intensity)

    def animate(self, neutral: np.ndarray, expression: str, *, intensity: float = 1.0,
                phases: Phases | None = None, curve: np.ndarray | None = None,
                num_frames: int | None = None) -> np.ndarray:
        """The sequence ``[T, N, 3]`` of a neutral face performing an expression.

        Args:
          neutral: float ``[N, 3]`` the subject's neutral face (the template's topology).
          expression: one of :attr:`label_names`.
          intensity: ``s`` in ``[0, 1]`` (eq. 6: 0.5 is a typical performance of the training
            data, 1 a strong one).
          phases: onset/apex/offset/end frames (default: 15/40/60/85 % of the frames).
          curve: a drawn intensity curve ``[T]`` in ``[0, 1]`` instead of ``phases``.
          num_frames: ``T`` (default: the curve's length, else the training length).

        Raises:
          ValueError: an unknown expression, a bad intensity/curve, both phases and curve.
          MeshError: a neutral face of the wrong shape or with non-finite values.
        """
        neutral = np.asarray(neutral, np.float32)
        if neutral.shape != (self.num_vertices, 3):
            raise MeshError(f"expected a neutral face [{self.num_vertices}, 3], got "
                            f"{list(neutral.shape)}", field="vertices")
        if not np.isfinite(neutral).all():
            raise MeshError("the neutral face has NaN or infinite coordinates", field="vertices")
        if phases is not None and curve is not None:
            raise ValueError("give either phases or a curve, not both")
        if curve is None:
            t = num_frames or self.info.num_frames
            phases = phases or Phases.default(t)
            curve = intensity_curve(t, phases)
        elif num_frames is not None and num_frames != len(curve):
            raise ValueError(f"the curve has {len(curve)} frames, num_frames is {num_frames}")
        signal = self.signal(expression, np.asarray(curve, np.float32), intensity)
        disp = self.trained.generate(signal[None])[0]
        return neutral[None] + disp


def load_expression_model(workdir: str, batch_size: int = 8) -> ExpressionModel:
    """Loads the newest checkpoint of a run folder (``<experiment>/proposed`` or ``/baseline``).

    Raises:
      FileNotFoundError: not a run folder (names the missing file).
      CheckpointError: no readable checkpoint.
    """
    workdir = os.path.abspath(workdir)
    info = read_run_info(workdir)
    config = read_config(workdir, "4D expression run")
    cfg = config.baseline if info.basis is not None else config.model
    topology = None
    if info.basis is None:
        topology = build_topology(info.vertices, info.faces, config.topology)
    model = build_model(cfg, topology=topology, basis=info.basis, moments=info.moments)
    o = config.optim
    tx = create_optimizer(o.learning_rate, weight_decay=o.weight_decay, decay_rate=o.decay_rate,
                          steps_per_epoch=1)
    example = jnp.zeros((1, info.num_frames, len(info.label_names)), jnp.float32)
    state_like = jax.eval_shape(
        lambda: create_train_state(model, jax.random.key(0), (example,), tx))
    restored, _ = restore_latest(workdir, state_like)
    return ExpressionModel(TrainedModel(model, jax.device_get(restored.params), batch_size), info)
