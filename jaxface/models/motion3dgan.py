"""Motion3DGAN: conditional generator and critic on the tangent space of the SRVF sphere.

Layout: SRVFs and tangent vectors are ``[B, T, F]`` (frames x features, ``T = 30``, ``F = 204``),
the convention of :mod:`jaxface.manifold`. The official TensorFlow code treats the same data as a
``(F, T, 1)`` image (features along the height, frames along the width); the modules below transpose
to and from that image layout internally, so ``G(z, c)[b]`` equals the official ``(204, 30)`` output
transposed.

Architecture (official ``SRVF_WGAN.py``, scaled by ``base_channels``):

* Generator: ``concat(z, c)`` -> dense to ``(F/4) * floor(T/4) * C`` -> reshape
  ``(F/4, floor(T/4), C)`` -> ReLU -> concat condition channels -> 2 x [nearest resize x2 ->
  conv3x3 (C/2, C/4) -> ReLU -> concat] -> nearest resize to ``(F, T)`` -> conv3x3 (C/8) -> ReLU ->
  concat -> conv3x3 (1) -> tanh. Convolutions have no bias, as in the official code. ``C = 1024``
  officially.
* Critic: ``(F, T, 1)`` image ⊕ condition channels -> 3 x [conv5x5 stride 2 + bias -> norm -> ReLU
  -> concat] (64/32/16 channels) -> flatten -> dense 1024 -> norm -> LeakyReLU(0.2) -> concat
  condition -> dense 1.

The condition channels are never built: each convolution and the critic's first dense layer add
their response to the code (:func:`jaxface.models.strided_conv.constant_planes_response`), the
same function of the same parameters as the official concatenation, up to float rounding.

Departures from the official code, each a field:

* ``Motion3DGANGenerator.project_to_tangent`` (default ``True``): project the output onto the
  tangent space at the reference point. The official generator output is not tangent, so ``exp_map``
  of it leaves the sphere (its released samples have norms 0.95-1.15); projecting keeps
  ``exp_map(p, G(z, c))`` on the sphere.
* ``Motion3DGANCritic.norm`` (default ``"layer"``): the official critic uses BatchNorm in training
  mode, which makes each score depend on the whole batch, so the per-example gradient norms of the
  WGAN-GP penalty are not those of a per-example critic; layer normalisation (per example) is what
  the WGAN-GP authors recommend. ``"batch"`` reproduces the official behaviour (batch statistics
  always, no running averages, offset only), ``"none"`` drops it.
* The official generator concatenates the condition to the noise twice (a duplicated input,
  equivalent to one copy with summed weights); here it is concatenated once.
* Condition: the paper's one-hot code (:func:`one_hot_condition`) or the official 36-d
  random-magnitude code (:func:`rb_condition`). The modules accept any ``[B, C]`` condition.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxface.manifold import project_to_tangent as _project_to_tangent
from jaxface.models.strided_conv import StridedConv

__all__ = [
    "Motion3DGANCritic",
    "Motion3DGANGenerator",
    "TrainModeBatchNorm",
    "official_conv_init",
    "official_dense_init",
    "one_hot_condition",
    "rb_condition",
    "resize_nearest",
]


def one_hot_condition(labels: jax.Array, num_classes: int = 12) -> jax.Array:
    """The paper's condition: one-hot expression labels.

    Args:
      labels: ``[B]`` int labels in ``[0, num_classes)``.
      num_classes: number of expressions.

    Returns:
      ``[B, num_classes]`` float32.
    """
    return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)


def rb_condition(
    labels: jax.Array, key: jax.Array, num_classes: int = 12, rb_dim: int = 3
) -> jax.Array:
    """The official random-magnitude condition (``y_to_rb_label``).

    For each example, ``rb_dim`` magnitudes ``a ~ |U(-1, 1)|`` are drawn; the true class's
    ``rb_dim`` slots get ``+a`` and every other class's slots get ``-a``. The official code redraws
    it for every batch.

    Args:
      labels: ``[B]`` int labels in ``[0, num_classes)``.
      key: PRNG key.
      num_classes: number of expressions.
      rb_dim: slots per class.

    Returns:
      ``[B, num_classes * rb_dim]`` float32, class-major (``[class0 slots, class1 slots, ...]``).
    """
    labels = jnp.asarray(labels)
    a = jnp.abs(jax.random.uniform(key, (labels.shape[0], rb_dim), jnp.float32, -1.0, 1.0))
    sign = 2.0 * jax.nn.one_hot(labels, num_classes, dtype=jnp.float32) - 1.0  # [B, K]
    return (sign[:, :, None] * a[:, None, :]).reshape(labels.shape[0], num_classes * rb_dim)


def resize_nearest(x: jax.Array, size: tuple[int, int]) -> jax.Array:
    """Nearest-neighbour resize of NHWC images with TF1's rule ``src = floor(dst * in / out)``.

    This is ``tf.image.resize_nearest_neighbor`` with
    ``align_corners=False, half_pixel_centers=False`` (the official op); an integer upscale repeats
    each pixel.

    Args:
      x: ``[B, H, W, C]``.
      size: output ``(H', W')`` (static).

    Returns:
      ``[B, H', W', C]``.
    """
    h, w = x.shape[1:3]
    rows = np.minimum(np.floor(np.arange(size[0]) * (h / size[0])).astype(np.int32), h - 1)
    cols = np.minimum(np.floor(np.arange(size[1]) * (w / size[1])).astype(np.int32), w - 1)
    return x[:, rows][:, :, cols]


class _PlanesDense(nn.Module):
    """``nn.Dense(features)`` of ``[B, H, W, K]`` features with a ``[B, C]`` code appended as
    constant channels, then flattened (the parameters of that Dense). The planes' kernel rows
    act on the code summed over the positions, so the planes are never built."""

    features: int
    kernel_init: Callable

    @nn.compact
    def __call__(self, x: jax.Array, condition: jax.Array) -> jax.Array:
        b, h, w, k = x.shape
        c = condition.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (h * w * (k + c), self.features),
                            jnp.float32)
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,), jnp.float32)
        per_position = kernel.reshape(h * w, k + c, self.features)
        y = x.reshape(b, h * w * k) @ per_position[:, :k].reshape(h * w * k, self.features)
        return y + condition.astype(y.dtype) @ per_position[:, k:].sum(0) + bias


def official_dense_init(key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
    """The official ``fc`` initialiser: normal with std ``(fan_in * fan_out) ** -0.25``.

    Args:
      key: PRNG key.
      shape: ``(fan_in, fan_out)``.
      dtype: parameter dtype.

    Returns:
      ``shape`` array.
    """
    return jax.random.normal(key, shape, dtype) * (shape[0] * shape[1]) ** -0.25


#: The official convolution initialiser: normal with std 0.02 truncated at two standard deviations.
official_conv_init = nn.initializers.truncated_normal(stddev=0.02)


class TrainModeBatchNorm(nn.Module):
    """Batch normalisation that always uses the current batch's statistics (the official critic).

    No running averages are kept (the official critic never switches to inference mode), so no
    mutable collection is needed. Statistics are taken over every axis but the last.

    Attributes:
      use_scale: learn a per-channel scale (official: ``False``).
      epsilon: variance offset.
    """

    use_scale: bool = False
    epsilon: float = 1e-5

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        """Normalise ``x [..., C]`` over all leading axes; returns the same shape."""
        axes = tuple(range(x.ndim - 1))
        mean = jnp.mean(x, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(x - mean), axis=axes, keepdims=True)
        y = (x - mean) * jax.lax.rsqrt(var + self.epsilon)
        if self.use_scale:
            y = y * self.param("scale", nn.initializers.ones, (x.shape[-1],))
        return y + self.param("bias", nn.initializers.zeros, (x.shape[-1],))


class Motion3DGANGenerator(nn.Module):
    """Conditional generator of tangent vectors at the reference point.

    Attributes:
      num_frames: ``T`` (30).
      num_features: ``F`` (204); must be divisible by 4.
      base_channels: channels after the dense layer (official 1024); the later stages use 1/2,
        1/4 and 1/8 of it.
      project_to_tangent: project the output onto the tangent space at ``reference`` (default; the
        official code does not).
      conv_init: convolution kernel initialiser (official: truncated normal, std 0.02).
      dense_init: dense kernel initialiser (official: normal with std
        ``(fan_in * fan_out) ** -0.25``).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> gen = Motion3DGANGenerator()  # official size: traced only, nothing allocated
      >>> z, cond = jnp.zeros((2, 128)), one_hot_condition(jnp.array([0, 3]))
      >>> reference = jnp.ones((30, 204)) / jnp.sqrt(204.0)
      >>> init = lambda key: gen.init_with_output(key, z, cond, reference)[0]
      >>> jax.eval_shape(init, jax.random.key(0)).shape
      (2, 30, 204)
    """

    num_frames: int = 30
    num_features: int = 204
    base_channels: int = 1024
    project_to_tangent: bool = True
    conv_init: Callable = official_conv_init
    dense_init: Callable = official_dense_init

    @nn.compact
    def __call__(
        self, z: jax.Array, condition: jax.Array, reference: jax.Array | None = None
    ) -> jax.Array:
        """Generate tangent vectors.

        Args:
          z: ``[B, noise_dim]`` noise (official: N(0, 1), 128-d).
          condition: ``[B, C]`` condition code (one-hot or rb code).
          reference: ``[T, F]`` reference point; required when ``project_to_tangent``.

        Returns:
          ``[B, T, F]`` float32 tangent vectors, entries in ``[-1, 1]`` before projection.
        """
        if self.num_features % 4:
            raise ValueError(f"num_features must be divisible by 4, got {self.num_features}.")
        if self.project_to_tangent and reference is None:
            raise ValueError("project_to_tangent=True needs the reference point.")
        c = self.base_channels
        h0, w0 = self.num_features // 4, self.num_frames // 4
        condition = jnp.asarray(condition, jnp.float32)
        x = jnp.concatenate([jnp.asarray(z, jnp.float32), condition], axis=-1)
        x = nn.Dense(h0 * w0 * c, kernel_init=self.dense_init, name="fc")(x)
        x = nn.relu(x.reshape(-1, h0, w0, c))
        stages = [
            ((2 * h0, 2 * w0), c // 2),
            ((4 * h0, 4 * w0), c // 4),
            ((self.num_features, self.num_frames), c // 8),
        ]
        # Each convolution reads the condition as constant channels after the features
        # (official); StridedConv adds their response without building them.
        for i, (size, channels) in enumerate(stages):
            x = resize_nearest(x, size)
            x = nn.relu(StridedConv(channels, (3, 3), 1, use_bias=False,
                                    kernel_init=self.conv_init, name=f"conv{i}")(x, condition))
        x = StridedConv(1, (3, 3), 1, use_bias=False, kernel_init=self.conv_init,
                        name="conv_out")(x, condition)
        v = jnp.tanh(x[..., 0]).transpose(0, 2, 1)  # (B, F, T) image -> [B, T, F]
        if self.project_to_tangent:
            v = _project_to_tangent(jnp.asarray(reference, v.dtype), v)
        return v


class Motion3DGANCritic(nn.Module):
    """Conditional WGAN critic on tangent vectors.

    Attributes:
      channels: channels of the stride-2 5x5 convolutions, one stage each (official
        ``(64, 32, 16)``).
      hidden: width of the dense layer (official 1024).
      norm: ``"layer"`` (default), ``"batch"`` (official; batch statistics, see
        :class:`TrainModeBatchNorm`) or ``"none"``.
      conv_init: convolution kernel initialiser (official: truncated normal, std 0.02).
      dense_init: dense kernel initialiser (official: normal with std
        ``(fan_in * fan_out) ** -0.25``).
      conv_impl: form of the stride-2 convolutions
        (:data:`jaxface.models.strided_conv.STRIDED_CONV_IMPLS`): ``"auto"`` takes patches and
        a matmul on CPU, where XLA's kernel gradients of strided convolutions are slow (the
        Motion3DGAN train step 2.2x faster), and XLA's convolution elsewhere. The parameters
        are those of ``flax.linen.Conv`` either way.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> critic = Motion3DGANCritic()  # official size, traced only
      >>> v, cond = jnp.zeros((3, 30, 204)), one_hot_condition(jnp.array([0, 1, 2]))
      >>> init = lambda key: critic.init_with_output(key, v, cond)[0]
      >>> jax.eval_shape(init, jax.random.key(0)).shape
      (3,)
    """

    channels: tuple[int, ...] = (64, 32, 16)
    hidden: int = 1024
    norm: Literal["layer", "batch", "none"] = "layer"
    conv_init: Callable = official_conv_init
    dense_init: Callable = official_dense_init
    conv_impl: str = "auto"

    def _normalise(self, x: jax.Array, name: str) -> jax.Array:
        if self.norm == "layer":
            axes = tuple(range(1, x.ndim))
            return nn.LayerNorm(reduction_axes=axes, feature_axes=-1, name=name)(x)
        if self.norm == "batch":
            return TrainModeBatchNorm(name=name)(x)
        if self.norm == "none":
            return x
        raise ValueError(f"norm must be 'layer', 'batch' or 'none', got {self.norm!r}.")

    @nn.compact
    def __call__(self, v: jax.Array, condition: jax.Array) -> jax.Array:
        """Score tangent vectors.

        Args:
          v: ``[B, T, F]`` tangent vectors.
          condition: ``[B, C]`` condition code.

        Returns:
          ``[B]`` float32 scores.
        """
        condition = jnp.asarray(condition, jnp.float32)
        x = jnp.asarray(v, jnp.float32).transpose(0, 2, 1)[..., None]  # [B, F, T, 1]
        # The condition enters every layer as constant channels after the features (official);
        # the layers add their response without building them.
        for i, channels in enumerate(self.channels):
            x = StridedConv(channels, (5, 5), 2, impl=self.conv_impl,
                            kernel_init=self.conv_init, name=f"conv{i}")(x, condition)
            x = nn.relu(self._normalise(x, f"norm{i}"))
        x = _PlanesDense(self.hidden, kernel_init=self.dense_init, name="fc")(x, condition)
        x = jnp.concatenate([nn.leaky_relu(self._normalise(x, "norm_fc"), 0.2), condition], -1)
        return nn.Dense(1, kernel_init=self.dense_init, name="out")(x)[:, 0]
