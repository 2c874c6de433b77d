"""The tables command end to end on the tiny procedural set (one fold, one epoch)."""

import json
import os
import subprocess
import sys

import pytest

from jaxface.configs import s2d
from jaxface.s2d.tables import ABLATIONS, METHODS, run_tables

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def test_tables_end_to_end(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    c = s2d.get_config("test")
    c.data_dir = data_dir
    c.optim.num_epochs = 1
    # The command as a user runs it: a line per finished cell, then the wall time and Table 1.
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.s2d.tables", "--config=jaxface/configs/s2d.py:test",
         f"--config.data_dir={data_dir}", "--config.optim.num_epochs=1",
         f"--workdir={tmp_path}"],
        cwd=ROOT, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
        timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((tmp_path / "tables.json").read_text())
    methods = [METHODS[m].label(c) for m in c.tables.methods]
    assert methods == ["PCA-99%", "PCA-20", "DL3DMM-20", "Neural3DMM", "S2D-Dec"]
    assert sorted(out["table1"]) == sorted(methods)  # tables.json sorts its keys
    assert list(json.loads((tmp_path / "table1.json").read_text())) == methods
    for method in methods:
        summary = out["table1"][method]["Expression split"]
        assert summary["count"] > 0 and summary["mean"] > 0
    assert len(out["table2"]) == len(ABLATIONS)
    lines = proc.stdout.splitlines()
    cells = len(methods) + len(ABLATIONS)
    assert lines[0].startswith(f"[1/{cells}] expression_fold1/PCA-99pct: ")
    assert lines[cells - 1].startswith(f"[{cells}/{cells}] ablation/")
    assert " steps, " in lines[cells - 1] and lines[cells - 1].endswith(" min")
    assert json.loads(lines[cells])["wall_s"] > 0
    assert "\n".join(lines[cells + 1:]).strip() == (tmp_path / "table1.md").read_text().strip()
    for name in ("table1.md", "table1.json", "table2.md", "cumulative_expression.png",
                 "heatmaps_expression.png", "tables.json"):
        assert os.path.getsize(tmp_path / name) > 0, name
    md = (tmp_path / "table1.md").read_text()
    assert all(m in md for m in methods) and "±" in md
    # A second run reuses every saved cell instead of training again.
    before = {p: os.path.getmtime(p) for p in tmp_path.rglob("errors.npz")}
    assert len(before) == len(methods) + len(ABLATIONS)
    # Only the heat maps' fold keeps predictions: the cells stay a few kilobytes.
    assert len(list(tmp_path.rglob("picked_predictions.npy"))) == len(methods)
    lines = []
    again = run_tables(c, str(tmp_path), report=lines.append)
    assert lines == [] and before and all(os.path.getmtime(p) == t for p, t in before.items())
    assert again["table1"] == out["table1"] and again["table2"] == out["table2"]


def test_learning_rate_is_chosen_on_validation_data(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    c = s2d.get_config("test")
    c.data_dir = data_dir
    c.optim.num_epochs = 2
    c.tables.methods = ("s2d_dec",)
    c.tables.ablation_protocol = ""
    c.tables.num_heatmaps = 0
    c.tables.learning_rates = (1e-3, 1e-5)
    with pytest.raises(ValueError, match="needs validation data"):
        run_tables(c, str(tmp_path / "none"))
    c.validation.fraction = 0.2
    out = run_tables(c, str(tmp_path))
    search = out["lr_search"]
    assert set(search["val_error_mm"]) == {"0.001", "1e-05"}
    assert search["learning_rate"] == float(min(search["val_error_mm"],
                                                key=search["val_error_mm"].get))
    assert search["protocol"] == "expression_fold1"
    cell = json.loads((tmp_path / "expression_fold1" / "S2D-Dec" / "config.json").read_text())
    assert cell["optim"]["learning_rate"] == search["learning_rate"]
    assert json.loads((tmp_path / "lr_search" / "choice.json").read_text()) == search
