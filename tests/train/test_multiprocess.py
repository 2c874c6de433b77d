"""Multi-process training: 2 processes x 2 CPU devices train to the parameters of 1 process x 4."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _launch(kind, tmp_path, num_processes):
    port = _free_port()
    procs = []
    for rank in range(num_processes):
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        if num_processes > 1:
            env.update(JAXFACE_DISTRIBUTED="1", JAX_COORDINATOR_ADDRESS=f"localhost:{port}",
                       JAXFACE_NUM_PROCESSES=str(num_processes), JAXFACE_PROCESS_ID=str(rank))
        out = tmp_path / f"{kind}-{num_processes}-{rank}.json"
        cmd = [sys.executable, "-m", "tests.train.multiprocess_worker", kind,
               str(tmp_path / f"run-{kind}-{num_processes}"), str(out)]
        procs.append((subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, text=True), out))
    records = []
    for proc, out in procs:
        log, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, log[-3000:]
        records.append(json.loads(out.read_text()))
    return records


@pytest.mark.parametrize("kind", ["memory", "stream"])
def test_two_processes_train_like_one(kind, tmp_path):
    two = _launch(kind, tmp_path, 2)
    assert [r["processes"] for r in two] == [2, 2] and two[0]["devices"] == 4
    assert two[0]["steps"] == two[1]["steps"] == 3 * (64 // 8)
    (one,) = _launch(kind, tmp_path, 1)
    assert one["processes"] == 1 and one["devices"] == 2
    # One process with 2 devices sees the same global batches: the same parameters.
    for record in two:
        for name in ("kernel", "bias"):
            np.testing.assert_allclose(record["params"]["Dense_0"][name],
                                       one["params"]["Dense_0"][name], rtol=1e-5)
