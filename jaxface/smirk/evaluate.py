"""Evaluation of image -> 3D face: held-out renders and real frames, encoders vs landmark fitting.

* **Held-out renders** (ground truth known; their own seed): mean per-vertex error of the
  unposed meshes (head pose removed, jaw kept), mm; RMS error of the expression coefficients, of
  the jaw opening (degrees) and of the eyelids.
* **Real frames** (other people than in training): the 468 projected landmarks against
  MediaPipe's, mean distance over the inter-ocular distance (outer eye corners, MediaPipe points
  33 and 263), in percent.
* **Expression fidelity** (an open stand-in for the official emotion network): MediaPipe's 52
  blendshape scores of each real frame against those of the reconstruction's grey render at the
  same place in the frame, mean absolute difference over all scores and over the mouth, jaw and
  eye-blink scores (MediaPipe reads those on untextured renders; brows and cheeks barely).
* **Baseline**: the same model fitted to the 2D landmarks alone (:mod:`jaxface.smirk.fitting`):
  to the renders' true landmarks and to MediaPipe's on the real frames.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.photo import NoFaceError, detect_face
from jaxface.morphable.forward import FaceParams, morph
from jaxface.morphable.model import MorphableModel
from jaxface.smirk.crop import crop_matrix, transform_points, warp_image
from jaxface.smirk.fitting import fit_landmarks
from jaxface.smirk.frames import FaceFrames
from jaxface.smirk.landmarks import pixels_to_screen, project_points, screen_to_pixels
from jaxface.smirk.reconstruct import TEST_CROP_SCALE, Reconstructor
from jaxface.smirk.synthetic import SyntheticConfig, render_synthetic

__all__ = ["FIDELITY_SCORES", "EvaluationConfig", "evaluate"]

#: MediaPipe points of the outer eye corners (the inter-ocular distance).
EYE_CORNERS = (33, 263)
#: The blendshape scores MediaPipe reads on untextured renders (mouth, jaw, blinks).
FIDELITY_SCORES = tuple(n for n in ARKIT_NAMES
                        if n.startswith(("mouth", "jaw", "eyeBlink")))


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """Sizes of the evaluation (``config.evaluation`` of an image-to-3D config)."""

    num_synthetic: int = 256
    seed: int = 1234
    fit_steps: int = 300
    fit_learning_rate: float = 0.02
    batch_size: int = 32


def _unposed(model, params: FaceParams) -> jax.Array:
    return morph(model, params.replace(pose=jnp.zeros_like(params.pose))).vertices


def _parameter_errors(model, pred: FaceParams, truth: FaceParams) -> dict[str, float]:
    v = np.asarray(_unposed(model, pred)) - np.asarray(_unposed(model, truth))
    return {
        "vertex_error_mm": float(1000.0 * np.linalg.norm(v, axis=-1).mean()),
        "expression_rmse": float(np.sqrt(np.mean((np.asarray(pred.expression)
                                                  - np.asarray(truth.expression)) ** 2))),
        "jaw_open_error_deg": float(np.degrees(np.mean(np.abs(
            np.asarray(pred.jaw)[:, 0] - np.asarray(truth.jaw)[:, 0])))),
        "eyelid_error": float(np.mean(np.abs(np.asarray(pred.eyelids)
                                             - np.asarray(truth.eyelids)))),
    }


def _batched(fn, n: int, batch: int):
    parts = [fn(lo, min(n, lo + batch)) for lo in range(0, n, batch)]
    return jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs]), *parts)


def synthetic_table(recon: Reconstructor, model: MorphableModel, syn_cfg: SyntheticConfig,
                    cfg: EvaluationConfig, *,
                    baseline: bool = True) -> dict[str, dict[str, float]]:
    """Errors on held-out renders: ``{"encoders": {...}, "landmark_fit": {...}}`` (no
    ``landmark_fit`` without ``baseline``)."""
    size = recon.image_size
    n = cfg.num_synthetic
    draw = jax.jit(lambda key: render_synthetic(key, model, syn_cfg, cfg.batch_size, size))
    batches = [draw(jax.random.fold_in(jax.random.key(cfg.seed), i))
               for i in range(-(-n // cfg.batch_size))]
    syn = jax.tree.map(lambda *xs: np.concatenate([np.asarray(x) for x in xs])[:n], *batches)
    eye = np.tile(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32), (n, 1, 1))
    pred = recon.from_crops(syn.image, eye)
    if not baseline:
        return {"encoders": _parameter_errors(model, pred.params, syn.params)}
    fit = _batched(lambda lo, hi: fit_landmarks(model, syn.landmarks[lo:hi], steps=cfg.fit_steps,
                                                learning_rate=cfg.fit_learning_rate)[0],
                   n, cfg.batch_size)
    return {"encoders": _parameter_errors(model, pred.params, syn.params),
            "landmark_fit": _parameter_errors(model, fit, syn.params)}


def _render_scores(recon: Reconstructor, frames: FaceFrames, params: FaceParams,
                   cam: np.ndarray, matrices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's scores of each face rendered grey into its own context crop.

    Returns:
      ``(scores float32 [N, 52], found bool [N])``.
    """
    ctx = frames.images.shape[1]
    vertices = np.asarray(recon.morph(params).vertices)
    scores = np.zeros((len(frames), len(ARKIT_NAMES)), np.float32)
    found = np.zeros(len(frames), bool)
    for i in range(len(frames)):
        r = recon.render_crop(vertices[i:i + 1], cam[i:i + 1])
        inv = np.linalg.inv(np.vstack([matrices[i], [0, 0, 1]]))[:2]
        layer = np.concatenate([np.asarray(r.image[0]), np.asarray(r.mask[0])[..., None]], -1)
        back = np.asarray(warp_image(layer, inv, ctx))
        grey = np.full((ctx, ctx, 3), 0.5, np.float32)
        out = back[..., 3:] * back[..., :3] + (1 - back[..., 3:]) * grey
        try:
            det = detect_face(np.clip(np.rint(255 * out), 0, 255).astype(np.uint8))
        except NoFaceError:
            continue
        scores[i], found[i] = det.scores, True
    return scores, found


def real_table(recon: Reconstructor, model: MorphableModel, frames: FaceFrames,
               cfg: EvaluationConfig, *, baseline: bool = True) -> dict[str, dict[str, float]]:
    """Landmark error and expression fidelity on real frames, encoders vs landmark fitting
    (the encoders alone without ``baseline``)."""
    size = recon.image_size
    pts = frames.landmarks
    matrices = np.asarray(crop_matrix(pts, size, TEST_CROP_SCALE), np.float32)
    crops = np.asarray(jax.vmap(warp_image, in_axes=(0, 0, None))(frames.images, matrices, size)
                       ) / 255.0
    target_px = np.asarray(transform_points(matrices, pts))  # crop pixels
    rows = np.asarray(model.mediapipe_indices)
    iod = np.linalg.norm(target_px[:, EYE_CORNERS[0]] - target_px[:, EYE_CORNERS[1]], axis=-1)
    pred = recon.from_crops(crops, matrices)
    methods = [("encoders", pred.params, pred.cam)]
    if baseline:
        fit, fit_cam, _ = fit_landmarks(model, pixels_to_screen(target_px[:, rows], size),
                                        steps=cfg.fit_steps, learning_rate=cfg.fit_learning_rate)
        methods.append(("landmark_fit", jax.tree.map(np.asarray, fit), np.asarray(fit_cam)))
    select = np.array([ARKIT_NAMES.index(n) for n in FIDELITY_SCORES])
    table = {}
    for name, params, cam in methods:
        out = recon.morph(params)
        px = np.asarray(screen_to_pixels(project_points(out.mediapipe, jnp.asarray(cam)), size))
        err = np.linalg.norm(px - target_px[:, rows], axis=-1).mean(-1) / iod
        scores, found = _render_scores(recon, frames, params, cam, matrices)
        diff = np.abs(scores[found] - frames.scores[found])
        table[name] = {
            "landmark_error_iod_pct": float(100.0 * err.mean()),
            "blendshape_mae": float(diff.mean()) if found.any() else float("nan"),
            "blendshape_mae_mouth_jaw_blink": (float(diff[:, select].mean()) if found.any()
                                               else float("nan")),
            "renders_with_a_face": int(found.sum()),
        }
    return table


def evaluate(recon: Reconstructor, model: MorphableModel, syn_cfg: SyntheticConfig,
             frames: FaceFrames, cfg: EvaluationConfig, *,
             baseline: bool = True) -> dict[str, object]:
    """Both tables (see the module docstring) and their sizes; ``baseline=False`` leaves the
    landmark fit out (e.g. for a second set of encoders)."""
    return {
        "synthetic": synthetic_table(recon, model, syn_cfg, cfg, baseline=baseline),
        "real": real_table(recon, model, frames, cfg, baseline=baseline),
        "num_synthetic": cfg.num_synthetic,
        "num_real_frames": len(frames),
        "real_frames": sorted({n.split("#")[0] for n in frames.names}),
    }
