"""Killed training runs: SIGKILL at random steps and Ctrl-C lose nothing and resume exactly.

The soak kills a tiny training subprocess at random steps (several times per run, often while
an asynchronous checkpoint is being written), restarts it each time and checks that the run
ends with the parameters and metrics of an uninterrupted run and no stray files. In the normal
suite it kills 4 times; ``JAXFACE_SOAK_KILLS=20`` (and ``JAXFACE_SOAK_EPOCHS``) runs it longer.
"""

import json
import os
import random
import signal
import subprocess
import time

import numpy as np
import pytest

from tests.faults.helpers import (
    ROOT,
    checkpoint_steps,
    env,
    files_under,
    one_line,
    run,
    stray,
    tiny_command,
)

STEPS_PER_EPOCH = 4
ARGS = ("--checkpoint-every", 7, "--log-every", 5)  # saves between logs: 7 is not a multiple of 5


def _last_logged_step(workdir) -> int:
    path = os.path.join(workdir, "metrics.jsonl")
    try:
        with open(path, "rb") as f:
            lines = [line for line in f.read().split(b"\n") if line.strip()]
    except FileNotFoundError:
        return 0
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except ValueError:
            continue
    return 0


def _records(workdir) -> list[tuple[int, float]]:
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [(r["step"], r["loss"]) for r in map(json.loads, f)]


def _start(workdir, epochs, *extra, stderr=subprocess.DEVNULL):
    return subprocess.Popen(tiny_command(workdir, "--epochs", epochs, *ARGS, *extra), cwd=ROOT,
                            env=env(), stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _wait_for_step(proc, workdir, step: int, timeout: float = 120.0) -> bool:
    """Waits until the run has logged ``step`` (or later); ``False`` if it ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _last_logged_step(workdir) >= step:
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    raise AssertionError(f"step {step} was not reached in {timeout} s")


@pytest.mark.slow
def test_random_sigkills_end_with_the_uninterrupted_parameters(tmp_path):
    kills = int(os.environ.get("JAXFACE_SOAK_KILLS", "4"))
    epochs = int(os.environ.get("JAXFACE_SOAK_EPOCHS", "40"))
    total = epochs * STEPS_PER_EPOCH
    reference = run(tiny_command(tmp_path / "reference", "--epochs", epochs, *ARGS,
                                 "--result", tmp_path / "reference.npz"))
    assert reference.returncode == 0, reference.stderr

    workdir = tmp_path / "killed"
    rng = random.Random(1234)
    kept: list[int] = []  # newest checkpoint after each kill: never goes back
    killed_at: list[int] = []
    mid_save = 0  # kills that left a partial checkpoint (cleaned up by the next start)
    done = 0
    while done < kills:
        progress = _last_logged_step(workdir)
        span = max(2, 2 * (total - progress) // (kills - done + 1))
        target = min(total - 1, progress + rng.randint(1, span))
        proc = _start(workdir, epochs)
        if not _wait_for_step(proc, workdir, target):
            break  # finished before the kill
        time.sleep(rng.uniform(0.0, 0.03))  # land anywhere, also inside a save
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        done += 1
        killed_at.append(_last_logged_step(workdir))
        mid_save += any("orbax-checkpoint-tmp" in p for p in files_under(workdir))
        steps = checkpoint_steps(workdir)
        assert not kept or (steps and steps[-1] >= kept[-1]), (kept, steps)
        kept.append(steps[-1] if steps else 0)
    assert done == kills, f"only {done} of {kills} kills landed before the run finished"
    print(f"\nsoak: {kills} SIGKILLs of a {total}-step run, last logged steps {killed_at}, "
          f"newest checkpoints {kept}, {mid_save} during a save")

    final = run(tiny_command(workdir, "--epochs", epochs, *ARGS, "--result",
                             tmp_path / "killed.npz"))
    assert final.returncode == 0, final.stderr
    expected, got = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "killed.npz")
    for name in expected.files:
        np.testing.assert_array_equal(got[name], expected[name])
    # The log reads as the uninterrupted run's: every logged step once, the same losses.
    assert _records(workdir) == _records(tmp_path / "reference")
    assert stray(workdir) == []
    assert checkpoint_steps(workdir)[-1] == total
    assert sorted(p for p in os.listdir(workdir)) == [".lock", "checkpoints", "config.json",
                                                      "metrics.jsonl"]


def test_ctrl_c_names_the_step_and_the_checkpoint_kept(tmp_path):
    workdir = tmp_path / "run"
    # A budget the run cannot finish while the signal is on its way (a loaded machine can
    # delay it by many steps of the tiny model).
    proc = _start(workdir, 1000, stderr=subprocess.PIPE)
    assert _wait_for_step(proc, workdir, 40)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2, stderr
    line = one_line(stderr)
    kept = checkpoint_steps(workdir)[-1]
    assert f"checkpoint {kept} kept" in line and line.startswith("tiny_run: error: stopped at")
    stopped = int(line.split("stopped at step ")[1].split(",")[0])
    assert stopped >= kept >= 35
    assert not [p for p in files_under(workdir) if "orbax-checkpoint-tmp" in p]
    # The kept checkpoint resumes to the end (a few epochs past where it stopped).
    epochs = stopped // STEPS_PER_EPOCH + 3
    resumed = run(tiny_command(workdir, "--epochs", epochs, *ARGS))
    assert resumed.returncode == 0, resumed.stderr
    steps = [s for s, _ in _records(workdir)]
    assert steps == sorted(set(steps)) and steps[-1] == epochs * STEPS_PER_EPOCH
