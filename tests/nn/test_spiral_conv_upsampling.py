"""Tests for the spiral convolution of up-sampled features (``spiral_conv(..., upsampling=...)``)
against the numpy loop of the convolution applied to a numpy up-sampling."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxface.nn import SPIRAL_IMPLS, SpiralConv, spiral_conv, upsample, upsampled_spiral_table

N, M, L, K, B = 13, 5, 4, 3, 3


def _problem(rng, c=6, c_out=3, hub=False):
    idx = rng.integers(0, N + 1, size=(N, L)).astype(np.int32)  # N is the dummy
    idx[:, 0] = np.arange(N)
    up_idx = rng.integers(0, M, size=(N, K)).astype(np.int32)
    up_w = rng.random((N, K)).astype(np.float32)
    up_w[0, 2] = 0.0  # a dropped entry
    up_idx[1] = [2, 2, 4]  # a repeated coarse vertex, merged
    if hub:  # most fine vertices read coarse vertex 0: long inverse lists (the scatter path)
        up_idx[2:, 0] = 0
    up_w /= up_w.sum(1, keepdims=True)
    x = rng.normal(size=(B, M, c)).astype(np.float32)
    kernel = rng.normal(size=(L * c, c_out)).astype(np.float32)
    bias = rng.normal(size=(c_out,)).astype(np.float32)
    padding = rng.normal(size=(B, c)).astype(np.float32)
    return idx, (up_idx, up_w), x, kernel, bias, padding


def _numpy_reference(x, idx, up, kernel, bias=None, padding=None):
    """The numpy up-sampling, then the convolution as explicit loops (float64)."""
    up_idx, up_w = up
    fine = np.einsum("bnkc,nk->bnc", x[:, up_idx].astype(np.float64), up_w)
    n, length = idx.shape
    w = kernel.reshape(length, x.shape[-1], -1).astype(np.float64)
    out = np.zeros((x.shape[0], n, w.shape[-1]))
    for b in range(x.shape[0]):
        for v in range(n):
            for pos in range(length):
                j = idx[v, pos]
                if j < n:
                    out[b, v] += fine[b, j] @ w[pos]
                elif padding is not None:
                    out[b, v] += padding[b] @ w[pos]
    return out if bias is None else out + bias


def test_table_is_the_composed_linear_map(rng):
    idx, (up_idx, up_w), *_ = _problem(rng)
    cols, weights, missing = upsampled_spiral_table(idx, up_idx, up_w)
    assert cols.dtype == np.int32 and weights.dtype == np.float32
    assert cols.shape == weights.shape == missing.shape and cols.shape[0] == N
    # Dense [N, M * L] map, once from loops over the spiral and the up-sampling rows ...
    want = np.zeros((N, M * L))
    for n in range(N):
        for pos in range(L):
            v = idx[n, pos]
            if v < N:
                for k in range(K):
                    want[n, up_idx[v, k] * L + pos] += up_w[v, k]
    # ... and once from the table.
    got = np.zeros((N, M * L))
    for n in range(N):
        for j in range(cols.shape[1]):
            if not missing[n, j]:
                got[n, cols[n, j]] += weights[n, j]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # Entries are merged (one per coarse row), none has weight zero, missing ones weigh zero.
    for n in range(N):
        present = cols[n][~missing[n]]
        assert len(set(present.tolist())) == present.size
    assert np.all(weights[~missing] != 0) and np.all(weights[missing] == 0)
    assert cols.shape[1] == (~missing).sum(1).max()


@pytest.mark.parametrize("impl", SPIRAL_IMPLS)
@pytest.mark.parametrize("with_padding", [False, True])
def test_matches_numpy(rng, impl, with_padding):
    idx, up, x, kernel, bias, padding = _problem(rng)
    padding = padding if with_padding else None
    fn = jax.jit(lambda x, k, b, p: spiral_conv(x, idx, k, b, padding=p, impl=impl, upsampling=up))
    out = fn(x, kernel, bias, padding)
    assert out.shape == (B, N, 3) and out.dtype == jnp.float32
    np.testing.assert_allclose(
        out, _numpy_reference(x, idx, up, kernel, bias, padding), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("impl", ["auto", "matmul_gather", "matmul_gather_inverse"])
@pytest.mark.parametrize("hub", [False, True])
def test_gradients_equal_upsampling_first(rng, impl, hub):
    """The folded forms' gradients (custom VJP or autodiff) equal those of up-sampling first
    with the plain gather-then-matmul, for the input, kernel, bias and padding."""
    idx, up, x, kernel, bias, padding = _problem(rng, hub=hub)

    def grads(folded):
        def f(x, k, b, p):
            if folded:
                out = spiral_conv(x, idx, k, b, padding=p, impl=impl, upsampling=up)
            else:
                out = spiral_conv(upsample(x, *up), idx, k, b, padding=p, impl="gather_matmul")
            return jnp.sum(jnp.sin(out) * out)

        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))(x, kernel, bias, padding)

    for got, want in zip(grads(True), grads(False), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        assert np.all(np.isfinite(got))


def test_leading_axes_and_vmap(rng):
    idx, up, x, kernel, bias, _ = _problem(rng)
    want = _numpy_reference(x, idx, up, kernel, bias)
    x4 = np.stack([x, 2 * x])
    out = spiral_conv(x4, idx, kernel, bias, upsampling=up)
    np.testing.assert_allclose(out[0], want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out[1] - bias, 2 * (want - bias), rtol=1e-5, atol=1e-4)
    single = spiral_conv(x[0], idx, kernel, bias, upsampling=up)
    np.testing.assert_allclose(single, want[0], rtol=1e-5, atol=1e-5)
    vmapped = jax.vmap(lambda xb: spiral_conv(xb, idx, kernel, bias, upsampling=up))(x)
    np.testing.assert_allclose(vmapped, want, rtol=1e-5, atol=1e-5)


def test_traced_arrays_upsample_first(rng):
    """Traced up-sampling arrays or indices cannot be folded: the features are up-sampled first."""
    idx, up, x, kernel, _, padding = _problem(rng)
    want = _numpy_reference(x, idx, up, kernel, padding=padding)
    out = jax.jit(lambda i, w: spiral_conv(x, idx, kernel, padding=padding, upsampling=(i, w)))(
        *up
    )
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    out = jax.jit(lambda i: spiral_conv(x, i, kernel, padding=padding, upsampling=up))(idx)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


def test_long_rows_are_summed_in_chunks(rng):
    """Rows of the folded gather longer than one summation chunk (here 3 * 12 entries)."""
    n, m, length = 40, 30, 12
    idx = rng.integers(0, n, size=(n, length)).astype(np.int32)
    up = (rng.integers(0, m, size=(n, 3)).astype(np.int32), np.full((n, 3), 1 / 3, np.float32))
    assert upsampled_spiral_table(idx, *up)[0].shape[1] > 16
    x = rng.normal(size=(2, m, 5)).astype(np.float32)
    kernel = rng.normal(size=(length * 5, 4)).astype(np.float32)
    out = spiral_conv(x, idx, kernel, upsampling=up)
    np.testing.assert_allclose(out, _numpy_reference(x, idx, up, kernel), rtol=1e-5, atol=1e-4)


def test_module_has_the_same_parameters(rng, keys):
    idx, up, x, *_ = _problem(rng)
    folded = SpiralConv(features=3, indices=idx, upsampling=up)
    plain = SpiralConv(features=3, indices=idx)
    key = next(keys)
    params = folded.init(key, x)
    fine = upsample(x, *up)
    assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, plain.init(key, fine))
    np.testing.assert_allclose(
        folded.apply(params, x), plain.apply(params, fine), rtol=1e-5, atol=1e-5
    )


def test_invalid_upsampling(rng):
    idx, (up_idx, up_w), x, kernel, *_ = _problem(rng)
    with pytest.raises(ValueError, match="up_indices must lie in"):
        spiral_conv(x, idx, kernel, upsampling=(np.where(up_idx == 0, M, up_idx), up_w))
    with pytest.raises(ValueError, match="must both be"):
        spiral_conv(x, idx, kernel, upsampling=(up_idx, up_w[:, :2]))
    with pytest.raises(ValueError, match="indices must be"):
        spiral_conv(x, idx[:-1], kernel, upsampling=(up_idx, up_w))


@pytest.mark.multidevice
def test_sharded_batch_equals_unsharded(rng):
    devices = jax.devices("cpu")  # 8, configured in conftest
    idx, up, _, kernel, bias, _ = _problem(rng)
    sharding = NamedSharding(Mesh(np.array(devices[:8]), ("data",)), P("data"))
    x = rng.normal(size=(8, M, 6)).astype(np.float32)

    def loss(x, k):
        return jnp.sum(spiral_conv(x, idx, k, bias, upsampling=up) ** 2)

    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    (v_s, g_s), (v, g) = fn(jax.device_put(x, sharding), kernel), fn(x, kernel)
    np.testing.assert_allclose(v_s, v, rtol=1e-5)
    for a, b in zip(g_s, g, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert g_s[0].sharding.is_equivalent_to(sharding, 3)
