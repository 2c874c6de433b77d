"""Trains only the full decoupled GAN of a config and writes its Table 1 row and contact sheets.

    python -m experiments.decoupled.full_model --config=jaxface/configs/decoupled.py:cpu \\
        --config.optim.schedule=linear --config.loss.laplacian=10 --config.optim.num_epochs=108 \\
        --workdir=workdirs/decoupled_lap10 --embeddings=workdirs/decoupled_tables

For trying a training setting (loss weights, learning-rate schedule, budget) against the tables
command's "Ours" row: with ``--embeddings`` (a finished tables work directory) the row is
measured with the same embedding networks. Writes ``row.json``, ``contact_sheet.png`` and
``contact_sheet_change.png`` into the work directory; re-running resumes, and a larger
``num_epochs`` continues the run.
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.decoupled.tables import run_full_model

FLAGS = flags.FLAGS
define_flags("Work directory (the GAN's run, its row and contact sheets).")
flags.DEFINE_string("embeddings", None, "A tables work directory whose embedding networks to "
                    "copy (default: train them in the work directory).")


def main(argv):
    del argv
    start()
    out = run_full_model(FLAGS.config, FLAGS.workdir, embeddings=FLAGS.embeddings)
    print(json.dumps({k: out[k] for k in ("row", "steps", "train_time_s", "schedule", "wall_s")}))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
