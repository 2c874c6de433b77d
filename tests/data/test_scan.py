"""A scan of any topology: landmark files, landmarks found on renders, registration."""

import importlib.util
import sys

import fast_simplification
import numpy as np
import pytest

from jaxface.data import photo as P
from jaxface.data import scan as S
from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.mesh import primitives
from jaxface.mesh.errors import MeshError
from jaxface.mesh.registration import Similarity, rotation_about_axis
from jaxface.mesh.topology import boundary_loops
from jaxface.viz.render import fit_camera, project_points

needs_mediapipe = pytest.mark.skipif(
    importlib.util.find_spec("mediapipe") is None,
    reason="mediapipe not installed (pip install -e '.[test]' installs it)",
)
#: The canonical face turned to a z-up frame looking along -y, in millimetres.
_Z_UP_MM = Similarity(1000.0, rotation_about_axis([1.0, 0.0, 0.0], 90.0),
                      np.array([12.0, -30.0, 800.0]))


@pytest.fixture(scope="module")
def canonical_scan():
    """MediaPipe's canonical face at level 1 (a real-proportioned identity), decimated to
    half by fast_simplification: ``(truth [1790, 3], scan vertices, scan faces)``, metres."""
    truth = load_canonical_face(1).astype(np.float64)
    v, f = fast_simplification.simplify(truth, np.array(load_face_template(1).faces, np.int32),
                                        target_reduction=0.5)
    return truth, v, f


def test_read_landmarks_text_and_npy(tmp_path):
    points = np.arange(204.0).reshape(68, 3)
    text = tmp_path / "ibug.txt"
    lines = ["# x, y, z in mm"] + [", ".join(f"{c:g}" for c in p) for p in points]
    lines[5] = "nan nan nan  # not visible"
    text.write_text("\n".join(lines) + "\n")
    marks = S.read_landmarks(text)
    assert marks.scheme == "ibug68" and marks.source == str(text)
    np.testing.assert_array_equal(marks.template_indices, IBUG68_VERTICES)
    assert np.isnan(marks.points[4]).all() and marks.present.sum() == 67
    np.testing.assert_array_equal(marks.points[marks.present], np.delete(points, 4, axis=0))
    assert marks.describe() == f"68 iBUG points, 67 present ({text})"
    np.testing.assert_array_equal(marks.scaled(0.001).points[0], points[0] * 0.001)
    mp = tmp_path / "mediapipe.npy"
    np.save(mp, np.random.default_rng(0).normal(size=(478, 3)))
    marks = S.read_landmarks(mp)
    assert marks.scheme == "mediapipe468" and marks.points.shape == (468, 3)
    np.testing.assert_array_equal(marks.template_indices, np.arange(468))


@pytest.mark.parametrize(("content", "message"), [
    ("1 2 3\n" * 10, r"expected 68 \(iBUG\) or 468 \(MediaPipe\) landmarks of 3 coordinates, "
                     r"got an array of shape \[10, 3\]"),
    ("1 2 3\n" * 67 + "1 2\n", "line 68: expected 3 values"),
    ("1 2 3\n" * 67 + "1 2 x\n", "line 68: expected numbers"),
    ("1 2 3\n" * 67 + "1 nan 3\n", "a row of nan marks a missing one"),
    ("nan nan nan\n" * 66 + "1 2 3\n" * 2, "at least 3 landmarks must be present, got 2"),
])
def test_bad_landmark_files_name_the_file_and_the_problem(tmp_path, content, message):
    path = tmp_path / "marks.txt"
    path.write_text(content)
    with pytest.raises(S.ScanError, match=message) as err:
        S.read_landmarks(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)
    with pytest.raises(S.ScanError, match="no such landmark file"):
        S.read_landmarks(tmp_path / "missing.txt")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"not an array")
    with pytest.raises(S.ScanError, match="not a readable .npy array"):
        S.read_landmarks(broken)


def test_candidate_views_are_the_24_axis_aligned_rotations():
    views = S.candidate_views()
    assert len(views) == 24
    assert len({tuple(np.round(v, 6).ravel()) for v in views}) == 24
    for view in views:
        np.testing.assert_allclose(view @ view.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(view) == pytest.approx(1.0)
    np.testing.assert_array_equal(views[0], np.eye(3))  # the face toward +z, y up
    forwards = {tuple(v[2]) for v in views[:6]}  # the six directions come first
    assert len(forwards) == 6


def test_lift_points_casts_rays_onto_the_surface():
    v, f = primitives.grid_patch(9, 9)
    v = v.astype(np.float64)
    v[:, 2] = 0.3 * v[:, 0] - 0.2 * v[:, 1]  # a tilted plane: z = 0.3 x - 0.2 y
    view = rotation_about_axis([1.0, 1.0, 0.0], 25.0).T
    camera = fit_camera(v, 64, rotation=view)
    pixels = np.array([[32.3, 30.7], [10.5, 50.2], [20.0, 20.0], [0.2, 0.3], [-5.0, 10.0]])
    points = S.lift_points(pixels, v, f, camera)
    hit = np.isfinite(points).all(axis=1)
    assert hit[:3].all() and not hit[3:].any()  # the corners of the image are off the patch
    np.testing.assert_allclose(points[hit, 2], 0.3 * points[hit, 0] - 0.2 * points[hit, 1],
                               atol=1e-12)
    back, _ = project_points(points[hit], camera)
    np.testing.assert_allclose(back, pixels[hit], atol=1e-9)


@needs_mediapipe
@pytest.mark.parametrize("turn", ["z_up_mm", "facing_minus_z"])
def test_landmarks_are_found_on_renders_of_a_turned_scan(canonical_scan, turn):
    truth, v, f = canonical_scan
    sim = (_Z_UP_MM if turn == "z_up_mm"
           else Similarity(1.0, rotation_about_axis([0.0, 1.0, 0.0], 180.0), np.zeros(3)))
    marks = S.detect_landmarks(sim.apply(v), f)
    assert marks.scheme == "mediapipe468" and marks.source == "detected"
    found = sim.inverse().apply(marks.points)
    err = 1000.0 * np.linalg.norm(found - truth[:468], axis=1)
    ok = np.isfinite(err)
    # Measured: about 400 of 468 points lift (the outline, the eye holes and the mouth slit
    # take the rest), 2.8 mm median error.
    assert ok.sum() > 300 and np.median(err[ok]) < 4.5
    assert np.isnan(marks.points[boundary_loops(load_face_template(0).faces)[0]]).all()
    # The render was seen from the face's front: the view's toward-the-viewer axis is the
    # scan's turned +z.
    assert marks.view[2] @ sim.rotation[:, 2] > 0.95


@needs_mediapipe
def test_no_face_on_the_renders_asks_for_a_landmark_file():
    v, f = primitives.icosphere(3)
    with pytest.raises(S.NoScanFaceError) as err:
        S.detect_landmarks(v, f, source="ball.ply")
    assert str(err.value) == (
        "ball.ply: no face found on renders of the scan from 24 directions; give its landmarks in "
        "a file (68 iBUG or 468 MediaPipe points, x y z per line)")


def test_missing_mediapipe_is_named_with_its_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe fails
    v, f = primitives.icosphere(1)
    with pytest.raises(P.MediaPipeMissingError, match=r"finding a scan's landmarks needs "
                       r"MediaPipe, which is not installed .*pip install 'jaxface\[photo\]', or "
                       "give the landmarks in a file"):
        S.detect_landmarks(v, f)


@needs_mediapipe
def test_register_scan_with_detected_and_with_given_landmarks(canonical_scan):
    """Measured on the canonical face (level 1) decimated to 900 vertices, in millimetres,
    turned z-up: with detected landmarks 2.5 mm mean vertex error against the truth (7.0 mm
    at the 95th percentile: the face's sides slide along the surface without the outline),
    with the 68 true iBUG points 1.1 mm (2.5 mm)."""
    truth, v, f = canonical_scan
    template = load_face_template(1)
    scan = _Z_UP_MM.apply(v)
    detected, marks = S.register_scan(scan, f, template.vertices, template.faces)
    assert marks.source == "detected"
    given = S.ScanLandmarks(points=_Z_UP_MM.apply(truth[list(IBUG68_VERTICES)]),
                            template_indices=np.asarray(IBUG68_VERTICES, np.int32),
                            scheme="ibug68", source="truth")
    exact, _ = S.register_scan(scan, f, template.vertices, template.faces, given)
    for reg, mean, p95 in ((detected, 3.2, 9.0), (exact, 1.4, 3.2)):
        err = 1000.0 * np.linalg.norm(_Z_UP_MM.inverse().apply(reg.vertices) - truth, axis=1)
        assert err.mean() < mean and np.percentile(err, 95) < p95, (err.mean(), mean)


def test_register_scan_errors(canonical_scan):
    truth, v, f = canonical_scan
    with pytest.raises(MeshError, match="scan.ply: faces: expected a triangle mesh, the scan "
                                        "has no faces"):
        S.register_scan(v, np.zeros((0, 3), np.int32), truth, load_face_template(2).faces,
                        source="scan.ply")
    cap, cap_faces = primitives.spherical_cap(2, 0.0)
    marks = S.ScanLandmarks(points=truth[:468], template_indices=np.arange(468, dtype=np.int32),
                            scheme="mediapipe468", source="marks.npy")
    with pytest.raises(S.ScanError, match=f"marks.npy: the mediapipe468 landmarks need the face "
                                          f"template's vertices, the template has only "
                                          f"{len(cap)}"):
        S.register_scan(v, f, cap, cap_faces, marks)
