"""One pretrain step: sharded over the data axis, finite, and it moves the encoders."""

import jax
import numpy as np
import pytest

from jaxface.configs.smirk import get_config
from jaxface.data.batches import InMemoryBatches
from jaxface.smirk.train import build_encoder, create_encoder_state, make_train_step
from jaxface.train.metrics import all_finite


def _frames(n=8, size=96, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)
    # a face-sized box of 468 points around the centre
    landmarks = (size / 2 + rng.uniform(-20, 20, size=(n, 468, 2))).astype(np.float32)
    return {"image": images, "landmarks": landmarks}


def test_one_step_is_finite_sharded_and_updates_state(small_model):
    config = get_config("test")
    config.image_size = 32
    encoder = build_encoder(config, small_model)
    batches = InMemoryBatches(_frames(), 8, seed=0, epoch_examples=16)
    assert len(batches.mesh.devices.ravel()) == 8
    state = create_encoder_state(config, encoder, batches.steps_per_epoch)
    before = jax.device_get(state)
    step = make_train_step(config, encoder, small_model, batches.mesh)
    with batches.epoch(0) as it:
        batch = next(iter(it))
    state, metrics = step(state, batch, jax.random.key(0))
    metrics = jax.device_get(metrics)
    assert set(metrics) >= {"loss", "grad_norm", "landmarks", "parameters", "vertices_cm",
                            "regularisers"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics["grad_norm"] > 0
    assert all_finite(state.params) and int(state.step) == 1
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()),
                         state.params, before.params)
    assert max(jax.tree.leaves(moved)) > 0
    stats = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()),
                         state.batch_stats, before.batch_stats)
    assert max(jax.tree.leaves(stats)) > 0  # BatchNorm ran in training mode


def test_imagenet_weights_are_read_from_the_named_files(small_model, tmp_path):
    from jaxface.smirk.train import initial_variables

    config = get_config("test")
    config.image_size = 32
    config.model.imagenet_weights = {"small": str(tmp_path / "missing.npz"), "large": ""}
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        initial_variables(config, build_encoder(config, small_model))
