"""Runs the paper's Table 3 (classification accuracy and FID of generated 4D expressions).

    python -m experiments.motion3dgan.table3 \
        --config=jaxface/configs/motion3dgan.py:cpu --workdir=workdirs/m3d_table3 \
        [--results=experiments/motion3dgan/results] [--name=table3]

Trains S2D-Dec, Motion3DGAN, the LSTM baseline and the expression classifier (each resumable
inside the work directory), then writes ``table3.md`` and ``table3.json`` there and, with
``--results``, copies both to that folder as ``<name>.md`` and ``<name>.json``.
"""

import json
import os
import shutil

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.motion3dgan.evaluate import run_table3

FLAGS = flags.FLAGS
define_flags("Work directory (per-model runs, generated sequences).")
flags.DEFINE_string("results", None, "Folder to copy table3.md and table3.json into.")
flags.DEFINE_string("name", "table3", "File name (without suffix) of the copies in --results.")


def main(argv):
    del argv
    start()
    results = run_table3(FLAGS.config, FLAGS.workdir)
    if FLAGS.results:
        os.makedirs(FLAGS.results, exist_ok=True)
        for suffix in (".md", ".json"):
            shutil.copyfile(os.path.join(FLAGS.workdir, "table3" + suffix),
                            os.path.join(FLAGS.results, FLAGS.name + suffix))
    print(json.dumps({"wall_s": results["wall_s"], "stage_wall_s": results["stage_wall_s"]}))
    with open(os.path.join(FLAGS.workdir, "table3.md")) as f:
        print(f.read())


def run():
    app.run(main)


if __name__ == "__main__":
    run()
