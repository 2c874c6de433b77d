"""Reading the D/U transform pickles of published models into a MeshHierarchy."""

import os
import pickle
import sys
import types

import numpy as np
import pytest
import scipy.sparse

from jaxface.mesh import build_hierarchy, primitives, spirals_for
from jaxface.mesh.errors import MeshError
from jaxface.mesh.published import hierarchy_from_matrices, load_published_hierarchy


@pytest.fixture(scope="module")
def ours():
    vertices, faces = primitives.icosphere(3)
    return build_hierarchy(vertices, faces, factors=(4, 4))


def _matrices(h):
    down, up = [], []
    for i in range(1, h.num_levels):
        n_prev, n = h.sizes[i - 1], h.sizes[i]
        r, c, v = h.down_transform(i)
        down.append(scipy.sparse.csc_matrix((v, (r, c)), shape=(n, n_prev)))
        r, c, v = h.up_transform(i)
        up.append(scipy.sparse.csc_matrix((v, (r, c)), shape=(n_prev, n)))
    meshes = [(h.vertices(i), h.faces(i)) for i in range(h.num_levels)]
    return meshes, down, up


def _write(path, obj):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    return path


@pytest.mark.parametrize("layout", ["coma", "spiralnet"])
def test_round_trip_of_both_layouts(ours, tmp_path, layout):
    meshes, down, up = _matrices(ours)
    if layout == "coma":
        obj = {"M_verts_faces": meshes, "A": [], "D": down, "U": up, "F": []}
    else:
        obj = {"vertices": [m[0] for m in meshes], "face": [m[1] for m in meshes],
               "adj": [], "down_transform": down, "up_transform": up}
    got = load_published_hierarchy(_write(tmp_path / "t.pkl", obj))
    h = got.hierarchy
    assert h.sizes == ours.sizes and h.method == "published"
    for i in range(1, ours.num_levels):
        np.testing.assert_array_equal(h.down_indices(i), ours.down_indices(i))
        # Same interpolation whatever the order of the three entries.
        dense_ours = np.zeros((ours.sizes[i - 1], ours.sizes[i]))
        dense_got = np.zeros_like(dense_ours)
        rows = np.arange(ours.sizes[i - 1])[:, None]
        np.add.at(dense_ours, (rows, ours.up_indices(i)), ours.up_weights(i))
        np.add.at(dense_got, (rows, h.up_indices(i)), h.up_weights(i))
        np.testing.assert_allclose(dense_got, dense_ours, atol=1e-7)
    assert all(abs(lo - 1) < 1e-5 and abs(hi - 1) < 1e-5 for lo, hi in got.up_row_sums)
    assert got.negative_weights == (0, 0)
    spirals = spirals_for(h, lengths=9)
    assert [s.shape for s in spirals] == [(n, 9) for n in h.sizes]


def test_departures_from_barycentric_rows_are_reported(ours):
    meshes, down, up = _matrices(ours)
    u = up[0].tolil()
    u[0, u.rows[0][0]] = -0.1  # a negative weight
    u = u.tocsr() * 0.97  # rows summing to 0.97, as in the official S2D release
    got = hierarchy_from_matrices(meshes, down, [u, up[1]])
    lo, hi = got.up_row_sums[0]
    assert hi == pytest.approx(0.97, abs=1e-6) and lo < 0.97
    assert got.negative_weights == (1, 0)
    assert "-> 1:" in got.report() and "1 negative weights" in got.report()


def test_malformed_matrices_name_the_matrix(ours, tmp_path):
    meshes, down, up = _matrices(ours)
    two_ones = down[0].tolil()
    two_ones[0, 1] = 1.0
    with pytest.raises(MeshError, match=r"D\[0\].*not one-hot"):
        hierarchy_from_matrices(meshes, [two_ones, down[1]], up)
    wide = scipy.sparse.random(ours.sizes[0], ours.sizes[1], density=0.5, format="csr",
                               random_state=0)
    with pytest.raises(MeshError, match=r"U\[0\].*expected 1 to 3"):
        hierarchy_from_matrices(meshes, down, [wide, up[1]])
    with pytest.raises(MeshError, match=r"D\[1\].*has shape"):
        hierarchy_from_matrices(meshes, [down[0], down[0]], up)
    with pytest.raises(MeshError, match="3 levels need 2 D and U matrices"):
        hierarchy_from_matrices(meshes, down[:1], up)
    with pytest.raises(MeshError, match="holds keys"):
        load_published_hierarchy(_write(tmp_path / "keys.pkl", {"X": 1}))
    with pytest.raises(MeshError, match="file not found"):
        load_published_hierarchy(tmp_path / "none.pkl")


def test_psbody_meshes_are_read_without_psbody(ours, tmp_path, monkeypatch):
    """CoMA's own pickles hold psbody ``Mesh`` objects in ``M``; only their v and f are read."""
    module = types.ModuleType("psbody.mesh.mesh")

    class Mesh:
        def __init__(self, v, f):
            self.v, self.f, self.vc = v, f, None

    Mesh.__module__, Mesh.__qualname__ = module.__name__, "Mesh"
    module.Mesh = Mesh
    for name in ("psbody", "psbody.mesh"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    meshes, down, up = _matrices(ours)
    path = _write(tmp_path / "coma.pkl",
                  {"M": [Mesh(v, f) for v, f in meshes], "D": down, "U": up})
    for name in ("psbody", "psbody.mesh", "psbody.mesh.mesh"):
        monkeypatch.delitem(sys.modules, name)
    h = load_published_hierarchy(path).hierarchy
    assert h.sizes == ours.sizes
    np.testing.assert_array_equal(h.faces(1), ours.faces(1))
    assert "psbody" not in "".join(sys.modules)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_a_pickle_that_runs_code_is_refused(tmp_path):
    path = _write(tmp_path / "evil.pkl", {"M_verts_faces": _Exploit()})
    with pytest.raises(MeshError, match="refusing to unpickle"):
        load_published_hierarchy(path)
