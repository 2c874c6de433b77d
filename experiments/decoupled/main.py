"""Trains the decoupled face GAN and writes a contact sheet and sample metrics.

    python -m experiments.decoupled.main --config=jaxface/configs/decoupled.py:cpu \
        --workdir=workdirs/decoupled

Re-running with the same ``--workdir`` resumes from the last checkpoint. The run directory is
what ``jaxface face3d sample | transfer | fit --model`` loads.
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.decoupled.experiment import train_and_sample

FLAGS = flags.FLAGS
define_flags("Work directory (checkpoints, metrics, contact sheet, results).")


def main(argv):
    del argv
    start()
    results = train_and_sample(FLAGS.config, FLAGS.workdir)
    print(json.dumps({"steps": results["steps"], "train_time_s": results["train_time_s"],
                      "diversity_mm": results["diversity_mm"],
                      "specificity_mm": results["specificity_mm"]}))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
