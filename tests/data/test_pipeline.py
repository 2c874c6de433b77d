"""Streaming and in-memory batching of a prepared dataset onto 8 CPU devices."""

import threading
import time

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec

from jaxface.data import pipeline


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from datasets_tfds.faces4d import Faces4d

    data_dir = tmp_path_factory.mktemp("tfds")
    Faces4d(data_dir=str(data_dir), config="tiny").download_and_prepare()
    return pipeline.dataset_dir("faces4d", data_dir=data_dir, config="tiny")


@pytest.fixture(scope="module")
def source(tiny_dir):
    return pipeline.open_source(tiny_dir)


def _list_source(n):
    return [
        {"vertices": np.full((4, 3), i, np.float32), "label": i, "name": f"ex{i}".encode()}
        for i in range(n)
    ]


def test_dataset_dir_and_readers(tiny_dir, tmp_path):
    assert tiny_dir.endswith("faces4d/tiny/1.0.0")
    with pytest.raises(FileNotFoundError, match="no prepared dataset 'coma'"):
        pipeline.dataset_dir("coma", data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="not a prepared TFDS dataset"):
        pipeline.open_source(tmp_path)
    seqs = pipeline.load_sequences(tiny_dir)
    assert seqs[1].start == seqs[0].stop
    import tensorflow_datasets as tfds

    data_dir = tiny_dir.rsplit("/faces4d/", 1)[0]
    by_name = tfds.data_source("faces4d/tiny", data_dir=data_dir, split="frames")
    np.testing.assert_array_equal(
        by_name[seqs[1].start]["vertices"],
        pipeline.open_source(tiny_dir)[seqs[1].start]["vertices"],
    )


def test_load_split_arrays(source, tiny_dir):
    split = pipeline.load_split(tiny_dir, "interpolation")
    arrays = pipeline.load_split_arrays(source, split.test[:7])
    assert arrays["vertices"].shape == (7, 468, 3) and arrays["vertices"].dtype == np.float32
    assert arrays["landmarks"].shape == (7, 68, 3)
    assert arrays["subject"].dtype.kind == "U" and arrays["subject"][0] == "Proc_000_S"
    np.testing.assert_array_equal(arrays["vertices"][3], source[int(split.test[3])]["vertices"])
    only = pipeline.load_split_arrays(source, [0, 1], features=["label"])
    assert list(only) == ["label"]


@pytest.mark.multidevice
def test_batch_size_must_divide_devices(source):
    mesh = pipeline.data_mesh()
    assert mesh.devices.size == 8
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        pipeline.sharded_batches(source, global_batch_size=12, mesh=mesh)
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        pipeline.check_batch_size(4, mesh)
    with pytest.raises(ValueError, match="fewer than one batch"):
        pipeline.sharded_batches(source, global_batch_size=8, mesh=mesh, indices=[0, 1, 2])
    im = pipeline.InMemoryBatches(pipeline.load_split_arrays(_list_source(16)), mesh)
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        next(im.batches(6))


@pytest.mark.multidevice
def test_sharded_batch_content_and_sharding(source, tiny_dir):
    mesh = pipeline.data_mesh()
    train = pipeline.load_split(tiny_dir, "interpolation").train
    with pipeline.sharded_batches(
        source,
        global_batch_size=16,
        mesh=mesh,
        indices=train,
        shuffle=False,
        num_epochs=1,
        features=("vertices", "label", "frame"),
    ) as batches:
        first = next(batches)
    assert set(first) == {"vertices", "label", "frame"}
    want = pipeline.load_split_arrays(source, train[:16])
    v = first["vertices"]
    assert isinstance(v, jax.Array) and v.shape == (16, 468, 3) and v.dtype == np.float32
    assert v.sharding == NamedSharding(mesh, PartitionSpec("data"))
    assert len(v.addressable_shards) == 8
    for shard in v.addressable_shards:
        assert shard.data.shape == (2, 468, 3)
        np.testing.assert_array_equal(np.asarray(shard.data), want["vertices"][shard.index[0]])
    np.testing.assert_array_equal(np.asarray(first["label"]), want["label"])
    assert first["label"].dtype == np.int32


@pytest.mark.multidevice
def test_epochs_are_seeded_shuffles_without_repeats():
    src = _list_source(37)
    mesh = pipeline.data_mesh()

    def labels(seed, epochs):
        with pipeline.sharded_batches(
            src, global_batch_size=8, mesh=mesh, seed=seed, num_epochs=epochs
        ) as it:
            return [np.asarray(b["label"]) for b in it]

    run = labels(3, 2)
    assert len(run) == 2 * 4  # 37 // 8 full batches per epoch, remainder dropped.
    assert all(set(np.asarray(b)) <= set(range(37)) for b in run)
    for epoch in (run[:4], run[4:]):
        seen = np.concatenate(epoch)
        assert len(set(seen.tolist())) == 32  # No example twice within an epoch.
    assert not np.array_equal(np.concatenate(run[:4]), np.concatenate(run[4:]))
    again = labels(3, 2)
    for a, b in zip(run, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.concatenate(labels(4, 1)), np.concatenate(run[:4]))
    # Resuming at epoch 1 replays the second epoch's order.
    with pipeline.sharded_batches(
        src, global_batch_size=8, mesh=mesh, seed=3, num_epochs=1, start_epoch=1
    ) as it:
        resumed = [np.asarray(b["label"]) for b in it]
    np.testing.assert_array_equal(np.concatenate(resumed), np.concatenate(run[4:]))


def test_each_host_reads_its_own_strided_shard(monkeypatch):
    src = _list_source(21)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    got = {}
    for pid in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda pid=pid: pid)
        batches = list(
            pipeline.host_batches(
                src, global_batch_size=8, epoch=0, shuffle=False, num_devices=8, read_threads=0
            )
        )
        got[pid] = np.concatenate([b["label"] for b in batches])
        assert all(b["vertices"].shape == (4, 4, 3) for b in batches)  # Per-host batch 8 // 2.
    # 21 examples -> 10 per host (equal counts), strided by process index.
    np.testing.assert_array_equal(got[0], [0, 2, 4, 6, 8, 10, 12, 14])
    np.testing.assert_array_equal(got[1], [1, 3, 5, 7, 9, 11, 13, 15])


@pytest.mark.multidevice
def test_in_memory_batches(source, tiny_dir):
    mesh = pipeline.data_mesh()
    test_idx = pipeline.load_split(tiny_dir, "interpolation").test
    arrays = pipeline.load_split_arrays(source, test_idx, features=("vertices", "label"))
    im = pipeline.InMemoryBatches(arrays, mesh)
    assert im.num_examples == test_idx.size
    steps = im.steps_per_epoch(16)
    batches = list(im.batches(16, seed=5, num_epochs=2))
    assert len(batches) == 2 * steps
    table = im.epoch_indices(16, epoch=1, seed=5)
    b = batches[steps + 2]
    assert b["vertices"].sharding == NamedSharding(mesh, PartitionSpec("data"))
    np.testing.assert_array_equal(np.asarray(b["vertices"]), arrays["vertices"][table[2]])
    np.testing.assert_array_equal(np.asarray(b["label"]), arrays["label"][table[2]])
    epoch0 = np.concatenate([np.asarray(x["label"]) for x in batches[:steps]])
    assert epoch0.size == steps * 16
    rows = np.concatenate(list(im.epoch_indices(16, epoch=0, seed=5)))
    assert len(set(rows.tolist())) == rows.size
    again = list(im.batches(16, seed=5, num_epochs=1))
    np.testing.assert_array_equal(
        np.asarray(again[0]["vertices"]), np.asarray(batches[0]["vertices"])
    )


def test_prefetcher_yields_in_order_and_stops_cleanly():
    with pipeline.Prefetcher(range(10), buffer_size=3) as it:
        assert list(it) == list(range(10))
    assert not it.alive
    with pytest.raises(StopIteration):
        next(it)


def test_prefetcher_propagates_errors():
    def items():
        yield 1
        yield 2
        raise RuntimeError("reader broke at item 3")

    it = pipeline.Prefetcher(items(), buffer_size=1)
    assert next(it) == 1 and next(it) == 2
    with pytest.raises(RuntimeError, match="reader broke at item 3"):
        next(it)
    assert not it.alive


def test_prefetcher_close_stops_a_blocked_producer():
    produced = []
    finalized = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                produced.append(i)
                yield i
                i += 1
        finally:
            finalized.set()

    it = pipeline.Prefetcher(endless(), buffer_size=2)
    assert next(it) == 0
    time.sleep(0.1)
    assert len(produced) <= 4  # Bounded read-ahead: 1 taken + 2 queued + 1 waiting.
    it.close(timeout=5)
    assert not it.alive
    assert finalized.is_set()  # The source generator was closed on its own thread.
    with pytest.raises(StopIteration):
        next(it)


def test_landmark_definition_and_subsequences_from_the_dataset(source, tiny_dir):
    from jaxface.data.landmarks import extract_landmarks, normalize_landmarks
    from jaxface.data.subsequences import apex_frame, dataset_subsequences

    definition = pipeline.load_landmark_definition(tiny_dir)
    faces = pipeline.load_template(tiny_dir)["faces"]
    ex = source[5]
    np.testing.assert_array_equal(
        extract_landmarks(ex["vertices"], definition, faces=faces), ex["landmarks"]
    )
    seqs = pipeline.load_sequences(tiny_dir)[:4]
    subs = dataset_subsequences(source, seqs, min_frames=5)
    assert subs and all(s.landmarks.shape == (30, 68, 3) for s in subs)
    first = pipeline.load_sequence(source, seqs[0], features=["landmarks"])["landmarks"]
    apex = apex_frame(normalize_landmarks(first))
    assert [
        s.stop for s in subs if s.subject == seqs[0].subject and s.expression == seqs[0].expression
    ][0] == apex
    assert {s.label for s in subs} <= {s.label for s in seqs}


@pytest.mark.multidevice
def test_steps_per_epoch_checks_batch_devices_and_size():
    mesh = pipeline.data_mesh()
    assert pipeline.steps_per_epoch(33, 8, mesh=mesh) == 4
    with pytest.raises(ValueError, match="not divisible by the 8 devices"):
        pipeline.steps_per_epoch(64, 12, mesh=mesh)
    with pytest.raises(ValueError, match="5 training frames are fewer than one batch of 8"):
        pipeline.steps_per_epoch(5, 8, what="training frames")
