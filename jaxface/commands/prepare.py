"""``jaxface prepare``: build a dataset's array_record files and metadata with TFDS.

Examples::

    jaxface prepare faces4d --config tiny --data-dir DIR
    jaxface prepare coma --manual-dir DIR --data-dir DIR [--landmark-embedding FILE [FILE]]
    jaxface prepare d3dfacs --manual-dir DIR --data-dir DIR
    jaxface prepare fourdfab --manual-dir DIR --data-dir DIR [--config every_frame]
    jaxface prepare vocaset --manual-dir DIR --data-dir DIR

``faces4d`` is generated (no download). The others read a licence-gated release that was
downloaded by hand into ``--manual-dir`` (layouts in ``datasets_tfds/<name>/README.md``). Passing
``--landmark-embedding`` selects the ``landmarks`` config. The result goes to
``<data-dir>/<name>/<config>/<version>/``; a prepared dataset is reused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse

from jaxface.commands.errors import UserError
from jaxface.commands.parsers import add_parser
from jaxface.data.datasets import DATASETS, DatasetSpec, prepare_dataset

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``prepare`` sub-command to ``subparsers`` and returns its parser."""
    parser = add_parser(
        subparsers, "prepare",
        "build a dataset (array_record + splits + statistics) with TFDS",
        __doc__,
    )
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to build")
    parser.add_argument(
        "--config",
        default=None,
        help="builder config: faces4d 'tiny', 'coma_scale' (default), 'basic6', ...; fourdfab "
        "'default' or 'every_frame'; the others 'default' or 'landmarks' (chosen "
        "automatically when --landmark-embedding is given)",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data folder to write into (default: TFDS's, $TFDS_DATA_DIR or "
        "~/tensorflow_datasets)",
    )
    parser.add_argument(
        "--manual-dir", default=None, help="folder holding the downloaded release (not faces4d)"
    )
    parser.add_argument(
        "--landmark-embedding",
        nargs="+",
        metavar="FILE",
        default=None,
        help="FLAME landmark embedding: one file with 68 landmarks, or the static and the "
        "dynamic embedding files",
    )
    parser.add_argument(
        "--version", default=None,
        help="dataset version to build (default: the builder's current one; older versions "
        "stay buildable so that earlier results can be reproduced)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="rebuild even if the dataset is already prepared"
    )
    parser.set_defaults(func=run)
    return parser


def _check_args(args: argparse.Namespace, spec: DatasetSpec) -> None:
    if spec.manual and args.manual_dir is None:
        raise UserError(f"{args.dataset} is licence-gated: pass --manual-dir with the download")
    if not spec.manual and args.manual_dir is not None:
        raise UserError(f"{args.dataset} is generated; --manual-dir does not apply")
    if args.landmark_embedding is not None:
        if not spec.landmark_embedding:
            raise UserError(
                f"{args.dataset} has its own landmarks; --landmark-embedding does not apply"
            )
        if len(args.landmark_embedding) > 2:
            raise UserError("--landmark-embedding takes one file or two (static, dynamic)")
        if args.config not in (None, "landmarks"):
            raise UserError("--landmark-embedding needs --config landmarks (or no --config)")


def run(args: argparse.Namespace) -> int:
    """Builds the dataset described by ``args`` (:func:`jaxface.data.prepare_dataset`)."""
    _check_args(args, DATASETS[args.dataset])
    prepare_dataset(
        args.dataset, data_dir=args.data_dir, config=args.config, manual_dir=args.manual_dir,
        landmark_embedding=args.landmark_embedding, version=args.version,
        overwrite=args.overwrite,
    )
    return 0
