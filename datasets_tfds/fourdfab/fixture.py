"""Writes a tiny 4DFAB release in the layout the builder expects, for tests.

``<root>/4DFAB/<subject>/<session>/<expression>/<frame>.obj`` (or ``.ply``) with 12-vertex
meshes in millimetres, frame numbers zero-padded to 6 digits and starting at
:data:`FIRST_FRAME`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from datasets_tfds.common import fixture_sequence
from datasets_tfds.fourdfab.fourdfab import RELEASE_FOLDER

__all__ = ["FIRST_FRAME", "FIXTURE_EXPRESSIONS", "FIXTURE_SESSIONS", "write_fixture"]

# 4 subjects (enough for the identity folds), the first one in two sessions.
FIXTURE_SESSIONS: Mapping[str, tuple[str, ...]] = {
    "F001": ("session1", "session2"),
    "F002": ("session1",),
    "M001": ("session3",),
    "M002": ("session1",),
}
FIXTURE_EXPRESSIONS = ("happy", "surprise")
FIRST_FRAME = 7


def write_fixture(
    root: str | os.PathLike,
    *,
    sessions: Mapping[str, Sequence[str]] = FIXTURE_SESSIONS,
    expressions: Sequence[str] = FIXTURE_EXPRESSIONS,
    num_frames: int = 11,
) -> dict[tuple[str, str, str], np.ndarray]:
    """Writes the fixture; ``root`` is the manual folder (it gets ``4DFAB/``).

    Subjects whose name starts with ``M`` get PLY files, the others OBJ.

    Returns:
      ``(subject, session, expression) -> vertices float32 [num_frames, 12, 3]`` as written, in
      millimetres and frame-number order.
    """
    from jaxface.mesh.io import write_mesh

    truth = {}
    for subject, names in sessions.items():
        suffix = "ply" if subject.startswith("M") else "obj"
        for session in names:
            for expr in expressions:
                vertices, faces = fixture_sequence(f"{subject}/{session}/{expr}", num_frames)
                vertices = (vertices * 1000.0).astype(np.float32)
                folder = Path(root) / RELEASE_FOLDER / subject / session / expr
                folder.mkdir(parents=True, exist_ok=True)
                for t in range(num_frames):
                    write_mesh(folder / f"{FIRST_FRAME + t:06d}.{suffix}", vertices[t], faces)
                truth[(subject, session, expr)] = vertices
    return truth
