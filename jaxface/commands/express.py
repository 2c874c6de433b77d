"""``jaxface express``: a neutral face performing an expression along the intensity curve you ask.

Examples::

    jaxface express --model workdirs/express/proposed --expression happy --out out/
    jaxface express --model RUN --neutral face.ply --expression surprise --intensity 0.8 \\
        --onset 10 --apex 30 --offset 50 --out out/
    jaxface express --model RUN --expression sad --curve 0:0,12:0.3,30:1,70:0.6,90:0 --out out/

The model (Potamias et al., ECCV 2020) reads a label signal, the expression's one-hot times an
intensity curve, with an LSTM and decodes every frame into a displacement of the neutral face.
The curve is 0 until ``--onset``, rises linearly to 1 at ``--apex``, stays there until
``--offset`` and falls back to 0 at ``--end`` (default: as long after the offset as the rise
took); ``--curve`` draws it instead through ``frame:value`` points. ``--intensity`` scales it
(eq. 6 of the paper: 0.5 is a typical performance of the training data, 1 a strong one).
``--frames`` sets the length (default: enough for the curve, at least the training length).

``--model`` is a trained run folder (``<workdir>/proposed`` of ``python -m
experiments.express.main``). The neutral face must have the model's template topology, in
metres (``--units mm`` or ``cm`` rescale it and the output); without ``--neutral`` the
template's own face is used.

Output: ``OUT/sequence/frame_<t>.<ply|obj>``, ``OUT/expression.glb`` (the sequence as one
animated glTF 2.0 file, in metres, at ``--fps``), ``OUT/neutral.<fmt>``, a contact sheet
``OUT/preview.png``, an animation ``OUT/preview.gif``, ``OUT/curve.png`` (the requested curve
and the generated motion's magnitude per frame) and ``OUT/expression.json`` (the curve, the
magnitude and their correlation). Everything is written into a staging folder that replaces
``OUT`` when complete; an ``OUT`` that holds earlier results is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from jaxface.commands.errors import UserError
from jaxface.commands.output import UNITS
from jaxface.commands.parsers import add_parser

__all__ = ["parse_curve", "register", "run"]

#: Default frame rate of the output (the paper's training data: 60 fps sampled every 5th frame).
FPS = 12.0


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``express`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "express",
        "a neutral face performing an expression along a chosen intensity curve",
        __doc__,
    )
    parser.add_argument("--model", required=True, help="trained run folder")
    parser.add_argument("--expression", required=True, help="expression name, e.g. happy")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--neutral", default=None,
                        help="neutral face (.ply or .obj) with the model's template topology")
    parser.add_argument("--units", choices=tuple(UNITS), default="m",
                        help="units of --neutral and of the output meshes; default m")
    parser.add_argument("--intensity", type=float, default=1.0,
                        help="apex intensity in [0, 1] (default 1)")
    parser.add_argument("--onset", type=int, default=None, help="frame where the rise starts")
    parser.add_argument("--apex", type=int, default=None, help="frame where the apex starts")
    parser.add_argument("--offset", type=int, default=None, help="frame where the fall starts")
    parser.add_argument("--end", type=int, default=None,
                        help="frame where the face is neutral again")
    parser.add_argument("--curve", default=None,
                        help="drawn curve: comma-separated frame:value points, values in [0, 1]")
    parser.add_argument("--frames", type=int, default=None, help="sequence length")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply", help="mesh format")
    parser.add_argument("--fps", type=float, default=FPS,
                        help=f"frame rate of the .glb and the GIF (default {FPS:g})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that holds earlier results")
    parser.add_argument("--no-gif", action="store_true", help="skip the animated preview")
    parser.add_argument("--quiet", action="store_true", help="print only the output folder")
    parser.set_defaults(func=run)
    return parser


def parse_curve(text: str) -> tuple[list[float], list[float]]:
    """``"0:0,10:0.5,30:1"`` -> ``([0, 10, 30], [0, 0.5, 1])``.

    Raises:
      UserError: a point that is not ``frame:value``.

    Example:
      >>> parse_curve("0:0, 12:0.5,30:1")
      ([0.0, 12.0, 30.0], [0.0, 0.5, 1.0])
    """
    frames, values = [], []
    for item in text.split(","):
        parts = item.strip().split(":")
        try:
            if len(parts) != 2:
                raise ValueError
            frames.append(float(parts[0]))
            values.append(float(parts[1]))
        except ValueError:
            raise UserError(f"--curve: {item.strip()!r} is not a frame:value point "
                            "(e.g. 0:0,10:0.5,30:1)") from None
    return frames, values


def _curve(args: argparse.Namespace, default_frames: int) -> np.ndarray:
    from jaxface.express.signal import Phases, curve_from_points, intensity_curve

    timing = [args.onset, args.apex, args.offset, args.end]
    if args.curve is not None:
        if any(v is not None for v in timing):
            raise UserError("--curve replaces --onset/--apex/--offset/--end; give one or the "
                            "other")
        frames, values = parse_curve(args.curve)
        length = args.frames or max(default_frames, int(np.ceil(frames[-1])) + 1)
        try:
            return curve_from_points(length, frames, values)
        except ValueError as err:
            raise UserError(f"--curve: {err}") from None
    given = [v is not None for v in timing[:3]]
    if any(given) and not all(given):
        raise UserError("give --onset, --apex and --offset together (and optionally --end)")
    if all(given):
        try:
            phases = Phases.from_user(args.onset, args.apex, args.offset, args.end)
        except ValueError as err:
            raise UserError(str(err).replace("phases", "--onset/--apex/--offset/--end")) from None
        length = args.frames or max(default_frames, phases.end + 1)
    else:
        length = args.frames or default_frames
        phases = Phases.default(length)
    return intensity_curve(length, phases)


def run(args: argparse.Namespace) -> int:
    """Writes the sequence described by ``args``. Returns 0."""
    from jaxface.commands.generate import render_preview, save_gif
    from jaxface.commands.output import check_output, staged_output
    from jaxface.eval.plots import plot_curves
    from jaxface.express.inference import load_expression_model
    from jaxface.express.signal import motion_magnitude
    from jaxface.files import write_json
    from jaxface.mesh.gltf import write_glb
    from jaxface.mesh.io import write_mesh, write_sequence
    from jaxface.train import CheckpointError
    from jaxface.viz import save_png

    t0 = time.perf_counter()
    if not 0.0 <= args.intensity <= 1.0:
        raise UserError(f"--intensity must be in [0, 1], got {args.intensity}")
    if args.frames is not None and not 2 <= args.frames <= 10000:
        raise UserError(f"--frames must be between 2 and 10000, got {args.frames}")
    if not 0 < args.fps < float("inf"):
        raise UserError(f"--fps must be a positive number, got {args.fps}")
    out = check_output(args.out, args.overwrite)
    if not os.path.isdir(args.model):
        raise UserError(f"{args.model}: no such model folder (train one with python -m "
                        "experiments.express.main)")
    try:
        model = load_expression_model(args.model)
    except (FileNotFoundError, CheckpointError) as err:
        raise UserError(str(err)) from None
    try:
        model.label(args.expression)
    except ValueError as err:
        raise UserError(str(err)) from None
    curve = _curve(args, model.info.num_frames)
    metres = np.float32(UNITS[args.units])
    if args.neutral is not None:
        neutral = model.read_neutral(args.neutral) * metres
    else:
        neutral = model.info.vertices.astype(np.float32)
    frames = model.animate(neutral, args.expression, intensity=args.intensity, curve=curve)
    magnitude = 1000.0 * motion_magnitude(frames)
    r = float(np.corrcoef(curve, magnitude)[0, 1]) if np.std(curve) > 0 and np.std(
        magnitude) > 0 else float("nan")
    faces = model.info.faces
    with staged_output(out, args.overwrite) as staging:
        shown = frames / metres
        write_sequence(os.path.join(staging, "sequence"), shown, faces, fmt=args.format)
        write_mesh(os.path.join(staging, f"neutral.{args.format}"), neutral / metres, faces)
        write_glb(os.path.join(staging, "expression.glb"), frames, faces, args.fps,
                  name=args.expression)
        picks = tuple(np.unique(np.linspace(0, len(frames) - 1, 6).round().astype(int)))
        sheet, animation = render_preview(shown[None], faces, neutral=neutral / metres,
                                          frames=picks, title=args.expression)
        save_png(os.path.join(staging, "preview.png"), sheet)
        if not args.no_gif:
            save_gif(os.path.join(staging, "preview.gif"), animation(), fps=args.fps)
        t = np.arange(len(curve))
        peak = float(magnitude.max()) or 1.0
        plot_curves({f"{args.expression}, intensity {args.intensity:g} (r = {r:.3f})": {
            "generated motion": (t, magnitude),
            "requested curve (scaled to the peak)": (t, curve * peak)}},
            os.path.join(staging, "curve.png"), xlabel="frame", ylabel="mean displacement (mm)",
            cols=1, panel_size=(6.0, 3.2),
            styles={"requested curve (scaled to the peak)": "k--"})
        write_json(os.path.join(staging, "expression.json"), {
            "expression": args.expression, "intensity": args.intensity,
            "num_frames": len(curve), "curve": curve.tolist(),
            "magnitude_mm": magnitude.tolist(), "correlation": r,
            "model": os.path.abspath(args.model),
            "neutral": os.path.abspath(args.neutral) if args.neutral else "model's template",
            "units": args.units, "format": args.format, "fps": args.fps,
            "wall_s": round(time.perf_counter() - t0, 2)})
    if args.quiet:
        print(out)
    else:
        print(f"wrote {len(frames)} frames ({frames.shape[1]} vertices) of '{args.expression}' "
              f"at intensity {args.intensity:g} to {out} (motion follows the curve: r = {r:.3f}) "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0
