"""faces4d's basic-expression configs: ``basic6_tiny`` builds, reads back with the six label names
(directly and through ``open_dataset``)."""

import os

import ml_collections
import numpy as np
import pytest

from datasets_tfds.faces4d import Faces4d
from jaxface.data import layout, open_dataset, source
from jaxface.data.arkit_labels import BASIC_EXPRESSIONS
from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.splits import list_protocols


@pytest.fixture(scope="module")
def basic6_tiny(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("faces4d_basic6")
    config = ml_collections.ConfigDict(dict(dataset="faces4d", dataset_config="basic6_tiny",
                                            data_dir=str(data_dir)))
    return data_dir, open_dataset(config, verbose=False)


def test_configs():
    configs = {c.name: c for c in Faces4d.BUILDER_CONFIGS if str(c.version) == "2.0.0"}
    full, tiny = configs["basic6"].performance, configs["basic6_tiny"].performance
    assert full.expressions == tiny.expressions == BASIC_EXPRESSIONS
    assert (full.num_subjects, full.takes, full.min_frames, full.max_frames) == (36, 2, 48, 96)
    assert (full.fps, full.template_subdivisions, full.canonical_subject) == (24.0, 1, True)
    assert (tiny.num_subjects, tiny.takes, tiny.min_frames, tiny.max_frames) == (3, 1, 12, 20)
    assert tiny.template_subdivisions == 0
    with pytest.raises(ValueError, match="not found with version 1.0.0"):
        Faces4d(config="basic6", version="1.0.0")


def test_basic6_tiny_builds_and_reads_back(basic6_tiny):
    _, view = basic6_tiny
    names = tuple(sorted(BASIC_EXPRESSIONS))
    assert names == ("angry", "disgust", "fear", "happy", "sad", "surprise")
    assert layout.load_label_names(view.path) == names
    assert view.path.endswith("basic6_tiny/2.0.0")
    assert view.vertices.shape == (468, 3) and view.landmarks.num_landmarks == 68
    assert len(view.sequences) == 3 * 6
    faces = PerformanceFaces(PerformanceConfig.tiny(expressions=BASIC_EXPRESSIONS))
    ds = source.open_source(view.path)
    for info in view.sequences:
        assert names[info.label] == info.expression
        frames = source.load_sequence(ds, info, features=None)
        assert set(frames["expression"]) == {info.expression}
        np.testing.assert_array_equal(frames["label"], info.label)
        subject = faces.subject_names.index(info.subject)
        np.testing.assert_array_equal(
            frames["vertices"], faces.sequence(subject, info.expression, 0)
        )
        assert info.apex == faces.apex_frame(subject, info.expression, 0)
    protocols = set(list_protocols(os.path.join(view.path, layout.SPLITS_DIR)))
    assert {f"extrapolation_{e}" for e in names} | {"interpolation", "expression_fold1"} <= (
        protocols
    )
    held = view.split("expression_fold1").held_out
    assert held and set(held) <= set(names)
