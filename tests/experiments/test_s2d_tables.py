"""The tables command end to end on the tiny procedural set (one fold, one epoch)."""

import json
import os

from jaxface.configs import s2d
from jaxface.s2d.tables import ABLATIONS, METHODS, run_tables


def test_tables_end_to_end(tiny_faces4d, tmp_path):
    data_dir, _ = tiny_faces4d
    c = s2d.get_config("test")
    c.data_dir = data_dir
    c.optim.num_epochs = 1
    out = run_tables(c, str(tmp_path))
    methods = [METHODS[m].label(c) for m in c.tables.methods]
    assert methods == ["PCA-99%", "PCA-20", "DL3DMM-20", "Neural3DMM", "S2D-Dec"]
    assert list(out["table1"]) == methods
    for method in methods:
        summary = out["table1"][method]["Expression split"]
        assert summary["count"] > 0 and summary["mean"] > 0
    assert len(out["table2"]) == len(ABLATIONS)
    for name in ("table1.md", "table1.json", "table2.md", "cumulative_expression.png",
                 "heatmaps_expression.png", "tables.json"):
        assert os.path.getsize(tmp_path / name) > 0, name
    md = (tmp_path / "table1.md").read_text()
    assert all(m in md for m in methods) and "±" in md
    # A second run reuses every saved cell instead of training again.
    before = {p: os.path.getmtime(p) for p in tmp_path.rglob("errors_mm.npy")}
    run_tables(c, str(tmp_path))
    assert before and all(os.path.getmtime(p) == t for p, t in before.items())
    assert json.loads((tmp_path / "table1.json").read_text()) == json.loads(
        json.dumps(out["table1"]))
