"""Renders of the morphable model with known parameters, drawn on the device.

Each example draws an identity (``N(0, shape_std)`` per unit-variance component), a sparse
expression (each coefficient active with a probability, then ``U(0, max)``), a jaw opening and
sideways turn, eyelid closures, a head pose (yaw, pitch, roll), a skin colour with smooth
variation and darker lips, light intensity and directions around the official five, and a
background of colour gradients and noise. The camera frames the face as the real crops do: the
landmark box spans ``1 / scale`` of the image, ``scale ~ U(1.2, 1.8)``, shifted by up to 5 %.
The image is the Lambertian render (:func:`jaxface.render.renderer.render`) over the
background. Everything is a
pure function of a key, so the training step makes its own renders: no files, no host work.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.render.renderer import render
from jaxface.render.shading import OFFICIAL_LIGHTS
from jaxface.smirk.landmarks import project_points

__all__ = ["SyntheticBatch", "SyntheticConfig", "render_synthetic", "sample_params"]


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How renders are drawn (the ``synthetic`` and ``augment`` blocks of the config)."""

    shape_std: float = 1.0
    expression_active: float = 0.2
    expression_max: float = 1.0
    jaw_open_prob: float = 0.5
    jaw_open_max: float = 0.35
    jaw_side_max: float = 0.05
    eyelid_prob: float = 0.3
    yaw_deg: float = 35.0
    pitch_deg: float = 20.0
    roll_deg: float = 10.0
    light_intensity: tuple[float, float] = (1.2, 2.2)
    light_jitter: float = 0.3
    scale_range: tuple[float, float] = (1.2, 1.8)
    shift: float = 0.05

    @classmethod
    def from_config(cls, config) -> SyntheticConfig:
        """From an image-to-3D config (``config.synthetic`` and ``config.augment``)."""
        s, a = config.synthetic, config.augment
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in s.items() if k in fields}
        values.update(scale_range=tuple(a.scale_range), shift=float(a.shift),
                      light_intensity=tuple(s.light_intensity))
        return cls(**values)


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class SyntheticBatch:
    """Renders with their ground truth.

    Attributes:
      image: ``float32 [B, H, W, 3]`` in [0, 1].
      params: the drawn :class:`FaceParams`.
      cam: ``float32 [B, 3]`` the cameras.
      landmarks: ``float32 [B, L, 2]`` the model's MediaPipe points on screen.
      vertices: ``float32 [B, V, 3]`` the posed meshes (metres).
      mask: ``float32 [B, H, W]`` pixels covered by the face.
    """

    image: jax.Array
    params: FaceParams
    cam: jax.Array
    landmarks: jax.Array
    vertices: jax.Array
    mask: jax.Array


def _euler_axis_angle(pitch: jax.Array, yaw: jax.Array, roll: jax.Array) -> jax.Array:
    """Axis-angle ``[B, 3]`` of ``R_z(roll) R_y(yaw) R_x(pitch)``."""
    def rot(axis, angle):
        c, s = jnp.cos(angle), jnp.sin(angle)
        o, z = jnp.ones_like(angle), jnp.zeros_like(angle)
        if axis == 0:
            rows = [[o, z, z], [z, c, -s], [z, s, c]]
        elif axis == 1:
            rows = [[c, z, s], [z, o, z], [-s, z, c]]
        else:
            rows = [[c, -s, z], [s, c, z], [z, z, o]]
        return jnp.stack([jnp.stack(r, -1) for r in rows], -2)

    r = rot(2, roll) @ rot(1, yaw) @ rot(0, pitch)
    cos = jnp.clip(0.5 * (jnp.trace(r, axis1=-2, axis2=-1) - 1.0), -1.0, 1.0)
    angle = jnp.arccos(cos)
    axis = jnp.stack([r[:, 2, 1] - r[:, 1, 2], r[:, 0, 2] - r[:, 2, 0],
                      r[:, 1, 0] - r[:, 0, 1]], -1)
    sin = jnp.sin(angle)
    safe = jnp.where(sin > 1e-6, sin, 1.0)
    return jnp.where((sin > 1e-6)[:, None], axis * (angle / (2.0 * safe))[:, None], 0.5 * axis)


def sample_params(rng: jax.Array, model: MorphableModel, cfg: SyntheticConfig,
                  batch: int) -> FaceParams:
    """Random parameters of ``batch`` faces (see the module docstring)."""
    ks = jax.random.split(rng, 10)
    shape = cfg.shape_std * jax.random.normal(ks[0], (batch, model.num_shape))
    active = jax.random.bernoulli(ks[1], cfg.expression_active, (batch, model.num_expression))
    expression = active * jax.random.uniform(ks[2], (batch, model.num_expression),
                                             maxval=cfg.expression_max)
    opens = jax.random.bernoulli(ks[3], cfg.jaw_open_prob, (batch,))
    jaw = jnp.stack([opens * jax.random.uniform(ks[4], (batch,), maxval=cfg.jaw_open_max),
                     *jax.random.uniform(ks[5], (2, batch), minval=-cfg.jaw_side_max,
                                         maxval=cfg.jaw_side_max)], -1)
    closes = jax.random.bernoulli(ks[6], cfg.eyelid_prob, (batch, 2))
    eyelids = closes * jax.random.uniform(ks[7], (batch, 2))
    angles = jax.random.uniform(ks[8], (3, batch), minval=-1.0, maxval=1.0)
    pose = _euler_axis_angle(jnp.deg2rad(cfg.pitch_deg) * angles[0],
                             jnp.deg2rad(cfg.yaw_deg) * angles[1],
                             jnp.deg2rad(cfg.roll_deg) * angles[2])
    return FaceParams(shape=shape, expression=expression, pose=pose, jaw=jaw, eyelids=eyelids)


def _frame_cameras(rng: jax.Array, points: jax.Array, cfg: SyntheticConfig) -> jax.Array:
    """Cameras ``[B, 3]`` putting each face's MediaPipe box at a random crop scale and shift."""
    b = points.shape[0]
    k1, k2 = jax.random.split(rng)
    xy = project_points(points, jnp.tile(jnp.array([[1.0, 0.0, 0.0]]), (b, 1)))  # (x, -y)
    lo, hi = xy.min(1), xy.max(1)
    scale = jax.random.uniform(k1, (b,), minval=cfg.scale_range[0], maxval=cfg.scale_range[1])
    s = 2.0 / (scale * jnp.max(hi - lo, axis=-1))
    shift = 2.0 * jax.random.uniform(k2, (b, 2), minval=-cfg.shift, maxval=cfg.shift)
    centre = 0.5 * (lo + hi)
    tx = shift[:, 0] / s - centre[:, 0]
    ty = -shift[:, 1] / s + centre[:, 1]
    return jnp.stack([s, tx, ty], -1)


def _skin(rng: jax.Array, template: np.ndarray, lips: np.ndarray, batch: int) -> jax.Array:
    """Per-vertex albedo ``[B, V, 3]``: a skin tone, smooth variation, darker redder lips."""
    ks = jax.random.split(rng, 4)
    light = jnp.array([0.95, 0.80, 0.70])
    dark = jnp.array([0.36, 0.24, 0.17])
    t = jax.random.uniform(ks[0], (batch, 1, 1))
    tone = (1.0 - t) * light + t * dark
    # Smooth variation: a few random plane waves over the template (metres -> ~5 cm periods).
    freq = 40.0 * jax.random.normal(ks[1], (batch, 4, 3))
    phase = jax.random.uniform(ks[2], (batch, 4), maxval=2.0 * np.pi)
    waves = jnp.sin(jnp.einsum("bkc,vc->bvk", freq, jnp.asarray(template)) + phase[:, None])
    variation = 1.0 + 0.06 * waves.mean(-1, keepdims=True)
    lip_tint = jnp.where(jnp.asarray(lips)[None, :, None], jnp.array([0.85, 0.62, 0.62]), 1.0)
    return jnp.clip(tone * variation * lip_tint, 0.0, 1.0)


def _background(rng: jax.Array, batch: int, size: int) -> jax.Array:
    """``[B, size, size, 3]``: a random linear colour gradient plus noise."""
    ks = jax.random.split(rng, 4)
    c0 = jax.random.uniform(ks[0], (batch, 1, 1, 3))
    c1 = jax.random.uniform(ks[1], (batch, 1, 1, 3))
    direction = jax.random.normal(ks[2], (batch, 2))
    direction = direction / jnp.linalg.norm(direction, axis=-1, keepdims=True)
    grid = jnp.linspace(-1.0, 1.0, size)
    yy, xx = jnp.meshgrid(grid, grid, indexing="ij")
    t = 0.5 + 0.5 * (direction[:, 0, None, None] * xx + direction[:, 1, None, None] * yy)
    image = c0 + (c1 - c0) * t[..., None]
    return jnp.clip(image + 0.05 * jax.random.normal(ks[3], image.shape), 0.0, 1.0)


def _lights(rng: jax.Array, cfg: SyntheticConfig, batch: int) -> tuple[jax.Array, jax.Array]:
    """Unit directions ``[5, 3]`` around the official five (one set per batch), and per-example
    intensities ``[B]``."""
    k1, k2 = jax.random.split(rng)
    base = jnp.asarray(OFFICIAL_LIGHTS, jnp.float32)
    directions = base + cfg.light_jitter * jax.random.normal(k1, base.shape)
    directions = directions / jnp.linalg.norm(directions, axis=-1, keepdims=True)
    intensity = jax.random.uniform(k2, (batch,), minval=cfg.light_intensity[0],
                                   maxval=cfg.light_intensity[1])
    return directions, intensity


def render_synthetic(rng: jax.Array, model: MorphableModel, cfg: SyntheticConfig, batch: int,
                     image_size: int) -> SyntheticBatch:
    """``batch`` random faces rendered at ``image_size`` with their ground truth."""
    ks = jax.random.split(rng, 5)
    params = sample_params(ks[0], model, cfg, batch)
    out = morph(model, params)
    cam = _frame_cameras(ks[1], out.mediapipe, cfg)
    faces = model.face_mask_faces
    lips = np.zeros(model.num_vertices, bool)
    lips[np.asarray(model.masks.get("lips", np.zeros(0, np.int64)), np.int64)] = True
    albedo = _skin(ks[2], model.v_template, lips, batch)
    directions, intensity = _lights(ks[3], cfg, batch)
    # Lambertian shading is linear in the intensity: render at 1, scale per example.
    rendered = render(out.vertices, faces, cam, image_size, albedo=albedo, lights=directions,
                      intensity=1.0)
    mask = rendered.mask.astype(jnp.float32)
    face = jnp.clip(rendered.image * intensity[:, None, None, None], 0.0, 1.0)
    background = _background(ks[4], batch, image_size)
    image = mask[..., None] * face + (1.0 - mask[..., None]) * background
    return SyntheticBatch(image=image, params=params, cam=cam,
                          landmarks=project_points(out.mediapipe, cam), vertices=out.vertices,
                          mask=mask)
