"""``jaxface transfer --video``: the filmed person's expressions move a neutral face.

The flags and the output are documented with ``transfer`` in :mod:`jaxface.commands.s2d`;
this module runs them: the models and the neutral face are resolved first (so a bad flag is
reported before the video is read), then the video is read
(:func:`jaxface.data.video.read_video_landmarks`), its expression tracked
(:func:`jaxface.data.retarget.track_expression`) and the face moved
(:func:`jaxface.generate.drive_face`); the files are written into a staging folder that
replaces ``--out`` when complete.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import numpy as np

__all__ = ["GIF_FRAMES", "SHEET_FRAMES", "render_video_preview", "run"]

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
    from jaxface.commands.s2d import read_input_mesh

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


def run(args: argparse.Namespace) -> int:
    """Runs ``transfer --video`` as ``args`` say. Returns 0."""
    from jaxface.commands.errors import UserError
    from jaxface.commands.generate import output_bytes, save_gif
    from jaxface.commands.output import UNITS, check_output, staged_output
    from jaxface.data.photo import mouth_corner_lift
    from jaxface.data.retarget import POLYORDER, SMOOTHING_S, track_expression
    from jaxface.data.video import read_video_landmarks
    from jaxface.files import write_json
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
    free = shutil.disk_usage(os.path.dirname(out)).free
    if needed > free:
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
