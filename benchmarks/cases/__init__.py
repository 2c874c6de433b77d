"""Benchmark cases, in the order :mod:`benchmarks.run` runs them.

Each module has a ``NAME`` and a ``run(ctx)`` taking a :class:`benchmarks.fixtures.Context`.
"""

from benchmarks.cases import (
    data_pipeline,
    machine,
    motion3dgan_train,
    render,
    s2d_train,
    scaling,
    spiral_conv,
    topology,
)

#: name -> module, in run order (``machine`` first: later cases use its peaks; ``s2d_train``
#: before ``data_pipeline``: the pipeline is compared with the step's consumption).
CASES = {
    m.NAME: m
    for m in (machine, topology, spiral_conv, s2d_train, motion3dgan_train, data_pipeline,
              scaling, render)
}

__all__ = ["CASES"]
