"""Non-finite, damaged and interrupted checkpoints and logs: a run resumes from what is intact."""

import json
import logging
import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
import pytest

from jaxface.train import Checkpoints, NonFiniteError, TrainingInterrupted, all_finite
from tests.faults.helpers import checkpoint_steps
from tests.faults.tiny_run import make_batches, make_state, params_of, train


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The parameters of an uninterrupted 3-epoch run (12 steps)."""
    state, _ = train(str(tmp_path_factory.mktemp("reference")), 3)
    return params_of(state)


def _assert_params(state, expected):
    for name, value in expected.items():
        np.testing.assert_array_equal(params_of(state)[name], value)


def _restore(workdir):
    ckpt = Checkpoints(str(workdir))
    try:
        return ckpt.restore_or(make_state())
    finally:
        ckpt.close()


def test_a_non_finite_state_is_never_saved(tmp_path):
    workdir = str(tmp_path / "run")
    # Saves every 3 steps, logs every 5: the parameters turn NaN after step 6, a save step.
    with pytest.raises(NonFiniteError, match=r"NaN or infinite at step 6; it was not saved "
                                             r"\(checkpoint 3 is kept\)"):
        train(workdir, 3, checkpoint_every=3, log_every=5, nan_at_step=6)
    assert checkpoint_steps(workdir) == [3]
    state, step = _restore(workdir)
    assert step == 3 and all_finite(state)


def test_nan_in_the_data_stops_before_a_save_and_keeps_the_earlier_checkpoints(tmp_path):
    order = [np.asarray(idx) for idx in make_batches().order(0)]
    # A row first used at a step whose next save (every 3) comes before its next log (every 5).
    row, step = next((int(r), s) for s, idx in enumerate(order, start=1) for r in idx
                     if s % 5 and -(-s // 3) * 3 < -(-s // 5) * 5)
    workdir = str(tmp_path / "run")
    for _ in range(2):  # and again: it resumes from the newest finite checkpoint, fails the same
        with pytest.raises(NonFiniteError, match=f"at step {-(-step // 3) * 3}"):
            train(workdir, 2, checkpoint_every=3, log_every=5, nan_row=row)
        saved = checkpoint_steps(workdir)
        assert saved == list(range(3, step, 3))[-3:]
        if saved:
            state, _ = _restore(workdir)
            assert all_finite(state)


def _poison(workdir, step):
    """Adds a NaN checkpoint at ``step``, as versions that saved unchecked states could."""
    state, _ = _restore(workdir)
    bad = state.replace(step=jnp.asarray(step, jnp.int32),
                        params=jax.tree.map(lambda p: p * jnp.nan, state.params))
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
    manager.save(step, args=ocp.args.StandardSave(bad))
    manager.wait_until_finished()
    manager.close()


def test_resume_skips_a_non_finite_checkpoint_and_says_so(tmp_path, reference, caplog):
    workdir = str(tmp_path / "run")
    train(workdir, 2)  # 8 steps: checkpoints 3, 6, 8
    _poison(workdir, 9)
    with caplog.at_level(logging.WARNING):
        state, info = train(workdir, 3)
    assert "checkpoint 9 is not finite" in caplog.text
    assert "resuming from checkpoint 8" in caplog.text
    assert info.start_step == 8 and info.steps == 12
    _assert_params(state, reference)
    assert os.listdir(tmp_path / "run" / "checkpoints_rejected") == ["9"]


def test_a_damaged_latest_checkpoint_falls_back_to_the_newest_intact_one(
    tmp_path, reference, caplog
):
    workdir = str(tmp_path / "run")
    train(workdir, 2)
    latest = os.path.join(workdir, "checkpoints", "8")
    for root, _, files in os.walk(latest):
        for name in files:
            if not name.startswith("_CHECKPOINT_METADATA"):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with caplog.at_level(logging.WARNING):
        state, info = train(workdir, 3)
    assert "checkpoint 8 cannot be read" in caplog.text
    assert "resuming from checkpoint 6" in caplog.text and "delete" not in caplog.text
    assert info.start_step == 6
    _assert_params(state, reference)


def test_a_log_cut_short_and_records_past_the_checkpoint_are_dropped(tmp_path, reference):
    workdir = str(tmp_path / "run")
    train(workdir, 2)  # logs 2, 4, 6, 8; checkpoints 3, 6, 8
    shutil.rmtree(os.path.join(workdir, "checkpoints", "8"))  # killed before saving step 8 ...
    with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
        f.write('{"step": 10, "lo')  # ... and mid-append of a later record
    state, _ = train(workdir, 3)
    _assert_params(state, reference)
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [2, 4, 6, 8, 10, 12]


def test_a_damaged_config_is_named_and_not_overwritten(tmp_path):
    workdir = tmp_path / "run"
    train(str(workdir), 1)
    (workdir / "config.json").write_bytes(b"{\x00garbage")
    with pytest.raises(ValueError, match=f"{workdir / 'config.json'}: not valid JSON"):
        train(str(workdir), 2)
    assert (workdir / "config.json").read_bytes() == b"{\x00garbage"
    assert checkpoint_steps(workdir) == [3, 4]


def test_ctrl_c_in_process_names_the_step_and_the_checkpoint_kept(tmp_path, reference):
    workdir = str(tmp_path / "run")

    def interrupt(step, state, metrics):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match=r"stopped at step 7, checkpoint 6 kept"):
        train(workdir, 3, hooks=(interrupt,))
    assert checkpoint_steps(workdir) == [3, 6]
    state, _ = train(workdir, 3)
    _assert_params(state, reference)
