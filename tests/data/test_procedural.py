"""Tests for jaxface.data.procedural (tiny configuration: 468 vertices, 12-20 frames)."""

import time

import numpy as np
import pytest

from jaxface.data.landmarks import landmark_displacement
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces


@pytest.fixture(scope="module")
def faces():
    return ProceduralFaces(ProceduralConfig.tiny())


@pytest.fixture(scope="module")
def apex_disp(faces):
    """Apex-minus-neutral displacement of subject 0 for every expression: [12, N, 3]."""
    out = []
    for e in EXPRESSIONS:
        seq = faces.sequence(0, e)
        out.append(seq[faces.apex_frame(0, e)] - faces.neutral(0))
    return np.stack(out)


def test_config():
    cfg = ProceduralConfig()
    assert (cfg.num_subjects, cfg.min_frames, cfg.max_frames, cfg.template_subdivisions) == (
        12, 60, 150, 2
    )
    assert cfg.expressions == EXPRESSIONS == tuple(sorted(EXPRESSIONS)) and len(EXPRESSIONS) == 12
    tiny = ProceduralConfig.tiny(seed=3)
    assert (tiny.num_subjects, tiny.template_subdivisions, tiny.seed) == (3, 0, 3)
    with pytest.raises(ValueError, match="unknown expressions"):
        ProceduralConfig(expressions=("smile",))
    with pytest.raises(ValueError, match="min_frames"):
        ProceduralConfig(min_frames=30, max_frames=20)
    with pytest.raises(ValueError, match="num_subjects"):
        ProceduralConfig(num_subjects=0)


def test_shapes_names_and_determinism(faces):
    assert faces.subject_names == ["Proc_000_S", "Proc_001_S", "Proc_002_S"]
    assert faces.subject_names == sorted(faces.subject_names)
    assert faces.template.vertices.shape == (468, 3)
    seq = faces.sequence(1, "mouth_open")
    assert seq.dtype == np.float32 and seq.ndim == 3 and seq.shape[1:] == (468, 3)
    assert 12 <= len(seq) <= 20 == faces.config.max_frames
    assert len(seq) == faces.num_frames(1, "mouth_open")
    again = ProceduralFaces(ProceduralConfig.tiny())
    np.testing.assert_array_equal(again.sequence(1, "mouth_open"), seq)
    np.testing.assert_array_equal(faces.sequence(1, EXPRESSIONS.index("mouth_open")), seq)
    # A subject does not depend on how many subjects or which expressions are configured.
    other = ProceduralFaces(ProceduralConfig.tiny(num_subjects=2, expressions=("mouth_open",)))
    np.testing.assert_array_equal(other.sequence(1, 0), seq)
    np.testing.assert_array_equal(other.neutral(1), faces.neutral(1))
    assert not np.array_equal(
        ProceduralFaces(ProceduralConfig.tiny(seed=1)).neutral(1), faces.neutral(1)
    )
    with pytest.raises(IndexError):
        faces.sequence(3, 0)
    with pytest.raises(KeyError):
        other.sequence(0, "eyebrow")


def test_frames_start_and_end_at_neutral(faces):
    noise = faces.config.noise_std
    for s in range(3):
        neutral = faces.neutral(s)
        for e in ("eyebrow", "mouth_extreme", "high_smile"):
            seq = faces.sequence(s, e)
            assert np.all(np.isfinite(seq))
            assert np.abs(seq[0] - neutral).max() < 8 * noise
            assert np.abs(seq[-1] - neutral).max() < 1e-3
            assert 0 < faces.apex_frame(s, e) < len(seq) - 1
    clean = ProceduralFaces(ProceduralConfig.tiny(noise_std=0.0))
    np.testing.assert_array_equal(clean.sequence(0, "bareteeth")[0], clean.neutral(0))


def test_apex_is_expressive(faces, apex_disp):
    mags = np.linalg.norm(apex_disp, axis=-1).max(axis=-1)  # largest vertex motion, metres
    assert np.all(mags > 3e-3), dict(zip(EXPRESSIONS, mags, strict=True))
    assert np.all(mags < 0.05)
    # The apex is (close to) the frame whose landmarks move the most, as Motion3DGAN assumes.
    t = faces.template
    for e in ("mouth_open", "eyebrow"):
        seq = faces.sequence(0, e)
        lms = t.landmark_positions(seq)
        d = np.linalg.norm(landmark_displacement(lms, lms[0]), axis=-1)
        assert abs(int(np.argmax(d)) - faces.apex_frame(0, e)) <= 0.25 * len(seq)


def test_expressions_differ(apex_disp):
    flat = apex_disp.reshape(len(EXPRESSIONS), -1)
    norm = np.linalg.norm(flat, axis=1)
    cos = (flat / norm[:, None]) @ (flat / norm[:, None]).T
    for i in range(len(EXPRESSIONS)):
        for j in range(i + 1, len(EXPRESSIONS)):
            # Different deformation patterns, or (mouth_open vs mouth_extreme) clearly different
            # amplitudes of a similar one.
            ratio = max(norm[i], norm[j]) / min(norm[i], norm[j])
            assert cos[i, j] < 0.9 or ratio > 1.3, (EXPRESSIONS[i], EXPRESSIONS[j], cos[i, j])
    # Jaw opening moves the chin down; brow raise moves the brows up and leaves the chin.
    lm_idx = ProceduralFaces(ProceduralConfig.tiny()).template.landmarks.vertex_indices
    open_, brow = EXPRESSIONS.index("mouth_open"), EXPRESSIONS.index("eyebrow")
    assert apex_disp[open_, lm_idx[8], 1] < -4e-3
    assert apex_disp[brow, lm_idx[19], 1] > 3e-3 and abs(apex_disp[brow, lm_idx[8], 1]) < 1e-3
    smile = EXPRESSIONS.index("high_smile")
    assert apex_disp[smile, lm_idx[48], 1] > 2e-3 and apex_disp[smile, lm_idx[54], 1] > 2e-3


def test_subjects_differ_but_stay_plausible(faces):
    neutrals = np.stack([faces.neutral(s) for s in range(3)])
    lm_idx = faces.template.landmarks.vertex_indices
    for a in range(3):
        for b in range(a + 1, 3):
            rms = np.sqrt(np.mean(np.sum((neutrals[a] - neutrals[b]) ** 2, axis=-1)))
            assert rms > 1e-3
    widths = np.ptp(neutrals[:, :, 0], axis=1)
    assert np.all((widths > 0.12) & (widths < 0.18))
    lm = neutrals[:, lm_idx]
    assert np.all(lm[:, 8, 1] < lm[:, 30, 1]) and np.all(lm[:, 30, 1] < lm[:, 27, 1])
    gap = lm[:, 62, 1] - lm[:, 66, 1]
    assert np.all((gap > 0) & (gap < 2.5e-3))  # neutral lips closed, not crossing
    # Identity x expression interaction: the same expression moves different subjects differently.
    d0 = faces.sequence(0, "mouth_open")[faces.apex_frame(0, "mouth_open")] - neutrals[0]
    d1 = faces.sequence(1, "mouth_open")[faces.apex_frame(1, "mouth_open")] - neutrals[1]
    assert np.abs(d0 - d1).max() > 1e-3


def test_tiny_config_is_fast():
    start = time.perf_counter()
    data = ProceduralFaces(ProceduralConfig.tiny(seed=7))
    total = sum(len(seq) for _, _, seq in data.iter_sequences())
    assert total >= 3 * 12 * 12
    assert time.perf_counter() - start < 20.0
