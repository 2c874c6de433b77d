"""Tests for jaxface.nn.pooling against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxface.nn import Downsample, Upsample, downsample, upsample

N_FINE, N_COARSE, C, B = 13, 5, 3, 4


@pytest.fixture
def arrays(rng):
    down = np.sort(rng.choice(N_FINE, size=N_COARSE, replace=False)).astype(np.int32)
    up_idx = rng.integers(0, N_COARSE, size=(N_FINE, 3)).astype(np.int32)
    up_w = rng.random((N_FINE, 3)).astype(np.float32)
    up_w[0, 1:] = 0.0  # a row that copies a single vertex
    up_w /= up_w.sum(axis=1, keepdims=True)
    return down, up_idx, up_w


def _numpy_upsample(x, up_idx, up_w):
    out = np.zeros(x.shape[:-2] + (up_idx.shape[0], x.shape[-1]))
    for f in range(up_idx.shape[0]):
        for k in range(up_idx.shape[1]):
            out[..., f, :] += up_w[f, k] * x[..., up_idx[f, k], :]
    return out


def test_downsample_equals_numpy_indexing(rng, arrays):
    down = arrays[0]
    x = rng.normal(size=(B, N_FINE, C)).astype(np.float32)
    out = jax.jit(lambda x: downsample(x, down))(x)
    np.testing.assert_array_equal(out, x[:, down])
    # Unsorted and repeated indices are fine too.
    perm = np.array([4, 0, 4, 7], np.int32)
    np.testing.assert_array_equal(downsample(x, perm), x[:, perm])
    np.testing.assert_array_equal(downsample(x[0], down), x[0, down])


def test_downsample_grad_is_selection(rng, arrays):
    down = arrays[0]
    x = rng.normal(size=(B, N_FINE, C)).astype(np.float32)
    w = rng.normal(size=(B, N_COARSE, C)).astype(np.float32)
    g = jax.jit(jax.grad(lambda x: jnp.sum(downsample(x, down) * w)))(x)
    expected = np.zeros_like(x)
    expected[:, down] = w
    np.testing.assert_array_equal(g, expected)


def test_upsample_matches_numpy(rng, arrays):
    _, up_idx, up_w = arrays
    x = rng.normal(size=(B, N_COARSE, C)).astype(np.float32)
    out = jax.jit(lambda x: upsample(x, up_idx, up_w))(x)
    assert out.shape == (B, N_FINE, C) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, _numpy_upsample(x, up_idx, up_w), rtol=1e-6, atol=1e-6)
    # Any number of leading axes, none included.
    x4 = rng.normal(size=(2, B, N_COARSE, C)).astype(np.float32)
    np.testing.assert_allclose(
        upsample(x4, up_idx, up_w), _numpy_upsample(x4, up_idx, up_w), atol=1e-6
    )
    np.testing.assert_allclose(
        upsample(x[0], up_idx, up_w), _numpy_upsample(x[0], up_idx, up_w), atol=1e-6
    )


def test_upsample_preserves_constant_field(arrays):
    _, up_idx, up_w = arrays
    const = np.broadcast_to(np.array([1.5, -2.0, 0.25], np.float32), (B, N_COARSE, C))
    out = upsample(const, up_idx, up_w)
    np.testing.assert_allclose(out, np.broadcast_to(const[:, :1], (B, N_FINE, C)), rtol=1e-6)


def test_upsample_grad_is_transpose(rng, arrays):
    _, up_idx, up_w = arrays
    x = rng.normal(size=(B, N_COARSE, C)).astype(np.float32)
    g_out = rng.normal(size=(B, N_FINE, C)).astype(np.float32)
    g = jax.jit(jax.grad(lambda x: jnp.sum(upsample(x, up_idx, up_w) * g_out)))(x)
    dense = np.zeros((N_FINE, N_COARSE))
    for f in range(N_FINE):
        for k in range(3):
            dense[f, up_idx[f, k]] += up_w[f, k]
    np.testing.assert_allclose(g, np.einsum("fm,bfc->bmc", dense, g_out), rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(g))


def test_modules_and_vmap(rng, arrays):
    down, up_idx, up_w = arrays
    x = rng.normal(size=(B, N_FINE, C)).astype(np.float32)
    coarse = Downsample(down_indices=down).apply({}, x)
    np.testing.assert_array_equal(coarse, x[:, down])
    fine = Upsample(up_indices=up_idx, up_weights=up_w).apply({}, coarse)
    np.testing.assert_allclose(
        fine, _numpy_upsample(x[:, down], up_idx, up_w), rtol=1e-6, atol=1e-6
    )
    vmapped = jax.vmap(lambda xb: upsample(downsample(xb, down), up_idx, up_w))(x)
    np.testing.assert_allclose(vmapped, fine, rtol=1e-6, atol=1e-6)


def test_bf16_keeps_dtype(rng, arrays):
    _, up_idx, up_w = arrays
    x = jnp.asarray(rng.normal(size=(B, N_COARSE, C)), jnp.bfloat16)
    out = upsample(x, up_idx, up_w)
    assert out.dtype == jnp.bfloat16
    np.testing.assert_allclose(
        np.asarray(out, np.float32),
        _numpy_upsample(np.asarray(x, np.float32), up_idx, up_w),
        rtol=2e-2,
        atol=2e-2,
    )


def test_invalid_indices(rng, arrays):
    x = rng.normal(size=(B, N_FINE, C)).astype(np.float32)
    with pytest.raises(ValueError):
        downsample(x, np.array([0, N_FINE]))
    with pytest.raises(ValueError):
        upsample(x[:, :N_COARSE], np.full((2, 3), N_COARSE), np.ones((2, 3), np.float32) / 3)
    with pytest.raises(ValueError):
        upsample(x[:, :N_COARSE], np.zeros((2, 3), np.int32), np.ones((2, 2), np.float32))


@pytest.mark.multidevice
def test_sharded_batch_equals_unsharded(rng, arrays):
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 (CPU) devices")
    down, up_idx, up_w = arrays
    sharding = NamedSharding(Mesh(np.array(devices[:8]), ("data",)), P("data"))
    x = rng.normal(size=(8, N_FINE, C)).astype(np.float32)

    def loss(x):
        return jnp.sum(upsample(downsample(x, down), up_idx, up_w) ** 2)

    fn = jax.jit(jax.value_and_grad(loss))
    (v_s, g_s), (v, g) = fn(jax.device_put(x, sharding)), fn(x)
    np.testing.assert_allclose(v_s, v, rtol=1e-5)
    np.testing.assert_allclose(g_s, g, rtol=1e-5, atol=1e-6)
    assert g_s.sharding.is_equivalent_to(sharding, g_s.ndim)
