"""The decoupling metric's embedding networks (paper §5.3 and supplement).

Two networks, one for identity and one for expression, map an image of a mesh to an embedding
with the triplet loss (:func:`jaxface.decoupled.losses.triplet_loss`); two meshes are judged
"the same" identity (expression) when the squared distance of their embeddings is below a
threshold. As in the supplement:

* the image is an orthographic frontal projection of the mesh whose RGB channels encode its
  vertex normals (:class:`NormalRenderer`, rendered with :func:`jaxface.viz.render.render_mesh`
  from one camera framing the template, so faces keep their relative size);
* the threshold maximises the accuracy on validation pairs from the test part (as many positive
  as negative pairs), keeping the false acceptance rate (negatives judged "same") at most
  ``max_far`` (:func:`choose_threshold`).

The networks train through :func:`jaxface.train.fit` on the real training meshes, with the
subject as identity label and the strength labels (:func:`jaxface.decoupled.data.strength_labels`)
as expression label.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxface.data.batches import InMemoryBatches
from jaxface.decoupled.losses import triplet_loss
from jaxface.decoupled.model import create_train_state
from jaxface.mesh.topology import vertex_normals
from jaxface.models import FaceEmbedding, create_model
from jaxface.sharding import data_mesh
from jaxface.train import (
    LoopConfig,
    fit,
    make_supervised_step,
    map_in_batches,
)
from jaxface.viz.render import Camera, fit_camera, render_mesh

__all__ = [
    "Embedder",
    "NormalRenderer",
    "Threshold",
    "choose_threshold",
    "pair_distances",
    "sample_pairs",
    "train_embedding",
]


@dataclasses.dataclass(frozen=True)
class NormalRenderer:
    """Frontal orthographic normal images of meshes of one topology.

    Attributes:
      faces: int32 ``[F, 3]``.
      camera: the camera (one for every mesh).
    """

    faces: np.ndarray
    camera: Camera

    @classmethod
    def for_template(cls, reference: np.ndarray, faces: np.ndarray, size: int,
                     margin: float = 0.1) -> NormalRenderer:
        """A renderer whose camera frames ``reference`` with ``margin`` to spare."""
        return cls(np.asarray(faces, np.int32), fit_camera(reference, int(size), margin=margin))

    def __call__(self, meshes: np.ndarray) -> np.ndarray:
        """float32 ``[M, S, S, 3]`` images in ``[-0.5, 0.5]`` of meshes ``[M, N, 3]``: the normal
        ``n`` is drawn as the colour ``(n + 1) / 2`` (background: white)."""
        out = []
        for v in np.asarray(meshes, np.float64):
            colors = 0.5 * (vertex_normals(v, self.faces) + 1.0)
            image = render_mesh(v, self.faces, camera=self.camera, colors=colors, ambient=1.0)
            out.append(image.astype(np.float32) / 255.0 - 0.5)
        size = self.camera.image_size
        return np.stack(out) if out else np.zeros((0, *size, 3), np.float32)


@functools.partial(jax.jit, static_argnums=0)
def _embed(model, params, images):
    return model.apply({"params": params}, images)


@dataclasses.dataclass(frozen=True, eq=False)
class Embedder:
    """A trained embedding network with its renderer.

    Attributes:
      model: the network.
      params: its parameters.
      renderer: meshes -> images.
      threshold: squared embedding distance below which two meshes are "the same" (``None``
        until chosen).
      batch_size: images per jitted call.
    """

    model: FaceEmbedding
    params: Any
    renderer: NormalRenderer
    threshold: float | None = None
    batch_size: int = 64

    def embed_images(self, images: np.ndarray) -> np.ndarray:
        """float32 ``[M, D]`` unit embeddings of images ``[M, S, S, 3]``."""
        return map_in_batches(functools.partial(_embed, self.model, self.params), (images,),
                              self.batch_size)

    def embed(self, meshes: np.ndarray) -> np.ndarray:
        """float32 ``[M, D]`` unit embeddings of meshes ``[M, N, 3]``."""
        return self.embed_images(self.renderer(meshes))

    def same(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """bool ``[M]``: embeddings ``a[i]`` and ``b[i]`` (``[M, D]``) are "the same"."""
        if self.threshold is None:
            raise ValueError("the embedder has no threshold yet (choose_threshold)")
        return np.sum(np.square(a - b), axis=-1) < self.threshold


def sample_pairs(labels: np.ndarray, rng: np.random.Generator,
                 num_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """``num_pairs`` positive pairs (same label, two different rows) and as many negative pairs
    (different labels) of the labelled rows (label ``>= 0``); int64 ``[P, 2]`` each.

    Raises:
      ValueError: no positive or no negative pair exists.
    """
    labels = np.asarray(labels)
    rows = np.flatnonzero(labels >= 0)
    groups = [rows[labels[rows] == c] for c in np.unique(labels[rows])]
    groups = [g for g in groups if len(g) >= 2]
    if not groups or len(np.unique(labels[rows])) < 2:
        raise ValueError("validation pairs need a label with two examples and two labels")
    sizes = np.asarray([len(g) * (len(g) - 1) for g in groups], float)
    which = rng.choice(len(groups), size=num_pairs, p=sizes / sizes.sum())
    positive = np.stack([rng.choice(groups[g], size=2, replace=False) for g in which])
    negative = []
    while len(negative) < num_pairs:
        a, b = rng.choice(rows, size=2, replace=False)
        if labels[a] != labels[b]:
            negative.append((a, b))
    return positive.astype(np.int64), np.asarray(negative, np.int64)


def pair_distances(embeddings: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """float ``[P]`` squared distances of the embedding pairs ``pairs [P, 2]``."""
    return np.sum(np.square(embeddings[pairs[:, 0]] - embeddings[pairs[:, 1]]), axis=-1)


@dataclasses.dataclass(frozen=True)
class Threshold:
    """A decision threshold and its validation scores.

    Attributes:
      value: "same" when the squared distance is below it.
      accuracy: fraction of the validation pairs classified right.
      far: false acceptance rate (negatives judged "same").
      tpr: true positive rate (positives judged "same").
    """

    value: float
    accuracy: float
    far: float
    tpr: float


def choose_threshold(positive: np.ndarray, negative: np.ndarray, max_far: float) -> Threshold:
    """The threshold of best accuracy whose false acceptance rate is at most ``max_far``.

    Candidates are the midpoints between consecutive sorted distances (and below the smallest).

    Example:
      >>> t = choose_threshold(np.array([0.1, 0.2, 0.9]), np.array([0.5, 1.0, 1.2]), 0.0)
      >>> round(t.value, 2), round(t.accuracy, 3), t.far
      (0.35, 0.833, 0.0)
    """
    d = np.concatenate([positive, negative]).astype(np.float64)
    is_pos = np.concatenate([np.ones(len(positive), bool), np.zeros(len(negative), bool)])
    order = np.argsort(d, kind="stable")
    d, is_pos = d[order], is_pos[order]
    cuts = np.concatenate([[d[0] - 1e-6], 0.5 * (d[1:] + d[:-1]), [d[-1] + 1e-6]])
    accepted_pos = np.concatenate([[0], np.cumsum(is_pos)])  # below cut k: the first k
    accepted_neg = np.concatenate([[0], np.cumsum(~is_pos)])
    far = accepted_neg / max(len(negative), 1)
    tpr = accepted_pos / max(len(positive), 1)
    accuracy = (accepted_pos + (len(negative) - accepted_neg)) / len(d)
    allowed = far <= max_far + 1e-12
    best = int(np.argmax(np.where(allowed, accuracy, -1.0)))
    return Threshold(float(cuts[best]), float(accuracy[best]), float(far[best]),
                     float(tpr[best]))


@functools.lru_cache(maxsize=4)
def _triplet_step(model: FaceEmbedding, margin: float, mesh):
    """The jitted triplet-loss step of an architecture (shared by the identity and expression
    networks: one compilation)."""

    def loss_fn(params, batch):
        emb = model.apply({"params": params}, batch["image"])
        return triplet_loss(emb, batch["label"], margin), {}

    return make_supervised_step(loss_fn, mesh=mesh)


def train_embedding(config, workdir: str, renderer: NormalRenderer, images: np.ndarray,
                    labels: np.ndarray, *, stream: int = 0) -> tuple[Embedder, dict]:
    """Trains (or resumes) an embedding network with the triplet loss.

    Args:
      config: a :mod:`jaxface.configs.decoupled` config (``embedding``, ``seed``, loop fields).
      workdir: run folder of this network.
      renderer: the renderer the images came from.
      images: float32 ``[M, S, S, 3]`` training images.
      labels: int ``[M]`` their labels (``-1``: left out).
      stream: seed word of the batch order (one per network).

    Returns:
      ``(embedder without threshold, info)``.
    """
    cfg = config.embedding
    keep = np.asarray(labels) >= 0
    mesh = data_mesh()
    batches = InMemoryBatches({"image": images[keep], "label": np.asarray(labels)[keep]},
                              int(cfg.batch_size), mesh=mesh, seed=int(config.seed),
                              stream=(2, stream), what="embedding images")
    model = create_model(cfg)
    state = create_train_state(model, int(config.seed) + stream,
                               (jnp.zeros((1, *images.shape[1:])),),
                               optax.adam(cfg.learning_rate))
    loop = LoopConfig.from_config(config, cfg.num_epochs, desc="embedding")
    state, run = fit(state, _triplet_step(model, float(cfg.margin), mesh), batches, loop,
                     os.path.abspath(workdir))
    embedder = Embedder(model, jax.device_get(state.params), renderer,
                        batch_size=int(config.eval_batch_size))
    return embedder, run.summary()
