"""PCA-k 3D morphable model of expression displacements, fitted to landmarks.

The model learns the mean and the first ``k`` principal components of training
displacements ``D = S^gt - S^n`` (expressive minus neutral mesh, metres). A new expression is
produced from a neutral mesh and target landmarks by ridge-regularised least squares on the
components' landmark rows (:func:`jaxface.baselines.linear.fit_to_landmarks`).

The principal components come from an exact eigendecomposition of the smaller Gram matrix
(``X X^T`` or ``X^T X`` of the centred data ``X [M, 3N]``) when ``min(M, 3N)`` is small, and
otherwise from a randomized SVD with subspace iteration (Halko, Martinsson and Tropp, 2011).
Both work on row blocks of the data and never build a centred copy of it.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np
import scipy.linalg

from jaxface.baselines.linear import DEFAULT_REGULARIZATION, LinearDisplacementModel

__all__ = ["PCA3DMM"]

_FORMAT = "jaxface.baselines.PCA3DMM"
_EXACT_MAX_SIDE = 2000


def _as_matrix(displacements: np.ndarray) -> np.ndarray:
    """``[M, N, 3]`` -> ``[M, 3N]`` view (float32 or float64)."""
    displacements = np.asarray(displacements)
    if displacements.ndim != 3 or displacements.shape[-1] != 3:
        raise ValueError(f"displacements must have shape [M, N, 3], got {displacements.shape}")
    if displacements.shape[0] < 2:
        raise ValueError("at least two training examples are needed")
    dtype = np.result_type(displacements.dtype, np.float32)
    return displacements.reshape(displacements.shape[0], -1).astype(dtype, copy=False)


def _centered_matmul(x: np.ndarray, mean: np.ndarray, b: np.ndarray, block: int) -> np.ndarray:
    """``(x - mean) @ b`` computed over row blocks: ``[M, D] x [D, l] -> [M, l]``."""
    out = np.empty((x.shape[0], b.shape[1]), dtype=np.float64)
    mean = mean.astype(x.dtype)
    b = b.astype(x.dtype)
    for i in range(0, x.shape[0], block):
        out[i : i + block] = (x[i : i + block] - mean) @ b
    return out


def _centered_rmatmul(x: np.ndarray, mean: np.ndarray, y: np.ndarray, block: int) -> np.ndarray:
    """``(x - mean)^T @ y`` accumulated over row blocks: ``[M, D], [M, l] -> [D, l]``."""
    out = np.zeros((x.shape[1], y.shape[1]), dtype=np.float64)
    mean = mean.astype(x.dtype)
    y = y.astype(x.dtype)
    for i in range(0, x.shape[0], block):
        out += (x[i : i + block] - mean).T @ y[i : i + block]
    return out


def _centered_sq_norm(x: np.ndarray, mean: np.ndarray, block: int) -> float:
    """``||x - mean||_F^2``."""
    mean = mean.astype(x.dtype)
    total = 0.0
    for i in range(0, x.shape[0], block):
        c = (x[i : i + block] - mean).astype(np.float64)
        total += float(np.einsum("ij,ij->", c, c))
    return total


def _exact_pca(x: np.ndarray, mean: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """All principal directions from the smaller Gram matrix.

    Returns:
      ``(components [r, D] float64, squared singular values [r])`` in decreasing order,
      with ``r = min(M, D)``.
    """
    m, d = x.shape
    if m <= d:
        gram = np.zeros((m, m), dtype=np.float64)
        for j in range(0, d, block):
            c = (x[:, j : j + block] - mean[j : j + block]).astype(x.dtype)
            gram += c @ c.T
        evals, evecs = scipy.linalg.eigh(gram)
        evals, evecs = evals[::-1], evecs[:, ::-1]
        pos = np.clip(evals, 0.0, None)
        scale = np.where(pos > 0, 1.0 / np.sqrt(np.where(pos > 0, pos, 1.0)), 0.0)
        comps = (_centered_rmatmul(x, mean, evecs, block) * scale[None, :]).T
        return comps, pos
    cov = np.zeros((d, d), dtype=np.float64)
    for i in range(0, m, block):
        c = (x[i : i + block] - mean).astype(x.dtype)
        cov += c.T @ c
    evals, evecs = scipy.linalg.eigh(cov)
    return evecs[:, ::-1].T.copy(), np.clip(evals[::-1], 0.0, None)


def _randomized_pca(
    x: np.ndarray,
    mean: np.ndarray,
    rank: int,
    power_iterations: int,
    block: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Leading ``rank`` principal directions by randomized SVD with subspace iteration.

    Returns:
      ``(components [rank, D] float64, squared singular values [rank])``.
    """
    omega = rng.standard_normal((x.shape[1], rank))
    q, _ = np.linalg.qr(_centered_matmul(x, mean, omega, block))
    for _ in range(power_iterations):
        p, _ = np.linalg.qr(_centered_rmatmul(x, mean, q, block))
        q, _ = np.linalg.qr(_centered_matmul(x, mean, p, block))
    bt = _centered_rmatmul(x, mean, q, block)  # [D, rank] = ((x - mean)^T q)
    comps, s, _ = np.linalg.svd(bt, full_matrices=False)
    return comps.T, s**2


@dataclasses.dataclass(frozen=True, eq=False)
class PCA3DMM(LinearDisplacementModel):
    """PCA model of expression displacements with a landmark-fitting ``predict``.

    Attributes:
      mean: float ``[N, 3]`` mean training displacement (metres).
      components: ``[k, N, 3]`` principal components (orthonormal when flattened to
        ``[k, 3N]``), float32 for float32 training data and float64 for float64.
      variances: float64 ``[k]`` variance of the training data along each component
        (eigenvalues of the sample covariance, decreasing).
      total_variance: total variance of the training data (trace of the covariance).
      num_examples: number of training examples M.
      regularization: default relative ridge weight λ of :meth:`predict`.
    """

    format_tag: ClassVar[str] = _FORMAT
    basis_field: ClassVar[str] = "components"
    prior_field: ClassVar[str] = "variances"

    mean: np.ndarray
    components: np.ndarray
    variances: np.ndarray
    total_variance: float
    num_examples: int
    regularization: float = DEFAULT_REGULARIZATION

    @property
    def num_components(self) -> int:
        """k, the number of components."""
        return int(self.components.shape[0])

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """float64 ``[k]`` fraction of the total variance along each component."""
        return self.variances / self.total_variance

    @classmethod
    def fit(
        cls,
        displacements: np.ndarray,
        k: int | None = None,
        variance: float = 0.99,
        *,
        regularization: float = DEFAULT_REGULARIZATION,
        method: str = "auto",
        oversampling: int = 20,
        power_iterations: int = 3,
        initial_rank: int = 64,
        block_size: int = 1024,
        seed: int = 0,
    ) -> PCA3DMM:
        """Learns the mean and principal components of training displacements.

        Args:
          displacements: float ``[M, N, 3]`` training displacements ``S^gt - S^n``.
          k: number of components; ``None`` keeps the smallest k whose cumulative explained
            variance reaches ``variance``.
          variance: explained-variance fraction in (0, 1] used when ``k`` is ``None``.
          regularization: default relative ridge weight λ of :meth:`predict`.
          method: ``"exact"`` (eigendecomposition of the smaller Gram matrix),
            ``"randomized"`` (randomized SVD) or ``"auto"`` (exact when
            ``min(M, 3N) <= 2000``, or when ``k`` is ``None`` and the randomized SVD would
            need more than a quarter of ``min(M, 3N)`` components).
          oversampling: extra random directions of the randomized SVD.
          power_iterations: subspace iterations of the randomized SVD.
          initial_rank: first number of components tried by the randomized SVD when ``k``
            is ``None`` (doubled until ``variance`` is reached).
          block_size: rows (or columns) processed at once; bounds the temporary memory.
          seed: seed of the randomized SVD.

        Returns:
          The fitted model.

        Raises:
          ValueError: on bad arguments, or if ``k`` exceeds the numerical rank of the
            centred data.
        """
        x = _as_matrix(displacements)
        m, d = x.shape
        if method not in ("auto", "exact", "randomized"):
            raise ValueError(f"unknown method {method!r}")
        if k is None and not 0.0 < variance <= 1.0:
            raise ValueError(f"variance must be in (0, 1], got {variance}")
        max_rank = min(m - 1, d)
        if k is not None and not 1 <= k <= max_rank:
            raise ValueError(f"k must be in [1, {max_rank}] for {m} examples of size {d}")
        mean = np.mean(x, axis=0, dtype=np.float64)
        total_ss = _centered_sq_norm(x, mean, block_size)
        if total_ss <= 0:
            raise ValueError("training displacements have zero variance")
        exact = method == "exact" or (method == "auto" and min(m, d) <= _EXACT_MAX_SIDE)
        rng = np.random.default_rng(seed)
        while True:
            if exact:
                comps, sq = _exact_pca(x, mean, block_size)
                reliable = comps.shape[0]
            else:
                target = k if k is not None else min(initial_rank, max_rank)
                rank = min(target + oversampling, min(m, d))
                comps, sq = _randomized_pca(x, mean, rank, power_iterations, block_size, rng)
                reliable = comps.shape[0] if rank == min(m, d) else target
            if k is not None:
                num = k
                break
            cumulative = np.cumsum(sq[:reliable]) / total_ss
            hits = np.nonzero(cumulative >= variance * (1.0 - 1e-12))[0]
            if hits.size:
                num = int(hits[0]) + 1
                break
            if exact or reliable >= max_rank:
                num = max_rank
                break
            initial_rank = min(2 * initial_rank, max_rank)
            # Past a quarter of the full rank, the exact decomposition is cheaper.
            exact = method == "auto" and 4 * initial_rank >= min(m, d)
        tol = sq[0] * max(m, d) * np.finfo(np.float64).eps * 10
        numerical_rank = int(np.sum(sq > tol))
        if k is None:
            num = min(num, numerical_rank)
        if num > numerical_rank:
            raise ValueError(
                f"k={num} exceeds the numerical rank ({numerical_rank}) of the training "
                "displacements"
            )
        comps = comps[:num]
        # Deterministic sign: the largest-magnitude entry of each component is positive.
        signs = np.sign(comps[np.arange(num), np.argmax(np.abs(comps), axis=1)])
        comps = comps * np.where(signs == 0, 1.0, signs)[:, None]
        n = displacements.shape[1]
        return cls(
            mean=mean.reshape(n, 3),
            components=comps.reshape(num, n, 3).astype(x.dtype),
            variances=sq[:num] / (m - 1),
            total_variance=total_ss / (m - 1),
            num_examples=m,
            regularization=float(regularization),
        )

    def reconstruct(self, displacements: np.ndarray) -> np.ndarray:
        """Projects displacements onto the model (mean plus component span).

        Args:
          displacements: float ``[B, N, 3]``.

        Returns:
          ``[B, N, 3]`` projections.
        """
        displacements = np.asarray(displacements)
        flat = displacements.reshape(displacements.shape[0], -1) - self.mean.reshape(1, -1)
        basis = self.components.reshape(self.num_components, -1)
        recon = (flat @ basis.T) @ basis + self.mean.reshape(1, -1)
        return recon.reshape(displacements.shape).astype(self.components.dtype)
