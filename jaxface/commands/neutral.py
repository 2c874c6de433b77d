"""``jaxface neutral``: a neutral 3D face in the template's topology from a photograph.

Examples::

    jaxface neutral --photo face.jpg --out out/
    jaxface neutral --photo face.jpg --level 2 --out out/

MediaPipe's FaceLandmarker finds the face (its model ships with jaxface; MediaPipe itself is the
extra ``pip install 'jaxface[photo]'``), its 468 landmarks are aligned to the face template and
the expression is removed by fitting the 52 ARKit shapes with smoothness, symmetry and
closed-lip priors on the neutral face (:mod:`jaxface.data.photo`). The face is in metres, in
the template's frame and size (one photo cannot tell a face's absolute size).

Output: ``OUT/neutral.ply`` and ``OUT/neutral.obj`` (the neutral face at ``--level``: 0 gives
468 vertices, 1 gives 1790, the level of ``jaxface generate``'s models, 2 gives 6990),
``OUT/landmarks.png`` (the photo with the detected landmarks), ``OUT/preview.png`` (the face
region beside renders of the neutral) and ``OUT/neutral.json`` (the fitted ARKit weights,
MediaPipe's blendshape scores, the fit residual, the mouth-corner lift before and after, the
timings). Everything is written into a staging folder that replaces ``OUT`` when complete.
``jaxface generate --photo face.jpg --expression high_smile --out out/`` animates the same
neutral at the level of its models.
"""

from __future__ import annotations

import argparse
import os
import time

from jaxface.commands.parsers import add_parser

__all__ = ["fit_photo", "register", "run", "weights_record"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``neutral`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "neutral",
        "fit a neutral 3D face (template topology) to a photograph",
        __doc__,
    )
    parser.add_argument("--photo", required=True, help="image file with one face (JPEG, PNG, ...)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--level", type=int, choices=(0, 1, 2), default=1,
                        help="template level of the mesh: 0 (468 vertices), 1 (1790, the "
                        "level of jaxface generate's models; default) or 2 (6990)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that holds earlier results")
    parser.add_argument("--quiet", action="store_true", help="print only the output folder")
    parser.set_defaults(func=run)
    return parser


def fit_photo(photo: str, num_vertices: int = 468):
    """Reads ``photo`` and fits its neutral face at the template level with ``num_vertices``.

    Args:
      photo: the ``--photo`` file.
      num_vertices: the vertex count of the level wanted (468, 1790 or 6990); models that use
        the face may be loaded later and the fit lifted with ``result.at_level``.

    Returns:
      ``(image uint8 [H, W, 3], result)``, ``result`` a
      :class:`jaxface.data.photo.PhotoNeutral`.

    Raises:
      jaxface.data.photo.PhotoError: a missing or unreadable image, no face found, MediaPipe not
        installed (the message names the ``pip`` command).
    """
    from jaxface.data.photo import photo_to_neutral, read_photo, template_level

    level = template_level(num_vertices)
    image = read_photo(photo)
    return image, photo_to_neutral(image, level, source=photo)


def weights_record(result) -> dict:
    """The fit of a :class:`jaxface.data.photo.PhotoNeutral` as JSON-ready values.

    Returns:
      ``weights`` and ``mediapipe_scores`` (ARKit name -> value, rounded to 4 decimals),
      ``residual_mm``, ``level``, ``num_vertices``, ``mouth_corner_lift_mm`` (photo, neutral,
      template) and MediaPipe's ``neutral_score``.
    """
    from jaxface.data.photo import mouth_corner_lift
    from jaxface.data.template import load_face_template

    names = result.names
    return {
        "residual_mm": round(float(result.residual_mm), 4),
        "level": int(result.level),
        "num_vertices": int(result.vertices.shape[0]),
        "weights": {n: round(float(w), 4) for n, w in zip(names, result.weights, strict=True)},
        "mediapipe_scores": {n: round(float(w), 4)
                             for n, w in zip(names, result.detection.scores, strict=True)},
        "mediapipe_neutral_score": round(float(result.detection.neutral_score), 4),
        "mouth_corner_lift_mm": {
            "photo": round(mouth_corner_lift(result.aligned), 3),
            "neutral": round(mouth_corner_lift(result.base_vertices), 3),
            "template": round(mouth_corner_lift(load_face_template(0).vertices), 3),
        },
        "image_size": list(result.detection.image_size),
    }


def run(args: argparse.Namespace) -> int:
    """Fits and writes the neutral face described by ``args``. Returns 0."""
    from jaxface.commands.output import check_output, staged_output
    from jaxface.data.photo import overlay_landmarks, photo_to_neutral, read_photo, render_beside
    from jaxface.files import write_json
    from jaxface.mesh.io import write_mesh
    from jaxface.viz import save_png

    t0 = time.perf_counter()
    out = check_output(args.out, args.overwrite)
    image = read_photo(args.photo)
    t1 = time.perf_counter()
    result = photo_to_neutral(image, args.level, source=args.photo)
    t2 = time.perf_counter()
    with staged_output(out, args.overwrite) as staging:
        for fmt in ("ply", "obj"):
            write_mesh(os.path.join(staging, f"neutral.{fmt}"), result.vertices, result.faces)
        save_png(os.path.join(staging, "landmarks.png"),
                 overlay_landmarks(image, result.detection))
        save_png(os.path.join(staging, "preview.png"), render_beside(image, result))
        record = {"photo": os.path.abspath(args.photo), **weights_record(result)}
        record["timings_s"] = {"read": round(t1 - t0, 3), "fit": round(t2 - t1, 3),
                               "total": round(time.perf_counter() - t0, 3)}
        write_json(os.path.join(staging, "neutral.json"), record)
    if args.quiet:
        print(out)
    else:
        lift = record["mouth_corner_lift_mm"]
        print(f"wrote the neutral face ({result.vertices.shape[0]} vertices, residual "
              f"{result.residual_mm:.2f} mm; mouth corners {lift['photo']:+.1f} -> "
              f"{lift['neutral']:+.1f} mm above the mouth centre) to {out} in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0
