"""The datasets jaxface can prepare, by name, and opening a prepared one.

:data:`DATASETS` is the one registry of dataset builders (TFDS builders in the top-level
``datasets_tfds`` package, imported when a dataset is prepared): ``jaxface prepare`` offers its
names and :func:`prepare_dataset` builds one. :func:`open_dataset` finds a configured dataset
(preparing the embedded procedural set on first use) and returns a :class:`DatasetView`, the
template, landmarks, sequence index and random-access source every experiment starts from.

Preparing never exposes a half-built dataset: the builder writes into a staging folder beside
the final one, which is renamed into place when complete. A rebuild (``overwrite``) replaces the
old dataset only then (an atomic exchange where the system has one), so a failed rebuild leaves
it intact; of two processes preparing the same dataset at once, the one that finishes second
discards its copy and uses the first one's.

Adding a dataset is a builder module plus one :class:`DatasetSpec` entry here (see
``docs/adding_a_dataset.md``).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import shutil
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from jaxface.data.landmarks import LandmarkDefinition
from jaxface.data.layout import (
    SequenceInfo,
    dataset_dir,
    load_sequences,
    load_split,
    load_template,
)
from jaxface.data.source import open_source
from jaxface.data.splits import Split
from jaxface.files import replace_dir, staging_dir

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "DatasetView",
    "builder_class",
    "open_dataset",
    "prepare_dataset",
]


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """How to build one dataset.

    Attributes:
      builder: ``"module:Class"`` of its TFDS builder.
      manual: whether it is built from a release downloaded by hand (licence-gated).
      landmark_embedding: whether it accepts a FLAME landmark embedding.
      summary: one line for ``jaxface prepare --help``.
    """

    builder: str
    manual: bool
    landmark_embedding: bool = False
    summary: str = ""


#: Dataset name -> builder. The procedural ``faces4d`` is generated; the others read a release.
DATASETS: dict[str, DatasetSpec] = {
    "coma": DatasetSpec("datasets_tfds.coma.coma:Coma", manual=True, landmark_embedding=True,
                        summary="CoMA (12 subjects x 12 expressions, FLAME topology)"),
    "d3dfacs": DatasetSpec("datasets_tfds.d3dfacs.d3dfacs:D3dfacs", manual=True,
                           landmark_embedding=True,
                           summary="D3DFACS registered to FLAME (action-unit sequences)"),
    "faces4d": DatasetSpec("datasets_tfds.faces4d.faces4d:Faces4d", manual=False,
                           summary="the embedded procedural 4D face set (no download)"),
    "fourdfab": DatasetSpec("datasets_tfds.fourdfab.fourdfab:Fourdfab", manual=True,
                            summary="4DFAB posed basic expressions (180 subjects, 4 sessions)"),
    "vocaset": DatasetSpec("datasets_tfds.vocaset.vocaset:Vocaset", manual=True,
                           landmark_embedding=True, summary="VOCASET speech sequences"),
}


def _spec(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def builder_class(name: str) -> type:
    """The TFDS builder class of a registered dataset (imports its module)."""
    module, _, cls = _spec(name).builder.partition(":")
    return getattr(importlib.import_module(module), cls)


def _check_request(name: str, spec: DatasetSpec, manual_dir, landmark_embedding, config):
    if spec.manual and manual_dir is None:
        raise ValueError(f"{name} is licence-gated: give the folder of the downloaded release "
                         "(manual_dir)")
    if not spec.manual and manual_dir is not None:
        raise ValueError(f"{name} is generated; a manual download folder does not apply")
    if landmark_embedding is not None:
        if not spec.landmark_embedding:
            raise ValueError(f"{name} has its own landmarks; a landmark embedding does not apply")
        if len(landmark_embedding) not in (1, 2):
            raise ValueError("a landmark embedding is one file or two (static, dynamic), got "
                             f"{len(landmark_embedding)}")
        if config not in (None, "landmarks"):
            raise ValueError(f"a landmark embedding needs the 'landmarks' config, not {config!r}")


def prepare_dataset(
    name: str,
    *,
    data_dir: str | None = None,
    config: str | None = None,
    manual_dir: str | None = None,
    landmark_embedding: Sequence[str] | None = None,
    version: str | None = None,
    overwrite: bool = False,
    verbose: bool = True,
) -> str:
    """Builds (or reuses) a prepared dataset and returns its folder.

    Args:
      name: a key of :data:`DATASETS`.
      data_dir: TFDS data folder (default: TFDS's, ``$TFDS_DATA_DIR`` or
        ``~/tensorflow_datasets``).
      config: builder config name (default: the builder's first; ``"landmarks"`` when a
        landmark embedding is given).
      manual_dir: the downloaded release (licence-gated datasets only).
      landmark_embedding: FLAME landmark embedding file(s): one file with 68 landmarks, or the
        static and the dynamic embedding files.
      version: the dataset version to build (default: the builder's current one).
      overwrite: rebuild even if already prepared; the prepared dataset is replaced only once
        the new one is complete (a failed rebuild keeps it).
      verbose: print where the dataset went.

    Returns:
      ``<data_dir>/<name>/<config>/<version>``.

    Raises:
      ValueError: an unknown dataset or config, or options that do not apply to it.
    """
    import tensorflow_datasets as tfds  # Deferred: heavy, and only needed to build.

    spec = _spec(name)
    _check_request(name, spec, manual_dir, landmark_embedding, config)
    if landmark_embedding is not None:
        config = "landmarks"
    builder_cls = builder_class(name)
    configs = [c.name for c in builder_cls.BUILDER_CONFIGS]
    if config is not None and config not in configs:
        raise ValueError(f"unknown config {config!r} for {name}; choose from {', '.join(configs)}")
    kwargs: dict[str, Any] = {"data_dir": data_dir, "config": config}
    if version is not None:
        supported = [str(v) for v in (builder_cls.VERSION, *builder_cls.SUPPORTED_VERSIONS)]
        if version not in supported:
            raise ValueError(f"{name} has no version {version!r}; choose from "
                             f"{', '.join(supported)}")
        kwargs["version"] = version
    if landmark_embedding is not None:
        kwargs["landmark_embedding"] = list(landmark_embedding)
    builder = builder_cls(**kwargs)
    final = os.fspath(builder.data_path)
    existed = _is_prepared(final)
    start = time.perf_counter()
    if not existed or overwrite:
        staging = staging_dir(final)
        try:
            builder = builder_cls(**{**kwargs, "data_dir": staging})
            builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
                manual_dir=manual_dir if spec.manual else None))
            _publish(os.fspath(builder.data_path), final, replace=overwrite)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        existed = False
    seconds = time.perf_counter() - start
    if verbose:
        meta = builder.info.metadata
        what = "already prepared at" if existed else f"prepared in {seconds:.1f} s at"
        print(f"{builder.name}/{builder.builder_config.name} {what} {final}")
        print(
            f"  {meta.get('num_examples')} meshes in {meta.get('num_sequences')} sequences, "
            f"{meta.get('num_vertices')} vertices each; protocols: "
            f"{len(meta.get('protocols', []))}"
        )
    return final


def _is_prepared(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "dataset_info.json"))


def _publish(built: str, final: str, *, replace: bool) -> None:
    """Renames a dataset built in a staging folder into place.

    With ``replace`` the prepared dataset at ``final`` is swapped out; otherwise a complete
    dataset that appeared at ``final`` meanwhile (another process prepared it) is kept and
    ``built`` discarded, while an incomplete leftover is replaced.
    """
    if replace:
        replace_dir(built, final)
        return
    try:
        os.rename(built, final)
    except OSError:
        if _is_prepared(final):  # another process won the race: use its dataset
            return
        if not os.path.isdir(final):
            raise
        replace_dir(built, final)


class DatasetView:
    """A prepared dataset's template, landmark definition, sequences and protocols.

    Args:
      path: the prepared dataset folder.
      require_landmarks: raise unless the dataset defines 68 landmarks on its template.

    Attributes:
      path: the folder.
      faces: int32 ``[F, 3]`` template faces (shared by every mesh).
      vertices: float32 ``[N, 3]`` reference vertices.
      landmarks: the landmark definition, or ``None``.
      sequences: the sequence index.

    Raises:
      FileNotFoundError: the folder is not a prepared dataset.
      ValueError: ``require_landmarks`` and the dataset has none.
    """

    def __init__(self, path: str, *, require_landmarks: bool = True):
        self.path = os.fspath(path)
        template = load_template(self.path)
        self.faces: np.ndarray = template["faces"]
        self.vertices: np.ndarray = template["vertices"]
        fields = {k.split("/", 1)[1]: v for k, v in template.items() if k.startswith("landmarks/")}
        if require_landmarks and not fields:
            raise ValueError(
                f"dataset at {self.path} has no landmark definition; 68 landmarks are needed "
                "(for CoMA, prepare it with FLAME's landmark embedding)"
            )
        self.landmarks: LandmarkDefinition | None = LandmarkDefinition(**fields) if fields else None
        self.sequences: list[SequenceInfo] = load_sequences(self.path)
        self._source = None

    @property
    def source(self):
        """The random-access source of the ``frames`` split (opened on first use)."""
        if self._source is None:
            self._source = open_source(self.path)
        return self._source

    def split(self, protocol: str) -> Split:
        """The protocol's train/test example indices."""
        return load_split(self.path, protocol)

    def sequences_of(self, indices: np.ndarray) -> list[SequenceInfo]:
        """The sequences whose frames are all in ``indices`` (a split part)."""
        chosen = np.zeros(len(self.source), bool)
        chosen[np.asarray(indices, np.int64)] = True
        return [s for s in self.sequences if chosen[s.start : s.stop].all()]


def open_dataset(config, *, verbose: bool = True, require_landmarks: bool = True) -> DatasetView:
    """Finds (and, for a generated dataset, prepares when missing) the configured dataset.

    The version is ``config.dataset_version`` when the config has one; otherwise the builder's
    current version for a generated dataset (so an update of the generator is prepared and used,
    while older prepared versions stay on disk), and the highest prepared version of a
    downloaded release.

    Args:
      config: with ``dataset`` (e.g. ``"faces4d"``), ``dataset_config``, ``data_dir`` and
        optionally ``dataset_version``.
      verbose: print what preparing does.
      require_landmarks: refuse a dataset without 68 landmarks (the systems that read
        landmarks need them; whole-mesh models such as the 4D expression model do not).

    Raises:
      FileNotFoundError: a licence-gated dataset that has not been prepared.
      ValueError: ``require_landmarks`` and the dataset has none.
    """
    data_dir = os.path.expanduser(config.data_dir)
    spec = _spec(config.dataset)
    version = config.get("dataset_version") or None
    if version is None and not spec.manual:
        version = str(builder_class(config.dataset).VERSION)
    try:
        path = dataset_dir(config.dataset, data_dir=data_dir, config=config.dataset_config,
                           version=version)
    except FileNotFoundError:
        if spec.manual:
            raise
        path = prepare_dataset(config.dataset, data_dir=data_dir, config=config.dataset_config,
                               version=version, verbose=verbose)
    return DatasetView(path, require_landmarks=require_landmarks)
