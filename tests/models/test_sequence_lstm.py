"""LSTM baseline generator and expression classifier: shapes, conventions, and a few-step
overfit."""

import doctest
import importlib

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.models import (
    LSTMExpressionClassifier,
    LSTMLandmarkGenerator,
    expression_code,
    sequence_l1_loss,
)

B, T, L, K = 4, 8, 10, 3  # tiny: 10 landmarks, 3 classes


def _fit(loss_fn, params, steps=25, lr=1e-2):
    opt = optax.adam(lr)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = opt.init(params)
    losses = []
    for _ in range(steps):
        params, opt_state, loss = step(params, opt_state)
        losses.append(float(loss))
    return losses


def test_expression_code_and_sequence_loss(rng):
    code = np.asarray(
        expression_code(jnp.array([2, 0]), 5, num_classes=3, intensity=jnp.array([1.0, 0.5]))
    )
    ramp = np.linspace(0, 1, 5)
    np.testing.assert_allclose(code[0], np.outer(ramp, [0, 0, 1]), atol=1e-7)
    np.testing.assert_allclose(code[1], np.outer(0.5 * ramp, [1, 0, 0]), atol=1e-7)

    pred, target = rng.normal(size=(2, 2, 6, 5, 3))
    ref = np.mean(np.abs(pred - target)) + 0.5 * np.mean(
        np.abs(np.diff(pred, axis=1) - np.diff(target, axis=1))
    )
    np.testing.assert_allclose(sequence_l1_loss(pred, target, 0.5), ref, rtol=1e-6)


def test_generator_shapes_anchor_and_overfit(rng):
    neutral = rng.normal(size=(B, L, 3)).astype(np.float32)
    labels = jnp.arange(B) % K
    t = np.linspace(0, 1, T, dtype=np.float32)[None, :, None, None]
    target = neutral[:, None] + t * rng.normal(size=(B, 1, L, 3)).astype(np.float32) * 0.1
    model = LSTMLandmarkGenerator(num_frames=T, num_classes=K, hidden_size=16, latent_size=8)
    params = jax.jit(model.init)(jax.random.key(0, impl="rbg"), labels, neutral)
    apply = jax.jit(model.apply)
    out = apply(params, labels, neutral)
    assert out.shape == (B, T, L, 3)
    np.testing.assert_allclose(
        out[:, 0], neutral, atol=1e-6
    )  # frame 0 is the neutral configuration
    # Deterministic: the same inputs give the same motion.
    np.testing.assert_array_equal(out, apply(params, labels, neutral))
    losses = _fit(lambda p: sequence_l1_loss(model.apply(p, labels, neutral), target), params)
    assert losses[-1] < 0.5 * losses[0]


def test_classifier_shapes_lengths_and_overfit(rng):
    seqs = rng.normal(size=(B, T, L, 3)).astype(np.float32)
    labels = jnp.arange(B) % K
    model = LSTMExpressionClassifier(num_classes=K, hidden_size=16, feature_size=32)
    params = jax.jit(model.init)(jax.random.key(0, impl="rbg"), seqs)
    apply = jax.jit(model.apply)
    logits, feats = apply(params, seqs)
    assert logits.shape == (B, K) and feats.shape == (B, 32)
    # Default 512-d features.
    full = LSTMExpressionClassifier(num_classes=12, hidden_size=8)
    shapes = jax.eval_shape(
        lambda k: full.init_with_output(k, seqs)[0], jax.random.key(0, impl="rbg")
    )
    assert shapes[0].shape == (B, 12) and shapes[1].shape == (B, 512)
    # Identity-invariant by default: a per-sequence offset does not change the output.
    shifted = seqs + rng.normal(size=(B, 1, L, 3)).astype(np.float32)
    np.testing.assert_allclose(apply(params, shifted)[0], logits, rtol=1e-4, atol=1e-5)
    # With lengths, frames past the end are ignored, and the result is that of the truncated
    # sequence.
    lengths = jnp.array([T, 5, 3, T])
    padded_logits, _ = apply(params, seqs, lengths)
    garbage = seqs.copy()
    garbage[1, 5:] = 100.0
    garbage[2, 3:] = -7.0
    np.testing.assert_allclose(
        apply(params, garbage, lengths)[0], padded_logits, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        np.asarray(padded_logits)[[0, 3]], np.asarray(logits)[[0, 3]], rtol=1e-5, atol=1e-6
    )
    truncated, _ = apply(params, seqs[:, :5])
    np.testing.assert_allclose(padded_logits[1], truncated[1], rtol=1e-4, atol=1e-5)

    def loss_fn(p):
        lg, _ = model.apply(p, seqs)
        return optax.softmax_cross_entropy_with_integer_labels(lg, labels).mean()

    losses = _fit(loss_fn, params)
    assert losses[-1] < 0.5 * losses[0]


def test_docstring_examples():
    module = importlib.import_module("jaxface.models.sequence_lstm")
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
