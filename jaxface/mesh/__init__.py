"""Offline mesh tools (numpy/scipy): I/O, topology, spirals, hierarchies, UV maps.

Everything here runs once per template, before training; the resulting index and
weight arrays are passed to the JAX models as constants. Submodules:

* :mod:`jaxface.mesh.io`: read/write PLY and OBJ without reordering vertices.
* :mod:`jaxface.mesh.gltf`: mesh sequences as animated binary glTF 2.0 (morph targets).
* :mod:`jaxface.mesh.topology`: edges, adjacency, boundaries, components, normals,
  cotangent Laplacian.
* :mod:`jaxface.mesh.spirals`: Neural3DMM and SpiralNet++ spiral index tables.
* :mod:`jaxface.mesh.hierarchy`: CoMA-style decimation with down/up-sampling arrays.
* :mod:`jaxface.mesh.cache`: ``.npz`` cache of hierarchies and spirals.
* :mod:`jaxface.mesh.published`: the D/U transform pickles of published models.
* :mod:`jaxface.mesh.pickles`: restricted reading of face-model pickles (numpy, scipy sparse,
  chumpy and torch content, without importing chumpy or torch).
* :mod:`jaxface.mesh.uv`: harmonic UV maps and geometry-image sampling maps.
* :mod:`jaxface.mesh.registration`: a template fitted to a scan of any topology (similarity,
  rigid and non-rigid ICP) and the map that carries template motion back to the scan.
* :mod:`jaxface.mesh.primitives`: small test meshes.
"""

from jaxface.mesh.cache import (
    CACHE_DIR_ENV,
    default_cache_dir,
    load_or_build_topology,
    load_topology,
    save_topology,
    topology_key,
)
from jaxface.mesh.errors import MeshError
from jaxface.mesh.gltf import GlbInfo, GlbSequence, motion_basis, read_glb, write_glb
from jaxface.mesh.hierarchy import (
    Level,
    MeshHierarchy,
    build_hierarchy,
    closest_points_on_mesh,
    level_reference_vertices,
    spirals_for,
)
from jaxface.mesh.io import check_topology, read_mesh, write_mesh, write_sequence
from jaxface.mesh.primitives import (
    grid_patch,
    icosphere,
    octahedron,
    spherical_cap,
    tetrahedron,
    two_components,
)
from jaxface.mesh.published import PublishedHierarchy, load_published_hierarchy
from jaxface.mesh.registration import (
    Registration,
    RegistrationConfig,
    Similarity,
    TransferMap,
    fit_similarity,
    register_template,
    transfer_displacements,
)
from jaxface.mesh.spirals import (
    OrderedOneRings,
    default_reference_vertices,
    nearest_vertices,
    neural3dmm_length,
    ordered_one_rings,
    raw_spirals,
    spiral_indices,
    spiral_start_vertices,
)
from jaxface.mesh.topology import (
    boundary_loops,
    connected_components,
    cotangent_laplacian,
    cotangent_weights,
    edges,
    face_normals,
    validate_faces,
    validate_vertices,
    vertex_adjacency,
    vertex_normals,
)
from jaxface.mesh.uv import GeometryImageMap, harmonic_uv, rasterize_uv

__all__ = [
    "CACHE_DIR_ENV",
    "GeometryImageMap",
    "GlbInfo",
    "GlbSequence",
    "Level",
    "MeshError",
    "MeshHierarchy",
    "OrderedOneRings",
    "PublishedHierarchy",
    "Registration",
    "RegistrationConfig",
    "Similarity",
    "TransferMap",
    "boundary_loops",
    "build_hierarchy",
    "check_topology",
    "closest_points_on_mesh",
    "connected_components",
    "cotangent_laplacian",
    "cotangent_weights",
    "default_cache_dir",
    "default_reference_vertices",
    "edges",
    "face_normals",
    "fit_similarity",
    "grid_patch",
    "harmonic_uv",
    "icosphere",
    "level_reference_vertices",
    "load_or_build_topology",
    "load_published_hierarchy",
    "load_topology",
    "motion_basis",
    "nearest_vertices",
    "neural3dmm_length",
    "octahedron",
    "ordered_one_rings",
    "rasterize_uv",
    "raw_spirals",
    "read_glb",
    "read_mesh",
    "register_template",
    "save_topology",
    "spherical_cap",
    "spiral_indices",
    "spiral_start_vertices",
    "spirals_for",
    "tetrahedron",
    "topology_key",
    "transfer_displacements",
    "two_components",
    "validate_faces",
    "validate_vertices",
    "vertex_adjacency",
    "vertex_normals",
    "write_glb",
    "write_mesh",
    "write_sequence",
]
