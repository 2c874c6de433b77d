"""Fitting a code model to sparse landmarks or to a whole mesh (paper §5.5, eq. 13).

The codes ``z`` of every target are optimised independently by Adam from a random start
(``N(0, I)``), minimising

    mean_k |P_k(G(z)) - p_k|^2  +  lambda * |z|^2

where ``P`` selects points of the generated mesh (the 68 landmarks, or every vertex), ``p`` are
the target points and distances are in millimetres. The same optimisation serves every
:class:`~jaxface.decoupled.codes.CodeModel` (GAN, linear 3DMM, autoencoder), as in the paper.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.decoupled.codes import CodeModel

__all__ = ["FitResult", "PointSelection", "fit_codes", "rmse_mm"]


@dataclasses.dataclass(frozen=True)
class PointSelection:
    """``K`` points of a mesh as barycentric combinations of vertices (numpy constants).

    Attributes:
      indices: int32 ``[K, 3]`` vertices of each point.
      weights: float32 ``[K, 3]`` their weights.
    """

    indices: np.ndarray
    weights: np.ndarray

    @classmethod
    def landmarks(cls, definition: LandmarkDefinition, faces: np.ndarray) -> PointSelection:
        """The landmarks of a definition (vertex or barycentric form)."""
        if definition.vertex_indices is not None:
            idx = np.asarray(definition.vertex_indices, np.int32)
            return cls(np.repeat(idx[:, None], 3, axis=1),
                       np.tile(np.array([1.0, 0.0, 0.0], np.float32), (idx.size, 1)))
        tri = np.asarray(faces, np.int32)[np.asarray(definition.face_indices)]
        return cls(tri, np.asarray(definition.barycentric, np.float32))

    @classmethod
    def all_vertices(cls, num_vertices: int) -> PointSelection:
        """Every vertex, in order."""
        idx = np.arange(num_vertices, dtype=np.int32)
        return cls(np.repeat(idx[:, None], 3, axis=1),
                   np.tile(np.array([1.0, 0.0, 0.0], np.float32), (num_vertices, 1)))

    @property
    def num_points(self) -> int:
        return int(self.indices.shape[0])

    def __call__(self, meshes):
        """``[..., N, 3] -> [..., K, 3]`` (numpy or JAX, following the input)."""
        xp = jnp if isinstance(meshes, jax.Array) else np
        corners = meshes[..., self.indices, :]  # [..., K, 3, 3]
        return xp.sum(xp.asarray(self.weights)[..., None] * corners, axis=-2)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Fitted codes and meshes of ``T`` targets.

    Attributes:
      z_id, z_exp, noise: float32 ``[T, I]``, ``[T, E]``, ``[T, Z]``.
      meshes: float32 ``[T, N, 3]`` the decoded fits (metres).
      point_error_mm: float32 ``[T]`` final RMS distance of the selected points.
    """

    z_id: np.ndarray
    z_exp: np.ndarray
    noise: np.ndarray
    meshes: np.ndarray
    point_error_mm: np.ndarray


def _fit(model: CodeModel, z0, targets, selection, regularization, learning_rate, steps):
    return _fit_jit(model.params, z0, targets, jnp.asarray(selection.indices),
                    jnp.asarray(selection.weights), jnp.float32(regularization),
                    jnp.float32(learning_rate), apply=model.apply,
                    sizes=(model.identity_dim, model.expression_dim), steps=int(steps))


@functools.partial(jax.jit, static_argnames=("apply", "sizes", "steps"))
def _fit_jit(params, z0, targets, indices, weights, regularization, learning_rate, *, apply,
             sizes, steps):
    i, e = sizes
    tx = optax.adam(learning_rate)

    def objective(z):
        meshes = apply(params, z[:, :i], z[:, i : i + e], z[:, i + e :])
        corners = meshes[:, indices, :]  # [T, K, 3, 3]
        points = jnp.sum(weights[..., None] * corners, axis=-2)
        data = jnp.mean(jnp.sum(jnp.square(1e3 * (points - targets)), axis=-1), axis=-1)
        return jnp.sum(data + regularization * jnp.sum(jnp.square(z), axis=-1)), (data, meshes)

    def body(_, carry):
        z, opt_state = carry
        grads, _ = jax.grad(objective, has_aux=True)(z)
        updates, opt_state = tx.update(grads, opt_state, z)
        return optax.apply_updates(z, updates), opt_state

    z, _ = jax.lax.fori_loop(0, steps, body, (z0, tx.init(z0)))
    _, (data, meshes) = objective(z)
    return z, meshes, jnp.sqrt(data)


def fit_codes(model: CodeModel, targets: np.ndarray, selection: PointSelection,
              regularization: float, *, steps: int, learning_rate: float,
              key: jax.Array) -> FitResult:
    """Fits the codes of every target (see the module docstring).

    Args:
      model: the face model.
      targets: float ``[T, K, 3]`` target points (metres), ``K = selection.num_points``.
      selection: which points of a generated mesh they are.
      regularization: ``lambda``.
      steps: Adam steps.
      learning_rate: Adam's learning rate.
      key: key of the random start.

    Raises:
      ValueError: targets of the wrong shape or non-finite.
    """
    targets = np.asarray(targets, np.float32)
    if targets.ndim != 3 or targets.shape[1:] != (selection.num_points, 3):
        raise ValueError(f"targets must be [T, {selection.num_points}, 3], got "
                         f"{list(targets.shape)}")
    if not np.isfinite(targets).all():
        raise ValueError("targets contain NaN or infinite values")
    z0 = np.concatenate(model.sample_codes(key, targets.shape[0]), axis=1)
    z, meshes, err = _fit(model, jnp.asarray(z0), jnp.asarray(targets), selection, regularization,
                          learning_rate, steps)
    z_id, z_exp, noise = model.split(np.asarray(z))
    return FitResult(z_id, z_exp, noise, np.asarray(meshes), np.asarray(err))


def rmse_mm(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """float64 ``[T]`` per-mesh RMS vertex error (mm): ``sqrt(mean_v |pred_v - target_v|^2)``.

    Example:
      >>> rmse_mm(np.zeros((1, 2, 3)), np.array([[[0.003, 0, 0], [0, 0.004, 0]]]))
      array([3.53553391])
    """
    d = np.sum(np.square(np.asarray(pred, np.float64) - np.asarray(target, np.float64)), -1)
    return 1e3 * np.sqrt(d.mean(axis=-1))
