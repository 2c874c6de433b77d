"""SRVF forward/inverse against a NumPy reference built on numpy.gradient and an explicit trapezoid
rule."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import manifold as mf

srvf = jax.jit(mf.srvf, static_argnames=("time_axis", "spacing", "return_length"))
srvf_inverse = jax.jit(mf.srvf_inverse, static_argnames="spacing")
norm = jax.jit(mf.norm)


def srvf_np(curve):
    """Official curve_to_q in NumPy: [T, 68, 3] -> q [T, 204], length."""
    x = curve.reshape(curve.shape[0], -1).astype(np.float64)
    n = x.shape[0]
    v = np.gradient(x, 1.0 / n, axis=0)
    length = np.sum(np.linalg.norm(v, axis=1)) / n
    v = v / length
    q = np.empty_like(v)
    for t in range(n):
        r = np.sqrt(np.linalg.norm(v[t]))
        q[t] = v[t] / r if r > 1e-4 else v[t] * 1e-4
    return q, length


def inverse_np(q, neutral, intensity, h):
    f = q * np.linalg.norm(q, axis=1, keepdims=True)
    out = np.zeros_like(q)
    for t in range(1, q.shape[0]):
        out[t] = out[t - 1] + 0.5 * h * (f[t] + f[t - 1])
    return (neutral.reshape(1, -1) + intensity * out).reshape(q.shape[0], *neutral.shape)


def smooth_curve(rng, num_frames=30):
    """A neutral -> apex style motion: unit-normalised landmarks plus a smooth displacement."""
    neutral = rng.normal(size=(68, 3))
    neutral = (neutral - neutral.mean(0)) / np.linalg.norm(neutral - neutral.mean(0))
    t = np.linspace(0.0, 1.0, num_frames)[:, None, None]
    direction = rng.normal(size=(68, 3)) * 0.02
    bend = rng.normal(size=(68, 3)) * 0.01
    return neutral + np.sin(0.5 * np.pi * t) * direction + t**2 * bend


def test_srvf_matches_numpy(rng):
    curve = smooth_curve(rng)
    # One frame with zero velocity exercises the guard.
    curve[10] = curve[9]
    curve[11] = curve[9]
    q, length = srvf(curve.astype(np.float32), return_length=True)
    q_ref, length_ref = srvf_np(curve)
    assert q.shape == (30, 204) and q.dtype == jnp.float32
    np.testing.assert_allclose(q, q_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(length, length_ref, rtol=1e-5)
    np.testing.assert_allclose(
        norm(q), 1.0, atol=1e-4
    )  # on the unit sphere of the 1/T inner product
    # Flattening is row-major per frame ([x1, y1, z1, x2, ...]).
    np.testing.assert_allclose(srvf(curve.reshape(30, 204).astype(np.float32)), q, atol=1e-7)


def test_time_gradient_matches_numpy(rng):
    x = rng.normal(size=(3, 9, 5)).astype(np.float32)
    for axis in (1, -1):
        np.testing.assert_allclose(
            mf.time_gradient(x, 0.25, axis=axis),
            np.gradient(x, 0.25, axis=axis),
            rtol=1e-5,
            atol=1e-5,
        )


def test_srvf_batched_time_axis(rng):
    curves = np.stack([smooth_curve(rng), smooth_curve(rng)]).astype(np.float32)
    q = srvf(curves, time_axis=1)
    assert q.shape == (2, 30, 204)
    for i in range(2):
        np.testing.assert_allclose(q[i], srvf_np(curves[i])[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(mf.srvf))(curves), q, atol=1e-7)


def test_srvf_constant_curve_is_finite():
    curve = np.tile(np.arange(204.0, dtype=np.float32).reshape(1, 68, 3), (30, 1, 1))
    q, length = srvf(curve, return_length=True)
    assert np.all(np.asarray(q) == 0) and float(length) == 0.0
    g = jax.jit(jax.grad(lambda c: jnp.sum(mf.srvf(c) ** 2) + jnp.sum(mf.srvf(c))))(
        jnp.asarray(curve)
    )
    assert np.all(np.isfinite(np.asarray(g)))


def test_srvf_gradient_matches_finite_differences(rng):
    curve = smooth_curve(rng, 12)
    a = rng.normal(size=(12, 204))
    d = rng.normal(size=curve.shape)
    with jax.enable_x64(True):
        f = jax.jit(lambda c: jnp.sum(a * mf.srvf(c)))
        g = jax.jit(jax.grad(f))(curve)
        fd = (f(curve + 1e-6 * d) - f(curve - 1e-6 * d)) / 2e-6
        np.testing.assert_allclose(np.sum(g * d), fd, rtol=1e-6)


def test_inverse_reproduces_curve(rng):
    # Linear-in-time motion: central differences and the trapezoid rule are exact.
    neutral = rng.normal(size=(68, 3)).astype(np.float32)
    direction = rng.normal(size=(68, 3)).astype(np.float32)
    t = np.linspace(0.0, 1.0, 30, dtype=np.float32)[:, None, None]
    linear = neutral + 0.3 * t * direction
    q, length = srvf(linear, return_length=True)
    np.testing.assert_allclose(srvf_inverse(q, neutral, length), linear, atol=2e-5)
    # Smooth motion: second-order accurate.
    curve = smooth_curve(rng).astype(np.float32)
    q, length = srvf(curve, return_length=True)
    rec = srvf_inverse(q, curve[0], length)
    assert rec.shape == (30, 68, 3)
    amplitude = np.abs(curve - curve[0]).max()
    assert np.abs(np.asarray(rec) - curve).max() < 0.02 * amplitude
    np.testing.assert_allclose(rec[0], curve[0], atol=0)


def test_inverse_matches_numpy_trapezoid_and_spacing_options(rng):
    q = rng.normal(size=(30, 204))
    neutral = rng.normal(size=(68, 3))
    q32, n32 = q.astype(np.float32), neutral.astype(np.float32)
    np.testing.assert_allclose(
        srvf_inverse(q32, n32, 0.2), inverse_np(q, neutral, 0.2, 1 / 30), rtol=1e-4, atol=1e-5
    )
    official = srvf_inverse(q32, n32, 0.2, spacing=mf.SphereConfig.official().inverse_spacing)
    np.testing.assert_allclose(official, inverse_np(q, neutral, 0.2, 1 / 29), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(
        srvf_inverse(q32, n32, 0.2, spacing=0.1),
        inverse_np(q, neutral, 0.2, 0.1),
        rtol=1e-4,
        atol=1e-5,
    )
    # The official spacing inflates the motion by T / (T - 1).
    disp_default = np.asarray(srvf_inverse(q32, n32, 0.2)) - neutral
    np.testing.assert_allclose(
        np.asarray(official) - neutral, disp_default * 30 / 29, rtol=1e-4, atol=1e-6
    )
    with pytest.raises(ValueError):
        srvf_inverse(q32, n32, spacing="trapz")


def test_inverse_batched_and_flat_neutral(rng):
    q = rng.normal(size=(3, 30, 204)).astype(np.float32)
    neutral = rng.normal(size=(3, 68, 3)).astype(np.float32)
    intensity = np.array([0.1, 0.2, 0.3], np.float32)
    out = srvf_inverse(q, neutral, intensity)
    assert out.shape == (3, 30, 68, 3)
    for i in range(3):
        np.testing.assert_allclose(
            out[i],
            inverse_np(q[i].astype(np.float64), neutral[i], intensity[i], 1 / 30),
            rtol=1e-4,
            atol=1e-5,
        )
    flat = srvf_inverse(q[0], neutral[0].reshape(204), 0.1)
    assert flat.shape == (30, 204)
    np.testing.assert_allclose(flat.reshape(30, 68, 3), out[0], atol=1e-6)
    grad = jax.jit(jax.grad(lambda x: jnp.sum(mf.srvf_inverse(x, neutral[0], 0.2))))
    assert np.all(np.isfinite(np.asarray(grad(jnp.zeros((30, 204))))))
