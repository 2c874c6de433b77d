"""Atomic writers: content round-trips, a failed write keeps the previous file and no temp."""

import json
import os

import numpy as np
import pytest

from jaxface.files import (
    flatten_tree,
    unflatten_tree,
    write_atomic,
    write_json,
    write_npy,
    write_npz,
)


def test_writers_round_trip_and_create_folders(tmp_path):
    path = write_json(tmp_path / "a" / "r.json", {"b": np.float32(0.5), "a": [1, 2]})
    assert path == str(tmp_path / "a" / "r.json")
    assert json.loads((tmp_path / "a" / "r.json").read_text()) == {"a": [1, 2], "b": 0.5}
    arrays = {"x": np.arange(6, dtype=np.int32).reshape(2, 3), "meta": np.asarray("{}")}
    write_npz(tmp_path / "b" / "t.npz", arrays)
    with np.load(tmp_path / "b" / "t.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["x"], arrays["x"])
        assert str(z["meta"]) == "{}"
    write_npy(tmp_path / "e.npy", np.linspace(0, 1, 5))
    np.testing.assert_array_equal(np.load(tmp_path / "e.npy"), np.linspace(0, 1, 5))


def test_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "r.json"
    write_json(target, {"v": 1})
    with pytest.raises(TypeError):
        write_json(target, {"v": object()})  # not serialisable: fails before any byte is written
    with pytest.raises(TypeError):
        write_atomic(target, "not bytes")  # fails while writing the temporary file
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["r.json"]


def test_flatten_tree_round_trip_widens_float16():
    tree = {"enc": {"conv": {"kernel": np.ones((2, 2), np.float16)}}, "bias": np.zeros(3)}
    flat = flatten_tree(tree)
    assert sorted(flat) == ["bias", "enc/conv/kernel"]
    back = unflatten_tree(flat)
    assert back["enc"]["conv"]["kernel"].dtype == np.float32
    np.testing.assert_array_equal(back["bias"], tree["bias"])
    with pytest.raises(ValueError, match="contains '/'"):
        flatten_tree({"a/b": np.zeros(1)})
