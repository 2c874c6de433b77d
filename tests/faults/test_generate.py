"""``jaxface generate`` and the S2D-Dec commands under faults: bundles, inputs, outputs.

The commands run end to end on a bundle of untrained networks (:mod:`tests.faults.bundle`);
what is checked is how they fail, never the quality of the faces.
"""

import json
import logging
import os
import re
import shutil

import numpy as np
import pytest

from jaxface import generate as gen
from jaxface.cli import main
from jaxface.commands import generate as generate_command
from jaxface.mesh.io import read_mesh, write_mesh
from jaxface.train import TrainingInterrupted
from tests.faults.bundle import make_bundle
from tests.faults.helpers import files_under, small_tmpfs


@pytest.fixture(scope="module")
def bundle(tiny_faces4d, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("bundle") / "faces4d-tiny")
    make_bundle(path, tiny_faces4d[1])
    return path


@pytest.fixture
def neutral(bundle):
    """The bundle's neutral face and the template's faces."""
    with np.load(os.path.join(bundle, "neutral.npz")) as z:
        vertices = np.array(z["vertices"])
    with np.load(os.path.join(bundle, "s2d", "template.npz")) as z:
        faces = np.array(z["faces"])
    return vertices, faces


def _error(capsys, command="generate") -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"jaxface {command}: error: ")
    return err[0]


def _generate(bundle, out, *args):
    return main(["generate", "--models", bundle, "--expression", "mouth_open", "--out", str(out),
                 "--no-gif", "--quiet", *map(str, args)])


def test_a_partly_deleted_bundle_is_retrained_and_replaced(bundle, tmp_path, monkeypatch,
                                                           caplog):
    root = tmp_path / "models"
    final = root / gen.bundle_name("tiny")
    shutil.copytree(bundle, final)
    os.remove(final / "manifest.json")
    trained = []

    def train_bundle(path, recipe, *, data_dir=None, verbose=True):
        trained.append(path)
        shutil.copytree(bundle, path)
        with open(os.path.join(path, "manifest.json")) as f:
            return json.load(f)

    monkeypatch.setattr(gen, "train_bundle", train_bundle)
    with caplog.at_level(logging.WARNING):
        assert gen.ensure_models(str(root), "tiny", verbose=False) == str(final)
    assert "is incomplete (manifest.json missing)" in caplog.text
    assert gen.missing_bundle_files(final) == [] and len(trained) == 1
    assert os.listdir(root) == [final.name]  # the staging folder is gone
    assert gen.ensure_models(str(root), "tiny", verbose=False) == str(final)
    assert len(trained) == 1  # complete now: not trained again


def test_ctrl_c_while_training_the_models_is_one_line(tmp_path, monkeypatch, capsys):
    def train_bundle(path, recipe, *, data_dir=None, verbose=True):
        os.makedirs(os.path.join(path, "work"))
        raise TrainingInterrupted("stopped at step 3, checkpoint 2 kept", 3, 2)

    monkeypatch.setattr(gen, "train_bundle", train_bundle)
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(tmp_path / "cache"))
    assert main(["generate", "--recipe", "tiny", "--expression", "mouth_open", "--out",
                 str(tmp_path / "out")]) == 2
    line = _error(capsys)
    assert "training of the 'tiny' models stopped at step 3; nothing was kept" in line
    assert os.listdir(tmp_path / "cache" / "models") == []
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name, damage", [
    ("motion3dgan.msgpack", b"\x93\x01garbage"),
    ("neutral.npz", b"PK\x03\x04 not really a zip archive"),
    ("s2d/config.json", b"{}"),
    ("s2d/template.npz", b"\x00" * 64),
])
def test_a_damaged_bundle_file_is_named(bundle, tmp_path, capsys, name, damage):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    (copy / name).write_bytes(damage)
    assert _generate(str(copy), tmp_path / "out") == 2
    line = _error(capsys)
    assert f"{copy / name}: damaged" in line and "pickle" not in line
    assert not (tmp_path / "out").exists()


def test_a_face_in_millimetres_is_refused_or_rescaled(bundle, neutral, tmp_path, capsys):
    vertices, faces = neutral
    mm = tmp_path / "face_mm.ply"
    write_mesh(mm, vertices * 1000.0, faces)
    assert _generate(bundle, tmp_path / "refused", "--neutral", mm) == 2
    line = _error(capsys)
    factor = float(re.search(r"scale: the face is ([\d.]+) times the size of the model's "
                             "template", line).group(1))
    assert 900 < factor < 1100
    assert line.endswith("if the mesh is in millimetres, pass --units mm")
    assert _generate(bundle, tmp_path / "mm", "--neutral", mm, "--units", "mm") == 0
    out, _ = read_mesh(tmp_path / "mm" / "neutral.ply")
    np.testing.assert_allclose(out, vertices * 1000.0, rtol=1e-5, atol=1e-3)
    frame, _ = read_mesh(tmp_path / "mm" / "sample_00" / "frame_000029.ply")
    assert 0.5 < gen.relative_scale(frame, vertices) / 1000.0 < 2.0


def test_many_samples_are_generated_in_batches(bundle, tmp_path, monkeypatch):
    monkeypatch.setattr(generate_command, "BATCH_SAMPLES", 2)
    assert _generate(bundle, tmp_path / "five", "--samples", 5, "--seed", 7) == 0
    assert _generate(bundle, tmp_path / "two", "--samples", 2, "--seed", 7) == 0
    names = sorted(p for p in os.listdir(tmp_path / "five") if p.startswith("sample_"))
    assert names == [f"sample_{k:02d}" for k in range(5)]
    for k in range(2):  # the first batch is what a smaller run draws
        a, _ = read_mesh(tmp_path / "five" / f"sample_{k:02d}" / "frame_000020.ply")
        b, _ = read_mesh(tmp_path / "two" / f"sample_{k:02d}" / "frame_000020.ply")
        np.testing.assert_array_equal(a, b)
    generator = gen.load_generator(bundle)
    sizes = [r.meshes.shape[0] for r in generator.generate_batches(None, "eyebrow", 5, 0, 2)]
    assert sizes == [2, 2, 1]


def test_more_samples_than_the_disk_holds_are_refused_first(bundle, tmp_path, capsys):
    with small_tmpfs(tmp_path, "1m") as folder:
        if folder is None:
            pytest.skip("mounting a tmpfs needs root")
        out = os.path.join(folder, "out")
        assert _generate(bundle, out, "--samples", 100_000) == 2
        line = _error(capsys)
        assert f"{out}: 100000 samples of 30 frames need about " in line
        assert "are free; ask for fewer --samples" in line
        assert os.listdir(folder) == []


@pytest.mark.parametrize("seed", [2**64, 2**63, -1])
def test_a_seed_beyond_64_bits_is_refused(bundle, tmp_path, capsys, seed):
    assert _generate(bundle, tmp_path / "out", "--seed", seed) == 2
    assert f"--seed must be between 0 and {2**63 - 1} (64 bits), got {seed}" in _error(capsys)


def test_an_out_folder_with_earlier_results_is_refused_or_replaced(bundle, tmp_path, capsys):
    out = tmp_path / "out"
    assert _generate(bundle, out, "--samples", 2) == 0
    capsys.readouterr()
    assert _generate(bundle, out, "--samples", 1, "--expression", "eyebrow") == 2
    assert "holds earlier results" in _error(capsys) and (out / "sample_01").is_dir()
    assert _generate(bundle, out, "--samples", 1, "--overwrite") == 0
    assert not (out / "sample_01").exists() and (out / "sample_00").is_dir()
    assert json.loads((out / "generation.json").read_text())["samples"] == 1
    assert [p for p in os.listdir(tmp_path) if p != "out"] == []  # no staging folder left
    mode = os.stat(out / "sample_00" / "frame_000000.ply").st_mode & 0o777
    assert mode == 0o666 & ~_umask()
    assert os.stat(out).st_mode & 0o777 == 0o777 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_transfer_reads_upper_case_suffixes_and_keeps_earlier_output(bundle, neutral, tmp_path,
                                                                     capsys):
    vertices, faces = neutral
    source = tmp_path / "source"
    write_mesh(source / "FRAME_000.PLY", vertices, faces)
    write_mesh(source / "FRAME_001.OBJ", vertices * 1.01, faces)
    write_mesh(tmp_path / "target.PLY", vertices, faces)
    args = ["transfer", "--model", os.path.join(bundle, "s2d"), "--source", str(source),
            "--target", str(tmp_path / "target.PLY"), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    assert files_under(tmp_path / "out") == ["frame_000000.ply", "frame_000001.ply"]
    capsys.readouterr()
    assert main(args) == 2
    assert "holds earlier results (2 entries); pass --overwrite" in _error(capsys, "transfer")
    assert main([*args, "--overwrite"]) == 0
