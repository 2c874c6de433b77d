r"""A photograph in, a neutral face in the template's topology out.

:func:`photo_to_neutral` runs four steps:

1. **Detection.** MediaPipe's FaceLandmarker (PyPI ``mediapipe``, tasks API, ``IMAGE`` mode)
   finds the face and returns 478 landmarks (the 468 of MediaPipe's face mesh, which is the
   jaxface template's topology and vertex order, plus 10 iris points), 52 blendshape scores
   (``_neutral`` and 51 ARKit names) and a head pose. MediaPipe is a maintained, offline,
   Apache-2.0 detector whose mesh *is* the template's, so no correspondence has to be guessed.
   Its model bundle ``face_landmarker.task`` ships in ``jaxface/assets`` (see
   ``jaxface/assets/PROVENANCE.md``); nothing is downloaded. MediaPipe itself is the optional
   extra ``pip install 'jaxface[photo]'``; it is imported only when a photo is read.
2. **Metric frame.** The 468 normalised landmarks ``(x, y, z)`` are mapped to a right-handed
   frame as ``experiments/assets/build_face_template.py`` built the template
   (``X = x W``, ``Y = -y H``, ``Z = -z W``: x to the viewer's right, y up, z toward the viewer)
   and brought onto the template by a similarity transform (rotation, translation and one
   scale), fitted by weighted Procrustes to the current model face ``n + sum_k w_k D_k``. The
   weights favour the vertices that the expression basis moves least (forehead, nose, temples),
   ``omega_v = 1 / (1 + (m_v / median(m))^2)`` with ``m_v = ||D_{:, v}||`` (the expression
   motion of vertex ``v``). One photograph cannot tell a face's absolute size, so the scale is
   the template's (a face 0.15 m wide); a face photographed at an angle is rotated to the front.
3. **Expression removal.** With ``x`` the aligned landmarks (``[468, 3]``, millimetres inside
   the fit), ``t`` the template, ``D`` the 52 ARKit shapes of
   :mod:`jaxface.data.expression_basis` (``[52, 468, 3]``) and ``w0`` MediaPipe's blendshape
   scores, the neutral face ``n`` and the weights ``w`` minimise::

     E(n, w) =      sum_v ||x_v - n_v - sum_k w_k D_kv||^2             (data)
             + a_L  sum_v ||(L (n - t))_v||^2                           (smooth identity)
             + a_S  sum_v ||n_v - S n_{m(v)}||^2                        (left/right symmetry)
             + a_C  sum_(u,l) ||(n_u - n_l) - (t_u - t_l)||^2           (closed lips)
             + a_T  sum_v ||n_v - t_v||^2                               (weak pull to t)
             + a_W  sum_k (w_k - w0_k)^2                                (trust MediaPipe's scores)
     subject to 0 <= w_k <= 1,

   where ``L`` is the uniform graph Laplacian of the template mesh (a vertex minus the mean of
   its neighbours), ``m`` the template's mirror map, ``S = diag(-1, 1, 1)``, ``(u, l)`` the
   nine upper/lower inner-lip vertex pairs (a neutral face has its lips together, as the
   template's 1 mm slit) and the weights :class:`NeutralPriors` (defaults ``a_L = 100``,
   ``a_S = 0.3``, ``a_C = 10``, ``a_T = 0.01``, ``a_W = 4`` mm²). Identity differences from
   the template are smooth and nearly symmetric, expressions are local and may be one-sided; the
   lip term makes an open mouth an expression, not an identity. For a fixed ``w`` the neutral is
   a sparse linear solve, ``n(w) = H^{-1} (x - D w + R^T r)``; substituting it leaves a 52-weight
   bounded least-squares problem, solved exactly (``scipy.optimize.lsq_linear``, BVLS). The
   alignment of step 2 and this solve alternate :attr:`NeutralPriors.iterations` times.
4. **Level.** The neutral's 468 vertices are lifted to the requested template level (0: 468,
   1: 1790, 2: 6990 vertices) with the template's subdivision operator
   (:attr:`jaxface.data.template.FaceTemplate.from_base`), the level of the models that will use
   it (:func:`template_level` reads it from their vertex count).

The result, :class:`PhotoNeutral`, holds the neutral (metres), the fitted weights, MediaPipe's
raw landmarks and scores, the aligned landmarks and the RMS fit residual. Errors are
:class:`PhotoError` (a ``ValueError``): :class:`NoFaceError` when no face is found, an
unreadable or missing image file, a missing or damaged model file, or MediaPipe not installed
(:class:`MediaPipeMissingError`, naming the ``pip`` command).

Example (the fit alone, on a face made from the template and a known smile):
  >>> import numpy as np
  >>> from jaxface.data.expression_basis import load_expression_basis
  >>> from jaxface.data.template import load_face_template
  >>> basis, t = load_expression_basis(0), load_face_template(0)
  >>> w = np.zeros(52); w[[basis.index("mouthSmile_L"), basis.index("mouthSmile_R")]] = 0.8
  >>> fit = fit_neutral(t.vertices + basis.apply(w), np.zeros(52))
  >>> bool(fit.weights[basis.index("mouthSmile_L")] > 0.6), bool(fit.residual_mm < 0.5)
  (True, True)
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib.resources
import os

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg

from jaxface.data.expression_basis import ARKIT_NAMES, load_expression_basis
from jaxface.data.template import (
    MOUTH_LOWER_INNER,
    MOUTH_UPPER_INNER,
    NUM_BASE_VERTICES,
    load_face_template,
)
from jaxface.mesh.registration import fit_similarity

__all__ = [
    "FACE_LANDMARKER_ASSET",
    "FACE_LANDMARKER_SHA256",
    "FACE_LANDMARKER_SIZE",
    "INSTALL_HINT",
    "MOUTH_OUTER_CORNERS",
    "FaceDetection",
    "MediaPipeMissingError",
    "NeutralFit",
    "NeutralPriors",
    "NoFaceError",
    "PhotoError",
    "PhotoNeutral",
    "alignment_weights",
    "arkit_name",
    "detect_face",
    "detection_from_result",
    "face_landmarker_path",
    "fit_neutral",
    "landmark_pixels",
    "metric_landmarks",
    "mouth_corner_lift",
    "open_face_landmarker",
    "overlay_landmarks",
    "photo_to_neutral",
    "read_photo",
    "render_beside",
    "template_level",
]

#: The FaceLandmarker model bundle in ``jaxface/assets`` (see ``PROVENANCE.md``).
FACE_LANDMARKER_ASSET = "face_landmarker.task"
#: Its size in bytes and sha256 (checked when it is first used).
FACE_LANDMARKER_SIZE = 3_758_596
FACE_LANDMARKER_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
#: How to install what the photo pipeline needs.
INSTALL_HINT = "pip install 'jaxface[photo]'"
#: The outer lip corners of the base mesh (subject's right, left).
MOUTH_OUTER_CORNERS = (61, 291)
# The outer lip midline (upper, lower): the mouth centre that the corners are measured against.
_LIP_MIDLINE = (0, 17)
# Template vertex count of each subdivision level.
_LEVEL_SIZES = {468: 0, 1790: 1, 6990: 2}


class PhotoError(ValueError):
    """A photograph (or what reading one needs) that cannot be used.

    Attributes:
      source: the image file, or ``None`` for an in-memory image.
      detail: the message without the file name.
    """

    def __init__(self, detail: str, *, source: str | os.PathLike[str] | None = None) -> None:
        self.source = None if source is None else os.fspath(source)
        self.detail = detail
        super().__init__(f"{self.source}: {detail}" if self.source else detail)


class NoFaceError(PhotoError):
    """FaceLandmarker found no face in the image."""


class MediaPipeMissingError(PhotoError):
    """MediaPipe (the optional extra ``jaxface[photo]``) is not installed."""


@dataclasses.dataclass(frozen=True)
class NeutralPriors:
    """Weights of the expression-removal objective (see the module docstring), in mm².

    Attributes:
      laplacian: ``a_L``, smoothness of ``n - t`` (uniform graph Laplacian).
      symmetry: ``a_S``, left/right symmetry of ``n`` about ``x = 0``.
      lips: ``a_C``, the inner lips of ``n`` as far apart as the template's (closed).
      template: ``a_T``, a weak pull of ``n`` toward the template (keeps the solve well posed).
      scores: ``a_W``, the weights' pull toward MediaPipe's blendshape scores.
      iterations: alternations of the similarity alignment and the linear solve.
    """

    laplacian: float = 100.0
    symmetry: float = 0.3
    lips: float = 10.0
    template: float = 0.01
    scores: float = 4.0
    iterations: int = 4

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"NeutralPriors.{field.name} must be >= 0, got {value}")
        if self.iterations < 1:
            raise ValueError(f"NeutralPriors.iterations must be >= 1, got {self.iterations}")


@dataclasses.dataclass(frozen=True)
class NeutralFit:
    """The expression removed from 468 template-order points.

    Attributes:
      neutral: ``float32 [468, 3]`` the neutral face ``n``, metres, template frame.
      weights: ``float32 [52]`` fitted ARKit weights ``w`` in [0, 1] (:data:`ARKIT_NAMES`).
      aligned: ``float32 [468, 3]`` the input points after the similarity alignment, metres.
      residual_mm: RMS over the 468 vertices of ``||x - n - D w||``, millimetres.
      scale: the similarity transform's scale (metres per input unit).
      rotation: ``float64 [3, 3]`` its rotation (``aligned = scale * points @ rotation.T + t``).
    """

    neutral: np.ndarray
    weights: np.ndarray
    aligned: np.ndarray
    residual_mm: float
    scale: float
    rotation: np.ndarray


@dataclasses.dataclass(frozen=True)
class FaceDetection:
    """What FaceLandmarker reports for one face.

    Attributes:
      landmarks: ``float32 [478, 3]`` normalised ``(x, y, z)``: ``x, y`` in [0, 1] of the image
        width and height, ``z`` a relative depth on the scale of ``x`` (smaller is closer).
      scores: ``float32 [52]`` blendshape scores in the order of :data:`ARKIT_NAMES`
        (``tongueOut``, which MediaPipe does not estimate, is 0).
      neutral_score: MediaPipe's ``_neutral`` score.
      transform: ``float32 [4, 4]`` the facial transformation matrix (pose of MediaPipe's
        canonical face, centimetres).
      image_size: ``(height, width)`` in pixels.
    """

    landmarks: np.ndarray
    scores: np.ndarray
    neutral_score: float
    transform: np.ndarray
    image_size: tuple[int, int]


@dataclasses.dataclass(frozen=True)
class PhotoNeutral:
    """A neutral face fitted to a photograph.

    Attributes:
      vertices: ``float32 [N, 3]`` the neutral face at :attr:`level`, metres, template frame.
      faces: ``int32 [F, 3]`` the template's triangles at that level.
      level: template subdivision level (0: 468, 1: 1790, 2: 6990 vertices).
      base_vertices: ``float32 [468, 3]`` the neutral on the base mesh.
      weights: ``float32 [52]`` fitted ARKit expression weights (:data:`ARKIT_NAMES`).
      aligned: ``float32 [468, 3]`` the photo's landmarks in the template frame, metres.
      residual_mm: RMS fit residual over the 468 landmarks, millimetres.
      detection: MediaPipe's raw output (landmarks, scores, pose).
    """

    vertices: np.ndarray
    faces: np.ndarray
    level: int
    base_vertices: np.ndarray
    weights: np.ndarray
    aligned: np.ndarray
    residual_mm: float
    detection: FaceDetection

    @property
    def names(self) -> tuple[str, ...]:
        """The 52 ARKit names of :attr:`weights`."""
        return ARKIT_NAMES

    def at_level(self, level: int) -> PhotoNeutral:
        """The same fit with the neutral lifted to another template level.

        Args:
          level: 0 (468 vertices), 1 (1790) or 2 (6990).

        Returns:
          A :class:`PhotoNeutral` whose :attr:`vertices` are ``from_base @ base_vertices`` of
          that level (everything else is shared).
        """
        if level < 0:
            raise ValueError(f"level must be >= 0, got {level}")
        tmpl = load_face_template(level)
        vertices = np.asarray(tmpl.from_base @ self.base_vertices.astype(np.float64), np.float32)
        return dataclasses.replace(self, vertices=vertices, faces=np.asarray(tmpl.faces),
                                   level=int(level))


def template_level(num_vertices: int) -> int:
    """The template subdivision level with ``num_vertices`` vertices.

    Args:
      num_vertices: a model's vertex count, e.g. ``FaceGenerator.num_vertices``.

    Returns:
      0, 1 or 2.

    Raises:
      ValueError: for a count that is no level of the template.

    Example:
      >>> template_level(1790), template_level(6990)
      (1, 2)
    """
    try:
        return _LEVEL_SIZES[int(num_vertices)]
    except KeyError:
        sizes = ", ".join(str(n) for n in _LEVEL_SIZES)
        raise ValueError(
            f"{num_vertices} vertices is no level of the face template ({sizes}); a photo gives "
            "a neutral face only in the template's topology"
        ) from None


def arkit_name(mediapipe_name: str) -> str:
    """MediaPipe's blendshape category name in the ARKit ``_L``/``_R`` spelling.

    Args:
      mediapipe_name: e.g. ``"mouthSmileLeft"`` or ``"jawOpen"``.

    Returns:
      The name in :data:`ARKIT_NAMES`.

    Raises:
      KeyError: for a name with no ARKit counterpart.

    Example:
      >>> arkit_name("mouthSmileLeft"), arkit_name("jawLeft")
      ('mouthSmile_L', 'jawLeft')
    """
    if mediapipe_name in ARKIT_NAMES:
        return mediapipe_name
    for side, suffix in (("Left", "_L"), ("Right", "_R")):
        if mediapipe_name.endswith(side):
            name = mediapipe_name[: -len(side)] + suffix
            if name in ARKIT_NAMES:
                return name
    raise KeyError(f"no ARKit name for MediaPipe blendshape {mediapipe_name!r}")


def read_photo(path: str | os.PathLike[str]) -> np.ndarray:
    """Reads an image file as RGB, upright as its EXIF orientation says (Pillow).

    Args:
      path: a JPEG, PNG or any format Pillow reads.

    Returns:
      ``uint8 [H, W, 3]``.

    Raises:
      PhotoError: the file is missing or is not a readable image.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not os.path.isfile(path):
        raise PhotoError("no such image file", source=path)
    try:
        with Image.open(path) as im:
            im.load()
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise PhotoError(f"not a readable image ({err})", source=path) from None
    return np.asarray(rgb, np.uint8)


def _as_rgb(image: np.ndarray, source: str | None) -> np.ndarray:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise PhotoError(f"expected a uint8 image, got dtype {a.dtype}", source=source)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=-1)
    if a.ndim != 3 or a.shape[-1] not in (3, 4):
        raise PhotoError(f"expected an image [H, W, 3], got shape {list(a.shape)}", source=source)
    if min(a.shape[:2]) < 16:
        raise PhotoError(f"the image is {a.shape[1]} x {a.shape[0]} pixels, too small for a face",
                         source=source)
    return np.ascontiguousarray(a[..., :3])


def face_landmarker_path() -> str:
    """The shipped ``face_landmarker.task``, checked by size and sha256 (once per process).

    Returns:
      Its path on disk.

    Raises:
      PhotoError: the file is missing or differs from the shipped one.
    """
    return _checked_task_path()


@functools.lru_cache(maxsize=1)
def _checked_task_path() -> str:
    path = os.fspath(importlib.resources.files("jaxface").joinpath("assets", FACE_LANDMARKER_ASSET))
    if not os.path.isfile(path):
        raise PhotoError(f"missing model file {path} (MediaPipe's FaceLandmarker bundle, shipped "
                         "with jaxface); reinstall jaxface")
    with open(path, "rb") as fh:
        data = fh.read()
    digest = hashlib.sha256(data).hexdigest()
    if len(data) != FACE_LANDMARKER_SIZE or digest != FACE_LANDMARKER_SHA256:
        raise PhotoError(f"damaged model file {path}: {len(data)} bytes, sha256 {digest[:12]}..., "
                         f"expected {FACE_LANDMARKER_SIZE} bytes, sha256 "
                         f"{FACE_LANDMARKER_SHA256[:12]}...; reinstall jaxface")
    return path


def _mediapipe(purpose: str, hint: str):
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as err:
        raise MediaPipeMissingError(
            f"{purpose} needs MediaPipe, which is not installed ({err}); install it with: {hint}"
        ) from None
    return mp, BaseOptions, vision


@contextlib.contextmanager
def _quiet_native_stderr():
    """Sends file descriptor 2 to /dev/null for the block.

    MediaPipe's C++ runtime logs start-up notes (XNNPACK delegate, feedback tensors) straight to
    the process's stderr, bypassing Python; its errors still reach Python as exceptions.
    """
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable file descriptor 2: nothing to silence
        yield
        return
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


@contextlib.contextmanager
def open_face_landmarker(mode: str = "image", *, purpose: str = "reading a face from a photo",
                         hint: str = INSTALL_HINT):
    """MediaPipe's FaceLandmarker on the shipped model: one face, blendshapes and head pose.

    MediaPipe's native start-up logging is silenced inside the block.

    Args:
      mode: ``"image"`` (independent images, ``landmarker.detect(image)``) or ``"video"``
        (frames of one clip, ``landmarker.detect_for_video(image, milliseconds)``, timestamps
        increasing: the face is tracked from frame to frame).
      purpose: what needs MediaPipe, for the message when it is missing.
      hint: the install command named in that message.

    Yields:
      ``(landmarker, mp)``: the landmarker and the ``mediapipe`` module (``mp.Image``).

    Raises:
      MediaPipeMissingError: MediaPipe is not installed (the message names ``hint``).
      PhotoError: the model file is missing or damaged.
    """
    if mode not in ("image", "video"):
        raise ValueError(f"mode must be 'image' or 'video', got {mode!r}")
    task = face_landmarker_path()
    mp, base_options, vision = _mediapipe(purpose, hint)
    options = vision.FaceLandmarkerOptions(
        base_options=base_options(model_asset_path=task),
        running_mode=getattr(vision.RunningMode, mode.upper()),
        num_faces=1,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with _quiet_native_stderr(), vision.FaceLandmarker.create_from_options(options) as landmarker:
        yield landmarker, mp


def detection_from_result(result, image_size: tuple[int, int], *,
                          source: str | None = None) -> FaceDetection | None:
    """The :class:`FaceDetection` of a FaceLandmarker result, ``None`` when it found no face.

    Args:
      result: what ``landmarker.detect`` or ``detect_for_video`` returned.
      image_size: ``(height, width)`` of the image, pixels.
      source: the file name for messages.

    Raises:
      PhotoError: fewer landmarks than the 468 of the face mesh.
    """
    if not result.face_landmarks:
        return None
    pts = np.array([[p.x, p.y, p.z] for p in result.face_landmarks[0]], np.float32)
    if pts.shape[0] < NUM_BASE_VERTICES:
        raise PhotoError(f"FaceLandmarker returned {pts.shape[0]} landmarks, expected at least "
                         f"{NUM_BASE_VERTICES}", source=source)
    scores = np.zeros(len(ARKIT_NAMES), np.float32)
    neutral_score = float("nan")
    for cat in result.face_blendshapes[0] if result.face_blendshapes else ():
        if cat.category_name == "_neutral":
            neutral_score = float(cat.score)
        else:
            scores[ARKIT_NAMES.index(arkit_name(cat.category_name))] = cat.score
    if result.facial_transformation_matrixes:
        transform = np.asarray(result.facial_transformation_matrixes[0], np.float32)
    else:
        transform = np.full((4, 4), np.nan, np.float32)
    return FaceDetection(landmarks=pts, scores=scores, neutral_score=neutral_score,
                         transform=transform, image_size=(int(image_size[0]), int(image_size[1])))


def detect_face(image: np.ndarray, *, source: str | None = None) -> FaceDetection:
    """Runs MediaPipe's FaceLandmarker (``IMAGE`` mode, one face) on an RGB image.

    Args:
      image: ``uint8 [H, W, 3]`` RGB (``[H, W]`` grey and ``[H, W, 4]`` RGBA are accepted).
      source: the file name for messages.

    Returns:
      A :class:`FaceDetection` of the most confident face.

    Raises:
      NoFaceError: no face was found.
      MediaPipeMissingError: MediaPipe is not installed.
      PhotoError: a bad image array or model file.
    """
    rgb = _as_rgb(image, source)
    with open_face_landmarker("image") as (landmarker, mp):
        result = landmarker.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=rgb))
    detection = detection_from_result(result, rgb.shape[:2], source=source)
    if detection is None:
        raise NoFaceError(f"no face found in the {rgb.shape[1]} x {rgb.shape[0]} image "
                          "(MediaPipe FaceLandmarker)", source=source)
    return detection


def landmark_pixels(detection: FaceDetection) -> np.ndarray:
    """The landmarks in pixels.

    Args:
      detection: a :class:`FaceDetection`.

    Returns:
      ``float64 [478, 2]`` ``(column, row)`` positions.
    """
    h, w = detection.image_size
    return np.asarray(detection.landmarks[:, :2], np.float64) * np.array([w, h])


def metric_landmarks(detection: FaceDetection) -> np.ndarray:
    """The 468 mesh landmarks in a right-handed frame scaled in pixels.

    ``X = x W``, ``Y = -y H``, ``Z = -z W`` (x to the viewer's right, y up, z toward the
    viewer), as the template was built; the scale is fixed later by the alignment.

    Args:
      detection: a :class:`FaceDetection`.

    Returns:
      ``float64 [468, 3]``.
    """
    h, w = detection.image_size
    raw = np.asarray(detection.landmarks[:NUM_BASE_VERTICES], np.float64)
    return np.stack([raw[:, 0] * w, -raw[:, 1] * h, -raw[:, 2] * w], axis=1)


def mouth_corner_lift(vertices: np.ndarray) -> float:
    """How far the mouth corners sit above the mouth centre (a smile raises them).

    The mean height of the outer lip corners (vertices 61 and 291) minus the mean height of the
    outer lip midline (vertices 0 and 17), along the template's y axis.

    Args:
      vertices: ``float [N, 3]`` a face in the template's frame (any level: the base vertices keep
        their indices), metres.

    Returns:
      The lift in millimetres (the template's, a relaxed mouth, is 0.4).

    Example:
      >>> round(mouth_corner_lift(load_face_template(0).vertices), 1)
      0.4
    """
    v = np.asarray(vertices, np.float64)
    corners = v[list(MOUTH_OUTER_CORNERS), 1].mean()
    middle = v[list(_LIP_MIDLINE), 1].mean()
    return float(1000.0 * (corners - middle))


@functools.lru_cache(maxsize=1)
def _fit_operators():
    """Template, basis and the sparse prior operators of the base mesh (millimetres)."""
    tmpl = load_face_template(0)
    t = tmpl.vertices.astype(np.float64) * 1000.0
    d = load_expression_basis(0).displacements.astype(np.float64) * 1000.0  # [K, V, 3]
    n, f = NUM_BASE_VERTICES, tmpl.faces.astype(np.int64)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    adj = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), (n, n))
    adj = ((adj + adj.T) > 0).astype(np.float64).tocsr()
    deg = np.asarray(adj.sum(axis=1)).ravel()
    lap = scipy.sparse.identity(n) - scipy.sparse.diags(1.0 / deg) @ adj
    mirror = tmpl.mirror.astype(np.int64)
    perm = scipy.sparse.coo_matrix((np.ones(n), (np.arange(n), mirror)), (n, n)).tocsr()
    up, lo = np.asarray(MOUTH_UPPER_INNER), np.asarray(MOUTH_LOWER_INNER)
    lips = scipy.sparse.coo_matrix(
        (np.r_[np.ones(len(up)), -np.ones(len(up))],
         (np.r_[np.arange(len(up)), np.arange(len(up))], np.r_[up, lo])), (len(up), n)).tocsr()
    motion = np.sqrt((d ** 2).sum(axis=(0, 2)))
    align_w = 1.0 / (1.0 + (motion / np.median(motion)) ** 2)
    return t, d, lap.tocsr(), perm, lips, align_w


def alignment_weights() -> np.ndarray:
    """The weights of the similarity alignment on the base mesh (``omega_v``, module docstring).

    High on the vertices the expression basis moves least (forehead, nose, temples), so an
    alignment with them follows the head, not the expression.

    Returns:
      ``float64 [468]`` in (0, 1].
    """
    return _fit_operators()[-1].copy()


@functools.lru_cache(maxsize=4)
def _prior_system(priors: NeutralPriors):
    """Everything of the solve that does not depend on the points (cached per ``priors``).

    ``R`` (sparse, on the flattened ``[V * 3]`` neutral) and ``r`` stack the prior terms as
    ``||R n - r||^2``; ``H = I + R^T R`` is factorised once. Eliminating ``n`` leaves residuals
    ``res0(x) - J w`` that are affine in ``w`` with a ``J`` that does not depend on ``x``, so the
    weights' least-squares matrix ``[J; sqrt(a_W) I]`` is reduced to its ``[K, K]`` QR factor.
    """
    t, d, lap, perm, lips, _ = _fit_operators()
    n, k = NUM_BASE_VERTICES, d.shape[0]
    i3 = scipy.sparse.identity(3, format="csr")
    tf = t.ravel()
    lap3 = scipy.sparse.kron(lap, i3, format="csr")
    flip = scipy.sparse.diags([-1.0, 1.0, 1.0])
    sym3 = scipy.sparse.identity(3 * n) - scipy.sparse.kron(perm, flip, format="csr")
    lips3 = scipy.sparse.kron(lips, i3, format="csr")
    terms = [  # (weight, operator, target of operator @ n)
        (priors.laplacian, lap3, lap3 @ tf),
        (priors.symmetry, sym3, np.zeros(3 * n)),
        (priors.lips, lips3, lips3 @ tf),
        (priors.template, scipy.sparse.identity(3 * n, format="csr"), tf),
    ]
    rmat = scipy.sparse.vstack([np.sqrt(a) * op for a, op, _ in terms]).tocsr()
    rvec = np.concatenate([np.sqrt(a) * target for a, _, target in terms])
    lu = scipy.sparse.linalg.splu((scipy.sparse.identity(3 * n) + rmat.T @ rmat).tocsc())
    dmat = d.reshape(k, -1).T  # [3V, K]
    hinv_d = lu.solve(dmat)
    # Residuals [x - n - D w ; r - R n] with n = n0 - H^-1 D w are res0 - J w.
    jac = np.concatenate([dmat - hinv_d, -(rmat @ hinv_d)], axis=0)
    q, r = np.linalg.qr(np.concatenate([jac, np.sqrt(priors.scores) * np.eye(k)], axis=0))
    return rmat, rvec, lu, hinv_d, q, r


def _solve(x: np.ndarray, w0: np.ndarray, priors: NeutralPriors) -> tuple:
    """The exact minimiser ``(n, w)`` of ``E(n, w)`` for aligned points ``x`` (mm, ``[V, 3]``)."""
    rmat, rvec, lu, hinv_d, q, r = _prior_system(priors)
    xf = x.ravel()
    n0 = lu.solve(xf + rmat.T @ rvec)
    b = np.concatenate([xf - n0, rvec - rmat @ n0, np.sqrt(priors.scores) * w0])
    w = scipy.optimize.lsq_linear(r, q.T @ b, bounds=(0.0, 1.0), method="bvls").x
    return (n0 - hinv_d @ w).reshape(-1, 3), w


def fit_neutral(
    points: np.ndarray, initial_weights: np.ndarray, *, priors: NeutralPriors | None = None
) -> NeutralFit:
    """Aligns 468 template-order points to the template and removes their expression.

    Minimises the objective of the module docstring, alternating the similarity alignment and
    the exact linear solve.

    Args:
      points: ``float [468, 3]`` a face in the template's vertex order, right-handed (x to the
        viewer's right, y up, z toward the viewer), any scale, position and orientation.
      initial_weights: ``float [52]`` expression weights to start from and pull toward
        (MediaPipe's blendshape scores; zeros when unknown), in [0, 1].
      priors: the objective's weights (default :class:`NeutralPriors`).

    Returns:
      A :class:`NeutralFit`.

    Raises:
      ValueError: points or weights of the wrong shape, or not finite.
    """
    x_in = np.asarray(points, np.float64)
    if x_in.shape != (NUM_BASE_VERTICES, 3):
        raise ValueError(f"points must be [{NUM_BASE_VERTICES}, 3], got {list(x_in.shape)}")
    w0 = np.asarray(initial_weights, np.float64)
    if w0.shape != (len(ARKIT_NAMES),):
        raise ValueError(f"initial_weights must be [{len(ARKIT_NAMES)}], got {list(w0.shape)}")
    if not (np.isfinite(x_in).all() and np.isfinite(w0).all()):
        raise ValueError("points and initial_weights must be finite")
    if np.ptp(x_in, axis=0).max() <= 0:
        raise ValueError("points are all at one position")
    w0 = np.clip(w0, 0.0, 1.0)
    priors = NeutralPriors() if priors is None else priors
    t, d, *_, align_w = _fit_operators()
    w = w0
    model = t + np.tensordot(w, d, axes=1)
    for _ in range(priors.iterations):
        fit = fit_similarity(x_in, model, align_w)
        x = fit.scale * x_in @ fit.rotation.T + fit.translation
        neutral, w = _solve(x, w0, priors)
        model = neutral + np.tensordot(w, d, axes=1)
    res = np.linalg.norm(x - model, axis=1)
    return NeutralFit(
        neutral=(neutral / 1000.0).astype(np.float32),
        weights=w.astype(np.float32),
        aligned=(x / 1000.0).astype(np.float32),
        residual_mm=float(np.sqrt(np.mean(res ** 2))),
        scale=fit.scale / 1000.0,
        rotation=fit.rotation,
    )


def photo_to_neutral(
    photo: str | os.PathLike[str] | np.ndarray, level: int = 1, *,
    priors: NeutralPriors | None = None, source: str | None = None,
) -> PhotoNeutral:
    """A neutral face in the template's topology from a photograph (see the module docstring).

    Args:
      photo: an image file or a ``uint8 [H, W, 3]`` RGB array.
      level: template level of the result (0: 468, 1: 1790, 2: 6990 vertices); a model's level is
        ``template_level(num_vertices)``.
      priors: the expression-removal objective's weights (default :class:`NeutralPriors`).
      source: the file an array came from, for messages.

    Returns:
      A :class:`PhotoNeutral`.

    Raises:
      PhotoError: an unreadable or missing image, no face found (:class:`NoFaceError`),
        MediaPipe missing (:class:`MediaPipeMissingError`) or a bad model file.
      ValueError: a negative level.
    """
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    if isinstance(photo, np.ndarray):
        image = photo
    else:
        source = os.fspath(photo)
        image = read_photo(source)
    detection = detect_face(image, source=source)
    fit = fit_neutral(metric_landmarks(detection), detection.scores, priors=priors)
    base = load_face_template(0)
    return PhotoNeutral(
        vertices=fit.neutral, faces=np.asarray(base.faces), level=0,
        base_vertices=fit.neutral, weights=fit.weights, aligned=fit.aligned,
        residual_mm=fit.residual_mm, detection=detection,
    ).at_level(level)


def overlay_landmarks(image: np.ndarray, detection: FaceDetection, *,
                      color: tuple[int, int, int] = (40, 230, 60)) -> np.ndarray:
    """The photo with the detected landmarks drawn on it.

    Args:
      image: ``uint8 [H, W, 3]`` the photo the detection came from.
      detection: its :class:`FaceDetection`.
      color: RGB of the mesh points (the 68 iBUG landmarks are drawn larger, in red).

    Returns:
      ``uint8 [H, W, 3]``.
    """
    from jaxface.data.template import IBUG68_VERTICES
    from jaxface.viz import draw_points

    rgb = _as_rgb(image, None)
    px = landmark_pixels(detection)
    radius = max(1, round(min(rgb.shape[:2]) / 400))
    out = draw_points(rgb, px[:NUM_BASE_VERTICES], color=color, radius=radius)
    return draw_points(out, px[list(IBUG68_VERTICES)], color=(230, 40, 40), radius=radius + 1)


def render_beside(image: np.ndarray, result: PhotoNeutral, *, size: int = 320) -> np.ndarray:
    """The photo's face region beside renders of its landmarks and of the fitted neutral.

    Args:
      image: ``uint8 [H, W, 3]`` the photo.
      result: :func:`photo_to_neutral` of it.
      size: height of each panel in pixels.

    Returns:
      ``uint8 [H', W', 3]`` four captioned panels: the photo's face with its landmarks, the
      landmarks as a mesh (with the expression), the neutral from the front and at 35 degrees.
    """
    from PIL import Image

    from jaxface.data.template import IBUG68_VERTICES
    from jaxface.viz import contact_sheet, draw_points, fit_camera, render_mesh

    rgb = _as_rgb(image, None)
    px = landmark_pixels(result.detection)[:NUM_BASE_VERTICES]
    lo, hi = px.min(0), px.max(0)
    centre, half = 0.5 * (lo + hi), 0.6 * float((hi - lo).max())
    box = np.array([centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half])
    crop = Image.fromarray(rgb).crop(tuple(int(round(b)) for b in box))
    crop = np.asarray(crop.resize((size, size), Image.Resampling.LANCZOS))
    scaled = (px - box[:2]) * (size / (box[2] - box[0]))
    crop = draw_points(crop, scaled, color=(40, 230, 60), radius=1)
    crop = draw_points(crop, scaled[list(IBUG68_VERTICES)], color=(230, 40, 40), radius=2)
    base = load_face_template(0)
    camera = fit_camera(np.stack([result.aligned, result.base_vertices]), size)
    expressive = render_mesh(result.aligned, base.faces, camera=camera)
    front = render_mesh(result.vertices, result.faces, camera=camera)
    side = render_mesh(result.vertices, result.faces, image_size=size, yaw=35.0)
    return contact_sheet(
        [crop, expressive, front, side], cols=4,
        labels=["photo + landmarks", "landmarks (468, aligned)",
                f"neutral (fit residual {result.residual_mm:.2f} mm)", "neutral, 35 deg"],
    )
