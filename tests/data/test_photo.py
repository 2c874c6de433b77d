"""Photo -> neutral face: the expression fit on known faces, bad input, a real photograph."""

import importlib.util
import sys

import numpy as np
import pytest

from jaxface.data import photo as P
from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.expression_basis import load_expression_basis
from jaxface.data.template import load_face_template

_MISSING = [m for m in ("mediapipe", "skimage") if importlib.util.find_spec(m) is None]
needs_mediapipe = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"{' and '.join(_MISSING)} not installed (pip install -e '.[test]' installs them)",
)


def _rotation(rng):
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)) * 0.15 + np.eye(3))
    return q * np.sign(np.linalg.det(q))


def test_fit_removes_a_known_smile_from_another_identity():
    basis = load_expression_basis(0)
    face = load_canonical_face(0).astype(np.float64)  # a real identity, not the template
    w = np.zeros(52)
    for name, value in (("mouthSmile_L", 0.6), ("mouthSmile_R", 0.6), ("jawOpen", 0.25)):
        w[basis.index(name)] = value
    smiling = face + basis.apply(w)
    rng = np.random.default_rng(0)
    points = 2500.0 * smiling @ _rotation(rng).T + np.array([300.0, -200.0, 40.0])  # pixels
    fit = P.fit_neutral(points, np.clip(w + rng.normal(0, 0.1, 52), 0, 1))
    assert fit.neutral.shape == (468, 3) and np.isfinite(fit.neutral).all()
    assert np.all((fit.weights >= 0) & (fit.weights <= 1))
    # The smooth-identity prior lets the neutral keep part of the smile (the weight comes out
    # well below 0.6), but the expression is found and the corners come down.
    assert fit.weights[basis.index("mouthSmile_L")] > 0.08
    assert fit.weights[basis.index("jawOpen")] > 0.1
    before, after = P.mouth_corner_lift(smiling), P.mouth_corner_lift(fit.neutral)
    truth = P.mouth_corner_lift(face)
    assert before - truth > 3.0
    assert abs(after - truth) < 0.3 * (before - truth), (before, after, truth)
    # The neutral is nearer the true identity than the smiling input (both rigidly aligned).
    err = np.sqrt(((fit.neutral - face) ** 2).sum(1).mean())
    gap = np.sqrt(((smiling - face) ** 2).sum(1).mean())
    assert err < gap
    assert 0 <= fit.residual_mm < 3.0
    assert fit.scale == pytest.approx(1.0 / 2500.0, rel=0.05)


def test_fit_of_the_template_itself_changes_little():
    t = load_face_template(0).vertices
    fit = P.fit_neutral(t, np.zeros(52))
    assert np.abs(fit.neutral - t).max() < 1e-3
    assert fit.weights.max() < 0.05
    assert fit.residual_mm < 0.1


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError, match=r"points must be \[468, 3\]"):
        P.fit_neutral(np.zeros((100, 3)), np.zeros(52))
    with pytest.raises(ValueError, match=r"initial_weights must be \[52\]"):
        P.fit_neutral(load_face_template(0).vertices, np.zeros(51))
    bad = np.array(load_face_template(0).vertices)
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        P.fit_neutral(bad, np.zeros(52))
    with pytest.raises(ValueError, match="one position"):
        P.fit_neutral(np.ones((468, 3)), np.zeros(52))
    with pytest.raises(ValueError, match="NeutralPriors.laplacian must be >= 0"):
        P.NeutralPriors(laplacian=-1.0)


def test_template_level_and_lifting():
    assert [P.template_level(n) for n in (468, 1790, 6990)] == [0, 1, 2]
    with pytest.raises(ValueError, match="5023 vertices is no level of the face template"):
        P.template_level(5023)


def test_shipped_model_file_is_the_checked_one():
    path = P.face_landmarker_path()
    with open(path, "rb") as fh:
        assert len(fh.read()) == P.FACE_LANDMARKER_SIZE


def test_unreadable_and_missing_images(tmp_path):
    bad = tmp_path / "face.jpg"
    bad.write_bytes(b"this is not a JPEG")
    with pytest.raises(P.PhotoError, match=r"face\.jpg: not a readable image"):
        P.read_photo(bad)
    with pytest.raises(P.PhotoError, match=r"nothere\.png: no such image file"):
        P.read_photo(tmp_path / "nothere.png")
    with pytest.raises(P.PhotoError, match="expected a uint8 image"):
        P.detect_face(np.zeros((64, 64, 3), np.float32))


def test_missing_mediapipe_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # import mediapipe -> ImportError
    with pytest.raises(P.MediaPipeMissingError, match=r"pip install 'jaxface\[photo\]'"):
        P.detect_face(np.full((64, 64, 3), 128, np.uint8))


@pytest.fixture(scope="module")
def astronaut():
    import skimage.data

    return skimage.data.astronaut()


@needs_mediapipe
def test_astronaut_neutral(astronaut):
    result = P.photo_to_neutral(astronaut, level=1)
    det = result.detection
    assert det.landmarks.shape == (478, 3) and det.image_size == (512, 512)
    px = P.landmark_pixels(det)
    assert np.all((px > 0) & (px < 512))
    names = result.names
    assert det.scores[names.index("mouthSmile_L")] > 0.5  # MediaPipe sees the smile
    tmpl = load_face_template(1)
    assert result.vertices.shape == (1790, 3) and np.isfinite(result.vertices).all()
    np.testing.assert_array_equal(result.faces, tmpl.faces)
    np.testing.assert_allclose(result.vertices, tmpl.from_base @ result.base_vertices, atol=1e-6)
    # The template's size and frame (the scale is the template's; 0.15 m wide).
    width = np.ptp(result.base_vertices[:, 0])
    assert 0.13 < width < 0.17
    # The smile is largely removed: the mouth corners come down to near the template's.
    before = P.mouth_corner_lift(result.aligned)
    after = P.mouth_corner_lift(result.base_vertices)
    relaxed = P.mouth_corner_lift(tmpl.vertices)
    assert before - relaxed > 5.0
    assert after - relaxed < 0.25 * (before - relaxed), (before, after, relaxed)
    assert result.weights[names.index("mouthSmile_L")] > 0.1
    assert 0 < result.residual_mm < 2.0
    assert result.at_level(2).vertices.shape == (6990, 3)


@needs_mediapipe
def test_no_face_in_a_grey_image():
    with pytest.raises(P.NoFaceError, match=r"grey\.png: no face found in the 300 x 200 image"):
        P.photo_to_neutral(np.full((200, 300, 3), 128, np.uint8), source="grey.png")


@needs_mediapipe
def test_overlay_and_preview(astronaut):
    result = P.photo_to_neutral(astronaut, level=0)
    overlay = P.overlay_landmarks(astronaut, result.detection)
    assert overlay.shape == astronaut.shape and (overlay != astronaut).any()
    sheet = P.render_beside(astronaut, result, size=96)
    assert sheet.dtype == np.uint8 and sheet.shape[1] > 4 * 96
