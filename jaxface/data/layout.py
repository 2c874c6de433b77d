"""The file layout of a prepared mesh-sequence dataset (numpy only: no JAX, no TensorFlow).

Prepared datasets (``datasets_tfds/*``) hold one TFDS split, ``frames``: one example per mesh, in
sorted (subject, sequence, frame) order. Next to the array_record files, the dataset folder holds:

* ``sequences.json``: every sequence's subject, expression, label and ``[start, start + length)``
  range of example indices, so 4D code can read whole sequences from the per-frame split;
* ``splits/<protocol>.json``: train/test example indices of each protocol (:mod:`.splits`);
* ``stats.npz``: per-vertex mean/std of each protocol's training part (:mod:`.stats`);
* ``template.npz``: the shared ``faces`` (and reference ``vertices``, landmark definition);
* ``source_manifest.tsv`` (real datasets): sha256 of every source file.

The builders write these files with the names defined here and readers find them with the
functions below; the examples themselves are read through :mod:`jaxface.data.source`.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

import numpy as np

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.data.splits import Split, read_split
from jaxface.data.stats import Stats
from jaxface.data.stats import load_stats as _load_stats_file

__all__ = [
    "FRAMES_SPLIT",
    "MANIFEST_FILE",
    "SEQUENCES_FILE",
    "SPLITS_DIR",
    "STATS_FILE",
    "TEMPLATE_FILE",
    "SequenceInfo",
    "data_path",
    "dataset_dir",
    "load_label_names",
    "load_landmark_definition",
    "load_sequences",
    "load_split",
    "load_stats",
    "load_template",
]

FRAMES_SPLIT = "frames"
SEQUENCES_FILE = "sequences.json"
SPLITS_DIR = "splits"
STATS_FILE = "stats.npz"
TEMPLATE_FILE = "template.npz"
MANIFEST_FILE = "source_manifest.tsv"


@dataclasses.dataclass(frozen=True)
class SequenceInfo:
    """One sequence of a prepared dataset.

    Attributes:
      index: sequence number (position in ``sequences.json``).
      subject: subject name.
      expression: expression / sentence / action-unit sequence name.
      label: index of ``expression`` in the dataset's sorted expression list.
      subject_id: index of ``subject`` in the dataset's sorted subject list.
      start: example index of the first frame in the ``frames`` split.
      length: number of frames.
      source_frames: frame numbers from the source file names, ``[length]``.
      apex: apex frame (position in the sequence) when the source defines one, else ``None``.
    """

    index: int
    subject: str
    expression: str
    label: int
    subject_id: int
    start: int
    length: int
    source_frames: tuple[int, ...]
    apex: int | None = None

    @property
    def stop(self) -> int:
        """One past the example index of the last frame."""
        return self.start + self.length

    @property
    def indices(self) -> np.ndarray:
        """Example indices of the frames, int64 ``[length]``."""
        return np.arange(self.start, self.stop, dtype=np.int64)


def _versions(folder: str) -> list[str]:
    out = []
    for v in os.listdir(folder):
        parts = v.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts):
            out.append(v)
    return sorted(out, key=lambda v: tuple(int(p) for p in v.split(".")))


def dataset_dir(
    name: str,
    *,
    data_dir: str | os.PathLike,
    config: str | None = None,
    version: str | None = None,
) -> str:
    """Folder of a prepared dataset: ``<data_dir>/<name>[/<config>]/<version>``.

    Args:
      name: builder name (``"faces4d"``, ``"coma"``, ...).
      data_dir: the TFDS data folder it was prepared into.
      config: builder config name; ``None`` when the builder has no configs or only one was
        prepared.
      version: version string; ``None`` picks the highest prepared version.

    Raises:
      FileNotFoundError: naming the folder searched and what it contains.
    """
    root = os.path.join(os.fspath(data_dir), name)
    if not os.path.isdir(root):
        raise FileNotFoundError(f"no prepared dataset {name!r} under {os.fspath(data_dir)}")
    if config is None and not _versions(root):
        configs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if len(configs) != 1:
            raise FileNotFoundError(f"{root} holds configs {configs}; pass config= to choose one")
        config = configs[0]
    folder = root if config is None else os.path.join(root, config)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no prepared config {config!r} at {folder}")
    found = _versions(folder)
    if version is None:
        if not found:
            raise FileNotFoundError(f"no prepared version under {folder}")
        version = found[-1]
    path = os.path.join(folder, version)
    if not os.path.isfile(os.path.join(path, "dataset_info.json")):
        raise FileNotFoundError(f"no prepared dataset at {path} (versions present: {found})")
    return path


def data_path(dataset: Any) -> str:
    """The folder of a prepared dataset given as a folder or as a TFDS builder."""
    if hasattr(dataset, "data_path"):
        return os.fspath(dataset.data_path)
    return os.fspath(dataset)


def _read_json(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no sequence index at {path}")
    with open(path) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err}); prepare the dataset again") from err


def load_sequences(dataset: Any) -> list[SequenceInfo]:
    """Reads ``sequences.json`` of a prepared dataset (folder or builder)."""
    path = os.path.join(data_path(dataset), SEQUENCES_FILE)
    obj = _read_json(path)
    try:
        return [
            SequenceInfo(
                index=i,
                subject=s["subject"],
                expression=s["expression"],
                label=int(s["label"]),
                subject_id=int(s["subject_id"]),
                start=int(s["start"]),
                length=int(s["length"]),
                source_frames=tuple(int(x) for x in s["source_frames"]),
                apex=None if s.get("apex") is None else int(s["apex"]),
            )
            for i, s in enumerate(obj["sequences"])
        ]
    except KeyError as err:
        raise ValueError(f"{path}: a sequence has no field {err}; prepare the dataset "
                         "again") from err


def load_label_names(dataset: Any) -> tuple[str, ...]:
    """The expression name of every label (``sequences.json``'s ``expressions`` list)."""
    path = os.path.join(data_path(dataset), SEQUENCES_FILE)
    names = _read_json(path).get("expressions")
    if not names:
        raise ValueError(f"{path}: no 'expressions' list (the label names); prepare the dataset "
                         "again with this version of jaxface")
    return tuple(names)


def load_template(dataset: Any) -> dict[str, np.ndarray]:
    """Reads ``template.npz``: ``faces`` int32 ``[F, 3]``, ``vertices`` float32 ``[N, 3]`` and,
    when the dataset has landmarks, the landmark definition arrays (``landmarks/<field>``)."""
    path = os.path.join(data_path(dataset), TEMPLATE_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no template file at {path}")
    with np.load(path) as z:
        return {k: np.array(z[k]) for k in z.files}


def load_landmark_definition(dataset: Any) -> LandmarkDefinition | None:
    """The landmark definition stored in ``template.npz``, or ``None`` if there is none.

    Use it with ``extract_landmarks(vertices, definition, faces=load_template(d)["faces"])``.
    """
    fields = {
        k.split("/", 1)[1]: v
        for k, v in load_template(dataset).items()
        if k.startswith("landmarks/")
    }
    return LandmarkDefinition(**fields) if fields else None


def load_stats(dataset: Any, protocol: str = "interpolation") -> Stats:
    """Per-vertex mean/std of ``protocol``'s training part (or ``"all"``) of a prepared dataset."""
    return _load_stats_file(os.path.join(data_path(dataset), STATS_FILE), protocol)


def load_split(dataset: Any, protocol: str) -> Split:
    """Reads ``splits/<protocol>.json`` of a prepared dataset."""
    return read_split(os.path.join(data_path(dataset), SPLITS_DIR), protocol)
