"""``jaxface reconstruct``: 3D faces from photographs or a video, as meshes any 3D tool opens.

Examples::

    jaxface reconstruct face.jpg --out out/
    jaxface reconstruct a.jpg b.png --model runs/smirk --format obj --out out/
    jaxface reconstruct --video clip.mp4 --max-frames 120 --out out/
    jaxface reconstruct face.jpg --method fit --out out/

MediaPipe's FaceLandmarker finds the face (its model ships with jaxface; MediaPipe itself is the
extra ``pip install 'jaxface[photo]'``, PyAV for videos ``'jaxface[video]'``); a square crop at
1.4 times the landmark box goes to the three image encoders (SMIRK's pose/camera, shape and
expression encoders), which read the morphable model's parameters; the model gives the mesh
(:mod:`jaxface.smirk.reconstruct`). ``--method fit`` fits the model to MediaPipe's landmarks
instead (no network). Encoders: ``--model`` (a run of ``python -m experiments.smirk.main``, a
stage's run folder, or a packed copy), otherwise the ones shipped with jaxface. An experiment
folder that has trained the core stage (``core/`` with a checkpoint, ``core.enabled``) gives the
core stage's encoders, else the pretrain stage's (``encoders/``); there is no switch between
them: the core stage refines the pretrain's encoders, so the later stage is the one to use, and
naming a stage's folder (``RUN/encoders``) reads that stage. ``--method auto`` (the default) uses
encoders when there are some and the landmark fit otherwise: jaxface ships no trained encoders
yet (the ones a CPU trains in half an hour are less accurate than the fit, see
``experiments/smirk/README.md``), so a fresh install answers with the fit at once.

Output, per photo ``NAME``: ``OUT/NAME.ply`` (or ``.obj``; the model's mesh in metres: x right,
y up, z toward the camera, head pose applied), ``OUT/NAME_overlay.png`` (the grey render over
the photo) and ``OUT/NAME.json`` (the parameters). For a video: ``OUT/frames/frame_<t>.ply``,
``OUT/NAME.glb`` (the sequence as one animated glTF at the video's frame rate),
``OUT/overlay.png`` (a few frames with their renders), ``OUT/meshes.png`` (the same frames'
meshes alone) and ``OUT/NAME.json``. Everything is
written into a staging folder that replaces ``OUT`` when complete.
"""

from __future__ import annotations

import argparse
import os
import time

from jaxface.commands.errors import UserError
from jaxface.commands.parsers import add_parser

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``reconstruct`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(subparsers, "reconstruct",
                        "3D faces (meshes) from photographs or a video", __doc__)
    parser.add_argument("photos", nargs="*", help="image files, one face each")
    parser.add_argument("--video", help="a video file (one face)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", help="trained encoders: a run folder (its core stage when "
                        "trained, else its pretrain stage) or a packed copy (default: the ones "
                        "shipped with jaxface)")
    parser.add_argument("--method", choices=("auto", "encoders", "fit"), default="auto",
                        help="the image encoders, a fit to the landmarks alone, or auto (the "
                        "default): the encoders when --model is given or encoders ship with "
                        "jaxface, else the fit")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply", help="mesh format")
    parser.add_argument("--start", type=float, default=0.0,
                        help="video: seconds from the start where the piece begins")
    parser.add_argument("--max-frames", type=int, help="video: at most this many frames")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that holds earlier results")
    parser.set_defaults(func=run)
    return parser


def _params_record(recon, index: int) -> dict:
    p = recon.params
    return {
        "shape": p.shape[index].round(5).tolist(),
        "expression": p.expression[index].round(5).tolist(),
        "pose_axis_angle": p.pose[index].round(5).tolist(),
        "jaw_axis_angle": p.jaw[index].round(5).tolist(),
        "eyelids": p.eyelids[index].round(5).tolist(),
        "camera_scale_tx_ty": recon.cam[index].round(5).tolist(),
    }


def _reconstructor(args):
    from jaxface.smirk.reconstruct import Reconstructor
    from jaxface.smirk.run import find_encoders, load_encoders, load_morphable, shipped_encoders

    method = args.method
    if method == "auto":
        method = "encoders" if args.model or shipped_encoders() else "fit"
    if method == "fit":
        from jaxface.configs.smirk import get_config

        return Reconstructor(None, load_morphable(get_config("paper"))), "landmark fit"
    path = find_encoders(args.model)
    encoders, model, _ = load_encoders(path)
    return Reconstructor(encoders, model), path


def run(args: argparse.Namespace) -> int:
    """Reconstructs the photos or the video of ``args``; returns 0."""
    from jaxface.commands.output import check_output, staged_output
    from jaxface.data.photo import read_photo
    from jaxface.files import write_json
    from jaxface.mesh.io import write_mesh
    from jaxface.viz import save_png

    if bool(args.photos) == bool(args.video):
        raise UserError("give photos or --video (one of the two)")
    if args.max_frames is not None and args.max_frames < 1:
        raise UserError(f"--max-frames must be >= 1, got {args.max_frames}")
    t0 = time.perf_counter()
    out = check_output(args.out, args.overwrite)
    images = [(path, read_photo(path)) for path in args.photos]  # unreadable files fail first
    recon_model, source = _reconstructor(args)
    faces = recon_model.faces
    with staged_output(out, args.overwrite) as staging:
        if args.video:
            recon, fps, detected = recon_model.video(args.video, start=args.start,
                                                     max_frames=args.max_frames)
            name = os.path.splitext(os.path.basename(args.video))[0]
            _write_video(staging, name, recon, fps, detected, faces, args, recon_model)
            count = len(recon)
        else:
            for path, image in images:
                recon = recon_model.image(image, source=path)
                name = os.path.splitext(os.path.basename(path))[0]
                write_mesh(os.path.join(staging, f"{name}.{args.format}"), recon.vertices[0],
                           faces)
                save_png(os.path.join(staging, f"{name}_overlay.png"),
                         recon_model.overlay(image, recon))
                write_json(os.path.join(staging, f"{name}.json"),
                           {"photo": os.path.abspath(path), "model": source,
                            "morphable": recon_model.model.name, **_params_record(recon, 0)})
            count = len(images)
    print(f"reconstructed {count} face{'s' * (count != 1)} ({source}) into {out} in "
          f"{time.perf_counter() - t0:.1f} s")
    return 0


def _write_video(staging, name, recon, fps, detected, faces, args, recon_model) -> None:
    import numpy as np

    from jaxface.data.video import open_video
    from jaxface.files import write_json
    from jaxface.mesh.gltf import write_glb
    from jaxface.mesh.io import write_sequence
    from jaxface.viz import save_png
    from jaxface.viz.render import contact_sheet, fit_camera, render_mesh

    write_sequence(os.path.join(staging, "frames"), recon.vertices, faces, fmt=args.format)
    write_glb(os.path.join(staging, f"{name}.glb"), recon.vertices, faces, fps, name=name)
    picks = set(np.linspace(0, len(recon) - 1, min(4, len(recon))).round().astype(int).tolist())
    tiles = []
    with open_video(args.video, start=args.start, max_frames=args.max_frames) as (_, frames):
        for t, (_, _, rgb) in enumerate(frames):
            if t in picks:
                tiles += [rgb, recon_model.overlay(rgb, recon, t)]
    save_png(os.path.join(staging, "overlay.png"), contact_sheet(tiles, 2))
    camera = fit_camera(recon.vertices[sorted(picks)].reshape(-1, 3), image_size=256)
    meshes = [render_mesh(recon.vertices[t], faces, camera=camera) for t in sorted(picks)]
    save_png(os.path.join(staging, "meshes.png"),
             contact_sheet(meshes, len(meshes), labels=[f"frame {t}" for t in sorted(picks)]))
    write_json(os.path.join(staging, f"{name}.json"), {
        "video": os.path.abspath(args.video), "fps": fps, "frames": len(recon),
        "frames_without_a_face": int(np.count_nonzero(~np.asarray(detected))),
        "morphable": recon_model.model.name,
        "params": [_params_record(recon, t) for t in range(len(recon))],
    })
