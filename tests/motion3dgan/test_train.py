"""Motion3DGAN training: the jitted WGAN-GP step, sharding, the loop's resume and its fallback
from a damaged checkpoint."""

import json
import os

import jax
import numpy as np
import pytest

from jaxface.motion3dgan.experiment import train_and_evaluate
from jaxface.motion3dgan.train import (
    create_gan_state,
    create_models,
    make_train_step,
    train_gan,
)
from jaxface.sharding import data_mesh, replicate, shard_batch


def _setup(config, tiny_motions):
    _, _, train, _ = tiny_motions
    models = create_models(config, train.num_classes)
    state = create_gan_state(models, train.q.mean(0), jax.random.key(0))
    batch = train.batch(np.arange(8))
    return models, state, {"q": batch["q"], "label": batch["label"]}


def _step(models, config, **kwargs):
    return make_train_step(
        models, n_critic=config.optim.n_critic, gp_weight=config.loss.gp_weight,
        alpha_adv=config.loss.alpha_adv, alpha_rec=config.loss.alpha_rec, **kwargs,
    )


def _leaves_differ(a, b):
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return any(not np.allclose(x, y) for x, y in pairs)


@pytest.mark.multidevice
def test_step_updates_both_networks_compiles_once_and_shards(config, tiny_motions,
                                                            count_traces):
    models, state, batch = _setup(config, tiny_motions)
    host = jax.device_get(state)
    step = _step(models, config, donate=False)
    rng = jax.random.key(1)
    new, metrics = step(state, batch, rng)
    for name in ("critic_loss", "gradient_penalty", "wasserstein", "gen_loss", "gen_adv", "rec_l1",
                 "critic_grad_norm", "gen_grad_norm"):
        assert np.isfinite(float(metrics[name])), name
    assert float(metrics["gradient_penalty"]) >= 0.0
    assert int(new.step) == 1
    assert _leaves_differ(new.gen_params, host.gen_params)
    assert _leaves_differ(new.critic_params, host.critic_params)
    # The n_critic critic updates happened inside the one step (Adam counts them).
    assert int(new.critic_opt_state[0].count) == config.optim.n_critic
    assert int(new.gen_opt_state[0].count) == 1
    np.testing.assert_array_equal(new.reference, host.reference)
    with count_traces() as traces:
        new2, _ = step(new, batch, rng)
        jax.block_until_ready(step(new2, batch, rng))
    assert traces.count == 0  # the first call's program serves the later ones

    # The same step with the batch sharded over 8 devices and the state replicated.
    mesh = data_mesh()
    assert mesh.devices.size == 8
    sharded_step = _step(models, config, mesh=mesh)
    sharded, sharded_metrics = sharded_step(replicate(host, mesh), shard_batch(batch, mesh), rng)
    assert sharded.gen_params["fc"]["kernel"].sharding.is_fully_replicated
    for name in metrics:
        np.testing.assert_allclose(float(sharded_metrics[name]), float(metrics[name]),
                                   rtol=2e-4, atol=2e-5, err_msg=name)
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(new), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-4, atol=2e-5)


def test_train_resumes_and_reports(config, tiny_motions, tmp_path):
    _, _, train, _ = tiny_motions
    workdir = str(tmp_path / "gan")
    config.optim.num_epochs = 1
    _, state, info = train_gan(config, workdir, train)
    steps_one = info["steps"]
    assert steps_one == len(train) // config.optim.batch_size
    config.optim.num_epochs = 2
    _, state2, info2 = train_gan(config, workdir, train)
    assert info2["steps"] == 2 * steps_one
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == list(range(1, 2 * steps_one + 1))  # no step logged twice
    np.testing.assert_array_equal(state2.reference, state.reference)

    # A third run with a corrupted latest checkpoint falls back to the newest intact one.
    latest = os.path.join(workdir, "checkpoints", str(2 * steps_one))
    for root, _, files in os.walk(latest):
        for name in files:
            if not name.startswith("_CHECKPOINT_METADATA"):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    config.optim.num_epochs = 3
    _, _, info3 = train_gan(config, workdir, train)
    assert info3["steps"] == 3 * steps_one
    assert os.listdir(os.path.join(workdir, "checkpoints_rejected")) == [str(2 * steps_one)]


def test_train_and_evaluate_writes_samples(config, tmp_path):
    res = train_and_evaluate(config, str(tmp_path / "run"))
    assert res["train_motions"] == 36 and res["test_motions"] == 36
    assert abs(res["sample_norm"]["min"] - 1.0) < 1e-4 and abs(res["sample_norm"]["max"] - 1) < 1e-4
    assert res["steps"] == 36 // config.optim.batch_size
    with np.load(tmp_path / "run" / "samples.npz") as z:
        assert z["q"].shape == (12 * config.samples_per_label, 30, 204)
    assert os.path.exists(tmp_path / "run" / "results.json")


def test_validation_coverage_and_plateau_stop(config, tiny_motions, tmp_path):
    from jaxface.motion3dgan.data import validation_split
    from jaxface.motion3dgan.train import coverage_l1

    _, _, train, _ = tiny_motions
    fit_part, held = validation_split(train, 0.25, seed=0)
    assert len(fit_part) + len(held) == len(train)
    # Whole source sequences are held out: no validation frame is a training frame.
    assert len(set(held.sequence)) == round(0.25 * len(set(train.sequence)))
    assert not set(held.sequence) & set(fit_part.sequence)
    models = create_models(config, train.num_classes)
    state = create_gan_state(models, train.q.mean(0), jax.random.key(0))
    key = jax.random.key(1)
    # More generated samples per real motion can only bring the nearest one closer.
    few = coverage_l1(models, state.gen_params, state.reference, held.q, held.labels, key, 2)
    many = coverage_l1(models, state.gen_params, state.reference, held.q, held.labels, key, 8)
    assert 0.0 < float(many) <= float(few)
    config.optim.num_epochs = 30
    config.validation.patience = 1
    config.validation.min_delta = 10.0  # no evaluation can improve by 10: stops at the second
    _, _, info = train_gan(config, str(tmp_path), fit_part, validation=held)
    assert info["stopped_early"] and len(info["validation"]) == 2
    assert info["steps"] == 2 * (len(fit_part) // config.optim.batch_size)
