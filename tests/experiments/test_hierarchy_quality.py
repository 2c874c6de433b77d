"""CoMA's sampling reference and the hierarchy quality command."""

import heapq
import json
import pickle

import numpy as np
import pytest
import scipy.sparse

from experiments.s2d import hierarchy_quality
from experiments.s2d.coma_sampling import (
    coma_decimate,
    coma_hierarchy,
    coma_up_sampling,
)
from jaxface.mesh import primitives
from jaxface.mesh.topology import boundary_loops, connected_components


def _jittered_sphere(subdivisions: int, seed: int = 0):
    """An icosphere with every vertex moved a little, so no two collapse costs tie."""
    vertices, faces = primitives.icosphere(subdivisions)
    rng = np.random.default_rng(seed)
    return vertices.astype(np.float64) * rng.uniform(0.97, 1.03, (vertices.shape[0], 1)), faces


def _literal_coma(vertices, faces, target):
    """CoMA's decimation loop step by step: queued pairs rewritten in place, the face array
    rewritten and its degenerate faces dropped after every collapse."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    quadrics = np.zeros((v.shape[0], 4, 4))
    for face in f:
        _, _, vt = np.linalg.svd(np.hstack([v[face], np.ones((3, 1))]))
        plane = vt[-1] / np.linalg.norm(vt[-1, :3])
        for k in face:
            quadrics[k] += np.outer(plane, plane)
    pairs = {tuple(sorted((int(a), int(b)))) for face in f
             for a, b in zip(face, np.roll(face, 1), strict=True)}

    def costs(r, c):
        total = quadrics[r] + quadrics[c]
        pr, pc = np.append(v[r], 1.0), np.append(v[c], 1.0)
        return pr @ total @ pr, pc @ total @ pc, total

    queue = []
    for r, c in sorted(pairs, key=lambda p: (p[1], p[0])):
        heapq.heappush(queue, (min(costs(r, c)[:2]), (r, c)))
    count = v.shape[0]
    while count > target:
        stored, (r, c) = heapq.heappop(queue)
        if r == c:
            continue
        destroy_c, destroy_r, total = costs(r, c)
        if min(destroy_c, destroy_r) > stored:
            heapq.heappush(queue, (min(destroy_c, destroy_r), (r, c)))
            continue
        keep, destroy = (r, c) if destroy_c < destroy_r else (c, r)
        f[f == destroy] = keep
        queue[:] = [(cost, (keep if a == destroy else a, keep if b == destroy else b))
                    for cost, (a, b) in queue]
        quadrics[r] = total
        quadrics[c] = total
        f = f[(f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])]
        count = np.unique(f).shape[0]
    survivors = np.unique(f)
    return survivors, np.searchsorted(survivors, f)


@pytest.mark.parametrize("subdivisions, target", [(1, 11), (2, 40), (3, 100)])
def test_decimation_matches_comas_loop(subdivisions, target):
    vertices, faces = _jittered_sphere(subdivisions)
    survivors, coarse = coma_decimate(vertices, faces, target)
    expected_survivors, expected_faces = _literal_coma(vertices, faces, target)
    np.testing.assert_array_equal(survivors, expected_survivors)
    np.testing.assert_array_equal(np.sort(coarse, axis=0), np.sort(expected_faces, axis=0))
    assert survivors.shape[0] <= target


def test_up_sampling_follows_comas_three_cases():
    """Inside a triangle: barycentric coordinates of the projection. Beside an edge: least
    squares of the two edge vertices against the unprojected point (the row need not sum to
    1). Beyond a corner: weight 1."""
    coarse = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    faces = np.array([[0, 1, 2]])
    fine = np.array([[0.25, 0.25, 2.0], [0.5, -1.0, 1.5], [2.0, -1.0, 1.0]])
    index, weight = coma_up_sampling(fine, coarse, faces)
    np.testing.assert_array_equal(index, [[0, 1, 2]] * 3)
    np.testing.assert_allclose(weight[0], [0.5, 0.25, 0.25], atol=1e-12)
    edge = np.linalg.lstsq(coarse[:2].T, fine[1], rcond=None)[0]
    np.testing.assert_allclose(weight[1], [edge[0], edge[1], 0.0], atol=1e-12)
    assert abs(weight[1].sum() - 1.0) > 0.1
    np.testing.assert_allclose(weight[2], [0.0, 1.0, 0.0])


def test_coma_hierarchy_levels():
    vertices, faces = _jittered_sphere(3)
    hierarchy = coma_hierarchy(vertices, faces, (4, 4))
    assert hierarchy.sizes == (642, 161, 41)
    for i, down in enumerate(hierarchy.down_indices):
        assert (np.diff(down) > 0).all()
        np.testing.assert_array_equal(hierarchy.vertices[i + 1], hierarchy.vertices[i][down])
        own = np.flatnonzero(np.isin(np.arange(hierarchy.sizes[i]), down))
        np.testing.assert_allclose(hierarchy.up_weights[i][own].max(axis=1), 1.0)


def test_head_with_eyes_has_flames_layout():
    vertices, faces = hierarchy_quality.head_with_eyes()
    assert vertices.shape == (5023, 3)
    count, labels = connected_components(faces, vertices.shape[0])
    assert count == 3
    assert sorted(np.bincount(labels).tolist()) == [492, 492, 4039]
    loops = boundary_loops(faces)
    assert len(loops) == 1 and (labels[loops[0]] == labels[0]).all(), "only the neck is open"
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    assert np.unique(directed, axis=0).shape[0] == directed.shape[0], "consistent winding"


def test_measure_by_hand():
    """Two-level hierarchy of three collinear points: the middle one interpolated halfway."""
    sampling = hierarchy_quality.Sampling([np.array([0, 2])], [np.array([[0, 0, 0], [0, 1, 1],
                                                                        [1, 1, 1]])],
                                          [np.array([[1.0, 0, 0], [0.5, 0.5, 0], [1, 0, 0]])])
    shape = np.array([[0.0, 0, 0], [0.5, 0.003, 0], [1.0, 0, 0]])
    result = hierarchy_quality.measure(sampling, shape)
    assert result["steps"][0] == pytest.approx({"mean": 1.0, "max": 3.0})
    assert result["levels"] == result["steps"]


def test_command_measures_a_published_file(tmp_path):
    """A pickle in the published layout, written from CoMA's reference: its row matches the
    reference built on its template, and jaxface's hierarchies get the file's level sizes."""
    vertices, faces = _jittered_sphere(3, seed=1)
    coma = coma_hierarchy(vertices, faces, (3, 3))
    meshes = list(zip(coma.vertices, coma.faces, strict=True))
    down, up = [], []
    for i, d in enumerate(coma.down_indices):
        n_prev, n = coma.sizes[i], coma.sizes[i + 1]
        down.append(scipy.sparse.csc_matrix((np.ones(n), (np.arange(n), d)), shape=(n, n_prev)))
        rows = np.repeat(np.arange(n_prev), 3)
        w = coma.up_weights[i].ravel()
        keep = w != 0
        up.append(scipy.sparse.csc_matrix((w[keep], (rows[keep], coma.up_indices[i].ravel()[keep])),
                                          shape=(n_prev, n)))
    path = tmp_path / "downsampling_matrices.pkl"
    with open(path, "wb") as f:
        pickle.dump({"M_verts_faces": meshes, "D": down, "U": up}, f, protocol=2)
    out = tmp_path / "out"
    results = hierarchy_quality.main(["--meshes=", "--published", str(path), "--out", str(out),
                                      "--methods=qslim,surface_distance"])
    rows = results["downsampling_matrices.pkl"]["hierarchies"]
    assert list(rows) == ["published", "coma", "qslim", "surface_distance"]
    for name in rows:
        assert rows[name]["sizes"] == list(coma.sizes)
    for kind in ("steps", "levels"):
        for got, want in zip(rows["published"]["template"][kind], rows["coma"]["template"][kind],
                             strict=True):
            assert got["mean"] == pytest.approx(want["mean"], rel=1e-4)
    assert rows["surface_distance"]["weights"][0]["rows_not_summing_to_1"] == 0
    assert all(rows[name]["other_parts"] == [0, 0, 0] for name in rows), "one component"
    diagnostics = results["downsampling_matrices.pkl"]["diagnostics"]
    assert len(diagnostics["qslim_coma_up"]["steps"]) == len(diagnostics["coma_shifted"]["steps"])
    saved = json.loads((out / "hierarchy_quality.json").read_text())
    assert saved["downsampling_matrices.pkl"]["hierarchies"]["coma"]["sizes"] == list(coma.sizes)
    markdown = (out / "hierarchy_quality.md").read_text()
    assert "| step 1 (642->214) |" in markdown and "| level 2 (72) |" in markdown


def test_face_shapes_are_distinct_expressions_and_faces():
    vertices, faces, shapes, what = hierarchy_quality.template_and_shapes("face1")
    assert vertices.shape == (1790, 3) and faces.shape[1] == 3 and len(shapes) == 10
    moved = np.array([np.abs(s - vertices).max() for s in shapes])
    assert (moved > 0.005).all(), "every shape differs from the template by millimetres"
    assert len({s.tobytes() for s in shapes}) == 10, "no shape twice"
    assert "ARKit" in what
    with pytest.raises(ValueError, match="unknown mesh 'flame'"):
        hierarchy_quality.template_and_shapes("flame")
