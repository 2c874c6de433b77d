"""VOCASET: 12 subjects reading 40 sentences each, registered FLAME meshes at 60 fps (metres).

Used by jaxface for speech-to-expression transfer. The data are licence-gated; download them
by hand. The release's mesh sequences are laid out as

    unposedcleaneddata/<FaceTalk_XXXXXX_XXXXX_TA>/sentenceNN/sentenceNN.NNNNNN.ply

(the manual folder holds ``unposedcleaneddata/``, next to ``audio/``, ``templates/``... which this
builder does not read). Some sentences are missing for some subjects and a few frame numbers
are skipped; both are accepted, and ``source_frame`` keeps the number from the file name.

Examples: one per mesh in split ``frames``, sorted by (subject, sentence, frame number); the
``expression`` feature is the sentence name and ``label`` its index among the sorted sentence
names present. Protocols: ``voca`` (VOCA's official split: 8 training subjects with sentences
01-40, 2 validation and 2 test subjects with sentences 21-40 each) and ``interpolation``.
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
    require_dir,
    scan_frames,
    subject_folders,
)
from jaxface.data.splits import Split, interpolation_split, named_split

__all__ = [
    "EXPECTED_LAYOUT",
    "RELEASE_FOLDER",
    "SUBJECTS",
    "TEST_SUBJECTS",
    "TRAIN_SUBJECTS",
    "VALIDATION_SUBJECTS",
    "Vocaset",
]

RELEASE_FOLDER = "unposedcleaneddata"
EXPECTED_LAYOUT = f"{RELEASE_FOLDER}/<FaceTalk_XXXXXX_XXXXX_TA>/sentenceNN/sentenceNN.NNNNNN.ply"
TRAIN_SUBJECTS = (
    "FaceTalk_170728_03272_TA",
    "FaceTalk_170904_00128_TA",
    "FaceTalk_170725_00137_TA",
    "FaceTalk_170915_00223_TA",
    "FaceTalk_170811_03274_TA",
    "FaceTalk_170913_03279_TA",
    "FaceTalk_170904_03276_TA",
    "FaceTalk_170912_03278_TA",
)
VALIDATION_SUBJECTS = ("FaceTalk_170811_03275_TA", "FaceTalk_170908_03277_TA")
TEST_SUBJECTS = ("FaceTalk_170809_00138_TA", "FaceTalk_170731_00024_TA")
SUBJECTS = tuple(sorted(TRAIN_SUBJECTS + VALIDATION_SUBJECTS + TEST_SUBJECTS))
_ALL_SENTENCES = tuple(f"sentence{i:02d}" for i in range(1, 41))
_HELD_OUT_SENTENCES = _ALL_SENTENCES[20:]
_SENTENCE = re.compile(r"sentence\d{2}")


class Vocaset(MeshSequenceBuilder):
    """VOCASET speech sequences registered to FLAME topology (12 subjects x 40 sentences)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per mesh (split 'frames'); VOCA's official split and the "
        "interpolation split, per-vertex statistics, sequence index and source checksums.",
    }
    BUILDER_CONFIGS = flame_builder_configs()
    DEFAULT_CONFIG_NAME = "default"
    HOMEPAGE = "https://voca.is.tue.mpg.de/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Register at https://voca.is.tue.mpg.de/, download the unposed cleaned mesh sequences and
    extract them into the manual folder:

        <manual_dir>/{EXPECTED_LAYOUT}

    e.g. <manual_dir>/{RELEASE_FOLDER}/FaceTalk_170725_00137_TA/sentence01/sentence01.000001.ply.
    For the 'landmarks' config also pass FLAME's landmark embedding.
    """

    def _sequences(self, dl_manager) -> list[SequenceSource]:
        expected = f"the VOCASET mesh sequences laid out as <manual_dir>/{EXPECTED_LAYOUT}"
        root = require_dir(manual_root(dl_manager, expected) / RELEASE_FOLDER, expected)
        self._source_root = root
        subjects = subject_folders(root, expected)
        sequences = []
        for subject in subjects:
            if subject not in SUBJECTS:
                raise LayoutError(
                    f"{root / subject}: unexpected folder name; expected one of the 12 VOCASET "
                    f"subjects ({', '.join(SUBJECTS)})"
                )
            folder = root / subject
            names, _ = list_dir(folder)
            if not names:
                raise LayoutError(
                    f"{folder} holds no sentence folders; expected sentenceNN/sentenceNN.NNNNNN.ply"
                )
            for name in names:
                if not _SENTENCE.fullmatch(name):
                    raise LayoutError(
                        f"{folder / name}: unexpected folder name; expected sentence folders "
                        "sentence01 .. sentence40"
                    )
                numbers, paths = scan_frames(
                    folder / name, frame_pattern(name, ".", 6), f"{name}.NNNNNN.ply"
                )
                sequences.append(SequenceSource(subject, name, numbers, paths))
        check_vertex_counts(sequences)
        return sequences

    def _expressions(self, sequences) -> tuple[str, ...]:
        return tuple(sorted({s.expression for s in sequences}))

    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        voca = named_split(
            "voca",
            subjects,
            expressions,
            {
                "train": (TRAIN_SUBJECTS, _ALL_SENTENCES),
                "validation": (VALIDATION_SUBJECTS, _HELD_OUT_SENTENCES),
                "test": (TEST_SUBJECTS, _HELD_OUT_SENTENCES),
            },
            description="VOCA: 8 train subjects (sentences 01-40); 2 validation and 2 test "
            "subjects (sentences 21-40)",
        )
        return {"voca": voca, "interpolation": interpolation_split(subjects, expressions, frames)}
