"""The S2D paper's comparisons: Table 1 (methods × protocols), Table 2 (loss ablation),
the cumulative error curves (Figure 3) and error heat maps (Figure 4).

Every (method, protocol, fold) cell is trained and evaluated into its own folder of the work
directory. What the tables need of its per-vertex test errors is saved as an
:class:`~jaxface.eval.errors.ErrorDistribution` (``errors.npz``, a few kilobytes: exact count,
mean and variance, a 1 µm histogram), beside ``results.json`` and, in the folds the heat maps
show, ``picked_predictions.npy``. A cell whose files exist is not run again, so an interrupted
tables run continues where it stopped, and the finished cells of a long run are small enough
to keep (or commit) and re-render the tables from.

Several processes may run the same tables in the same work directory at once (one per GPU, or
one per CPU core): each cell is locked while it runs, a process skips the cells others hold and
takes the next, then waits for the rest, and every process ends with the same tables.

Table 1 pools the per-vertex errors of the 4 folds of each protocol (mean ± std in mm), as
the official cross-validation script does; the pooled mean and standard deviation are exact,
the median is within 1 µm.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable

import numpy as np

from jaxface.baselines import DL3DMM, PCA3DMM, landmark_matrix
from jaxface.eval.errors import ErrorDistribution, per_vertex_errors_mm, write_results
from jaxface.eval.plots import plot_cumulative_errors
from jaxface.files import write_atomic, write_json, write_npy
from jaxface.s2d.data import ProtocolData, load_protocol, protocol_name
from jaxface.s2d.pairs import S2DPairs
from jaxface.s2d.train import Predictor, train_neural3dmm, train_s2d
from jaxface.train import WorkdirBusyError, lock_workdir

__all__ = ["ABLATIONS", "METHODS", "Method", "run_tables", "select_learning_rate"]

log = logging.getLogger(__name__)

# Table 2 rows: (name, loss overrides). Because the prediction is neutral + displacement,
# the unweighted L_pr acts on the same residual as L_dr: S2 differs from S1 only in scale.
ABLATIONS = (
    ("S1: L_dr", {"form": "paper", "beta_dr": 1.0, "beta_pr": 0.0, "weights": "none"}),
    ("S2: S1 + L_pr w/o distance weights",
     {"form": "paper", "beta_dr": 1.0, "beta_pr": 0.1, "weights": "none"}),
    ("S3: S1 + L_pr", {"form": "paper", "beta_dr": 1.0, "beta_pr": 0.1, "weights": "official"}),
    ("S3, official weighted-sum form",
     {"form": "official", "beta_dr": 0.1, "beta_pr": 1.0, "weights": "official"}),
)


def _landmark_operator(data: ProtocolData):
    lm = data.view.landmarks
    n = data.view.vertices.shape[0]
    if lm.is_barycentric:
        return landmark_matrix(n, face_indices=lm.face_indices, barycentric=lm.barycentric,
                               faces=data.view.faces)
    return landmark_matrix(n, vertex_indices=lm.vertex_indices)


def _linear_predictor(model, data: ProtocolData) -> Predictor:
    """``pairs -> meshes``: the 3DMM fitted to the metric target landmarks of each frame."""
    operator = _landmark_operator(data)

    def predict(pairs: S2DPairs) -> np.ndarray:
        out = []
        for lo in range(0, len(pairs), 512):
            idx = np.arange(lo, min(lo + 512, len(pairs)))
            neutral = pairs.neutrals[pairs.sequence[idx]]
            out.append(model.predict(neutral, pairs.target_landmarks[idx], operator))
        return np.concatenate(out).astype(np.float32)

    return predict


def _fit_linear(fit: Callable[[np.ndarray], object]):
    """A table method fitting a linear 3DMM to the training displacements."""

    def run(config, workdir: str, data: ProtocolData):
        del workdir
        t0 = time.perf_counter()
        model = fit(config, data.train.displacements())
        return _linear_predictor(model, data), {"fit_s": time.perf_counter() - t0,
                                                "num_components": model.num_components}

    return run


def _pca_variance(config, displacements):
    return PCA3DMM.fit(displacements, k=None, variance=config.baselines.variance)


def _pca(config, displacements):
    return PCA3DMM.fit(displacements, k=config.baselines.num_components)


def _dl3dmm(config, displacements):
    return DL3DMM.fit(displacements, num_atoms=config.baselines.num_components,
                      max_examples=config.baselines.dl3dmm_max_examples, seed=config.seed)


@dataclasses.dataclass(frozen=True)
class Method:
    """One row of Table 1.

    Attributes:
      label: ``config -> row label`` (e.g. ``"PCA-220"``).
      run: ``(config, workdir, data) -> (predict, info)``: trains or fits the method on
        ``data.train`` (a run folder in ``workdir`` when it has one) and returns
        ``predict(pairs) -> meshes [M, N, 3]``.
    """

    label: Callable[[object], str]
    run: Callable[[object, str, ProtocolData], tuple[Predictor, dict]]


#: Table 1 methods by name (``config.tables.methods``).
METHODS: dict[str, Method] = {
    "dl3dmm": Method(lambda c: f"DL3DMM-{c.baselines.num_components}", _fit_linear(_dl3dmm)),
    "neural3dmm": Method(lambda c: "Neural3DMM", train_neural3dmm),
    "pca": Method(lambda c: f"PCA-{c.baselines.num_components}", _fit_linear(_pca)),
    "pca_variance": Method(lambda c: f"PCA-{round(100 * c.baselines.variance, 6):g}%",
                           _fit_linear(_pca_variance)),
    "s2d_dec": Method(lambda c: "S2D-Dec", train_s2d),
}


def _method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown Table 1 method {name!r}; choose from "
                         f"{', '.join(sorted(METHODS))}")
    return METHODS[name]


def _with_loss(config, overrides: dict):
    return _with(config, **{f"loss.{k}": v for k, v in overrides.items()})


@dataclasses.dataclass(frozen=True)
class _Cell:
    """One (method, protocol, fold) run: where it goes, how it runs, the data it needs."""

    folder: str
    run: Callable[[object, str, ProtocolData], tuple[Predictor, dict]]
    config: object
    data: Callable[[], ProtocolData]
    num_picks: int = 0

    @property
    def errors_path(self) -> str:
        return os.path.join(self.folder, "errors.npz")

    @property
    def picks_path(self) -> str:
        return os.path.join(self.folder, "picked_predictions.npy")

    def done(self) -> bool:
        return os.path.exists(self.errors_path) and (
            not self.num_picks or os.path.exists(self.picks_path))

    def compute(self) -> dict:
        """Trains or fits the method, evaluates it on the test part and saves the results;
        returns the cell's ``results.json`` record."""
        data = self.data()
        t0 = time.perf_counter()
        predict, info = self.run(self.config, self.folder, data)
        pred = predict(data.test)
        distribution = ErrorDistribution.of(per_vertex_errors_mm(pred, data.test.targets))
        info = dict(info, wall_s=time.perf_counter() - t0, test=distribution.summary())
        os.makedirs(self.folder, exist_ok=True)
        write_json(os.path.join(self.folder, "results.json"), info)
        if self.num_picks:
            write_npy(self.picks_path, pred[_heatmap_picks(data, self.num_picks)])
        write_atomic(self.errors_path, distribution.to_bytes())
        log.info("%s: %.3f ± %.3f mm", self.folder, info["test"]["mean"], info["test"]["std"])
        return info

    def errors(self) -> ErrorDistribution:
        return ErrorDistribution.load(self.errors_path)

    def picked(self) -> np.ndarray:
        """Predictions of the heat maps' test frames, ``[num_picks, N, 3]``."""
        return np.load(self.picks_path)


def _slug(name: str) -> str:
    return (name.replace(" ", "_").replace(":", "").replace(",", "").replace("%", "pct")
            .replace("/", "-"))


def _share(folders: list[str], done: Callable[[str], bool], work: Callable[[str], None]):
    """Runs ``work(folder)`` for every folder not ``done``, alongside any other processes doing
    the same in the same work directory.

    Each folder is locked while its work runs (:func:`jaxface.train.lock_workdir`). A first pass
    skips the folders another process holds; a second waits for them, and does the work itself
    of any whose holder ended without finishing it.
    """
    for wait in (False, True):
        for folder in folders:
            if done(folder):
                continue
            try:
                with lock_workdir(folder, timeout=-1 if wait else 0):
                    if not done(folder):
                        work(folder)
            except WorkdirBusyError:
                continue


def _run_cells(cells: list[_Cell], workdir: str,
               report: Callable[[str], None] | None = None) -> None:
    """Runs every cell whose results are not saved (shared with other processes, see
    :func:`_share`); ``report`` receives a line for each cell this process finishes."""
    by_folder = {cell.folder: cell for cell in cells}

    def compute(folder: str):
        info = by_folder[folder].compute()
        if report is not None:
            done = sum(cell.done() for cell in cells)
            steps = f", {info['steps']} steps" if "steps" in info else ""
            report(f"[{done}/{len(cells)}] {os.path.relpath(folder, workdir)}: "
                   f"{info['test']['mean']:.3f} ± {info['test']['std']:.3f} mm{steps}, "
                   f"{info['wall_s'] / 60:.1f} min")

    _share(list(by_folder), lambda f: by_folder[f].done(), compute)


def _heatmap_picks(data: ProtocolData, num: int) -> np.ndarray:
    """Test frames shown in the heat maps: the largest-motion frame of ``num`` sequences."""
    motion = np.abs(data.test.landmark_displacement).sum(-1)
    seqs = np.unique(data.test.sequence)
    chosen = seqs[np.linspace(0, len(seqs) - 1, max(num, 1)).astype(int)][:num]
    return np.array([np.flatnonzero(data.test.sequence == s)[
        np.argmax(motion[data.test.sequence == s])] for s in chosen], np.int64)


def _heatmaps(path: str, data: ProtocolData, picks: np.ndarray,
              predictions: dict[str, np.ndarray], vmax: float):
    """Figure 4: ground truth and per-method error maps of a few test frames."""
    from jaxface.viz.render import contact_sheet, fit_camera, render_mesh, save_png

    faces = data.view.faces
    camera = fit_camera(data.test.targets[picks])
    tiles, labels = [], []
    for row, i in enumerate(picks):
        tiles.append(render_mesh(data.test.targets[i], faces, camera=camera))
        seq = data.test.sequence[i]
        labels.append(f"{data.test.subjects[seq]} {data.test.expressions[seq]}")
        for method, pred in predictions.items():
            err = per_vertex_errors_mm(pred[row], data.test.targets[i])
            tiles.append(render_mesh(pred[row], faces, camera=camera, scalars=err, vmin=0.0,
                                     vmax=vmax, colorbar=True, colorbar_label="mm"))
            labels.append(f"{method} {err.mean():.2f} mm")
    save_png(path, contact_sheet(tiles, cols=len(predictions) + 1, labels=labels))


def _with(config, **fields):
    """A copy of ``config`` with dotted ``fields`` (e.g. ``"optim.learning_rate"``) set."""
    c = copy.deepcopy(config)
    with c.unlocked():
        for key, value in fields.items():
            *parents, name = key.split(".")
            target = c
            for parent in parents:
                target = target[parent]
            target[name] = value
    return c


def select_learning_rate(config, workdir: str) -> dict:
    """Chooses S2D-Dec's learning rate on validation data, never on a test part.

    Trains S2D-Dec with every rate of ``config.tables.learning_rates`` on the training part of
    the first protocol's first fold, with ``config.validation`` sequences held out, and picks
    the rate with the lowest validation error of the parameters each run keeps (its best
    evaluation, or its last with ``config.validation.keep = "last"``; with a plateau stop the
    runs end when they stop improving). Each run is a resumable folder of
    ``<workdir>/lr_search``; the choice goes to ``<workdir>/lr_search/choice.json``.

    Returns:
      ``{"learning_rate": chosen, "protocol": ..., "val_error_mm": {rate: error}}``.

    Raises:
      ValueError: the config holds out no validation sequences.
    """
    tc = config.tables
    if not config.validation.fraction:
        raise ValueError("choosing the learning rate needs validation data: set "
                         "config.validation.fraction > 0")
    folder = os.path.join(workdir, "lr_search")
    choice_path = os.path.join(folder, "choice.json")
    if os.path.exists(choice_path):
        with open(choice_path) as f:
            return json.load(f)
    c = _with(config, protocol=tc.protocols[0], fold=tc.folds[0])
    data = load_protocol(c)
    folders = {os.path.join(folder, f"lr_{rate:g}"): rate for rate in tc.learning_rates}
    errors = {}

    def train(run_dir: str):
        rate = folders[run_dir]
        _, info = train_s2d(_with(c, **{"optim.learning_rate": rate}), run_dir, data)
        errors[f"{rate:g}"] = info["val_error_mm"]

    # A run finished by another process is read back by train_s2d without training again.
    _share(list(folders), lambda f: f"{folders[f]:g}" in errors, train)
    errors = {f"{rate:g}": errors[f"{rate:g}"] for rate in tc.learning_rates}
    best = min(errors, key=errors.get)
    choice = {"learning_rate": float(best), "protocol": data.protocol, "val_error_mm": errors}
    write_json(choice_path, choice)
    log.info("learning rate %s (validation errors %s)", best, errors)
    return choice


def run_tables(config, workdir: str, *, report: Callable[[str], None] | None = None) -> dict:
    """Runs Table 1 over ``config.tables.protocols`` × folds and Table 2 on
    ``config.tables.ablation_protocol``; writes Markdown/JSON tables and PNG figures.

    With ``config.tables.learning_rates``, S2D-Dec's learning rate is first chosen on
    validation data (:func:`select_learning_rate`) and used for every trained cell (S2D-Dec,
    its ablations and Neural3DMM, which share ``config.optim``).

    Args:
      config: an S2D config with a ``tables`` block.
      workdir: the work directory (shared by every process running these tables).
      report: receives one line per cell this process finishes, e.g. ``"[12/44]
        expression_fold3/S2D-Dec: 0.639 ± 0.801 mm, 5219 steps, 9.6 min"``.

    Returns:
      ``{"table1": {method: {protocol: summary}}, "table2": {row: {protocol: summary}},
      "wall_s": ...}`` (and ``"lr_search"`` when the rate was chosen).
    """
    t0 = time.perf_counter()
    workdir = os.path.abspath(workdir)
    tc = config.tables
    if config.get("loader", "memory") != "memory":
        raise ValueError("the tables fit the baselines to the training meshes in memory; use "
                         "config.loader = 'memory'")
    lr_search = None
    if tc.get("learning_rates"):
        lr_search = select_learning_rate(config, workdir)
        config = _with(config, **{"optim.learning_rate": lr_search["learning_rate"]})

    def load_protocol_of(protocol: str, fold: int) -> ProtocolData:
        return load_protocol(_with(config, protocol=protocol, fold=fold))

    methods = {_method(name).label(config): _method(name) for name in tc.methods}
    load = functools.lru_cache(maxsize=1)(load_protocol_of)  # cells come fold by fold

    # The plan: every Table 1 cell, fold by fold, then the Table 2 rows.
    table1_cells: dict[tuple[str, int, str], _Cell] = {}
    for protocol in tc.protocols:
        for fold in tc.folds:
            c = _with(config, protocol=protocol, fold=fold)
            fold_dir = os.path.join(workdir, protocol_name(protocol, fold))
            for label, method in methods.items():
                table1_cells[protocol, fold, label] = _Cell(
                    os.path.join(fold_dir, _slug(label)), method.run, c,
                    functools.partial(load, protocol, fold),
                    tc.num_heatmaps if fold == tc.folds[0] else 0)
    table2_cells: dict[str, _Cell] = {}
    if tc.ablation_protocol:
        c = _with(config, protocol=tc.ablation_protocol, fold=0)
        for row, overrides in ABLATIONS:
            table2_cells[row] = _Cell(os.path.join(workdir, "ablation", _slug(row)), train_s2d,
                                      _with_loss(c, overrides),
                                      functools.partial(load, tc.ablation_protocol, 0))
    _run_cells([*table1_cells.values(), *table2_cells.values()], workdir, report)

    table1: dict[str, dict] = {label: {} for label in methods}
    for protocol in tc.protocols:
        label = {"expression": "Expression split", "identity": "Identity split"}.get(
            protocol, protocol)
        curves = {method: ErrorDistribution.pooled(
            [table1_cells[protocol, fold, method].errors() for fold in tc.folds])
            for method in methods}
        for method, pooled in curves.items():
            table1[method][label] = pooled.summary()
        plot_cumulative_errors(curves, os.path.join(workdir, f"cumulative_{protocol}.png"),
                               max_mm=tc.curve_max_mm, title=f"Cumulative error, {label}")
        if tc.num_heatmaps:
            data = load(protocol, tc.folds[0])
            _heatmaps(os.path.join(workdir, f"heatmaps_{protocol}.png"), data,
                      _heatmap_picks(data, tc.num_heatmaps),
                      {m: table1_cells[protocol, tc.folds[0], m].picked() for m in methods},
                      tc.curve_max_mm)
    write_results(table1, os.path.join(workdir, "table1.md"), median=True,
                  title="Table 1: reconstruction error (mm), mean ± std (median)")
    table2 = {row: {protocol_name(tc.ablation_protocol, 0): cell.errors().summary()}
              for row, cell in table2_cells.items()}
    if table2:
        write_results(table2, os.path.join(workdir, "table2.md"), median=True,
                      title="Table 2: S2D-Dec loss ablation, error (mm), mean ± std (median)")
    out = {"table1": table1, "table2": table2, "wall_s": time.perf_counter() - t0}
    if lr_search is not None:
        out["lr_search"] = lr_search
    write_json(os.path.join(workdir, "tables.json"), out)
    return out
