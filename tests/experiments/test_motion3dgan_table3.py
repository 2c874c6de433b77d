"""The Table 3 command end to end on the tiny procedural set (a few epochs of every model)."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


@pytest.mark.parametrize("split_rule", ["held_out_subjects"])
def test_table3_command_writes_the_table(tiny_faces4d, tmp_path, split_rule):
    data_dir, _ = tiny_faces4d
    workdir, results = tmp_path / "run", tmp_path / "results"
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    cmd = [
        sys.executable, "-m", "experiments.motion3dgan.table3",
        "--config=jaxface/configs/motion3dgan.py:test", f"--config.data_dir={data_dir}",
        f"--config.split_rule={split_rule}", f"--workdir={workdir}", f"--results={results}",
        "--name=subjects", "--config.classifier.num_epochs=40",
        "--config.validation.fraction=0.1", "--config.validation.every_epochs=5",
    ]
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "| Gen-LM |" in out.stdout and "| Det-LM |" in out.stdout
    table = json.loads((results / "subjects.json").read_text())
    assert (results / "subjects.md").read_text() == (workdir / "table3.md").read_text()
    # Three tiny subjects: the last one (24 motions, 2 per label) is the test set.
    assert table["split_rule"] == split_rule
    assert table["num_test"] == 24 and table["num_train"] + table["num_validation"] == 48
    assert table["num_validation"] > 0  # 10% of the training sequences, evaluated while training
    assert len(table["classifier"]["validation"]) == 40 // 5
    # A classifier trained for 40 epochs learns the 12 labels (chance: 8.3%) and recognises the
    # unseen subject's ground-truth motions well above chance; the measurements are finite.
    assert table["classifier_train_accuracy"] > 25.0
    assert table["accuracy"]["Gen-LM"]["GT"] > 25.0
    for row in ("Gen-LM", "Det-LM"):
        for method in ("GT", "Motion3DGAN", "LSTM"):
            assert 0.0 <= table["accuracy"][row][method] <= 100.0
        for method in ("Motion3DGAN", "LSTM"):
            assert 0.0 < table["fid"][row][method] < 1e3
    assert 0.0 < table["fid_gt_train_vs_test"] < 1e3
    assert len(table["label_intensity"]) == 12 and min(table["label_intensity"]) > 0.0
    assert set(table["stage_wall_s"]) >= {"s2d", "gan", "lstm", "classifier", "det_lm"}
