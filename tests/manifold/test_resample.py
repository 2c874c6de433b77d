"""Arc-length resampling against numpy.interp on the normalised cumulative chord length."""

import jax
import jax.numpy as jnp
import numpy as np

from jaxface import manifold as mf

resample = jax.jit(mf.resample_arclength, static_argnames=("num", "time_axis"))


def resample_ref(curve, num):
    x = curve.reshape(curve.shape[0], -1).astype(np.float64)
    chords = np.sqrt(np.sum(np.diff(x, axis=0) ** 2, axis=1))
    s = np.concatenate([[0.0], np.cumsum(chords)]) / np.sum(chords)
    u = np.linspace(0.0, 1.0, num)
    out = np.stack([np.interp(u, s, x[:, d]) for d in range(x.shape[1])], axis=1)
    return out.reshape(num, *curve.shape[1:])


def test_matches_np_interp(rng):
    curve = np.cumsum(rng.normal(size=(47, 68, 3)), axis=0).astype(np.float32)
    out = resample(curve, 30)
    assert out.shape == (30, 68, 3)
    ref = resample_ref(curve, 30)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mf.resample_arclength_np(curve, 30), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out[0], curve[0], atol=0)
    np.testing.assert_allclose(out[-1], curve[-1], atol=1e-5)
    # Uniform arc length: equal chords in the output.
    chords = np.linalg.norm(np.diff(np.asarray(out).reshape(30, -1), axis=0), axis=1)
    total = np.sum(np.linalg.norm(np.diff(curve.reshape(47, -1), axis=0), axis=1))
    assert np.all(chords <= total / 29 * (1 + 1e-4))


def test_up_sampling_flat_and_batched(rng):
    curve = np.cumsum(rng.normal(size=(10, 204)), axis=0)
    np.testing.assert_allclose(
        resample(curve.astype(np.float32), 30), resample_ref(curve, 30), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        mf.resample_arclength_np(curve, 30), resample_ref(curve, 30), rtol=1e-12, atol=1e-12
    )
    batch = np.stack([curve, curve[::-1]]).astype(np.float32)
    out = resample(batch, 30, time_axis=1)
    assert out.shape == (2, 30, 204)
    np.testing.assert_allclose(out[1], resample_ref(curve[::-1], 30), rtol=1e-4, atol=1e-4)


def test_repeated_frames_and_constant_curve(rng):
    curve = np.cumsum(rng.normal(size=(12, 6)), axis=0)
    curve = np.concatenate(
        [curve[:5], curve[4:5], curve[4:5], curve[5:], curve[-1:]]
    )  # ties inside and at the end
    dedup = np.concatenate([curve[:5], curve[7:-1]])
    np.testing.assert_allclose(
        resample(curve.astype(np.float32), 20), resample_ref(dedup, 20), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(
        mf.resample_arclength_np(curve, 20), resample_ref(dedup, 20), atol=1e-12
    )

    const = np.tile(rng.normal(size=(1, 68, 3)), (15, 1, 1)).astype(np.float32)
    out = resample(const, 30)
    np.testing.assert_array_equal(out, np.broadcast_to(const[0], (30, 68, 3)))
    np.testing.assert_array_equal(
        mf.resample_arclength_np(const, 30), np.broadcast_to(const[0], (30, 68, 3))
    )
    grad = jax.jit(jax.grad(lambda c: jnp.sum(mf.resample_arclength(c, 30) ** 2)))
    assert np.all(np.isfinite(np.asarray(grad(jnp.asarray(const)))))
    # The tied curve, embedded in the same [15, 68, 3] shape (reuses the compiled gradient).
    tied = np.repeat(curve[:, :1], 204, axis=1).reshape(15, 68, 3).astype(np.float32)
    assert np.all(np.isfinite(np.asarray(grad(tied))))
