"""Procedural 4D faces: a licence-clean, CoMA-like default dataset.

Every subject is a smooth, plausible variation of the face template
(:func:`jaxface.data.template.load_face_template`) and performs the 12 CoMA expression classes as
sequences that go neutral -> apex -> neutral. Nothing is learned or downloaded: all is generated
from a seed, deterministically: the full CoMA-scale set (12 subjects x 12 expressions, 6990
vertices, 60-150 frames, 15k meshes) takes about 20 s on two CPU cores, the tiny test set well
under a second.

Identities (per subject, seeded):
  * regional changes of the template driven by its 68 landmarks: overall size, face width and
    height, nose width/length/protrusion, jaw width, chin height and protrusion, brow ridge, cheek
    fullness, lip thickness, mouth width, eye spacing and forehead slope;
  * plus a low-frequency free-form displacement: the first 30 eigenmodes of the cotangent
    Laplacian of the 468-vertex base mesh (generalised problem ``L phi = lambda M phi``, lumped
    mass, solved with ``scipy.sparse.linalg.eigsh``; the mouth slit is welded and the eyes closed
    for this, so the modes cannot open the lips) with amplitudes falling as ``lambda^-1/2``, mostly
    symmetric, lifted to the fine mesh with the subdivision operator.

Expressions are compositions of localised, muscle-like actions, each a displacement field built on
the subject's own neutral geometry (its landmarks, mouth line, surface normals), so footprints and
magnitudes depend non-linearly on the identity:
  * jaw opening: a rotation about a subject-specific hinge axis (near the temporomandibular joint)
    with a small forward glide. Each vertex turns by a skinning weight times the angle; the weights
    are harmonic on the mesh (cotangent Laplacian) between 1 on the lower lip and chin and 0 on the
    upper lip and above the nostrils, so they jump across the closed lips (the mouth slit is a cut
    in the mesh), open in a lens shape from the corners, and blend smoothly over the cheeks;
  * lip-corner pulls (smile, with cheek raise and lower-lid squint), lip stretch, corner
    depression, upper-lip raise, lower-lip depression, pucker, lip press (lips rolled back), cheek
    suck, brow raise, chin raise, whole-mouth raise and an asymmetric sideways mouth pull: smooth
    (Gaussian-footprint) displacement fields anchored at the subject's landmarks, with directions
    kept mostly tangent to its (1 cm-smoothed) surface so they stretch rather than fold the skin.
  Each subject has its own style: per-action gains, left/right asymmetry, jaw range, and the side of
  its ``mouth_side`` expression.

Sequences: random length in ``[min_frames, max_frames]``, onset/rise/hold/fall timing, apex
intensity, small per-action time lags (so the landmark motion is not a single scaled pattern) and
i.i.d. per-vertex noise. Frame 0 is the neutral face plus noise; the last frames return to it.

Example:
  >>> faces = ProceduralFaces(ProceduralConfig.tiny())
  >>> seq = faces.sequence(0, "mouth_open")
  >>> seq.shape[1:], seq.dtype
  ((468, 3), dtype('float32'))
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterator

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import scipy.spatial

from jaxface.data.template import (
    MOUTH_CORNERS,
    MOUTH_LOWER_INNER,
    MOUTH_UPPER_INNER,
    FaceTemplate,
    load_face_template,
)
from jaxface.mesh import topology

__all__ = [
    "EXPRESSIONS",
    "ProceduralConfig",
    "ProceduralFaces",
]

EXPRESSIONS = (
    "bareteeth",
    "cheeks_in",
    "eyebrow",
    "high_smile",
    "lips_back",
    "lips_up",
    "mouth_down",
    "mouth_extreme",
    "mouth_middle",
    "mouth_open",
    "mouth_side",
    "mouth_up",
)

_MM = 1e-3
_NUM_MODES = 30
_ACTION_GAIN = 1.35

# Expression recipes: apex jaw opening (degrees) and action weights. Paired actions ending in "_lr"
# are applied on both sides with the subject's left/right asymmetry; "mouth_side" uses the
# subject's preferred side.
_RECIPES: dict[str, tuple[float, dict[str, float]]] = {
    "bareteeth": (2.5, {"upper_lip_raise": 1.0, "lower_lip_depress": 1.1, "lip_stretch_lr": 0.9}),
    "cheeks_in": (2.0, {"cheek_suck_lr": 1.0, "pucker": 0.45}),
    "eyebrow": (0.0, {"brow_raise_lr": 1.0}),
    "high_smile": (
        5.0,
        {"smile_lr": 1.0, "upper_lip_raise": 0.3, "lip_stretch_lr": 0.2},
    ),
    "lips_back": (0.0, {"lip_press": 1.0, "lip_stretch_lr": 0.45}),
    "lips_up": (0.0, {"upper_lip_raise": 1.3, "chin_raise": 0.8, "pucker": 0.25}),
    "mouth_down": (1.0, {"corner_depress_lr": 1.0, "chin_raise": 0.35, "lower_lip_depress": 0.2}),
    "mouth_extreme": (
        20.0,
        {
            "lip_stretch_lr": 1.0,
            "lower_lip_depress": 0.5,
            "upper_lip_raise": 0.6,
            "brow_raise_lr": 0.6,
        },
    ),
    "mouth_middle": (1.5, {"pucker": 1.0}),
    "mouth_open": (12.0, {"lower_lip_depress": 0.15}),
    "mouth_side": (1.0, {"mouth_side": 1.0}),
    "mouth_up": (0.0, {"mouth_raise": 1.0, "corner_raise_lr": 0.35, "lip_press": 0.2}),
}


@dataclasses.dataclass(frozen=True)
class ProceduralConfig:
    """Size and randomness of a procedural dataset.

    Attributes:
      num_subjects: number of identities.
      expressions: expression names (a subset of :data:`EXPRESSIONS`); the integer expression
        argument of :class:`ProceduralFaces` methods indexes this tuple.
      min_frames: shortest sequence length.
      max_frames: longest sequence length.
      noise_std: standard deviation of the i.i.d. per-vertex, per-frame noise in metres.
      template_subdivisions: template resolution (0: 468, 1: 1790, 2: 6990 vertices).
      seed: master seed; subject ``i`` and its sequences do not depend on ``num_subjects`` or on
        which other expressions are selected.
    """

    num_subjects: int = 12
    expressions: tuple[str, ...] = EXPRESSIONS
    min_frames: int = 60
    max_frames: int = 150
    noise_std: float = 5e-5
    template_subdivisions: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "expressions", tuple(self.expressions))
        unknown = [e for e in self.expressions if e not in EXPRESSIONS]
        if unknown:
            raise ValueError(f"unknown expressions {unknown}; choose from {EXPRESSIONS}")
        if len(set(self.expressions)) != len(self.expressions) or not self.expressions:
            raise ValueError(f"expressions must be non-empty and unique, got {self.expressions}")
        if self.num_subjects < 1:
            raise ValueError(f"num_subjects must be >= 1, got {self.num_subjects}")
        if not 8 <= self.min_frames <= self.max_frames:
            raise ValueError(
                f"need 8 <= min_frames <= max_frames, got {self.min_frames}, {self.max_frames}"
            )
        if self.noise_std < 0:
            raise ValueError(f"noise_std must be >= 0, got {self.noise_std}")

    @classmethod
    def tiny(cls, **overrides) -> ProceduralConfig:
        """A fast configuration for tests: 3 subjects, all 12 expressions, 12-20 frames, 468
        vertices.

        Args:
          **overrides: fields to change.

        Returns:
          The configuration.
        """
        fields = dict(num_subjects=3, min_frames=12, max_frames=20, template_subdivisions=0)
        fields.update(overrides)
        return cls(**fields)


# ---------------------------------------------------------------------------------------------
# Small field helpers
# ---------------------------------------------------------------------------------------------


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _gauss(p: np.ndarray, center: np.ndarray, radius) -> np.ndarray:
    """``exp(-|(p - c) / r|^2 / 2)`` with a scalar or per-axis radius; ``[N]``."""
    d = (p - center) / np.asarray(radius, np.float64)
    return np.exp(-0.5 * np.sum(d * d, axis=-1))


def _unit(v) -> np.ndarray:
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def _tangential(direction: np.ndarray, normals: np.ndarray, keep_normal: float = 0.3) -> np.ndarray:
    """Per-vertex direction with most of its normal component removed: ``[N, 3]``."""
    d = np.broadcast_to(np.asarray(direction, np.float64), normals.shape)
    dn = np.sum(d * normals, axis=-1, keepdims=True)
    return d - (1.0 - keep_normal) * dn * normals


@functools.lru_cache(maxsize=4)
def _base_modes(num_modes: int) -> tuple[np.ndarray, np.ndarray]:
    """Low-frequency eigenmodes of the base mesh: ``(modes [468, K], eigenvalues [K])``.

    Modes are normalised to unit RMS over the vertices; the constant mode is dropped.
    """
    base = load_face_template(0)
    v = base.vertices.astype(np.float64)
    f = base.faces.astype(np.int64)
    n_base = len(v)
    # The modes must be continuous across the closed lips and the eyelids, otherwise they would
    # open or shear the mouth. The mouth slit is welded (each lower inner-lip vertex merged into
    # its upper partner) and the eye holes are closed with centroid fans.
    weld = np.arange(n_base)
    weld[list(MOUTH_LOWER_INNER)] = list(MOUTH_UPPER_INNER)
    f = weld[f]
    loops = [
        loop for loop in topology.boundary_loops(f)[1:]  # all but the outline (the longest)
        if not set(loop.tolist()) & set(MOUTH_UPPER_INNER)
    ]
    extra_v, extra_f = [], []
    for k, loop in enumerate(loops):
        c = n_base + k
        extra_v.append(v[loop].mean(0))
        # The mesh runs along the loop in the opposite direction to the fan.
        extra_f += [[loop[(i + 1) % len(loop)], loop[i], c] for i in range(len(loop))]
    v = np.concatenate([v, np.asarray(extra_v).reshape(-1, 3)])
    f = np.concatenate([f, np.asarray(extra_f, np.int64).reshape(-1, 3)])
    keep = np.ones(len(v), bool)
    keep[list(MOUTH_LOWER_INNER)] = False  # welded away (rows of L are zero there)
    lap = topology.cotangent_laplacian(v, f).tocsr()
    area = 0.5 * np.linalg.norm(np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]]), axis=1)
    mass = np.zeros(len(v))
    for k in range(3):
        np.add.at(mass, f[:, k], area / 3.0)
    lap, mass = lap[keep][:, keep], mass[keep]
    # Symmetric standard form M^-1/2 L M^-1/2; shift-invert just below 0 finds the smallest modes.
    inv_sqrt = scipy.sparse.diags(1.0 / np.sqrt(mass))
    sym = (inv_sqrt @ lap @ inv_sqrt).tocsc()
    evals, evecs = scipy.sparse.linalg.eigsh(
        sym, k=num_modes + 1, sigma=-1e-3, which="LM", v0=np.ones(sym.shape[0])
    )
    order = np.argsort(evals)
    evals, evecs = evals[order], inv_sqrt @ evecs[:, order]
    full = np.zeros((len(v), num_modes + 1))
    full[keep] = evecs
    full[list(MOUTH_LOWER_INNER)] = full[list(MOUTH_UPPER_INNER)]
    modes = full[:n_base, 1:]
    modes = modes / np.sqrt(np.mean(modes**2, axis=0, keepdims=True))
    # Fix the sign convention so the result does not depend on the LAPACK build.
    modes = modes * np.sign(modes[np.argmax(np.abs(modes), axis=0), np.arange(num_modes)])
    return modes, evals[1:]


@functools.lru_cache(maxsize=4)
def _mouth_slit(subdivisions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower inner-lip vertex indices (slit boundary) and the two slit corners."""
    t = load_face_template(subdivisions)
    c_right, c_left = MOUTH_CORNERS
    for loop in topology.boundary_loops(t.faces):
        loop = loop.tolist()
        if c_right in loop and c_left in loop:
            break
    else:  # pragma: no cover - the asset always has a mouth loop
        raise ValueError("face template has no mouth boundary loop")
    i, j = loop.index(c_right), loop.index(c_left)
    n = len(loop)
    arc_a = [loop[(i + k) % n] for k in range(1, (j - i) % n)]
    arc_b = [loop[(j + k) % n] for k in range(1, (i - j) % n)]
    v = t.vertices
    if np.mean(v[arc_a, 1]) > np.mean(v[arc_b, 1]):
        upper, lower = arc_a, arc_b
    else:
        upper, lower = arc_b, arc_a
    return np.asarray(upper), np.asarray(lower), np.asarray([c_right, c_left])


# ---------------------------------------------------------------------------------------------
# Subjects
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Subject:
    neutral: np.ndarray  # float64 [N, 3]
    fields: dict[str, np.ndarray]  # unit-intensity displacement fields, float64 [N, 3]
    jaw_weight: np.ndarray  # float64 [N]
    hinge: np.ndarray  # float64 [3]
    jaw_gain: float
    gains: dict[str, float]
    side: int  # +1: mouth_side pulls towards the subject's left (+x), -1: right


class _Geometry:
    """Landmark-derived anchors and the mouth line of one neutral face."""

    def __init__(self, v: np.ndarray, template: FaceTemplate, slit) -> None:
        self.v = v
        lm = v[template.landmarks.vertex_indices]
        self.lm = lm
        upper, lower, corners = slit
        self.corner_r, self.corner_l = lm[48], lm[54]  # outer lip corners (subject's right, left)
        self.mouth_width = float(np.linalg.norm(self.corner_l - self.corner_r))
        self.mouth_center = 0.5 * (lm[62] + lm[66])
        self.face_scale = float(np.linalg.norm(lm[45] - lm[36]))  # outer eye corners
        # Mouth line: mid-slit height as a function of x, extended beyond the slit corners by a
        # straight line rising towards the jaw hinge.
        ux, uy = v[upper, 0], v[upper, 1]
        lx, ly = v[lower, 0], v[lower, 1]
        cr, cl = v[corners[0]], v[corners[1]]
        xs = np.linspace(cr[0], cl[0], 64)
        yu = np.interp(xs, *_sorted_xy(np.r_[cr[0], ux, cl[0]], np.r_[cr[1], uy, cl[1]]))
        yl = np.interp(xs, *_sorted_xy(np.r_[cr[0], lx, cl[0]], np.r_[cr[1], ly, cl[1]]))
        self._line_x, self._line_y = xs, 0.5 * (yu + yl)
        self.slit_r, self.slit_l = cr, cl
        ear_y = 0.5 * (lm[0, 1] + lm[1, 1])
        self.hinge = np.array([0.0, ear_y, 0.5 * (lm[0, 2] + lm[16, 2]) - 0.012])
        self.edge_x = 0.5 * (lm[16, 0] - lm[0, 0])

    def mouth_line(self, x: np.ndarray) -> np.ndarray:
        y = np.interp(x, self._line_x, self._line_y)
        for c, sign in ((self.slit_r, -1.0), (self.slit_l, 1.0)):
            beyond = sign * (x - c[0])
            slope = (self.hinge[1] - c[1]) / max(self.edge_x - abs(c[0]), 1e-3)
            y = np.where(beyond > 0, c[1] + slope * beyond, y)
        return y


def _sorted_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(x, kind="stable")
    return x[order], y[order]


def _identity_shape(template: FaceTemplate, slit, rng: np.random.Generator) -> np.ndarray:
    """A new neutral face ``float64 [N, 3]``."""
    v = template.vertices.astype(np.float64)
    g = _Geometry(v, template, slit)
    lm = g.lm
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    d = np.zeros_like(v)
    normals = topology.vertex_normals(v, template.faces).astype(np.float64)

    def normal(sd: float) -> float:
        return float(rng.normal(0.0, sd))

    # Nose: width, length, protrusion about the nose base.
    w_nose = _gauss(v, lm[27:36].mean(0), (17 * _MM, 24 * _MM, 30 * _MM))
    base = lm[33]
    d[:, 0] += normal(0.12) * x * w_nose
    d[:, 1] += normal(0.10) * (y - base[1]) * w_nose
    d[:, 2] += normal(0.12) * np.maximum(z - lm[31, 2], 0.0) * w_nose
    # Jaw width below the mouth corners; chin height and protrusion.
    w_low = _smoothstep((lm[48, 1] - y) / (35 * _MM))
    d[:, 0] += normal(0.07) * x * w_low
    w_chin = _gauss(v, lm[8] + np.array([0.0, 12 * _MM, 0.0]), 20 * _MM)
    d[:, 1] += normal(3.5 * _MM) * w_chin
    d[:, 2] += normal(3.5 * _MM) * w_chin
    # Brow ridge and forehead slope.
    brow = lm[17:27].mean(0)
    ridge = _gauss(v, brow + np.array([0, 4 * _MM, 0]), (45 * _MM, 9 * _MM, 30 * _MM))
    d[:, 2] += normal(2.0 * _MM) * ridge
    top = v[:, 1].max()
    d[:, 2] += normal(4.0 * _MM) * _smoothstep((y - brow[1]) / (top - brow[1])) ** 2
    # Cheek fullness along the normals.
    cheek_amp = normal(2.5 * _MM)
    for eye, corner in ((lm[36:42], lm[48]), (lm[42:48], lm[54])):
        center = np.array([1.1 * eye.mean(0)[0], 0.5 * (eye.mean(0)[1] + corner[1]), 0.0])
        w = _gauss(v[:, :2], center[:2], 17 * _MM) * (z > lm[0, 2])
        d += cheek_amp * w[:, None] * normals
    # Lips: thickness about the mouth line and mouth width.
    w_lips = _gauss(v, g.mouth_center, (0.6 * g.mouth_width, 9 * _MM, 15 * _MM))
    d[:, 1] += normal(0.15) * (y - g.mouth_line(x)) * w_lips
    w_mouth = _gauss(v, g.mouth_center, (0.7 * g.mouth_width, 14 * _MM, 20 * _MM))
    d[:, 0] += normal(0.08) * (x - g.mouth_center[0]) * w_mouth
    # Eye spacing.
    spread = normal(1.5 * _MM)
    for eye, sign in ((lm[36:42].mean(0), -1.0), (lm[42:48].mean(0), 1.0)):
        d[:, 0] += sign * spread * _gauss(v, eye, 14 * _MM)

    # Low-frequency free-form displacement on the base mesh, mostly symmetric.
    modes, evals = _base_modes(_NUM_MODES)
    sigma = 1.3 * _MM * np.sqrt(evals[0] / evals)
    coef = rng.normal(size=(_NUM_MODES, 3)) * sigma[:, None]
    base_disp = modes @ coef  # [468, 3]
    mirror = load_face_template(0).mirror
    sym = 0.5 * (base_disp + base_disp[mirror] * np.array([-1.0, 1.0, 1.0]))
    base_disp = sym + 0.3 * (base_disp - sym)
    d += np.asarray(template.from_base @ base_disp)

    v = v + d
    # Global size and proportions about the nose tip.
    center = v[template.landmarks.vertex_indices[30]] * np.array([0.0, 1.0, 0.0])
    scale = np.exp(rng.normal(0.0, 0.05)) * np.exp(rng.normal(0.0, 0.04, size=3) * [1.0, 1.0, 0.5])
    return (v - center) * scale + center


def _smooth_normals(v: np.ndarray, normals: np.ndarray, radius: float) -> np.ndarray:
    """Unit normals ``[N, 3]`` averaged with Gaussian weights of the given radius (metres)."""
    tree = scipy.spatial.cKDTree(v)
    dist = tree.sparse_distance_matrix(tree, 2.5 * radius, output_type="coo_matrix")
    w = np.exp(-0.5 * (dist.data / radius) ** 2)
    avg = np.zeros_like(normals)
    for c in range(3):
        np.add.at(avg[:, c], dist.row, w * normals[dist.col, c])
    avg += normals  # the diagonal (zero distances are not stored)
    return avg / np.maximum(np.linalg.norm(avg, axis=1, keepdims=True), 1e-12)


def _jaw_weights(v: np.ndarray, faces: np.ndarray, lm: np.ndarray, slit) -> np.ndarray:
    """Harmonic skinning weights ``[N]`` of the mandible.

    The weights are 1 on the lower inner lip and the chin, 0 on the upper inner lip and above the
    nostrils, and harmonic (cotangent Laplacian) in between. The mouth slit is a cut in the mesh, so
    the weights jump across the closed lips but blend smoothly around the corners and over the
    cheeks.
    """
    upper, lower, _ = slit
    n = v.shape[0]
    value = np.full(n, np.nan)
    value[v[:, 1] > lm[33, 1]] = 0.0
    value[v[:, 1] < lm[57, 1] - 6 * _MM] = 1.0
    # Along the slit the lips separate fully only away from the corners, so the opening is
    # lens-shaped: 1/2 at a corner, 0 (upper) or 1 (lower) from 60 % of the half-width inwards.
    corners = v[slit[2]]
    half = 0.5 * float(np.linalg.norm(corners[1] - corners[0]))
    for arc, sign in ((upper, -1.0), (lower, 1.0)):
        dist = np.min(np.linalg.norm(v[arc, None, :] - corners[None], axis=-1), axis=1)
        value[arc] = 0.5 + sign * 0.5 * _smoothstep(dist / (0.6 * half))
    known = ~np.isnan(value)
    lap = topology.cotangent_laplacian(v, faces).tocsr()
    free = ~known
    rhs = -(lap[free][:, known] @ value[known])
    value[free] = scipy.sparse.linalg.spsolve(lap[free][:, free].tocsc(), rhs)
    return np.clip(value, 0.0, 1.0)


def _action_fields(
    v: np.ndarray, template: FaceTemplate, slit
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Unit-intensity action displacement fields of one neutral face."""
    g = _Geometry(v, template, slit)
    lm = g.lm
    # Directions are projected with normals averaged over ~1 cm, so that sharp creases (lip
    # corners, nostrils) do not turn a smooth pull into a folding one.
    n = _smooth_normals(v, topology.vertex_normals(v, template.faces).astype(np.float64), 8 * _MM)
    # The amplitudes below (mm) are for the template (outer eye corners 99 mm apart, mouth 0.585 of
    # that); they scale with the subject's size and, more weakly, its mouth proportions.
    amp = _ACTION_GAIN * (g.face_scale / 0.099) * (g.mouth_width / (0.585 * g.face_scale)) ** 0.5
    wm = g.mouth_width
    m = g.mouth_center
    x, y = v[:, 0], v[:, 1]
    jaw = _jaw_weights(v, template.faces, lm, slit)
    lower = jaw
    upper = 1.0 - jaw
    fields: dict[str, np.ndarray] = {}
    # Fades to 0 at the outline of the face mask (for fields that would otherwise notch it).
    outline = topology.boundary_loops(template.faces)[0]
    edge_dist, _ = scipy.spatial.cKDTree(v[outline]).query(v)
    inside = _smoothstep(edge_dist / (12 * _MM))

    def field(direction, weight) -> np.ndarray:
        return amp * np.asarray(weight)[:, None] * np.broadcast_to(direction, v.shape)

    sides = (("r", lm[48], lm[36:42], lm[4]), ("l", lm[54], lm[42:48], lm[12]))
    for side, corner, eye, jaw_lm in sides:
        out = -1.0 if side == "r" else 1.0
        g_corner = _gauss(v, corner, (0.42 * wm, 0.36 * wm, 0.5 * wm))
        # Smile: corner up/out/back along the surface, cheek raise, lower-lid squint.
        # The pull is centred a little lateral to and above the corner, so the tissue beyond the
        # corner is stretched rather than folded.
        pull_c = corner + np.array([0.18 * out * wm, 0.1 * wm, 0.0])
        g_pull = _gauss(v, pull_c, (0.45 * wm, 0.38 * wm, 0.5 * wm))
        smile = field(_tangential(_unit([0.5 * out, 0.8, -0.35]), n) * 13 * _MM, g_pull)
        eye_c = eye.mean(0)
        cheek_c = np.array([eye_c[0] + out * 4 * _MM, 0.5 * (eye_c[1] + corner[1]) + 4 * _MM])
        w_cheek = _gauss(v[:, :2], cheek_c, 16 * _MM) * (v[:, 2] > lm[0, 2] + 10 * _MM)
        smile += field(_tangential(_unit([0.1 * out, 1.0, 0.6]), n, 0.6) * 3.5 * _MM, w_cheek)
        lid = 0.5 * (lm[40] + lm[41]) if side == "r" else 0.5 * (lm[46] + lm[47])
        w_lid = _gauss(v, lid, 6 * _MM) * _smoothstep((eye_c[1] - y) / (1.5 * _MM))
        smile += field(np.array([0.0, 1.6 * _MM, 0.3 * _MM]), w_lid)
        fields[f"smile_{side}"] = smile
        fields[f"corner_raise_{side}"] = field(np.array([0.2 * out, 1.0, 0.1]) * 5 * _MM, g_corner)
        g_stretch = _gauss(v, corner, (0.38 * wm, 0.3 * wm, 0.45 * wm))
        fields[f"lip_stretch_{side}"] = field(
            _tangential(np.array([out * 6.0, -0.5, -2.0]) * _MM, n), g_stretch
        )
        fields[f"corner_depress_{side}"] = field(
            np.array([out * 1.0, -5.5, -0.5]) * _MM,
            _gauss(v, corner - np.array([0, 2 * _MM, 0]), (0.33 * wm, 0.4 * wm, 0.45 * wm)),
        )
        # Cheek suck: inwards along the normal, centred lateral to the mouth corner.
        ck = np.array([corner[0] + out * 0.42 * wm, 0.6 * corner[1] + 0.4 * jaw_lm[1]])
        w_ck = _gauss(v[:, :2], ck, (13 * _MM, 16 * _MM)) * inside
        fields[f"cheek_suck_{side}"] = field(-n * 6.5 * _MM, w_ck)
        # Brow raise: brow and forehead up, fading down to the upper lid and up to the hairline.
        brow = lm[17:22] if side == "r" else lm[22:27]
        bc = brow.mean(0)
        lid_top = eye[:, 1].max()
        top = v[:, 1].max()
        ramp = _smoothstep((y - lid_top) / max(bc[1] - lid_top, 1e-3))
        fade = 1.0 - 0.55 * _smoothstep((y - bc[1]) / max(top - bc[1], 1e-3))
        w_brow = ramp * fade * _gauss(v[:, :1], bc[:1], 24 * _MM)
        brow_dir = _tangential(np.array([0.0, 9.0 * _MM, 0.0]), n)
        fields[f"brow_raise_{side}"] = field(brow_dir, w_brow)

    up_c = lm[51]
    g_up = _gauss(v, up_c + np.array([0, 2 * _MM, 0]), (0.45 * wm, 8 * _MM, 12 * _MM)) * upper
    nostrils = _gauss(v, lm[31], 6 * _MM) + _gauss(v, lm[35], 6 * _MM)
    fields["upper_lip_raise"] = field(np.array([0.0, 4.5, 1.5]) * _MM, g_up) + field(
        np.array([0.0, 1.5, 0.3]) * _MM, nostrils
    )
    g_low = _gauss(v, lm[57] - np.array([0, 1 * _MM, 0]), (0.45 * wm, 8 * _MM, 12 * _MM)) * lower
    fields["lower_lip_depress"] = field(np.array([0.0, -5.0, 1.2]) * _MM, g_low)
    g_m = _gauss(v, m, (0.55 * wm, 12 * _MM, 16 * _MM))
    g_wide = _gauss(v, m, (0.75 * wm, 15 * _MM, 20 * _MM))
    pucker = np.zeros_like(v)
    pucker[:, 0] = -0.42 * (x - m[0]) * g_wide
    pucker[:, 2] = 7.0 * _MM * g_m
    pucker[:, 1] = 0.12 * (y - g.mouth_line(x)) * g_m  # rounder, slightly thicker lips
    fields["pucker"] = amp * pucker
    g_lips = _gauss(v, m, (0.55 * wm, 7 * _MM, 10 * _MM))
    press = np.zeros_like(v)
    press[:, 2] = -6.0 * _MM * g_lips
    press[:, 1] = -0.5 * (y - g.mouth_line(x)) * g_lips
    for corner in (lm[48], lm[54]):
        press[:, 2] += -2.0 * _MM * _gauss(v, corner, 8 * _MM)
    fields["lip_press"] = amp * press
    chin_c = lm[8] + 0.38 * (lm[57] - lm[8])
    fields["chin_raise"] = field(
        np.array([0.0, 3.5, 2.5]) * _MM, _gauss(v, chin_c, (0.4 * wm, 11 * _MM, 14 * _MM)) * jaw
    )
    fields["mouth_raise"] = field(
        np.array([0.0, 6.5, 0.5]) * _MM, _gauss(v, m, (0.6 * wm, 13 * _MM, 15 * _MM))
    )
    g_side = _gauss(v, m, (0.65 * wm, 14 * _MM, 18 * _MM))
    for side, corner, sign in (("r", lm[48], -1.0), ("l", lm[54], 1.0)):
        f = field(np.array([sign * 9.0, 0.5, 0.0]) * _MM, g_side)
        f += field(np.array([0.0, 0.0, -2.5 * _MM]), _gauss(v, corner, 9 * _MM))
        fields[f"mouth_side_{side}"] = f
    return fields, jaw, g.hinge


def _make_subject(config: ProceduralConfig, template: FaceTemplate, index: int) -> _Subject:
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, index, 1]))
    slit = _mouth_slit(config.template_subdivisions)
    neutral = _identity_shape(template, slit, rng)
    fields, jaw_weight, hinge = _action_fields(neutral, template, slit)
    names = sorted({k[:-2] if k[-2:] in ("_l", "_r") else k for k in fields})
    gains: dict[str, float] = {}
    for name in names:
        gain = float(np.exp(rng.normal(0.0, 0.2)))
        asym = float(np.exp(rng.normal(0.0, 0.12)))
        if f"{name}_l" in fields:
            gains[f"{name}_l"] = gain * asym
            gains[f"{name}_r"] = gain / asym
        else:
            gains[name] = gain
    return _Subject(
        neutral=neutral,
        fields=fields,
        jaw_weight=jaw_weight,
        hinge=hinge,
        jaw_gain=float(np.exp(rng.normal(0.0, 0.15))),
        gains=gains,
        side=int(rng.choice([-1, 1])),
    )


def _profile(t: np.ndarray, onset: float, rise: float, hold: float, fall: float) -> np.ndarray:
    """Intensity in [0, 1]: 0 until ``onset``, eased rise, hold at 1, eased fall, 0 after."""
    up = _smoothstep((t - onset) / rise)
    down = 1.0 - _smoothstep((t - onset - rise - hold) / fall)
    return up * down


@dataclasses.dataclass(frozen=True)
class _Timing:
    num_frames: int
    onset: float
    rise: float
    hold: float
    fall: float
    intensity: float

    @property
    def apex(self) -> int:
        return int(round(self.onset + self.rise + 0.5 * self.hold))


class ProceduralFaces:
    """Deterministic procedural 4D face sequences.

    Args:
      config: the :class:`ProceduralConfig` (default: CoMA scale).
    """

    def __init__(self, config: ProceduralConfig | None = None) -> None:
        self.config = ProceduralConfig() if config is None else config
        self._subjects: dict[int, _Subject] = {}

    @property
    def template(self) -> FaceTemplate:
        """The face template (topology, landmarks) shared by all subjects."""
        return load_face_template(self.config.template_subdivisions)

    @property
    def subject_names(self) -> list[str]:
        """Sortable CoMA-like names, ``Proc_000_S``, ``Proc_001_S``, ..."""
        return [f"Proc_{i:03d}_S" for i in range(self.config.num_subjects)]

    @property
    def expressions(self) -> tuple[str, ...]:
        """The expression names; an integer expression argument indexes this tuple."""
        return self.config.expressions

    def _check_subject(self, subject: int) -> int:
        subject = int(subject)
        if not 0 <= subject < self.config.num_subjects:
            raise IndexError(f"subject {subject} out of range [0, {self.config.num_subjects})")
        return subject

    def _expression_name(self, expression: int | str) -> str:
        if isinstance(expression, str):
            if expression not in self.config.expressions:
                raise KeyError(f"expression {expression!r} not in {self.config.expressions}")
            return expression
        idx = int(expression)
        if not 0 <= idx < len(self.config.expressions):
            raise IndexError(f"expression {idx} out of range [0, {len(self.config.expressions)})")
        return self.config.expressions[idx]

    def _subject(self, subject: int) -> _Subject:
        subject = self._check_subject(subject)
        if subject not in self._subjects:
            self._subjects[subject] = _make_subject(self.config, self.template, subject)
        return self._subjects[subject]

    def _rng(self, subject: int, name: str) -> np.random.Generator:
        seq = np.random.SeedSequence([self.config.seed, subject, 2, EXPRESSIONS.index(name)])
        return np.random.default_rng(seq)

    def _timing(self, rng: np.random.Generator) -> _Timing:
        cfg = self.config
        t = int(rng.integers(cfg.min_frames, cfg.max_frames + 1))
        onset = rng.uniform(0.06, 0.18)
        rise = rng.uniform(0.16, 0.30)
        hold = rng.uniform(0.08, 0.25)
        fall = rng.uniform(0.16, 0.30)
        total = onset + rise + hold + fall
        if total > 0.94:
            onset, rise, hold, fall = (p * 0.94 / total for p in (onset, rise, hold, fall))
        last = t - 1
        return _Timing(
            num_frames=t,
            onset=onset * last,
            rise=rise * last,
            hold=hold * last,
            fall=fall * last,
            intensity=float(rng.uniform(0.75, 1.1)),
        )

    def neutral(self, subject: int) -> np.ndarray:
        """Neutral face of a subject.

        Args:
          subject: subject index in ``[0, num_subjects)``.

        Returns:
          ``float32 [N, 3]`` vertices in metres.
        """
        return self._subject(subject).neutral.astype(np.float32)

    def num_frames(self, subject: int, expression: int | str) -> int:
        """Length of a sequence, without generating any geometry.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.

        Returns:
          ``T``, the number of frames of :meth:`sequence` for these arguments.
        """
        name = self._expression_name(expression)
        return self._timing(self._rng(self._check_subject(subject), name)).num_frames

    def apex_frame(self, subject: int, expression: int | str) -> int:
        """Apex of a sequence, without generating any geometry.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.

        Returns:
          Index of the frame in the middle of the apex hold (full intensity), in ``(0, T - 1)``.
        """
        name = self._expression_name(expression)
        return self._timing(self._rng(self._check_subject(subject), name)).apex

    def sequence(self, subject: int, expression: int | str) -> np.ndarray:
        """One expression sequence, neutral -> apex -> neutral.

        Args:
          subject: subject index in ``[0, num_subjects)``.
          expression: expression name, or index into ``config.expressions``.

        Returns:
          ``float32 [T, N, 3]`` vertices in metres, ``T`` in ``[min_frames, max_frames]``; frame 0
          is the neutral face plus noise.
        """
        name = self._expression_name(expression)
        subject = self._check_subject(subject)
        subj = self._subject(subject)
        rng = self._rng(subject, name)
        timing = self._timing(rng)
        jaw_deg, recipe = _RECIPES[name]

        # Expand paired actions and the sided mouth pull into concrete fields with their gains.
        weights: list[tuple[str, float]] = []
        for action, w in recipe.items():
            if action.endswith("_lr"):
                stem = action[:-3]
                weights += [(f"{stem}_r", w), (f"{stem}_l", w)]
            elif action == "mouth_side":
                weights.append((f"mouth_side_{'l' if subj.side > 0 else 'r'}", w))
            else:
                weights.append((action, w))
        t = np.arange(timing.num_frames, dtype=np.float64)
        span = timing.num_frames - 1
        lag_max = 0.03 * span
        coef = np.empty((timing.num_frames, len(weights)))
        for k, (field_name, w) in enumerate(weights):
            lag = rng.uniform(-lag_max, lag_max)
            jitter = np.exp(rng.normal(0.0, 0.08))
            prof = _profile(t - lag, timing.onset, timing.rise, timing.hold, timing.fall)
            coef[:, k] = w * jitter * subj.gains[field_name] * timing.intensity * prof
        stack = np.stack([subj.fields[f] for f, _ in weights])  # [K, N, 3]
        frames = subj.neutral[None] + np.einsum("tk,knc->tnc", coef, stack)

        if jaw_deg > 0:
            lag = rng.uniform(-lag_max, lag_max)
            prof = _profile(t - lag, timing.onset, timing.rise, timing.hold, timing.fall)
            theta = np.radians(jaw_deg * subj.jaw_gain * timing.intensity) * prof  # [T]
            frames = _rotate_jaw(frames, theta, subj.hinge, subj.jaw_weight)

        if self.config.noise_std > 0:
            noise = rng.standard_normal(frames.shape, dtype=np.float32)
            frames = frames + self.config.noise_std * noise
        return frames.astype(np.float32)

    def iter_sequences(self) -> Iterator[tuple[str, str, np.ndarray]]:
        """Generates the whole dataset, one sequence at a time.

        Yields:
          ``(subject_name, expression_name, float32 [T, N, 3])`` for every subject (outer loop)
          and configured expression (inner loop), in index order.
        """
        names = self.subject_names
        for s in range(self.config.num_subjects):
            for e in self.config.expressions:
                yield names[s], e, self.sequence(s, e)


def _rotate_jaw(
    frames: np.ndarray, theta: np.ndarray, hinge: np.ndarray, weight: np.ndarray
) -> np.ndarray:
    """Opens the jaw: each vertex turns about the hinge axis by its weight times the angle.

    Blending the angle (rather than the rotated positions, as linear blend skinning does) keeps
    the transition region from collapsing.

    Args:
      frames: ``float [T, N, 3]``.
      theta: ``float [T]`` opening angles in radians (positive opens: the chin moves down and back).
      hinge: ``[3]`` a point on the hinge axis (parallel to x).
      weight: ``[N]`` skinning weights in [0, 1].

    Returns:
      ``float64 [T, N, 3]``.
    """
    angle = theta[:, None] * weight[None, :]  # [T, N]
    c, s = np.cos(angle), np.sin(angle)
    q = frames - hinge
    qy, qz = q[..., 1], q[..., 2]
    # Condylar glide: the mandible also slides forward and down as it opens wide.
    glide = angle / np.radians(20.0)
    out = frames.copy()
    out[..., 1] = hinge[1] + c * qy - s * qz - 1.5 * _MM * glide
    out[..., 2] = hinge[2] + s * qy + c * qz + 1.0 * _MM * glide
    return out
