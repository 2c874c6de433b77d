r"""Renders preview sheets of faces4d's six basic expressions (the ``basic6`` configuration).

Writes, under ``--out`` (default ``datasets_tfds/faces4d/renders/2.0.0``):

* ``basic6_subject_<k>.png`` for the first ``--subjects`` subjects (subject 0 is MediaPipe's
  canonical face): one row per take, the neutral face and the apex frame of happy, sad,
  surprise, angry, disgust and fear, frontal view;
* ``basic6_displacement_subject_1.png``: apex-minus-neutral displacement magnitude (mm) of
  subject 1's take 0 of each expression as heat maps on its neutral face.

Run from the repository root (about half a minute on two CPU cores)::

    python -m experiments.assets.render_basic6_previews --subjects 2
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

from datasets_tfds.faces4d.faces4d import Faces4d
from experiments.assets.render_faces4d_previews import (
    render_displacement_sheet,
    render_takes_sheet,
)
from jaxface.data.performances import PerformanceFaces
from jaxface.viz.render import save_png

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.path.join("datasets_tfds", "faces4d", "renders",
                                                      "2.0.0"))
    parser.add_argument("--subjects", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    config = next(c for c in Faces4d.BUILDER_CONFIGS if c.name == "basic6").performance
    data = PerformanceFaces(dataclasses.replace(config, seed=args.seed))
    for s in range(args.subjects):
        save_png(os.path.join(args.out, f"basic6_subject_{s}.png"), render_takes_sheet(data, s))
    save_png(
        os.path.join(args.out, "basic6_displacement_subject_1.png"),
        render_displacement_sheet(data, 1),
    )
    print(f"wrote basic6 previews to {args.out} in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
