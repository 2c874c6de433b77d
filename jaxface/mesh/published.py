"""Mesh hierarchies of published models, read from their ``downsampling_matrices.pkl``.

CoMA, Neural3DMM, SpiralNet++ and the official S2D release store their mesh hierarchy as a
pickle of scipy sparse matrices: per level the vertices and faces, the down-sampling matrices
``D_i`` (``[n_i, n_{i-1}]``, one-hot rows: the kept vertices) and the up-sampling matrices
``U_i`` (``[n_{i-1}, n_i]``, three barycentric weights per row, from CoMA's
``setup_deformation_transfer``). :func:`load_published_hierarchy` turns one into a
:class:`~jaxface.mesh.hierarchy.MeshHierarchy`, so a published setup reproduces exactly; it
validates the matrices and reports what departs from the form jaxface builds (rows of ``U``
that do not sum to 1, negative weights) instead of hiding it.

Two key layouts are read:

* CoMA / Neural3DMM / S2D: ``M_verts_faces`` (a list of ``(vertices, faces)`` per level, or
  ``M`` with objects holding ``v`` and ``f``), ``D`` and ``U`` (lists of sparse matrices);
* SpiralNet++ (``transform.pkl``): ``vertices``, ``face``, ``down_transform``,
  ``up_transform``.

The pickle is read with :func:`jaxface.mesh.pickles.restricted_loads`, which builds only numpy
arrays, scipy sparse matrices, psbody meshes (as dicts) and plain containers, so a file cannot
run code when it is opened.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse

from jaxface.mesh.errors import MeshError
from jaxface.mesh.hierarchy import Level, MeshHierarchy
from jaxface.mesh.pickles import PickleContentError, restricted_loads

__all__ = ["PublishedHierarchy", "hierarchy_from_matrices", "load_published_hierarchy"]

@dataclasses.dataclass(frozen=True)
class PublishedHierarchy:
    """A published hierarchy and what its matrices look like.

    Attributes:
      hierarchy: the levels as jaxface's :class:`MeshHierarchy` (``U`` as stored, not
        renormalised).
      up_row_sums: per up-sampling step, float ``[min, max]`` of the row sums of ``U``.
      negative_weights: per up-sampling step, the number of negative entries of ``U``.
    """

    hierarchy: MeshHierarchy
    up_row_sums: tuple[tuple[float, float], ...]
    negative_weights: tuple[int, ...]

    def report(self) -> str:
        """One line per step: sizes, ``U`` row-sum range and negative weights."""
        lines = []
        for i, ((lo, hi), neg) in enumerate(zip(self.up_row_sums, self.negative_weights,
                                                strict=True), start=1):
            sizes = self.hierarchy.sizes
            lines.append(f"level {i - 1} -> {i}: {sizes[i - 1]} -> {sizes[i]} vertices, U row "
                         f"sums {lo:.4f}..{hi:.4f}, {neg} negative weights")
        return "\n".join(lines)


def _sparse(matrix: Any, what: str, path: str) -> scipy.sparse.csr_matrix:
    if scipy.sparse.issparse(matrix):
        return scipy.sparse.csr_matrix(matrix)
    if isinstance(matrix, np.ndarray) and matrix.ndim == 2:
        return scipy.sparse.csr_matrix(matrix)
    raise MeshError(f"{what} is a {type(matrix).__name__}, expected a sparse matrix",
                    source=path, field=what)


def hierarchy_from_matrices(
    meshes: Sequence[tuple[np.ndarray, np.ndarray]],
    down: Sequence[Any],
    up: Sequence[Any],
    *,
    source: str = "matrices",
) -> PublishedHierarchy:
    """Builds a hierarchy from per-level meshes and CoMA-style ``D``/``U`` matrices.

    Args:
      meshes: per level (finest first), ``(vertices [n_i, 3], faces [f_i, 3])``.
      down: per step ``i = 1..K``, ``D_i`` ``[n_i, n_{i-1}]`` with one 1 per row.
      up: per step, ``U_i`` ``[n_{i-1}, n_i]`` with at most 3 entries per row.
      source: what the matrices came from (for error messages).

    Raises:
      MeshError: naming the matrix and what is wrong with it (shape, rows of ``D`` that are not
        one-hot, rows of ``U`` with more than 3 entries or none).
    """
    if not len(meshes) == len(down) + 1 == len(up) + 1:
        raise MeshError(f"{len(meshes)} levels need {len(meshes) - 1} D and U matrices, got "
                        f"{len(down)} and {len(up)}", source=source)
    verts = [np.asarray(v, np.float32) for v, _ in meshes]
    faces = [np.asarray(f, np.int32) for _, f in meshes]
    levels = [Level(verts[0], faces[0])]
    sums, negatives = [], []
    for i in range(1, len(meshes)):
        n_prev, n = verts[i - 1].shape[0], verts[i].shape[0]
        d = _sparse(down[i - 1], f"D[{i - 1}]", source)
        u = _sparse(up[i - 1], f"U[{i - 1}]", source)
        if d.shape != (n, n_prev):
            raise MeshError(f"has shape {d.shape}, expected ({n}, {n_prev}) for levels {i - 1} "
                            f"-> {i}", source=source, field=f"D[{i - 1}]")
        if u.shape != (n_prev, n):
            raise MeshError(f"has shape {u.shape}, expected ({n_prev}, {n}) for levels {i} "
                            f"-> {i - 1}", source=source, field=f"U[{i - 1}]")
        d.eliminate_zeros()
        if not (np.all(np.diff(d.indptr) == 1) and np.allclose(d.data, 1.0)):
            raise MeshError("rows are not one-hot vertex selections", source=source,
                            field=f"D[{i - 1}]")
        u.eliminate_zeros()
        per_row = np.diff(u.indptr)
        if per_row.max(initial=0) > 3 or per_row.min(initial=1) < 1:
            raise MeshError(f"rows hold {per_row.min()}..{per_row.max()} weights, expected 1 to "
                            "3 (barycentric)", source=source, field=f"U[{i - 1}]")
        u.sort_indices()
        index = np.zeros((n_prev, 3), np.int32)
        weight = np.zeros((n_prev, 3), np.float32)
        for r in range(n_prev):
            lo, hi = u.indptr[r], u.indptr[r + 1]
            index[r, : hi - lo] = u.indices[lo:hi]
            weight[r, : hi - lo] = u.data[lo:hi]
        row_sums = np.asarray(u.sum(axis=1)).ravel()
        sums.append((float(row_sums.min()), float(row_sums.max())))
        negatives.append(int(np.sum(u.data < 0)))
        levels.append(Level(verts[i], faces[i], down_indices=d.indices.astype(np.int32),
                            up_indices=index, up_weights=weight))
    factors = tuple(verts[i - 1].shape[0] / verts[i].shape[0] for i in range(1, len(verts)))
    hierarchy = MeshHierarchy(tuple(levels), factors, method="published")
    return PublishedHierarchy(hierarchy, tuple(sums), tuple(negatives))


def _mesh_list(obj: dict, path: str) -> list[tuple[np.ndarray, np.ndarray]]:
    if "M_verts_faces" in obj:
        return [(np.asarray(v), np.asarray(f)) for v, f in obj["M_verts_faces"]]
    if "M" in obj:
        out = []
        for m in obj["M"]:
            if not isinstance(m, dict) or "v" not in m or "f" not in m:
                raise MeshError("an entry of M has no v and f", source=path, field="M")
            out.append((np.asarray(m["v"]), np.asarray(m["f"])))
        return out
    if "vertices" in obj and "face" in obj:
        return [(np.asarray(v), np.asarray(f)) for v, f in
                zip(obj["vertices"], obj["face"], strict=True)]
    raise MeshError(f"holds keys {sorted(obj)}; expected M_verts_faces (or M) with D and U, or "
                    "vertices, face, down_transform and up_transform", source=path)


def load_published_hierarchy(path: str | os.PathLike) -> PublishedHierarchy:
    """Reads a CoMA / Neural3DMM / S2D / SpiralNet++ transform pickle.

    Args:
      path: the ``downsampling_matrices.pkl`` / ``transform.pkl`` file.

    Returns:
      The hierarchy and its report (:class:`PublishedHierarchy`); build spirals on it with
      :func:`jaxface.mesh.spirals_for` and a model topology with
      ``SpiralTopology.from_hierarchy``.

    Raises:
      MeshError: the file is missing, is not a transform pickle, or its matrices are malformed
        (the message names the file and the matrix).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MeshError("file not found", source=path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        obj = restricted_loads(data, source=path, allow=("sparse", "mesh"))
    except PickleContentError as err:
        raise MeshError(f"not a readable transform pickle ({err.detail})", source=path) from None
    if not isinstance(obj, dict):
        raise MeshError(f"holds a {type(obj).__name__}, expected a dict of matrices",
                        source=path)
    meshes = _mesh_list(obj, path)
    down = obj.get("D", obj.get("down_transform"))
    up = obj.get("U", obj.get("up_transform"))
    if down is None or up is None:
        raise MeshError("has no D/U (down_transform/up_transform) matrices", source=path)
    return hierarchy_from_matrices(meshes, list(down), list(up), source=path)
