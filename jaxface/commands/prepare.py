"""``jaxface prepare``: build a dataset's array_record files and metadata with TFDS.

Examples::

    jaxface prepare faces4d --config tiny --data-dir DIR
    jaxface prepare coma --manual-dir DIR --data-dir DIR [--landmark-embedding FILE [FILE]]
    jaxface prepare d3dfacs --manual-dir DIR --data-dir DIR
    jaxface prepare vocaset --manual-dir DIR --data-dir DIR

``faces4d`` is generated (no download). The others read a licence-gated release that was
downloaded by hand into ``--manual-dir`` (layouts in ``datasets_tfds/<name>/README.md``). Passing
``--landmark-embedding`` selects the ``landmarks`` config. The result goes to
``<data-dir>/<name>/<config>/<version>/``; a prepared dataset is reused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import importlib
import time

__all__ = ["DATASETS", "prepare_dataset", "register", "run"]

# Dataset name -> (module, builder class, whether it needs a manual download).
DATASETS: dict[str, tuple[str, str, bool]] = {
    "faces4d": ("datasets_tfds.faces4d.faces4d", "Faces4d", False),
    "coma": ("datasets_tfds.coma.coma", "Coma", True),
    "d3dfacs": ("datasets_tfds.d3dfacs.d3dfacs", "D3dfacs", True),
    "vocaset": ("datasets_tfds.vocaset.vocaset", "Vocaset", True),
}


def register(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Adds the ``prepare`` sub-command to ``subparsers`` and returns its parser."""
    parser = subparsers.add_parser(
        "prepare",
        help="build a dataset (array_record + splits + statistics) with TFDS",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join(__doc__.split("\n\n")[1:]),
    )
    parser.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to build")
    parser.add_argument(
        "--config",
        default=None,
        help="builder config: faces4d 'tiny' or 'coma_scale' (default); the others 'default' or "
        "'landmarks' (chosen automatically when --landmark-embedding is given)",
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
        "--overwrite", action="store_true", help="rebuild even if the dataset is already prepared"
    )
    parser.set_defaults(func=run)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    from jaxface.cli import UserError

    _, _, manual = DATASETS[args.dataset]
    if manual and args.manual_dir is None:
        raise UserError(f"{args.dataset} is licence-gated: pass --manual-dir with the download")
    if not manual and args.manual_dir is not None:
        raise UserError(f"{args.dataset} is generated; --manual-dir does not apply")
    if args.landmark_embedding is not None:
        if not manual:
            raise UserError(
                f"{args.dataset} has its own landmarks; --landmark-embedding does not apply"
            )
        if len(args.landmark_embedding) > 2:
            raise UserError("--landmark-embedding takes one file or two (static, dynamic)")
        if args.config not in (None, "landmarks"):
            raise UserError("--landmark-embedding needs --config landmarks (or no --config)")
        args.config = "landmarks"


def prepare_dataset(
    dataset: str,
    *,
    data_dir: str | None = None,
    config: str | None = None,
    manual_dir: str | None = None,
    landmark_embedding=None,
    overwrite: bool = False,
    verbose: bool = True,
) -> str:
    """Builds (or reuses) a prepared dataset and returns its folder.

    Args:
      dataset: a key of :data:`DATASETS`.
      data_dir: TFDS data folder (default: TFDS's).
      config: builder config name (default: the builder's first).
      manual_dir: the downloaded release (licence-gated datasets only).
      landmark_embedding: FLAME landmark embedding file(s), when wanted.
      overwrite: rebuild even if already prepared.
      verbose: print where the dataset went.

    Returns:
      ``<data_dir>/<name>/<config>/<version>``.
    """
    from jaxface.cli import UserError

    args = argparse.Namespace(
        dataset=dataset, data_dir=data_dir, config=config, manual_dir=manual_dir,
        landmark_embedding=landmark_embedding, overwrite=overwrite,
    )
    _check_args(args)
    import tensorflow_datasets as tfds

    module, class_name, manual = DATASETS[args.dataset]
    builder_cls = getattr(importlib.import_module(module), class_name)
    configs = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if args.config is not None and args.config not in configs:
        raise UserError(
            f"unknown config {args.config!r} for {args.dataset}; choose from {', '.join(configs)}"
        )
    kwargs = {"data_dir": args.data_dir, "config": args.config}
    if args.landmark_embedding is not None:
        kwargs["landmark_embedding"] = args.landmark_embedding
    builder = builder_cls(**kwargs)
    mode = (
        tfds.download.GenerateMode.REUSE_CACHE_IF_EXISTS
        if args.overwrite
        else tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS
    )
    if args.overwrite and builder.data_path.exists():
        builder.data_path.rmtree()
        builder = builder_cls(**kwargs)
    existed = builder.data_path.joinpath("dataset_info.json").exists()
    start = time.perf_counter()
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            manual_dir=args.manual_dir if manual else None, download_mode=mode
        )
    )
    seconds = time.perf_counter() - start
    if verbose:
        meta = builder.info.metadata
        what = "already prepared at" if existed else f"prepared in {seconds:.1f} s at"
        print(f"{builder.name}/{builder.builder_config.name} {what} {builder.data_path}")
        print(
            f"  {meta.get('num_examples')} meshes in {meta.get('num_sequences')} sequences, "
            f"{meta.get('num_vertices')} vertices each; protocols: "
            f"{len(meta.get('protocols', []))}"
        )
    return str(builder.data_path)


def run(args: argparse.Namespace) -> int:
    """Builds the dataset described by ``args`` (see :func:`prepare_dataset`). Returns 0."""
    prepare_dataset(
        args.dataset, data_dir=args.data_dir, config=args.config, manual_dir=args.manual_dir,
        landmark_embedding=args.landmark_embedding, overwrite=args.overwrite,
    )
    return 0
