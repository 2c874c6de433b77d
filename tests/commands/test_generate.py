"""``jaxface generate`` end to end on the tiny procedural set with tiny models."""

import json
import os

import numpy as np
import pytest

from jaxface.cli import main
from jaxface.configs.generate import RECIPES
from jaxface.configs.generate import get_config as recipe_config
from jaxface.generate import RECIPE_ENV, RECIPE_TIMES, bundle_name, load_generator
from jaxface.mesh import primitives
from jaxface.mesh.gltf import read_glb
from jaxface.mesh.io import read_mesh, write_mesh


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """One first run (no cached models: trains the tiny recipe), shared by the tests."""
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("out") / "mouth_open"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JAXFACE_CACHE_DIR", str(cache))
        mp.setenv(RECIPE_ENV, "tiny")
        status = main(["generate", "--expression", "mouth_open", "--out", str(out),
                       "--samples", "2", "--seed", "3"])
    return status, cache, out


def _env(monkeypatch, cache):
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(cache))
    monkeypatch.setenv(RECIPE_ENV, "tiny")


def _one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("jaxface generate: error: ")
    return err[0]


def test_first_run_trains_caches_and_writes_sequences(first_run):
    status, cache, out = first_run
    assert status == 0
    bundle = cache / "models" / bundle_name("tiny")
    assert (bundle / "manifest.json").is_file()
    assert not [p for p in os.listdir(cache / "models") if p.startswith(".tmp-")]
    for s in range(2):
        frames = sorted(os.listdir(out / f"sample_{s:02d}"))
        assert frames == [f"frame_{t:06d}.ply" for t in range(30)]
    vertices, faces = read_mesh(out / "sample_01" / "frame_000029.ply")
    assert vertices.shape == (468, 3) and np.isfinite(vertices).all()
    assert (out / "preview.png").stat().st_size > 0 and (out / "preview.gif").stat().st_size > 0
    meta = json.loads((out / "generation.json").read_text())
    assert meta["expression"] == "mouth_open" and meta["label"] == 9
    assert meta["files"] == 60 and meta["num_frames"] == 30
    generator = load_generator(bundle)
    assert generator.expressions[9] == "mouth_open"
    assert load_generator(bundle) is generator  # kept in memory


def test_each_sample_is_also_an_animated_glb_in_metres(first_run):
    _, _, out = first_run
    meta = json.loads((out / "generation.json").read_text())
    assert meta["fps"] == 30.0
    assert [g["file"] for g in meta["glb"]] == ["glb/sample_00.glb", "glb/sample_01.glb"]
    for s, record in enumerate(meta["glb"]):
        sequence = read_glb(out / record["file"])
        assert sequence.fps == 30.0 and sequence.frames.shape == (30, 468, 3)
        assert record["max_error_m"] <= 1e-5 and sequence.num_targets == record["targets"]
        for t in (0, 17, 29):
            vertices, _ = read_mesh(out / f"sample_{s:02d}" / f"frame_{t:06d}.ply")
            np.testing.assert_allclose(sequence.frames[t], vertices, atol=1e-5, rtol=0)


def test_cached_models_with_a_given_neutral_obj_output_and_determinism(
    first_run, monkeypatch, tmp_path
):
    _, cache, out = first_run
    _env(monkeypatch, cache)
    neutral = str(out / "neutral.ply")
    args = ["generate", "--neutral", neutral, "--expression", "eyebrow", "--format", "obj",
            "--no-gif", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    # an --out whose parent folders do not exist yet is created with them
    assert main(args + ["--out", str(tmp_path / "new" / "runs" / "b"), "--models",
                        str(cache / "models" / bundle_name("tiny"))]) == 0
    a, _ = read_mesh(tmp_path / "a" / "sample_00" / "frame_000020.obj")
    b, _ = read_mesh(tmp_path / "new" / "runs" / "b" / "sample_00" / "frame_000020.obj")
    np.testing.assert_array_equal(a, b)
    assert not (tmp_path / "a" / "preview.gif").exists()
    first, _ = read_mesh(tmp_path / "a" / "sample_00" / "frame_000000.obj")
    neutral_vertices, _ = read_mesh(neutral)
    assert np.abs(a - neutral_vertices).max() > np.abs(first - neutral_vertices).max()


def test_wrong_topology_and_unknown_expression_are_one_line_errors(
    first_run, monkeypatch, tmp_path, capsys
):
    _, cache, out = first_run
    _env(monkeypatch, cache)
    vertices, faces = primitives.spherical_cap(3, 0.0)
    other = tmp_path / "face.ply"
    write_mesh(other, vertices, faces)
    capsys.readouterr()
    assert main(["generate", "--neutral", str(other), "--expression", "mouth_open",
                 "--out", str(tmp_path / "x")]) == 2
    line = _one_line_error(capsys)  # another topology is a scan: its landmarks are looked for
    assert line.endswith(f"{other}: no face found on renders of the scan from 24 directions; "
                         "give its landmarks in a file (68 iBUG or 468 MediaPipe points, x y z "
                         "per line); pass it with --landmarks FILE")
    neutral, template_faces = read_mesh(out / "neutral.ply")
    flipped = tmp_path / "flipped.ply"
    write_mesh(flipped, neutral, template_faces[:, ::-1])
    assert main(["generate", "--neutral", str(flipped), "--expression", "mouth_open",
                 "--out", str(tmp_path / "y")]) == 2
    assert "its faces are not the model's template's" in _one_line_error(capsys)
    assert main(["generate", "--expression", "grin", "--out", str(tmp_path / "z")]) == 2
    assert "unknown expression 'grin'; choose from bareteeth" in _one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_recipe_flag_selects_the_bundle_and_rejects_unknown_recipes(
    first_run, monkeypatch, tmp_path, capsys
):
    _, cache, _ = first_run
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(cache))
    monkeypatch.setenv(RECIPE_ENV, "default")  # the flag wins over the environment
    assert main(["generate", "--recipe", "tiny", "--expression", "lips_up", "--no-gif",
                 "--quiet", "--out", str(tmp_path / "a")]) == 0
    meta = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert meta["models"].endswith(bundle_name("tiny"))
    capsys.readouterr()
    assert main(["generate", "--recipe", "huge", "--expression", "lips_up",
                 "--out", str(tmp_path / "b")]) == 2
    assert "unknown generation recipe 'huge'" in _one_line_error(capsys)
    assert not (tmp_path / "b").exists()


def test_quality_recipe_trains_the_same_networks_longer():
    default, quality = recipe_config("default"), recipe_config("quality")
    assert quality.gan.model == default.gan.model and quality.s2d.model == default.s2d.model
    assert quality.gan.optim.num_epochs > default.gan.optim.num_epochs
    assert quality.s2d.frame_stride < default.s2d.frame_stride
    # frames S2D-Dec sees: its epochs over every frame_stride-th frame
    def seen(c):
        return c.s2d.optim.num_epochs / c.s2d.frame_stride

    assert seen(quality) > 2 * seen(default)
    assert set(RECIPE_TIMES) == set(RECIPES)


def test_unknown_expression_fails_before_any_training(monkeypatch, tmp_path, capsys):
    _env(monkeypatch, tmp_path / "empty_cache")
    assert main(["generate", "--expression", "grin", "--out", str(tmp_path / "out")]) == 2
    assert "unknown expression 'grin'; choose from bareteeth" in _one_line_error(capsys)
    assert not (tmp_path / "empty_cache").exists() and not (tmp_path / "out").exists()


def _scan_of(neutral, faces, rng):
    """The neutral face remeshed (midpoint subdivision, decimation), with a 'back of the head'
    (the face mirrored, 10 cm or more behind it), vertices shuffled: ``(vertices, faces,
    back)``, ``back`` the mask of the back's vertices."""
    import fast_simplification

    from jaxface.mesh.subdivision import subdivide

    sub = subdivide(neutral.astype(np.float64), faces, scheme="midpoint")
    v, f = fast_simplification.simplify(sub.vertices, np.array(sub.faces, np.int32),
                                        target_count=2400)
    v = np.concatenate([v, v * [1.0, 1.0, -1.0] + [0.0, 0.0, -0.25]])
    f = np.concatenate([f, f[:, ::-1] + len(v) // 2])
    order = rng.permutation(len(v))
    back = order >= len(v) // 2
    return v[order], np.argsort(order)[f].astype(np.int32), back


def test_a_scan_of_another_topology_comes_back_in_its_own_topology(
    first_run, monkeypatch, tmp_path, capsys
):
    from jaxface.data.template import IBUG68_VERTICES

    _, cache, out = first_run
    _env(monkeypatch, cache)
    neutral, faces = read_mesh(out / "neutral.ply")
    scan, scan_faces, back = _scan_of(neutral, faces, np.random.default_rng(0))
    path, marks = tmp_path / "scan.obj", tmp_path / "marks.txt"
    write_mesh(path, 1000.0 * scan, scan_faces)  # millimetres
    np.savetxt(marks, 1000.0 * neutral[list(IBUG68_VERTICES)])
    capsys.readouterr()
    assert main(["generate", "--neutral", str(path), "--units", "mm", "--landmarks", str(marks),
                 "--expression", "mouth_open", "--samples", "2", "--no-gif",
                 "--out", str(tmp_path / "a")]) == 0
    printed = capsys.readouterr().out
    assert (f"registered the models' template (468 vertices) to the scan ({len(scan)} vertices) "
            f"on 68 iBUG points, 68 present ({marks})") in printed
    scan_mm, _ = read_mesh(path)
    for t in (0, 29):
        frame, frame_faces = read_mesh(tmp_path / "a" / "sample_01" / f"frame_{t:06d}.ply")
        np.testing.assert_array_equal(frame_faces, scan_faces)  # the scan's topology and order
        # Far from the face: still (up to the float32 rounding of mm -> m -> mm).
        np.testing.assert_allclose(frame[back], scan_mm[back], atol=1e-4, rtol=0)
    moved = np.linalg.norm(frame - scan_mm, axis=1)  # frame 29, millimetres
    assert moved.max() > 2.0 and np.median(moved[~back]) > 0.1
    glb = read_glb(tmp_path / "a" / "glb" / "sample_01.glb")
    np.testing.assert_allclose(glb.frames[29], frame / 1000.0, atol=2e-5)  # metres
    meta = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert meta["num_vertices"] == len(scan) and meta["units"] == "mm"
    record = meta["registration"]
    assert record["landmarks"] == {"set": "ibug68", "source": str(marks), "present": 68}
    assert record["scan_vertices"] == len(scan) and record["template_vertices"] == 468
    assert record["residual_mm"]["mean"] < 0.5 and record["still_vertices"] >= back.sum()
    neutral_out, _ = read_mesh(tmp_path / "a" / "neutral.ply")
    np.testing.assert_allclose(neutral_out, scan_mm, atol=1e-4, rtol=0)


def test_a_scan_without_landmarks_gets_them_from_renders(first_run, monkeypatch, tmp_path,
                                                         capsys):
    pytest.importorskip("mediapipe")
    _, cache, out = first_run
    _env(monkeypatch, cache)
    neutral, faces = read_mesh(out / "neutral.ply")
    scan, scan_faces, back = _scan_of(neutral, faces, np.random.default_rng(1))
    path = tmp_path / "scan.ply"
    write_mesh(path, scan, scan_faces)
    capsys.readouterr()
    assert main(["generate", "--neutral", str(path), "--expression", "eyebrow", "--no-gif",
                 "--out", str(tmp_path / "a")]) == 0
    assert "MediaPipe points" in capsys.readouterr().out
    frame, _ = read_mesh(tmp_path / "a" / "sample_00" / "frame_000029.ply")
    scan, _ = read_mesh(path)  # float32, as written
    assert frame.shape == scan.shape and np.array_equal(frame[back], scan[back])
    meta = json.loads((tmp_path / "a" / "generation.json").read_text())
    assert meta["registration"]["landmarks"]["source"] == "detected"


def test_bad_scans_and_landmarks_are_one_line_errors(first_run, monkeypatch, tmp_path, capsys):
    _, cache, out = first_run
    _env(monkeypatch, cache)
    neutral, faces = read_mesh(out / "neutral.ply")
    points_only = tmp_path / "points.ply"
    points_only.write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\n"
                           "property float y\nproperty float z\nend_header\n0 0 0\n1 0 0\n"
                           "0 1 0\n")
    garbage = tmp_path / "garbage.obj"
    garbage.write_bytes(b"v 1 2 three\n")
    scan, scan_faces, _ = _scan_of(neutral, faces, np.random.default_rng(2))
    write_mesh(tmp_path / "scan.ply", scan, scan_faces)
    (tmp_path / "marks.txt").write_text("1 2 3\n" * 5)
    cases = [
        (["--neutral", str(points_only)], "points.ply: faces: expected a triangle mesh, the file "
                                          "has no faces"),
        (["--neutral", str(garbage)], "garbage.obj: vertices: line 1: unreadable vertex"),
        (["--neutral", str(tmp_path / "scan.ply"), "--landmarks", str(tmp_path / "marks.txt")],
         "marks.txt: expected 68 (iBUG) or 468 (MediaPipe) landmarks of 3 coordinates, got an "
         "array of shape [5, 3]"),
        (["--neutral", str(out / "neutral.ply"), "--landmarks", str(tmp_path / "marks.txt")],
         "--landmarks is for a --neutral scan whose vertex count is not the models' template's "
         "(468)"),
    ]
    capsys.readouterr()
    for flags, message in cases:
        assert main(["generate", *flags, "--expression", "mouth_open",
                     "--out", str(tmp_path / "x")]) == 2
        assert message in _one_line_error(capsys)
    assert not (tmp_path / "x").exists()
