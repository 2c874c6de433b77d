r"""A face scan of any topology in: its landmarks and its registration to the face template.

A scan (any vertex count and order, any frame, any units) is registered to the template by
:func:`jaxface.mesh.registration.register_template`, which needs some of the scan's landmarks
with their template vertices. They come from one of two places.

**A landmark file** (:func:`read_landmarks`): one landmark per row, ``x y z`` in the scan's
frame and units, as text (``.txt``, ``.csv``: numbers separated by spaces or commas, ``#``
comments) or a NumPy ``.npy`` array ``[L, 3]``. Two sets are accepted, told apart by their count:

* **68 iBUG / Multi-PIE points** (the usual 68-point annotation: jaw 0-16, brows 17-26, nose
  27-35, eyes 36-47, mouth 48-67), matched to the template's :data:`IBUG68_VERTICES`;
* **468 (or 478) MediaPipe face-mesh points** in MediaPipe's order (the 10 iris points of a
  478-point file are ignored), matched to the template's first 468 vertices, which are
  MediaPipe's at every subdivision level.

A row of ``nan`` marks a landmark that is missing; at least three must be present.

**Automatically** (:func:`detect_landmarks`): the scan is rendered (the numpy rasteriser of
:mod:`jaxface.viz.render`, orthographic, Lambert-shaded grey) and MediaPipe's FaceLandmarker
(:func:`jaxface.data.photo.detect_face`) looks for a face in the render. The scan's orientation
need not be known: the views along the six axis directions of its frame are tried in turn (the
face toward ``+z`` first, the common convention; FaceLandmarker also finds faces turned in the
image plane), then the same directions with the other up axes, 24 views in all, at 256 x 256. A
detection counts when at least half of its 468 points lift onto the scan and a similarity fit
of the template's 468 points to them leaves an RMS residual under :data:`MAX_LANDMARK_RMS` (16 mm
at the template's size: a real face differs from the template by about 6 mm RMS, a face "found"
in a wrong view, e.g. the inside of a mask seen from behind, by several centimetres). The face
is then rendered once more at 512 x 512 from its own front (the fitted rotation), framed on it,
and detected again; the better-fitting of the two detections is kept.

Points are lifted onto the scan by ray casting through the renderer's face-index buffer
(:func:`lift_points`, :func:`jaxface.viz.render.face_buffer`): the orthographic ray through a
landmark's sub-pixel position hits the nearest of the triangles the 3 x 3 pixels around it see,
at the landmark's barycentric coordinates in that triangle's projection (exact for an
orthographic camera). A point that falls on no triangle (an eye or mouth hole, off the scan) is
missing, and so are the 36 points of MediaPipe's face outline (the template's outer boundary):
on a render they follow the silhouette of the scan rather than one point of the skin, and were
the worst placed, up to 17 mm off. On MediaPipe's canonical face (1790 vertices, decimated to
900) about 400 points lift, 2.8 mm from their true place (median): MediaPipe places points on an
untextured render less precisely than on a photo, so detected landmarks get small weights in the
non-rigid registration (:data:`DETECTED_LANDMARK_WEIGHT`). When no view
gives a face, :class:`NoScanFaceError` asks for a landmark file.

:func:`register_scan` runs the landmarks (given or detected) and the registration in one call.

Example (a landmark file of 68 points):
  >>> import os, tempfile
  >>> path = os.path.join(tempfile.mkdtemp(), "marks.txt")
  >>> np.savetxt(path, np.arange(204.0).reshape(68, 3))
  >>> marks = read_landmarks(path)
  >>> marks.scheme, marks.points.shape, int(marks.template_indices[8])
  ('ibug68', (68, 3), 152)
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from jaxface.data.template import IBUG68_VERTICES, NUM_BASE_VERTICES, load_face_template
from jaxface.mesh.registration import (
    Registration,
    RegistrationConfig,
    fit_similarity,
    register_template,
)
from jaxface.mesh.topology import boundary_loops, validate_faces, validate_vertices

__all__ = [
    "DETECTED_LANDMARK_WEIGHT",
    "IMAGE_SIZE",
    "MAX_LANDMARK_RMS",
    "NoScanFaceError",
    "ScanError",
    "ScanLandmarks",
    "candidate_views",
    "detect_landmarks",
    "lift_points",
    "read_landmarks",
    "register_scan",
]

#: Side of the renders the landmarks are detected on, pixels (the views searched for a face are
#: rendered at half this size).
IMAGE_SIZE = 512
#: Landmark weights of the non-rigid stages for detected landmarks: MediaPipe's points on an
#: untextured render are off by about 3 mm (median), so they only guide the first stages.
DETECTED_LANDMARK_WEIGHT = (0.5, 0.25, 0.1, 0.05, 0.0, 0.0)
#: Largest RMS residual (template units, metres) of the template's 468 points fitted to a
#: detection by a similarity for the detection to count.
MAX_LANDMARK_RMS = 0.016
# Landmark counts of the accepted sets.
_SCHEMES = {68: "ibug68", 468: "mediapipe468", 478: "mediapipe468"}


class ScanError(ValueError):
    """A scan or its landmarks that cannot be used.

    Attributes:
      source: the file, or ``None``.
      detail: the message without the file name.
    """

    def __init__(self, detail: str, *, source: str | os.PathLike[str] | None = None) -> None:
        self.source = None if source is None else os.fspath(source)
        self.detail = detail
        super().__init__(f"{self.source}: {detail}" if self.source else detail)


class NoScanFaceError(ScanError):
    """No face was found on the renders of a scan (its landmarks must be given)."""


@dataclasses.dataclass(frozen=True)
class ScanLandmarks:
    """Landmarks of a scan and the template vertices they belong to.

    Attributes:
      points: ``float64 [L, 3]`` in the scan's frame and units (a row of NaN: missing).
      template_indices: ``int32 [L]`` vertex of the template's base mesh for each point (the
        base vertices keep their indices at every subdivision level).
      scheme: ``"ibug68"`` or ``"mediapipe468"``.
      source: the file they were read from, or ``"detected"``.
      view: ``float64 [3, 3]`` the world-to-view rotation of the render they were detected on
        (``None`` for a file).
    """

    points: np.ndarray
    template_indices: np.ndarray
    scheme: str
    source: str
    view: np.ndarray | None = None

    @property
    def present(self) -> np.ndarray:
        """``bool [L]``: the landmarks that are not missing."""
        return np.isfinite(self.points).all(axis=1)

    def scaled(self, factor: float) -> ScanLandmarks:
        """The same landmarks with the points multiplied by ``factor`` (a change of units)."""
        return dataclasses.replace(self, points=self.points * float(factor))

    def describe(self) -> str:
        """E.g. ``"468 MediaPipe points, 431 on the scan (detected)"``."""
        kind = "68 iBUG" if self.scheme == "ibug68" else "468 MediaPipe"
        return f"{kind} points, {int(self.present.sum())} present ({self.source})"


def _template_indices(scheme: str) -> np.ndarray:
    if scheme == "ibug68":
        return np.asarray(IBUG68_VERTICES, np.int32)
    return np.arange(NUM_BASE_VERTICES, dtype=np.int32)


def _parse_text(path: str) -> np.ndarray:
    rows = []
    with open(path, encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            words = line.split("#", 1)[0].replace(",", " ").split()
            if not words:
                continue
            try:
                rows.append([float(word) for word in words])
            except ValueError:
                raise ScanError(f"line {number}: expected numbers, got {line.strip()[:60]!r}",
                                source=path) from None
            if len(rows[-1]) != 3:
                raise ScanError(f"line {number}: expected 3 values (x y z), got "
                                f"{len(rows[-1])}", source=path)
    return np.asarray(rows, np.float64).reshape(-1, 3)


def read_landmarks(path: str | os.PathLike[str]) -> ScanLandmarks:
    """Reads a scan's landmarks: 68 iBUG or 468/478 MediaPipe points (see the module docstring).

    Args:
      path: a ``.npy`` array ``[L, 3]`` or a text file of ``L`` rows ``x y z``.

    Returns:
      The :class:`ScanLandmarks` (MediaPipe's 10 iris points dropped).

    Raises:
      ScanError: a missing or unreadable file, another landmark count, non-finite values other
        than whole rows of NaN, or fewer than three landmarks present (the file is named).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ScanError("no such landmark file", source=path)
    if path.lower().endswith(".npy"):
        try:
            points = np.asarray(np.load(path, allow_pickle=False), np.float64)
        except (OSError, ValueError, TypeError) as err:
            raise ScanError(f"not a readable .npy array ({err})", source=path) from None
    else:
        points = _parse_text(path)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] not in _SCHEMES:
        raise ScanError(f"expected 68 (iBUG) or 468 (MediaPipe) landmarks of 3 coordinates, got "
                        f"an array of shape {list(points.shape)}", source=path)
    scheme = _SCHEMES[points.shape[0]]
    points = points[:NUM_BASE_VERTICES]
    missing = np.isnan(points).all(axis=1)
    if not np.isfinite(points[~missing]).all():
        raise ScanError("landmarks must be finite numbers (a row of nan marks a missing one)",
                        source=path)
    if (~missing).sum() < 3:
        raise ScanError(f"at least 3 landmarks must be present, got {int((~missing).sum())}",
                        source=path)
    return ScanLandmarks(points=points, template_indices=_template_indices(scheme),
                         scheme=scheme, source=path)


def candidate_views() -> list[np.ndarray]:
    """The 24 axis-aligned world-to-view rotations, in the order they are tried.

    MediaPipe finds faces turned in the image plane too, so the six directions of view come
    first, each with one up direction, and the other up directions after them.

    Returns:
      ``float64 [3, 3]`` rotations whose rows are the view's right, up and toward-the-viewer
      directions: the face toward ``+z`` first, then ``-z``, ``+x``, ``-x``, ``+y``, ``-y``;
      up along ``+y`` first, then ``+z``, ``-y``, ``-z``, ``+x``, ``-x``.
    """
    axes = [np.eye(3)[i] * s for i, s in ((2, 1), (2, -1), (0, 1), (0, -1), (1, 1), (1, -1))]
    ups = [np.eye(3)[i] * s for i, s in ((1, 1), (2, 1), (1, -1), (2, -1), (0, 1), (0, -1))]
    first, rest = [], []
    for forward in axes:
        for up in ups:
            if abs(float(forward @ up)) < 0.5:
                view = np.stack([np.cross(up, forward), up, forward])
                (rest if any(f is forward for f, _ in first) else first).append((forward, view))
    return [view for _, view in first + rest]


def lift_points(pixels: np.ndarray, vertices: np.ndarray, faces: np.ndarray, camera
                ) -> np.ndarray:
    """Casts the orthographic rays through image points onto a mesh.

    Args:
      pixels: float ``[P, 2]`` ``(column, row)`` image positions (pixel ``(c, r)`` spans
        ``[c, c + 1) x [r, r + 1)``).
      vertices: float ``[N, 3]``.
      faces: int ``[F, 3]``.
      camera: the :class:`jaxface.viz.render.Camera` of the image.

    Returns:
      ``float64 [P, 3]`` the first surface point along each ray, NaN where the ray misses.
    """
    from jaxface.viz.render import face_buffer, project_points

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    buffer, _ = face_buffer(v, f, camera)
    h, w = buffer.shape
    px = np.asarray(pixels, np.float64).reshape(-1, 2)
    col = np.floor(px[:, 0]).astype(np.int64)
    row = np.floor(px[:, 1]).astype(np.int64)
    offsets = np.array([(dr, dc) for dr in (0, -1, 1) for dc in (0, -1, 1)])  # centre first
    rr = np.clip(row[:, None] + offsets[:, 0], 0, h - 1)
    cc = np.clip(col[:, None] + offsets[:, 1], 0, w - 1)
    cand = buffer[rr, cc]  # [P, 9]
    inside_image = (row >= 0) & (row < h) & (col >= 0) & (col < w)
    screen, depth = project_points(v, camera)
    tri = screen[f[np.maximum(cand, 0)]]  # [P, 9, 3, 2]
    e1, e2 = tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :]
    rel = px[:, None, :] - tri[..., 0, :]
    det = e1[..., 0] * e2[..., 1] - e1[..., 1] * e2[..., 0]
    safe = np.where(np.abs(det) > 1e-12, det, 1.0)
    b1 = (rel[..., 0] * e2[..., 1] - rel[..., 1] * e2[..., 0]) / safe
    b2 = (e1[..., 0] * rel[..., 1] - e1[..., 1] * rel[..., 0]) / safe
    bary = np.stack([1.0 - b1 - b2, b1, b2], axis=-1)  # [P, 9, 3]
    hit = (cand >= 0) & (np.abs(det) > 1e-12) & (bary >= -1e-9).all(axis=-1)
    z = np.einsum("pjk,pjk->pj", bary, depth[f[np.maximum(cand, 0)]])
    z = np.where(hit, z, np.inf)
    pick = np.argmin(z, axis=1)
    rows = np.arange(px.shape[0])
    found = hit[rows, pick] & inside_image
    chosen = f[cand[rows, pick]]
    points = np.einsum("pk,pkc->pc", bary[rows, pick], v[chosen])
    points[~found] = np.nan
    return points


def _fit_rms(points: np.ndarray) -> tuple[float, object]:
    """RMS residual (template units) of the template's 468 points fitted to ``points``."""
    base = load_face_template(0).vertices.astype(np.float64)
    ok = np.isfinite(points).all(axis=1)
    if ok.sum() < NUM_BASE_VERTICES // 2:
        return np.inf, None
    sim = fit_similarity(base[ok], points[ok])
    rms = float(np.sqrt(np.mean(np.sum((sim.apply(base[ok]) - points[ok]) ** 2, axis=1))))
    return rms / sim.scale, sim


def detect_landmarks(vertices: np.ndarray, faces: np.ndarray, *,
                     views: list[np.ndarray] | None = None, image_size: int = IMAGE_SIZE,
                     source: str | None = None) -> ScanLandmarks:
    """The scan's 468 MediaPipe landmarks, found on renders of it (see the module docstring).

    Args:
      vertices: float ``[N, 3]`` the scan.
      faces: int ``[F, 3]``.
      views: world-to-view rotations to try, in order (default :func:`candidate_views`).
      image_size: size of the final render in pixels (the views are searched at half).
      source: the scan's file, for messages.

    Returns:
      :class:`ScanLandmarks` (``"mediapipe468"``, ``source="detected"``; points on the scan
      surface, NaN where a ray missed and on the face's outline).

    Raises:
      NoScanFaceError: no view gave a face (the message suggests a landmark file).
      MediaPipeMissingError: MediaPipe is not installed (the message names the ``pip``
        command).
    """
    from jaxface.data.photo import (
        INSTALL_HINT,
        detection_from_result,
        landmark_pixels,
        open_face_landmarker,
    )
    from jaxface.viz.render import fit_camera, render_mesh

    v = validate_vertices(vertices, source=source)
    f = validate_faces(faces, v.shape[0], source=source)
    views = candidate_views() if views is None else list(views)
    best = None
    with open_face_landmarker("image", purpose="finding a scan's landmarks",
                              hint=f"{INSTALL_HINT}, or give the landmarks in a file"
                              ) as (landmarker, mp):

        def lifted(camera) -> np.ndarray | None:
            image = render_mesh(v, f, camera=camera)
            result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=image))
            detection = detection_from_result(result, image.shape[:2], source=source)
            if detection is None:
                return None
            pixels = landmark_pixels(detection)[:NUM_BASE_VERTICES]
            return lift_points(pixels, v, f, camera)

        for view in views:
            camera = fit_camera(v, image_size // 2, rotation=view)
            points = lifted(camera)
            if points is None:
                continue
            rms, sim = _fit_rms(points)
            if rms > MAX_LANDMARK_RMS:
                continue
            best = (rms, points, camera.rotation)
            face = points[np.isfinite(points).all(axis=1)]  # the template's axes in the scan:
            camera = fit_camera(face, image_size, rotation=sim.rotation.T, margin=0.25)
            again = lifted(camera)
            if again is not None and _fit_rms(again)[0] <= rms:
                best = (_fit_rms(again)[0], again, camera.rotation)
            break
    if best is None:
        raise NoScanFaceError(
            f"no face found on renders of the scan from {len(views)} directions; give its "
            "landmarks in a file (68 iBUG or 468 MediaPipe points, x y z per line)",
            source=source)
    _, points, rotation = best
    points[boundary_loops(load_face_template(0).faces)[0]] = np.nan  # the face's outline
    return ScanLandmarks(points=points, template_indices=_template_indices("mediapipe468"),
                         scheme="mediapipe468", source="detected", view=rotation)


def register_scan(scan_vertices: np.ndarray, scan_faces: np.ndarray,
                  template_vertices: np.ndarray, template_faces: np.ndarray,
                  landmarks: ScanLandmarks | None = None, *,
                  config: RegistrationConfig | None = None, source: str | None = None
                  ) -> tuple[Registration, ScanLandmarks]:
    """Registers a face template (any subdivision level) to a scan.

    Args:
      scan_vertices: float ``[Vs, 3]``.
      scan_faces: int ``[Fs, 3]``.
      template_vertices: float ``[Vt, 3]`` the face template at some level (its first 468
        vertices are MediaPipe's).
      template_faces: int ``[Ft, 3]``.
      landmarks: the scan's landmarks (:func:`read_landmarks`); ``None`` detects them
        (:func:`detect_landmarks`).
      config: the registration's parameters (default: :class:`RegistrationConfig`, with
        :data:`DETECTED_LANDMARK_WEIGHT` for detected landmarks).
      source: the scan's file, for messages.

    Returns:
      ``(registration, landmarks)``.

    Raises:
      NoScanFaceError: no landmarks given and none found on the renders.
      ScanError: the landmarks do not fit the template (e.g. 468 points for a template with
        fewer vertices).
      MeshError: a malformed scan (e.g. no faces).
    """
    from jaxface.mesh.errors import MeshError

    if np.asarray(scan_faces).size == 0:
        raise MeshError("expected a triangle mesh, the scan has no faces", source=source,
                        field="faces")
    if landmarks is None:
        landmarks = detect_landmarks(scan_vertices, scan_faces, source=source)
    num = np.asarray(template_vertices).shape[0]
    if int(landmarks.template_indices.max()) >= num:
        raise ScanError(f"the {landmarks.scheme} landmarks need the face template's vertices, "
                        f"the template has only {num}", source=landmarks.source)
    if config is None:
        config = (RegistrationConfig(landmark_weight=DETECTED_LANDMARK_WEIGHT)
                  if landmarks.source == "detected" else RegistrationConfig())
    registration = register_template(template_vertices, template_faces, scan_vertices,
                                     scan_faces, landmarks.template_indices, landmarks.points,
                                     config=config)
    return registration, landmarks
