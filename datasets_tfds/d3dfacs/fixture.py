"""Writes a tiny D3DFACS registration release in its layout, for tests.

``<root>/d3dfacs_alignments/<Subject>/<sequence>/<sequence>_<frame>.ply`` with 12-vertex meshes
and frame numbers that are not zero-padded and do not start at 0 (so that sorting by file name
would be wrong: ``..._98.ply`` sorts after ``..._100.ply`` as text).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from datasets_tfds.common import fixture_sequence
from datasets_tfds.d3dfacs.d3dfacs import RELEASE_FOLDER

__all__ = ["FIXTURE_FRAMES", "FIXTURE_SEQUENCES", "write_fixture"]

# 4 subjects x 3 sequences, 12 distinct sequence names (enough for both S2D protocols).
FIXTURE_SEQUENCES: Mapping[str, tuple[str, ...]] = {
    "Adrian": ("1", "1+2", "10"),
    "Darren": ("12", "14", "15"),
    "Joe": ("16+25", "17", "18"),
    "Kornelia": ("1+2+4+5+11+17+38", "20", "26"),
}
FIXTURE_FRAMES = (98, 99, 100, 101)


def write_fixture(
    root: str | os.PathLike,
    *,
    sequences: Mapping[str, Sequence[str]] = FIXTURE_SEQUENCES,
    frames: Sequence[int] = FIXTURE_FRAMES,
) -> dict[tuple[str, str], np.ndarray]:
    """Writes the fixture; ``root`` is the manual folder (it gets ``d3dfacs_alignments/``).

    Returns:
      ``(subject, sequence) -> vertices float32 [len(frames), 12, 3]`` in frame-number order.
    """
    from jaxface.mesh.io import write_mesh

    truth = {}
    for subject, names in sequences.items():
        for name in names:
            vertices, faces = fixture_sequence(f"{subject}/{name}", len(frames))
            folder = Path(root) / RELEASE_FOLDER / subject / name
            folder.mkdir(parents=True, exist_ok=True)
            for t, number in enumerate(frames):
                write_mesh(folder / f"{name}_{number}.ply", vertices[t], faces)
            truth[(subject, name)] = vertices
    return truth
