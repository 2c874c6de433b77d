"""Real facial dynamics: ARKit weight curves of real performances and their activation episodes.

Three real recordings drive the timing of the faces4d 2.x performances
(:mod:`jaxface.data.performances`):

* ``facecap``: the Face Cap iPhone capture stored with the ARKit basis
  (:func:`jaxface.data.expression_basis.load_expression_basis`), 335 frames at 30 fps of 52 ARKit
  weights measured by ARKit face tracking;
* ``wolfgang_langer`` (472 frames at 23.976 fps) and ``single_face`` (72 frames at 30 fps): the 52
  blendshape scores that MediaPipe's FaceLandmarker measured on two real videos, stored in
  ``jaxface/assets/video_blendshapes.npz`` (``experiments/assets/extract_video_blendshapes.py``;
  see ``jaxface/assets/PROVENANCE.md``). The detector's frame-to-frame jitter is removed with a
  Gaussian of one frame's standard deviation.

An *episode* is one rise-and-fall of one weight channel: a peak of at least ``min_peak`` that
stands ``min_prominence`` above the curve on both sides, cut where the curve has come down to its
base on each side, with the base removed (a straight line between the two ends) and the peak
scaled to 1. Episodes keep the real shape of an activation: its rise and fall durations, their
asymmetry, shoulders and small secondary bumps (episodes with large ones are left out).
:func:`expression_episodes` collects them from every channel but the eyelids, gaze and tongue;
:func:`blink_episodes` from the ``eyeBlink`` channels.

Example:
  >>> clips = load_weight_clips()
  >>> [(c.name, c.weights.shape[0], round(c.fps, 2)) for c in clips]
  [('facecap', 335, 30.0), ('wolfgang_langer', 472, 23.98), ('single_face', 72, 30.0)]
  >>> ep = expression_episodes()[0]
  >>> float(ep.curve.max()), float(ep.curve[0]), float(ep.curve[-1])
  (1.0, 0.0, 0.0)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

import numpy as np
import scipy.ndimage
import scipy.signal

from jaxface.data.expression_basis import ARKIT_NAMES, load_expression_basis

__all__ = [
    "VIDEO_BLENDSHAPES_ASSET",
    "Episode",
    "WeightClip",
    "blink_episodes",
    "expression_episodes",
    "find_episodes",
    "load_weight_clips",
    "resample_curve",
]

VIDEO_BLENDSHAPES_ASSET = "video_blendshapes.npz"

_MAX_VARIATION = 2.6  # total variation of a clean expression episode (one rise and fall: 2)

# Channels that do not drive expression episodes: eyelids (blinks are separate), gaze, tongue.
_NOT_EXPRESSION = tuple(
    n for n in ARKIT_NAMES if n.startswith(("eyeBlink", "eyeLook")) or n == "tongueOut"
)


@dataclasses.dataclass(frozen=True, eq=False)
class WeightClip:
    """Real ARKit weight curves of one recording.

    Attributes:
      name: the recording (``"facecap"``, ``"wolfgang_langer"``, ``"single_face"``).
      weights: ``float64 [T, 52]`` weights in :data:`ARKIT_NAMES` order, in [0, 1].
      fps: frame rate.
    """

    name: str
    weights: np.ndarray
    fps: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.weights.shape[0] / self.fps


@dataclasses.dataclass(frozen=True, eq=False)
class Episode:
    """One real activation of one channel: a curve from 0 up to 1 and back to 0.

    Attributes:
      clip: the recording it comes from.
      channel: the ARKit channel.
      start: first frame of the episode in the recording.
      curve: ``float64 [n]`` the activation, ``curve[0] == curve[-1] == 0``, ``max == 1``.
      peak: index of the maximum in ``curve``.
      height: the peak's weight above the base in the recording.
      fps: frame rate of ``curve``.
    """

    clip: str
    channel: str
    start: int
    curve: np.ndarray
    peak: int
    height: float
    fps: float

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return (self.curve.shape[0] - 1) / self.fps


def _read_video_asset() -> dict[str, np.ndarray]:
    ref = importlib.resources.files("jaxface").joinpath("assets", VIDEO_BLENDSHAPES_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=1)
def load_weight_clips() -> tuple[WeightClip, ...]:
    """The three real recordings (cached).

    Returns:
      ``(facecap, wolfgang_langer, single_face)`` clips. The video scores are smoothed over time
      with a Gaussian of one frame; frames where no face was found (none in these videos) would be
      filled by linear interpolation.
    """
    capture = load_expression_basis(0)
    clips = [WeightClip("facecap", capture.weights.astype(np.float64), capture.fps)]
    asset = _read_video_asset()
    names = tuple(str(n) for n in asset["names"])
    if names != ARKIT_NAMES:
        raise ValueError(f"{VIDEO_BLENDSHAPES_ASSET}: channel names differ from ARKIT_NAMES")
    scores = asset["scores"].astype(np.float64)
    start = asset["clip_start"]
    for c, name in enumerate(asset["clip_names"]):
        w = scores[start[c] : start[c + 1]]
        found = asset["detected"][start[c] : start[c + 1]]
        if not found.all():
            t = np.arange(len(w))
            w = np.stack([np.interp(t, t[found], w[found, k]) for k in range(w.shape[1])], 1)
        w = scipy.ndimage.gaussian_filter1d(w, 1.0, axis=0, mode="nearest")
        clips.append(WeightClip(str(name), np.clip(w, 0.0, 1.0), float(asset["clip_fps"][c])))
    return tuple(clips)


def find_episodes(
    curve: np.ndarray,
    *,
    min_peak: float = 0.3,
    min_prominence: float = 0.2,
    base_fraction: float = 0.1,
    min_frames: int = 5,
    window: int | None = None,
) -> list[tuple[int, int, int]]:
    """Rise-and-fall episodes of one weight curve.

    Args:
      curve: ``float [T]`` weights.
      min_peak: smallest peak weight.
      min_prominence: smallest rise of the peak above the higher of its two bases
        (``scipy.signal.find_peaks``'s prominence).
      base_fraction: an episode starts (ends) at the last (first) frame before (after) the peak
        whose weight is within this fraction of the prominence above the base on that side.
      min_frames: shortest episode.
      window: when given, the bases are looked for within this many frames around the peak
        (``find_peaks``'s ``wlen``), for short events such as blinks.

    Returns:
      ``(start, peak, stop)`` frame indices (``stop`` inclusive), in time order, not overlapping.
    """
    x = np.asarray(curve, np.float64)
    peaks, props = scipy.signal.find_peaks(
        x, height=min_peak, prominence=min_prominence, wlen=window
    )
    out: list[tuple[int, int, int]] = []
    for p, lb, rb, prom in zip(
        peaks, props["left_bases"], props["right_bases"], props["prominences"], strict=True
    ):
        left = x[lb : p + 1]
        lo = x[lb] + base_fraction * prom
        start = lb + int(np.flatnonzero(left <= lo)[-1]) if np.any(left <= lo) else int(lb)
        right = x[p : rb + 1]
        ro = x[rb] + base_fraction * prom
        stop = p + int(np.flatnonzero(right <= ro)[0]) if np.any(right <= ro) else int(rb)
        if stop - start + 1 < min_frames:
            continue
        if out and start < out[-1][2]:  # Overlaps the previous one: keep the higher peak.
            if x[p] <= x[out[-1][1]]:
                continue
            out.pop()
        out.append((int(start), int(p), int(stop)))
    return out


def _episode(clip: WeightClip, channel: str, span: tuple[int, int, int]) -> Episode:
    start, peak, stop = span
    x = clip.weights[start : stop + 1, ARKIT_NAMES.index(channel)]
    base = np.linspace(x[0], x[-1], len(x))
    height = float(x[peak - start] - base[peak - start])
    curve = np.clip((x - base) / height, 0.0, None)
    curve /= curve.max()
    curve[0] = curve[-1] = 0.0
    return Episode(clip.name, channel, start, curve, int(np.argmax(curve)), height, clip.fps)


@functools.lru_cache(maxsize=1)
def expression_episodes() -> tuple[Episode, ...]:
    """Real expression activations from every recording (cached).

    Returns:
      Episodes of all channels but the eyelids, gaze and tongue, at least 0.2 s long and clean
      (total variation at most 2.6: one rise and one fall, 2, plus small bumps), ordered by
      recording, channel (ARKit order) and time.
    """
    out = []
    for clip in load_weight_clips():
        for channel in ARKIT_NAMES:
            if channel in _NOT_EXPRESSION:
                continue
            x = clip.weights[:, ARKIT_NAMES.index(channel)]
            for span in find_episodes(x, min_frames=max(5, int(0.2 * clip.fps))):
                episode = _episode(clip, channel, span)
                if np.abs(np.diff(episode.curve)).sum() <= _MAX_VARIATION:
                    out.append(episode)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def blink_episodes() -> tuple[Episode, ...]:
    """Real blinks from the ``eyeBlink`` channels of every recording (cached).

    Returns:
      Episodes peaking at 0.3 or more, 0.2 above their bases within 0.4 s on either side,
      0.08-0.8 s long.
    """
    out = []
    for clip in load_weight_clips():
        for channel in ("eyeBlink_L", "eyeBlink_R"):
            x = clip.weights[:, ARKIT_NAMES.index(channel)]
            spans = find_episodes(
                x, min_peak=0.3, min_prominence=0.2, min_frames=3, window=int(clip.fps * 0.8)
            )
            for span in spans:
                ep = _episode(clip, channel, span)
                if 0.08 <= ep.duration <= 0.8:
                    out.append(ep)
    return tuple(out)


def resample_curve(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Linear interpolation of a curve sampled at ``0, 1, ..., n - 1`` at fractional frames.

    Args:
      values: ``float [n, ...]`` samples.
      times: ``float [m]`` positions in frames of ``values`` (clamped to ``[0, n - 1]``).

    Returns:
      ``float64 [m, ...]``.
    """
    v = np.asarray(values, np.float64)
    t = np.clip(np.asarray(times, np.float64), 0.0, v.shape[0] - 1)
    i0 = np.minimum(np.floor(t).astype(np.int64), max(v.shape[0] - 2, 0))
    i1 = np.minimum(i0 + 1, v.shape[0] - 1)
    a = (t - i0).reshape((-1,) + (1,) * (v.ndim - 1))
    return (1.0 - a) * v[i0] + a * v[i1]
