"""The CoMA builder on tiny fixtures in the release's exact layout, valid and broken."""

import os
import shutil

import numpy as np
import pytest

from datasets_tfds.coma import EXPRESSIONS, Coma
from datasets_tfds.coma.fixture import FIXTURE_SUBJECTS, write_fixture
from datasets_tfds.common import LayoutError, fixture_sequence
from jaxface.data import layout
from jaxface.data.landmarks import extract_landmarks, from_flame_embedding

SUBJECT = FIXTURE_SUBJECTS[0]


@pytest.fixture(scope="module")
def coma(tmp_path_factory, prepare):
    root = tmp_path_factory.mktemp("coma")
    truth = write_fixture(root / "manual")
    builder = prepare(Coma, root / "manual", root / "data")
    return root, truth, builder


def test_prepares_and_reads_back(coma, check):
    root, truth, builder = coma
    ds = check(builder, truth, num_vertices=12)
    assert builder.info.metadata["expressions"] == list(EXPRESSIONS)
    assert builder.data_path == root / "data" / "coma" / "default" / "1.0.0"
    ex = ds[0]
    assert ex["subject"] == SUBJECT.encode() and ex["expression"] == b"bareteeth"
    assert ex["source_frame"] == 1  # Frame numbers come from the file names.
    assert "landmarks" not in ex
    assert layout.load_landmark_definition(builder.data_path) is None
    template = layout.load_template(builder.data_path)
    np.testing.assert_array_equal(template["faces"], fixture_sequence("x", 1)[1])
    np.testing.assert_array_equal(template["vertices"], truth[(SUBJECT, "bareteeth")][0])


def test_writes_coma_and_s2d_protocols(coma):
    _, truth, builder = coma
    path = builder.data_path
    protocols = set(builder.info.metadata["protocols"])
    assert {"interpolation", "extrapolation_mouth_up", "expression_fold1"} <= protocols
    assert "identity_fold1" not in protocols  # The fixture has 2 subjects only.
    fold1 = layout.load_split(path, "expression_fold1")
    assert set(fold1.held_out) == {"mouth_up", "mouth_side", "mouth_open"}
    seqs = layout.load_sequences(path)
    test_expr = {s.expression for s in seqs for i in s.indices if i in set(fold1.test.tolist())}
    assert test_expr == set(fold1.held_out)
    interp = layout.load_split(path, "interpolation")
    assert interp.test.size == 10 and interp.train.size == 62  # 72 frames: ranks 0..9 test.
    np.testing.assert_array_equal(interp.test, np.arange(10))


def test_prepare_is_deterministic_and_detects_changed_sources(coma, tmp_path, prepare):
    root, _, builder = coma
    again = prepare(Coma, root / "manual", tmp_path / "data")
    name = "coma-frames.array_record-00000-of-00001"
    assert (again.data_path / name).read_bytes() == (builder.data_path / name).read_bytes()
    for f in ("stats.npz", "template.npz", "sequences.json", "source_manifest.tsv"):
        assert (again.data_path / f).read_bytes() == (builder.data_path / f).read_bytes()
    # Change one source file: both checksums change.
    manual = tmp_path / "manual"
    shutil.copytree(root / "manual", manual)
    target = manual / SUBJECT / "eyebrow" / "eyebrow.000002.ply"
    from jaxface.mesh.io import read_mesh, write_mesh

    v, f = read_mesh(target)
    write_mesh(target, v + 1e-3, f)
    changed = prepare(Coma, manual, tmp_path / "data2")
    old, new = builder.info.metadata, changed.info.metadata
    assert new["source_manifest_sha256"] != old["source_manifest_sha256"]
    assert new["content_sha256"] != old["content_sha256"]


def test_landmarks_config(tmp_path, prepare):
    write_fixture(tmp_path / "manual", subjects=(SUBJECT,), num_frames=2)
    rng = np.random.default_rng(0)
    bary = rng.random((68, 3))
    embedding = tmp_path / "landmark_embedding.npz"
    np.savez(
        embedding,
        lmk_face_idx=rng.integers(0, 12, 68),
        lmk_b_coords=bary / bary.sum(1, keepdims=True),
    )
    builder = prepare(
        Coma,
        tmp_path / "manual",
        tmp_path / "data",
        config="landmarks",
        landmark_embedding=embedding,
    )
    ds = builder.as_data_source("frames")
    faces = layout.load_template(builder.data_path)["faces"]
    definition = from_flame_embedding(embedding)
    for i in (0, 5, len(ds) - 1):
        ex = ds[i]
        assert ex["landmarks"].shape == (68, 3) and ex["landmarks"].dtype == np.float32
        want = extract_landmarks(ex["vertices"], definition, faces=faces)
        np.testing.assert_allclose(ex["landmarks"], want, atol=1e-7)
    template = layout.load_template(builder.data_path)
    np.testing.assert_array_equal(template["landmarks/face_indices"], definition.face_indices)
    assert builder.info.metadata["landmark_embedding"] == ["landmark_embedding.npz"]
    assert len(builder.info.metadata["landmark_embedding_sha256"][0]) == 64


def test_landmarks_config_needs_a_68_landmark_embedding(tmp_path, prepare):
    write_fixture(tmp_path / "manual", subjects=(SUBJECT,), num_frames=2)
    with pytest.raises(LayoutError, match="needs the FLAME landmark embedding"):
        prepare(Coma, tmp_path / "manual", tmp_path / "data", config="landmarks")
    wrong = tmp_path / "flame.npz"  # Refers to FLAME faces the 12-vertex fixture lacks.
    np.savez(wrong, lmk_face_idx=np.arange(68) * 100, lmk_b_coords=np.full((68, 3), 1 / 3))
    with pytest.raises(LayoutError, match="refers to face 6700 but the meshes have 12 faces"):
        prepare(
            Coma,
            tmp_path / "manual",
            tmp_path / "data",
            config="landmarks",
            landmark_embedding=wrong,
        )
    small = tmp_path / "static.npz"
    np.savez(small, lmk_face_idx=np.zeros(51, int), lmk_b_coords=np.full((51, 3), 1 / 3))
    with pytest.raises(LayoutError, match="gives 51 landmarks, expected 68"):
        prepare(
            Coma,
            tmp_path / "manual",
            tmp_path / "data",
            config="landmarks",
            landmark_embedding=small,
        )


# ----------------------------------------------------------------------------- broken releases


def _broken(tmp_path, prepare, damage, match):
    """Writes a 1-subject fixture, applies ``damage(manual)``, expects one clear LayoutError."""
    manual = tmp_path / "manual"
    write_fixture(manual, subjects=(SUBJECT,), num_frames=2)
    damaged = damage(manual)
    with pytest.raises(LayoutError) as err:
        prepare(Coma, manual, tmp_path / "data")
    message = str(err.value)
    assert os.fspath(damaged) in message, message
    assert match in message, message
    assert "\n" not in message
    assert not (tmp_path / "data" / "coma" / "default" / "1.0.0").exists()
    return message


def test_missing_manual_folder(tmp_path, prepare):
    with pytest.raises(LayoutError, match="missing or empty") as err:
        prepare(Coma, tmp_path / "nowhere", tmp_path / "data")
    assert os.fspath(tmp_path / "nowhere") in str(err.value)


def test_wrong_subject_folder_name(tmp_path, prepare):
    def damage(manual):
        bad = manual / "FaceTalk_1707_00137_TA"
        (manual / SUBJECT).rename(bad)
        return bad

    _broken(tmp_path, prepare, damage, "FaceTalk_XXXXXX_XXXXX_TA")


def test_missing_expression_folder(tmp_path, prepare):
    def damage(manual):
        shutil.rmtree(manual / SUBJECT / "lips_up")
        return manual / SUBJECT / "lips_up"

    _broken(tmp_path, prepare, damage, "missing expression folder")


def test_unknown_expression_folder(tmp_path, prepare):
    def damage(manual):
        (manual / SUBJECT / "yawn").mkdir()
        return manual / SUBJECT / "yawn"

    _broken(tmp_path, prepare, damage, "expected only the 12 CoMA expression folders")


def test_wrong_frame_file_name(tmp_path, prepare):
    def damage(manual):
        folder = manual / SUBJECT / "mouth_side"
        bad = folder / "mouth_side_000002.ply"
        (folder / "mouth_side.000002.ply").rename(bad)
        return bad

    _broken(tmp_path, prepare, damage, "expected mouth_side.NNNNNN.ply")


def test_vertex_count_mismatch(tmp_path, prepare):
    from jaxface.mesh.io import write_mesh
    from jaxface.mesh.primitives import grid_patch

    def damage(manual):
        target = manual / SUBJECT / "eyebrow" / "eyebrow.000002.ply"
        v, f = grid_patch(3, 3)
        write_mesh(target, v, f)
        return target

    message = _broken(tmp_path, prepare, damage, "has 9 vertices")
    assert "has 12" in message


def test_non_triangle_ply(tmp_path, prepare):
    def damage(manual):
        target = manual / SUBJECT / "cheeks_in" / "cheeks_in.000001.ply"
        lines = [
            "ply",
            "format ascii 1.0",
            "element vertex 12",
            "property float x",
            "property float y",
            "property float z",
            "element face 6",
            "property list uchar int vertex_indices",
            "end_header",
        ]
        lines += [f"{i % 4} {i // 4} 0" for i in range(12)]
        lines += [
            f"4 {r * 4 + c} {r * 4 + c + 1} {r * 4 + c + 5} {r * 4 + c + 4}"
            for r in range(2)
            for c in range(3)
        ]
        target.write_text("\n".join(lines) + "\n")
        return target

    _broken(tmp_path, prepare, damage, "triangle")


def test_unreadable_ply(tmp_path, prepare):
    def damage(manual):
        target = manual / SUBJECT / "mouth_down" / "mouth_down.000002.ply"
        target.write_bytes(b"\x00\x01garbage that is not a mesh")
        return target

    _broken(tmp_path, prepare, damage, "not a PLY file")


def test_truncated_ply_body(tmp_path, prepare):
    def damage(manual):
        target = manual / SUBJECT / "mouth_up" / "mouth_up.000001.ply"
        data = target.read_bytes()
        target.write_bytes(data[: data.index(b"end_header") + 11 + 20])
        return target

    _broken(tmp_path, prepare, damage, "unreadable mesh")


def test_streams_several_shards_in_order(coma, tmp_path, prepare, monkeypatch):
    root, truth, builder = coma
    monkeypatch.setattr(Coma, "SHARD_BYTES", 2000)  # About 4 examples per shard.
    small = prepare(Coma, root / "manual", tmp_path / "data")
    shards = sorted(p.name for p in small.data_path.glob("coma-frames.array_record-*"))
    assert len(shards) == len(small.info.splits["frames"].shard_lengths) > 10
    assert shards[0].endswith(f"-00000-of-{len(shards):05d}")
    assert small.info.metadata["content_sha256"] == builder.info.metadata["content_sha256"]
    ds, ref = small.as_data_source("frames"), builder.as_data_source("frames")
    assert len(ds) == len(ref)
    for i in range(0, len(ds), 7):
        np.testing.assert_array_equal(ds[i]["vertices"], ref[i]["vertices"])
        assert ds[i]["frame"] == ref[i]["frame"]
