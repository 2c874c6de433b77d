"""Trains Motion3DGAN and samples every expression label.

    python -m experiments.motion3dgan.main --config=experiments/motion3dgan/configs/default.py \
        --workdir=workdirs/motion3dgan

Re-running with the same ``--workdir`` resumes from the last checkpoint.
"""

import json

import jax
from absl import app, flags, logging
from ml_collections import config_flags

from jaxface.motion3dgan.train import train_and_evaluate
from jaxface.train import initialize_distributed

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Experiment configuration file.", lock_config=True)
flags.DEFINE_string("workdir", None, "Work directory (checkpoints, metrics, samples).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    del argv
    if not FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)  # orbax is chatty at INFO
    initialize_distributed()
    logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
                 jax.device_count())
    results = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    print(json.dumps({k: results[k] for k in ("steps", "train_time_s",
                                              "nearest_label_agreement")}, indent=2))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
