"""Trains the 4D expression model (LSTM + spiral decoder) and its PCA baseline, then evaluates.

    python -m experiments.express.main --config=jaxface/configs/express.py:cpu \
        --workdir=workdirs/express

Writes Tables 2-3, the per-frame error, the intensity-following check and latent interpolation
into the work directory (``results.md``, ``results.json`` and figures). Re-running with the same
``--workdir`` resumes the training runs. ``<workdir>/proposed`` is what ``jaxface express
--model`` loads.
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.express.experiment import run_experiment

FLAGS = flags.FLAGS
define_flags("Work directory (the two training runs, classifiers, tables and figures).")


def main(argv):
    del argv
    start()
    results = run_experiment(FLAGS.config, FLAGS.workdir)
    print(json.dumps({"table2": results["table2"], "wall_s": results["wall_s"]}))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
