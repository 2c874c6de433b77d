"""``jaxface face3d sample | transfer | fit``: use a trained decoupled face GAN.

Examples::

    jaxface face3d sample --model RUN --out samples/ --num 8 --expression high_smile
    jaxface face3d transfer --model RUN --source smiling.ply --target face.ply --out out/
    jaxface face3d fit --model RUN --landmarks landmarks.npy --out fit/
    jaxface face3d fit --model RUN --mesh scan.ply --out fit/

``RUN`` is a work directory of ``python -m experiments.decoupled.main`` (or a ``gan_full``
folder of the tables). Every input mesh must have the model's template topology (same vertex
count and faces); anything else is refused with one line saying what differs. Each command writes
its meshes, the codes (``codes.npz``) and a contact sheet (``contact_sheet.png``) into ``--out``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

__all__ = ["register"]


def register(subparsers) -> None:
    """Adds ``face3d`` with its ``sample``, ``transfer`` and ``fit`` verbs."""
    face3d = subparsers.add_parser(
        "face3d", help="sample, transfer and fit with a decoupled 3D face GAN",
        description="Identity and expression codes of a trained decoupled face GAN.")
    verbs = face3d.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = verbs.add_parser("sample", help="generate faces",
                         description="Random codes, or the code of a training label.")
    _common(p)
    p.add_argument("--num", type=int, default=8, help="number of faces (default 8)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the codes")
    p.add_argument("--identity", default=None,
                   help="identity label (training subject name or index) for every face")
    p.add_argument("--expression", default=None,
                   help="expression label (name or index, e.g. neutral) for every face")
    p.add_argument("--zero-noise", action="store_true", help="set the noise code to zero")
    p.set_defaults(func=_sample)

    p = verbs.add_parser("transfer", help="put the expression of one face on another",
                         description="Fits both meshes and decodes the target's identity code "
                         "with the source's expression code.")
    _common(p)
    p.add_argument("--source", required=True, help="mesh whose expression is transferred")
    p.add_argument("--target", required=True, help="mesh that receives it")
    _fit_options(p)
    p.set_defaults(func=_transfer)

    p = verbs.add_parser("fit", help="fit the codes to 68 landmarks or to a mesh",
                         description="Adam on the codes from a random start (paper eq. 13).")
    _common(p)
    target = p.add_mutually_exclusive_group(required=True)
    target.add_argument("--landmarks", help=".npy of 68 landmarks [68, 3] or [T, 68, 3]")
    target.add_argument("--mesh", help="mesh of the template's topology (.ply/.obj)")
    _fit_options(p)
    p.set_defaults(func=_fit)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="trained run directory")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--format", choices=("ply", "obj"), default="ply")


def _fit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weight", type=float, default=None,
                        help="regularisation weight lambda (default: 0.1 for landmarks, 0.01 "
                        "for meshes)")
    parser.add_argument("--steps", type=int, default=500, help="Adam steps (default 500)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random start")


def _load(args):
    from jaxface.decoupled.inference import DecoupledFaceModel

    return DecoupledFaceModel.load(args.model)


def _read_mesh(model, path: str) -> np.ndarray:
    from jaxface.commands.errors import UserError

    if not os.path.isfile(path):
        raise UserError(f"{path}: file not found")
    return model.read_mesh(path)


def _write(model, args, meshes: np.ndarray, names: list[str], codes: dict[str, np.ndarray],
           *, cols: int) -> None:
    from jaxface.decoupled.sheet import render_sheet
    from jaxface.files import write_npz
    from jaxface.mesh.io import write_mesh
    from jaxface.viz.render import save_png

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    for mesh, name in zip(meshes, names, strict=True):
        write_mesh(os.path.join(out, f"{name}.{args.format}"), mesh, model.faces)
    write_npz(os.path.join(out, "codes.npz"), codes)
    save_png(os.path.join(out, "contact_sheet.png"),
             render_sheet(meshes, model.faces, cols, labels=names))
    print(f"wrote {len(names)} meshes, codes.npz and contact_sheet.png to {out}")


def _sample(args) -> int:
    from jaxface.commands.errors import UserError

    if args.num < 1:
        raise UserError(f"--num must be positive, got {args.num}")
    model = _load(args)
    meshes, (z_id, z_exp, noise) = model.sample(
        args.num, seed=args.seed, identity=args.identity, expression=args.expression,
        zero_noise=args.zero_noise)
    names = [f"sample_{i:03d}" for i in range(args.num)]
    _write(model, args, meshes, names, {"z_id": z_id, "z_exp": z_exp, "noise": noise},
           cols=min(args.num, 8))
    return 0


def _transfer(args) -> int:
    model = _load(args)
    source = _read_mesh(model, args.source)
    target = _read_mesh(model, args.target)
    weight = 0.01 if args.weight is None else args.weight
    result, src, tgt = model.transfer(source, target, regularization=weight, steps=args.steps,
                                      seed=args.seed)
    meshes = np.stack([source, target, src.meshes[0], tgt.meshes[0], result])
    names = ["source", "target", "source_fit", "target_fit", "transfer"]
    codes = {"source_z_id": src.z_id, "source_z_exp": src.z_exp, "source_noise": src.noise,
             "target_z_id": tgt.z_id, "target_z_exp": tgt.z_exp, "target_noise": tgt.noise}
    _write(model, args, meshes, names, codes, cols=5)
    return 0


def _fit(args) -> int:
    from jaxface.commands.errors import UserError

    model = _load(args)
    if args.mesh is not None:
        mesh = _read_mesh(model, args.mesh)
        weight = 0.01 if args.weight is None else args.weight
        fit = model.fit_mesh(mesh, regularization=weight, steps=args.steps, seed=args.seed)
        meshes, names = np.stack([mesh, fit.meshes[0]]), ["input", "fit"]
    else:
        if not os.path.isfile(args.landmarks):
            raise UserError(f"{args.landmarks}: file not found")
        try:
            landmarks = np.load(args.landmarks, allow_pickle=False)
        except ValueError as err:
            raise UserError(f"{args.landmarks}: not a numpy .npy array ({err})") from err
        if landmarks.ndim not in (2, 3) or landmarks.shape[-2:] != (68, 3):
            raise UserError(f"{args.landmarks}: expected landmarks [68, 3] or [T, 68, 3], got "
                            f"{list(landmarks.shape)}")
        weight = 0.1 if args.weight is None else args.weight
        fit = model.fit_landmarks(landmarks, regularization=weight, steps=args.steps,
                                  seed=args.seed)
        meshes = fit.meshes
        names = [f"fit_{i:03d}" for i in range(len(meshes))]
    print(f"fitted points: RMS error {float(fit.point_error_mm.mean()):.3f} mm")
    _write(model, args, meshes, names, {"z_id": fit.z_id, "z_exp": fit.z_exp,
                                        "noise": fit.noise}, cols=min(len(meshes), 8))
    return 0
