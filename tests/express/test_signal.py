"""The label signal: curves, phases read off motion, and the intensity of eq. 6."""

import numpy as np
import pytest

from jaxface.express.signal import (
    IntensityStatistics,
    Phases,
    curve_from_points,
    intensity_curve,
    label_signal,
    mean_deformation,
    motion_magnitude,
    phases_from_motion,
)


def _reference_curve(t, onset, apex, offset, end):
    out = []
    for i in range(t):
        if apex <= i <= offset:
            v = 1.0
        elif i <= onset:
            v = 0.0
        elif i < apex:
            v = (i - onset) / (apex - onset)
        elif i < end:
            v = (end - i) / (end - offset)
        else:
            v = 0.0
        out.append(v)
    return np.asarray(out)


@pytest.mark.parametrize("phases", [(2, 7, 12, 20), (0, 5, 5, 9), (3, 3, 10, 14), (4, 9, 15, 15)])
def test_curve_matches_piecewise_definition(phases):
    got = intensity_curve(24, Phases(*phases))
    np.testing.assert_allclose(got, _reference_curve(24, *phases), atol=1e-6)
    assert got.dtype == np.float32 and got.min() >= 0 and got.max() == 1.0


def test_phases_validation_and_user_defaults():
    with pytest.raises(ValueError, match="onset <= apex"):
        Phases(5, 3, 8, 10)
    assert Phases.from_user(10, 30, 50) == Phases(10, 30, 50, 70)
    assert Phases.from_user(10, 30, 50, 55).end == 55


def test_curve_from_points():
    c = curve_from_points(10, [2, 6], [0.0, 1.0])
    np.testing.assert_allclose(c, [0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1])
    for frames, values, match in (([1, 1], [0, 1], "increase"), ([0], [1.5], r"\[0, 1\]"),
                                  ([0, 1], [0], "as many")):
        with pytest.raises(ValueError, match=match):
            curve_from_points(5, frames, values)


def test_label_signal_is_one_hot_times_scaled_curve():
    curve = np.linspace(0, 1, 5, dtype=np.float32)
    s = label_signal(2, 4, curve, scale=0.6)
    assert s.shape == (5, 4)
    np.testing.assert_allclose(s[:, 2], 0.6 * curve)
    assert not s[:, [0, 1, 3]].any()
    with pytest.raises(ValueError, match="outside"):
        label_signal(4, 4, curve)
    with pytest.raises(ValueError, match="intensity"):
        label_signal(0, 4, curve, scale=1.2)


def test_phases_from_motion_recover_a_known_curve(rng):
    truth = Phases(6, 14, 22, 31)
    curve = intensity_curve(40, truth)
    frames = np.zeros((40, 30, 3))
    direction = rng.normal(size=(30, 3))
    frames += curve[:, None, None] * direction * 0.01
    found = phases_from_motion(motion_magnitude(frames))
    # thresholds at 10 % / 90 % of the peak land within a frame of the true corners
    assert abs(found.onset - truth.onset) <= 1 and abs(found.apex - truth.apex) <= 1
    assert abs(found.offset - truth.offset) <= 1 and abs(found.end - truth.end) <= 1
    assert phases_from_motion(np.zeros(7)) == Phases(7, 7, 7, 7)


def test_mean_deformation_matches_numpy(rng):
    frames = rng.normal(size=(5, 11, 3))
    want = np.mean([np.linalg.norm(f - frames[0], axis=1).mean() for f in frames])
    assert mean_deformation(frames) == pytest.approx(want)


def test_intensity_scale_is_equation_6():
    m = np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0])
    labels = np.array([0, 0, 0, 1, 1, 1])
    stats = IntensityStatistics.fit(m, labels, 2, min_scale=0.05)
    np.testing.assert_allclose(stats.mean, [2.0, 20.0])
    np.testing.assert_allclose(stats.std, [np.std([1, 2, 3]), np.std([10, 20, 30])])
    s = stats.scale(np.array([2.0, 2.0 + 0.5 * stats.std[0], 100.0, -100.0]),
                    np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(s, [0.5, 0.75, 1.0, 0.05], rtol=1e-6)
    again = IntensityStatistics.from_json(stats.to_json())
    np.testing.assert_allclose(again.scale(m, labels), stats.scale(m, labels))
    with pytest.raises(ValueError, match="expression 2 has no training"):
        IntensityStatistics.fit(m, labels, 3)
