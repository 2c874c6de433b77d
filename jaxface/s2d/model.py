"""S2D-Dec's topology, network and run template: what training and inference share.

A trained run directory holds ``config.json`` (the experiment config), ``template.npz`` (the
template's faces, vertices and landmark definition, written by :func:`save_template`) and orbax
checkpoints. The decoder is rebuilt from them by :func:`build_topology` (the hierarchy and
spirals come from the topology cache, built once per template and parameters) and
:func:`jaxface.models.create_model`.
"""

from __future__ import annotations

import os

import numpy as np

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.files import write_npz
from jaxface.models import build_topology

__all__ = ["TEMPLATE_FILE", "build_topology", "load_template", "save_template"]

TEMPLATE_FILE = "template.npz"


def save_template(workdir: str, vertices: np.ndarray, faces: np.ndarray,
                  landmarks: LandmarkDefinition) -> str:
    """Writes the template a run was trained on (``<workdir>/template.npz``) atomically."""
    arrays = {"vertices": np.asarray(vertices, np.float32), "faces": np.asarray(faces, np.int32)}
    for name in ("vertex_indices", "face_indices", "barycentric"):
        value = getattr(landmarks, name)
        if value is not None:
            arrays[f"landmarks/{name}"] = np.asarray(value)
    return write_npz(os.path.join(os.path.abspath(workdir), TEMPLATE_FILE), arrays)


def load_template(workdir: str) -> tuple[np.ndarray, np.ndarray, LandmarkDefinition]:
    """Reads a run's ``template.npz``: ``(vertices [N, 3], faces [F, 3], landmarks)``.

    Raises:
      FileNotFoundError: the run has no template.
    """
    path = os.path.join(os.path.abspath(workdir), TEMPLATE_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.path.dirname(path)} is not a trained S2D-Dec run: "
                                f"{TEMPLATE_FILE} is missing")
    with np.load(path) as z:
        vertices, faces = np.array(z["vertices"]), np.array(z["faces"])
        fields = {k.split("/", 1)[1]: np.array(z[k]) for k in z.files if "/" in k}
    return vertices, faces, LandmarkDefinition(**fields)
