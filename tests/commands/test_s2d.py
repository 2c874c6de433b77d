"""``jaxface transfer --video`` end to end on a real video, and its errors."""

import json
import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.face_dynamics import VIDEO_BLENDSHAPES_ASSET
from jaxface.generate import shipped_bundle
from jaxface.mesh.gltf import read_glb
from jaxface.mesh.io import read_mesh
from tests.data.videos import feat_video, needs_video_extra


@pytest.fixture(scope="module")
def models():
    path = shipped_bundle("default")
    if path is None:
        pytest.skip("the shipped default models are not installed")
    return path


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("jaxface transfer: error: ")
    return err[0]


def _single_face_smile():
    """MediaPipe's mouthSmile scores of single_face.mp4 as jaxface ships them (an asset made
    by ``experiments/assets/extract_video_blendshapes.py``, independent of this command)."""
    import importlib.resources

    ref = importlib.resources.files("jaxface").joinpath("assets", VIDEO_BLENDSHAPES_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        clip = list(z["clip_names"]).index("single_face")
        lo, hi = z["clip_start"][clip], z["clip_start"][clip + 1]
        names = list(z["names"])
        cols = [names.index("mouthSmile_L"), names.index("mouthSmile_R")]
        assert names == list(ARKIT_NAMES)
        return z["scores"][lo:hi][:, cols].mean(1)


@needs_video_extra
def test_a_smiling_man_drives_the_default_face(models, tmp_path, capsys):
    video = feat_video("single_face.mp4")
    out = tmp_path / "out"
    assert main(["transfer", "--video", video, "--model", models, "--out", str(out),
                 "--no-gif"]) == 0
    printed = capsys.readouterr().out
    assert "72 frames at 30.000 fps, a face found in 72; 0 filled" in printed
    frames = sorted(os.listdir(out / "frames"))
    assert frames == [f"frame_{t:06d}.ply" for t in range(72)]
    vertices, faces = read_mesh(out / "frames" / frames[40])
    neutral, _ = read_mesh(out / "neutral.ply")
    assert vertices.shape == neutral.shape == (1790, 3) and np.isfinite(vertices).all()
    glb = read_glb(out / "glb" / "transfer.glb")
    assert glb.frames.shape == (72, 1790, 3) and glb.fps == pytest.approx(30.0)
    assert np.abs(glb.frames[40] - vertices).max() < 2e-5
    assert (out / "preview.png").stat().st_size > 0 and not (out / "preview.gif").exists()
    record = json.loads((out / "transfer.json").read_text())
    assert record["frames"] == 72 and record["fps"] == 30.0 and record["frames_filled"] == 0
    assert record["models"]["origin"] == "given" and record["models"]["packed"]
    assert record["neutral"] == "models' default neutral"
    assert record["smoothing"]["window_frames"] == 7
    assert max(record["neutral_frames"]) < 20  # he is relaxed in the first half second
    # The output's mouth corners rise when the man smiles: the lift follows MediaPipe's smile
    # scores of the video (measured r = 0.98; the corners rise 8.3 mm on the default face).
    lift = np.asarray(record["mouth_corner_lift_mm"])
    assert lift.shape == (72,) and lift.max() > 4.0
    r = np.corrcoef(lift, _single_face_smile())[0, 1]
    assert r > 0.9, r


@needs_video_extra
def test_a_piece_on_a_photographed_face(models, tmp_path):
    import skimage.data
    from PIL import Image

    from jaxface.data.photo import photo_to_neutral

    photo = tmp_path / "astronaut.png"
    Image.fromarray(skimage.data.astronaut()).save(photo)
    out = tmp_path / "piece"
    assert main(["transfer", "--video", feat_video("single_face.mp4"), "--photo", str(photo),
                 "--model", models, "--start", "1", "--max-frames", "6", "--format", "obj",
                 "--out", str(out)]) == 0
    assert len(os.listdir(out / "frames")) == 6 and (out / "preview.gif").stat().st_size > 0
    record = json.loads((out / "transfer.json").read_text())
    assert record["first_frame"] == 30 and record["frames"] == 6
    assert record["photo"]["num_vertices"] == 1790
    neutral, _ = read_mesh(out / "neutral.obj")
    expected = photo_to_neutral(skimage.data.astronaut(), level=1).vertices
    np.testing.assert_allclose(neutral, expected, atol=2e-6)


@needs_video_extra
def test_transfer_errors(models, tmp_path, capsys):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    out = tmp_path / "out"
    assert main(["transfer", "--video", str(text), "--model", models, "--out", str(out)]) == 2
    assert "notes.mp4: not a readable video" in _one_line_error(capsys)
    assert not out.exists()  # nothing half-written
    assert main(["transfer", "--video", str(tmp_path / "gone.mp4"), "--out", str(out)]) == 2
    assert "gone.mp4: no such video file" in _one_line_error(capsys)
    assert main(["transfer", "--video", feat_video("no_face.mp4"), "--model", models,
                 "--max-frames", "4", "--out", str(out)]) == 2
    assert "no face found in any of the 4 frames" in _one_line_error(capsys)
    assert not out.exists()
    assert main(["transfer", "--video", str(text), "--max-frames", "1", "--out", str(out)]) == 2
    assert "--max-frames must be at least 2" in _one_line_error(capsys)
    assert main(["transfer", "--video", str(text), "--smooth", "-1", "--out", str(out)]) == 2
    assert "--smooth must be" in _one_line_error(capsys)
    # The mesh-sequence form keeps its own flags.
    assert main(["transfer", "--source", str(tmp_path), "--target", "x.ply", "--out",
                 str(out)]) == 2
    assert "--source needs --model" in _one_line_error(capsys)
    assert main(["transfer", "--source", str(tmp_path), "--model", models, "--out",
                 str(out)]) == 2
    assert "--source needs --target" in _one_line_error(capsys)
    assert main(["transfer", "--source", str(tmp_path), "--model", models, "--target", "x.ply",
                 "--max-frames", "5", "--out", str(out)]) == 2
    assert "--max-frames: only with --video" in _one_line_error(capsys)
    with pytest.raises(SystemExit):  # argparse: --video and --source exclude each other
        main(["transfer", "--video", str(text), "--source", str(tmp_path), "--out", str(out)])
    with pytest.raises(SystemExit):  # --neutral and --photo exclude each other
        main(["transfer", "--video", str(text), "--neutral", "a.ply", "--photo", "a.png",
              "--out", str(out)])
