"""jaxface.data.video: decoding real videos, FaceLandmarker per frame, gaps filled."""

import sys

import numpy as np
import pytest

from jaxface.data import video as V
from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.photo import metric_landmarks
from tests.data.videos import feat_video, needs_video_extra


def _interp_reference(values, detected):
    """Column by column with np.interp (which holds the end values, as fill_gaps does)."""
    t = np.arange(len(detected))
    flat = values.reshape(len(detected), -1)
    out = np.stack([np.interp(t, t[detected], col[detected]) for col in flat.T], axis=1)
    return out.reshape(values.shape)


def test_fill_gaps_matches_linear_interpolation(rng):
    values = rng.normal(size=(40, 5, 3))
    detected = rng.random(40) < 0.4
    detected[[3, 30]] = True
    filled = V.fill_gaps(values, detected)
    np.testing.assert_allclose(filled, _interp_reference(values, detected), atol=1e-12)
    np.testing.assert_array_equal(filled[detected], values[detected])
    # One detected frame: every frame takes it.
    one = np.zeros(6, bool)
    one[2] = True
    np.testing.assert_array_equal(V.fill_gaps(values[:6], one), np.repeat(values[2:3], 6, 0))


def test_fill_gaps_errors():
    with pytest.raises(ValueError, match="no detected frame"):
        V.fill_gaps(np.zeros((4, 2)), np.zeros(4, bool))
    with pytest.raises(ValueError, match=r"detected must be \[T\]"):
        V.fill_gaps(np.zeros((4, 2)), np.ones(5, bool))


@pytest.fixture(scope="module")
def single_face():
    return V.read_video_landmarks(feat_video("single_face.mp4"))


@needs_video_extra
def test_single_face_video(single_face):
    v = single_face
    assert v.num_frames == 72 and v.fps == 30.0 and v.image_size == (360, 640)
    assert v.filled == 0 and v.detected.all() and v.first_frame == 0
    np.testing.assert_allclose(v.times_s, np.arange(72) / 30.0, atol=1e-6)
    assert v.landmarks.shape == (72, 468, 3) and v.scores.shape == (72, 52)
    assert np.isfinite(v.landmarks).all() and np.isfinite(v.transforms).all()
    xy = v.landmarks[..., :2]
    assert np.all((xy > 0) & (xy < 1))
    # The pixel-scaled metric frame of the photo pipeline, frame by frame.
    metric = v.metric()
    assert metric.shape == (72, 468, 3)
    np.testing.assert_array_equal(metric[40], metric_landmarks(v.detection(40)))
    # The man is relaxed in the first half second and smiles from about 0.6 s on.
    smile = v.scores[:, [ARKIT_NAMES.index("mouthSmile_L"), ARKIT_NAMES.index("mouthSmile_R")]]
    assert smile[:15].max() < 0.05 and smile[25:65].min() > 0.5


@needs_video_extra
def test_a_piece_of_the_video():
    v = V.read_video_landmarks(feat_video("single_face.mp4"), start=1.0, max_frames=5)
    assert v.num_frames == 5 and v.first_frame == 30
    np.testing.assert_allclose(v.times_s, (30 + np.arange(5)) / 30.0, atol=1e-6)


@needs_video_extra
def test_frames_without_a_face_are_filled():
    # The face appears about 3.7 s into the clip, is lost for a few frames, then stays.
    v = V.read_video_landmarks(feat_video("noface_face.mov"), max_frames=100)
    assert v.num_frames == 100
    assert 0 < v.filled < 100 and v.filled == np.count_nonzero(~v.detected)
    assert not v.detected[0]  # filled from the first frame with a face
    ok = v.detected
    for field in ("landmarks", "scores", "transforms"):
        values = getattr(v, field).astype(np.float64)
        np.testing.assert_allclose(values, _interp_reference(values, ok), atol=1e-6)


@needs_video_extra
def test_a_video_without_a_face_is_refused():
    with pytest.raises(V.NoFaceInVideoError, match=r"no_face\.mp4: no face found in any of the "
                                                   r"10 frames"):
        V.read_video_landmarks(feat_video("no_face.mp4"), max_frames=10)


@needs_video_extra
def test_files_that_are_not_videos(tmp_path):
    from PIL import Image

    text = tmp_path / "clip.mp4"
    text.write_text("this is not a video\n")
    with pytest.raises(V.VideoError, match=r"clip\.mp4: not a readable video"):
        V.read_video_landmarks(text)
    with pytest.raises(V.VideoError, match=r"nothere\.mp4: no such video file"):
        V.read_video_landmarks(tmp_path / "nothere.mp4")
    still = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(still)
    with pytest.raises(V.VideoError, match=r"face\.png: has 1 frame; a video of at least 2"):
        V.read_video_landmarks(still)
    with pytest.raises(ValueError, match="max_frames must be at least 2"):
        V.read_video_landmarks(text, max_frames=1)
    with pytest.raises(ValueError, match="start must be"):
        V.read_video_landmarks(text, start=-1.0)


def test_missing_pyav_names_the_pip_command(monkeypatch, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\0" * 16)
    monkeypatch.setitem(sys.modules, "av", None)  # import av -> ImportError
    with pytest.raises(V.VideoDependencyError, match=r"PyAV.*pip install 'jaxface\[video\]'"):
        V.read_video_landmarks(clip)


@needs_video_extra
def test_missing_mediapipe_names_the_video_extra(monkeypatch):
    path = feat_video("single_face.mp4")
    monkeypatch.setitem(sys.modules, "mediapipe", None)
    with pytest.raises(V.VideoDependencyError,
                       match=r"a face from a video needs MediaPipe.*jaxface\[video\]"):
        V.read_video_landmarks(path, max_frames=2)
