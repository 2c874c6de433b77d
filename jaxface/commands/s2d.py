"""``jaxface animate | transfer | neutralize``: use a trained S2D-Dec on your meshes or videos.

Examples::

    jaxface animate --model RUN --neutral face.ply --landmarks target_landmarks.npy --out out/
    jaxface transfer --model RUN --source source_frames/ --target face.ply --out out/
    jaxface transfer --video clip.mp4 --out out/
    jaxface transfer --video clip.mp4 --neutral face.ply --out out/
    jaxface transfer --video clip.mp4 --photo face.jpg --start 2 --max-frames 90 --out out/
    jaxface neutralize --model RUN --mesh smiling.ply --out neutral.ply

``RUN`` is a work directory of ``python -m experiments.s2d.main``. Every input mesh must have the
model's template topology (same vertex count and faces) and be in metres (``--units mm`` or
``cm`` rescales the input, and the output is written in the same units); anything else is
refused with one line saying what differs (for a size far from the template's: the factor).
Mesh files are found by suffix in any case (``.ply``, ``.PLY``, ``.obj``, ``.OBJ``). A sequence
is written into a staging folder that replaces ``--out`` when complete; an ``--out`` folder that
holds earlier results is refused unless ``--overwrite`` is given.

``transfer --video clip.mp4`` moves a neutral face with the expressions of the person filmed
(:mod:`jaxface.data.video`, :mod:`jaxface.data.retarget`, :func:`jaxface.generate.drive_face`).
The video is decoded with PyAV and MediaPipe's FaceLandmarker (its model ships with jaxface)
measures the face in every frame, tracking it from frame to frame (``pip install
'jaxface[video]'`` installs both); frames where no face is found are filled from their
neighbours (the count is printed and recorded), and a video with no face at all is refused.
The head's motion is removed (a robust similarity alignment on the vertices expressions move
least), the person's own neutral face is the median of their least expressive frames (by
MediaPipe's blendshape scores), and each frame's expression, ``frame - neutral``, is smoothed
over time (Savitzky-Golay, degree 2, a window of ``--smooth`` seconds, 0.2 by default; 0 turns it
off), carried onto the neutral face in local surface frames (a larger face makes a larger
motion), read at the 68 landmarks and turned into the motion of the whole face by S2D-Dec. The
output plays at the video's frame rate; ``--start`` (seconds) and ``--max-frames`` take a piece.
The face to move is ``--neutral`` (``--target`` is the same flag) or a face fitted to ``--photo``
(as ``jaxface neutral`` fits it), by default the models' default neutral face. ``--model`` is a
model bundle or a trained S2D-Dec run on the face template; by default the models ``jaxface
generate`` uses (the shipped ``default`` ones).

Output of ``--video``: ``OUT/frames/frame_<t>.<ply|obj>`` (one mesh per frame),
``OUT/glb/transfer.glb`` (the sequence as one animated glTF at the video's frame rate,
metres), ``OUT/neutral.<fmt>``, a contact sheet ``OUT/preview.png`` (8 frames spread over the
clip, moving skin tinted red), an animation ``OUT/preview.gif`` (at most 60 frames, in real
time) and ``OUT/transfer.json`` (video, frame rate, frames taken and filled, the neutral frames,
the smoothing, the models, the mouth-corner lift per frame).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from jaxface.commands.output import UNITS
from jaxface.commands.parsers import plain

__all__ = ["GIF_FRAMES", "SHEET_FRAMES", "mesh_files", "read_input_mesh", "register",
           "render_video_preview"]


def _common(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    parser.add_argument(
        "--model", required=model_required,
        help="trained S2D-Dec run directory" if model_required else
        "trained S2D-Dec run directory (--source); with --video also a model bundle, by default "
        "the models jaxface generate uses")
    parser.add_argument("--units", choices=tuple(UNITS), default="m",
                        help="units of the input meshes (and of the output); default m")


def _out_sequence(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder for the mesh sequence")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that holds earlier results")


def mesh_files(folder: str) -> list[str]:
    """The ``.ply``/``.obj`` files of a folder (any case of the suffix), sorted by name."""
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, name) for name in os.listdir(folder)
                  if os.path.splitext(name)[1].lower() in (".ply", ".obj")
                  and os.path.isfile(os.path.join(folder, name)))


def register(subparsers) -> None:
    """Adds ``animate``, ``transfer`` and ``neutralize``."""
    p = subparsers.add_parser(
        "animate", help="deform a neutral face to follow landmarks (S2D-Dec)",
        description="Writes one mesh per frame of the target landmark sequence.",
    )
    _common(p)
    p.add_argument("--neutral", required=True, help="neutral face mesh (.ply/.obj)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--landmarks", help=".npy of target landmarks [T, 68, 3] (or [68, 3])")
    src.add_argument("--displacements",
                     help=".npy of S2D landmark displacements [T, 204] (normalised)")
    _out_sequence(p)
    p.set_defaults(func=_animate)

    paragraphs = plain(__doc__).split("\n\n")
    p = subparsers.add_parser(
        "transfer",
        help="transfer the motion of a mesh sequence, or of a face video, to another face "
        "(S2D-Dec)",
        description="With --source, the source sequence's first frame is taken as its neutral "
        "face. With --video, the filmed person's expressions move the neutral face.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(p for p in paragraphs if "--video" in p),
    )
    _common(p, model_required=False)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--source", help="folder of the source sequence's meshes (sorted by name)")
    source.add_argument("--video", help="video of one face (mp4, mov, mkv, webm, ...)")
    face = p.add_mutually_exclusive_group()
    face.add_argument("--target", "--neutral", dest="target", default=None, metavar="MESH",
                      help="neutral face mesh to move (required with --source; with --video "
                      "default: the models' default neutral face)")
    face.add_argument("--photo", default=None,
                      help="with --video: a photograph to fit the neutral face to")
    p.add_argument("--start", type=float, default=0.0,
                   help="with --video: seconds into the video where the piece starts (default 0)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="with --video: at most this many frames (default: to the end)")
    p.add_argument("--smooth", type=float, default=None,
                   help="with --video: smoothing window in seconds (Savitzky-Golay; default "
                   "0.2, 0 turns it off)")
    p.add_argument("--no-gif", action="store_true", help="with --video: skip preview.gif")
    _out_sequence(p)
    p.set_defaults(func=_transfer)

    p = subparsers.add_parser(
        "neutralize", help="remove the expression of a face (S2D-Dec)",
        description="Decodes the landmark displacement towards a neutral reference.",
    )
    _common(p)
    p.add_argument("--mesh", required=True, help="expressive face mesh")
    p.add_argument("--reference", default=None,
                   help="neutral reference mesh (default: the model's template)")
    p.add_argument("--out", required=True, help="output mesh file (.ply/.obj)")
    p.set_defaults(func=_neutralize)


def _load(args):
    from jaxface.s2d.inference import S2DInference

    return S2DInference.load(args.model)


def read_input_mesh(model, path: str, args) -> np.ndarray:
    """A mesh with the model's topology, in metres (``--units``); refuses one far from the
    template's size (naming the ``--units`` that would fit)."""
    from jaxface.commands.errors import UserError
    from jaxface.commands.output import units_hint
    from jaxface.generate import SCALE_TOLERANCE, relative_scale

    vertices = model.read_mesh(path) * np.float32(UNITS[args.units])
    factor = relative_scale(vertices, model.vertices)
    if not 1.0 / SCALE_TOLERANCE <= factor <= SCALE_TOLERANCE:
        hint = units_hint(factor) if args.units == "m" else ""
        raise UserError(f"{path}: scale: the mesh is {factor:.4g} times the size of the model's "
                        f"template; the model works in metres{hint}")
    return vertices


def _write(model, frames: np.ndarray, args) -> None:
    from jaxface.commands.output import staged_output
    from jaxface.mesh.io import write_sequence

    with staged_output(args.out, args.overwrite) as staging:
        paths = write_sequence(staging, frames / np.float32(UNITS[args.units]), model.faces,
                               fmt=args.format)
    print(f"wrote {len(paths)} meshes to {os.path.abspath(args.out)}")


def _read_npy(path: str) -> np.ndarray:
    from jaxface.commands.errors import UserError

    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as err:
        raise UserError(f"{path}: not a numpy .npy array ({err})") from err


def _animate(args) -> int:
    from jaxface.commands.errors import UserError
    from jaxface.commands.output import check_output

    check_output(args.out, args.overwrite)
    model = _load(args)
    neutral = read_input_mesh(model, args.neutral, args)
    if args.landmarks:
        lms = _read_npy(args.landmarks) * UNITS[args.units]
        if lms.shape[-2:] != (68, 3) or lms.ndim not in (2, 3):
            raise UserError(
                f"{args.landmarks}: expected landmarks [T, 68, 3], got {list(lms.shape)}"
            )
        frames = model.animate_to_landmarks(neutral, lms)
    else:
        d = _read_npy(args.displacements)
        if d.ndim != 2 or d.shape[1] != 204:
            raise UserError(f"{args.displacements}: expected displacements [T, 204], got "
                            f"{list(d.shape)}")
        frames = model.animate(neutral, d)
    _write(model, frames, args)
    return 0


def _transfer(args) -> int:
    from jaxface.commands.errors import UserError
    from jaxface.commands.output import check_output

    if args.video is not None:
        return _transfer_video(args)
    extra = [flag for flag, value in (("--photo", args.photo), ("--max-frames", args.max_frames),
                                      ("--smooth", args.smooth)) if value is not None]
    extra += ["--start"] if args.start else []
    extra += ["--no-gif"] if args.no_gif else []
    if extra:
        raise UserError(f"{', '.join(extra)}: only with --video")
    if args.model is None:
        raise UserError("--source needs --model (a trained S2D-Dec run directory)")
    if args.target is None:
        raise UserError("--source needs --target (the neutral face mesh to move)")
    check_output(args.out, args.overwrite)
    model = _load(args)
    files = mesh_files(args.source)
    if len(files) < 2:
        raise UserError(f"{args.source}: expected a folder of at least 2 .ply/.obj meshes, "
                        f"found {len(files)}")
    source = np.stack([read_input_mesh(model, f, args) for f in files])
    target = read_input_mesh(model, args.target, args)
    _write(model, model.transfer(source, target), args)
    return 0


def _neutralize(args) -> int:
    from jaxface.mesh.io import write_mesh

    model = _load(args)
    mesh = read_input_mesh(model, args.mesh, args)
    ref = None if args.reference is None else read_input_mesh(model, args.reference, args)
    write_mesh(args.out, model.neutralize(mesh, ref) / np.float32(UNITS[args.units]), model.faces)
    print(f"wrote {os.path.abspath(args.out)}")
    return 0


#: Frames of the contact sheet, spread evenly over the clip.
SHEET_FRAMES = 8
#: The animated preview holds at most this many frames (every k-th frame, played in real time).
GIF_FRAMES = 60


def render_video_preview(
    meshes: np.ndarray, faces: np.ndarray, neutral: np.ndarray, times_s: np.ndarray, *,
    first_frame: int = 0, size: int = 192,
) -> tuple[np.ndarray, list[np.ndarray], int]:
    """The contact sheet and the animation frames of a driven face.

    Args:
      meshes: float ``[T, N, 3]`` the face per frame.
      faces: int ``[F, 3]``.
      neutral: float ``[N, 3]``; skin that moved from it is tinted red
        (:func:`jaxface.commands.generate.motion_colors`).
      times_s: float ``[T]`` the frames' times in the video, for the captions.
      first_frame: the video's index of frame 0, for the captions.
      size: tile size in pixels.

    Returns:
      ``(sheet uint8 [H, W, 3], animation, step)``: :data:`SHEET_FRAMES` frames spread over the
      clip, captioned with their time; the animation's images ``uint8 [size, size, 3]``, every
      ``step``-th frame (at most :data:`GIF_FRAMES`).
    """
    from jaxface.commands.generate import motion_colors
    from jaxface.viz import contact_sheet, fit_camera, render_mesh

    meshes = np.asarray(meshes)
    num_frames = meshes.shape[0]
    camera = fit_camera(meshes, size)
    colors = motion_colors(meshes, neutral)
    tiles: dict[int, np.ndarray] = {}

    def tile(t: int) -> np.ndarray:
        if t not in tiles:
            tiles[t] = render_mesh(meshes[t], faces, camera=camera, colors=colors[t])
        return tiles[t]

    shown = np.unique(np.linspace(0, num_frames - 1, min(SHEET_FRAMES, num_frames)).round())
    shown = shown.astype(int)
    sheet = contact_sheet([tile(t) for t in shown], cols=min(4, len(shown)),
                          labels=[f"frame {first_frame + t}, {times_s[t]:.2f} s" for t in shown])
    step = -(-num_frames // GIF_FRAMES)
    return sheet, [tile(t) for t in range(0, num_frames, step)], step


def _load_models(args: argparse.Namespace):
    """``(s2d, default neutral [N, 3], record)`` of ``--model`` (a bundle or an S2D-Dec run)."""
    from jaxface.commands.errors import UserError
    from jaxface.generate import bundle_data, find_models, is_bundle, load_generator
    from jaxface.s2d.inference import S2DInference

    if args.model is not None and not os.path.isdir(args.model):
        raise UserError(f"{args.model}: no such model folder")
    run_config = None if args.model is None else os.path.join(args.model, "config.json")
    if run_config is not None and not is_bundle(args.model) and os.path.isfile(run_config):
        s2d = S2DInference.load(args.model)  # a trained S2D-Dec run (else: a model cache)
        return s2d, s2d.vertices, {"s2d_run": os.path.abspath(args.model)}
    choice = find_models(args.model, None, verbose=True)
    generator = load_generator(choice.path)
    data = bundle_data(generator.manifest)
    record = {"path": choice.path, "origin": choice.origin,
              "recipe": generator.manifest.get("recipe"), "packed": generator.packed,
              "dataset": f"{data['name']}/{data['config']}", "dataset_version": data["version"]}
    return generator.s2d, generator.default_neutral, record


def _neutral(args: argparse.Namespace, s2d, default: np.ndarray):
    """``(neutral [N, 3] metres, what it is, photo record or None)``."""
    if args.target is not None:
        return read_input_mesh(s2d, args.target, args), os.path.abspath(args.target), None
    if args.photo is not None:
        from jaxface.commands.neutral import fit_photo, weights_record
        from jaxface.data.photo import template_level

        _, fit = fit_photo(args.photo)
        fit = fit.at_level(template_level(s2d.num_vertices))
        return (fit.vertices, f"fitted to {os.path.abspath(args.photo)}",
                weights_record(fit))
    return np.asarray(default, np.float32), "models' default neutral", None


def _transfer_video(args: argparse.Namespace) -> int:
    """Runs ``transfer --video`` as ``args`` say (module docstring). Returns 0.

    The models and the neutral face are resolved first (so a bad flag is reported before the
    video is read), then the video is read (:func:`jaxface.data.video.read_video_landmarks`),
    its expression tracked (:func:`jaxface.data.retarget.track_expression`) and the face moved
    (:func:`jaxface.generate.drive_face`); the files are written into a staging folder that
    replaces ``--out`` when complete.
    """
    from jaxface.commands.errors import UserError
    from jaxface.commands.generate import output_bytes, save_gif
    from jaxface.commands.output import UNITS, check_output, staged_output
    from jaxface.data.photo import mouth_corner_lift
    from jaxface.data.retarget import POLYORDER, SMOOTHING_S, track_expression
    from jaxface.data.video import read_video_landmarks
    from jaxface.files import free_bytes, write_json
    from jaxface.generate import drive_face
    from jaxface.mesh.gltf import glb_size_bound, write_glb
    from jaxface.mesh.io import write_mesh, write_sequence
    from jaxface.viz import save_png

    t0 = time.perf_counter()
    smooth_s = SMOOTHING_S if args.smooth is None else args.smooth
    if not (np.isfinite(smooth_s) and smooth_s >= 0):
        raise UserError(f"--smooth must be a number of seconds >= 0, got {smooth_s}")
    if not (np.isfinite(args.start) and args.start >= 0):
        raise UserError(f"--start must be a number of seconds >= 0, got {args.start}")
    if args.max_frames is not None and args.max_frames < 2:
        raise UserError(f"--max-frames must be at least 2, got {args.max_frames}")
    if not os.path.isfile(args.video):
        raise UserError(f"{args.video}: no such video file")
    out = check_output(args.out, args.overwrite)
    s2d, default, models = _load_models(args)
    neutral, neutral_what, photo = _neutral(args, s2d, default)
    video = read_video_landmarks(args.video, start=args.start, max_frames=args.max_frames)
    print(f"{args.video}: {video.num_frames} frames at {video.fps:.3f} fps, a face found in "
          f"{video.num_frames - video.filled}; {video.filled} filled from their neighbours")
    track = track_expression(video.metric(), video.scores, video.fps, smoothing_s=smooth_s)
    driven = drive_face(s2d, neutral, track)
    metres = np.float32(UNITS[args.units])
    num_frames, num_vertices = driven.meshes.shape[:2]
    num_faces = int(s2d.faces.shape[0])
    needed = (output_bytes(1, num_frames, num_vertices, num_faces, args.format)
              + glb_size_bound(num_frames, num_vertices, num_faces))
    free = free_bytes(out)
    if free is not None and needed > free:
        raise UserError(f"{out}: {num_frames} frames need about {needed:,} bytes, {free:,} are "
                        "free; take fewer --max-frames or free space")
    lift = [round(mouth_corner_lift(m) - mouth_corner_lift(driven.neutral), 3)
            for m in driven.meshes]
    with staged_output(out, args.overwrite) as staging:
        files = write_sequence(os.path.join(staging, "frames"), driven.meshes / metres,
                               s2d.faces, fmt=args.format)
        write_mesh(os.path.join(staging, f"neutral.{args.format}"), driven.neutral / metres,
                   s2d.faces)
        glb = write_glb(os.path.join(staging, "glb", "transfer.glb"), driven.meshes, s2d.faces,
                        video.fps, name="transfer")
        sheet, images, step = render_video_preview(driven.meshes, s2d.faces, driven.neutral,
                                                   video.times_s, first_frame=video.first_frame)
        save_png(os.path.join(staging, "preview.png"), sheet)
        if not args.no_gif:
            save_gif(os.path.join(staging, "preview.gif"), images, fps=video.fps / step,
                     bounce=False)
        write_json(os.path.join(staging, "transfer.json"), {
            "video": os.path.abspath(args.video),
            "fps": video.fps,
            "start_s": args.start,
            "first_frame": video.first_frame,
            "frames": num_frames,
            "frames_detected": num_frames - video.filled,
            "frames_filled": video.filled,
            "image_size": list(video.image_size),
            "neutral_frames": [video.first_frame + int(t) for t in track.neutral_frames],
            "smoothing": {"filter": "savitzky-golay", "window_s": smooth_s,
                          "window_frames": track.window, "polyorder": POLYORDER},
            "neutral": neutral_what,
            "photo": photo,
            "units": args.units,
            "models": models,
            "num_vertices": int(num_vertices),
            "format": args.format,
            "files": len(files),
            "glb": {"file": "glb/transfer.glb", "fps": video.fps, "targets": glb.num_targets,
                    "encoding": glb.encoding, "max_error_m": glb.max_error, "bytes": glb.bytes},
            "mouth_corner_lift_mm": lift,
            "wall_s": round(time.perf_counter() - t0, 1),
        })
    print(f"wrote {num_frames} frames ({num_vertices} vertices) driven by {args.video} to {out} "
          f"(glb/transfer.glb at {video.fps:g} fps, preview.png"
          f"{'' if args.no_gif else ', preview.gif'}) in {time.perf_counter() - t0:.1f} s")
    return 0
