"""The cycle's edits (groups, ranges) and the pixel transfer (identity, translation)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.morphable.forward import FaceParams
from jaxface.render import project_orthographic
from jaxface.smirk import cycle, masking
from jaxface.smirk.synthetic import SyntheticConfig, render_synthetic


def test_templates_are_label_apexes(small_model):
    t = cycle.expression_templates(small_model)
    names = small_model.expression_names
    assert t.shape[1] == small_model.num_expression and t.shape[0] >= 4
    assert np.all((t >= 0) & (t <= 1)) and np.all(t.max(axis=1) > 0)
    # surprise: browInnerUp (0.5-1.0 in its recipe) at the middle of its range
    from jaxface.data.arkit_labels import LABEL_RECIPES

    lo, hi = LABEL_RECIPES["surprise"].required["browInnerUp"]
    assert names[0] == "browInnerUp"
    assert np.any(np.isclose(t[:, 0], 0.5 * (lo + hi)))


def _params(small_model, b, key):
    k = jax.random.split(key, 3)
    p = FaceParams.zeros(small_model, (b,))
    return p.replace(expression=jax.random.uniform(k[0], p.expression.shape),
                     jaw=jnp.abs(jax.random.normal(k[1], (b, 3))) * 0.1,
                     eyelids=jax.random.uniform(k[2], (b, 2)),
                     pose=jnp.full((b, 3), 0.1), shape=jnp.ones_like(p.shape))


def test_groups_and_ranges(small_model):
    b = 64
    p = _params(small_model, b, jax.random.key(0))
    templates = cycle.expression_templates(small_model)
    quiet = dataclasses.replace(cycle.CycleConfig(), noise_std=0.0)
    new = jax.jit(cycle.augment_expressions, static_argnums=3)(jax.random.key(1), p, templates,
                                                                quiet)
    e, e0 = np.asarray(new.expression), np.asarray(p.expression)
    q = b // 4
    assert np.all((e >= 0) & (e <= 1))
    np.testing.assert_array_equal(new.shape, p.shape)
    np.testing.assert_array_equal(new.pose, p.pose)
    # random: about half the coefficients move
    moved = np.mean(np.abs(e[:q] - e0[:q]) > 1e-7)
    assert 0.3 < moved < 0.55
    # permuted: another row scaled by 0.25..1.5 (clipped to 1: the largest ratio is the scale)
    for row in e[q:2 * q]:
        ratios = [np.max(row[src > 0.05] / src[src > 0.05]) for src in e0]
        ok = [np.allclose(row, np.clip(r * src, 0, 1), atol=1e-5) for r, src in zip(ratios, e0,
                                                                                   strict=True)]
        k = int(np.argmax(ok))
        assert ok[k] and 0.25 - 1e-5 <= ratios[k] <= 1.5 + 1e-5
    # template: a template scaled by 0.25..1.5
    for row in e[2 * q:3 * q]:
        scales = [np.max(row[t > 0] / t[t > 0]) for t in templates]
        hits = [np.allclose(row, np.clip(r * t, 0, 1), atol=1e-5)
                and 0.25 - 1e-5 <= r <= 1.5 + 1e-5
                for r, t in zip(scales, templates, strict=True)]
        assert any(hits)
    # zero: no expression, the jaw only from its random move
    assert np.all(e[3 * q:] == 0)
    jaw = np.asarray(new.jaw)
    assert np.all((jaw[:, 0] >= 0) & (jaw[:, 0] <= 0.5))
    zero_jaw = jaw[3 * q:]
    assert np.all(np.abs(zero_jaw[:, 1:]) < 0.1)  # sideways steps have sd 0.02
    assert np.any((zero_jaw == 0).all(axis=1))
    moved_jaw = np.mean(np.any(np.abs(jaw - np.asarray(p.jaw)) > 1e-7, axis=1))
    assert 0.25 < moved_jaw < 0.75
    lids = np.asarray(new.eyelids)
    assert np.all((lids >= 0) & (lids <= 1))
    assert np.all(np.abs(lids[:3 * q] - np.asarray(p.eyelids)[:3 * q]) <= 0.25 + 1e-6)
    # with noise: small moves around these
    noisy = cycle.augment_expressions(jax.random.key(1), p, templates)
    d = np.asarray(noisy.expression) - e
    assert 0.005 < np.std(d) < 0.03


def test_batch_must_split_in_four(small_model):
    p = _params(small_model, 6, jax.random.key(0))
    with pytest.raises(ValueError, match="four|4 equal"):
        cycle.augment_expressions(jax.random.key(1), p, cycle.expression_templates(small_model))


@pytest.fixture(scope="module")
def masked_faces(small_model):
    syn = render_synthetic(jax.random.key(7), small_model, SyntheticConfig(), 8, 64)
    screen = project_orthographic(syn.vertices, syn.cam)
    out = masking.mask_face(jax.random.key(8), syn.image, syn.landmarks, screen,
                            small_model.faces, masking.triangle_weights(small_model), syn.mask,
                            masking.MaskingConfig(hole_ratio=0.005))
    return syn, screen, out


def test_identity_edit_moves_nothing(small_model, masked_faces):
    syn, screen, out = masked_faces
    again = jax.jit(lambda *a: cycle.transfer(*a, small_model.faces, syn.mask))(
        out, syn.image, screen)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(out.image))


def test_translated_mesh_moves_the_samples(small_model, masked_faces):
    syn, screen, out = masked_faces
    size, k = 64, 3
    shift = jnp.array([2.0 * k / size, 0.0, 0.0])  # k pixels to the right
    faces = small_model.faces
    before = masking.surface_points(screen, faces, out.samples)
    after = masking.surface_points(screen + shift, faces, out.samples)
    np.testing.assert_allclose(after - before, np.broadcast_to(shift[:2], before.shape),
                               atol=1e-5)
    # without the photo's background, the moved image is the old one k columns on
    no_bg = out._replace(background=jnp.zeros_like(out.background))
    old = np.asarray(cycle.transfer(no_bg, syn.image, screen, faces, syn.mask))
    new = np.asarray(cycle.transfer(no_bg, syn.image, screen + shift, faces, syn.mask))
    holes = np.asarray(out.holes)
    moved = np.zeros_like(old)
    moved[:, :, k:] = old[:, :, :-k]
    # holes stay in place: compare where neither image's pixel is in a hole
    keep = ~holes
    keep[:, :, k:] &= ~holes[:, :, :-k]
    agree = np.all(np.isclose(new, moved, atol=1e-6), axis=-1)[keep]
    assert agree.mean() > 0.995  # a rare sample on a pixel edge may round the other way
    assert np.count_nonzero(new.any(-1)) > 0.5 * 0.01 * size * size * 8
