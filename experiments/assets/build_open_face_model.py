r"""Builds ``jaxface/assets/open_face_model.npz``: an open morphable face model with FLAME's
structure on the 468-vertex jaxface template.

Where the data comes from (all already in the repository, see ``jaxface/assets/PROVENANCE.md``):
  * topology, landmarks and frame: the face template (``face_template.npz``, MediaPipe's
    face-mesh topology, metres);
  * identities: the 100 neutral faces of faces4d's largest identity set (``coma_scale_100``:
    MediaPipe's canonical face ``Canon_000_S`` and the procedural identities ``Proc_000_S`` ..
    ``Proc_098_S``, :class:`jaxface.data.performances.PerformanceFaces` at 468 vertices);
  * expressions, jaw and eyelids: the 52 ARKit blendshapes transferred from the Face Cap head
    (``arkit_basis.npz``; credit: Face Cap, Bannaflak, Niels Jansson).

What is built (deterministic, numpy and scipy only):
  1. Identity basis: PCA of the 100 neutral faces. ``v_template`` is their mean; component ``k``
     is the unit principal direction times its standard deviation (so identity coefficients are
     about standard normal, as FLAME's); the components up to 99.9 % of the variance are kept.
     Signs are fixed so that each component's largest entry is positive.
  2. Joints, FLAME's five: 0 global and 1 neck at one head-neck pivot (a nominal point 20 mm
     below and 30 mm behind the jaw's), 2 jaw, 3 left eye and 4 right eye (12 mm behind the
     centre of each eye's six landmarks; no vertex follows them: the template has no eyeballs).
  3. Jaw: a hinge at ``(0, y, z)`` about the x axis, an opening angle and per-vertex skinning
     weights in [0, 1] (on the jaw; the rest on the neck joint) fitted so that rotating the jaw
     by that angle reproduces ``jawOpen``: for a pivot and angle the weights solve a bounded
     least-squares problem with a small smoothness term over the mesh edges (the mouth slit is a
     cut, so the lips separate); the pivot and angle minimise the residual (Nelder-Mead from the
     best point of a coarse grid). ``jawLeft`` and ``jawRight`` become yaw angles of the same
     joint (1-D least squares with the fitted weights).
  4. Pose correctives (``posedirs``, FLAME's layout): the residuals of the three jaw shapes,
     carried back through each vertex's blended rotation, are written as linear functions of the
     jaw joint's ``R - I``: the opening's on the sine elements of a rotation about x (so it grows
     as ``sin t`` and the jaw at the fitted angle equals ``jawOpen``), the part of the yaws'
     that changes sign between left and right on the sine elements of a rotation about y (their
     common part, the chin coming forward, is left to the ``jawForward`` expression). Other
     joints have none.
  5. Expression basis: the other ARKit shapes, without ``jawOpen``, ``jawLeft``, ``jawRight``
     (now the jaw joint), ``eyeBlink_L``/``_R`` (now the eyelid shapes) and ``tongueOut`` (all
     zero: the head has no tongue); 46 named shapes, weight 1 = the sculpted shape.
  6. Eyelids: ``eyeBlink_L`` and ``eyeBlink_R``.
  7. Landmarks: the template's 68 iBUG vertices and all 468 MediaPipe points, each as a
     barycentric point (one-hot) on the first triangle using the vertex.
  8. Regions (vertex masks, for region-weighted sampling as SMIRK's): ``face`` = the whole
     surface (the template has no ears, neck, scalp or eyeballs to exclude); ``lips`` = the
     vertices inside and on MediaPipe's outer lip line (a flood fill from the mouth slit that stops
     at the line); ``left_eye_region``/``right_eye_region`` (and their union ``eye_region``) =
     the vertices whose front view lies in the convex hull of the brow landmarks and of the eye
     landmarks lowered by 8 mm; ``nose`` = inside the hull of the nose landmarks (27-35) widened
     by 25 % about the midline and the nostril base lowered by 2 mm; ``forehead`` = above the
     brows (1 mm over the line through the brow landmarks, out to the outer brow ends).

Large bases are stored as float16 unit fields with a float32 scale per component (relative
precision 5e-4 of each component's largest entry); the loader
(:func:`jaxface.morphable.open_model.load_open_model`) turns them back into float32 metres.

Rerun (from the repository root, in the project's environment)::

    python -m experiments.assets.build_open_face_model --out jaxface/assets/open_face_model.npz \
        --sheet experiments/assets/open_face_model_sheet.png

The result is byte-identical on reruns. ``--sheet`` draws the regions, the jaw and the eyelids.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time

import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.sparse.linalg
import scipy.spatial
import scipy.spatial.transform

from jaxface.data.expression_basis import load_expression_basis
from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.template import (
    IBUG68_VERTICES,
    MOUTH_LOWER_INNER,
    MOUTH_UPPER_INNER,
    load_face_template,
)
from jaxface.files import write_atomic
from jaxface.mesh import topology

__all__ = [
    "CREDIT",
    "EXPRESSION_EXCLUDED",
    "LIP_OUTER_LINE",
    "build_model",
    "fit_jaw",
    "identity_basis",
    "main",
    "regions",
]

CREDIT = "Face Cap (Bannaflak, Niels Jansson)"
NUM_IDENTITIES = 100  # faces4d coma_scale_100
VARIANCE_KEPT = 0.999
EXPRESSION_EXCLUDED = ("jawOpen", "jawLeft", "jawRight", "eyeBlink_L", "eyeBlink_R", "tongueOut")
PARENTS = (-1, 0, 1, 1, 1)
JOINT_NAMES = ("global", "neck", "jaw", "left_eye", "right_eye")

# MediaPipe's outer lip line (its face-mesh "lips" contour), a closed loop of mesh edges:
# upper lip from the subject's right corner (61) to the left (291), then the lower lip back.
LIP_OUTER_LINE = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
                  375, 321, 405, 314, 17, 84, 181, 91, 146)

_MM = 1e-3
_NECK_BELOW_JAW = np.array([0.0, -20 * _MM, -30 * _MM])
_EYE_DEPTH = 12 * _MM
_SMOOTHNESS = 1e-6  # m^2 per unit squared weight difference along an edge


# ---------------------------------------------------------------------------------------------
# Identity
# ---------------------------------------------------------------------------------------------


def identity_samples(num: int = NUM_IDENTITIES) -> tuple[np.ndarray, list[str]]:
    """The neutral faces of faces4d's identities at 468 vertices.

    Returns:
      ``(float64 [num, 468, 3] metres, subject names)``.
    """
    faces = PerformanceFaces(PerformanceConfig(num_subjects=num, template_subdivisions=0))
    x = np.stack([faces.neutral(i).astype(np.float64) for i in range(num)])
    return x, list(faces.subject_names)


def identity_basis(samples: np.ndarray, keep: float = VARIANCE_KEPT) -> dict[str, np.ndarray]:
    """PCA of neutral faces.

    Args:
      samples: ``float [N, V, 3]``.
      keep: fraction of the variance the kept components explain (at least).

    Returns:
      ``mean [V, 3]``, ``components [K, V, 3]`` (unit direction times standard deviation),
      ``variance [N - 1]`` of every component and ``explained [N - 1]`` (cumulative fraction).
    """
    n, v, _ = samples.shape
    mean = samples.mean(axis=0)
    _, s, vt = np.linalg.svd((samples - mean).reshape(n, -1), full_matrices=False)
    variance = s[: n - 1] ** 2 / (n - 1)
    vt = vt[: n - 1]
    peak = np.argmax(np.abs(vt), axis=1)
    vt = vt * np.sign(vt[np.arange(vt.shape[0]), peak])[:, None]
    explained = np.cumsum(variance) / variance.sum()
    k = int(np.searchsorted(explained, keep) + 1)
    components = (vt[:k] * np.sqrt(variance[:k])[:, None]).reshape(k, v, 3)
    return {"mean": mean, "components": components, "variance": variance,
            "explained": explained}


# ---------------------------------------------------------------------------------------------
# Jaw
# ---------------------------------------------------------------------------------------------


def _rotation(axis: int, angle: float) -> np.ndarray:
    """The rotation by ``angle`` (radians) about coordinate axis ``axis`` (0: x, 1: y, 2: z)."""
    return scipy.spatial.transform.Rotation.from_rotvec(angle * np.eye(3)[axis]).as_matrix()


def _box_qp(h: scipy.sparse.csc_matrix, g: np.ndarray) -> np.ndarray:
    """``argmin 1/2 w'Hw - g'w`` over ``0 <= w <= 1`` for a sparse positive-definite ``H``
    (primal active set: solve on the free variables, fix the violators at their bound, release
    the bound ones whose gradient points inside; exact at convergence)."""
    n = g.size
    lower, upper = np.zeros(n, bool), np.zeros(n, bool)
    w = np.zeros(n)
    for _ in range(100):
        free = ~(lower | upper)
        w = np.where(upper, 1.0, 0.0)
        rhs = g[free] - h[free][:, ~free] @ w[~free]
        w[free] = scipy.sparse.linalg.spsolve(h[free][:, free].tocsc(), rhs)
        grad = h @ w - g
        low_bad, high_bad = free & (w < 0.0), free & (w > 1.0)
        release_low, release_high = lower & (grad < 0.0), upper & (grad > 0.0)
        if not (low_bad.any() or high_bad.any() or release_low.any() or release_high.any()):
            return w
        lower = (lower & ~release_low) | low_bad
        upper = (upper & ~release_high) | high_bad
    raise RuntimeError("the skinning-weight fit did not converge")


def _skinning_weights(v: np.ndarray, d: np.ndarray, pivot: np.ndarray, rot: np.ndarray,
                      laplacian: scipy.sparse.csc_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Weights in [0, 1] minimising ``sum_i |d_i - w_i a_i|^2 + s sum_edges (w_i - w_j)^2``
    with ``a_i = R (v_i - p) + p - v_i`` (the displacement at weight 1); and the residual."""
    arm = (v - pivot) @ rot.T + pivot - v
    h = (scipy.sparse.diags(np.sum(arm * arm, axis=1)) + _SMOOTHNESS * laplacian).tocsc()
    w = _box_qp(h, np.sum(arm * d, axis=1))
    return w, d - w[:, None] * arm


def fit_jaw(v: np.ndarray, faces: np.ndarray, jaw_open: np.ndarray) -> dict[str, np.ndarray]:
    """Fits a hinge (pivot ``(0, y, z)``, angle about x) and skinning weights to ``jawOpen``.

    Returns:
      ``pivot [3]``, ``angle`` (radians), ``weights [V]`` and ``residual [V, 3]`` (metres).
    """
    adjacency = topology.vertex_adjacency(faces, v.shape[0])
    laplacian = (scipy.sparse.diags(np.asarray(adjacency.sum(axis=1)).ravel())
                 - adjacency).tocsc()

    def residual(params: np.ndarray) -> float:
        pivot = np.array([0.0, params[0], params[1]])
        return float(np.sum(_skinning_weights(v, jaw_open, pivot, _rotation(0, params[2]),
                                              laplacian)[1] ** 2))

    grid = [(y, z, a) for y in (-0.04, -0.02, 0.0) for z in (-0.09, -0.06, -0.03)
            for a in (0.3, 0.5)]
    start = min(grid, key=lambda p: residual(np.array(p)))
    best = scipy.optimize.minimize(residual, start, method="Nelder-Mead",
                                   options={"xatol": 1e-6, "fatol": 1e-12, "maxiter": 800})
    pivot = np.array([0.0, best.x[0], best.x[1]])
    w, r = _skinning_weights(v, jaw_open, pivot, _rotation(0, best.x[2]), laplacian)
    return {"pivot": pivot, "angle": np.float64(best.x[2]), "weights": w, "residual": r}


def _blend(v: np.ndarray, pivot: np.ndarray, rot: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Displacement of LBS between the head (identity) and the jaw (``rot`` about ``pivot``)."""
    return w[:, None] * ((v - pivot) @ rot.T + pivot - v)


def fit_yaw(v: np.ndarray, shape: np.ndarray, pivot: np.ndarray, w: np.ndarray) -> float:
    """The jaw yaw (about y, radians) whose skinning best reproduces a displacement field."""
    res = scipy.optimize.minimize_scalar(
        lambda a: float(np.sum((shape - _blend(v, pivot, _rotation(1, a), w)) ** 2)),
        bounds=(-0.5, 0.5), method="bounded", options={"xatol": 1e-9})
    return float(res.x)


def _rest_residual(v: np.ndarray, pivot: np.ndarray, w: np.ndarray, rot: np.ndarray,
                   shape: np.ndarray) -> np.ndarray:
    """What skinning misses of ``shape``, carried back through each vertex's blended rotation
    ``(1 - w) I + w R`` (correctives are added before skinning): ``[V, 3]``."""
    r = shape - _blend(v, pivot, rot, w)
    blended = (1.0 - w)[:, None, None] * np.eye(3) + w[:, None, None] * rot
    return np.linalg.solve(blended, r[..., None])[..., 0]


def pose_correctives(v: np.ndarray, pivot: np.ndarray, w: np.ndarray, opening: float,
                     shapes: dict[str, np.ndarray], yaw: tuple[float, float]) -> np.ndarray:
    """The jaw's pose correctives ``[9, V * 3]`` (rows: the elements of ``R - I``, row-major).

    Each rotation drives its own elements, so the three fitted poses do not interfere:

    * opening (about x) drives the odd pair ``(2, 1) = sin t``, ``(1, 2) = -sin t``: the
      residual grows as ``sin t / sin t0``;
    * yaw (about y) drives the odd pair ``(0, 2) = sin a``, ``(2, 0) = -sin a`` with the part
      of the ``jawLeft`` / ``jawRight`` residuals that changes sign between them (least squares
      over the two). Their common part (mostly the chin coming 5 mm forward on either side) is
      left out: an even function of the angle could only be carried by ``cos a - 1``, which
      would make it grow as the square of the angle (4x at twice the fitted yaw);
      ``jawForward`` is an expression of its own.

    Args:
      v: ``[V, 3]`` the mean face.
      pivot: ``[3]`` the hinge.
      w: ``[V]`` jaw skinning weights.
      opening: the ``jawOpen`` angle.
      shapes: ``jawOpen``, ``jawLeft``, ``jawRight`` displacements.
      yaw: the ``jawLeft`` and ``jawRight`` yaw angles.
    """
    rows = np.zeros((3, 3, v.size))
    c_open = _rest_residual(v, pivot, w, _rotation(0, opening), shapes["jawOpen"]).ravel()
    rows[2, 1] = c_open / (2.0 * np.sin(opening))
    rows[1, 2] = -rows[2, 1]
    c_side = np.stack([_rest_residual(v, pivot, w, _rotation(1, a), shapes[n]).ravel()
                       for a, n in zip(yaw, ("jawLeft", "jawRight"), strict=True)])
    sines = np.sin(np.asarray(yaw))
    odd = sines @ c_side / np.sum(sines**2)
    rows[0, 2], rows[2, 0] = odd / 2.0, -odd / 2.0
    return rows.reshape(9, v.size)


def _posed_jaw(v: np.ndarray, pivot: np.ndarray, w: np.ndarray, rot: np.ndarray,
               rows: np.ndarray) -> np.ndarray:
    """The face with the jaw turned by ``rot``: correctives ``rows [9, V * 3]`` added, then
    skinned (what the model's LBS does with the other joints at rest): ``[V, 3]``."""
    rest = v + ((rot - np.eye(3)).ravel() @ rows).reshape(v.shape)
    return rest + _blend(rest, pivot, rot, w)


def _affine_regressor(v: np.ndarray, anchors: np.ndarray, target: np.ndarray,
                      radius: float = 0.03) -> np.ndarray:
    """Weights ``[V]`` on ``anchors`` with ``sum w = 1`` and ``sum w v = target`` that are
    smallest in a norm favouring anchors near the target (Gaussian, ``radius``)."""
    pts = v[anchors]
    k = np.exp(-0.5 * (np.linalg.norm(pts - target, axis=1) / radius) ** 2) + 1e-3
    a = np.vstack([pts.T, np.ones(len(anchors))])  # [4, n]
    b = np.append(target, 1.0)
    local = k * (a.T @ np.linalg.solve((a * k) @ a.T, b))
    out = np.zeros(v.shape[0])
    out[anchors] = local
    return out


# ---------------------------------------------------------------------------------------------
# Regions
# ---------------------------------------------------------------------------------------------


def _in_hull(points: np.ndarray, hull_points: np.ndarray) -> np.ndarray:
    return scipy.spatial.Delaunay(hull_points).find_simplex(points) >= 0


def regions(v: np.ndarray, faces: np.ndarray) -> dict[str, np.ndarray]:
    """The vertex masks (see the module docstring), sorted ``int32`` indices."""
    n = v.shape[0]
    lm = v[list(IBUG68_VERTICES)]
    xy = v[:, :2]
    out = {"face": np.arange(n)}
    # Lips: flood fill from the mouth slit, stopping at the outer lip line.
    line = set(LIP_OUTER_LINE)
    adjacency = topology.vertex_adjacency(faces, n).tocsr()
    seen = set(MOUTH_UPPER_INNER) | set(MOUTH_LOWER_INNER)
    todo = list(seen)
    while todo:
        i = todo.pop()
        for nb in adjacency.indices[adjacency.indptr[i]:adjacency.indptr[i + 1]].tolist():
            if nb not in seen and nb not in line:
                seen.add(nb)
                todo.append(nb)
    out["lips"] = np.array(sorted(seen | line))
    # Eye regions: brow landmarks and the eye landmarks lowered by 8 mm.
    for side, brow, eye in (("right", slice(17, 22), slice(36, 42)),
                            ("left", slice(22, 27), slice(42, 48))):
        hull = np.vstack([lm[brow, :2], lm[eye, :2] - [0.0, 8 * _MM]])
        out[f"{side}_eye_region"] = np.flatnonzero(_in_hull(xy, hull))
    out["eye_region"] = np.union1d(out["left_eye_region"], out["right_eye_region"])
    # Nose: hull of the nose landmarks, widened about the midline, nostril base lowered 2 mm.
    nose = lm[27:36, :2] * [1.25, 1.0]
    nose[4:, 1] -= 2 * _MM
    out["nose"] = np.flatnonzero(_in_hull(xy, nose))
    # Forehead: above the line through the brow landmarks, between the outer brow ends.
    brow = lm[17:27]
    order = np.argsort(brow[:, 0])
    line_y = np.interp(xy[:, 0], brow[order, 0], brow[order, 1])
    inside = (xy[:, 0] >= brow[:, 0].min()) & (xy[:, 0] <= brow[:, 0].max())
    out["forehead"] = np.flatnonzero(inside & (xy[:, 1] > line_y + 1 * _MM))
    return {k: np.asarray(val, np.int32) for k, val in out.items()}


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------


def _quantised(name: str, a: np.ndarray, axis: int) -> dict[str, np.ndarray]:
    """``a`` as float16 unit values and a float32 scale per index of ``axis``."""
    moved = np.moveaxis(a, axis, 0)
    scale = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    unit = moved / np.where(scale > 0, scale, 1.0).reshape((-1,) + (1,) * (moved.ndim - 1))
    return {f"{name}_unit": np.moveaxis(unit, 0, axis).astype(np.float16),
            f"{name}_scale": scale.astype(np.float32)}


def _first_triangles(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    used, first = np.unique(faces.ravel(), return_index=True)
    tri, corner = np.divmod(first[np.searchsorted(used, vertices)], 3)
    bary = np.zeros((len(vertices), 3), np.float32)
    bary[np.arange(len(vertices)), corner] = 1.0
    return tri.astype(np.int32), bary


def build_model(report: dict | None = None) -> dict[str, np.ndarray]:
    """All arrays of the asset (see ``jaxface/assets/PROVENANCE.md``); ``report`` gets the
    measurements."""
    report = {} if report is None else report
    template = load_face_template(0)
    faces = template.faces.astype(np.int64)
    samples, names = identity_samples()
    pca = identity_basis(samples)
    v = pca["mean"]
    basis = load_expression_basis(0)
    shape_of = {name: basis.displacements[basis.index(name)].astype(np.float64)
                for name in basis.names}

    jaw = fit_jaw(v, faces, shape_of["jawOpen"])
    pivot, w = jaw["pivot"], jaw["weights"]
    yaw_left = fit_yaw(v, shape_of["jawLeft"], pivot, w)
    yaw_right = fit_yaw(v, shape_of["jawRight"], pivot, w)
    jaw_rows = pose_correctives(v, pivot, w, float(jaw["angle"]), shape_of, (yaw_left, yaw_right))
    posedirs = np.zeros((9 * (len(PARENTS) - 1), v.size))
    posedirs[9:18] = jaw_rows  # joint 2 is the second non-root joint

    neck = pivot + _NECK_BELOW_JAW
    lm = v[list(IBUG68_VERTICES)]
    eyes = [lm[42:48].mean(0) - [0.0, 0.0, _EYE_DEPTH], lm[36:42].mean(0) - [0.0, 0.0, _EYE_DEPTH]]
    joints = np.array([neck, neck, pivot, *eyes])
    anchors = np.array(sorted(set(IBUG68_VERTICES)))
    j_regressor = np.stack([_affine_regressor(v, anchors, p) for p in joints])
    lbs_weights = np.zeros((v.shape[0], len(PARENTS)))
    lbs_weights[:, 1] = 1.0 - w
    lbs_weights[:, 2] = w

    kept = [n for n in basis.names if n not in EXPRESSION_EXCLUDED]
    exprdirs = np.stack([shape_of[n] for n in kept], axis=-1)  # [V, 3, E]
    eyelids = np.stack([shape_of["eyeBlink_L"], shape_of["eyeBlink_R"]])
    masks = regions(template.vertices.astype(np.float64), faces)  # exactly symmetric
    lm_tri, lm_bary = _first_triangles(np.array(IBUG68_VERTICES), faces)
    mp_tri, mp_bary = _first_triangles(np.arange(v.shape[0]), faces)

    arrays: dict[str, np.ndarray] = {
        "v_template": v.astype(np.float32),
        "faces": faces.astype(np.int32),
        **_quantised("shapedirs", np.moveaxis(pca["components"], 0, -1), axis=2),
        "shape_variance": pca["variance"].astype(np.float32),
        "shape_explained": pca["explained"].astype(np.float32),
        **_quantised("exprdirs", exprdirs, axis=2),
        "expression_names": np.array(kept),
        **_quantised("eyelids", eyelids, axis=0),
        **_quantised("posedirs", posedirs, axis=0),
        "j_regressor": j_regressor.astype(np.float32),
        "parents": np.array(PARENTS, np.int32),
        "joint_names": np.array(JOINT_NAMES),
        "lbs_weights": lbs_weights.astype(np.float32),
        "landmarks68_faces": lm_tri,
        "landmarks68_bary": lm_bary,
        "mediapipe_faces": mp_tri,
        "mediapipe_bary": mp_bary,
        "mediapipe_indices": np.arange(v.shape[0], dtype=np.int32),
        **{f"mask_{k}": val for k, val in masks.items()},
        "face_mask_faces": faces.astype(np.int32),
        "jaw_pivot": pivot.astype(np.float32),
        "jaw_angles": np.array([jaw["angle"], yaw_left, yaw_right], np.float32),
        "identity_names": np.array(names),
        "credit": np.array(CREDIT),
    }
    def rms_max(x: np.ndarray) -> tuple[float, float]:
        n = np.linalg.norm(x, axis=1)
        return 1e3 * float(np.sqrt(np.mean(n**2))), 1e3 * float(n.max())

    jaw_check = {}
    for name, axis, angle in (("jawOpen", 0, float(jaw["angle"])), ("jawLeft", 1, yaw_left),
                              ("jawRight", 1, yaw_right)):
        for frac in (0.5, 1.0):
            rot = _rotation(axis, frac * angle)
            skin = _blend(v, pivot, rot, w)
            corrected = _posed_jaw(v, pivot, w, rot, jaw_rows) - v
            target = frac * shape_of[name]
            jaw_check[name, frac] = (rms_max(target), rms_max(skin - target),
                                     rms_max(corrected - target))
    report.update(
        identities=len(names),
        kept=pca["components"].shape[0],
        explained={k: float(pca["explained"][k - 1]) for k in (1, 5, 10, 20, 50)},
        std_mm=1e3 * np.sqrt(pca["variance"][:3] / v.shape[0]),
        template_rms_mm=1e3 * np.sqrt(np.mean(np.sum((v - template.vertices) ** 2, axis=1))),
        pivot_mm=1e3 * pivot,
        angles_deg=np.degrees([jaw["angle"], yaw_left, yaw_right]),
        jaw_check=jaw_check,
        masks={k: int(val.size) for k, val in masks.items()},
        expressions=len(kept),
    )
    return arrays


def _print_report(r: dict) -> None:
    print(f"identities: {r['identities']}; PCA keeps {r['kept']} components "
          f"(>= {100 * VARIANCE_KEPT:.1f} % of the variance); cumulative explained "
          + ", ".join(f"{k}: {100 * e:.2f} %" for k, e in r["explained"].items())
          + f"; first standard deviations (RMS per vertex) {np.round(r['std_mm'], 2)} mm; "
          f"mean face {r['template_rms_mm']:.2f} mm RMS from the template", file=sys.stderr)
    print(f"jaw pivot (x, y, z) {np.round(r['pivot_mm'], 1)} mm; jawOpen = {r['angles_deg'][0]:.2f}"
          f" deg, jawLeft = {r['angles_deg'][1]:.2f} deg, jawRight = {r['angles_deg'][2]:.2f} deg "
          "of yaw; RMS / max in mm of the shape, then of what skinning alone and skinning with "
          "the correctives miss of it, at the fitted angle and at half of it (vs half the "
          "shape):", file=sys.stderr)
    for (name, frac), (shape, skin, corrected) in r["jaw_check"].items():
        print(f"  {name} x{frac}: shape {shape[0]:.2f} / {shape[1]:.2f}, skinning "
              f"{skin[0]:.2f} / {skin[1]:.2f}, with correctives {corrected[0]:.2f} / "
              f"{corrected[1]:.2f}", file=sys.stderr)
    print(f"expressions: {r['expressions']}; mask sizes {r['masks']}", file=sys.stderr)


def render_sheet(arrays: dict[str, np.ndarray], path: str) -> None:
    """Front views of the regions, the jaw's skinning weights, the jaw opening (skinning only,
    the model with its correctives, and ARKit's ``jawOpen``), the closed eyelids and the first
    identity components, as one PNG."""
    import jax.numpy as jnp

    from jaxface.morphable.forward import FaceParams, morph
    from jaxface.morphable.open_model import model_from_arrays
    from jaxface.viz.render import contact_sheet, render_mesh, save_png

    model = model_from_arrays(arrays)
    v, f = model.v_template.astype(np.float64), model.faces
    zero = FaceParams.zeros(model)
    angle = float(arrays["jaw_angles"][0])

    def posed(**changes) -> np.ndarray:
        return np.asarray(morph(model, zero.replace(**changes)).vertices[0], np.float64)

    tiles, labels = [], []
    for name in ("lips", "eye_region", "nose", "forehead"):
        s = np.zeros(v.shape[0])
        s[model.masks[name]] = 1.0
        tiles.append(render_mesh(v, f, scalars=s, vmin=0, vmax=1, cmap="viridis"))
        labels.append(f"mask {name}")
    w = model.lbs_weights[:, 2].astype(np.float64)
    tiles.append(render_mesh(v, f, scalars=w, vmin=0, vmax=1, cmap="viridis", yaw=40))
    labels.append("jaw skinning weights")
    skinned = v + _blend(v, arrays["jaw_pivot"].astype(np.float64), _rotation(0, angle), w)
    tiles.append(render_mesh(skinned, f, yaw=30))
    labels.append(f"jaw {np.degrees(angle):.1f} deg, skinning")
    tiles.append(render_mesh(posed(jaw=jnp.array([[angle, 0.0, 0.0]])), f, yaw=30))
    labels.append("same, with correctives")
    basis = load_expression_basis(0)
    tiles.append(render_mesh(v + basis.displacements[basis.index("jawOpen")], f, yaw=30))
    labels.append("ARKit jawOpen")
    tiles.append(render_mesh(posed(eyelids=jnp.ones((1, 2))), f))
    labels.append("eyelids 1, 1")
    for k in range(3):
        tiles.append(render_mesh(v + 3.0 * model.shapedirs[:, :, k], f, yaw=30))
        labels.append(f"shape {k} at +3 sd")
    save_png(path, contact_sheet(tiles, 4, labels=labels))


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, help="destination .npz")
    parser.add_argument("--sheet", help="destination PNG of the check sheet")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    report: dict = {}
    arrays = build_model(report)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(args.out, buffer.getvalue())
    elapsed = time.perf_counter() - start
    _print_report(report)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes) in {elapsed:.1f} s",
          file=sys.stderr)
    if args.sheet:
        render_sheet(arrays, args.sheet)
        print(f"wrote {args.sheet}", file=sys.stderr)


if __name__ == "__main__":
    main()
