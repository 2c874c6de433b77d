"""``jaxface train-bundle``: train the models of ``jaxface generate`` into a folder.

Examples::

    jaxface train-bundle --recipe default --out models/default
    jaxface train-bundle --recipe default --pack --out jaxface/assets/bundles/default
    jaxface train-bundle --from models/default --pack --out packed/default

The models are trained exactly as the first run of ``jaxface generate`` trains them (the
recipe's procedural dataset is prepared under ``--data-dir`` when missing, then Motion3DGAN and
S2D-Dec are trained on it). ``--out`` gets a model folder that ``jaxface generate --models``
reads. ``--pack`` writes the compact form jaxface ships instead: the parameters in float16
(an array stays float32 where float16 would move a generated vertex by more than
``--tolerance-mm``), the neutral face and the template in float32, and a manifest with the
configs, the dataset name, config and version, the measured float16 difference and the sha256
of every file (checked when the models are loaded). ``--from`` packs models trained before
instead of training. Everything is built in a staging folder beside ``--out`` and renamed into
place when complete; an existing ``--out`` is refused.
"""

from __future__ import annotations

import argparse
import os
import shutil

from jaxface.commands.parsers import add_parser

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``train-bundle`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "train-bundle",
        "train (and optionally pack) the models of jaxface generate",
        __doc__,
    )
    parser.add_argument("--out", required=True, help="model folder to create")
    parser.add_argument("--recipe", default="default",
                        help="training recipe: default, quality or tiny (default: default)")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder of the procedural dataset (default "
                        "$JAXFACE_CACHE_DIR/datasets or ~/.cache/jaxface/datasets)")
    parser.add_argument("--pack", action="store_true",
                        help="write the compact shipped form (float16, checksums)")
    parser.add_argument("--from", dest="source", default=None,
                        help="pack this trained model folder instead of training (with --pack)")
    parser.add_argument("--tolerance-mm", type=float, default=None,
                        help="largest vertex difference float16 may cause, in mm (default "
                        "0.05; with --pack)")
    parser.add_argument("--quiet", action="store_true", help="print only the output folder")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Trains and/or packs the bundle described by ``args``. Returns 0."""
    from jaxface.commands.errors import UserError
    from jaxface.configs.generate import RECIPES
    from jaxface.files import staging_dir
    from jaxface.generate import (
        FLOAT16_TOLERANCE_MM,
        is_bundle,
        pack_bundle,
        train_bundle,
    )
    from jaxface.train import TrainingInterrupted

    out = os.path.abspath(args.out)
    if os.path.lexists(out):
        raise UserError(f"{out}: exists; train-bundle writes a new folder")
    if args.recipe not in RECIPES:
        raise UserError(f"unknown recipe {args.recipe!r}; choose from {', '.join(RECIPES)}")
    if args.source is not None and not args.pack:
        raise UserError("--from packs a trained model folder: add --pack")
    if args.source is not None and not is_bundle(args.source):
        raise UserError(f"{args.source}: not a model folder (no manifest.json)")
    if args.tolerance_mm is not None and not args.pack:
        raise UserError("--tolerance-mm applies to --pack")
    tolerance = FLOAT16_TOLERANCE_MM if args.tolerance_mm is None else args.tolerance_mm
    if not tolerance > 0:
        raise UserError(f"--tolerance-mm must be positive, got {tolerance}")
    verbose = not args.quiet
    if args.source is not None:
        manifest = pack_bundle(args.source, out, tolerance_mm=tolerance, verbose=verbose)
    else:
        staging = staging_dir(out)
        try:
            bundle = os.path.join(staging, "bundle")
            try:
                manifest = train_bundle(bundle, args.recipe, data_dir=args.data_dir,
                                        verbose=verbose)
            except TrainingInterrupted as err:
                raise UserError(f"training of the {args.recipe!r} models stopped at step "
                                f"{err.step}; nothing was written to {out}") from None
            except KeyboardInterrupt:
                raise UserError(f"interrupted; nothing was written to {out}") from None
            if args.pack:
                manifest = pack_bundle(bundle, out, tolerance_mm=tolerance, verbose=verbose)
            else:
                os.rename(bundle, out)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    if args.quiet:
        print(out)
        return 0
    size = sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(out) for name in names)
    data = manifest.get("data", {})
    print(f"wrote the {manifest['recipe']!r} models ({data.get('name')}/{data.get('config')} "
          f"{data.get('version')}, {size / 1e6:.2f} MB) to {out}")
    if args.pack:
        check = manifest["float16"]
        print(f"float16 vs float32: max {check['max_mm']:.4f} mm, mean {check['mean_mm']:.5f} mm "
              f"over {check['sequences']} sequences of {check['frames']} frames; "
              f"{len(manifest['float32_arrays'])} arrays kept in float32")
    else:
        print(f"trained in {manifest['wall_s']:.0f} s")
    return 0
