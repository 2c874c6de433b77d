"""The VOCASET builder on a tiny fixture in the release's layout, valid and broken."""

import os

import numpy as np
import pytest

from datasets_tfds.common import LayoutError
from datasets_tfds.vocaset import Vocaset
from datasets_tfds.vocaset.fixture import FIXTURE_SEQUENCES, write_fixture
from datasets_tfds.vocaset.vocaset import RELEASE_FOLDER, TEST_SUBJECTS, VALIDATION_SUBJECTS
from jaxface.data import layout

TRAIN, VALIDATION, TEST = FIXTURE_SEQUENCES


@pytest.fixture(scope="module")
def voca(tmp_path_factory, prepare):
    root = tmp_path_factory.mktemp("vocaset")
    written = write_fixture(root / "manual")
    return root, written, prepare(Vocaset, root / "manual", root / "data")


def test_prepares_and_reads_back(voca, check):
    _, written, builder = voca
    check(builder, {k: v for k, (_, v) in written.items()}, num_vertices=12)
    seqs = {(s.subject, s.expression): s for s in layout.load_sequences(builder.data_path)}
    assert seqs[(TRAIN, "sentence22")].source_frames == (1, 3, 4)  # Gaps are kept.
    assert builder.info.metadata["expressions"] == ["sentence01", "sentence21", "sentence22"]


def test_voca_split(voca):
    _, _, builder = voca
    path = builder.data_path
    split = layout.load_split(path, "voca")
    seqs = layout.load_sequences(path)

    def members(part):
        idx = set(split.parts[part].tolist())
        return {(s.subject, s.expression) for s in seqs if s.start in idx}

    assert members("train") == {(TRAIN, s) for s in FIXTURE_SEQUENCES[TRAIN]}
    assert members("validation") == {(VALIDATION, "sentence21"), (VALIDATION, "sentence22")}
    assert members("test") == {(TEST, "sentence21"), (TEST, "sentence22")}
    assert set(split.held_out) == set(VALIDATION_SUBJECTS + TEST_SUBJECTS)
    stats = layout.load_stats(path, "voca")
    assert stats.count == split.train.size


def test_unknown_subject_and_bad_sentence(tmp_path, prepare):
    manual = tmp_path / "manual"
    write_fixture(manual, sequences={TRAIN: ("sentence01",)})
    bad = manual / RELEASE_FOLDER / "FaceTalk_170101_00001_TA"
    (manual / RELEASE_FOLDER / TRAIN).rename(bad)
    with pytest.raises(LayoutError, match="one of the 12 VOCASET subjects") as err:
        prepare(Vocaset, manual, tmp_path / "data")
    assert os.fspath(bad) in str(err.value)
    bad.rename(manual / RELEASE_FOLDER / TRAIN)
    folder = manual / RELEASE_FOLDER / TRAIN
    (folder / "sentence01").rename(folder / "sentence1")
    with pytest.raises(LayoutError, match="sentence01 .. sentence40") as err:
        prepare(Vocaset, manual, tmp_path / "data")
    assert os.fspath(folder / "sentence1") in str(err.value)


def test_missing_release_folder(tmp_path, prepare):
    write_fixture(tmp_path / "manual", sequences={TRAIN: ("sentence01",)})
    (tmp_path / "manual" / RELEASE_FOLDER).rename(tmp_path / "manual" / "meshes")
    with pytest.raises(LayoutError, match="does not exist") as err:
        prepare(Vocaset, tmp_path / "manual", tmp_path / "data")
    assert os.fspath(tmp_path / "manual" / RELEASE_FOLDER) in str(err.value)
    assert not np.any([p.name == "1.0.0" for p in tmp_path.rglob("*")])
