"""D3DFACS registered to FLAME topology: 10 subjects performing FACS action-unit sequences.

The registrations are released with FLAME (archive ``d3dfacs_alignments.zip``, licence-gated).
Their layout, as used by public code reading the release (there is no official layout document):

    d3dfacs_alignments/<Subject>/<sequence>/<sequence>_<frame>.ply

where ``<Subject>`` is a first name (e.g. ``Joe``), ``<sequence>`` the action-unit combination
(e.g. ``1+2+4+5+11+17+38``) and ``<frame>`` an integer that is not zero-padded, so frames are
ordered by number, never by file name. The manual folder may be ``d3dfacs_alignments`` itself or
hold it.

Examples: one per mesh in split ``frames``, sorted by (subject, sequence, frame number); the
``expression`` feature is the sequence name and ``label`` its index among the sorted sequence
names of the release. Protocols: ``interpolation``; S2D's ``identity_leading3`` (the first 3
sorted subjects test, the last 7 train) and ``expression_leading11`` (the first 11 sorted
sequence names test), each when the release has enough names.
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
from jaxface.data.splits import Split, interpolation_split, leading_names_split

__all__ = [
    "EXPECTED_LAYOUT",
    "NUM_TEST_EXPRESSIONS",
    "NUM_TEST_SUBJECTS",
    "RELEASE_FOLDER",
    "D3dfacs",
]

RELEASE_FOLDER = "d3dfacs_alignments"
EXPECTED_LAYOUT = f"[{RELEASE_FOLDER}/]<Subject>/<sequence>/<sequence>_<frame>.ply"
NUM_TEST_SUBJECTS = 3
NUM_TEST_EXPRESSIONS = 11
_SUBJECT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_SEQUENCE = re.compile(r"[A-Za-z0-9]\S*")


class D3dfacs(MeshSequenceBuilder):
    """D3DFACS action-unit sequences registered to FLAME topology (10 subjects)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per mesh (split 'frames'); interpolation and S2D D3DFACS "
        "protocols, per-vertex statistics, sequence index and source checksums.",
    }
    BUILDER_CONFIGS = flame_builder_configs()
    DEFAULT_CONFIG_NAME = "default"
    HOMEPAGE = "https://flame.is.tue.mpg.de/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Register at https://flame.is.tue.mpg.de/, download the D3DFACS registrations
    ({RELEASE_FOLDER}.zip) and extract them into the manual folder:

        <manual_dir>/{EXPECTED_LAYOUT}

    e.g. <manual_dir>/{RELEASE_FOLDER}/Joe/1+2/1+2_175.ply.
    For the 'landmarks' config also pass FLAME's landmark embedding.
    """

    def _sequences(self, dl_manager) -> list[SequenceSource]:
        expected = f"D3DFACS registrations laid out as {EXPECTED_LAYOUT}"
        root = manual_root(dl_manager, expected, subfolder=RELEASE_FOLDER)
        self._source_root = root
        subjects = subject_folders(root, expected)
        sequences = []
        for subject in subjects:
            if not _SUBJECT.fullmatch(subject):
                raise LayoutError(
                    f"{root / subject}: unexpected folder name; expected a subject folder "
                    "named by a first name (letters, then letters, digits, '_' or '-')"
                )
            folder = root / subject
            names, _ = list_dir(folder)
            if not names:
                raise LayoutError(
                    f"{folder} holds no sequence folders; expected "
                    "<sequence>/<sequence>_<frame>.ply"
                )
            for name in names:
                if not _SEQUENCE.fullmatch(name):
                    raise LayoutError(
                        f"{folder / name}: unexpected folder name; expected an action-unit "
                        "sequence name such as 1+2+4 (no spaces)"
                    )
                numbers, paths = scan_frames(
                    folder / name, frame_pattern(name, "_", None), f"{name}_<frame>.ply"
                )
                sequences.append(SequenceSource(subject, name, numbers, paths))
        check_vertex_counts(sequences)
        return sequences

    def _expressions(self, sequences) -> tuple[str, ...]:
        return tuple(sorted({s.expression for s in sequences}))

    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        out = {"interpolation": interpolation_split(subjects, expressions, frames)}
        if len(set(subjects)) > NUM_TEST_SUBJECTS:
            name = f"identity_leading{NUM_TEST_SUBJECTS}"
            out[name] = leading_names_split(name, subjects, NUM_TEST_SUBJECTS)
        if len(set(expressions)) > NUM_TEST_EXPRESSIONS:
            name = f"expression_leading{NUM_TEST_EXPRESSIONS}"
            out[name] = leading_names_split(name, expressions, NUM_TEST_EXPRESSIONS)
        return out
