"""Random access to the examples of a prepared dataset, and reading them into numpy arrays.

A *source* is anything with ``len()``, ``source[i]`` and, optionally, ``source.__getitems__(idx)``
returning decoded examples (dicts of numpy arrays, Python scalars and ``bytes`` for text): the
TFDS ``ArrayRecordDataSource`` of :func:`open_source`, an :class:`IndexedSource` view of one, or
any list of dicts. :mod:`jaxface.data.batches` streams batches from a source; the helpers here
read whole parts of one into memory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxface.data.layout import FRAMES_SPLIT, SequenceInfo

__all__ = [
    "IndexedSource",
    "load_sequence",
    "load_split_arrays",
    "open_source",
]


def open_source(dataset: Any, split: str = FRAMES_SPLIT) -> Sequence[dict[str, Any]]:
    """A random-access data source over one split of a prepared dataset.

    Args:
      dataset: a prepared dataset folder (``str`` / ``PathLike``, see
        :func:`jaxface.data.layout.dataset_dir`) or a TFDS builder (anything with
        ``as_data_source``).
      split: TFDS split name (``"frames"``), optionally sliced TFDS-style (``"frames[:10]"``).

    Returns:
      A TFDS ``ArrayRecordDataSource``: ``len()``, ``src[i]`` and ``src.__getitems__(idx)`` give
      decoded examples (numpy arrays, Python scalars, ``bytes`` for text).

    Raises:
      FileNotFoundError: ``dataset`` is not a prepared dataset folder.
    """
    if hasattr(dataset, "as_data_source"):
        return dataset.as_data_source(split)
    import tensorflow_datasets as tfds  # Deferred: only needed to open a folder.

    path = os.fspath(dataset)
    if not os.path.isfile(os.path.join(path, "dataset_info.json")):
        raise FileNotFoundError(f"{path} is not a prepared TFDS dataset folder")
    return tfds.builder_from_directory(path).as_data_source(split)


class IndexedSource(Sequence):
    """A view of a random-access source restricted to (and reordered by) ``indices``.

    Args:
      source: random-access source (``len``, ``[i]``, optionally ``__getitems__``).
      indices: int ``[n]`` indices into ``source``.

    Raises:
      IndexError: an index is outside ``source``.
    """

    def __init__(self, source: Sequence, indices: Sequence[int] | np.ndarray):
        self._source = source
        self._indices = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(source)
        if self._indices.size and (self._indices.min() < 0 or self._indices.max() >= n):
            raise IndexError(f"indices out of range for a source of {n} examples")

    def __len__(self) -> int:
        return int(self._indices.size)

    def __getitem__(self, i):
        return self._source[int(self._indices[i])]

    def __getitems__(self, idx: Sequence[int]) -> list:
        real = [int(self._indices[i]) for i in idx]
        if hasattr(self._source, "__getitems__"):
            return list(self._source.__getitems__(real))
        return [self._source[i] for i in real]

    def __repr__(self) -> str:
        return f"IndexedSource({len(self)} of {len(self._source)})"


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def load_split_arrays(
    source: Sequence,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    features: Sequence[str] | None = None,
    chunk_size: int = 256,
) -> dict[str, np.ndarray]:
    """Reads examples of a source into stacked numpy arrays (e.g. a test split for evaluation).

    Args:
      source: random-access source (:func:`open_source`).
      indices: example indices in the order wanted (e.g. ``load_split(d, p).test``); ``None``
        reads every example.
      features: feature names to keep; ``None`` keeps all.
      chunk_size: examples per ``__getitems__`` call.

    Returns:
      feature -> array with leading dimension ``len(indices)``; text features become unicode
      arrays, integer scalars int64, the rest keep their stored dtype.

    Raises:
      KeyError: none of ``features`` is in the examples.
    """
    idx = np.arange(len(source)) if indices is None else np.asarray(indices, np.int64)
    view = IndexedSource(source, idx)
    columns: dict[str, list] = {}
    for lo in range(0, len(view), chunk_size):
        for ex in view.__getitems__(range(lo, min(lo + chunk_size, len(view)))):
            for k in ex if features is None else features:
                columns.setdefault(k, []).append(_decode(ex[k]))
    if not columns:
        if len(view):
            raise KeyError(f"none of the features {features} were found")
        return {}
    return {k: np.stack([np.asarray(v) for v in vals]) for k, vals in columns.items()}


def load_sequence(
    source: Sequence, sequence: SequenceInfo, features: Sequence[str] | None = ("vertices",)
) -> dict[str, np.ndarray]:
    """All frames of one sequence: feature -> ``[length, ...]`` array.

    Args:
      source: random-access source of the dataset's ``frames`` split.
      sequence: one entry of :func:`jaxface.data.layout.load_sequences`.
      features: features to keep (``None``: all), see :func:`load_split_arrays`.
    """
    return load_split_arrays(source, sequence.indices, features=features)
