"""End to end on the test mode: the launchers as a user runs them, then ``jaxface face3d`` on the
trained run (sample, fit, transfer) and its one-line errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxface import cli
from jaxface.commands import decoupled as face3d
from jaxface.mesh import primitives
from jaxface.mesh.io import read_mesh, write_mesh

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _launch(module, config_args, workdir, timeout=600):
    # The same device count and compilation cache as the test session, so the launchers reuse
    # the programs the other tests compiled.
    env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_NUM_CPU_DEVICES="8",
               JAX_COMPILATION_CACHE_DIR=jax_cache_dir(),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    return subprocess.run([sys.executable, "-m", module,
                           "--config=jaxface/configs/decoupled.py:test", *config_args,
                           f"--workdir={workdir}"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def jax_cache_dir():
    import jax

    return jax.config.jax_compilation_cache_dir or os.path.join(ROOT, ".jax_cache")


@pytest.fixture(scope="module")
def trained_run(tiny_faces4d, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("decoupled") / "run"
    out = _launch("experiments.decoupled.main", [f"--config.data_dir={tiny_faces4d[0]}"],
                  workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    return workdir, json.loads(out.stdout.strip().splitlines()[-1])


def _face3d(monkeypatch, argv):
    monkeypatch.setitem(cli.COMMANDS, "face3d", face3d)
    return cli.main(["face3d", *argv])


def test_main_trains_and_writes_its_run(trained_run):
    workdir, summary = trained_run
    assert summary["steps"] > 0
    assert set(summary["diversity_mm"]) == {"global", "identity", "expression"}
    assert summary["specificity_mm"] > 0
    for name in ("contact_sheet.png", "results.json", "config.json", "template.npz",
                 "labels.json", "metrics.jsonl"):
        assert (workdir / name).is_file(), name


def test_face3d_sample_fit_and_transfer(trained_run, tmp_path, monkeypatch, capsys):
    workdir, _ = trained_run
    out = tmp_path / "samples"
    assert _face3d(monkeypatch, ["sample", "--model", str(workdir), "--out", str(out),
                                 "--num", "3", "--expression", "neutral"]) == 0
    meshes = sorted(out.glob("sample_*.ply"))
    assert len(meshes) == 3 and (out / "contact_sheet.png").is_file()
    with np.load(out / "codes.npz") as codes:
        z_exp = codes["z_exp"]
    np.testing.assert_array_equal(z_exp[0], z_exp[1])  # one expression label: one code

    fit_dir = tmp_path / "fit"
    assert _face3d(monkeypatch, ["fit", "--model", str(workdir), "--mesh", str(meshes[0]),
                                 "--out", str(fit_dir), "--steps", "5"]) == 0
    fitted, faces = read_mesh(fit_dir / "fit.ply")
    original, original_faces = read_mesh(meshes[0])
    assert fitted.shape == original.shape
    np.testing.assert_array_equal(faces, original_faces)

    landmarks = original[np.linspace(0, len(original) - 1, 68).astype(int)]
    np.save(tmp_path / "landmarks.npy", landmarks)
    assert _face3d(monkeypatch, ["fit", "--model", str(workdir), "--landmarks",
                                 str(tmp_path / "landmarks.npy"), "--out",
                                 str(tmp_path / "fit_lm"), "--steps", "5"]) == 0
    assert (tmp_path / "fit_lm" / "fit_000.ply").is_file()

    transfer = tmp_path / "transfer"
    assert _face3d(monkeypatch, ["transfer", "--model", str(workdir), "--source",
                                 str(meshes[1]), "--target", str(meshes[2]), "--out",
                                 str(transfer), "--steps", "5", "--format", "obj"]) == 0
    names = {p.name for p in transfer.glob("*.obj")}
    assert names == {"source.obj", "target.obj", "source_fit.obj", "target_fit.obj",
                     "transfer.obj"}
    assert "wrote 5 meshes" in capsys.readouterr().out


def test_face3d_errors_are_one_line(trained_run, tmp_path, monkeypatch, capsys):
    workdir, _ = trained_run
    v, f = primitives.icosphere(1)
    write_mesh(tmp_path / "sphere.ply", v, f)
    np.save(tmp_path / "bad.npy", np.zeros((10, 3)))
    cases = [
        (["sample", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")],
         "config.json is missing"),
        (["fit", "--model", str(workdir), "--mesh", str(tmp_path / "sphere.ply"), "--out",
          str(tmp_path / "o")], "sphere.ply: vertices: expected the template's 468 vertices"),
        (["fit", "--model", str(workdir), "--mesh", str(tmp_path / "missing.ply"), "--out",
          str(tmp_path / "o")], "missing.ply: file not found"),
        (["fit", "--model", str(workdir), "--landmarks", str(tmp_path / "bad.npy"), "--out",
          str(tmp_path / "o")], "expected landmarks [68, 3] or [T, 68, 3], got [10, 3]"),
        (["sample", "--model", str(workdir), "--out", str(tmp_path / "o"), "--identity",
          "nobody"], "unknown identity 'nobody'"),
    ]
    for argv, message in cases:
        assert _face3d(monkeypatch, argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("jaxface face3d: error:") and message in err, err
        assert "\n" not in err


def test_tables_launcher_writes_both_tables(tiny_faces4d, tmp_path):
    workdir = tmp_path / "tables"
    out = _launch("experiments.decoupled.tables", [f"--config.data_dir={tiny_faces4d[0]}"],
                  workdir)
    assert out.returncode == 0, out.stderr[-3000:]
    table1 = (workdir / "table1.md").read_text()
    for label in ("Training data", "w/o mesh reg.", "3DMM", "Neural3DMM AE", "Ours"):
        assert label in table1
    table2 = json.loads((workdir / "table2.json").read_text())
    assert set(table2) == {"linear_3dmm", "autoencoder", "full"}
    assert all(len(cells) == 2 and all(c["mean"] > 0 for c in cells) for cells in
               table2.values())
    assert (workdir / "contact_sheet.png").is_file()
    assert json.loads((workdir / "tables.json").read_text())["wall_s"] > 0

    # The full model alone, with the tables' embedding networks: the same row as "Ours".
    alone = tmp_path / "alone"
    out = _launch("experiments.decoupled.full_model", [f"--config.data_dir={tiny_faces4d[0]}",
                                                       f"--embeddings={workdir}"], alone)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    ours = json.loads((workdir / "rows" / "full.json").read_text())
    assert summary["schedule"] == "constant" and summary["steps"] > 0
    for column, value in ours.items():
        np.testing.assert_allclose(summary["row"][column], value, rtol=1e-5, err_msg=column)
    for name in ("row.json", "contact_sheet.png", "contact_sheet_change.png"):
        assert (alone / name).is_file(), name
    assert json.loads((alone / "row.json").read_text())["row"] == summary["row"]


def test_full_model_needs_trained_embeddings(config, tmp_path):
    from jaxface.decoupled.tables import run_full_model

    with pytest.raises(FileNotFoundError, match="no trained embedding network"):
        run_full_model(config, str(tmp_path / "run"), embeddings=str(tmp_path / "nothing"))
