"""Tests for jaxface.mesh.registration: similarity, rigid and non-rigid ICP, the transfer map."""

import fast_simplification
import numpy as np
import pytest
import scipy.spatial

from jaxface.data.procedural import ProceduralConfig, ProceduralFaces
from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.mesh.errors import MeshError
from jaxface.mesh.hierarchy import closest_points_on_mesh
from jaxface.mesh.registration import (
    RegistrationConfig,
    Similarity,
    fade_weights,
    fit_similarity,
    register_template,
    rotation_about_axis,
    transfer_displacements,
    transfer_map,
)
from jaxface.mesh.subdivision import subdivide

_MARKS = np.asarray(IBUG68_VERTICES)
_TRUTH = Similarity(1000.0, rotation_about_axis([1.0, 2.0, 0.5], 70.0),
                    np.array([30.0, -100.0, 500.0]))  # metres -> a millimetre scan, turned


@pytest.fixture(scope="module")
def deformed():
    """Level 1 of the template, a procedural identity on it, and that face decimated to 900
    vertices by fast_simplification (its vertices are not the template's)."""
    template = load_face_template(1)
    faces = ProceduralFaces(ProceduralConfig(num_subjects=2, template_subdivisions=1))
    truth = faces.neutral(1).astype(np.float64)
    v, f = fast_simplification.simplify(truth, np.array(template.faces, np.int32),
                                        target_reduction=0.5)
    return template, truth, v, f


def _mm(a, b):
    return 1000.0 * np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1)


def test_fit_similarity_recovers_a_known_transform_and_never_reflects(rng):
    points = rng.normal(size=(40, 3))
    truth = Similarity(2.5, rotation_about_axis(rng.normal(size=3), 123.0), rng.normal(size=3))
    fit = fit_similarity(points, truth.apply(points))
    assert fit.scale == pytest.approx(2.5, rel=1e-12)
    np.testing.assert_allclose(fit.rotation, truth.rotation, atol=1e-12)
    np.testing.assert_allclose(fit.translation, truth.translation, atol=1e-12)
    rigid = fit_similarity(points, truth.apply(points), scale=False)
    assert rigid.scale == 1.0 and np.linalg.det(rigid.rotation) == pytest.approx(1.0)
    mirrored = points * [-1.0, 1.0, 1.0]
    assert np.linalg.det(fit_similarity(points, mirrored).rotation) == pytest.approx(1.0)
    # Weights: pairs of weight 0 do not count, so a corrupted pair is ignored.
    target = truth.apply(points)
    target[0] += 100.0
    weights = np.ones(40)
    weights[0] = 0.0
    np.testing.assert_allclose(fit_similarity(points, target, weights).apply(points[1:]),
                               target[1:], atol=1e-9)
    np.testing.assert_allclose(truth.inverse().apply(truth.apply(points)), points, atol=1e-12)
    both = truth.then(truth.inverse())
    np.testing.assert_allclose(both.apply(points), points, atol=1e-12)
    with pytest.raises(ValueError, match="at least 3 weighted point pairs"):
        fit_similarity(points[:2], points[:2])


def test_register_template_recovers_a_known_similarity_exactly():
    template = load_face_template(0)
    v = template.vertices.astype(np.float64)
    scan = _TRUTH.apply(v)
    reg = register_template(v, template.faces, scan, template.faces, _MARKS, scan[_MARKS])
    assert reg.similarity.scale == pytest.approx(1000.0, rel=1e-9)
    np.testing.assert_allclose(reg.similarity.rotation, _TRUTH.rotation, atol=1e-9)
    np.testing.assert_allclose(reg.similarity.translation, _TRUTH.translation, atol=1e-5)
    np.testing.assert_allclose(reg.vertices, scan, atol=1e-6)  # 1 nm of a 150 mm face
    assert reg.inliers.all() and reg.residual.max() < 1e-6
    assert np.nanmax(reg.landmark_error) < 1e-6
    np.testing.assert_allclose(reg.to_template_orientation(reg.vertices), 1000.0 * v, atol=1e-6)
    np.testing.assert_allclose(reg.to_scan_orientation(np.eye(3)), _TRUTH.rotation.T,
                               atol=1e-9)


def test_nonrigid_icp_fits_a_decimated_other_face_below_the_measured_error(deformed):
    """Measured (level 1, 1790 vertices, the 900-vertex decimated face, true landmarks):
    similarity + rigid ICP 3.7 mm mean; after NICP 0.95 mm mean, 2.2 mm at the 95th
    percentile, 3.4 mm at most. The thresholds leave about 30% margin."""
    template, truth, v, f = deformed
    scan = _TRUTH.apply(v)
    reg = register_template(template.vertices, template.faces, scan, f, _MARKS,
                            _TRUTH.apply(truth[_MARKS]))
    back = _TRUTH.inverse().apply(reg.vertices)
    rigid = _mm(_TRUTH.inverse().apply(reg.similarity.apply(template.vertices)), truth)
    err = _mm(back, truth)
    assert err.mean() < 1.3 and np.percentile(err, 95) < 3.0 and err.max() < 4.5
    assert err.mean() < 0.4 * rigid.mean()
    # Registered vertices lie on the scan: the residual (scan units, mm) is a numpy reference.
    _, _, dist2 = closest_points_on_mesh(reg.vertices, scan, f)
    np.testing.assert_allclose(reg.residual, np.sqrt(dist2), rtol=1e-9)
    assert np.median(reg.residual[reg.inliers]) < 0.2  # mm: the scan is in millimetres
    assert reg.inliers.mean() > 0.9 and reg.solves >= len(RegistrationConfig().stiffness)


def test_transfer_map_of_identical_meshes_is_the_identity(rng):
    template = load_face_template(1)
    v = template.vertices.astype(np.float64)
    transfer = transfer_map(v, v, template.faces, (0.005, 0.03))
    assert transfer.num_scan_vertices == v.shape[0]
    np.testing.assert_array_equal(transfer.weight, 1.0)
    displacements = rng.normal(size=(4, v.shape[0], 3))
    np.testing.assert_allclose(transfer_displacements(transfer, displacements), displacements,
                               atol=1e-12)
    with pytest.raises(ValueError, match="template_displacements must be"):
        transfer_displacements(transfer, displacements[:, :10])


def test_transfer_is_the_barycentric_blend_of_the_closest_triangle(rng):
    template = load_face_template(0)
    v = template.vertices.astype(np.float64)
    points = v[rng.integers(0, v.shape[0], 50)] + rng.normal(scale=1e-3, size=(50, 3))
    transfer = transfer_map(points, v, template.faces, (0.005, 0.03), distance_scale=1000.0)
    face, bary, dist2 = closest_points_on_mesh(points, v, template.faces)
    displacements = rng.normal(size=(v.shape[0], 3))
    corners = template.faces[face]
    expected = np.einsum("pk,pkc->pc", bary, displacements[corners])
    expected *= fade_weights(np.sqrt(dist2), 0.005, 0.03)[:, None]
    np.testing.assert_allclose(transfer_displacements(transfer, displacements), expected,
                               atol=1e-12)
    np.testing.assert_allclose(transfer.distance, 1000.0 * np.sqrt(dist2), rtol=1e-12)


def test_fade_weights_is_a_smoothstep_between_start_and_end():
    d = np.linspace(-0.01, 0.05, 61)
    s = np.clip((d - 0.005) / 0.025, 0.0, 1.0)
    np.testing.assert_allclose(fade_weights(d, 0.005, 0.03), 1 - 3 * s ** 2 + 2 * s ** 3,
                               atol=1e-15)


def test_scan_parts_far_from_the_face_get_no_motion(deformed):
    """A scan with a 'back of the head' (the face copied 15 cm behind it): the displacement is
    faded with the distance from the registered face."""
    template, truth, v, f = deformed
    back_patch = v + [0.0, 0.0, -0.15]
    scan = np.concatenate([v, back_patch])
    faces = np.concatenate([f, f + v.shape[0]])
    reg = register_template(template.vertices, template.faces, scan, faces, _MARKS,
                            truth[_MARKS])
    weight = reg.transfer.weight
    assert (weight[v.shape[0]:] == 0.0).all()
    face_part = weight[:v.shape[0]]
    assert np.mean(face_part == 1.0) > 0.97
    motion = np.ones((2, template.num_vertices, 3))  # every template vertex moves
    moved = transfer_displacements(reg.transfer, motion)
    assert (moved[:, v.shape[0]:] == 0.0).all()
    np.testing.assert_allclose(moved[:, :v.shape[0]][:, face_part == 1.0], 1.0, atol=1e-9)
    # Intermediate distances get intermediate weights (a numpy reference of the fade).
    near = np.concatenate([v[:50] + [0.0, 0.0, 0.01], v[:50] + [0.0, 0.0, 0.02]])
    transfer = transfer_map(near, reg.vertices, template.faces, (0.005, 0.03))
    _, _, dist2 = closest_points_on_mesh(near, reg.vertices, template.faces)
    np.testing.assert_allclose(transfer.weight, fade_weights(np.sqrt(dist2), 0.005, 0.03))
    assert np.mean((transfer.weight > 0.0) & (transfer.weight < 1.0)) > 0.5


def test_inward_normals_and_holes_are_handled(deformed):
    """A scan with its triangles flipped (normals inward) and the template's right half cut
    away: the half that is there registers as well, the missing half has no inliers."""
    template, truth, v, f = deformed
    keep = f[v[f].mean(axis=1)[:, 0] > -0.01][:, ::-1]  # subject's left half, flipped
    reg = register_template(template.vertices, template.faces, v, keep, _MARKS, truth[_MARKS])
    x = template.vertices[:, 0]
    assert reg.inliers[x > 0.02].mean() > 0.9 and reg.inliers[x < -0.03].mean() < 0.05
    err = _mm(reg.vertices, truth)
    assert np.median(err[x > 0.02]) < 1.5


def test_a_remeshed_scan_whose_vertices_are_not_the_templates(deformed, rng):
    """Midpoint subdivision, decimation to 2.5k vertices, then every vertex slid along the
    surface by up to 0.3 mm (projected back onto the face): hardly any scan vertex is a
    template vertex (only boundary corners the projection lands on)."""
    template, truth, _, _ = deformed
    sub = subdivide(truth, template.faces, scheme="midpoint")
    v, f = fast_simplification.simplify(sub.vertices, np.array(sub.faces, np.int32),
                                        target_count=5000)
    face, bary, _ = closest_points_on_mesh(v + rng.uniform(-3e-4, 3e-4, v.shape), truth,
                                           template.faces)
    v = np.einsum("pk,pkc->pc", bary, truth[template.faces[face]])
    kept, _ = scipy.spatial.cKDTree(truth).query(v)
    assert np.mean(kept < 1e-6) < 0.02
    reg = register_template(template.vertices, template.faces, v, f, _MARKS, truth[_MARKS])
    err = _mm(reg.vertices, truth)
    assert err.mean() < 1.3 and np.percentile(err, 95) < 3.0


def test_bad_input_is_a_clear_error():
    template = load_face_template(0)
    v = template.vertices
    with pytest.raises(MeshError, match="scan: faces: expected a triangle mesh, it has no faces"):
        register_template(v, template.faces, v, np.zeros((0, 3), np.int32), _MARKS, v[_MARKS])
    with pytest.raises(ValueError, match=r"scan_landmarks must be \[68, 3\]"):
        register_template(v, template.faces, v, template.faces, _MARKS, v[:5])
    few = np.full((68, 3), np.nan)
    few[:2] = v[_MARKS[:2]]
    with pytest.raises(ValueError, match="need at least 3 scan landmarks, got 2"):
        register_template(v, template.faces, v, template.faces, _MARKS, few)
    with pytest.raises(ValueError, match="landmark weights"):
        RegistrationConfig(stiffness=(1.0, 2.0), landmark_weight=(1.0,))
    with pytest.raises(ValueError, match="fade"):
        RegistrationConfig(fade=(0.03, 0.01))
