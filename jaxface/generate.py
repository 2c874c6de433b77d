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
(``$JAXFACE_CACHE_DIR/models`` or ``~/.cache/jaxface/models``) or the bundle shipped with
jaxface (:func:`find_models`), training it first when neither has one: the recipe's procedural
dataset is prepared (``faces4d``), then a CPU-sized Motion3DGAN and S2D-Dec are trained on all
of its sub-sequences and frames. Training happens in a temporary folder next to the final one,
which is renamed into place when complete, so concurrent first runs never see a half-written
bundle (the loser of the race discards its copy) and an interrupted run leaves nothing behind
but a ``.*.tmp-*`` folder. A cached bundle that lost some of its files is retrained and replaced
in one step (the message names what was missing); a damaged file is reported by name when the
bundle is loaded.

A neutral face must be in the template's units (metres): :meth:`FaceGenerator.check_neutral`
compares its size with the template's and refuses one that is far off (a face in millimetres
is a thousand times too large), naming the factor.

A *packed* bundle is the compact form jaxface ships (:func:`pack_bundle`): the parameters in
float16 (an array stays float32 when float16 moves the generated vertices by more than
:data:`FLOAT16_TOLERANCE_MM`), the neutral face and the template in float32, and a manifest that
records the configs, the dataset the weights come from (name, config, version) and the sha256 of
every file; loading verifies the checksums and names a damaged file. Its files are
``manifest.json``, ``motion3dgan.npz``, ``s2d.npz`` (the S2D-Dec decoder parameters),
``neutral.npz`` and ``template.npz``.

:func:`find_models` looks a bundle up in this order: an explicit bundle folder; the model cache
when it holds a bundle of the recipe; the bundle of the recipe shipped with jaxface (package
data under :data:`SHIPPED_DIR`, read, never written); otherwise the recipe is trained into the
cache. ``train=True`` trains into the cache whatever exists.

The recipes (``default``, ``quality``, ``tiny``) are modes of the experiment configs:
:mod:`jaxface.configs.generate`.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import hashlib
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
from jaxface.data.landmarks import landmark_displacement, normalize_landmarks
from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.retarget import ExpressionTrack, retarget
from jaxface.data.template import IBUG68_VERTICES, NUM_BASE_VERTICES
from jaxface.files import (
    flatten_tree,
    replace_dir,
    staging_dir,
    unflatten_tree,
    write_atomic,
    write_json,
    write_npz,
)
from jaxface.mesh.cache import default_cache_dir
from jaxface.mesh.errors import MeshError
from jaxface.mesh.io import check_topology
from jaxface.models import create_model
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
from jaxface.s2d.model import build_topology, load_template
from jaxface.train import CheckpointError, TrainingInterrupted

__all__ = [
    "BUNDLE_FILES",
    "BUNDLE_FORMAT",
    "FLOAT16_TOLERANCE_MM",
    "PACKED_FILES",
    "PACKED_LAYOUT",
    "RECIPE_ENV",
    "RECIPE_TIMES",
    "SCALE_TOLERANCE",
    "SHIPPED_DIR",
    "BundleDamaged",
    "DrivenFace",
    "FaceGenerator",
    "GeneratedExpression",
    "ModelChoice",
    "ScanGenerator",
    "bundle_data",
    "bundle_name",
    "default_models_dir",
    "drive_face",
    "ensure_models",
    "find_models",
    "is_bundle",
    "load_generator",
    "missing_bundle_files",
    "pack_bundle",
    "relative_scale",
    "shipped_bundle",
    "train_bundle",
    "verify_bundle",
]

log = logging.getLogger(__name__)

BUNDLE_FORMAT = 1
#: Training time of each recipe on a 2-core CPU (for the first-run message).
RECIPE_TIMES = {"default": "about 15 minutes", "quality": "about 25 minutes", "tiny": "seconds"}
RECIPE_ENV = "JAXFACE_GENERATE_RECIPE"
_MANIFEST = "manifest.json"
#: Everything a complete bundle holds (the manifest is written last).
BUNDLE_FILES = (_MANIFEST, "motion3dgan.msgpack", "neutral.npz", "s2d/config.json",
                "s2d/template.npz", "s2d/checkpoints")
#: A neutral face may be at most this many times larger (or smaller) than the template.
SCALE_TOLERANCE = 2.0
#: ``layout`` of a packed bundle's manifest (a trained bundle has none).
PACKED_LAYOUT = "packed"
#: Everything a packed bundle holds (the manifest lists the others with their sha256).
PACKED_FILES = (_MANIFEST, "motion3dgan.npz", "s2d.npz", "neutral.npz", "template.npz")
#: A parameter array is packed in float16 unless that moves a generated vertex more (mm).
FLOAT16_TOLERANCE_MM = 0.05
#: The bundles shipped with jaxface, one folder per recipe (package data, read-only).
SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "bundles")


class BundleDamaged(ValueError):
    """A file of a packed bundle does not match the sha256 its manifest records.

    Attributes:
      path: the damaged file.
    """

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path


def bundle_name(recipe: str) -> str:
    """Folder name of a recipe's bundle in the model cache."""
    return f"faces4d-{recipe}-v{BUNDLE_FORMAT}"


def default_models_dir() -> str:
    """The model cache: ``$JAXFACE_CACHE_DIR/models`` or ``~/.cache/jaxface/models``."""
    return os.path.join(default_cache_dir(), "models")


def is_bundle(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a model bundle (it has the manifest, which is written last)."""
    return os.path.isfile(os.path.join(os.fspath(path), _MANIFEST))


def _is_packed(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds a readable manifest of the packed layout."""
    try:
        with open(os.path.join(os.fspath(path), _MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("layout") == PACKED_LAYOUT


def missing_bundle_files(path: str | os.PathLike[str]) -> list[str]:
    """The files a bundle at ``path`` lacks (``[]``: a complete bundle).

    A trained bundle needs :data:`BUNDLE_FILES`, a packed one :data:`PACKED_FILES`.
    """
    names = PACKED_FILES if _is_packed(path) else BUNDLE_FILES
    return [name for name in names if not os.path.exists(os.path.join(path, name))]


def bundle_data(manifest: dict[str, Any]) -> dict[str, str]:
    """The dataset a bundle's weights come from: ``{"name", "config", "version"}``.

    Bundles trained before the manifest recorded it are read from their dataset folder
    (``<data_dir>/<name>/<config>/<version>``).

    Example:
      >>> bundle_data({"dataset": "/data/faces4d/coma_scale_lite/2.0.0"})
      {'name': 'faces4d', 'config': 'coma_scale_lite', 'version': '2.0.0'}
    """
    data = manifest.get("data")
    if isinstance(data, dict) and {"name", "config", "version"} <= set(data):
        return {k: str(data[k]) for k in ("name", "config", "version")}
    parts = os.path.normpath(str(manifest.get("dataset", ""))).split(os.sep)[-3:]
    parts = ["unknown"] * (3 - len(parts)) + parts
    return dict(zip(("name", "config", "version"), parts, strict=True))


def shipped_bundle(recipe: str) -> str | None:
    """The bundle of ``recipe`` shipped with jaxface (under :data:`SHIPPED_DIR`), or ``None``."""
    path = os.path.join(SHIPPED_DIR, recipe)
    return path if is_bundle(path) else None


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def verify_bundle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Checks every file of a packed bundle against the sha256 its manifest records.

    Args:
      path: a packed bundle folder.

    Returns:
      The manifest.

    Raises:
      FileNotFoundError: a file the manifest lists is missing (named).
      BundleDamaged: a file's sha256 differs from the manifest's (the file is named).
      ValueError: the manifest is not a packed bundle's.
    """
    path = _bundle_path(path)
    manifest = _load_json(os.path.join(path, _MANIFEST), path, ("layout", "files"))
    files = manifest["files"]
    if manifest["layout"] != PACKED_LAYOUT or not isinstance(files, dict):
        raise ValueError(f"{os.path.join(path, _MANIFEST)}: not a packed bundle's manifest")
    for name in PACKED_FILES[1:]:
        entry = files.get(name)
        file = os.path.join(path, name)
        if not isinstance(entry, dict) or "sha256" not in entry:
            raise ValueError(f"{os.path.join(path, _MANIFEST)}: no sha256 of {name}")
        if not os.path.isfile(file):
            raise FileNotFoundError(f"{file}: missing from the packed bundle {path}")
        actual = _sha256(file)
        if actual != entry["sha256"]:
            raise BundleDamaged(file, (
                f"{file}: damaged (sha256 {actual[:12]}..., the manifest records "
                f"{str(entry['sha256'])[:12]}...); replace the bundle {path}"))
    return manifest


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


def _advice(bundle: str) -> str:
    """What to do about a damaged bundle: a packed one is replaced, a trained one retrained."""
    if _is_packed(bundle):
        return f"replace the bundle {bundle}"
    return f"delete the folder {bundle} to retrain it"


def _damaged(path: str, what: str, bundle: str) -> ValueError:
    return ValueError(f"{path}: damaged ({what}); {_advice(bundle)}")


def _load_npz(path: str, bundle: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, read fully (so damage shows here, with the file)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; {_advice(bundle)}")
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
            return {k: np.array(z[k]) for k in z.files}
    except Exception as err:  # numpy/zipfile raise many types for a damaged archive
        raise _damaged(path, "not a readable .npz archive", bundle) from err


def _load_json(path: str, bundle: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: missing; {_advice(bundle)}")
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

    Attributes:
      manifest: the bundle's manifest.
      packed: whether the bundle is packed (:func:`pack_bundle`).
      expressions: the expression names, by label.
      default_neutral: float32 ``[N, 3]`` the bundle's neutral face.
      s2d: the S2D-Dec decoder and its template.

    Raises:
      FileNotFoundError: ``path`` is not a bundle, or a file of it is missing (named).
      BundleDamaged: a file of a packed bundle does not match its checksum (named).
      ValueError: the bundle's format is not this version's, or a file is damaged (named).
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
        self.packed = self.manifest.get("layout") == PACKED_LAYOUT
        if self.packed:
            verify_bundle(path)
        neutral_path = os.path.join(path, "neutral.npz")
        neutral = _load_npz(neutral_path, path).get("vertices")
        if neutral is None or neutral.ndim != 2 or neutral.shape[1] != 3:
            raise _damaged(neutral_path, "no vertices [N, 3]", path)
        self.default_neutral: np.ndarray = neutral.astype(np.float32)
        self._sample = make_sample_fn(create_models(config.gan, len(self.expressions)))
        if self.packed:
            self._load_packed(path, config)
        else:
            self._load_trained(path)

    def _load_packed(self, path: str, config: ml_collections.ConfigDict) -> None:
        """Reads the parameters and template of a packed bundle (checksums verified)."""
        gan = _load_npz(os.path.join(path, "motion3dgan.npz"), path)
        if "reference" not in gan:
            raise _damaged(os.path.join(path, "motion3dgan.npz"), "no reference", path)
        reference = gan.pop("reference")
        self.reference = jnp.asarray(reference, jnp.float32)
        self._gen_params = jax.tree.map(jnp.asarray, unflatten_tree(gan))
        params = unflatten_tree(_load_npz(os.path.join(path, "s2d.npz"), path))
        s2d_config = ml_collections.ConfigDict(self.manifest.get("s2d_config", config.s2d))
        template = os.path.join(path, "template.npz")
        _load_npz(template, path)
        try:
            vertices, faces, landmarks = load_template(path)
        except (KeyError, TypeError, ValueError) as err:
            raise _damaged(template, f"{type(err).__name__}: {err}", path) from err
        topology = build_topology(vertices, faces, s2d_config.topology)
        model = create_model(s2d_config.model, topology=topology)
        self.s2d = S2DInference(model, params, vertices, faces, landmarks)

    def _load_trained(self, path: str) -> None:
        """Reads the parameters of a trained bundle (msgpack and an orbax checkpoint)."""
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


class ScanGenerator:
    """A :class:`FaceGenerator` on a face scan of any topology: registered, animated, carried back.

    The models' template is registered to the scan (:func:`jaxface.data.scan.register_scan`:
    landmarks from a file or found on renders of the scan, a similarity, rigid and non-rigid
    ICP). The expression is generated on the registered template turned upright (the
    registration's rotation and translation undone, the scan's size kept), each frame's
    displacements are turned back into the scan's frame and carried to the scan's vertices by
    the registration's transfer map, faded to zero far from the face (hair, neck, the back of
    the head; :mod:`jaxface.mesh.registration`). The meshes come out in the scan's topology,
    vertex order, frame and units: frame ``t`` is ``scan + transfer(R (template_t - template))``.
    It answers the calls ``jaxface generate`` makes on a :class:`FaceGenerator`.

    Args:
      generator: the models.
      scan_vertices: float ``[Vs, 3]`` the scan, metres.
      scan_faces: int ``[Fs, 3]``.
      landmarks: the scan's :class:`jaxface.data.scan.ScanLandmarks` in metres (default:
        detected on renders).
      source: the scan's file, for messages.

    Attributes:
      generator: the wrapped :class:`FaceGenerator`.
      vertices: float32 ``[Vs, 3]`` the scan.
      registration: the :class:`jaxface.mesh.registration.Registration`.
      landmarks: the landmarks used.
      neutral: float32 ``[Vt, 3]`` the registered template, upright: what the models animate.
      wall_s: seconds the landmarks and the registration took.

    Raises:
      jaxface.data.scan.NoScanFaceError: no landmarks given and no face found on the renders.
      MeshError: a scan without faces.
    """

    #: Bytes of scan meshes (float32) produced at a time; a batch is split to stay under it.
    CHUNK_BYTES = 256 << 20

    def __init__(self, generator: FaceGenerator, scan_vertices: np.ndarray,
                 scan_faces: np.ndarray, landmarks=None, *, source: str | None = None):
        from jaxface.data.scan import register_scan

        t0 = time.perf_counter()
        self.generator = generator
        self.vertices = np.asarray(scan_vertices, np.float32)
        self._faces = np.asarray(scan_faces, np.int32)
        self.registration, self.landmarks = register_scan(
            self.vertices, self._faces, generator.s2d.vertices, generator.faces, landmarks,
            source=source)
        upright = self.registration.to_template_orientation(self.registration.vertices)
        self.neutral = upright.astype(np.float32)
        self.wall_s = time.perf_counter() - t0

    @property
    def manifest(self) -> dict[str, Any]:
        """The models' manifest."""
        return self.generator.manifest

    @property
    def packed(self) -> bool:
        """Whether the models' bundle is packed."""
        return self.generator.packed

    @property
    def expressions(self) -> tuple[str, ...]:
        """The expression names, by label."""
        return self.generator.expressions

    @property
    def faces(self) -> np.ndarray:
        """int32 ``[Fs, 3]`` the scan's faces (of every output mesh)."""
        return self._faces

    @property
    def num_vertices(self) -> int:
        """``Vs``, the scan's vertices."""
        return int(self.vertices.shape[0])

    def label(self, expression: str) -> int:
        """The label of an expression name (:meth:`FaceGenerator.label`)."""
        return self.generator.label(expression)

    def scale_of(self, vertices: np.ndarray) -> float:
        """How many times larger than the template a face is whose vertices are a scaled scan."""
        return self.generator.scale_of(self.neutral) * relative_scale(vertices, self.vertices)

    def check_neutral(self, vertices: np.ndarray, faces: np.ndarray | None = None,
                      source: str | None = None) -> None:
        """Checks that ``vertices`` are the scan's and the registered face the models' size.

        Raises:
          MeshError: another vertex count, or a registered face more than
            :data:`SCALE_TOLERANCE` times larger or smaller than the template (field
            ``"scale"``: the scan is in other units than the ones given).
        """
        del faces  # the scan's own
        if np.shape(vertices) != self.vertices.shape:
            raise MeshError(f"expected the registered scan's {self.num_vertices} vertices, got "
                            f"{list(np.shape(vertices))}", source=source, field="vertices")
        self.generator.check_neutral(self.neutral, source=source)

    def _on_scan(self, result: GeneratedExpression, base: np.ndarray
                 ) -> Iterator[GeneratedExpression]:
        """``result`` carried to the scan, in pieces of at most :attr:`CHUNK_BYTES`."""
        from jaxface.mesh.registration import transfer_displacements

        samples, frames = result.meshes.shape[:2]
        step = max(1, self.CHUNK_BYTES // (frames * self.num_vertices * 12))
        for first in range(0, samples, step):
            part = result.meshes[first:first + step]
            meshes = np.empty((part.shape[0], frames, self.num_vertices, 3), np.float32)
            for s, sequence in enumerate(part):
                moved = self.registration.to_scan_orientation(sequence - self.neutral)
                meshes[s] = base + transfer_displacements(self.registration.transfer, moved)
            yield dataclasses.replace(
                result, meshes=meshes, neutral=base, landmarks=result.landmarks[first:first + step],
                q=result.q[first:first + step])

    def _base(self, neutral: np.ndarray | None) -> np.ndarray:
        if neutral is None:
            return self.vertices
        self.check_neutral(neutral)
        return np.asarray(neutral, np.float32)

    def generate(self, neutral: np.ndarray | None, expression: str, num_samples: int = 1,
                 seed: int = 0) -> GeneratedExpression:
        """:meth:`FaceGenerator.generate` on the scan.

        Args:
          neutral: float ``[Vs, 3]`` the scan (or ``None``: the scan registered).
          expression: the expression name.
          num_samples: number of different motions.
          seed: sampling seed (the same motions as the models generate on :attr:`neutral`).

        Returns:
          A :class:`GeneratedExpression` whose meshes are ``float32 [S, T, Vs, 3]`` in the
          scan's topology and frame, and whose neutral is the scan.
        """
        base = self._base(neutral)
        parts = list(self._on_scan(self.generator.generate(self.neutral, expression,
                                                           num_samples, seed), base))
        return dataclasses.replace(
            parts[0], meshes=np.concatenate([p.meshes for p in parts]),
            landmarks=np.concatenate([p.landmarks for p in parts]),
            q=np.concatenate([p.q for p in parts]))

    def generate_batches(self, neutral: np.ndarray | None, expression: str, num_samples: int,
                         seed: int = 0, batch_size: int = 32) -> Iterator[GeneratedExpression]:
        """:meth:`FaceGenerator.generate_batches` on the scan (batches split to bound memory)."""
        base = self._base(neutral)
        for result in self.generator.generate_batches(self.neutral, expression, num_samples,
                                                      seed, batch_size):
            yield from self._on_scan(result, base)

    def record(self) -> dict[str, Any]:
        """The registration as JSON-ready values.

        Returns:
          ``template_vertices``, ``scan_vertices``, ``landmarks`` (how many, which set, from
          where), ``residual_mm`` (mean, 95th percentile and max of the registered template's
          distance to the scan, over the vertices with an accepted pair), ``inliers``,
          ``scale`` (scan size / template size), ``faded_vertices`` (scan vertices that take
          less than all of the motion), ``still_vertices`` (those that take none) and
          ``wall_s``.
        """
        reg = self.registration
        r = 1000.0 * (reg.residual[reg.inliers] if reg.inliers.any() else reg.residual)
        weight = reg.transfer.weight
        return {
            "template_vertices": int(self.neutral.shape[0]),
            "scan_vertices": self.num_vertices,
            "landmarks": {"set": self.landmarks.scheme, "source": self.landmarks.source,
                          "present": int(self.landmarks.present.sum())},
            "residual_mm": {"mean": round(float(r.mean()), 4),
                            "p95": round(float(np.percentile(r, 95)), 4),
                            "max": round(float(r.max()), 4)},
            "inliers": int(reg.inliers.sum()),
            "scale": round(float(self.generator.scale_of(self.neutral)), 4),
            "faded_vertices": int((weight < 1.0).sum()),
            "still_vertices": int((weight == 0.0).sum()),
            "wall_s": round(self.wall_s, 2),
        }

    def describe(self) -> str:
        """One line for the user: what was registered, on which landmarks, how well."""
        rec = self.record()
        res = rec["residual_mm"]
        return (f"registered the models' template ({rec['template_vertices']} vertices) to the "
                f"scan ({rec['scan_vertices']} vertices) on {self.landmarks.describe()}: "
                f"distance to the scan mean {res['mean']:.2f} mm, 95% {res['p95']:.2f} mm, "
                f"max {res['max']:.2f} mm over {rec['inliers']} matched vertices; "
                f"{rec['still_vertices']} scan vertices far from the face stay still; "
                f"{rec['wall_s']:.1f} s")


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
        "data": {"name": config.dataset, "config": config.dataset_config,
                 "version": os.path.basename(os.path.normpath(dataset))},
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


# ----------------------------------------------------------------------------- packing


def _float16_roundtrip(array: np.ndarray) -> np.ndarray:
    """``array`` as it reads back after a float16 round trip (non-float arrays unchanged)."""
    if not np.issubdtype(array.dtype, np.floating):
        return array
    return array.astype(np.float16).astype(array.dtype)


def _check_sequences(generator: FaceGenerator, seed: int) -> np.ndarray:
    """One generated sequence of every expression on the default neutral face, ``[E, T, N, 3]``."""
    return np.stack([generator.generate(None, name, 1, seed).meshes[0]
                     for name in generator.expressions])


def _vertex_difference_mm(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Max and mean vertex distance between two mesh stacks in metres, in mm."""
    d = 1000.0 * np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    return float(d.max()), float(d.mean())


def _with_params(generator: FaceGenerator, gan: dict[str, np.ndarray],
                 s2d: dict[str, np.ndarray]) -> FaceGenerator:
    """A shallow copy of ``generator`` with other (flat) parameters of the same shapes."""
    other = copy.copy(generator)
    other._gen_params = jax.tree.map(jnp.asarray, unflatten_tree(gan))
    other.s2d = dataclasses.replace(generator.s2d, params=unflatten_tree(s2d))
    return other


def pack_bundle(
    source: str | os.PathLike[str], path: str | os.PathLike[str], *,
    tolerance_mm: float = FLOAT16_TOLERANCE_MM, seed: int = 0, verbose: bool = False,
) -> dict[str, Any]:
    """Writes the packed (shipped) form of a trained bundle into ``path`` (which must not exist).

    The parameters are stored in float16 when, all of them rounded to float16, no vertex of
    the check sequences (one sequence of every expression on the default neutral face, sampled
    with ``seed``) moves by more than ``tolerance_mm``. Otherwise every array whose float16
    round trip alone moves a vertex by more stays float32, and should the others together
    still exceed the tolerance, the ones that cost most alone are kept in float32 until the
    sequences are within it. The neutral face, the template and
    the Motion3DGAN reference point stay float32. The manifest records the configs, the
    dataset, the sha256 and size of every file, the dtypes and the measured difference (max
    and mean vertex distance in mm) between the packed and the trained parameters.

    The bundle is written into a staging folder beside ``path`` and renamed into place when
    complete: a failure leaves nothing at ``path``.

    Args:
      source: a trained bundle (:func:`train_bundle`).
      path: the packed bundle folder to create.
      tolerance_mm: the largest vertex difference float16 may cause, in mm.
      seed: sampling seed of the check sequences.
      verbose: print what happens.

    Returns:
      The manifest written.

    Raises:
      FileExistsError: ``path`` exists.
      ValueError: ``source`` is already packed, or ``tolerance_mm`` is not positive.
    """
    if not tolerance_mm > 0:
        raise ValueError(f"tolerance_mm must be positive, got {tolerance_mm}")
    path = os.path.abspath(os.fspath(path))
    if os.path.lexists(path):
        raise FileExistsError(f"{path}: exists; a bundle is packed into a new folder")
    generator = FaceGenerator(source)
    if generator.packed:
        raise ValueError(f"{generator.path}: already packed")
    gan = flatten_tree(generator._gen_params)
    s2d = flatten_tree(generator.s2d.params)
    _say(f"packing {len(gan)} Motion3DGAN and {len(s2d)} S2D-Dec arrays "
         f"({sum(a.size for a in (*gan.values(), *s2d.values())):,} numbers)", verbose)
    base = _check_sequences(generator, seed)
    half_gan = {k: _float16_roundtrip(v) for k, v in gan.items()}
    half_s2d = {k: _float16_roundtrip(v) for k, v in s2d.items()}
    finite = all(np.isfinite(v).all() for v in (*half_gan.values(), *half_s2d.values())
                 if np.issubdtype(v.dtype, np.floating))
    max_mm, mean_mm = _vertex_difference_mm(
        _check_sequences(_with_params(generator, half_gan, half_s2d), seed), base)
    cost = {}  # the difference float16 makes to each array alone, max mm
    for part, full, half in (("gan", gan, half_gan), ("s2d", s2d, half_s2d)):
        if finite and max_mm <= tolerance_mm:
            break
        for key in full:
            if not np.issubdtype(full[key].dtype, np.floating):
                continue
            if not np.isfinite(half[key]).all():  # beyond float16's range
                cost[part, key] = float("inf")
                continue
            trial = {**full, key: half[key]}
            other = _with_params(generator, *((trial, s2d) if part == "gan" else (gan, trial)))
            cost[part, key] = _vertex_difference_mm(_check_sequences(other, seed), base)[0]
    wide = {k for k, c in cost.items() if c > tolerance_mm}

    def packed_generator():
        g = {k: gan[k] if ("gan", k) in wide else half_gan[k] for k in gan}
        s = {k: s2d[k] if ("s2d", k) in wide else half_s2d[k] for k in s2d}
        return _with_params(generator, g, s)

    if wide:
        max_mm, mean_mm = _vertex_difference_mm(_check_sequences(packed_generator(), seed),
                                                base)
    for key in sorted(set(cost) - wide, key=lambda k: -cost[k]):
        if max_mm <= tolerance_mm:
            break
        wide.add(key)
        max_mm, mean_mm = _vertex_difference_mm(_check_sequences(packed_generator(), seed), base)
    _say(f"float16 vs float32: max {max_mm:.4f} mm, mean {mean_mm:.5f} mm over "
         f"{base.shape[0]} sequences; {len(wide)} arrays kept in float32", verbose)

    def stored(part, flat):
        return {k: v if (part, k) in wide or not np.issubdtype(v.dtype, np.floating)
                else v.astype(np.float16) for k, v in flat.items()}

    reference = np.asarray(generator.reference, np.float32)
    staging = staging_dir(path)
    try:
        folder = os.path.join(staging, "bundle")
        write_npz(os.path.join(folder, "motion3dgan.npz"),
                  {**stored("gan", gan), "reference": reference})
        write_npz(os.path.join(folder, "s2d.npz"), stored("s2d", s2d))
        shutil.copyfile(os.path.join(generator.path, "neutral.npz"),
                        os.path.join(folder, "neutral.npz"))
        shutil.copyfile(os.path.join(generator.path, "s2d", "template.npz"),
                        os.path.join(folder, "template.npz"))
        with open(os.path.join(generator.path, "s2d", "config.json"), encoding="utf-8") as f:
            s2d_config = json.load(f)
        manifest = {k: v for k, v in generator.manifest.items() if k != "dataset"}
        data = bundle_data(generator.manifest)
        manifest.update({
            "layout": PACKED_LAYOUT,
            "data": data,
            "dataset": "/".join((data["name"], data["config"], data["version"])),
            "s2d_config": s2d_config,
            "files": {name: {"sha256": _sha256(os.path.join(folder, name)),
                             "bytes": os.path.getsize(os.path.join(folder, name))}
                      for name in PACKED_FILES[1:]},
            "float32_arrays": sorted(f"{part}/{key}" for part, key in wide),
            "float16": {"tolerance_mm": tolerance_mm, "seed": seed,
                        "sequences": int(base.shape[0]), "frames": int(base.shape[1]),
                        "max_mm": round(max_mm, 6), "mean_mm": round(mean_mm, 7)},
            "packed": time.strftime("%Y-%m-%dT%H:%M:%S"),
        })
        write_json(os.path.join(folder, _MANIFEST), manifest)  # last
        os.rename(folder, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
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


@dataclasses.dataclass(frozen=True)
class ModelChoice:
    """The bundle :func:`find_models` chose and where it came from.

    Attributes:
      path: the bundle folder.
      origin: ``"given"`` (an explicit bundle folder), ``"cached"`` (the model cache),
        ``"shipped"`` (shipped with jaxface) or ``"trained"`` (trained into the cache now).
      recipe: the recipe looked up (``None`` for a given bundle).
    """

    path: str
    origin: str
    recipe: str | None


def find_models(
    models: str | os.PathLike[str] | None = None, recipe: str | None = None, *,
    train: bool = False, verbose: bool = True,
) -> ModelChoice:
    """The bundle to generate with: given, cached, shipped, or else trained into the cache.

    The lookup order: ``models`` when it is a bundle folder; the cache's bundle of the recipe
    when it is complete; the recipe's bundle shipped with jaxface (:func:`shipped_bundle`);
    otherwise the recipe is trained into the cache. ``train`` skips the cache and the shipped
    bundle and trains into the cache, replacing a cached bundle of the recipe in one step.

    A cached bundle with files missing (e.g. a partly deleted folder) is retrained and then
    replaced in one step; a warning names what was missing.

    Args:
      models: a bundle folder (used as is), or a model-cache folder holding bundles (default
        :func:`default_models_dir`).
      recipe: the recipe to look up or train (default: ``$JAXFACE_GENERATE_RECIPE`` or
        ``"default"``).
      train: train the recipe into the cache even when a bundle exists.
      verbose: print progress when training.

    Returns:
      A :class:`ModelChoice`.

    Raises:
      ValueError: an unknown recipe, or ``train`` with ``models`` a bundle folder (training
        writes into a cache folder).
      TrainingInterrupted: Ctrl-C while training (nothing is kept: the next run trains again).
    """
    if models is not None and is_bundle(models):
        if train:
            raise ValueError(f"{os.path.abspath(os.fspath(models))} is a model bundle; training "
                             "writes a new bundle into a cache folder, not into a bundle")
        return ModelChoice(os.path.abspath(os.fspath(models)), "given", None)
    source = "" if recipe else f" (from ${RECIPE_ENV})"
    recipe = recipe or os.environ.get(RECIPE_ENV) or "default"
    if recipe not in recipes.RECIPES:
        raise ValueError(f"unknown generation recipe {recipe!r}{source}; choose from "
                         f"{', '.join(recipes.RECIPES)}")
    root = os.path.abspath(os.fspath(models)) if models is not None else default_models_dir()
    final = os.path.join(root, bundle_name(recipe))
    missing = missing_bundle_files(final)
    if not train:
        if not missing:
            return ModelChoice(final, "cached", recipe)
        shipped = shipped_bundle(recipe)
        if shipped is not None and not os.path.lexists(final):
            return ModelChoice(shipped, "shipped", recipe)
    os.makedirs(root, exist_ok=True)
    _remove_stale_staging(root)
    if train:
        _say(f"Training the {recipe!r} models on the procedural face set into {final} "
             f"({RECIPE_TIMES[recipe]} on a 2-core CPU).", verbose)
    elif os.path.lexists(final):
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
        if train:
            replace_dir(bundle, final)
        else:
            _publish_bundle(bundle, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _say(f"Trained in {manifest['wall_s']:.0f} s; models cached at {final}", verbose)
    return ModelChoice(final, "trained", recipe)


def ensure_models(
    models: str | os.PathLike[str] | None = None, recipe: str | None = None, *,
    train: bool = False, verbose: bool = True,
) -> str:
    """The folder of the bundle :func:`find_models` chooses (training it when none exists).

    Args:
      models: a bundle folder, or a model-cache folder holding bundles.
      recipe: the recipe to look up or train.
      train: train the recipe into the cache even when a bundle exists.
      verbose: print progress when training.

    Returns:
      The bundle folder.
    """
    return find_models(models, recipe, train=train, verbose=verbose).path


# ----------------------------------------------------------------------------- driven by a video


@dataclasses.dataclass(frozen=True)
class DrivenFace:
    """A neutral face moved by a tracked expression (:func:`drive_face`).

    Attributes:
      meshes: float32 ``[T, N, 3]`` the face in every frame, metres.
      neutral: float32 ``[N, 3]`` the neutral face that was moved.
      landmarks: float32 ``[T, 68, 3]`` the landmarks S2D-Dec was asked to follow: the neutral's
        68 landmarks plus the retargeted expression.
      displacements: float32 ``[T, 468, 3]`` the expression carried onto the neutral's base
        mesh (its first 468 vertices), metres.
    """

    meshes: np.ndarray
    neutral: np.ndarray
    landmarks: np.ndarray
    displacements: np.ndarray


def drive_face(s2d: S2DInference, neutral: np.ndarray, track: ExpressionTrack,
               batch_size: int = 32) -> DrivenFace:
    """Moves a neutral face with a tracked expression (a person's, from a video) via S2D-Dec.

    The track's displacements (the person's expression, head pose removed:
    :func:`jaxface.data.retarget.track_expression`) are carried onto the neutral's base mesh in
    local surface frames (:func:`jaxface.data.retarget.retarget`); its 68 landmarks (the
    template's vertices :data:`IBUG68_VERTICES`) with the carried displacement are each frame's
    landmark target, and S2D-Dec turns the landmark displacement, normalised as in training,
    into the dense displacement of the whole face::

      meshes_t = neutral + S2D-Dec(normalize(L + d_t) - normalize(L)),  L = neutral[IBUG68]

    Args:
      s2d: a trained S2D-Dec on the face template (e.g. ``FaceGenerator.s2d``).
      neutral: float ``[N, 3]`` the face to move, the model's template topology, metres.
      track: the expression to follow.
      batch_size: frames decoded at a time.

    Returns:
      A :class:`DrivenFace` with ``T = track.num_frames`` frames.

    Raises:
      ValueError: a model whose template is not the face template (its landmarks are not the
        template's vertices), or a neutral of another shape (:class:`MeshError`).
    """
    lms = s2d.landmarks
    if (lms.is_barycentric or tuple(lms.vertex_indices.tolist()) != IBUG68_VERTICES
            or s2d.num_vertices < NUM_BASE_VERTICES):
        raise ValueError(
            f"the S2D-Dec model's template ({s2d.num_vertices} vertices) is not the jaxface face "
            "template (its 68 landmarks are not the template's vertices); a tracked face drives "
            "models of the face template only")
    neutral = np.asarray(neutral, np.float32)
    if neutral.shape != (s2d.num_vertices, 3):
        raise MeshError(f"expected a neutral face [{s2d.num_vertices}, 3], got "
                        f"{list(neutral.shape)}", field="vertices")
    moved = retarget(track.displacements, track.neutral, neutral[:NUM_BASE_VERTICES])
    moved = moved.astype(np.float32)
    targets = s2d.landmarks_of(neutral)[None] + moved[:, list(IBUG68_VERTICES)]
    disp = landmark_displacement(targets, s2d.landmarks_of(neutral))
    meshes = neutral[None] + s2d.decode(np.asarray(disp, np.float32), batch_size)
    return DrivenFace(meshes=np.asarray(meshes, np.float32), neutral=neutral,
                      landmarks=np.asarray(targets, np.float32), displacements=moved)
