"""``jaxface animate | transfer | neutralize``: use a trained S2D-Dec on your meshes.

Examples::

    jaxface animate --model RUN --neutral face.ply --landmarks target_landmarks.npy --out out/
    jaxface transfer --model RUN --source source_frames/ --target face.ply --out out/
    jaxface neutralize --model RUN --mesh smiling.ply --out neutral.ply

``RUN`` is a work directory of ``python -m experiments.s2d.main``. Every input mesh must have the
model's template topology (same vertex count and faces) and be in metres (``--units mm`` or
``cm`` rescales the input, and the output is written in the same units); anything else is
refused with one line saying what differs (for a size far from the template's: the factor).
Mesh files are found by suffix in any case (``.ply``, ``.PLY``, ``.obj``, ``.OBJ``). A sequence
is written into a staging folder that replaces ``--out`` when complete; an ``--out`` folder that
holds earlier results is refused unless ``--overwrite`` is given.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from jaxface.commands.output import UNITS

__all__ = ["mesh_files", "register"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="trained S2D-Dec run directory")
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

    p = subparsers.add_parser(
        "transfer", help="transfer the motion of a mesh sequence to another face (S2D-Dec)",
        description="The source sequence's first frame is taken as its neutral face.",
    )
    _common(p)
    p.add_argument("--source", required=True,
                   help="folder of the source sequence's meshes (sorted by name)")
    p.add_argument("--target", required=True, help="target neutral face mesh")
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


def _read(model, path: str, args) -> np.ndarray:
    """A mesh with the model's topology, in metres; refuses one far from the template's size."""
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
    neutral = _read(model, args.neutral, args)
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

    check_output(args.out, args.overwrite)
    model = _load(args)
    files = mesh_files(args.source)
    if len(files) < 2:
        raise UserError(f"{args.source}: expected a folder of at least 2 .ply/.obj meshes, "
                        f"found {len(files)}")
    source = np.stack([_read(model, f, args) for f in files])
    target = _read(model, args.target, args)
    _write(model, model.transfer(source, target), args)
    return 0


def _neutralize(args) -> int:
    from jaxface.mesh.io import write_mesh

    model = _load(args)
    mesh = _read(model, args.mesh, args)
    ref = None if args.reference is None else _read(model, args.reference, args)
    write_mesh(args.out, model.neutralize(mesh, ref) / np.float32(UNITS[args.units]), model.faces)
    print(f"wrote {os.path.abspath(args.out)}")
    return 0
