"""Labelled meshes of a protocol: hidden expression labels as the paper's rule, class weights,
the data scale, the batches of n_critic sub-batches."""

import numpy as np
import pytest

from jaxface.decoupled.data import (
    class_weights,
    expression_classes,
    label_probabilities,
    load_faces,
    strength_labels,
    training_batches,
)


def test_peak_rule_labels_first_last_and_peak_frames_only(tiny_faces):
    train = tiny_faces.train
    assert tiny_faces.expression_names[0] == "neutral"
    assert tiny_faces.num_expressions == 1 + 12 and tiny_faces.num_identities == 3
    assert (train.identity >= 0).all()  # identity labels are all kept
    for seq in np.unique(train.sequence):
        rows = train.sequence == seq
        frames, labels = train.frame[rows], train.expression[rows]
        info = tiny_faces.view.sequences[int(seq)]
        assert labels[frames == 0] == 0 and labels[frames == info.length - 1] == 0
        assert labels[frames == info.apex] == train.sequence_class[rows][0] > 0
        hidden = (frames != 0) & (frames != info.length - 1) & (frames != info.apex)
        assert (labels[hidden] == -1).all()
        assert train.strength[rows][frames == info.apex] == pytest.approx(1.0)
    # Every other frame is kept (frame_stride 2), plus the labelled ones.
    assert 0.2 < np.mean(train.expression >= 0) < 0.5
    # The test part (expression_fold1) holds other expressions of the same subjects.
    assert not set(np.unique(tiny_faces.test.sequence_class)) & set(
        np.unique(train.sequence_class))
    assert tiny_faces.scale == pytest.approx(
        np.sqrt(np.mean(np.square(train.vertices - tiny_faces.reference))))


def test_hidden_identities_and_strength_labels(config, tiny_faces):
    config.labels.identity_fraction = 0.5
    config.labels.expression = "strength"
    faces = load_faces(config)
    by_sequence = {int(s): faces.train.identity[faces.train.sequence == s] for s in
                   np.unique(faces.train.sequence)}
    hidden = sum(bool((v == -1).all()) for v in by_sequence.values())
    assert 0 < hidden < len(by_sequence)
    assert all(len(set(v.tolist())) == 1 for v in by_sequence.values())
    labels = strength_labels(tiny_faces.train, strong=0.6, weak=0.1)
    np.testing.assert_array_equal(labels, faces.train.expression)
    assert (labels[tiny_faces.train.frame == 0] == 0).all()
    with pytest.raises(ValueError, match="weak < strong"):
        strength_labels(tiny_faces.train, strong=0.1, weak=0.5)
    config.labels.expression = "all"
    with pytest.raises(ValueError, match="labels.expression must be one of peak, strength"):
        load_faces(config)


def test_class_weights_balance_the_labelled_classes():
    labels = np.array([0, 0, 0, 0, 1, 2, 2, -1, -1])
    w = class_weights(labels, 4)
    counts = np.array([4, 1, 2, 0])
    np.testing.assert_allclose(w[:3], 7 / (3 * counts[:3]), rtol=1e-6)
    assert w[3] == 0
    # Balanced: every present class weighs as much in total.
    np.testing.assert_allclose((w * counts)[:3], 7 / 3, rtol=1e-6)
    np.testing.assert_array_equal(class_weights(labels, 4, balance=False), [1, 1, 1, 0])
    np.testing.assert_allclose(label_probabilities(labels, 4), [4 / 7, 1 / 7, 2 / 7, 0])
    with pytest.raises(ValueError, match="no labelled example"):
        label_probabilities(np.array([-1, -1]), 2)
    names, classes = expression_classes(["a", "neutral", "b"])
    assert names == ("neutral", "a", "b") and classes.tolist() == [1, 0, 2]


def test_batches_hold_n_critic_sub_batches(config, tiny_faces):
    batches = training_batches(config, tiny_faces.train)
    assert batches.batch_size == config.optim.n_critic * config.optim.batch_size
    with batches.epoch(0) as it:
        batch = next(iter(it))
    assert batch["vertices"].shape == (batches.batch_size, 468, 3)
    assert set(batch) == {"vertices", "identity", "expression"}
