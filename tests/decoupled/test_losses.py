"""The decoupled face GAN's losses against numpy references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.decoupled.losses import (
    SparseLaplacian,
    feature_consistency,
    laplacian_regularizer,
    triplet_loss,
    weighted_cross_entropy,
)
from jaxface.mesh.topology import cotangent_laplacian


def test_laplacian_regularizer_matches_scipy_cotangent_laplacian(rng):
    template = load_face_template(0)
    lap = SparseLaplacian.of_mesh(template.vertices, template.faces)
    d = rng.standard_normal((3, template.vertices.shape[0], 3)).astype(np.float32)
    dense = cotangent_laplacian(template.vertices, template.faces).toarray()
    ld = np.einsum("ij,bjc->bic", dense, d)
    expected = np.mean(np.sum(ld**2, axis=-1))
    got = jax.jit(laplacian_regularizer, static_argnums=1)(d, lap)
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)
    # Rigid translations are free (rows of L sum to zero), smooth fields cost less than noise.
    shift = np.broadcast_to(np.array([0.3, -0.2, 1.0], np.float32), d.shape)
    assert float(laplacian_regularizer(jnp.asarray(shift), lap)) < 1e-8
    smooth = np.broadcast_to(template.vertices[None] * 2.0, d.shape).astype(np.float32)
    assert float(laplacian_regularizer(jnp.asarray(smooth), lap)) < expected


def test_weighted_cross_entropy_matches_numpy(rng):
    logits = rng.standard_normal((6, 4)).astype(np.float32)
    labels = np.array([0, 3, -1, 1, 3, -1])
    weights = np.array([0.5, 2.0, 1.0, 1.5], np.float32)
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    keep = labels >= 0
    nll = -log_p[keep, labels[keep]]
    w = weights[labels[keep]]
    expected = np.sum(w * nll) / np.sum(w)
    got = jax.jit(weighted_cross_entropy)(logits, labels, weights)
    np.testing.assert_allclose(float(got), expected, rtol=1e-5)
    assert float(weighted_cross_entropy(logits, -np.ones(6, np.int32), weights)) == 0.0
    grads = jax.grad(weighted_cross_entropy)(jnp.asarray(logits), labels, weights)
    np.testing.assert_array_equal(np.asarray(grads)[~keep], 0.0)  # unlabelled rows ignored


def test_feature_consistency_compares_consecutive_pairs(rng):
    f = rng.standard_normal((6, 5)).astype(np.float32)
    expected = np.mean(np.sum((f[0::2] - f[1::2]) ** 2, axis=-1))
    np.testing.assert_allclose(float(feature_consistency(jnp.asarray(f))), expected, rtol=1e-5)
    assert float(feature_consistency(jnp.repeat(jnp.asarray(f[:3]), 2, axis=0))) == 0.0
    with pytest.raises(ValueError, match="even batch"):
        feature_consistency(jnp.asarray(f[:5]))


def test_triplet_loss_matches_a_loop(rng):
    e = rng.standard_normal((7, 3)).astype(np.float32)
    e /= np.linalg.norm(e, axis=-1, keepdims=True)
    labels = np.array([0, 0, 1, 1, 1, 2, -1])
    margin = 0.5
    terms = []
    for a in range(7):
        for p in range(7):
            for n in range(7):
                if min(labels[[a, p, n]]) < 0 or a == p:
                    continue
                if labels[a] == labels[p] != labels[n]:
                    d_ap = np.sum((e[a] - e[p]) ** 2)
                    d_an = np.sum((e[a] - e[n]) ** 2)
                    terms.append(max(d_ap - d_an + margin, 0.0))
    terms = np.asarray(terms)
    expected = terms.sum() / max((terms > 1e-12).sum(), 1)
    got = jax.jit(triplet_loss, static_argnums=2)(e, labels, margin)
    np.testing.assert_allclose(float(got), expected, rtol=1e-4)
    # Well separated classes cost nothing.
    centres = np.eye(3, dtype=np.float32)[[0, 0, 1, 1, 2]]
    assert float(triplet_loss(jnp.asarray(centres), np.array([0, 0, 1, 1, 2]), 0.5)) == 0.0
