"""Training the decoupled face GAN: one jitted step, the code alternation, sharding, resume."""

import dataclasses
import json
import os

import jax
import numpy as np
import optax
import pytest

from jaxface.decoupled.model import create_gan
from jaxface.decoupled.train import (
    LossWeights,
    Trainer,
    create_state,
    label_stats,
    make_train_step,
    sample_codes,
)
from jaxface.sharding import data_mesh, replicate, shard_batch

CRITIC_METRICS = ("critic_loss", "wasserstein", "gradient_penalty", "critic_cls_identity",
                  "critic_cls_expression", "critic_grad_norm")
GEN_METRICS = ("gen_loss", "gen_adv", "gen_cls", "gen_feat", "gen_laplacian", "gen_grad_norm")


def _gan(config, faces, steps_per_epoch=1):
    return create_gan(config, reference=faces.reference, faces=faces.view.faces,
                      scale=faces.scale, num_identities=faces.num_identities,
                      num_expressions=faces.num_expressions, steps_per_epoch=steps_per_epoch)


def _batch(config, faces):
    n = config.optim.n_critic * config.optim.batch_size
    rows = np.random.default_rng(0).choice(len(faces.train), n, replace=False)
    return {k: v[np.sort(rows)] for k, v in faces.train.arrays().items()}


def _differ(a, b):
    return any(not np.allclose(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b),
                                                     strict=True))


def test_codes_alternate_and_come_in_pairs(config, tiny_faces):
    gan = _gan(config, tiny_faces)
    stats = label_stats(tiny_faces)
    state = create_state(gan, 0, LossWeights.from_config(config))
    key = jax.random.key(3)
    for identity_labelled in (True, False):
        c = sample_codes(gan, state, stats, key, 8, identity_labelled)
        assert c.z_id.shape == (8, config.codes.identity_dim)
        labelled, free = (c.z_id, c.z_exp) if identity_labelled else (c.z_exp, c.z_id)
        codes = state.identity_codes if identity_labelled else state.expression_codes
        labels = c.identity if identity_labelled else c.expression
        np.testing.assert_array_equal(np.asarray(labelled), np.asarray(codes)[labels])
        np.testing.assert_array_equal(np.asarray(free[0::2]), np.asarray(free[1::2]))
        assert not np.allclose(free[0], free[2])
        # Labels are drawn from the classes of the training part only (the test part of
        # expression_fold1 holds three expressions that training never sees).
        present = np.bincount(tiny_faces.train.expression[tiny_faces.train.expression >= 0],
                              minlength=13) > 0
        assert present.sum() == 10
        np.testing.assert_array_equal(stats.expression_probs > 0, present)
        assert present[np.asarray(c.expression)].all()


def _counted_sgd():
    # Plain SGD with an update counter. Not Adam: its first update is lr * sign(g) for tiny
    # gradients, so the reduction order's 1e-9 differences between the sharded and unsharded
    # programs would flip whole updates of near-zero-gradient parameters.
    return optax.chain(optax.sgd(1e-2), optax.scale_by_schedule(lambda count: 1.0))


@pytest.mark.multidevice
def test_one_step_updates_both_networks_and_sharded_equals_unsharded(config, tiny_faces,
                                                                      count_traces):
    gan = dataclasses.replace(_gan(config, tiny_faces), gen_tx=_counted_sgd(),
                              critic_tx=_counted_sgd())
    stats = label_stats(tiny_faces)
    host = create_state(gan, 0, LossWeights.from_config(config))
    batch = _batch(config, tiny_faces)
    rng = jax.random.key(1)
    step = make_train_step(gan, stats, n_critic=config.optim.n_critic, donate=False)
    new, metrics = step(host, batch, rng)
    for name in (*CRITIC_METRICS, *GEN_METRICS):
        assert np.isfinite(float(metrics[name])), name
    assert float(metrics["gradient_penalty"]) >= 0 and float(metrics["identity_labelled"]) == 1
    assert int(new.step) == 1
    assert _differ(new.gen_params, host.gen_params)
    assert _differ(new.critic_params, host.critic_params)
    # n_critic critic updates inside the one step; the label codes are fixed.
    assert int(new.critic_opt_state[1].count) == config.optim.n_critic
    assert int(new.gen_opt_state[1].count) == 1
    np.testing.assert_array_equal(new.identity_codes, host.identity_codes)
    with count_traces() as traces:
        _, second = step(new, batch, rng)  # the odd step: labelled expression codes
        jax.block_until_ready(second)
    assert traces.count == 0 and float(second["identity_labelled"]) == 0

    # The same step with the batch sharded over 8 devices and the state replicated.
    mesh = data_mesh()
    assert mesh.devices.size == 8
    sharded_step = make_train_step(gan, stats, n_critic=config.optim.n_critic, mesh=mesh)
    sharded, sharded_metrics = sharded_step(replicate(host, mesh), shard_batch(batch, mesh), rng)
    assert sharded.gen_params["out"]["kernel"].sharding.is_fully_replicated
    for name in metrics:  # sums in another order: near-zero means differ by ~1e-5
        np.testing.assert_allclose(float(sharded_metrics[name]), float(metrics[name]),
                                   rtol=2e-4, atol=1e-4, err_msg=name)
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(new), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


def test_a_decaying_learning_rate_reaches_its_end_for_both_networks(config, tiny_faces):
    # One epoch of one step, decaying linearly to 0: the generator's rate is 0 from its second
    # update on and the critic's from its (n_critic + 1)-th, so a second step changes nothing.
    config.optim.num_epochs = 1
    config.optim.schedule = "linear"
    gan = _gan(config, tiny_faces, steps_per_epoch=1)
    step = make_train_step(gan, label_stats(tiny_faces), n_critic=config.optim.n_critic,
                           donate=False)
    start = create_state(gan, 0, LossWeights.from_config(config))
    first, _ = step(start, _batch(config, tiny_faces), jax.random.key(1))
    assert _differ(first.gen_params, start.gen_params)
    assert _differ(first.critic_params, start.critic_params)
    second, metrics = step(first, _batch(config, tiny_faces), jax.random.key(2))
    assert np.isfinite(float(metrics["gen_loss"]))
    assert not _differ(second.gen_params, first.gen_params)
    assert not _differ(second.critic_params, first.critic_params)
    config.optim.schedule = "exponential"
    with pytest.raises(ValueError, match=r"config.optim \(schedule, final_fraction\): unknown "
                       "learning-rate schedule 'exponential'"):
        _gan(config, tiny_faces)


def test_resumed_training_gives_the_same_parameters(config, tiny_faces, tmp_path):
    config.optim.num_epochs = 2
    faces = tiny_faces
    trainer = Trainer.create(config, faces)
    straight, info = trainer.train(config, str(tmp_path / "straight"), faces)
    steps = info["steps"]
    assert steps == 2 * trainer.batches.steps_per_epoch

    # The same run in two calls: one epoch, then the rest from the checkpoint.
    config.optim.num_epochs = 1
    trainer.train(config, str(tmp_path / "resumed"), faces)
    config.optim.num_epochs = 2
    resumed, info2 = trainer.train(config, str(tmp_path / "resumed"), faces)
    assert info2["steps"] == steps
    for a, b in zip(jax.tree.leaves(resumed), jax.tree.leaves(straight), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    with open(tmp_path / "resumed" / "metrics.jsonl") as f:
        logged = [json.loads(line)["step"] for line in f]
    assert logged == sorted(set(logged)) and logged[-1] == steps  # no step logged twice
    for name in ("config.json", "template.npz", "labels.json"):
        assert os.path.isfile(tmp_path / "resumed" / name)

    # The ablations share the compiled step: only the weights in the state differ.
    ablation = config.copy_and_resolve_references()
    ablation.loss.laplacian = 0.0
    ablated, _ = trainer.train(ablation, str(tmp_path / "ablation"), faces)
    assert float(ablated.weights.laplacian) == 0.0 and float(straight.weights.laplacian) > 0
    assert _differ(ablated.gen_params, straight.gen_params)


def test_loss_weights_name_every_field():
    w = LossWeights.create(**{f.name: 1.0 for f in dataclasses.fields(LossWeights)})
    assert float(w.laplacian) == 1.0
    with pytest.raises(ValueError, match="missing"):
        LossWeights.create(gp=1.0)
