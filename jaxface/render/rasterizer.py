"""Hard rasterisation with pytorch3d's semantics (1 face per pixel, blur 0, no perspective
correction): which triangle is nearest at each pixel centre, and differentiable barycentrics.

The work is split in two, as the official renderer's gradients are:

* :func:`visible_faces` finds ``pix_to_face`` outside the gradient (a z-buffer in jnp under
  ``stop_gradient``, jittable);
* :func:`fragments_at` recomputes the barycentric coordinates (and the depth) of each covered
  pixel centre from the projected vertices of its triangle, differentiably. Gradients reach the
  vertices only through them (and whatever is interpolated with them) inside covered pixels:
  nothing flows through coverage changes at silhouettes.

:func:`rasterize` does both. Screen space and the pixel grid are those of
:mod:`jaxface.render.camera` (x right, y down, depth smaller nearer; pixel centres at
``(2 j + 1 - W) / S``).

**Visibility rule.** A pixel is covered by a triangle when its centre has all three barycentric
coordinates ``>= 0`` (edges included) and a depth ``>= 0``; triangles whose doubled screen area
``|e|`` is at most :data:`MIN_FACE_AREA` are skipped. The covering triangle with the smallest
depth wins; among triangles at exactly the same depth the smallest face index wins (pytorch3d
orders candidates by ``(depth, face)`` too). pytorch3d counts a centre lying exactly on an edge
as outside, so where a centre falls exactly on an edge it leaves a hole and this rasteriser does
not; on a shared edge both triangles reach the same depth up to rounding, so the winner there is
decided by rounding or, at an exact tie, by the face index.

**Cost.** Every triangle visits only the pixels of its bounding box (clipped to the image), cut
into spans of 4 pixels along a row. The ``(triangle, span)`` work items of the whole batch are
streamed through one ``lax.while_loop`` in steps of ``chunk_size`` candidate pixels: a step takes
the next triangles in order, each contributing its spans (a triangle larger than a step is split
across steps), so the work is the sum of the box areas (rounded up to whole spans), a triangle of
any size is handled exactly, and every shape is static. Each triangle's edge functions and depth
are planes stepped from its box's first pixel. The loop sweeps twice: the first sweep
scatter-mins the depths (as int32 bit patterns, which order like the non-negative floats), the
second, running the same compiled loop body so its depths are bit-identical, scatter-mins the face
index among the candidates at the buffer's depth.

Example:
  >>> import numpy as np
  >>> tri = np.array([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0], [0.0, 0.5, 1.0]]], np.float32)
  >>> frags = rasterize(tri, np.array([[0, 1, 2]]), 8)
  >>> frags.pix_to_face[0, 2]
  Array([-1, -1,  0,  0,  0,  0, -1, -1], dtype=int32)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.render.camera import image_shape, pixel_centers

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "MIN_FACE_AREA",
    "Fragments",
    "fragments_at",
    "interpolate",
    "rasterize",
    "triangle_corners",
    "visible_faces",
]

#: Triangles whose doubled signed screen area (NDC units) is within this of 0 are not drawn
#: (pytorch3d's ``kEpsilon``).
MIN_FACE_AREA = 1e-8

#: ``(triangle, pixel)`` candidates per step of the visibility loop.
DEFAULT_CHUNK_SIZE = 1 << 16

# Pixel boxes are widened by this many pixels on each side before rounding, so rounding of the
# vertex positions never drops a pixel whose centre lies on the triangle's extreme vertex.
_BOX_MARGIN = 1e-3
_INT32_MAX = 2**31 - 1
# Pixel tiles (rows, columns) the boxes are cut into: a loop slot is one tile of candidates.
# Spans of 4 pixels along a row measured about 3x faster than 2x2 squares on CPU (adjacent
# scatter targets, per-row terms computed once per tile) for 1.2-2.1x the boxes' pixels.
_TILE = (1, 4)


class Fragments(NamedTuple):
    """Per-pixel rasterisation results (pytorch3d's ``Fragments`` with one face per pixel).

    Attributes:
      pix_to_face: ``int32 [B, H, W]`` index (into ``faces``, per image) of the visible
        triangle, ``-1`` for background.
      bary: ``float [B, H, W, 3]`` barycentric coordinates of the pixel centre in that triangle
        (screen space, no perspective correction), ``0`` for background.
      zbuf: ``float [B, H, W]`` interpolated screen depth, ``-1`` for background (pytorch3d's
        fill value).
    """

    pix_to_face: jax.Array
    bary: jax.Array
    zbuf: jax.Array

    @property
    def mask(self) -> jax.Array:
        """``bool [B, H, W]``: pixels covered by a triangle."""
        return self.pix_to_face >= 0


def _edge(px, py, ax, ay, bx, by):
    """Edge function: the 2-D cross product ``(p - a) x (b - a)`` (twice a signed area)."""
    return (px - ax) * (by - ay) - (py - ay) * (bx - ax)


def _check_inputs(screen_vertices, faces):
    screen = jnp.asarray(screen_vertices)
    if screen.ndim != 3 or screen.shape[-1] != 3:
        raise ValueError(f"screen_vertices must be [B, V, 3], got {screen.shape}")
    faces = np.asarray(faces) if not isinstance(faces, jax.Array) else faces
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be [F, 3], got {faces.shape}")
    if not jnp.issubdtype(faces.dtype, jnp.integer):
        raise ValueError(f"faces must be integer vertex indices, got dtype {faces.dtype}")
    if isinstance(faces, np.ndarray) and faces.size and (
            faces.min() < 0 or faces.max() >= screen.shape[1]):
        raise ValueError(f"faces index vertices {faces.min()}..{faces.max()}, but there are "
                         f"{screen.shape[1]} vertices")
    return screen, faces


def triangle_corners(values: jax.typing.ArrayLike, faces) -> jax.Array:
    """Per-vertex values at each triangle's corners.

    Args:
      values: ``[B, V, C]`` per-vertex values.
      faces: ``int [F, 3]`` valid vertex indices.

    Returns:
      ``[B, F, 3, C]``.
    """
    faces = jnp.asarray(faces, jnp.int32)
    return jnp.asarray(values).at[:, faces].get(mode="promise_in_bounds")


def _corners(values: jax.Array, faces) -> list[list[jax.Array]]:
    """``values [B, V, C]`` at the triangle corners as ``C x 3`` arrays ``[B, F]`` (coordinate
    major, so everything computed from them is elementwise over ``[B, F]``)."""
    faces = jnp.asarray(faces, jnp.int32)
    return [[values[..., c].at[:, faces[:, k]].get(mode="promise_in_bounds") for k in range(3)]
            for c in range(values.shape[-1])]


def _triangle_table(screen: jax.Array, faces, h: int, w: int):
    """Per-triangle data of the visibility loop, flattened over the batch (``T = B * F``).

    Each triangle's edge functions and depth are stored as planes over its pixel box: at the
    box's first pixel centre ``p0`` and per pixel step along columns and rows, so a candidate
    evaluates ``e0 + de/dcol * dcol + de/drow * drow`` with small integer offsets (accurate
    far from the image centre too). Edge functions are signed so that inside means all three
    ``>= 0``.

    Returns:
      ``(table float32 [T, 16], tiles int32 [T])``: per triangle ``e0, de/dcol, de/drow`` for
      the three edges, the same for the depth, then ``row0, col0, tiles_across`` (small integers)
      and a zero; and the number of tiles covering the triangle's pixel box clipped to the image
      (0 for a triangle that cannot be drawn).
    """
    # The optimization barriers below materialise values shared by many outputs (XLA would
    # otherwise fuse and recompute them in each consumer; measured ~20% faster with them).
    corners = jax.lax.optimization_barrier(_corners(screen.astype(jnp.float32), faces))
    (x0, x1, x2), (y0, y1, y2), (z0, z1, z2) = corners
    area = _edge(x0, y0, x1, y1, x2, y2)
    finite = jnp.isfinite(area) & jnp.isfinite(z0 + z1 + z2)
    drawable = finite & (jnp.abs(area) > MIN_FACE_AREA) & (
        jnp.maximum(jnp.maximum(z0, z1), z2) >= 0)
    s = float(min(h, w))

    def span(c0, c1, c2, n, tile):
        # Pixel-centre index coordinates: pixel j has its centre at (c * s + n - 1) / 2 = j.
        lo = 0.5 * (jnp.minimum(jnp.minimum(c0, c1), c2) * s + (n - 1)) - _BOX_MARGIN
        hi = 0.5 * (jnp.maximum(jnp.maximum(c0, c1), c2) * s + (n - 1)) + _BOX_MARGIN
        first = jnp.maximum(jnp.ceil(jnp.clip(lo, -1.0, float(n))).astype(jnp.int32), 0)
        last = jnp.minimum(jnp.floor(jnp.clip(hi, -1.0, float(n))).astype(jnp.int32), n - 1)
        return first, jnp.maximum(last - first + tile, 0) // tile

    col0, tiles_w = span(x0, x1, x2, w, _TILE[1])
    row0, tiles_h = span(y0, y1, y2, h, _TILE[0])
    tiles = jnp.where(drawable, tiles_w * tiles_h, 0)
    # The box's first pixel centre and the screen step of one pixel.
    px = (2.0 * col0.astype(jnp.float32) + (1.0 - w)) / s
    py = (2.0 * row0.astype(jnp.float32) + (1.0 - h)) / s
    step = 2.0 / s
    sign = jnp.where(area < 0, -1.0, 1.0)
    inv_area = 1.0 / jnp.where(drawable, area, 1.0)
    col0, row0, tiles_w, tiles, px, py, sign, inv_area = jax.lax.optimization_barrier(
        (col0, row0, tiles_w, tiles, px, py, sign, inv_area))
    planes = []
    for xa, ya, xb, yb in ((x1, y1, x2, y2), (x2, y2, x0, y0), (x0, y0, x1, y1)):
        planes.append([sign * _edge(px, py, xa, ya, xb, yb), sign * step * (yb - ya),
                       -sign * step * (xb - xa)])
    planes = jax.lax.optimization_barrier(planes)
    depth = [sum(p[j] * z for p, z in zip(planes, (z0, z1, z2), strict=True)) * sign * inv_area
             for j in range(3)]
    columns = [*planes[0], *planes[1], *planes[2], *depth, row0.astype(jnp.float32),
               col0.astype(jnp.float32), jnp.maximum(tiles_w, 1).astype(jnp.float32),
               jnp.zeros_like(area)]
    columns, tiles = jax.lax.optimization_barrier((columns, tiles))
    return jnp.stack(columns, axis=-1).reshape(-1, 16), tiles.reshape(-1)


def _zbuffer(table, tiles, n_images: int, n_faces: int, h: int, w: int, chunk: int):
    """The two-sweep streamed z-buffer over the triangle table; ``int32 [B, H, W]`` face ids
    (``n_faces`` where nothing is visible)."""
    n_tri = table.shape[0]
    tile_h, tile_w = _TILE
    per_tile = tile_h * tile_w
    steps = max(1, int(chunk) // per_tile)  # tiles per loop step
    # Window length in triangles. Counts are capped one above the step (enough to tell a
    # triangle that does not fit in the step from one that does), so cumulative sums over a
    # window stay below 2**31.
    window = max(1, min(steps, _INT32_MAX // (steps + 1)))
    tiles = jnp.concatenate([tiles, jnp.zeros((window,), tiles.dtype)])
    hw = h * w
    dump = n_images * hw  # scatter target of empty candidates
    size = dump + 1
    slots = jnp.arange(steps, dtype=jnp.int32)
    dy = np.repeat(np.arange(tile_h), tile_w)  # [per_tile] pixel offsets inside a tile
    dx = np.tile(np.arange(tile_w), tile_h)

    def body(state):
        phase, tri, off, buf = state
        cnt = jax.lax.dynamic_slice(tiles, (tri,), (window,))
        cnt = jnp.minimum(cnt.at[0].add(-off), steps + 1)
        cum = jnp.cumsum(cnt)
        total = cum[-1]
        start = cum - cnt
        # Owner of each slot: the last triangle starting at or before it.
        owner = jnp.cumsum(jnp.zeros((steps,), jnp.int32).at[start].add(1, mode="drop")) - 1
        owner = jnp.clip(owner, 0, window - 1)
        k = slots - start[owner] + jnp.where(owner == 0, off, 0)  # tile number in the box
        t = jnp.minimum(tri + owner, n_tri - 1)
        row_t = table.at[t].get(mode="promise_in_bounds")  # [steps, 16]
        across = row_t[:, 14].astype(jnp.int32)
        ty = k // across
        drow = (tile_h * ty)[:, None] + dy  # [steps, per_tile]
        dcol = (tile_w * (k - ty * across))[:, None] + dx
        row = row_t[:, 12, None].astype(jnp.int32) + drow
        col = row_t[:, 13, None].astype(jnp.int32) + dcol
        fr, fc = drow.astype(jnp.float32), dcol.astype(jnp.float32)
        e = [row_t[:, j, None] + row_t[:, j + 1, None] * fc + row_t[:, j + 2, None] * fr
             for j in range(0, 12, 3)]
        z = e[3]
        ok = ((slots < total)[:, None] & (row < h) & (col < w)
              & (e[0] >= 0) & (e[1] >= 0) & (e[2] >= 0) & (z >= 0))
        image = t // n_faces
        face = jnp.broadcast_to((t - image * n_faces)[:, None], z.shape).reshape(-1)
        pix = jnp.where(ok, (image * hw)[:, None] + row * w + col, dump).reshape(-1)
        # Accepted depths are >= 0, where float order is the order of the int32 bit patterns
        # (-0.0 mapped to +0.0).
        zbits = jax.lax.bitcast_convert_type(jnp.where(z > 0, z, 0.0), jnp.int32).reshape(-1)
        # Both sweeps read these exact values (one computation, materialised once per step).
        zbits, pix, face = jax.lax.optimization_barrier((zbits, pix, face))
        # One buffer: depth bits in [0, size), face ids in [size, 2 size). The first sweep
        # scatter-mins depths; the second, the face among candidates at the minimum depth.
        value = jnp.where(phase == 0, zbits, jnp.where(zbits == buf[pix], face, n_faces))
        buf = buf.at[pix + phase * size].min(value, mode="promise_in_bounds")
        consumed = jnp.minimum(total, steps)
        # The triangle holding the first tile not done (``window`` when the window is done).
        nxt = jnp.searchsorted(cum, consumed, side="right")
        nxt_safe = jnp.minimum(nxt, window - 1)
        nxt_off = consumed - start[nxt_safe] + jnp.where(nxt_safe == 0, off, 0)
        off = jnp.where(nxt >= window, 0, nxt_off)
        tri = tri + nxt
        swept = tri >= n_tri
        return (phase + swept.astype(jnp.int32), jnp.where(swept, 0, tri),
                jnp.where(swept, 0, off), buf)

    init = (jnp.int32(0), jnp.int32(0), jnp.int32(0),
            jnp.concatenate([jnp.full((size,), _INT32_MAX, jnp.int32),
                             jnp.full((size,), n_faces, jnp.int32)]))
    *_, buf = jax.lax.while_loop(lambda st: st[0] < 2, body, init)
    return buf[size:size + dump].reshape(n_images, h, w)


def visible_faces(
    screen_vertices: jax.typing.ArrayLike,
    faces,
    image_size: int | tuple[int, int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> jax.Array:
    """The triangle visible at each pixel centre (no gradient).

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points (:func:`~jaxface.render.camera.
        project_orthographic`).
      faces: ``int [F, 3]`` triangles (a numpy constant; the same for every example).
      image_size: an int (square) or ``(H, W)``; static.
      chunk_size: ``(triangle, pixel)`` candidates per loop step (static; larger uses more
        memory per step and fewer steps).

    Returns:
      ``int32 [B, H, W]`` face index, ``-1`` where no triangle covers the pixel centre.
    """
    screen, faces = _check_inputs(screen_vertices, faces)
    h, w = image_shape(image_size)
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    n_images, n_faces = screen.shape[0], faces.shape[0]
    if 2 * (n_images * h * w + 1) > _INT32_MAX:
        raise ValueError(f"{n_images} images of {h}x{w} pixels exceed the int32 pixel index of "
                         f"the z-buffer; rasterise fewer images at a time")
    if n_images == 0 or n_faces == 0:
        return jnp.full((n_images, h, w), -1, jnp.int32)
    screen = jax.lax.stop_gradient(screen)
    table, tiles = _triangle_table(screen, faces, h, w)
    ids = _zbuffer(table, tiles, n_images, n_faces, h, w, int(chunk_size))
    return jnp.where(ids < n_faces, ids, -1)


def _pixel_rows(values: jax.Array, faces, pix_to_face: jax.Array) -> list[jax.Array]:
    """Per-vertex ``values [B, V, C]`` at each pixel's triangle corners, as ``3 C`` arrays
    ``[B, H, W]`` ordered corner by corner (triangle 0 for background pixels).

    One row of ``3 C`` values is gathered per pixel from a per-triangle table, so the backward
    pass is one row scatter-add per pixel; the columns are then used separately (elementwise
    work on ``[B, H, W]`` arrays vectorises, work on a minor axis of 3 does not).
    """
    b, _, c = values.shape
    faces = jnp.asarray(faces, jnp.int32)
    n_faces = faces.shape[0]
    rows = triangle_corners(values, faces).reshape(b * n_faces, 3 * c)
    idx = jnp.maximum(pix_to_face, 0) + (n_faces * jnp.arange(b, dtype=jnp.int32))[:, None, None]
    gathered = rows.at[idx].get(mode="promise_in_bounds")  # [B, H, W, 3 C]
    return [gathered[..., j] for j in range(3 * c)]


def fragments_at(
    screen_vertices: jax.typing.ArrayLike, faces, pix_to_face: jax.typing.ArrayLike
) -> Fragments:
    """Barycentric coordinates and depth of each covered pixel centre, differentiable in the
    screen vertices.

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points.
      faces: ``int [F, 3]`` triangles.
      pix_to_face: ``int32 [B, H, W]`` visible triangle per pixel (:func:`visible_faces`); its
        shape sets the image size.

    Returns:
      :class:`Fragments`; background pixels have zero barycentrics (and zero gradients).
    """
    screen, faces = _check_inputs(screen_vertices, faces)
    pix_to_face = jnp.asarray(pix_to_face, jnp.int32)
    b, h, w = pix_to_face.shape
    if b != screen.shape[0]:
        raise ValueError(f"pix_to_face has {b} images, screen_vertices {screen.shape[0]}")
    centers = pixel_centers((h, w))
    covered = pix_to_face >= 0
    x0, y0, z0, x1, y1, z1, x2, y2, z2 = _pixel_rows(screen, faces, pix_to_face)
    # Relative to the first corner: well conditioned for small triangles far from the centre.
    ex1, ey1, ex2, ey2 = x1 - x0, y1 - y0, x2 - x0, y2 - y0
    dx, dy = centers[..., 0] - x0, centers[..., 1] - y0
    # Background pixels (and only they) may sit on a degenerate triangle 0.
    area = jnp.where(covered, ex1 * ey2 - ey1 * ex2, 1.0)
    b1 = jnp.where(covered, (dx * ey2 - dy * ex2) / area, 0.0)
    b2 = jnp.where(covered, (ex1 * dy - ey1 * dx) / area, 0.0)
    b0 = jnp.where(covered, 1.0 - b1 - b2, 0.0)
    zbuf = jnp.where(covered, z0 + b1 * (z1 - z0) + b2 * (z2 - z0), -1.0)
    return Fragments(pix_to_face, jnp.stack([b0, b1, b2], axis=-1), zbuf)


def rasterize(
    screen_vertices: jax.typing.ArrayLike,
    faces,
    image_size: int | tuple[int, int],
    *,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Fragments:
    """Rasterises triangle meshes seen in screen space.

    Args:
      screen_vertices: ``float [B, V, 3]`` screen points (x right, y down, depth).
      faces: ``int [F, 3]`` triangles, shared by the batch.
      image_size: an int (square) or ``(H, W)``; static.
      chunk_size: candidates per step of the visibility loop (see :func:`visible_faces`).

    Returns:
      :class:`Fragments` with ``pix_to_face`` computed outside the gradient and differentiable
      ``bary`` and ``zbuf``.
    """
    pix_to_face = visible_faces(screen_vertices, faces, image_size, chunk_size=chunk_size)
    return fragments_at(screen_vertices, faces, pix_to_face)


def interpolate(fragments: Fragments, faces, attributes: jax.typing.ArrayLike) -> jax.Array:
    """Interpolates per-vertex attributes at the pixel centres with the fragments'
    barycentrics.

    Args:
      fragments: the :class:`Fragments` of a ``[B, H, W]`` batch.
      faces: ``int [F, 3]`` the triangles that were rasterised.
      attributes: ``float [B, V, C]`` (or ``[V, C]``, shared by the batch) per-vertex values.

    Returns:
      ``float [B, H, W, C]``, ``0`` on background pixels.
    """
    attributes = jnp.asarray(attributes)
    b = fragments.pix_to_face.shape[0]
    if attributes.ndim == 2:
        attributes = jnp.broadcast_to(attributes, (b, *attributes.shape))
    if attributes.ndim != 3 or attributes.shape[0] != b:
        raise ValueError(f"attributes must be [B={b}, V, C] or [V, C], got {attributes.shape}")
    c = attributes.shape[-1]
    corners = _pixel_rows(attributes, faces, fragments.pix_to_face)
    bary = [fragments.bary[..., k].astype(attributes.dtype) for k in range(3)]
    return jnp.stack([bary[0] * corners[j] + bary[1] * corners[c + j] + bary[2] * corners[2 * c + j]
                      for j in range(c)], axis=-1)
