"""The end-to-end 4D face generator: expression label -> landmark motion -> S2D-Dec -> meshes.

:class:`FaceGenerator` holds a trained Motion3DGAN generator and a trained S2D-Dec for one face
template. :meth:`FaceGenerator.generate` samples the SRVF of a neutral -> apex landmark motion for
an expression label, integrates it from the neutral face's normalised landmarks (paper eq. 4,
with the label's median training amplitude), feeds each frame's landmark displacement to S2D-Dec
and adds the dense displacements to the neutral mesh: a 30-frame mesh sequence of that face
performing the expression.

Models live in a *bundle* folder: ``manifest.json`` (recipe, configs, expression names, per-label
amplitudes, training times), ``motion3dgan.msgpack`` (generator parameters and reference point),
``neutral.npz`` (the default neutral face) and ``s2d/``, a trained S2D-Dec run
(:class:`jaxface.s2d.inference.S2DInference`: config, template, checkpoint).
:func:`ensure_models` returns the bundle of a training *recipe* from the model cache
(``$JAXFACE_CACHE_DIR/models`` or ``~/.cache/jaxface/models``), training it first when it is
missing: the recipe's procedural dataset is prepared (``faces4d``), then a CPU-sized
Motion3DGAN and S2D-Dec are trained on all of its sub-sequences and frames. Training happens
in a temporary folder next to the final one, which is renamed into place when complete, so
concurrent first runs never see a half-written bundle (the loser of the race discards its copy)
and an interrupted run leaves nothing behind but a ``.*.tmp-*`` folder. A cached bundle that
lost some of its files is retrained and replaced in one step (the message names what was
missing); a damaged file is reported by name when the bundle is loaded.

A neutral face must be in the template's units (metres): :meth:`FaceGenerator.check_neutral`
compares its size with the template's and refuses one that is far off (a face in millimetres
is a thousand times too large), naming the factor.

The recipes (``default``, ``quality``, ``tiny``) are modes of the experiment configs:
:mod:`jaxface.configs.generate`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import serialization

from jaxface.configs import generate as recipes
from jaxface.data.datasets import open_dataset
from jaxface.data.landmarks import normalize_landmarks
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.files import replace_dir, staging_dir, write_atomic, write_json, write_npz
from jaxface.mesh.cache import default_cache_dir
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology
from jaxface.motion3dgan import (
    create_models,
    decode_meshes,
    label_intensities,
    load_motions,
    make_sample_fn,
    motion_to_landmarks,
    sample_diversity,
    train_gan,
)
from jaxface.motion3dgan.data import s2d_training_data
from jaxface.s2d import S2DInference, train_s2d
from jaxface.train import CheckpointError, TrainingInterrupted

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_FORMAT",
    "RECIPE_ENV",
    "RECIPE_TIMES",
    "SCALE_TOLERANCE",
    "FaceGenerator",
    "GeneratedExpression",
    "bundle_name",
    "default_models_dir",
    "ensure_models",
    "is_bundle",
    "load_generator",
    "missing_bundle_files",
    "relative_scale",
    "train_bundle",
]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
#: Training time of each recipe on a 2-core CPU (for the first-run message).
RECIPE_TIMES = {"default": "about 6 minutes", "quality": "about 30 minutes", "tiny": "seconds"}
RECIPE_ENV = "JAXFACE_GENERATE_RECIPE"
_MANIFEST = "manifest.json"
#: Everything a complete bundle holds (the manifest is written last).
BUNDLE_FILES = (_MANIFEST, "motion3dgan.msgpack", "neutral.npz", "s2d/config.json",
                "s2d/template.npz", "s2d/checkpoints")
#: A neutral face may be at most this many times larger (or smaller) than the template.
SCALE_TOLERANCE = 2.0


def bundle_name(recipe: str) -> str:
    """Folder name of a recipe's bundle in the model cache."""
    return f"faces4d-{recipe}-v{BUNDLE_FORMAT}"


def default_models_dir() -> str:
    """The model cache: ``$JAXFACE_CACHE_DIR/models`` or ``~/.cache/jaxface/models``."""
    return os.path.join(default_cache_dir(), "models")


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a model bundle (it has the manifest, which is written last)."""
    return os.path.isfile(os.path.join(os.fspath(path), _MANIFEST))


def missing_bundle_files(path: str | os.PathLike[str]) -> list[str]:
    """The files of :data:`BUNDLE_FILES` that ``path`` lacks (``[]``: a complete bundle)."""
    return [name for name in BUNDLE_FILES if not os.path.exists(os.path.join(path, name))]


def relative_scale(vertices: np.ndarray, reference: np.ndarray) -> float:
    """How many times larger ``vertices`` are than ``reference`` (the same topology).

    The size of a mesh is the root-mean-square distance of its vertices from their centroid,
    which does not depend on where the mesh is placed.

    Args:
      vertices: float ``[N, 3]``.
      reference: float ``[N, 3]``.

    Returns:
      The ratio of the two sizes (1: the same size).

    Example:
      >>> grid = np.random.default_rng(0).normal(size=(50, 3))
      >>> round(relative_scale(1000.0 * grid + 5.0, grid), 6)
      1000.0
    """
    def size(v):
        v = np.asarray(v, np.float64)
        return float(np.sqrt(np.mean(np.sum((v - v.mean(axis=0)) ** 2, axis=1))))

    return size(vertices) / max(size(reference), 1e-30)


def _damaged(path: str, what: str, bundle: str) -> ValueError:
    return ValueError(f"{path}: damaged ({what}); delete the folder {bundle} to retrain it")


def _load_npz(path: str, bundle: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read fully (so damage shows here, with the file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; delete the folder {bundle} to retrain it")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            return {k: np.array(z[k]) for k in z.files}
    except Exception as err:  # numpy/zipfile raise many types for a damaged archive
        raise _damaged(path, "not a readable .npz archive", bundle) from err


def _load_json(path: str, bundle: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; delete the folder {bundle} to retrain it")
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except (ValueError, UnicodeDecodeError) as err:
        raise _damaged(path, "not valid JSON", bundle) from err
    absent = [k for k in required if not isinstance(value, dict) or k not in value]
    if absent:
        raise _damaged(path, f"missing {', '.join(absent)}", bundle)
    return value


# ----------------------------------------------------------------------------- the generator


@dataclasses.dataclass(frozen=True)
class GeneratedExpression:
    """The output of :meth:`FaceGenerator.generate`.

    Attributes:
      meshes: float32 ``[S, T, N, 3]`` vertex positions, one sequence per sample (frame 0 is the
        neutral face as S2D-Dec reproduces it from a zero landmark displacement).
      neutral: float32 ``[N, 3]`` the neutral face used.
      landmarks: float32 ``[S, T, K, 3]`` the generated (normalised) landmark motions.
      q: float32 ``[S, T, 3K]`` their SRVFs.
      expression: the expression name.
      label: its label.
    """

    meshes: np.ndarray
    neutral: np.ndarray
    landmarks: np.ndarray
    q: np.ndarray
    expression: str
    label: int


class FaceGenerator:
    """A loaded model bundle: Motion3DGAN generator + S2D-Dec on one face template.

    Args:
      path: the bundle folder.

    Raises:
      FileNotFoundError: ``path`` is not a bundle.
      ValueError: the bundle's format is not this version's.
    """

    def __init__(self, path: str | os.PathLike[str]):
        path = _bundle_path(path)
        manifest_path = os.path.join(path, _MANIFEST)
        self.manifest: dict[str, Any] = _load_json(manifest_path, path)
        if self.manifest.get("format") != BUNDLE_FORMAT:
            raise ValueError(
                f"{path}: model format {self.manifest.get('format')}, this jaxface reads "
                f"{BUNDLE_FORMAT}; delete the folder to retrain"
            )
        missing = [k for k in ("config", "expressions", "label_intensity")
                   if k not in self.manifest]
        if missing:
            raise ValueError(f"{manifest_path}: missing {', '.join(missing)}; delete the folder "
                             "to retrain")
        self.path = path
        config = ml_collections.ConfigDict(self.manifest["config"])
        self.expressions: tuple[str, ...] = tuple(self.manifest["expressions"])
        self.intensity = np.asarray(self.manifest["label_intensity"], np.float32)
        self.spacing: str = config.gan.sphere.inverse_spacing
        neutral_path = os.path.join(path, "neutral.npz")
        neutral = _load_npz(neutral_path, path).get("vertices")
        if neutral is None or neutral.ndim != 2 or neutral.shape[1] != 3:
            raise _damaged(neutral_path, "no vertices [N, 3]", path)
        self.default_neutral: np.ndarray = neutral.astype(np.float32)

        models = create_models(config.gan, len(self.expressions))
        gan_path = os.path.join(path, "motion3dgan.msgpack")
        if not os.path.isfile(gan_path):
            raise FileNotFoundError(f"{gan_path}: missing; delete the folder {path} to retrain it")
        try:
            with open(gan_path, "rb") as f:
                gan = serialization.msgpack_restore(f.read())
            self._gen_params = jax.tree.map(jnp.asarray, gan["gen_params"])
            self.reference = jnp.asarray(gan["reference"])
        except Exception as err:  # msgpack raises many types for a damaged file
            raise _damaged(gan_path, "cannot read the Motion3DGAN parameters", path) from err
        self._sample = make_sample_fn(models)
        s2d = os.path.join(path, "s2d")
        _load_json(os.path.join(s2d, "config.json"), path, ("model", "optim", "topology"))
        _load_npz(os.path.join(s2d, "template.npz"), path)
        try:
            self.s2d = S2DInference.load(s2d)
        except (OSError, CheckpointError):
            raise  # they name the file
        except Exception as err:
            raise ValueError(f"{s2d}: the S2D-Dec model cannot be loaded ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''}); delete the "
                             f"folder {path} to retrain it") from err

    @property
    def faces(self) -> np.ndarray:
        """int32 ``[F, 3]`` faces of the template (and of every output mesh)."""
        return self.s2d.faces

    @property
    def num_vertices(self) -> int:
        """Vertices of the template (and of every accepted neutral face)."""
        return self.s2d.num_vertices

    def label(self, expression: str) -> int:
        """The label of an expression name.

        Raises:
          ValueError: naming the known expressions.
        """
        if expression not in self.expressions:
            raise ValueError(
                f"unknown expression {expression!r}; choose from {', '.join(self.expressions)}"
            )
        return self.expressions.index(expression)

    def scale_of(self, vertices: np.ndarray) -> float:
        """How many times larger a face is than the template (:func:`relative_scale`)."""
        return relative_scale(vertices, self.s2d.vertices)

    def check_neutral(self, vertices: np.ndarray, faces: np.ndarray | None = None,
                      source: str | None = None) -> None:
        """Checks that a neutral face has the template's topology and size.

        Args:
          vertices: float ``[N, 3]``.
          faces: int ``[F, 3]`` or ``None`` (only the vertex count is checked).
          source: file name for the message.

        Raises:
          MeshError: e.g. ``"face.ply: has 5023 vertices, the model's template has 1790"``, or
            vertices that are not ``[N, 3]`` finite numbers, or a face more than
            :data:`SCALE_TOLERANCE` times larger or smaller than the template (field
            ``"scale"``, e.g. ``"face.ply: scale: the face is 1000 times the size of the
            model's template; ..."``).
        """
        vertices = np.asarray(vertices)
        if vertices.ndim != 2 or vertices.shape[1] != 3:
            raise MeshError(f"expected vertices [N, 3], got {list(vertices.shape)}",
                            source=source, field="vertices")
        if not np.isfinite(vertices).all():
            raise MeshError("vertices contain NaN or infinite values", source=source,
                            field="vertices")
        n = vertices.shape[0]
        if n != self.num_vertices:
            raise MeshError(
                f"has {n} vertices, the model's template has {self.num_vertices} (the neutral "
                "face must have the template's topology)", source=source,
            )
        if faces is not None:
            try:
                check_topology(vertices, faces, self.faces, self.num_vertices, source=source)
            except MeshError as err:
                raise MeshError(
                    f"{err.detail}: its faces are not the model's template's", source=source,
                ) from err
        factor = self.scale_of(vertices)
        if not 1.0 / SCALE_TOLERANCE <= factor <= SCALE_TOLERANCE:
            raise MeshError(
                f"the face is {factor:.4g} times the size of the model's template (its spread "
                "about the centre); the models work in the template's units, metres (a face "
                "in millimetres is 1000 times too large)", source=source, field="scale")

    def sample_motions(self, label: int, num_samples: int, seed: int = 0) -> np.ndarray:
        """Motion3DGAN SRVFs of one label: float32 ``[num_samples, T, 3K]``."""
        return sample_diversity(self._sample, self._gen_params, self.reference, label,
                                num_samples, jax.random.key(seed))

    def generate(
        self, neutral: np.ndarray | None, expression: str, num_samples: int = 1, seed: int = 0
    ) -> GeneratedExpression:
        """Mesh sequences of a neutral face performing an expression.

        Args:
          neutral: float ``[N, 3]`` neutral face with the template's topology (metres), or
            ``None`` for the bundle's default neutral face (a procedural identity the models
            were not trained on).
          expression: expression name (see :attr:`expressions`).
          num_samples: number of different motions (noise vectors).
          seed: sampling seed.

        Returns:
          A :class:`GeneratedExpression`.
        """
        label = self.label(expression)
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        neutral = self.default_neutral if neutral is None else np.asarray(neutral, np.float32)
        self.check_neutral(neutral)
        lms_n = np.asarray(normalize_landmarks(self.s2d.landmarks_of(neutral)), np.float32)
        q = self.sample_motions(label, num_samples, seed)
        seqs = motion_to_landmarks(q, lms_n, self.intensity[label], spacing=self.spacing)
        meshes = decode_meshes(self.s2d.decode, seqs, lms_n, neutral)
        return GeneratedExpression(
            meshes=meshes, neutral=neutral, landmarks=seqs, q=q, expression=expression, label=label
        )

    def generate_batches(
        self, neutral: np.ndarray | None, expression: str, num_samples: int, seed: int = 0,
        batch_size: int = 32,
    ) -> Iterator[GeneratedExpression]:
        """:meth:`generate` in batches of at most ``batch_size`` samples (bounded memory).

        The first batch draws with ``seed`` exactly as :meth:`generate` does (so up to
        ``batch_size`` samples equal its output); batch ``b > 0`` draws with a key folded from
        ``seed`` and ``b``.

        Yields:
          One :class:`GeneratedExpression` per batch, samples in order.
        """
        if num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {num_samples}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        for b, first in enumerate(range(0, num_samples, batch_size)):
            count = min(batch_size, num_samples - first)
            if b == 0:
                yield self.generate(neutral, expression, count, seed)
                continue
            key = jax.random.fold_in(jax.random.key(seed), b)
            label = self.label(expression)
            base = self.default_neutral if neutral is None else np.asarray(neutral, np.float32)
            lms_n = np.asarray(normalize_landmarks(self.s2d.landmarks_of(base)), np.float32)
            q = sample_diversity(self._sample, self._gen_params, self.reference, label, count,
                                 key)
            seqs = motion_to_landmarks(q, lms_n, self.intensity[label], spacing=self.spacing)
            meshes = decode_meshes(self.s2d.decode, seqs, lms_n, base)
            yield GeneratedExpression(meshes=meshes, neutral=base, landmarks=seqs, q=q,
                                      expression=expression, label=label)


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, mtime: float) -> FaceGenerator:
    del mtime  # part of the cache key: a retrained bundle is reloaded
    return FaceGenerator(path)


def _bundle_path(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute; raises :class:`FileNotFoundError` unless it is a bundle."""
    path = os.path.abspath(os.fspath(path))
    if not is_bundle(path):
        raise FileNotFoundError(f"{path}: not a jaxface model folder (no {_MANIFEST})")
    return path


def load_generator(path: str | os.PathLike[str]) -> FaceGenerator:
    """A :class:`FaceGenerator` for a bundle, kept in memory for later calls in this process."""
    path = _bundle_path(path)
    return _load_cached(path, os.path.getmtime(os.path.join(path, _MANIFEST)))


# ----------------------------------------------------------------------------- training


def _say(message: str, verbose: bool) -> None:
    if verbose:
        print(message, flush=True)


def train_bundle(
    path: str | os.PathLike[str], recipe: str = "default", *, data_dir: str | None = None,
    verbose: bool = True,
) -> dict[str, Any]:
    """Trains a recipe's models and writes a bundle into ``path`` (which must not exist).

    Prepares the recipe's procedural dataset under ``data_dir`` (default
    ``<cache>/datasets``) if needed, trains Motion3DGAN on all of its neutral -> apex
    sub-sequences and S2D-Dec on the frames they cover, and writes the bundle files. Training
    work folder of Motion3DGAN (checkpoints with the critic) lives under ``path/work`` while
    training and is removed at the end; ``path/s2d`` is the S2D-Dec run itself.

    Args:
      path: the bundle folder to create.
      recipe: one of :data:`jaxface.configs.generate.RECIPES`.
      data_dir: TFDS data folder for the procedural dataset.
      verbose: print what happens (progress bars are shown either way when attached to a
        terminal).

    Returns:
      The manifest written.
    """
    t0 = time.perf_counter()
    config = recipes.get_config(recipe)
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path)
    work = os.path.join(path, "work")
    data_cfg = ml_collections.ConfigDict(dict(
        dataset=config.dataset, dataset_config=config.dataset_config,
        data_dir=data_dir or os.path.join(default_cache_dir(), "datasets"),
    ))
    _say(f"[1/4] preparing the procedural dataset {config.dataset}/{config.dataset_config}",
         verbose)
    view = open_dataset(data_cfg, verbose=False)
    dataset = view.path
    motions = load_motions(dataset, num_frames=config.gan.num_frames,
                           min_frames=config.gan.min_frames, source=view.source)
    timings = {"data": time.perf_counter() - t0}

    _say(f"[2/4] training Motion3DGAN on {len(motions)} landmark motions", verbose)
    t = time.perf_counter()
    gan_cfg = config.gan
    gan_cfg.progress = verbose
    _, gan_state, gan_info = train_gan(gan_cfg, os.path.join(work, "gan"), motions)
    timings["motion3dgan"] = time.perf_counter() - t

    t = time.perf_counter()
    s2d_cfg = config.s2d
    s2d_cfg.progress = verbose
    data = s2d_training_data(view, motions, s2d_cfg.topology, s2d_cfg.frame_stride)
    _say(f"[3/4] training S2D-Dec on {len(data.train)} frames "
         f"({view.vertices.shape[0]}-vertex template)", verbose)
    _, s2d_info = train_s2d(s2d_cfg, os.path.join(path, "s2d"), data)
    timings["s2d"] = time.perf_counter() - t

    _say("[4/4] writing the models", verbose)
    with open(os.path.join(dataset, "metadata.json")) as f:
        meta = json.load(f)
    procedural = ProceduralConfig(**{
        k: tuple(v) if isinstance(v, list) else v
        for k, v in meta["procedural_config"].items()
    })
    unseen = procedural.num_subjects
    neutral = ProceduralFaces(
        dataclasses.replace(procedural, num_subjects=unseen + 1)
    ).neutral(unseen)
    write_npz(os.path.join(path, "neutral.npz"), {
        "vertices": neutral.astype(np.float32), "subject": np.asarray(f"Proc_{unseen:03d}_S"),
    })
    write_atomic(os.path.join(path, "motion3dgan.msgpack"), serialization.msgpack_serialize({
        "gen_params": jax.tree.map(np.asarray, gan_state.gen_params),
        "reference": np.asarray(gan_state.reference),
    }))
    shutil.rmtree(work, ignore_errors=True)
    manifest = {
        "format": BUNDLE_FORMAT,
        "recipe": recipe,
        "config": config.to_dict(),
        "dataset": dataset,
        "expressions": list(motions.label_names),
        "num_vertices": int(view.vertices.shape[0]),
        "label_intensity": label_intensities(motions, config.gan.intensity_statistic).tolist(),
        "train_motions": len(motions),
        "s2d_train_frames": len(data.train),
        "motion3dgan": {k: gan_info[k] for k in ("steps", "train_time_s", "num_params")},
        "s2d": {k: s2d_info[k] for k in ("steps", "train_time_s", "num_params", "final_loss")},
        "timings_s": {k: round(v, 1) for k, v in timings.items()},
        "wall_s": round(time.perf_counter() - t0, 1),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    write_json(os.path.join(path, _MANIFEST), manifest)  # last: its presence marks a bundle
    return manifest


def _remove_stale_staging(root: str, max_age_s: float = 86400.0) -> None:
    """Deletes staging folders older than ``max_age_s`` (left by killed runs)."""
    now = time.time()
    for name in os.listdir(root):
        folder = os.path.join(root, name)
        if name.startswith(".") and ".tmp-" in name and os.path.isdir(folder):
            if now - os.path.getmtime(folder) > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)


def _publish_bundle(bundle: str, final: str) -> None:
    """Puts a freshly trained bundle at ``final`` (replacing an incomplete one in one step).

    A complete bundle that appeared at ``final`` meanwhile (a concurrent first run) is kept and
    ``bundle`` discarded.
    """
    if not missing_bundle_files(final):
        return
    if not os.path.lexists(final):
        try:
            os.rename(bundle, final)
            return
        except OSError:
            if not missing_bundle_files(final):  # lost the race: use the winner's
                return
    replace_dir(bundle, final)


def ensure_models(
    models: str | os.PathLike[str] | None = None, recipe: str | None = None, *,
    verbose: bool = True,
) -> str:
    """The bundle to generate with, training it first when the cache has none.

    A cached bundle with files missing (e.g. a partly deleted folder) is retrained and then
    replaced in one step; a warning names what was missing.

    Args:
      models: a bundle folder (used as is), or a model-cache folder holding bundles (default
        :func:`default_models_dir`).
      recipe: the recipe to look up or train (default: ``$JAXFACE_GENERATE_RECIPE`` or
        ``"default"``).
      verbose: print progress when training.

    Returns:
      The bundle folder.

    Raises:
      TrainingInterrupted: Ctrl-C while training (nothing is kept: the next run trains again).
    """
    if models is not None and is_bundle(models):
        return os.path.abspath(os.fspath(models))
    source = "" if recipe else f" (from ${RECIPE_ENV})"
    recipe = recipe or os.environ.get(RECIPE_ENV) or "default"
    if recipe not in recipes.RECIPES:
        raise ValueError(f"unknown generation recipe {recipe!r}{source}; choose from "
                         f"{', '.join(recipes.RECIPES)}")
    root = os.path.abspath(os.fspath(models)) if models is not None else default_models_dir()
    final = os.path.join(root, bundle_name(recipe))
    missing = missing_bundle_files(final)
    if not missing:
        return final
    os.makedirs(root, exist_ok=True)
    _remove_stale_staging(root)
    if os.path.lexists(final):
        log.warning("%s is incomplete (%s missing); training it again and replacing it",
                    final, ", ".join(missing))
    else:
        _say(f"No trained models at {final}; training them on the procedural face set (one "
             f"time, {RECIPE_TIMES[recipe]} on a 2-core CPU).", verbose)
    staging = staging_dir(final)
    try:
        bundle = os.path.join(staging, "bundle")
        try:
            manifest = train_bundle(bundle, recipe, verbose=verbose)
        except TrainingInterrupted as err:
            raise TrainingInterrupted(
                f"training of the {recipe!r} models stopped at step {err.step}; nothing was "
                "kept (the next run trains them again)", err.step, None) from err
        _publish_bundle(bundle, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"Trained in {manifest['wall_s']:.0f} s; models cached at {final}", verbose)
    return final
