"""A full disk: one error naming the path and the bytes needed, nothing half-written left.

Each test fills a small tmpfs (mounted for the test; skipped when not root or when mounting is
not possible).
"""

import os
import pathlib
import re

import numpy as np
import pytest

from jaxface.commands.output import staged_output
from jaxface.files import DiskFullError, write_atomic
from tests.faults.helpers import (
    checkpoint_steps,
    files_under,
    one_line,
    run,
    small_tmpfs,
    stray,
    tiny_command,
)
from tests.faults.tiny_run import make_state, train


@pytest.fixture
def tmpfs(tmp_path, request):
    with small_tmpfs(tmp_path, request.param) as folder:
        if folder is None:
            pytest.skip("mounting a tmpfs needs root")
        yield folder


@pytest.mark.parametrize("tmpfs", ["700k"], indirect=True)
def test_training_stops_with_the_path_and_bytes_and_keeps_the_checkpoints(tmpfs):
    from jaxface.train import Checkpoints, all_finite

    workdir = os.path.join(tmpfs, "run")
    pad = 60_000  # 240 kB of random parameters: two checkpoints fit, the third does not
    result = run(tiny_command(workdir, "--epochs", 5, "--pad", pad))
    assert result.returncode == 2
    message = one_line(result.stderr)
    assert re.search(r"/run/(checkpoints/\d+|metrics\.jsonl): no space left on device .*"
                     r"needs [\d,]+ bytes, [\d,]+ free", message), message
    if "checkpoints" in message:
        assert f"needs {4 * (pad + 4) + 4 + 64 * 1024:,} bytes" in message
    assert stray(workdir) == []  # no partial checkpoint
    saved = checkpoint_steps(workdir)
    assert saved and saved == list(range(3, 3 * len(saved) + 1, 3))
    ckpt = Checkpoints(workdir)
    state, step = ckpt.restore_or(make_state(pad))
    ckpt.close()
    assert step == saved[-1] and all_finite(state)


@pytest.mark.parametrize("tmpfs", ["700k"], indirect=True)
# When a write fails, orbax closes its event loop while tensorstore still completes the other
# writes of the save; their callbacks then fail inside tensorstore ("Event loop is closed"),
# reported as unraisable exceptions. That is the libraries' own cleanup, not an error here.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_save_that_runs_out_of_space_leaves_no_partial_checkpoint(tmpfs, monkeypatch):
    import shutil

    from jaxface.train import checkpoint

    # The device claims room (another writer fills it meanwhile): orbax itself runs out.
    usage = shutil.disk_usage(tmpfs)
    monkeypatch.setattr(checkpoint.shutil, "disk_usage",
                        lambda path: usage._replace(free=10**12))
    workdir = os.path.join(tmpfs, "run")
    with pytest.raises(DiskFullError, match=r"/run/checkpoints/9: no space left on device for "
                                            r"checkpoint 9 \(needs [\d,]+ bytes"):
        train(workdir, 5, checkpoint_every=3, log_every=2, pad=60_000)
    assert stray(workdir) == [] and checkpoint_steps(workdir) == [3, 6]


@pytest.mark.parametrize("tmpfs", ["64k"], indirect=True)
def test_an_atomic_write_keeps_the_previous_file(tmpfs):
    target = os.path.join(tmpfs, "config.json")
    write_atomic(target, b"{}")
    with pytest.raises(DiskFullError, match=f"{target}: no space left on device "
                                            r"\(needs 200,000 bytes, [\d,]+ free\)"):
        write_atomic(target, b"x" * 200_000)
    assert pathlib.Path(target).read_bytes() == b"{}"
    assert os.listdir(tmpfs) == ["config.json"]


@pytest.mark.parametrize("tmpfs", ["128k"], indirect=True)
def test_command_output_is_removed_and_the_earlier_output_kept(tmpfs):
    out = os.path.join(tmpfs, "out")
    with staged_output(out, overwrite=False) as staging:
        write_atomic(os.path.join(staging, "frame_0.ply"), b"earlier")
    with pytest.raises(DiskFullError, match=f"{out}: no space left on device for the output "
                                            r"\(needs [\d,]+ bytes, [\d,]+ free\); nothing was "
                                            "written"):
        with staged_output(out, overwrite=True) as staging:
            for k in range(100):
                payload = np.random.default_rng(k).bytes(16_000)
                write_atomic(os.path.join(staging, f"frame_{k}.ply"), payload)
    assert files_under(tmpfs) == ["out", "out/frame_0.ply"]
    assert pathlib.Path(out, "frame_0.ply").read_bytes() == b"earlier"
