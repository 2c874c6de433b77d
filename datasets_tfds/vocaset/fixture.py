"""Writes a tiny VOCASET release in its layout, for tests.

``<root>/unposedcleaneddata/<FaceTalk_XXXXXX_XXXXX_TA>/sentenceNN/sentenceNN.NNNNNN.ply`` with
12-vertex meshes: one training, one validation and one test subject, each with a sentence used
only for training (``sentence01``) and two held-out-range sentences; one sequence skips a frame
number, as some release sequences do.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from datasets_tfds.common import fixture_sequence
from datasets_tfds.vocaset.vocaset import RELEASE_FOLDER

__all__ = ["FIXTURE_SEQUENCES", "write_fixture"]

FIXTURE_SEQUENCES: Mapping[str, tuple[str, ...]] = {
    "FaceTalk_170725_00137_TA": ("sentence01", "sentence21", "sentence22"),  # train
    "FaceTalk_170811_03275_TA": ("sentence01", "sentence21", "sentence22"),  # validation
    "FaceTalk_170809_00138_TA": ("sentence01", "sentence21", "sentence22"),  # test
}
_FRAMES = (1, 2, 3)
_GAPPED = (1, 3, 4)  # sentence22 of the first subject skips frame 2


def write_fixture(
    root: str | os.PathLike, *, sequences: Mapping[str, Sequence[str]] = FIXTURE_SEQUENCES
) -> dict[tuple[str, str], tuple[tuple[int, ...], np.ndarray]]:
    """Writes the fixture; ``root`` is the manual folder (it gets ``unposedcleaneddata/``).

    Returns:
      ``(subject, sentence) -> (frame numbers, vertices float32 [T, 12, 3])``.
    """
    from jaxface.mesh.io import write_mesh

    truth = {}
    first = next(iter(sequences))
    for subject, names in sequences.items():
        for name in names:
            numbers = _GAPPED if (subject == first and name == "sentence22") else _FRAMES
            vertices, faces = fixture_sequence(f"{subject}/{name}", len(numbers))
            folder = Path(root) / RELEASE_FOLDER / subject / name
            folder.mkdir(parents=True, exist_ok=True)
            for t, number in enumerate(numbers):
                write_mesh(folder / f"{name}.{number:06d}.ply", vertices[t], faces)
            truth[(subject, name)] = (numbers, vertices)
    return truth
