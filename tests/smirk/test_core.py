"""One core-stage step: sharded, finite, trains only the expression encoder and the generator;
the perceptual features' weights file."""

import jax
import numpy as np
import pytest

from jaxface.configs.smirk import get_config
from jaxface.data.batches import InMemoryBatches
from jaxface.smirk.core import (
    PerceptualFeatures,
    build_generator,
    create_core_state,
    make_core_step,
    perceptual_variables,
)
from jaxface.smirk.train import build_encoder, initial_variables


def _frames(n=8, size=96, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)
    landmarks = (size / 2 + rng.uniform(-20, 20, size=(n, 468, 2))).astype(np.float32)
    return {"image": images, "landmarks": landmarks}


def _diff(a, b):
    return max(jax.tree.leaves(jax.tree.map(
        lambda x, y: float(np.abs(np.asarray(x) - np.asarray(y)).max()), a, b)), default=0.0)


def test_core_steps_train_only_the_expression_encoder_and_generator(small_model):
    config = get_config("test")
    config.image_size = 32
    encoder = build_encoder(config, small_model)
    generator = build_generator(config)
    batches = InMemoryBatches(_frames(), 8, seed=0, epoch_examples=16)
    assert len(batches.mesh.devices.ravel()) == 8
    state = create_core_state(config, generator, initial_variables(config, encoder),
                              batches.steps_per_epoch)
    step = make_core_step(config, encoder, generator, small_model, batches.steps_per_epoch,
                          batches.mesh)
    with batches.epoch(0) as it:
        batch = next(iter(it))
    history = [jax.device_get(state)]
    for _ in range(2):  # an even step (encoder frozen in the cycle), then an odd one
        state, metrics = step(state, batch, jax.random.key(0))
        metrics = jax.device_get(metrics)
        assert all(np.isfinite(v) for v in metrics.values()), metrics
        assert metrics["cycle_generator_grad_norm"] > 0 and metrics["encoder_grad_norm"] > 0
        history.append(jax.device_get(state))
    assert int(state.step) == 2
    before, after = history[0], history[-1]
    for name in ("pose_encoder", "shape_encoder"):
        assert _diff(after.encoder_params[name], before.encoder_params[name]) == 0
        assert _diff(after.batch_stats["encoder"][name], before.batch_stats["encoder"][name]) == 0
    assert _diff(after.encoder_params["expression_encoder"],
                 before.encoder_params["expression_encoder"]) > 0
    assert _diff(after.generator_params, before.generator_params) > 0
    assert _diff(after.batch_stats["generator"], before.batch_stats["generator"]) > 0
    assert _diff(after.batch_stats["encoder"]["expression_encoder"],
                 before.batch_stats["encoder"]["expression_encoder"]) > 0
    for s in history[1:]:
        assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(s.generator_params))


def test_perceptual_weights_from_a_torchvision_state_dict(tmp_path):
    net = PerceptualFeatures()
    random = perceptual_variables({"weights": "", "seed": 0})
    shapes = [random["params"][f"conv{i}"]["kernel"].shape for i in range(10)]
    assert [s[-1] for s in shapes] == [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    rng = np.random.default_rng(0)
    torch_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]  # the convolutions of features[:23]
    state = {}
    for i, (h, w, cin, cout) in zip(torch_index, shapes, strict=True):
        state[f"features.{i}.weight"] = rng.normal(size=(cout, cin, h, w)).astype(np.float32)
        state[f"features.{i}.bias"] = rng.normal(size=cout).astype(np.float32)
    path = tmp_path / "vgg16.npz"
    np.savez(path, **state)
    loaded = perceptual_variables({"weights": str(path), "seed": 0})
    np.testing.assert_array_equal(loaded["params"]["conv3"]["kernel"],
                                  state["features.7.weight"].transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(loaded["params"]["conv9"]["bias"], state["features.21.bias"])
    feats = net.apply(loaded, np.zeros((1, 16, 16, 3), np.float32))
    assert [f.shape for f in feats] == [(1, 16, 16, 64), (1, 8, 8, 128), (1, 4, 4, 256),
                                        (1, 2, 2, 512)]
    del state["features.19.bias"]
    np.savez(path, **state)
    with pytest.raises(ValueError, match="features.19.bias"):
        perceptual_variables({"weights": str(path), "seed": 0})
    with pytest.raises(FileNotFoundError, match="core.perceptual.weights"):
        perceptual_variables({"weights": str(tmp_path / "none.npz"), "seed": 0})
