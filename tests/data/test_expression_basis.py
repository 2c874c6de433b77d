"""Tests for jaxface.data.expression_basis (the ARKit basis transferred from Face Cap)."""

import ast
import doctest
import inspect

import numpy as np
import pytest

from jaxface.data import expression_basis
from jaxface.data.expression_basis import ARKIT_NAMES, load_expression_basis
from jaxface.data.template import MOUTH_LOWER_INNER, MOUTH_UPPER_INNER, load_face_template

# Eyelid margins of the template (boundary loops of the eye holes), paired upper/lower from the
# inner to the outer corner. The subject's left eye is at x > 0.
_LEFT_UPPER_LID = (398, 384, 385, 386, 387, 388, 466)
_LEFT_LOWER_LID = (382, 381, 380, 374, 373, 390, 249)
_RIGHT_UPPER_LID = (173, 157, 158, 159, 160, 161, 246)
_RIGHT_LOWER_LID = (155, 154, 153, 145, 144, 163, 7)
_CHIN = 152
_MIRROR_X = np.array([-1.0, 1.0, 1.0])


@pytest.fixture(scope="module")
def base():
    return load_expression_basis(0)


@pytest.fixture(scope="module")
def template():
    return load_face_template(0)


def _shape(basis, name):
    return basis.displacements[basis.index(name)].astype(np.float64)


@pytest.mark.parametrize("level, num_vertices", [(0, 468), (1, 1790), (2, 6990)])
def test_shapes_per_level(level, num_vertices):
    basis = load_expression_basis(level)
    assert basis.names == ARKIT_NAMES and len(ARKIT_NAMES) == 52
    assert basis.displacements.shape == (52, num_vertices, 3)
    assert basis.displacements.dtype == np.float32
    assert basis.num_shapes == 52 and basis.num_vertices == num_vertices
    assert basis.num_vertices == load_face_template(level).num_vertices
    assert basis.level == level
    assert not basis.displacements.flags.writeable  # cached and shared
    assert load_expression_basis(level) is basis
    assert np.all(np.isfinite(basis.displacements))


def test_capture_weights_and_pose(base):
    w = base.weights
    assert w.shape == (335, 52) and w.dtype == np.float32
    assert np.all(np.isfinite(w)) and w.min() >= 0.0 and w.max() <= 1.0
    assert base.fps == 30.0
    assert w[:, base.index("jawOpen")].max() > 0.9  # the take opens the jaw fully
    r = base.pose_rotation.astype(np.float64)
    assert r.shape == (335, 3, 3) and base.pose_translation.shape == (335, 3)
    np.testing.assert_allclose(r @ np.swapaxes(r, 1, 2), np.broadcast_to(np.eye(3), r.shape),
                               atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-5)
    assert np.all(np.isfinite(base.pose_translation))


def test_apply_and_index(base):
    assert base.index("jawOpen") == 24 and base.index("tongueOut") == 51
    with pytest.raises(KeyError):
        base.index("jawClose")
    one_hot = np.zeros(52, np.float32)
    one_hot[base.index("mouthSmile_L")] = 1.0
    smile = base.displacements[base.index("mouthSmile_L")]
    np.testing.assert_array_equal(base.apply(one_hot), smile)
    frames = base.apply(base.weights[:7])
    assert frames.shape == (7, 468, 3) and frames.dtype == np.float32
    expected = np.einsum("tk,knc->tnc", base.weights[:7].astype(np.float64),
                         base.displacements.astype(np.float64))
    np.testing.assert_allclose(frames, expected, atol=1e-6)
    assert base.apply(np.zeros((2, 3, 52))).shape == (2, 3, 468, 3)
    with pytest.raises(ValueError):
        base.apply(np.zeros(51))


def _loop_even_rule(faces: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Loop's rule for the original vertices, written out independently of jaxface.mesh."""
    n = field.shape[0]
    neighbours = [set() for _ in range(n)]
    edge_count: dict[tuple[int, int], int] = {}
    for a, b, c in faces.tolist():
        for i, j in ((a, b), (b, c), (c, a)):
            neighbours[i].add(j)
            neighbours[j].add(i)
            key = (min(i, j), max(i, j))
            edge_count[key] = edge_count.get(key, 0) + 1
    boundary_nb = [[] for _ in range(n)]
    for (i, j), count in edge_count.items():
        if count == 1:
            boundary_nb[i].append(j)
            boundary_nb[j].append(i)
    out = np.empty_like(field)
    for v in range(n):
        if boundary_nb[v]:
            b0, b1 = boundary_nb[v]
            out[v] = 0.75 * field[v] + 0.125 * (field[b0] + field[b1])
        else:
            k = len(neighbours[v])
            beta = (5.0 / 8.0 - (3.0 / 8.0 + 0.25 * np.cos(2.0 * np.pi / k)) ** 2) / k
            out[v] = (1.0 - k * beta) * field[v] + beta * field[sorted(neighbours[v])].sum(0)
    return out


def test_lifted_basis_follows_loop_subdivision(base, template):
    level1 = load_expression_basis(1)
    level2 = load_expression_basis(2)
    d0 = base.displacements.astype(np.float64).transpose(1, 0, 2).reshape(468, -1)
    d1 = level1.displacements.astype(np.float64).transpose(1, 0, 2).reshape(1790, -1)
    d2 = level2.displacements.astype(np.float64).transpose(1, 0, 2).reshape(6990, -1)
    # The original vertices keep their indices and move by Loop's even rule.
    np.testing.assert_allclose(d1[:468], _loop_even_rule(template.faces, d0), atol=1e-7)
    np.testing.assert_allclose(d2[:1790], _loop_even_rule(load_face_template(1).faces, d1),
                               atol=1e-7)
    # Midpoint subdivision keeps the original vertices in place, and new ones on edge midpoints.
    mid = load_expression_basis(1, scheme="midpoint").displacements
    np.testing.assert_array_equal(mid[:, :468], base.displacements)
    f = template.faces
    edges = np.unique(np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1),
                      axis=0)  # new vertex 468 + k lies on the k-th sorted edge
    d = base.displacements
    np.testing.assert_allclose(mid[:, 468:], 0.5 * (d[:, edges[:, 0]] + d[:, edges[:, 1]]),
                               atol=1e-8)
    with pytest.raises(ValueError):
        load_expression_basis(-1)
    # A displaced base mesh subdivides to the template of that level plus the lifted basis.
    w = base.weights[100]
    t1 = load_face_template(1)
    np.testing.assert_allclose(
        t1.from_base @ (template.vertices + base.apply(w)).astype(np.float64),
        t1.vertices + level1.apply(w), atol=1e-6)


def test_left_right_shapes_mirror(base, template):
    mirror = template.mirror
    smile_l, smile_r = _shape(base, "mouthSmile_L"), _shape(base, "mouthSmile_R")
    # The subject's left is x > 0: the left smile moves that side (2.4 mm at most across the
    # midline, 20 mm on its own side).
    norm = np.linalg.norm(smile_l, axis=1)
    assert np.all(template.vertices[norm > 0.005, 0] > 0)
    assert norm[template.vertices[:, 0] < 0].max() < 0.15 * norm.max()
    # Measured: 0.04 mm for the smile, at most 0.24 mm over all pairs (cheekSquint), against
    # displacements of 4-46 mm.
    err = np.linalg.norm(smile_l[mirror] * _MIRROR_X - smile_r, axis=1)
    assert err.max() < 1e-4
    pairs = [(n, n[:-2] + "_R") for n in ARKIT_NAMES if n.endswith("_L")]
    pairs += [("jawLeft", "jawRight"), ("mouthLeft", "mouthRight")]
    for left, right in pairs:
        d_l, d_r = _shape(base, left), _shape(base, right)
        err = np.linalg.norm(d_l[mirror] * _MIRROR_X - d_r, axis=1)
        assert err.max() < 5e-4, (left, right, err.max())


@pytest.mark.parametrize("side", ["L", "R"])
def test_eye_blink_closes_the_eye(base, template, side):
    upper, lower = ((_LEFT_UPPER_LID, _LEFT_LOWER_LID) if side == "L"
                    else (_RIGHT_UPPER_LID, _RIGHT_LOWER_LID))
    v = template.vertices.astype(np.float64)
    d = _shape(base, f"eyeBlink_{side}")
    sign = 1.0 if side == "L" else -1.0
    assert np.all(sign * v[list(upper), 0] > 0)
    mid = list(upper[1:-1])
    assert np.all(d[mid, 1] < -0.001)  # the upper lid moves down
    gap = v[list(upper), 1] - v[list(lower), 1]
    closed = (v + d)[list(upper), 1] - (v + d)[list(lower), 1]
    assert np.all(gap[1:-1] > 0.004)
    # Measured: the 10 mm opening closes to within 1.2 mm along the whole lid (0.8 mm away from
    # the corners).
    assert np.all(np.abs(closed) < 0.0015)
    assert np.all(np.abs(closed[1:-1]) < 0.2 * gap[1:-1])
    # The other eye does not move.
    other = sign * v[:, 0] < -0.005
    assert np.linalg.norm(d[other], axis=1).max() < 0.0005


def test_jaw_open(base, template):
    d = _shape(base, "jawOpen")
    assert -0.040 < d[_CHIN, 1] < -0.015  # measured: 26 mm down (and 26 mm back)
    upper = d[list(MOUTH_UPPER_INNER), 1]
    lower = d[list(MOUTH_LOWER_INNER), 1]
    assert lower.mean() < upper.mean() - 0.02  # measured: -35 mm vs -2.5 mm
    assert np.all(lower < upper - 0.01)
    assert np.linalg.norm(d, axis=1).max() > 0.03
    # The forehead stays.
    forehead = template.vertices[:, 1] > 0.05
    assert np.linalg.norm(d[forehead], axis=1).max() < 0.001


def test_tongue_out_is_zero_and_others_are_not(base):
    norms = np.linalg.norm(base.displacements, axis=-1).max(axis=-1)
    assert norms[base.index("tongueOut")] == 0.0
    others = np.delete(norms, base.index("tongueOut"))
    assert others.min() > 0.003 and others.max() < 0.05


def test_module_is_numpy_only():
    tree = ast.parse(inspect.getsource(expression_basis))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert "jax" not in imported and "flax" not in imported


def test_docstring_example():
    result = doctest.testmod(expression_basis, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0
    assert result.failed == 0
