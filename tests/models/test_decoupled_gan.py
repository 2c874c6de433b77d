"""The decoupled face GAN's networks (and the embedding and autoencoder of its evaluation):
shapes, a numpy reference, gradients through the geometry mapping, batched = per-example."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.decoupled.model import geometry_map
from jaxface.mesh import build_hierarchy, primitives, spirals_for
from jaxface.models import (
    MODELS,
    DecoupledCritic,
    DecoupledGenerator,
    FaceEmbedding,
    MeshAutoencoder,
    SpiralTopology,
    create_model,
)
from jaxface.nn import GeometryMapping


def _init(module, *inputs):
    # The rbg generator compiles in a fraction of the time of the default threefry one.
    return jax.jit(module.init)(jax.random.key(0, impl="rbg"), *inputs)["params"]


def test_generator_matches_a_numpy_reference():
    g = DecoupledGenerator(num_vertices=7, hidden=5, activation="leaky_relu", negative_slope=0.2)
    rng = np.random.default_rng(0)
    z_id, z_exp, noise = (rng.standard_normal((3, d)).astype(np.float32) for d in (4, 2, 1))
    params = _init(g, z_id, z_exp, noise)
    out = jax.jit(g.apply)({"params": params}, z_id, z_exp, noise)
    z = np.concatenate([z_id, z_exp, noise], axis=1)
    h = z @ np.asarray(params["hidden"]["kernel"]) + np.asarray(params["hidden"]["bias"])
    h = np.where(h > 0, h, 0.2 * h)
    ref = h @ np.asarray(params["out"]["kernel"]) + np.asarray(params["out"]["bias"])
    assert out.shape == (3, 7, 3)
    np.testing.assert_allclose(np.asarray(out), ref.reshape(3, 7, 3), rtol=1e-5, atol=1e-5)


def test_critic_heads_shapes_and_per_example_outputs():
    d = DecoupledCritic(num_identities=3, num_expressions=5, shared_channels=(4, 8),
                        branch_channels=(8, 8))
    x = jax.random.normal(jax.random.key(1), (4, 16, 16, 3))
    params = _init(d, x[:1])
    out = jax.jit(d.apply)({"params": params}, x)
    assert out.score.shape == (4,)
    assert out.identity_logits.shape == (4, 3) and out.expression_logits.shape == (4, 5)
    assert out.identity_features.shape == out.expression_features.shape == (4, 1 * 1 * 8)
    one = d.apply({"params": params}, x[2:3])  # no batch statistics: batched = per example
    np.testing.assert_allclose(np.asarray(one.score), np.asarray(out.score[2:3]), rtol=1e-5,
                               atol=1e-6)
    # The shared blocks feed the three heads, each head has its own blocks.
    assert {"shared_0", "shared_1", "adversarial_0", "identity_1", "expression_out"} <= set(params)
    with pytest.raises(ValueError, match="divisible by 2"):
        d.apply({"params": params}, jnp.zeros((1, 12, 12, 3)))


def test_critic_convolution_forms_agree_with_the_gradient_penalty():
    # The DC-GAN blocks as patches and a matmul (CPU default) or XLA convolutions: the same
    # parameters, outputs, and gradients of the penalised critic loss.
    from jaxface.losses import gradient_penalty

    rng = np.random.default_rng(0)
    real, fake = (jnp.asarray(rng.normal(size=(4, 16, 16, 3)), jnp.float32) for _ in range(2))
    critics = {impl: DecoupledCritic(num_identities=3, num_expressions=4, shared_channels=(4, 8),
                                     branch_channels=(8,), conv_impl=impl)
               for impl in ("patches", "conv")}
    params = critics["conv"].init(jax.random.key(0), real)
    assert jax.tree.structure(critics["patches"].init(jax.random.key(1), real)) == \
        jax.tree.structure(params)

    def loss(params, impl):
        fn = lambda x: critics[impl].apply(params, x).score
        return jnp.mean(fn(fake)) - jnp.mean(fn(real)) + gradient_penalty(
            fn, real, fake, jax.random.key(2))

    outs = [critics[impl].apply(params, real) for impl in critics]
    for a, b in zip(outs[0], outs[1], strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
    grads = [jax.jit(jax.grad(loss), static_argnums=1)(params, impl) for impl in critics]
    for a, b in zip(jax.tree.leaves(grads[0]), jax.tree.leaves(grads[1]), strict=True):
        assert np.isfinite(np.asarray(a)).all()
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-3, atol=1e-5)


def test_geometry_image_of_generated_meshes_is_differentiable_in_the_codes():
    template = load_face_template(0)
    gim = geometry_map(template.vertices, template.faces, 16)
    assert 0.5 < gim.mask.mean() <= 1.0
    mapping = GeometryMapping(gim.vertex_indices, gim.barycentric, gim.mask)
    g = DecoupledGenerator(num_vertices=template.vertices.shape[0], hidden=16)
    z_id, z_exp, noise = jnp.ones((2, 3)), jnp.ones((2, 2)), jnp.zeros((2, 1))
    params = _init(g, z_id, z_exp, noise)

    def image_energy(z_id, z_exp):
        images = mapping.apply({}, g.apply({"params": params}, z_id, z_exp, noise))
        return jnp.sum(jnp.sin(images))

    images = mapping.apply({}, g.apply({"params": params}, z_id, z_exp, noise))
    assert images.shape == (2, 16, 16, 3)
    assert np.all(np.asarray(images)[:, ~gim.mask] == 0)  # uncovered pixels stay zero
    grads = jax.jit(jax.grad(image_energy, argnums=(0, 1)))(z_id, z_exp)
    for grad in grads:
        assert np.isfinite(np.asarray(grad)).all()
        assert np.abs(np.asarray(grad)).max() > 0


def test_registry_builds_the_networks_from_config_blocks():
    assert {"decoupled_generator", "decoupled_critic", "face_embedding",
            "mesh_autoencoder"} <= set(MODELS)
    gen_cfg = ml_collections.ConfigDict({"name": "decoupled_generator", "hidden": 8,
                                         "activation": "relu", "negative_slope": 0.2})
    assert create_model(gen_cfg, num_vertices=5) == DecoupledGenerator(5, 8)
    critic_cfg = ml_collections.ConfigDict({"name": "decoupled_critic", "shared_channels": (2,),
                                            "branch_channels": (4,), "negative_slope": 0.1})
    critic = create_model(critic_cfg, num_identities=2, num_expressions=3)
    assert critic.shared_channels == (2,) and critic.num_expressions == 3
    ones = (jnp.ones((1, 1)),) * 3
    with pytest.raises(ValueError, match="activation must be"):
        DecoupledGenerator(3, 4, activation="tanh").init(jax.random.key(0), *ones)
    with pytest.raises(ValueError, match="output_init must be one of"):
        DecoupledGenerator(3, 4, output_init="ones").init(jax.random.key(0), *ones)


def test_embedding_is_unit_norm_and_autoencoder_reconstructs_shapes():
    net = FaceEmbedding(channels=(4, 8), embedding_dim=5)
    x = jax.random.normal(jax.random.key(2), (3, 16, 16, 3))
    e = jax.jit(net.apply)({"params": _init(net, x)}, x)
    np.testing.assert_allclose(np.linalg.norm(np.asarray(e), axis=-1), 1.0, rtol=1e-5)

    v, f = primitives.icosphere(2)
    h = build_hierarchy(v, f, factors=(4, 4))
    topo = SpiralTopology.from_hierarchy(h, spirals_for(h, lengths=(9, 7, 5)))
    ae = MeshAutoencoder(topo, encoder_channels=(4, 4), decoder_channels=(4, 4, 4), latent=6)
    meshes = jnp.asarray(np.broadcast_to(v, (2, *v.shape)), jnp.float32)
    params = _init(ae, meshes)
    code = ae.apply({"params": params}, meshes, method=ae.encode)
    assert code.shape == (2, 6)
    recon = ae.apply({"params": params}, code, method=ae.decode)
    np.testing.assert_allclose(np.asarray(recon),
                               np.asarray(ae.apply({"params": params}, meshes)), atol=1e-5)
