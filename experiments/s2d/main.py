"""Trains and evaluates S2D-Dec.

    python -m experiments.s2d.main --config=jaxface/configs/s2d.py \
        --workdir=workdirs/s2d [--config.protocol=expression --config.fold=2]

Re-running with the same ``--workdir`` resumes from the last checkpoint.
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.s2d.experiment import train_and_evaluate

FLAGS = flags.FLAGS
define_flags("Work directory (checkpoints, metrics, results).")


def main(argv):
    del argv
    start()
    results = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps(results["test"], indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
