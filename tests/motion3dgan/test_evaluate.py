"""Table 3 pieces: classifier, accuracy and FID, S2D-Dec training data, Det-LM landmarks."""

import numpy as np
import pytest

from jaxface.configs import motion3dgan
from jaxface.data import DatasetView, source
from jaxface.data.landmarks import extract_landmarks, normalize_landmarks
from jaxface.losses import frechet_distance
from jaxface.motion3dgan.data import s2d_training_data
from jaxface.motion3dgan.evaluate import (
    accuracy,
    classify,
    detected_landmarks,
    table3_markdown,
    train_classifier,
)


def test_classifier_accuracy_and_fid(config, tiny_motions, tmp_path):
    _, _, train, test = tiny_motions
    model, params, info = train_classifier(config, str(tmp_path / "clf"), train)
    assert info["steps"] == config.classifier.num_epochs * (len(train) // 8)
    logits, feats = classify(model, params, test.landmarks, batch_size=16)
    assert logits.shape == (len(test), 12) and feats.shape == (len(test), 16)
    acc = accuracy(logits, test.labels)
    assert 0.0 <= acc <= 100.0
    assert accuracy(np.eye(3), np.array([0, 1, 1])) == pytest.approx(200 / 3)
    assert frechet_distance(feats, feats) == pytest.approx(0.0, abs=1e-6)
    _, other = classify(model, params, test.landmarks[::-1, ::-1], batch_size=16)
    assert frechet_distance(feats, other) > 0.0


def test_s2d_training_data_covers_only_the_training_frames(tiny_motions):
    path, _, train, _ = tiny_motions
    view = DatasetView(path)
    data = s2d_training_data(view, train, motion3dgan.get_config("test").s2d.topology)
    expected = 0
    for a, b in zip(train.start, train.stop, strict=True):
        expected += abs(int(a) - int(b)) + 1 - (min(a, b) == 0)
    assert len(data.train) == expected
    first = view.sequences[int(train.sequence[0])]
    frame0 = source.load_sequence(view.source, first)["vertices"][0]
    np.testing.assert_array_equal(data.train.neutrals[0], frame0)
    assert data.topology.level_sizes[0] == view.vertices.shape[0]


def test_detected_landmarks_read_the_decoded_meshes(tiny_motions):
    path, _, _, test = tiny_motions
    view = DatasetView(path)
    meshes = np.stack([view.vertices, view.vertices * 1.1])
    lms = np.asarray(normalize_landmarks(extract_landmarks(meshes, view.landmarks, view.faces)))
    seqs = test.landmarks[:2]
    # A decoder that displaces nothing leaves every frame at the neutral face.
    still = detected_landmarks(lambda d: np.zeros((d.shape[0], meshes.shape[1], 3), np.float32),
                               seqs, test.neutral[:2], meshes, view.landmarks, view.faces)
    assert still.shape == seqs.shape
    np.testing.assert_allclose(still, np.broadcast_to(lms[:, None], still.shape), atol=1e-5)
    # A decoder that translates the face changes nothing after normalisation either.
    moved = detected_landmarks(lambda d: np.ones((d.shape[0], meshes.shape[1], 3), np.float32),
                               seqs, test.neutral[:2], meshes, view.landmarks, view.faces)
    np.testing.assert_allclose(moved, still, atol=1e-5)


def test_table3_markdown_layout():
    acc = {row: {"GT": 73.0, "Motion3DGAN": 65.28, "LSTM": 46.53} for row in ("Gen-LM", "Det-LM")}
    fid = {row: {"Motion3DGAN": 20.45, "LSTM": 21.76} for row in ("Gen-LM", "Det-LM")}
    text = table3_markdown({"accuracy": acc, "fid": fid, "num_test": 144,
                            "num_test_per_label": "12", "num_train": 144})
    lines = text.splitlines()
    assert lines[0].startswith("| Method | Acc. GT lands")
    assert lines[2] == "| Gen-LM | 73.00 | 65.28 | 46.53 | 20.45 | 21.76 |"
    assert lines[3].startswith("| Det-LM |")
    assert "144 test sequences (12 per label)" in text
