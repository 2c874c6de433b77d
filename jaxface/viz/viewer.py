"""A self-contained HTML viewer for generated mesh sequences (WebGL, no network at view time).

:func:`write_viewer` finds the sequences of an output folder (:func:`find_sequences`: its
``.glb`` files, else its folders of ``frame_*.ply`` / ``frame_*.obj`` meshes) and writes
``viewer.html`` beside them: one page, its mesh data embedded, that any browser opens from disk.
It plays the sequences with play/pause, a frame slider, a sample selector, mouse-drag orbit and
wheel zoom, and a heat-map toggle that colours each vertex by its displacement from the first
frame (a jet colour bar in millimetres, its top the sequence's largest displacement).

The page is plain WebGL (``jaxface/viz/viewer_template.html``): a mesh player needs a few dozen
lines of GL, which is less to ship and audit than a vendored 3D engine. The motion is embedded as
the morph-target encoding of :func:`jaxface.mesh.gltf.motion_basis` (the base mesh as float32,
targets quantised to int16 per target, float32 weights per frame, all base64), so the page is
about as compact as the ``.glb`` and reproduces every frame to well under a tenth of a
millimetre; the browser rebuilds a frame as ``base + weights @ targets`` and its normals.

URL parameters set the initial state, e.g. ``viewer.html?sample=1&frame=12&heat=1``:
``sample`` (index or name), ``frame`` (shows that frame, paused unless ``play=1``), ``heat``
(``1``: heat map on), ``play`` (``0``/``1``), ``yaw`` and ``pitch`` (degrees). The page's
``<body data-state=...>`` becomes ``ready`` once a frame is drawn, or ``no-webgl`` / ``error``
with a message in the page.
"""

from __future__ import annotations

import base64
import dataclasses
import glob
import html
import importlib.resources
import json
import os

import numpy as np

from jaxface.files import write_atomic
from jaxface.mesh.errors import MeshError
from jaxface.mesh.gltf import DEFAULT_TOLERANCE, motion_basis, read_glb
from jaxface.mesh.io import read_mesh

__all__ = [
    "DEFAULT_FPS",
    "VIEWER_FILE",
    "ViewerSequence",
    "find_sequences",
    "viewer_html",
    "write_viewer",
]

#: Frame rate of sequences read from mesh files (which do not record one).
DEFAULT_FPS = 30.0
#: The page :func:`write_viewer` writes into the folder.
VIEWER_FILE = "viewer.html"
_TEMPLATE = "viewer_template.html"
_FRAME_PATTERNS = ("frame_*.ply", "frame_*.obj")


@dataclasses.dataclass(frozen=True)
class ViewerSequence:
    """One mesh sequence to show.

    Attributes:
      name: label in the sample selector.
      frames: float32 ``[T, N, 3]`` vertex positions in metres.
      faces: int32 ``[F, 3]`` triangles.
      fps: frame rate.
    """

    name: str
    frames: np.ndarray
    faces: np.ndarray
    fps: float


def _frame_files(folder: str) -> list[str]:
    """The ``frame_*`` meshes of a folder, in name order (PLY when both formats are there)."""
    for pattern in _FRAME_PATTERNS:
        files = sorted(glob.glob(os.path.join(glob.escape(folder), pattern)))
        if files:
            return files
    return []


def _read_frames(folder: str, fps: float) -> ViewerSequence:
    """The sequence of a folder of ``frame_*`` meshes (one topology, checked)."""
    frames, faces = [], None
    for path in _frame_files(folder):
        vertices, these = read_mesh(path)
        if faces is not None and (vertices.shape != frames[0].shape
                                  or not np.array_equal(these, faces)):
            raise MeshError(
                f"has {vertices.shape[0]} vertices and {these.shape[0]} faces, not the topology "
                f"of {os.path.basename(_frame_files(folder)[0])} ({frames[0].shape[0]} vertices, "
                f"{faces.shape[0]} faces)", source=path)
        frames.append(vertices)
        faces = these if faces is None else faces
    return ViewerSequence(name=os.path.basename(os.path.normpath(folder)),
                          frames=np.stack(frames).astype(np.float32), faces=faces, fps=fps)


def find_sequences(folder: str | os.PathLike[str], *, fps: float = DEFAULT_FPS
                   ) -> list[ViewerSequence]:
    """The mesh sequences of an output folder, in name order.

    The ``.glb`` files of the folder and of its sub-folders (such as the ``glb`` folder of
    ``jaxface generate``) are read when there are any, named by their file names (their frame
    rate is their own); otherwise every folder (the folder itself and its sub-folders)
    holding ``frame_*.ply`` or ``frame_*.obj`` meshes is one sequence, played at ``fps``.

    Args:
      folder: e.g. the ``--out`` folder of ``jaxface generate``.
      fps: frame rate of sequences read from mesh files.

    Returns:
      One :class:`ViewerSequence` per file or folder.

    Raises:
      FileNotFoundError: ``folder`` is not a folder.
      ValueError: it holds no sequence, or ``fps`` is not positive.
      MeshError: a file cannot be read, or the frames of a folder differ in topology.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: no such folder")
    if not fps > 0:
        raise ValueError(f"expected a positive frame rate, got {fps}")
    top = glob.escape(folder)
    files = sorted(glob.glob(os.path.join(top, "*.glb"))) + sorted(
        glob.glob(os.path.join(top, "*", "*.glb")))
    if files:
        names = [os.path.splitext(os.path.basename(path))[0] for path in files]
        if len(set(names)) < len(names):  # the same name in two folders: keep the folders
            names = [os.path.splitext(os.path.relpath(path, folder))[0] for path in files]
        sequences = []
        for path, name in zip(files, names, strict=True):
            read = read_glb(path)
            sequences.append(ViewerSequence(name=name, frames=read.frames, faces=read.faces,
                                            fps=read.fps or fps))
        return sequences
    folders = [folder] + sorted(p for p in glob.glob(os.path.join(top, "*")) if os.path.isdir(p))
    sequences = [_read_frames(f, fps) for f in folders if _frame_files(f)]
    if not sequences:
        raise ValueError(f"{folder}: no sequences found (no .glb files, and no folder of "
                         "frame_*.ply or frame_*.obj meshes)")
    return sequences


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _record(sequence: ViewerSequence, tolerance: float) -> dict:
    """What the page needs of one sequence (arrays little-endian, base64)."""
    frames = np.asarray(sequence.frames, np.float32)
    if frames.ndim != 3 or frames.shape[2] != 3:
        raise MeshError(f"expected frames [T, N, 3], got {frames.shape}", source=sequence.name,
                        field="frames")
    faces = np.asarray(sequence.faces)
    targets, weights, _, _ = motion_basis(frames, tolerance=tolerance)
    num_targets = targets.shape[0]
    flat = targets.reshape(num_targets, -1).astype(np.float64)
    peak = np.abs(flat).max(axis=1) if num_targets else np.zeros(0)
    steps = np.where(peak > 0, peak / 32767.0, 1.0)
    quantised = np.round(flat / steps[:, None]).astype("<i2")
    lo, hi = frames.min(axis=(0, 1)), frames.max(axis=(0, 1))
    moved = np.linalg.norm(frames.astype(np.float64) - frames[0], axis=-1)
    return {
        "name": sequence.name,
        "fps": float(sequence.fps),
        "numFrames": int(frames.shape[0]),
        "numVertices": int(frames.shape[1]),
        "numTargets": int(num_targets),
        "faces": _b64(faces.astype("<u4")),
        "base": _b64(frames[0].astype("<f4")),
        "targets": _b64(quantised),
        "steps": [float(s) for s in steps],
        "weights": _b64(weights.astype("<f4")),
        "maxDisplacement": float(moved.max()),
        "center": [float(c) for c in 0.5 * (lo + hi)],
        "radius": float(0.5 * np.linalg.norm(hi - lo)) or 1.0,
    }


def viewer_html(sequences: list[ViewerSequence], *, title: str = "jaxface viewer",
                tolerance: float = DEFAULT_TOLERANCE) -> str:
    """The viewer page playing ``sequences`` (their data embedded).

    Args:
      sequences: at least one :class:`ViewerSequence`.
      title: the page title.
      tolerance: error allowed to the embedded motion encoding, metres (before the int16
        quantisation of the targets).

    Returns:
      The HTML text.

    Raises:
      ValueError: no sequences.
      MeshError: a sequence whose arrays are malformed.
    """
    if not sequences:
        raise ValueError("the viewer needs at least one sequence")
    data = json.dumps([_record(s, tolerance) for s in sequences], separators=(",", ":"))
    data = data.replace("</", "<\\/")  # never closes the script element that holds it
    template = importlib.resources.files("jaxface.viz").joinpath(_TEMPLATE).read_text("utf-8")
    return template.replace("__TITLE__", html.escape(title)).replace("__SEQUENCES__", data)


def write_viewer(folder: str | os.PathLike[str], *, fps: float = DEFAULT_FPS,
                 title: str | None = None) -> str:
    """Writes ``folder/viewer.html`` playing the sequences of ``folder`` (atomically).

    Args:
      folder: a folder of sequences (see :func:`find_sequences`).
      fps: frame rate of sequences read from mesh files.
      title: the page title (default: the folder's name).

    Returns:
      The path of the page.

    Raises:
      FileNotFoundError: ``folder`` is not a folder.
      ValueError: it holds no sequence.
      MeshError: a file cannot be read.
    """
    folder = os.path.abspath(os.fspath(folder))
    sequences = find_sequences(folder, fps=fps)
    page = viewer_html(sequences, title=title or os.path.basename(folder))
    return write_atomic(os.path.join(folder, VIEWER_FILE), page.encode("utf-8"))
