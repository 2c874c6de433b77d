"""What the neural renderer sees of the photo: the face masked out, a few pixels kept on it.

SMIRK's generator reconstructs a photo from the render of the mesh and a masked copy of the
photo (official ``src/utils/masking.py``). Everything here is pure JAX (jit, vmap):

1. **Hull mask** (:func:`hull_mask`): the convex hull of the image's 468 MediaPipe landmarks,
   a pixel inside when its centre is inside. The hull is found by gift wrapping
   (:func:`convex_hull`, Jarvis's march as a fixed-length ``lax.scan``: from the leftmost
   point, each step takes the point of the smallest counter-clockwise turn from the last edge,
   the farthest one among collinear points; once back at the start it repeats it). It is the
   exact hull up to float32 angle ties (1e-6 rad), ``O(N^2)`` for ``N`` points. A pixel centre
   is inside when it is on the left of (or on) every hull edge.
2. The face hole is **dilated** by max pooling with radius 10 at 224 pixels
   (:func:`dilation_radius`, scaled with the image) and the rendered mesh's footprint is removed
   too: the photo is kept only outside both (``background``).
3. **Samples on the surface** (:func:`sample_surface`): ``int(sample_ratio * H * W)`` points
   (1 %: 501 at 224²) drawn with replacement over the triangles with probability proportional
   to region weight x projected area, front-facing triangles only
   (:func:`jaxface.render.front_facing`), at uniform random barycentrics inside each. Region
   weights (:func:`triangle_weights`, a triangle is in a region when its three corners are):
   ``face``, ``eye_region``, ``forehead`` 1; ``lips``, ``nose`` 0.5 (later entries win); other
   triangles 0. Each sample copies the photo's pixel under it times ``N(1, 0.05)``.
4. **Holes** (:func:`random_holes`): ``hole_ratio`` of the pixels (1 %, 0.5 % in the cycle) seed
   square holes of 11 x 11 pixels at 224 (radius 5, scaled with the image) where samples are
   dropped.

:func:`mask_face` does all of it and returns the masked image together with the samples'
``(triangle, barycentric)`` coordinates, so :mod:`jaxface.smirk.cycle` can move them with an
edited mesh (:func:`compose` splats them where they land).

Example:
  >>> import numpy as np
  >>> pts = np.array([[0, 0], [1, 0], [1, 1], [0, 1], [0.5, 0.5]], np.float32)
  >>> sorted(set(np.asarray(convex_hull(pts)).tolist()))
  [0, 1, 2, 3]
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.morphable.model import MorphableModel
from jaxface.render.camera import image_shape, pixel_centers, screen_to_pixel
from jaxface.render.rasterizer import triangle_corners
from jaxface.render.triangles import front_facing, projected_area

__all__ = [
    "REGION_WEIGHTS",
    "MaskedFace",
    "MaskingConfig",
    "SurfaceSamples",
    "compose",
    "convex_hull",
    "dilate",
    "dilation_radius",
    "hull_mask",
    "mask_face",
    "random_holes",
    "sample_surface",
    "splat",
    "surface_points",
    "triangle_weights",
]

#: Sampling weight of the triangles of each region, in order (later regions override).
REGION_WEIGHTS = (("face", 1.0), ("eye_region", 1.0), ("forehead", 1.0), ("lips", 0.5),
                  ("nose", 0.5))

#: The official sizes are for 224 x 224 images.
REFERENCE_SIZE = 224

_ANGLE_TIE = 1e-6  # radians: points this close in turning angle count as collinear
_EDGE_TOLERANCE = 1e-6  # screen units: a point this close outside an edge counts as inside


@dataclasses.dataclass(frozen=True)
class MaskingConfig:
    """The masking's sizes (official values at 224 x 224).

    Attributes:
      sample_ratio: samples as a share of the image's pixels (0.01).
      hole_ratio: share of pixels that seed holes (0.01; the cycle uses 0.005).
      hole_radius: half the side of a hole at 224 pixels (5: 11 x 11).
      dilation: radius of the hull's dilation at 224 pixels (10).
      noise_std: standard deviation of the samples' multiplicative noise around 1 (0.05).
    """

    sample_ratio: float = 0.01
    hole_ratio: float = 0.01
    hole_radius: int = 5
    dilation: int = 10
    noise_std: float = 0.05

    @classmethod
    def from_config(cls, masking, hole_ratio: float | None = None) -> MaskingConfig:
        """From a ``core.masking`` config block (``hole_ratio`` overrides the block's)."""
        return cls(sample_ratio=float(masking.sample_ratio),
                   hole_ratio=float(masking.hole_ratio if hole_ratio is None else hole_ratio),
                   hole_radius=int(masking.hole_radius), dilation=int(masking.dilation),
                   noise_std=float(masking.noise_std))


class SurfaceSamples(NamedTuple):
    """Points on a mesh by triangle and barycentric coordinates.

    Attributes:
      face: ``int32 [B, P]`` triangle index (into the sampled ``faces``).
      bary: ``float32 [B, P, 3]`` barycentric coordinates (non-negative, sum 1).
      valid: ``bool [B, P]`` False where the mesh had no front-facing weighted triangle.
    """

    face: jax.Array
    bary: jax.Array
    valid: jax.Array


class MaskedFace(NamedTuple):
    """What :func:`mask_face` returns.

    Attributes:
      image: ``float [B, H, W, 3]`` the masked photo: the photo on ``background``, the samples'
        colours where they land (outside holes), zeros elsewhere.
      background: ``bool [B, H, W]`` pixels where the photo is kept.
      samples: the :class:`SurfaceSamples` (``P = int(sample_ratio * H * W)``).
      colours: ``float [B, P, 3]`` each sample's colour (photo pixel x noise).
      holes: ``bool [B, H, W]`` where samples are dropped.
    """

    image: jax.Array
    background: jax.Array
    samples: SurfaceSamples
    colours: jax.Array
    holes: jax.Array


def triangle_weights(model: MorphableModel, faces: np.ndarray | None = None) -> np.ndarray:
    """The sampling weight of each triangle (:data:`REGION_WEIGHTS`; regions the model lacks
    are skipped).

    Args:
      model: the morphable model (its ``masks``).
      faces: ``int [F, 3]`` triangles (default ``model.faces``).

    Returns:
      ``float32 [F]``.
    """
    faces = np.asarray(model.faces if faces is None else faces)
    weights = np.zeros(faces.shape[0], np.float32)
    for region, weight in REGION_WEIGHTS:
        if region in model.masks:
            inside = np.zeros(model.num_vertices, bool)
            inside[np.asarray(model.masks[region])] = True
            weights[inside[faces].all(axis=1)] = weight
    return weights


def dilation_radius(image_size: int, radius_at_reference: int) -> int:
    """A radius given at 224 pixels scaled to a square image of ``image_size`` (rounded)."""
    return int(round(radius_at_reference * image_size / REFERENCE_SIZE))


def convex_hull(points: jax.typing.ArrayLike) -> jax.Array:
    """The convex hull of 2D points by gift wrapping (module docstring).

    Args:
      points: ``float [N, 2]``.

    Returns:
      ``int32 [N]``: the hull's points in order (counter-clockwise for x right, y up: every
      other point is on the left of each edge ``h[k] -> h[k + 1]``), the first point repeated
      to fill the ``N`` entries.
    """
    p = jnp.asarray(points, jnp.float32)
    n = p.shape[0]
    x_min = jnp.min(p[:, 0])
    start = jnp.argmin(jnp.where(p[:, 0] <= x_min, p[:, 1], jnp.inf)).astype(jnp.int32)

    def step(carry, _):
        current, direction, done = carry
        v = p - p[current]
        cross = direction[0] * v[:, 1] - direction[1] * v[:, 0]
        dot = direction[0] * v[:, 0] + direction[1] * v[:, 1]
        dist = jnp.sum(v * v, axis=-1)
        angle = jnp.mod(jnp.arctan2(cross, dot), 2 * jnp.pi)
        angle = jnp.where(dist > 0, angle, jnp.inf)
        best = jnp.min(angle)
        nxt = jnp.argmax(jnp.where(angle <= best + _ANGLE_TIE, dist, -1.0)).astype(jnp.int32)
        done = done | (nxt == start) | ~jnp.isfinite(best)
        nxt = jnp.where(done, start, nxt)
        new_dir = jnp.where(done, direction, p[nxt] - p[current])
        return (nxt, new_dir, done), current

    init = (start, jnp.array([0.0, -1.0], jnp.float32), jnp.array(False))
    _, order = jax.lax.scan(step, init, None, length=n)
    return order


def _inside_polygon(polygon: jax.Array, query: jax.Array) -> jax.Array:
    """``polygon [K, 2]`` (convex, counter-clockwise, repeats allowed), ``query [..., 2]`` ->
    ``bool [...]``: on the left of or on every edge."""
    a = polygon
    b = jnp.roll(polygon, -1, axis=0)
    e = b - a  # [K, 2]
    q = query[..., None, :] - a  # [..., K, 2]
    cross = e[:, 0] * q[..., 1] - e[:, 1] * q[..., 0]
    length = jnp.sqrt(jnp.sum(e * e, axis=-1))
    return jnp.all(cross >= -_EDGE_TOLERANCE * length, axis=-1)


def hull_mask(landmarks: jax.typing.ArrayLike, image_size: int) -> jax.Array:
    """Pixels whose centre is inside the convex hull of each image's landmarks.

    Args:
      landmarks: ``float [B, N, 2]`` screen points (x right, y down; the square image spans
        ``[-1, 1]``, :func:`jaxface.smirk.landmarks.pixels_to_screen`).
      image_size: the side of the square image.

    Returns:
      ``bool [B, H, W]``.
    """
    landmarks = jnp.asarray(landmarks, jnp.float32)
    centres = jnp.asarray(pixel_centers(image_size))

    def one(points):
        return _inside_polygon(points[convex_hull(points)], centres)

    return jax.vmap(one)(landmarks)


def dilate(mask: jax.typing.ArrayLike, radius: int) -> jax.Array:
    """Max pooling of a ``bool [B, H, W]`` mask over ``(2 radius + 1)²`` windows (same size)."""
    mask = jnp.asarray(mask)
    if radius <= 0:
        return mask
    size = 2 * radius + 1
    out = jax.lax.reduce_window(mask.astype(jnp.float32), 0.0, jax.lax.max, (1, size, size),
                                (1, 1, 1), "SAME")
    return out > 0


def random_holes(key: jax.Array, shape: tuple[int, int, int], ratio: float,
                 radius: int) -> jax.Array:
    """Square holes: pixels seed one with probability ``ratio``; ``bool [B, H, W]``."""
    seeds = jax.random.bernoulli(key, ratio, shape)
    return dilate(seeds, radius)


def sample_surface(key: jax.Array, screen_vertices: jax.Array, faces,
                   weights: jax.typing.ArrayLike, num_points: int) -> SurfaceSamples:
    """Points on the visible surface: triangles by weight x projected area among the
    front-facing ones (with replacement), uniform inside each.

    Args:
      key: random key.
      screen_vertices: ``float [B, V, 3]`` projected vertices.
      faces: ``int [F, 3]`` triangles.
      weights: ``float [F]`` per-triangle weights (:func:`triangle_weights`).
      num_points: ``P``.

    Returns:
      :class:`SurfaceSamples`.
    """
    screen = jax.lax.stop_gradient(jnp.asarray(screen_vertices))
    b = screen.shape[0]
    prob = (jnp.asarray(weights, jnp.float32) * projected_area(screen, faces)
            * front_facing(screen, faces))  # [B, F]
    total = jnp.sum(prob, axis=-1)
    logits = jnp.log(jnp.where(prob > 0, prob, 1.0)) + jnp.where(prob > 0, 0.0, -jnp.inf)
    logits = jnp.where(total[:, None] > 0, logits, 0.0)
    k_face, k_bary = jax.random.split(key)
    face = jax.random.categorical(k_face, logits, axis=-1, shape=(num_points, b)).T
    r1, r2 = jax.random.uniform(k_bary, (2, b, num_points))
    s = jnp.sqrt(r1)
    bary = jnp.stack([1.0 - s, s * (1.0 - r2), s * r2], axis=-1)
    valid = jnp.broadcast_to(total[:, None] > 0, face.shape)
    return SurfaceSamples(face.astype(jnp.int32), bary, valid)


def surface_points(screen_vertices: jax.Array, faces, samples: SurfaceSamples) -> jax.Array:
    """Screen ``x, y`` of the samples on a mesh: ``float [B, P, 2]``."""
    corners = triangle_corners(jnp.asarray(screen_vertices)[..., :2], faces)  # [B, F, 3, 2]
    tri = jnp.take_along_axis(corners, samples.face[:, :, None, None], axis=1)  # [B, P, 3, 2]
    return jnp.sum(samples.bary[..., None] * tri, axis=2)


def _pixels(points: jax.Array, image_size: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(row, col, inside)`` of the pixels the screen ``points [B, P, 2]`` fall in."""
    h, w = image_shape(image_size)
    cr = jnp.floor(screen_to_pixel(points, image_size)).astype(jnp.int32)
    col, row = cr[..., 0], cr[..., 1]
    inside = (col >= 0) & (col < w) & (row >= 0) & (row < h)
    return jnp.clip(row, 0, h - 1), jnp.clip(col, 0, w - 1), inside


def splat(points: jax.Array, colours: jax.Array, valid: jax.Array,
          image_size: int) -> tuple[jax.Array, jax.Array]:
    """Writes each valid point's colour into the pixel it falls in (one of several wins).

    Args:
      points: ``float [B, P, 2]`` screen points.
      colours: ``float [B, P, C]``.
      valid: ``bool [B, P]``.
      image_size: the side of the square image.

    Returns:
      ``(image float [B, H, W, C], covered bool [B, H, W])``.
    """
    h, w = image_shape(image_size)
    b, p = valid.shape
    row, col, inside = _pixels(points, image_size)
    ok = valid & inside
    flat = jnp.where(ok, (jnp.arange(b)[:, None] * h + row) * w + col, b * h * w)
    image = jnp.zeros((b * h * w, colours.shape[-1]), colours.dtype)
    image = image.at[flat.reshape(-1)].set(colours.reshape(b * p, -1), mode="drop")
    covered = jnp.zeros(b * h * w, bool).at[flat.reshape(-1)].set(True, mode="drop")
    return image.reshape(b, h, w, -1), covered.reshape(b, h, w)


def compose(image: jax.Array, background: jax.Array, points: jax.Array, colours: jax.Array,
            valid: jax.Array, holes: jax.Array) -> jax.Array:
    """The masked image: the photo on ``background``, the samples' colours where they land
    outside ``holes``, zeros elsewhere.

    Args:
      image: ``float [B, H, W, 3]`` the photo.
      background: ``bool [B, H, W]``.
      points: ``float [B, P, 2]`` screen positions of the samples.
      colours: ``float [B, P, 3]``.
      valid: ``bool [B, P]``.
      holes: ``bool [B, H, W]``.

    Returns:
      ``float [B, H, W, 3]``.
    """
    splatted, covered = splat(points, colours, valid, image.shape[1])
    kept = image * background[..., None].astype(image.dtype)
    return jnp.where((covered & ~holes)[..., None], splatted, kept)


def mask_face(key: jax.Array, image: jax.Array, landmarks: jax.Array,
              screen_vertices: jax.Array, faces, weights: jax.typing.ArrayLike,
              rendered_mask: jax.Array, cfg: MaskingConfig = MaskingConfig()) -> MaskedFace:
    """The generator's masked input for photos and their reconstructed meshes.

    Args:
      key: random key (samples, their noise, holes).
      image: ``float [B, S, S, 3]`` photos in ``[0, 1]``.
      landmarks: ``float [B, N, 2]`` the photos' landmarks in screen coordinates.
      screen_vertices: ``float [B, V, 3]`` the projected meshes (no gradient is taken).
      faces: ``int [F, 3]`` triangles to sample on.
      weights: ``float [F]`` their weights (:func:`triangle_weights`).
      rendered_mask: ``[B, S, S]`` the rendered meshes' footprint (nonzero: covered).
      cfg: the sizes.

    Returns:
      :class:`MaskedFace`.
    """
    image = jax.lax.stop_gradient(jnp.asarray(image))
    b, size = image.shape[0], image.shape[1]
    if image.shape[2] != size:
        raise ValueError(f"mask_face: images must be square, got {image.shape}")
    face = dilate(hull_mask(landmarks, size), dilation_radius(size, cfg.dilation))
    background = ~face & ~(jax.lax.stop_gradient(rendered_mask) > 0)
    k_sample, k_noise, k_holes = jax.random.split(key, 3)
    num_points = int(cfg.sample_ratio * size * size)
    samples = sample_surface(k_sample, screen_vertices, faces, weights, num_points)
    points = surface_points(jax.lax.stop_gradient(screen_vertices), faces, samples)
    row, col, inside = _pixels(points, size)
    pixels = image[jnp.arange(b)[:, None], row, col]  # [B, P, 3]
    noise = 1.0 + cfg.noise_std * jax.random.normal(k_noise, (b, num_points, 1), image.dtype)
    colours = pixels * noise
    samples = samples._replace(valid=samples.valid & inside)
    holes = random_holes(k_holes, (b, size, size), cfg.hole_ratio,
                         dilation_radius(size, cfg.hole_radius))
    masked = compose(image, background, points, colours, samples.valid, holes)
    return MaskedFace(masked, background, samples, colours, holes)
