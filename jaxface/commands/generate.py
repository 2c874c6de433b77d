"""``jaxface generate``: a 3D face performing an expression, as a 30-frame mesh sequence.

Examples::

    jaxface generate --expression mouth_open --out out/
    jaxface generate --neutral face.ply --expression high_smile --samples 3 --seed 1 --out out/
    jaxface generate --neutral face.obj --expression eyebrow --format obj --out out/

Motion3DGAN samples the motion of 68 landmarks for the expression; S2D-Dec turns every frame's
landmark displacement into a dense displacement of the neutral face. The neutral face (metres)
must have the models' template topology; without ``--neutral`` the models' default neutral face
(a procedural identity they were not trained on) is used. Expressions: the 12 CoMA classes
(bareteeth, cheeks_in, eyebrow, high_smile, lips_back, lips_up, mouth_down, mouth_extreme,
mouth_middle, mouth_open, mouth_side, mouth_up).

Output: ``OUT/sample_<k>/frame_<t>.<ply|obj>`` (30 frames per sample), ``OUT/neutral.<fmt>``,
a contact sheet ``OUT/preview.png`` (samples x frames; skin that moved is tinted red), an
animation ``OUT/preview.gif`` and ``OUT/generation.json``.

The first run without ``--models`` trains small models on the embedded procedural face set
(a few minutes on a CPU; ``--recipe quality`` trains longer, about half an hour) and caches them
in ``$JAXFACE_CACHE_DIR/models`` (default ``~/.cache/jaxface/models``). ``--models`` takes a
model folder, or a cache folder to look in (and train into).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable

import numpy as np

__all__ = ["PREVIEW_FRAMES", "motion_colors", "register", "render_preview", "run"]

#: Frames shown in the contact sheet.
PREVIEW_FRAMES = (0, 6, 12, 18, 24, 29)


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``generate`` sub-command to ``subparsers`` and returns its parser."""
    parser = subparsers.add_parser(
        "generate",
        help="generate a 4D expression (mesh sequence) of a neutral face",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("--expression", required=True, help="expression name, e.g. mouth_open")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument(
        "--neutral", default=None,
        help="neutral face (.ply or .obj) with the models' template topology (default: the "
        "models' own neutral face)",
    )
    parser.add_argument("--samples", type=int, default=1, help="number of different motions")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply", help="mesh format")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--models", default=None,
        help="model folder, or a cache folder holding (or to train) one; default "
        "$JAXFACE_CACHE_DIR/models or ~/.cache/jaxface/models",
    )
    parser.add_argument(
        "--recipe", default=None,
        help="training recipe of the models to look up or train: default (minutes on a CPU), "
        "quality (about half an hour) or tiny (tests); default $JAXFACE_GENERATE_RECIPE or "
        "'default'",
    )
    parser.add_argument("--no-gif", action="store_true", help="skip the animated preview")
    parser.add_argument("--quiet", action="store_true", help="print only the output folder")
    parser.set_defaults(func=run)
    return parser


_SKIN = np.array([0.80, 0.80, 0.82])
_MOTION = np.array([0.85, 0.25, 0.15])


def motion_colors(meshes: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """Per-vertex colours that tint the skin towards red where it moved from the neutral face.

    Args:
      meshes: float ``[..., N, 3]`` frames.
      neutral: float ``[N, 3]`` the neutral face.

    Returns:
      float ``[..., N, 3]`` RGB in ``[0, 1]``: grey where a vertex is at its neutral position, red
      where it moved most (the scale is the largest displacement over all of ``meshes``).
    """
    dist = np.linalg.norm(np.asarray(meshes) - np.asarray(neutral), axis=-1)
    a = np.clip(dist / max(float(dist.max()), 1e-12), 0.0, 1.0)[..., None]
    return (1.0 - a) * _SKIN + a * _MOTION


def render_preview(
    meshes: np.ndarray, faces: np.ndarray, *, neutral: np.ndarray | None = None,
    frames=PREVIEW_FRAMES, size: int = 192, title: str = "",
) -> tuple[np.ndarray, Callable[[], list[np.ndarray]]]:
    """A contact sheet (samples x chosen frames) and the frames of an animation.

    Args:
      meshes: float ``[S, T, N, 3]`` mesh sequences.
      faces: int ``[F, 3]``.
      neutral: float ``[N, 3]``; when given, moving skin is tinted red
        (:func:`motion_colors`), which makes small motions (a brow raise) visible from the front.
      frames: frame indices shown on the sheet.
      size: tile size in pixels.
      title: caption prefix of the tiles.

    Returns:
      ``(sheet uint8 [H, W, 3], animation)``: ``animation()`` renders the T images uint8
      ``[size, S * size, 3]`` when called (frames on the sheet are reused).
    """
    from jaxface.viz import contact_sheet, fit_camera, render_mesh

    meshes = np.asarray(meshes)
    num_samples, num_frames = meshes.shape[:2]
    camera = fit_camera(meshes, size)
    colors = None if neutral is None else motion_colors(meshes, neutral)

    @functools.cache
    def tile(s: int, t: int) -> np.ndarray:  # each frame is rendered once for sheet and GIF
        return render_mesh(meshes[s, t], faces, camera=camera,
                           colors=None if colors is None else colors[s, t])

    frames = [t for t in frames if t < num_frames]
    tiles, labels = [], []
    for s in range(num_samples):
        for t in frames:
            tiles.append(tile(s, t))
            labels.append(f"{title} s{s} t{t}".strip())
    sheet = contact_sheet(tiles, cols=len(frames), labels=labels)

    def animation() -> list[np.ndarray]:
        return [np.concatenate([tile(s, t) for s in range(num_samples)], axis=1)
                for t in range(num_frames)]

    return sheet, animation


def _save_gif(path: str, images: list[np.ndarray], fps: float = 15.0) -> None:
    from PIL import Image

    pil = [Image.fromarray(im) for im in images]
    pil[0].save(path, save_all=True, append_images=pil[1:] + pil[::-1][1:-1],
                duration=int(1000 / fps), loop=0)


def run(args: argparse.Namespace) -> int:
    """Generates the sequences described by ``args``. Returns 0."""
    from jaxface.commands.errors import UserError
    from jaxface.data.procedural import EXPRESSIONS
    from jaxface.files import write_json
    from jaxface.generate import ensure_models, is_bundle, load_generator
    from jaxface.mesh.io import read_mesh, write_mesh, write_sequence
    from jaxface.viz import save_png

    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    t0 = time.perf_counter()
    neutral = faces_in = None
    if args.neutral is not None:
        neutral, faces_in = read_mesh(args.neutral)
    if args.models is not None and not os.path.isdir(args.models):
        raise UserError(f"{args.models}: no such models folder")
    own_bundle = args.models is not None and is_bundle(args.models)
    if not own_bundle and args.expression not in EXPRESSIONS:  # before any training
        raise UserError(
            f"unknown expression {args.expression!r}; choose from {', '.join(EXPRESSIONS)}"
        )
    path = ensure_models(args.models, args.recipe, verbose=not args.quiet)
    generator = load_generator(path)
    if neutral is not None:
        generator.check_neutral(neutral, faces_in, source=args.neutral)
    result = generator.generate(neutral, args.expression, args.samples, args.seed)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    written = []
    for s, meshes in enumerate(result.meshes):
        written += write_sequence(os.path.join(out, f"sample_{s:02d}"), meshes, generator.faces,
                                  fmt=args.format)
    write_mesh(os.path.join(out, f"neutral.{args.format}"), result.neutral, generator.faces)
    sheet, animation = render_preview(result.meshes, generator.faces, neutral=result.neutral,
                                      title=args.expression)
    save_png(os.path.join(out, "preview.png"), sheet)
    if not args.no_gif:
        _save_gif(os.path.join(out, "preview.gif"), animation())
    write_json(os.path.join(out, "generation.json"), {
        "expression": args.expression,
        "label": result.label,
        "samples": args.samples,
        "seed": args.seed,
        "num_frames": int(result.meshes.shape[1]),
        "num_vertices": int(result.meshes.shape[2]),
        "neutral": os.path.abspath(args.neutral) if args.neutral else "models' default neutral",
        "models": path,
        "format": args.format,
        "files": len(written),
        "wall_s": round(time.perf_counter() - t0, 1),
    })
    if args.quiet:
        print(out)
    else:
        print(f"wrote {args.samples} x {result.meshes.shape[1]} frames "
              f"({result.meshes.shape[2]} vertices) of '{args.expression}' to {out} "
              f"(preview.png{'' if args.no_gif else ', preview.gif'}) in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0
