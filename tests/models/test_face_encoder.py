"""SMIRK's encoders: output shapes, the official head initialisation, a numpy reference of the
heads and their limits, gradients, BatchNorm modes and the registry entry."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from scipy import stats as scipy_stats

from jaxface.models import (
    MODELS,
    ExpressionEncoder,
    FaceEncoder,
    FaceEncoding,
    MobileNetV3Minimal,
    create_model,
)
from jaxface.models.face_encoder import torch_linear_init

E, S = 50, 300
# All three backbones small: the same code paths as the official (small, large, large) encoder
# at a fraction of the compile time; the official one is checked by shape.
SMALL = dict(pose_backbone="small", shape_backbone="small", expression_backbone="small")


def _images(batch=4, size=32, seed=0):
    return jax.random.uniform(jax.random.key(seed), (batch, size, size, 3))


@pytest.fixture(scope="module")
def small_encoder():
    encoder = FaceEncoder(num_shape=S, num_expression=E, **SMALL)
    variables = jax.jit(encoder.init)(jax.random.key(0), _images())
    return encoder, variables


def _with_head(variables, encoder_name, kernel, bias):
    params = dict(variables["params"])
    params[encoder_name] = {**params[encoder_name], "head": {"kernel": kernel, "bias": bias}}
    return {**variables, "params": params}


def _pooled(variables, encoder_name, images, variant="small"):
    """Pooled backbone features [B, C] (numpy), from the backbone applied on its own."""
    sub = {c: variables[c][encoder_name]["backbone"] for c in ("params", "batch_stats")}
    feats = jax.jit(MobileNetV3Minimal(variant).apply)(sub, images)
    return np.asarray(feats, np.float64).mean(axis=(1, 2))


def test_official_encoder_shapes_and_sizes():
    encoder = FaceEncoder()
    x = jax.ShapeDtypeStruct((2, 224, 224, 3), jnp.float32)
    variables = jax.eval_shape(encoder.init, jax.random.key(0), x)
    out = jax.eval_shape(encoder.apply, variables, x)
    assert isinstance(out, FaceEncoding)
    shapes = {k: v.shape for k, v in out._asdict().items()}
    assert shapes == {"pose": (2, 3), "cam": (2, 3), "shape": (2, 300), "expression": (2, 50),
                      "eyelids": (2, 2), "jaw": (2, 3)}
    assert all(v.dtype == jnp.float32 for v in out)

    def count(tree):
        return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(tree))

    params = variables["params"]
    heads = {"pose_encoder": (576, 6), "shape_encoder": (960, 300),
             "expression_encoder": (960, 55)}
    for name, (fan_in, out_dim) in heads.items():
        assert params[name]["head"]["kernel"].shape == (fan_in, out_dim)
    assert count(params["pose_encoder"]["backbone"]) == 428_888
    assert count(params["shape_encoder"]["backbone"]) == 1_413_208
    assert count(params) == 428_888 + 2 * 1_413_208 + sum(
        i * o + o for i, o in heads.values())


def test_heads_start_as_the_official_code(small_encoder):
    encoder, variables = small_encoder
    params = variables["params"]
    width = 576
    bound = 1.0 / np.sqrt(width)  # PyTorch's default Linear: U(-1/sqrt(fan_in), +1/sqrt(fan_in))

    pose_k = np.asarray(params["pose_encoder"]["head"]["kernel"])
    pose_b = np.asarray(params["pose_encoder"]["head"]["bias"])
    assert np.all(pose_k[:, 3] == 0.0) and pose_b[3] == 7.0
    others = np.delete(pose_k, 3, axis=1).ravel() / (1e-3 * bound)
    assert np.abs(others).max() <= 1.0
    assert scipy_stats.kstest(others, "uniform", args=(-1.0, 2.0)).pvalue > 1e-3
    assert np.abs(np.delete(pose_b, 3)).max() <= 1e-3 * bound

    assert not np.any(np.asarray(params["shape_encoder"]["head"]["kernel"]))
    assert not np.any(np.asarray(params["shape_encoder"]["head"]["bias"]))

    exp_k = np.asarray(params["expression_encoder"]["head"]["kernel"]).ravel() / (0.1 * bound)
    exp_b = np.asarray(params["expression_encoder"]["head"]["bias"]) / (0.1 * bound)
    assert np.abs(exp_k).max() <= 1.0 and np.abs(exp_b).max() <= 1.0
    assert scipy_stats.kstest(exp_k, "uniform", args=(-1.0, 2.0)).pvalue > 1e-3
    assert abs(np.std(exp_k) - 1 / np.sqrt(3)) < 0.02  # std of U(-1, 1)

    out = jax.jit(encoder.apply)(variables, _images())
    np.testing.assert_array_equal(out.cam[:, 0], 7.0)
    np.testing.assert_array_equal(out.shape, 0.0)
    assert float(jnp.abs(out.pose).max()) < 1e-2


def test_torch_linear_init_is_uniform_in_the_fan_in_bound():
    kernel_init, bias_init = torch_linear_init(400, scale=2.0)
    k = np.asarray(kernel_init(jax.random.key(0), (400, 300))).ravel() / (2.0 / 20.0)
    b = np.asarray(bias_init(jax.random.key(1), (300,))) / (2.0 / 20.0)
    assert np.abs(k).max() <= 1.0 and np.abs(b).max() <= 1.0
    assert scipy_stats.kstest(k, "uniform", args=(-1.0, 2.0)).pvalue > 1e-3


def test_outputs_match_a_numpy_reference_of_the_heads(small_encoder):
    encoder, variables = small_encoder
    rng = np.random.default_rng(0)
    x = _images(seed=1)
    heads = {}
    for name, out_dim in (("pose_encoder", 6), ("shape_encoder", S),
                          ("expression_encoder", E + 5)):
        # random heads centred on this batch, then shifted past the limits of the outputs
        kernel = rng.normal(0.0, 0.3, (576, out_dim)).astype(np.float32)
        offset = rng.normal(0.0, 1.0, out_dim)
        if name == "expression_encoder":
            offset[E:] = (-1.0, 2.0, -1.0, 1.0, -1.0)  # eyelids, jaw
        bias = (offset - _pooled(variables, name, x).mean(0) @ kernel).astype(np.float32)
        variables = _with_head(variables, name, kernel, bias)
        heads[name] = (kernel.astype(np.float64), bias.astype(np.float64))
    out = jax.jit(encoder.apply)(variables, x)

    def raw(name):
        kernel, bias = heads[name]
        return _pooled(variables, name, x) @ kernel + bias

    pose_cam, shape, exp = raw("pose_encoder"), raw("shape_encoder"), raw("expression_encoder")
    tol = dict(rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(out.pose, pose_cam[:, :3], **tol)
    np.testing.assert_allclose(out.cam, pose_cam[:, 3:], **tol)
    np.testing.assert_allclose(out.shape, shape, **tol)
    np.testing.assert_allclose(out.expression, exp[:, :E], **tol)
    np.testing.assert_allclose(out.eyelids, np.clip(exp[:, E:E + 2], 0.0, 1.0), **tol)
    np.testing.assert_allclose(out.jaw[:, 0], np.maximum(exp[:, E + 2], 0.0), **tol)
    np.testing.assert_allclose(out.jaw[:, 1:], np.clip(exp[:, E + 3:], -0.2, 0.2), **tol)
    # the limits hold, and the random head drives values past them on both sides
    eyelids, jaw = np.asarray(out.eyelids), np.asarray(out.jaw)
    assert eyelids.min() >= 0.0 and eyelids.max() <= 1.0
    assert jaw[:, 0].min() >= 0.0 and np.abs(jaw[:, 1:]).max() <= 0.2
    assert (exp[:, E:E + 2] < 0).any() and (exp[:, E:E + 2] > 1).any()
    assert (np.abs(exp[:, E + 3:]) > 0.2).any() and (exp[:, E + 2] < 0).any()


def test_sigmoid_eyelids_pass_gradients_where_the_clamp_does_not(small_encoder):
    _, variables = small_encoder
    sub = {c: variables[c]["expression_encoder"] for c in ("params", "batch_stats")}
    bias = np.asarray(sub["params"]["head"]["bias"]).copy()
    bias[E:E + 2] = (-3.0, 4.0)  # both eyelids far outside [0, 1]
    sub["params"] = {**sub["params"], "head": {**sub["params"]["head"], "bias": bias}}
    x = _images(seed=2)

    def eyelid_grad(mode):
        enc = ExpressionEncoder(num_expression=E, backbone="small", eyelids=mode)

        def total(bias):
            p = {**sub["params"], "head": {**sub["params"]["head"], "bias": bias}}
            return jnp.sum(enc.apply({**sub, "params": p}, x)[1])

        return enc.apply(sub, x)[1], jax.jit(jax.grad(total))(jnp.asarray(bias))[E:E + 2]

    clamped, g_clamp = eyelid_grad("clamp")
    soft, g_soft = eyelid_grad("sigmoid")
    np.testing.assert_allclose(clamped, np.tile([0.0, 1.0], (4, 1)), atol=1e-6)
    assert np.all(np.asarray(g_clamp) == 0.0)
    assert np.all(np.asarray(g_soft) > 0.0)
    assert np.all((np.asarray(soft) > 0.0) & (np.asarray(soft) < 1.0))
    with pytest.raises(ValueError, match="eyelids must be one of"):
        ExpressionEncoder(eyelids="tanh", backbone="small").init(jax.random.key(0), x)


def test_gradients_are_finite_and_reach_all_three_encoders(small_encoder):
    encoder, variables = small_encoder
    x = _images(seed=3)
    weights = jax.tree.map(lambda a: jax.random.normal(jax.random.key(4), a.shape),
                           jax.eval_shape(encoder.apply, variables, x))

    @jax.jit
    def grads(params):
        def loss(params):
            out, _ = encoder.apply({"params": params, "batch_stats": variables["batch_stats"]},
                                   x, train=True, mutable=["batch_stats"])
            return sum(jnp.sum(w * o) for w, o in zip(weights, out, strict=True))

        return jax.grad(loss)(params)

    g = grads(variables["params"])
    assert all(bool(jnp.all(jnp.isfinite(leaf))) for leaf in jax.tree.leaves(g))
    for name in ("pose_encoder", "shape_encoder", "expression_encoder"):
        assert float(jnp.abs(g[name]["head"]["kernel"]).sum()) > 0.0, name
    for name in ("pose_encoder", "expression_encoder"):
        assert float(jnp.abs(g[name]["backbone"]["conv_stem"]["kernel"]).sum()) > 0.0, name
    # the zero shape head passes nothing back to its backbone until it has moved (as official)
    assert not any(bool(jnp.any(leaf)) for leaf in jax.tree.leaves(g["shape_encoder"]["backbone"]))


def test_train_mode_updates_batch_statistics_and_eval_mode_does_not(small_encoder):
    encoder, variables = small_encoder
    x = _images(seed=5)
    train_out, updates = jax.jit(
        lambda v, x: encoder.apply(v, x, train=True, mutable=["batch_stats"]))(variables, x)
    eval_out = jax.jit(encoder.apply)(variables, x)
    moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                         updates["batch_stats"], variables["batch_stats"])
    for name in ("pose_encoder", "shape_encoder", "expression_encoder"):
        assert max(jax.tree.leaves(moved[name])) > 0.0, name
    assert not np.allclose(train_out.pose, eval_out.pose)
    # eval: each image is encoded on its own (batched = one by one), jit = no jit
    one = encoder.apply(variables, x[1:2])
    for a, b in zip(one, eval_out, strict=True):
        np.testing.assert_allclose(a[0], b[1], rtol=1e-5, atol=1e-5)


def _config(**fields):
    base = {"name": "smirk_encoder", "num_shape": 300, "num_expression": 50}
    return ml_collections.ConfigDict({**base, **fields})


def test_registry_builds_the_encoder_from_its_config():
    assert "smirk_encoder" in MODELS
    default = create_model(_config())
    assert default == FaceEncoder(num_shape=300, num_expression=50)
    custom = create_model(_config(num_shape=100, num_expression=20, dtype="bfloat16",
                                  eyelids="sigmoid", backbones={"shape": "small"}))
    assert custom == FaceEncoder(num_shape=100, num_expression=20, shape_backbone="small",
                                 eyelids="sigmoid", dtype=jnp.bfloat16)
    with pytest.raises(ValueError, match=r"model.backbones: unknown encoder\(s\) \['jaw'\]"):
        create_model(_config(backbones={"jaw": "small"}))
    with pytest.raises(ValueError, match=r"model.dtype must be .*, got 'float16'"):
        create_model(_config(dtype="float16"))
