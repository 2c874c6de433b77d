"""ARKit performances: the 4D faces of faces4d 2.x, driven by a real basis and real dynamics.

Every subject performs the 12 CoMA expression classes, or the six basic expressions, or both,
several times (``takes``), each take a neutral -> apex -> neutral sequence on the jaxface face
template, in metres. Nothing is learned or downloaded: all is generated from a seed,
deterministically, from assets of real origin (see ``jaxface/assets/PROVENANCE.md``): the 52 ARKit
blendshapes and the weight curves of a real performance (Face Cap), MediaPipe's blendshape scores
of two real videos, and MediaPipe's canonical face.

Identities:
  * the faces4d 1.x identities (:mod:`jaxface.data.procedural`, same seeds: subject
    ``Proc_<i>_S`` has the neutral face of 1.x's subject ``i``);
  * MediaPipe's canonical face (:mod:`jaxface.data.canonical_face`), subject ``Canon_000_S``, when
    ``canonical_subject`` is set (subject index 0).

Expression shapes, per subject (fixed for all its takes); the channels are the 52 ARKit shapes
and the 1.x cheek-suck action (:data:`jaxface.data.arkit_labels.CHANNELS`):
  * the template's ARKit displacements carried into the subject's local surface frames: each
    vertex's displacement is expressed in the template's frame there (smoothed normal, and the
    tangent pointing up the face) and re-expressed in the subject's, and scales with the local
    size ratio (:func:`jaxface.data.deformation_transfer.transfer_displacements`);
  * part (0-60 %) of the smile, brow-raise, stretch, frown, pucker, mouth-raise and mouth-side
    shapes is replaced by the 1.x action of the same muscle, which is built on the subject's own
    landmarks and surface (as the cheek-suck channels are);
  * a gain per channel (log-normal, sd 0.2; 0.1 for the jaw) with a left/right asymmetry per
    ``_L``/``_R`` pair (sd 0.12 in log), times a smooth spatial gain field (log RMS 0.4, 0.12 for
    the jaw's side and forward shapes, none for ``jawOpen``), the product softly bounded to
    x0.62-1.6;
  * a smooth direction field: each displacement turns about a smooth random axis field (RMS
    angle 0.25 rad, softly bounded to 0.5 rad), 70 % of it shared by all the subject's channels
    (its tissue pulls in its own directions), not for the jaw;
  * ``jawOpen`` is a rotation: the template's field is split into a rotation about a hinge axis
    (fitted to it: the displacements are perpendicular to the radius, 3.6 % median cosine on the
    template) and a residual; the subject's jaw turns by the template's per-vertex angles times
    its gain about the hinge carried over by the template-to-subject similarity and moved by
    N(0, 6 mm) in y and z, plus the residual (the soft tissue) in local frames with its own
    spatial gain field and a condylar glide of N(0, 3 mm);
  * second-order sliding terms: skin moving tangentially by ``s`` sinks by ``s^2 / (2 rho)``
    (``rho`` = 8 cm) instead of leaving the surface along the chord (weight squared).
  The smooth random fields combine the 15 lowest eigenmodes of the template's cotangent Laplacian
  (1.x's identity modes) with amplitudes falling as ``lambda^-1/2``.

Labels: each label, CoMA's 12 and the six basic expressions (happy, sad, surprise, angry, disgust,
fear: EMFACS prototypes), is a distribution over apex channel weights
(:data:`jaxface.data.arkit_labels.LABEL_RECIPES`). Each subject has its own way of performing it:
its typical weight for every required channel, which optional channels it uses, three extra
channels weakly co-active (weights 0.05-0.2), a left/right asymmetry and, for ``mouth_side``, a
preferred side (taken in 80 % of its takes). Each take varies these (weights by a normal of 15 % of
the range, clipped to it; asymmetry by 0.06 in log; each optional channel is left out of 15 % of
the takes). A smooth spatial gain field of its own (log RMS 0.4, bounded together with the
subject's gains to x0.62-1.6) and a smooth direction field (rotation about a smooth random axis
field, RMS 0.25 rad, softly bounded to 0.5 rad), both on everything but the jaw's rotation, make
each take recruit and pull the face's regions a little differently. A subject's habits for the
basic expressions are drawn from a random stream of their own and every label seeds its takes by
its own key (:func:`jaxface.data.arkit_labels.label_seed_key`), so the CoMA labels' data are
those of faces4d 2.0.0 whatever labels are selected.

Dynamics, per take, from real recordings (:mod:`jaxface.data.face_dynamics`):
  * the label's intensity curve is a real activation episode (one rise and fall of one ARKit
    channel of the Face Cap capture or of MediaPipe's scores on two real videos) time-warped into
    the take: onset after 5-15 % of the frames, peak at 35-60 %, a hold of 5-25 % in half of the
    takes, back to 0 after a fall of 25-40 %; within the rise and the fall each step of the
    episode gets time half in proportion to its real duration and half to how much the curve
    moves (a steep real step is spread over a few frames), with a random smooth warp of the time
    axis (local speed x0.4-1.6); in 20 % of the takes that leave room for it, a second, weaker
    activation follows the first;
  * each active channel follows that curve with its own lag (up to 4 % of the frames, never
    before the take's first frame) and exponent (log-normal, sd 0.2), so the channels do not rise
    in lockstep;
  * co-activation of other channels as measured in the real recordings
    (:func:`coactivation_prior`), scaled per subject by U(0.1, 0.6);
  * background activity: a window of a real recording's curves (all channels but the label's,
    the eyelids and the tongue), played at 0.7-1.4 times real speed, relative to its first frame
    and scaled by 0.15-0.35 (gaze by 0.2-0.5, ``jawOpen`` by 0.3 of that);
  * blinks: real blink episodes (0.27-0.54 s) at the subject's rate (0.15-0.5 per second), placed
    at random, 60-100 % closure, both eyes with a small difference.
  Frames are at ``fps`` (60, CoMA's rate); weights are clipped to [0, 1].

A frame is the subject's neutral face plus the channels' displacements at the frame's weights
(with the take's gain and direction fields) plus i.i.d. per-vertex noise of ``noise_std``. Frame 0
has all weights 0 (the neutral face plus noise); the last frames return to it up to blinks and
background activity.

Example:
  >>> faces = PerformanceFaces(PerformanceConfig.tiny())
  >>> faces.subject_names
  ['Canon_000_S', 'Proc_000_S', 'Proc_001_S']
  >>> seq = faces.sequence(1, "mouth_open", take=0)
  >>> seq.shape[1:], seq.dtype
  ((468, 3), dtype('float32'))
"""

from __future__ import annotations

import collections
import dataclasses
import functools
from collections.abc import Iterator

import numpy as np

from jaxface.data import procedural as _procedural
from jaxface.data.arkit_labels import (
    BASIC_EXPRESSIONS,
    CHANNELS,
    LABEL_RECIPES,
    LABELS,
    expand_entry,
    label_seed_key,
    paired_channels,
)
from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.deformation_transfer import smoothed_normals, transfer_displacements
from jaxface.data.expression_basis import ARKIT_NAMES, load_expression_basis
from jaxface.data.face_dynamics import (
    Episode,
    blink_episodes,
    expression_episodes,
    load_weight_clips,
    resample_curve,
)
from jaxface.data.procedural import EXPRESSIONS, ProceduralConfig
from jaxface.data.template import FaceTemplate, load_face_template

__all__ = [
    "CANONICAL_SUBJECT",
    "PerformanceConfig",
    "PerformanceFaces",
    "coactivation_prior",
]

CANONICAL_SUBJECT = "Canon_000_S"

_NUM_MODES = 30
_STYLE_MODES = 15  # eigenmodes used by the style fields
_SPATIAL_RMS = 0.4  # RMS of a channel's log spatial gain field (0.3 of it for the jaw)
_SPATIAL_LIMIT = 0.47  # bound of the log of gain times spatial gain (soft, tanh): x0.62-1.6
_TWIST_RMS = 0.25  # RMS angle in radians of a channel's direction field (none for the jaw)
_TWIST_SHARED = 0.7  # share of the direction field common to all channels of a subject
_TWIST_LIMIT = 0.5  # bound of the angle (soft, tanh)
_HINGE_SD = 0.006  # sd (metres) of a subject's hinge position (y, z) about the template's
_GLIDE_SD = 0.003  # sd (metres) of a subject's jaw glide (y, z) at full opening
_SLIDE_RADIUS = 0.08  # curvature radius (metres) of the face for the sliding terms
_MIX_MAX = 0.6  # largest share of a 1.x action in a subject's shape
# ARKit channel -> the faces4d 1.x action of the same muscle (cosine of the two fields on the
# template 0.64-0.84).
_ACTION_MIX = {
    "mouthSmile_L": "smile_l", "mouthSmile_R": "smile_r",
    "browOuterUp_L": "brow_raise_l", "browOuterUp_R": "brow_raise_r",
    "mouthStretch_L": "lip_stretch_l", "mouthStretch_R": "lip_stretch_r",
    "mouthFrown_L": "corner_depress_l", "mouthFrown_R": "corner_depress_r",
    "mouthPucker": "pucker", "mouthShrugUpper": "mouth_raise",
    "mouthLeft": "mouth_side_l", "mouthRight": "mouth_side_r",
}
_TAKE_MODES = 15  # eigenmodes of a take's gain field
_TAKE_RMS = 0.4  # RMS of a take's log gain field
_TAKE_TWIST = 0.25  # RMS angle (radians) of a take's direction field (bounded to twice that)
_CANONICAL_KEY = 1_000_000  # seed key of the canonical subject (procedural subjects use 0, 1, ...)
_NUM_ARKIT = len(ARKIT_NAMES)
_JAW_OPEN = CHANNELS.index("jawOpen")
_JAW = [CHANNELS.index(n) for n in ("jawOpen", "jawForward", "jawLeft", "jawRight")]
_GAZE = np.array([n.startswith("eyeLook") for n in CHANNELS])
_BLINK = np.array([n.startswith("eyeBlink") for n in CHANNELS])
_QUIET = _BLINK | np.array([n == "tongueOut" for n in CHANNELS])
# Channels that may be co-active or weakly used by a subject: not gaze, eyelids or tongue.
_EXPRESSIVE = np.flatnonzero(~(_GAZE | _QUIET))


@dataclasses.dataclass(frozen=True)
class PerformanceConfig:
    """Size and randomness of a performance dataset.

    Attributes:
      num_subjects: number of identities (including the canonical face when
        ``canonical_subject``).
      expressions: expression names (a subset of :data:`jaxface.data.arkit_labels.LABELS`: the
        12 CoMA labels and the six basic expressions); the integer expression argument of
        :class:`PerformanceFaces` methods indexes this tuple.
      takes: performances per subject and expression.
      min_frames: shortest sequence length.
      max_frames: longest sequence length.
      fps: frame rate the real dynamics are played at.
      noise_std: standard deviation of the i.i.d. per-vertex, per-frame noise in metres.
      template_subdivisions: template resolution (0: 468, 1: 1790, 2: 6990 vertices).
      canonical_subject: make subject 0 MediaPipe's canonical face.
      seed: master seed; subject ``i``, its takes and take ``k`` do not depend on
        ``num_subjects``, ``takes`` or which other expressions are selected.
    """

    num_subjects: int = 12
    expressions: tuple[str, ...] = EXPRESSIONS
    takes: int = 3
    min_frames: int = 60
    max_frames: int = 150
    fps: float = 60.0
    noise_std: float = 5e-5
    template_subdivisions: int = 2
    canonical_subject: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "expressions", tuple(self.expressions))
        unknown = [e for e in self.expressions if e not in LABELS]
        if unknown:
            raise ValueError(
                f"unknown expressions {unknown}; choose from the CoMA labels {EXPRESSIONS} "
                f"and the basic expressions {BASIC_EXPRESSIONS}"
            )
        if len(set(self.expressions)) != len(self.expressions) or not self.expressions:
            raise ValueError(f"expressions must be non-empty and unique, got {self.expressions}")
        if self.num_subjects < 1:
            raise ValueError(f"num_subjects must be >= 1, got {self.num_subjects}")
        if self.takes < 1:
            raise ValueError(f"takes must be >= 1, got {self.takes}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ValueError(
                f"need 8 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )
        if self.fps <= 0 or self.noise_std < 0:
            raise ValueError(f"need fps > 0 and noise_std >= 0, got {self.fps}, {self.noise_std}")

    @classmethod
    def tiny(cls, **overrides) -> PerformanceConfig:
        """A fast configuration for tests: 3 subjects (the canonical face and two procedural
        identities), all 12 expressions, one take, 12-20 frames, 468 vertices.

        Args:
          **overrides: fields to change.

        Returns:
          The configuration.
        """
        fields = dict(num_subjects=3, takes=1, min_frames=12, max_frames=20,
                      template_subdivisions=0)
        fields.update(overrides)
        return cls(**fields)

    @property
    def num_procedural(self) -> int:
        """Number of procedural (1.x) identities."""
        return self.num_subjects - int(self.canonical_subject)

    def identity_config(self) -> ProceduralConfig:
        """The faces4d 1.x configuration whose subjects ``0 .. num_procedural - 1`` have the
        neutral faces of this dataset's procedural subjects (and whose subject
        ``num_procedural`` is a new identity of the same kind).

        Its expressions are this configuration's CoMA labels, or all 12 when it has none (1.x
        knows only CoMA's labels; its identities do not depend on them)."""
        coma = tuple(e for e in self.expressions if e in EXPRESSIONS)
        return ProceduralConfig(
            num_subjects=max(self.num_procedural, 1),
            expressions=coma or EXPRESSIONS,
            min_frames=self.min_frames,
            max_frames=self.max_frames,
            noise_std=self.noise_std,
            template_subdivisions=self.template_subdivisions,
            seed=self.seed,
        )


def _region(name: str) -> int:
    """0: brows and eyes, 1: cheeks and nose, 2: mouth and jaw."""
    if name.startswith(("brow", "eye")):
        return 0
    if name.startswith(("cheekSquint", "cheekPuff", "nose")):
        return 1
    return 2


@functools.lru_cache(maxsize=1)
def coactivation_prior() -> np.ndarray:
    """How much each channel rises with each other one in the real recordings.

    Least-squares slope ``beta[j, k]`` of channel ``j`` on channel ``k`` over all frames of the
    three recordings (each centred), kept where the correlation is at least 0.5, the driver
    ``k`` varies (sd >= 0.1) and the slope is positive; clipped to 0.3. Only channels of the same
    or neighbouring face regions are coupled (brows and eyes / cheeks and nose / mouth and jaw), so
    that what one short performance happened to do together (raising the brows while opening the
    mouth) does not become a coupling. Gaze, eyelid, tongue and cheek-suck channels, ``jawOpen``
    as a target (the jaw moves on purpose), the diagonal and left/right partners are 0.

    Returns:
      ``float64 [C, C]`` over :data:`CHANNELS` (``beta[j, k]``: effect of ``k`` on ``j``).
    """
    x = np.concatenate([c.weights - c.weights.mean(0) for c in load_weight_clips()])
    cov = x.T @ x / len(x)
    var = np.diag(cov)
    sd = np.sqrt(var)
    corr = cov / np.maximum(np.outer(sd, sd), 1e-12)
    beta = cov / np.maximum(var[None, :], 1e-12)
    region = np.asarray([_region(n) for n in ARKIT_NAMES])
    near = np.abs(region[:, None] - region[None, :]) <= 1
    keep = (corr >= 0.5) & (beta > 0) & (sd[None, :] >= 0.1) & near
    out = np.zeros((len(CHANNELS), len(CHANNELS)))
    out[:_NUM_ARKIT, :_NUM_ARKIT] = np.where(keep, np.minimum(beta, 0.3), 0.0)
    np.fill_diagonal(out, 0.0)
    for left, right in paired_channels():
        out[left, right] = out[right, left] = 0.0
    quiet = _GAZE | _QUIET
    quiet[_NUM_ARKIT:] = True
    out[quiet, :] = 0.0
    out[:, quiet] = 0.0
    out[_JAW_OPEN, :] = 0.0
    return out


# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Style:
    """How one subject performs: per label, its typical weights and habits."""

    required: dict[str, dict[str, float]]  # label -> entry -> typical weight
    optional: dict[str, dict[str, float]]  # label -> chosen optional entry -> typical weight
    extras: dict[str, dict[int, float]]  # label -> weakly co-active channel -> weight
    asymmetry: dict[str, float]  # label -> log left/right ratio
    left_side: float  # probability that a take's "*" entries go to the subject's left
    coactivation: np.ndarray  # float64 [C, C]
    blink_rate: float  # per second


@dataclasses.dataclass(frozen=True)
class _JawArc:
    """``jawOpen`` as a rotation: vertex ``i`` turns by ``w * angle[i]`` about the hinge axis
    (parallel to x through ``(0, hinge_y, hinge_z)``), plus ``w * residual[i]`` times the
    soft-bounded gain ``exp(bound(log_gain[i] + extra[i]))``."""

    radius: np.ndarray  # float64 [N, 2], (y, z) relative to the hinge
    angle: np.ndarray  # float64 [N]
    residual: np.ndarray  # float32 [N, 3], before its gain
    log_gain: np.ndarray  # float32 [N], of the residual (the soft tissue)

    def displacements(self, w: np.ndarray, extra: np.ndarray | None = None) -> np.ndarray:
        """Jaw displacements.

        Args:
          w: ``float [T]`` jawOpen weights.
          extra: ``float [N]`` a take's log gain, added to the residual's before the bound.

        Returns:
          ``float32 [T, N, 3]``.
        """
        a = w[:, None] * self.angle[None, :]
        c, s = np.cos(a), np.sin(a)
        ry, rz = self.radius[:, 0], self.radius[:, 1]
        log_gain = self.log_gain if extra is None else self.log_gain + extra
        gain = np.exp(_soft_bound(log_gain.astype(np.float64), _SPATIAL_LIMIT))
        out = w[:, None, None] * (self.residual * gain[:, None])[None]
        out[..., 1] += c * ry - s * rz - ry
        out[..., 2] += s * ry + c * rz - rz
        return out.astype(np.float32)


def _fit_jaw(vertices: np.ndarray, jaw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fits a hinge to a ``jawOpen`` displacement field and splits the field into a rotation and
    a residual (exact at weights 0 and 1).

    The hinge axis is parallel to x; its (y, z) position is the least-squares point to which the
    (y, z) displacements of the vertices moving at least 30 % of the maximum are perpendicular.

    Returns:
      ``(hinge [2], angle [N], residual [N, 3])``: hinge (y, z), per-vertex rotation angle and
      the rest of the field.
    """
    d = np.asarray(jaw, np.float64)
    mag = np.linalg.norm(d, axis=1)
    sel = mag >= 0.3 * mag.max()
    a = d[sel][:, 1:]
    hinge, *_ = np.linalg.lstsq(a, np.sum(a * vertices[sel][:, 1:], axis=1), rcond=None)
    r = vertices[:, 1:] - hinge
    moved = r + d[:, 1:]
    angle = np.arctan2(r[:, 0] * moved[:, 1] - r[:, 1] * moved[:, 0], np.sum(r * moved, axis=1))
    c, s = np.cos(angle), np.sin(angle)
    residual = d.copy()
    residual[:, 1] -= c * r[:, 0] - s * r[:, 1] - r[:, 0]
    residual[:, 2] -= s * r[:, 0] + c * r[:, 1] - r[:, 1]
    return hinge, angle, residual


@functools.lru_cache(maxsize=4)
def _template_jaw(level: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_fit_jaw` of the template's ``jawOpen`` shape at a level."""
    basis = load_expression_basis(level)
    return _fit_jaw(
        load_face_template(level).vertices.astype(np.float64),
        basis.displacements[basis.index("jawOpen")],
    )


def _similarity(source: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares similarity ``target ~ scale * source @ rot.T + trans`` (Umeyama)."""
    cs, ct = source.mean(0), target.mean(0)
    a, b = source - cs, target - ct
    u, sv, vt = np.linalg.svd(b.T @ a)
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rot = u @ d @ vt
    scale = float(np.sum(sv * np.diag(d)) / np.sum(a * a))
    return scale, rot, ct - scale * rot @ cs


@dataclasses.dataclass(frozen=True)
class _Subject:
    neutral: np.ndarray  # float64 [N, 3]
    shapes: np.ndarray  # float32 [C, N, 3], the channel displacements before their gains
    log_gain: np.ndarray  # float32 [C, N], log of the gains (unbounded)
    normals: np.ndarray  # float64 [N, 3], smoothed normals of the neutral face
    jaw: _JawArc  # jawOpen as a rotation
    style: _Style

    def gained(self, extra: np.ndarray | None = None) -> np.ndarray:
        """The channel displacements ``float32 [C, N, 3]`` with their gains, times a take's
        gain field ``exp(extra [N])`` (bounded together: x0.62-1.6)."""
        log_gain = self.log_gain if extra is None else self.log_gain + extra[None, :]
        gain = np.exp(_soft_bound(log_gain, _SPATIAL_LIMIT)).astype(np.float32)
        return self.shapes * gain[:, :, None]


@dataclasses.dataclass(frozen=True)
class _Plan:
    """The weight curves of one take (no geometry)."""

    weights: np.ndarray  # float64 [T, C]
    apex: int
    label: dict[str, float]  # recipe entry -> drawn apex weight (before asymmetry)
    side: str

    @property
    def num_frames(self) -> int:
        return int(self.weights.shape[0])


def _draw_habits(
    rng: np.random.Generator, names: tuple[str, ...]
) -> tuple[dict, dict, dict, dict]:
    """A subject's habits for the labels ``names``, drawn in order from ``rng``: typical required
    weights, chosen optional entries, weakly co-active extras and asymmetry (see
    :class:`_Style`)."""
    required: dict[str, dict[str, float]] = {}
    optional: dict[str, dict[str, float]] = {}
    extras: dict[str, dict[int, float]] = {}
    asymmetry: dict[str, float] = {}
    for name in names:
        recipe = LABEL_RECIPES[name]
        required[name] = {e: float(rng.uniform(lo, hi)) for e, (lo, hi) in recipe.required.items()}
        chosen = {}
        for entry, (p, lo, hi) in recipe.optional.items():
            use, value = rng.random() < p, float(rng.uniform(lo, hi))
            if use:
                chosen[entry] = value
        optional[name] = chosen
        used = {
            CHANNELS.index(c)
            for e in (*recipe.required, *recipe.optional)
            for side in ("Left", "Right")
            for c in expand_entry(e, side)
        }
        pool = np.asarray([k for k in _EXPRESSIVE if k not in used])
        picks = rng.choice(pool, size=3, replace=False)
        extras[name] = {int(k): float(rng.uniform(0.05, 0.2)) for k in picks}
        asymmetry[name] = float(rng.normal(0.0, 0.12))
    return required, optional, extras, asymmetry


def _draw_style(rng: np.random.Generator, basic_rng: np.random.Generator) -> _Style:
    """A subject's style: its CoMA habits, coactivation, side and blink rate from ``rng`` (in
    faces4d 2.0.0's order), its basic-expression habits from ``basic_rng``."""
    required, optional, extras, asymmetry = _draw_habits(rng, EXPRESSIONS)
    coactivation = coactivation_prior() * rng.uniform(0.1, 0.6, size=(len(CHANNELS),) * 2)
    left_side = float(rng.choice([0.2, 0.8]))
    blink_rate = float(rng.uniform(0.15, 0.5))
    for habits, basic in zip(
        (required, optional, extras, asymmetry), _draw_habits(basic_rng, BASIC_EXPRESSIONS),
        strict=True,
    ):
        habits.update(basic)
    return _Style(
        required=required,
        optional=optional,
        extras=extras,
        asymmetry=asymmetry,
        left_side=left_side,
        coactivation=coactivation,
        blink_rate=blink_rate,
    )


@functools.lru_cache(maxsize=4)
def _style_modes(level: int) -> tuple[np.ndarray, np.ndarray]:
    """Basis of the smooth random fields: ``(modes [N, M], sd [M])``.

    The :data:`_STYLE_MODES` lowest eigenmodes of the template's cotangent Laplacian (1.x's
    identity modes, unit RMS) at the level, with standard deviations falling as ``lambda^-1/2``
    and normalised so that a field ``modes @ (z * sd)``, ``z ~ N(0, 1)``, has unit expected RMS.
    """
    modes, evals = _procedural._base_modes(_NUM_MODES)
    weight = evals[0] / evals[:_STYLE_MODES]
    sd = np.sqrt(weight / weight.sum())
    return np.asarray(load_face_template(level).from_base @ modes[:, :_STYLE_MODES]), sd


def _soft_bound(x: np.ndarray, limit: float) -> np.ndarray:
    """``limit * tanh(x / limit)``: ``x`` near 0, at most ``limit`` in magnitude."""
    return limit * np.tanh(x / limit)


def _turn(shapes: np.ndarray, rotvec: np.ndarray) -> np.ndarray:
    """Rotates every displacement ``shapes [C, N, 3]`` by its rotation vector ``[C, N, 3]``."""
    angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    axis = rotvec / np.maximum(angle, 1e-12)
    cos, sin = np.cos(angle), np.sin(angle)
    dot = np.sum(axis * shapes, axis=-1, keepdims=True)
    return shapes * cos + np.cross(axis, shapes) * sin + axis * dot * (1.0 - cos)


def _subject_shapes(
    neutral: np.ndarray, template: FaceTemplate, level: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, _JawArc]:
    """The subject's channel displacements before their gains ``float32 [C, N, 3]``, the log of
    the gains ``float32 [C, N]`` and its jaw rotation.

    See the module docstring. ``jawOpen`` turns about the template's fitted hinge, carried to the
    subject by the similarity that best maps the template onto the subject's neutral face and
    moved by a random offset, by the template's per-vertex angles times the subject's jaw gain;
    the rest of the template's field (what is not rotation) is carried in local frames like the
    other shapes, plus a subject-specific glide. Its entry in the returned shapes is its
    displacement at weight 1 (with a zero log gain).
    """
    num = len(CHANNELS)
    basis = load_expression_basis(level)
    shapes = transfer_displacements(basis.displacements, template.vertices, neutral, template.faces)
    actions, _, _ = _procedural._action_fields(neutral, template, _procedural._mouth_slit(level))
    shapes = np.concatenate([shapes, np.stack([actions["cheek_suck_l"], actions["cheek_suck_r"]])])
    # Part of some shapes is the 1.x action of the same muscle, built on the subject's landmarks.
    for channel, action in _ACTION_MIX.items():
        k = CHANNELS.index(channel)
        own, built = shapes[k], actions[action]
        alpha = rng.uniform(0.0, _MIX_MAX)
        shapes[k] = (1.0 - alpha) * own + alpha * built * np.sqrt(
            np.sum(own * own) / np.sum(built * built)
        )
    # Gains, left/right asymmetry and a smooth spatial gain field per channel.
    gain_sd = np.full(num, 0.2)
    gain_sd[_JAW] = 0.1
    log_gain = rng.normal(0.0, gain_sd)
    for left, right in paired_channels():
        asym = rng.normal(0.0, 0.12)
        log_gain[left] += asym
        log_gain[right] -= asym
    modes, sd = _style_modes(level)
    rms = np.full(num, _SPATIAL_RMS)
    rms[_JAW] *= 0.3
    rms[_JAW_OPEN] = 0.0  # the mandible turns rigidly
    spatial = (rng.normal(size=(num, _STYLE_MODES)) * sd) @ modes.T * rms[:, None]  # [C, N]
    log_factor = log_gain[:, None] + spatial  # [C, N], bounded when applied
    # Direction fields: each displacement turns about a smooth random axis field, mostly shared
    # by all the subject's channels (not the jaw).
    coef = rng.normal(size=(num, _STYLE_MODES, 3))
    coef = np.sqrt(1.0 - _TWIST_SHARED) * coef + np.sqrt(_TWIST_SHARED) * coef[:1]
    rotvec = np.einsum("nm,cmk->cnk", modes, coef * sd[:, None]) * (_TWIST_RMS / np.sqrt(3.0))
    rotvec[_JAW] = 0.0
    length = np.linalg.norm(rotvec, axis=-1, keepdims=True)
    rotvec *= _soft_bound(length, _TWIST_LIMIT) / np.maximum(length, 1e-12)
    shapes = _turn(shapes, rotvec)
    # The jaw.
    hinge, angle, residual = _template_jaw(level)
    scale, rot, trans = _similarity(template.vertices.astype(np.float64), neutral)
    hinge3 = scale * rot @ np.array([0.0, hinge[0], hinge[1]]) + trans
    hinge3[1:] += rng.normal(0.0, _HINGE_SD, size=2)
    residual = transfer_displacements(residual[None], template.vertices, neutral, template.faces)[0]
    # Condylar glide: the mandible also translates as it opens, by a subject-specific vector
    # (at weight 1), in proportion to how much each vertex turns with it.
    follow = np.clip(angle / np.max(angle), 0.0, 1.0)
    residual = residual + follow[:, None] * np.r_[0.0, rng.normal(0.0, _GLIDE_SD, size=2)]
    # The soft tissue (the residual) gets a spatial gain field like the other channels; the
    # mandible turns by the jaw gain.
    soft = (rng.normal(size=_STYLE_MODES) * sd) @ modes.T * _SPATIAL_RMS
    jaw = _JawArc(
        radius=neutral[:, 1:] - hinge3[1:],
        angle=angle * np.exp(_soft_bound(log_gain[_JAW_OPEN], _SPATIAL_LIMIT)),
        residual=residual.astype(np.float32),
        log_gain=(log_gain[_JAW_OPEN] + soft).astype(np.float32),
    )
    shapes[_JAW_OPEN] = jaw.displacements(np.ones(1))[0]
    log_factor[_JAW_OPEN] = 0.0
    return shapes.astype(np.float32), log_factor.astype(np.float32), jaw


def _sliding_terms(shapes: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Second-order terms that keep tangential motion on the face: ``float32 [C, N, 3]``.

    Skin that slides a distance ``s`` along a surface of curvature radius ``rho`` sinks by
    ``s^2 / (2 rho)`` along the normal; a linear blendshape moves it along the chord instead. The
    term of channel ``c`` is ``-n |t_c|^2 / (2 rho)`` with ``t_c`` the tangential part of its
    displacement and ``rho`` = :data:`_SLIDE_RADIUS`, applied with the squared weight (zero for
    ``jawOpen``, which is a rotation already); ``n [N, 3]`` are the face's smoothed normals.
    """
    normal_part = np.einsum("cnk,nk->cn", shapes, n)
    tangential_sq = np.sum(shapes.astype(np.float64) ** 2, axis=-1) - normal_part**2
    out = -n[None] * (np.maximum(tangential_sq, 0.0) / (2.0 * _SLIDE_RADIUS))[:, :, None]
    out[_JAW_OPEN] = 0.0
    return out.astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Dynamics
# ---------------------------------------------------------------------------------------------


def _warp_part(x: np.ndarray, bend: float) -> np.ndarray:
    """Time positions in [0, 1] of the samples of a curve part: each step gets half its share of
    the part's duration and half its share of the part's variation, then ``u + bend u (1 - u)``."""
    n = x.shape[0] - 1
    if n < 1:
        return np.zeros(1)
    step = np.abs(np.diff(x))
    share = 0.5 / n + (0.5 * step / step.sum() if step.sum() > 0 else 0.5 / n)
    u = np.concatenate([[0.0], np.cumsum(share)])
    u = u / u[-1]
    return u + bend * u * (1.0 - u)


def _place_episode(
    episode: Episode,
    t: np.ndarray,
    start: float,
    peak: float,
    hold: float,
    stop: float,
    bend: float,
) -> np.ndarray:
    """The episode's curve time-warped onto the frames ``t``: its rise from ``start`` to
    ``peak``, held for ``hold`` frames, its fall until ``stop``.

    Within the rise and the fall each step of the episode gets time half in proportion to its
    real duration and half in proportion to how much the curve moves, so the real timing is kept
    where the curve moves slowly and a steep real step (a fast release, say) is spread over
    several frames instead of becoming a jump; the time axis of each part is then warped by
    ``u -> u + bend u (1 - u)`` (monotone for ``|bend| < 1``).
    """
    x = episode.curve
    p = episode.peak
    up = start + _warp_part(x[: p + 1], bend) * (peak - start)
    down = peak + hold + _warp_part(x[p:], -bend) * (stop - peak - hold)
    times = np.concatenate([up, down])
    values = np.concatenate([x[: p + 1], x[p:]])
    return np.interp(t, times, values, left=0.0, right=0.0)


def _envelope(
    rng: np.random.Generator, num_frames: int, fps: float
) -> tuple[np.ndarray, int, float]:
    """The label's intensity curve ``[T]`` in [0, 1], its apex frame and its onset (frames).

    The curve starts after 5-15 % of the frames, peaks at 35-60 % of them, holds the peak for
    5-25 % of them in half of the takes, and is back at 0 after a fall of 25-40 % (by the last
    3 %). In 20 % of the takes that leave at least 0.6 s after the peak, the first activation
    falls sooner and a second, weaker one follows (the apex stays the first peak).
    """
    episodes = expression_episodes()
    last = num_frames - 1
    t = np.arange(num_frames, dtype=np.float64)
    onset = rng.uniform(0.05, 0.15) * last
    peak = rng.uniform(0.35, 0.6) * last
    hold = rng.uniform(0.05, 0.25) * last if rng.random() < 0.5 else 0.0
    stop = min(peak + hold + rng.uniform(0.25, 0.4) * last, 0.97 * last)
    hold = min(hold, 0.5 * (stop - peak))
    first = episodes[rng.integers(len(episodes))]
    bend = float(np.clip(rng.normal(0.0, 0.3), -0.6, 0.6))
    repeat = rng.random() < 0.2 and 0.97 * last - peak - hold >= 0.6 * fps
    if not repeat:
        env = _place_episode(first, t, onset, peak, hold, stop, bend)
    else:
        stop = 0.97 * last
        dip = peak + hold + rng.uniform(0.3, 0.45) * (stop - peak - hold)
        second = episodes[rng.integers(len(episodes))]
        amp = rng.uniform(0.4, 0.85)
        bend2 = float(np.clip(rng.normal(0.0, 0.3), -0.6, 0.6))
        env = np.maximum(
            _place_episode(first, t, onset, peak, hold, dip, bend),
            amp * _place_episode(second, t, dip - 0.1 * (dip - peak), 0.5 * (dip + stop), 0.0,
                                 stop, bend2),
        )
    top = np.flatnonzero((env >= 0.98 * env.max()) & (t <= peak + hold + 1.0))
    apex = int(np.clip(round(0.5 * (top[0] + top[-1])), 1, num_frames - 2))
    return env, apex, onset


def _shift(curve: np.ndarray, lag: float) -> np.ndarray:
    t = np.arange(curve.shape[0], dtype=np.float64) - lag
    out = resample_curve(curve, t)
    out[t < 0] = 0.0
    return out


def _background(
    rng: np.random.Generator, num_frames: int, fps: float, excluded: np.ndarray
) -> np.ndarray:
    """Small real activity of the non-label channels, ``[T, C]``, 0 at frame 0."""
    clips = load_weight_clips()
    lengths = np.asarray([c.duration for c in clips])
    clip = clips[rng.choice(len(clips), p=lengths / lengths.sum())]
    speed = rng.uniform(0.7, 1.4)
    n = clip.weights.shape[0]
    span = min((num_frames - 1) / fps * speed * clip.fps, n - 1.0)
    start = rng.uniform(0.0, n - 1.0 - span)
    x = resample_curve(clip.weights, start + np.linspace(0.0, span, num_frames))
    x = x - x[0]
    scale = np.full(len(CHANNELS), rng.uniform(0.15, 0.35))
    scale[_GAZE] = rng.uniform(0.2, 0.5)
    scale[_JAW_OPEN] *= 0.3
    out = np.zeros((num_frames, len(CHANNELS)))
    out[:, :_NUM_ARKIT] = x * scale[:_NUM_ARKIT]
    out[:, _QUIET | excluded] = 0.0
    return out


def _blinks(rng: np.random.Generator, num_frames: int, fps: float, rate: float) -> np.ndarray:
    """Real blinks on the ``eyeBlink`` channels, ``[T, C]``."""
    out = np.zeros((num_frames, len(CHANNELS)))
    blinks = blink_episodes()
    count = int(rng.poisson(rate * num_frames / fps))
    t = np.arange(num_frames, dtype=np.float64)
    left, right = CHANNELS.index("eyeBlink_L"), CHANNELS.index("eyeBlink_R")
    for _ in range(count):
        episode = blinks[rng.integers(len(blinks))]
        length = episode.duration * fps * rng.uniform(0.8, 1.25)
        start = rng.uniform(0.1, 0.9) * (num_frames - 1)
        curve = resample_curve(episode.curve, (t - start) / length * (len(episode.curve) - 1))
        curve[(t < start) | (t > start + length)] = 0.0
        amp = rng.uniform(0.6, 1.0)
        diff = rng.normal(0.0, 0.05)
        out[:, left] = np.maximum(out[:, left], amp * (1.0 + diff) * curve)
        out[:, right] = np.maximum(out[:, right], amp * (1.0 - diff) * curve)
    return out


# ---------------------------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------------------------


class PerformanceFaces:
    """Deterministic 4D face performances (faces4d 2.x).

    Args:
      config: the :class:`PerformanceConfig` (default: CoMA scale with 3 takes).
    """

    _CACHED_SUBJECTS = 4

    def __init__(self, config: PerformanceConfig | None = None) -> None:
        self.config = PerformanceConfig() if config is None else config
        self._subjects: collections.OrderedDict[int, _Subject] = collections.OrderedDict()
        self._styles: dict[int, _Style] = {}

    # -- names ---------------------------------------------------------------------------------

    @property
    def template(self) -> FaceTemplate:
        """The face template (topology, landmarks) shared by all subjects."""
        return load_face_template(self.config.template_subdivisions)

    @property
    def channels(self) -> tuple[str, ...]:
        """The weight channels (:data:`jaxface.data.arkit_labels.CHANNELS`)."""
        return CHANNELS

    @property
    def subject_names(self) -> list[str]:
        """Sortable names: ``Canon_000_S`` (when configured), then ``Proc_000_S``, ... (the 1.x
        identities)."""
        names = [CANONICAL_SUBJECT] if self.config.canonical_subject else []
        return names + [f"Proc_{i:03d}_S" for i in range(self.config.num_procedural)]

    @property
    def expressions(self) -> tuple[str, ...]:
        """The expression names; an integer expression argument indexes this tuple."""
        return self.config.expressions

    def _check_subject(self, subject: int) -> int:
        subject = int(subject)
        if not 0 <= subject < self.config.num_subjects:
            raise IndexError(f"subject {subject} out of range [0, {self.config.num_subjects})")
        return subject

    def _check_take(self, take: int) -> int:
        take = int(take)
        if not 0 <= take < self.config.takes:
            raise IndexError(f"take {take} out of range [0, {self.config.takes})")
        return take

    def _expression_name(self, expression: int | str) -> str:
        if isinstance(expression, str):
            if expression not in self.config.expressions:
                raise KeyError(f"expression {expression!r} not in {self.config.expressions}")
            return expression
        idx = int(expression)
        if not 0 <= idx < len(self.config.expressions):
            raise IndexError(f"expression {idx} out of range [0, {len(self.config.expressions)})")
        return self.config.expressions[idx]

    def _key(self, subject: int) -> int:
        """Seed key of a subject: its 1.x index, or the canonical face's key."""
        if self.config.canonical_subject:
            return _CANONICAL_KEY if subject == 0 else subject - 1
        return subject

    # -- subjects ------------------------------------------------------------------------------

    def _style(self, subject: int) -> _Style:
        if subject not in self._styles:
            key = self._key(subject)
            rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, key, 11]))
            rng.random()  # the first draw seeds the shapes (see _subject)
            basic = np.random.default_rng(np.random.SeedSequence([self.config.seed, key, 17]))
            self._styles[subject] = _draw_style(rng, basic)
        return self._styles[subject]

    def _neutral64(self, subject: int) -> np.ndarray:
        key = self._key(subject)
        level = self.config.template_subdivisions
        if key == _CANONICAL_KEY:
            return load_canonical_face(level).astype(np.float64)
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, key, 1]))
        return _procedural._identity_shape(self.template, _procedural._mouth_slit(level), rng)

    def _subject(self, subject: int) -> _Subject:
        subject = self._check_subject(subject)
        if subject in self._subjects:
            self._subjects.move_to_end(subject)
            return self._subjects[subject]
        key = self._key(subject)
        rng = np.random.default_rng(np.random.SeedSequence([self.config.seed, key, 11]))
        shape_seed = int(rng.random() * 2**32)
        neutral = self._neutral64(subject)
        shapes, log_gain, jaw = _subject_shapes(
            neutral,
            self.template,
            self.config.template_subdivisions,
            np.random.default_rng(np.random.SeedSequence([self.config.seed, key, 12, shape_seed])),
        )
        out = _Subject(
            neutral=neutral,
            shapes=shapes,
            log_gain=log_gain,
            normals=smoothed_normals(neutral, self.template.faces),
            jaw=jaw,
            style=self._style(subject),
        )
        self._subjects[subject] = out
        while len(self._subjects) > self._CACHED_SUBJECTS:
            self._subjects.popitem(last=False)
        return out

    # -- takes ---------------------------------------------------------------------------------

    def _plan(self, subject: int, name: str, take: int) -> _Plan:
        cfg = self.config
        style = self._style(subject)
        rng = np.random.default_rng(
            np.random.SeedSequence([cfg.seed, self._key(subject), 13, label_seed_key(name), take])
        )
        num_frames = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
        recipe = LABEL_RECIPES[name]
        label: dict[str, float] = {}
        for entry, (lo, hi) in recipe.required.items():
            typical = style.required[name][entry]
            label[entry] = float(np.clip(typical + rng.normal(0.0, 0.15 * (hi - lo)), lo, hi))
        for entry, typical in style.optional[name].items():
            _, lo, hi = recipe.optional[entry]
            value = float(np.clip(typical + rng.normal(0.0, 0.15 * (hi - lo)), lo, hi))
            if rng.random() >= 0.15:
                label[entry] = value
        side = "Left" if rng.random() < style.left_side else "Right"
        asym = style.asymmetry[name] + rng.normal(0.0, 0.06)
        apex_w = np.zeros(len(CHANNELS))
        for entry, value in label.items():
            names = expand_entry(entry, side)
            if len(names) == 2:
                apex_w[CHANNELS.index(names[0])] = value * np.exp(asym)
                apex_w[CHANNELS.index(names[1])] = value * np.exp(-asym)
            else:
                apex_w[CHANNELS.index(names[0])] = value
        for k, value in style.extras[name].items():
            apex_w[k] = max(apex_w[k], value * float(np.exp(rng.normal(0.0, 0.3))))
        apex_w = np.clip(apex_w, 0.0, 1.0)

        env, apex, onset = _envelope(rng, num_frames, cfg.fps)
        weights = np.zeros((num_frames, len(CHANNELS)))
        lag_max = 0.04 * (num_frames - 1)
        for k in np.flatnonzero(apex_w):
            lag = rng.uniform(-min(lag_max, 0.8 * onset), lag_max)  # none starts at frame 0
            gamma = float(np.exp(rng.normal(0.0, 0.2)))
            weights[:, k] = apex_w[k] * _shift(env, lag) ** gamma
        active = apex_w > 0
        co = weights @ style.coactivation.T
        co[:, active] = 0.0
        weights = weights + co
        weights = weights + _background(rng, num_frames, cfg.fps, active)
        weights = weights + _blinks(rng, num_frames, cfg.fps, style.blink_rate)
        weights[0] = 0.0
        return _Plan(np.clip(weights, 0.0, 1.0), apex, label, side)

    # -- public API ----------------------------------------------------------------------------

    def neutral(self, subject: int) -> np.ndarray:
        """Neutral face of a subject.

        Args:
          subject: subject index in ``[0, num_subjects)``.

        Returns:
          ``float32 [N, 3]`` vertices in metres.
        """
        return self._neutral64(self._check_subject(subject)).astype(np.float32)

    def shapes(self, subject: int) -> np.ndarray:
        """The subject's channel displacement fields (its own ARKit shapes and cheek suck).

        Args:
          subject: subject index in ``[0, num_subjects)``.

        Returns:
          ``float32 [C, N, 3]`` displacement at weight 1 of every channel in :attr:`channels`.
        """
        return self._subject(subject).gained()

    def num_frames(self, subject: int, expression: int | str, take: int = 0) -> int:
        """Length of a take, without generating any geometry.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.
          take: take index in ``[0, takes)``.

        Returns:
          ``T``, the number of frames of :meth:`sequence` for these arguments.
        """
        return self._plan_of(subject, expression, take).num_frames

    def apex_frame(self, subject: int, expression: int | str, take: int = 0) -> int:
        """Apex of a take, without generating any geometry.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.
          take: take index in ``[0, takes)``.

        Returns:
          The middle of the frames where the label's intensity curve is at its maximum (the
          stronger repetition when there are two), in ``(0, T - 1)``.
        """
        return self._plan_of(subject, expression, take).apex

    def label_weights(self, subject: int, expression: int | str, take: int = 0) -> dict[str, float]:
        """The apex weights drawn for the label's recipe entries in one take.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.
          take: take index in ``[0, takes)``.

        Returns:
          Recipe entry (:data:`jaxface.data.arkit_labels.LABEL_RECIPES`) -> weight within its
          range, before the left/right split of pair entries.
        """
        return dict(self._plan_of(subject, expression, take).label)

    def take_side(self, subject: int, expression: int | str, take: int = 0) -> str:
        """``"Left"`` or ``"Right"``: the side of the take's ``*`` entries (``mouth_side``)."""
        return self._plan_of(subject, expression, take).side

    def weights(self, subject: int, expression: int | str, take: int = 0) -> np.ndarray:
        """The channel weight curves of one take.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.
          take: take index in ``[0, takes)``.

        Returns:
          ``float32 [T, C]`` weights in [0, 1] over :attr:`channels`; row 0 is all zero.
        """
        return self._plan_of(subject, expression, take).weights.astype(np.float32)

    def _plan_of(self, subject: int, expression: int | str, take: int) -> _Plan:
        return self._plan(
            self._check_subject(subject), self._expression_name(expression), self._check_take(take)
        )

    def _take_log_gain(self, subject: int, name: str, take: int) -> np.ndarray:
        """The log of the take's smooth spatial gain ``float32 [N]`` (see the module docstring;
        it is bounded together with the subject's gains)."""
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.config.seed, self._key(subject), 15, label_seed_key(name), take]
        ))
        modes, sd = _style_modes(self.config.template_subdivisions)
        modes, sd = modes[:, :_TAKE_MODES], sd[:_TAKE_MODES] / np.linalg.norm(sd[:_TAKE_MODES])
        field = modes @ (rng.normal(size=_TAKE_MODES) * sd)
        return (_TAKE_RMS * field).astype(np.float32)

    def _take_rotvec(self, subject: int, name: str, take: int) -> np.ndarray:
        """The take's smooth direction field ``float32 [N, 3]`` (rotation vectors)."""
        rng = np.random.default_rng(np.random.SeedSequence(
            [self.config.seed, self._key(subject), 16, label_seed_key(name), take]
        ))
        modes, sd = _style_modes(self.config.template_subdivisions)
        modes, sd = modes[:, :_TAKE_MODES], sd[:_TAKE_MODES] / np.linalg.norm(sd[:_TAKE_MODES])
        rotvec = modes @ (rng.normal(size=(_TAKE_MODES, 3)) * sd[:, None]) * (
            _TAKE_TWIST / np.sqrt(3.0)
        )
        length = np.linalg.norm(rotvec, axis=-1, keepdims=True)
        rotvec *= _soft_bound(length, 2.0 * _TAKE_TWIST) / np.maximum(length, 1e-12)
        return rotvec.astype(np.float32)

    def sequence(
        self, subject: int, expression: int | str, take: int = 0, *, noise: bool = True
    ) -> np.ndarray:
        """One take, neutral -> apex -> neutral.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.
          take: take index in ``[0, takes)``.
          noise: add the configured per-vertex noise (``False``: the noise-free deformation).

        Returns:
          ``float32 [T, N, 3]`` vertices in metres, ``T`` in ``[min_frames, max_frames]``; frame 0
          is the neutral face plus noise.
        """
        name = self._expression_name(expression)
        subject = self._check_subject(subject)
        take = self._check_take(take)
        subj = self._subject(subject)
        plan = self._plan(subject, name, take)
        linear = plan.weights.astype(np.float32)
        linear[:, _JAW_OPEN] = 0.0
        extra = self._take_log_gain(subject, name, take)
        shapes = subj.gained(extra)
        disp = np.einsum("tc,cnk->tnk", linear, shapes)
        disp += np.einsum("tc,cnk->tnk", linear * linear, _sliding_terms(shapes, subj.normals))
        if _TAKE_TWIST > 0:
            disp = _turn(disp, self._take_rotvec(subject, name, take)[None])
        disp += subj.jaw.displacements(plan.weights[:, _JAW_OPEN], extra)
        frames = subj.neutral[None] + disp
        if noise and self.config.noise_std > 0:
            rng = np.random.default_rng(np.random.SeedSequence(
                [self.config.seed, self._key(subject), 14, label_seed_key(name), take]
            ))
            frames = frames + self.config.noise_std * rng.standard_normal(
                frames.shape, dtype=np.float32
            )
        return frames.astype(np.float32)

    def iter_sequences(self, *, noise: bool = True) -> Iterator[tuple[str, str, int, np.ndarray]]:
        """Generates the whole dataset, one take at a time.

        Args:
          noise: add the configured per-vertex noise.

        Yields:
          ``(subject_name, expression_name, take, float32 [T, N, 3])`` for every subject (outer
          loop), configured expression and take (inner loop), in index order.
        """
        names = self.subject_names
        for s in range(self.config.num_subjects):
            for e in self.config.expressions:
                for k in range(self.config.takes):
                    yield names[s], e, k, self.sequence(s, e, k, noise=noise)
