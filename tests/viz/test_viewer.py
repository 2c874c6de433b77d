"""The HTML viewer: sequences found in a folder, embedded so the page rebuilds every frame."""

import base64
import json
import re

import numpy as np
import pytest

from jaxface.mesh.errors import MeshError
from jaxface.mesh.gltf import write_glb
from jaxface.mesh.io import write_mesh, write_sequence
from jaxface.viz.viewer import (
    VIEWER_FILE,
    ViewerSequence,
    find_sequences,
    viewer_html,
    write_viewer,
)
from tests.mesh.motion import jaw_motion


def embedded(page: str) -> list[dict]:
    """The sequence records of a page."""
    match = re.search(r'<script type="application/json" id="sequences">(.*?)</script>', page,
                      re.S)
    assert match, "the page holds no sequence data"
    return json.loads(match.group(1))


def rebuild(record: dict) -> np.ndarray:
    """The frames of a record, computed as the page's script computes them."""
    def array(key, dtype):
        return np.frombuffer(base64.b64decode(record[key]), dtype)

    n, k = record["numVertices"], record["numTargets"]
    base = array("base", "<f4").astype(np.float64)
    targets = array("targets", "<i2").reshape(k, 3 * n) * np.asarray(record["steps"])[:, None]
    weights = array("weights", "<f4").reshape(record["numFrames"], k).astype(np.float64)
    return (base + weights @ targets).reshape(-1, n, 3)


def test_glb_files_are_found_and_embedded_frame_exact(tmp_path):
    frames, faces = jaw_motion(12)
    noisy, _ = jaw_motion(6, noise=1e-4)
    write_glb(tmp_path / "sample_00.glb", frames, faces, fps=30.0)
    write_glb(tmp_path / "sample_01.glb", noisy, faces, fps=24.0)
    write_sequence(tmp_path / "sample_00", frames, faces)   # PLY beside: the .glb files win
    sequences = find_sequences(tmp_path)
    assert [(s.name, s.frames.shape[0], s.fps) for s in sequences] == [
        ("sample_00", 12, 30.0), ("sample_01", 6, 24.0)]
    page = viewer_html(sequences, title="jaw <test>")
    assert "<title>jaw &lt;test&gt;</title>" in page
    records = embedded(page)
    assert [r["name"] for r in records] == ["sample_00", "sample_01"]
    for record, truth in zip(records, (frames, noisy), strict=True):
        assert np.abs(rebuild(record) - truth).max() < 2e-5   # metres: far below a pixel
        np.testing.assert_array_equal(
            np.frombuffer(base64.b64decode(record["faces"]), "<u4").reshape(-1, 3), faces)
        moved = np.linalg.norm(truth - truth[0], axis=-1).max()
        assert record["maxDisplacement"] == pytest.approx(moved, rel=1e-5)
    assert records[0]["numTargets"] == 1    # the smooth motion is one target: int16 [1, N, 3]
    assert len(base64.b64decode(records[0]["targets"])) == 468 * 3 * 2


def test_frame_folders_are_read_when_there_is_no_glb(tmp_path):
    frames, faces = jaw_motion(5)
    write_sequence(tmp_path / "b", frames[:3], faces, fmt="obj")
    write_sequence(tmp_path / "a", frames, faces)
    write_mesh(tmp_path / "neutral.ply", frames[0], faces)       # not a frame: ignored
    sequences = find_sequences(tmp_path, fps=12.0)
    assert [(s.name, len(s.frames), s.fps) for s in sequences] == [("a", 5, 12.0), ("b", 3, 12.0)]
    np.testing.assert_array_equal(sequences[0].frames, frames)
    single = tmp_path / "a"
    assert [s.name for s in find_sequences(single)] == ["a"]     # a folder of frames itself


def test_write_viewer_writes_one_page_into_the_folder(tmp_path):
    frames, faces = jaw_motion(4)
    write_glb(tmp_path / "s.glb", frames, faces, fps=30.0)
    path = write_viewer(tmp_path)
    assert path == str(tmp_path / VIEWER_FILE)
    page = (tmp_path / VIEWER_FILE).read_text()
    assert page.startswith("<!DOCTYPE html>") and "__SEQUENCES__" not in page
    assert "http://" not in page and "https://" not in page       # nothing to fetch
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    write_viewer(tmp_path)                                         # again: replaces the page


def test_names_cannot_close_the_data_script(tmp_path):
    frames, faces = jaw_motion(3)
    page = viewer_html([ViewerSequence("</script><script>alert(1)", frames, faces, 30.0)])
    assert page.count("</script>") == 2   # the data element's and the program's own
    assert embedded(page)[0]["name"] == "</script><script>alert(1)"


def test_folders_without_sequences_and_mixed_topologies_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        find_sequences(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"empty: no sequences found \(no .glb files, and no "
                                         r"folder of frame_\*.ply or frame_\*.obj meshes\)"):
        find_sequences(tmp_path / "empty")
    frames, faces = jaw_motion(2)
    write_mesh(tmp_path / "mixed" / "frame_000000.ply", frames[0], faces)
    write_mesh(tmp_path / "mixed" / "frame_000001.ply", frames[1], faces[:-1])
    with pytest.raises(MeshError, match=r"frame_000001.ply: has 468 vertices and 851 faces, not "
                                        r"the topology of frame_000000.ply"):
        find_sequences(tmp_path / "mixed")
    with pytest.raises(ValueError, match="at least one sequence"):
        viewer_html([])


def test_glb_files_in_sub_folders_are_named_by_file_unless_names_repeat(tmp_path):
    frames, faces = jaw_motion(3)
    write_glb(tmp_path / "glb" / "sample_00.glb", frames, faces, fps=30.0)
    write_glb(tmp_path / "glb" / "sample_01.glb", frames, faces, fps=30.0)
    assert [s.name for s in find_sequences(tmp_path)] == ["sample_00", "sample_01"]
    write_glb(tmp_path / "other" / "sample_00.glb", frames, faces, fps=30.0)
    assert [s.name for s in find_sequences(tmp_path)] == [
        "glb/sample_00", "glb/sample_01", "other/sample_00"]
