import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.losses.s2d import s2d_loss
from jaxface.mesh import build_hierarchy, primitives, spirals_for
from jaxface.models.neural3dmm import Neural3DMM
from jaxface.models.s2d import S2DDecoder, SpiralTopology


@pytest.fixture(scope="module")
def topology():
    v, f = primitives.icosphere(2)  # 162 vertices
    h = build_hierarchy(v, f, factors=(4, 4))
    return SpiralTopology.from_hierarchy(h, spirals_for(h, lengths=(9, 7, 5)))


def _count(tree):
    return sum(x.size for x in jax.tree.leaves(tree))


def test_decoder_shapes_and_parameter_count(topology):
    model = S2DDecoder(topology, channels=(16, 8, 4))
    params = model.init(jax.random.key(0), jnp.zeros((2, 204)))["params"]
    out = jax.jit(model.apply)({"params": params}, jnp.ones((2, 204)))
    assert out.shape == (2, topology.level_sizes[0], 3)
    n2 = topology.level_sizes[-1]
    l0, l1, _ = topology.spiral_lengths
    expected = (
        204 * (n2 + 1) * 16 + (n2 + 1) * 16  # dense with the learned padding row
        + l1 * 16 * 8 + 8  # level 1 conv
        + l0 * 8 * 4 + 4  # level 0 conv
        + l0 * 4 * 3 + 3  # output conv
    )
    assert _count(params) == expected


def test_learned_padding_is_read_by_first_conv_only(topology):
    model = S2DDecoder(topology, channels=(8, 8, 8))
    d = jax.random.normal(jax.random.key(1), (1, 204))
    params = model.init(jax.random.key(0), d)["params"]
    n2 = topology.level_sizes[-1]

    def with_pad_row(value):
        kernel = params["dense"]["kernel"].reshape(204, n2 + 1, 8).at[:, n2].set(value)
        bias = params["dense"]["bias"].reshape(n2 + 1, 8).at[n2].set(value)
        p = dict(params, dense={"kernel": kernel.reshape(204, -1), "bias": bias.reshape(-1)})
        return model.apply({"params": p}, d)

    has_padding = (topology.spirals[1] == topology.level_sizes[1]).any()
    changed = not np.allclose(with_pad_row(0.0), with_pad_row(1.0))
    assert changed == bool(has_padding)
    no_pad = S2DDecoder(topology, channels=(8, 8, 8), learned_padding=False)
    p2 = no_pad.init(jax.random.key(0), d)["params"]
    assert p2["dense"]["kernel"].shape == (204, n2 * 8)


def test_decoder_gradients_finite(topology):
    model = S2DDecoder(topology, channels=(8, 8, 8))
    d = jax.random.normal(jax.random.key(1), (4, 204))
    params = model.init(jax.random.key(0), d)["params"]
    target = jnp.ones((4, topology.level_sizes[0], 3)) * 0.01
    w = jnp.linspace(0, 1, topology.level_sizes[0])

    def loss(p):
        return s2d_loss(model.apply({"params": p}, d), target, w)[0]

    grads = jax.grad(loss)(params)
    assert all(bool(jnp.isfinite(g).all()) for g in jax.tree.leaves(grads))
    assert float(sum(jnp.abs(g).sum() for g in jax.tree.leaves(grads))) > 0


def test_neural3dmm_variant(topology):
    model = Neural3DMM(topology, encoder_channels=(8, 8), decoder_channels=(8, 8, 8), latent=4)
    x = jnp.zeros((2, topology.level_sizes[0], 3))
    params = model.init(jax.random.key(0), x, jnp.zeros((2, 204)))["params"]
    out = model.apply({"params": params}, x, jnp.ones((2, 204)))
    assert out.shape == x.shape
    assert params["decoder"]["dense"]["kernel"].shape[0] == 4 + 204


def test_topology_validation(topology):
    with pytest.raises(ValueError, match="up-sampling"):
        SpiralTopology(topology.spirals, topology.up_indices[:1], topology.up_weights)


def test_build_topology_uses_the_configured_decimation_method():
    """A topology block without ``method`` (every stored run, the shipped models) keeps the
    quadric hierarchy; ``method`` selects another one."""
    from jaxface.configs.common import topology_config
    from jaxface.models.s2d import build_topology

    v, f = primitives.icosphere(2)
    cfg = topology_config((4, 4), rings=(1, 1, 1), dilations=(1, 1, 1))
    assert "method" not in cfg
    plain = build_topology(v, f, cfg)
    expected = build_hierarchy(v, f, (4, 4))
    for got, want in zip(plain.up_weights, [expected.up_weights(1), expected.up_weights(2)],
                         strict=True):
        np.testing.assert_array_equal(got, want)
    cfg.method = "surface_distance"
    chosen = build_topology(v, f, cfg)
    other = build_hierarchy(v, f, (4, 4), method="surface_distance")
    np.testing.assert_array_equal(chosen.down_indices[0], other.down_indices(1))
    np.testing.assert_array_equal(chosen.up_weights[1], other.up_weights(2))
