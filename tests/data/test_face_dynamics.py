"""Tests for jaxface.data.face_dynamics (real weight curves and their episodes)."""

import numpy as np

from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.face_dynamics import (
    blink_episodes,
    expression_episodes,
    find_episodes,
    load_weight_clips,
    resample_curve,
)


def test_clips():
    clips = load_weight_clips()
    assert [c.name for c in clips] == ["facecap", "wolfgang_langer", "single_face"]
    assert [c.weights.shape[0] for c in clips] == [335, 472, 72]
    for c in clips:
        assert c.weights.shape[1] == len(ARKIT_NAMES)
        assert np.all(np.isfinite(c.weights)) and c.weights.min() >= 0 and c.weights.max() <= 1
    smile = ARKIT_NAMES.index("mouthSmile_L")
    assert clips[1].weights[:, smile].max() > 0.9  # the video shows broad smiles


def test_find_episodes_on_a_known_curve():
    t = np.arange(200, dtype=np.float64)
    curve = 0.8 * np.exp(-0.5 * ((t - 50) / 8) ** 2) + 0.5 * np.exp(-0.5 * ((t - 140) / 5) ** 2)
    spans = find_episodes(curve)
    assert [p for _, p, _ in spans] == [50, 140]
    for start, peak, stop in spans:
        assert start < peak < stop
    assert find_episodes(0.1 * curve) == []  # below min_peak


def test_episodes_are_normalised():
    episodes = expression_episodes()
    assert len(episodes) > 50
    assert {e.clip for e in episodes} == {"facecap", "wolfgang_langer", "single_face"}
    for e in episodes:
        assert e.curve[0] == 0 and e.curve[-1] == 0 and e.curve.max() == 1.0
        assert e.curve[e.peak] == 1.0 and e.duration >= 0.2
        assert not e.channel.startswith(("eyeBlink", "eyeLook"))
    blinks = blink_episodes()
    assert len(blinks) >= 5
    assert all(b.channel.startswith("eyeBlink") and 0.08 <= b.duration <= 0.8 for b in blinks)


def test_resample_curve():
    values = np.array([0.0, 1.0, 4.0])
    np.testing.assert_allclose(resample_curve(values, np.array([0.0, 0.5, 1.5, 2.0, 5.0])),
                               [0.0, 0.5, 2.5, 4.0, 4.0])
    two = np.stack([values, -values], axis=1)
    assert resample_curve(two, np.array([0.5])).shape == (1, 2)
