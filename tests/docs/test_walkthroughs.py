"""The walkthroughs of docs/ run as written: adding a model, adding a dataset."""

import os
import re
import sys
import types

import numpy as np
import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _python_blocks(name):
    with open(os.path.join(ROOT, "docs", name)) as f:
        return re.findall(r"```python\n(.*?)```", f.read(), flags=re.S)


def test_adding_a_model(tiny_faces4d, tmp_path, monkeypatch):
    from jaxface.models import MODELS

    data_dir, _ = tiny_faces4d
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks("adding_a_model.md")
    assert len(blocks) == 4
    scope: dict = {}
    try:
        for i, block in enumerate(blocks):
            if i == 3:  # read the session's tiny set instead of the user's cache folder
                scope["config"].data_dir = data_dir
            exec(compile(block, f"adding_a_model.md block {i}", "exec"), scope)
    finally:
        MODELS.pop("mlp_decoder", None)
    results, decoder = scope["results"], scope["decoder"]
    assert results["steps"] > 0 and 0.0 < results["test"]["mean"] < 50.0
    assert results["num_params"] > 0
    assert type(decoder.model).__name__ == "MLPDecoder"
    frames = decoder.animate(decoder.vertices, np.zeros((2, 204), np.float32))
    assert frames.shape == (2, decoder.num_vertices, 3) and np.isfinite(frames).all()


def _write_scans(root, template, expressions, frames=3):
    from jaxface.mesh.io import write_mesh

    rng = np.random.default_rng(0)
    for s, subject in enumerate(("alice", "bob")):
        for expression in expressions:
            folder = root / subject / expression
            folder.mkdir(parents=True)
            for t in range(frames):
                moved = template.vertices * (1 + 0.01 * s) + 1e-3 * t * rng.normal(
                    size=template.vertices.shape)
                write_mesh(folder / f"frame_{t:03d}.ply", moved.astype(np.float32),
                           template.faces)


def test_adding_a_dataset(tmp_path):
    from jaxface.data import DATASETS, DatasetView, prepare_dataset
    from jaxface.data.template import load_face_template

    blocks = _python_blocks("adding_a_dataset.md")
    assert len(blocks) == 2
    module = types.ModuleType("datasets_tfds.my_scans.my_scans")
    exec(compile(blocks[0], "adding_a_dataset.md block 0", "exec"), module.__dict__)
    sys.modules[module.__name__] = module
    try:
        exec(compile(blocks[1], "adding_a_dataset.md block 1", "exec"), {})
        manual = tmp_path / "manual"
        _write_scans(manual, load_face_template(0), ("frown", "smile"))
        path = prepare_dataset("my_scans", manual_dir=str(manual),
                               data_dir=str(tmp_path / "data"), verbose=False)
        view = DatasetView(path, require_landmarks=False)
        assert [(s.subject, s.expression, s.length) for s in view.sequences] == [
            ("alice", "frown", 3), ("alice", "smile", 3), ("bob", "frown", 3), ("bob", "smile", 3)]
        assert view.vertices.shape == (468, 3) and view.landmarks is None
        assert set(view.split("identity_leading1").held_out) == {"alice"}
        with pytest.raises(ValueError, match="no landmark definition"):
            DatasetView(path)
        # A frame that breaks the layout is refused with one line naming it.
        (manual / "bob" / "smile" / "frame_003.obj").write_text("v 0 0 0\n")
        with pytest.raises(ValueError, match="frame_003.obj"):
            prepare_dataset("my_scans", manual_dir=str(manual), data_dir=str(tmp_path / "d2"),
                            verbose=False)
    finally:
        DATASETS.pop("my_scans", None)
        sys.modules.pop(module.__name__, None)
