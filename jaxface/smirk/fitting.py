"""The baseline: fitting the morphable model to 2D landmarks alone (no image network).

For each image, identity, expression, jaw, eyelids, head pose and camera are optimised with Adam
to minimise the landmark loss of :mod:`jaxface.smirk.landmarks` plus the same L2 regularisers
the encoders are trained with. This is what a landmark-only method can recover; the encoders
must beat it on what landmarks do not show (expression detail, the eyelids, the jaw depth).
The whole optimisation is one jitted ``lax.scan``, batched over images.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import optax

from jaxface.models.face_encoder import JAW_LIMIT, FaceEncoding
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.smirk.landmarks import landmark_loss, project_points

__all__ = ["encoding_params", "fit_landmarks", "initial_camera"]


def encoding_params(encoding: FaceEncoding) -> FaceParams:
    """The morphable model's parameters of an encoding (pose, shape, expression, jaw, eyelids)."""
    return FaceParams(shape=encoding.shape, expression=encoding.expression, pose=encoding.pose,
                      jaw=encoding.jaw, eyelids=encoding.eyelids)


def initial_camera(model: MorphableModel, target: jax.Array) -> jax.Array:
    """Cameras that put the template's MediaPipe points on the targets' box.

    Args:
      model: the morphable model.
      target: ``[B, L, 2]`` screen landmarks (rows as the model's ``mediapipe`` points).

    Returns:
      ``[B, 3]`` ``(scale, tx, ty)``.
    """
    zero = morph(model, FaceParams.zeros(model, (1,)))
    points = project_points(zero.mediapipe, jnp.array([[1.0, 0.0, 0.0]]))[0]  # x, -y
    side = jnp.max(points.max(0) - points.min(0))
    centre = 0.5 * (points.max(0) + points.min(0))
    t_lo, t_hi = target.min(axis=1), target.max(axis=1)
    scale = jnp.max(t_hi - t_lo, axis=-1) / side
    t_centre = 0.5 * (t_lo + t_hi)
    # screen = s * (x + tx), -s * (y + ty): solve for the box centres to meet.
    tx = t_centre[:, 0] / scale - centre[0]
    ty = -t_centre[:, 1] / scale + centre[1]
    return jnp.stack([scale, tx, ty], axis=-1)


def _constrained(raw: dict[str, jax.Array]) -> tuple[FaceParams, jax.Array]:
    """Free variables -> parameters within the encoders' output constraints, and the camera."""
    jaw = jnp.concatenate([jax.nn.relu(raw["jaw"][:, :1]),
                           jnp.clip(raw["jaw"][:, 1:], -JAW_LIMIT, JAW_LIMIT)], axis=-1)
    params = FaceParams(shape=raw["shape"], expression=raw["expression"], pose=raw["pose"],
                        jaw=jaw, eyelids=jnp.clip(raw["eyelids"], 0.0, 1.0))
    return params, raw["cam"]


def fit_landmarks(model: MorphableModel, target: jax.Array, *, steps: int = 300,
                  learning_rate: float = 0.02, shape_reg: float = 1e-5,
                  expression_reg: float = 1e-4, jaw_reg: float = 1e-4
                  ) -> tuple[FaceParams, jax.Array, jax.Array]:
    """Fits the model to screen landmarks (compiled once per model and step count).

    Args:
      model: the morphable model.
      target: ``[B, L, 2]`` screen landmarks, rows as the model's ``mediapipe`` points.
      steps: Adam steps.
      learning_rate: Adam's rate (the camera's scale moves at ``learning_rate`` times its
        initial value).
      shape_reg, expression_reg, jaw_reg: L2 weights on the coefficients relative to a
        landmark loss of weight 1 (the defaults are the encoders' pretrain weights over its
        landmark weight of 100).

    Returns:
      ``(params, cam [B, 3], landmark loss per step [steps])``.
    """
    key = (id(model), int(steps))
    if key not in _FITTERS or _FITTERS[key][0] is not model:
        _FITTERS[key] = (model, jax.jit(functools.partial(_fit, model, steps=int(steps))))
    return _FITTERS[key][1](jnp.asarray(target, jnp.float32), learning_rate=learning_rate,
                            shape_reg=shape_reg, expression_reg=expression_reg, jaw_reg=jaw_reg)


_FITTERS: dict = {}


def _fit(model, target, *, steps, learning_rate, shape_reg, expression_reg, jaw_reg):
    b = target.shape[0]
    cam0 = initial_camera(model, target)
    zeros = FaceParams.zeros(model, (b,))
    # The camera is optimised in log-scale and translation units of the face's size.
    raw = {"shape": zeros.shape, "expression": zeros.expression, "pose": zeros.pose,
           "jaw": zeros.jaw, "eyelids": zeros.eyelids, "cam": jnp.zeros((b, 3))}

    def camera(r):
        return jnp.stack([cam0[:, 0] * jnp.exp(r["cam"][:, 0]), cam0[:, 1] + 0.1 * r["cam"][:, 1],
                          cam0[:, 2] + 0.1 * r["cam"][:, 2]], axis=-1)

    def loss_fn(r):
        params, _ = _constrained(r)
        lmk = landmark_loss(morph(model, params), camera(r), target)
        reg = (shape_reg * jnp.mean(jnp.sum(params.shape ** 2, -1))
               + expression_reg * jnp.mean(jnp.sum(params.expression ** 2, -1))
               + jaw_reg * jnp.mean(jnp.sum(params.jaw ** 2, -1)))
        return lmk + reg, lmk

    tx = optax.adam(learning_rate)

    def step(carry, _):
        r, opt = carry
        (_, lmk), grads = jax.value_and_grad(loss_fn, has_aux=True)(r)
        updates, opt = tx.update(grads, opt, r)
        return (optax.apply_updates(r, updates), opt), lmk

    (raw, _), history = jax.lax.scan(step, (raw, tx.init(raw)), None, length=steps)
    params, _ = _constrained(raw)
    return params, camera(raw), history
