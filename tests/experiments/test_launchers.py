"""The experiment launchers as a user runs them: flags, required arguments, one short run."""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAUNCHERS = ("s2d.main", "s2d.tables", "motion3dgan.main", "motion3dgan.table3",
             "decoupled.main", "decoupled.tables", "decoupled.full_model")


def _run(args, timeout=300):
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("launcher", LAUNCHERS)
def test_launcher_requires_config_and_workdir(launcher):
    out = _run([f"experiments.{launcher}"])
    assert out.returncode != 0
    assert "Flag --config must have a value other than None" in out.stderr


def test_motion3dgan_main_trains_and_samples(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    workdir = tmp_path / "run"
    out = _run(["experiments.motion3dgan.main", "--config=jaxface/configs/motion3dgan.py:test",
                f"--config.data_dir={data_dir}", f"--workdir={workdir}"])
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout)
    assert summary["steps"] == 36 // 8  # one epoch of the 36 training motions, batch 8
    results = json.loads((workdir / "results.json").read_text())
    # Generated SRVFs lie on the unit sphere; agreement is a fraction of the 24 samples.
    assert abs(results["sample_norm"]["min"] - 1.0) < 1e-4
    assert abs(results["sample_norm"]["max"] - 1.0) < 1e-4
    assert round(summary["nearest_label_agreement"] * 24) == summary["nearest_label_agreement"] * 24
    assert (workdir / "samples.npz").is_file()
