"""Fixtures for the builder tests: prepare a builder from a manual folder into a temp data dir."""

import hashlib
import json
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxface.data import layout, source
from jaxface.data.stats import compute_stats, load_stats


def prepare_builder(builder_cls, manual_dir, data_dir, **kwargs):
    """Runs ``download_and_prepare`` on ``manual_dir`` and returns the builder."""
    builder = builder_cls(data_dir=os.fspath(data_dir), **kwargs)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=os.fspath(manual_dir))
    )
    return builder


def check_prepared(builder, truth, *, num_vertices, source_files=True):
    """Checks a prepared mesh-sequence dataset against the sequences written to its source.

    Args:
      builder: the prepared builder.
      truth: ``(subject, expression) -> vertices [T, N, 3]`` in the order the dataset must hold.
      num_vertices: vertices per mesh.
      source_files: whether the dataset was read from files (and so has a source manifest).

    Returns:
      The ``frames`` data source.
    """
    path = builder.data_path
    ds = builder.as_data_source(layout.FRAMES_SPLIT)
    total = sum(v.shape[0] for v in truth.values())
    assert len(ds) == total
    sequences = layout.load_sequences(path)
    assert [(s.subject, s.expression) for s in sequences] == sorted(truth)
    expressions = json.loads((path / layout.SEQUENCES_FILE).read_text())["expressions"]
    for info in sequences:
        want = truth[(info.subject, info.expression)]
        assert info.length == want.shape[0]
        frames = source.load_sequence(ds, info, features=None)
        np.testing.assert_array_equal(frames["vertices"], want)
        assert frames["vertices"].dtype == np.float32
        assert frames["vertices"].shape == (info.length, num_vertices, 3)
        assert set(frames["subject"]) == {info.subject}
        assert set(frames["expression"]) == {info.expression}
        np.testing.assert_array_equal(frames["frame"], np.arange(info.length))
        np.testing.assert_array_equal(frames["source_frame"], info.source_frames)
        np.testing.assert_array_equal(frames["sequence"], info.index)
        np.testing.assert_array_equal(frames["sequence_length"], info.length)
        np.testing.assert_array_equal(frames["label"], expressions.index(info.expression))
        assert expressions[info.label] == info.expression
    # Statistics stored with the data equal numpy's over the same examples.
    everything = np.concatenate([truth[k] for k in sorted(truth)])
    all_stats = load_stats(path / layout.STATS_FILE, "all")
    ref = compute_stats(everything)
    np.testing.assert_allclose(all_stats.mean, ref.mean, atol=1e-7)
    np.testing.assert_allclose(all_stats.std, ref.std, atol=1e-6)
    assert all_stats.count == total
    for protocol in builder.info.metadata["protocols"]:
        split = layout.load_split(path, protocol)
        if split.train.size:
            got = layout.load_stats(path, protocol)
            ref = compute_stats(everything[split.train])
            np.testing.assert_allclose(got.mean, ref.mean, atol=1e-7)
            np.testing.assert_allclose(got.std, ref.std, atol=1e-6)
            assert got.count == split.train.size
    meta = builder.info.metadata
    if source_files:
        # Checksums: the manifest lists every source file and its sha256 is in the metadata.
        manifest = (path / layout.MANIFEST_FILE).read_bytes()
        assert hashlib.sha256(manifest).hexdigest() == meta["source_manifest_sha256"]
        assert meta["source_files"] == total == len(manifest.decode().splitlines())
    else:
        assert not (path / layout.MANIFEST_FILE).exists()
    assert meta["num_vertices"] == num_vertices
    assert meta["content_sha256"] == hashlib.sha256(everything.tobytes()).hexdigest()
    # A fresh reader needs nothing but the folder.
    fresh = tfds.builder_from_directory(os.fspath(path))
    assert fresh.info.metadata["content_sha256"] == meta["content_sha256"]
    np.testing.assert_array_equal(
        source.open_source(os.fspath(path))[total - 1]["vertices"],
        truth[sorted(truth)[-1]][-1],
    )
    return ds


@pytest.fixture(scope="session")
def prepare():
    """``prepare(builder_cls, manual_dir, data_dir, **kwargs) -> builder``."""
    return prepare_builder


@pytest.fixture(scope="session")
def check():
    """``check(builder, truth, num_vertices=N) -> data source`` (see ``check_prepared``)."""
    return check_prepared
