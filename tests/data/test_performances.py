"""Tests for jaxface.data.performances (tiny configuration: 468 vertices, 12-20 frames)."""

import time

import numpy as np
import pytest

from jaxface.data.arkit_labels import CHANNELS, LABEL_RECIPES, expand_entry
from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.performances import (
    CANONICAL_SUBJECT,
    PerformanceConfig,
    PerformanceFaces,
    coactivation_prior,
)
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces


@pytest.fixture(scope="module")
def faces():
    return PerformanceFaces(PerformanceConfig.tiny(takes=3))


def test_config():
    cfg = PerformanceConfig()
    assert (cfg.num_subjects, cfg.takes, cfg.min_frames, cfg.max_frames) == (12, 3, 60, 150)
    assert (cfg.template_subdivisions, cfg.canonical_subject, cfg.num_procedural) == (2, True, 11)
    tiny = PerformanceConfig.tiny()
    assert (tiny.num_subjects, tiny.takes, tiny.template_subdivisions) == (3, 1, 0)
    assert (tiny.min_frames, tiny.max_frames) == (12, 20)
    identity = cfg.identity_config()
    assert isinstance(identity, ProceduralConfig) and identity.num_subjects == 11
    with pytest.raises(ValueError, match="takes"):
        PerformanceConfig(takes=0)
    with pytest.raises(ValueError, match="unknown expressions"):
        PerformanceConfig(expressions=("smile",))


def test_shapes_names_and_determinism(faces):
    assert faces.subject_names == [CANONICAL_SUBJECT, "Proc_000_S", "Proc_001_S"]
    assert faces.subject_names == sorted(faces.subject_names)
    assert faces.channels == CHANNELS and len(CHANNELS) == 54
    seq = faces.sequence(1, "mouth_open", 2)
    assert seq.dtype == np.float32 and seq.shape[1:] == (468, 3)
    assert 12 <= len(seq) <= 20 and len(seq) == faces.num_frames(1, "mouth_open", 2)
    again = PerformanceFaces(PerformanceConfig.tiny(takes=3))
    np.testing.assert_array_equal(again.sequence(1, "mouth_open", 2), seq)
    np.testing.assert_array_equal(faces.sequence(1, EXPRESSIONS.index("mouth_open"), 2), seq)
    # A subject and its takes do not depend on how many subjects, takes or expressions there are.
    other = PerformanceFaces(
        PerformanceConfig.tiny(num_subjects=2, takes=5, expressions=("mouth_open",))
    )
    np.testing.assert_array_equal(other.sequence(1, 0, 2), seq)
    assert not np.array_equal(
        PerformanceFaces(PerformanceConfig.tiny(seed=1)).sequence(1, "mouth_open"),
        faces.sequence(1, "mouth_open"),
    )
    w = faces.weights(1, "mouth_open", 2)
    assert w.shape == (len(seq), len(CHANNELS)) and np.all(w[0] == 0)
    assert faces.shapes(1).shape == (len(CHANNELS), 468, 3)
    with pytest.raises(IndexError):
        faces.sequence(3, 0)
    with pytest.raises(IndexError):
        faces.sequence(0, 0, 3)
    with pytest.raises(KeyError):
        other.sequence(0, "eyebrow")


def test_identities(faces):
    # Procedural subjects are the 1.x identities; subject 0 is the canonical face.
    old = ProceduralFaces(ProceduralConfig.tiny())
    np.testing.assert_array_equal(faces.neutral(1), old.neutral(0))
    np.testing.assert_array_equal(faces.neutral(2), old.neutral(1))
    np.testing.assert_array_equal(faces.neutral(0), load_canonical_face(0))
    plain = PerformanceFaces(PerformanceConfig.tiny(canonical_subject=False))
    assert plain.subject_names == ["Proc_000_S", "Proc_001_S", "Proc_002_S"]
    np.testing.assert_array_equal(plain.neutral(0), old.neutral(0))


def test_frames_are_finite_and_start_at_neutral(faces):
    noise = faces.config.noise_std
    for s in range(3):
        for e in EXPRESSIONS:
            seq = faces.sequence(s, e, 0)
            assert np.all(np.isfinite(seq))
            assert np.abs(seq[0] - faces.neutral(s)).max() < 8 * noise
            assert 0 < faces.apex_frame(s, e, 0) < len(seq) - 1
    clean = faces.sequence(1, "bareteeth", 1, noise=False)
    np.testing.assert_array_equal(clean[0], faces.neutral(1))


def test_label_weights_follow_their_recipes(faces):
    for s in range(3):
        for e in EXPRESSIONS:
            recipe = LABEL_RECIPES[e]
            for k in range(3):
                drawn = faces.label_weights(s, e, k)
                assert set(recipe.required) <= set(drawn) <= set(recipe.required) | set(
                    recipe.optional
                )
                for entry, value in drawn.items():
                    lo, hi = recipe.required.get(entry, recipe.optional.get(entry, (0, 0, 0))[1:])
                    assert lo <= value <= hi, (e, entry, value)
                # The apex weights of the label's channels follow the drawn values, within the
                # take's left/right split.
                w = faces.weights(s, e, k)[faces.apex_frame(s, e, k)]
                side = faces.take_side(s, e, k)
                for entry, value in drawn.items():
                    names = expand_entry(entry, side)
                    apex = np.mean([w[CHANNELS.index(n)] for n in names])
                    assert apex <= 1.0 and apex > 0.25 * value, (e, entry, apex, value)


def test_takes_differ(faces):
    for e in ("mouth_open", "high_smile", "eyebrow"):
        lengths, apexes = set(), []
        for k in range(3):
            seq = faces.sequence(1, e, k, noise=False)
            lengths.add(len(seq))
            apexes.append(seq[faces.apex_frame(1, e, k)] - seq[0])
        assert not np.allclose(apexes[0], apexes[1], atol=1e-4)
        assert not np.allclose(apexes[1], apexes[2], atol=1e-4)
        assert faces.weights(1, e, 0).shape != faces.weights(1, e, 1).shape or not np.array_equal(
            faces.weights(1, e, 0), faces.weights(1, e, 1)
        )


def test_asymmetry(faces):
    mirror = faces.template.mirror
    ratios = []
    for e in ("high_smile", "bareteeth", "eyebrow"):
        d = faces.sequence(1, e, 0, noise=False)
        a = d[faces.apex_frame(1, e, 0)] - d[0]
        m = a[mirror] * np.array([-1.0, 1.0, 1.0])
        ratios.append(np.linalg.norm(a - m) / np.linalg.norm(a))
    assert all(0.02 < r < 1.0 for r in ratios), ratios
    # mouth_side goes to one side: the mouth corners move the same way along x.
    lm = faces.template.landmarks.vertex_indices
    for k in range(3):
        seq = faces.sequence(2, "mouth_side", k, noise=False)
        d = seq[faces.apex_frame(2, "mouth_side", k)] - seq[0]
        sign = 1.0 if faces.take_side(2, "mouth_side", k) == "Left" else -1.0
        assert sign * d[lm[48], 0] > 1e-3 and sign * d[lm[54], 0] > 1e-3


def test_expressions_move_the_right_places(faces):
    lm = faces.template.landmarks.vertex_indices

    def apex(e):
        seq = faces.sequence(1, e, 0, noise=False)
        return seq[faces.apex_frame(1, e, 0)] - seq[0]

    assert apex("mouth_open")[lm[8], 1] < -5e-3  # chin down
    assert apex("eyebrow")[lm[19], 1] > 2e-3 and apex("eyebrow")[lm[24], 1] > 2e-3
    smile = apex("high_smile")
    corners = smile[lm[[48, 54]], 1]
    assert corners.mean() > 1.5e-3 and corners.min() > 0  # corners up
    corners = apex("mouth_down")[lm[[48, 54]], 1]
    assert corners.mean() < -1.5e-3 and corners.max() < 0  # corners down
    assert apex("mouth_middle")[lm[51], 2] > 3e-3  # lips forward


def test_coactivation_prior():
    beta = coactivation_prior()
    assert beta.shape == (len(CHANNELS), len(CHANNELS))
    assert np.all(np.diag(beta) == 0) and beta.min() >= 0 and beta.max() <= 0.3
    assert np.all(beta[CHANNELS.index("jawOpen")] == 0)  # nothing drives the jaw
    smile, upper = CHANNELS.index("mouthSmile_L"), CHANNELS.index("mouthUpperUp_L")
    assert beta[upper, smile] > 0  # measured in the recordings
    brow, jaw = CHANNELS.index("browInnerUp"), CHANNELS.index("mouthStretch_L")
    assert beta[jaw, brow] == 0  # different face regions are not coupled


def test_tiny_config_is_fast():
    start = time.perf_counter()
    data = PerformanceFaces(PerformanceConfig.tiny(seed=7))
    total = sum(len(seq) for *_, seq in data.iter_sequences())
    assert total >= 3 * 12 * 12
    assert time.perf_counter() - start < 20.0
