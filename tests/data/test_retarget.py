"""jaxface.data.retarget: head pose removed, the person's neutral, smoothing, retargeting."""

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from jaxface.data import retarget as R
from jaxface.data.expression_basis import ARKIT_NAMES, load_expression_basis
from jaxface.data.photo import mouth_corner_lift
from jaxface.data.template import load_face_template
from tests.data.videos import feat_video, needs_video_extra


def _gaze_free(scores):
    keep = [k for k, n in enumerate(ARKIT_NAMES) if not n.startswith("eyeLook")
            and n != "tongueOut"]
    return np.sqrt(np.sum(np.asarray(scores, np.float64)[:, keep] ** 2, axis=1))


def test_expression_energy(rng):
    scores = rng.random((6, 52))
    np.testing.assert_allclose(R.expression_energy(scores), _gaze_free(scores), rtol=1e-6)
    with pytest.raises(ValueError, match=r"scores must be \[T, 52\]"):
        R.expression_energy(np.zeros((3, 51)))


def test_smoothing_window():
    assert R.smoothing_window(30.0, 0.2) == 7 and R.smoothing_window(23.976, 0.2) == 5
    assert R.smoothing_window(30.0, 0.0) == 0
    assert R.smoothing_window(60.0, 0.01) == 5  # at least 5 frames
    assert R.smoothing_window(30.0, 1.0, num_frames=12) == 11
    assert R.smoothing_window(30.0, 0.2, num_frames=4) == 0
    with pytest.raises(ValueError, match=">= 0 seconds"):
        R.smoothing_window(30.0, -0.1)
    with pytest.raises(ValueError, match="fps must be"):
        R.smoothing_window(0.0, 0.2)


def _polyfit_reference(values, window, degree=2):
    """A degree-2 least-squares fit in each centred window; the end windows' fits at the ends."""
    t = np.arange(len(values), dtype=np.float64)
    half = window // 2
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = min(max(i - half, 0), len(values) - window)
        coef = np.polyfit(t[lo:lo + window], values[lo:lo + window], degree)
        out[i] = np.polyval(coef, t[i])
    return out


def test_smooth_is_a_local_least_squares_polynomial(rng):
    values = rng.normal(size=30)
    np.testing.assert_allclose(R.smooth(values, 7), _polyfit_reference(values, 7), atol=1e-10)
    multi = rng.normal(size=(20, 4, 3))
    expected = np.apply_along_axis(_polyfit_reference, 0, multi, 5)
    np.testing.assert_allclose(R.smooth(multi, 5), expected, atol=1e-10)
    quadratic = 0.3 * np.arange(15.0) ** 2 - np.arange(15.0)
    np.testing.assert_allclose(R.smooth(quadratic, 7), quadratic, atol=1e-9)  # kept exactly
    np.testing.assert_array_equal(R.smooth(values, 0), values)
    with pytest.raises(ValueError, match="must be odd"):
        R.smooth(values, 6)


def _synthetic(num_frames=40, noise_mm=0.0, seed=0):
    """The template smiling and opening its jaw, filmed turning, moving and zooming."""
    rng = np.random.default_rng(seed)
    t = load_face_template(0).vertices.astype(np.float64)
    basis = load_expression_basis(0)
    phase = np.clip(np.sin(np.linspace(-0.6, np.pi + 0.6, num_frames)), 0, None)
    weights = np.zeros((num_frames, 52))
    weights[:, basis.index("mouthSmile_L")] = 0.8 * phase
    weights[:, basis.index("mouthSmile_R")] = 0.7 * phase
    weights[:, basis.index("jawOpen")] = 0.3 * phase
    faces = t + np.einsum("tk,kvc->tvc", weights, basis.displacements.astype(np.float64))
    rot = Rotation.from_euler("yxz", np.stack([0.4 * np.sin(np.linspace(0, 3, num_frames)),
                                               0.1 * np.cos(np.linspace(0, 2, num_frames)),
                                               np.zeros(num_frames)], 1)).as_matrix()
    scale = 700.0 * (1 + 0.2 * np.linspace(0, 1, num_frames))  # pixels per metre, zooming
    shift = rng.normal(size=(num_frames, 1, 3)) * 20.0
    filmed = scale[:, None, None] * np.einsum("tij,tvj->tvi", rot, faces) + shift
    filmed += rng.normal(size=filmed.shape) * noise_mm * 1e-3 * scale[:, None, None]
    return filmed, weights, faces - t, rot


def test_track_recovers_a_known_expression(monkeypatch):
    filmed, weights, truth, rot = _synthetic()
    track = R.track_expression(filmed, weights, fps=30.0, smoothing_s=0.0)
    template = load_face_template(0).vertices
    assert track.window == 0 and track.num_frames == 40
    # The rest frames are chosen, and the neutral is the template (its size and frame).
    assert np.all(weights[track.neutral_frames].sum(1) < 1e-9)
    assert np.abs(track.neutral - template).max() < 1e-7
    # The expression comes back up to what pose and expression cannot tell apart (the smile
    # shapes also move the cheeks and temples by up to 1.6 mm). Measured: 0.27 mm mean,
    # 1.4 mm max, of a smile with the jaw open that moves the mouth corners by 15 mm.
    err_mm = 1000 * np.linalg.norm(track.displacements - truth, axis=-1)
    assert 1000 * np.linalg.norm(truth, axis=-1).max() > 14.0
    assert err_mm.mean() < 0.35 and err_mm.max() < 2.0, (err_mm.mean(), err_mm.max())
    # The head pose removed is the filmed one (rotation onto the neutral = its inverse).
    angle = Rotation.from_matrix(np.einsum("tij,tjk->tik", track.rotations, rot)).magnitude()
    assert np.degrees(angle).max() < 1.0
    np.testing.assert_allclose(track.scales * 700.0 * (1 + 0.2 * np.linspace(0, 1, 40)), 1.0,
                               atol=0.01)
    # The robust reweighting halves the error of the fixed weights alone (measured 0.52 mm).
    monkeypatch.setattr(R, "ROBUST_ITERATIONS", 0)
    fixed = R.track_expression(filmed, weights, fps=30.0, smoothing_s=0.0)
    fixed_mm = 1000 * np.linalg.norm(fixed.displacements - truth, axis=-1)
    assert fixed_mm.mean() > 1.5 * err_mm.mean()


def test_smoothing_reduces_jitter_and_keeps_the_motion():
    filmed, weights, truth, _ = _synthetic(num_frames=60, noise_mm=0.3)
    raw = R.track_expression(filmed, weights, fps=30.0, smoothing_s=0.0)
    smooth = R.track_expression(filmed, weights, fps=30.0)
    assert smooth.window == 7

    def jitter(d):
        return np.linalg.norm(np.diff(d, 2, axis=0), axis=-1).mean()

    def error(d):
        return np.linalg.norm(d - truth, axis=-1).mean()

    assert jitter(smooth.displacements) < 0.5 * jitter(raw.displacements)
    assert error(smooth.displacements) < error(raw.displacements)
    np.testing.assert_array_equal(smooth.aligned, raw.aligned)  # smoothing comes after


def test_track_errors():
    with pytest.raises(ValueError, match=r"points must be \[T, 468, 3\] with T >= 2"):
        R.track_expression(np.zeros((1, 468, 3)), np.zeros((1, 52)), 30.0)
    with pytest.raises(ValueError, match="scores have 3 frames, points 2"):
        R.track_expression(np.zeros((2, 468, 3)), np.zeros((3, 52)), 30.0)
    bad = np.zeros((2, 468, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        R.track_expression(bad, np.zeros((2, 52)), 30.0)


def test_retarget_is_covariant(rng):
    t = load_face_template(0).vertices.astype(np.float64)
    d = rng.normal(size=(3, 468, 3)) * 1e-3
    np.testing.assert_allclose(R.retarget(d, t, t), d, atol=1e-15)
    rot = Rotation.from_euler("y", 25, degrees=True).as_matrix()
    turned = t @ rot.T + 0.05  # the same face, turned and moved: the displacements turn
    np.testing.assert_allclose(R.retarget(d, t, turned), d @ rot.T, atol=1e-15)
    # A face 1.2 times larger moves 1.2 times more (up to the normals' smoothing radius,
    # which is in metres: 5 % on this random field).
    larger = R.retarget(d, t, 1.2 * t)
    rel = np.linalg.norm(larger - 1.2 * d, axis=-1).mean() / np.linalg.norm(1.2 * d, axis=-1).mean()
    assert rel < 0.08
    np.testing.assert_allclose(np.linalg.norm(larger, axis=-1).mean(),
                               1.2 * np.linalg.norm(d, axis=-1).mean(), rtol=0.02)
    with pytest.raises(ValueError, match=r"target must be \[468, 3\]"):
        R.retarget(d, t, t[:100])


@needs_video_extra
def test_real_video_smile_and_jitter():
    from jaxface.data.video import read_video_landmarks

    video = read_video_landmarks(feat_video("single_face.mp4"))
    raw = R.track_expression(video.metric(), video.scores, video.fps, smoothing_s=0.0)
    smooth = R.track_expression(video.metric(), video.scores, video.fps)
    # The man is relaxed in the first half second: the neutral comes from there.
    assert smooth.neutral_frames.max() < 20
    jitter = [np.linalg.norm(np.diff(x.displacements, 2, axis=0), axis=-1).mean()
              for x in (raw, smooth)]
    assert jitter[1] < 0.75 * jitter[0], jitter  # measured: 0.158 -> 0.097 mm
    lift = [mouth_corner_lift(smooth.neutral + d) - mouth_corner_lift(smooth.neutral)
            for d in smooth.displacements]
    smile = video.scores[:, [ARKIT_NAMES.index("mouthSmile_L"),
                             ARKIT_NAMES.index("mouthSmile_R")]].mean(1)
    assert np.corrcoef(lift, smile)[0, 1] > 0.9  # measured 0.987
    assert max(lift) > 5.0  # mm, the template's size
