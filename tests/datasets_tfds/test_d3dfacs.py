"""The D3DFACS builder on a tiny fixture in the registrations' layout, valid and broken."""

import os
import shutil

import numpy as np
import pytest

from datasets_tfds.common import LayoutError
from datasets_tfds.d3dfacs import D3dfacs
from datasets_tfds.d3dfacs.d3dfacs import RELEASE_FOLDER
from datasets_tfds.d3dfacs.fixture import FIXTURE_FRAMES, FIXTURE_SEQUENCES, write_fixture
from jaxface.data import layout


@pytest.fixture(scope="module")
def d3dfacs(tmp_path_factory, prepare):
    root = tmp_path_factory.mktemp("d3dfacs")
    truth = write_fixture(root / "manual")
    return root, truth, prepare(D3dfacs, root / "manual", root / "data")


def test_prepares_and_reads_back(d3dfacs, check):
    _, truth, builder = d3dfacs
    check(builder, truth, num_vertices=12)
    seqs = layout.load_sequences(builder.data_path)
    # Frames ordered by number (98, 99, 100, 101), not by file name.
    assert all(s.source_frames == FIXTURE_FRAMES for s in seqs)
    names = sorted(n for v in FIXTURE_SEQUENCES.values() for n in v)
    assert builder.info.metadata["expressions"] == names
    assert [s.label for s in seqs] == [names.index(s.expression) for s in seqs]


def test_s2d_d3dfacs_protocols(d3dfacs):
    _, _, builder = d3dfacs
    path = builder.data_path
    ident = layout.load_split(path, "identity_leading3")
    assert ident.held_out == ("Adrian", "Darren", "Joe")
    expr = layout.load_split(path, "expression_leading11")
    names = sorted(n for v in FIXTURE_SEQUENCES.values() for n in v)
    assert expr.held_out == tuple(names[:11])
    seqs = layout.load_sequences(path)
    train_names = {s.expression for s in seqs if s.start in set(expr.train.tolist())}
    assert train_names == {names[11]}


def test_manual_folder_may_be_the_release_folder(tmp_path, prepare):
    truth = write_fixture(tmp_path / "manual", sequences={"Joe": ("1+2",), "Nat": ("4",)})
    builder = prepare(D3dfacs, tmp_path / "manual" / RELEASE_FOLDER, tmp_path / "data")
    assert len(builder.as_data_source("frames")) == sum(v.shape[0] for v in truth.values())
    assert builder.info.metadata["protocols"] == ["interpolation"]


def _broken(tmp_path, prepare, damage, match):
    manual = tmp_path / "manual"
    write_fixture(manual, sequences={"Joe": ("1+2", "4"), "Nat": ("4",)})
    damaged = damage(manual / RELEASE_FOLDER)
    with pytest.raises(LayoutError) as err:
        prepare(D3dfacs, manual, tmp_path / "data")
    assert os.fspath(damaged) in str(err.value) and match in str(err.value), str(err.value)


def test_frame_name_not_matching_its_sequence(tmp_path, prepare):
    def damage(root):
        bad = root / "Joe" / "4" / "5_98.ply"
        (root / "Joe" / "4" / "4_98.ply").rename(bad)
        return bad

    _broken(tmp_path, prepare, damage, "expected 4_<frame>.ply")


def test_empty_sequence_folder(tmp_path, prepare):
    def damage(root):
        shutil.rmtree(root / "Nat" / "4")
        (root / "Nat" / "4").mkdir()
        return root / "Nat" / "4"

    _broken(tmp_path, prepare, damage, "holds no frames")


def test_bad_subject_folder(tmp_path, prepare):
    def damage(root):
        (root / "Nat").rename(root / "42")
        return root / "42"

    _broken(tmp_path, prepare, damage, "expected a subject folder")


def test_vertex_count_mismatch_across_sequences(tmp_path, prepare):
    from jaxface.mesh.io import write_mesh
    from jaxface.mesh.primitives import grid_patch

    def damage(root):
        v, f = grid_patch(4, 4)
        for path in (root / "Nat" / "4").iterdir():
            write_mesh(path, v, f)
        return root / "Nat" / "4" / "4_98.ply"

    _broken(tmp_path, prepare, damage, "has 16 vertices")


def test_missing_release(tmp_path, prepare):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "readme.txt").write_text("not the data")
    with pytest.raises(LayoutError, match="holds no subject folders") as err:
        prepare(D3dfacs, tmp_path / "manual", tmp_path / "data")
    assert os.fspath(tmp_path / "manual") in str(err.value)
    assert not np.any([p.name == "1.0.0" for p in tmp_path.rglob("*")])
