"""Hypersphere maps against a float64 NumPy reference, plus the guards at theta = 0, 1e-8 and near
pi."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface import manifold as mf

T, D = 30, 12

# Jitted entry points: one compile per shape and dtype, shared by all tests (eager dispatch compiles
# every op).
exp_map = jax.jit(mf.exp_map)
log_map = jax.jit(mf.log_map, static_argnames="cos_clip")
geodesic_distance = jax.jit(mf.geodesic_distance, static_argnames="cos_clip")
geodesic_path = jax.jit(mf.geodesic_path)
norm = jax.jit(mf.norm)


# --------------------------------------------------------------------------------------------------
# Independent NumPy reference (textbook formulas, float64).
def inner_np(a, b):
    return np.sum(a * b, axis=(-2, -1)) / a.shape[-2]


def exp_np(p, v):
    th = np.sqrt(inner_np(v, v))
    if th == 0:
        return p.copy()
    return np.cos(th) * p + np.sin(th) / th * v


def log_np(p, q, clip=1.0):
    c = inner_np(p, q)
    th = np.arccos(np.clip(c, -clip, clip))
    u = q - c * p
    nu = np.sqrt(inner_np(u, u))
    return np.zeros_like(u) if nu == 0 else th / nu * u


def slerp_np(q1, q2, tau):
    th = np.arccos(np.clip(inner_np(q1, q2), -1, 1))
    return (np.sin((1 - tau) * th) * q1 + np.sin(tau * th) * q2) / np.sin(th)


def unit_np(x):
    return x / np.sqrt(inner_np(x, x))


def frame(rng):
    """A unit point p and a unit tangent vector w at p (float64)."""
    p = unit_np(rng.normal(size=(T, D)))
    w = rng.normal(size=(T, D))
    w = w - inner_np(w, p) * p
    return p, unit_np(w)


# --------------------------------------------------------------------------------------------------
def test_inner_norm_and_projections(rng):
    a, b = rng.normal(size=(2, 4, T, D)).astype(np.float32)
    np.testing.assert_allclose(mf.inner(a, b), inner_np(a, b), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(norm(a), np.sqrt(inner_np(a, a)), rtol=1e-5)
    s = mf.project_to_sphere(a)
    np.testing.assert_allclose(norm(s), np.ones(4), rtol=1e-5)
    # Frobenius norm of a unit SRVF is sqrt(T) under the 1/T convention.
    np.testing.assert_allclose(np.linalg.norm(np.asarray(s[0])), np.sqrt(T), rtol=1e-5)
    t = mf.project_to_tangent(s, b)
    np.testing.assert_allclose(mf.inner(t, s), np.zeros(4), atol=1e-5)
    ref = b - inner_np(b, np.asarray(s))[:, None, None] * np.asarray(s)
    np.testing.assert_allclose(t, ref, rtol=1e-4, atol=1e-5)
    assert np.all(np.asarray(mf.project_to_sphere(np.zeros((T, D), np.float32))) == 0)


def test_maps_match_reference_and_round_trip(rng):
    exp_j, log_j = exp_map, log_map
    for theta in [0.3, 1.0, 2.5]:
        p, w = frame(rng)
        v = theta * w
        q = exp_np(p, v)
        p32, v32, q32 = (x.astype(np.float32) for x in (p, v, q))
        np.testing.assert_allclose(exp_j(p32, v32), q, atol=2e-6)
        np.testing.assert_allclose(log_j(p32, q32), log_np(p, q), atol=2e-5)
        # Round trips.
        np.testing.assert_allclose(log_j(p32, exp_j(p32, v32)), v, atol=2e-5)
        q_other = unit_np(rng.normal(size=(T, D))).astype(np.float32)
        np.testing.assert_allclose(exp_j(p32, log_j(p32, q_other)), q_other, atol=2e-5)
        np.testing.assert_allclose(geodesic_distance(p32, q32), theta, atol=2e-6)


def test_batched_leading_dims(rng):
    ps = mf.project_to_sphere(rng.normal(size=(3, 2, T, D)).astype(np.float32))
    qs = mf.project_to_sphere(rng.normal(size=(3, 2, T, D)).astype(np.float32))
    v = log_map(ps, qs)
    assert v.shape == (3, 2, T, D)
    d = geodesic_distance(ps, qs)
    assert d.shape == (3, 2)
    for i in range(3):
        for j in range(2):
            pn, qn = np.asarray(ps[i, j], np.float64), np.asarray(qs[i, j], np.float64)
            np.testing.assert_allclose(v[i, j], log_np(pn, qn), atol=2e-5)
            np.testing.assert_allclose(
                d[i, j], np.arccos(np.clip(inner_np(pn, qn), -1, 1)), atol=2e-6
            )
    # Broadcasting a single base point against a batch.
    np.testing.assert_allclose(
        log_map(ps[0, 0], qs[:, 0]), jax.vmap(log_map, (None, 0))(ps[0, 0], qs[:, 0]), atol=1e-6
    )


# Scalar test functions of (x, p, a) and their gradients in x, compiled once per dtype.
def _exp_fn(v, p, a):
    return jnp.sum(a * mf.exp_map(p, v))


def _log_fn(q, p, a):
    return jnp.sum(a * mf.log_map(p, q))


def _log_base_fn(p, q, a):
    return jnp.sum(a * mf.log_map(p, q))


def _dist_fn(q, p, a):
    return mf.geodesic_distance(p, q)


def _path_fn(q, p, a):
    return jnp.sum(a * mf.geodesic_path(p, q, jnp.array([0.3], q.dtype)))


VALUE = {f.__name__: jax.jit(f) for f in (_exp_fn, _log_fn, _log_base_fn, _dist_fn, _path_fn)}
GRAD = {
    f.__name__: jax.jit(jax.grad(f)) for f in (_exp_fn, _log_fn, _log_base_fn, _dist_fn, _path_fn)
}


def _fd_directional(name, x, d, h, *args):
    f = VALUE[name]
    return (f(x + h * d, *args) - f(x - h * d, *args)) / (2 * h)


@pytest.mark.parametrize("theta", [0.0, 1e-8])
def test_small_angle_values_and_gradients_float64(rng, theta):
    with jax.enable_x64(True):
        p, w = frame(rng)
        v = theta * w
        q = exp_np(p, v)
        # Values are exact at theta = 0 and accurate to round-off at 1e-8.
        np.testing.assert_allclose(exp_map(p, v), q, rtol=0, atol=1e-15)
        np.testing.assert_allclose(log_map(p, q), v, rtol=0, atol=1e-15 if theta == 0 else 1e-14)
        assert abs(float(geodesic_distance(p, q)) - theta) < 1e-15
        if theta == 0:
            assert np.all(np.asarray(log_map(p, p)) == 0)
            assert np.all(np.asarray(exp_map(p, np.zeros_like(p))) == p)

        # Gradients are finite and agree with central differences of the (smooth) maps.
        a = rng.normal(size=(T, D))
        d = rng.normal(size=(T, D))
        g_exp = GRAD["_exp_fn"](v, p, a)
        g_log = GRAD["_log_fn"](q, p, a)
        assert np.all(np.isfinite(g_exp)) and np.all(np.isfinite(g_log))
        np.testing.assert_allclose(
            np.sum(g_exp * d), _fd_directional("_exp_fn", v, d, 1e-5, p, a), rtol=1e-6
        )
        np.testing.assert_allclose(
            np.sum(g_log * d), _fd_directional("_log_fn", q, d, 1e-5, p, a), rtol=1e-6
        )
        # At q = p the derivative of log_p is the tangent projection d - <d, p> p, and that of exp_p
        # at 0 is the identity: the gradients of <a, .> are those maps applied to a.
        if theta == 0:
            np.testing.assert_allclose(g_log, a - inner_np(a, p) * p, atol=1e-12)
            np.testing.assert_allclose(g_exp, a, atol=1e-12)
        # The distance is |x|-like at 0 (gradient defined as 0 there) and smooth at 1e-8.
        g_dist = GRAD["_dist_fn"](q, p, a)
        assert np.all(np.isfinite(g_dist))
        if theta == 0:
            assert np.all(np.asarray(g_dist) == 0)
        else:
            fd = _fd_directional("_dist_fn", q, w, 1e-10, p, a)
            np.testing.assert_allclose(np.sum(g_dist * w), fd, rtol=1e-4)


@pytest.mark.parametrize("theta", [0.0, 1e-8, np.pi - 1e-3, np.pi - 1e-6, np.pi])
def test_gradients_finite_float32(rng, theta):
    p, w = frame(rng)
    q = exp_np(p, theta * w) if theta < np.pi else -p
    p32, q32, v32 = (x.astype(np.float32) for x in (p, q, theta * w))
    a = rng.normal(size=(T, D)).astype(np.float32)
    grads = [
        GRAD["_log_fn"](q32, p32, a),
        GRAD["_log_base_fn"](p32, q32, a),
        GRAD["_exp_fn"](v32, p32, a),
        GRAD["_dist_fn"](q32, p32, a),
        GRAD["_path_fn"](q32, p32, a),
    ]
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    v = log_map(p32, q32)
    assert np.all(np.isfinite(np.asarray(v)))
    assert float(norm(v)) <= np.pi + 1e-5
    np.testing.assert_allclose(geodesic_distance(p32, q32), theta, atol=1e-3 if theta > 3 else 1e-6)


def test_near_pi_float64(rng):
    with jax.enable_x64(True):
        p, w = frame(rng)
        theta = np.pi - 1e-3
        q = exp_np(p, theta * w)
        v = log_map(p, q)
        np.testing.assert_allclose(v, theta * w, atol=1e-9)
        np.testing.assert_allclose(geodesic_distance(p, q), theta, atol=1e-12)
        a = rng.normal(size=(T, D))
        d = rng.normal(size=(T, D))
        g = GRAD["_log_fn"](q, p, a)
        np.testing.assert_allclose(
            np.sum(g * d), _fd_directional("_log_fn", q, d, 1e-8, p, a), rtol=1e-5
        )
        # Exactly antipodal: ill-defined, documented to return the zero vector with finite
        # gradients.
        v_anti = log_map(p, -p)
        assert np.all(np.asarray(v_anti) == 0)
        assert np.all(np.isfinite(GRAD["_log_fn"](-p, p, a)))


def test_official_cos_clip(rng):
    p, w = frame(rng)
    p32 = p.astype(np.float32)
    floor = np.arccos(0.98)
    for theta, expected in [(0.1, floor), (0.5, 0.5), (np.pi - 0.05, np.arccos(-0.98))]:
        q = exp_np(p, theta * w).astype(np.float32)
        v = log_map(p32, q, cos_clip=0.98)
        np.testing.assert_allclose(norm(v), expected, rtol=1e-4)
        np.testing.assert_allclose(v, log_np(p, q.astype(np.float64), clip=0.98), atol=1e-4)
        np.testing.assert_allclose(geodesic_distance(p32, q, cos_clip=0.98), expected, rtol=1e-4)
    grad_clipped = jax.jit(jax.grad(lambda x: jnp.sum(mf.log_map(p32, x, cos_clip=0.98))))(p32)
    assert np.all(np.isfinite(np.asarray(grad_clipped)))
    cfg = mf.SphereConfig.official()
    assert (cfg.cos_clip, cfg.reference, cfg.inverse_spacing) == (0.98, "sample", "linspace")
    assert mf.SphereConfig() == mf.SphereConfig(None, "mean", 0, "forward")
    with pytest.raises(ValueError):
        mf.SphereConfig(cos_clip=1.5)
    with pytest.raises(ValueError):
        mf.SphereConfig(reference="median")


def test_geodesic_path(rng):
    q1 = unit_np(rng.normal(size=(T, D)))
    q2 = unit_np(rng.normal(size=(T, D)))
    taus = np.array([0.0, 0.25, 0.5, 1.0])
    path = geodesic_path(q1.astype(np.float32), q2.astype(np.float32), taus.astype(np.float32))
    assert path.shape == (4, T, D)
    np.testing.assert_allclose(path[0], q1, atol=1e-6)
    np.testing.assert_allclose(path[-1], q2, atol=2e-5)
    for k, tau in enumerate(taus[1:-1], start=1):
        np.testing.assert_allclose(path[k], slerp_np(q1, q2, tau), atol=2e-5)
    np.testing.assert_allclose(norm(path), np.ones(4), atol=1e-5)
    # Constant path between identical points; batch axes lead.
    same = geodesic_path(q1.astype(np.float32), q1.astype(np.float32), taus.astype(np.float32))
    np.testing.assert_allclose(same, np.broadcast_to(q1, (4, T, D)), atol=1e-6)
    batched = geodesic_path(
        np.stack([q1, q2]).astype(np.float32), q2.astype(np.float32), taus[:2].astype(np.float32)
    )
    assert batched.shape == (2, 2, T, D)
