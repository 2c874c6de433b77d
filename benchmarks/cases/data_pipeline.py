"""Data pipeline: examples per second from the prepared TFDS source to device arrays.

Source: the prepared ``faces4d`` dataset (``--data-dir``, ``--dataset-config``; CoMA scale by
default: 15,448 meshes of 6990 vertices); when it is missing, the ``tiny`` config is prepared in
the run's scratch folder and the records say so. Features read: ``vertices`` and ``landmarks``.

Variants, each timed on its own (they run background threads) over several chunks of batches,
batch 16:

* ``host_batches``: grain reads and batches numpy on the host (no device transfer);
* ``sharded_batches``: the streaming path, grain plus a prefetch thread making global
  ``jax.Array`` batches sharded along ``"data"``;
* ``in_memory/load``: reading examples into host arrays for :class:`InMemoryBatches`
  (``load_split_arrays``), then ``in_memory/batches``: the per-step on-device gather;
* ``s2d_pairs``: the feed the S2D-Dec experiment uses (``S2DPairs.epoch`` numpy batches of
  landmark displacement and dense displacement, then ``shard_batch``).

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
    from jaxface.commands.prepare import prepare_dataset
    from jaxface.data import pipeline

    try:
        path = pipeline.dataset_dir("faces4d", data_dir=ctx.data_dir, config=ctx.dataset_config)
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


def run(ctx) -> None:
    """Times every variant and compares it with the S2D-Dec consumption rate."""
    from jaxface.data import pipeline
    from jaxface.s2d.experiment import DatasetView
    from jaxface.train import data_mesh, shard_batch

    path, dataset = _dataset(ctx)
    source = pipeline.open_source(path)
    n_vertices = int(pipeline.load_template(path)["vertices"].shape[0])
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

    # Streaming, host only.
    it = pipeline.host_batches(source, global_batch_size=batch, epoch=0, features=FEATURES,
                               num_devices=int(mesh.devices.size))
    next(it)
    record("host_batches", _time_chunks(it, chunks, per_chunk), read_threads=4)
    del it

    # Streaming to device arrays.
    with pipeline.sharded_batches(source, global_batch_size=batch, mesh=mesh,
                                  features=FEATURES) as stream:
        next(stream)
        record("sharded_batches", _time_chunks(stream, chunks, per_chunk),
               read_threads=4, prefetch=2)

    # Whole split in memory.
    count = min(len(source), (chunks * per_chunk + 2) * batch * 2)
    t0 = time.perf_counter()
    arrays = pipeline.load_split_arrays(source, np.arange(count), features=FEATURES)
    load_s = time.perf_counter() - t0
    record("in_memory/load", Timing([load_s / (count / batch)], 1), loaded_examples=count)
    held = pipeline.InMemoryBatches(arrays, mesh)
    batches = held.batches(batch)
    next(batches)
    record("in_memory/batches", _time_chunks(batches, chunks, per_chunk),
           resident_bytes=int(sum(a.nbytes for a in arrays.values())))

    # The S2D-Dec experiment's feed.
    view = DatasetView(path)
    sequences, frames = [], 0
    for seq in view.sequences:
        sequences.append(seq)
        frames += seq.length
        if frames >= 64 * batch:
            break
    t0 = time.perf_counter()
    pairs = view.pairs(sequences)
    pairs_s = time.perf_counter() - t0

    def feed():
        for epoch in itertools.count():
            for host in pairs.epoch(batch, np.random.default_rng(epoch)):
                yield shard_batch(host, mesh)

    stream = feed()
    next(stream)
    record("s2d_pairs", _time_chunks(stream, chunks, per_chunk),
           pairs_build_s=pairs_s, pairs=len(pairs))
