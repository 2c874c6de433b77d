"""SMIRK's image encoders: a face image -> pose, camera, shape, expression, eyelids and jaw.

Three separate encoders (Retsinas et al., CVPR 2024, official ``smirk_encoder.py``), each a
MobileNetV3-minimal backbone (:class:`~jaxface.models.mobilenet_v3.MobileNetV3Minimal`),
global average pooling of its last feature map and one linear layer:

- :class:`PoseEncoder` (small backbone, 576 features) -> 6 values: the head's axis-angle
  rotation ``pose`` (3) and the orthographic camera ``cam = (scale, tx, ty)``;
- :class:`ShapeEncoder` (large backbone, 960 features) -> ``num_shape`` identity coefficients
  (300 in SMIRK);
- :class:`ExpressionEncoder` (large backbone) -> ``num_expression`` expression coefficients
  (50), 2 eyelid values clamped to ``[0, 1]`` and 3 jaw values
  ``[relu(x0), clip(x1, -0.2, 0.2), clip(x2, -0.2, 0.2)]`` (jaw opening, then the small
  sideways rotations).

The linear layers start from PyTorch's default initialisation (kernel and bias uniform in
``+-1/sqrt(fan_in)``, :func:`torch_linear_init`), rescaled as the official code does: the pose
layer by ``1e-3`` with the camera-scale row set to zero and its bias to 7 (a face filling the
crop), the shape layer to zero (the mean identity) and the expression layer by ``0.1``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from jaxface.models.mobilenet_v3 import MobileNetV3Minimal

__all__ = [
    "CAM_SCALE_BIAS",
    "EXPRESSION_HEAD_SCALE",
    "EYELID_ACTIVATIONS",
    "JAW_LIMIT",
    "POSE_HEAD_SCALE",
    "ExpressionEncoder",
    "FaceEncoder",
    "FaceEncoding",
    "PoseEncoder",
    "ShapeEncoder",
    "torch_linear_init",
]

#: Factor of the pose layer's initial kernel and bias.
POSE_HEAD_SCALE = 1e-3
#: Initial bias of the camera scale (its kernel column starts at zero).
CAM_SCALE_BIAS = 7.0
#: Factor of the expression layer's initial kernel and bias.
EXPRESSION_HEAD_SCALE = 0.1
#: Bound of the jaw's sideways rotations (radians).
JAW_LIMIT = 0.2
#: ``"clamp"`` (official) or ``"sigmoid"`` (a deviation: clamping passes no gradient to an
#: eyelid value outside ``[0, 1]``, the sigmoid always does).
EYELID_ACTIVATIONS = ("clamp", "sigmoid")
_CAM_SCALE = 3  # index of the camera scale among the pose layer's 6 outputs


def torch_linear_init(fan_in: int, scale: float = 1.0):
    """``(kernel_init, bias_init)`` of PyTorch's ``nn.Linear`` times ``scale``: both uniform in
    ``+-scale / sqrt(fan_in)`` (Flax kernel ``[fan_in, out]``)."""
    bound = scale / fan_in ** 0.5

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init, init


def _pooled(features: jax.Array) -> jax.Array:
    """``[B, h, w, C]`` -> ``[B, C]`` float32 (global average pooling)."""
    return jnp.mean(features.astype(jnp.float32), axis=(1, 2))


class PoseEncoder(nn.Module):
    """Images ``[B, H, W, 3]`` in ``[0, 1]`` -> ``(pose [B, 3], cam [B, 3])``.

    ``pose`` is an axis-angle rotation, ``cam`` is ``(scale, tx, ty)`` of the orthographic
    projection ``s * (x + t)``; at initialisation ``cam[:, 0] = 7`` and everything else is close
    to zero.

    Attributes:
      backbone: MobileNetV3-minimal variant (``"small"`` in SMIRK).
      dtype: compute dtype of the backbone (``None``: float32); the head runs in float32.
    """

    backbone: str = "small"
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        """Pose and camera of each image."""
        x = _pooled(MobileNetV3Minimal(self.backbone, self.dtype, name="backbone")(images, train))
        kernel_init, bias_init = torch_linear_init(x.shape[-1], POSE_HEAD_SCALE)

        def kernel(key, shape, dtype=jnp.float32):
            return kernel_init(key, shape, dtype).at[:, _CAM_SCALE].set(0.0)

        def bias(key, shape, dtype=jnp.float32):
            return bias_init(key, shape, dtype).at[_CAM_SCALE].set(CAM_SCALE_BIAS)

        out = nn.Dense(6, kernel_init=kernel, bias_init=bias, name="head")(x)
        return out[:, :3], out[:, 3:]


class ShapeEncoder(nn.Module):
    """Images ``[B, H, W, 3]`` in ``[0, 1]`` -> identity coefficients ``[B, num_shape]`` (zero
    at initialisation).

    Attributes:
      num_shape: number of identity coefficients (300 in SMIRK).
      backbone: MobileNetV3-minimal variant (``"large"`` in SMIRK).
      dtype: compute dtype of the backbone (``None``: float32); the head runs in float32.
    """

    num_shape: int = 300
    backbone: str = "large"
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
        """Identity coefficients of each image."""
        x = _pooled(MobileNetV3Minimal(self.backbone, self.dtype, name="backbone")(images, train))
        return nn.Dense(self.num_shape, kernel_init=nn.initializers.zeros,
                        bias_init=nn.initializers.zeros, name="head")(x)


class ExpressionEncoder(nn.Module):
    """Images ``[B, H, W, 3]`` in ``[0, 1]`` -> ``(expression [B, E], eyelids [B, 2],
    jaw [B, 3])``.

    The head's ``E + 5`` outputs are the expression, the two eyelids (clamped to ``[0, 1]``, or
    a sigmoid) and the jaw: ``[relu(x0), clip(x1:3, -JAW_LIMIT, JAW_LIMIT)]``.

    Attributes:
      num_expression: ``E`` (50 in SMIRK).
      backbone: MobileNetV3-minimal variant (``"large"`` in SMIRK).
      eyelids: ``"clamp"`` (official) or ``"sigmoid"`` (see :data:`EYELID_ACTIVATIONS`).
      dtype: compute dtype of the backbone (``None``: float32); the head runs in float32.
    """

    num_expression: int = 50
    backbone: str = "large"
    eyelids: str = "clamp"
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jax.Array,
                 train: bool = False) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Expression, eyelids and jaw of each image."""
        if self.eyelids not in EYELID_ACTIVATIONS:
            raise ValueError(f"eyelids must be one of {EYELID_ACTIVATIONS}, "
                             f"got {self.eyelids!r}")
        x = _pooled(MobileNetV3Minimal(self.backbone, self.dtype, name="backbone")(images, train))
        kernel_init, bias_init = torch_linear_init(x.shape[-1], EXPRESSION_HEAD_SCALE)
        e = self.num_expression
        out = nn.Dense(e + 5, kernel_init=kernel_init, bias_init=bias_init, name="head")(x)
        raw_eyelids = out[:, e:e + 2]
        if self.eyelids == "clamp":
            eyelids = jnp.clip(raw_eyelids, 0.0, 1.0)
        else:
            eyelids = jax.nn.sigmoid(raw_eyelids)
        jaw = jnp.concatenate([jax.nn.relu(out[:, e + 2:e + 3]),
                               jnp.clip(out[:, e + 3:e + 5], -JAW_LIMIT, JAW_LIMIT)], axis=-1)
        return out[:, :e], eyelids, jaw


class FaceEncoding(NamedTuple):
    """What :class:`FaceEncoder` reads from a batch of ``B`` images (all float32).

    Attributes:
      pose: ``[B, 3]`` axis-angle rotation of the head.
      cam: ``[B, 3]`` orthographic camera ``(scale, tx, ty)``.
      shape: ``[B, S]`` identity coefficients.
      expression: ``[B, E]`` expression coefficients.
      eyelids: ``[B, 2]`` eyelid closure in ``[0, 1]`` (left, right).
      jaw: ``[B, 3]`` jaw rotation, opening ``>= 0`` first, the others in ``+-0.2``.
    """

    pose: jax.Array
    cam: jax.Array
    shape: jax.Array
    expression: jax.Array
    eyelids: jax.Array
    jaw: jax.Array


class FaceEncoder(nn.Module):
    """Images ``[B, H, W, 3]`` in ``[0, 1]`` (224 x 224 in SMIRK) -> :class:`FaceEncoding`.

    The three encoders share nothing but the input; their variables sit under
    ``pose_encoder``, ``shape_encoder`` and ``expression_encoder`` (each with a ``backbone`` and
    a ``head``), so one of them can be trained or frozen alone.

    Attributes:
      num_shape: ``S`` (300 in SMIRK).
      num_expression: ``E`` (50 in SMIRK).
      pose_backbone: variant of the pose encoder's backbone (``"small"``).
      shape_backbone: variant of the shape encoder's backbone (``"large"``).
      expression_backbone: variant of the expression encoder's backbone (``"large"``).
      eyelids: ``"clamp"`` (official) or ``"sigmoid"``.
      dtype: compute dtype of the backbones (``None``: float32).

    Example:
      >>> encoder = FaceEncoder(num_shape=10, num_expression=5)
      >>> x = jnp.zeros((1, 64, 64, 3))
      >>> out = encoder.apply(encoder.init(jax.random.key(0), x), x)
      >>> out.shape.shape, out.expression.shape, float(out.cam[0, 0])
      ((1, 10), (1, 5), 7.0)
    """

    num_shape: int = 300
    num_expression: int = 50
    pose_backbone: str = "small"
    shape_backbone: str = "large"
    expression_backbone: str = "large"
    eyelids: str = "clamp"
    dtype: Any = None

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> FaceEncoding:
        """The FLAME-style parameters of each image."""
        pose, cam = PoseEncoder(self.pose_backbone, self.dtype, name="pose_encoder")(
            images, train)
        shape = ShapeEncoder(self.num_shape, self.shape_backbone, self.dtype,
                             name="shape_encoder")(images, train)
        expression, eyelids, jaw = ExpressionEncoder(
            self.num_expression, self.expression_backbone, self.eyelids, self.dtype,
            name="expression_encoder")(images, train)
        return FaceEncoding(pose=pose, cam=cam, shape=shape, expression=expression,
                            eyelids=eyelids, jaw=jaw)
