"""Deterministic train/test protocols over a prepared mesh-sequence dataset.

Every protocol is computed from *sorted* names, never from filesystem order, so the same release
gives the same split on every machine. A protocol is a :class:`Split`: named parts (``"train"``,
``"test"``, sometimes ``"validation"``) holding ascending example indices into the dataset's
single ``frames`` split, plus the names that were held out.

Protocols:

* ``interpolation`` (CoMA autoencoding): frames ranked in sorted (subject, expression, frame)
  order; rank ``i`` goes to test when ``i % 100 < 10``.
* ``extrapolation_<expression>``: one expression held out for test, all others train.
* ``identity_fold<k>`` / ``expression_fold<k>`` (S2D, k = 1..4): with the 12 sorted names, fold 1
  tests sorted indices {11, 10, 9}, fold 2 {8, 7, 6}, fold 3 {5, 4, 3}, fold 4 {2, 1, 0}. With
  another number ``n >= 4`` of names the reversed index list is cut into 4 near-equal blocks the
  same way (:func:`fold_held_out`).
* ``identity_leading<n>`` / ``expression_leading<n>``: the first ``n`` sorted names are test
  (the S2D D3DFACS protocol: first 3 identities, first 11 expressions).
* ``named``: explicit name lists per part (VOCASET's official subject/sentence split).

Splits are written as one JSON file per protocol (``<dir>/<protocol>.json``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

__all__ = [
    "NUM_FOLDS",
    "Split",
    "coma_protocols",
    "expression_fold_split",
    "extrapolation_split",
    "fold_held_out",
    "identity_fold_split",
    "interpolation_split",
    "leading_names_split",
    "list_protocols",
    "named_split",
    "read_split",
    "sorted_order",
    "write_splits",
]

NUM_FOLDS = 4
_PROTOCOL_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclasses.dataclass(frozen=True)
class Split:
    """One protocol: named parts of example indices.

    Attributes:
      protocol: protocol name, also the JSON file stem (e.g. ``"identity_fold1"``).
      parts: part name -> ascending example indices, int64 ``[n_part]``. Parts are disjoint.
      held_out: names (subjects, expressions, ...) whose examples form the test part.
      description: one human-readable line.
    """

    protocol: str
    parts: Mapping[str, np.ndarray]
    held_out: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self):
        if not _PROTOCOL_RE.match(self.protocol):
            raise ValueError(f"protocol name {self.protocol!r} must match {_PROTOCOL_RE.pattern}")
        parts = {}
        seen: set[int] = set()
        for name, idx in self.parts.items():
            idx = np.asarray(idx, dtype=np.int64).reshape(-1)
            if idx.size and np.any(np.diff(idx) <= 0):
                raise ValueError(
                    f"split {self.protocol}/{name}: indices must be strictly ascending"
                )
            overlap = seen.intersection(idx.tolist())
            if overlap:
                raise ValueError(
                    f"split {self.protocol}: part {name!r} overlaps another part "
                    f"(e.g. index {min(overlap)})"
                )
            seen.update(idx.tolist())
            parts[name] = idx
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "held_out", tuple(self.held_out))

    @property
    def train(self) -> np.ndarray:
        """Training indices, int64 ``[n_train]``."""
        return self.parts["train"]

    @property
    def test(self) -> np.ndarray:
        """Test indices, int64 ``[n_test]``."""
        return self.parts["test"]

    def to_json(self) -> dict:
        """A JSON-serialisable dict (inverse of :meth:`from_json`)."""
        return {
            "protocol": self.protocol,
            "description": self.description,
            "held_out": list(self.held_out),
            "sizes": {k: int(v.size) for k, v in self.parts.items()},
            "parts": {k: v.tolist() for k, v in self.parts.items()},
        }

    @classmethod
    def from_json(cls, obj: Mapping) -> Split:
        """Builds a split from :meth:`to_json` output."""
        return cls(
            protocol=obj["protocol"],
            parts={k: np.asarray(v, dtype=np.int64) for k, v in obj["parts"].items()},
            held_out=tuple(obj.get("held_out", ())),
            description=obj.get("description", ""),
        )


def sorted_order(*keys: Sequence) -> np.ndarray:
    """Indices that sort examples lexicographically by ``keys`` (first key most significant).

    Args:
      *keys: equal-length sequences (e.g. subjects, expressions, frame numbers).

    Returns:
      int64 ``[n]`` permutation; ``order[r]`` is the example of rank ``r``. Ties keep input order.
    """
    if not keys:
        raise ValueError("sorted_order needs at least one key")
    n = len(keys[0])
    if any(len(k) != n for k in keys):
        raise ValueError("all sort keys must have the same length")
    # np.lexsort sorts by the last key first.
    cols = [np.asarray(list(k)) for k in reversed(keys)]
    return np.lexsort(cols).astype(np.int64) if n else np.zeros((0,), np.int64)


def interpolation_split(
    subjects: Sequence[str], expressions: Sequence[str], frames: Sequence[int]
) -> Split:
    """CoMA's interpolation split: rank ``i`` in sorted order is test iff ``i % 100 < 10``.

    Args:
      subjects: per-example subject names, length n.
      expressions: per-example expression (sequence) names, length n.
      frames: per-example frame numbers, length n.

    Returns:
      ``Split("interpolation", {"train", "test"})`` over example indices.
    """
    order = sorted_order(subjects, expressions, np.asarray(frames, np.int64))
    is_test = np.zeros(order.size, bool)
    is_test[order] = (np.arange(order.size) % 100) < 10
    idx = np.arange(order.size, dtype=np.int64)
    return Split(
        "interpolation",
        {"train": idx[~is_test], "test": idx[is_test]},
        description="sorted (subject, expression, frame) rank i is test iff i % 100 < 10",
    )


def _held_out_split(
    protocol: str, names: Sequence[str], held_out: Iterable[str], description: str
) -> Split:
    names = np.asarray(list(names), dtype=object)
    held = tuple(sorted(set(held_out)))
    missing = set(held) - set(names.tolist())
    if missing:
        raise ValueError(f"split {protocol}: held-out names {sorted(missing)} not in the dataset")
    is_test = np.isin(names, np.asarray(held, dtype=object))
    idx = np.arange(names.size, dtype=np.int64)
    return Split(protocol, {"train": idx[~is_test], "test": idx[is_test]}, held, description)


def extrapolation_split(expressions: Sequence[str], held_out: str) -> Split:
    """CoMA's extrapolation split: every frame of expression ``held_out`` is test.

    Args:
      expressions: per-example expression names, length n.
      held_out: the expression to hold out.

    Returns:
      ``Split("extrapolation_<held_out>", {"train", "test"})``.
    """
    return _held_out_split(
        f"extrapolation_{held_out}", expressions, [held_out], f"expression {held_out} held out"
    )


def fold_held_out(names: Iterable[str], fold: int, num_folds: int = NUM_FOLDS) -> tuple[str, ...]:
    """Names tested in S2D cross-validation fold ``fold`` (1-based).

    The unique names are sorted and their indices reversed, then cut into ``num_folds``
    contiguous blocks (``np.array_split``); fold k tests block k. With 12 names and 4 folds this is
    S2D's protocol exactly: fold 1 -> {11, 10, 9}, 2 -> {8, 7, 6}, 3 -> {5, 4, 3}, 4 -> {2, 1, 0}.

    Args:
      names: names (duplicates allowed; only the unique set matters).
      fold: fold number in ``1..num_folds``.
      num_folds: number of folds.

    Returns:
      The held-out names, in the order of the reversed sorted indices.

    Raises:
      ValueError: if ``fold`` is out of range or there are fewer names than folds.
    """
    unique = sorted(set(names))
    if not 1 <= fold <= num_folds:
        raise ValueError(f"fold must be in 1..{num_folds}, got {fold}")
    if len(unique) < num_folds:
        raise ValueError(
            f"{num_folds}-fold cross-validation needs at least {num_folds} distinct names, "
            f"got {len(unique)}: {unique}"
        )
    blocks = np.array_split(np.arange(len(unique))[::-1], num_folds)
    return tuple(unique[i] for i in blocks[fold - 1])


def identity_fold_split(subjects: Sequence[str], fold: int) -> Split:
    """S2D identity-independent fold ``fold`` (1..4) over per-example subject names."""
    held = fold_held_out(subjects, fold)
    return _held_out_split(
        f"identity_fold{fold}", subjects, held, f"S2D identity fold {fold}: subjects {held} test"
    )


def expression_fold_split(expressions: Sequence[str], fold: int) -> Split:
    """S2D expression-independent fold ``fold`` (1..4) over per-example expression names."""
    held = fold_held_out(expressions, fold)
    return _held_out_split(
        f"expression_fold{fold}",
        expressions,
        held,
        f"S2D expression fold {fold}: expressions {held} test",
    )


def leading_names_split(protocol: str, names: Sequence[str], num_test: int) -> Split:
    """The first ``num_test`` sorted unique names are test, the rest train.

    Args:
      protocol: protocol name (e.g. ``"identity_leading3"``).
      names: per-example names, length n.
      num_test: how many of the sorted names to hold out (``0 < num_test < #names``).

    Returns:
      ``Split(protocol, {"train", "test"})``.
    """
    unique = sorted(set(names))
    if not 0 < num_test < len(unique):
        raise ValueError(
            f"split {protocol}: need 0 < num_test < {len(unique)} distinct names, got {num_test}"
        )
    held = unique[:num_test]
    return _held_out_split(protocol, names, held, f"first {num_test} sorted names test: {held}")


def named_split(
    protocol: str,
    subjects: Sequence[str],
    sequences: Sequence[str],
    parts: Mapping[str, tuple[Iterable[str], Iterable[str] | None]],
    description: str = "",
) -> Split:
    """Explicit split: each part lists its subjects and (optionally) its sequence names.

    Args:
      protocol: protocol name.
      subjects: per-example subject names, length n.
      sequences: per-example sequence (expression / sentence) names, length n.
      parts: part name -> ``(subjects, sequences or None for all)``. Examples matching no part
        are left out of every part.
      description: one line stored with the split.

    Returns:
      The split; ``held_out`` lists the subjects of every part except ``"train"``.
    """
    subj = np.asarray(list(subjects), dtype=object)
    seqs = np.asarray(list(sequences), dtype=object)
    idx = np.arange(subj.size, dtype=np.int64)
    out, held = {}, []
    for name, (part_subjects, part_sequences) in parts.items():
        part_subjects = sorted(set(part_subjects))
        mask = np.isin(subj, np.asarray(part_subjects, dtype=object))
        if part_sequences is not None:
            mask &= np.isin(seqs, np.asarray(sorted(set(part_sequences)), dtype=object))
        out[name] = idx[mask]
        if name != "train":
            held.extend(part_subjects)
    return Split(protocol, out, tuple(held), description)


def coma_protocols(
    subjects: Sequence[str], expressions: Sequence[str], frames: Sequence[int]
) -> dict[str, Split]:
    """All CoMA / S2D protocols that the names allow.

    Interpolation and per-expression extrapolation always; the 4 identity (expression) folds when
    there are at least 4 distinct subjects (expressions).

    Args:
      subjects: per-example subject names, length n.
      expressions: per-example expression names, length n.
      frames: per-example frame numbers, length n.

    Returns:
      protocol name -> :class:`Split`, in a fixed order.
    """
    out = {"interpolation": interpolation_split(subjects, expressions, frames)}
    for expr in sorted(set(expressions)):
        split = extrapolation_split(expressions, expr)
        out[split.protocol] = split
    for names, make in ((subjects, identity_fold_split), (expressions, expression_fold_split)):
        if len(set(names)) >= NUM_FOLDS:
            for fold in range(1, NUM_FOLDS + 1):
                split = make(names, fold)
                out[split.protocol] = split
    return out


def write_splits(directory: str | os.PathLike, splits: Iterable[Split]) -> list[str]:
    """Writes each split to ``<directory>/<protocol>.json``.

    Args:
      directory: output folder (created if missing).
      splits: splits to write.

    Returns:
      The written file paths.
    """
    os.makedirs(directory, exist_ok=True)
    paths = []
    for split in splits:
        path = os.path.join(os.fspath(directory), f"{split.protocol}.json")
        with open(path, "w") as f:
            json.dump(split.to_json(), f, separators=(",", ":"))
        paths.append(path)
    return paths


def list_protocols(directory: str | os.PathLike) -> list[str]:
    """Sorted protocol names with a JSON file in ``directory``."""
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"no split folder at {os.fspath(directory)}")
    return sorted(f[:-5] for f in os.listdir(directory) if f.endswith(".json"))


def read_split(directory: str | os.PathLike, protocol: str) -> Split:
    """Reads ``<directory>/<protocol>.json`` written by :func:`write_splits`.

    Raises:
      FileNotFoundError: naming the file and the protocols that do exist.
    """
    path = os.path.join(os.fspath(directory), f"{protocol}.json")
    if not os.path.isfile(path):
        known = list_protocols(directory) if os.path.isdir(directory) else []
        raise FileNotFoundError(f"no split file {path}; available protocols: {known}")
    with open(path) as f:
        return Split.from_json(json.load(f))
