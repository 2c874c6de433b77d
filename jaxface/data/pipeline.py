"""From a prepared TFDS mesh dataset to sharded global ``jax.Array`` batches (no TensorFlow).

Prepared datasets (``datasets_tfds/*``) hold one TFDS split, ``frames``: one example per mesh, in
sorted (subject, sequence, frame) order. Next to the array_record files, the dataset folder holds:

* ``sequences.json``: every sequence's subject, expression, label and ``[start, start + length)``
  range of example indices, so 4D code can read whole sequences from the per-frame split;
* ``splits/<protocol>.json``: train/test example indices of each protocol (:mod:`.splits`);
* ``stats.npz``: per-vertex mean/std of each protocol's training part (:mod:`.stats`);
* ``template.npz``: the shared ``faces`` (and reference ``vertices``, landmark definition);
* ``source_manifest.tsv`` (real datasets): sha256 of every source file.

Two ways to feed a jitted step:

* :func:`sharded_batches` streams: grain reads this host's strided shard of the example indices,
  shuffles it with a per-epoch seed, batches ``global // process_count`` examples (drop remainder)
  and a background thread turns each batch into global arrays sharded over the ``("data",)``
  mesh with ``jax.make_array_from_process_local_data``.
* :class:`InMemoryBatches` puts a whole split on every device once and builds each batch by an
  on-device gather (the fast path when the split fits in device memory).
"""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Generic, TypeVar

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.data.splits import Split, read_split
from jaxface.data.stats import Stats
from jaxface.data.stats import load_stats as _load_stats_file
from jaxface.train.sharding import batch_sharding, data_mesh, replicated

__all__ = [
    "FRAMES_SPLIT",
    "MANIFEST_FILE",
    "SEQUENCES_FILE",
    "SPLITS_DIR",
    "STATS_FILE",
    "TEMPLATE_FILE",
    "InMemoryBatches",
    "IndexedSource",
    "Prefetcher",
    "SequenceInfo",
    "check_batch_size",
    "data_mesh",
    "dataset_dir",
    "epoch_seed",
    "host_batches",
    "load_landmark_definition",
    "load_sequence",
    "load_sequences",
    "load_split",
    "load_split_arrays",
    "load_stats",
    "load_template",
    "open_source",
    "sharded_batches",
    "steps_per_epoch",
]

FRAMES_SPLIT = "frames"
SEQUENCES_FILE = "sequences.json"
SPLITS_DIR = "splits"
STATS_FILE = "stats.npz"
TEMPLATE_FILE = "template.npz"
MANIFEST_FILE = "source_manifest.tsv"

T = TypeVar("T")


# ----------------------------------------------------------------------------- prepared datasets


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

    def versions(folder: str) -> list[str]:
        out = []
        for v in os.listdir(folder):
            parts = v.split(".")
            if len(parts) == 3 and all(p.isdigit() for p in parts):
                out.append(v)
        return sorted(out, key=lambda v: tuple(int(p) for p in v.split(".")))

    if config is None and not versions(root):
        configs = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
        if len(configs) != 1:
            raise FileNotFoundError(f"{root} holds configs {configs}; pass config= to choose one")
        config = configs[0]
    folder = root if config is None else os.path.join(root, config)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"no prepared config {config!r} at {folder}")
    found = versions(folder)
    if version is None:
        if not found:
            raise FileNotFoundError(f"no prepared version under {folder}")
        version = found[-1]
    path = os.path.join(folder, version)
    if not os.path.isfile(os.path.join(path, "dataset_info.json")):
        raise FileNotFoundError(f"no prepared dataset at {path} (versions present: {found})")
    return path


def open_source(dataset: Any, split: str = FRAMES_SPLIT) -> Sequence[dict[str, Any]]:
    """A random-access data source over one split of a prepared dataset.

    Args:
      dataset: a prepared dataset folder (``str`` / ``PathLike``, see :func:`dataset_dir`) or a
        TFDS builder (anything with ``as_data_source``).
      split: TFDS split name (``"frames"``), optionally sliced TFDS-style (``"frames[:10]"``).

    Returns:
      A TFDS ``ArrayRecordDataSource``: ``len()``, ``src[i]`` and ``src.__getitems__(idx)`` give
      decoded examples (numpy arrays, Python scalars, ``bytes`` for text).
    """
    if hasattr(dataset, "as_data_source"):
        return dataset.as_data_source(split)
    import tensorflow_datasets as tfds  # Deferred: only needed to open a folder.

    path = os.fspath(dataset)
    if not os.path.isfile(os.path.join(path, "dataset_info.json")):
        raise FileNotFoundError(f"{path} is not a prepared TFDS dataset folder")
    return tfds.builder_from_directory(path).as_data_source(split)


def _data_path(dataset: Any) -> str:
    if hasattr(dataset, "data_path"):
        return os.fspath(dataset.data_path)
    return os.fspath(dataset)


def load_sequences(dataset: Any) -> list[SequenceInfo]:
    """Reads ``sequences.json`` of a prepared dataset (folder or builder)."""
    path = os.path.join(_data_path(dataset), SEQUENCES_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no sequence index at {path}")
    with open(path) as f:
        obj = json.load(f)
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


def load_template(dataset: Any) -> dict[str, np.ndarray]:
    """Reads ``template.npz``: ``faces`` int32 ``[F, 3]``, ``vertices`` float32 ``[N, 3]`` and,
    when the dataset has landmarks, the landmark definition arrays (``landmarks/<field>``)."""
    path = os.path.join(_data_path(dataset), TEMPLATE_FILE)
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
    return _load_stats_file(os.path.join(_data_path(dataset), STATS_FILE), protocol)


def load_split(dataset: Any, protocol: str) -> Split:
    """Reads ``splits/<protocol>.json`` of a prepared dataset."""
    return read_split(os.path.join(_data_path(dataset), SPLITS_DIR), protocol)


class IndexedSource(Sequence):
    """A view of a random-access source restricted to (and reordered by) ``indices``.

    Args:
      source: random-access source (``len``, ``[i]``, optionally ``__getitems__``).
      indices: int ``[n]`` indices into ``source``.
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
      sequence: one entry of :func:`load_sequences`.
      features: features to keep (``None``: all), see :func:`load_split_arrays`.
    """
    return load_split_arrays(source, sequence.indices, features=features)


# ----------------------------------------------------------------------------- batching


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Validates a global batch size and returns the per-host batch size.

    Raises:
      ValueError: if the batch is not positive or not divisible by the mesh's device count or
        by the number of processes.
    """
    n_dev = int(mesh.devices.size)
    n_proc = jax.process_count()
    if global_batch_size <= 0:
        raise ValueError(f"global batch size must be positive, got {global_batch_size}")
    if global_batch_size % n_dev:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {n_dev} devices of "
            f"the data mesh; use a multiple of {n_dev}"
        )
    if global_batch_size % n_proc:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by {n_proc} processes"
        )
    return global_batch_size // n_proc


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of ``epoch``: a 32-bit integer derived from ``(seed, epoch)``."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def _host_indices(num_examples: int, indices: Sequence[int] | np.ndarray | None) -> np.ndarray:
    idx = np.arange(num_examples) if indices is None else np.asarray(indices, np.int64)
    n_proc, pid = jax.process_count(), jax.process_index()
    per_host = idx.size // n_proc
    return idx[pid::n_proc][:per_host]


def steps_per_epoch(
    num_examples: int,
    global_batch_size: int,
    num_processes: int | None = None,
    *,
    mesh: Mesh | None = None,
    what: str = "examples",
) -> int:
    """Full batches per epoch (drop remainder) when ``num_examples`` are split over processes.

    Args:
      num_examples: examples in the epoch.
      global_batch_size: examples per global batch.
      num_processes: processes sharing the examples (default: all JAX processes).
      mesh: when given, the batch size is validated against it (:func:`check_batch_size`).
      what: what the examples are, for the error message (e.g. ``"training frames"``).

    Raises:
      ValueError: the batch does not split over ``mesh``, or fewer examples than one batch.
    """
    if mesh is not None:
        check_batch_size(global_batch_size, mesh)
    n_proc = jax.process_count() if num_processes is None else num_processes
    steps = (num_examples // n_proc) // (global_batch_size // n_proc)
    if steps == 0:
        raise ValueError(f"{num_examples} {what} are fewer than one batch of {global_batch_size}")
    return steps


class _ToNumpy:
    """Keeps the numeric features of an example as numpy arrays (ints -> int32, floats -> f32)."""

    def __init__(self, features: Sequence[str] | None):
        self.features = None if features is None else tuple(features)

    def __call__(self, example: Mapping[str, Any]) -> dict[str, np.ndarray]:
        out = {}
        for k in example if self.features is None else self.features:
            v = np.asarray(example[k])
            if v.dtype.kind in "iub":
                out[k] = v.astype(np.int32)
            elif v.dtype.kind == "f":
                out[k] = v.astype(np.float32)
            elif self.features is not None:
                raise TypeError(f"feature {k!r} has dtype {v.dtype}; only numbers can be batched")
        return out


def host_batches(
    source: Sequence,
    *,
    global_batch_size: int,
    epoch: int,
    seed: int = 0,
    indices: Sequence[int] | np.ndarray | None = None,
    features: Sequence[str] | None = None,
    shuffle: bool = True,
    num_devices: int | None = None,
    read_threads: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
    """One epoch of this host's batches as numpy, read through grain.

    The host keeps every ``process_count``-th example index starting at ``process_index`` (all
    hosts keep the same number), shuffles its shard with :func:`epoch_seed` ``(seed, epoch)`` and
    batches ``global_batch_size // process_count`` examples, dropping the remainder.

    Args:
      source: random-access source.
      global_batch_size: examples per global batch.
      epoch: epoch number (selects the shuffle).
      seed: base shuffle seed.
      indices: example indices to draw from (a protocol part); ``None`` for all.
      features: features to keep; ``None`` keeps every numeric feature (text is dropped).
      shuffle: ``False`` keeps index order.
      num_devices: devices the global batch must divide into (default: all JAX devices).
      read_threads: grain reader threads (0 reads on the calling thread).

    Returns:
      An iterator of feature -> ``[global_batch_size // process_count, ...]`` numpy arrays (ints
      int32, floats float32).

    Raises:
      ValueError: if the batch does not divide into the devices or this host has fewer examples
        than one batch (checked before any reading).
    """
    n_dev = jax.device_count() if num_devices is None else num_devices
    if global_batch_size <= 0 or global_batch_size % n_dev:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {n_dev} devices"
        )
    per_host = global_batch_size // jax.process_count()
    local = _host_indices(len(source), indices)
    if local.size < per_host:
        raise ValueError(f"this host has {local.size} examples, fewer than one batch of {per_host}")
    ds = grain.MapDataset.source(IndexedSource(source, local))
    if shuffle:
        ds = ds.shuffle(seed=epoch_seed(seed, epoch))
    ds = ds.map(_ToNumpy(features)).batch(per_host, drop_remainder=True)
    if read_threads > 0:
        return iter(
            ds.to_iter_dataset(
                grain.ReadOptions(num_threads=read_threads, prefetch_buffer_size=4 * per_host)
            )
        )
    return iter(ds)


class Prefetcher(Iterator[T], Generic[T]):
    """Runs an iterator on a background thread, ``buffer_size`` items ahead.

    The producer thread stops when the source ends, raises, or :meth:`close` is called. An
    exception raised by the source is re-raised by ``next()`` in the consumer. Use as a context
    manager (or call :meth:`close`) to stop the thread early.

    Args:
      iterable: the items to produce (consumed on the background thread only).
      buffer_size: maximum number of items produced ahead of the consumer.
    """

    def __init__(self, iterable: Iterable[T], buffer_size: int = 2):
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        self._queue: queue.Queue = queue.Queue(maxsize=buffer_size)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(
            target=self._produce, args=(iterable,), name="jaxface-prefetch", daemon=True
        )
        self._thread.start()

    def _put(self, message: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(message, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterable: Iterable[T]) -> None:
        it = iter(iterable)
        try:
            for item in it:
                if not self._put(("item", item)):
                    return
            self._put(("end", None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer.
            self._put(("error", err))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()

    @property
    def alive(self) -> bool:
        """Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        kind, value = self._queue.get()
        if kind == "item":
            return value
        self._finished = True
        self._thread.join()
        if kind == "error":
            raise value
        raise StopIteration

    def close(self, timeout: float | None = 10.0) -> None:
        """Stops the producer thread and waits for it (up to ``timeout`` seconds)."""
        self._finished = True
        self._stop.set()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)

    def __enter__(self) -> Prefetcher[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sharded_batches(
    source: Sequence,
    *,
    global_batch_size: int,
    mesh: Mesh | None = None,
    seed: int = 0,
    indices: Sequence[int] | np.ndarray | None = None,
    features: Sequence[str] | None = None,
    num_epochs: int | None = None,
    start_epoch: int = 0,
    shuffle: bool = True,
    prefetch: int = 2,
    read_threads: int = 4,
) -> Prefetcher[dict[str, jax.Array]]:
    """Streams global batches sharded along ``"data"``, prefetched on a background thread.

    Args:
      source: random-access source (:func:`open_source`); every host opens the same dataset.
      global_batch_size: examples per global batch (divisible by the mesh's devices).
      mesh: 1-D ``("data",)`` mesh (default :func:`data_mesh` over all devices).
      seed: base shuffle seed (same on every host).
      indices: example indices to draw from (a protocol part); ``None`` for all.
      features: features to keep; ``None`` keeps every numeric feature.
      num_epochs: epochs to run; ``None`` runs forever.
      start_epoch: first epoch number (to resume with the same shuffles).
      shuffle: ``False`` keeps index order.
      prefetch: batches prepared ahead.
      read_threads: grain reader threads per host.

    Returns:
      A :class:`Prefetcher` yielding feature -> ``jax.Array`` ``[global_batch_size, ...]`` with
      ``NamedSharding(mesh, P("data"))``. Close it (or use ``with``) to stop early.

    Raises:
      ValueError: if the batch size is not divisible by the devices or processes.
    """
    mesh = data_mesh() if mesh is None else mesh
    per_host = check_batch_size(global_batch_size, mesh)
    available = _host_indices(len(source), indices).size
    if available < per_host:
        raise ValueError(f"this host has {available} examples, fewer than one batch of {per_host}")
    sharding = batch_sharding(mesh)

    def produce() -> Iterator[dict[str, jax.Array]]:
        epoch = start_epoch
        while num_epochs is None or epoch < start_epoch + num_epochs:
            for batch in host_batches(
                source,
                global_batch_size=global_batch_size,
                epoch=epoch,
                seed=seed,
                indices=indices,
                features=features,
                shuffle=shuffle,
                num_devices=int(mesh.devices.size),
                read_threads=read_threads,
            ):
                yield {
                    k: jax.make_array_from_process_local_data(sharding, v) for k, v in batch.items()
                }
            epoch += 1

    return Prefetcher(produce(), buffer_size=prefetch)


class InMemoryBatches:
    """A whole split held on every device; batches are gathered on device.

    Every process must pass identical arrays (e.g. from :func:`load_split_arrays` on the same
    split). Each epoch draws a permutation from :func:`epoch_seed` on the host, sends its index
    table to the devices once, and each step gathers one row of it into a batch sharded along
    ``"data"``.

    Args:
      arrays: feature -> numpy array with a common leading dimension; non-numeric arrays are
        dropped, ints become int32 and floats float32.
      mesh: 1-D ``("data",)`` mesh (default: all devices).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], mesh: Mesh | None = None):
        self.mesh = data_mesh() if mesh is None else mesh
        kept = _ToNumpy(None)(arrays)
        if not kept:
            raise ValueError("no numeric arrays to hold in memory")
        sizes = {k: v.shape[0] for k, v in kept.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays disagree on the number of examples: {sizes}")
        self.num_examples = next(iter(sizes.values()))
        self.data = jax.device_put(kept, replicated(self.mesh))
        self._gather = jax.jit(
            lambda data, table, step: jax.tree.map(
                lambda x: jnp.take(x, table[step], axis=0), data
            ),
            out_shardings=batch_sharding(self.mesh),
        )

    def steps_per_epoch(self, global_batch_size: int) -> int:
        """Full batches per epoch."""
        return self.num_examples // global_batch_size

    def epoch_indices(
        self, global_batch_size: int, epoch: int, seed: int = 0, shuffle: bool = True
    ) -> np.ndarray:
        """The example indices of every batch of ``epoch``, int32 ``[steps, global_batch_size]``."""
        check_batch_size(global_batch_size, self.mesh)
        steps = self.steps_per_epoch(global_batch_size)
        if steps == 0:
            raise ValueError(
                f"{self.num_examples} examples are fewer than one batch of {global_batch_size}"
            )
        order = np.arange(self.num_examples)
        if shuffle:
            order = np.random.default_rng(epoch_seed(seed, epoch)).permutation(self.num_examples)
        return order[: steps * global_batch_size].reshape(steps, global_batch_size).astype(np.int32)

    def batches(
        self,
        global_batch_size: int,
        *,
        seed: int = 0,
        num_epochs: int | None = None,
        start_epoch: int = 0,
        shuffle: bool = True,
    ) -> Iterator[dict[str, jax.Array]]:
        """Yields feature -> ``jax.Array`` ``[global_batch_size, ...]`` sharded along ``"data"``.

        Raises:
          ValueError: if the batch size is not divisible by the devices (raised on first use).
        """
        epoch = start_epoch
        while num_epochs is None or epoch < start_epoch + num_epochs:
            table = jax.device_put(
                self.epoch_indices(global_batch_size, epoch, seed, shuffle), replicated(self.mesh)
            )
            for step in range(table.shape[0]):
                yield self._gather(self.data, table, np.int32(step))
            epoch += 1
