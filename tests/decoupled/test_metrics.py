"""Table 1's metrics on constructed models whose answers are known."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.decoupled.codes import CodeModel
from jaxface.decoupled.embedding import choose_threshold, pair_distances, sample_pairs
from jaxface.decoupled.metrics import (
    data_decoupling,
    data_diversity,
    decoupling,
    diversity,
    mean_vertex_distance_mm,
    specificity,
)

N = 10  # vertices 0-4 carry the identity, 5-9 the expression


def _linear_model(mix: float, identity_only: bool = False) -> CodeModel:
    """meshes = A z_id + B z_exp (+ mix * z_exp on the identity vertices, and
    mix * z_id on the expression vertices)."""
    rng = np.random.default_rng(3)
    a = np.zeros((4, N, 3), np.float32)
    b = np.zeros((3, N, 3), np.float32)
    a[:, :5] = 1e-3 * rng.standard_normal((4, 5, 3))
    b[:, 5:] = 0.0 if identity_only else 1e-3 * rng.standard_normal((3, 5, 3))
    leak_e = np.zeros((3, N, 3), np.float32)
    leak_e[:, :5] = 1e-3 * rng.standard_normal((3, 5, 3))
    leak_i = np.zeros((4, N, 3), np.float32)
    leak_i[:, 5:] = 1e-3 * rng.standard_normal((4, 5, 3))
    params = {"a": a + mix * leak_i, "b": b + mix * leak_e}

    def apply(p, z_id, z_exp, noise):
        del noise
        return (jnp.einsum("bk,knc->bnc", z_id, p["a"])
                + jnp.einsum("bk,knc->bnc", z_exp, p["b"]))

    return CodeModel("linear", 4, 3, 1, params, apply)


def _embed(region):
    def embed(meshes):
        return np.asarray(meshes)[:, region].reshape(len(meshes), -1)
    return embed


def _same(a, b):
    return np.sum((a - b) ** 2, axis=-1) < 1e-12


@pytest.mark.parametrize("factor, region", [("identity", slice(0, 5)),
                                            ("expression", slice(5, 10))])
def test_decoupling_separates_a_decoupled_model_from_a_mixing_one(factor, region):
    key = jax.random.key(0)
    clean = decoupling(_linear_model(0.0), _embed(region), _same, factor, key, 6, 4)
    mixed = decoupling(_linear_model(0.5), _embed(region), _same, factor, key, 6, 4)
    assert clean == 1.0
    assert mixed == 0.0


def test_diversity_of_a_model_without_expression_variation():
    model = _linear_model(0.0, identity_only=True)
    div = diversity(model, jax.random.key(1), 40)
    assert div["identity"] == 0.0  # sharing z_id leaves nothing to vary
    assert div["expression"] > 0 and div["global"] > 0
    np.testing.assert_allclose(div["expression"], div["global"], rtol=0.3)


def test_specificity_and_data_diversity_match_brute_force(rng):
    samples = rng.standard_normal((5, N, 3)).astype(np.float32) * 1e-3
    training = rng.standard_normal((9, N, 3)).astype(np.float32) * 1e-3
    d = np.array([[mean_vertex_distance_mm(s[None], t[None])[0] for t in training]
                  for s in samples])
    np.testing.assert_allclose(specificity(samples, training, chunk=4, sample_batch=2),
                               d.min(axis=1).mean(), rtol=1e-5)
    assert specificity(training, training) == pytest.approx(0.0, abs=1e-6)

    subjects = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2])
    expressions = np.array([0, 1, 0, 1, -1, 0, 1, -1, -1])
    div = data_diversity(training, subjects, expressions, np.random.default_rng(0), 30)
    assert set(div) == {"global", "identity", "expression"}
    assert all(v > 0 for v in div.values())
    same = data_diversity(np.repeat(training[:1], 9, axis=0), subjects, expressions,
                          np.random.default_rng(0), 30)
    assert same == {"global": 0.0, "identity": 0.0, "expression": 0.0}


def test_threshold_pairs_and_real_rate(rng):
    labels = np.array([0, 0, 0, 1, 1, 2, 2, -1])
    positive, negative = sample_pairs(labels, rng, 50)
    assert (labels[positive[:, 0]] == labels[positive[:, 1]]).all()
    assert (positive[:, 0] != positive[:, 1]).all()
    assert (labels[negative[:, 0]] != labels[negative[:, 1]]).all()
    assert (labels[np.concatenate([positive, negative])] >= 0).all()
    # Embeddings: one point per label (plus noise below the gap between labels).
    emb = np.eye(3, dtype=np.float32)[np.maximum(labels, 0)] + 0.01 * rng.standard_normal((8, 3))
    t = choose_threshold(pair_distances(emb, positive), pair_distances(emb, negative), 0.0)
    assert t.accuracy == 1.0 and t.far == 0.0 and t.tpr == 1.0 and 0.001 < t.value < 2.0

    def same(a, b):
        return np.sum((a - b) ** 2, axis=-1) < t.value

    assert data_decoupling(emb, labels, same, rng, 40) == 1.0
    # A FAR bound of 0 forbids any negative accepted, even at the cost of accuracy.
    t0 = choose_threshold(np.array([0.5, 0.6]), np.array([0.1, 0.9]), 0.0)
    assert t0.far == 0.0 and t0.value < 0.1
    with pytest.raises(ValueError, match="two labels"):
        sample_pairs(np.array([0, 0, -1]), rng, 3)
