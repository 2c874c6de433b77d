"""The LSTM + spiral decoder, its PCA baseline and the masked eq. 5 loss."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.losses import masked_sequence_l1
from jaxface.models import build_topology, create_model


def _topology_cfg(factors):
    c = ml_collections.ConfigDict()
    c.factors = factors
    c.rings = (1,) * (len(factors) + 1)
    c.dilations = (1,) * (len(factors) + 1)
    c.lengths = None
    c.reference_vertices = None
    return c


def _model_cfg(decoder, channels=(8, 8, 3), latent=6):
    c = ml_collections.ConfigDict()
    c.name = "expression_lstm"
    c.decoder = decoder
    c.channels = channels
    c.activation = "relu"
    c.output_activation = False
    c.hidden_size = 12
    c.latent_size = latent
    return c


@pytest.fixture(scope="module")
def topology():
    t = load_face_template(0)
    return build_topology(t.vertices, t.faces, _topology_cfg((4, 4)))


def test_masked_loss_matches_numpy(rng):
    pred = rng.normal(size=(3, 5, 7, 3)).astype(np.float32)
    target = rng.normal(size=(3, 5, 7, 3)).astype(np.float32)
    lengths = [5, 2, 4]
    mask = np.zeros((3, 5), np.float32)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
    l_r, l_c = masked_sequence_l1(jnp.asarray(pred), jnp.asarray(target), jnp.asarray(mask))
    rec = np.concatenate([np.abs(pred[i, :n] - target[i, :n]).ravel()
                          for i, n in enumerate(lengths)])
    dp = [np.abs(np.diff(pred[i, :n], axis=0) - np.diff(target[i, :n], axis=0)).ravel()
          for i, n in enumerate(lengths)]
    np.testing.assert_allclose(float(l_r), rec.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(l_c), np.concatenate(dp).mean(), rtol=1e-5)


def test_spiral_decoder_shapes_and_finite_gradients(topology, keys):
    model = create_model(_model_cfg("spiral"), topology=topology)
    signal = jax.random.uniform(next(keys), (2, 9, 6))
    params = model.init(next(keys), signal)["params"]
    out = model.apply({"params": params}, signal)
    assert out.shape == (2, 9, topology.level_sizes[0], 3)
    codes = model.apply({"params": params}, signal, method=model.encode)
    assert codes.shape == (2, 9, 6)
    np.testing.assert_allclose(model.apply({"params": params}, codes, method=model.decode), out,
                               rtol=1e-5, atol=1e-6)
    mask = jnp.ones((2, 9))

    def loss(p):
        l_r, l_c = masked_sequence_l1(model.apply({"params": p}, signal), jnp.zeros_like(out),
                                      mask)
        return l_r + l_c

    grads = jax.grad(loss)(params)
    leaves = jax.tree_util.tree_leaves(grads)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in leaves)
    assert any(float(jnp.abs(g).max()) > 0 for g in leaves)
    # the last convolution has no activation: displacements of both signs
    assert float(out.min()) < 0 < float(out.max())


def test_pca_decoder_is_mean_plus_code_times_basis(rng, keys):
    n, k = 20, 6
    mean = rng.normal(size=(n, 3)).astype(np.float32)
    comps = rng.normal(size=(k, n, 3)).astype(np.float32)
    model = create_model(_model_cfg("pca", latent=k), basis=(mean, comps))
    signal = jax.random.uniform(next(keys), (1, 4, 3))
    params = model.init(next(keys), signal)["params"]
    codes = np.asarray(model.apply({"params": params}, signal, method=model.encode))
    out = np.asarray(model.apply({"params": params}, signal))
    want = mean + np.einsum("btk,knc->btnc", codes, comps)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
    assert "decoder" not in params  # the basis is data, not parameters


def test_registry_errors(topology):
    with pytest.raises(ValueError, match="needs the template's topology"):
        create_model(_model_cfg("spiral"))
    with pytest.raises(ValueError, match="needs the basis"):
        create_model(_model_cfg("pca"))
    with pytest.raises(ValueError, match="'spiral' or 'pca'"):
        create_model(_model_cfg("mlp"), topology=topology)
    model = create_model(_model_cfg("spiral", channels=(8, 3)), topology=topology)
    with pytest.raises(ValueError, match="one entry per level"):
        model.init(jax.random.key(0), jnp.zeros((1, 2, 3)))


@pytest.mark.filterwarnings("ignore:decimating to 3 vertices:RuntimeWarning")
def test_paper_hierarchy_factor_five():
    """Factor 5 keeps ceil(n / 5) vertices per level, as Neural3DMM's sampler on 4DFAB's
    28431-vertex template (28431 -> 5687 -> 1138 -> 228 -> 46)."""
    t = load_face_template(1)
    topo = build_topology(t.vertices, t.faces, _topology_cfg((5, 5, 5, 5)))
    sizes = topo.level_sizes
    assert sizes[0] == 1790
    assert all(sizes[i + 1] == -(-sizes[i] // 5) for i in range(4))
    model = create_model(_model_cfg("spiral", channels=(64, 32, 16, 8, 3), latent=64),
                         topology=topo)
    params = model.init(jax.random.key(0), jnp.zeros((1, 3, 6)))["params"]
    dense = params["decoder"]["dense"]["kernel"]
    assert dense.shape == (64, sizes[-1] * 64)


@pytest.mark.filterwarnings("ignore:decimating to:RuntimeWarning")
def test_paper_shapes_on_the_subdivided_template():
    """On a 27614-vertex subdivision of the template the hierarchy has the proportions of the
    paper's Table 1 (28431 -> 5687 -> 1138 -> 228 -> 46) and the decoder runs at full size."""
    t = load_face_template(3)
    topo = build_topology(t.vertices, t.faces, _topology_cfg((5, 5, 5, 5)))
    assert topo.level_sizes == (27614, 5523, 1105, 221, 45)
    model = create_model(_model_cfg("spiral", channels=(64, 32, 16, 8, 3), latent=64),
                         topology=topo)
    signal = jnp.zeros((1, 2, 6)).at[:, 1, 0].set(1.0)
    params = model.init(jax.random.key(0), signal)["params"]
    out = model.apply({"params": params}, signal)
    assert out.shape == (1, 2, 27614, 3) and bool(jnp.all(jnp.isfinite(out)))


def test_standardised_decoder_scales_and_shifts_per_vertex(topology, rng, keys):
    n = topology.level_sizes[0]
    mean = rng.normal(size=(n, 3)).astype(np.float32) * 1e-3
    std = rng.uniform(1e-4, 1e-3, size=(n, 3)).astype(np.float32)
    cfg = _model_cfg("spiral")
    plain = create_model(cfg, topology=topology)
    cfg.standardize = True
    with pytest.raises(ValueError, match="mean and standard deviation"):
        create_model(cfg, topology=topology)
    scaled = create_model(cfg, topology=topology, stats=(mean, std))
    signal = jax.random.uniform(next(keys), (2, 5, 6))
    params = plain.init(next(keys), signal)["params"]
    raw = np.asarray(plain.apply({"params": params}, signal))
    np.testing.assert_allclose(np.asarray(scaled.apply({"params": params}, signal)),
                               raw * std + mean, rtol=1e-5, atol=1e-9)
