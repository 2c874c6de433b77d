"""Tests for jaxface.nn.spiral_conv against explicit numpy loops."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from jaxface.nn import (
    SPIRAL_IMPLS,
    SpiralConv,
    inverse_spiral_indices,
    resolve_spiral_impl,
    select_spiral_impl,
    spiral_conv,
)

N, L, C, C_OUT, B = 11, 5, 4, 3, 3


def _random_spirals(rng, n, length, dummy_fraction=0.25):
    """Spirals starting at their centre vertex; ~dummy_fraction of the rest are padding (n)."""
    idx = rng.integers(0, n, size=(n, length))
    idx[:, 0] = np.arange(n)
    pad = rng.random((n, length)) < dummy_fraction
    pad[:, 0] = False
    idx[pad] = n
    return idx.astype(np.int32)


def _numpy_spiral_conv(x, idx, kernel, bias=None, padding=None):
    """Reference: explicit loops over batch, vertex and spiral position."""
    batch, n, c = x.shape
    length = idx.shape[1]
    w = kernel.reshape(length, c, -1).astype(np.float64)
    out = np.zeros((batch, n, w.shape[-1]))
    for b in range(batch):
        for v in range(n):
            for pos in range(length):
                j = idx[v, pos]
                if j == n:
                    feat = np.zeros(c) if padding is None else padding[b]
                else:
                    feat = x[b, j]
                out[b, v] += feat @ w[pos]
            if bias is not None:
                out[b, v] += bias
    return out


@pytest.fixture
def problem(rng):
    idx = _random_spirals(rng, N, L)
    x = rng.normal(size=(B, N, C)).astype(np.float32)
    kernel = rng.normal(size=(L * C, C_OUT)).astype(np.float32)
    bias = rng.normal(size=(C_OUT,)).astype(np.float32)
    padding = rng.normal(size=(B, C)).astype(np.float32)
    return idx, x, kernel, bias, padding


@pytest.mark.parametrize("impl", SPIRAL_IMPLS)
@pytest.mark.parametrize("with_padding", [False, True])
def test_matches_numpy_loop(problem, impl, with_padding):
    idx, x, kernel, bias, padding = problem
    padding = padding if with_padding else None
    fn = jax.jit(lambda x, k, b, p: spiral_conv(x, idx, k, b, padding=p, impl=impl))
    out = fn(x, kernel, bias, padding)
    assert out.shape == (B, N, C_OUT) and out.dtype == jnp.float32
    np.testing.assert_allclose(
        out, _numpy_spiral_conv(x, idx, kernel, bias, padding), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("impl", ["gather_matmul_inverse", "matmul_gather_inverse"])
def test_no_padding_topology(rng, impl):
    """Fixed-length spirals without dummy entries take the unmasked code path."""
    idx = rng.integers(0, N, size=(N, L)).astype(np.int32)
    x = rng.normal(size=(B, N, C)).astype(np.float32)
    kernel = rng.normal(size=(L * C, C_OUT)).astype(np.float32)
    pad = rng.normal(size=(B, C)).astype(np.float32)
    out = spiral_conv(x, idx, kernel, padding=pad, impl=impl)
    np.testing.assert_allclose(out, _numpy_spiral_conv(x, idx, kernel), rtol=1e-5, atol=1e-5)
    d_pad = jax.grad(lambda p: spiral_conv(x, idx, kernel, padding=p, impl=impl).sum())(pad)
    np.testing.assert_array_equal(d_pad, np.zeros_like(pad))


@pytest.mark.parametrize("impl", SPIRAL_IMPLS)
def test_long_spirals_with_padding(rng, impl):
    """Spirals longer than one summation chunk (20 > 16 positions), with padding entries."""
    n, length = 30, 20
    idx = _random_spirals(rng, n, length)
    x = rng.normal(size=(2, n, 3)).astype(np.float32)
    kernel = rng.normal(size=(length * 3, 2)).astype(np.float32)
    pad = rng.normal(size=(2, 3)).astype(np.float32)
    out = spiral_conv(x, idx, kernel, padding=pad, impl=impl)
    np.testing.assert_allclose(
        out, _numpy_spiral_conv(x, idx, kernel, padding=pad), rtol=1e-5, atol=1e-4
    )


def test_bfloat16_sums_match_float32(problem):
    """Low-precision rows are summed in float32 and rounded once."""
    idx, *arrays = problem
    x, kernel, bias, padding = (jnp.asarray(a, jnp.bfloat16) for a in arrays)
    # The exact result of the rounded inputs: what is left is one rounding of the output
    # (relative 2^-8) on top of float32 sums.
    rounded = (np.asarray(a, np.float32) for a in (x, kernel, bias, padding))
    x32, kernel32, bias32, padding32 = rounded
    want = _numpy_spiral_conv(x32, idx, kernel32, bias32, padding32)
    for impl in SPIRAL_IMPLS:
        out = spiral_conv(x, idx, kernel, bias, padding=padding, impl=impl)
        assert out.dtype == jnp.bfloat16
        np.testing.assert_allclose(np.asarray(out, np.float32), want, rtol=1e-2,
                                   atol=1e-2 * np.abs(want).max())


def test_one_hot_kernel_is_gather(problem):
    idx, x, _, _, _ = problem
    x_pad = np.concatenate([x, np.zeros((B, 1, C), np.float32)], axis=1)
    # Output channel j copies channel chans[j] of spiral position poss[j].
    poss, chans = [0, 2, 4, 1], [3, 0, 1, 2]
    kernel = np.zeros((L * C, len(poss)), np.float32)
    for j, (pos, ch) in enumerate(zip(poss, chans, strict=True)):
        kernel[pos * C + ch, j] = 1.0
    expected = np.stack([x_pad[:, idx[:, p], c] for p, c in zip(poss, chans, strict=True)], axis=-1)
    for impl in SPIRAL_IMPLS:
        np.testing.assert_array_equal(spiral_conv(x, idx, kernel, impl=impl), expected)


def test_all_impls_agree(rng):
    idx = _random_spirals(rng, N, L)
    for c_in, c_out in [(4, 1), (2, 6)]:
        x = rng.normal(size=(B, N, c_in)).astype(np.float32)
        kernel = rng.normal(size=(L * c_in, c_out)).astype(np.float32)
        pad = rng.normal(size=(B, c_in)).astype(np.float32)
        outs = [spiral_conv(x, idx, kernel, padding=pad, impl=i) for i in SPIRAL_IMPLS]
        for out in outs[1:]:
            np.testing.assert_allclose(out, outs[0], rtol=1e-5, atol=1e-5)
        auto = spiral_conv(x, idx, kernel, padding=pad)
        np.testing.assert_allclose(auto, outs[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["gather_matmul_inverse", "matmul_gather_inverse"])
def test_custom_vjp_grads_equal_autodiff(problem, impl):
    idx, x, kernel, bias, padding = problem
    # Make some vertices hubs referenced many times, so inverse rows have different lengths.
    idx = idx.copy()
    idx[1:, 1] = 0

    def loss(impl_name):
        def f(x, k, b, p):
            out = spiral_conv(x, idx, k, b, padding=p, impl=impl_name)
            return jnp.sum(jnp.sin(out) * out)

        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))

    got = loss(impl)(x, kernel, bias, padding)
    want = loss("gather_matmul")(x, kernel, bias, padding)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-4)
        assert np.all(np.isfinite(g))
    # Without padding the cotangent of x alone is still right.
    gx = jax.grad(lambda x: spiral_conv(x, idx, kernel, impl=impl).sum())(x)
    gx_ref = jax.grad(lambda x: spiral_conv(x, idx, kernel, impl="gather_matmul").sum())(x)
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-5, atol=1e-5)


def test_grad_of_sum_counts_references(problem):
    """d sum(out) / d x[b, v, c] = sum over the (n, l) with idx[n, l] = v of sum_o W_l[c, o]."""
    idx, x, kernel, _, padding = problem
    w_sum = kernel.reshape(L, C, C_OUT).sum(-1)  # [L, C]
    expected = np.zeros((N, C))
    expected_pad = np.zeros(C)
    for v in range(N):
        for pos in range(L):
            if idx[v, pos] == N:
                expected_pad += w_sum[pos]
            else:
                expected[idx[v, pos]] += w_sum[pos]
    for impl in SPIRAL_IMPLS:
        gx, gp = jax.grad(
            lambda x, p, impl=impl: spiral_conv(x, idx, kernel, padding=p, impl=impl).sum(),
            argnums=(0, 1),
        )(x, padding)
        np.testing.assert_allclose(gx, np.broadcast_to(expected, gx.shape), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(gp, np.broadcast_to(expected_pad, gp.shape), rtol=1e-5)


def test_jit_equals_no_jit(problem):
    idx, x, kernel, bias, padding = problem
    for impl in ["gather_matmul", "matmul_gather_inverse"]:
        eager = spiral_conv(x, idx, kernel, bias, padding=padding, impl=impl)
        jitted = jax.jit(
            lambda x, impl=impl: spiral_conv(x, idx, kernel, bias, padding=padding, impl=impl)
        )(x)
        np.testing.assert_allclose(eager, jitted, rtol=1e-6, atol=1e-6)


def test_batch_equals_examples_one_by_one(problem):
    idx, x, kernel, bias, padding = problem
    batched = spiral_conv(x, idx, kernel, bias, padding=padding)
    for b in range(B):
        single = spiral_conv(x[b : b + 1], idx, kernel, bias, padding=padding[b : b + 1])
        np.testing.assert_allclose(batched[b], single[0], rtol=1e-6, atol=1e-6)
        unbatched = spiral_conv(x[b], idx, kernel, bias, padding=padding[b])
        np.testing.assert_allclose(batched[b], unbatched, rtol=1e-6, atol=1e-6)
    vmapped = jax.vmap(lambda xb, pb: spiral_conv(xb, idx, kernel, bias, padding=pb))(x, padding)
    np.testing.assert_allclose(vmapped, batched, rtol=1e-6, atol=1e-6)


def test_dummy_index_reads_zero_or_padding(rng):
    # Every spiral is its centre followed by padding only.
    idx = np.full((N, L), N, np.int32)
    idx[:, 0] = np.arange(N)
    x = rng.normal(size=(B, N, C)).astype(np.float32)
    kernel = rng.normal(size=(L * C, C_OUT)).astype(np.float32)
    pad = rng.normal(size=(B, C)).astype(np.float32)
    w = kernel.reshape(L, C, C_OUT)
    for impl in SPIRAL_IMPLS:
        out = spiral_conv(x, idx, kernel, impl=impl)
        np.testing.assert_allclose(out, x @ w[0], rtol=1e-5, atol=1e-5)
        out = spiral_conv(x, idx, kernel, padding=pad, impl=impl)
        expected = x @ w[0] + (pad @ w[1:].sum(0))[:, None, :]
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_traced_indices(problem):
    """Indices passed as a jit argument work with the autodiff implementations."""
    idx, x, kernel, _, padding = problem
    expected = _numpy_spiral_conv(x, idx, kernel, padding=padding)
    for impl in ["auto", "gather_matmul", "matmul_gather"]:
        out = jax.jit(lambda i, impl=impl: spiral_conv(x, i, kernel, padding=padding, impl=impl))(
            idx
        )
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda i: spiral_conv(x, i, kernel, impl="gather_matmul_inverse"))(idx)


def test_invalid_arguments(problem):
    idx, x, kernel, _, _ = problem
    bad = idx.copy()
    bad[0, 1] = -1
    with pytest.raises(ValueError, match="must lie in"):
        spiral_conv(x, bad, kernel)
    with pytest.raises(ValueError, match="kernel"):
        spiral_conv(x, idx, kernel[:-1])
    with pytest.raises(ValueError, match="impl"):
        spiral_conv(x, idx, kernel, impl="dense")
    with pytest.raises(ValueError, match="padding"):
        spiral_conv(x, idx, kernel, padding=np.zeros((B, C + 1), np.float32))


def test_inverse_spiral_indices(problem):
    idx = problem[0]
    inv = inverse_spiral_indices(idx, N)
    assert inv.dtype == np.int32 and inv.shape[0] == N
    flat = idx.reshape(-1)
    for v in range(N):
        positions = [p for p in range(flat.size) if flat[p] == v]
        row = list(inv[v])
        assert row[: len(positions)] == positions
        assert all(p == flat.size for p in row[len(positions) :])
    assert inv.shape[1] == max(np.sum(flat == v) for v in range(N))
    with pytest.raises(ValueError):
        inverse_spiral_indices(np.array([[0, -1]]), 2)


def test_select_spiral_impl():
    assert select_spiral_impl(32, 3) == "matmul_gather_inverse"
    assert select_spiral_impl(32, 16) == "matmul_gather_inverse"
    assert select_spiral_impl(32, 32) == "matmul_gather_inverse"
    assert select_spiral_impl(32, 33) == "gather_matmul_inverse"
    assert select_spiral_impl(32, 32, concrete=False) == "gather_matmul"
    assert select_spiral_impl(32, 16, concrete=False) == "matmul_gather"
    assert select_spiral_impl(3, 32) == "gather_matmul_inverse"
    assert select_spiral_impl(32, 3, concrete=False) == "matmul_gather"


def test_resolve_spiral_impl():
    assert resolve_spiral_impl("auto", 32, 32) == "matmul_gather_inverse"
    assert resolve_spiral_impl("auto", 32, 32, concrete=False) == "gather_matmul"
    assert resolve_spiral_impl("auto_autodiff", 32, 32) == "gather_matmul"
    assert resolve_spiral_impl("gather_matmul_inverse", 32, 3) == "gather_matmul_inverse"
    with pytest.raises(ValueError, match="impl must be"):
        resolve_spiral_impl("dense", 32, 3)


def test_module_init_shapes_and_xavier_bounds(keys, rng):
    idx = _random_spirals(rng, N, L)
    features, c_in = 64, 8
    layer = SpiralConv(features=features, indices=idx)
    params = layer.init(next(keys), jnp.zeros((2, N, c_in)))["params"]
    kernel, bias = params["kernel"], params["bias"]
    assert kernel.shape == (L * c_in, features) and kernel.dtype == jnp.float32
    assert bias.shape == (features,)
    np.testing.assert_array_equal(bias, np.zeros(features))
    bound = np.sqrt(6.0 / (L * c_in + features))
    assert np.abs(kernel).max() <= bound
    # A uniform(-bound, bound) sample of 2560 values fills most of the range.
    assert np.abs(kernel).max() > 0.9 * bound
    np.testing.assert_allclose(np.std(kernel), bound / np.sqrt(3.0), rtol=0.1)

    no_bias = SpiralConv(features=features, indices=idx, use_bias=False)
    assert set(no_bias.init(next(keys), jnp.zeros((2, N, c_in)))["params"]) == {"kernel"}


def test_module_apply_matches_functional(keys, problem):
    idx, x, _, _, padding = problem
    layer = SpiralConv(features=C_OUT, indices=idx)
    variables = layer.init(next(keys), x)
    variables = jax.tree.map(lambda a: a + 0.5, variables)  # non-zero bias
    out = jax.jit(layer.apply)(variables, x, padding)
    p = variables["params"]
    np.testing.assert_allclose(
        out,
        _numpy_spiral_conv(x, idx, np.asarray(p["kernel"]), np.asarray(p["bias"]), padding),
        rtol=1e-5,
        atol=1e-5,
    )


def test_module_bf16_compute(keys, problem):
    idx, x, _, _, _ = problem

    class Net(nn.Module):
        dtype: object

        @nn.compact
        def __call__(self, x):
            return SpiralConv(features=8, indices=idx, dtype=self.dtype)(x)

    params = Net(jnp.float32).init(next(keys), x)
    ref = Net(jnp.float32).apply(params, x)
    out = jax.jit(Net(jnp.bfloat16).apply)(params, x)
    assert out.dtype == jnp.bfloat16
    assert jax.tree.leaves(params)[0].dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(out, np.float32), ref, rtol=5e-2, atol=5e-2)
    grads = jax.grad(lambda p: Net(jnp.bfloat16).apply(p, x).astype(jnp.float32).sum())(params)
    assert all(g.dtype == jnp.float32 and np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.multidevice
def test_sharded_batch_equals_unsharded(rng):
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 (CPU) devices")
    mesh = Mesh(np.array(devices[:8]), ("data",))
    batch_sharding = NamedSharding(mesh, P("data"))
    idx = _random_spirals(rng, N, L)
    x = rng.normal(size=(16, N, C)).astype(np.float32)
    pad = rng.normal(size=(16, C)).astype(np.float32)
    kernel = rng.normal(size=(L * C, C_OUT)).astype(np.float32)
    xs = jax.device_put(x, batch_sharding)
    ps = jax.device_put(pad, batch_sharding)
    for impl in ["gather_matmul_inverse", "matmul_gather_inverse"]:

        def loss(x, p, k, impl=impl):
            return jnp.mean(spiral_conv(x, idx, k, padding=p, impl=impl) ** 2)

        fwd = jax.jit(lambda x, p, k, impl=impl: spiral_conv(x, idx, k, padding=p, impl=impl))
        out = fwd(xs, ps, kernel)
        assert out.sharding.is_equivalent_to(batch_sharding, out.ndim)
        np.testing.assert_allclose(out, fwd(x, pad, kernel), rtol=1e-5, atol=1e-5)
        grad = jax.jit(jax.grad(loss, argnums=(0, 1, 2)))
        for g_sharded, g in zip(grad(xs, ps, kernel), grad(x, pad, kernel), strict=True):
            np.testing.assert_allclose(g_sharded, g, rtol=1e-5, atol=1e-6)


def test_grad_of_grad_matches_autodiff(problem):
    """Reverse-over-reverse (a gradient penalty) through the custom VJPs."""
    idx, x, kernel, _, padding = problem

    def penalty(k, impl):
        gx = jax.grad(
            lambda x: jnp.sum(jnp.tanh(spiral_conv(x, idx, k, padding=padding, impl=impl)))
        )(x)
        return jnp.sum(gx**2)

    want = jax.grad(penalty)(kernel, "gather_matmul")
    for impl in ["gather_matmul_inverse", "matmul_gather_inverse"]:
        np.testing.assert_allclose(jax.grad(penalty)(kernel, impl), want, rtol=1e-3, atol=1e-3)


def test_auto_autodiff_matches_auto_and_supports_forward_mode(problem):
    idx, x, kernel, bias, _ = problem
    auto = spiral_conv(x, idx, kernel, bias, impl="auto")
    plain = spiral_conv(x, idx, kernel, bias, impl="auto_autodiff")
    np.testing.assert_allclose(plain, auto, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(plain, _numpy_spiral_conv(x, idx, kernel, bias, None),
                               rtol=1e-5, atol=1e-5)
    # The custom-VJP backward of "auto" has no forward mode; the autodiff variant does.
    tangent = np.ones_like(x)
    _, jvp = jax.jvp(lambda x: spiral_conv(x, idx, kernel, bias, impl="auto_autodiff"),
                     (x,), (tangent,))
    _, jvp_ref = jax.jvp(lambda x: spiral_conv(x, idx, kernel, bias, impl="gather_matmul"),
                         (x,), (tangent,))
    np.testing.assert_allclose(jvp, jvp_ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError):
        jax.jvp(lambda x: spiral_conv(x, idx, kernel, bias, impl="auto"), (x,), (tangent,))
    # The plain projecting form sums the gathered rows with a reduction of its own (with the
    # plain sum's derivative): forward mode and forward-over-reverse go through it.
    _, jvp_mg = jax.jvp(lambda x: spiral_conv(x, idx, kernel, bias, impl="matmul_gather"),
                        (x,), (tangent,))
    np.testing.assert_allclose(jvp_mg, jvp_ref, rtol=1e-4, atol=1e-4)

    def hvp(impl):
        def loss(x):
            return jnp.sum(jnp.tanh(spiral_conv(x, idx, kernel, bias, impl=impl)))
        return jax.jvp(jax.grad(loss), (x,), (tangent,))[1]

    np.testing.assert_allclose(hvp("matmul_gather"), hvp("gather_matmul"), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("impl", SPIRAL_IMPLS)
@pytest.mark.parametrize("with_padding", [False, True])
def test_downsampling_computes_the_kept_rows(problem, impl, with_padding):
    idx, x, kernel, bias, padding = problem
    padding = padding if with_padding else None
    down = np.array([0, 3, 4, 9], np.int32)
    fn = jax.jit(lambda x, k, p: spiral_conv(x, idx, k, bias, padding=p, impl=impl,
                                             downsampling=down))
    out = fn(x, kernel, padding)
    assert out.shape == (B, down.size, C_OUT)
    want = _numpy_spiral_conv(x, idx, kernel, bias, padding)[:, down]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", ["gather_matmul_inverse", "matmul_gather_inverse"])
def test_downsampling_gradients_equal_selecting_after(problem, impl):
    idx, x, kernel, bias, padding = problem
    idx = idx.copy()
    idx[1:, 1] = 0  # a hub vertex: inverse lists of different lengths
    down = np.array([1, 2, 5, 7, 10], np.int32)

    def grads(fold):
        def f(x, k, b, p):
            if fold:
                out = spiral_conv(x, idx, k, b, padding=p, impl=impl, downsampling=down)
            else:
                out = spiral_conv(x, idx, k, b, padding=p, impl="gather_matmul")[:, down]
            return jnp.sum(jnp.sin(out) * out)

        return jax.jit(jax.grad(f, argnums=(0, 1, 2, 3)))(x, kernel, bias, padding)

    for got, want in zip(grads(True), grads(False), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        assert np.all(np.isfinite(got))


def test_downsampling_traced_module_and_errors(problem, keys):
    idx, x, kernel, _, _ = problem
    down = np.array([2, 6], np.int32)
    want = _numpy_spiral_conv(x, idx, kernel)[:, down]
    traced = jax.jit(lambda d: spiral_conv(x, idx, kernel, downsampling=d))(down)
    np.testing.assert_allclose(traced, want, rtol=1e-5, atol=1e-5)
    layer = SpiralConv(features=C_OUT, indices=idx, downsampling=down)
    params = layer.init(next(keys), x)
    assert params["params"]["kernel"].shape == (L * C, C_OUT)
    full = SpiralConv(features=C_OUT, indices=idx).apply(params, x)
    np.testing.assert_allclose(layer.apply(params, x), full[:, down], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="must lie in"):
        spiral_conv(x, idx, kernel, downsampling=np.array([0, N]))
    with pytest.raises(ValueError, match=r"\[M\]"):
        spiral_conv(x, idx, kernel, downsampling=np.zeros((2, 2), np.int32))
    with pytest.raises(ValueError, match="not both"):
        spiral_conv(x, idx, kernel, downsampling=down,
                    upsampling=(np.zeros((N, 3), np.int32), np.ones((N, 3), np.float32)))
