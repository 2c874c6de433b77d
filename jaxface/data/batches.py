"""Device batches: the one iterator every training loop consumes.

A :class:`Batches` object yields, epoch by epoch, global batches (feature -> ``jax.Array``
``[batch_size, ...]``) sharded along the ``"data"`` axis of a device mesh and prepared on a
background thread (:class:`jaxface.data.prefetch.Prefetcher`) while the training step runs. Two
implementations sit behind that interface:

* :class:`InMemoryBatches`: the examples are held on every device once and each batch is an
  on-device gather (nothing crosses the host-device boundary after the first copy). For sets
  that fit in device memory, which is every embedded set and CoMA-scale data.
* :class:`StreamingBatches`: grain reads the batch's examples from a random-access source
  (:mod:`jaxface.data.source`, e.g. a prepared array_record dataset), an optional per-example
  transform derives the model's inputs on the host, and each host's rows become one global
  array. For sets larger than memory.

Both draw their batches from the same index table (:func:`epoch_order`): a permutation of the
examples drawn from ``numpy.random.default_rng([seed, *stream, epoch])``, cut into full batches
(the remainder is dropped) with the indices of each batch sorted (sequential reads for the
streaming path). The two paths therefore produce identical batches, and an epoch's batches
depend only on ``(seed, stream, epoch)``, so a resumed run (``Batches.epoch(epoch, start)``)
sees exactly the batches an uninterrupted one would.

Several processes (``jax.distributed``) compute the same table; each holds or reads only its
``batch_size // process_count`` rows of a batch.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import grain
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from jaxface.data.prefetch import Prefetcher
from jaxface.data.source import IndexedSource
from jaxface.sharding import batch_sharding, data_mesh, replicated

__all__ = [
    "Batches",
    "InMemoryBatches",
    "StreamingBatches",
    "check_batch_size",
    "epoch_order",
    "numeric_arrays",
]


def check_batch_size(global_batch_size: int, mesh: Mesh) -> int:
    """Validates a global batch size and returns the per-process batch size.

    Raises:
      ValueError: the batch is not positive or not divisible by the mesh's device count or by
        the number of processes.
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


def epoch_order(
    num_examples: int,
    batch_size: int,
    epoch: int,
    *,
    seed: int = 0,
    stream: Sequence[int] = (),
    shuffle: bool = True,
    epoch_examples: int | None = None,
) -> np.ndarray:
    """The example indices of every batch of one epoch.

    Args:
      num_examples: examples in the data.
      batch_size: examples per (global) batch.
      epoch: epoch number.
      seed: base seed.
      stream: extra seed words, so that several models trained with one ``seed`` draw
        different orders.
      shuffle: ``False`` keeps the examples in order.
      epoch_examples: draws per epoch when an epoch is not one pass over the data (default
        ``num_examples``): successive passes, each its own permutation, cut at this many.

    Returns:
      int64 ``[epoch_examples // batch_size, batch_size]``; each row ascending.

    Example:
      >>> epoch_order(10, 4, 0, shuffle=False)
      array([[0, 1, 2, 3],
             [4, 5, 6, 7]])
    """
    draws = num_examples if epoch_examples is None else int(epoch_examples)
    passes = []
    for k in range(-(-draws // num_examples)):
        if shuffle:
            words = [int(seed), *(int(s) for s in stream), int(epoch)] + ([k] if k else [])
            passes.append(np.random.default_rng(words).permutation(num_examples))
        else:
            passes.append(np.arange(num_examples))
    order = np.concatenate(passes)[:draws]
    steps = draws // batch_size
    table = order[: steps * batch_size].reshape(steps, batch_size).astype(np.int64)
    table.sort(axis=1)
    return table


def numeric_arrays(arrays: Mapping[str, Any], *, strict: bool = False) -> dict[str, np.ndarray]:
    """The numeric entries of ``arrays`` as numpy: integers as int32 (``uint8``, as images are
    stored, stays ``uint8``), floats as float32.

    Args:
      arrays: name -> array-like.
      strict: raise on a non-numeric entry instead of dropping it.

    Raises:
      TypeError: with ``strict``, naming the entry that is not numeric.
    """
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if v.dtype == np.uint8:
            out[k] = v
        elif v.dtype.kind in "iub":
            out[k] = v.astype(np.int32)
        elif v.dtype.kind == "f":
            out[k] = v.astype(np.float32)
        elif strict:
            raise TypeError(f"feature {k!r} has dtype {v.dtype}; only numbers can be batched")
    return out


class Batches(abc.ABC):
    """Epochs of global batches sharded along ``"data"``, prepared on a background thread.

    Args:
      num_examples: examples per epoch.
      batch_size: examples per global batch (divisible by the mesh's devices and processes).
      mesh: 1-D ``("data",)`` mesh (default: all devices).
      seed, stream, shuffle: the index table's (:func:`epoch_order`).
      prefetch: batches prepared ahead of the consumer.
      what: what the examples are, for error messages (e.g. ``"training frames"``).
      epoch_examples: examples drawn per epoch when an epoch is not one pass over the data
        (see :func:`epoch_order`).

    Raises:
      ValueError: the batch does not split over the mesh, or there are fewer examples than one
        batch.
    """

    def __init__(
        self,
        num_examples: int,
        batch_size: int,
        *,
        mesh: Mesh | None = None,
        seed: int = 0,
        stream: Sequence[int] = (),
        shuffle: bool = True,
        prefetch: int = 2,
        what: str = "examples",
        epoch_examples: int | None = None,
    ):
        self.mesh = data_mesh() if mesh is None else mesh
        self.per_process = check_batch_size(batch_size, self.mesh)
        if num_examples < 1 or (epoch_examples is None and num_examples < batch_size):
            raise ValueError(f"{num_examples} {what} are fewer than one batch of {batch_size}")
        if epoch_examples is not None and epoch_examples < batch_size:
            raise ValueError(f"an epoch of {epoch_examples} {what} is shorter than one batch of "
                             f"{batch_size}")
        self.epoch_examples = None if epoch_examples is None else int(epoch_examples)
        self.num_examples = int(num_examples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.stream = tuple(int(s) for s in stream)
        self.shuffle = bool(shuffle)
        self.prefetch = int(prefetch)

    @property
    def steps_per_epoch(self) -> int:
        """Full batches per epoch."""
        return (self.epoch_examples or self.num_examples) // self.batch_size

    def order(self, epoch: int) -> np.ndarray:
        """int64 ``[steps_per_epoch, batch_size]``: the example indices of ``epoch``'s batches."""
        return epoch_order(self.num_examples, self.batch_size, epoch, seed=self.seed,
                           stream=self.stream, shuffle=self.shuffle,
                           epoch_examples=self.epoch_examples)

    def epoch(self, epoch: int, start: int = 0) -> Prefetcher[dict[str, jax.Array]]:
        """The batches of ``epoch`` from its ``start``-th on.

        Returns:
          A :class:`Prefetcher` of feature -> ``jax.Array`` ``[batch_size, ...]`` with
          ``NamedSharding(mesh, P("data"))``; close it (or use ``with``) to stop early.
        """
        table = self.order(epoch)[start:]
        return Prefetcher(self._produce(table), buffer_size=self.prefetch)

    def local_rows(self, table: np.ndarray) -> np.ndarray:
        """This process's part of an index table (:meth:`order`): its
        ``batch_size // process_count`` consecutive columns, ``[steps, per_process]``."""
        lo = jax.process_index() * self.per_process
        return table[:, lo : lo + self.per_process]

    @abc.abstractmethod
    def _produce(self, table: np.ndarray) -> Iterator[dict[str, jax.Array]]:
        """Yields the global batch of every row of ``table`` (runs on the prefetch thread)."""


def _gather_rows(data, table, step):
    return jax.tree.map(lambda x: jnp.take(x, table[step], axis=0), data)


class InMemoryBatches(Batches):
    """Examples held on every device; each batch is gathered on device.

    Every process must pass identical arrays. Each epoch's index table goes to the devices
    once, and each step gathers one row of it into a batch sharded along ``"data"``.

    Args:
      arrays: feature -> numpy array with a common leading dimension (the examples);
        non-numeric arrays are dropped, ints become int32 and floats float32.
      batch_size: examples per global batch.
      **kwargs: see :class:`Batches`.

    Raises:
      ValueError: no numeric array, or arrays of different lengths.
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], batch_size: int, **kwargs):
        kept = numeric_arrays(arrays)
        if not kept:
            raise ValueError("no numeric arrays to hold in memory")
        sizes = {k: v.shape[0] for k, v in kept.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"arrays disagree on the number of examples: {sizes}")
        super().__init__(next(iter(sizes.values())), batch_size, **kwargs)
        rep = replicated(self.mesh)
        self.data = {
            k: jax.make_array_from_callback(v.shape, rep, lambda idx, v=v: v[idx])
            for k, v in kept.items()
        }
        self._gather = jax.jit(_gather_rows, out_shardings=batch_sharding(self.mesh))

    @property
    def resident_bytes(self) -> int:
        """Bytes held per device."""
        return int(sum(x.nbytes for x in self.data.values()))

    def _produce(self, table: np.ndarray) -> Iterator[dict[str, jax.Array]]:
        if not len(table):
            return
        rep = replicated(self.mesh)
        table = table.astype(np.int32)
        on_device = jax.make_array_from_callback(table.shape, rep, lambda idx: table[idx])
        for step in range(table.shape[0]):
            yield self._gather(self.data, on_device, np.int32(step))


class _Prepare:
    """Per-example host work of the streaming path: transform, then numeric arrays."""

    def __init__(self, transform: Callable[[dict[str, Any]], Mapping[str, Any]] | None,
                 features: Sequence[str] | None):
        self.transform = transform
        self.features = None if features is None else tuple(features)

    def __call__(self, example: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self.transform is not None:
            example = self.transform(dict(example))
        if self.features is not None:
            missing = [k for k in self.features if k not in example]
            if missing:
                raise KeyError(f"examples have no feature {missing[0]!r}; they have "
                               f"{sorted(example)}")
            example = {k: example[k] for k in self.features}
        return numeric_arrays(example, strict=self.features is not None)


class StreamingBatches(Batches):
    """Batches read from a random-access source by grain, then sharded onto the devices.

    Args:
      source: random-access source (:func:`jaxface.data.source.open_source`); every process
        opens the same one.
      batch_size: examples per global batch.
      indices: the example indices an epoch draws from (e.g. a protocol's training part);
        ``None`` for all of ``source``.
      transform: optional ``example -> dict`` applied on the host before batching (e.g. to
        derive a model's inputs from stored meshes).
      features: the entries to keep after ``transform``; ``None`` keeps every numeric one.
      read_threads: grain reader threads per process (0 reads on the prefetch thread).
      **kwargs: see :class:`Batches`.
    """

    def __init__(
        self,
        source: Sequence,
        batch_size: int,
        *,
        indices: Sequence[int] | np.ndarray | None = None,
        transform: Callable[[dict[str, Any]], Mapping[str, Any]] | None = None,
        features: Sequence[str] | None = None,
        read_threads: int = 4,
        **kwargs,
    ):
        self.source = source
        self.indices = (np.arange(len(source), dtype=np.int64) if indices is None
                        else np.asarray(indices, np.int64).reshape(-1))
        IndexedSource(source, self.indices)  # validates the indices
        super().__init__(int(self.indices.size), batch_size, **kwargs)
        self.prepare = _Prepare(transform, features)
        self.read_threads = int(read_threads)

    def _produce(self, table: np.ndarray) -> Iterator[dict[str, jax.Array]]:
        if not len(table):
            return
        rows = self.local_rows(table)
        ds = grain.MapDataset.source(IndexedSource(self.source, self.indices[rows.reshape(-1)]))
        ds = ds.map(self.prepare).batch(self.per_process, drop_remainder=True)
        if self.read_threads > 0:
            it = ds.to_iter_dataset(grain.ReadOptions(
                num_threads=self.read_threads, prefetch_buffer_size=2 * self.per_process))
        else:
            it = ds
        sharding = batch_sharding(self.mesh)
        for batch in it:
            yield {k: jax.make_array_from_process_local_data(sharding, v)
                   for k, v in batch.items()}
