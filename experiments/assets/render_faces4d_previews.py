r"""Renders preview contact sheets of the faces4d data and of the template landmarks.

With ``--version 1.0.0`` (the default; the procedural faces of faces4d 1.x) it writes, under
``--out`` (default ``datasets_tfds/faces4d/renders``):

* ``template_landmarks.png``: the 468-vertex template with its 68 iBUG landmarks numbered;
* ``subject_<k>.png`` for the first ``--subjects`` subjects: the neutral face and the apex frame of
  each of the 12 expressions (13 labelled panels), frontal view;
* ``subject_<k>_side.png``: the same from 40 degrees to the side;
* ``sequence_<expression>.png``: every ``--stride``-th frame of subject 0's sequence;
* ``displacement_subject_0.png``: apex-minus-neutral displacement magnitude (mm) of subject 0's
  expressions as heat maps on the neutral face, with a colour bar.

With ``--version 2.0.0`` (the ARKit performances of faces4d 2.x,
:mod:`jaxface.data.performances`, CoMA-scale configuration, 6990 vertices) it writes, under
``--out`` (default ``datasets_tfds/faces4d/renders/2.0.0``):

* ``subject_<k>.png`` for the first ``--subjects`` subjects (subject 0 is MediaPipe's canonical
  face): one row per take, the neutral face and the apex frame of each of the 12 expressions;
* ``subject_<k>_side.png``: take 0 of the same from 40 degrees to the side;
* ``sequence_<expression>.png``: every ``--stride``-th frame of subject 1's take 0;
* ``displacement_subject_1.png``: apex-minus-neutral displacement magnitude (mm) of subject 1's
  take 0 as heat maps on its neutral face.

Run from the repository root (about a minute per version on two CPU cores)::

    python -m experiments.assets.render_faces4d_previews --subjects 3
    python -m experiments.assets.render_faces4d_previews --version 2.0.0 --subjects 3
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig, ProceduralFaces
from jaxface.data.template import load_face_template
from jaxface.viz.render import (
    contact_sheet,
    draw_points,
    fit_camera,
    project_points,
    render_mesh,
    save_png,
)

__all__ = [
    "main",
    "render_displacement_sheet",
    "render_sequence_strip",
    "render_subject_sheet",
    "render_takes_sheet",
    "render_template_landmarks",
]


def render_template_landmarks(size: int = 900) -> np.ndarray:
    """The base template with numbered iBUG-68 landmarks: ``uint8 [size, size, 3]``."""
    t = load_face_template(0)
    cam = fit_camera(t.vertices, size)
    image = render_mesh(t.vertices, t.faces, camera=cam)
    pixels, _ = project_points(t.landmark_positions(), cam)
    return draw_points(image, pixels, labels=[str(k) for k in range(68)])


def render_subject_sheet(
    data: ProceduralFaces, subject: int, *, size: int = 240, yaw: float = 0.0
) -> np.ndarray:
    """Neutral + apex of every expression of one subject as a labelled contact sheet."""
    faces = data.template.faces
    neutral = data.neutral(subject)
    cam = fit_camera(neutral, size, yaw=yaw, margin=0.12)
    images = [render_mesh(neutral, faces, camera=cam)]
    labels = [f"{data.subject_names[subject]} neutral"]
    for name in data.expressions:
        seq = data.sequence(subject, name)
        apex = data.apex_frame(subject, name)
        images.append(render_mesh(seq[apex], faces, camera=cam))
        labels.append(f"{name} (apex {apex}/{len(seq)})")
    return contact_sheet(images, 7, labels=labels)


def render_sequence_strip(
    data: ProceduralFaces, subject: int, expression: str, *, size: int = 160, stride: int = 10
) -> np.ndarray:
    """Every ``stride``-th frame of one sequence as a labelled contact sheet."""
    seq = data.sequence(subject, expression)
    cam = fit_camera(seq, size, margin=0.1)
    idx = list(range(0, len(seq), stride))
    images = [render_mesh(seq[i], data.template.faces, camera=cam) for i in idx]
    return contact_sheet(images, 8, labels=[f"{expression} t={i}" for i in idx])


def render_displacement_sheet(
    data: ProceduralFaces | PerformanceFaces, subject: int, *, size: int = 200
) -> np.ndarray:
    """Apex displacement magnitude (mm) of every expression as heat maps on the neutral face."""
    faces = data.template.faces
    neutral = data.neutral(subject)
    cam = fit_camera(neutral, size, margin=0.08)
    mags = []
    for name in data.expressions:
        seq = data.sequence(subject, name)
        mags.append(1e3 * np.linalg.norm(seq[data.apex_frame(subject, name)] - neutral, axis=-1))
    vmax = float(np.ceil(max(m.max() for m in mags)))
    images = [
        render_mesh(neutral, faces, camera=cam, scalars=m, vmin=0.0, vmax=vmax, colorbar=True,
                    colorbar_label="mm")
        for m in mags
    ]
    return contact_sheet(images, 6, labels=list(data.expressions))


def render_takes_sheet(
    data: PerformanceFaces, subject: int, *, size: int = 200, yaw: float = 0.0,
    takes: int | None = None,
) -> np.ndarray:
    """Neutral + apex of every expression, one row per take, as a labelled contact sheet."""
    faces = data.template.faces
    neutral = data.neutral(subject)
    cam = fit_camera(neutral, size, yaw=yaw, margin=0.12)
    images, labels = [], []
    for take in range(data.config.takes if takes is None else takes):
        images.append(render_mesh(neutral, faces, camera=cam))
        labels.append(f"{data.subject_names[subject]} take {take}")
        for name in data.expressions:
            seq = data.sequence(subject, name, take)
            apex = data.apex_frame(subject, name, take)
            images.append(render_mesh(seq[apex], faces, camera=cam))
            labels.append(f"{name} ({apex}/{len(seq)})")
    return contact_sheet(images, 1 + len(data.expressions), labels=labels)


def _main_v2(args: argparse.Namespace) -> None:
    out = args.out or os.path.join("datasets_tfds", "faces4d", "renders", "2.0.0")
    os.makedirs(out, exist_ok=True)
    data = PerformanceFaces(PerformanceConfig(seed=args.seed))
    for s in range(args.subjects):
        save_png(os.path.join(out, f"subject_{s}.png"), render_takes_sheet(data, s))
        save_png(
            os.path.join(out, f"subject_{s}_side.png"),
            render_takes_sheet(data, s, yaw=40.0, takes=1),
        )
    # Subject 1 is the first procedural identity; the render helpers take its take 0.
    for name in ("mouth_open", "high_smile"):
        seq = data.sequence(1, name, 0)
        cam = fit_camera(seq, 160, margin=0.1)
        idx = list(range(0, len(seq), args.stride))
        images = [render_mesh(seq[i], data.template.faces, camera=cam) for i in idx]
        save_png(
            os.path.join(out, f"sequence_{name}.png"),
            contact_sheet(images, 8, labels=[f"{name} t={i}" for i in idx]),
        )
    save_png(
        os.path.join(out, "displacement_subject_1.png"), render_displacement_sheet(data, 1)
    )
    print(f"wrote faces4d 2.0.0 previews to {out}")


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--version", choices=("1.0.0", "2.0.0"), default="1.0.0")
    parser.add_argument("--out", default=None, help="output folder (default: see above)")
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--stride", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.version == "2.0.0":
        _main_v2(args)
        print(f"done in {time.perf_counter() - start:.1f} s")
        return
    args.out = args.out or os.path.join("datasets_tfds", "faces4d", "renders")
    os.makedirs(args.out, exist_ok=True)
    save_png(os.path.join(args.out, "template_landmarks.png"), render_template_landmarks())
    data = ProceduralFaces(ProceduralConfig(seed=args.seed))
    for s in range(args.subjects):
        save_png(os.path.join(args.out, f"subject_{s}.png"), render_subject_sheet(data, s))
        save_png(
            os.path.join(args.out, f"subject_{s}_side.png"),
            render_subject_sheet(data, s, yaw=40.0),
        )
    for name in ("mouth_open", "high_smile"):
        save_png(
            os.path.join(args.out, f"sequence_{name}.png"),
            render_sequence_strip(data, 0, name, stride=args.stride),
        )
    save_png(
        os.path.join(args.out, "displacement_subject_0.png"), render_displacement_sheet(data, 0)
    )
    print(f"wrote previews of {len(EXPRESSIONS)} expressions to {args.out} "
          f"in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
