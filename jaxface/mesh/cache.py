"""On-disk cache of mesh hierarchies and spirals (``.npz``, never pickle).

Building a hierarchy and its spirals takes about a second for a 5k-vertex template;
loading the cached arrays takes milliseconds. A cache entry is keyed by the SHA-256 of
the template arrays (float32 vertices, int32 faces) together with every parameter that
affects the result and :data:`TOPOLOGY_VERSION`, so changing any of them builds a new
entry instead of returning a stale one. Entries live in ``$JAXFACE_CACHE_DIR`` or, when
that is unset, ``~/.cache/jaxface``, and are written atomically (temporary file plus
``os.replace``), so concurrent builders never expose a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Sequence

import numpy as np

from jaxface.files import write_npz
from jaxface.mesh.errors import MeshError
from jaxface.mesh.hierarchy import MeshHierarchy, build_hierarchy, spirals_for
from jaxface.mesh.topology import validate_faces, validate_vertices

__all__ = [
    "CACHE_DIR_ENV",
    "TOPOLOGY_VERSION",
    "default_cache_dir",
    "load_or_build_topology",
    "load_topology",
    "save_topology",
    "topology_key",
]

CACHE_DIR_ENV = "JAXFACE_CACHE_DIR"
# Bump when the decimation or spiral algorithms change their output.
TOPOLOGY_VERSION = 1


def default_cache_dir() -> str:
    """``$JAXFACE_CACHE_DIR`` if set, else ``~/.cache/jaxface``."""
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return os.path.abspath(os.path.expanduser(configured))
    return os.path.join(os.path.expanduser("~"), ".cache", "jaxface")


def _per_level(name: str, value, count: int) -> list:
    if value is None or isinstance(value, (int, np.integer)):
        return [None if value is None else int(value)] * count
    values = [None if item is None else int(item) for item in value]
    if len(values) != count:
        raise ValueError(f"{name} needs one entry per level ({count}), got {len(values)}")
    return values


def _parameters(factors, spiral_lengths, rings, dilations, reference_vertices, order,
                method, boundary_weight) -> dict:
    factors = [float(f) for f in factors]
    count = len(factors) + 1
    return {
        "topology_version": TOPOLOGY_VERSION,
        "factors": factors,
        "spiral_lengths": _per_level("spiral_lengths", spiral_lengths, count),
        "rings": _per_level("rings", rings, count),
        "dilations": _per_level("dilations", dilations, count),
        "reference_vertices": (None if reference_vertices is None
                               else [int(r) for r in np.asarray(reference_vertices).ravel()]),
        "order": str(order),
        "method": str(method),
        "boundary_weight": float(boundary_weight),
    }


def topology_key(vertices, faces, parameters: dict) -> str:
    """SHA-256 hex digest of the template arrays and a JSON-serialisable parameter dict."""
    v = np.ascontiguousarray(np.asarray(vertices, dtype="<f4"))
    f = np.ascontiguousarray(np.asarray(faces, dtype="<i4"))
    digest = hashlib.sha256()
    digest.update(b"jaxface-topology\0")
    digest.update(json.dumps([v.shape, f.shape], sort_keys=True).encode())
    digest.update(v.tobytes())
    digest.update(f.tobytes())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    return digest.hexdigest()


def save_topology(path: str | os.PathLike[str], hierarchy: MeshHierarchy,
                  spirals: Sequence[np.ndarray], *, meta: dict | None = None) -> None:
    """Writes a hierarchy and its spirals to one ``.npz`` file, atomically.

    Keys: ``level{i}_{vertices,faces,down_indices,up_indices,up_weights}``,
    ``spirals{i}``, ``factors``, ``method``, ``boundary_weight`` and ``meta`` (a JSON
    string). Missing parent folders are created.

    Args:
      path: Destination file (``.npz``).
      hierarchy: The hierarchy.
      spirals: One ``[n_i, L_i]`` int32 array per level.
      meta: Optional JSON-serialisable metadata (cache key, parameters).
    """
    if len(spirals) != hierarchy.num_levels:
        raise ValueError(f"expected {hierarchy.num_levels} spiral tables, got {len(spirals)}")
    arrays = hierarchy.to_arrays()
    for i, table in enumerate(spirals):
        arrays[f"spirals{i}"] = np.asarray(table, np.int32)
    arrays["meta"] = np.asarray(json.dumps(meta or {}, sort_keys=True))
    write_npz(path, arrays)


def load_topology(path: str | os.PathLike[str]) -> tuple[MeshHierarchy, list[np.ndarray], dict]:
    """Reads a file written by :func:`save_topology`.

    Args:
      path: The ``.npz`` file.

    Returns:
      ``(hierarchy, spirals, meta)``.

    Raises:
      MeshError: if the file is missing, not an ``.npz`` or lacks required arrays.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise MeshError("file not found", source=path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        hierarchy = MeshHierarchy.from_arrays(arrays)
        spirals = [arrays[f"spirals{i}"] for i in range(hierarchy.num_levels)]
        meta = json.loads(str(arrays["meta"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise MeshError(f"not a jaxface topology file ({err})", source=path) from err
    return hierarchy, spirals, meta


def load_or_build_topology(
    vertices,
    faces,
    *,
    factors: Sequence[float] = (4, 4, 4, 4),
    spiral_lengths=None,
    rings=None,
    dilations=1,
    reference_vertices=None,
    order: str = "neural3dmm",
    method: str = "qslim",
    boundary_weight: float = 1.0,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[MeshHierarchy, list[np.ndarray], str]:
    """Returns a template's hierarchy and per-level spirals, from the cache when possible.

    Per-level arguments (``spiral_lengths``, ``rings``, ``dilations``) take one value for
    all levels or one entry per level (``len(factors) + 1``); see
    :func:`jaxface.mesh.hierarchy.spirals_for`. An unreadable cache file is rebuilt.

    Args:
      vertices: ``[N, 3]`` template coordinates.
      faces: ``[F, 3]`` template triangles.
      factors: Decimation factor per level step.
      spiral_lengths: Spiral length per level (``None``: data-driven, Neural3DMM order).
      rings: Rings per level (Neural3DMM order; default 1).
      dilations: Dilation per level.
      reference_vertices: Optional level-0 reference vertices.
      order: ``"neural3dmm"`` or ``"spiralnet"``.
      method: Decimation method (see :func:`jaxface.mesh.hierarchy.build_hierarchy`).
      boundary_weight: Boundary quadric weight.
      cache_dir: Cache folder; default :func:`default_cache_dir`.

    Returns:
      ``(hierarchy, spirals, cache_path)``.
    """
    v = validate_vertices(vertices).astype(np.float32)
    f = validate_faces(faces, v.shape[0]).astype(np.int32)
    parameters = _parameters(factors, spiral_lengths, rings, dilations, reference_vertices,
                             order, method, boundary_weight)
    key = topology_key(v, f, parameters)
    folder = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    path = os.path.join(folder, f"topology-{key[:32]}.npz")
    if os.path.isfile(path):
        try:
            hierarchy, spirals, meta = load_topology(path)
        except MeshError:
            meta = {}
        if meta.get("key") == key:
            return hierarchy, spirals, path
    hierarchy = build_hierarchy(v, f, parameters["factors"], method=method,
                                boundary_weight=boundary_weight)
    spirals = spirals_for(hierarchy, lengths=parameters["spiral_lengths"],
                          rings=parameters["rings"], dilations=parameters["dilations"],
                          reference_vertices=reference_vertices, order=order)
    save_topology(path, hierarchy, spirals, meta={"key": key, "parameters": parameters})
    return hierarchy, spirals, path
