"""``jaxface view``: one page per output folder; a folder without sequences is a one-line error."""

from jaxface.cli import main
from jaxface.mesh.gltf import write_glb
from jaxface.mesh.io import write_sequence
from tests.mesh.motion import jaw_motion


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("jaxface view: error: ")
    return err[0]


def test_view_writes_the_page_beside_the_sequences(tmp_path, capsys):
    frames, faces = jaw_motion(6)
    write_glb(tmp_path / "sample_00.glb", frames, faces, fps=30.0)
    write_glb(tmp_path / "sample_01.glb", frames[::-1], faces, fps=30.0)
    assert main(["view", str(tmp_path), "--title", "two samples"]) == 0
    page = (tmp_path / "viewer.html").read_text()
    assert "<title>two samples</title>" in page
    assert '"name":"sample_00"' in page and '"name":"sample_01"' in page
    assert f"wrote {tmp_path / 'viewer.html'}" in capsys.readouterr().out


def test_view_plays_frame_folders_at_the_given_rate(tmp_path):
    frames, faces = jaw_motion(4)
    write_sequence(tmp_path / "sample_00", frames, faces)
    assert main(["view", str(tmp_path), "--fps", "12.5"]) == 0
    assert '"fps":12.5' in (tmp_path / "viewer.html").read_text()


def test_view_refuses_folders_without_sequences_on_one_line(tmp_path, capsys):
    assert main(["view", str(tmp_path)]) == 2
    assert _one_line_error(capsys).endswith(
        f"{tmp_path}: no sequences found (no .glb files, and no folder of frame_*.ply or "
        "frame_*.obj meshes)")
    assert not (tmp_path / "viewer.html").exists()
    assert main(["view", str(tmp_path / "missing")]) == 2
    assert _one_line_error(capsys).endswith(f"{tmp_path / 'missing'}: no such folder")
