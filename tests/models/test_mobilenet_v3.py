"""MobileNetV3-minimal: the published block tables, parameter counts, TF padding, and the
outputs of an independent PyTorch network given the same weights (through the timm loader)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.models import MobileNetV3Minimal, load_timm_weights
from jaxface.models.mobilenet_v3 import (
    ARCHITECTURES,
    DepthwiseSeparable,
    InvertedResidual,
    depthwise_conv3x3,
    expanded_channels,
    feature_width,
)
from tests.models.mobilenet_tables import TABLES

# timm's published parameter counts (millions, as printed) of the full ImageNet classifiers:
# 2.04 in timm's benchmark tables, 3.9 on the model card.
PUBLISHED_MILLIONS = {"small": "2.04", "large": "3.9"}
# timm's classifier head on top of the features: 1x1 conv (with bias) and a 1000-way layer.
HEAD_WIDTH = {"small": 1024, "large": 1280}


@pytest.fixture(scope="module")
def reference():
    pytest.importorskip("torch")
    from tests.models import mobilenet_reference

    return mobilenet_reference


def _shapes(variant, size=64):
    net = MobileNetV3Minimal(variant)
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    return jax.eval_shape(net.init, jax.random.key(0), x)


def _count(tree):
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))


def _table_count(table):
    """Trainable parameters of the table's network, counted by hand (BN: scale and bias)."""
    n, cin = 3 * 3 * 3 * 16 + 2 * 16, 16
    for stage in table:
        for kind, _, mid, out in stage:
            if kind == "ds":
                n += 9 * cin + 2 * cin + cin * out + 2 * out
            elif kind == "ir":
                n += cin * mid + 2 * mid + 9 * mid + 2 * mid + mid * out + 2 * out
            else:
                n += cin * out + 2 * out
            cin = out
    return n


@pytest.mark.parametrize("variant", ["small", "large"])
def test_blocks_follow_the_published_table(variant):
    params = _shapes(variant)["params"]
    table = TABLES[variant]
    assert len(ARCHITECTURES[variant]) == len(table)
    for s, stage in enumerate(table):
        for b, (kind, _, mid, out) in enumerate(stage):
            block = params[f"blocks_{s}_{b}"]
            if kind == "ir":
                assert block["conv_pw"]["kernel"].shape[-1] == mid, (s, b)
                assert block["conv_dw"]["kernel"].shape == (3, 3, 1, mid), (s, b)
                assert block["conv_pwl"]["kernel"].shape[-1] == out, (s, b)
            elif kind == "ds":
                assert block["conv_dw"]["kernel"].shape == (3, 3, 1, mid), (s, b)
                assert block["conv_pw"]["kernel"].shape[-1] == out, (s, b)
            else:
                assert block["conv"]["kernel"].shape[:2] == (1, 1)
                assert block["conv"]["kernel"].shape[-1] == out
        assert f"blocks_{s}_{len(stage)}" not in params
    assert not any("bias" in params[k] for k in params if k.startswith("conv"))


def test_expanded_channels_rounds_as_mobilenet():
    # ratios of the tables whose products are not multiples of 8
    assert expanded_channels(24 * 3.67) == 88
    assert expanded_channels(80 * 2.3) == 184
    assert expanded_channels(80 * 2.5) == 200
    assert expanded_channels(3.0) == 8
    assert expanded_channels(10.0) == 16  # 8 would lose more than 10%


@pytest.mark.parametrize("variant", ["small", "large"])
def test_parameter_counts_match_timm(variant):
    variables = _shapes(variant)
    n = _count(variables["params"])
    assert n == _table_count(TABLES[variant])
    c, h = feature_width(variant), HEAD_WIDTH[variant]
    full = n + (c * h + h) + (h * 1000 + 1000)
    published = PUBLISHED_MILLIONS[variant]
    assert f"{full / 1e6:.{len(published.split('.')[1])}f}" == published
    stats = variables["batch_stats"]
    assert _count(stats) == 2 * sum(v["scale"].size for v in _bn_params(variables["params"]))


def _bn_params(tree):
    if "scale" in tree:
        return [tree]
    return [bn for child in tree.values() if isinstance(child, dict) for bn in _bn_params(child)]


@pytest.mark.parametrize(("variant", "size", "expected"), [
    ("small", 224, (7, 7, 576)), ("large", 224, (7, 7, 960)),
    ("small", 64, (2, 2, 576)), ("large", 65, (3, 3, 960)),
])
def test_output_is_the_last_feature_map(variant, size, expected):
    net = MobileNetV3Minimal(variant)
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    variables = jax.eval_shape(net.init, jax.random.key(0), x)
    assert jax.eval_shape(net.apply, variables, x).shape == (2, *expected)
    assert feature_width(variant) == expected[-1]


def test_bad_input_and_variant_are_named():
    with pytest.raises(ValueError, match="MobileNetV3 variant"):
        MobileNetV3Minimal("medium").init(jax.random.key(0), jnp.zeros((1, 32, 32, 3)))
    with pytest.raises(ValueError, match=r"images \[B, H, W, 3\].*\(1, 32, 32\)"):
        MobileNetV3Minimal("small").init(jax.random.key(0), jnp.zeros((1, 32, 32)))


def test_convolutions_start_with_tf_initialisation():
    params = jax.jit(MobileNetV3Minimal("large").init)(
        jax.random.key(0), jnp.zeros((1, 32, 32, 3)))["params"]
    # normal with std sqrt(2 / fan_out), fan_out = kh * kw * out / groups
    for kernel, fan_out in ((params["blocks_3_0"]["conv_pw"]["kernel"], 240),
                            (params["blocks_3_0"]["conv_dw"]["kernel"], 9),
                            (params["blocks_6_0"]["conv"]["kernel"], 960)):
        std = float(jnp.std(kernel))
        assert abs(std / np.sqrt(2.0 / fan_out) - 1.0) < 0.1
    assert float(jnp.min(params["bn1"]["scale"])) == 1.0 == float(jnp.max(params["bn1"]["scale"]))


def _torch_reference(reference, module, images, train=False):
    import torch

    module.train(train)
    with torch.no_grad():
        return reference.to_nhwc(module(reference.to_nchw(images)))


def _numpy_depthwise(x, kernel, stride):
    """Direct loops: TF 'SAME' (total padding max((out - 1) s + 3 - n, 0), the odd one last)."""
    b, h, w, c = x.shape
    oh, ow = -(-h // stride), -(-w // stride)
    top = max((oh - 1) * stride + 3 - h, 0) // 2
    left = max((ow - 1) * stride + 3 - w, 0) // 2
    out = np.zeros((b, oh, ow, c))
    for i in range(oh):
        for j in range(ow):
            for di in range(3):
                for dj in range(3):
                    y, x_ = i * stride + di - top, j * stride + dj - left
                    if 0 <= y < h and 0 <= x_ < w:
                        out[:, i, j] += x[:, y, x_] * kernel[di, dj, 0]
    return out


@pytest.mark.parametrize(("shape", "stride"), [((2, 7, 6, 5), 1), ((2, 7, 6, 5), 2),
                                               ((1, 8, 9, 3), 2), ((1, 1, 2, 4), 2)])
def test_depthwise_implementations_agree_with_loops(shape, stride):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    kernel = rng.standard_normal((3, 3, 1, shape[-1])).astype(np.float32)
    expected = _numpy_depthwise(x.astype(np.float64), kernel, stride)
    grads = {}
    for impl in ("shifted", "conv"):
        out = jax.jit(depthwise_conv3x3, static_argnums=(2, 3))(x, kernel, stride, impl)
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
        grads[impl] = jax.jit(jax.grad(
            lambda x, k, impl=impl: jnp.sum(depthwise_conv3x3(x, k, stride, impl) ** 3),
            argnums=(0, 1)))(x, kernel)
    for a, b in zip(grads["shifted"], grads["conv"], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="depthwise_impl must be one of"):
        depthwise_conv3x3(x, kernel, stride, "fft")


@pytest.mark.parametrize(("block", "cin", "shape"), [
    (InvertedResidual(out=24, mid=72, stride=2), 16, (2, 9, 7)),  # odd sizes: asymmetric SAME
    (InvertedResidual(out=24, mid=72, stride=2, depthwise_impl="conv"), 16, (2, 9, 7)),
    (InvertedResidual(out=16, mid=48, stride=1), 16, (2, 8, 8)),  # residual
    (DepthwiseSeparable(out=16, stride=1), 16, (2, 6, 5)),  # residual
])
def test_block_matches_torch(reference, tmp_path, block, cin, shape):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((*shape, cin)).astype(np.float32)
    if isinstance(block, InvertedResidual):
        torch_block = reference.IR(cin, block.stride, block.mid, block.out)
    else:
        torch_block = reference.DS(cin, block.stride, block.out)
    reference.randomize(torch_block, reference.to_nchw(x))
    path = reference.save_state_dict(torch_block, tmp_path / "block.npz")
    variables = load_timm_weights(block.init(jax.random.key(0), x), path)
    expected = _torch_reference(reference, torch_block, x)
    eager = block.apply(variables, x)
    jitted = jax.jit(block.apply)(variables, x)
    assert eager.shape == expected.shape
    np.testing.assert_allclose(eager, expected, atol=1e-4, rtol=1e-4)
    np.testing.assert_allclose(jitted, eager, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("variant", "size"), [("small", 67), ("large", 64), ("large", 224)])
def test_backbone_matches_torch(reference, tmp_path, variant, size):
    rng = np.random.default_rng(1)
    x = rng.uniform(0.0, 1.0, (2, size, size, 3)).astype(np.float32)
    torch_net = reference.randomize(reference.MobileNet(variant), reference.to_nchw(x))
    path = reference.save_state_dict(torch_net, tmp_path / f"{variant}.npz")
    net = MobileNetV3Minimal(variant)
    variables = load_timm_weights(jax.jit(net.init)(jax.random.key(0), x), path)
    ours = jax.jit(net.apply)(variables, x)
    expected = _torch_reference(reference, torch_net, x)
    assert ours.shape == expected.shape
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours, expected, atol=1e-4 * max(scale, 1.0), rtol=1e-4)


def test_train_mode_uses_batch_statistics_like_torch(reference, tmp_path):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 1.0, (4, 64, 64, 3)).astype(np.float32)
    torch_net = reference.randomize(reference.MobileNet("small"), reference.to_nchw(x[:2]))
    path = reference.save_state_dict(torch_net, tmp_path / "small.npz")
    net = MobileNetV3Minimal("small")
    variables = load_timm_weights(jax.jit(net.init)(jax.random.key(0), x), path)
    old_stem_var = torch_net.bn1.running_var.clone().numpy()

    @jax.jit
    def train_forward(variables, x):
        return net.apply(variables, x, train=True, mutable=["batch_stats"])

    ours, updates = train_forward(variables, x)
    expected = _torch_reference(reference, torch_net, x, train=True)
    np.testing.assert_allclose(ours, expected, atol=1e-4 * np.abs(expected).max(), rtol=1e-4)
    # The running means follow PyTorch's momentum 0.1 in every layer.
    stats = updates["batch_stats"]
    state = {k: v.numpy() for k, v in torch_net.state_dict().items()}
    np.testing.assert_allclose(stats["bn1"]["mean"], state["bn1.running_mean"], atol=1e-5)
    np.testing.assert_allclose(stats["blocks_4_2"]["bn3"]["mean"],
                               state["blocks.4.2.bn3.running_mean"], atol=1e-4, rtol=1e-4)
    # Variance: PyTorch's update uses the unbiased batch variance, Flax the biased one.
    n = 4 * 32 * 32
    unbiased = (state["bn1.running_var"] - 0.9 * old_stem_var) / 0.1
    np.testing.assert_allclose(stats["bn1"]["var"],
                               0.9 * old_stem_var + 0.1 * unbiased * (n - 1) / n, rtol=1e-4)
    # Eval mode ignores the batch: one image alone gives what it gives in the batch.
    eval_batch = jax.jit(net.apply)(variables, x)
    eval_one = jax.jit(net.apply)(variables, x[:1])
    np.testing.assert_allclose(eval_one[0], eval_batch[0], atol=1e-4, rtol=1e-5)
    assert not np.allclose(ours, eval_batch, atol=1e-3)


def test_gradients_are_finite():
    net = MobileNetV3Minimal("small")
    x = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
    variables = jax.jit(net.init)(jax.random.key(0), x)

    @jax.jit
    def grads(params, x):
        def loss(params, x):
            out, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                               train=True, mutable=["batch_stats"])
            return jnp.mean(out ** 2)

        return jax.grad(loss, argnums=(0, 1))(params, x)

    g_params, g_x = grads(variables["params"], x)
    leaves = jax.tree.leaves(g_params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert float(sum(jnp.sum(jnp.abs(g)) for g in leaves)) > 0.0
    assert bool(jnp.all(jnp.isfinite(g_x))) and float(jnp.abs(g_x).sum()) > 0.0


def test_bfloat16_compute_keeps_float32_variables():
    net = MobileNetV3Minimal("small", dtype=jnp.bfloat16)
    x = jnp.full((2, 32, 32, 3), 0.5)
    variables = jax.jit(net.init)(jax.random.key(0), x)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    out = jax.jit(net.apply)(variables, x)
    assert out.dtype == jnp.bfloat16 and out.shape == (2, 1, 1, 576)
    ref = jax.jit(MobileNetV3Minimal("small").apply)(variables, x)
    np.testing.assert_allclose(np.asarray(out, np.float32), ref, atol=0.1 * float(
        jnp.abs(ref).max()))
