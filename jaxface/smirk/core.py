"""SMIRK's core stage (analysis by neural synthesis): losses and one jitted step.

Only the expression encoder and the U-Net generator (:class:`jaxface.models.UNet`) are
trained; the pose and shape encoders are frozen (BatchNorm with running averages, no
gradient). One step on a batch of real frames (random crops and jitter as in the pretrain):

**Reconstruction path.** Encode, run the morphable model, render the grey mesh
(:func:`jaxface.render.render`), mask the photo (:func:`jaxface.smirk.masking.mask_face`: hull of
the image's landmarks, holes at 1 %), and let the generator rebuild the photo from the render
and the masked photo::

    100 L_landmarks + 10 L1(photo', photo) + 10 L_perceptual(photo', photo)
    + 1e-3 |expression|^2 + 1e-2 |jaw|^2

**Cycle path.** Edit the (detached) parameters (:func:`jaxface.smirk.cycle.augment_expressions`),
render the edited mesh, move the kept samples with it (:func:`jaxface.smirk.cycle.transfer`,
holes at 0.5 %), synthesise the edited photo, and read it back with the expression encoder::

    1 * (MSE(expression) + 10 MSE(jaw) + 10 MSE(eyelids))

Freezing alternates by step parity: even steps train only the generator through the cycle
(its cycle gradient clipped to global norm 0.1), odd steps only the encoder. Two Adam
optimisers: encoder at 0.25 x the base rate, generator at the base rate with betas
(0.5, 0.999), each a cosine to 1 % restarted every epoch.

**Perceptual features** (:class:`PerceptualFeatures`): VGG16's first 23 layers (13 convolution
shapes of torchvision's ``vgg16().features``, ReLU, max pooling), L1 between the features after
layers 4, 9, 16 and 23 of ImageNet-normalised images, summed. Nothing is downloaded: with
``core.perceptual.weights = ""`` the network keeps a frozen random He-normal initialisation
(seed ``core.perceptual.seed``; random convolutional features still compare local structure at
four scales), and a path reads torchvision's weights from a local ``.npz`` of its state dict
(``features.<i>.weight`` ``[out, in, 3, 3]`` and ``features.<i>.bias``).

Differences from the official step: BatchNorm statistics are updated by the reconstruction
path only; the generator runs in training mode in both paths; no emotion loss (EMOCA's network
is not available).
"""

from __future__ import annotations

import os
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from jaxface.models import create_model
from jaxface.models.face_encoder import ExpressionEncoder, PoseEncoder, ShapeEncoder
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.render import project_orthographic, render
from jaxface.sharding import batch_sharding, replicated
from jaxface.smirk.augment import colour_jitter, random_crops
from jaxface.smirk.cycle import CycleConfig, augment_expressions, expression_templates, transfer
from jaxface.smirk.landmarks import landmark_loss, pixels_to_screen
from jaxface.smirk.masking import MaskingConfig, mask_face, triangle_weights
from jaxface.train.metrics import global_norm

__all__ = [
    "VGG16_LAYERS",
    "CoreState",
    "PerceptualFeatures",
    "build_generator",
    "core_optimizers",
    "create_core_state",
    "make_core_step",
    "perceptual_loss",
    "perceptual_variables",
]

#: VGG16's ``features[:23]``: output channels of each convolution, "M" for max pooling; the
#: perceptual loss compares the activations after layers 4, 9, 16 and 23 (ReLUs).
VGG16_LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512)
_BLOCK_ENDS = (2, 5, 9, 13)  # entries of VGG16_LAYERS after which a compared block ends
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


class PerceptualFeatures(nn.Module):
    """VGG16's first 23 layers: ``[B, H, W, 3]`` in [0, 1] -> four feature maps."""

    @nn.compact
    def __call__(self, images: jax.Array) -> list[jax.Array]:
        x = (images - _IMAGENET_MEAN) / _IMAGENET_STD
        out, conv = [], 0
        for i, layer in enumerate(VGG16_LAYERS):
            if layer == "M":
                x = nn.max_pool(x, (2, 2), strides=(2, 2))
            else:
                x = nn.relu(nn.Conv(layer, (3, 3), padding=1, name=f"conv{conv}",
                                    kernel_init=nn.initializers.he_normal())(x))
                conv += 1
            if i + 1 in _BLOCK_ENDS:
                out.append(x)
        return out


def perceptual_variables(perceptual) -> dict[str, Any]:
    """The frozen feature network's variables (``core.perceptual``: ``weights``, ``seed``).

    Raises:
      FileNotFoundError: a named weights file is missing.
      ValueError: the file lacks a layer or has another shape.
    """
    net = PerceptualFeatures()
    variables = net.init(jax.random.key(int(perceptual["seed"])), jnp.zeros((1, 16, 16, 3)))
    path = str(perceptual["weights"] or "")
    if not path:
        return variables
    path = os.path.expanduser(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"core.perceptual.weights: no file {path}")
    params = jax.tree.map(np.asarray, variables["params"])
    with np.load(path) as f:
        torch_index = [i for i, layer in enumerate(_torch_layers()) if layer == "conv"]
        for conv, index in enumerate(torch_index):
            for field, key in (("kernel", "weight"), ("bias", "bias")):
                name = f"features.{index}.{key}"
                if name not in f:
                    raise ValueError(f"{path}: no {name} (expected torchvision's vgg16 "
                                     f"state dict)")
                value = f[name]
                if field == "kernel":
                    value = np.transpose(value, (2, 3, 1, 0))  # [out, in, h, w] -> [h, w, in, out]
                want = params[f"conv{conv}"][field].shape
                if value.shape != want:
                    raise ValueError(f"{path}: {name} has shape {value.shape}, expected {want}")
                params[f"conv{conv}"][field] = value.astype(np.float32)
    return {"params": params}


def _torch_layers() -> list[str]:
    """torchvision's ``features`` indices: a conv and a ReLU per convolution, a pool per M."""
    layers: list[str] = []
    for layer in VGG16_LAYERS:
        layers += ["pool"] if layer == "M" else ["conv", "relu"]
    return layers


def perceptual_loss(variables, a: jax.Array, b: jax.Array) -> jax.Array:
    """Sum over the four blocks of the mean absolute feature difference of ``a``, ``b``
    (``[B, H, W, 3]``)."""
    net = PerceptualFeatures()
    fa, fb = net.apply(variables, a), net.apply(variables, b)
    return sum(jnp.mean(jnp.abs(x - y)) for x, y in zip(fa, fb, strict=True))


class CoreState(struct.PyTreeNode):
    """The core stage's state.

    Attributes:
      step: ``int32 []``.
      encoder_params: the three encoders' parameters (only ``expression_encoder`` moves).
      generator_params: the U-Net's parameters.
      encoder_opt: Adam state of ``encoder_params["expression_encoder"]``.
      generator_opt: Adam state of ``generator_params``.
      batch_stats: ``{"encoder": ..., "generator": ...}`` BatchNorm statistics.
    """

    step: jax.Array
    encoder_params: Any
    generator_params: Any
    encoder_opt: Any
    generator_opt: Any
    batch_stats: Any


def _schedule(base: float, floor: float, steps_per_epoch: int) -> optax.Schedule:
    def schedule(step):
        t = (step % steps_per_epoch) / steps_per_epoch
        return base * (floor + (1.0 - floor) * 0.5 * (1.0 + jnp.cos(jnp.pi * t)))

    return schedule


def core_optimizers(config, steps_per_epoch: int):
    """``(encoder, generator)`` Adam optimisers of ``config.core`` (module docstring)."""
    c = config.core
    base, floor = float(c.learning_rate), float(c.cosine_floor)
    enc = optax.adam(_schedule(base * float(c.encoder_lr_scale), floor, steps_per_epoch),
                     *map(float, c.encoder_betas))
    gen = optax.adam(_schedule(base, floor, steps_per_epoch), *map(float, c.generator_betas))
    return enc, gen


def create_core_state(config, generator, encoder_variables, steps_per_epoch: int) -> CoreState:
    """The initial state: the (pretrained) encoders' variables and a fresh generator."""
    size = int(config.image_size)
    gen_vars = generator.init(jax.random.key(config.seed), jnp.zeros((1, size, size, 6)))
    enc_tx, gen_tx = core_optimizers(config, steps_per_epoch)
    enc_params = encoder_variables["params"]
    return CoreState(step=jnp.zeros((), jnp.int32), encoder_params=enc_params,
                     generator_params=gen_vars["params"],
                     encoder_opt=enc_tx.init(enc_params["expression_encoder"]),
                     generator_opt=gen_tx.init(gen_vars["params"]),
                     batch_stats={"encoder": encoder_variables["batch_stats"],
                                  "generator": gen_vars["batch_stats"]})


def build_generator(config):
    """The U-Net of ``config.core.generator``."""
    return create_model(config.core.generator)


def make_core_step(config, encoder, generator, model: MorphableModel, steps_per_epoch: int,
                   mesh=None):
    """The jitted core step ``(state, batch, rng) -> (state, metrics)`` (module docstring).

    Args:
      config: an image-to-3D config (its ``core`` block, ``augment`` and ``image_size``).
      encoder: the :class:`jaxface.models.FaceEncoder`.
      generator: the :class:`jaxface.models.UNet`.
      model: the morphable model.
      steps_per_epoch: the cosine schedules' period.
      mesh: shards the batch (``image [B, S, S, 3]``, ``landmarks [B, 468, 2]`` pixels) along
        ``data``; ``B`` a multiple of 4.
    """
    size = int(config.image_size)
    c, a = config.core, config.augment
    w = c.loss
    mask_cfg = MaskingConfig.from_config(c.masking)
    cycle_mask_cfg = MaskingConfig.from_config(c.masking, c.masking["cycle_hole_ratio"])
    cycle_cfg = CycleConfig.from_config(c.cycle)
    templates = jnp.asarray(expression_templates(model))
    faces = np.asarray(model.faces)
    render_faces = np.asarray(model.face_mask_faces)
    weights = jnp.asarray(triangle_weights(model))
    mp_rows = np.asarray(model.mediapipe_indices, np.int32)
    perceptual = perceptual_variables(c.perceptual)
    enc_tx, gen_tx = core_optimizers(config, steps_per_epoch)
    pose_net = PoseEncoder(encoder.pose_backbone, encoder.dtype)
    shape_net = ShapeEncoder(encoder.num_shape, encoder.shape_backbone, encoder.dtype)
    expr_net = ExpressionEncoder(encoder.num_expression, encoder.expression_backbone,
                                 encoder.eyelids, encoder.dtype)

    def constrain(x):
        return x if mesh is None else jax.lax.with_sharding_constraint(x, batch_sharding(mesh))

    def sub(tree, name):
        return tree[name]

    def step(state: CoreState, batch: dict[str, jax.Array], rng: jax.Array):
        rng = jax.random.fold_in(rng, state.step)
        k_crop, k_jit, k_mask, k_cycle_mask, k_edit = jax.random.split(rng, 5)
        crops, pts, _ = random_crops(k_crop, batch["image"], batch["landmarks"], size,
                                     scale_range=tuple(a.scale_range), shift=float(a.shift),
                                     rotation_deg=float(a.rotation_deg))
        images = constrain(colour_jitter(k_jit, crops, brightness=a.brightness,
                                         contrast=a.contrast, saturation=a.saturation,
                                         blur_prob=a.blur_prob, noise_std=a.noise_std))
        targets = pixels_to_screen(pts, size)[:, mp_rows]
        hull_points = pixels_to_screen(pts, size)
        ep, es = state.encoder_params, state.batch_stats["encoder"]

        def frozen(net, name):
            return net.apply({"params": sub(ep, name), "batch_stats": sub(es, name)}, images)

        pose, cam = frozen(pose_net, "pose_encoder")
        shape = frozen(shape_net, "shape_encoder")
        pose, cam, shape = jax.lax.stop_gradient((pose, cam, shape))
        gen_stats = state.batch_stats["generator"]

        def encode(expr_params, x):
            (e, lids, jaw), upd = expr_net.apply(
                {"params": expr_params, "batch_stats": sub(es, "expression_encoder")}, x,
                train=True, mutable=["batch_stats"])
            return e, lids, jaw, upd["batch_stats"]

        def generate(gen_params, rendered, masked):
            x = jnp.concatenate([rendered, masked], axis=-1)
            y, upd = generator.apply({"params": gen_params, "batch_stats": gen_stats}, x,
                                     train=True, mutable=["batch_stats"])
            return y, upd["batch_stats"]

        def reconstruction_loss(trained):
            expr_params, gen_params = trained
            e, lids, jaw, enc_stats = encode(expr_params, images)
            params = FaceParams(shape=shape, expression=e, pose=pose, jaw=jaw, eyelids=lids)
            out = morph(model, params)
            l_lmk = landmark_loss(out, cam, targets)
            rendered = render(out.vertices, render_faces, cam, size)
            masked = mask_face(k_mask, images, hull_points, rendered.screen_vertices, faces,
                               weights, rendered.mask, mask_cfg)
            recon, new_gen_stats = generate(gen_params, rendered.image, masked.image)
            l_photo = jnp.mean(jnp.abs(recon - images))
            l_perc = perceptual_loss(perceptual, recon, images)
            l_reg = (w["expression_reg"] * jnp.mean(jnp.sum(e ** 2, -1))
                     + w["jaw_reg"] * jnp.mean(jnp.sum(jaw ** 2, -1)))
            loss = (w["landmarks"] * l_lmk + w["photometric"] * l_photo
                    + w["perceptual"] * l_perc + l_reg)
            parts = {"landmarks": l_lmk, "photometric": l_photo, "perceptual": l_perc,
                     "regularisers": l_reg}
            return loss, (parts, params, out, {"encoder": enc_stats, "generator": new_gen_stats})

        trained = (ep["expression_encoder"], state.generator_params)
        (l_rec, (parts, params, out, stats)), g_rec = jax.value_and_grad(
            reconstruction_loss, has_aux=True)(trained)

        params = jax.lax.stop_gradient(params)
        screen = jax.lax.stop_gradient(project_orthographic(out.vertices, cam))
        kept = mask_face(k_cycle_mask, images, hull_points, screen, faces, weights,
                         jax.lax.stop_gradient(render(out.vertices, render_faces, cam,
                                                      size).mask), cycle_mask_cfg)
        edited = augment_expressions(k_edit, params, templates, cycle_cfg)
        edited_out = morph(model, edited)
        edited_render = render(edited_out.vertices, render_faces, cam, size)
        moved = transfer(kept, images, edited_render.screen_vertices, faces, edited_render.mask)
        edited_image_in = jax.lax.stop_gradient(edited_render.image)

        def cycle_loss(trained):
            expr_params, gen_params = trained
            synth, _ = generate(gen_params, edited_image_in, moved)
            e, lids, jaw, _ = encode(expr_params, synth)
            l_cyc = (jnp.mean((e - edited.expression) ** 2)
                     + w["cycle_jaw"] * jnp.mean((jaw - edited.jaw) ** 2)
                     + w["cycle_eyelids"] * jnp.mean((lids - edited.eyelids) ** 2))
            return w["cycle"] * l_cyc

        l_cyc, g_cyc = jax.value_and_grad(cycle_loss)(trained)
        even = (state.step % 2) == 0
        g_cyc_enc = jax.tree.map(lambda g: jnp.where(even, 0.0, g), g_cyc[0])
        gen_norm = global_norm(g_cyc[1])
        clip = jnp.minimum(1.0, float(c.generator_clip) / jnp.maximum(gen_norm, 1e-12))
        g_cyc_gen = jax.tree.map(lambda g: jnp.where(even, g * clip, 0.0), g_cyc[1])
        g_enc = jax.tree.map(jnp.add, g_rec[0], g_cyc_enc)
        g_gen = jax.tree.map(jnp.add, g_rec[1], g_cyc_gen)

        upd, enc_opt = enc_tx.update(g_enc, state.encoder_opt, ep["expression_encoder"])
        new_expr = optax.apply_updates(ep["expression_encoder"], upd)
        upd, gen_opt = gen_tx.update(g_gen, state.generator_opt, state.generator_params)
        new_gen = optax.apply_updates(state.generator_params, upd)
        enc_stats = {**es, "expression_encoder": stats["encoder"]}
        state = state.replace(
            step=state.step + 1, encoder_params={**ep, "expression_encoder": new_expr},
            generator_params=new_gen, encoder_opt=enc_opt, generator_opt=gen_opt,
            batch_stats={"encoder": enc_stats, "generator": stats["generator"]})
        metrics = {"loss": l_rec + l_cyc, "reconstruction": l_rec, "cycle": l_cyc,
                   "encoder_grad_norm": global_norm(g_enc),
                   "generator_grad_norm": global_norm(g_gen),
                   "cycle_generator_grad_norm": gen_norm, **parts}
        return state, metrics

    kwargs: dict[str, Any] = {"donate_argnums": 0}
    if mesh is not None:
        rep = replicated(mesh)
        kwargs.update(in_shardings=(rep, batch_sharding(mesh), rep), out_shardings=(rep, rep))
    return jax.jit(step, **kwargs)
