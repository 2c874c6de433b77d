"""Runs the decoupled face GAN's Table 1 (with the ablations), Table 2 and contact sheet.

    python -m experiments.decoupled.tables --config=jaxface/configs/decoupled.py:cpu \
        --workdir=workdirs/decoupled_tables

Writes ``table1.md/.json``, ``table2.md/.json``, ``contact_sheet.png`` (rows: identity codes,
columns: expression codes), ``contact_sheet_change.png`` (the same faces coloured by how far each
vertex moved from the row's first column) and ``tables.json`` into the work directory;
re-running continues an interrupted run (every model resumes from its checkpoints, finished
Table 1 rows and Table 2 are kept).
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.decoupled.tables import run_tables

FLAGS = flags.FLAGS
define_flags("Work directory (per-model runs, tables and figures).")


def main(argv):
    del argv
    start()
    out = run_tables(FLAGS.config, FLAGS.workdir)
    print(json.dumps({"wall_s": out["wall_s"]}))
    for name in ("table1.md", "table2.md"):
        with open(f"{FLAGS.workdir}/{name}") as f:
            print(f.read())


def run():
    app.run(main)


if __name__ == "__main__":
    run()
