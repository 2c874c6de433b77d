"""Runs the S2D paper's comparisons (Table 1, Table 2, Figures 3 and 4) in one command.

    python -m experiments.s2d.tables --config=jaxface/configs/s2d.py:cpu \
        --workdir=workdirs/s2d_tables

Writes ``table1.md/.json``, ``table2.md/.json``, ``cumulative_*.png``, ``heatmaps_*.png`` and
``tables.json`` into the work directory; re-running continues an interrupted run. Several
copies of the command on one work directory share its cells; on a CPU, one copy per core is
faster than one copy on all cores (each copy then runs one XLA thread)::

    for core in 0 1; do
      XLA_FLAGS=--xla_cpu_multi_thread_eigen=false \
      taskset -c $core python -m experiments.s2d.tables \
          --config=jaxface/configs/s2d.py:converge --workdir=workdirs/s2d_tables &
    done; wait
"""

import functools
import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.s2d.tables import run_tables

FLAGS = flags.FLAGS
define_flags("Work directory (per-cell runs, tables and figures).")


def main(argv):
    del argv
    start()
    out = run_tables(FLAGS.config, FLAGS.workdir, report=functools.partial(print, flush=True))
    print(json.dumps({"wall_s": out["wall_s"]}))
    with open(f"{FLAGS.workdir}/table1.md") as f:
        print(f.read())


def run():
    app.run(main)


if __name__ == "__main__":
    run()
