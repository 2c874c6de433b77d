r"""A video in, the face's landmarks and blendshape scores per frame out.

:func:`read_video_landmarks` decodes a video file with PyAV (FFmpeg's libraries: mp4, mov, mkv,
webm, avi, ...) and runs MediaPipe's FaceLandmarker in ``VIDEO`` mode on every frame, with the
frame's presentation time in milliseconds, so the detector tracks the face from one frame to the
next as it does on a live stream. Each frame gives what a photograph gives
(:class:`jaxface.data.photo.FaceDetection`): the 468 normalised landmarks of the face mesh
(the jaxface template's vertices, in its order; the 10 iris points are not kept), 52 blendshape
scores and a head pose. The frame rate is the container's (the stream's average rate).

Frames where no face is found (the person turned away, a hand in front, a cut) are filled from
their neighbours: landmarks, scores and pose linearly interpolated in time between the nearest
detected frames before and after, or held from the nearest detected frame at the ends of the
clip (:func:`fill_gaps`); :attr:`VideoLandmarks.detected` says which frames were measured and
:attr:`VideoLandmarks.filled` how many were filled. A clip with no face in any frame is refused
(:class:`NoFaceInVideoError`).

``start`` (seconds) and ``max_frames`` take a piece of the video: frames are decoded from the
beginning (exact, whatever the key-frame spacing) and the detector runs only on the piece.

PyAV and MediaPipe are the optional extra ``pip install 'jaxface[video]'``; both are imported only
when a video is read, and a missing one is named with that command
(:class:`VideoDependencyError`). FaceLandmarker's model ships with jaxface
(:func:`jaxface.data.photo.face_landmarker_path`). Errors are :class:`VideoError` (a
``ValueError``) naming the file: missing, not a readable video, no video stream, fewer than two
frames, no frame rate.

Example (the gap filling alone):
  >>> values = np.array([[0.0], [9.0], [4.0], [9.0], [8.0]])
  >>> fill_gaps(values, np.array([False, True, False, True, False]))[:, 0].tolist()
  [9.0, 9.0, 9.0, 9.0, 9.0]
  >>> fill_gaps(np.array([[0.0], [5.0], [2.0]]), np.array([True, False, True]))[:, 0].tolist()
  [0.0, 1.0, 2.0]
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator

import numpy as np

from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.photo import (
    FaceDetection,
    MediaPipeMissingError,
    detection_from_result,
    metric_landmarks,
    open_face_landmarker,
)
from jaxface.data.template import NUM_BASE_VERTICES

__all__ = [
    "INSTALL_HINT",
    "NoFaceInVideoError",
    "VideoDependencyError",
    "VideoError",
    "VideoLandmarks",
    "fill_gaps",
    "open_video",
    "read_video_landmarks",
]

#: How to install what reading a video needs.
INSTALL_HINT = "pip install 'jaxface[video]'"


class VideoError(ValueError):
    """A video (or what reading one needs) that cannot be used.

    Attributes:
      source: the video file, or ``None``.
      detail: the message without the file name.
    """

    def __init__(self, detail: str, *, source: str | os.PathLike[str] | None = None) -> None:
        self.source = None if source is None else os.fspath(source)
        self.detail = detail
        super().__init__(f"{self.source}: {detail}" if self.source else detail)


class NoFaceInVideoError(VideoError):
    """FaceLandmarker found no face in any frame of the video (or of the piece asked for)."""


class VideoDependencyError(VideoError):
    """PyAV or MediaPipe (the optional extra ``jaxface[video]``) is not installed."""


@dataclasses.dataclass(frozen=True)
class VideoLandmarks:
    """FaceLandmarker's measurements on the frames of a video, gaps filled.

    Attributes:
      landmarks: ``float32 [T, 468, 3]`` normalised ``(x, y, z)`` of the face mesh per frame
        (as :attr:`jaxface.data.photo.FaceDetection.landmarks`, without the iris points).
      scores: ``float32 [T, 52]`` blendshape scores, :data:`ARKIT_NAMES` order.
      transforms: ``float32 [T, 4, 4]`` facial transformation matrices (head pose).
      detected: ``bool [T]`` whether the frame's face was found (``False``: filled).
      times_s: ``float64 [T]`` presentation times of the frames, seconds from the video's first
        frame.
      fps: the video stream's frame rate (average rate of the container).
      image_size: ``(height, width)`` of the frames, pixels.
      first_frame: index of the first frame taken in the video.
      source: the video file.
    """

    landmarks: np.ndarray
    scores: np.ndarray
    transforms: np.ndarray
    detected: np.ndarray
    times_s: np.ndarray
    fps: float
    image_size: tuple[int, int]
    first_frame: int
    source: str | None = None

    @property
    def num_frames(self) -> int:
        """``T``, the frames taken."""
        return int(self.landmarks.shape[0])

    @property
    def filled(self) -> int:
        """Frames without a detected face, filled from their neighbours."""
        return int(self.num_frames - np.count_nonzero(self.detected))

    @property
    def names(self) -> tuple[str, ...]:
        """The 52 ARKit names of :attr:`scores`."""
        return ARKIT_NAMES

    def detection(self, t: int) -> FaceDetection:
        """Frame ``t`` as a :class:`jaxface.data.photo.FaceDetection` (filled or measured)."""
        return FaceDetection(landmarks=self.landmarks[t], scores=self.scores[t],
                             neutral_score=float("nan"), transform=self.transforms[t],
                             image_size=self.image_size)

    def metric(self) -> np.ndarray:
        """The 468 mesh landmarks of every frame in a right-handed frame scaled in pixels.

        As :func:`jaxface.data.photo.metric_landmarks`: ``X = x W``, ``Y = -y H``,
        ``Z = -z W`` (x to the viewer's right, y up, z toward the viewer).

        Returns:
          ``float64 [T, 468, 3]``.
        """
        return np.stack([metric_landmarks(self.detection(t)) for t in range(self.num_frames)])


def fill_gaps(values: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Fills the rows of undetected frames from the detected ones.

    A row between two detected frames is linearly interpolated in the frame index; rows
    before the first or after the last detected frame take that frame's values.

    Args:
      values: ``float [T, ...]`` per-frame values (undetected rows are ignored).
      detected: ``bool [T]`` with at least one ``True``.

    Returns:
      ``float64 [T, ...]``, equal to ``values`` on the detected rows.

    Raises:
      ValueError: no detected frame, or shapes that do not match.
    """
    v = np.asarray(values, np.float64)
    ok = np.asarray(detected, bool)
    if ok.ndim != 1 or v.shape[:1] != ok.shape:
        raise ValueError(f"detected must be [T] for values [T, ...], got {list(ok.shape)} and "
                         f"{list(v.shape)}")
    known = np.flatnonzero(ok)
    if known.size == 0:
        raise ValueError("no detected frame to fill from")
    t = np.arange(ok.size)
    pos = np.searchsorted(known, t)  # the first detected frame at or after t
    after = known[np.minimum(pos, known.size - 1)]
    before = known[np.maximum(np.minimum(pos, known.size) - 1, 0)]
    before = np.where(ok, t, before)
    after = np.where(ok, t, after)
    span = after - before
    w = np.where(span > 0, (t - before) / np.maximum(span, 1), 0.0)
    w = w.reshape((-1,) + (1,) * (v.ndim - 1))
    return (1.0 - w) * v[before] + w * v[after]


def _av():
    try:
        import av
    except ImportError as err:
        raise VideoDependencyError(
            f"reading a video needs PyAV, which is not installed ({err}); install it with: "
            f"{INSTALL_HINT}"
        ) from None
    return av


def _reason(err: BaseException) -> str:
    """FFmpeg's reason without the file name PyAV appends (the message names the file)."""
    return str(getattr(err, "strerror", None) or err)


def _check_piece(start: float, max_frames: int | None) -> None:
    if not (np.isfinite(start) and start >= 0):
        raise ValueError(f"start must be a number of seconds >= 0, got {start}")
    if max_frames is not None and max_frames < 2:
        raise ValueError(f"max_frames must be at least 2, got {max_frames}")


@contextlib.contextmanager
def open_video(
    path: str | os.PathLike[str], *, start: float = 0.0, max_frames: int | None = None,
) -> Iterator[tuple[float, Iterator[tuple[int, float, np.ndarray]]]]:
    """Opens a video for decoding its frames (PyAV), from ``start`` seconds on.

    The file is closed when the block ends.

    Args:
      path: the video file.
      start: seconds from the first frame; frames presented earlier are skipped.
      max_frames: at most this many frames (default: to the end).

    Yields:
      ``(fps, frames)``: the stream's frame rate and an iterator of ``(index, time_s, rgb
      uint8 [H, W, 3])`` (the frame's index in the video, its presentation time in seconds
      from the first frame's, its pixels).

    Raises:
      VideoError: the file is missing, not a readable video, has no video stream or no frame
        rate; PyAV is missing (:class:`VideoDependencyError`).
    """
    _check_piece(start, max_frames)
    source = os.fspath(path)
    if not os.path.isfile(source):
        raise VideoError("no such video file", source=source)
    av = _av()
    try:
        container = av.open(source)
    except (av.FFmpegError, OSError, UnicodeDecodeError) as err:
        raise VideoError(f"not a readable video ({_reason(err)})", source=source) from None
    with container:
        if not container.streams.video:
            raise VideoError("holds no video stream", source=source)
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        if not rate or not float(rate) > 0:
            raise VideoError("the video stream has no frame rate", source=source)
        fps = float(rate)

        def frames() -> Iterator[tuple[int, float, np.ndarray]]:
            taken, origin = 0, None
            try:
                for index, frame in enumerate(container.decode(stream)):
                    t = (index / fps if frame.pts is None or stream.time_base is None
                         else float(frame.pts * stream.time_base))
                    origin = t if origin is None else origin
                    t -= origin  # from the first frame (a container may start later than 0)
                    if t < start - 0.5 / fps:
                        continue
                    yield index, t, np.ascontiguousarray(frame.to_ndarray(format="rgb24"))
                    taken += 1
                    if max_frames is not None and taken >= max_frames:
                        break
            except av.FFmpegError as err:
                raise VideoError(f"not a readable video ({_reason(err)})",
                                 source=source) from None

        yield fps, frames()


def read_video_landmarks(
    path: str | os.PathLike[str], *, start: float = 0.0, max_frames: int | None = None,
) -> VideoLandmarks:
    """FaceLandmarker (``VIDEO`` mode) on every frame of a video, gaps filled (module docstring).

    Args:
      path: the video file.
      start: seconds from the video's start where the piece begins.
      max_frames: at most this many frames (default: to the end of the video).

    Returns:
      A :class:`VideoLandmarks`.

    Raises:
      NoFaceInVideoError: no face in any frame taken.
      VideoDependencyError: PyAV or MediaPipe is not installed (names the ``pip`` command).
      VideoError: a missing or unreadable file, no video stream, no frame rate, fewer than two
        frames taken.
      ValueError: ``start`` negative or ``max_frames`` below 2.
    """
    source = os.fspath(path)
    landmarks, scores, transforms, detected, times = [], [], [], [], []
    size, first_frame = None, None
    last_ms = -1
    try:
        with (
            open_video(source, start=start, max_frames=max_frames) as (fps, frames),
            open_face_landmarker("video", purpose="reading a face from a video",
                                 hint=INSTALL_HINT) as (landmarker, mp),
        ):
            for index, t, rgb in frames:
                size = rgb.shape[:2]
                first_frame = index if first_frame is None else first_frame
                ms = max(last_ms + 1, int(round(1000.0 * t)))  # strictly increasing
                last_ms = ms
                image = mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb)
                found = detection_from_result(landmarker.detect_for_video(image, ms), size,
                                              source=source)
                if found is None:
                    landmarks.append(np.full((NUM_BASE_VERTICES, 3), np.nan, np.float32))
                    scores.append(np.full(len(ARKIT_NAMES), np.nan, np.float32))
                    transforms.append(np.full((4, 4), np.nan, np.float32))
                else:
                    landmarks.append(found.landmarks[:NUM_BASE_VERTICES])
                    scores.append(found.scores)
                    transforms.append(found.transform)
                detected.append(found is not None)
                times.append(t)
    except MediaPipeMissingError as err:
        raise VideoDependencyError(err.detail) from None
    count = len(times)
    if count < 2:
        piece = "" if start == 0 else f" from {start:g} s on"
        raise VideoError(f"has {count} frame{'' if count == 1 else 's'}{piece}; a video of at "
                         "least 2 frames is needed", source=source)
    ok = np.asarray(detected, bool)
    if not ok.any():
        raise NoFaceInVideoError(f"no face found in any of the {count} frames (MediaPipe "
                                 "FaceLandmarker)", source=source)
    return VideoLandmarks(
        landmarks=fill_gaps(np.stack(landmarks), ok).astype(np.float32),
        scores=fill_gaps(np.stack(scores), ok).astype(np.float32),
        transforms=fill_gaps(np.stack(transforms), ok).astype(np.float32),
        detected=ok,
        times_s=np.asarray(times, np.float64),
        fps=fps,
        image_size=(int(size[0]), int(size[1])),
        first_frame=first_frame,
        source=source,
    )
