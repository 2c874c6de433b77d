"""Tests for jaxface.mesh.cache, including the one ~5k-vertex build of the suite."""

import os
import time

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.mesh.cache import (
    CACHE_DIR_ENV,
    default_cache_dir,
    load_or_build_topology,
    load_topology,
    save_topology,
)
from jaxface.mesh.errors import MeshError


def _assert_same(first, second):
    hierarchy_a, spirals_a = first
    hierarchy_b, spirals_b = second
    assert hierarchy_a.sizes == hierarchy_b.sizes
    for a, b in zip(hierarchy_a.levels, hierarchy_b.levels, strict=True):
        for name in ("vertices", "faces", "down_indices", "up_indices", "up_weights"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None)
            if x is not None:
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
    for a, b in zip(spirals_a, spirals_b, strict=True):
        assert a.dtype == b.dtype == np.int32
        np.testing.assert_array_equal(a, b)


def test_five_thousand_vertex_template_builds_fast_and_reloads_instantly(tmp_path):
    vertices, faces = primitives.spherical_cap(5, 0.0)
    assert vertices.shape[0] == 5185
    options = dict(factors=(4, 4, 4, 4), spiral_lengths=[None, None, 9, 9, 7],
                   rings=[2, 2, 1, 1, 1], dilations=[2, 2, 1, 1, 1], cache_dir=tmp_path)
    start = time.perf_counter()
    hierarchy, spirals, path = load_or_build_topology(vertices, faces, **options)
    cold = time.perf_counter() - start
    assert hierarchy.sizes == (5185, 1297, 325, 82, 21)
    assert [s.shape[0] for s in spirals] == list(hierarchy.sizes)
    assert cold < 30.0, f"cold build took {cold:.1f} s"
    assert os.path.dirname(path) == str(tmp_path) and path.endswith(".npz")

    start = time.perf_counter()
    cached = load_or_build_topology(vertices, faces, **options)
    warm = time.perf_counter() - start
    assert cached[2] == path
    _assert_same((hierarchy, spirals), cached[:2])
    assert warm < 0.5, f"cache hit took {warm:.3f} s"
    print(f"\n5185-vertex hierarchy + spirals: cold {cold:.2f} s, cached {warm * 1e3:.1f} ms")


def test_key_changes_with_parameters_and_arrays(tmp_path):
    vertices, faces = primitives.icosphere(2)
    _, _, path = load_or_build_topology(vertices, faces, factors=(4,), cache_dir=tmp_path)
    _, _, same = load_or_build_topology(vertices.copy(), faces.copy(), factors=(4,),
                                        cache_dir=tmp_path)
    assert same == path
    others = {
        load_or_build_topology(vertices, faces, factors=(3,), cache_dir=tmp_path)[2],
        load_or_build_topology(vertices, faces, factors=(4,), rings=2, cache_dir=tmp_path)[2],
        load_or_build_topology(vertices, faces, factors=(4,), spiral_lengths=9,
                               order="spiralnet", cache_dir=tmp_path)[2],
        load_or_build_topology(vertices * 2, faces, factors=(4,), cache_dir=tmp_path)[2],
        load_or_build_topology(vertices, faces, factors=(4,), reference_vertices=[3],
                               cache_dir=tmp_path)[2],
        load_or_build_topology(vertices, faces, factors=(4,), method="surface_distance",
                               cache_dir=tmp_path)[2],
    }
    assert path not in others and len(others) == 6
    assert len(list(tmp_path.glob("topology-*.npz"))) == 7
    assert not list(tmp_path.glob("*.tmp")), "no temporary files left"


def test_corrupt_cache_file_is_rebuilt(tmp_path):
    vertices, faces = primitives.icosphere(1)
    first = load_or_build_topology(vertices, faces, factors=(2,), cache_dir=tmp_path)
    with open(first[2], "wb") as stream:
        stream.write(b"not a zip file")
    second = load_or_build_topology(vertices, faces, factors=(2,), cache_dir=tmp_path)
    assert second[2] == first[2]
    _assert_same(first[:2], second[:2])
    _assert_same(first[:2], load_topology(first[2])[:2])


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "env-cache"))
    assert default_cache_dir() == str(tmp_path / "env-cache")
    vertices, faces = primitives.tetrahedron()
    _, _, path = load_or_build_topology(vertices, faces, factors=(1,))
    assert path.startswith(str(tmp_path / "env-cache"))
    monkeypatch.delenv(CACHE_DIR_ENV)
    assert default_cache_dir() == os.path.join(os.path.expanduser("~"), ".cache", "jaxface")


def test_save_and_load_without_pickle(tmp_path):
    vertices, faces = primitives.icosphere(1)
    hierarchy, spirals, _ = load_or_build_topology(vertices, faces, factors=(2,),
                                                   cache_dir=tmp_path)
    out = tmp_path / "nested" / "topology.npz"
    save_topology(out, hierarchy, spirals, meta={"note": "test"})
    with np.load(out, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)
        assert "spirals1" in data.files and "level1_up_weights" in data.files
    loaded = load_topology(out)
    _assert_same((hierarchy, spirals), loaded[:2])
    assert loaded[2] == {"note": "test"}
    with pytest.raises(MeshError, match="file not found"):
        load_topology(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"junk")
    with pytest.raises(MeshError, match="not a jaxface topology file"):
        load_topology(tmp_path / "bad.npz")
