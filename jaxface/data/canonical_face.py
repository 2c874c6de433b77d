"""MediaPipe's canonical face on the jaxface template: a second real-proportioned identity.

The asset ``jaxface/assets/canonical_face.npz`` holds MediaPipe's canonical face model (from the
MIT npm package ``mind-ar@1.2.5``; see ``jaxface/assets/PROVENANCE.md``) registered rigidly to the
template's frame (metres, x to the subject's left, y up, z toward the viewer) with its lips closed
to the template's 1 mm slit, by ``experiments/assets/build_canonical_face.py``. Its 468 vertices are
in the template's vertex order, so it is a face in the template's topology; it is 5.6 mm RMS from
the template.

Example:
  >>> load_canonical_face(0).shape, load_canonical_face(2).shape
  ((468, 3), (6990, 3))
"""

from __future__ import annotations

import functools
import importlib.resources

import numpy as np

from jaxface.data.template import NUM_BASE_VERTICES, load_face_template

__all__ = ["CANONICAL_FACE_ASSET", "load_canonical_face"]

CANONICAL_FACE_ASSET = "canonical_face.npz"


@functools.lru_cache(maxsize=4)
def load_canonical_face(level: int = 2) -> np.ndarray:
    """The canonical face at a template level (cached; read-only).

    Args:
      level: template subdivision level (0: 468, 1: 1790, 2: 6990 vertices); finer levels apply
        the template's subdivision operator ``from_base`` to the 468 vertices.

    Returns:
      ``float32 [N, 3]`` vertices, metres.
    """
    ref = importlib.resources.files("jaxface").joinpath("assets", CANONICAL_FACE_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        base = z["vertices"].astype(np.float64)
    if base.shape != (NUM_BASE_VERTICES, 3):
        raise ValueError(f"{CANONICAL_FACE_ASSET}: vertices have shape {base.shape}")
    out = np.asarray(load_face_template(level).from_base @ base, np.float32)
    out.setflags(write=False)
    return out
