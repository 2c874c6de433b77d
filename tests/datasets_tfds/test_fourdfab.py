"""The 4DFAB builder on a tiny fixture in the expected layout, valid and broken."""

import json
import os
import shutil

import numpy as np
import pytest

from datasets_tfds.common import LayoutError
from datasets_tfds.fourdfab import Fourdfab, FourdfabConfig
from datasets_tfds.fourdfab.fixture import (
    FIRST_FRAME,
    FIXTURE_EXPRESSIONS,
    FIXTURE_SESSIONS,
    write_fixture,
)
from datasets_tfds.fourdfab.fourdfab import RELEASE_FOLDER, mesh_vertex_count
from jaxface.data import layout, source
from jaxface.data.datasets import DATASETS, builder_class


def _two_expressions(name="fixture", **fields):
    return FourdfabConfig(name=name, expressions=FIXTURE_EXPRESSIONS, **fields)


@pytest.fixture(scope="module")
def fourdfab(tmp_path_factory, prepare):
    root = tmp_path_factory.mktemp("fourdfab")
    truth = write_fixture(root / "manual")
    builder = prepare(Fourdfab, root / "manual", root / "data", config=_two_expressions())
    return root, truth, builder


def test_registered_with_its_configs():
    assert DATASETS["fourdfab"].manual and builder_class("fourdfab") is Fourdfab
    configs = {c.name: c for c in Fourdfab.BUILDER_CONFIGS}
    assert set(configs) == {"default", "every_frame"}
    assert configs["default"].frame_step == 5 and configs["every_frame"].frame_step == 1
    assert configs["default"].expressions == (
        "happy", "sad", "surprise", "angry", "disgust", "fear"
    )
    with pytest.raises(ValueError, match="frame_step must be an integer >= 1"):
        FourdfabConfig(name="bad", frame_step=0)
    with pytest.raises(ValueError, match="non-empty and unique"):
        FourdfabConfig(name="bad", expressions=("happy", "happy"))


def test_prepares_and_reads_back(fourdfab):
    _, truth, builder = fourdfab
    path = builder.data_path
    seqs = layout.load_sequences(path)
    expected = sorted(truth, key=lambda k: (k[0], k[2], k[1]))  # (subject, expression, session)
    assert [(s.subject, s.expression) for s in seqs] == [(k[0], k[2]) for k in expected]
    meta = builder.info.metadata
    assert meta["sessions"] == [k[1] for k in expected]
    assert meta["expressions"] == ["happy", "surprise"]
    assert meta["subjects"] == sorted(FIXTURE_SESSIONS)
    assert meta["frame_step"] == 5 and meta["fps"] == 12.0
    assert layout.load_label_names(path) == ("happy", "surprise")
    ds = builder.as_data_source(layout.FRAMES_SPLIT)
    assert len(ds) == len(expected) * 3  # 11 frames, every 5th kept: positions 0, 5, 10
    for info, key in zip(seqs, expected, strict=True):
        # Millimetres in the files, metres in the dataset.
        want = truth[key][::5] * np.float32(1e-3)
        assert info.source_frames == (FIRST_FRAME, FIRST_FRAME + 5, FIRST_FRAME + 10)
        frames = source.load_sequence(ds, info, features=None)
        np.testing.assert_array_equal(frames["vertices"], want)
        assert set(frames["subject"]) == {key[0]} and set(frames["expression"]) == {key[2]}
        np.testing.assert_array_equal(frames["label"], ["happy", "surprise"].index(key[2]))
        np.testing.assert_array_equal(frames["source_frame"], info.source_frames)
        np.testing.assert_array_equal(
            frames["subject_id"], sorted(FIXTURE_SESSIONS).index(key[0])
        )
    # Every kept source file is in the manifest.
    manifest = (path / layout.MANIFEST_FILE).read_text().splitlines()
    assert meta["source_files"] == len(manifest) == len(ds)
    assert all(line.startswith(f"F001{os.sep}session") for line in manifest[:6])


def test_identity_independent_folds(fourdfab):
    _, _, builder = fourdfab
    path = builder.data_path
    protocols = builder.info.metadata["protocols"]
    assert {f"identity_fold{k}" for k in range(1, 5)} <= set(protocols)
    assert {"interpolation", "extrapolation_happy", "extrapolation_surprise"} <= set(protocols)
    seqs = layout.load_sequences(path)
    subject_of = np.concatenate([[s.subject] * s.length for s in seqs])
    held = set()
    for k in range(1, 5):
        split = layout.load_split(path, f"identity_fold{k}")
        train, test = set(subject_of[split.train]), set(subject_of[split.test])
        assert test == set(split.held_out) and not train & test
        held |= test
    assert held == set(FIXTURE_SESSIONS)  # every subject is tested once, with all its sessions
    stats = layout.load_stats(path, "identity_fold1")
    assert stats.mean.shape == (12, 3)


def test_every_frame_and_a_subset(tmp_path, prepare):
    truth = write_fixture(tmp_path / "manual", sessions={"F001": ("s1",), "F002": ("s1",)},
                          num_frames=4)
    config = FourdfabConfig(name="surprise_all", frame_step=1, expressions=("surprise",))
    builder = prepare(Fourdfab, tmp_path / "manual" / RELEASE_FOLDER, tmp_path / "data",
                      config=config)
    seqs = layout.load_sequences(builder.data_path)
    assert [(s.subject, s.expression, s.length) for s in seqs] == [
        ("F001", "surprise", 4), ("F002", "surprise", 4)
    ]
    ds = builder.as_data_source(layout.FRAMES_SPLIT)
    np.testing.assert_array_equal(
        ds[7]["vertices"], truth[("F002", "s1", "surprise")][3] * np.float32(1e-3)
    )
    assert json.loads((builder.data_path / "metadata.json").read_text())["fps"] == 60.0


def test_missing_folders_may_be_skipped(tmp_path, prepare):
    write_fixture(tmp_path / "manual")
    shutil.rmtree(tmp_path / "manual" / RELEASE_FOLDER / "F001" / "session2" / "happy")
    builder = prepare(Fourdfab, tmp_path / "manual", tmp_path / "data",
                      config=_two_expressions("skip", allow_missing=True))
    meta = builder.info.metadata
    assert meta["missing_expression_folders"] == ["F001/session2/happy"]
    assert meta["num_sequences"] == 2 * 5 - 1


def _broken(tmp_path, prepare, damage, match, **fields):
    manual = tmp_path / "manual"
    write_fixture(manual)
    damaged = damage(manual / RELEASE_FOLDER)
    with pytest.raises(LayoutError) as err:
        prepare(Fourdfab, manual, tmp_path / "data", config=_two_expressions(**fields))
    message = str(err.value)
    assert os.fspath(damaged) in message and match in message, message
    assert "\n" not in message
    assert not any(p.name == "1.0.0" for p in (tmp_path / "data").rglob("*"))


def test_missing_manual_folder(tmp_path, prepare):
    with pytest.raises(LayoutError, match="is missing or empty") as err:
        prepare(Fourdfab, tmp_path / "nowhere", tmp_path / "data", config=_two_expressions())
    assert os.fspath(tmp_path / "nowhere") in str(err.value)
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "readme.txt").write_text("not the data")
    with pytest.raises(LayoutError, match="holds no subject folders") as err:
        prepare(Fourdfab, tmp_path / "manual", tmp_path / "data", config=_two_expressions())
    assert os.fspath(tmp_path / "manual") in str(err.value)
    assert "<subject>/<session>/<expression>/<frame>.obj" in str(err.value)


def test_missing_expression_folder(tmp_path, prepare):
    def damage(root):
        shutil.rmtree(root / "M001" / "session3" / "surprise")
        return root / "M001" / "session3" / "surprise"

    _broken(tmp_path, prepare, damage, "missing expression folder; every session folder needs "
            "the folders happy, surprise")


def test_frame_with_the_wrong_vertex_count(tmp_path, prepare):
    from jaxface.mesh.io import write_mesh
    from jaxface.mesh.primitives import grid_patch

    def damage(root):
        v, f = grid_patch(4, 4)
        bad = root / "F002" / "session1" / "happy" / f"{FIRST_FRAME + 5:06d}.obj"
        write_mesh(bad, v * 100.0, f)
        assert mesh_vertex_count(bad) == 16
        return bad

    _broken(tmp_path, prepare, damage, "has 16 vertices but the first frame")


def test_required_vertex_count(tmp_path, prepare):
    def damage(root):
        return root / "F001" / "session1" / "happy" / f"{FIRST_FRAME:06d}.obj"

    _broken(tmp_path, prepare, damage, "has 12 vertices but expected 28431", num_vertices=28431)


def test_bad_frame_name_and_units(tmp_path, prepare):
    def rename(root):
        folder = root / "F002" / "session1" / "surprise"
        bad = folder / "frame_0007.obj"
        (folder / f"{FIRST_FRAME:06d}.obj").rename(bad)
        return bad

    _broken(tmp_path, prepare, rename, "expected <frame number>.obj or <frame number>.ply")
    shutil.rmtree(tmp_path / "manual")

    def nothing(root):
        return root / "F001" / "session1" / "happy" / f"{FIRST_FRAME:06d}.obj"

    _broken(tmp_path, prepare, nothing, "set unit_scale to the release's units", unit_scale=1.0)
