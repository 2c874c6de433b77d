"""MobileNetV3-minimal feature extractors: the image backbones of the SMIRK encoders.

The two "minimalistic" MobileNetV3 variants of Howard et al. (ICCV 2019) with the TensorFlow
conventions of their ImageNet checkpoints, as timm builds them under the names
``tf_mobilenetv3_small_minimal_100`` (``variant="small"``) and
``tf_mobilenetv3_large_minimal_100`` (``variant="large"``) with ``features_only=True``:

- ReLU everywhere; no squeeze-excite, no hard-swish; every depthwise kernel is ``3 x 3``;
- TensorFlow ``'SAME'`` padding (a stride-2 convolution of an even input pads one pixel at the
  bottom and the right only);
- BatchNorm with ``epsilon = 1e-3`` and running averages updated with momentum ``0.9`` (timm's
  PyTorch momentum ``0.1``: the ``tf_`` variants change only epsilon);
- convolutions without bias, each followed by BatchNorm.

The network is a ``3 x 3`` stride-2 stem convolution to 16 channels, then stages of blocks
(:data:`ARCHITECTURES`), the last one a ``1 x 1`` convolution to 576 (small) or 960 (large)
channels. The output is the last feature map at stride 32, ``[B, H/32, W/32, C]``: what
``features_only`` models return last (the classifier head, ``conv_head`` and ``classifier``, is
not part of a feature extractor). Parameter names mirror timm's ``state_dict`` keys
(``blocks.2.1.conv_pw.weight`` is ``params["blocks_2_1"]["conv_pw"]["kernel"]``), which
:func:`jaxface.models.timm_weights.load_timm_weights` relies on.

Parameters (``params`` only, as timm counts them): 428,888 for the small feature extractor and
1,413,208 for the large one. With timm's classifier head added (a ``1 x 1`` convolution to 1024
or 1280 channels with bias, then a 1000-way linear layer) these are the published counts of the
full models (2,044,736 and 3,924,288: timm publishes 2.04 M and 3.9 M).

The depthwise convolutions are sums of nine shifted, scaled copies of the input
(:func:`depthwise_conv3x3`) on CPU, where XLA's grouped convolution is tens of times slower,
and XLA's grouped convolution elsewhere (``depthwise_impl``).

One known difference: PyTorch updates ``running_var`` with the unbiased batch variance, Flax
with the biased one (a factor ``n / (n - 1)`` on the update, ``n = B * H * W``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.linen.dtypes import promote_dtype

from jaxface.models.strided_conv import strided_taps

__all__ = [
    "ARCHITECTURES",
    "BN_EPSILON",
    "BN_MOMENTUM",
    "DEPTHWISE_IMPLS",
    "BlockSpec",
    "ConvBnAct",
    "DepthwiseConv",
    "DepthwiseSeparable",
    "InvertedResidual",
    "MobileNetV3Minimal",
    "conv_init",
    "depthwise_conv3x3",
    "expanded_channels",
    "feature_width",
]

#: BatchNorm epsilon of TensorFlow's checkpoints (timm's ``BN_EPS_TF_DEFAULT``).
BN_EPSILON = 1e-3
#: Flax momentum of the running averages (PyTorch's default 0.1 as ``1 - 0.1``).
BN_MOMENTUM = 0.9
STEM_CHANNELS = 16
#: ``"auto"`` (``"shifted"`` on CPU, ``"conv"`` elsewhere), ``"shifted"`` or ``"conv"``.
DEPTHWISE_IMPLS = ("auto", "shifted", "conv")


@dataclass(frozen=True)
class BlockSpec:
    """One line of a stage of the architecture table.

    Attributes:
      kind: ``"ds"`` depthwise-separable (depthwise 3x3, BN, ReLU, pointwise 1x1, BN), ``"ir"``
        inverted residual (pointwise expansion, BN, ReLU, depthwise 3x3, BN, ReLU, pointwise
        projection, BN) or ``"cn"`` (1x1 convolution, BN, ReLU).
      repeats: number of consecutive blocks of this line.
      stride: stride of the first of them (the others have stride 1).
      expansion: ``"ir"`` only: hidden width = ``expanded_channels(in * expansion)``.
      out: output channels.
    """

    kind: str
    repeats: int
    stride: int
    out: int
    expansion: float = 1.0


def _ds(r, s, c):
    return BlockSpec("ds", r, s, c)


def _ir(r, s, e, c):
    return BlockSpec("ir", r, s, c, e)


def _cn(c):
    return BlockSpec("cn", 1, 1, c)


#: Stages of blocks after the stem, per variant (timm's ``_gen_mobilenet_v3`` minimal tables).
#: A residual connection joins every ``ds``/``ir`` block whose stride is 1 and whose input and
#: output widths agree.
ARCHITECTURES: dict[str, tuple[tuple[BlockSpec, ...], ...]] = {
    "small": (
        (_ds(1, 2, 16),),
        (_ir(1, 2, 4.5, 24), _ir(1, 1, 3.67, 24)),
        (_ir(1, 2, 4.0, 40), _ir(2, 1, 6.0, 40)),
        (_ir(2, 1, 3.0, 48),),
        (_ir(3, 2, 6.0, 96),),
        (_cn(576),),
    ),
    "large": (
        (_ds(1, 1, 16),),
        (_ir(1, 2, 4.0, 24), _ir(1, 1, 3.0, 24)),
        (_ir(3, 2, 3.0, 40),),
        (_ir(1, 2, 6.0, 80), _ir(1, 1, 2.5, 80), _ir(2, 1, 2.3, 80)),
        (_ir(2, 1, 6.0, 112),),
        (_ir(3, 2, 6.0, 160),),
        (_cn(960),),
    ),
}


def feature_width(variant: str) -> int:
    """Channels of the last feature map: 576 (``"small"``) or 960 (``"large"``)."""
    return _stages(variant)[-1][-1].out


def expanded_channels(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor`` (at least ``divisor``), one step
    up when rounding lost more than 10% (MobileNet's rule for the hidden widths)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _stages(variant: str) -> tuple[tuple[BlockSpec, ...], ...]:
    if variant not in ARCHITECTURES:
        raise ValueError(f"MobileNetV3 variant must be one of {sorted(ARCHITECTURES)}, "
                         f"got {variant!r}")
    return ARCHITECTURES[variant]


def conv_init(groups: int = 1):
    """TensorFlow's (and timm's) convolution initialiser: normal, std ``sqrt(2 / fan_out)`` with
    ``fan_out = kh * kw * out / groups``, for a Flax kernel ``[kh, kw, in / groups, out]``."""

    def init(key, shape, dtype=jnp.float32):
        fan_out = shape[0] * shape[1] * shape[3] // groups
        return math.sqrt(2.0 / fan_out) * jax.random.normal(key, shape, dtype)

    return init


def _conv(features: int, kernel: int, stride: int, dtype: Any, name: str) -> nn.Conv:
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding="SAME",
                   use_bias=False, kernel_init=conv_init(), dtype=dtype, name=name)


def depthwise_conv3x3(x: jax.Array, kernel: jax.Array, stride: int = 1,
                      impl: str = "auto") -> jax.Array:
    """Depthwise ``3 x 3`` convolution with TensorFlow 'SAME' padding.

    Args:
      x: ``[B, H, W, C]``.
      kernel: ``[3, 3, 1, C]`` (Flax's layout of a grouped convolution with ``C`` groups).
      stride: ``s`` in both directions.
      impl: one of :data:`DEPTHWISE_IMPLS`: ``"shifted"`` adds the nine taps as shifted slices
        of the padded input (one fused loop on CPU), ``"conv"`` is XLA's grouped convolution.

    Returns:
      ``[B, ceil(H / s), ceil(W / s), C]``.
    """
    if impl not in DEPTHWISE_IMPLS:
        raise ValueError(f"depthwise_impl must be one of {DEPTHWISE_IMPLS}, got {impl!r}")
    if impl == "auto":
        impl = "shifted" if jax.default_backend() == "cpu" else "conv"
    if impl == "conv":
        return jax.lax.conv_general_dilated(
            x, kernel, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"),
            feature_group_count=x.shape[-1])
    y = None
    for k, tap in enumerate(strided_taps(x, (3, 3), stride)):
        tap = tap * kernel[k // 3, k % 3, 0]
        y = tap if y is None else y + tap
    return y


class DepthwiseConv(nn.Module):
    """``[B, H, W, C]`` -> ``[B, H/s, W/s, C]``: a bias-free depthwise ``3 x 3`` convolution
    (kernel ``[3, 3, 1, C]``, as :class:`flax.linen.Conv` with ``C`` groups stores it).

    Attributes:
      stride: ``s``.
      impl: one of :data:`DEPTHWISE_IMPLS`.
      dtype: compute dtype (``None``: float32).
    """

    stride: int = 1
    impl: str = "auto"
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c = x.shape[-1]
        kernel = self.param("kernel", conv_init(groups=c), (3, 3, 1, c), jnp.float32)
        x, kernel = promote_dtype(x, kernel, dtype=self.dtype)
        return depthwise_conv3x3(x, kernel, self.stride, self.impl)


def _bn(train: bool, dtype: Any, name: str) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                        use_fast_variance=False, dtype=dtype, name=name)


class DepthwiseSeparable(nn.Module):
    """``[B, H, W, C]`` -> ``[B, H/s, W/s, out]``: depthwise 3x3, BN, ReLU, 1x1, BN (+ input).

    Attributes:
      out: output channels.
      stride: ``s`` of the depthwise convolution.
      dtype: compute dtype (``None``: float32).
      depthwise_impl: one of :data:`DEPTHWISE_IMPLS`.
    """

    out: int
    stride: int = 1
    dtype: Any = None
    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        c = x.shape[-1]
        y = DepthwiseConv(self.stride, self.depthwise_impl, self.dtype, name="conv_dw")(x)
        y = nn.relu(_bn(train, self.dtype, "bn1")(y))
        y = _conv(self.out, 1, 1, self.dtype, "conv_pw")(y)
        y = _bn(train, self.dtype, "bn2")(y)
        return y + x if self.stride == 1 and c == self.out else y


class InvertedResidual(nn.Module):
    """``[B, H, W, C]`` -> ``[B, H/s, W/s, out]``: 1x1 to ``mid``, BN, ReLU, depthwise 3x3,
    BN, ReLU, 1x1 to ``out``, BN (+ input when ``s = 1`` and ``C = out``).

    Attributes:
      out: output channels.
      mid: hidden (expanded) channels.
      stride: ``s`` of the depthwise convolution.
      dtype: compute dtype (``None``: float32).
      depthwise_impl: one of :data:`DEPTHWISE_IMPLS`.
    """

    out: int
    mid: int
    stride: int = 1
    dtype: Any = None
    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = _conv(self.mid, 1, 1, self.dtype, "conv_pw")(x)
        y = nn.relu(_bn(train, self.dtype, "bn1")(y))
        y = DepthwiseConv(self.stride, self.depthwise_impl, self.dtype, name="conv_dw")(y)
        y = nn.relu(_bn(train, self.dtype, "bn2")(y))
        y = _conv(self.out, 1, 1, self.dtype, "conv_pwl")(y)
        y = _bn(train, self.dtype, "bn3")(y)
        return y + x if self.stride == 1 and x.shape[-1] == self.out else y


class ConvBnAct(nn.Module):
    """``[B, H, W, C]`` -> ``[B, H, W, out]``: 1x1 convolution, BN, ReLU.

    Attributes:
      out: output channels.
      dtype: compute dtype (``None``: float32).
    """

    out: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        y = _conv(self.out, 1, 1, self.dtype, "conv")(x)
        return nn.relu(_bn(train, self.dtype, "bn1")(y))


class MobileNetV3Minimal(nn.Module):
    """Images ``[B, H, W, 3]`` in ``[0, 1]`` -> last feature map ``[B, H/32, W/32, C]``.

    ``C`` is :func:`feature_width` (576 small, 960 large); ``H/32`` rounds up (TF padding). The
    images are used as they are (no mean/std normalisation, as in SMIRK). With ``train=True``
    BatchNorm normalises with the batch statistics and updates the running averages (apply
    with ``mutable=["batch_stats"]``); otherwise it uses the running averages.

    Attributes:
      variant: ``"small"`` (``tf_mobilenetv3_small_minimal_100``) or ``"large"``
        (``tf_mobilenetv3_large_minimal_100``).
      dtype: compute dtype (``None``: float32); parameters and statistics stay float32.
      depthwise_impl: one of :data:`DEPTHWISE_IMPLS` (the same numbers either way).

    Example:
      >>> net = MobileNetV3Minimal("small")
      >>> x = jnp.zeros((2, 64, 64, 3))
      >>> variables = net.init(jax.random.key(0), x)
      >>> net.apply(variables, x).shape
      (2, 2, 2, 576)
    """

    variant: str = "large"
    dtype: Any = None
    depthwise_impl: str = "auto"

    @nn.compact
    def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
        """The last feature map of ``images``."""
        stages = _stages(self.variant)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"MobileNetV3Minimal expects images [B, H, W, 3], "
                             f"got shape {tuple(images.shape)}")
        x = _conv(STEM_CHANNELS, 3, 2, self.dtype, "conv_stem")(images)
        x = nn.relu(_bn(train, self.dtype, "bn1")(x))
        for s, stage in enumerate(stages):
            b = 0
            for spec in stage:
                for r in range(spec.repeats):
                    stride = spec.stride if r == 0 else 1
                    name = f"blocks_{s}_{b}"
                    if spec.kind == "ds":
                        block = DepthwiseSeparable(spec.out, stride, self.dtype,
                                                   self.depthwise_impl, name=name)
                    elif spec.kind == "ir":
                        mid = expanded_channels(x.shape[-1] * spec.expansion)
                        block = InvertedResidual(spec.out, mid, stride, self.dtype,
                                                 self.depthwise_impl, name=name)
                    else:
                        block = ConvBnAct(spec.out, self.dtype, name=name)
                    x = block(x, train)
                    b += 1
        return x
