"""The strided 'SAME' convolution: both forms against a numpy loop, first and second derivatives,
the Flax module against flax.linen.Conv, constant condition planes answered from the kernel,
errors."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.models.strided_conv import (
    StridedConv,
    constant_planes_response,
    same_padding,
    strided_conv,
)


def _numpy_conv(x, kernel, stride, padding="SAME"):
    """Direct convolution with TensorFlow 'SAME' or explicit padding, in float64 loops."""
    b, h, w, _ = x.shape
    kh, kw, _, c_out = kernel.shape
    if padding == "SAME":
        oh, ow = -(-h // stride), -(-w // stride)
        top = max((oh - 1) * stride + kh - h, 0) // 2
        left = max((ow - 1) * stride + kw - w, 0) // 2
    else:
        (top, bottom), (left, right) = padding
        oh, ow = (h + top + bottom - kh) // stride + 1, (w + left + right - kw) // stride + 1
    out = np.zeros((b, oh, ow, c_out))
    for r in range(oh):
        for c in range(ow):
            for i in range(kh):
                for j in range(kw):
                    y, x_ = r * stride + i - top, c * stride + j - left
                    if 0 <= y < h and 0 <= x_ < w:
                        out[:, r, c] += x[:, y, x_].astype(np.float64) @ kernel[i, j]
    return out


@pytest.mark.parametrize("size,kernel,stride", [
    ((9, 7), (5, 5), 2), ((8, 6), (5, 5), 2), ((10, 5), (3, 3), 3), ((6, 6), (3, 1), 1),
    ((4, 3), (5, 5), 2), ((1, 1), (5, 5), 2)])
@pytest.mark.parametrize("impl", ["patches", "conv"])
def test_both_forms_match_a_numpy_loop(size, kernel, stride, impl, rng):
    x = rng.normal(size=(2, *size, 3)).astype(np.float32)
    k = rng.normal(size=(*kernel, 3, 4)).astype(np.float32)
    got = strided_conv(jnp.asarray(x), jnp.asarray(k), stride, impl)
    np.testing.assert_allclose(np.asarray(got), _numpy_conv(x, k, stride), rtol=1e-5, atol=1e-5)
    h, w = size
    assert got.shape[1:3] == (same_padding(h, kernel[0], stride)[2],
                              same_padding(w, kernel[1], stride)[2])


@pytest.mark.parametrize("padding", [((1, 1), (1, 1)), ((0, 2), (1, 0)), ((0, 0), (0, 0))])
@pytest.mark.parametrize("impl", ["patches", "conv"])
def test_explicit_padding_matches_a_numpy_loop(padding, impl, rng):
    # The DC-GAN block of the decoupled critic: 4 x 4, stride 2, one pixel of padding.
    x = rng.normal(size=(2, 8, 7, 3)).astype(np.float32)
    k = rng.normal(size=(4, 4, 3, 5)).astype(np.float32)
    got = strided_conv(jnp.asarray(x), jnp.asarray(k), 2, impl, padding)
    np.testing.assert_allclose(np.asarray(got), _numpy_conv(x, k, 2, padding), rtol=1e-5,
                               atol=1e-5)


def test_same_padding_against_xla():
    for size in range(1, 12):
        for kernel in (1, 2, 3, 5):
            for stride in (1, 2, 3):
                low, high, out = same_padding(size, kernel, stride)
                (xla_low, xla_high), = jax.lax.padtype_to_pads((size,), (kernel,), (stride,),
                                                              "SAME")
                assert (low, high) == (xla_low, xla_high) and out == -(-size // stride)


def test_first_and_second_derivatives_match_xla_convolution(rng):
    # A gradient penalty's terms: the input gradient, and the kernel gradient of its norm.
    x = jnp.asarray(rng.normal(size=(3, 13, 9, 2)), jnp.float32)
    k = jnp.asarray(rng.normal(size=(5, 5, 2, 4)) * 0.3, jnp.float32)

    def score(impl, x, k):
        return jnp.sum(jnp.tanh(strided_conv(x, k, 2, impl)) ** 2)

    def penalty(impl, k):
        g = jax.grad(score, argnums=1)(impl, x, k)
        return jnp.sum((jnp.sqrt(jnp.sum(g ** 2, axis=(1, 2, 3))) - 1.0) ** 2)

    for argnums in (1, 2):
        a = jax.grad(score, argnums=argnums)("patches", x, k)
        b = jax.grad(score, argnums=argnums)("conv", x, k)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    a, b = jax.grad(penalty, argnums=1)("patches", k), jax.grad(penalty, argnums=1)("conv", k)
    assert np.isfinite(np.asarray(a)).all() and np.abs(np.asarray(a)).max() > 0
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding", ["SAME", ((1, 1), (1, 1))])
@pytest.mark.parametrize("impl", ["auto", "patches", "conv"])
def test_module_has_the_parameters_and_outputs_of_flax_conv(impl, padding, rng):
    x = jnp.asarray(rng.normal(size=(2, 11, 7, 3)), jnp.float32)
    ours = StridedConv(6, (5, 5), 2, impl=impl, bias_init=nn.initializers.normal(1.0),
                       padding=padding)
    flax_conv = nn.Conv(6, (5, 5), strides=(2, 2), padding=padding,
                        bias_init=nn.initializers.normal(1.0))
    key = jax.random.key(3)
    v_ours, v_flax = ours.init(key, x), flax_conv.init(key, x)
    assert jax.tree.structure(v_ours) == jax.tree.structure(v_flax)
    for a, b in zip(jax.tree.leaves(v_ours), jax.tree.leaves(v_flax), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(ours.apply(v_ours, x)),
                               np.asarray(flax_conv.apply(v_flax, x)), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size,kernel,stride,padding", [
    ((9, 7), (5, 5), 2, "SAME"), ((8, 6), (3, 3), 1, "SAME"), ((4, 3), (5, 5), 2, "SAME"),
    ((6, 5), (4, 4), 2, ((1, 1), (1, 1))), ((1, 1), (3, 3), 1, "SAME")])
def test_constant_planes_response_is_the_convolution_of_the_planes(size, kernel, stride,
                                                                  padding, rng):
    code = rng.normal(size=(3, 4)).astype(np.float32)
    k = rng.normal(size=(*kernel, 4, 2)).astype(np.float32)
    planes = np.broadcast_to(code[:, None, None, :], (3, *size, 4))
    got = constant_planes_response(jnp.asarray(code), jnp.asarray(k), size, stride, padding)
    np.testing.assert_allclose(np.asarray(got), _numpy_conv(planes, k, stride, padding),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("stride,impl", [(2, "patches"), (2, "conv"), (1, "auto")])
@pytest.mark.parametrize("use_bias", [True, False])
def test_module_with_a_condition_is_flax_conv_of_the_concatenated_planes(stride, impl, use_bias,
                                                                         rng):
    x = jnp.asarray(rng.normal(size=(2, 11, 7, 3)), jnp.float32)
    code = jnp.asarray(rng.normal(size=(2, 5)), jnp.float32)
    planes = jnp.concatenate([x, jnp.broadcast_to(code[:, None, None], (2, 11, 7, 5))], -1)
    ours = StridedConv(6, (5, 5), stride, impl=impl, use_bias=use_bias,
                       bias_init=nn.initializers.normal(1.0))
    flax_conv = nn.Conv(6, (5, 5), strides=(stride, stride), use_bias=use_bias,
                        bias_init=nn.initializers.normal(1.0))
    key = jax.random.key(4)
    v_ours, v_flax = ours.init(key, x, code), flax_conv.init(key, planes)
    assert jax.tree.structure(v_ours) == jax.tree.structure(v_flax)
    for a, b in zip(jax.tree.leaves(v_ours), jax.tree.leaves(v_flax), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_allclose(np.asarray(ours.apply(v_ours, x, code)),
                               np.asarray(flax_conv.apply(v_flax, planes)), rtol=1e-5, atol=1e-5)

    def loss(variables, x):  # the gradients flow to the kernel's plane channels and to x
        return jnp.sum(jnp.sin(ours.apply(variables, x, code)))

    def flax_loss(variables, x):
        full = jnp.concatenate([x, jnp.broadcast_to(code[:, None, None], (2, 11, 7, 5))], -1)
        return jnp.sum(jnp.sin(flax_conv.apply(variables, full)))

    for a, b in zip(jax.tree.leaves(jax.grad(loss, argnums=(0, 1))(v_ours, x)),
                    jax.tree.leaves(jax.grad(flax_loss, argnums=(0, 1))(v_flax, x)), strict=True):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)


def test_bad_arguments_are_named():
    x, k = jnp.zeros((1, 4, 4, 3)), jnp.zeros((3, 3, 3, 2))
    with pytest.raises(ValueError, match="impl must be one of"):
        strided_conv(x, k, 2, "fft")
    with pytest.raises(ValueError, match=r"kernel \[kh, kw, C, C_out\]"):
        strided_conv(x, jnp.zeros((3, 3, 2, 2)), 2)
    for impl in ("patches", "conv"):
        with pytest.raises(ValueError, match="padding must be 'SAME'"):
            strided_conv(x, k, 2, impl, "VALID")
        with pytest.raises(ValueError, match="padding must be 'SAME'"):
            strided_conv(x, k, 2, impl, ((1, 1),))
        with pytest.raises(ValueError, match="leaves no output"):
            strided_conv(jnp.zeros((1, 2, 4, 3)), k, 2, impl, ((0, 0), (0, 0)))
    with pytest.raises(ValueError, match=r"condition \[B, C\] and kernel \[kh, kw, C, C_out\]"):
        constant_planes_response(jnp.zeros((2, 3)), jnp.zeros((3, 3, 4, 2)), (4, 4), 1)
