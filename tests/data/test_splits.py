"""Protocols of jaxface.data.splits on synthetic name lists."""

import pathlib

import numpy as np
import pytest

from jaxface.data import splits

EXPRESSIONS = (
    "bareteeth", "cheeks_in", "eyebrow", "high_smile", "lips_back", "lips_up",
    "mouth_down", "mouth_extreme", "mouth_middle", "mouth_open", "mouth_side", "mouth_up",
)  # fmt: skip
SUBJECTS = tuple(f"FaceTalk_1709{i:02d}_0{i:04d}_TA" for i in range(12))


def _table(subjects, expressions, frames_per_sequence, shuffle_seed=None):
    rows = [(s, e, t) for s in subjects for e in expressions for t in range(frames_per_sequence)]
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(rows))
        rows = [rows[i] for i in order]
    subj, expr, frame = zip(*rows, strict=True)
    return list(subj), list(expr), list(frame)


def test_fold_held_out_matches_s2d_for_12_names():
    names = list(reversed(EXPRESSIONS))  # Input order must not matter.
    expected = {1: (11, 10, 9), 2: (8, 7, 6), 3: (5, 4, 3), 4: (2, 1, 0)}
    for fold, idx in expected.items():
        assert splits.fold_held_out(names, fold) == tuple(EXPRESSIONS[i] for i in idx)
    # The S2D reference's fold-1 expression test set.
    assert set(splits.fold_held_out(EXPRESSIONS, 1)) == {"mouth_up", "mouth_side", "mouth_open"}


def test_fold_held_out_partitions_other_sizes_and_rejects_too_few():
    names = [f"n{i}" for i in range(5)]
    blocks = [splits.fold_held_out(names, k) for k in range(1, 5)]
    assert sorted(sum(blocks, ())) == sorted(names)
    assert blocks[0] == ("n4", "n3")
    with pytest.raises(ValueError, match="at least 4 distinct names"):
        splits.fold_held_out(["a", "b", "c"], 1)
    with pytest.raises(ValueError, match="fold must be in 1..4"):
        splits.fold_held_out(names, 5)


def test_identity_fold_split_covers_everything_once():
    subj, expr, _ = _table(SUBJECTS, EXPRESSIONS[:2], 3, shuffle_seed=0)
    for fold in range(1, 5):
        split = splits.identity_fold_split(subj, fold)
        assert split.protocol == f"identity_fold{fold}"
        both = np.concatenate([split.train, split.test])
        np.testing.assert_array_equal(np.sort(both), np.arange(len(subj)))
        held = set(split.held_out)
        assert len(held) == 3
        assert {subj[i] for i in split.test} == held
        assert not held & {subj[i] for i in split.train}
    fold1 = splits.identity_fold_split(subj, 1)
    assert fold1.held_out == tuple(sorted(SUBJECTS[9:]))


def test_expression_fold_split_uses_expression_names():
    subj, expr, _ = _table(SUBJECTS[:2], EXPRESSIONS, 2)
    split = splits.expression_fold_split(expr, 4)
    assert split.held_out == ("bareteeth", "cheeks_in", "eyebrow")
    assert {expr[i] for i in split.test} == set(split.held_out)


def test_interpolation_split_uses_sorted_rank_not_input_order():
    subj, expr, frame = _table(SUBJECTS[:3], EXPRESSIONS[:4], 25, shuffle_seed=1)  # 300 rows
    split = splits.interpolation_split(subj, expr, frame)
    keys = list(zip(subj, expr, frame, strict=True))
    ranked = sorted(range(len(keys)), key=lambda i: keys[i])
    expected_test = sorted(i for r, i in enumerate(ranked) if r % 100 < 10)
    np.testing.assert_array_equal(split.test, expected_test)
    assert split.test.size == 30 and split.train.size == 270
    # Same split for a different input order of the same rows.
    subj2, expr2, frame2 = _table(SUBJECTS[:3], EXPRESSIONS[:4], 25, shuffle_seed=2)
    split2 = splits.interpolation_split(subj2, expr2, frame2)
    test_keys = {keys[i] for i in split.test}
    assert test_keys == {(subj2[i], expr2[i], frame2[i]) for i in split2.test}


def test_extrapolation_split_and_coma_protocols():
    subj, expr, frame = _table(SUBJECTS[:2], EXPRESSIONS, 2)
    split = splits.extrapolation_split(expr, "mouth_up")
    assert {expr[i] for i in split.test} == {"mouth_up"}
    assert "mouth_up" not in {expr[i] for i in split.train}
    protocols = splits.coma_protocols(subj, expr, frame)
    assert "identity_fold1" not in protocols  # Only 2 subjects.
    assert {f"extrapolation_{e}" for e in EXPRESSIONS} <= set(protocols)
    assert {f"expression_fold{k}" for k in range(1, 5)} <= set(protocols)
    with pytest.raises(ValueError, match="not in the dataset"):
        splits.extrapolation_split(expr, "yawn")


def test_leading_and_named_splits():
    subj, expr, _ = _table(["Adrian", "Darren", "Joe", "Nat"], ["1", "2"], 2)
    split = splits.leading_names_split("identity_leading3", subj, 3)
    assert split.held_out == ("Adrian", "Darren", "Joe")
    assert {subj[i] for i in split.train} == {"Nat"}
    named = splits.named_split(
        "voca", subj, expr, {"train": (["Adrian", "Darren"], None), "test": (["Nat"], ["2"])}
    )
    assert {subj[i] for i in named.parts["train"]} == {"Adrian", "Darren"}
    assert {(subj[i], expr[i]) for i in named.test} == {("Nat", "2")}
    assert named.held_out == ("Nat",)


def test_split_validation_rejects_overlap_and_disorder():
    with pytest.raises(ValueError, match="overlaps"):
        splits.Split("p", {"train": [0, 1], "test": [1, 2]})
    with pytest.raises(ValueError, match="ascending"):
        splits.Split("p", {"train": [2, 1]})
    with pytest.raises(ValueError, match="protocol name"):
        splits.Split("bad/name", {"train": [0]})


def test_write_and_read_round_trip(tmp_path):
    subj, expr, frame = _table(SUBJECTS, EXPRESSIONS[:4], 3)
    protocols = splits.coma_protocols(subj, expr, frame)
    paths = splits.write_splits(tmp_path, protocols.values())
    assert len(paths) == len(protocols)
    assert splits.list_protocols(tmp_path) == sorted(protocols)
    for name, split in protocols.items():
        back = splits.read_split(tmp_path, name)
        assert back.held_out == split.held_out
        for part in split.parts:
            np.testing.assert_array_equal(back.parts[part], split.parts[part])
    # Deterministic: writing again gives identical bytes.
    again = tmp_path / "again"
    splits.write_splits(again, splits.coma_protocols(subj, expr, frame).values())
    for path in paths:
        name = path.split("/")[-1]
        assert (again / name).read_bytes() == pathlib.Path(path).read_bytes()
    with pytest.raises(FileNotFoundError, match="available protocols"):
        splits.read_split(tmp_path, "identity_fold9")
