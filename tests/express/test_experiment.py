"""The 4D expression experiment end to end on the tiny set, the trained run loaded back, the
identity split, and the ``jaxface express`` command."""

import json
import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs import express
from jaxface.express import (
    Phases,
    load_expression_data,
    load_expression_model,
    run_experiment,
    subject_split,
)


def _read_json(path):
    with open(path) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def config(tiny_basic6):
    c = express.get_config("test")
    c.data_dir = tiny_basic6[0]
    return c


@pytest.fixture(scope="module")
def experiment(config, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("express"))
    return workdir, run_experiment(config, workdir)


def test_subject_split_is_identity_independent_and_seeded():
    names = [f"s{i:02d}" for i in range(20)]
    train, val, test = subject_split(names * 3, 0.15, 0.1, seed=4)
    assert len(test) == 3 and len(val) == 2 and len(train) == 15
    assert not set(train) & set(test) and not set(val) & set(test) and not set(val) & set(train)
    assert sorted(train + val + test) == names
    assert subject_split(names, 0.15, 0.1, seed=4) == (train, val, test)
    assert subject_split(names, 0.15, 0.1, seed=5) != (train, val, test)
    with pytest.raises(ValueError, match="none for training"):
        subject_split(["a", "b"], 0.5, 0.5, seed=0)
    with pytest.raises(ValueError, match="test_fraction"):
        subject_split(names, 1.0, 0.0, seed=0)


def test_data_has_signals_of_the_real_motion(config):
    data = load_expression_data(config)
    train, test = data.train, data.test
    assert not set(train.subjects) & set(test.subjects)
    assert train.displacements.shape[1] == train.num_frames == train.signal.shape[1]
    for seqs in (train, test):
        # one active channel per sequence, the sequence's label, scaled by its intensity
        active = np.abs(seqs.signal).sum(axis=1) > 0
        assert (active.sum(axis=1) <= 1).all()
        peak = seqs.signal.max(axis=(1, 2))
        np.testing.assert_allclose(peak[peak > 0], seqs.scale[peak > 0], rtol=1e-6)
        assert np.all(seqs.signal[seqs.mask == 0] == 0)
        np.testing.assert_allclose(seqs.displacements[:, 0], 0.0)


def test_experiment_writes_the_tables(experiment):
    workdir, results = experiment
    for name in ("results.json", "results.md", "per_frame_error.png", "intensity_following.png",
                 "interpolation.png", "error_maps.png", "proposed", "baseline", "classifier_0"):
        assert os.path.exists(os.path.join(workdir, name)), name
    t2 = results["table2"]
    for model in ("proposed", "baseline"):
        assert np.isfinite(list(t2[model].values())).all()
        assert t2[model]["total"] > 0
    assert set(results["table3"]) == {"real", "proposed", "baseline"}
    for scores in results["table3"].values():
        assert all(0.0 <= v <= 1.0 for row, vals in scores.items() if row != "accuracy"
                   for v in vals)
    follow = results["intensity_following"]
    assert all(len(v["r"]) == 3 and np.isfinite(v["r"]).all() for v in follow.values())
    with open(os.path.join(workdir, "results.md")) as f:
        md = f.read()
    assert "| proposed (paper, 4DFAB) |" in md and "Table 3" in md
    with open(os.path.join(workdir, "results.json")) as f:
        assert json.load(f)["table2"] == t2


def test_rerun_resumes_without_training_again(experiment, config):
    workdir, first = experiment
    again = run_experiment(config, workdir)
    assert again["training"]["proposed"]["steps"] == first["training"]["proposed"]["steps"]
    np.testing.assert_allclose(again["table2"]["proposed"]["total"],
                               first["table2"]["proposed"]["total"], rtol=1e-5)


def test_loaded_model_animates_a_neutral_face(experiment):
    workdir, _ = experiment
    model = load_expression_model(os.path.join(workdir, "proposed"))
    neutral = model.info.vertices
    name = model.label_names[0]
    frames = model.animate(neutral, name, intensity=0.7, phases=Phases(2, 5, 8, 11),
                           num_frames=14)
    assert frames.shape == (14, model.num_vertices, 3) and np.isfinite(frames).all()
    with pytest.raises(ValueError, match="unknown expression"):
        model.animate(neutral, "nope")
    with pytest.raises(ValueError, match="not both"):
        model.animate(neutral, name, phases=Phases(0, 1, 2, 3), curve=np.zeros(4))
    from jaxface.mesh.errors import MeshError
    with pytest.raises(MeshError, match="expected a neutral face"):
        model.animate(neutral[:-1], name)
    baseline = load_expression_model(os.path.join(workdir, "baseline"))
    assert baseline.info.basis is not None
    assert baseline.animate(neutral, name).shape[1:] == (model.num_vertices, 3)


def test_express_command(experiment, tmp_path, capsys):
    workdir, _ = experiment
    run = os.path.join(workdir, "proposed")
    model = load_expression_model(run)
    name = model.label_names[-1]
    out = str(tmp_path / "out")
    assert main(["express", "--model", run, "--expression", name, "--intensity", "0.8",
                 "--onset", "2", "--apex", "6", "--offset", "9", "--out", out, "--no-gif"]) == 0
    meta = _read_json(os.path.join(out, "expression.json"))
    assert meta["num_frames"] == model.info.num_frames and np.isfinite(meta["correlation"])
    assert len(os.listdir(os.path.join(out, "sequence"))) == meta["num_frames"]
    for f in ("expression.glb", "preview.png", "curve.png", "neutral.ply"):
        assert os.path.isfile(os.path.join(out, f)), f
    # a drawn curve sets the length; the neutral face read from a file, in millimetres
    assert main(["express", "--model", run, "--expression", name, "--curve", "0:0,5:1,30:0",
                 "--neutral", os.path.join(out, "neutral.ply"), "--out", str(tmp_path / "o2"),
                 "--no-gif", "--quiet"]) == 0
    assert _read_json(tmp_path / "o2" / "expression.json")["num_frames"] == 31
    capsys.readouterr()
    for argv, message in (
        (["--expression", "nope"], "unknown expression 'nope'"),
        (["--expression", name, "--onset", "3"], "together"),
        (["--expression", name, "--onset", "5", "--apex", "3", "--offset", "9"], "onset <= apex"),
        (["--expression", name, "--curve", "0:0,x"], "not a frame:value"),
        (["--expression", name, "--intensity", "2"], "--intensity"),
    ):
        assert main(["express", "--model", run, "--out", str(tmp_path / "bad"), *argv]) == 2
        assert message in capsys.readouterr().err
        assert not os.path.exists(tmp_path / "bad")
    assert main(["express", "--model", run, "--out", out, "--expression", name]) == 2
    assert "holds earlier results" in capsys.readouterr().err
    assert main(["express", "--model", str(tmp_path), "--expression", name,
                 "--out", str(tmp_path / "o3")]) == 2
    assert "not a trained 4D expression run" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "o3")
