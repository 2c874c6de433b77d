"""End-to-end smoke runs of the S2D-Dec experiment on the tiny procedural set."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from jaxface.configs import s2d
from jaxface.s2d.experiment import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(data_dir, **overrides):
    c = s2d.get_config("test")
    c.data_dir = data_dir
    for k, v in overrides.items():
        node = c
        *path, last = k.split(".")
        for p in path:
            node = node[p]
        node[last] = v
    return c


def test_trains_and_evaluates_then_resumes(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    workdir = str(tmp_path / "run")
    res = train_and_evaluate(_config(data_dir, **{"optim.num_epochs": 1}), workdir)
    assert np.isfinite(res["test"]["mean"]) and res["test"]["count"] > 0
    steps_one = res["steps"]
    assert steps_one > 0
    for name in ("config.json", "metrics.jsonl", "results.json", "test_errors_mm.npy"):
        assert os.path.exists(os.path.join(workdir, name)), name
    # A second run with more epochs continues from the checkpoint rather than restarting.
    res2 = train_and_evaluate(_config(data_dir, **{"optim.num_epochs": 2}), workdir)
    assert res2["steps"] == 2 * steps_one
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == sorted(steps) and len(set(steps)) == len(steps)


def test_resumes_after_sigkill(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    workdir = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "experiments.s2d.main",
        "--config=jaxface/configs/s2d.py:test", f"--workdir={workdir}",
        f"--config.data_dir={data_dir}", "--config.optim.num_epochs=12",
        "--config.checkpoint_every=3",
    ]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    ckpt_dir = workdir / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if ckpt_dir.exists() and any(p.name.isdigit() for p in ckpt_dir.iterdir()):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    saved = sorted(int(p.name) for p in ckpt_dir.iterdir() if p.name.isdigit())
    assert saved
    res = train_and_evaluate(_config(data_dir, **{"optim.num_epochs": 12}), str(workdir))
    with open(workdir / "metrics.jsonl") as f:
        first_after = [json.loads(line)["step"] for line in f]
    assert res["steps"] > saved[-1]
    assert np.isfinite(res["test"]["mean"])
    assert max(first_after) == res["steps"]
