"""A face opening its mouth: a small, known mesh sequence for the glTF and viewer tests."""

import numpy as np

from jaxface.data.template import load_face_template


def jaw_motion(num_frames: int = 12, subdivisions: int = 0, noise: float = 0.0,
               seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The face template opening its jaw by up to 1.5 cm, with optional per-vertex noise.

    Args:
      num_frames: ``T``.
      subdivisions: template resolution (0: 468 vertices, 2: 6990).
      noise: standard deviation (metres) of i.i.d. noise added to every frame but the first.
      seed: noise seed.

    Returns:
      ``(frames float32 [T, N, 3], faces int32 [F, 3])``.
    """
    template = load_face_template(subdivisions)
    v = template.vertices.astype(np.float64)
    mouth = v[template.landmarks.vertex_indices[48:68]].mean(axis=0)
    below = np.clip((mouth[1] - v[:, 1]) / 0.02, 0.0, 1.0)[:, None]   # 1 under the mouth
    t = np.linspace(0.0, 1.0, num_frames)
    opening = 0.5 - 0.5 * np.cos(np.pi * t)                            # 0 -> 1, smooth
    frames = v + opening[:, None, None] * below * np.array([0.0, -0.015, 0.004])
    rng = np.random.default_rng(seed)
    frames[1:] += noise * rng.standard_normal(frames[1:].shape)
    return frames.astype(np.float32), template.faces.astype(np.int32)
