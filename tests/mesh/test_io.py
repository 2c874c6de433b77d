"""Tests for jaxface.mesh.io: order-preserving round trips and one-line errors."""

import os

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology, read_mesh, write_mesh, write_sequence


@pytest.fixture
def tricky_mesh():
    """A grid where vertex 9 duplicates vertex 4's position and vertex 10 is unused."""
    vertices, faces = primitives.grid_patch(3, 3)
    vertices = np.concatenate([vertices, vertices[4:5], [[7.25, -1.5, 1e-7]]]).astype(np.float32)
    faces = faces.copy()
    faces[faces == 4] = 9  # all faces use the duplicate; vertex 4 keeps its position
    faces = np.concatenate([faces, [[4, 1, 2]]]).astype(np.int32)
    vertices[3] = [0.1234567, -3.3333333, 1e-30]  # values that need 9 digits
    return vertices, faces


def _write(path, text):
    with open(path, "w") as stream:
        stream.write(text)
    return str(path)


@pytest.mark.parametrize("name, ascii", [("m.ply", False), ("m.ply", True), ("m.obj", False)])
def test_round_trip_preserves_order_and_values(tmp_path, tricky_mesh, name, ascii):
    vertices, faces = tricky_mesh
    path = tmp_path / name
    write_mesh(path, vertices, faces, ascii=ascii)
    read_vertices, read_faces = read_mesh(path)
    assert read_vertices.dtype == np.float32 and read_faces.dtype == np.int32
    np.testing.assert_array_equal(read_vertices, vertices)
    np.testing.assert_array_equal(read_faces, faces)
    assert [p.name for p in tmp_path.iterdir()] == [name], "no temporary files left"


def test_ply_format_flags(tmp_path, tricky_mesh):
    vertices, faces = tricky_mesh
    write_mesh(tmp_path / "b.ply", vertices, faces)
    write_mesh(tmp_path / "a.ply", vertices, faces, ascii=True)
    assert b"format binary_little_endian 1.0" in (tmp_path / "b.ply").read_bytes()[:100]
    assert b"format ascii 1.0" in (tmp_path / "a.ply").read_bytes()[:100]


def test_reads_a_handwritten_ascii_ply(tmp_path):
    path = _write(tmp_path / "hand.ply", "\n".join([
        "ply", "format ascii 1.0", "comment hand written", "element vertex 4",
        "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue",
        "element face 2", "property list uchar int vertex_indices", "end_header",
        "0 0 0 255 0 0", "1 0 0 0 255 0", "0 0 0 0 0 255", "0 1 0 9 9 9",
        "3 0 1 3", "3 2 1 3", ""]))
    vertices, faces = read_mesh(path)
    np.testing.assert_array_equal(vertices, [[0, 0, 0], [1, 0, 0], [0, 0, 0], [0, 1, 0]])
    np.testing.assert_array_equal(faces, [[0, 1, 3], [2, 1, 3]])


def test_reads_a_handwritten_obj_with_texture_indices(tmp_path):
    path = _write(tmp_path / "hand.obj", "\n".join([
        "# comment", "o thing", "v 0 0 0", "v 1 0 0", "v 1 1 0", "v 0 0 0", "v 5 5 5",
        "vt 0 0", "vt 1 0", "vt 1 1", "vt 0.5 0.5", "vn 0 0 1",
        "f 1/1/1 2/2/1 3/3/1", "f 4/4/1 3/3/1 2/1/1", ""]))
    vertices, faces = read_mesh(path)
    np.testing.assert_array_equal(vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0], [5, 5, 5]])
    np.testing.assert_array_equal(faces, [[0, 1, 2], [3, 2, 1]])


def test_obj_negative_indices_and_bad_tokens(tmp_path):
    text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nf -3 -2 -1\nv 0 1 0\nf 1 -2 -1\n"
    path = _write(tmp_path / "rel.obj", text)
    _, faces = read_mesh(path)
    np.testing.assert_array_equal(faces, [[0, 1, 2], [0, 2, 3]])
    _raises_naming(_write(tmp_path / "bad.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 x\n"),
                   "line 4: unreadable face index")
    _raises_naming(_write(tmp_path / "zero.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 0 1 2\n"),
                   "OBJ indices start at 1")


def test_reads_a_binary_ply_written_by_trimesh(tmp_path, tricky_mesh):
    import trimesh

    vertices, faces = tricky_mesh
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    path = tmp_path / "t.ply"
    path.write_bytes(trimesh.exchange.ply.export_ply(mesh, encoding="binary"))
    read_vertices, read_faces = read_mesh(path)
    np.testing.assert_array_equal(read_vertices, vertices)
    np.testing.assert_array_equal(read_faces, faces)


def _raises_naming(path, pattern):
    with pytest.raises(MeshError) as info:
        read_mesh(path)
    assert info.value.source == os.fspath(path)
    assert str(info.value).startswith(os.fspath(path))
    assert "\n" not in str(info.value)
    assert pattern in str(info.value)
    return info.value


def test_missing_file(tmp_path):
    _raises_naming(tmp_path / "nothing.ply", "file not found")


def test_unsupported_suffix(tmp_path):
    path = _write(tmp_path / "mesh.stl", "solid x\nendsolid x\n")
    assert _raises_naming(path, "expected a .ply or .obj file").field == "path"


def test_unparsable_ply(tmp_path):
    _raises_naming(_write(tmp_path / "garbage.ply", "hello\n1 2 3\n"), "not a PLY file")
    truncated = _write(tmp_path / "cut.ply", "\n".join([
        "ply", "format ascii 1.0", "element vertex 3", "property float x", "property float y",
        "property float z", "element face 1", "property list uchar int vertex_indices",
        "end_header", "0 0 0", "1 0", ""]))
    _raises_naming(truncated, "declares 3 vertices and 1 faces (4 lines) but the body has 2 "
                   "lines: the file is truncated")


def test_quads_are_refused_not_triangulated(tmp_path):
    ply = _write(tmp_path / "quad.ply", "\n".join([
        "ply", "format ascii 1.0", "element vertex 4", "property float x", "property float y",
        "property float z", "element face 1", "property list uchar int vertex_indices",
        "end_header", "0 0 0", "1 0 0", "1 1 0", "0 1 0", "4 0 1 2 3", ""]))
    assert _raises_naming(ply, "quads or polygons").field == "faces"
    obj = _write(tmp_path / "quad.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    assert _raises_naming(obj, "found 1 faces with [4] indices").field == "faces"


def test_non_finite_coordinates(tmp_path):
    ply = _write(tmp_path / "nan.ply", "\n".join([
        "ply", "format ascii 1.0", "element vertex 3", "property float x", "property float y",
        "property float z", "element face 1", "property list uchar int vertex_indices",
        "end_header", "0 0 0", "1 nan 0", "0 1 0", "3 0 1 2", ""]))
    assert _raises_naming(ply, "expected finite coordinates").field == "vertices"
    obj = _write(tmp_path / "inf.obj", "v 0 0 inf\nv 1 0 0\nv 1 1 0\nf 1 2 3\n")
    _raises_naming(obj, "first: vertex 0")


def test_point_cloud_has_no_faces(tmp_path):
    ply = _write(tmp_path / "points.ply", "\n".join([
        "ply", "format ascii 1.0", "element vertex 3", "property float x", "property float y",
        "property float z", "end_header", "0 0 0", "1 0 0", "0 1 0", ""]))
    _raises_naming(ply, "no faces")


def test_out_of_range_face_index(tmp_path):
    obj = _write(tmp_path / "range.obj", "v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3\nf 1 2 3\n")
    read_mesh(obj)  # valid
    ply = _write(tmp_path / "range.ply", "\n".join([
        "ply", "format ascii 1.0", "element vertex 3", "property float x", "property float y",
        "property float z", "element face 1", "property list uchar int vertex_indices",
        "end_header", "0 0 0", "1 0 0", "0 1 0", "3 0 1 7", ""]))
    with pytest.raises(MeshError) as info:
        read_mesh(ply)
    assert str(info.value).startswith(ply)


def test_check_topology(tricky_mesh):
    vertices, faces = tricky_mesh
    check_topology(vertices, faces, faces, vertices.shape[0])
    rotated = np.roll(faces, 1, axis=1)[::-1]  # same oriented triangles, other order
    check_topology(vertices, rotated, faces, vertices.shape[0])
    expected = r"^s.ply: vertices: expected the template's 11 vertices, found 10"
    with pytest.raises(MeshError, match=expected):
        check_topology(vertices[:-1], faces, faces, 11, source="s.ply")
    with pytest.raises(MeshError, match="faces: expected the template's 9 faces, found 8"):
        check_topology(vertices, faces[:-1], faces, 11)
    flipped = faces.copy()
    flipped[0] = flipped[0, ::-1]
    with pytest.raises(MeshError, match="1 of 9 differ"):
        check_topology(vertices, flipped, faces, 11, source="s.ply")


@pytest.mark.parametrize("fmt", ["ply", "obj"])
def test_write_sequence(tmp_path, fmt):
    vertices, faces = primitives.tetrahedron()
    frames = np.stack([vertices * (1 + t) for t in range(3)])
    paths = write_sequence(tmp_path / "seq", frames, faces, fmt=fmt)
    names = sorted(os.listdir(tmp_path / "seq"))
    assert names == [f"frame_{t:06d}.{fmt}" for t in range(3)]
    assert [os.path.basename(p) for p in paths] == names
    for t, path in enumerate(paths):
        read_vertices, read_faces = read_mesh(path)
        np.testing.assert_array_equal(read_vertices, frames[t])
        np.testing.assert_array_equal(read_faces, faces)


def test_writers_reject_bad_input(tmp_path):
    vertices, faces = primitives.tetrahedron()
    bad = vertices.copy()
    bad[2, 1] = np.nan
    with pytest.raises(MeshError, match="finite"):
        write_mesh(tmp_path / "x.ply", bad, faces)
    with pytest.raises(MeshError, match="frame 1"):
        write_sequence(tmp_path, np.stack([vertices, bad]), faces)
    with pytest.raises(MeshError, match="suffix"):
        write_mesh(tmp_path / "x.off", vertices, faces)
    assert not (tmp_path / "x.ply").exists()
