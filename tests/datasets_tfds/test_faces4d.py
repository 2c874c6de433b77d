"""The procedural faces4d builder (tiny config): prepare, read back, determinism, statistics."""

import json
import time

import numpy as np
import pytest

from datasets_tfds.faces4d import Faces4d
from jaxface.data import layout
from jaxface.data.landmarks import LandmarkDefinition, extract_landmarks
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.stats import stats_names


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("faces4d")
    start = time.perf_counter()
    builder = Faces4d(data_dir=str(data_dir), config="tiny")
    builder.download_and_prepare()
    return builder, time.perf_counter() - start


@pytest.fixture(scope="module")
def procedural():
    faces = ProceduralFaces(ProceduralConfig.tiny())
    truth = {}
    for i, subject in enumerate(faces.subject_names):
        for expr in faces.expressions:
            truth[(subject, expr)] = faces.sequence(i, expr)
    return faces, truth


def test_tiny_prepares_in_seconds_and_reads_back(tiny, procedural, check):
    builder, seconds = tiny
    faces, truth = procedural
    assert seconds < 30
    ds = check(builder, truth, num_vertices=468, source_files=False)
    ex = ds[0]
    assert ex["vertices"].dtype == np.float32 and ex["vertices"].shape == (468, 3)
    assert ex["landmarks"].dtype == np.float32 and ex["landmarks"].shape == (68, 3)
    assert builder.info.features["vertices"].shape == (468, 3)
    definition = faces.template.landmarks
    for i in (0, 100, len(ds) - 1):
        ex = ds[i]
        np.testing.assert_allclose(
            ex["landmarks"], extract_landmarks(ex["vertices"], definition), atol=0
        )


def test_sequence_index_template_and_metadata(tiny, procedural):
    builder, _ = tiny
    faces, _ = procedural
    path = builder.data_path
    seqs = layout.load_sequences(path)
    assert len(seqs) == 3 * 12
    for info in seqs:
        index = faces.subject_names.index(info.subject)
        assert info.apex == faces.apex_frame(index, info.expression)
        assert info.length == faces.num_frames(index, info.expression)
    template = layout.load_template(path)
    np.testing.assert_array_equal(template["faces"], faces.template.faces)
    np.testing.assert_array_equal(template["vertices"], faces.template.vertices)
    definition = LandmarkDefinition(vertex_indices=template["landmarks/vertex_indices"])
    np.testing.assert_array_equal(
        definition.vertex_indices, faces.template.landmarks.vertex_indices
    )
    meta = builder.info.metadata
    assert meta["procedural_config"]["num_subjects"] == 3
    assert meta["has_landmarks"] is True
    stored = json.loads((path / "metadata.json").read_text())
    assert stored["content_sha256"] == meta["content_sha256"]


def test_protocols_and_stats(tiny):
    builder, _ = tiny
    path = builder.data_path
    protocols = builder.info.metadata["protocols"]
    assert "interpolation" in protocols and "expression_fold1" in protocols
    assert "identity_fold1" not in protocols  # 3 subjects.
    assert stats_names(path / layout.STATS_FILE) == sorted([*protocols, "all"])
    stats = layout.load_stats(path, "interpolation")
    assert stats.mean.shape == (468, 3) and stats.std.dtype == np.float32
    assert np.all(stats.std > 0)


def test_prepare_is_deterministic(tiny, tmp_path):
    builder, _ = tiny
    again = Faces4d(data_dir=str(tmp_path), config="tiny")
    again.download_and_prepare()
    name = "faces4d-frames.array_record-00000-of-00001"
    assert (again.data_path / name).read_bytes() == (builder.data_path / name).read_bytes()
    assert (again.data_path / "stats.npz").read_bytes() == (
        builder.data_path / "stats.npz"
    ).read_bytes()
    assert again.info.metadata["content_sha256"] == builder.info.metadata["content_sha256"]
