"""``jaxface animate | transfer | neutralize``: use a trained S2D-Dec on your meshes.

Examples::

    jaxface animate --model RUN --neutral face.ply --landmarks target_landmarks.npy --out out/
    jaxface transfer --model RUN --source source_frames/ --target face.ply --out out/
    jaxface neutralize --model RUN --mesh smiling.ply --out neutral.ply

``RUN`` is a work directory of ``python -m experiments.s2d.main``. Every input mesh must have the
model's template topology (same vertex count and faces); anything else is refused with one line
saying what differs.
"""

from __future__ import annotations

import argparse
import glob
import os

import numpy as np

__all__ = ["register"]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="trained S2D-Dec run directory")


def _out_sequence(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder for the mesh sequence")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply")


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


def _write(model, frames: np.ndarray, args) -> None:
    from jaxface.mesh.io import write_sequence

    paths = write_sequence(args.out, frames, model.faces, fmt=args.format)
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

    model = _load(args)
    neutral = model.read_mesh(args.neutral)
    if args.landmarks:
        lms = _read_npy(args.landmarks)
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

    model = _load(args)
    files = sorted(glob.glob(os.path.join(args.source, "*.ply"))
                   + glob.glob(os.path.join(args.source, "*.obj")))
    if len(files) < 2:
        raise UserError(f"{args.source}: expected a folder of at least 2 .ply/.obj meshes, "
                        f"found {len(files)}")
    source = np.stack([model.read_mesh(f) for f in files])
    target = model.read_mesh(args.target)
    _write(model, model.transfer(source, target), args)
    return 0


def _neutralize(args) -> int:
    from jaxface.mesh.io import write_mesh

    model = _load(args)
    mesh = model.read_mesh(args.mesh)
    ref = None if args.reference is None else model.read_mesh(args.reference)
    write_mesh(args.out, model.neutralize(mesh, ref), model.faces)
    print(f"wrote {os.path.abspath(args.out)}")
    return 0
