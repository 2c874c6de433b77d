"""The one device iterator: in-memory and streaming batches on 8 CPU devices."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxface.data import layout, source
from jaxface.data.batches import (
    InMemoryBatches,
    StreamingBatches,
    check_batch_size,
    epoch_order,
    numeric_arrays,
)
from jaxface.sharding import data_mesh


@pytest.fixture(scope="module")
def tiny_dir(tiny_faces4d):
    return tiny_faces4d[1]


@pytest.fixture(scope="module")
def frames(tiny_dir):
    return source.open_source(tiny_dir)


def _list_source(n):
    return [
        {"vertices": np.full((4, 3), i, np.float32), "label": i, "name": f"ex{i}".encode()}
        for i in range(n)
    ]


def _labels(batches, epoch, start=0):
    with batches.epoch(epoch, start) as it:
        return [np.asarray(b["label"]) for b in it]


def test_epoch_order_is_a_seeded_permutation_cut_into_sorted_batches():
    table = epoch_order(37, 8, epoch=0, seed=3)
    assert table.shape == (4, 8) and table.dtype == np.int64
    assert len(set(table.ravel().tolist())) == 32  # no example twice, remainder dropped
    assert all(np.all(np.diff(row) > 0) for row in table)
    # The same rows as the permutation numpy draws from (seed, *stream, epoch).
    perm = np.random.default_rng([3, 0]).permutation(37)[:32].reshape(4, 8)
    np.testing.assert_array_equal(table, np.sort(perm, axis=1))
    assert not np.array_equal(table, epoch_order(37, 8, epoch=1, seed=3))
    assert not np.array_equal(table, epoch_order(37, 8, epoch=0, seed=3, stream=(7,)))
    np.testing.assert_array_equal(epoch_order(9, 4, epoch=5, shuffle=False),
                                  [[0, 1, 2, 3], [4, 5, 6, 7]])


def test_numeric_arrays():
    out = numeric_arrays({"a": np.arange(3, dtype=np.int64), "b": np.ones(2), "c": ["x", "y"]})
    assert out["a"].dtype == np.int32 and out["b"].dtype == np.float32 and "c" not in out
    with pytest.raises(TypeError, match="feature 'c' has dtype"):
        numeric_arrays({"c": np.array(["x"])}, strict=True)


@pytest.mark.multidevice
def test_batch_size_must_divide_devices_and_fit_the_examples(frames):
    mesh = data_mesh()
    assert mesh.devices.size == 8
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        StreamingBatches(frames, 12, mesh=mesh)
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        check_batch_size(4, mesh)
    with pytest.raises(ValueError, match="3 training frames are fewer than one batch of 8"):
        StreamingBatches(frames, 8, mesh=mesh, indices=[0, 1, 2], what="training frames")
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        InMemoryBatches({"x": np.zeros((16, 2))}, 6, mesh=mesh)
    with pytest.raises(ValueError, match="disagree on the number of examples"):
        InMemoryBatches({"x": np.zeros((16, 2)), "y": np.zeros(15)}, 8, mesh=mesh)
    with pytest.raises(ValueError, match="no numeric arrays"):
        InMemoryBatches({"name": np.array(["a"] * 16)}, 8, mesh=mesh)
    with pytest.raises(IndexError, match="out of range"):
        StreamingBatches(frames, 8, mesh=mesh, indices=np.arange(len(frames) + 1))


@pytest.mark.multidevice
def test_streaming_batch_content_and_sharding(frames, tiny_dir):
    mesh = data_mesh()
    train = layout.load_split(tiny_dir, "interpolation").train
    batches = StreamingBatches(frames, 16, mesh=mesh, indices=train, seed=1,
                               features=("vertices", "label", "frame"))
    assert batches.steps_per_epoch == len(train) // 16
    with batches.epoch(0) as it:
        first = next(it)
    assert set(first) == {"vertices", "label", "frame"}
    want = source.load_split_arrays(frames, train[batches.order(0)[0]])
    v = first["vertices"]
    assert isinstance(v, jax.Array) and v.shape == (16, 468, 3) and v.dtype == np.float32
    assert v.sharding == NamedSharding(mesh, PartitionSpec("data"))
    assert len(v.addressable_shards) == 8
    for shard in v.addressable_shards:
        assert shard.data.shape == (2, 468, 3)
        np.testing.assert_array_equal(np.asarray(shard.data), want["vertices"][shard.index[0]])
    np.testing.assert_array_equal(np.asarray(first["label"]), want["label"])
    assert first["label"].dtype == np.int32
    with pytest.raises(KeyError, match="no feature 'colour'"):
        with StreamingBatches(frames, 8, mesh=mesh, features=("colour",)).epoch(0) as it:
            next(it)


@pytest.mark.multidevice
def test_streaming_and_in_memory_give_the_same_batches(frames, tiny_dir):
    mesh = data_mesh()
    idx = layout.load_split(tiny_dir, "interpolation").test
    arrays = source.load_split_arrays(frames, idx, features=("vertices", "label"))

    def scaled(example):  # a host transform, as the S2D pairs use
        return {"vertices": example["vertices"] * 2.0, "label": example["label"]}

    streaming = StreamingBatches(frames, 8, mesh=mesh, indices=idx, seed=5, transform=scaled,
                                 read_threads=2)
    held = InMemoryBatches({"vertices": arrays["vertices"] * 2.0, "label": arrays["label"]}, 8,
                           mesh=mesh, seed=5)
    assert streaming.steps_per_epoch == held.steps_per_epoch > 1
    for epoch in (0, 3):
        with streaming.epoch(epoch) as a, held.epoch(epoch) as b:
            pairs = list(zip(a, b, strict=True))
        assert len(pairs) == held.steps_per_epoch
        for x, y in pairs:
            assert x["vertices"].sharding == y["vertices"].sharding
            np.testing.assert_array_equal(np.asarray(x["vertices"]), np.asarray(y["vertices"]))
            np.testing.assert_array_equal(np.asarray(x["label"]), np.asarray(y["label"]))
    assert held.resident_bytes == arrays["vertices"].nbytes + arrays["label"].size * 4


@pytest.mark.multidevice
def test_epochs_are_seeded_shuffles_and_resume_mid_epoch():
    src = _list_source(37)
    mesh = data_mesh()
    batches = InMemoryBatches({"label": np.arange(37)}, 8, mesh=mesh, seed=3)
    epoch0, epoch1 = _labels(batches, 0), _labels(batches, 1)
    assert len(epoch0) == 4  # 37 // 8 full batches, remainder dropped
    assert len(set(np.concatenate(epoch0).tolist())) == 32
    assert not np.array_equal(np.concatenate(epoch0), np.concatenate(epoch1))
    for a, b in zip(epoch0, _labels(batches, 0), strict=True):
        np.testing.assert_array_equal(a, b)
    # Resuming at the third batch of epoch 1 replays the rest of that epoch.
    np.testing.assert_array_equal(np.concatenate(_labels(batches, 1, start=2)),
                                  np.concatenate(epoch1[2:]))
    assert _labels(batches, 1, start=4) == []
    streaming = StreamingBatches(src, 8, mesh=mesh, seed=3, read_threads=0)
    np.testing.assert_array_equal(np.concatenate(_labels(streaming, 1, start=2)),
                                  np.concatenate(epoch1[2:]))
    other = InMemoryBatches({"label": np.arange(37)}, 8, mesh=mesh, seed=4)
    assert not np.array_equal(np.concatenate(_labels(other, 0)), np.concatenate(epoch0))


def test_each_process_takes_its_own_columns_of_the_table(monkeypatch):
    batches = InMemoryBatches({"label": np.arange(21)}, 8, shuffle=False)
    table = batches.order(0)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    got = {}
    for pid in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda pid=pid: pid)
        assert check_batch_size(8, batches.mesh) == 4
        batches.per_process = 4
        got[pid] = batches.local_rows(table)
    np.testing.assert_array_equal(got[0], [[0, 1, 2, 3], [8, 9, 10, 11]])
    np.testing.assert_array_equal(got[1], [[4, 5, 6, 7], [12, 13, 14, 15]])
    np.testing.assert_array_equal(np.concatenate([got[0], got[1]], axis=1), table)


def test_epoch_examples_makes_epochs_of_successive_permutations():
    one_pass = epoch_order(10, 4, epoch=2, seed=1)
    table = epoch_order(10, 4, epoch=2, seed=1, epoch_examples=25)
    assert table.shape == (6, 4)
    # the first pass is the ordinary epoch's order; every example appears in each full pass
    np.testing.assert_array_equal(table[:2], one_pass)
    counts = np.bincount(table.ravel(), minlength=10)
    assert counts.min() >= 2 and counts.sum() == 24
    np.testing.assert_array_equal(epoch_order(10, 4, epoch=2, seed=1, epoch_examples=25), table)


def test_in_memory_batches_with_epoch_examples_keep_uint8():
    images = np.arange(3 * 2, dtype=np.uint8).reshape(3, 2)
    batches = InMemoryBatches({"image": images}, 8, seed=0, epoch_examples=16)
    assert batches.steps_per_epoch == 2
    with batches.epoch(0) as it:
        got = [np.asarray(b["image"]) for b in it]
    assert len(got) == 2 and got[0].dtype == np.uint8 and got[0].shape == (8, 2)
    with pytest.raises(ValueError, match="shorter than one batch"):
        InMemoryBatches({"image": images}, 8, epoch_examples=4)
