"""The core stage's driver: two sharded steps from given encoders (only the expression encoder
and the generator move), resumed, read back by load_encoders (a run folder, an experiment
folder, a packed copy); the results table's core rows."""

import json
import os

import jax
import numpy as np
import pytest

from jaxface.configs.smirk import get_config
from jaxface.smirk.core import create_core_state
from jaxface.smirk.core_train import core_images, restore_core, train_core
from jaxface.smirk.experiment import results_markdown
from jaxface.smirk.frames import FaceFrames
from jaxface.smirk.run import load_encoders, pack_encoders
from jaxface.smirk.train import TrainedEncoders, build_encoder, initial_variables


def _frames(n=8, size=96, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 255, size=(n, size, size, 3), dtype=np.uint8)
    landmarks = (size / 2 + rng.uniform(-20, 20, size=(n, 468, 2))).astype(np.float32)
    scores = rng.uniform(size=(n, 52)).astype(np.float32)
    return FaceFrames(images, landmarks, scores, tuple(f"random#{i}" for i in range(n)))


def _max_diff(a, b):
    return max(jax.tree.leaves(jax.tree.map(
        lambda x, y: float(np.abs(np.asarray(x, np.float64) - np.asarray(y)).max()), a, b)))


@pytest.fixture(scope="module")
def core_run(small_model, tmp_path_factory):
    config = get_config("test")
    config.image_size = 32
    config.model.num_shape, config.model.num_expression = 8, 12  # as small_model
    encoder = build_encoder(config, small_model)
    start = TrainedEncoders(encoder, jax.device_get(initial_variables(config, encoder)), 32)
    experiment = tmp_path_factory.mktemp("experiment")
    workdir = str(experiment / "core")
    refined, info = train_core(config, workdir, small_model, _frames(), start)
    return config, start, refined, info, str(experiment), workdir


def test_two_core_steps_train_only_the_expression_encoder_and_generator(core_run,
                                                                         small_model):
    # Two sharded steps (8 CPU devices): an even one (encoder frozen in the cycle), an odd one.
    config, start, refined, info, _, workdir = core_run
    assert jax.device_count() == 8
    assert info["steps"] == 2  # 1 epoch of 16 frames, batches of 8
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = [json.loads(line) for line in f]
    assert [r["step"] for r in records] == [1, 2]
    for r in records:
        assert all(np.isfinite(v) for v in r.values() if isinstance(v, float)), r
        assert r["cycle_generator_grad_norm"] > 0 and r["encoder_grad_norm"] > 0
    assert info["generator_params"] > 0 and info["num_params"] > 0
    for kind in ("params", "batch_stats"):
        for name in ("pose_encoder", "shape_encoder"):
            assert _max_diff(refined.variables[kind][name], start.variables[kind][name]) == 0
        assert _max_diff(refined.variables[kind]["expression_encoder"],
                         start.variables[kind]["expression_encoder"]) > 0
    state, _, generator = restore_core(workdir, config, small_model)
    initial = create_core_state(config, generator, start.variables, 1)
    assert _max_diff(state.generator_params, initial.generator_params) > 0
    assert _max_diff(state.batch_stats["generator"], initial.batch_stats["generator"]) > 0
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.generator_params))
    with open(os.path.join(workdir, "config.json")) as f:
        assert json.load(f)["stage"] == "core"


def test_a_second_call_resumes_without_training(core_run, small_model):
    config, start, refined, info, _, workdir = core_run
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        records = f.read()
    again, info2 = train_core(config, workdir, small_model, _frames(), start)
    assert info2["steps"] == info["steps"] == 2
    assert _max_diff(again.variables, refined.variables) == 0
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        assert f.read() == records


def test_load_encoders_reads_the_core_run(core_run, small_model, tmp_path):
    _, _, refined, _, experiment, workdir = core_run
    images = np.random.default_rng(1).uniform(size=(2, 32, 32, 3)).astype(np.float32)
    want = refined(images)
    # the core run folder, and an experiment folder holding it (core stage preferred)
    for path in (workdir, experiment):
        loaded, model, config = load_encoders(path)
        assert config.stage == "core" and model.num_shape == small_model.num_shape
        got = loaded(images)
        for a, b in zip(got, want, strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    manifest = pack_encoders(workdir, tmp_path / "packed")
    assert manifest["dtype"] == "float16"
    with open(tmp_path / "packed" / "config.json") as f:
        assert not {"stage", "core"} & set(json.load(f))  # the packed format of a pretrain run
    packed, _, _ = load_encoders(tmp_path / "packed")
    np.testing.assert_allclose(np.asarray(packed(images).expression),
                               np.asarray(want.expression), atol=2e-2)


def test_core_images_are_the_generator_outputs_in_range(core_run, small_model):
    config, _, _, _, _, workdir = core_run
    state, encoder, generator = restore_core(workdir, config, small_model)
    rng = np.random.default_rng(2)
    images = rng.uniform(size=(2, 32, 32, 3)).astype(np.float32)
    landmarks = rng.uniform(-0.5, 0.5, size=(2, 468, 2)).astype(np.float32)
    out = core_images(config, small_model, state, encoder, generator, images, landmarks,
                      jax.random.key(0))
    for name in ("render", "masked", "output"):
        assert out[name].shape == (2, 32, 32, 3) and np.isfinite(out[name]).all(), name
    assert 0 <= out["output"].min() and out["output"].max() <= 1  # sigmoid


def _method(x):
    return {"vertex_error_mm": x, "expression_rmse": x / 10, "jaw_open_error_deg": x,
            "eyelid_error": x / 100}


def _real(x):
    return {"landmark_error_iod_pct": x, "blendshape_mae": x / 100,
            "blendshape_mae_mouth_jaw_blink": x / 50, "renders_with_a_face": 3}


def test_results_markdown_shows_the_core_rows():
    results = {"num_synthetic": 4, "num_real_frames": 3, "real_frames": ["a.png"],
               "synthetic": {"encoders": _method(6.5), "landmark_fit": _method(4.25)},
               "real": {"encoders": _real(7.5), "landmark_fit": _real(0.95)}}
    plain = results_markdown(results)
    assert "| encoders | 6.5 | 0.65 | 6.5 | 0.065 |" in plain
    assert "core stage" not in plain
    results["synthetic"]["core"] = _method(5.5)
    results["real"]["core"] = _real(3.5)
    lines = results_markdown(results).splitlines()
    syn = [line for line in lines if line.startswith("| encoders") or line.startswith("| land")]
    assert syn == [
        "| encoders (pretrain stage) | 6.5 | 0.65 | 6.5 | 0.065 |",
        "| encoders (core stage) | 5.5 | 0.55 | 5.5 | 0.055 |",
        "| landmark fit (baseline) | 4.25 | 0.425 | 4.25 | 0.0425 |",
        "| encoders (pretrain stage) | 7.5 | 0.075 | 0.15 | 3 / 3 |",
        "| encoders (core stage) | 3.5 | 0.035 | 0.07 | 3 / 3 |",
        "| landmark fit (baseline) | 0.95 | 0.0095 | 0.019 | 3 / 3 |",
    ]
