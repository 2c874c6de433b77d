"""The ``jaxface prepare`` sub-command (registered on a bare parser, as jaxface.cli does)."""

import argparse

import numpy as np
import pytest

from datasets_tfds.coma.fixture import FIXTURE_SUBJECTS, write_fixture
from jaxface.commands import UserError, prepare
from jaxface.data import layout, source


def _run(argv):
    parser = argparse.ArgumentParser(prog="jaxface")
    sub = parser.add_subparsers(dest="command", required=True)
    prepare.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_prepare_faces4d_tiny(tmp_path, capsys):
    assert _run(["prepare", "faces4d", "--config", "tiny", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    path = layout.dataset_dir("faces4d", data_dir=tmp_path, config="tiny")
    assert "faces4d/tiny prepared in" in out and path in out
    assert len(source.open_source(path)) > 0
    # A second run reuses the prepared data.
    assert _run(["prepare", "faces4d", "--config", "tiny", "--data-dir", str(tmp_path)]) == 0
    assert "already prepared at" in capsys.readouterr().out


def test_prepare_coma_with_landmark_embedding(tmp_path, capsys):
    write_fixture(tmp_path / "manual", subjects=FIXTURE_SUBJECTS[:1], num_frames=2)
    rng = np.random.default_rng(1)
    emb = tmp_path / "emb.npz"
    np.savez(emb, lmk_face_idx=rng.integers(0, 12, 68), lmk_b_coords=np.full((68, 3), 1 / 3))
    argv = [
        "prepare",
        "coma",
        "--manual-dir",
        str(tmp_path / "manual"),
        "--data-dir",
        str(tmp_path / "data"),
        "--landmark-embedding",
        str(emb),
    ]
    assert _run(argv) == 0
    path = layout.dataset_dir("coma", data_dir=tmp_path / "data", config="landmarks")
    assert source.open_source(path)[0]["landmarks"].shape == (68, 3)
    assert "coma/landmarks prepared in" in capsys.readouterr().out


def test_argument_errors(tmp_path):
    with pytest.raises(UserError, match="pass --manual-dir"):
        _run(["prepare", "coma", "--data-dir", str(tmp_path)])
    with pytest.raises(UserError, match="generated"):
        _run(["prepare", "faces4d", "--manual-dir", str(tmp_path)])
    with pytest.raises(UserError, match="needs --config landmarks"):
        _run(
            [
                "prepare",
                "vocaset",
                "--manual-dir",
                str(tmp_path),
                "--config",
                "default",
                "--landmark-embedding",
                "x.npz",
            ]
        )
    with pytest.raises(ValueError, match="unknown config 'huge' for faces4d; choose from tiny"):
        _run(["prepare", "faces4d", "--config", "huge", "--data-dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        _run(["prepare", "bu4dfe"])


def test_layout_error_is_one_line_for_the_cli(tmp_path):
    write_fixture(tmp_path / "manual", subjects=FIXTURE_SUBJECTS[:1], num_frames=2)
    (tmp_path / "manual" / FIXTURE_SUBJECTS[0] / "eyebrow").rename(
        tmp_path / "manual" / FIXTURE_SUBJECTS[0] / "eyebrows"
    )
    with pytest.raises(ValueError) as err:
        _run(
            [
                "prepare",
                "coma",
                "--manual-dir",
                str(tmp_path / "manual"),
                "--data-dir",
                str(tmp_path / "data"),
            ]
        )
    assert "eyebrows: unexpected folder" in str(err.value)
    assert "\n" not in str(err.value)
