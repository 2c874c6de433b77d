r"""A tracked face's expression, head pose removed, carried onto another face.

The input is a face tracked over ``T`` frames in the template's topology: the 468 landmarks of
MediaPipe's face mesh per frame (:meth:`jaxface.data.video.VideoLandmarks.metric`), which are the
base vertices of the jaxface template, with MediaPipe's 52 blendshape scores.
:func:`track_expression` turns them into an :class:`ExpressionTrack`:

1. **Head pose and distance removed.** Every frame is brought onto the template by a weighted
   similarity transform (rotation, translation, one scale; Umeyama,
   :func:`jaxface.mesh.registration.fit_similarity`) with the weights of the photo fit
   (:func:`jaxface.data.photo.alignment_weights`: high on the forehead, nose and temples, which
   expressions move least), so the alignment follows the skull, not the mouth. The scale brings
   the person's face to the template's size (0.15 m wide): a face filmed from further away is
   the same face. Once the person's neutral is known (step 2), every frame is aligned again, to
   it, robustly: after each fit a vertex's weight is divided by ``1 + (r / 1 mm)^2``, ``r``
   its distance from the neutral, for :data:`ROBUST_ITERATIONS` rounds, so the vertices the
   expression moves (an open jaw, a one-sided smile) stop pulling the head. On the template
   with one ARKit shape, the pose error this leaves in the displacement is 0.07-0.4 mm mean
   (jawOpen 0.8: 0.11 mm instead of 1.86 mm with the fixed weights alone; mouthLeft 0.8:
   0.40 mm instead of 1.63 mm).
2. **The person's own neutral face** is the per-vertex median of the aligned frames in which
   MediaPipe sees the least expression: the ``neutral_fraction`` of the frames (10 %, at least
   one) with the smallest *expression energy*, the Euclidean norm of the frame's blendshape
   scores without the eight gaze channels (``eyeLook*``: looking around is not an expression)
   and ``tongueOut`` (never measured). The neutral is taken from the video rather than fitted
   (:func:`jaxface.data.photo.fit_neutral`) because the displacement ``frame - neutral`` must
   compare like with like: the fit's neutral is smoothed toward the template (its identity
   prior), so each frame's displacement would carry that fixed identity difference (about
   1.5 mm RMS on a real clip) and the face would never rest; and MediaPipe's scores are not on
   the scale of the fit's ARKit shapes (``experiments/photo/README.md``). Frames chosen by their
   scores carry the person's rest face as MediaPipe measures it, so a frame that looks like them
   gives a displacement near zero. A clip that never shows a relaxed face gives its calmest
   frames as the reference: the motion is then relative to them. The median makes the
   estimate robust to a few chosen frames that still hold some expression.
3. **Expression displacement** of frame ``t``: ``aligned_t - neutral`` (``[468, 3]``, metres in
   the template's size).
4. **Temporal smoothing.** MediaPipe measures each frame on its own (its tracking only seeds the
   next frame's search), so the landmarks jitter by a fraction of a millimetre from frame to
   frame. The displacements are smoothed over time with a Savitzky-Golay filter
   (``scipy.signal.savgol_filter``: a least-squares polynomial of degree 2 fitted in a sliding
   window, ``mode="interp"`` at the ends). It is centred, so it adds no lag, and it keeps the
   height of peaks that last longer than the window. The window is ``smoothing_s`` seconds
   (default :data:`SMOOTHING_S` = 0.2 s: 7 frames at 30 fps, 5 at 24 fps; an odd number of
   frames, at least 5), short enough to keep a blink (about 0.1-0.4 s; it is attenuated, not
   removed) and a syllable; ``smoothing_s = 0`` turns it off.

:func:`retarget` then carries the displacements onto another face of the template's topology:
each vertex's displacement is expressed in the local surface frame of the person's neutral and
re-expressed in the target's, scaled by the square root of the ratio of local surface areas
(:func:`jaxface.data.deformation_transfer.transfer_displacements`). A wider mouth makes a wider
smile; a face turned in space gets its displacements turned with it.

Example (a known smile on the template, filmed turned and from twice as far):
  >>> from jaxface.data.expression_basis import load_expression_basis
  >>> from jaxface.data.template import load_face_template
  >>> t, basis = load_face_template(0).vertices, load_expression_basis(0)
  >>> w = np.zeros(52); w[basis.index("mouthSmile_L")] = 0.8
  >>> faces = np.stack([t, t + basis.apply(w)] * 5)          # [10, 468, 3]: rest, smile, ...
  >>> c, s = np.cos(0.3), np.sin(0.3)
  >>> turned = 0.5 * faces @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
  >>> scores = np.zeros((10, 52)); scores[1::2, basis.index("mouthSmile_L")] = 0.8
  >>> track = track_expression(turned, scores, fps=30.0, smoothing_s=0.0)
  >>> bool(np.abs(track.displacements - (faces - t)).max() < 5e-4)   # metres, of a 16 mm smile
  True
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import scipy.signal

from jaxface.data.deformation_transfer import transfer_displacements
from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.photo import alignment_weights
from jaxface.data.template import NUM_BASE_VERTICES, load_face_template
from jaxface.mesh.registration import fit_similarity

__all__ = [
    "NEUTRAL_FRACTION",
    "POLYORDER",
    "ROBUST_ITERATIONS",
    "ROBUST_SCALE",
    "SMOOTHING_S",
    "ExpressionTrack",
    "expression_energy",
    "retarget",
    "smooth",
    "smoothing_window",
    "track_expression",
]

#: Default length of the smoothing window, seconds.
SMOOTHING_S = 0.2
#: Degree of the Savitzky-Golay polynomial.
POLYORDER = 2
#: Share of the frames (the least expressive) whose median is the person's neutral face.
NEUTRAL_FRACTION = 0.1
#: Residual (metres) at which the robust alignment halves a vertex's weight.
ROBUST_SCALE = 1e-3
#: Reweighting rounds of the robust alignment.
ROBUST_ITERATIONS = 4
# Channels left out of the expression energy: gaze and the never-measured tongue.
_IGNORED = np.array([n.startswith("eyeLook") or n == "tongueOut" for n in ARKIT_NAMES])


@dataclasses.dataclass(frozen=True)
class ExpressionTrack:
    """The expression of a tracked face, head pose removed (see the module docstring).

    Attributes:
      neutral: ``float32 [468, 3]`` the person's neutral face, template frame and size, metres.
      displacements: ``float32 [T, 468, 3]`` each frame's expression, ``aligned - neutral``,
        smoothed over time.
      aligned: ``float32 [T, 468, 3]`` the frames aligned to :attr:`neutral` (not smoothed).
      neutral_frames: ``int64 [K]`` the frames whose median is the neutral, in time order.
      energy: ``float32 [T]`` the expression energy of each frame (:func:`expression_energy`).
      scales: ``float64 [T]`` each frame's similarity scale (metres per input unit).
      rotations: ``float64 [T, 3, 3]`` each frame's rotation onto the neutral (the head pose
        removed, ``aligned = scale * points @ rotation.T + shift``).
      fps: frame rate of the track.
      window: the smoothing window, frames (0: not smoothed).
    """

    neutral: np.ndarray
    displacements: np.ndarray
    aligned: np.ndarray
    neutral_frames: np.ndarray
    energy: np.ndarray
    scales: np.ndarray
    rotations: np.ndarray
    fps: float
    window: int

    @property
    def num_frames(self) -> int:
        """``T``."""
        return int(self.displacements.shape[0])


def expression_energy(scores: np.ndarray) -> np.ndarray:
    """How much expression MediaPipe sees in each frame.

    The Euclidean norm of the blendshape scores without the gaze channels (``eyeLook*``) and
    ``tongueOut``; squares favour a few strong activations over the faint ones MediaPipe
    reports on a relaxed face.

    Args:
      scores: ``float [T, 52]`` in :data:`ARKIT_NAMES` order.

    Returns:
      ``float32 [T]``.

    Example:
      >>> s = np.zeros((2, 52)); s[1, ARKIT_NAMES.index("jawOpen")] = 0.5
      >>> s[:, ARKIT_NAMES.index("eyeLookUp_L")] = 0.9
      >>> expression_energy(s).tolist()
      [0.0, 0.5]
    """
    s = np.asarray(scores, np.float64)
    if s.ndim != 2 or s.shape[1] != len(ARKIT_NAMES):
        raise ValueError(f"scores must be [T, {len(ARKIT_NAMES)}], got {list(s.shape)}")
    return np.sqrt(np.sum(s[:, ~_IGNORED] ** 2, axis=1)).astype(np.float32)


def smoothing_window(fps: float, seconds: float, num_frames: int | None = None) -> int:
    """The Savitzky-Golay window of ``seconds`` at ``fps``: an odd number of frames.

    Args:
      fps: frame rate.
      seconds: window length (0: no smoothing).
      num_frames: the clip's length; the window is at most the largest odd number of frames
        it holds.

    Returns:
      ``round(seconds * fps)`` made odd and at least 5 (a degree-2 fit needs more than 3
      points to smooth anything), at most ``num_frames``; 0 when ``seconds`` is 0 or the clip is
      shorter than 5 frames.

    Example:
      >>> smoothing_window(30.0, 0.2), smoothing_window(23.976, 0.2), smoothing_window(30.0, 0)
      (7, 5, 0)
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    if not (math.isfinite(seconds) and seconds >= 0):
        raise ValueError(f"the smoothing window must be >= 0 seconds, got {seconds}")
    if seconds == 0:
        return 0
    window = max(5, int(round(seconds * fps)) | 1)
    if num_frames is not None:
        window = min(window, num_frames if num_frames % 2 else num_frames - 1)
    return window if window >= 5 else 0


def smooth(values: np.ndarray, window: int, polyorder: int = POLYORDER) -> np.ndarray:
    """Savitzky-Golay smoothing along the first (time) axis.

    Args:
      values: ``float [T, ...]``.
      window: odd window length in frames; 0 or 1 returns the values unchanged.
      polyorder: degree of the local polynomial (below ``window``).

    Returns:
      ``float64 [T, ...]``.
    """
    v = np.asarray(values, np.float64)
    if window <= 1:
        return v.copy()
    if window % 2 == 0 or window <= polyorder or window > v.shape[0]:
        raise ValueError(f"the smoothing window must be odd, above the degree {polyorder} and "
                         f"at most the {v.shape[0]} frames, got {window}")
    return scipy.signal.savgol_filter(v, window, polyorder, axis=0, mode="interp")


def _align_all(points: np.ndarray, reference: np.ndarray, weights: np.ndarray,
               robust: bool = False):
    """Each frame ``[T, V, 3]`` aligned to ``reference`` ``[V, 3]``: ``(aligned, scales,
    rotations)``; ``robust`` reweights the vertices by their residuals (module docstring)."""
    aligned = np.empty_like(points)
    scales = np.empty(points.shape[0])
    rotations = np.empty((points.shape[0], 3, 3))
    for t, x in enumerate(points):
        w = weights
        for _ in range(ROBUST_ITERATIONS if robust else 0):
            fit = fit_similarity(x, reference, w)
            residual = np.linalg.norm(fit.scale * x @ fit.rotation.T + fit.translation
                                      - reference, axis=1)
            w = weights / (1.0 + (residual / ROBUST_SCALE) ** 2)
        fit = fit_similarity(x, reference, w)
        aligned[t] = fit.scale * x @ fit.rotation.T + fit.translation
        scales[t], rotations[t] = fit.scale, fit.rotation
    return aligned, scales, rotations


def track_expression(
    points: np.ndarray, scores: np.ndarray, fps: float, *, smoothing_s: float = SMOOTHING_S,
    neutral_fraction: float = NEUTRAL_FRACTION,
) -> ExpressionTrack:
    """The expression of a tracked face, head pose removed (module docstring, steps 1-4).

    Args:
      points: ``float [T, 468, 3]`` the face mesh per frame in the template's vertex order,
        right-handed (x to the viewer's right, y up, z toward the viewer), any scale, position
        and orientation (e.g. :meth:`jaxface.data.video.VideoLandmarks.metric`).
      scores: ``float [T, 52]`` blendshape scores per frame (:data:`ARKIT_NAMES` order).
      fps: frame rate.
      smoothing_s: Savitzky-Golay window in seconds (0: no smoothing).
      neutral_fraction: share of the frames, the least expressive, whose median is the neutral.

    Returns:
      An :class:`ExpressionTrack`.

    Raises:
      ValueError: shapes that do not match, non-finite values, fewer than 2 frames, a fraction
        outside (0, 1].
    """
    x = np.asarray(points, np.float64)
    if x.ndim != 3 or x.shape[1:] != (NUM_BASE_VERTICES, 3) or x.shape[0] < 2:
        raise ValueError(f"points must be [T, {NUM_BASE_VERTICES}, 3] with T >= 2, got "
                         f"{list(x.shape)}")
    energy = expression_energy(scores)
    if energy.shape[0] != x.shape[0]:
        raise ValueError(f"scores have {energy.shape[0]} frames, points {x.shape[0]}")
    if not (np.isfinite(x).all() and np.isfinite(energy).all()):
        raise ValueError("points and scores must be finite")
    if not 0 < neutral_fraction <= 1:
        raise ValueError(f"neutral_fraction must be in (0, 1], got {neutral_fraction}")
    window = smoothing_window(fps, smoothing_s, x.shape[0])
    weights = alignment_weights()
    template = load_face_template(0).vertices.astype(np.float64)
    count = max(1, math.ceil(neutral_fraction * x.shape[0]))
    chosen = np.sort(np.argsort(energy, kind="stable")[:count])
    aligned, _, _ = _align_all(x, template, weights)
    neutral = np.median(aligned[chosen], axis=0)
    aligned, scales, rotations = _align_all(x, neutral, weights, robust=True)
    neutral = np.median(aligned[chosen], axis=0)
    displacements = smooth(aligned - neutral, window)
    return ExpressionTrack(
        neutral=neutral.astype(np.float32),
        displacements=displacements.astype(np.float32),
        aligned=aligned.astype(np.float32),
        neutral_frames=chosen.astype(np.int64),
        energy=energy,
        scales=scales,
        rotations=rotations,
        fps=float(fps),
        window=window,
    )


def retarget(displacements: np.ndarray, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Carries displacements of the base mesh from one face to another (local frames, areas).

    Args:
      displacements: ``float [T, 468, 3]`` on ``source``, metres.
      source: ``float [468, 3]`` the face they were measured on (e.g.
        :attr:`ExpressionTrack.neutral`).
      target: ``float [468, 3]`` the face to move (a face at a higher template level gives its
        first 468 vertices, which are the base mesh's).

    Returns:
      ``float64 [T, 468, 3]``; the displacements themselves when ``target`` is ``source``.
    """
    base = load_face_template(0)
    for name, a in (("source", source), ("target", target)):
        if np.shape(a) != (NUM_BASE_VERTICES, 3):
            raise ValueError(f"{name} must be [{NUM_BASE_VERTICES}, 3], got {list(np.shape(a))}")
    d = np.asarray(displacements, np.float64)
    if d.ndim != 3 or d.shape[1:] != (NUM_BASE_VERTICES, 3):
        raise ValueError(f"displacements must be [T, {NUM_BASE_VERTICES}, 3], got "
                         f"{list(d.shape)}")
    return transfer_displacements(d, np.asarray(source, np.float64),
                                  np.asarray(target, np.float64), base.faces)
