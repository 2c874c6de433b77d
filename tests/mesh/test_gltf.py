"""Animated binary glTF: compact, exact morph-target encodings that read back frame by frame."""

import json
import struct

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.gltf import (
    GlbInfo,
    glb_size_bound,
    motion_basis,
    read_glb,
    write_glb,
)
from jaxface.mesh.topology import vertex_normals
from tests.mesh.motion import jaw_motion


def parse_glb(path) -> tuple[dict, bytes]:
    """The JSON document and the binary chunk of a ``.glb``, read by the container's layout."""
    with open(path, "rb") as stream:
        data = stream.read()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    json_length, json_type = struct.unpack_from("<I4s", data, 12)
    assert json_type == b"JSON" and json_length % 4 == 0
    document = json.loads(data[20:20 + json_length])
    bin_length, bin_type = struct.unpack_from("<I4s", data, 20 + json_length)
    assert bin_type == b"BIN\0" and bin_length % 4 == 0
    blob = data[28 + json_length:28 + json_length + bin_length]
    assert 28 + json_length + bin_length == len(data)
    return document, blob


def accessor_data(document: dict, blob: bytes, index: int) -> np.ndarray:
    accessor = document["accessors"][index]
    view = document["bufferViews"][accessor["bufferView"]]
    dtype = {5126: "<f4", 5123: "<u2", 5125: "<u4"}[accessor["componentType"]]
    width = {"SCALAR": 1, "VEC3": 3}[accessor["type"]]
    start = view["byteOffset"] + accessor.get("byteOffset", 0)
    return np.frombuffer(blob, dtype, accessor["count"] * width, start).reshape(-1, width)


def decode(path) -> np.ndarray:
    """Every keyframe of a written file, decoded from the raw JSON and buffer (no library)."""
    document, blob = parse_glb(path)
    primitive = document["meshes"][0]["primitives"][0]
    base = accessor_data(document, blob, primitive["attributes"]["POSITION"]).astype(np.float64)
    targets = [accessor_data(document, blob, t["POSITION"]) for t in primitive.get("targets", [])]
    if not targets:
        return base[None]
    sampler = document["animations"][0]["samplers"][0]
    assert sampler["interpolation"] == "LINEAR"
    weights = accessor_data(document, blob, sampler["output"]).reshape(-1, len(targets))
    return base + np.einsum("tk,knc->tnc", weights.astype(np.float64),
                            np.stack(targets).astype(np.float64))


def test_smooth_motion_is_a_few_targets_and_every_frame_reads_back_within_tolerance(tmp_path):
    frames, faces = jaw_motion(20)
    info = write_glb(tmp_path / "jaw.glb", frames, faces, fps=25.0, name="jaw")
    assert isinstance(info, GlbInfo) and info.encoding == "svd"
    assert info.num_targets == 1   # one motion pattern scaled over time
    assert info.max_error <= 1e-5 and info.num_frames == 20 and info.num_vertices == 468
    assert info.bytes == (tmp_path / "jaw.glb").stat().st_size
    assert info.bytes <= glb_size_bound(20, 468, len(faces))
    np.testing.assert_allclose(decode(tmp_path / "jaw.glb"), frames, atol=1e-5, rtol=0)
    back = read_glb(tmp_path / "jaw.glb")
    assert back.frames.shape == frames.shape and back.fps == 25.0 and back.name == "jaw"
    np.testing.assert_allclose(back.frames, frames, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(back.faces, faces)
    np.testing.assert_allclose(back.times, np.arange(20) / 25.0, rtol=1e-6)


def test_noisy_motion_falls_back_to_frame_deltas_exact_to_float32(tmp_path):
    frames, faces = jaw_motion(8, noise=2e-4)
    info = write_glb(tmp_path / "noisy.glb", frames, faces, fps=30.0)
    assert info.encoding == "frames" and info.num_targets == 7   # frame 0 is the base
    assert info.bytes <= glb_size_bound(8, 468, len(faces))       # the worst case is bounded
    assert info.max_error < 1e-7
    np.testing.assert_allclose(read_glb(tmp_path / "noisy.glb").frames, frames, atol=1e-7, rtol=0)
    document, _ = parse_glb(tmp_path / "noisy.glb")
    mesh = document["meshes"][0]
    assert mesh["extras"]["targetNames"] == [f"frame_{t:06d}" for t in range(1, 8)]
    assert mesh["extras"]["jaxface"]["encoding"] == "frames"


def test_rank_grows_until_the_tolerance_is_met():
    frames, _ = jaw_motion(10, noise=2e-6)     # noise below a loose tolerance, above a tight one
    loose = motion_basis(frames, tolerance=5e-5)
    tight = motion_basis(frames, tolerance=1e-7)
    assert loose[2] == "svd" and loose[0].shape[0] < tight[0].shape[0]
    for targets, weights, _, error in (loose, tight):
        stored = frames[0].astype(np.float64) + np.einsum(
            "tk,knc->tnc", weights.astype(np.float64), targets.astype(np.float64))
        assert np.abs(stored - frames).max() == pytest.approx(error)


def test_the_file_follows_the_specification(tmp_path):
    frames, faces = jaw_motion(6)
    write_glb(tmp_path / "face.glb", frames, faces, fps=30.0)
    document, blob = parse_glb(tmp_path / "face.glb")
    assert document["asset"]["version"] == "2.0"
    primitive = document["meshes"][0]["primitives"][0]
    for accessor in [primitive["attributes"]["POSITION"],
                     *(t["POSITION"] for t in primitive["targets"])]:
        data = accessor_data(document, blob, accessor)   # min/max present and exact
        assert document["accessors"][accessor]["min"] == data.min(axis=0).tolist()
        assert document["accessors"][accessor]["max"] == data.max(axis=0).tolist()
    normals = accessor_data(document, blob, primitive["attributes"]["NORMAL"])
    np.testing.assert_allclose(np.linalg.norm(normals, axis=1), 1.0, atol=1e-6)
    assert document["accessors"][primitive["indices"]]["componentType"] == 5123   # uint16
    assert all("NORMAL" in t for t in primitive["targets"])
    channel = document["animations"][0]["channels"][0]
    assert channel["target"] == {"node": 0, "path": "weights"}
    times = document["accessors"][document["animations"][0]["samplers"][0]["input"]]
    assert times["min"] == [0.0] and times["max"] == [pytest.approx(5 / 30.0)]
    for view in document["bufferViews"]:
        assert view["byteOffset"] % 4 == 0


def test_normal_targets_follow_the_motion_and_can_be_left_out(tmp_path):
    frames, faces = jaw_motion(6)
    with_normals = write_glb(tmp_path / "a.glb", frames, faces, fps=30.0)
    without = write_glb(tmp_path / "b.glb", frames, faces, fps=30.0, normals=False)
    assert without.bytes < with_normals.bytes
    document, blob = parse_glb(tmp_path / "a.glb")
    primitive = document["meshes"][0]["primitives"][0]
    base = accessor_data(document, blob, primitive["attributes"]["NORMAL"]).astype(np.float64)
    delta = accessor_data(document, blob, primitive["targets"][0]["NORMAL"]).astype(np.float64)
    weights = accessor_data(document, blob, document["animations"][0]["samplers"][0]["output"])
    last = base + float(weights[-1, 0]) * delta
    last /= np.linalg.norm(last, axis=1, keepdims=True)
    truth = vertex_normals(frames[-1].astype(np.float64), faces)
    assert np.abs(np.sum(last * truth, axis=1)).min() > 0.99
    assert "NORMAL" not in parse_glb(tmp_path / "b.glb")[0]["meshes"][0]["primitives"][0][
        "targets"][0]


def test_a_still_sequence_and_a_given_base(tmp_path):
    frames, faces = jaw_motion(5)
    info = write_glb(tmp_path / "still.glb", frames[:1], faces, fps=30.0)
    assert (info.encoding, info.num_targets) == ("static", 0)
    document, _ = parse_glb(tmp_path / "still.glb")
    assert "animations" not in document and "targets" not in document["meshes"][0]["primitives"][0]
    back = read_glb(tmp_path / "still.glb")
    np.testing.assert_array_equal(back.frames, frames[:1])
    info = write_glb(tmp_path / "based.glb", frames, faces, fps=30.0, base=frames[-1])
    np.testing.assert_allclose(read_glb(tmp_path / "based.glb").frames, frames, atol=1e-5, rtol=0)
    assert info.num_targets >= 1


def test_large_meshes_use_32_bit_indices(tmp_path):
    vertices, faces = primitives.grid_patch(260, 260)   # 67600 vertices
    frames = np.stack([vertices, vertices + np.float32(0.01) * vertices[:, [2, 2, 0]]])
    write_glb(tmp_path / "big.glb", frames, faces, fps=10.0)
    document, _ = parse_glb(tmp_path / "big.glb")
    primitive = document["meshes"][0]["primitives"][0]
    assert document["accessors"][primitive["indices"]]["componentType"] == 5125
    np.testing.assert_array_equal(read_glb(tmp_path / "big.glb").faces, faces)


@pytest.mark.parametrize("change, message", [
    (dict(path="face.gltf"), "face.gltf: path: expected a .glb file"),
    (dict(fps=0.0), "fps: expected a positive frame rate, got 0.0"),
    (dict(fps=float("nan")), "fps: expected a positive frame rate"),
    (dict(frames=np.zeros((3, 5))), "frames: expected frames of shape [T, N, 3] with T >= 1"),
    (dict(frames="nan"), "frames: expected finite coordinates, frame 2 has NaN or inf values"),
    (dict(faces=np.array([[0, 1, 999]])), "faces:"),
    (dict(tolerance=-1.0), "tolerance: expected a tolerance >= 0, got -1.0"),
])
def test_bad_input_is_refused_naming_the_problem(tmp_path, change, message):
    frames, faces = jaw_motion(4)
    if isinstance(change.get("frames"), str):
        frames = frames.copy()
        frames[2, 7, 1] = np.nan
        change = {}
    args = dict(path="face.glb", frames=frames, faces=faces, fps=30.0) | change
    tolerance = args.pop("tolerance", 1e-5)
    with pytest.raises(MeshError) as caught:
        write_glb(tmp_path / args.pop("path"), args["frames"], args["faces"], args["fps"],
                  tolerance=tolerance)
    assert message in str(caught.value)
    assert not list(tmp_path.iterdir())


def test_reading_refuses_what_is_not_a_glb(tmp_path):
    with pytest.raises(MeshError, match="file not found"):
        read_glb(tmp_path / "missing.glb")
    (tmp_path / "mesh.glb").write_bytes(b"ply\nformat ascii 1.0\n")
    with pytest.raises(MeshError, match="not a binary glTF file"):
        read_glb(tmp_path / "mesh.glb")
    frames, faces = jaw_motion(3)
    write_glb(tmp_path / "cut.glb", frames, faces, fps=30.0)
    data = (tmp_path / "cut.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(data[: len(data) // 2])
    with pytest.raises(MeshError, match="cut.glb"):
        read_glb(tmp_path / "cut.glb")
