"""Writes a tiny CoMA release in the exact layout, for tests and the README's dry run.

``<root>/<FaceTalk_XXXXXX_XXXXX_TA>/<expression>/<expression>.NNNNNN.ply`` with 12-vertex meshes
(binary PLY, frames numbered from 1 like the release).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from datasets_tfds.coma.coma import EXPRESSIONS
from datasets_tfds.common import fixture_sequence

__all__ = ["FIXTURE_SUBJECTS", "write_fixture"]

FIXTURE_SUBJECTS = ("FaceTalk_170725_00137_TA", "FaceTalk_170728_03272_TA")


def write_fixture(
    root: str | os.PathLike,
    *,
    subjects: Sequence[str] = FIXTURE_SUBJECTS,
    expressions: Sequence[str] = EXPRESSIONS,
    num_frames: int = 3,
) -> dict[tuple[str, str], np.ndarray]:
    """Writes the fixture under ``root``.

    Args:
      root: the manual folder to create.
      subjects: subject folder names.
      expressions: expression folders per subject.
      num_frames: frames per sequence.

    Returns:
      ``(subject, expression) -> vertices float32 [num_frames, 12, 3]`` as written; the shared
      faces are ``fixture_sequence(...)[1]``.
    """
    from jaxface.mesh.io import write_mesh

    truth = {}
    for subject in subjects:
        for expr in expressions:
            vertices, faces = fixture_sequence(f"{subject}/{expr}", num_frames)
            folder = Path(root) / subject / expr
            folder.mkdir(parents=True, exist_ok=True)
            for t in range(num_frames):
                write_mesh(folder / f"{expr}.{t + 1:06d}.ply", vertices[t], faces)
            truth[(subject, expr)] = vertices
    return truth
