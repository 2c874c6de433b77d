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
and an interrupted run leaves nothing behind but a ``.tmp-*`` folder.

The recipes (``default``, ``quality``, ``tiny``) are modes of the experiment configs:
:mod:`jaxface.configs.generate`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import tempfile
import time
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
from jaxface.files import write_atomic, write_json, write_npz
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

__all__ = [
    "BUNDLE_FORMAT",
    "RECIPE_ENV",
    "RECIPE_TIMES",
    "FaceGenerator",
    "GeneratedExpression",
    "bundle_name",
    "default_models_dir",
    "ensure_models",
    "is_bundle",
    "load_generator",
    "train_bundle",
]

BUNDLE_FORMAT = 1
#: Training time of each recipe on a 2-core CPU (for the first-run message).
RECIPE_TIMES = {"default": "about 6 minutes", "quality": "about 30 minutes", "tiny": "seconds"}
RECIPE_ENV = "JAXFACE_GENERATE_RECIPE"
_MANIFEST = "manifest.json"


def bundle_name(recipe: str) -> str:
    """Folder name of a recipe's bundle in the model cache."""
    return f"faces4d-{recipe}-v{BUNDLE_FORMAT}"


def default_models_dir() -> str:
    """The model cache: ``$JAXFACE_CACHE_DIR/models`` or ``~/.cache/jaxface/models``."""
    return os.path.join(default_cache_dir(), "models")


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a complete model bundle."""
    return os.path.isfile(os.path.join(os.fspath(path), _MANIFEST))


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
        try:
            with open(manifest_path) as f:
                self.manifest: dict[str, Any] = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{manifest_path}: not valid JSON ({err}); delete the folder to "
                             "retrain") from err
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
        with np.load(os.path.join(path, "neutral.npz")) as z:
            self.default_neutral: np.ndarray = np.array(z["vertices"])

        models = create_models(config.gan, len(self.expressions))
        with open(os.path.join(path, "motion3dgan.msgpack"), "rb") as f:
            gan = serialization.msgpack_restore(f.read())
        self._gen_params = jax.tree.map(jnp.asarray, gan["gen_params"])
        self.reference = jnp.asarray(gan["reference"])
        self._sample = make_sample_fn(models)
        self.s2d = S2DInference.load(os.path.join(path, "s2d"))

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

    def check_neutral(self, vertices: np.ndarray, faces: np.ndarray | None = None,
                      source: str | None = None) -> None:
        """Checks that a neutral face has the template's topology.

        Args:
          vertices: float ``[N, 3]``.
          faces: int ``[F, 3]`` or ``None`` (only the vertex count is checked).
          source: file name for the message.

        Raises:
          MeshError: e.g. ``"face.ply: has 5023 vertices, the model's template has 1790"``, or
            vertices that are not ``[N, 3]`` finite numbers.
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
    """Deletes ``.tmp-*`` training folders older than ``max_age_s`` (left by killed runs)."""
    now = time.time()
    for name in os.listdir(root):
        folder = os.path.join(root, name)
        if name.startswith(".tmp-") and os.path.isdir(folder):
            if now - os.path.getmtime(folder) > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)


def ensure_models(
    models: str | os.PathLike[str] | None = None, recipe: str | None = None, *,
    verbose: bool = True,
) -> str:
    """The bundle to generate with, training it first when the cache has none.

    Args:
      models: a bundle folder (used as is), or a model-cache folder holding bundles (default
        :func:`default_models_dir`).
      recipe: the recipe to look up or train (default: ``$JAXFACE_GENERATE_RECIPE`` or
        ``"default"``).
      verbose: print progress when training.

    Returns:
      The bundle folder.
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
    if is_bundle(final):
        return final
    os.makedirs(root, exist_ok=True)
    _remove_stale_staging(root)
    _say(f"No trained models at {final}; training them on the procedural face set (one time, "
         f"{RECIPE_TIMES[recipe]} on a 2-core CPU).", verbose)
    staging = tempfile.mkdtemp(prefix=f".tmp-{bundle_name(recipe)}-", dir=root)
    try:
        bundle = os.path.join(staging, "bundle")
        manifest = train_bundle(bundle, recipe, verbose=verbose)
        try:
            os.rename(bundle, final)
        except OSError:
            if not is_bundle(final):  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"Trained in {manifest['wall_s']:.0f} s; models cached at {final}", verbose)
    return final
