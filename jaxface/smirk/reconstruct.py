"""Photo or video -> 3D faces with trained encoders, as the official demo does, plus meshes.

MediaPipe's landmarks give a square crop at scale 1.4 around the face (:mod:`jaxface.smirk.crop`),
resized to the encoders' input; the encoders read the morphable model's parameters and the
camera; the model gives the mesh. The mesh is written in the model's frame (metres, x right,
y up, z toward the viewer, head pose applied); the overlay renders it with the camera into the
crop and carries the render back onto the photo.
"""

from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.photo import NUM_BASE_VERTICES, FaceDetection, detect_face, landmark_pixels
from jaxface.data.video import open_video, read_video_landmarks
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.render.renderer import render
from jaxface.smirk.crop import crop_matrix, invert, transform_points, warp_image
from jaxface.smirk.fitting import encoding_params, fit_landmarks
from jaxface.smirk.landmarks import pixels_to_screen
from jaxface.smirk.train import TrainedEncoders

__all__ = ["TEST_CROP_SCALE", "Reconstruction", "Reconstructor"]

#: The crop scale of the official demo and evaluation.
TEST_CROP_SCALE = 1.4


@dataclasses.dataclass(frozen=True)
class Reconstruction:
    """3D faces read from ``T`` images (one face each).

    Attributes:
      vertices: ``float32 [T, V, 3]`` posed meshes, metres, the model's frame.
      params: the model's parameters (numpy leaves ``[T, ...]``).
      cam: ``float32 [T, 3]`` the cameras of the crops.
      crops: ``float32 [T, 2, 3]`` photo pixels -> crop pixels.
      crop_size: the crops' side.
    """

    vertices: np.ndarray
    params: FaceParams
    cam: np.ndarray
    crops: np.ndarray
    crop_size: int

    def __len__(self) -> int:
        return int(self.vertices.shape[0])


@functools.partial(jax.jit, static_argnums=(2,))
def _crop(image, matrix, size):
    return warp_image(image, matrix, size) / 255.0


class Reconstructor:
    """Trained encoders with their morphable model, or the landmark fit alone.

    Args:
      encoders: the trained encoders (:func:`jaxface.smirk.run.load_encoders`), or None to fit
        the model to MediaPipe's landmarks instead (:func:`jaxface.smirk.fitting.fit_landmarks`).
      model: the morphable model.
      batch_size: images encoded at once.
      image_size: the crop side without encoders (default 224).
      fit_steps: Adam steps of the landmark fit.
    """

    def __init__(self, encoders: TrainedEncoders | None, model: MorphableModel, *,
                 batch_size: int = 16, image_size: int = 224, fit_steps: int = 300):
        self.encoders = encoders
        self.model = model
        self.batch_size = int(batch_size)
        self.image_size = encoders.image_size if encoders is not None else int(image_size)
        self.fit_steps = int(fit_steps)
        self._morph = jax.jit(functools.partial(morph, model))
        size, faces = self.image_size, np.asarray(model.face_mask_faces)
        self._render = jax.jit(lambda v, cam: render(v, faces, cam, size))

    def morph(self, params: FaceParams):
        """The model's output for parameters (jitted)."""
        return self._morph(params)

    def render_crop(self, vertices: np.ndarray, cam: np.ndarray):
        """Grey renders ``[B, S, S, 3]`` (and masks) of meshes ``[B, V, 3]`` in their crops."""
        return self._render(jnp.asarray(vertices, jnp.float32), jnp.asarray(cam, jnp.float32))

    @property
    def faces(self) -> np.ndarray:
        """``int32 [F, 3]`` the model's triangles."""
        return np.asarray(self.model.faces)

    def crop_of(self, detection: FaceDetection, scale: float = TEST_CROP_SCALE) -> np.ndarray:
        """``float32 [2, 3]`` the test-time crop of a detected face."""
        pts = landmark_pixels(detection)[:NUM_BASE_VERTICES].astype(np.float32)
        return np.asarray(crop_matrix(pts, self.image_size, scale), np.float32)

    def from_crops(self, crops: np.ndarray, matrices: np.ndarray, *,
                   landmarks: np.ndarray | None = None) -> Reconstruction:
        """Reconstructs ``[T, S, S, 3]`` crops in [0, 1] (``matrices``: their ``[T, 2, 3]``).

        Args:
          crops: the crops.
          matrices: photo pixels -> crop pixels of each crop.
          landmarks: ``[T, 468, 2]`` MediaPipe's landmarks in crop pixels; needed (and only
            used) without encoders.
        """
        if self.encoders is None:
            if landmarks is None:
                raise ValueError("the landmark fit needs the landmarks of every crop")
            rows = np.asarray(self.model.mediapipe_indices)
            params, cam, _ = fit_landmarks(
                self.model, pixels_to_screen(jnp.asarray(landmarks)[:, rows], self.image_size),
                steps=self.fit_steps)
        else:
            encodings = []
            for lo in range(0, crops.shape[0], self.batch_size):
                batch = jnp.asarray(crops[lo:lo + self.batch_size])
                encodings.append(jax.device_get(self.encoders(batch)))
            enc = jax.tree.map(lambda *xs: np.concatenate(xs), *encodings)
            params, cam = encoding_params(enc), enc.cam
        vertices = np.asarray(self._morph(params).vertices, np.float32)
        return Reconstruction(vertices=vertices, params=jax.tree.map(np.asarray, params),
                              cam=np.asarray(cam, np.float32),
                              crops=np.asarray(matrices, np.float32), crop_size=self.image_size)

    def image(self, image: np.ndarray, *, detection: FaceDetection | None = None,
              source: str | None = None) -> Reconstruction:
        """One face from an RGB image ``uint8 [H, W, 3]``.

        Raises:
          NoFaceError: MediaPipe finds no face.
        """
        det = detect_face(image, source=source) if detection is None else detection
        matrix = self.crop_of(det)
        crop = np.asarray(_crop(image, matrix, self.image_size))
        return self.from_crops(crop[None], matrix[None],
                               landmarks=self._crop_landmarks(det, matrix)[None])

    def _crop_landmarks(self, detection: FaceDetection, matrix: np.ndarray) -> np.ndarray:
        pts = landmark_pixels(detection)[:NUM_BASE_VERTICES].astype(np.float32)
        return np.asarray(transform_points(matrix, pts), np.float32)

    def video(self, path: str | os.PathLike[str], *, start: float = 0.0,
              max_frames: int | None = None) -> tuple[Reconstruction, float, np.ndarray]:
        """One face per frame of a video (frames without a face use their neighbours' crop).

        Returns:
          ``(reconstruction, fps, detected bool [T])``.

        Raises:
          VideoError: unreadable video, no face in any frame, PyAV or MediaPipe missing.
        """
        measured = read_video_landmarks(path, start=start, max_frames=max_frames)
        crops, matrices, landmarks = [], [], []
        with open_video(path, start=start, max_frames=max_frames) as (fps, frames):
            for t, (_, _, rgb) in enumerate(frames):
                if t >= measured.num_frames:
                    break
                det = measured.detection(t)
                matrix = self.crop_of(det)
                crops.append(np.asarray(_crop(rgb, matrix, self.image_size)))
                matrices.append(matrix)
                landmarks.append(self._crop_landmarks(det, matrix))
        recon = self.from_crops(np.stack(crops), np.stack(matrices), landmarks=np.stack(landmarks))
        return recon, fps, measured.detected

    def overlay(self, image: np.ndarray, recon: Reconstruction, index: int = 0, *,
                alpha: float = 0.7) -> np.ndarray:
        """The reconstruction rendered (grey, the official lights) over its image.

        Args:
          image: ``uint8 [H, W, 3]`` the image reconstruction ``index`` was read from.
          recon: the reconstruction.
          index: which of its faces.
          alpha: opacity of the render.

        Returns:
          ``uint8 [H, W, 3]``.
        """
        rendered = self.render_crop(recon.vertices[index:index + 1], recon.cam[index:index + 1])
        mask = rendered.mask[0, ..., None].astype(jnp.float32)
        layer = jnp.concatenate([rendered.image[0], mask], axis=-1)
        back = np.asarray(warp_image(layer, invert(recon.crops[index]), image.shape[:2]))
        a = alpha * np.clip(back[..., 3:], 0.0, 1.0)
        out = (1.0 - a) * image.astype(np.float32) + a * 255.0 * back[..., :3]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
