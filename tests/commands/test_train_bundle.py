"""``jaxface train-bundle``, packed bundles and the order ``jaxface generate`` finds models in.

The end-to-end test trains the ``tiny`` recipe once; packing round trips and the lookup order
use a bundle of untrained networks (:mod:`tests.faults.bundle`) and a shipped-bundle folder
monkeypatched into a temporary one, so they take seconds.
"""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest

from jaxface import generate as gen
from jaxface.cli import main
from jaxface.configs.generate import get_config as recipe_config
from jaxface.files import flatten_tree
from jaxface.mesh.io import read_mesh
from jaxface.train.workdir import config_changes
from tests.faults.bundle import make_bundle


def _error(capsys, command) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"jaxface {command}: error: ")
    return err[0]


def _tree(folder):
    """``{relative path: (size, mtime)}`` of every file under ``folder``."""
    return {os.path.relpath(os.path.join(root, n), folder):
            (os.path.getsize(os.path.join(root, n)), os.path.getmtime(os.path.join(root, n)))
            for root, _, names in os.walk(folder) for n in names}


@pytest.fixture(scope="module")
def untrained(tiny_faces4d, tmp_path_factory):
    """A trained-layout ``tiny`` bundle of untrained networks."""
    path = str(tmp_path_factory.mktemp("untrained") / "faces4d-tiny")
    make_bundle(path, tiny_faces4d[1])
    return path


@pytest.fixture(scope="module")
def packed(untrained, tmp_path_factory):
    """``untrained`` packed."""
    path = str(tmp_path_factory.mktemp("packed") / "tiny")
    gen.pack_bundle(untrained, path)
    return path


@pytest.fixture(scope="module")
def trained_pack(tiny_faces4d, tmp_path_factory):
    """``jaxface train-bundle --recipe tiny --pack`` (trains the tiny recipe once)."""
    out = tmp_path_factory.mktemp("train_bundle") / "tiny"
    status = main(["train-bundle", "--recipe", "tiny", "--pack", "--out", str(out),
                   "--data-dir", tiny_faces4d[0], "--quiet"])
    return status, out


def test_train_bundle_tiny_pack_end_to_end(trained_pack, tmp_path, capsys):
    status, out = trained_pack
    assert status == 0
    assert sorted(os.listdir(out)) == sorted(gen.PACKED_FILES)
    assert [p for p in os.listdir(out.parent) if p != "tiny"] == []  # no staging left
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["layout"] == "packed" and manifest["recipe"] == "tiny"
    assert manifest["data"] == {"name": "faces4d", "config": "tiny", "version": "2.0.0"}
    assert manifest["dataset"] == "faces4d/tiny/2.0.0"
    check = manifest["float16"]
    assert check["sequences"] == 12 and check["frames"] == 30
    assert 0 <= check["mean_mm"] <= check["max_mm"] <= gen.FLOAT16_TOLERANCE_MM
    with np.load(out / "s2d.npz") as z:
        stored = {k: z[k].dtype for k in z.files}
    assert stored and all(dtype == np.float16 for k, dtype in stored.items()
                          if f"s2d/{k}" not in manifest["float32_arrays"])
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == entry["sha256"]
    capsys.readouterr()
    assert main(["generate", "--models", str(out), "--expression", "mouth_open", "--no-gif",
                 "--quiet", "--out", str(tmp_path / "o")]) == 0
    meta = json.loads((tmp_path / "o" / "generation.json").read_text())
    assert meta["bundle"] == {"origin": "given", "recipe": "tiny", "packed": True,
                              "dataset": "faces4d/tiny", "dataset_version": "2.0.0"}
    vertices, _ = read_mesh(tmp_path / "o" / "sample_00" / "frame_000029.ply")
    assert vertices.shape == (468, 3) and np.isfinite(vertices).all()


def test_train_bundle_refuses_an_existing_out_and_bad_flags(trained_pack, tmp_path, capsys):
    _, out = trained_pack
    before = _tree(out)
    assert main(["train-bundle", "--recipe", "tiny", "--out", str(out)]) == 2
    assert f"{out}: exists; train-bundle writes a new folder" in _error(capsys, "train-bundle")
    assert _tree(out) == before
    assert main(["train-bundle", "--recipe", "huge", "--out", str(tmp_path / "a")]) == 2
    assert "unknown recipe 'huge'; choose from default, quality, tiny" in _error(
        capsys, "train-bundle")
    assert main(["train-bundle", "--from", str(out), "--out", str(tmp_path / "b")]) == 2
    assert "--from packs a trained model folder: add --pack" in _error(capsys, "train-bundle")
    assert main(["train-bundle", "--from", str(out), "--pack", "--out", str(tmp_path / "c")]) == 2
    assert f"{out}: already packed" in _error(capsys, "train-bundle")
    assert os.listdir(tmp_path) == []


def test_packing_round_trip_keeps_parameters_within_float16(untrained, packed):
    manifest = gen.verify_bundle(packed)
    assert manifest["data"] == gen.bundle_data({"dataset": manifest["dataset"]})
    with open(os.path.join(packed, "neutral.npz"), "rb") as a, \
            open(os.path.join(untrained, "neutral.npz"), "rb") as b:
        assert a.read() == b.read()
    with np.load(os.path.join(untrained, "s2d", "template.npz")) as a, \
            np.load(os.path.join(packed, "template.npz")) as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
        assert b["vertices"].dtype == np.float32
    source, loaded = gen.FaceGenerator(untrained), gen.FaceGenerator(packed)
    assert loaded.packed and not source.packed
    for a, b in ((source._gen_params, loaded._gen_params), (source.s2d.params, loaded.s2d.params)):
        flat_a, flat_b = flatten_tree(a), flatten_tree(b)
        assert flat_a.keys() == flat_b.keys()
        for key in flat_a:
            assert flat_b[key].dtype == np.float32
            np.testing.assert_allclose(flat_b[key], flat_a[key], rtol=1e-3, atol=1e-7)
    np.testing.assert_array_equal(loaded.reference, source.reference)
    a = source.generate(None, "mouth_open", 2, seed=4).meshes
    b = loaded.generate(None, "mouth_open", 2, seed=4).meshes
    assert 1000.0 * np.abs(a - b).max() <= gen.FLOAT16_TOLERANCE_MM


def test_packing_refuses_an_existing_folder_and_a_packed_source(untrained, packed, tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    with pytest.raises(FileExistsError, match="exists; a bundle is packed into a new folder"):
        gen.pack_bundle(untrained, target)
    assert os.listdir(tmp_path) == ["target"] and os.listdir(target) == []
    with pytest.raises(ValueError, match="already packed"):
        gen.pack_bundle(packed, tmp_path / "again")
    with pytest.raises(ValueError, match="tolerance_mm must be positive"):
        gen.pack_bundle(untrained, tmp_path / "zero", tolerance_mm=0.0)
    assert os.listdir(tmp_path) == ["target"]


@pytest.mark.parametrize("name", ["motion3dgan.npz", "s2d.npz", "neutral.npz", "template.npz"])
def test_a_damaged_packed_file_is_named_and_nothing_is_written(packed, tmp_path, capsys, name):
    copy = tmp_path / "bundle"
    shutil.copytree(packed, copy)
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit still reads as an archive
    (copy / name).write_bytes(bytes(data))
    with pytest.raises(gen.BundleDamaged) as err:
        gen.FaceGenerator(copy)
    assert err.value.path == str(copy / name)
    assert main(["generate", "--models", str(copy), "--expression", "mouth_open",
                 "--out", str(tmp_path / "out")]) == 2
    line = _error(capsys, "generate")
    assert f"{copy / name}: damaged (sha256 " in line and "the manifest records" in line
    assert not (tmp_path / "out").exists()


def test_a_missing_packed_file_is_named(packed, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(packed, copy)
    os.remove(copy / "s2d.npz")
    assert gen.missing_bundle_files(copy) == ["s2d.npz"]
    with pytest.raises(FileNotFoundError, match=f"{copy / 's2d.npz'}: missing from the packed"):
        gen.FaceGenerator(copy)


@pytest.fixture
def shipped(packed, tmp_path, monkeypatch):
    """A shipped-bundle folder holding the packed ``tiny`` bundle; training is forbidden."""
    folder = tmp_path / "shipped"
    shutil.copytree(packed, folder / "tiny")
    monkeypatch.setattr(gen, "SHIPPED_DIR", str(folder))
    monkeypatch.setenv("JAXFACE_CACHE_DIR", str(tmp_path / "cache"))

    def train_bundle(path, recipe, *, data_dir=None, verbose=True):
        raise AssertionError("trained although a bundle was available")

    monkeypatch.setattr(gen, "train_bundle", train_bundle)
    return folder / "tiny"


def _generate(out, *args):
    assert main(["generate", "--recipe", "tiny", "--expression", "eyebrow", "--no-gif",
                 "--quiet", "--out", str(out), *args]) == 0
    return json.loads((out / "generation.json").read_text())


def test_the_shipped_bundle_is_used_when_the_cache_is_empty(shipped, tmp_path):
    before = _tree(shipped)
    meta = _generate(tmp_path / "out")
    assert meta["models"] == str(shipped)
    assert meta["bundle"] == {"origin": "shipped", "recipe": "tiny", "packed": True,
                              "dataset": "faces4d/tiny", "dataset_version": "2.0.0"}
    assert not (tmp_path / "cache" / "models").exists()  # nothing trained or copied
    assert _tree(shipped) == before  # read, never written
    choice = gen.find_models(None, "tiny")
    assert (choice.path, choice.origin, choice.recipe) == (str(shipped), "shipped", "tiny")


def test_a_cached_bundle_is_preferred_to_the_shipped_one(shipped, untrained, tmp_path):
    cached = tmp_path / "cache" / "models" / gen.bundle_name("tiny")
    shutil.copytree(untrained, cached)
    meta = _generate(tmp_path / "out")
    assert meta["models"] == str(cached)
    assert meta["bundle"]["origin"] == "cached" and meta["bundle"]["packed"] is False


def test_train_flag_trains_into_the_cache_whatever_exists(shipped, untrained, tmp_path,
                                                          monkeypatch, capsys):
    cached = tmp_path / "cache" / "models" / gen.bundle_name("tiny")
    shutil.copytree(untrained, cached)
    trained = []

    def train_bundle(path, recipe, *, data_dir=None, verbose=True):
        trained.append(recipe)
        shutil.copytree(untrained, path)
        with open(os.path.join(path, "manifest.json")) as f:
            manifest = json.load(f)
        manifest["wall_s"] = 12.5  # tells the new bundle from the cached one
        with open(os.path.join(path, "manifest.json"), "w") as f:
            json.dump(manifest, f)
        return manifest

    monkeypatch.setattr(gen, "train_bundle", train_bundle)
    meta = _generate(tmp_path / "out", "--train")
    assert trained == ["tiny"]
    assert meta["models"] == str(cached) and meta["bundle"]["origin"] == "trained"
    assert json.loads((cached / "manifest.json").read_text())["wall_s"] == 12.5
    assert os.listdir(cached.parent) == [cached.name]  # no staging folder left
    capsys.readouterr()
    assert main(["generate", "--models", str(cached), "--train", "--expression", "eyebrow",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--train writes new models into a cache folder" in _error(capsys, "generate")
    assert trained == ["tiny"] and not (tmp_path / "x").exists()


@pytest.mark.parametrize("recipe", ["default", "quality"])
def test_the_shipped_bundles_generate_in_the_template_topology(recipe):
    path = gen.shipped_bundle(recipe)
    assert path is not None, f"no {recipe} bundle under {gen.SHIPPED_DIR}"
    generator = gen.FaceGenerator(path)
    assert generator.packed and generator.manifest["recipe"] == recipe
    # the shipped models are what the recipe trains today
    assert config_changes(generator.manifest["config"], recipe_config(recipe).to_dict()) == []
    assert gen.bundle_data(generator.manifest) == {
        "name": "faces4d", "config": "coma_scale_lite", "version": "2.0.0"}
    assert generator.manifest["float16"]["max_mm"] <= gen.FLOAT16_TOLERANCE_MM
    result = generator.generate(None, "mouth_open", 1, seed=0)
    n = generator.num_vertices
    assert result.meshes.shape == (1, 30, n, 3) and np.isfinite(result.meshes).all()
    assert generator.faces.max() == n - 1 and generator.default_neutral.shape == (n, 3)
    moved = 1000.0 * np.linalg.norm(result.meshes[0, -1] - result.neutral, axis=-1).max()
    assert 1.0 < moved < 100.0  # the mouth opens by millimetres, not metres


def test_arrays_float16_would_move_too_far_stay_float32(untrained, tmp_path):
    manifest = gen.pack_bundle(untrained, tmp_path / "strict", tolerance_mm=0.001)
    wide = manifest["float32_arrays"]
    assert wide and manifest["float16"]["max_mm"] <= 0.001
    for part, file in (("gan", "motion3dgan.npz"), ("s2d", "s2d.npz")):
        with np.load(tmp_path / "strict" / file) as z:
            for key in z.files:
                if key != "reference":
                    expected = np.float32 if f"{part}/{key}" in wide else np.float16
                    assert z[key].dtype == expected, key
    loaded = gen.FaceGenerator(tmp_path / "strict")
    a = gen.FaceGenerator(untrained).generate(None, "eyebrow", 1).meshes
    b = loaded.generate(None, "eyebrow", 1).meshes
    assert 1000.0 * np.abs(a - b).max() <= 0.001
