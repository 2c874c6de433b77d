"""The decoupled face GAN's loss terms besides the Wasserstein ones (paper §4.3).

* :func:`weighted_cross_entropy`: the auxiliary classifiers' losses (eq. 7 and 9), weighted per
  class for unbalanced labels; unlabelled examples (label ``-1``) are ignored.
* :func:`feature_consistency`: the feature loss (eq. 10-11) of samples generated in pairs that
  share a code: rows ``2i`` and ``2i + 1`` of the batch.
* :func:`laplacian_regularizer`: eq. 12, the squared norm of the cotangent Laplacian of the
  generated displacements, with the Laplacian as a fixed sparse matrix (:class:`SparseLaplacian`).
* :func:`triplet_loss`: the embedding networks' loss of the decoupling metric (FaceNet).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.mesh.topology import cotangent_laplacian

__all__ = [
    "SparseLaplacian",
    "feature_consistency",
    "laplacian_regularizer",
    "triplet_loss",
    "weighted_cross_entropy",
]


@dataclasses.dataclass(frozen=True, eq=False)
class SparseLaplacian:
    """The cotangent Laplacian of a mesh as COO numpy constants (never parameters).

    Attributes:
      rows: int32 ``[E]``.
      cols: int32 ``[E]``.
      values: float32 ``[E]`` (``L[rows[e], cols[e]] = values[e]``, diagonal included).
      num_vertices: ``N``.
    """

    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    num_vertices: int

    @classmethod
    def of_mesh(cls, vertices: np.ndarray, faces: np.ndarray) -> SparseLaplacian:
        """The cotangent Laplacian (:func:`jaxface.mesh.topology.cotangent_laplacian`) of a mesh."""
        lap = cotangent_laplacian(vertices, faces).tocoo()
        return cls(lap.row.astype(np.int32), lap.col.astype(np.int32),
                   lap.data.astype(np.float32), int(lap.shape[0]))

    def apply(self, x: jax.Array) -> jax.Array:
        """``L @ x`` for every example: ``x [B, N, C] -> [B, N, C]``."""
        gathered = jnp.take(x, jnp.asarray(self.cols), axis=1) * jnp.asarray(self.values)[:, None]
        out = jax.ops.segment_sum(jnp.moveaxis(gathered, 1, 0), jnp.asarray(self.rows),
                                  num_segments=self.num_vertices)
        return jnp.moveaxis(out, 0, 1)


def laplacian_regularizer(displacements: jax.Array, laplacian: SparseLaplacian) -> jax.Array:
    """``mean_b mean_v |(L D_b)_v|^2`` (eq. 12 averaged over the batch and the vertices).

    Args:
      displacements: ``[B, N, 3]`` generated displacements ``D``.
      laplacian: the reference mesh's cotangent Laplacian.

    Returns:
      float32 scalar.
    """
    ld = laplacian.apply(displacements)
    return jnp.mean(jnp.sum(jnp.square(ld), axis=-1))


def weighted_cross_entropy(logits: jax.Array, labels: jax.Array, weights: jax.Array) -> jax.Array:
    """Class-weighted softmax cross-entropy over the labelled examples.

    ``sum_i w[y_i] CE_i / sum_i w[y_i]`` over the examples with ``y_i >= 0`` (the weighted mean
    of PyTorch's ``CrossEntropyLoss(weight=w)``); 0 when no example is labelled.

    Args:
      logits: ``[B, K]``.
      labels: int ``[B]``, ``-1`` for unlabelled.
      weights: float ``[K]`` class weights.

    Returns:
      float32 scalar.

    Example:
      >>> logits = jnp.array([[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
      >>> loss = weighted_cross_entropy(logits, jnp.array([0, 1, -1]), jnp.array([1.0, 1.0]))
      >>> round(float(loss), 4)  # (log 2 + log(1 + e^2)) / 2
      1.41
    """
    labelled = labels >= 0
    safe = jnp.where(labelled, labels, 0)
    log_p = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(log_p, safe[:, None], axis=-1)[:, 0]
    w = jnp.where(labelled, jnp.asarray(weights, jnp.float32)[safe], 0.0)
    total = jnp.sum(w)
    return jnp.where(total > 0, jnp.sum(w * nll) / jnp.where(total > 0, total, 1.0), 0.0)


def feature_consistency(features: jax.Array) -> jax.Array:
    """Feature loss of pairs: ``mean_i |f(x_2i) - f(x_2i+1)|^2`` (eq. 10-11).

    Args:
      features: ``[B, F]`` classifier features of a batch generated in pairs (``B`` even); the
        two rows of a pair share the code whose features should agree.

    Returns:
      float32 scalar.
    """
    if features.shape[0] % 2:
        raise ValueError(f"features of pairs need an even batch, got {features.shape[0]} rows")
    pairs = features.reshape(features.shape[0] // 2, 2, -1)
    return jnp.mean(jnp.sum(jnp.square(pairs[:, 0] - pairs[:, 1]), axis=-1))


def triplet_loss(embeddings: jax.Array, labels: jax.Array, margin: float) -> jax.Array:
    """Batch-all triplet loss on squared distances, averaged over the active triplets.

    Every (anchor, positive, negative) of the batch with ``y_a = y_p != y_n`` (``a != p``, all
    labelled, label ``>= 0``) contributes ``max(d_ap - d_an + margin, 0)``; the mean is over the
    triplets whose term is positive (Hermans et al., 2017); 0 if none is.

    Args:
      embeddings: ``[B, D]``.
      labels: int ``[B]``, ``-1`` for unlabelled.
      margin: ``alpha``.

    Returns:
      float32 scalar.
    """
    sq = jnp.sum(jnp.square(embeddings), axis=-1)
    dist = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.T, 0.0)
    labelled = labels >= 0
    same = (labels[:, None] == labels[None, :]) & labelled[:, None] & labelled[None, :]
    positive = same & ~jnp.eye(labels.shape[0], dtype=bool)
    negative = ~same & labelled[:, None] & labelled[None, :]
    valid = positive[:, :, None] & negative[:, None, :]
    terms = jnp.where(valid, dist[:, :, None] - dist[:, None, :] + margin, 0.0)
    terms = jnp.maximum(terms, 0.0)
    active = jnp.sum(terms > 1e-12)
    return jnp.sum(terms) / jnp.maximum(active, 1)
