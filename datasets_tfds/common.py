"""Shared code of the jaxface mesh-sequence builders.

Every builder here writes **one example per mesh** into a single TFDS split, ``frames``, in sorted
(subject, sequence, frame) order (``disable_shuffling=True``), so a sequence is a contiguous range
of example indices. Next to the array_record files it writes everything a reader needs (see
:mod:`jaxface.data.layout`): ``sequences.json`` (the sequence index), ``splits/*.json`` (every
protocol), ``stats.npz`` (per-vertex mean/std of each protocol's training part), ``template.npz``
(faces, reference vertices, landmark definition) and, for real releases, ``source_manifest.tsv``
(sha256 of every source file). ``metadata.json`` (TFDS ``MetadataDict``) holds the names, counts
and checksums.

Real releases are checked before anything is written: folder and file names against the
release's layout and the vertex count in every PLY header. Any problem raises one
:class:`LayoutError` naming the path and what was expected.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import inspect
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tqdm import tqdm

from jaxface.data import layout as _layout
from jaxface.data.splits import Split, write_splits
from jaxface.data.stats import PartMoments, save_stats

__all__ = [
    "FLAME_NUM_VERTICES",
    "LANDMARKS_CONFIG",
    "NUM_LANDMARKS",
    "LayoutError",
    "MeshSequenceBuilder",
    "SequenceSource",
    "check_vertex_counts",
    "file_sha256",
    "fixture_sequence",
    "frame_pattern",
    "list_dir",
    "manual_root",
    "ply_vertex_count",
    "read_ply_sequence",
    "require_dir",
    "scan_frames",
]

FLAME_NUM_VERTICES = 5023
NUM_LANDMARKS = 68
LANDMARKS_CONFIG = "landmarks"


class LayoutError(ValueError):
    """A source folder that does not follow the release's layout (message names the path)."""


@dataclasses.dataclass(frozen=True)
class SequenceSource:
    """One sequence to write: its names and where its frames come from.

    Attributes:
      subject: subject name.
      expression: expression / sentence / action-unit sequence name.
      frame_numbers: frame numbers from the file names (or ``0..T-1``), ascending.
      paths: one mesh file per frame (empty for procedural data).
      apex: apex frame position when the source knows it, else ``None``.
    """

    subject: str
    expression: str
    frame_numbers: tuple[int, ...]
    paths: tuple[Path, ...] = ()
    apex: int | None = None

    @property
    def length(self) -> int:
        """Number of frames."""
        return len(self.frame_numbers)


# ----------------------------------------------------------------------------- layout checks


def require_dir(path: str | os.PathLike, expected: str) -> Path:
    """Returns ``path`` as a ``Path`` if it is a folder, else raises :class:`LayoutError`.

    Args:
      path: folder to check.
      expected: what the folder should hold (used in the message).
    """
    path = Path(path)
    if not path.is_dir():
        state = "is not a folder" if path.exists() else "does not exist"
        raise LayoutError(f"{path} {state}; expected {expected}")
    return path


def list_dir(path: Path) -> tuple[list[str], list[str]]:
    """Sorted (sub-folder names, file names) of ``path``, hidden entries (``.*``) skipped."""
    dirs, files = [], []
    for name in sorted(os.listdir(path)):
        if name.startswith("."):
            continue
        (dirs if (path / name).is_dir() else files).append(name)
    return dirs, files


def subject_folders(root: Path, expected: str) -> list[str]:
    """Sorted names of the subject folders directly under ``root``.

    Raises:
      LayoutError: ``root`` holds no folders (``expected`` says what it should hold).
    """
    subjects, _ = list_dir(root)
    if not subjects:
        raise LayoutError(f"{root} holds no subject folders; expected {expected}")
    return subjects


def flame_builder_configs() -> list[tfds.core.BuilderConfig]:
    """The configs of the FLAME-topology releases: ``default`` (vertices and ids) and
    ``landmarks`` (also 68 landmarks from FLAME's landmark embedding)."""
    return [
        tfds.core.BuilderConfig(name="default", description="Vertices and ids."),
        tfds.core.BuilderConfig(
            name=LANDMARKS_CONFIG,
            description="Also 68 landmarks from FLAME's landmark embedding (frontal contour).",
        ),
    ]


def scan_frames(
    directory: Path, pattern: re.Pattern, expected: str
) -> tuple[tuple[int, ...], tuple[Path, ...]]:
    """Frame files of one sequence folder, sorted by frame number.

    Args:
      directory: the sequence folder.
      pattern: full-match pattern of a frame file name; group 1 is the frame number.
      expected: the expected file name form for messages (e.g. ``"bareteeth.NNNNNN.ply"``).

    Returns:
      ``(frame numbers, paths)``, ascending by number.

    Raises:
      LayoutError: on a sub-folder, a file not matching ``pattern``, a repeated frame number or
        an empty folder.
    """
    dirs, files = list_dir(directory)
    if dirs:
        raise LayoutError(
            f"{directory / dirs[0]}: unexpected folder inside a sequence; expected only "
            f"frame files {expected}"
        )
    frames: dict[int, Path] = {}
    for name in files:
        m = pattern.fullmatch(name)
        if m is None:
            raise LayoutError(f"{directory / name}: unexpected file name; expected {expected}")
        number = int(m.group(1))
        if number in frames:
            raise LayoutError(
                f"{directory / name}: frame {number} also given by {frames[number].name}"
            )
        frames[number] = directory / name
    if not frames:
        raise LayoutError(f"{directory} holds no frames; expected files {expected}")
    numbers = tuple(sorted(frames))
    return numbers, tuple(frames[n] for n in numbers)


def ply_vertex_count(path: Path) -> int:
    """Vertex count declared in a PLY header (only the header is read).

    Raises:
      LayoutError: if the file cannot be opened or is not a PLY file with a vertex element.
    """
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as err:
        raise LayoutError(f"{path}: cannot read the file ({err.strerror})") from None
    lines = head.split(b"\n")
    if not lines or lines[0].strip() != b"ply":
        raise LayoutError(f"{path}: not a PLY file (it must start with the line 'ply')")
    for line in lines[1:]:
        words = line.split()
        if words[:2] == [b"element", b"vertex"] and len(words) == 3 and words[2].isdigit():
            return int(words[2])
        if words[:1] == [b"end_header"]:
            break
    raise LayoutError(f"{path}: PLY header has no 'element vertex <count>' line")


def check_vertex_counts(
    sequences: Sequence[SequenceSource], expected: int | None = None, *, progress: bool = True
) -> int:
    """Checks that every frame's PLY header declares the same vertex count.

    Args:
      sequences: sequences with ``paths``.
      expected: required count, or ``None`` to take the first file's.
      progress: show a tqdm bar.

    Returns:
      The common vertex count.

    Raises:
      LayoutError: naming the first file whose count differs (and the reference file).
    """
    reference: tuple[int, Path] | None = None if expected is None else (expected, Path("-"))
    paths = [p for s in sequences for p in s.paths]
    for path in tqdm(paths, desc="checking PLY headers", unit=" files", disable=not progress):
        n = ply_vertex_count(path)
        if reference is None:
            reference = (n, path)
        elif n != reference[0]:
            against = (
                f"the first frame {reference[1]} has {reference[0]}"
                if expected is None
                else f"expected {expected}"
            )
            raise LayoutError(f"{path}: has {n} vertices but {against}")
    if reference is None:
        raise LayoutError("no mesh files found")
    return reference[0]


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def read_ply_sequence(sequence: SequenceSource) -> tuple[np.ndarray, np.ndarray]:
    """Reads every frame of a sequence and checks that they share one triangle topology.

    Args:
      sequence: a sequence with one mesh path per frame.

    Returns:
      ``(vertices float32 [T, N, 3], faces int32 [F, 3])``.

    Raises:
      LayoutError: naming the file that is unreadable, not made of triangles, or whose vertex
        count or faces differ from the sequence's first frame.
    """
    from jaxface.mesh.errors import MeshError  # Deferred: only real releases read files.
    from jaxface.mesh.io import read_mesh

    frames, faces = [], None
    for path in sequence.paths:
        try:
            v, f = read_mesh(path)
        except MeshError as err:  # Its message already names the file.
            raise LayoutError(f"unreadable mesh: {err}") from None
        except (ValueError, OSError) as err:
            raise LayoutError(f"{path}: unreadable mesh: {err}") from None
        if f.ndim != 2 or f.shape[1] != 3:
            raise LayoutError(f"{path}: faces must be triangles, got faces of shape {f.shape}")
        if faces is None:
            faces = f
        elif v.shape != frames[0].shape:
            raise LayoutError(
                f"{path}: has {v.shape[0]} vertices but {sequence.paths[0]} has "
                f"{frames[0].shape[0]}"
            )
        elif f.shape != faces.shape or not np.array_equal(f, faces):
            raise LayoutError(f"{path}: faces differ from those of {sequence.paths[0]}")
        frames.append(np.asarray(v, np.float32))
    return np.stack(frames), np.asarray(faces, np.int32)


# ----------------------------------------------------------------------------- base builder


def _definition_arrays(definition: Any) -> dict[str, np.ndarray]:
    """Landmark definition -> ``{"landmarks/<field>": array}`` for ``template.npz``."""
    if dataclasses.is_dataclass(definition):
        fields = {f.name: getattr(definition, f.name) for f in dataclasses.fields(definition)}
    else:
        fields = dict(vars(definition))
    out = {}
    for name, value in fields.items():
        arr = np.asarray(value)
        if arr.dtype.kind in "biuf":
            out[f"landmarks/{name}"] = arr
    return out


class MeshSequenceBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the mesh-sequence builders (one example per mesh, one ``frames`` split).

    Subclasses provide :meth:`_sequences` (what to write, in order), :meth:`_expressions` (the
    label vocabulary), :meth:`_protocols` (the splits) and, for procedural data,
    :meth:`_load_sequence`. Builders with a ``landmarks`` config take the FLAME landmark
    embedding file as the ``landmark_embedding`` constructor argument.

    Args:
      landmark_embedding: FLAME landmark embedding for the ``landmarks`` config: one file with
        68 landmarks, or ``(static, dynamic)`` files (see :meth:`_landmark_definition`).
      **kwargs: passed to ``tfds.core.GeneratorBasedBuilder`` (``data_dir``, ``config``, ...);
        ``file_format`` defaults to ``"array_record"``.
    """

    NUM_VERTICES: int | None = None
    """Fixed vertex count of the ``vertices`` feature, or ``None`` for any count."""

    SHARD_BYTES = 512 << 20
    """Largest array_record shard to write, in bytes (shards split between examples)."""

    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        """The file defining the builder class.

        TFDS derives it through ``importlib.resources`` of the top-level package, which fails when
        that package is imported as a namespace package (e.g. through an editable install);
        ``inspect.getfile`` works in every case.
        """
        try:
            return epath.Path(inspect.getfile(cls))
        except (TypeError, OSError):
            return None

    def __init__(
        self,
        *,
        landmark_embedding: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        **kwargs,
    ):
        if landmark_embedding is None:
            paths: tuple[Path, ...] = ()
        elif isinstance(landmark_embedding, (str, os.PathLike)):
            paths = (Path(landmark_embedding),)
        else:
            paths = tuple(Path(p) for p in landmark_embedding)
        if len(paths) > 2:
            raise ValueError(f"landmark_embedding takes one or two files, got {len(paths)}")
        self._landmark_embedding = paths
        self._prep: dict[str, Any] = {}
        self._source_root: Path | None = None  # Set by _sequences() of real releases.
        kwargs.setdefault("file_format", "array_record")  # tfrecord would need TensorFlow.
        super().__init__(**kwargs)

    # -- hooks ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def _sequences(self, dl_manager: tfds.download.DownloadManager) -> list[SequenceSource]:
        """The sequences to write, sorted by (subject, expression); layout errors raise here."""

    @abc.abstractmethod
    def _expressions(self, sequences: Sequence[SequenceSource]) -> tuple[str, ...]:
        """Sorted label vocabulary (``label`` = index of the expression in it)."""

    @abc.abstractmethod
    def _protocols(
        self, subjects: np.ndarray, expressions: np.ndarray, frames: np.ndarray
    ) -> dict[str, Split]:
        """Protocols from per-example subject / expression names and frame positions."""

    def _load_sequence(self, sequence: SequenceSource) -> tuple[np.ndarray, np.ndarray]:
        """``(vertices float32 [T, N, 3], faces int32 [F, 3])`` of one sequence."""
        return read_ply_sequence(sequence)

    def _num_vertices(self) -> int | None:
        """Fixed vertex count of the ``vertices`` feature (default :attr:`NUM_VERTICES`)."""
        return self.NUM_VERTICES

    def _has_landmarks(self) -> bool:
        """Whether examples carry a ``landmarks`` feature."""
        return self.builder_config is not None and self.builder_config.name == LANDMARKS_CONFIG

    def _landmark_definition(self) -> Any:
        """The 68-landmark definition read from the FLAME embedding file(s).

        One file must hold all 68 landmarks; two files are FLAME's static (51) and RingNet's
        dynamic contour (17) embeddings, combined contour first.
        """
        from jaxface.data.landmarks import from_flame_embedding, from_flame_embeddings

        paths = self._landmark_embedding
        if not paths:
            raise LayoutError(
                f"config {LANDMARKS_CONFIG!r} of {self.name} needs the FLAME landmark "
                "embedding: pass landmark_embedding=<file> or (<static>, <dynamic>) "
                "(command line: --landmark-embedding FILE [FILE])"
            )
        for path in paths:
            if not path.is_file():
                raise LayoutError(f"{path}: FLAME landmark embedding file not found")
        try:
            if len(paths) == 1:
                definition = from_flame_embedding(paths[0])
            else:
                definition = from_flame_embeddings(paths[0], paths[1])
        except ValueError as err:  # Its message names the file.
            raise LayoutError(f"unusable FLAME landmark embedding: {err}") from None
        if definition.num_landmarks != NUM_LANDMARKS:
            raise LayoutError(
                f"{', '.join(map(str, paths))}: gives {definition.num_landmarks} landmarks, "
                f"expected {NUM_LANDMARKS} (pass the static and the dynamic embedding together)"
            )
        return definition

    def _check_definition(self, definition: Any, num_vertices: int, faces: np.ndarray) -> None:
        """Raises :class:`LayoutError` if the landmark definition does not fit the meshes."""
        if definition.is_barycentric:
            top, limit, what = int(definition.face_indices.max()), faces.shape[0], "faces"
        else:
            top, limit, what = int(definition.vertex_indices.max()), num_vertices, "vertices"
        if top >= limit:
            source = ", ".join(map(str, self._landmark_embedding)) or "the landmark definition"
            raise LayoutError(
                f"{source}: refers to {what[:-1]} {top} but the meshes have {limit} {what} "
                "(is it an embedding for this topology?)"
            )

    def _landmarks(self, definition: Any, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
        """Landmarks float32 ``[T, 68, 3]`` of vertices ``[T, N, 3]``."""
        from jaxface.data.landmarks import extract_landmarks

        return np.asarray(extract_landmarks(vertices, definition, faces=faces), np.float32)

    def _template(self, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference ``(vertices [N, 3], faces [F, 3])`` stored in ``template.npz``; by default
        the first frame of the first sequence."""
        return vertices[0], faces

    def _extra_metadata(self) -> dict[str, Any]:
        """More JSON-serialisable entries for ``metadata.json``."""
        return {}

    # -- TFDS ----------------------------------------------------------------------------------

    def _info(self) -> tfds.core.DatasetInfo:
        """Per-mesh features; ``vertices`` is ``[N, 3]`` with ``N`` from :meth:`_num_vertices`."""
        n = self._num_vertices()
        features = {
            "vertices": tfds.features.Tensor(shape=(n, 3), dtype=np.float32),
            "subject": tfds.features.Text(),
            "expression": tfds.features.Text(),
            "subject_id": tfds.features.Scalar(dtype=np.int64),
            "label": tfds.features.Scalar(dtype=np.int64),
            "sequence": tfds.features.Scalar(dtype=np.int64),
            "frame": tfds.features.Scalar(dtype=np.int32),
            "source_frame": tfds.features.Scalar(dtype=np.int32),
            "sequence_length": tfds.features.Scalar(dtype=np.int32),
        }
        if self._has_landmarks():
            features["landmarks"] = tfds.features.Tensor(shape=(NUM_LANDMARKS, 3), dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=(self.__doc__ or "").strip().split("\n\n")[0],
            features=tfds.features.FeaturesDict(features),
            disable_shuffling=True,
            metadata=tfds.core.MetadataDict(),
            homepage=getattr(self, "HOMEPAGE", None),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        """Checks the source, computes every protocol, returns the ``frames`` example stream."""
        sequences = self._sequences(dl_manager)
        if not sequences:
            raise LayoutError(f"{self.name}: no sequences found")
        definition = self._landmark_definition() if self._has_landmarks() else None
        expressions = self._expressions(sequences)
        subjects = tuple(sorted({s.subject for s in sequences}))
        lengths = np.asarray([s.length for s in sequences])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        ex_subject = np.repeat(np.asarray([s.subject for s in sequences], dtype=object), lengths)
        ex_expr = np.repeat(np.asarray([s.expression for s in sequences], dtype=object), lengths)
        ex_frame = np.concatenate([np.arange(n) for n in lengths])
        protocols = self._protocols(ex_subject, ex_expr, ex_frame)
        self._prep = dict(
            sequences=sequences,
            starts=starts,
            expressions=expressions,
            subjects=subjects,
            protocols=protocols,
            definition=definition,
            num_examples=int(lengths.sum()),
        )
        return {_layout.FRAMES_SPLIT: self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yields ``(index, example)`` per mesh, sequence by sequence, in dataset order.

        Along the way it checks that all sequences share one topology, hashes the vertex bytes
        and the source files, and accumulates the per-protocol statistics (kept in ``_prep``
        for :meth:`_download_and_prepare` once the stream is exhausted).
        """
        prep = self._prep
        sequences: list[SequenceSource] = prep["sequences"]
        label_of = {e: i for i, e in enumerate(prep["expressions"])}
        subject_of = {s: i for i, s in enumerate(prep["subjects"])}
        content = hashlib.sha256()
        manifest: list[str] = []
        moments: PartMoments | None = None
        reference_faces: np.ndarray | None = None
        key = 0
        num_vertices = self._num_vertices()
        bar = tqdm(sequences, desc=f"{self.name}: sequences", unit=" seq")
        for index, seq in enumerate(bar):
            bar.set_postfix_str(f"{seq.subject}/{seq.expression}", refresh=False)
            for path in seq.paths:
                manifest.append(self._manifest_line(path))
            vertices, faces = self._load_sequence(seq)
            if vertices.shape[0] != seq.length:
                raise LayoutError(
                    f"{seq.subject}/{seq.expression}: loaded {vertices.shape[0]} frames, "
                    f"expected {seq.length}"
                )
            if num_vertices is not None and vertices.shape[1] != num_vertices:
                raise LayoutError(
                    f"{seq.subject}/{seq.expression}: {vertices.shape[1]} vertices, "
                    f"expected {num_vertices}"
                )
            if reference_faces is None:
                reference_faces = faces
                if prep["definition"] is not None:
                    self._check_definition(prep["definition"], vertices.shape[1], faces)
                prep["template"] = self._template(vertices, faces)
                masks = self._stat_masks(prep["protocols"], prep["num_examples"])
                moments = PartMoments(masks, shift=vertices[0])
            elif faces.shape != reference_faces.shape or not np.array_equal(faces, reference_faces):
                where = seq.paths[0] if seq.paths else f"{seq.subject}/{seq.expression}"
                raise LayoutError(
                    f"{where}: mesh topology (faces or vertex count) differs from the first "
                    f"sequence {sequences[0].subject}/{sequences[0].expression}"
                )
            vertices = np.ascontiguousarray(vertices, np.float32)
            content.update(vertices.tobytes())
            moments.add_sequence(int(prep["starts"][index]), vertices)
            landmarks = (
                None
                if prep["definition"] is None
                else self._landmarks(prep["definition"], vertices, faces)
            )
            for t in range(seq.length):
                example = {
                    "vertices": vertices[t],
                    "subject": seq.subject,
                    "expression": seq.expression,
                    "subject_id": subject_of[seq.subject],
                    "label": label_of[seq.expression],
                    "sequence": index,
                    "frame": t,
                    "source_frame": seq.frame_numbers[t],
                    "sequence_length": seq.length,
                }
                if landmarks is not None:
                    example["landmarks"] = landmarks[t]
                yield key, example
                key += 1
        prep["content_sha256"] = content.hexdigest()
        prep["manifest"] = manifest
        prep["stats"] = moments.finalize()

    def _manifest_line(self, path: Path) -> str:
        root = self._source_root
        rel = os.path.relpath(path, root) if root is not None else os.fspath(path)
        try:
            return f"{rel}\t{path.stat().st_size}\t{file_sha256(path)}"
        except OSError as err:
            raise LayoutError(f"{path}: cannot read the file ({err.strerror})") from None

    @staticmethod
    def _stat_masks(protocols: Mapping[str, Split], num_examples: int) -> dict[str, np.ndarray]:
        masks = {"all": np.ones(num_examples, bool)}
        for name, split in protocols.items():
            if "train" in split.parts:
                m = np.zeros(num_examples, bool)
                m[split.parts["train"]] = True
                masks[name] = m
        return masks

    def _write_split(
        self, split: str, examples: Iterator[tuple[int, dict[str, Any]]]
    ) -> tfds.core.SplitInfo:
        """Streams ``examples`` into array_record shards of ``split``; returns its SplitInfo.

        TFDS's own writer buffers a split in memory and, past 1 GB, spills it to temporary
        files through TensorFlow's ``tf.io.gfile``, so CoMA-sized splits cannot be written with
        it when TensorFlow is absent. Examples are therefore encoded with the builder's features
        and appended in order to shards of about :attr:`SHARD_BYTES`; the shard count comes from
        the (known) number of examples and the size of the first encoded example.
        """
        from array_record.python.array_record_module import ArrayRecordWriter
        from tensorflow_datasets.core import example_serializer

        features = self.info.features
        serializer = example_serializer.ExampleSerializer(features.get_serialized_info())
        template = self._get_filename_template(split)
        total = self._prep["num_examples"]
        shard_lengths: list[int] = []
        num_bytes = per_shard = num_shards = 0
        writer = None
        try:
            for _, example in examples:
                data = serializer.serialize_example(features.encode_example(example))
                if per_shard == 0:
                    per_shard = max(1, self.SHARD_BYTES // max(len(data), 1))
                    num_shards = -(-total // per_shard)
                if writer is None or shard_lengths[-1] == per_shard:
                    if writer is not None:
                        writer.close()
                    path = template.sharded_filepath(
                        shard_index=len(shard_lengths), num_shards=num_shards
                    )
                    writer = ArrayRecordWriter(os.fspath(path), "group_size:1")
                    shard_lengths.append(0)
                writer.write(data)
                shard_lengths[-1] += 1
                num_bytes += len(data)
        finally:
            if writer is not None:
                writer.close()
        if sum(shard_lengths) != total or len(shard_lengths) != num_shards:
            raise RuntimeError(
                f"{self.name}: wrote {sum(shard_lengths)} examples in {len(shard_lengths)} "
                f"shards, expected {total} in {num_shards}"
            )
        return tfds.core.SplitInfo(
            name=split,
            shard_lengths=shard_lengths,
            num_bytes=num_bytes,
            filename_template=template,
        )

    def _download_and_prepare(self, dl_manager, download_config=None):
        """Writes the ``frames`` split, then the splits, statistics, template, sequence index,
        source manifest and metadata into the (temporary) dataset folder."""
        if self.info.file_format != tfds.core.FileFormat.ARRAY_RECORD:
            raise ValueError(
                f"{self.name} writes array_record files only, not {self.info.file_format}"
            )
        infos = [
            self._write_split(split, examples)
            for split, examples in self._split_generators(dl_manager).items()
        ]
        self.info.set_splits(tfds.core.SplitDict(infos))
        prep = self._prep
        out = Path(self.data_path)  # The temporary folder, renamed by TFDS when done.
        write_splits(out / _layout.SPLITS_DIR, prep["protocols"].values())
        save_stats(out / _layout.STATS_FILE, prep["stats"])
        template_vertices, template_faces = prep["template"]
        arrays = {
            "vertices": np.asarray(template_vertices, np.float32),
            "faces": np.asarray(template_faces, np.int32),
        }
        if prep["definition"] is not None:
            arrays.update(_definition_arrays(prep["definition"]))
        with open(out / _layout.TEMPLATE_FILE, "wb") as f:
            np.savez(f, **arrays)
        index = []
        for seq, start in zip(prep["sequences"], prep["starts"], strict=True):
            index.append(
                {
                    "subject": seq.subject,
                    "expression": seq.expression,
                    "label": prep["expressions"].index(seq.expression),
                    "subject_id": prep["subjects"].index(seq.subject),
                    "start": int(start),
                    "length": seq.length,
                    "source_frames": list(seq.frame_numbers),
                    "apex": seq.apex,
                }
            )
        with open(out / _layout.SEQUENCES_FILE, "w") as f:
            json.dump(
                {
                    "split": _layout.FRAMES_SPLIT,
                    "subjects": list(prep["subjects"]),
                    "expressions": list(prep["expressions"]),
                    "sequences": index,
                },
                f,
                indent=1,
            )
        meta: dict[str, Any] = {
            "split": _layout.FRAMES_SPLIT,
            "units": "metres",
            "num_vertices": int(np.asarray(template_vertices).shape[0]),
            "num_faces": int(np.asarray(template_faces).shape[0]),
            "num_examples": prep["num_examples"],
            "num_sequences": len(prep["sequences"]),
            "subjects": list(prep["subjects"]),
            "expressions": list(prep["expressions"]),
            "protocols": list(prep["protocols"]),
            "content_sha256": prep["content_sha256"],
            "has_landmarks": prep["definition"] is not None,
        }
        if prep["manifest"]:
            text = "\n".join(prep["manifest"]) + "\n"
            (out / _layout.MANIFEST_FILE).write_text(text)
            meta["source_files"] = len(prep["manifest"])
            meta["source_manifest_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        if prep["definition"] is not None and self._landmark_embedding:
            meta["landmark_embedding"] = [p.name for p in self._landmark_embedding]
            meta["landmark_embedding_sha256"] = [file_sha256(p) for p in self._landmark_embedding]
        meta.update(self._extra_metadata())
        self.info.metadata.update(meta)


def manual_root(
    dl_manager: tfds.download.DownloadManager, expected: str, subfolder: str | None = None
) -> Path:
    """The manual-download folder (or its ``subfolder`` when present), as a checked ``Path``.

    Args:
      dl_manager: the TFDS download manager.
      expected: one line describing the expected layout (for messages).
      subfolder: an optional release folder name inside the manual folder (e.g.
        ``"unposedcleaneddata"``); used when it exists.

    Raises:
      LayoutError: naming the folder when it is missing or empty.
    """
    try:
        root = Path(dl_manager.manual_dir)
    except AssertionError:
        where = getattr(dl_manager, "_manual_dir", None)
        raise LayoutError(
            f"manual folder {where} is missing or empty; expected {expected}"
        ) from None
    if subfolder is not None and (root / subfolder).is_dir():
        root = root / subfolder
    return require_dir(root, expected)


def frame_pattern(prefix: str, separator: str, digits: int | None) -> re.Pattern:
    """Pattern of ``<prefix><separator><number>.ply`` (exactly ``digits`` digits when given)."""
    number = r"(\d+)" if digits is None else rf"(\d{{{digits}}})"
    return re.compile(re.escape(prefix) + re.escape(separator) + number + r"\.ply")


# ----------------------------------------------------------------------------- test fixtures


def fixture_sequence(
    key: str, num_frames: int, rows: int = 3, cols: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """A tiny deterministic mesh sequence for builder fixtures (not face-like).

    A ``rows x cols`` grid patch (metres) whose shape depends on ``key`` and whose vertices move
    smoothly neutral -> apex -> neutral over ``num_frames`` frames.

    Args:
      key: any string (e.g. ``"subject/expression"``); the same key gives the same sequence.
      num_frames: ``T``.
      rows: grid rows.
      cols: grid columns.

    Returns:
      ``(vertices float32 [T, rows*cols, 3], faces int32 [F, 3])``.
    """
    from jaxface.mesh.primitives import grid_patch

    base, faces = grid_patch(rows, cols)
    seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
    rng = np.random.default_rng(seed)
    shape = base * 0.1 + rng.normal(0.0, 0.002, base.shape)
    motion = rng.normal(0.0, 0.01, base.shape)
    phase = np.sin(np.pi * np.arange(num_frames) / max(num_frames - 1, 1))
    vertices = shape[None] + phase[:, None, None] * motion[None]
    return vertices.astype(np.float32), faces.astype(np.int32)
