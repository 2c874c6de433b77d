"""SMIRK's augmented-expression cycle: edit the expression, move the kept pixels with the mesh,
synthesise the edited photo and read the edit back.

The official core stage (``step2``) copies the encoded parameters (no gradient), splits the
batch into four equal groups and edits each (:func:`augment_expressions`):

1. **random**: each coefficient, with probability 1/2, moves by ``N(0, 1) (1 + 2U)``, clamped
   to ``+-4``;
2. **permuted**: the expressions of other examples, scaled by ``0.25 + 1.25U``;
3. **template**: one of FaMoS's 12 expression templates, scaled by ``0.25 + 1.25U``;
4. **zero**: expression 0, jaw 0, eyelids ``U(0, 1)``;

each with a little noise; then in every group the jaw of a random half moves by
``0.2 N(0, 1) (1, 0.1, 0.1)`` with its opening clamped to ``[0, 0.5]`` rad, and the eyelids move
by ``U(-0.25, 0.25)`` clamped to ``[0, 1]``. ``U`` is drawn once per example.

Adapted to the open model, whose expression coefficients are ARKit blendshape weights in
``[0, 1]`` (not unit-variance PCA coefficients):

* the random moves are ``random_std = 0.25`` times the official ones (the official ``+-4``
  bound is four standard deviations; the ARKit range has width 1), and every expression is
  clipped to ``[0, 1]`` after its edit and noise (``noise_std = 0.02``);
* FaMoS's templates are not available: the templates are the apexes of jaxface's expression
  labels (:data:`jaxface.data.arkit_labels.LABEL_RECIPES`: the 12 CoMA labels and the six
  basic expressions), each channel at the middle of its required range, the left side for
  one-sided entries, restricted to the model's expression channels
  (:func:`expression_templates`; labels that only move the jaw, e.g. ``mouth_open``, leave
  nothing and are dropped).

The kept pixels move with the mesh (:func:`transfer`): every sample of
:func:`jaxface.smirk.masking.mask_face` keeps its triangle and barycentric coordinates and is
splatted where they land on the edited mesh's projection (the nearest pixel below it). The
photo is kept outside the dilated hull and outside both meshes' footprints.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.arkit_labels import LABEL_RECIPES, expand_entry
from jaxface.morphable.forward import FaceParams
from jaxface.morphable.model import MorphableModel
from jaxface.smirk.masking import MaskedFace, compose, surface_points

__all__ = [
    "NUM_GROUPS",
    "CycleConfig",
    "augment_expressions",
    "expression_templates",
    "transfer",
]

#: Random, permuted, template, zero.
NUM_GROUPS = 4


@dataclasses.dataclass(frozen=True)
class CycleConfig:
    """The edit's sizes (module docstring).

    Attributes:
      random_std: the random group's step per unit of the official ``N(0, 1)``.
      random_prob: chance that a coefficient of the random group moves.
      scale_low, scale_span: permuted and template expressions are scaled by
        ``scale_low + scale_span U``.
      noise_std: noise added to every edited expression.
      jaw_prob: chance that an example's jaw moves.
      jaw_std: the jaw's step, times ``(1, 0.1, 0.1)``.
      jaw_open_max: the jaw opening's upper clamp (rad).
      eyelid_step: eyelids move by ``U(-step, step)``.
    """

    random_std: float = 0.25
    random_prob: float = 0.5
    scale_low: float = 0.25
    scale_span: float = 1.25
    noise_std: float = 0.02
    jaw_prob: float = 0.5
    jaw_std: float = 0.2
    jaw_open_max: float = 0.5
    eyelid_step: float = 0.25

    @classmethod
    def from_config(cls, cycle) -> CycleConfig:
        """From a ``core.cycle`` config block."""
        return cls(**{f.name: float(cycle[f.name]) for f in dataclasses.fields(cls)})


def expression_templates(model: MorphableModel) -> np.ndarray:
    """The template group's expressions (module docstring).

    Returns:
      ``float32 [T, E]`` in ``[0, 1]``, one row per label that moves a model channel.

    Raises:
      ValueError: if no label moves any of the model's expression channels.
    """
    index = {name: i for i, name in enumerate(model.expression_names)}
    rows = []
    for recipe in LABEL_RECIPES.values():
        row = np.zeros(model.num_expression, np.float32)
        for entry, (lo, hi) in recipe.required.items():
            for channel in expand_entry(entry, "Left"):
                if channel in index:
                    row[index[channel]] = 0.5 * (lo + hi)
        if row.any():
            rows.append(row)
    if not rows:
        raise ValueError(f"{model.name}: no expression label moves any of its expression "
                         f"channels {model.expression_names}")
    return np.stack(rows)


def augment_expressions(key: jax.Array, params: FaceParams, templates: jax.typing.ArrayLike,
                        cfg: CycleConfig = CycleConfig()) -> FaceParams:
    """Edited copies of ``params`` for the cycle: four equal groups by row (module docstring).

    Args:
      key: random key.
      params: ``[B]`` encoded parameters (``B`` a multiple of 4; no gradient is taken).
      templates: ``float [T, E]`` (:func:`expression_templates`).
      cfg: the edit's sizes.

    Returns:
      :class:`FaceParams` with new ``expression``, ``jaw`` and ``eyelids`` (the rest as given).
    """
    params = jax.lax.stop_gradient(params)
    e = params.expression
    b, n = e.shape
    if b % NUM_GROUPS:
        raise ValueError(f"augment_expressions: the batch ({b}) must split into "
                         f"{NUM_GROUPS} equal groups")
    templates = jnp.asarray(templates, e.dtype)
    ks = jax.random.split(key, 10)
    u = jax.random.uniform(ks[0], (b, 1))
    scale = cfg.scale_low + cfg.scale_span * u
    moves = jax.random.bernoulli(ks[1], cfg.random_prob, (b, n))
    random = e + cfg.random_std * jax.random.normal(ks[2], (b, n)) * (1 + 2 * u) * moves
    permuted = e[jax.random.permutation(ks[3], b)] * scale
    template = templates[jax.random.randint(ks[4], (b,), 0, templates.shape[0])] * scale
    group = jnp.arange(b) // (b // NUM_GROUPS)  # 0 random, 1 permuted, 2 template, 3 zero
    g = group[:, None]
    edited = jnp.where(g == 0, jnp.clip(random, 0.0, 1.0),
                       jnp.where(g == 1, permuted, jnp.where(g == 2, template, 0.0)))
    edited = edited + cfg.noise_std * jax.random.normal(ks[5], (b, n))
    expression = jnp.clip(edited, 0.0, 1.0)

    zero = g == 3
    jaw = jnp.where(zero, 0.0, params.jaw)
    eyelids = jnp.where(zero, jax.random.uniform(ks[6], (b, 2)), params.eyelids)
    jaw_moves = jax.random.bernoulli(ks[7], cfg.jaw_prob, (b, 1))
    step = cfg.jaw_std * jax.random.normal(ks[8], (b, 3)) * jnp.array([1.0, 0.1, 0.1])
    jaw = jaw + jnp.where(jaw_moves, step, 0.0)
    jaw = jaw.at[:, 0].set(jnp.clip(jaw[:, 0], 0.0, cfg.jaw_open_max))
    eyelids = eyelids + jax.random.uniform(ks[9], (b, 2), minval=-cfg.eyelid_step,
                                           maxval=cfg.eyelid_step)
    return params.replace(expression=expression, jaw=jaw,
                          eyelids=jnp.clip(eyelids, 0.0, 1.0))


def transfer(masked: MaskedFace, image: jax.Array, screen_vertices: jax.Array, faces,
             rendered_mask: jax.Array) -> jax.Array:
    """The masked photo of an edited mesh: the samples moved with their triangles.

    Args:
      masked: :func:`jaxface.smirk.masking.mask_face` of the photo and its original mesh.
      image: ``float [B, S, S, 3]`` the photo.
      screen_vertices: ``float [B, V, 3]`` the edited mesh's projection (no gradient).
      faces: ``int [F, 3]`` the triangles the samples were drawn on.
      rendered_mask: ``[B, S, S]`` the edited render's footprint.

    Returns:
      ``float [B, S, S, 3]``.
    """
    screen = jax.lax.stop_gradient(screen_vertices)
    background = masked.background & ~(jax.lax.stop_gradient(rendered_mask) > 0)
    points = surface_points(screen, faces, masked.samples)
    return compose(jax.lax.stop_gradient(image), background, points, masked.colours,
                   masked.samples.valid, masked.holes)
