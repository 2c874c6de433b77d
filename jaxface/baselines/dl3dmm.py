"""Dictionary-learning 3D morphable model (DL-3DMM) of expression displacements.

After Ferrari, Lisanti, Berretti and Del Bimbo, "A Dictionary Learning-Based 3D Morphable
Shape Model" (IEEE Trans. Multimedia, 2017): the displacements ``D = S^gt - S^n`` of the
training meshes are described by a dictionary of unit-norm displacement atoms learned by
sparse coding, and a new expression is fitted to landmarks by ridge regression on the atoms'
landmark rows, regularised by the inverse variance of the training codes.

Learning alternates

* sparse coding: for each (centred) training example ``x_i``, the elastic net (as in the
  DL-3DMM) ``min_a 1/2 ||x_i - a D||^2 + sparsity * ||x_i|| * ||a||_1 + l2_weight/2 ||a||^2``,
  solved by FISTA (Beck and Teboulle, 2009) warm-started from the previous codes; the l1
  weight is relative to the example's norm, so neither weight depends on the units, and
  the l2 term keeps the codes of similar atoms from growing large with opposite signs;
* dictionary update: the least-squares dictionary for the current codes (the method of
  optimal directions, Engan et al., 1999), whose atoms are then normalised to unit length
  (the codes are rescaled so that the reconstruction is unchanged); unused atoms, and atoms
  nearly parallel to another one (``|cos| > max_coherence``), are replaced by the
  worst-reconstructed training examples.

This batch alternation optimises the elastic-net dictionary-learning objective of the
DL-3DMM, which the original learns with online dictionary learning (Mairal et al., 2010).
The atoms are initialised from randomly chosen training examples. Learning uses a random
subsample of the training set (``max_examples``); everything is seeded and deterministic.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import scipy.linalg

from jaxface.baselines.linear import DEFAULT_REGULARIZATION, LinearDisplacementModel

__all__ = ["DL3DMM", "sparse_code"]

_FORMAT = "jaxface.baselines.DL3DMM"


def sparse_code(
    gram: np.ndarray,
    correlation: np.ndarray,
    l1_weight: np.ndarray,
    l2_weight: float = 0.0,
    init: np.ndarray | None = None,
    num_iterations: int = 100,
) -> np.ndarray:
    """Solves many elastic-net (or lasso) problems with a shared dictionary by FISTA.

    For each row i, minimises
    ``1/2 a G a^T - a c_i^T + l1_weight_i ||a||_1 + l2_weight/2 ||a||^2``, which is
    ``1/2 ||x_i - a D||^2 + l1_weight_i ||a||_1 + l2_weight/2 ||a||^2`` up to a constant
    when ``G = D D^T`` and ``c_i = x_i D^T``.

    Args:
      gram: float ``[P, P]`` Gram matrix of the dictionary rows ``D D^T``.
      correlation: float ``[B, P]`` correlations ``X D^T`` of the examples with the atoms.
      l1_weight: float ``[B]`` (or scalar) non-negative l1 weight of each example.
      l2_weight: non-negative l2 weight (0 gives the lasso).
      init: optional float ``[B, P]`` starting codes.
      num_iterations: FISTA iterations.

    Returns:
      float64 ``[B, P]`` codes.
    """
    gram = np.asarray(gram, dtype=np.float64)
    if l2_weight:
        gram = gram + l2_weight * np.eye(gram.shape[0])
    correlation = np.asarray(correlation, dtype=np.float64)
    thresh = np.broadcast_to(np.asarray(l1_weight, dtype=np.float64), correlation.shape[:1])
    lipschitz = float(np.linalg.eigvalsh(gram)[-1])
    if lipschitz <= 0:
        return np.zeros_like(correlation)
    step = 1.0 / lipschitz
    thresh = (thresh * step)[:, None]
    codes = np.zeros_like(correlation) if init is None else np.array(init, dtype=np.float64)
    momentum = codes.copy()
    t = 1.0
    for _ in range(num_iterations):
        z = momentum - step * (momentum @ gram - correlation)
        new = np.sign(z) * np.maximum(np.abs(z) - thresh, 0.0)
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        momentum = new + ((t - 1.0) / t_new) * (new - codes)
        codes, t = new, t_new
    return codes


def _relative_error(x_sq: float, codes: np.ndarray, corr: np.ndarray, gram: np.ndarray) -> float:
    """``||X - A D||_F / ||X||_F`` from ``||X||^2``, ``A``, ``X D^T`` and ``D D^T``."""
    sq = x_sq - 2.0 * np.einsum("ij,ij->", codes, corr) + np.einsum("ij,ij->", codes @ gram, codes)
    return float(np.sqrt(max(sq, 0.0) / x_sq))


def _replace_atoms(
    dictionary: np.ndarray,
    codes: np.ndarray,
    atom_ids: np.ndarray,
    residual_sq: np.ndarray,
    x: np.ndarray,
    norms: np.ndarray,
) -> None:
    """Replaces atoms in place by the worst-reconstructed (unit-normalised) examples."""
    worst = np.argsort(-residual_sq, kind="stable")
    worst = worst[norms[worst] > 0][: atom_ids.size]
    atom_ids = atom_ids[: worst.size]
    dictionary[atom_ids] = x[worst].astype(np.float64) / norms[worst, None]
    codes[:, atom_ids] = 0.0


@dataclasses.dataclass(frozen=True, eq=False)
class DL3DMM(LinearDisplacementModel):
    """Dictionary-learning model of expression displacements with a landmark ``predict``.

    Attributes:
      mean: float64 ``[N, 3]`` mean training displacement (zeros when fitted with
        ``center=False``).
      atoms: ``[P, N, 3]`` unit-norm dictionary atoms (float32 for float32 training data,
        float64 for float64).
      code_variance: float64 ``[P]`` variance (second moment about zero) of each atom's
        training codes; the prior variance of the landmark fit.
      sparsity: relative l1 weight of the sparse coding.
      l2_weight: l2 weight of the sparse coding.
      history: float64 ``[T]`` relative reconstruction error ``||X - A D|| / ||X||`` of
        the learning subsample after each sparse-coding step.
      regularization: default relative ridge weight λ of :meth:`predict`.
    """

    format_tag: ClassVar[str] = _FORMAT
    basis_field: ClassVar[str] = "atoms"
    prior_field: ClassVar[str] = "code_variance"

    mean: np.ndarray
    atoms: np.ndarray
    code_variance: np.ndarray
    sparsity: float
    l2_weight: float
    history: np.ndarray
    regularization: float = DEFAULT_REGULARIZATION

    @property
    def num_atoms(self) -> int:
        """P, the number of dictionary atoms."""
        return int(self.atoms.shape[0])

    @property
    def num_components(self) -> int:
        """The size of the basis (:attr:`num_atoms`), as for the PCA model."""
        return self.num_atoms

    @classmethod
    def fit(
        cls,
        displacements: np.ndarray,
        num_atoms: int = 220,
        *,
        sparsity: float = 0.05,
        l2_weight: float = 0.01,
        num_iterations: int = 10,
        coding_iterations: int = 100,
        max_examples: int | None = 2000,
        max_coherence: float = 0.99,
        center: bool = True,
        regularization: float = DEFAULT_REGULARIZATION,
        seed: int = 0,
    ) -> DL3DMM:
        """Learns a displacement dictionary by alternating sparse coding and MOD updates.

        Args:
          displacements: float ``[M, N, 3]`` training displacements ``S^gt - S^n``.
          num_atoms: P, the number of atoms.
          sparsity: l1 weight relative to each example's norm, in [0, 1); larger gives
            sparser codes.
          l2_weight: non-negative l2 weight of the codes (elastic net); 0 gives the lasso.
          num_iterations: alternations of sparse coding and dictionary update.
          coding_iterations: FISTA iterations per sparse-coding step.
          max_examples: size of the random training subsample used for learning (``None``:
            all examples).
          max_coherence: an atom whose absolute cosine with an earlier atom exceeds this is
            replaced after each dictionary update.
          center: learn the dictionary on displacements minus their mean (the model is then
            ``mean + sum_j a_j atom_j``); otherwise the mean is zero.
          regularization: default relative ridge weight λ of :meth:`predict`.
          seed: seed of the subsample and of the atom initialisation.

        Returns:
          The fitted model.
        """
        displacements = np.asarray(displacements)
        if displacements.ndim != 3 or displacements.shape[-1] != 3:
            raise ValueError(f"displacements must have shape [M, N, 3], got {displacements.shape}")
        if num_atoms < 1:
            raise ValueError(f"num_atoms must be positive, got {num_atoms}")
        if not 0.0 <= sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
        if l2_weight < 0:
            raise ValueError(f"l2_weight must be >= 0, got {l2_weight}")
        m, n = displacements.shape[:2]
        dtype = np.result_type(displacements.dtype, np.float32)
        x_all = displacements.reshape(m, -1)
        rng = np.random.default_rng(seed)
        if max_examples is not None and max_examples < m:
            idx = np.sort(rng.choice(m, size=max_examples, replace=False))
        else:
            idx = np.arange(m)
        if center:
            mean = np.mean(x_all, axis=0, dtype=np.float64)
        else:
            mean = np.zeros(x_all.shape[1], dtype=np.float64)
        x = (x_all[idx].astype(np.float64) - mean).astype(dtype)  # [S, D]
        norms = np.linalg.norm(x.astype(np.float64), axis=1)
        x_sq = float(np.sum(norms**2))
        if x_sq <= 0:
            raise ValueError("training displacements are all equal to their mean")
        l1 = sparsity * norms

        # Initial atoms: distinct non-zero training examples in random order, then noise.
        order = rng.permutation(x.shape[0])
        order = order[norms[order] > 0][:num_atoms]
        dictionary = np.empty((num_atoms, x.shape[1]), dtype=np.float64)
        dictionary[: order.size] = x[order] / norms[order, None]
        if order.size < num_atoms:
            noise = rng.standard_normal((num_atoms - order.size, x.shape[1]))
            dictionary[order.size :] = noise / np.linalg.norm(noise, axis=1, keepdims=True)

        codes = None
        history = []
        for it in range(num_iterations + 1):
            corr = (x @ dictionary.astype(dtype).T).astype(np.float64)  # [S, P]
            gram = dictionary @ dictionary.T
            codes = sparse_code(
                gram, corr, l1, l2_weight, init=codes, num_iterations=coding_iterations
            )
            history.append(_relative_error(x_sq, codes, corr, gram))
            if it == num_iterations:
                break
            residual_sq = (
                norms**2
                - 2.0 * np.einsum("ij,ij->i", codes, corr)
                + np.einsum("ij,ij->i", codes @ gram, codes)
            )
            # Method of optimal directions: D = (A^T A)^-1 A^T X over the used atoms.
            ata = codes.T @ codes
            used = np.diag(ata) > 0
            new = dictionary.copy()
            if np.any(used):
                atx = (codes[:, used].T.astype(dtype) @ x).astype(np.float64)
                sub = ata[np.ix_(used, used)]
                ridge = 1e-10 * np.trace(sub) / sub.shape[0]
                new[used] = scipy.linalg.solve(
                    sub + ridge * np.eye(sub.shape[0]), atx, assume_a="pos"
                )
            atom_norms = np.linalg.norm(new, axis=1)
            alive = used & (atom_norms > 0)
            new[alive] /= atom_norms[alive, None]
            codes[:, alive] *= atom_norms[None, alive]
            # Replace unused atoms and atoms nearly parallel to an earlier one.
            coherence = np.abs(np.triu(new @ new.T, k=1))
            redundant = np.any(coherence > max_coherence, axis=0)
            replace = np.nonzero(~alive | redundant)[0]
            if replace.size:
                _replace_atoms(new, codes, replace, residual_sq, x, norms)
            dictionary = new

        return cls(
            mean=mean.reshape(n, 3),
            atoms=dictionary.reshape(num_atoms, n, 3).astype(dtype),
            code_variance=np.mean(codes**2, axis=0),
            sparsity=float(sparsity),
            l2_weight=float(l2_weight),
            history=np.asarray(history, dtype=np.float64),
            regularization=float(regularization),
        )

    def encode(self, displacements: np.ndarray, num_iterations: int = 200) -> np.ndarray:
        """Sparse codes of displacements (the elastic net used in learning).

        Args:
          displacements: float ``[B, N, 3]``.
          num_iterations: FISTA iterations.

        Returns:
          float64 ``[B, P]`` codes.
        """
        displacements = np.asarray(displacements)
        x = displacements.reshape(displacements.shape[0], -1).astype(np.float64)
        x = x - self.mean.reshape(1, -1)
        d = self.atoms.reshape(self.num_atoms, -1).astype(np.float64)
        l1 = self.sparsity * np.linalg.norm(x, axis=1)
        return sparse_code(d @ d.T, x @ d.T, l1, self.l2_weight, num_iterations=num_iterations)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Displacements ``mean + codes @ atoms``.

        Args:
          codes: float ``[B, P]``.

        Returns:
          ``[B, N, 3]`` displacements in the atoms' dtype.
        """
        codes = np.asarray(codes)
        flat = codes @ self.atoms.reshape(self.num_atoms, -1).astype(np.float64)
        flat = flat + self.mean.reshape(1, -1)
        return flat.reshape(codes.shape[0], *self.mean.shape).astype(self.atoms.dtype)
