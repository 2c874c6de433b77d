"""CoMA: registered FLAME-topology meshes of 12 subjects x 12 extreme expressions (metres).

Each sequence goes neutral -> apex -> neutral; the release has 20,466 meshes of 5023 vertices.
The data are licence-gated: download them by hand (see ``MANUAL_DOWNLOAD_INSTRUCTIONS``).

Examples: one per mesh in split ``frames``, sorted by (subject, expression, frame). Protocols
written to ``splits/``: ``interpolation``, ``extrapolation_<expression>`` (12) and the S2D
``identity_fold1..4`` / ``expression_fold1..4``.
"""

from __future__ import annotations

import re

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds.common import (
    LayoutError,
    MeshSequenceBuilder,
    SequenceSource,
    check_vertex_counts,
    flame_builder_configs,
    frame_pattern,
    list_dir,
    manual_root,
    scan_frames,
    subject_folders,
)
from jaxface.data.procedural import EXPRESSIONS  # the 12 CoMA expressions, sorted
from jaxface.data.splits import Split, coma_protocols

__all__ = ["EXPECTED_LAYOUT", "EXPRESSIONS", "SUBJECT_PATTERN", "Coma"]

SUBJECT_PATTERN = re.compile(r"FaceTalk_\d{6}_\d{5}_TA")
EXPECTED_LAYOUT = "<FaceTalk_XXXXXX_XXXXX_TA>/<expression>/<expression>.NNNNNN.ply"


class Coma(MeshSequenceBuilder):
    """CoMA registered 4D expression sequences (12 subjects x 12 expressions, FLAME topology)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per mesh (split 'frames'); CoMA and S2D protocols, per-vertex "
        "statistics, sequence index and source checksums stored with the data.",
    }
    BUILDER_CONFIGS = flame_builder_configs()
    DEFAULT_CONFIG_NAME = "default"
    HOMEPAGE = "https://coma.is.tue.mpg.de/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Register at https://coma.is.tue.mpg.de/, download the registered meshes and extract them so
    that the manual folder holds the 12 subject folders directly:

        <manual_dir>/{EXPECTED_LAYOUT}

    e.g. <manual_dir>/FaceTalk_170725_00137_TA/bareteeth/bareteeth.000001.ply. Every subject
    folder must hold the 12 expression folders {", ".join(EXPRESSIONS)}.
    For the 'landmarks' config also pass FLAME's landmark embedding
    (landmark_embedding=<file> or (<static .pkl>, <dynamic .npy>)).
    """

    def _sequences(self, dl_manager) -> list[SequenceSource]:
        expected = f"CoMA subject folders laid out as {EXPECTED_LAYOUT}"
        root = manual_root(dl_manager, expected)
        self._source_root = root
        subjects = subject_folders(root, expected)
        for name in subjects:
            if not SUBJECT_PATTERN.fullmatch(name):
                raise LayoutError(
                    f"{root / name}: unexpected folder name; expected subject folders named "
                    "FaceTalk_XXXXXX_XXXXX_TA (6 and 5 digits)"
                )
        sequences = []
        for subject in subjects:
            folder = root / subject
            found, _ = list_dir(folder)
            for name in found:
                if name not in EXPRESSIONS:
                    raise LayoutError(
                        f"{folder / name}: unexpected folder; expected only the 12 CoMA "
                        f"expression folders ({', '.join(EXPRESSIONS)})"
                    )
            for expr in EXPRESSIONS:
                if expr not in found:
                    raise LayoutError(
                        f"{folder / expr}: missing expression folder; every subject needs "
                        f"all 12 ({', '.join(EXPRESSIONS)})"
                    )
                numbers, paths = scan_frames(
                    folder / expr, frame_pattern(expr, ".", 6), f"{expr}.NNNNNN.ply"
                )
                sequences.append(SequenceSource(subject, expr, numbers, paths))
        check_vertex_counts(sequences)
        return sequences

    def _expressions(self, sequences) -> tuple[str, ...]:
        return EXPRESSIONS

    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        return coma_protocols(subjects, expressions, frames)
