"""Bad input is one clear line: damaged PLY files, config typos, impossible loops, small meshes;
and files keep the user's permissions."""

import os
import stat
import sys
import time

import pytest

from jaxface.cli import main
from jaxface.files import staging_dir, write_json
from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import read_mesh, write_mesh
from jaxface.train import LoopConfig
from tests.faults.helpers import one_line, run


@pytest.fixture
def sphere(tmp_path):
    vertices, faces = primitives.icosphere(1)  # 42 vertices, 80 faces
    binary, text = tmp_path / "binary.ply", tmp_path / "ascii.ply"
    write_mesh(binary, vertices, faces)
    write_mesh(text, vertices, faces, ascii=True)
    return binary, text


@pytest.mark.parametrize("kind, edit, expected", [
    ("binary", lambda b: b.replace(b"element vertex 42", b"element vertex 50"),
     "declares 50 vertices and 80 faces but the body ends before them"),
    ("binary", lambda b: b[:-100], "declares 42 vertices and 80 faces but the body ends"),
    ("binary", lambda b: b.replace(b"element face 80", b"element face 70"),
     "declares 42 vertices and 70 faces (1414 bytes) but the body has 1544 bytes"),
    ("ascii", lambda b: b.replace(b"element face 80", b"element face 70"),
     "declares 42 vertices and 70 faces (112 lines) but the body has 122 lines"),
    ("ascii", lambda b: b + b"3 0 1 2\n",
     "declares 42 vertices and 80 faces (122 lines) but the body has 123 lines"),
])
def test_a_ply_whose_header_disagrees_with_its_body_says_so(sphere, tmp_path, kind, edit,
                                                            expected):
    source = sphere[0] if kind == "binary" else sphere[1]
    damaged = tmp_path / "damaged.ply"
    damaged.write_bytes(edit(source.read_bytes()))
    with pytest.raises(MeshError) as err:
        read_mesh(damaged)
    assert str(err.value).startswith(f"{damaged}: header: {expected}")


def test_mesh_info_on_a_small_template_suggests_factors_that_fit(sphere, capsys, tmp_path):
    status = main(["mesh-info", str(sphere[0]), "--cache-dir", str(tmp_path / "cache")])
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "the template's 42 vertices are too few for --factors 4 4 4 4 (levels 42 -> 11 -> 3 " \
           "-> 1 -> 1)" in err[0]
    assert err[0].endswith("these fit: --factors 4 (42 -> 11)")
    assert main(["mesh-info", str(sphere[0]), "--factors", "4",
                 "--cache-dir", str(tmp_path / "cache")]) == 0


def test_a_config_typo_on_a_launcher_names_the_close_matches(tmp_path):
    result = run([sys.executable, "-m", "experiments.s2d.main",
                  "--config=jaxface/configs/s2d.py:test", "--config.optim.num_epoch=3",
                  f"--workdir={tmp_path / 'run'}"])
    assert result.returncode == 2
    assert one_line(result.stderr) == (
        "experiments.s2d.main: error: --config.optim.num_epoch: the config has no field "
        "'optim.num_epoch'; close matches: --config.optim.num_epochs")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("fields, message", [
    ({"num_epochs": 0}, "num_epochs must be a whole number >= 1, got 0"),
    ({"num_epochs": 2, "log_every": 0}, "log_every must be a whole number >= 1, got 0"),
    ({"num_epochs": 2, "checkpoint_every": -5}, "checkpoint_every must be a whole number >= 1"),
    ({"num_epochs": 2, "seed": 2**64}, "seed must fit in 64 bits"),
])
def test_a_loop_that_cannot_run_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        LoopConfig(**fields)


def test_files_and_folders_get_the_users_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = write_json(tmp_path / "config.json", {"a": 1})
        folder = staging_dir(tmp_path / "out")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o750


def test_staging_folders_left_by_killed_runs_are_cleared_after_a_day(tmp_path):
    old, fresh = tmp_path / ".out.tmp-old", tmp_path / ".out.tmp-fresh"
    old.mkdir()
    fresh.mkdir()
    two_days_ago = time.time() - 2 * 86400
    os.utime(old, (two_days_ago, two_days_ago))
    folder = staging_dir(tmp_path / "out")
    assert sorted(os.listdir(tmp_path)) == sorted([fresh.name, os.path.basename(folder)])
