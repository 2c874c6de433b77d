"""S2D pairs against a numpy reference; in-memory and streaming feeds give the same batches."""

import numpy as np
import pytest

from jaxface.configs import s2d
from jaxface.data import DatasetView, extract_landmarks
from jaxface.data.template import load_face_template
from jaxface.s2d import PairTransform, S2DPairs, load_protocol, make_pairs, training_batches
from jaxface.s2d.data import frame_index


def _normalize(lms):
    centred = lms - lms.mean(axis=-2, keepdims=True)
    return centred / np.sqrt((centred ** 2).sum(axis=(-2, -1), keepdims=True))


def test_make_pairs_against_numpy(rng):
    t = load_face_template(0)
    seqs = [t.vertices[None] + 1e-3 * rng.normal(size=(n, 468, 3)).astype(np.float32)
            for n in (4, 6)]
    pairs = make_pairs(seqs, t.landmarks, t.faces, subjects=["a", "b"],
                       expressions=["x", "y"], frame_stride=2)
    assert isinstance(pairs, S2DPairs) and len(pairs) == 1 + 2  # frames 2 | 2, 4
    np.testing.assert_array_equal(pairs.sequence, [0, 1, 1])
    np.testing.assert_array_equal(pairs.neutrals[1], seqs[1][0])
    np.testing.assert_array_equal(pairs.targets[2], seqs[1][4])
    idx = np.asarray(t.landmarks.vertex_indices)
    want = (_normalize(seqs[1][4][idx]) - _normalize(seqs[1][0][idx])).reshape(204)
    np.testing.assert_allclose(pairs.landmark_displacement[2], want, atol=1e-6)
    np.testing.assert_allclose(pairs.displacements()[2], seqs[1][4] - seqs[1][0], atol=1e-7)
    arrays = pairs.arrays(with_meshes=True)
    assert set(arrays) == {"landmark_displacement", "displacement", "neutral", "target"}
    np.testing.assert_array_equal(arrays["neutral"][0], seqs[0][0])
    with pytest.raises(ValueError, match="expected \\[T, 468, 3\\]"):
        make_pairs([seqs[0], seqs[1][:, :10]], t.landmarks, t.faces)


def test_pair_transform_equals_the_pairs(tiny_faces4d):
    _, path = tiny_faces4d
    view = DatasetView(path)
    sequences = view.sequences[:3]
    index = frame_index(view, sequences, frame_stride=2)
    transform = PairTransform(index, view.landmarks, view.faces, with_meshes=True)
    from jaxface.s2d import load_pairs

    pairs = load_pairs(view, sequences, frame_stride=2)
    assert len(index) == len(pairs)
    np.testing.assert_array_equal(index.neutrals, pairs.neutrals)
    np.testing.assert_allclose(
        index.neutral_landmarks,
        np.asarray(extract_landmarks(pairs.neutrals, view.landmarks, view.faces)), atol=0)
    arrays = pairs.arrays(with_meshes=True)
    for i in (0, len(pairs) // 2, len(pairs) - 1):
        got = transform(view.source[int(index.examples[i])])
        for key, value in got.items():
            np.testing.assert_allclose(value, arrays[key][i], atol=1e-6, err_msg=key)


@pytest.mark.multidevice
def test_memory_and_stream_loaders_feed_the_same_batches(tiny_faces4d):
    data_dir, _ = tiny_faces4d
    config = s2d.get_config("test")
    config.data_dir = data_dir
    memory = load_protocol(config)
    config.loader = "stream"
    stream = load_protocol(config)
    assert len(memory.train) == len(stream.train)
    held, streamed = training_batches(config, memory), training_batches(config, stream)
    assert held.steps_per_epoch == streamed.steps_per_epoch
    with held.epoch(1) as a, streamed.epoch(1) as b:
        for x, y in zip(a, b, strict=True):
            for key in ("landmark_displacement", "displacement"):
                np.testing.assert_allclose(np.asarray(x[key]), np.asarray(y[key]), atol=1e-6)
    config.loader = "disk"
    with pytest.raises(ValueError, match="config.loader must be one of memory, stream"):
        load_protocol(config)
