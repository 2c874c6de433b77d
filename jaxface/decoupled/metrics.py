"""Table 1's model metrics (paper §5.3): diversity, specificity and decoupling.

Distances between meshes are *mean vertex distances* in millimetres: the mean over vertices of
the Euclidean distance between corresponding vertices.

* diversity: the mean distance of pairs of samples; globally (independent codes), for pairs
  sharing the identity code ("identity diversity", Div-Id) and for pairs sharing the expression
  code (Div-Exp). Other codes (and the noise) are drawn independently. The training set is scored
  with its labels: random pairs, pairs of one subject, pairs of one expression class.
* specificity: the mean, over samples, of the distance to the nearest training mesh.
* decoupling: identity decoupling draws faces, keeps each one's identity code and redraws the
  rest several times; it is the fraction of (face, variation) pairs the identity embedding judges
  "the same" identity. Expression decoupling keeps the expression code and uses the expression
  embedding. The training set's rate is that of random pairs of one subject (different
  expressions allowed) and of one expression class (different subjects).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.decoupled.codes import CodeModel

__all__ = [
    "FACTORS",
    "data_decoupling",
    "data_diversity",
    "decoupling",
    "diversity",
    "mean_vertex_distance_mm",
    "sample_shared",
    "specificity",
]

#: The factors a code can share.
FACTORS = ("identity", "expression")


def mean_vertex_distance_mm(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """float64 ``[M]`` mean vertex distance (mm) of mesh pairs ``a[i]``, ``b[i]`` (metres).

    Example:
      >>> a = np.zeros((1, 2, 3)); b = np.array([[[0.001, 0, 0], [0, 0.003, 0]]])
      >>> mean_vertex_distance_mm(a, b)
      array([2.])
    """
    d = np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
    return 1e3 * d.mean(axis=-1)


def sample_shared(model: CodeModel, key: jax.Array, n: int, share: str | None,
                  batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """``n`` pairs of samples that share one code (``"identity"``, ``"expression"``) or none
    (``None``); every other code is drawn independently. Returns ``([n, N, 3], [n, N, 3])``."""
    if share not in (None, *FACTORS):
        raise ValueError(f"share must be None or one of {FACTORS}, got {share!r}")
    k_a, k_b = jax.random.split(key)
    a = model.sample_codes(k_a, n)
    b = list(model.sample_codes(k_b, n))
    if share == "identity":
        b[0] = a[0]
    elif share == "expression":
        b[1] = a[1]
    return (model.meshes(*a, batch_size=batch_size), model.meshes(*b, batch_size=batch_size))


def diversity(model: CodeModel, key: jax.Array, num_pairs: int,
              batch_size: int = 64) -> dict[str, float]:
    """Global, identity and expression diversity (mm) of a model (see the module docstring)."""
    keys = jax.random.split(key, 3)
    out = {}
    for k, (name, share) in zip(keys, (("global", None), ("identity", "identity"),
                                       ("expression", "expression")), strict=True):
        a, b = sample_shared(model, k, num_pairs, share, batch_size)
        out[name] = float(mean_vertex_distance_mm(a, b).mean())
    return out


def _random_pairs(groups: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` pairs of different rows with equal ``groups`` values (``-1`` rows excluded);
    ``[n, 2]``."""
    rows = np.flatnonzero(groups >= 0)
    by_group = [rows[groups[rows] == g] for g in np.unique(groups[rows])]
    by_group = [g for g in by_group if len(g) >= 2]
    if not by_group:
        raise ValueError("no group has two rows to pair")
    sizes = np.asarray([len(g) ** 2 for g in by_group], float)
    which = rng.choice(len(by_group), size=n, p=sizes / sizes.sum())
    return np.stack([rng.choice(by_group[g], size=2, replace=False) for g in which])


def data_diversity(vertices: np.ndarray, subjects: np.ndarray, expressions: np.ndarray,
                   rng: np.random.Generator, num_pairs: int) -> dict[str, float]:
    """Global, identity (one subject) and expression (one labelled class) diversity (mm) of a
    set of meshes ``[M, N, 3]`` with int ``[M]`` subject and expression labels (``-1``:
    unlabelled)."""
    pairs = {
        "global": _random_pairs(np.zeros(len(vertices), np.int64), rng, num_pairs),
        "identity": _random_pairs(np.asarray(subjects), rng, num_pairs),
        "expression": _random_pairs(np.asarray(expressions), rng, num_pairs),
    }
    return {k: float(mean_vertex_distance_mm(vertices[p[:, 0]], vertices[p[:, 1]]).mean())
            for k, p in pairs.items()}


@functools.partial(jax.jit, static_argnames=("chunk",))
def _nearest(samples, training, chunk: int):
    """Min over training meshes of the mean vertex distance, per sample (scan over chunks)."""
    pad = (-training.shape[0]) % chunk
    padded = jnp.concatenate([training, jnp.repeat(training[-1:], pad, axis=0)])
    blocks = padded.reshape(-1, chunk, *training.shape[1:])

    def body(best, block):
        d = jnp.linalg.norm(samples[:, None] - block[None], axis=-1).mean(axis=-1)
        return jnp.minimum(best, d.min(axis=1)), None

    best, _ = jax.lax.scan(body, jnp.full(samples.shape[0], jnp.inf, samples.dtype), blocks)
    return best


def specificity(samples: np.ndarray, training: np.ndarray, *, chunk: int = 64,
                sample_batch: int = 64) -> float:
    """Mean over samples ``[S, N, 3]`` of the distance (mm) to the nearest of ``training``
    ``[T, N, 3]`` (metres)."""
    samples = np.asarray(samples, np.float32)
    training = jnp.asarray(training, jnp.float32)
    chunk = min(int(chunk), int(training.shape[0]))
    best = []
    for lo in range(0, samples.shape[0], sample_batch):
        part = samples[lo : lo + sample_batch]
        m = part.shape[0]
        if m < sample_batch:  # one compiled shape
            part = np.concatenate([part, np.repeat(part[-1:], sample_batch - m, axis=0)])
        best.append(np.asarray(_nearest(jnp.asarray(part), training, chunk))[:m])
    return float(1e3 * np.concatenate(best).mean())


def decoupling(model: CodeModel, embed: Callable[[np.ndarray], np.ndarray],
               same: Callable[[np.ndarray, np.ndarray], np.ndarray], factor: str,
               key: jax.Array, num_faces: int, num_variations: int,
               batch_size: int = 64) -> float:
    """Fraction of (face, variation) pairs judged "the same" ``factor`` when only that factor's
    code is kept (see the module docstring).

    Args:
      model: the face model.
      embed: meshes ``[M, N, 3]`` -> embeddings ``[M, D]`` of the factor's network.
      same: ``(a [M, D], b [M, D]) -> bool [M]``, the network's decision.
      factor: ``"identity"`` or ``"expression"``.
      key: PRNG key.
      num_faces: faces drawn.
      num_variations: variations per face.
    """
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor!r}")
    k_base, k_var = jax.random.split(key)
    base = model.sample_codes(k_base, num_faces)
    var = list(model.sample_codes(k_var, num_faces * num_variations))
    kept = 0 if factor == "identity" else 1
    var[kept] = np.repeat(base[kept], num_variations, axis=0)
    e_base = embed(model.meshes(*base, batch_size=batch_size))
    e_var = embed(model.meshes(*var, batch_size=batch_size))
    return float(np.mean(same(np.repeat(e_base, num_variations, axis=0), e_var)))


def data_decoupling(embeddings: np.ndarray, labels: np.ndarray,
                    same: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    rng: np.random.Generator, num_pairs: int) -> float:
    """Fraction of random pairs with one label (``-1`` rows excluded) judged "the same"."""
    pairs = _random_pairs(np.asarray(labels), rng, num_pairs)
    return float(np.mean(same(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]])))
