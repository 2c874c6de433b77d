"""jaxface.generate (the library): drive_face, a tracked expression moving a neutral face."""

import dataclasses

import numpy as np
import pytest

from jaxface.data.expression_basis import load_expression_basis
from jaxface.data.landmarks import LandmarkDefinition, landmark_displacement
from jaxface.data.photo import mouth_corner_lift
from jaxface.data.retarget import retarget, track_expression
from jaxface.data.template import IBUG68_VERTICES, load_face_template
from jaxface.generate import FaceGenerator, drive_face, shipped_bundle
from jaxface.mesh.errors import MeshError


@pytest.fixture(scope="module")
def generator():
    path = shipped_bundle("default")
    if path is None:
        pytest.skip("the shipped default models are not installed")
    return FaceGenerator(path)


def _smile_track(amounts):
    """The template smiling by ``amounts`` (ARKit weights), frame 0 at rest."""
    t = load_face_template(0).vertices.astype(np.float64)
    basis = load_expression_basis(0)
    w = np.zeros((len(amounts), 52))
    for name in ("mouthSmile_L", "mouthSmile_R"):
        w[:, basis.index(name)] = amounts
    faces = t + np.einsum("tk,kvc->tvc", w, basis.displacements.astype(np.float64))
    return track_expression(faces, w, fps=30.0, smoothing_s=0.0)


def test_a_smile_drives_the_default_face(generator):
    amounts = np.array([0.0, 0.0, 0.3, 0.6, 0.9])
    track = _smile_track(amounts)
    neutral = generator.default_neutral
    s2d = generator.s2d
    driven = drive_face(s2d, neutral, track)
    assert driven.meshes.shape == (5, generator.num_vertices, 3)
    assert np.isfinite(driven.meshes).all()
    # The landmark targets: the neutral's 68 landmarks plus the retargeted displacement.
    moved = retarget(track.displacements, track.neutral, neutral[:468])
    np.testing.assert_allclose(driven.displacements, moved, atol=1e-7)
    np.testing.assert_allclose(driven.landmarks,
                               neutral[list(IBUG68_VERTICES)] + moved[:, list(IBUG68_VERTICES)],
                               atol=1e-7)
    # The meshes are S2D-Dec's: neutral + decode(normalised landmark displacement).
    disp = landmark_displacement(driven.landmarks, neutral[list(IBUG68_VERTICES)])
    np.testing.assert_allclose(driven.meshes, s2d.animate(neutral, disp), atol=1e-6)
    # A rest frame leaves the face as S2D-Dec's zero input does; the smile lifts the corners.
    np.testing.assert_allclose(driven.meshes[0], s2d.animate(neutral, np.zeros((1, 204)))[0],
                               atol=1e-5)
    lift = np.array([mouth_corner_lift(m) for m in driven.meshes])
    assert np.all(np.diff(lift[1:]) > 0.3), lift  # mm per step of 0.3
    assert lift[-1] - lift[0] > 2.0, lift


def test_drive_face_refuses_other_models_and_faces(generator):
    track = _smile_track(np.array([0.0, 0.5]))
    other = dataclasses.replace(
        generator.s2d, landmarks=LandmarkDefinition(vertex_indices=np.arange(68)))
    with pytest.raises(ValueError, match="is not the jaxface face template"):
        drive_face(other, generator.default_neutral, track)
    with pytest.raises(MeshError, match=r"expected a neutral face \[1790, 3\]"):
        drive_face(generator.s2d, generator.default_neutral[:468], track)
