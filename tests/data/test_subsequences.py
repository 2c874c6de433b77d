"""Motion3DGAN neutral -> apex sub-sequences on synthetic landmark sequences."""

import numpy as np
import pytest

from jaxface.data import subsequences


def _sequence(num_frames, apex, num_landmarks=68, seed=0):
    """Landmarks moving linearly away from a neutral pose up to ``apex`` and back."""
    rng = np.random.default_rng(seed)
    neutral = rng.normal(size=(num_landmarks, 3)).astype(np.float32)
    direction = rng.normal(size=(num_landmarks, 3)).astype(np.float32)
    t = np.arange(num_frames)
    amount = np.where(t <= apex, t / apex, (num_frames - 1 - t) / (num_frames - 1 - apex) * 0.8)
    return neutral[None] + amount[:, None, None].astype(np.float32) * direction[None]


def test_apex_frame_is_farthest_from_first_frame():
    lm = _sequence(50, apex=17)
    assert subsequences.apex_frame(lm) == 17
    assert subsequences.apex_frame(lm.reshape(50, -1)) == 17


def test_forward_and_backward_subsequences():
    lm = _sequence(60, apex=24)
    subs = subsequences.extract_subsequences(
        lm, subject="FaceTalk_170725_00137_TA", expression="mouth_up", label=11
    )
    assert len(subs) == 2
    fwd, bwd = subs
    assert (fwd.start, fwd.stop, fwd.reversed) == (0, 24, False)
    assert (bwd.start, bwd.stop, bwd.reversed) == (59, 24, True)
    assert fwd.source_length == 25 and bwd.source_length == 36
    assert fwd.name == "FaceTalk_170725_00137_TA_mouth_up_from_0_to_24"
    for sub in subs:
        assert sub.landmarks.shape == (30, 68, 3) and sub.landmarks.dtype == np.float32
        # Both start at a neutral end and finish at the apex.
        np.testing.assert_allclose(sub.landmarks[-1], lm[24], atol=1e-6)
        assert sub.label == 11
    np.testing.assert_allclose(fwd.landmarks[0], lm[0], atol=1e-6)
    np.testing.assert_allclose(bwd.landmarks[0], lm[59], atol=1e-6)
    # Motion along a straight line resampled by arc length: equal steps.
    steps = np.linalg.norm(np.diff(fwd.landmarks.reshape(30, -1), axis=0), axis=1)
    np.testing.assert_allclose(steps, steps.mean(), rtol=1e-4)


def test_short_sides_are_dropped():
    lm = _sequence(40, apex=5)  # Forward side has 6 frames < 10.
    subs = subsequences.extract_subsequences(lm, subject="s", expression="e", label=0)
    assert [(s.start, s.stop) for s in subs] == [(39, 5)]
    lm = _sequence(40, apex=33)  # Backward side has 7 frames.
    subs = subsequences.extract_subsequences(lm, subject="s", expression="e", label=0)
    assert [(s.start, s.stop) for s in subs] == [(0, 33)]
    subs = subsequences.extract_subsequences(
        lm, subject="s", expression="e", label=0, min_frames=5, num_frames=12
    )
    assert len(subs) == 2 and subs[0].landmarks.shape == (12, 68, 3)


def test_stack_subsequences():
    subs = []
    for label, apex in ((0, 20), (3, 15)):
        subs += subsequences.extract_subsequences(
            _sequence(45, apex, seed=label),
            subject=f"s{label}",
            expression=f"e{label}",
            label=label,
        )
    out = subsequences.stack_subsequences(subs)
    assert out["landmarks"].shape == (4, 30, 68, 3)
    np.testing.assert_array_equal(out["label"], [0, 0, 3, 3])
    np.testing.assert_array_equal(out["start"], [0, 44, 0, 44])
    np.testing.assert_array_equal(out["stop"], [20, 20, 15, 15])
    assert out["name"][1] == "s0_e0_from_44_to_20"
    with pytest.raises(ValueError, match="no sub-sequences"):
        subsequences.stack_subsequences([])


def test_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\[T, L, 3\]"):
        subsequences.extract_subsequences(np.zeros((10, 204)), subject="s", expression="e", label=0)
