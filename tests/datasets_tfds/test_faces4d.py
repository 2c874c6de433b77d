"""The faces4d builder: 2.0.0 (default) and 1.0.0 tiny configs, prepare, read back, determinism,
statistics, and several takes per subject and expression."""

import hashlib
import json
import time

import numpy as np
import pytest

from datasets_tfds.faces4d import Faces4d, Faces4dConfig
from jaxface.data import layout, source
from jaxface.data.landmarks import LandmarkDefinition, extract_landmarks
from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.splits import sorted_order
from jaxface.data.stats import stats_names

TINY_CONTENT_SHA256 = "af4786511a2e45ee0b7cade5086ad3f0a50b90af10acf08f1a3d378cbf486101"


def _prepare(data_dir, **kwargs):
    start = time.perf_counter()
    builder = Faces4d(data_dir=str(data_dir), **kwargs)
    builder.download_and_prepare()
    return builder, time.perf_counter() - start


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _prepare(tmp_path_factory.mktemp("faces4d"), config="tiny")


@pytest.fixture(scope="module")
def tiny_v1(tmp_path_factory):
    return _prepare(tmp_path_factory.mktemp("faces4d_v1"), config="tiny", version="1.0.0")


@pytest.fixture(scope="module")
def performances():
    faces = PerformanceFaces(PerformanceConfig.tiny())
    truth = {}
    for i, subject in enumerate(faces.subject_names):
        for expr in faces.expressions:
            truth[(subject, expr)] = faces.sequence(i, expr)
    return faces, truth


@pytest.fixture(scope="module")
def procedural():
    faces = ProceduralFaces(ProceduralConfig.tiny())
    truth = {}
    for i, subject in enumerate(faces.subject_names):
        for expr in faces.expressions:
            truth[(subject, expr)] = faces.sequence(i, expr)
    return faces, truth


def test_versions_and_configs():
    assert str(Faces4d.VERSION) == "2.0.0"
    names = {(c.name, str(c.version)) for c in Faces4d.BUILDER_CONFIGS}
    assert names == {
        ("tiny", "2.0.0"), ("coma_scale", "2.0.0"), ("coma_scale_lite", "2.0.0"),
        ("coma_scale_100", "2.0.0"), ("basic6", "2.0.0"), ("basic6_tiny", "2.0.0"),
        ("tiny", "1.0.0"), ("coma_scale", "1.0.0"), ("coma_scale_lite", "1.0.0"),
    }
    takes = {"tiny": 1, "basic6_tiny": 1, "basic6": 2}
    for config in Faces4d.BUILDER_CONFIGS:
        if str(config.version) == "1.0.0":
            assert config.performance is None and isinstance(config.procedural, ProceduralConfig)
        else:
            assert config.procedural is None
            assert config.performance.takes == takes.get(config.name, 3)
    with pytest.raises(ValueError, match="not found with version 1.0.0"):
        Faces4d(config="coma_scale_100", version="1.0.0")


def test_tiny_prepares_in_seconds_and_reads_back(tiny, performances, check):
    builder, seconds = tiny
    faces, truth = performances
    assert str(builder.version) == "2.0.0" and builder.data_path.name == "2.0.0"
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


def test_sequence_index_template_and_metadata(tiny, performances):
    builder, _ = tiny
    faces, _ = performances
    path = builder.data_path
    seqs = layout.load_sequences(path)
    assert len(seqs) == 3 * 12
    assert seqs[0].subject == "Canon_000_S"
    for info in seqs:
        index = faces.subject_names.index(info.subject)
        assert info.apex == faces.apex_frame(index, info.expression, 0)
        assert info.length == faces.num_frames(index, info.expression, 0)
    template = layout.load_template(path)
    np.testing.assert_array_equal(template["faces"], faces.template.faces)
    np.testing.assert_array_equal(template["vertices"], faces.template.vertices)
    definition = LandmarkDefinition(vertex_indices=template["landmarks/vertex_indices"])
    np.testing.assert_array_equal(
        definition.vertex_indices, faces.template.landmarks.vertex_indices
    )
    meta = builder.info.metadata
    assert meta["performance_config"]["num_subjects"] == 3 and meta["takes"] == 1
    # The procedural identities' 1.x configuration: its next subject is an unseen identity.
    identity = ProceduralConfig(**{
        k: tuple(v) if isinstance(v, list) else v for k, v in meta["procedural_config"].items()
    })
    assert identity.num_subjects == 2
    np.testing.assert_array_equal(ProceduralFaces(identity).neutral(1), faces.neutral(2))
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
    again, _ = _prepare(tmp_path, config="tiny")
    name = "faces4d-frames.array_record-00000-of-00001"
    assert (again.data_path / name).read_bytes() == (builder.data_path / name).read_bytes()
    assert (again.data_path / "stats.npz").read_bytes() == (
        builder.data_path / "stats.npz"
    ).read_bytes()
    assert again.info.metadata["content_sha256"] == builder.info.metadata["content_sha256"]
    # The meshes of faces4d 2.0.0 'tiny' as first released (the basic expressions, added later,
    # change nothing of the CoMA labels' data).
    assert builder.info.metadata["content_sha256"] == TINY_CONTENT_SHA256


def test_version_1_is_the_old_generator_bit_for_bit(tiny_v1, procedural, check):
    builder, seconds = tiny_v1
    faces, truth = procedural
    assert str(builder.version) == "1.0.0" and builder.data_path.name == "1.0.0"
    assert seconds < 30
    check(builder, truth, num_vertices=468, source_files=False)
    content = hashlib.sha256()
    for key in sorted(truth):
        content.update(np.ascontiguousarray(truth[key]).tobytes())
    meta = builder.info.metadata
    assert meta["content_sha256"] == content.hexdigest()
    assert meta["procedural_config"]["num_subjects"] == 3 and "performance_config" not in meta
    seqs = layout.load_sequences(builder.data_path)
    assert len(seqs) == 36 and seqs[0].subject == "Proc_000_S"
    for info in seqs:
        index = faces.subject_names.index(info.subject)
        assert info.apex == faces.apex_frame(index, info.expression)
    assert "interpolation" in meta["protocols"]


def test_several_takes(tmp_path):
    config = Faces4dConfig(
        name="tiny_takes",
        version="2.0.0",
        performance=PerformanceConfig.tiny(
            num_subjects=2, takes=2, expressions=("eyebrow", "mouth_open")
        ),
    )
    builder, _ = _prepare(tmp_path, config=config)
    faces = PerformanceFaces(config.performance)
    seqs = layout.load_sequences(builder.data_path)
    expected = [
        (s, e, k) for s in faces.subject_names for e in ("eyebrow", "mouth_open") for k in (0, 1)
    ]
    assert [(s.subject, s.expression) for s in seqs] == [(s, e) for s, e, _ in expected]
    ds = builder.as_data_source(layout.FRAMES_SPLIT)
    for info, (subject, expr, take) in zip(seqs, expected, strict=True):
        index = faces.subject_names.index(subject)
        frames = source.load_sequence(ds, info, features=None)
        np.testing.assert_array_equal(frames["vertices"], faces.sequence(index, expr, take))
        assert info.apex == faces.apex_frame(index, expr, take)
        assert info.label == ["eyebrow", "mouth_open"].index(expr)
    # Interpolation ranks the frames in dataset order (takes in order within an expression).
    split = layout.load_split(builder.data_path, "interpolation")
    ranks = np.arange(len(ds))
    assert np.array_equal(np.sort(split.test), ranks[ranks % 100 < 10])
    subjects = [s.subject for s in seqs for _ in range(s.length)]
    assert np.array_equal(sorted_order(subjects), np.arange(len(ds)))
    assert builder.info.metadata["takes"] == 2
