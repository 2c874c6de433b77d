"""``jaxface generate``: a 3D face performing an expression, as a 30-frame mesh sequence.

Examples::

    jaxface generate --expression mouth_open --out out/
    jaxface generate --neutral face.ply --expression high_smile --samples 3 --seed 1 --out out/
    jaxface generate --neutral face.obj --expression eyebrow --format obj --out out/
    jaxface generate --photo face.jpg --expression high_smile --out out/
    jaxface generate --neutral scan.obj --units mm --expression mouth_open --out out/
    jaxface generate --neutral scan.ply --landmarks marks.txt --expression eyebrow --out out/

Motion3DGAN samples the motion of 68 landmarks for the expression; S2D-Dec turns every frame's
landmark displacement into a dense displacement of the neutral face. The neutral face is in
metres (``--units mm`` or ``cm`` rescales it, and the output is written in the same units; a
face whose size is far from the template's is refused). A neutral face with another vertex count
than the models' template is a *scan*: the template is registered to it (landmarks, a
similarity, rigid and non-rigid ICP; :mod:`jaxface.mesh.registration`, the error is printed),
the expression is generated on the registered template and its displacements are carried back
to the scan's own vertices, faded to zero over 5-30 mm away from the face (hair, neck, back of the
head), so every output mesh has the scan's topology, vertex order and frame. The landmarks come
from ``--landmarks`` (x y z per line in the scan's units, or a ``.npy`` array: 68 iBUG points or
468 MediaPipe points in their usual order) or, without it, from MediaPipe on renders of the scan
(the extra ``pip install 'jaxface[photo]'``; views along each axis are tried when the face is not
toward +z; :mod:`jaxface.data.scan`);
``--photo`` fits the neutral face to a photograph instead (MediaPipe landmarks, expression
removed, at the models' template level; ``jaxface neutral`` writes it with previews); without
``--neutral`` or ``--photo`` the models' default neutral face (a procedural identity they were not
trained on) is used. Expressions: the 12 CoMA classes
(bareteeth, cheeks_in, eyebrow, high_smile, lips_back, lips_up, mouth_down, mouth_extreme,
mouth_middle, mouth_open, mouth_side, mouth_up).

Output: ``OUT/sample_<k>/frame_<t>.<ply|obj>`` (30 frames per sample), ``OUT/glb/sample_<k>.glb``
(the same sequence as one animated binary glTF 2.0 file that Blender, three.js or any glTF viewer
plays: morph targets within 10 micrometres of every frame, in metres whatever ``--units``, at
``--fps``, 30 by default: the generator resamples each neutral -> apex motion to 30 frames by arc
length, so the sequence has no clock of its own, and 30 fps plays it in one second, about the
duration of the training data's neutral -> apex motions), ``OUT/neutral.<fmt>``, a contact sheet
``OUT/preview.png`` (samples x frames, at most the first 8 samples; skin that moved is tinted
red), an animation ``OUT/preview.gif`` and ``OUT/generation.json``. ``jaxface view OUT`` adds a
page that plays the ``.glb`` files in a browser. Samples are generated in batches, so memory does
not grow with ``--samples``; the disk space the output needs is checked first. Everything is
written into a staging folder that replaces ``OUT`` when complete: a failure leaves no partial
output, and an ``OUT`` that holds earlier results is refused unless ``--overwrite`` is given.

Models are looked up in this order: ``--models`` when it is a model folder; the model cache
(``$JAXFACE_CACHE_DIR/models``, default ``~/.cache/jaxface/models``, or ``--models`` when it is a
cache folder) when it holds models of the ``--recipe``; the models of that recipe shipped with
jaxface (both recipes ship, so a first run answers in seconds); otherwise the recipe's models
are trained on the embedded procedural face set and cached (``jaxface.generate.RECIPE_TIMES``).
``--train`` trains the recipe from scratch into the cache whatever exists. ``generation.json``
says which models were used (``bundle``: shipped, cached, trained or given; recipe; dataset
version).
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections.abc import Callable

import numpy as np

from jaxface.commands.output import UNITS
from jaxface.commands.parsers import add_parser

__all__ = [
    "GLB_FPS",
    "MAX_SEED",
    "PREVIEW_FRAMES",
    "PREVIEW_SAMPLES",
    "motion_colors",
    "output_bytes",
    "register",
    "render_preview",
    "run",
    "save_gif",
]

#: Frames shown in the contact sheet.
PREVIEW_FRAMES = (0, 6, 12, 18, 24, 29)
#: Samples shown in the contact sheet and the animation (the first ones).
PREVIEW_SAMPLES = 8
#: Samples generated (and held in memory) at a time.
BATCH_SAMPLES = 32
#: Default frame rate of the ``.glb`` sequences (30 frames: one second).
GLB_FPS = 30.0
#: The largest ``--seed`` (seeds are 64-bit signed integers).
MAX_SEED = 2**63 - 1


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``generate`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "generate",
        "generate a 4D expression (mesh sequence) of a neutral face",
        __doc__,
    )
    parser.add_argument("--expression", required=True, help="expression name, e.g. mouth_open")
    parser.add_argument("--out", required=True, help="output folder")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--neutral", default=None,
        help="neutral face (.ply or .obj): the models' template topology, or a scan of any "
        "topology, registered to the template (default: the models' own neutral face)",
    )
    source.add_argument("--photo", default=None,
                        help="photograph of a face to fit the neutral face to (needs "
                        "pip install 'jaxface[photo]')")
    parser.add_argument("--landmarks", default=None,
                        help="landmarks of a --neutral scan (.txt or .npy, x y z per row in its "
                        "units: 68 iBUG or 468 MediaPipe points); default: found on renders")
    parser.add_argument("--units", choices=tuple(UNITS), default="m",
                        help="units of --neutral (and of the output meshes); default m")
    parser.add_argument("--samples", type=int, default=1, help="number of different motions")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply", help="mesh format")
    parser.add_argument("--seed", type=int, default=0, help=f"sampling seed (0 to {MAX_SEED})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that holds earlier results")
    parser.add_argument(
        "--models", default=None,
        help="model folder, or a cache folder holding (or to train) one; default "
        "$JAXFACE_CACHE_DIR/models or ~/.cache/jaxface/models",
    )
    parser.add_argument(
        "--recipe", default=None,
        help="recipe of the models to use or train: default, quality (trained longer; both "
        "ship with jaxface) or tiny (tests); default $JAXFACE_GENERATE_RECIPE or 'default'",
    )
    parser.add_argument(
        "--train", action="store_true",
        help="train the recipe's models from scratch into the cache (replacing cached ones) "
        "instead of using cached or shipped models",
    )
    parser.add_argument("--fps", type=float, default=GLB_FPS,
                        help=f"frame rate of the .glb animations (default {GLB_FPS:g})")
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


def save_gif(path: str, images: list[np.ndarray], fps: float = 15.0, *,
             bounce: bool = True) -> None:
    """Writes an animated GIF that plays ``images`` (uint8 ``[H, W, 3]``) forth and back
    (``bounce``, for a motion from a neutral face to its apex) or forth only (a recording)."""
    from PIL import Image

    pil = [Image.fromarray(im) for im in images]
    rest = pil[1:] + pil[::-1][1:-1] if bounce else pil[1:]
    pil[0].save(path, save_all=True, append_images=rest, duration=int(1000 / fps), loop=0)


def output_bytes(num_samples: int, num_frames: int, num_vertices: int, num_faces: int,
                 fmt: str) -> int:
    """About how many bytes the mesh files of ``generate`` take (an upper estimate).

    Example:
      >>> output_bytes(1, 30, 468, 864, "ply")
      531588
    """
    per_file = (300 + 12 * num_vertices + 13 * num_faces if fmt == "ply"
                else 40 + 52 * num_vertices + 36 * num_faces)
    return (num_samples * num_frames + 1) * per_file


def run(args: argparse.Namespace) -> int:
    """Generates the sequences described by ``args``. Returns 0."""
    from jaxface.commands.errors import UserError
    from jaxface.train import TrainingInterrupted

    try:
        return _run(args)
    except TrainingInterrupted as err:
        raise UserError(str(err)) from None
    except KeyboardInterrupt:
        raise UserError("interrupted; nothing was written to --out") from None


def _run(args: argparse.Namespace) -> int:
    from jaxface.commands.errors import UserError
    from jaxface.commands.output import check_output, staged_output, units_hint
    from jaxface.data.procedural import EXPRESSIONS
    from jaxface.files import free_bytes, write_json
    from jaxface.generate import bundle_data, find_models, is_bundle, load_generator
    from jaxface.mesh.errors import MeshError
    from jaxface.mesh.gltf import glb_size_bound, write_glb
    from jaxface.mesh.io import read_mesh, write_mesh, write_sequence
    from jaxface.viz import save_png

    if args.samples < 1:
        raise UserError(f"--samples must be >= 1, got {args.samples}")
    if not 0 <= args.seed <= MAX_SEED:
        raise UserError(f"--seed must be between 0 and {MAX_SEED} (64 bits), got {args.seed}")
    if not 0 < args.fps < float("inf"):
        raise UserError(f"--fps must be a positive number, got {args.fps}")
    t0 = time.perf_counter()
    out = check_output(args.out, args.overwrite)  # before any training
    metres = UNITS[args.units]
    neutral = faces_in = None
    if args.neutral is not None:
        neutral, faces_in = read_mesh(args.neutral)
        neutral = neutral * np.float32(metres)
    photo = None
    if args.photo is not None:  # fitted before any training, lifted to the models' level below
        from jaxface.commands.neutral import fit_photo, weights_record
        from jaxface.data.photo import template_level

        _, photo = fit_photo(args.photo)
    if args.models is not None and not os.path.isdir(args.models):
        raise UserError(f"{args.models}: no such models folder")
    own_bundle = args.models is not None and is_bundle(args.models)
    if own_bundle and args.train:
        raise UserError(f"{args.models}: --train writes new models into a cache folder; give "
                        "--models a cache folder (or none) with --train")
    if not own_bundle and args.expression not in EXPRESSIONS:  # before any training
        raise UserError(
            f"unknown expression {args.expression!r}; choose from {', '.join(EXPRESSIONS)}"
        )
    choice = find_models(args.models, args.recipe, train=args.train, verbose=not args.quiet)
    path = choice.path
    try:
        generator = load_generator(path)
    except ValueError as err:
        if choice.origin != "shipped":
            raise
        raise UserError(f"{err}; --train trains new models instead") from None
    data = bundle_data(generator.manifest)
    if choice.origin == "shipped" and not args.quiet:
        print(f"using the shipped {choice.recipe!r} models (trained on {data['name']}/"
              f"{data['config']} {data['version']}); --train trains them from scratch")
    generator.label(args.expression)
    if photo is not None:  # the photo's neutral at the models' template level, metres
        photo = photo.at_level(template_level(generator.num_vertices))
        neutral = photo.vertices
    scan = None
    if neutral is not None and neutral.shape[0] != generator.num_vertices:  # a scan: register
        from jaxface.data.scan import NoScanFaceError, read_landmarks
        from jaxface.generate import ScanGenerator

        marks = None if args.landmarks is None else read_landmarks(args.landmarks).scaled(metres)
        try:
            generator = scan = ScanGenerator(generator, neutral, faces_in, marks,
                                             source=args.neutral)
        except NoScanFaceError as err:
            raise UserError(f"{err}; pass it with --landmarks FILE") from None
        if not args.quiet:
            print(scan.describe())
    elif args.landmarks is not None:
        raise UserError("--landmarks is for a --neutral scan whose vertex count is not the "
                        f"models' template's ({generator.num_vertices})")
    if neutral is not None:
        try:
            generator.check_neutral(neutral, faces_in, source=args.neutral)
        except MeshError as err:
            if err.field != "scale":
                raise
            hint = units_hint(generator.scale_of(neutral / np.float32(metres)))
            raise UserError(f"{err}{hint if args.units == 'm' else ''}") from None
    num_frames = int(generator.manifest["config"]["gan"].get("num_frames", 30))
    needed = output_bytes(args.samples, num_frames, generator.num_vertices,
                          generator.faces.shape[0], args.format)
    needed += args.samples * glb_size_bound(num_frames, generator.num_vertices,
                                            generator.faces.shape[0])
    free = free_bytes(out)
    if free is not None and needed > free:
        raise UserError(f"{out}: {args.samples} samples of {num_frames} frames need about "
                        f"{needed:,} bytes, {free:,} are free; ask for fewer --samples or free "
                        "space")
    width = max(2, len(str(args.samples - 1)))
    written, animations, preview = [], [], None
    with staged_output(out, args.overwrite) as staging:
        sample = 0
        for result in generator.generate_batches(neutral, args.expression, args.samples,
                                                 args.seed, BATCH_SAMPLES):
            meshes = result.meshes / np.float32(metres)
            if preview is None:
                preview = result, meshes[:PREVIEW_SAMPLES]
            for sequence, metric in zip(meshes, result.meshes, strict=True):
                name = f"sample_{sample:0{width}d}"
                written += write_sequence(os.path.join(staging, name), sequence,
                                          generator.faces, fmt=args.format)
                info = write_glb(os.path.join(staging, "glb", f"{name}.glb"), metric,
                                 generator.faces, args.fps, name=name)
                animations.append({"file": f"glb/{name}.glb", "targets": info.num_targets,
                                   "encoding": info.encoding, "max_error_m": info.max_error})
                sample += 1
        first, shown = preview
        neutral_out = first.neutral / np.float32(metres)
        write_mesh(os.path.join(staging, f"neutral.{args.format}"), neutral_out, generator.faces)
        sheet, animation = render_preview(shown, generator.faces, neutral=neutral_out,
                                          title=args.expression)
        save_png(os.path.join(staging, "preview.png"), sheet)
        if not args.no_gif:
            save_gif(os.path.join(staging, "preview.gif"), animation())
        write_json(os.path.join(staging, "generation.json"), {
            "expression": args.expression,
            "label": first.label,
            "samples": args.samples,
            "seed": args.seed,
            "num_frames": int(first.meshes.shape[1]),
            "num_vertices": int(first.meshes.shape[2]),
            "neutral": (os.path.abspath(args.neutral) if args.neutral
                        else f"fitted to {os.path.abspath(args.photo)}" if args.photo
                        else "models' default neutral"),
            "photo": None if photo is None else weights_record(photo),
            "registration": None if scan is None else scan.record(),
            "units": args.units,
            "models": path,
            "bundle": {"origin": choice.origin, "recipe": generator.manifest.get("recipe"),
                       "packed": generator.packed,
                       "dataset": f"{data['name']}/{data['config']}",
                       "dataset_version": data["version"]},
            "format": args.format,
            "files": len(written),
            "fps": args.fps,
            "glb": animations,
            "wall_s": round(time.perf_counter() - t0, 1),
        })
    if args.quiet:
        print(out)
    else:
        print(f"wrote {args.samples} x {first.meshes.shape[1]} frames "
              f"({first.meshes.shape[2]} vertices) of '{args.expression}' to {out} "
              f"(.glb at {args.fps:g} fps, preview.png{'' if args.no_gif else ', preview.gif'}) in "
              f"{time.perf_counter() - t0:.1f} s")
    return 0
