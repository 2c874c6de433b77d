"""Linear 3DMM baselines fitted to landmarks: PCA-k 3DMM and DL-3DMM.

Both models describe expression displacements ``S^e - S^n`` with a linear basis and deform a
neutral mesh so that its landmarks (``L @ vertices`` with :func:`landmark_matrix`) match
target landmarks.
"""

from jaxface.baselines.dl3dmm import DL3DMM, sparse_code
from jaxface.baselines.linear import (
    DEFAULT_REGULARIZATION,
    apply_landmark_matrix,
    fit_coefficients,
    fit_to_landmarks,
    landmark_basis,
    landmark_matrix,
    select_regularization,
)
from jaxface.baselines.pca3dmm import PCA3DMM

__all__ = [
    "DEFAULT_REGULARIZATION",
    "DL3DMM",
    "PCA3DMM",
    "apply_landmark_matrix",
    "fit_coefficients",
    "fit_to_landmarks",
    "landmark_basis",
    "landmark_matrix",
    "select_regularization",
    "sparse_code",
]
