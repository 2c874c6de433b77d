"""Runs the S2D paper's comparisons (Table 1, Table 2, Figures 3 and 4) in one command.

    python -m experiments.s2d.tables --config=experiments/s2d/configs/tables.py \
        --workdir=workdirs/s2d_tables

Writes ``table1.md/.json``, ``table2.md/.json``, ``cumulative_*.png``, ``heatmaps_*.png`` and
``tables.json`` into the work directory; re-running continues an interrupted run.
"""

import json

from absl import app, flags, logging
from ml_collections import config_flags

from jaxface.s2d.tables import run_tables
from jaxface.train import initialize_distributed

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment configuration file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Work directory (per-cell runs, tables and figures).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
    initialize_distributed()
    out = run_tables(FLAGS.config, FLAGS.workdir)
    print(json.dumps({"wall_s": out["wall_s"]}))
    with open(f"{FLAGS.workdir}/table1.md") as f:
        print(f.read())


def run():
    app.run(main)


if __name__ == "__main__":
    run()
