"""Tests for ``jaxface mesh-info`` through ``jaxface.cli.main``."""

import numpy as np

from jaxface.cli import main
from jaxface.mesh import primitives
from jaxface.mesh.cache import load_topology
from jaxface.mesh.io import write_mesh


def _template(tmp_path):
    vertices, faces = primitives.spherical_cap(3, 0.0)
    path = tmp_path / "template.ply"
    write_mesh(path, vertices, faces)
    return str(path), vertices, faces


def test_prints_a_summary_and_writes_the_topology(tmp_path, capsys):
    path, vertices, faces = _template(tmp_path)
    out = tmp_path / "topology.npz"
    status = main(["mesh-info", path, "--factors", "4", "4", "--rings", "2", "2", "1",
                   "--dilation", "2", "1", "1", "--spiral-length", "auto", "auto", "7",
                   "--cache-dir", str(tmp_path / "cache"), "--out", str(out)])
    assert status == 0
    printed = capsys.readouterr().out
    hierarchy, spirals, meta = load_topology(out)
    sizes = " -> ".join(str(size) for size in hierarchy.sizes)
    assert f"vertices:        {vertices.shape[0]}" in printed
    assert f"faces:           {faces.shape[0]}" in printed
    assert "components:      1" in printed
    assert "boundary loops:  1" in printed
    assert f"levels:          {sizes}" in printed
    assert "spiral lengths:  " + " ".join(str(s.shape[1]) for s in spirals) in printed
    assert spirals[2].shape[1] == 7
    assert str(tmp_path / "cache") in printed
    assert meta["order"] == "neural3dmm"
    np.testing.assert_array_equal(hierarchy.vertices(0), vertices)


def test_spiralnet_order_default_length(tmp_path, capsys):
    path, _, _ = _template(tmp_path)
    status = main(["mesh-info", path, "--factors", "4", "--order", "spiralnet",
                   "--cache-dir", str(tmp_path / "cache")])
    assert status == 0
    assert "spiral lengths:  9 9" in capsys.readouterr().out


def _one_line_error(capsys):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("jaxface mesh-info: error: ")
    assert "Traceback" not in captured.err
    return lines[0]


def test_missing_file_is_one_line(tmp_path, capsys):
    missing = str(tmp_path / "missing.ply")
    assert main(["mesh-info", missing, "--cache-dir", str(tmp_path)]) == 2
    assert _one_line_error(capsys) == f"jaxface mesh-info: error: {missing}: file not found"


def test_malformed_file_is_one_line(tmp_path, capsys):
    quad = tmp_path / "quad.obj"
    quad.write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    assert main(["mesh-info", str(quad), "--cache-dir", str(tmp_path)]) == 2
    line = _one_line_error(capsys)
    assert str(quad) in line and "faces: expected triangles" in line


def test_wrong_number_of_per_level_values(tmp_path, capsys):
    path, _, _ = _template(tmp_path)
    status = main(["mesh-info", path, "--factors", "4", "4", "--rings", "1", "2",
                   "--cache-dir", str(tmp_path / "cache")])
    assert status == 2
    assert "--rings takes 1 value or 3 (one per level), got 2" in _one_line_error(capsys)
