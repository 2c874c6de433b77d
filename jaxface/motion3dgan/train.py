"""Training Motion3DGAN: GAN state, one jitted WGAN-GP step, and the resumable training loop.

Paper §3.1: the generator ``G(z, c)`` outputs a tangent vector at the reference point ``p``; the
critic scores tangent vectors, ``real = log_p(q)`` and ``fake = log_p(exp_p(G(z, c)))``. Losses:

* critic: ``E[D(fake)] - E[D(real)] + lambda * GP`` with the WGAN-GP penalty
  (:func:`jaxface.losses.gradient_penalty`, ``jax.grad`` of the critic at random interpolates of
  ``real`` and ``fake`` in the tangent space, ``lambda = 10``);
* generator: ``L_M = alpha1 * L_adv + alpha2 * L_r`` with ``L_adv = -E[D(fake)]`` and ``L_r`` the
  tangent-space L1 distance between the fake made with real sample ``i``'s label and real sample
  ``i`` (the official pairing by batch index); ``alpha1 = 1``, ``alpha2 = 10``. The official code
  adds ``alpha2`` times the mean geodesic distance between ``exp_p(G)`` and ``q``
  (``loss.geodesic_weight``, 0 by default as in the paper).

One call of the jitted ``train_step(state, batch, rng) -> (state, metrics)`` makes ``n_critic``
critic updates (a ``lax.scan``; the official code uses 4) and then one generator update, all on
the same real batch. The official code updates the generator first and then the critic; here the
critic goes first, as in WGAN-GP. The batch is sharded along the ``"data"`` mesh axis and the
state replicated, so the same step runs on one or many devices.

Optimiser: Adam with ``beta1 = 0.5``, ``beta2 = 0.9`` for both networks and the paper's learning
rate ``1e-4`` (the released code's constructor default is ``1e-6``).

Reference point (:class:`jaxface.manifold.SphereConfig`): the Karcher mean of the training SRVFs
(paper) or one training SRVF (official code). It is part of the state, so checkpoints and the
saved models carry it.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh

from jaxface.data.batches import InMemoryBatches
from jaxface.losses import (
    gradient_penalty,
    tangent_l1,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)
from jaxface.manifold import (
    SphereConfig,
    exp_map,
    geodesic_distance,
    log_map,
    reference_point,
)
from jaxface.models import (
    Motion3DGANCritic,
    Motion3DGANGenerator,
    one_hot_condition,
    rb_condition,
)
from jaxface.models.motion3dgan import official_conv_init
from jaxface.motion3dgan.data import MotionSet
from jaxface.motion3dgan.supervised import validation_hooks
from jaxface.sharding import data_mesh
from jaxface.train import LoopConfig, fit, global_norm, jit_train_step, num_params

__all__ = [
    "GANLoss",
    "GANModels",
    "GANState",
    "coverage_l1",
    "create_gan_state",
    "create_models",
    "critic_loss",
    "generator_loss",
    "make_condition",
    "make_sample_fn",
    "make_train_step",
    "sphere_config",
    "train_gan",
    "train_step",
]


class GANState(struct.PyTreeNode):
    """Everything Motion3DGAN training updates, as one pytree.

    Attributes:
      step: int32 scalar, number of train steps done (each: ``n_critic`` critic updates and one
        generator update).
      gen_params: generator parameters.
      critic_params: critic parameters.
      gen_opt_state: generator optimizer state.
      critic_opt_state: critic optimizer state.
      reference: float32 ``[T, D]`` reference point of the tangent space.
    """

    step: jax.Array
    gen_params: Any
    critic_params: Any
    gen_opt_state: Any
    critic_opt_state: Any
    reference: jax.Array


@dataclasses.dataclass(frozen=True)
class GANModels:
    """The networks, optimizers and condition code of one Motion3DGAN configuration.

    Attributes:
      generator: the generator module.
      critic: the critic module.
      gen_tx: generator optimizer.
      critic_tx: critic optimizer.
      num_classes: number of expression labels.
      noise_dim: size of ``z``.
      condition: ``"one_hot"`` (paper) or ``"rb"`` (official random-magnitude code).
      rb_dim: slots per class of the ``"rb"`` code.
      output_scale: factor applied to the generator's output before it is used as a tangent
        vector (1, the official pipeline, uses it as is).
    """

    generator: Motion3DGANGenerator
    critic: Motion3DGANCritic
    gen_tx: optax.GradientTransformation
    critic_tx: optax.GradientTransformation
    num_classes: int
    noise_dim: int = 128
    condition: str = "one_hot"
    rb_dim: int = 3
    output_scale: float = 1.0

    @property
    def condition_dim(self) -> int:
        """Width of the condition code."""
        return self.num_classes * (self.rb_dim if self.condition == "rb" else 1)

    def tangent(self, gen_params: Any, z: jax.Array, condition: jax.Array,
                reference: jax.Array) -> jax.Array:
        """The generated tangent vectors ``output_scale * G(z, c)``: ``[B, T, D]``."""
        v = self.generator.apply({"params": gen_params}, z, condition, reference)
        return v if self.output_scale == 1.0 else self.output_scale * v


# Generator convolution initialisers selectable by ``model.gen_init``.
_GEN_INITS = {
    "official": official_conv_init,
    "lecun": nn.initializers.lecun_normal(),
}


def create_models(config, num_classes: int) -> GANModels:
    """Builds :class:`GANModels` from a config's ``model`` and ``optim`` blocks.

    Args:
      config: experiment config (``model.*``: ``gen_base_channels``, ``noise_dim``,
        ``project_to_tangent``, ``gen_init``, ``output_scale``, ``critic_channels``,
        ``critic_hidden``, ``critic_norm``, ``condition``, ``rb_dim``; ``optim.*``:
        ``learning_rate``, optional ``critic_learning_rate`` (default: the same), ``b1``, ``b2``;
        ``num_frames``, ``num_landmarks``).
      num_classes: number of expression labels.

    ``model.gen_init`` picks the generator's convolution initialiser: ``"official"`` (normal,
    std 0.02) or ``"lecun"`` (fan-in scaled). With the official 1024 base channels the official
    initialiser keeps the signal's scale through the convolution stack, but a narrow generator
    (e.g. 32-64 base channels) multiplies it by ``0.02 * sqrt(9 * fan_in) < 1`` at every layer
    and starts with a near-zero, label-independent output that Adam takes very long to grow;
    narrow generators train with ``"lecun"`` and an ``output_scale`` of about 0.25, which keeps
    their first tangent vectors within the sphere's injectivity radius (norm below pi).
    """
    m, o = config.model, config.optim
    if m.condition not in ("one_hot", "rb"):
        raise ValueError(f"model.condition must be 'one_hot' or 'rb', got {m.condition!r}")
    gen_init = m.get("gen_init", "official")
    if gen_init not in _GEN_INITS:
        raise ValueError(f"model.gen_init must be one of {sorted(_GEN_INITS)}, got {gen_init!r}")
    return GANModels(
        generator=Motion3DGANGenerator(
            num_frames=config.num_frames,
            num_features=3 * config.num_landmarks,
            base_channels=m.gen_base_channels,
            project_to_tangent=m.project_to_tangent,
            conv_init=_GEN_INITS[gen_init],
        ),
        critic=Motion3DGANCritic(
            channels=tuple(m.critic_channels), hidden=m.critic_hidden, norm=m.critic_norm
        ),
        gen_tx=optax.adam(o.learning_rate, b1=o.b1, b2=o.b2),
        critic_tx=optax.adam(o.get("critic_learning_rate") or o.learning_rate, b1=o.b1, b2=o.b2),
        num_classes=num_classes,
        noise_dim=m.noise_dim,
        condition=m.condition,
        rb_dim=m.rb_dim,
        output_scale=float(m.get("output_scale", 1.0)),
    )


def sphere_config(config) -> SphereConfig:
    """The :class:`SphereConfig` of a config's ``sphere`` block."""
    s = config.sphere
    return SphereConfig(
        cos_clip=s.cos_clip,
        reference=s.reference,
        reference_index=s.reference_index,
        inverse_spacing=s.inverse_spacing,
    )


def make_condition(models: GANModels, labels: jax.Array, key: jax.Array) -> jax.Array:
    """The condition code of ``labels`` ``[B]``: ``[B, condition_dim]`` float32."""
    if models.condition == "rb":
        return rb_condition(labels, key, models.num_classes, models.rb_dim)
    return one_hot_condition(labels, models.num_classes)


def create_gan_state(models: GANModels, reference: jax.Array, key: jax.Array) -> GANState:
    """Initialises both networks and their optimizers.

    Args:
      models: the configuration.
      reference: float32 ``[T, D]`` reference point.
      key: PRNG key.
    """
    reference = jnp.asarray(reference, jnp.float32)
    k_gen, k_critic = jax.random.split(key)
    z = jnp.zeros((1, models.noise_dim), jnp.float32)
    cond = jnp.zeros((1, models.condition_dim), jnp.float32)
    gen_params = models.generator.init(k_gen, z, cond, reference)["params"]
    critic_params = models.critic.init(k_critic, reference[None], cond)["params"]
    return GANState(
        step=jnp.zeros((), jnp.int32),
        gen_params=gen_params,
        critic_params=critic_params,
        gen_opt_state=models.gen_tx.init(gen_params),
        critic_opt_state=models.critic_tx.init(critic_params),
        reference=reference,
    )


@dataclasses.dataclass(frozen=True)
class GANLoss:
    """The loss weights and critic schedule of one train step.

    Attributes:
      n_critic: critic updates per step (``lax.scan``), before the generator update.
      gp_weight: ``lambda`` of the gradient penalty.
      alpha_adv: ``alpha1``, weight of the generator's adversarial loss.
      alpha_rec: ``alpha2``, weight of the tangent-space L1 reconstruction ``L_r``.
      geodesic_weight: weight of the official extra term, the mean geodesic distance between
        ``exp_p(G(z, c_i))`` and ``q_i``.
      cos_clip: official log-map clip (see :class:`jaxface.manifold.SphereConfig`).
      unroll: ``unroll`` of the critic ``lax.scan`` (``True``: fully unrolled). XLA:CPU runs the
        convolutions of a loop body several times slower than the same convolutions outside a
        loop (measured 6x on the critic's gradient), so the short critic loop is unrolled by
        default; ``1`` keeps a rolled loop (smaller program, faster to compile).
    """

    n_critic: int = 4
    gp_weight: float = 10.0
    alpha_adv: float = 1.0
    alpha_rec: float = 10.0
    geodesic_weight: float = 0.0
    cos_clip: float | None = None
    unroll: bool | int = True

    @classmethod
    def from_config(cls, config) -> GANLoss:
        """The loss of a config's ``loss``, ``optim.n_critic`` and ``sphere.cos_clip``."""
        lc = config.loss
        return cls(n_critic=config.optim.n_critic, gp_weight=lc.gp_weight,
                   alpha_adv=lc.alpha_adv, alpha_rec=lc.alpha_rec,
                   geodesic_weight=lc.geodesic_weight, cos_clip=config.sphere.cos_clip)


def _noise(models: GANModels, key: jax.Array, size: int) -> jax.Array:
    return jax.random.normal(key, (size, models.noise_dim), jnp.float32)


def fake_tangent(models: GANModels, gen_params, reference, z, cond, cos_clip=None):
    """Generated tangent vectors as the critic sees them, ``log_p(exp_p(G(z, c)))``, and the
    generated points ``exp_p(G(z, c))``: both ``[B, T, D]``."""
    exp_fake = exp_map(reference, models.tangent(gen_params, z, cond, reference))
    return log_map(reference, exp_fake, cos_clip=cos_clip), exp_fake


def critic_loss(critic_params, models: GANModels, real, fake, cond, key, gp_weight: float):
    """WGAN-GP critic loss ``E[D(fake)] - E[D(real)] + lambda * GP`` and ``(w, gp)``.

    Args:
      critic_params: critic parameters.
      models: the networks.
      real, fake: float32 ``[B, T, D]`` tangent vectors.
      cond: float32 ``[B, condition_dim]``.
      key: key of the penalty's interpolates.
      gp_weight: ``lambda``.
    """

    def critic(x):
        return models.critic.apply({"params": critic_params}, x, cond)

    w = wasserstein_critic_loss(critic(real), critic(fake))
    gp = gradient_penalty(critic, real, fake, key, weight=gp_weight)
    return w + gp, (w, gp)


def generator_loss(gen_params, models: GANModels, critic_params, reference, real, q, z, cond,
                   loss: GANLoss):
    """``L_M = alpha1 * L_adv + alpha2 * L_r (+ geodesic_weight * geodesic)`` and its parts.

    Args:
      gen_params: generator parameters.
      models: the networks.
      critic_params: critic parameters (after this step's critic updates).
      reference: float32 ``[T, D]`` reference point.
      real: float32 ``[B, T, D]`` real tangent vectors ``log_p(q)``.
      q: float32 ``[B, T, D]`` real SRVFs.
      z: float32 ``[B, noise_dim]`` noise; ``cond``: ``[B, condition_dim]``.
      loss: the weights.

    Returns:
      ``(loss, (adv, rec, geodesic))``.
    """
    fake, exp_fake = fake_tangent(models, gen_params, reference, z, cond, loss.cos_clip)
    adv = wasserstein_generator_loss(models.critic.apply({"params": critic_params}, fake, cond))
    rec = tangent_l1(fake, real)
    geo = jnp.mean(geodesic_distance(exp_fake, q, cos_clip=loss.cos_clip))
    total = loss.alpha_adv * adv + loss.alpha_rec * rec + loss.geodesic_weight * geo
    return total, (adv, rec, geo)


def _critic_update(models: GANModels, loss: GANLoss, state: GANState, real, labels, carry, key):
    """One critic update on fresh fakes of the current generator (a ``lax.scan`` body)."""
    params, opt_state = carry
    k_z, k_c, k_gp = jax.random.split(key, 3)
    cond = make_condition(models, labels, k_c)
    z = _noise(models, k_z, real.shape[0])
    fake, _ = fake_tangent(models, state.gen_params, state.reference, z, cond, loss.cos_clip)
    (total, (w, gp)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        params, models, real, jax.lax.stop_gradient(fake), cond, k_gp, loss.gp_weight)
    updates, opt_state = models.critic_tx.update(grads, opt_state, params)
    metrics = {"critic_loss": total, "wasserstein": -w, "gradient_penalty": gp,
               "critic_grad_norm": global_norm(grads)}
    return (optax.apply_updates(params, updates), opt_state), metrics


def train_step(state: GANState, batch: dict[str, jax.Array], rng: jax.Array, *,
               models: GANModels, loss: GANLoss) -> tuple[GANState, dict[str, jax.Array]]:
    """``n_critic`` critic updates, then one generator update, on one real batch.

    The batch holds ``q`` float32 ``[B, T, D]`` (real SRVFs) and ``label`` int32 ``[B]``; other
    entries are ignored. ``rng`` is a base key, folded with ``state.step``. Metrics:
    ``critic_loss``, ``wasserstein`` (``E[D(real)] - E[D(fake)]``), ``gradient_penalty`` and
    ``critic_grad_norm`` (means over the critic updates), ``gen_loss``, ``gen_adv``, ``rec_l1``,
    ``geodesic``, ``gen_grad_norm``, ``gen_param_norm``, ``critic_param_norm``.
    """
    rng = jax.random.fold_in(rng, state.step)
    q = jnp.asarray(batch["q"], jnp.float32)
    labels = batch["label"]
    real = log_map(state.reference, q, cos_clip=loss.cos_clip)
    update = functools.partial(_critic_update, models, loss, state, real, labels)
    (critic_params, critic_opt_state), critic_metrics = jax.lax.scan(
        update, (state.critic_params, state.critic_opt_state),
        jax.random.split(jax.random.fold_in(rng, 0), loss.n_critic), unroll=loss.unroll)

    k_z, k_c = jax.random.split(jax.random.fold_in(rng, 1))
    cond = make_condition(models, labels, k_c)
    z = _noise(models, k_z, q.shape[0])
    (gen_loss, (adv, rec, geo)), grads = jax.value_and_grad(generator_loss, has_aux=True)(
        state.gen_params, models, critic_params, state.reference, real, q, z, cond, loss)
    updates, gen_opt_state = models.gen_tx.update(grads, state.gen_opt_state, state.gen_params)
    gen_params = optax.apply_updates(state.gen_params, updates)

    metrics = {k: jnp.mean(v) for k, v in critic_metrics.items()}
    metrics.update(gen_loss=gen_loss, gen_adv=adv, rec_l1=rec, geodesic=geo,
                   gen_grad_norm=global_norm(grads), gen_param_norm=global_norm(gen_params),
                   critic_param_norm=global_norm(critic_params))
    return state.replace(step=state.step + 1, gen_params=gen_params, critic_params=critic_params,
                         gen_opt_state=gen_opt_state, critic_opt_state=critic_opt_state), metrics


def make_train_step(
    models: GANModels,
    loss: GANLoss | None = None,
    *,
    mesh: Mesh | None = None,
    donate: bool = True,
    **loss_fields,
) -> Callable[[GANState, dict[str, jax.Array], jax.Array], tuple[GANState, dict]]:
    """The jitted :func:`train_step` of ``models``.

    Args:
      models: networks, optimizers and condition code.
      loss: the loss weights and critic schedule (default :class:`GANLoss`), or give its
        fields as keywords (``n_critic=2, gp_weight=10.0, ...``).
      mesh: when given, the step is compiled with the state (and ``rng``) replicated and the
        batch sharded along ``"data"`` over ``mesh``; otherwise shardings follow the arguments.
      donate: donate the input state's buffers.

    Raises:
      ValueError: ``n_critic < 1``, or both ``loss`` and loss keywords.
    """
    if loss is not None and loss_fields:
        raise ValueError("give the loss as a GANLoss or as keywords, not both")
    loss = GANLoss(**loss_fields) if loss is None else loss
    if loss.n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {loss.n_critic}")
    step = functools.partial(train_step, models=models, loss=loss)
    return jit_train_step(step, mesh=mesh, donate=donate)


def make_sample_fn(
    models: GANModels,
) -> Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]:
    """Returns the jitted ``sample(gen_params, reference, labels, key) -> q``.

    ``q = exp_p(output_scale * G(z, c))`` float32 ``[B, T, D]``: generated SRVFs on the sphere
    (the generator output projected to the tangent space, the default, keeps them on it), one
    per label of ``labels`` int32 ``[B]``; ``reference`` is ``[T, D]``.
    """

    def sample(gen_params, reference, labels, key):
        k_z, k_c = jax.random.split(key)
        z = jax.random.normal(k_z, (labels.shape[0], models.noise_dim), jnp.float32)
        cond = make_condition(models, labels, k_c)
        return exp_map(reference, models.tangent(gen_params, z, cond, reference))

    return jax.jit(sample)


def coverage_l1(models: GANModels, gen_params, reference: jax.Array, q: jax.Array,
                labels: jax.Array, key: jax.Array, num_samples: int = 8,
                cos_clip: float | None = None) -> jax.Array:
    """How closely the generator covers real motions: for every real SRVF, the smallest
    tangent-space L1 distance (mean over frames and features) to ``num_samples`` generated
    motions of its label, averaged over the real motions.

    Args:
      models: the networks.
      gen_params: generator parameters.
      reference: float32 ``[T, D]`` reference point.
      q: float32 ``[S, T, D]`` real SRVFs (e.g. held-out validation motions).
      labels: int32 ``[S]`` their labels.
      key: PRNG key of the noise (fixed across evaluations, so they are comparable).
      num_samples: generated motions per real one.
      cos_clip: the log map's clip (see :class:`jaxface.manifold.SphereConfig`).

    Returns:
      A scalar; lower is better (the validation metric of :func:`train_gan`).
    """
    real = log_map(reference, q, cos_clip=cos_clip)
    keys = jax.random.split(key, num_samples)

    def distance(k):
        k_z, k_c = jax.random.split(k)
        cond = make_condition(models, labels, k_c)
        z = _noise(models, k_z, q.shape[0])
        fake, _ = fake_tangent(models, gen_params, reference, z, cond, cos_clip)
        return jnp.mean(jnp.abs(fake - real), axis=(1, 2))

    return jnp.mean(jnp.min(jax.lax.map(distance, keys), axis=0))


def train_gan(
    config, workdir: str, train: MotionSet, *, reference: np.ndarray | None = None,
    validation: MotionSet | None = None,
) -> tuple[GANModels, GANState, dict[str, Any]]:
    """Trains (or resumes training) Motion3DGAN on ``train``.

    Args:
      config: a :mod:`jaxface.configs.motion3dgan` config.
      workdir: run folder (``checkpoints/``, ``metrics.jsonl``).
      train: training motions.
      reference: float32 ``[T, D]`` reference point; default
        :func:`jaxface.manifold.reference_point` of the training SRVFs under ``config.sphere``
        (ignored when resuming: the checkpoint's reference is restored).
      validation: held-out motions; :func:`coverage_l1` of the generator on them is evaluated
        while training (``val_coverage_l1`` in ``eval.jsonl``; plateau stop per
        ``config.validation``).

    Returns:
      ``(models, state on the host, info)``; ``info`` has ``steps``, ``train_time_s``,
      ``examples_per_s``, ``final`` (last logged metrics) and ``num_params``.
    """
    workdir = os.path.abspath(workdir)
    mesh = data_mesh()
    models = create_models(config, train.num_classes)
    o = config.optim
    batches = InMemoryBatches(train.arrays(("q", "label")), o.batch_size, mesh=mesh,
                              seed=config.seed, what="training motions")
    if reference is None:
        reference = np.asarray(reference_point(train.q, sphere_config(config)))
    state = create_gan_state(models, reference, jax.random.key(config.seed))
    step = make_train_step(models, GANLoss.from_config(config), mesh=mesh)
    loop = LoopConfig.from_config(config, o.num_epochs, desc="Motion3DGAN",
                                  progress_metric="wasserstein")
    hooks = []
    if validation is not None:
        coverage = jax.jit(functools.partial(coverage_l1, models,
                                             cos_clip=config.sphere.cos_clip))
        q, labels = jnp.asarray(validation.q), jnp.asarray(validation.labels)
        key = jax.random.key(config.seed + 1)

        def evaluate(s: GANState) -> dict[str, float]:
            return {"val_coverage_l1": float(coverage(s.gen_params, s.reference, q, labels,
                                                      key))}

        hooks = validation_hooks(config, evaluate, "val_coverage_l1", batches.steps_per_epoch,
                                 workdir)
    state, run = fit(state, step, batches, loop, workdir, hooks=hooks)
    state = jax.device_get(state)
    info = {**run.summary(), "num_params": {"generator": num_params(state.gen_params),
                                            "critic": num_params(state.critic_params)}}
    if hooks and hooks[0].history:
        info["validation"] = hooks[0].history
    return models, state, info
