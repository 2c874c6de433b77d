"""Data pipeline: examples per second from the prepared TFDS source to device arrays.

Source: the prepared ``faces4d`` dataset (``--data-dir``, ``--dataset-config``; CoMA scale by
default: 15,448 meshes of 6990 vertices); when it is missing, the ``tiny`` config is prepared in
the run's scratch folder and the records say so. Features read: ``vertices`` and ``landmarks``.

Variants, each timed on its own (they run background threads) over several chunks of batches,
batch 16, all through the one device iterator of :mod:`jaxface.data.batches`:

* ``streaming``: :class:`StreamingBatches`, grain reading the stored meshes and landmarks plus
  the prefetch thread making global ``jax.Array`` batches sharded along ``"data"``;
* ``in_memory/load``: reading examples into host arrays (``load_split_arrays``), then
  ``in_memory/batches``: :class:`InMemoryBatches`, the per-step on-device gather;
* ``s2d_stream``: the S2D-Dec feed with ``config.loader = "stream"`` (grain reads each frame,
  :class:`jaxface.s2d.PairTransform` derives its landmark and dense displacements on the host);
* ``s2d_memory``: the S2D-Dec feed with ``config.loader = "memory"`` (the default: pairs held on
  the devices).

Each rate is compared with the S2D-Dec train step's consumption (meshes/s of ``jax/auto`` in the
``s2d_train`` case of the same run, when it ran).
"""

from __future__ import annotations

import itertools
import time

import jax
import numpy as np

from benchmarks.common import Timing, device_label, timing_fields

NAME = "data_pipeline"
FEATURES = ("vertices", "landmarks")


def _dataset(ctx) -> tuple[str, str]:
    from jaxface.data import dataset_dir, prepare_dataset

    try:
        path = dataset_dir("faces4d", data_dir=ctx.data_dir, config=ctx.dataset_config)
        return path, f"faces4d/{ctx.dataset_config}"
    except FileNotFoundError:
        ctx.log(f"    faces4d/{ctx.dataset_config} not found under {ctx.data_dir}; "
                "preparing faces4d/tiny in the scratch folder")
        path = prepare_dataset("faces4d", data_dir=ctx.scratch_dir, config="tiny", verbose=False)
        return path, "faces4d/tiny (fallback)"


def _time_chunks(iterator, chunks: int, per_chunk: int) -> Timing:
    """Seconds per batch over ``chunks`` chunks of ``per_chunk`` batches (blocking on arrays)."""
    times = []
    for _ in range(chunks):
        t0 = time.perf_counter()
        for b in itertools.islice(iterator, per_chunk):
            jax.block_until_ready(b)
        times.append((time.perf_counter() - t0) / per_chunk)
    return Timing(times, per_chunk)


def _forever(batches):
    """Epoch after epoch of a :class:`jaxface.data.batches.Batches`."""
    for epoch in itertools.count():
        with batches.epoch(epoch) as it:
            yield from it


def run(ctx) -> None:
    """Times every variant and compares it with the S2D-Dec consumption rate."""
    from jaxface.data import DatasetView, open_source
    from jaxface.data.batches import InMemoryBatches, StreamingBatches
    from jaxface.data.layout import load_template
    from jaxface.data.source import load_split_arrays
    from jaxface.s2d import PairTransform, load_pairs
    from jaxface.s2d.data import frame_index
    from jaxface.sharding import data_mesh

    path, dataset = _dataset(ctx)
    source = open_source(path)
    n_vertices = int(load_template(path)["vertices"].shape[0])
    batch = 16
    chunks, per_chunk = (3, 10) if ctx.quick else (5, 25)
    consumption = ctx.shared.get("s2d_meshes_per_s")
    mesh = data_mesh()
    common = {"case": NAME, "kind": "timing", "device": device_label(), "dtype": "float32",
              "dataset": dataset, "vertices": n_vertices, "batch": batch,
              "num_examples": len(source)}
    ctx.log(f"  {dataset}: {len(source)} examples of {n_vertices} vertices")

    def record(variant: str, timing: Timing, **extra):
        fields = timing_fields(timing, batch=batch)
        fields["examples_per_s"] = fields.pop("meshes_per_s")
        fields["bytes_per_example"] = n_vertices * 3 * 4 + 68 * 3 * 4
        if consumption:
            fields["times_s2d_consumption"] = fields["examples_per_s"] / consumption
            fields["s2d_consumption_meshes_per_s"] = consumption
        rec = ctx.recorder.add(variant=variant, backend="jax", **common, **fields, **extra)
        ratio = (f", {rec['times_s2d_consumption']:.1f}x the S2D-Dec step's consumption"
                 if consumption else "")
        ctx.log(f"    {variant}: {rec['examples_per_s']:.0f} examples/s{ratio}")

    def time_batches(variant: str, batches, **extra):
        stream = _forever(batches)
        next(stream)  # compile and start the threads
        record(variant, _time_chunks(stream, chunks, per_chunk), **extra)
        stream.close()

    time_batches("streaming", StreamingBatches(source, batch, mesh=mesh, features=FEATURES),
                 read_threads=4, prefetch=2)

    count = min(len(source), (chunks * per_chunk + 2) * batch * 2)
    t0 = time.perf_counter()
    arrays = load_split_arrays(source, np.arange(count), features=FEATURES)
    load_s = time.perf_counter() - t0
    record("in_memory/load", Timing([load_s / (count / batch)], 1), loaded_examples=count)
    held = InMemoryBatches(arrays, batch, mesh=mesh)
    time_batches("in_memory/batches", held, resident_bytes=held.resident_bytes)

    # The S2D-Dec feeds, on the first sequences holding at least 64 batches of frames.
    view = DatasetView(path)
    sequences, frames = [], 0
    for seq in view.sequences:
        sequences.append(seq)
        frames += seq.length
        if frames >= 64 * batch:
            break
    index = frame_index(view, sequences)
    time_batches("s2d_stream", StreamingBatches(
        view.source, batch, mesh=mesh, indices=index.examples,
        transform=PairTransform(index, view.landmarks, view.faces)), pairs=len(index))
    t0 = time.perf_counter()
    pairs = load_pairs(view, sequences)
    pairs_s = time.perf_counter() - t0
    time_batches("s2d_memory", InMemoryBatches(pairs.arrays(), batch, mesh=mesh),
                 pairs_build_s=pairs_s, pairs=len(pairs))
