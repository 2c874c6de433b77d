"""MorphableModel: validation, truncation, sub-meshes and vertex embeddings."""

import dataclasses

import numpy as np
import pytest

from jaxface.mesh import primitives
from jaxface.morphable.model import BarycentricEmbedding, MorphableModelError, triangles_within
from tests.morphable.toy import make_toy_model


def test_fields_are_normalised_and_read_only(toy):
    assert toy.v_template.dtype == np.float32 and toy.faces.dtype == np.int32
    assert (toy.num_vertices, toy.num_shape, toy.num_expression, toy.num_joints) == (42, 6, 4, 5)
    assert not toy.shapedirs.flags.writeable and not toy.masks["face"].flags.writeable
    np.testing.assert_array_equal(toy.masks["lips"], [1, 3])  # sorted, unique
    assert toy.landmarks68.faces.dtype == np.int32 and toy.landmarks68.bary.dtype == np.float32


def test_truncated(toy):
    t = toy.truncated(2, 3)
    assert t.shapedirs.shape == (42, 3, 2) and t.exprdirs.shape == (42, 3, 3)
    np.testing.assert_array_equal(t.shapedirs, toy.shapedirs[:, :, :2])
    assert t.expression_names == ("e0", "e1", "e2")
    np.testing.assert_array_equal(t.v_template, toy.v_template)
    with pytest.raises(MorphableModelError, match=r"toy: num_shape must be in \[0, 6\], got 7"):
        toy.truncated(7, 1)
    with pytest.raises(MorphableModelError, match="num_expression"):
        toy.truncated(1, 5)


@pytest.mark.parametrize("field, value, message", [
    ("shapedirs", np.zeros((41, 3, 6)), r"toy: shapedirs: expected shape \[42, 3, \*\], got "
                                        r"\[41, 3, 6\]"),
    ("exprdirs", np.zeros((42, 3, 4, 1)), r"toy: exprdirs: expected shape"),
    ("expression_names", ("a",), r"toy: expression_names: expected 4 names"),
    ("eyelids", np.zeros((3, 42, 3)), r"toy: eyelids: expected shape \[2, 42, 3\]"),
    ("faces", np.array([[0, 1, 42]]), r"toy: faces: indices must be in \[0, 42\)"),
    ("parents", np.array([-1, 0, 3, 1, 1]), r"toy: parents: expected -1 for joint 0"),
    ("j_regressor", np.zeros((4, 42)), r"toy: j_regressor: expected shape \[5, 42\]"),
    ("lbs_weights", np.full((42, 5), 0.5), r"toy: lbs_weights: rows must sum to 1"),
    ("posedirs", np.zeros((36, 125)), r"toy: posedirs: expected shape \[36, 126\]"),
    ("v_template", np.full((42, 3), np.nan), r"toy: v_template: expected finite numbers"),
    ("mediapipe_indices", np.arange(9), r"toy: mediapipe_indices: expected shape \[10\]"),
    ("mediapipe_indices", np.full(10, 3), r"toy: mediapipe_indices: indices must be unique"),
    ("masks", {"lips": np.arange(3)}, r"toy: masks: needs a 'face' region"),
    ("masks", {"face": np.arange(3), "x": np.array([50])}, r"toy: masks\['x'\]: indices"),
    ("face_mask_faces", np.array([[1, 3, 5]]), r"toy: face_mask_faces: every corner must be in"),
    ("landmarks68", BarycentricEmbedding(np.zeros(5, int), np.ones((5, 3))),
     r"toy: landmarks68: expected 68 points"),
    ("uv", np.zeros((80, 3, 3)), r"toy: uv: expected shape \[80, 3, 2\]"),
])
def test_validation_names_the_field(toy, field, value, message):
    with pytest.raises(MorphableModelError, match=message):
        dataclasses.replace(toy, **{field: value})


def test_embedding_checks():
    with pytest.raises(MorphableModelError, match=r"bary must have shape \(4, 3\)"):
        BarycentricEmbedding(np.arange(4), np.ones((4, 2)))
    assert BarycentricEmbedding.empty().num_points == 0
    contour = BarycentricEmbedding(np.zeros((79, 17), int), np.ones((79, 17, 3)) / 3)
    assert contour.num_points == 17


def test_at_vertices_and_submesh():
    v, f = primitives.icosphere(1)
    emb = BarycentricEmbedding.at_vertices(np.array([5, 0, 41]), f)
    corners = f[emb.faces]
    np.testing.assert_array_equal(np.sum(emb.bary[..., None] * v[corners], axis=1), v[[5, 0, 41]])
    for k, vertex in enumerate((5, 0, 41)):  # the first triangle using the vertex
        assert emb.faces[k] == np.flatnonzero(np.any(f == vertex, axis=1))[0]
    with pytest.raises(MorphableModelError, match="used by no triangle"):
        BarycentricEmbedding.at_vertices(np.array([42]), f)
    model = make_toy_model()
    keep, sub = model.face_submesh()
    np.testing.assert_array_equal(keep, np.arange(0, 42, 2))
    np.testing.assert_array_equal(keep[sub], model.face_mask_faces)
    inside = triangles_within(f, np.arange(0, 42, 2))
    np.testing.assert_array_equal(inside, f[np.all(f % 2 == 0, axis=1)])
