"""SMIRK's U-Net: shapes, the parameter count against a count by hand, BatchNorm modes and
finite gradients."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxface.models import create_model
from jaxface.models.unet import UNet
from jaxface.train.metrics import num_params


def _hand_count(c_in: int, f: int, res_blocks: int, c_out: int) -> int:
    def block(a, b):  # two bias-free 3x3 convolutions, two BatchNorms (scale, offset)
        return 9 * a * b + 9 * b * b + 4 * b

    def upconv(a, b):  # 2x2 transposed convolution with bias
        return 4 * a * b + b

    widths = [f, 2 * f, 4 * f, 8 * f]
    total = block(c_in, f) + sum(block(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
    total += block(8 * f, 16 * f)
    total += res_blocks * (2 * 9 * (16 * f) ** 2 + 4 * 16 * f)
    ups = [16 * f, 8 * f, 4 * f, 2 * f, f]
    for a, b in zip(ups[:-1], ups[1:], strict=True):
        total += upconv(a, b) + block(2 * b, b)
    return total + f * c_out + c_out


def test_official_size_parameter_count():
    net = UNet()
    shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((1, 32, 32, 6)))
    assert num_params(shapes["params"]) == _hand_count(6, 32, 5, 3)
    # BatchNorm running mean and variance for every BatchNorm
    assert num_params(shapes["batch_stats"]) == sum(
        2 * c for c in [32, 64, 128, 256, 512] * 2 + [512] * 10 + [256, 128, 64, 32] * 2)


def test_registered_by_name_and_shapes():
    cfg = ml_collections.ConfigDict({"name": "smirk_unet", "features": 4, "res_blocks": 2,
                                     "out_channels": 3})
    net = create_model(cfg)
    assert isinstance(net, UNet) and net.features == 4 and net.res_blocks == 2
    x = jax.random.uniform(jax.random.key(1), (3, 32, 48, 6))
    variables = net.init(jax.random.key(0), x)
    assert num_params(variables["params"]) == _hand_count(6, 4, 2, 3)
    y = net.apply(variables, x)
    assert y.shape == (3, 32, 48, 3)
    assert float(y.min()) > 0.0 and float(y.max()) < 1.0


def test_batchnorm_train_and_eval():
    net = UNet(features=4, res_blocks=1)
    x = jax.random.uniform(jax.random.key(2), (4, 16, 16, 6))
    variables = net.init(jax.random.key(0), x)
    y_train, updates = net.apply(variables, x, train=True, mutable=["batch_stats"])
    y_eval = net.apply(variables, x)
    # eval uses the running averages (initially mean 0, var 1), train the batch's statistics
    assert not np.allclose(y_train, y_eval)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()), updates["batch_stats"],
                         variables["batch_stats"])
    assert min(jax.tree.leaves(moved)) > 0.0  # every BatchNorm updated its statistics
    # the first BatchNorm's new running mean: 0.9 * 0 + 0.1 * the batch mean of conv1
    conv1 = variables["params"]["encoder1"]["conv1"]["kernel"]
    h = jax.lax.conv_general_dilated(x, conv1, (1, 1), ((1, 1), (1, 1)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    np.testing.assert_allclose(updates["batch_stats"]["encoder1"]["norm1"]["mean"],
                               0.1 * np.asarray(h).mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)


def test_gradients_are_finite_and_reach_every_parameter():
    net = UNet(features=4, res_blocks=2)
    x = jax.random.uniform(jax.random.key(3), (2, 16, 16, 6))
    target = jax.random.uniform(jax.random.key(4), (2, 16, 16, 3))
    variables = net.init(jax.random.key(0), x)

    def loss(params):
        y, _ = net.apply({"params": params, "batch_stats": variables["batch_stats"]}, x,
                         train=True, mutable=["batch_stats"])
        return jnp.mean(jnp.abs(y - target))

    grads = jax.jit(jax.grad(loss))(variables["params"])
    leaves = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(g)) for g in leaves)
    assert all(float(jnp.abs(g).max()) > 0 for g in leaves)


def test_size_not_multiple_of_16_is_an_error():
    net = UNet(features=4, res_blocks=1)
    with pytest.raises(ValueError, match="multiples of 16"):
        net.init(jax.random.key(0), jnp.zeros((1, 24, 32, 6)))
