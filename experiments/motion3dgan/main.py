"""Trains Motion3DGAN and samples every expression label.

    python -m experiments.motion3dgan.main --config=jaxface/configs/motion3dgan.py \
        --workdir=workdirs/motion3dgan

Re-running with the same ``--workdir`` resumes from the last checkpoint.
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.motion3dgan.experiment import train_and_evaluate

FLAGS = flags.FLAGS
define_flags("Work directory (checkpoints, metrics, samples).")


def main(argv):
    del argv
    start()
    results = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps({k: results[k] for k in ("steps", "train_time_s",
                                              "nearest_label_agreement")}, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
