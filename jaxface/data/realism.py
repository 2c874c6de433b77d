"""Realism statistics of 4D face data: how rich, smooth, fast and varied its expressions are.

All statistics are on *expression displacements*: a frame minus its sequence's neutral frame
(frame 0), per vertex, in metres.

* Richness: the eigenvalues of the displacements' covariance (principal components, centred over
  all frames) and how many components hold 90 / 95 / 99 % of the variance
  (:class:`CovarianceAccumulator`, :func:`components_for`). The covariance is accumulated one
  sequence at a time, so datasets larger than memory can be measured.
* Smoothness: the Dirichlet energy of a field over its mass-weighted squared norm (a Rayleigh
  quotient of the cotangent Laplacian, :func:`dirichlet_ratio`), in 1 / m^2; it is the squared
  spatial frequency of the field (``2 pi / sqrt(E)`` is a wavelength). A field made of the
  mesh's ``k``-th Laplacian eigenmode has the ``k``-th eigenvalue; white noise has the largest
  values (:func:`noise_dirichlet_ratio`).
* Magnitude per face region (:func:`face_regions`), frame-to-frame speed, left/right asymmetry
  (:func:`asymmetry`) and the spread between repeated performances (:func:`pairwise_spread`).

Example:
  >>> rng = np.random.default_rng(0)
  >>> basis = rng.normal(size=(3, 30))  # a rank-3 set of 500 displacement vectors
  >>> acc = CovarianceAccumulator(30)
  >>> acc.add(rng.normal(size=(500, 3)) @ basis)
  >>> components_for(acc.eigenvalues(), (0.9, 0.99, 0.999999))
  {0.9: 3, 0.99: 3, 0.999999: 3}
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import scipy.spatial

from jaxface.data.template import FaceTemplate
from jaxface.mesh import topology

__all__ = [
    "REGIONS",
    "CovarianceAccumulator",
    "asymmetry",
    "components_for",
    "dirichlet_ratio",
    "face_regions",
    "mass_matrix",
    "noise_dirichlet_ratio",
    "pairwise_spread",
]

#: Face regions of :func:`face_regions`, in a fixed order.
REGIONS = ("forehead", "brows", "eyes", "nose", "cheeks", "mouth", "jaw")


@dataclasses.dataclass
class CovarianceAccumulator:
    """Streaming covariance of ``D``-dimensional rows.

    Attributes:
      dim: ``D``.
      count: rows added so far.
      total: ``float64 [D]`` their sum.
      scatter: ``float64 [D, D]`` the sum of their outer products.
    """

    dim: int
    count: int = 0
    total: np.ndarray | None = None
    scatter: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.total is None:
            self.total = np.zeros(self.dim)
        if self.scatter is None:
            self.scatter = np.zeros((self.dim, self.dim))

    def add(self, rows: np.ndarray) -> None:
        """Adds rows.

        Args:
          rows: ``float [M, D]`` (e.g. the flattened displacements of one sequence's frames).
        """
        x = np.asarray(rows, np.float64).reshape(-1, self.dim)
        self.count += x.shape[0]
        self.total += x.sum(axis=0)
        self.scatter += x.T @ x

    def covariance(self) -> np.ndarray:
        """``float64 [D, D]`` covariance (centred, divided by the row count)."""
        if self.count == 0:
            raise ValueError("no rows added")
        mean = self.total / self.count
        return self.scatter / self.count - np.outer(mean, mean)

    def eigenvalues(self) -> np.ndarray:
        """``float64 [D]`` the covariance's eigenvalues, descending, clipped at 0."""
        return np.clip(np.linalg.eigvalsh(self.covariance())[::-1], 0.0, None)

    def principal_components(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` leading principal directions.

        Args:
          k: number of components.

        Returns:
          ``(eigenvalues [k], components [k, D])``, unit-norm rows, descending variance; each
          component's sign makes its largest entry positive.
        """
        vals, vecs = np.linalg.eigh(self.covariance())
        vals, vecs = vals[::-1][:k], vecs[:, ::-1][:, :k].T
        signs = np.sign(vecs[np.arange(len(vecs)), np.argmax(np.abs(vecs), axis=1)])
        return np.clip(vals, 0.0, None), vecs * signs[:, None]


def components_for(
    eigenvalues: np.ndarray, fractions: Sequence[float] = (0.9, 0.95, 0.99)
) -> dict[float, int]:
    """How many leading components hold each fraction of the variance.

    Args:
      eigenvalues: ``float [D]`` variances, descending.
      fractions: fractions in (0, 1].

    Returns:
      fraction -> the smallest ``k`` whose first ``k`` eigenvalues sum to at least that fraction
      of the total.
    """
    ev = np.asarray(eigenvalues, np.float64)
    cum = np.cumsum(ev) / ev.sum()
    return {f: int(min(np.searchsorted(cum, f - 1e-12) + 1, len(ev))) for f in fractions}


def mass_matrix(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Lumped mass: a third of the adjacent triangles' areas per vertex, ``float64 [N]``."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    mass = np.zeros(len(v))
    for k in range(3):
        np.add.at(mass, f[:, k], area / 3.0)
    return mass


def dirichlet_ratio(fields: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Dirichlet energy over squared norm of vector fields on a mesh.

    ``E(F) = sum_c F_c^T L F_c / sum_c F_c^T M F_c`` with ``L`` the cotangent Laplacian and ``M``
    the lumped mass of the mesh: the mean squared spatial frequency of the field, 1 / m^2.

    Args:
      fields: ``float [K, N, 3]`` (or ``[N, 3]``) fields on the mesh's vertices.
      vertices: ``float [N, 3]`` the mesh, metres.
      faces: ``int [F, 3]`` its triangles.

    Returns:
      ``float64 [K]`` (or a scalar for one field).
    """
    f = np.asarray(fields, np.float64)
    single = f.ndim == 2
    f = f.reshape((-1,) + f.shape[-2:])
    lap = topology.cotangent_laplacian(vertices, faces)
    mass = mass_matrix(vertices, faces)
    energy = np.einsum("knc,knc->k", f, np.stack([lap @ x for x in f]))
    norm = np.einsum("knc,n->k", f * f, mass)
    out = energy / np.maximum(norm, 1e-300)
    return out[0] if single else out


def noise_dirichlet_ratio(
    vertices: np.ndarray, faces: np.ndarray, *, samples: int = 8, seed: int = 0
) -> float:
    """:func:`dirichlet_ratio` of i.i.d. Gaussian per-vertex fields (the mean over samples)."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(size=(samples, np.asarray(vertices).shape[0], 3))
    return float(np.mean(dirichlet_ratio(noise, vertices, faces)))


def face_regions(template: FaceTemplate, *, reach: float = 0.015) -> np.ndarray:
    """A face region for every template vertex.

    Each vertex takes the group of its nearest iBUG landmark (``brows`` 17-26, ``eyes`` 36-47,
    ``nose`` 27-35, ``mouth`` 48-67, ``jaw`` 0-16: the lower contour and chin) when that landmark
    is within ``reach``; otherwise it is ``forehead`` above the brows and ``cheeks`` below.

    Args:
      template: the face template (any level).
      reach: metres.

    Returns:
      ``int64 [N]`` indices into :data:`REGIONS`.
    """
    v = np.asarray(template.vertices, np.float64)
    lm = template.landmark_positions().astype(np.float64)
    group = np.empty(68, np.int64)
    for name, ids in (("jaw", range(0, 17)), ("brows", range(17, 27)), ("nose", range(27, 36)),
                      ("eyes", range(36, 48)), ("mouth", range(48, 68))):
        group[list(ids)] = REGIONS.index(name)
    dist, nearest = scipy.spatial.cKDTree(lm).query(v)
    out = group[nearest]
    far = dist > reach
    brow_y = lm[17:27, 1].mean()
    out[far & (v[:, 1] > brow_y)] = REGIONS.index("forehead")
    out[far & (v[:, 1] <= brow_y)] = REGIONS.index("cheeks")
    return out


def asymmetry(displacements: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Left/right asymmetry of displacement fields: the share of their antisymmetric part.

    With ``m(d)[i] = (-x, y, z)`` of ``d[mirror[i]]`` (the field reflected through the face's
    symmetry plane), ``s = (d + m(d)) / 2`` and ``a = (d - m(d)) / 2``, it is
    ``|a|^2 / (|s|^2 + |a|^2)``: 0 for a symmetric field (both brows up), 1 for an antisymmetric
    one (the mouth shifted sideways), 0.5 for a field on one side only or two unrelated sides.

    Args:
      displacements: ``float [..., N, 3]``.
      mirror: ``int [N]`` each vertex's bilateral counterpart.

    Returns:
      ``float64 [...]``.
    """
    d = np.asarray(displacements, np.float64)
    m = d[..., mirror, :] * np.array([-1.0, 1.0, 1.0])
    sym = np.sum((0.5 * (d + m)) ** 2, axis=(-2, -1))
    anti = np.sum((0.5 * (d - m)) ** 2, axis=(-2, -1))
    return anti / np.maximum(sym + anti, 1e-300)


def pairwise_spread(fields: np.ndarray) -> float:
    """How different a set of fields is, relative to their size.

    The mean over pairs of the RMS (over vertices) distance between two fields, divided by the
    mean RMS size of the fields: 0 for identical fields, ``sqrt(2)`` for unrelated fields of
    equal size.

    Args:
      fields: ``float [K, N, 3]`` with ``K >= 2``.

    Returns:
      The ratio.
    """
    f = np.asarray(fields, np.float64)
    if f.shape[0] < 2:
        raise ValueError("pairwise_spread needs at least two fields")
    rms = np.sqrt(np.mean(np.sum(f * f, axis=-1), axis=-1))
    dists = [
        np.sqrt(np.mean(np.sum((f[i] - f[j]) ** 2, axis=-1)))
        for i in range(len(f))
        for j in range(i + 1, len(f))
    ]
    return float(np.mean(dists) / max(np.mean(rms), 1e-300))
