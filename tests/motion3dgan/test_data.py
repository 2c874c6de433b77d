"""Motion3DGAN data: sub-sequences -> SRVFs on the sphere, splits, amplitudes."""

import numpy as np
import pytest

from jaxface import manifold as mf
from jaxface.motion3dgan.data import label_intensities, split_motions


def test_motions_are_unit_srvfs_that_reconstruct_their_landmarks(tiny_motions):
    _, motions, _, _ = tiny_motions
    n = len(motions)
    assert motions.q.shape == (n, 30, 204) and motions.q.dtype == np.float32
    assert motions.landmarks.shape == (n, 30, 68, 3)
    np.testing.assert_allclose(np.asarray(mf.norm(motions.q)), 1.0, atol=1e-4)
    # Frames are S2D-normalised (centred, unit Frobenius norm) before arc-length resampling, which
    # interpolates between neighbouring frames: centred exactly, norms 1 up to the interpolation.
    lm = motions.landmarks
    np.testing.assert_allclose(lm.mean(axis=2), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt((lm**2).sum(axis=(2, 3))), 1.0, atol=5e-3)
    np.testing.assert_array_equal(motions.neutral, lm[:, 0])
    back = np.asarray(mf.srvf_inverse(motions.q, motions.neutral, motions.intensity))
    scale = np.abs(lm - lm[:, :1]).max()
    assert np.abs(back - lm).max() < 0.05 * scale
    assert set(motions.labels.tolist()) == set(range(12))
    assert motions.label_names[9] == "mouth_open"
    np.testing.assert_array_equal(
        motions.expressions, np.asarray(motions.label_names)[motions.labels]
    )


def test_first_sample_split_holds_one_forward_motion_per_subject_and_expression(tiny_motions):
    _, motions, train, test = tiny_motions
    keys = list(zip(test.subjects.tolist(), test.expressions.tolist(), strict=True))
    assert len(keys) == len(set(keys)) == 3 * 12
    assert not test.reversed.any() and (test.start == 0).all()
    assert len(train) + len(test) == len(motions)
    assert set(train.names.tolist()).isdisjoint(test.names.tolist())
    all_train, none = split_motions(motions, "none")
    assert len(all_train) == len(motions) and len(none) == 0
    with pytest.raises(ValueError, match="unknown split rule"):
        split_motions(motions, "random")



def test_held_out_subjects_split_keeps_test_identities_unseen(tiny_motions):
    _, motions, _, _ = tiny_motions
    train, test = split_motions(motions, "held_out_subjects")
    names = sorted(set(motions.subjects.tolist()))
    assert len(names) == 3
    assert set(test.subjects.tolist()) == {names[-1]}
    assert set(train.subjects.tolist()) == set(names[:-1])
    assert len(train) + len(test) == len(motions)
    assert set(test.labels.tolist()) == set(range(12))
    one = motions.subset(np.flatnonzero(motions.subjects == names[0]))
    with pytest.raises(ValueError, match="at least 2 subjects"):
        split_motions(one, "held_out_subjects")

def test_label_intensities_are_per_label_medians(tiny_motions):
    _, _, train, _ = tiny_motions
    out = label_intensities(train)
    assert out.shape == (12,)
    k = int(train.labels[0])
    assert out[k] == pytest.approx(np.median(train.intensity[train.labels == k]))
    assert label_intensities(train, "mean")[k] == pytest.approx(
        train.intensity[train.labels == k].mean(), rel=1e-6
    )


def test_arrays_hold_the_batch_entries_of_every_motion(tiny_motions):
    _, _, train, _ = tiny_motions
    arrays = train.arrays(("q", "label", "neutral"))
    assert set(arrays) == {"q", "label", "neutral"}
    assert arrays["q"].shape == (len(train), 30, 204)
    np.testing.assert_array_equal(arrays["label"], train.labels)
    np.testing.assert_array_equal(arrays["neutral"], train.landmarks[:, 0])
    batch = train.batch(np.array([3, 1]), ("q",))
    np.testing.assert_array_equal(batch["q"], arrays["q"][[3, 1]])
    with pytest.raises(ValueError, match="unknown batch entries"):
        train.arrays(("colour",))