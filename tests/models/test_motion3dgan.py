"""Motion3DGAN generator/critic: shapes, official dimensions, conditions, normalisation options,
the official concatenated condition channels, gradients."""

import doctest
import importlib
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import manifold as mf
from jaxface.losses import (
    tangent_l1,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from jaxface.models.motion3dgan import (
    Motion3DGANCritic,
    Motion3DGANGenerator,
    TrainModeBatchNorm,
    official_conv_init,
    official_dense_init,
    one_hot_condition,
    rb_condition,
    resize_nearest,
)

T, F, B = 30, 204, 4


@pytest.fixture
def keys():
    """Fresh PRNG keys of the RBG implementation, which compiles far faster on CPU than threefry."""

    def _gen():
        key = jax.random.key(0, impl="rbg")
        while True:
            key, sub = jax.random.split(key)
            yield sub

    return _gen()


@pytest.fixture(scope="module")
def reference():
    rng = np.random.default_rng(1)
    return mf.project_to_sphere(rng.normal(size=(T, F)).astype(np.float32))


def test_official_dimensions_by_shape_evaluation():
    """Full-size networks, traced without allocating the 73M-weight dense layer."""
    gen = Motion3DGANGenerator(project_to_tangent=False)
    cond = jnp.zeros((2, 36))
    shapes = jax.eval_shape(lambda k: gen.init(k, jnp.zeros((2, 128)), cond), jax.random.key(0))[
        "params"
    ]
    assert shapes["fc"]["kernel"].shape == (164, 51 * 7 * 1024)
    assert shapes["conv0"]["kernel"].shape == (3, 3, 1024 + 36, 512)
    assert shapes["conv1"]["kernel"].shape == (3, 3, 512 + 36, 256)
    assert shapes["conv2"]["kernel"].shape == (3, 3, 256 + 36, 128)
    assert shapes["conv_out"]["kernel"].shape == (3, 3, 128 + 36, 1)
    assert "bias" not in shapes["conv0"]
    out = jax.eval_shape(
        lambda k: gen.init_with_output(k, jnp.zeros((2, 128)), cond)[0], jax.random.key(0)
    )
    assert out.shape == (2, T, F)

    critic = Motion3DGANCritic(norm="batch")
    shapes = jax.eval_shape(
        lambda k: critic.init(k, jnp.zeros((2, T, F)), cond), jax.random.key(0)
    )["params"]
    assert shapes["conv0"]["kernel"].shape == (5, 5, 1 + 36, 64)
    assert shapes["conv2"]["kernel"].shape == (5, 5, 32 + 36, 16)
    assert shapes["fc"]["kernel"].shape == (
        26 * 4 * (16 + 36),
        1024,
    )  # 5408 features, as in the official code
    assert shapes["out"]["kernel"].shape == (1024 + 36, 1)
    assert "scale" not in shapes["norm0"] and shapes["norm0"]["bias"].shape == (64,)


def test_resize_nearest_tf1_rule():
    x = jnp.arange(2 * 5 * 7 * 1, dtype=jnp.float32).reshape(2, 5, 7, 1)
    up = resize_nearest(x, (10, 14))
    np.testing.assert_array_equal(up, np.repeat(np.repeat(np.asarray(x), 2, axis=1), 2, axis=2))
    y = jnp.arange(28, dtype=jnp.float32).reshape(1, 1, 28, 1)
    out = np.asarray(resize_nearest(y, (1, 30)))[0, 0, :, 0]
    expected = [int(np.floor(j * 28 / 30)) for j in range(30)]  # legacy TF1: no half-pixel centres
    np.testing.assert_array_equal(out, expected)


def test_conditions(keys):
    labels = jnp.array([0, 5, 11])
    np.testing.assert_array_equal(one_hot_condition(labels), np.eye(12)[[0, 5, 11]])
    rb = np.asarray(rb_condition(labels, next(keys)))
    assert rb.shape == (3, 36)
    for i, label in enumerate([0, 5, 11]):
        slots = rb[i].reshape(12, 3)
        a = slots[label]
        assert np.all(a >= 0) and np.all(a <= 1)
        np.testing.assert_array_equal(np.delete(slots, label, axis=0), np.broadcast_to(-a, (11, 3)))
    assert not np.allclose(rb, np.asarray(rb_condition(labels, next(keys))))


def _init_small(keys, reference, project=True, norm="layer", cond_dim=12):
    num_frames, num_features = reference.shape
    gen = Motion3DGANGenerator(
        num_frames, num_features, base_channels=16, project_to_tangent=project
    )
    critic = Motion3DGANCritic(channels=(4, 4, 4), hidden=16, norm=norm)
    z = jax.random.normal(next(keys), (B, 128))
    cond = jax.nn.one_hot(jnp.arange(B) % cond_dim, cond_dim)
    g_params, d_params = jax.jit(
        lambda kg, kd: (
            gen.init(kg, z, cond, reference),
            critic.init(kd, jnp.zeros((B, num_frames, num_features)), cond),
        )
    )(next(keys), next(keys))
    return gen, critic, g_params, d_params, z, cond


def test_official_initialisers(keys):
    w = np.asarray(jax.jit(official_conv_init, static_argnums=1)(next(keys), (5, 5, 37, 64)))
    assert np.abs(w).max() <= 0.04 + 1e-7  # truncated at two standard deviations
    np.testing.assert_allclose(
        w.std(), 0.02 * 0.8796, rtol=0.05
    )  # std of a N(0, 1) truncated to [-2, 2]
    d = np.asarray(jax.jit(official_dense_init, static_argnums=1)(next(keys), (200, 300)))
    np.testing.assert_allclose(d.std(), (200 * 300) ** -0.25, rtol=0.05)


def test_generator_shapes_projection_and_jit(keys, reference):
    gen, _, params, _, z, cond = _init_small(keys, reference)
    raw_gen = gen.clone(project_to_tangent=False)
    v, raw = jax.jit(lambda p: (gen.apply(p, z, cond, reference), raw_gen.apply(p, z, cond)))(
        params
    )
    assert v.shape == (B, T, F) and v.dtype == jnp.float32
    v, raw, ref = (
        np.asarray(v, np.float64),
        np.asarray(raw, np.float64),
        np.asarray(reference, np.float64),
    )
    np.testing.assert_allclose(
        np.sum(v * ref, axis=(1, 2)) / T, np.zeros(B), atol=1e-6
    )  # tangent at the reference
    assert np.all(np.abs(raw) <= 1) and np.abs(np.sum(raw * ref, axis=(1, 2)) / T).max() > 1e-4
    np.testing.assert_allclose(
        v, raw - (np.sum(raw * ref, axis=(1, 2)) / T)[:, None, None] * ref, atol=1e-6
    )
    q = np.asarray(mf.exp_map(reference, v.astype(np.float32)), np.float64)
    np.testing.assert_allclose(np.sum(q**2, axis=(1, 2)) / T, np.ones(B), atol=1e-5)
    with pytest.raises(ValueError):
        gen.apply(params, z, cond)


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_critic_shapes_and_batch_dependence(keys, reference, norm):
    critic = Motion3DGANCritic(channels=(4, 4, 4), hidden=16, norm=norm)
    cond = jax.nn.one_hot(jnp.arange(B), 12)
    x = jax.random.normal(next(keys), (B, T, F)) * 0.1
    params = jax.jit(critic.init)(next(keys), x, cond)
    apply = jax.jit(critic.apply)
    scores = apply(params, x, cond)
    assert scores.shape == (B,) and np.all(np.isfinite(np.asarray(scores)))
    x_other = x.at[1:].set(jax.random.normal(next(keys), (B - 1, T, F)))
    changed = apply(params, x_other, cond)
    if norm == "batch":  # batch statistics couple the examples
        assert abs(float(changed[0] - scores[0])) > 1e-6
    else:
        np.testing.assert_allclose(changed[0], scores[0], rtol=1e-5, atol=1e-6)


def test_critic_convolution_forms_agree_with_the_gradient_penalty(keys):
    # The stride-2 convolutions as patches and a matmul (CPU default) or XLA convolutions: the
    # same parameters, scores, and gradients of the penalised critic loss.
    from jaxface.losses import gradient_penalty

    cond = jax.nn.one_hot(jnp.arange(B) % 12, 12)
    real, fake = (jax.random.normal(next(keys), (B, T, F)) * 0.1 for _ in range(2))
    critics = {impl: Motion3DGANCritic(channels=(8, 4, 4), hidden=16, conv_impl=impl)
               for impl in ("patches", "conv")}
    params = critics["conv"].init(next(keys), real, cond)
    key = next(keys)

    def loss(params, impl):
        fn = lambda v: critics[impl].apply(params, v, cond)
        return wasserstein_critic_loss(fn(real), fn(fake)) + gradient_penalty(
            fn, real, fake, key)

    assert jax.tree.structure(critics["patches"].init(next(keys), real, cond)) == \
        jax.tree.structure(params)
    scores = [critics[impl].apply(params, real, cond) for impl in critics]
    np.testing.assert_allclose(np.asarray(scores[0]), np.asarray(scores[1]), rtol=1e-4,
                               atol=1e-5)
    grads = [jax.jit(jax.grad(loss), static_argnums=1)(params, impl) for impl in critics]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-3, atol=1e-5)


def _planes(x, cond):
    """The official layers' input: the condition appended as constant channels."""
    return jnp.concatenate(
        [x, jnp.broadcast_to(cond[:, None, None, :], (*x.shape[:3], cond.shape[-1]))], -1)


def _conv(x, kernel, stride):
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _official_generator(p, z, cond, reference, base):
    """The generator written as the official graph: every convolution of concatenated planes."""
    f, t = F // 4, T // 4
    x = jax.nn.relu((jnp.concatenate([z, cond], -1) @ p["fc"]["kernel"] + p["fc"]["bias"])
                    .reshape(-1, f, t, base))
    for i, size in enumerate([(2 * f, 2 * t), (4 * f, 4 * t), (F, T)]):
        x = jax.nn.relu(_conv(resize_nearest(_planes(x, cond), size), p[f"conv{i}"]["kernel"], 1))
    v = jnp.tanh(_conv(_planes(x, cond), p["conv_out"]["kernel"], 1)[..., 0]).transpose(0, 2, 1)
    return mf.project_to_tangent(reference, v)


def _official_critic(p, v, cond, depth):
    """The critic (norm 'none') written as the official graph of concatenated planes."""
    x = v.transpose(0, 2, 1)[..., None]
    for i in range(depth):
        x = jax.nn.relu(_conv(_planes(x, cond), p[f"conv{i}"]["kernel"], 2) + p[f"conv{i}"]["bias"])
    x = _planes(x, cond).reshape(x.shape[0], -1) @ p["fc"]["kernel"] + p["fc"]["bias"]
    x = jnp.concatenate([jax.nn.leaky_relu(x, 0.2), cond], -1)
    return (x @ p["out"]["kernel"] + p["out"]["bias"])[:, 0]


@pytest.mark.parametrize("impl", ["patches", "conv"])
def test_condition_planes_are_the_official_concatenated_channels(keys, reference, impl):
    # The layers add the condition channels' response instead of convolving them: the same
    # outputs and gradients as the official graph, for a one-hot and for a real-valued code.
    gen = Motion3DGANGenerator(T, F, base_channels=16)
    critic = Motion3DGANCritic(channels=(4, 4, 4), hidden=16, norm="none", conv_impl=impl)
    z = jax.random.normal(next(keys), (B, 128))
    v = jax.random.normal(next(keys), (B, T, F)) * 0.1
    for cond in (jax.nn.one_hot(jnp.arange(B) % 12, 12), rb_condition(jnp.arange(B), next(keys))):
        g_params = gen.init(next(keys), z, cond, reference)["params"]
        d_params = critic.init(next(keys), v, cond)["params"]
        pairs = [
            (partial(lambda p, v, c: gen.apply({"params": p}, z, c, reference), c=cond),
             partial(lambda p, v, c: _official_generator(p, z, c, reference, 16), c=cond),
             g_params),
            (partial(lambda p, v, c: critic.apply({"params": p}, v, c), c=cond),
             partial(lambda p, v, c: _official_critic(p, v, c, 3), c=cond), d_params),
        ]
        for ours, official, params in pairs:
            np.testing.assert_allclose(np.asarray(ours(params, v)),
                                       np.asarray(official(params, v)), rtol=1e-4, atol=1e-5)
            loss = lambda fn: jax.grad(lambda p, v: jnp.sum(jnp.sin(fn(p, v))), argnums=(0, 1))
            got, want = loss(ours)(params, v), loss(official)(params, v)
            for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
                assert np.isfinite(np.asarray(a)).all()
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-3, atol=1e-5)


def test_train_mode_batch_norm_statistics(rng):
    x = rng.normal(loc=3.0, scale=2.0, size=(8, 5, 6, 3)).astype(np.float32)
    bn = TrainModeBatchNorm(use_scale=True)
    params = bn.init(jax.random.key(0), x)
    y = np.asarray(bn.apply(params, x))
    ref = (x - x.mean(axis=(0, 1, 2))) / np.sqrt(x.var(axis=(0, 1, 2)) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


def test_gan_losses_have_finite_gradients(keys):
    """Generator and critic losses through exp/log maps (gradient penalty: tests/losses)."""
    t, f = 8, 16  # small sizes keep the compile short
    reference = mf.project_to_sphere(jax.random.normal(next(keys), (t, f)))
    gen, critic, g_params, d_params, z, cond = _init_small(keys, reference, norm="batch")
    real_q = mf.project_to_sphere(reference + 0.05 * jax.random.normal(next(keys), (B, t, f)))

    def total_loss(g_params, d_params):
        fake_q = mf.exp_map(reference, gen.apply(g_params, z, cond, reference))
        fake_v = mf.log_map(reference, fake_q)
        real_v = mf.log_map(reference, real_q)
        critic_fn = lambda x: critic.apply(d_params, x, cond)
        d_loss = wasserstein_critic_loss(critic_fn(real_v), critic_fn(fake_v))
        g_loss = (
            wasserstein_generator_loss(critic_fn(fake_v))
            + 10.0 * tangent_l1(fake_v, real_v)
            + 10.0 * jnp.mean(mf.geodesic_distance(fake_q, real_q))
        )
        return d_loss + g_loss  # one backward pass reaches both networks

    for tree in jax.jit(jax.grad(total_loss, argnums=(0, 1)))(g_params, d_params):
        leaves = jax.tree_util.tree_leaves(tree)
        assert all(np.all(np.isfinite(np.asarray(leaf))) for leaf in leaves)
        assert any(float(jnp.max(jnp.abs(leaf))) > 0 for leaf in leaves)


def test_docstring_examples():
    module = importlib.import_module("jaxface.models.motion3dgan")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
