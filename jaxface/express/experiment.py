"""The 4D expression experiment: train the model and its baseline, then the paper's evaluation.

``run_experiment(config, workdir)`` is the entry point of ``experiments/express/main.py``. It
writes into ``workdir``:

* ``proposed/`` and ``baseline/``: the two runs (checkpoints, metrics, ``config.json``,
  ``template.npz``, ``express.json``; the baseline also ``basis.npz``), loadable by
  :func:`jaxface.express.inference.load_expression_model`; rerunning resumes them;
* ``classifier_<seed>/``: the expression classifiers;
* ``results.json`` and ``results.md``: Table 2 (per-vertex error per expression), Table 3
  (classifier precision/recall/F1 on real, proposed and baseline sequences), the per-frame
  error curve, the intensity-following check and the timings;
* ``per_frame_error.png``, ``intensity_following.png``, ``interpolation.png`` and
  ``error_maps.png``.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from jaxface.eval.errors import per_vertex_errors_mm
from jaxface.eval.plots import plot_curves
from jaxface.express.data import ExpressionData, load_expression_data
from jaxface.express.evaluate import (
    FrameEncoder,
    classification_scores,
    error_table,
    intensity_following,
    interpolate_codes,
    per_frame_errors,
    train_classifier,
)
from jaxface.express.model import (
    TrainedModel,
    displacement_moments,
    fit_motion_basis,
    write_run_info,
)
from jaxface.express.train import sequence_errors_mm, train_expression_model
from jaxface.files import write_atomic, write_json
from jaxface.models import SpiralTopology, build_topology
from jaxface.viz.render import contact_sheet, fit_camera, render_mesh, save_png

__all__ = ["format_results", "run_experiment"]

#: Paper figures (Potamias et al., Tables 2 and 3) shown beside ours.
PAPER_TABLE2 = {
    "baseline": {"happy": 0.49, "angry": 0.37, "sad": 0.37, "surprise": 0.48, "fear": 0.43,
                 "disgust": 0.45, "total": 0.44},
    "proposed": {"happy": 0.37, "angry": 0.35, "sad": 0.36, "surprise": 0.43, "fear": 0.42,
                 "disgust": 0.42, "total": 0.39},
}
PAPER_TABLE3_TOTAL = {"baseline": (0.58, 0.57, 0.57), "proposed": (0.69, 0.69, 0.68),
                      "real": (0.70, 0.70, 0.68)}


@dataclasses.dataclass
class _Runs:
    """The two trained models of an experiment and what they were built on."""

    models: dict[str, TrainedModel]
    info: dict[str, dict[str, Any]]
    topology: SpiralTopology
    basis: tuple[np.ndarray, np.ndarray]


def _train_models(config, workdir: str, data: ExpressionData) -> _Runs:
    topology = build_topology(data.view.vertices, data.view.faces, config.topology)
    basis = fit_motion_basis(data.train, config.baseline.latent_size, seed=config.seed)
    moments = displacement_moments(data.train) if config.model.get("standardize") else None
    runs = _Runs({}, {}, topology, basis)
    for name, cfg, kwargs in (("proposed", config.model, {"topology": topology,
                                                          "moments": moments}),
                              ("baseline", config.baseline, {"basis": basis})):
        folder = os.path.join(workdir, name)
        os.makedirs(folder, exist_ok=True)
        write_run_info(folder, data.train.label_names, data.stats, data.train.num_frames,
                       basis=kwargs.get("basis"), moments=kwargs.get("moments"),
                       template=(data.view.vertices, data.view.faces))
        start = time.perf_counter()
        model, info = train_expression_model(config, cfg, folder, data, desc=name, **kwargs)
        info["wall_s"] = time.perf_counter() - start
        runs.models[name], runs.info[name] = model, info
    return runs


def _classifier_table(config, workdir: str, data: ExpressionData,
                      generated: dict[str, np.ndarray],
                      basis: tuple[np.ndarray, np.ndarray]) -> dict[str, dict]:
    c = config.classifier
    if len(basis[1]) == c.num_components:  # the baseline's basis: the same PCA, already fitted
        encoder = FrameEncoder(basis[0], basis[1], c.num_frames)
    else:
        encoder = FrameEncoder.fit(data.train, c.num_components, c.num_frames, seed=config.seed)
    train_codes = encoder(data.train.displacements, data.train.lengths)
    test = data.test
    codes = {name: encoder(disp, test.lengths)
             for name, disp in {"real": test.displacements, **generated}.items()}
    preds: dict[str, list[np.ndarray]] = {k: [] for k in codes}
    for seed in c.seeds:
        predict = train_classifier(config, train_codes, data.train.labels,
                                   data.train.num_classes,
                                   os.path.join(workdir, f"classifier_{seed}"), int(seed))
        for name, x in codes.items():
            preds[name].append(predict(x))
    out = {}
    for name, runs in preds.items():
        scores = [classification_scores(test.labels, p, test.label_names).rows() for p in runs]
        out[name] = {row: [float(np.mean([s[row][i] for s in scores])) for i in range(3)]
                     for row in scores[0]}
        out[name]["accuracy"] = float(np.mean([np.mean(p == test.labels) for p in runs]))
    return out


def _error_maps(path: str, data: ExpressionData, generated: dict[str, np.ndarray],
                errors: dict[str, np.ndarray], count: int) -> None:
    test = data.test
    faces = data.view.faces
    chosen = [int(np.flatnonzero(test.labels == k)[0]) for k in range(test.num_classes)
              if np.any(test.labels == k)][:count]
    tiles, labels = [], []
    for i in chosen:
        apex = int(test.phases[i, 1] + test.phases[i, 2]) // 2
        truth = test.neutrals[i] + test.displacements[i, apex]
        camera = fit_camera(truth, 200)
        tiles.append(render_mesh(truth, faces, camera=camera, image_size=200))
        labels.append(f"{test.label_names[test.labels[i]]} {test.subjects[i]} real")
        for name, disp in generated.items():
            mesh = test.neutrals[i] + disp[i, apex]
            tiles.append(render_mesh(mesh, faces, camera=camera, image_size=200))
            labels.append(f"{name} ({np.nanmean(errors[name][i]):.2f} mm)")
            err = per_vertex_errors_mm(mesh, truth)
            tiles.append(render_mesh(mesh, faces, camera=camera, image_size=200, scalars=err,
                                     vmin=0.0, vmax=3.0, colorbar=True,
                                     colorbar_label="mm"))
            labels.append(f"{name} error at apex")
    save_png(path, contact_sheet(tiles, 1 + 2 * len(generated), labels=labels))


def _interpolation_sheet(path: str, model: TrainedModel, data: ExpressionData, steps: int,
                         pairs: list[tuple[int, int]]) -> None:
    neutral = data.test.neutrals[0]
    faces = data.view.faces
    camera = fit_camera(neutral, 160)
    tiles, labels = [], []
    names = data.train.label_names
    for a, b in pairs:
        disp = interpolate_codes(model, len(names), a, b, steps, data.train.num_frames)
        for j, d in enumerate(disp):
            tiles.append(render_mesh(neutral + d, faces, camera=camera, image_size=160))
            alpha = j / max(steps - 1, 1)
            labels.append(f"{names[a]}->{names[b]} {alpha:.2f}")
    save_png(path, contact_sheet(tiles, steps, labels=labels))


def run_experiment(config, workdir: str) -> dict[str, Any]:
    """Trains the proposed model and the baseline, evaluates both; see the module docstring.

    Returns:
      The results written to ``results.json``.
    """
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    start = time.perf_counter()
    data = load_expression_data(config)
    if data.test is None:
        raise ValueError("the evaluation needs test identities: set test_fraction > 0")
    runs = _train_models(config, workdir, data)
    test = data.test
    generated = {name: model.generate(test.signal) * test.mask[..., None, None]
                 for name, model in runs.models.items()}
    errors = {name: sequence_errors_mm(g, test) for name, g in generated.items()}
    # The reference of no motion at all: every frame the subject's neutral face.
    errors["neutral"] = sequence_errors_mm(np.zeros_like(test.displacements), test)
    curves = {name: per_frame_errors(e) for name, e in errors.items()}
    ev = config.evaluation
    following = intensity_following(runs.models["proposed"], test.num_classes, ev.curve_frames,
                                    tuple(ev.curve_intensities), test.label_names)
    results: dict[str, Any] = {
        "dataset": {"name": config.dataset, "config": config.dataset_config,
                    "path": data.view.path, "train_sequences": len(data.train),
                    "validation_sequences": 0 if data.validation is None
                    else len(data.validation),
                    "test_sequences": len(test),
                    "test_subjects": sorted(set(test.subjects.tolist())),
                    "frames": data.train.num_frames, "vertices": int(test.neutrals.shape[1])},
        "level_sizes": list(runs.topology.level_sizes),
        "spiral_lengths": list(runs.topology.spiral_lengths),
        "table2": {name: error_table(e, test.labels, test.label_names)
                   for name, e in errors.items()},
        "per_frame": {name: {"mean_mm": np.nan_to_num(m, nan=-1).tolist(),
                             "count": c.tolist()} for name, (m, c) in curves.items()},
        "training": runs.info,
        "intensity_following": following,
    }
    results["table3"] = _classifier_table(config, workdir, data, generated, runs.basis)
    _plots(workdir, results, curves, following, test.label_names, ev)
    _error_maps(os.path.join(workdir, "error_maps.png"), data, generated, errors,
                ev.num_heatmaps)
    names = test.label_names
    pairs = [(0, 1), (names.index("happy"), names.index("surprise"))] if {
        "happy", "surprise"} <= set(names) else [(0, min(1, len(names) - 1))]
    _interpolation_sheet(os.path.join(workdir, "interpolation.png"), runs.models["proposed"], data,
                         ev.interpolation_steps, pairs)
    results["wall_s"] = time.perf_counter() - start
    write_json(os.path.join(workdir, "results.json"), results)
    write_atomic(os.path.join(workdir, "results.md"), format_results(results).encode())
    return results


def _plots(workdir, results, curves, following, label_names, ev) -> None:
    frames = {name: (np.arange(len(m)), m) for name, (m, _) in curves.items()}
    plot_curves({"test sequences": frames}, os.path.join(workdir, "per_frame_error.png"),
                xlabel="frame", ylabel="mean per-vertex error (mm)", cols=1)
    panels = {}
    for name in label_names:
        f = following[name]
        t = np.arange(len(f["curve"]))
        panel = {}
        for s, r, mag in zip(ev.curve_intensities, f["r"], f["magnitude_mm"], strict=True):
            panel[f"s={s:g} (r={r:.2f})"] = (t, mag)
        peak = max(max(m) for m in f["magnitude_mm"]) or 1.0
        panel["requested curve (scaled)"] = (t, np.asarray(f["curve"]) * peak)
        panels[name] = panel
    plot_curves(panels, os.path.join(workdir, "intensity_following.png"), xlabel="frame",
                ylabel="mean displacement (mm)", styles={"requested curve (scaled)": "k--"})


def format_results(results: dict[str, Any]) -> str:
    """The Markdown tables of a results dict (ours beside the paper's figures)."""
    t2 = results["table2"]
    names = [k for k in t2["proposed"] if k != "total"]
    lines = ["## Per-vertex error (mm), unseen identities (Table 2)", "",
             "| model | " + " | ".join(names) + " | total |",
             "|---" * (len(names) + 2) + "|"]
    lines.append("| no motion (the neutral face; ours) | " + " | ".join(
        f"{t2['neutral'][n]:.3f}" for n in names) + f" | {t2['neutral']['total']:.3f} |")
    for model in ("baseline", "proposed"):
        lines.append(f"| {model} (ours) | " + " | ".join(
            f"{t2[model][n]:.3f}" for n in names) + f" | {t2[model]['total']:.3f} |")
        paper = PAPER_TABLE2[model]
        lines.append(f"| {model} (paper, 4DFAB) | " + " | ".join(
            f"{paper[n]:.2f}" if n in paper else "–" for n in names)
            + f" | {paper['total']:.2f} |")
    t3 = results["table3"]
    lines += ["", "## Expression classifier: precision / recall / F1 (Table 3)", "",
              "| expression | " + " | ".join(f"{k} P / R / F1" for k in t3) + " |",
              "|---" * (len(t3) + 1) + "|"]
    for row in [*names, "total"]:
        lines.append(f"| {row} | " + " | ".join(
            "{:.2f} / {:.2f} / {:.2f}".format(*t3[k][row]) for k in t3) + " |")
    lines.append("| total (paper) | " + " | ".join(
        "{:.2f} / {:.2f} / {:.2f}".format(*PAPER_TABLE3_TOTAL[k]) if k in PAPER_TABLE3_TOTAL
        else "–" for k in t3) + " |")
    lines.append("| accuracy | " + " | ".join(f"{t3[k]['accuracy']:.3f}" for k in t3) + " |")
    f = results["intensity_following"]
    lines += ["", "## Intensity following (Pearson r of displacement magnitude and curve; "
              "peak mm)", "", "| expression | r per intensity | peak mm per intensity |",
              "|---|---|---|"]
    for name, row in f.items():
        lines.append(f"| {name} | " + ", ".join(f"{r:.3f}" for r in row["r"]) + " | "
                     + ", ".join(f"{p:.2f}" for p in row["peak_mm"]) + " |")
    tr = results["training"]
    lines += ["", "## Training", "", "| model | steps | epochs | wall s | stopped early | "
              "parameters |", "|---|---|---|---|---|---|"]
    for model, info in tr.items():
        lines.append(f"| {model} | {info.get('steps')} | {info.get('epochs', '–')} | "
                     f"{info.get('wall_s', 0):.0f} | {info.get('stopped_early', False)} | "
                     f"{info.get('num_params')} |")
    return "\n".join(lines) + "\n"
