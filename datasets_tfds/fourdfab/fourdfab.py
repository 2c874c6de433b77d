"""4DFAB: dynamic 3D faces of 180 subjects in four sessions (manual download, licence-gated).

4DFAB (Cheng et al., CVPR 2018) holds 60 fps 4D recordings of 180 subjects captured in four
sessions over five years, with posed six basic expressions and spontaneous behaviour. Imperial
College distributes it under a research agreement, so the release is downloaded by hand. No
public document describes the release's folder layout; this builder expects (see README.md)::

    <manual_dir>/[4DFAB/]<subject>/<session>/<expression>/<frame>.obj   (or .ply)

with the six posed expressions in folders named ``happy``, ``sad``, ``surprise``, ``angry``,
``disgust`` and ``fear`` (:data:`jaxface.data.arkit_labels.BASIC_EXPRESSIONS`), frame files
named by their frame number (``000123.obj``; ordered by number, not by name), every frame of
the release registered to one topology, coordinates in millimetres.

Options (:class:`FourdfabConfig`): every ``frame_step``-th frame of each recording (default 5, as
Potamias et al., ECCV 2020, train on it), the expression folders to read (default the six basic
expressions), the unit scale, a required vertex count, and whether a session may lack some
expression folders.

Examples: one per kept mesh in split ``frames``, sorted by (subject, expression, session, frame);
``subject`` is the subject folder (the identity, over all its sessions), ``expression`` the
expression folder and ``label`` its index among the sorted expression names. The session of
every sequence is in ``metadata.json`` (``sessions``). Protocols: ``interpolation``,
``extrapolation_<expression>`` and, with at least 4 names, the identity-independent
``identity_fold1..4`` (whole subjects held out) and ``expression_fold1..4``.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from datasets_tfds.common import (
    LayoutError,
    MeshSequenceBuilder,
    SequenceSource,
    list_dir,
    manual_root,
    ply_vertex_count,
    read_ply_sequence,
    scan_frames,
    subject_folders,
)
from jaxface.data.arkit_labels import BASIC_EXPRESSIONS
from jaxface.data.splits import Split, coma_protocols

__all__ = [
    "EXPECTED_LAYOUT",
    "FRAME_PATTERN",
    "RELEASE_FOLDER",
    "SOURCE_FPS",
    "Fourdfab",
    "FourdfabConfig",
    "SessionSource",
    "mesh_vertex_count",
]

RELEASE_FOLDER = "4DFAB"
EXPECTED_LAYOUT = f"[{RELEASE_FOLDER}/]<subject>/<session>/<expression>/<frame>.obj (or .ply)"
FRAME_PATTERN = re.compile(r"(\d+)\.(?:obj|ply)")
SOURCE_FPS = 60.0
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
_FACE_SPAN = (0.05, 1.0)  # plausible bounding-box diagonal of a face scan, metres


@dataclasses.dataclass(eq=False)
class FourdfabConfig(tfds.core.BuilderConfig):
    """What to read from the release.

    Attributes:
      frame_step: keep every ``frame_step``-th frame of each recording (positions 0, step, ...
        of its frames sorted by number).
      expressions: the expression folders to read (default the six basic expressions).
      unit_scale: metres per release unit (1e-3: the release is in millimetres).
      num_vertices: the vertex count every frame must have, or ``None`` for the first frame's.
      allow_missing: skip (and list in ``metadata.json``) the expression folders a session lacks
        instead of stopping.
    """

    frame_step: int = 5
    expressions: tuple[str, ...] = BASIC_EXPRESSIONS
    unit_scale: float = 1e-3
    num_vertices: int | None = None
    allow_missing: bool = False

    def __post_init__(self) -> None:
        self.expressions = tuple(self.expressions)
        if isinstance(self.frame_step, bool) or not isinstance(self.frame_step, int) or (
            self.frame_step < 1
        ):
            raise ValueError(f"frame_step must be an integer >= 1, got {self.frame_step!r}")
        if not self.expressions or len(set(self.expressions)) != len(self.expressions):
            raise ValueError(f"expressions must be non-empty and unique, got {self.expressions}")
        bad = [e for e in self.expressions if not _NAME.fullmatch(e)]
        if bad:
            raise ValueError(f"expressions must be folder names, got {bad}")
        if not self.unit_scale > 0:
            raise ValueError(f"unit_scale must be > 0, got {self.unit_scale}")
        if self.num_vertices is not None and self.num_vertices < 3:
            raise ValueError(f"num_vertices must be >= 3 or None, got {self.num_vertices}")


@dataclasses.dataclass(frozen=True)
class SessionSource(SequenceSource):
    """One recording: a subject's expression in one session.

    Attributes:
      session: the session folder name.
    """

    session: str = ""


def mesh_vertex_count(path: Path) -> int:
    """Vertex count of a PLY (from its header) or OBJ (its ``v`` lines) file.

    Raises:
      LayoutError: naming the file when it cannot be read or holds no vertices.
    """
    if path.suffix == ".ply":
        return ply_vertex_count(path)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LayoutError(f"{path}: cannot read the file ({err.strerror})") from None
    count = data.count(b"\nv ") + data.count(b"\nv\t") + int(data.startswith((b"v ", b"v\t")))
    if count == 0:
        raise LayoutError(f"{path}: OBJ file has no vertex ('v x y z') lines")
    return count


def _config(
    name: str, description: str, frame_step: int, expressions: tuple[str, ...] = BASIC_EXPRESSIONS
) -> FourdfabConfig:
    return FourdfabConfig(
        name=name, description=description, frame_step=frame_step, expressions=expressions
    )


class Fourdfab(MeshSequenceBuilder):
    """4DFAB posed expressions (180 subjects, four sessions; registered meshes, metres)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {
        "1.0.0": "One example per kept mesh (split 'frames'), every frame_step-th frame of the "
        "six posed basic expressions by default; CoMA/S2D protocols including identity folds, "
        "per-vertex statistics, sequence index with sessions and source checksums.",
    }
    BUILDER_CONFIGS = [
        _config("default", "The six basic expressions, every 5th frame (12 fps), as in "
                "Potamias et al. (ECCV 2020).", 5),
        _config("every_frame", "The six basic expressions, every frame (60 fps).", 1),
    ]
    DEFAULT_CONFIG_NAME = "default"
    HOMEPAGE = "https://ibug.doc.ic.ac.uk/resources/4dfab/"
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Request 4DFAB from Imperial College (https://ibug.doc.ic.ac.uk/resources/4dfab/; research
    agreement), then put the registered meshes in the manual folder as

        <manual_dir>/{EXPECTED_LAYOUT}

    e.g. <manual_dir>/{RELEASE_FOLDER}/F001/session1/happy/000000.obj: one folder per subject,
    per session inside it, per expression inside that (happy, sad, surprise, angry, disgust,
    fear), one mesh per frame named by its frame number, all frames on one topology, in
    millimetres. See datasets_tfds/fourdfab/README.md for the options.
    """

    @property
    def _cfg(self) -> FourdfabConfig:
        return self.builder_config

    def _sequences(self, dl_manager) -> list[SequenceSource]:
        cfg = self._cfg
        expected = f"4DFAB subject folders laid out as {EXPECTED_LAYOUT}"
        root = manual_root(dl_manager, expected, subfolder=RELEASE_FOLDER)
        self._source_root = root
        self._missing: list[str] = []
        sequences: list[SessionSource] = []
        for subject in subject_folders(root, expected):
            folder = root / subject
            if not _NAME.fullmatch(subject):
                raise LayoutError(
                    f"{folder}: unexpected folder name; expected a subject folder (letters, "
                    "digits, '_', '.', '+' or '-')"
                )
            sessions, _ = list_dir(folder)
            if not sessions:
                raise LayoutError(
                    f"{folder} holds no session folders; expected <session>/<expression>/"
                    "<frame>.obj inside every subject folder"
                )
            for session in sessions:
                sequences.extend(self._session(folder / session, subject, session))
        if not sequences:
            raise LayoutError(
                f"{root}: no recordings of the expressions {', '.join(cfg.expressions)}; "
                f"expected {EXPECTED_LAYOUT}"
            )
        sequences.sort(key=lambda s: (s.subject, s.expression, s.session))
        self._check_counts(sequences)
        return sequences

    def _session(self, folder: Path, subject: str, session: str) -> list[SessionSource]:
        cfg = self._cfg
        if not _NAME.fullmatch(session):
            raise LayoutError(
                f"{folder}: unexpected folder name; expected a session folder (e.g. session1)"
            )
        found, _ = list_dir(folder)
        out = []
        for expr in cfg.expressions:
            if expr not in found:
                if cfg.allow_missing:
                    self._missing.append(f"{subject}/{session}/{expr}")
                    continue
                raise LayoutError(
                    f"{folder / expr}: missing expression folder; every session folder needs "
                    f"the folders {', '.join(cfg.expressions)} (config {cfg.name!r}; build "
                    "with allow_missing=True to skip missing ones)"
                )
            numbers, paths = scan_frames(
                folder / expr, FRAME_PATTERN, "<frame number>.obj or <frame number>.ply"
            )
            keep = slice(None, None, cfg.frame_step)
            out.append(
                SessionSource(subject, expr, numbers[keep], paths[keep], session=session)
            )
        return out

    def _check_counts(self, sequences: list[SessionSource]) -> None:
        """Every kept frame has the same vertex count (the config's, or the first frame's)."""
        want = self._cfg.num_vertices
        reference = None if want is None else f"expected {want} (config num_vertices)"
        for seq in sequences:
            for path in seq.paths:
                n = mesh_vertex_count(path)
                if want is None:
                    want, reference = n, f"the first frame {path} has {n}"
                elif n != want:
                    raise LayoutError(f"{path}: has {n} vertices but {reference}")

    def _load_sequence(self, sequence: SequenceSource) -> tuple[np.ndarray, np.ndarray]:
        vertices, faces = read_ply_sequence(sequence)
        vertices = vertices * np.float32(self._cfg.unit_scale)
        span = float(np.linalg.norm(vertices[0].max(0) - vertices[0].min(0)))
        low, high = _FACE_SPAN
        if not low <= span <= high:
            raise LayoutError(
                f"{sequence.paths[0]}: the mesh spans {span:.3g} m after scaling by unit_scale="
                f"{self._cfg.unit_scale:g}; expected a face of {low:g}-{high:g} m (set "
                "unit_scale to the release's units: 1e-3 for millimetres)"
            )
        return vertices, faces

    def _expressions(self, sequences) -> tuple[str, ...]:
        return tuple(sorted({s.expression for s in sequences}))

    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        # The sessions of one subject and expression are consecutive: rank their frames in
        # dataset order so that interpolation's sorted order is the dataset order.
        position = np.zeros(len(frames), np.int64)
        for i in range(1, len(frames)):
            same = subjects[i] == subjects[i - 1] and expressions[i] == expressions[i - 1]
            position[i] = position[i - 1] + 1 if same else 0
        return coma_protocols(subjects, expressions, position)

    def _extra_metadata(self) -> dict[str, Any]:
        cfg = self._cfg
        return {
            "frame_step": cfg.frame_step,
            "source_fps": SOURCE_FPS,
            "fps": SOURCE_FPS / cfg.frame_step,
            "requested_expressions": list(cfg.expressions),
            "unit_scale": cfg.unit_scale,
            "sessions": [s.session for s in self._prep["sequences"]],
            "missing_expression_folders": list(getattr(self, "_missing", [])),
        }
