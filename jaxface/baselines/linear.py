"""Landmark operators and landmark fitting shared by the linear 3DMM baselines.

Landmarks are a linear function of the mesh vertices: ``landmarks = L @ vertices`` with a
sparse matrix ``L`` of shape ``[K, N]`` (``K`` landmarks, ``N`` vertices). A landmark is
either a vertex (one nonzero per row) or a barycentric point on a triangle (three nonzeros
per row).

A linear displacement model describes the displacement ``D = S^e - S^n`` of an expressive
mesh from its neutral mesh as ``mean + sum_j c_j basis_j`` with a Gaussian prior
``c_j ~ N(0, prior_variance_j)``. :func:`fit_to_landmarks` finds the coefficients that move
the landmarks of a neutral mesh onto target landmarks (ridge regression, regularised by the
prior variances) and returns the deformed mesh.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import scipy.sparse

from jaxface.files import write_npz

__all__ = [
    "DEFAULT_REGULARIZATION",
    "LinearDisplacementModel",
    "apply_landmark_matrix",
    "fit_coefficients",
    "fit_to_landmarks",
    "landmark_basis",
    "landmark_matrix",
    "select_regularization",
]

#: Default relative ridge weight λ of :func:`fit_coefficients` (see there).
DEFAULT_REGULARIZATION = 1e-3


def landmark_matrix(
    num_vertices: int,
    vertex_indices: np.ndarray | Sequence[int] | None = None,
    face_indices: np.ndarray | Sequence[int] | None = None,
    barycentric: np.ndarray | None = None,
    faces: np.ndarray | None = None,
) -> scipy.sparse.csr_matrix:
    """Builds the sparse landmark operator ``L`` with ``landmarks = L @ vertices``.

    Give either ``vertex_indices`` (landmark k is vertex ``vertex_indices[k]``) or the triple
    ``face_indices``, ``barycentric`` and ``faces`` (landmark k is
    ``sum_i barycentric[k, i] * vertices[faces[face_indices[k], i]]``). Barycentric weights
    are used as given (they are not renormalised); repeated vertices in a row are summed.

    Args:
      num_vertices: N, the number of mesh vertices.
      vertex_indices: int ``[K]`` vertex index of each landmark.
      face_indices: int ``[K]`` triangle index of each landmark.
      barycentric: float ``[K, 3]`` weights of the triangle's three corners.
      faces: int ``[F, 3]`` triangle vertex indices.

    Returns:
      float64 CSR matrix ``[K, N]``.

    Raises:
      ValueError: if both or neither form is given, or indices or shapes are invalid.

    Examples:
      >>> L = landmark_matrix(4, vertex_indices=[2, 0])
      >>> L.toarray()
      array([[0., 0., 1., 0.],
             [1., 0., 0., 0.]])
    """
    num_vertices = int(num_vertices)
    by_face = face_indices is not None or barycentric is not None or faces is not None
    if (vertex_indices is not None) == by_face:
        raise ValueError("give either vertex_indices or all of face_indices, barycentric and faces")
    if vertex_indices is not None:
        cols = np.asarray(vertex_indices, dtype=np.int64).reshape(-1)
        rows = np.arange(cols.size, dtype=np.int64)
        vals = np.ones(cols.size, dtype=np.float64)
        num_landmarks = cols.size
    else:
        if face_indices is None or barycentric is None or faces is None:
            raise ValueError("face_indices, barycentric and faces must all be given")
        face_indices = np.asarray(face_indices, dtype=np.int64).reshape(-1)
        barycentric = np.asarray(barycentric, dtype=np.float64)
        faces = np.asarray(faces, dtype=np.int64)
        num_landmarks = face_indices.size
        if barycentric.shape != (num_landmarks, 3):
            raise ValueError(
                f"barycentric must have shape [{num_landmarks}, 3], got {barycentric.shape}"
            )
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise ValueError(f"faces must have shape [F, 3], got {faces.shape}")
        if num_landmarks and (face_indices.min() < 0 or face_indices.max() >= faces.shape[0]):
            raise ValueError("face_indices out of range")
        cols = faces[face_indices].reshape(-1)
        rows = np.repeat(np.arange(num_landmarks, dtype=np.int64), 3)
        vals = barycentric.reshape(-1)
    if cols.size and (cols.min() < 0 or cols.max() >= num_vertices):
        raise ValueError(f"vertex indices out of range [0, {num_vertices})")
    matrix = scipy.sparse.coo_matrix(
        (vals, (rows, cols)), shape=(num_landmarks, num_vertices)
    ).tocsr()
    matrix.sum_duplicates()
    return matrix


def apply_landmark_matrix(matrix, vertices: np.ndarray) -> np.ndarray:
    """Applies a landmark operator to one mesh or a batch of meshes.

    Args:
      matrix: ``[K, N]`` landmark operator (scipy sparse or dense array).
      vertices: float ``[..., N, 3]`` vertex positions (or displacements).

    Returns:
      float64 ``[..., K, 3]`` landmark positions.
    """
    vertices = np.asarray(vertices)
    if vertices.ndim < 2 or vertices.shape[-1] != 3:
        raise ValueError(f"vertices must have shape [..., N, 3], got {vertices.shape}")
    num_landmarks, num_vertices = matrix.shape
    if vertices.shape[-2] != num_vertices:
        raise ValueError(
            f"landmark matrix has {num_vertices} columns but vertices have "
            f"{vertices.shape[-2]} rows"
        )
    lead = vertices.shape[:-2]
    flat = np.moveaxis(vertices.reshape(-1, num_vertices, 3), 1, 0)  # [N, B, 3]
    out = matrix @ flat.reshape(num_vertices, -1).astype(np.float64, copy=False)
    out = np.asarray(out).reshape(num_landmarks, -1, 3)
    return np.moveaxis(out, 0, 1).reshape(*lead, num_landmarks, 3)


def landmark_basis(matrix, basis: np.ndarray) -> np.ndarray:
    """Landmark rows of a displacement basis, as the design matrix of the landmark fit.

    Args:
      matrix: ``[K, N]`` landmark operator.
      basis: float ``[P, N, 3]`` displacement basis (components or atoms).

    Returns:
      float64 ``[3K, P]``; row ``3k + d`` is coordinate ``d`` of landmark ``k``.
    """
    num_basis = basis.shape[0]
    lmk = apply_landmark_matrix(matrix, basis)  # [P, K, 3]
    return lmk.reshape(num_basis, -1).T


def fit_coefficients(
    design: np.ndarray,
    residual: np.ndarray,
    prior_variance: np.ndarray,
    regularization: float = DEFAULT_REGULARIZATION,
) -> np.ndarray:
    """Ridge regression of landmark residuals on the basis, with a per-coefficient prior.

    Minimises, for each row ``r`` of ``residual``,
    ``||design @ c - r||^2 + λ_eff * sum_j c_j^2 / prior_variance_j`` (the MAP estimate
    under the prior ``c_j ~ N(0, prior_variance_j)`` and i.i.d. landmark noise of variance
    ``λ_eff``). To be free of units, ``λ_eff = regularization * s2`` where ``s2`` is the mean
    prior variance of one landmark coordinate,
    ``s2 = trace(design diag(prior_variance) design^T) / 3K``: ``regularization`` is the
    noise-to-signal variance ratio on the landmarks. Coefficients with zero prior variance
    are fixed at 0. ``regularization = 0`` gives the minimum prior-norm least-squares
    solution (pseudo-inverse).

    Args:
      design: float ``[3K, P]`` landmark rows of the basis (:func:`landmark_basis`).
      residual: float ``[B, 3K]`` target landmarks minus model-mean landmarks.
      prior_variance: float ``[P]`` non-negative prior variance of each coefficient.
      regularization: non-negative relative ridge weight λ.

    Returns:
      float64 ``[B, P]`` coefficients.
    """
    if regularization < 0:
        raise ValueError(f"regularization must be >= 0, got {regularization}")
    design = np.asarray(design, dtype=np.float64)
    residual = np.asarray(residual, dtype=np.float64)
    prior_std = np.sqrt(np.clip(np.asarray(prior_variance, dtype=np.float64), 0.0, None))
    whitened = design * prior_std[None, :]  # [3K, P]
    u, s, vt = np.linalg.svd(whitened, full_matrices=False)
    signal = np.sum(s**2) / design.shape[0]
    if regularization > 0:
        filt = s / (s**2 + regularization * signal)
    else:
        cutoff = s.max(initial=0.0) * max(whitened.shape) * np.finfo(np.float64).eps
        filt = np.where(s > cutoff, 1.0 / np.where(s > cutoff, s, 1.0), 0.0)
    z = ((residual @ u) * filt[None, :]) @ vt  # [B, P]
    return z * prior_std[None, :]


def fit_to_landmarks(
    mean: np.ndarray,
    basis: np.ndarray,
    prior_variance: np.ndarray,
    neutral: np.ndarray,
    target_landmarks: np.ndarray,
    matrix,
    regularization: float = DEFAULT_REGULARIZATION,
) -> np.ndarray:
    """Deforms neutral meshes so that their landmarks match targets, with a linear model.

    Solves for ``c`` minimising
    ``||L (neutral + mean + sum_j c_j basis_j) - target||^2 + λ_eff sum_j c_j^2 / σ_j^2``
    (see :func:`fit_coefficients`) and returns ``neutral + mean + sum_j c_j basis_j``.

    Args:
      mean: float ``[N, 3]`` mean displacement.
      basis: float ``[P, N, 3]`` displacement basis.
      prior_variance: float ``[P]`` prior variance σ_j^2 of each coefficient.
      neutral: float ``[B, N, 3]`` or ``[N, 3]`` neutral meshes.
      target_landmarks: float ``[B, K, 3]`` or ``[K, 3]`` target landmarks.
      matrix: ``[K, N]`` landmark operator (:func:`landmark_matrix`).
      regularization: relative ridge weight λ.

    Returns:
      ``[B, N, 3]`` (or ``[N, 3]`` for unbatched input) deformed meshes, in the dtype of
      ``basis``.
    """
    neutral = np.asarray(neutral)
    target_landmarks = np.asarray(target_landmarks)
    unbatched = neutral.ndim == 2
    if unbatched:
        neutral = neutral[None]
        target_landmarks = target_landmarks[None]
    if neutral.ndim != 3 or target_landmarks.ndim != 3:
        raise ValueError(
            "neutral must be [B, N, 3] and target_landmarks [B, K, 3]; got "
            f"{neutral.shape} and {target_landmarks.shape}"
        )
    if neutral.shape[1:] != mean.shape:
        raise ValueError(f"neutral meshes {neutral.shape[1:]} do not match the model {mean.shape}")
    if target_landmarks.shape[0] != neutral.shape[0]:
        raise ValueError("neutral and target_landmarks must have the same batch size")
    if target_landmarks.shape[1:] != (matrix.shape[0], 3):
        raise ValueError(
            f"target_landmarks {target_landmarks.shape[1:]} do not match the landmark "
            f"matrix with {matrix.shape[0]} rows"
        )
    batch = neutral.shape[0]
    dtype = np.result_type(basis.dtype, np.float32)
    start = neutral.astype(dtype) + mean.astype(dtype)[None]  # [B, N, 3]
    residual = (target_landmarks - apply_landmark_matrix(matrix, start)).reshape(batch, -1)
    design = landmark_basis(matrix, basis)
    coeffs = fit_coefficients(design, residual, prior_variance, regularization)
    out = start + (coeffs.astype(dtype) @ basis.reshape(basis.shape[0], -1)).reshape(start.shape)
    return out[0] if unbatched else out


def select_regularization(
    model,
    neutral: np.ndarray,
    target: np.ndarray,
    matrix,
    candidates: Sequence[float] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1, 1.0),
) -> tuple[float, dict[float, float]]:
    """Picks the ridge weight λ with the lowest mean per-vertex error on validation meshes.

    The target landmarks are taken from the target meshes with ``matrix``.

    Args:
      model: a fitted model with ``predict(neutral, target_landmarks, matrix,
        regularization=...)`` (:class:`~jaxface.baselines.PCA3DMM`,
        :class:`~jaxface.baselines.DL3DMM`).
      neutral: float ``[B, N, 3]`` neutral meshes.
      target: float ``[B, N, 3]`` expressive (ground-truth) meshes.
      matrix: ``[K, N]`` landmark operator.
      candidates: non-negative λ values to try.

    Returns:
      ``(best_lambda, {lambda: mean per-vertex Euclidean error})``, errors in the units of
      the meshes.
    """
    target = np.asarray(target)
    target_landmarks = apply_landmark_matrix(matrix, target)
    errors = {}
    for lam in candidates:
        pred = model.predict(neutral, target_landmarks, matrix, regularization=float(lam))
        errors[float(lam)] = float(np.mean(np.linalg.norm(pred - target, axis=-1)))
    best = min(errors, key=errors.get)
    return best, errors


class LinearDisplacementModel:
    """Landmark fitting and ``.npz`` persistence shared by the linear 3DMMs (dataclasses).

    A subclass is a frozen dataclass with ``mean`` and ``regularization`` fields, names its
    basis and prior-variance fields in :attr:`basis_field` and :attr:`prior_field`, and its file
    format tag in :attr:`format_tag`. Fields are saved as arrays (``float``/``int`` fields as
    scalars) and read back with their annotated types; no pickled objects.
    """

    format_tag: ClassVar[str]
    basis_field: ClassVar[str]
    prior_field: ClassVar[str]
    mean: np.ndarray
    regularization: float

    def predict(
        self,
        neutral: np.ndarray,
        target_landmarks: np.ndarray,
        landmark_matrix,
        *,
        regularization: float | None = None,
    ) -> np.ndarray:
        """Deforms neutral meshes so that their landmarks match the targets.

        Solves ``min_c ||L(neutral + mean + B c) - target||^2 + λ_eff sum_j c_j^2/σ_j^2`` with
        ``B`` the model's basis (PCA components or dictionary atoms) and ``σ_j^2`` its prior
        variances (λ_eff as in :func:`fit_coefficients`), and returns ``neutral + mean + B c``.

        Args:
          neutral: float ``[B, N, 3]`` (or ``[N, 3]``) neutral meshes.
          target_landmarks: float ``[B, K, 3]`` (or ``[K, 3]``) target landmarks.
          landmark_matrix: ``[K, N]`` landmark operator (:func:`landmark_matrix`).
          regularization: relative ridge weight λ; defaults to the model's ``regularization``.

        Returns:
          ``[B, N, 3]`` (or ``[N, 3]``) predicted meshes, in the basis' dtype.
        """
        lam = self.regularization if regularization is None else regularization
        return fit_to_landmarks(
            self.mean, getattr(self, self.basis_field), getattr(self, self.prior_field),
            neutral, target_landmarks, landmark_matrix, lam,
        )

    def save(self, path: str | os.PathLike) -> None:
        """Writes the model to an ``.npz`` file."""
        arrays = {"format": np.array(self.format_tag)}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if field.type == "float":
                value = np.float64(value)
            elif field.type == "int":
                value = np.int64(value)
            arrays[field.name] = value
        write_npz(path, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike):
        """Reads a model written by :meth:`save`.

        Raises:
          ValueError: the file is not a saved model of this class.
        """
        casts = {"float": float, "int": int}
        with np.load(path, allow_pickle=False) as data:
            if "format" not in data or str(data["format"]) != cls.format_tag:
                found = data["format"] if "format" in data else "none"
                raise ValueError(f"{path} is not a saved {cls.__name__} (format {found})")
            return cls(**{
                f.name: casts.get(f.type, np.asarray)(data[f.name])
                for f in dataclasses.fields(cls)
            })
