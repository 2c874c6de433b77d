"""Tests for jaxface.render.rasterizer against the independent numpy reference."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.data.template import load_face_template
from jaxface.render.camera import pixel_centers, project_orthographic
from jaxface.render.rasterizer import (
    DEFAULT_CHUNK_SIZE,
    fragments_at,
    interpolate,
    rasterize,
    visible_faces,
)
from tests.render import reference


def _random_triangles(rng, n_images, n_faces, spread=1.3):
    """Separate triangles (3 vertices each) over and beyond the image, at depths 1-5."""
    xy = rng.uniform(-spread, spread, (n_images, n_faces, 1, 2))
    xy = xy + rng.normal(0.0, 0.35, (n_images, n_faces, 3, 2))
    z = rng.uniform(1.0, 5.0, (n_images, n_faces, 1, 1))
    z = z + rng.normal(0, 0.2, (n_images, n_faces, 3, 1))
    screen = np.concatenate([xy, z], -1).reshape(n_images, 3 * n_faces, 3).astype(np.float32)
    return screen, np.arange(3 * n_faces, dtype=np.int32).reshape(n_faces, 3)


def _check_against_reference(frags, screen, faces, size, max_ambiguous=0.01):
    h, w = size
    for b in range(screen.shape[0]):
        ref = reference.rasterize(screen[b], faces, h, w)
        clear = ~ref.ambiguous
        assert ref.ambiguous.mean() <= max_ambiguous
        p2f = np.asarray(frags.pix_to_face[b])
        np.testing.assert_array_equal(p2f[clear], ref.pix_to_face[clear])
        covered = clear & (ref.pix_to_face >= 0)
        # 1e-5, plus float32's limit on slivers (nearly edge-on triangles).
        err = np.abs(np.asarray(frags.bary[b]) - ref.bary).max(-1)
        assert np.all(err[covered] <= ref.bary_tolerance()[covered])
        assert np.mean(err[covered] <= 1e-5) > 0.999
        err_z = np.abs(np.asarray(frags.zbuf[b]) - ref.zbuf)
        strict = 1e-5 + 1e-6 * np.abs(ref.zbuf)
        assert np.all(err_z[covered] <= (strict + 3 * ref.bary_tolerance() * np.abs(ref.zbuf))
                      [covered])
        assert np.mean(err_z[covered] <= strict[covered]) > 0.999
        background = p2f < 0
        assert np.all(np.asarray(frags.bary[b])[background] == 0)
        assert np.all(np.asarray(frags.zbuf[b])[background] == -1)


@pytest.mark.parametrize("size,chunk", [((24, 24), DEFAULT_CHUNK_SIZE), ((17, 29), 64),
                                        ((30, 19), 5)])
def test_random_overlapping_triangles_match_the_reference(rng, size, chunk):
    screen, faces = _random_triangles(rng, 2, 40)
    frags = jax.jit(lambda s: rasterize(s, faces, size, chunk_size=chunk))(screen)
    assert frags.pix_to_face.dtype == jnp.int32 and frags.pix_to_face.shape == (2, *size)
    assert frags.bary.shape == (2, *size, 3) and frags.zbuf.shape == (2, *size)
    assert int((frags.pix_to_face >= 0).sum()) > 0.3 * 2 * size[0] * size[1]
    _check_against_reference(frags, screen, faces, size)


def test_face_template_at_224_matches_the_reference():
    t = load_face_template(0)
    v = np.asarray(t.vertices, np.float32)
    cam = np.array([[7.0, 0.01, -float(v[:, 1].mean())]], np.float32)
    screen = np.asarray(project_orthographic(v[None], cam))
    frags = jax.jit(lambda s: rasterize(s, t.faces, 224))(screen)
    # Shared edges are ties: pixel centres within 1e-5 of an edge are left out of the check.
    _check_against_reference(frags, screen, t.faces, (224, 224), max_ambiguous=0.002)
    assert 0.2 < float((frags.pix_to_face >= 0).mean()) < 0.6


def test_triangles_larger_than_the_image_and_than_a_loop_step():
    # A background triangle covering the whole image, with small ones in front and a huge one
    # behind it; steps of 8 candidates split the big boxes over many steps.
    big = np.array([[-5, -5, 6], [9, -5, 6], [-5, 9, 6]], np.float32)
    behind = np.array([[-40, -40, 8], [60, -40, 8], [-40, 60, 8]], np.float32)
    rng = np.random.default_rng(3)
    small, small_faces = _random_triangles(rng, 1, 6, spread=0.8)
    screen = np.concatenate([big, behind, small[0]])[None]
    faces = np.concatenate([[[0, 1, 2], [3, 4, 5]], small_faces + 6]).astype(np.int32)
    for chunk in (8, DEFAULT_CHUNK_SIZE):
        frags = jax.jit(lambda s, c=chunk: rasterize(s, faces, 20, chunk_size=c))(screen)
        p2f = np.asarray(frags.pix_to_face[0])
        assert np.all(p2f >= 0) and not np.any(p2f == 1)
        _check_against_reference(frags, screen, faces, (20, 20))


def test_the_nearer_triangle_wins_whatever_the_order():
    tri = np.array([[-0.8, -0.8, 0], [0.8, -0.8, 0], [0.0, 0.8, 0]], np.float32)
    near, far = tri + [0, 0, 2.0], tri + [0.1, 0, 3.0]
    faces = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    for first, second, nearest in ((near, far, 0), (far, near, 1)):
        screen = np.concatenate([first, second])[None]
        p2f = np.asarray(visible_faces(screen, faces, 16))[0]
        assert p2f[8, 8] == nearest
        ref = reference.rasterize(screen[0], faces, 16, 16)
        np.testing.assert_array_equal(p2f, ref.pix_to_face)


def test_exact_ties_go_to_the_smallest_face_index_and_shared_edges_leave_no_hole():
    tri = np.array([[-0.8, -0.8, 2], [0.8, -0.8, 2], [0.0, 0.8, 2]], np.float32)
    screen = np.concatenate([tri, tri])[None]  # the same triangle twice
    p2f = np.asarray(visible_faces(screen, np.array([[3, 4, 5], [0, 1, 2]]), 16))[0]
    assert set(np.unique(p2f)) == {-1, 0}
    # A square split along a diagonal through pixel centres (edges included: no hole).
    sq = np.array([[-1, -1, 2], [1, -1, 2], [1, 1, 2], [-1, 1, 2]], np.float32)[None]
    p2f = np.asarray(visible_faces(sq, np.array([[0, 1, 2], [0, 2, 3]]), 8))[0]
    assert np.all(p2f >= 0)
    assert np.all(p2f[np.triu_indices(8, 1)] == 0) and np.all(p2f[np.tril_indices(8, -1)] == 1)


def test_points_behind_the_image_plane_degenerate_and_non_finite_triangles_are_not_drawn():
    ok = np.array([[-0.8, -0.8, 1], [0.8, -0.8, 1], [0, 0.8, 1]], np.float32)
    behind = np.array([[-0.8, -0.8, -1], [0.8, -0.8, -1], [0, 0.8, -1]], np.float32)
    line = np.array([[-1, -1, 0.5], [0, 0, 0.5], [1, 1, 0.5]], np.float32)  # zero area, in front
    bad = np.array([[-1, -1, 0.1], [np.nan, 1, 0.1], [1, -1, 0.1]], np.float32)
    screen = np.concatenate([behind, line, bad, ok])[None]
    faces = np.arange(12, dtype=np.int32).reshape(4, 3)
    frags = jax.jit(lambda s: rasterize(s, faces, 16))(screen)
    assert set(np.unique(np.asarray(frags.pix_to_face))) == {-1, 3}
    assert np.all(np.isfinite(np.asarray(frags.bary))) and np.all(np.isfinite(frags.zbuf))
    # Only the part of a triangle in front of the image plane is drawn.
    slanted = np.array([[[-1, -1, -1], [1, -1, -1], [0, 1, 1]]], np.float32)
    p2f = np.asarray(visible_faces(slanted, np.array([[0, 1, 2]]), 16))[0]
    ref = reference.rasterize(slanted[0], np.array([[0, 1, 2]]), 16, 16)
    np.testing.assert_array_equal(p2f[~ref.ambiguous], ref.pix_to_face[~ref.ambiguous])
    assert 0 < (p2f == 0).sum() < (reference.rasterize(
        slanted[0] * [1, 1, 0] + [0, 0, 1], np.array([[0, 1, 2]]), 16, 16).pix_to_face == 0).sum()


def test_interpolating_screen_positions_gives_the_pixel_centres(rng):
    screen, faces = _random_triangles(rng, 1, 25)
    frags = rasterize(screen, faces, (12, 18))
    xy = np.asarray(interpolate(frags, faces, screen[..., :2]))[0]
    covered = np.asarray(frags.pix_to_face[0]) >= 0
    np.testing.assert_allclose(xy[covered], pixel_centers((12, 18))[covered], atol=1e-5)
    assert np.all(xy[~covered] == 0)
    z = np.asarray(interpolate(frags, faces, screen[0, :, 2:]))[0, ..., 0]  # shared [V, C]
    np.testing.assert_allclose(z[covered], np.asarray(frags.zbuf[0])[covered], rtol=1e-6)


def test_batched_jitted_and_vmapped_results_agree(rng, count_traces):
    screen, faces = _random_triangles(rng, 3, 30)
    fn = jax.jit(lambda s: rasterize(s, faces, 16))
    with count_traces() as traces:
        batched = fn(screen)
        fn(screen + 0.01)
    assert traces.count == 1
    for b in range(3):
        single = rasterize(screen[b:b + 1], faces, 16)
        np.testing.assert_array_equal(np.asarray(batched.pix_to_face[b]), single.pix_to_face[0])
        np.testing.assert_allclose(np.asarray(batched.bary[b]), single.bary[0], atol=1e-6)
    vmapped = jax.vmap(lambda s: rasterize(s[None], faces, 16))(screen)
    np.testing.assert_array_equal(np.asarray(batched.pix_to_face), vmapped.pix_to_face[:, 0])
    np.testing.assert_allclose(np.asarray(batched.bary), vmapped.bary[:, 0], atol=1e-6)
    # Faces may also be a traced argument.
    traced = jax.jit(lambda s, f: visible_faces(s, f, 16))(screen, jnp.asarray(faces))
    np.testing.assert_array_equal(np.asarray(traced), np.asarray(batched.pix_to_face))


def test_barycentric_gradients_are_finite_and_zero_on_the_background(rng):
    screen, faces = _random_triangles(rng, 1, 12, spread=0.6)
    degenerate = np.array([[[0, 0, 0.5], [0, 0, 0.5], [0, 0, 0.5]]], np.float32)
    screen = np.concatenate([degenerate, screen], axis=1)
    faces = np.concatenate([[[0, 1, 2]], faces + 3]).astype(np.int32)
    p2f = visible_faces(screen, faces, 16)
    weights = jnp.asarray(rng.normal(size=(1, 16, 16, 3)).astype(np.float32))

    def loss(s, covered_only):
        frags = fragments_at(s, faces, p2f)
        w = weights * (frags.pix_to_face >= 0)[..., None] if covered_only else weights
        return jnp.sum(frags.bary * w) + jnp.sum(frags.zbuf)

    g = jax.grad(loss)(screen, False)
    assert np.all(np.isfinite(np.asarray(g)))
    np.testing.assert_array_equal(np.asarray(g), np.asarray(jax.grad(loss)(screen, True)))
    used = np.unique(np.asarray(faces)[np.asarray(p2f)[np.asarray(p2f) >= 0]])
    unused = np.setdiff1d(np.arange(screen.shape[1]), used)
    assert np.all(np.asarray(g)[0, unused] == 0) and np.any(np.asarray(g)[0, used] != 0)
    assert np.all(np.asarray(g)[0, :3] == 0)  # the degenerate triangle is never drawn


def test_visible_faces_has_no_gradient(rng):
    screen, faces = _random_triangles(rng, 1, 5)
    g = jax.grad(lambda s: jnp.sum(visible_faces(s, faces, 8).astype(jnp.float32)))(screen)
    assert np.all(np.asarray(g) == 0)


def test_bad_inputs_raise_one_line_errors():
    screen = np.zeros((1, 3, 3), np.float32)
    with pytest.raises(ValueError, match=r"screen_vertices must be \[B, V, 3\]"):
        rasterize(screen[0], np.array([[0, 1, 2]]), 8)
    with pytest.raises(ValueError, match=r"faces must be \[F, 3\]"):
        rasterize(screen, np.array([0, 1, 2]), 8)
    with pytest.raises(ValueError, match="integer vertex indices"):
        rasterize(screen, np.array([[0.0, 1.0, 2.0]]), 8)
    with pytest.raises(ValueError, match="faces index vertices 0..3, but there are 3 vertices"):
        rasterize(screen, np.array([[0, 1, 3]]), 8)
    with pytest.raises(ValueError, match="exceed the int32 pixel index"):
        visible_faces(np.zeros((2, 3, 3), np.float32), np.array([[0, 1, 2]]), (32768, 32768))
    with pytest.raises(ValueError, match="chunk_size"):
        rasterize(screen, np.array([[0, 1, 2]]), 8, chunk_size=0)
    with pytest.raises(ValueError, match=r"attributes must be \[B=1, V, C\]"):
        interpolate(rasterize(screen, np.array([[0, 1, 2]]), 8), np.array([[0, 1, 2]]),
                    np.zeros((2, 3, 1)))
    empty = visible_faces(screen, np.zeros((0, 3), np.int32), 8)
    assert empty.shape == (1, 8, 8) and np.all(np.asarray(empty) == -1)
