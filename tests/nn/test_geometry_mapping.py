"""Tests for jaxface.nn.geometry_mapping on a tiny two-triangle mesh."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxface.nn import GeometryMapping, geometry_image

H, W = 5, 6
# Two UV triangles over a quad (vertices 0-3); vertex 4 lies outside the chart.
UV = np.array([[0.0, 0.0], [0.8, 0.0], [0.8, 0.75], [0.0, 0.8], [0.95, 0.95]])
FACES = np.array([[0, 1, 2], [0, 2, 3]])
N = len(UV)


def _rasterise(masked_index=0):
    """Pixel centres ((w + 0.5) / W, (h + 0.5) / H) tested against each UV triangle."""
    vertex_indices = np.full((H, W, 3), masked_index, np.int32)
    barycentric = np.zeros((H, W, 3), np.float32)
    mask = np.zeros((H, W), bool)
    for h in range(H):
        for w in range(W):
            p = np.array([(w + 0.5) / W, (h + 0.5) / H])
            for face in FACES:
                a, b, c = UV[face]
                t = np.linalg.solve(np.stack([b - a, c - a], axis=1), p - a)
                bary = np.array([1.0 - t.sum(), t[0], t[1]])
                if np.all(bary > 1e-6):
                    vertex_indices[h, w] = face
                    barycentric[h, w] = bary
                    mask[h, w] = True
    return vertex_indices, barycentric, mask


def _numpy_geometry_image(x, vertex_indices, barycentric, mask):
    out = np.zeros(x.shape[:1] + mask.shape + x.shape[-1:])
    for b in range(x.shape[0]):
        for h in range(H):
            for w in range(W):
                if mask[h, w]:
                    for k in range(3):
                        out[b, h, w] += barycentric[h, w, k] * x[b, vertex_indices[h, w, k]]
    return out


def test_map_is_sane():
    vertex_indices, barycentric, mask = _rasterise()
    assert 0 < mask.sum() < H * W
    np.testing.assert_allclose(barycentric[mask].sum(-1), 1.0, rtol=1e-6)
    assert set(np.unique(vertex_indices[mask])) == {0, 1, 2, 3}


def test_matches_numpy_reference(rng):
    maps = _rasterise()
    x = rng.normal(size=(2, N, 3)).astype(np.float32)
    out = jax.jit(lambda x: geometry_image(x, *maps))(x)
    assert out.shape == (2, H, W, 3) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, _numpy_geometry_image(x, *maps), rtol=1e-6, atol=1e-6)
    # Interpolating the UV coordinates themselves gives back each pixel's centre.
    uv_image = geometry_image(UV[None].astype(np.float32), *maps)[0]
    hh, ww = np.nonzero(maps[2])
    np.testing.assert_allclose(uv_image[hh, ww, 0], (ww + 0.5) / W, atol=1e-6)
    np.testing.assert_allclose(uv_image[hh, ww, 1], (hh + 0.5) / H, atol=1e-6)


def test_gradient_reaches_exactly_covering_vertices(rng):
    vertex_indices, barycentric, mask = _rasterise()
    x = rng.normal(size=(1, N, 2)).astype(np.float32)
    jac = jax.jacrev(lambda x: geometry_image(x, vertex_indices, barycentric, mask))(x)
    jac = np.asarray(jac)[0, :, :, :, 0]  # [H, W, C, N, C]
    for h in range(H):
        for w in range(W):
            touched = {v for v in range(N) if np.any(jac[h, w, :, v] != 0)}
            expected = set(vertex_indices[h, w]) if mask[h, w] else set()
            assert touched == expected, (h, w)
    g = jax.grad(lambda x: geometry_image(x, vertex_indices, barycentric, mask).sum())(x)
    assert np.all(np.isfinite(g))
    assert np.all(g[0, :4] != 0) and np.all(g[0, 4] == 0)


@pytest.mark.parametrize("masked_index", [4, N])
def test_masked_pixels_are_zero(rng, masked_index):
    """Masked pixels read nothing: NaN at the vertex they point to (or the dummy N) is ignored."""
    maps = _rasterise(masked_index=masked_index)
    mask = maps[2]
    x = rng.normal(size=(2, N, 3)).astype(np.float32)
    x[:, 4] = np.nan
    out = np.asarray(geometry_image(x, *maps))
    np.testing.assert_array_equal(out[:, ~mask], 0.0)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out, _numpy_geometry_image(np.nan_to_num(x), *maps), atol=1e-6)
    g = jax.grad(lambda x: jnp.sum(geometry_image(x, *maps)))(jnp.asarray(np.nan_to_num(x)))
    np.testing.assert_array_equal(g[:, 4], 0.0)


def test_module_and_vmap(rng):
    maps = _rasterise()
    x = rng.normal(size=(3, N, 4)).astype(np.float32)
    layer = GeometryMapping(vertex_indices=maps[0], barycentric=maps[1], mask=maps[2])
    variables = layer.init(jax.random.key(0), x)
    assert jax.tree.leaves(variables) == []
    out = jax.jit(layer.apply)(variables, x)
    np.testing.assert_allclose(out, _numpy_geometry_image(x, *maps), rtol=1e-6, atol=1e-6)
    vmapped = jax.vmap(lambda xb: geometry_image(xb, *maps))(x)
    np.testing.assert_allclose(vmapped, out, rtol=1e-6, atol=1e-6)


def test_shape_errors(rng):
    vertex_indices, barycentric, mask = _rasterise()
    x = rng.normal(size=(1, N, 3)).astype(np.float32)
    with pytest.raises(ValueError):
        geometry_image(x, vertex_indices[..., :2], barycentric, mask)
    with pytest.raises(ValueError):
        geometry_image(x, vertex_indices, barycentric, mask[:-1])
