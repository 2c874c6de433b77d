"""``jaxface neutral`` and ``jaxface generate --photo`` on scikit-image's astronaut photograph."""

import importlib.util
import json
import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.data.template import load_face_template
from jaxface.generate import RECIPE_ENV
from jaxface.mesh.io import read_mesh

_MISSING = [m for m in ("mediapipe", "skimage") if importlib.util.find_spec(m) is None]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"{' and '.join(_MISSING)} not installed (pip install -e '.[test]' installs them)",
)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """The astronaut as a PNG file, a flat grey PNG and a file that is no image."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("photos")
    import skimage.data

    Image.fromarray(skimage.data.astronaut()).save(folder / "astronaut.png")
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(folder / "grey.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a JPEG")
    return folder


def _one_line_error(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"jaxface {command}: error: ")
    return err[0]


def test_neutral_writes_meshes_previews_and_weights(photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["neutral", "--photo", str(photos / "astronaut.png"), "--out", str(out)]) == 0
    assert "1790 vertices" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == ["landmarks.png", "neutral.json", "neutral.obj",
                                       "neutral.ply", "preview.png"]
    tmpl = load_face_template(1)
    for fmt in ("ply", "obj"):
        v, f = read_mesh(out / f"neutral.{fmt}")
        assert v.shape == (1790, 3) and np.isfinite(v).all()
        np.testing.assert_array_equal(f, tmpl.faces)
    record = json.loads((out / "neutral.json").read_text())
    assert len(record["weights"]) == 52 and record["level"] == 1
    assert 0 <= min(record["weights"].values()) and max(record["weights"].values()) <= 1
    assert record["mediapipe_scores"]["mouthSmile_L"] > 0.5
    assert 0 < record["residual_mm"] < 2.0
    lift = record["mouth_corner_lift_mm"]
    assert lift["photo"] - lift["template"] > 5.0
    assert lift["neutral"] - lift["template"] < 0.25 * (lift["photo"] - lift["template"])
    from PIL import Image

    with Image.open(out / "landmarks.png") as im:
        assert im.size == (512, 512)
    with Image.open(out / "preview.png") as im:
        assert im.size[0] > im.size[1]


@pytest.mark.parametrize("name, message", [
    ("grey.png", "grey.png: no face found in the 320 x 240 image"),
    ("broken.jpg", "broken.jpg: not a readable image"),
    ("missing.png", "missing.png: no such image file"),
])
def test_neutral_bad_photos_fail_in_one_line(photos, tmp_path, capsys, name, message):
    out = tmp_path / "out"
    assert main(["neutral", "--photo", str(photos / name), "--out", str(out)]) == 2
    assert message in _one_line_error(capsys, "neutral")
    assert not out.exists()


def test_generate_photo_and_neutral_are_exclusive(photos, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--photo", str(photos / "astronaut.png"), "--neutral", "face.ply",
              "--expression", "high_smile", "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_generate_photo_without_a_face_fails_before_any_training(photos, tmp_path, capsys,
                                                                  monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(cache))
    monkeypatch.setenv(RECIPE_ENV, "tiny")
    out = tmp_path / "out"
    assert main(["generate", "--photo", str(photos / "grey.png"), "--expression", "high_smile",
                 "--out", str(out)]) == 2
    assert "no face found" in _one_line_error(capsys, "generate")
    assert not out.exists() and not (cache / "models").exists()


def test_generate_animates_the_photo_neutral(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv(RECIPE_ENV, "tiny")
    out = tmp_path / "out"
    assert main(["generate", "--photo", str(photos / "astronaut.png"), "--expression",
                 "high_smile", "--no-gif", "--quiet", "--out", str(out)]) == 0
    record = json.loads((out / "generation.json").read_text())
    assert record["neutral"].startswith("fitted to ") and record["neutral"].endswith(
        "astronaut.png")
    n = record["num_vertices"]
    assert record["photo"]["num_vertices"] == n and record["photo"]["residual_mm"] > 0
    neutral, _ = read_mesh(out / "neutral.ply")
    import skimage.data

    from jaxface.data.photo import photo_to_neutral, template_level

    expected = photo_to_neutral(skimage.data.astronaut(), template_level(n)).vertices
    np.testing.assert_allclose(neutral, expected, atol=1e-6)
    frames = sorted(os.listdir(out / "sample_00"))
    first, _ = read_mesh(out / "sample_00" / frames[0])
    last, _ = read_mesh(out / "sample_00" / frames[-1])
    assert np.abs(last - first).max() > 1e-3  # the face moves
