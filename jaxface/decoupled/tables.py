"""The paper's Table 1 (with the ablations), Table 2 and a contact sheet, in one call.

:func:`run_tables` on a config's protocol:

1. trains the GAN and its ablations (:data:`VARIANTS`; one
   :class:`~jaxface.decoupled.train.Trainer`, so one compilation: they differ only in loss
   weights) and the baselines
   (:data:`jaxface.decoupled.baselines.BASELINES`);
2. trains the identity and expression embedding networks of the decoupling metric on the real
   training meshes and picks their thresholds on validation pairs of the test part;
3. Table 1: decoupling (identity, expression), diversity (global, identity, expression) and
   specificity of every model, plus the training data's diversity and the real test meshes'
   decoupling rates (:mod:`jaxface.decoupled.metrics`);
4. Table 2: RMSE of the full meshes after fitting the codes to the 68 landmarks of the test
   part's peak frames, for every regularisation weight (:mod:`jaxface.decoupled.fitting`);
5. contact sheets of the full model: rows are identity codes, columns expression codes (grey,
   and coloured by the distance each vertex moved from the row's first column).

Everything is written into ``workdir`` (``table1.md/.json``, ``table2.md/.json``,
``contact_sheet.png``, ``contact_sheet_change.png``, ``tables.json``); each model trains in its
own sub-folder and resumes, and each finished Table 1 row and Table 2 are kept
(``rows/<name>.json``, ``rows/table2.json``), so re-running continues an interrupted run.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any

import jax
import numpy as np

from jaxface.decoupled.baselines import BASELINES
from jaxface.decoupled.codes import CodeModel, gan_code_model
from jaxface.decoupled.data import FaceData, load_faces, strength_labels
from jaxface.decoupled.embedding import (
    Embedder,
    NormalRenderer,
    choose_threshold,
    pair_distances,
    sample_pairs,
    train_embedding,
)
from jaxface.decoupled.fitting import PointSelection, fit_codes, rmse_mm
from jaxface.decoupled.metrics import (
    data_decoupling,
    data_diversity,
    decoupling,
    diversity,
    specificity,
)
from jaxface.decoupled.sheet import label_grid
from jaxface.decoupled.train import GANState, Trainer
from jaxface.files import write_atomic, write_json
from jaxface.train.workdir import LOCK_FILE
from jaxface.viz.render import save_png

__all__ = [
    "BASELINE_LABELS",
    "VARIANTS",
    "run_full_model",
    "run_tables",
    "table1_markdown",
    "table2_markdown",
    "variant_config",
]

#: GAN variant -> (Table 1 label, overrides of ``config.loss``). ``full`` is the paper's model.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "full": ("Ours", {}),
    "no_laplacian": ("w/o mesh reg.", {"laplacian": 0.0}),
    "identity_only": ("w/o exp. class.", {"classify_expression": False}),
    "expression_only": ("w/o id. class.", {"classify_identity": False}),
    "no_feature_loss": ("w/o feat. loss", {"feature_identity": 0.0, "feature_expression": 0.0}),
}

#: Baseline -> Table 1 label.
BASELINE_LABELS = {
    "linear_3dmm": "3DMM (PCA identity + PCA expression)",
    "autoencoder": "Neural3DMM AE (PCA identity + spiral AE)",
}

_COLUMNS = ("dec_identity", "dec_expression", "div_global", "div_identity", "div_expression",
            "specificity")


def variant_config(config, name: str):
    """A copy of ``config`` with the loss overrides of GAN variant ``name``.

    Raises:
      ValueError: an unknown variant.
    """
    if name not in VARIANTS:
        raise ValueError(f"unknown GAN variant {name!r}; choose from {', '.join(VARIANTS)}")
    out = config.copy_and_resolve_references()
    for key, value in VARIANTS[name][1].items():
        out.loss[key] = value
    return out


def _embedders(config, workdir: str, data: FaceData) -> tuple[dict[str, Embedder], dict]:
    """Trains both embedding networks and picks their thresholds; returns them and their
    validation scores."""
    e = config.embedding
    renderer = NormalRenderer.for_template(data.reference, data.view.faces, e.image_size)
    rng = np.random.default_rng([int(config.seed), 5])
    train = data.train
    rows = np.arange(len(train))
    if e.get("max_images") and len(rows) > e.max_images:
        rows = np.sort(rng.choice(rows, size=int(e.max_images), replace=False))
    images = renderer(train.vertices[rows])
    test = data.test
    pool = np.arange(len(test))
    if e.get("validation_images") and len(pool) > e.validation_images:
        pool = np.sort(rng.choice(pool, size=int(e.validation_images), replace=False))
    val_images = renderer(test.vertices[pool])
    labels = {
        "identity": (train.subject[rows], test.subject[pool]),
        "expression": (strength_labels(train, config.labels.strong, config.labels.weak)[rows],
                       strength_labels(test, config.labels.strong, config.labels.weak)[pool]),
    }
    out, info = {}, {}
    for k, (factor, (train_labels, val_labels)) in enumerate(labels.items()):
        embedder, run = train_embedding(config, os.path.join(workdir, f"embedding_{factor}"),
                                        renderer, images, train_labels, stream=k)
        val = embedder.embed_images(val_images)
        positive, negative = sample_pairs(val_labels, rng, int(e.validation_pairs))
        threshold = choose_threshold(pair_distances(val, positive), pair_distances(val, negative),
                                     float(e.max_far))
        out[factor] = Embedder(embedder.model, embedder.params, renderer, threshold.value,
                               embedder.batch_size)
        info[factor] = {"threshold": threshold.value, "accuracy": threshold.accuracy,
                        "far": threshold.far, "tpr": threshold.tpr,
                        "train_images": int(np.sum(train_labels >= 0)), "train": run,
                        "real_test_rate": data_decoupling(val, val_labels, out[factor].same, rng,
                                                          int(e.validation_pairs))}
    return out, info


def _model_row(config, model: CodeModel, embedders: dict[str, Embedder], data: FaceData,
               key: jax.Array) -> dict[str, float]:
    m = config.metrics
    k_div, k_spec, k_id, k_exp = jax.random.split(key, 4)
    div = diversity(model, k_div, int(m.diversity_pairs), config.eval_batch_size)
    samples = model.meshes(*model.sample_codes(k_spec, int(m.specificity_samples)),
                           batch_size=config.eval_batch_size)
    row = {"div_global": div["global"], "div_identity": div["identity"],
           "div_expression": div["expression"],
           "specificity": specificity(samples, data.train.vertices)}
    for factor, k in (("identity", k_id), ("expression", k_exp)):
        emb = embedders[factor]
        row[f"dec_{factor}"] = decoupling(model, emb.embed, emb.same, factor, k,
                                          int(m.decoupling_faces),
                                          int(m.decoupling_variations),
                                          config.eval_batch_size)
    return row


def _write_sheets(config, model: CodeModel, state: GANState, data: FaceData,
                  folder: str) -> None:
    """``contact_sheet.png`` and ``contact_sheet_change.png`` of a GAN into ``folder``."""
    t = config.tables
    for name, change in (("contact_sheet.png", False), ("contact_sheet_change.png", True)):
        sheet = label_grid(model, state.identity_codes, state.expression_codes, data.view.faces,
                           data.identity_names, data.expression_names,
                           identities=t.sheet_identities, expressions=t.sheet_expressions,
                           size=t.render_size, change=change)
        save_png(os.path.join(folder, name), sheet)


def _cached(path: str, compute) -> dict:
    if os.path.isfile(path):
        with open(path) as f:
            return json.load(f)
    value = compute()
    write_json(path, value)
    return value


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "—"
    return f"{100 * value:.1f}" if percent else f"{value:.2f}"


def table1_markdown(rows: list[tuple[str, dict[str, float | None]]]) -> str:
    """Table 1 as markdown: decoupling in %, diversity and specificity in mm."""
    lines = ["# Table 1: decoupling (%), diversity and specificity (mm)", "",
             "| | Dec-Id (%) | Dec-Exp (%) | Div (mm) | Div-Id (mm) | Div-Exp (mm) | Sp. (mm) |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows:
        cells = [_fmt(r.get(c), c.startswith("dec_")) for c in _COLUMNS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Training data: diversity of the training meshes by their labels; its Dec "
              "columns are the rates at which the embedding networks judge real test-part "
              "pairs of one subject (one expression class) \"the same\"."]
    return "\n".join(lines) + "\n"


def table2_markdown(weights, rows: list[tuple[str, list[dict[str, float]]]]) -> str:
    """Table 2 as markdown: full-mesh RMSE (mm, mean ± std over targets) per weight."""
    head = "| | " + " | ".join(f"λ = {w:g}" for w in weights) + " |"
    lines = ["# Table 2: sparse landmark fitting, full-mesh RMSE (mm), mean ± std", "", head,
             "|---|" + "---|" * len(weights)]
    for label, cells in rows:
        lines.append(f"| {label} | " + " | ".join(
            f"{c['mean']:.2f} ± {c['std']:.2f}" for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _fit_rows(config, models: dict[str, CodeModel], data: FaceData, key) -> dict[str, list]:
    test = data.test.subset(data.test.peak)
    selection = PointSelection.landmarks(data.view.landmarks, data.view.faces)
    targets = selection(test.vertices)
    out = {}
    for name, model in models.items():
        cells = []
        for w in config.fitting.weights:
            fitted = fit_codes(model, targets, selection, float(w),
                               steps=int(config.fitting.steps),
                               learning_rate=float(config.fitting.learning_rate), key=key)
            err = rmse_mm(fitted.meshes, test.vertices)
            cells.append({"weight": float(w), "mean": float(err.mean()),
                          "std": float(err.std()), "median": float(np.median(err)),
                          "landmark_rms_mm": float(fitted.point_error_mm.mean())})
        out[name] = cells
    return out


def run_tables(config, workdir: str) -> dict[str, Any]:
    """Trains every model and writes Table 1, Table 2 and the contact sheet (module docstring).

    Returns:
      What ``tables.json`` holds: ``table1``, ``table2``, ``embedding``, ``training``,
      ``data`` and ``wall_s``.
    """
    t0 = time.perf_counter()
    workdir = os.path.abspath(workdir)
    data = load_faces(config)
    trainer = Trainer.create(config, data)
    models: dict[str, CodeModel] = {}
    training: dict[str, Any] = {}
    states: dict[str, GANState] = {}
    for name in ("full", *config.tables.ablations):
        state, info = trainer.train(variant_config(config, name),
                                    os.path.join(workdir, f"gan_{name}"), data)
        models[name] = gan_code_model(trainer.gan, state.gen_params, name)
        states[name] = state
        training[name] = info
    for name in config.tables.baselines:
        if name not in BASELINES:
            raise ValueError(f"config.tables.baselines: unknown {name!r}; choose from "
                             f"{', '.join(BASELINES)}")
        models[name], training[name] = BASELINES[name](config, data, os.path.join(workdir, name))
    embedders, embedding_info = _embedders(config, workdir, data)

    key = jax.random.key(int(config.seed) + 1)
    rng = np.random.default_rng([int(config.seed), 7])
    train_div = data_diversity(data.train.vertices, data.train.subject, data.train.expression,
                               rng, int(config.metrics.diversity_pairs))
    rows = [("Training data", {
        "div_global": train_div["global"], "div_identity": train_div["identity"],
        "div_expression": train_div["expression"],
        "dec_identity": embedding_info["identity"]["real_test_rate"],
        "dec_expression": embedding_info["expression"]["real_test_rate"]})]
    order = [*config.tables.ablations, *config.tables.baselines, "full"]
    results = {}
    for name in order:
        results[name] = _cached(os.path.join(workdir, "rows", f"{name}.json"),
                                lambda name=name: _model_row(config, models[name], embedders,
                                                             data, key))
        label = VARIANTS[name][0] if name in VARIANTS else BASELINE_LABELS.get(name, name)
        rows.append((label, results[name]))
    table1 = table1_markdown(rows)

    fit_models = {k: models[k] for k in (*config.tables.baselines, "full")}
    fits = _cached(os.path.join(workdir, "rows", "table2.json"),
                   lambda: _fit_rows(config, fit_models, data, jax.random.fold_in(key, 2)))
    table2 = table2_markdown(config.fitting.weights, [
        (VARIANTS[k][0] if k in VARIANTS else BASELINE_LABELS.get(k, k), fits[k])
        for k in fit_models])

    _write_sheets(config, models["full"], states["full"], data, workdir)
    write_atomic(os.path.join(workdir, "table1.md"), table1.encode())
    write_atomic(os.path.join(workdir, "table2.md"), table2.encode())
    write_json(os.path.join(workdir, "table1.json"), {"rows": [
        {"label": label, **r} for label, r in rows]})
    write_json(os.path.join(workdir, "table2.json"), fits)
    out = {
        "table1": dict(rows), "table2": fits, "embedding": embedding_info, "training": training,
        "data": {"protocol": data.protocol, "train_meshes": len(data.train),
                 "test_meshes": len(data.test), "fit_targets": int(data.test.peak.sum()),
                 "identities": data.num_identities, "expressions": data.num_expressions,
                 "expression_labelled_fraction": float(np.mean(data.train.expression >= 0)),
                 "vertices": int(data.reference.shape[0]), "scale_mm": 1e3 * data.scale,
                 "dataset": data.view.path},
        "wall_s": time.perf_counter() - t0,
    }
    write_json(os.path.join(workdir, "tables.json"), out)
    return out


def run_full_model(config, workdir: str, *, embeddings: str | None = None) -> dict[str, Any]:
    """Trains (or resumes) only the full GAN of ``config`` and measures its Table 1 row.

    For trying a training setting (loss weights, ``optim.schedule``, a longer budget) without
    the ablations and baselines: the GAN trains in ``<workdir>/gan_full`` and its row uses the
    seed and metric settings of :func:`run_tables`, so it compares with that table's "Ours" row
    when both use the same embedding networks. Resuming with a larger ``optim.num_epochs``
    continues the run (with a constant learning rate that is the same as training that long
    from the start; a decaying schedule is stretched over the new length).

    Args:
      config: a :mod:`jaxface.configs.decoupled` config.
      workdir: the run's folder; receives ``row.json`` (the row, the steps and the training
        time) and the two contact sheets.
      embeddings: a :func:`run_tables` work directory whose trained embedding networks are
        copied into ``workdir`` (once; the source is not changed); without it they are trained
        in ``workdir``.

    Returns:
      What ``row.json`` holds: ``row`` (Table 1's columns), ``steps``, ``train_time_s``,
      ``schedule``, ``loss`` (the loss weights) and ``wall_s``.

    Raises:
      FileNotFoundError: ``embeddings`` is not a folder with both embedding networks.
    """
    t0 = time.perf_counter()
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    if embeddings is not None:
        for factor in ("identity", "expression"):
            source = os.path.join(os.path.abspath(embeddings), f"embedding_{factor}")
            if not os.path.isdir(os.path.join(source, "checkpoints")):
                raise FileNotFoundError(f"{source}: no trained embedding network (expected the "
                                        f"work directory of a finished tables run)")
            target = os.path.join(workdir, f"embedding_{factor}")
            if not os.path.exists(target):
                partial = target + ".partial"
                shutil.rmtree(partial, ignore_errors=True)
                shutil.copytree(source, partial, ignore=shutil.ignore_patterns(LOCK_FILE))
                os.replace(partial, target)
    data = load_faces(config)
    trainer = Trainer.create(config, data)
    state, info = trainer.train(variant_config(config, "full"),
                                os.path.join(workdir, "gan_full"), data)
    model = gan_code_model(trainer.gan, state.gen_params, "full")
    embedders, _ = _embedders(config, workdir, data)
    row = _model_row(config, model, embedders, data, jax.random.key(int(config.seed) + 1))
    _write_sheets(config, model, state, data, workdir)
    out = {"row": row, "steps": info["steps"], "train_time_s": info["train_time_s"],
           "schedule": str(config.optim.get("schedule", "constant")),
           "loss": config.loss.to_dict(), "wall_s": time.perf_counter() - t0}
    write_json(os.path.join(workdir, "row.json"), out)
    return out
