"""Inference API and commands of a trained S2D-Dec (a one-epoch tiny run)."""

import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs import s2d
from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import read_mesh, write_mesh, write_sequence
from jaxface.s2d.experiment import train_and_evaluate
from jaxface.s2d.inference import S2DInference
from jaxface.train import CheckpointError


@pytest.fixture(scope="module")
def run_dir(tiny_faces4d, tmp_path_factory):
    data_dir, _ = tiny_faces4d
    c = s2d.get_config("test")
    c.data_dir = data_dir
    c.optim.num_epochs = 1
    workdir = str(tmp_path_factory.mktemp("s2d_run"))
    train_and_evaluate(c, workdir)
    return workdir


def test_api(run_dir):
    m = S2DInference.load(run_dir)
    n = m.num_vertices
    lms = m.landmarks_of(m.vertices)
    assert lms.shape == (68, 3)
    # Zero landmark motion decodes to the same displacement for every frame.
    frames = m.animate(m.vertices, np.zeros((3, 204), np.float32))
    assert frames.shape == (3, n, 3) and np.isfinite(frames).all()
    np.testing.assert_allclose(frames[0], frames[2], atol=1e-6)
    # A source that does not move transfers no motion.
    still = np.repeat(m.vertices[None], 4, 0)
    moved = m.transfer(still, m.vertices * 1.05)
    np.testing.assert_allclose(moved, np.repeat(moved[:1], 4, 0), atol=1e-6)
    # Following the template's own landmarks equals zero displacement.
    np.testing.assert_allclose(m.animate_to_landmarks(m.vertices, lms[None])[0], frames[0],
                               atol=1e-5)
    assert m.neutralize(frames[1]).shape == (n, 3)
    with pytest.raises(MeshError, match="expected a neutral face"):
        m.animate(m.vertices[:10], np.zeros((1, 204)))
    with pytest.raises(ValueError, match="NaN"):
        m.decode(np.full((1, 204), np.nan))


def test_commands(run_dir, tmp_path, capsys):
    m = S2DInference.load(run_dir)
    neutral = tmp_path / "neutral.ply"
    write_mesh(neutral, m.vertices, m.faces)
    lms = np.repeat(m.landmarks_of(m.vertices)[None], 2, 0)
    lms[1, 48:, 1] -= 0.005  # lower the mouth
    np.save(tmp_path / "lms.npy", lms)
    assert main(["animate", "--model", run_dir, "--neutral", str(neutral), "--landmarks",
                 str(tmp_path / "lms.npy"), "--out", str(tmp_path / "anim")]) == 0
    out = sorted(os.listdir(tmp_path / "anim"))
    assert len(out) == 2
    v, f = read_mesh(tmp_path / "anim" / out[1])
    assert v.shape == m.vertices.shape and np.array_equal(f, m.faces)

    write_sequence(tmp_path / "src", np.stack([m.vertices, m.vertices * 1.01]), m.faces)
    assert main(["transfer", "--model", run_dir, "--source", str(tmp_path / "src"), "--target",
                 str(neutral), "--out", str(tmp_path / "tr"), "--format", "obj"]) == 0
    assert len(os.listdir(tmp_path / "tr")) == 2
    assert main(["neutralize", "--model", run_dir, "--mesh", str(tmp_path / "anim" / out[1]),
                 "--out", str(tmp_path / "n.ply")]) == 0
    assert os.path.getsize(tmp_path / "n.ply") > 0

    # A mesh of another topology is refused with one clear line.
    sv, sf = primitives.icosphere(1)
    write_mesh(tmp_path / "sphere.ply", sv, sf)
    capsys.readouterr()
    assert main(["neutralize", "--model", run_dir, "--mesh", str(tmp_path / "sphere.ply"),
                 "--out", str(tmp_path / "x.ply")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "sphere.ply" in err[0] and f"{m.num_vertices} vertices" in err[0]
    assert not (tmp_path / "x.ply").exists()


def test_missing_or_corrupt_run(run_dir, tmp_path, capsys):
    assert main(["neutralize", "--model", str(tmp_path), "--mesh", "x.ply", "--out", "y.ply"]) == 2
    assert "not a trained S2D-Dec run" in capsys.readouterr().err
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken)
    for root, _, files in os.walk(broken / "checkpoints"):
        for name in files:
            if not name.startswith("_CHECKPOINT_METADATA"):
                with open(os.path.join(root, name), "wb") as fh:
                    fh.write(b"\0")
    with pytest.raises(CheckpointError, match="corrupt"):
        S2DInference.load(str(broken))


def test_transfer_video_with_a_trained_run(run_dir, tmp_path):
    import importlib.util
    import json

    from tests.data.videos import feat_video

    if importlib.util.find_spec("av") is None or importlib.util.find_spec("mediapipe") is None:
        pytest.skip("PyAV and MediaPipe are not installed (pip install 'jaxface[video]')")
    m = S2DInference.load(run_dir)
    out = tmp_path / "video"
    assert main(["transfer", "--video", feat_video("single_face.mp4"), "--model", run_dir,
                 "--max-frames", "6", "--no-gif", "--out", str(out)]) == 0
    frames = sorted(os.listdir(out / "frames"))
    assert len(frames) == 6
    vertices, faces = read_mesh(out / "frames" / frames[-1])
    assert vertices.shape == m.vertices.shape and np.array_equal(faces, m.faces)
    record = json.loads((out / "transfer.json").read_text())
    assert record["models"] == {"s2d_run": os.path.abspath(run_dir)}
    assert record["neutral"] == "models' default neutral"  # the run's template
    np.testing.assert_allclose(read_mesh(out / "neutral.ply")[0], m.vertices, atol=1e-6)
