"""A run's work directory: one process at a time, one config, results kept when run again."""

import json
import os
import pathlib
import subprocess
import time

import pytest

from jaxface.configs import s2d
from jaxface.data.datasets import DatasetView
from jaxface.s2d.experiment import train_and_evaluate
from jaxface.s2d.inference import S2DInference
from jaxface.train import (
    ConfigMismatchError,
    WorkdirBusyError,
    config_changes,
    lock_workdir,
    store_config,
)
from tests.faults.helpers import ROOT, env, one_line, run, tiny_command


def test_a_changed_config_is_refused_before_anything_is_written(tmp_path):
    config = {"optim": {"learning_rate": 0.001, "num_epochs": 2}, "model": {"channels": [8, 4]},
              "log_every": 5}
    path = store_config(tmp_path, config)
    before = pathlib.Path(path).read_bytes()
    changed = {"optim": {"learning_rate": 0.01, "num_epochs": 2}, "model": {"channels": [8]},
               "log_every": 5}
    with pytest.raises(ConfigMismatchError) as err:
        store_config(tmp_path, changed)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: the run was started with")
    assert "model.channels: [8, 4] -> [8]; optim.learning_rate: 0.001 -> 0.01" in message
    assert pathlib.Path(path).read_bytes() == before
    # Duration and logging may change; the new values are stored.
    store_config(tmp_path, {**config, "optim": {"learning_rate": 0.001, "num_epochs": 9},
                            "log_every": 1})
    assert json.loads(pathlib.Path(path).read_text())["optim"]["num_epochs"] == 9
    assert config_changes({"a": 1}, {"b": 2}) == ["a: 1 -> (absent)", "b: (absent) -> 2"]
    # A field added since: absent in a stored config means what it did before it existed.
    stored = {"s2d": {"validation": {"patience": 4}}}
    assert config_changes(stored, {"s2d": {"validation": {"patience": 4, "keep": "last"}}}) == []
    assert config_changes(stored, {"s2d": {"validation": {"patience": 4, "keep": "best"}}}) == [
        's2d.validation.keep: (absent) -> "best"']


def test_s2d_rerun_keeps_results_and_refuses_a_changed_config(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    workdir = str(tmp_path / "run")
    config = s2d.get_config("test")
    config.data_dir = data_dir
    config.optim.num_epochs = 1
    first = train_and_evaluate(config, workdir)
    with open(os.path.join(workdir, "results.json")) as f:
        stored = json.load(f)
    assert stored["final_loss"] is not None
    again = train_and_evaluate(config, workdir)  # finished: already complete
    with open(os.path.join(workdir, "results.json")) as f:
        rerun = json.load(f)
    assert rerun["final_loss"] == stored["final_loss"] and rerun["steps"] == first["steps"]
    assert rerun["train_time_s"] == again["train_time_s"] > 0.5 * stored["train_time_s"]
    assert rerun["test"] == stored["test"]
    config_path = os.path.join(workdir, "config.json")
    kept = pathlib.Path(config_path).read_bytes()
    config.optim.learning_rate = 0.5
    with pytest.raises(ConfigMismatchError, match="optim.learning_rate: 0.001 -> 0.5"):
        train_and_evaluate(config, workdir)
    assert pathlib.Path(config_path).read_bytes() == kept
    assert S2DInference.load(workdir).num_vertices == DatasetView(tiny_faces4d[1]).vertices.shape[0]


def test_two_trainings_on_one_workdir_the_second_names_the_first(tmp_path):
    workdir = tmp_path / "run"
    first = subprocess.Popen(tiny_command(workdir, "--epochs", 500), cwd=ROOT, env=env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (workdir / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.02)
        second = run(tiny_command(workdir, "--epochs", 500))
        assert second.returncode == 2, second.stderr
        line = one_line(second.stderr)
        assert f"is in use by process {first.pid}" in line
        with pytest.raises(WorkdirBusyError, match=f"process {first.pid}"), \
                lock_workdir(workdir):
            pass
        assert first.poll() is None, "the first run must still be training"
    finally:
        first.kill()
        first.wait()
    with open(workdir / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f if line.endswith("\n")]
    assert steps == list(range(2, 2 * len(steps) + 1, 2))  # one run's records, each once
    with lock_workdir(workdir), lock_workdir(workdir):  # free again, and re-entrant
        pass
