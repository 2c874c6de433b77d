"""Training the decoupled face GAN: state, codes, losses and one jitted WGAN-GP step.

Paper §4.3, with the WGAN-GP adversarial loss the paper adopts (§3):

* critic (eq. 6): ``E[D(fake)] - E[D(real)] + lambda_gp * GP + lambda_c (L_id + L_exp)`` with
  the class-weighted cross-entropies of the identity and expression heads on the *labelled real*
  meshes (unlabelled ones are ignored);
* generator (eq. 8): ``-E[D(fake)] + a_id L_id + a_exp L_exp + b_id F_id + b_exp F_exp
  + c L_lap``: classification of the fakes made from the fixed code of a label, the feature loss
  of pairs sharing a code, and the cotangent-Laplacian regulariser on the displacements.

Codes (:func:`sample_codes`). One identity code and one expression code is drawn per label at
initialisation and kept fixed (they are part of :class:`GANState`). Train steps alternate: even
steps draw *labelled identity codes* (the fixed code of a label drawn with the labels' frequency)
with *unlabelled expression codes* (``N(0, I)``, one per pair of samples), odd steps the reverse.
The classification loss is evaluated for the labelled factor and the feature loss for the
unlabelled one (whose code the two samples of a pair share). Noise is drawn per sample.

One call of ``train_step(state, batch, rng) -> (state, metrics)`` makes ``n_critic`` critic
updates in a ``lax.scan``, each on its own ``batch_size`` real meshes of the ``n_critic x
batch_size`` batch and fresh fakes, then one generator update. Instance noise (Gaussian, std
``loss.instance_noise``) is added to every image the critic sees. The loss weights are arrays in
the state (:class:`LossWeights`), so the model and its ablations share one compiled step. The
batch is sharded along the ``"data"`` mesh axis and the state replicated
(:func:`jaxface.train.jit_train_step`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.sharding import Mesh

from jaxface.data.batches import InMemoryBatches
from jaxface.decoupled.data import (
    FaceData,
    class_weights,
    label_probabilities,
    training_batches,
)
from jaxface.decoupled.losses import (
    feature_consistency,
    laplacian_regularizer,
    weighted_cross_entropy,
)
from jaxface.decoupled.model import FaceGAN, RunTemplate, create_gan, save_template
from jaxface.losses import gradient_penalty, wasserstein_critic_loss, wasserstein_generator_loss
from jaxface.sharding import data_mesh
from jaxface.train import LoopConfig, fit, global_norm, jit_train_step, num_params, store_config

__all__ = [
    "Codes",
    "GANState",
    "LabelStats",
    "LossWeights",
    "Trainer",
    "create_state",
    "critic_loss",
    "generator_loss",
    "label_stats",
    "make_train_step",
    "sample_codes",
    "train_decoupled",
    "train_step",
]


class GANState(struct.PyTreeNode):
    """Everything training updates (and the fixed label codes), as one pytree.

    Attributes:
      step: int32 scalar, train steps done.
      gen_params, critic_params: the networks' parameters.
      gen_opt_state, critic_opt_state: their optimizer states.
      identity_codes: float32 ``[K_id, I]`` the fixed code of every identity label.
      expression_codes: float32 ``[K_exp, E]`` the fixed code of every expression label.
      weights: the loss weights (:class:`LossWeights`).
    """

    step: jax.Array
    gen_params: Any
    critic_params: Any
    gen_opt_state: Any
    critic_opt_state: Any
    identity_codes: jax.Array
    expression_codes: jax.Array
    weights: LossWeights


@functools.lru_cache(maxsize=8)
def _initializers(generator, critic):
    """The jitted ``init`` of both networks (cached per architecture: modules compare by value)."""
    return (jax.jit(lambda *a: generator.init(*a)["params"]),
            jax.jit(lambda *a: critic.init(*a)["params"]))


def create_state(gan: FaceGAN, seed: int, weights: LossWeights) -> GANState:
    """Initialises both networks, their optimizers and the fixed label codes from ``seed``.

    The initialisation draws its random numbers with JAX's ``rbg`` generator: Flax's default
    threefry generator compiles one large program per parameter shape (tens of seconds for the
    critic on a CPU), ``rbg`` one small one.
    """
    k_gen, k_critic, k_id, k_exp = jax.random.split(jax.random.key(int(seed), impl="rbg"), 4)
    zeros = functools.partial(jnp.zeros, dtype=jnp.float32)
    init_generator, init_critic = _initializers(gan.generator, gan.critic)
    gen_params = init_generator(k_gen, zeros((2, gan.identity_dim)),
                                zeros((2, gan.expression_dim)), zeros((2, gan.noise_dim)))
    critic_params = init_critic(k_critic, zeros((2, *gan.mapping.mask.shape, 3)))
    return GANState(
        step=jnp.zeros((), jnp.int32),
        gen_params=gen_params,
        critic_params=critic_params,
        gen_opt_state=gan.gen_tx.init(gen_params),
        critic_opt_state=gan.critic_tx.init(critic_params),
        identity_codes=jax.random.normal(k_id, (gan.num_identities, gan.identity_dim)),
        expression_codes=jax.random.normal(k_exp, (gan.num_expressions, gan.expression_dim)),
        weights=weights,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class LabelStats:
    """Class weights of the classification losses and the labels' frequencies (numpy).

    Attributes:
      identity_weights, expression_weights: float32 ``[K]`` (:func:`class_weights`).
      identity_probs, expression_probs: float32 ``[K]`` frequencies of the labelled training
        meshes, from which the labels of the generator's labelled codes are drawn.
    """

    identity_weights: np.ndarray
    expression_weights: np.ndarray
    identity_probs: np.ndarray
    expression_probs: np.ndarray


def label_stats(data: FaceData, *, balance: bool = True) -> LabelStats:
    """The :class:`LabelStats` of the training meshes' labels."""
    t = data.train
    return LabelStats(
        identity_weights=class_weights(t.identity, data.num_identities, balance=balance),
        expression_weights=class_weights(t.expression, data.num_expressions, balance=balance),
        identity_probs=label_probabilities(t.identity, data.num_identities),
        expression_probs=label_probabilities(t.expression, data.num_expressions),
    )


class LossWeights(struct.PyTreeNode):
    """The loss weights of a train step, float32 scalars carried in the state (see the module
    docstring).

    They are arrays rather than constants of the compiled step, so that the model and its
    ablations (which differ only in weights) share one compiled program, and a checkpoint
    records the objective it was trained with (a resumed run keeps the checkpoint's weights).

    Attributes:
      gp: ``lambda_gp`` of the gradient penalty.
      critic_classification: ``lambda_c`` of eq. 6.
      classification_identity, classification_expression: ``a_id``, ``a_exp`` of eq. 8.
      feature_identity, feature_expression: ``b_id``, ``b_exp``.
      laplacian: ``c``.
      classify_identity, classify_expression: 1 where the classifier exists, 0 to switch it off
        entirely (its critic and generator classification losses and the feature loss on its
        features): the paper's one-classifier ablations.
      instance_noise: std of the noise added to the critic's input images (scaled units).
    """

    gp: jax.Array
    critic_classification: jax.Array
    classification_identity: jax.Array
    classification_expression: jax.Array
    feature_identity: jax.Array
    feature_expression: jax.Array
    laplacian: jax.Array
    classify_identity: jax.Array
    classify_expression: jax.Array
    instance_noise: jax.Array

    @classmethod
    def create(cls, **weights: float) -> LossWeights:
        """Weights from keywords (every field; booleans become 0/1)."""
        names = [f.name for f in dataclasses.fields(cls)]
        missing = sorted(set(names) - set(weights))
        unknown = sorted(set(weights) - set(names))
        if missing or unknown:
            raise ValueError(f"loss weights: missing {missing}, unknown {unknown}")
        return cls(**{k: jnp.asarray(float(weights[k]), jnp.float32) for k in names})

    @classmethod
    def from_config(cls, config) -> LossWeights:
        """The weights of a config's ``loss`` block."""
        lc = config.loss
        return cls.create(
            gp=lc.gp_weight, critic_classification=lc.critic_classification,
            classification_identity=lc.classification_identity,
            classification_expression=lc.classification_expression,
            feature_identity=lc.feature_identity, feature_expression=lc.feature_expression,
            laplacian=lc.laplacian, classify_identity=bool(lc.classify_identity),
            classify_expression=bool(lc.classify_expression), instance_noise=lc.instance_noise,
        )


class Codes(NamedTuple):
    """One batch of generator inputs.

    Attributes:
      z_id: float32 ``[B, I]``; z_exp: float32 ``[B, E]``; noise: float32 ``[B, Z]``.
      identity: int32 ``[B]`` label of the fixed identity code (meaningful when
        ``identity_labelled``); expression: int32 ``[B]`` likewise.
      identity_labelled: bool scalar: identity codes are labelled (expression codes are free and
        shared by pairs), else the reverse.
    """

    z_id: jax.Array
    z_exp: jax.Array
    noise: jax.Array
    identity: jax.Array
    expression: jax.Array
    identity_labelled: jax.Array


def sample_codes(gan: FaceGAN, state: GANState, stats: LabelStats, key: jax.Array,
                 batch_size: int, identity_labelled: jax.Array) -> Codes:
    """Draws a batch of codes (see the module docstring); ``batch_size`` is even."""
    k_id, k_exp, k_fid, k_fexp, k_noise = jax.random.split(key, 5)
    half = batch_size // 2
    identity = jax.random.categorical(k_id, jnp.log(jnp.asarray(stats.identity_probs)),
                                      shape=(batch_size,))
    expression = jax.random.categorical(k_exp, jnp.log(jnp.asarray(stats.expression_probs)),
                                        shape=(batch_size,))
    free_id = jnp.repeat(jax.random.normal(k_fid, (half, gan.identity_dim)), 2, axis=0)
    free_exp = jnp.repeat(jax.random.normal(k_fexp, (half, gan.expression_dim)), 2, axis=0)
    return Codes(
        z_id=jnp.where(identity_labelled, state.identity_codes[identity], free_id),
        z_exp=jnp.where(identity_labelled, free_exp, state.expression_codes[expression]),
        noise=jax.random.normal(k_noise, (batch_size, gan.noise_dim)),
        identity=identity.astype(jnp.int32),
        expression=expression.astype(jnp.int32),
        identity_labelled=jnp.asarray(identity_labelled),
    )


def _noisy(images: jax.Array, key: jax.Array, std: jax.Array) -> jax.Array:
    return images + std * jax.random.normal(key, images.shape, images.dtype)


def critic_loss(critic_params, gan: FaceGAN, real_images, fake_images, identity, expression,
                stats: LabelStats, weights: LossWeights, key: jax.Array):
    """Eq. 6 with WGAN-GP: ``W + GP + lambda_c (L_id + L_exp)`` and its parts.

    Args:
      critic_params: critic parameters.
      gan: the networks.
      real_images, fake_images: float32 ``[B, H, W, 3]`` (instance noise already added).
      identity, expression: int32 ``[B]`` labels of the real meshes (``-1``: unlabelled).
      stats: class weights.
      weights: the loss weights.
      key: key of the penalty's interpolates.

    Returns:
      ``(total, (wasserstein term, penalty, identity CE, expression CE))``.
    """
    b = real_images.shape[0]
    out = gan.critique(critic_params, jnp.concatenate([real_images, fake_images]))
    w = wasserstein_critic_loss(out.score[:b], out.score[b:])
    gp = gradient_penalty(lambda x: gan.critique(critic_params, x).score, real_images,
                          fake_images, key, weight=weights.gp)
    ce_id = weighted_cross_entropy(out.identity_logits[:b], identity, stats.identity_weights)
    ce_exp = weighted_cross_entropy(out.expression_logits[:b], expression,
                                    stats.expression_weights)
    cls = weights.classify_identity * ce_id + weights.classify_expression * ce_exp
    return w + gp + weights.critic_classification * cls, (w, gp, ce_id, ce_exp)


def generator_loss(gen_params, gan: FaceGAN, critic_params, codes: Codes, stats: LabelStats,
                   weights: LossWeights, key: jax.Array):
    """Eq. 8 and its parts (see the module docstring).

    Returns:
      ``(total, dict of adv, cls_identity, cls_expression, feat_identity, feat_expression,
      laplacian)``; the classification and feature terms are reported whether or not this
      step's alternation counts them.
    """
    d = gan.displacements(gen_params, codes.z_id, codes.z_exp, codes.noise)
    out = gan.critique(critic_params, _noisy(gan.images(d), key, weights.instance_noise))
    parts = {
        "adv": wasserstein_generator_loss(out.score),
        "cls_identity": weighted_cross_entropy(out.identity_logits, codes.identity,
                                               stats.identity_weights),
        "cls_expression": weighted_cross_entropy(out.expression_logits, codes.expression,
                                                 stats.expression_weights),
        "feat_identity": feature_consistency(out.identity_features),
        "feat_expression": feature_consistency(out.expression_features),
        "laplacian": laplacian_regularizer(d, gan.laplacian),
    }
    on_id = codes.identity_labelled.astype(jnp.float32)  # labelled identity, free expression
    on_exp = 1.0 - on_id
    w = weights
    total = (parts["adv"] + w.laplacian * parts["laplacian"]
             + w.classify_identity * (
                 on_id * w.classification_identity * parts["cls_identity"]
                 + on_exp * w.feature_identity * parts["feat_identity"])
             + w.classify_expression * (
                 on_exp * w.classification_expression * parts["cls_expression"]
                 + on_id * w.feature_expression * parts["feat_expression"]))
    return total, parts


def _critic_update(gan: FaceGAN, stats: LabelStats, state: GANState, identity_labelled, carry,
                   inputs):
    """One critic update on its own real meshes and fresh fakes (a ``lax.scan`` body)."""
    params, opt_state = carry
    vertices, identity, expression, key = inputs
    k_codes, k_real, k_fake, k_gp = jax.random.split(key, 4)
    codes = sample_codes(gan, state, stats, k_codes, vertices.shape[0], identity_labelled)
    fake = gan.displacements(state.gen_params, codes.z_id, codes.z_exp, codes.noise)
    std = state.weights.instance_noise
    real_images = _noisy(gan.images(gan.scaled(vertices)), k_real, std)
    fake_images = _noisy(gan.images(jax.lax.stop_gradient(fake)), k_fake, std)
    (total, (w, gp, ce_id, ce_exp)), grads = jax.value_and_grad(critic_loss, has_aux=True)(
        params, gan, real_images, fake_images, identity, expression, stats, state.weights, k_gp)
    updates, opt_state = gan.critic_tx.update(grads, opt_state, params)
    metrics = {"critic_loss": total, "wasserstein": -w, "gradient_penalty": gp,
               "critic_cls_identity": ce_id, "critic_cls_expression": ce_exp,
               "critic_grad_norm": global_norm(grads)}
    return (optax.apply_updates(params, updates), opt_state), metrics


def _split_critic_batches(x: jax.Array, n_critic: int) -> jax.Array:
    """``[n_critic * B, ...] -> [n_critic, B, ...]``: update ``k`` takes rows ``k, k + n, ...``
    (each device's contiguous shard holds its share of every update's rows)."""
    return jnp.swapaxes(x.reshape(x.shape[0] // n_critic, n_critic, *x.shape[1:]), 0, 1)


def train_step(state: GANState, batch: dict[str, jax.Array], rng: jax.Array, *, gan: FaceGAN,
               stats: LabelStats, n_critic: int,
               unroll: bool | int = 1) -> tuple[GANState, dict[str, jax.Array]]:
    """``n_critic`` critic updates, then one generator update.

    The batch holds ``vertices`` float32 ``[n_critic * B, N, 3]`` (metres), ``identity`` and
    ``expression`` int32 ``[n_critic * B]`` (``-1``: unlabelled). ``rng`` is a base key, folded
    with ``state.step``. ``unroll`` is that of the critic ``lax.scan``. Metrics: the critic's
    (means over its updates) ``critic_loss``, ``wasserstein`` (``E[D(real)] - E[D(fake)]``),
    ``gradient_penalty``, ``critic_cls_identity``, ``critic_cls_expression``,
    ``critic_grad_norm``; the generator's ``gen_loss``, ``gen_adv``, ``gen_laplacian``,
    ``gen_grad_norm``, ``gen_cls`` (classification of this step's labelled factor) and
    ``gen_feat`` (feature loss of its free factor); and ``identity_labelled`` (this step's
    alternation: 1 on even steps, so a log every even number of steps sees odd steps only).
    """
    rng = jax.random.fold_in(rng, state.step)
    identity_labelled = state.step % 2 == 0
    n = n_critic
    inputs = (_split_critic_batches(batch["vertices"], n),
              _split_critic_batches(batch["identity"], n),
              _split_critic_batches(batch["expression"], n),
              jax.random.split(jax.random.fold_in(rng, 0), n))
    update = functools.partial(_critic_update, gan, stats, state, identity_labelled)
    (critic_params, critic_opt_state), critic_metrics = jax.lax.scan(
        update, (state.critic_params, state.critic_opt_state), inputs, unroll=unroll)

    k_codes, k_noise = jax.random.split(jax.random.fold_in(rng, 1))
    codes = sample_codes(gan, state, stats, k_codes, inputs[0].shape[1], identity_labelled)
    (gen_loss, parts), grads = jax.value_and_grad(generator_loss, has_aux=True)(
        state.gen_params, gan, critic_params, codes, stats, state.weights, k_noise)
    updates, gen_opt_state = gan.gen_tx.update(grads, state.gen_opt_state, state.gen_params)
    gen_params = optax.apply_updates(state.gen_params, updates)

    metrics = {k: jnp.mean(v) for k, v in critic_metrics.items()}
    # The step's labelled factor is classified, its free factor feature-matched; the other two
    # terms were computed for codes they do not apply to, so they are not reported.
    metrics.update(
        gen_loss=gen_loss, gen_adv=parts["adv"], gen_laplacian=parts["laplacian"],
        gen_cls=jnp.where(identity_labelled, parts["cls_identity"], parts["cls_expression"]),
        gen_feat=jnp.where(identity_labelled, parts["feat_expression"], parts["feat_identity"]),
        gen_grad_norm=global_norm(grads),
        identity_labelled=identity_labelled.astype(jnp.float32))
    return state.replace(step=state.step + 1, gen_params=gen_params, critic_params=critic_params,
                         gen_opt_state=gen_opt_state, critic_opt_state=critic_opt_state), metrics


def make_train_step(
    gan: FaceGAN, stats: LabelStats, *, n_critic: int = 5, unroll: bool | int = 1,
    mesh: Mesh | None = None, donate: bool = True,
) -> Callable[[GANState, dict[str, jax.Array], jax.Array], tuple[GANState, dict]]:
    """The jitted :func:`train_step` (state replicated, batch sharded along ``"data"`` over
    ``mesh`` when given; see :func:`jaxface.train.jit_train_step`).

    The loss weights are in the state, so one step serves every weighting of the same networks.

    Raises:
      ValueError: ``n_critic < 1``.
    """
    if n_critic < 1:
        raise ValueError(f"n_critic must be >= 1, got {n_critic}")
    step = functools.partial(train_step, gan=gan, stats=stats, n_critic=int(n_critic),
                             unroll=unroll)
    return jit_train_step(step, mesh=mesh, donate=donate)


@dataclasses.dataclass(frozen=True, eq=False)
class Trainer:
    """What training runs of one dataset and architecture share: the networks, the label
    statistics, the device batches and the compiled step.

    The loss weights live in the state, so the model and its ablations train with one
    :class:`Trainer` (one compilation).

    Attributes:
      gan: the networks.
      stats: class weights and label frequencies.
      batches: the training meshes on the devices.
      step: the jitted train step.
    """

    gan: FaceGAN
    stats: LabelStats
    batches: InMemoryBatches
    step: Callable

    @classmethod
    def create(cls, config, data: FaceData) -> Trainer:
        """The networks, statistics, batches and step of a config and dataset."""
        mesh = data_mesh()
        batches = training_batches(config, data.train, mesh=mesh)
        gan = create_gan(config, reference=data.reference, faces=data.view.faces,
                         scale=data.scale, num_identities=data.num_identities,
                         num_expressions=data.num_expressions,
                         steps_per_epoch=batches.steps_per_epoch)
        stats = label_stats(data, balance=bool(config.loss.class_balance))
        step = make_train_step(gan, stats, n_critic=config.optim.n_critic,
                               unroll=config.optim.get("unroll", 1), mesh=mesh)
        return cls(gan, stats, batches, step)

    def train(self, config, workdir: str, data: FaceData) -> tuple[GANState, dict[str, Any]]:
        """Trains (or resumes) one run with ``config``'s loss weights and loop.

        ``workdir`` receives ``config.json``, ``template.npz`` and ``labels.json`` beside the
        checkpoints and ``metrics.jsonl``, so the run can be loaded for inference
        (:class:`jaxface.decoupled.inference.DecoupledFaceModel`).

        Returns:
          ``(state on the host, info)``; ``info`` has ``steps``, ``train_time_s``,
          ``examples_per_s``, ``final`` (last logged metrics) and ``num_params``.
        """
        workdir = os.path.abspath(workdir)
        store_config(workdir, config.to_dict())
        save_template(workdir, RunTemplate(data.reference, data.view.faces, data.view.landmarks,
                                           data.scale, data.identity_names,
                                           data.expression_names))
        state = create_state(self.gan, int(config.seed), LossWeights.from_config(config))
        loop = LoopConfig.from_config(config, config.optim.num_epochs, desc="decoupled GAN",
                                      progress_metric="wasserstein")
        state, run = fit(state, self.step, self.batches, loop, workdir)
        state = jax.device_get(state)
        info = {**run.summary(), "num_params": {"generator": num_params(state.gen_params),
                                                "critic": num_params(state.critic_params)}}
        return state, info


def train_decoupled(config, workdir: str, data: FaceData) -> tuple[FaceGAN, GANState, dict]:
    """Trains (or resumes training) the decoupled face GAN on ``data.train`` in ``workdir``
    (see :meth:`Trainer.train`); returns ``(gan, state on the host, info)``."""
    trainer = Trainer.create(config, data)
    state, info = trainer.train(config, workdir, data)
    return trainer.gan, state, info
