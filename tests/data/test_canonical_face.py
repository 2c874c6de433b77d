"""Tests for jaxface.data.canonical_face and jaxface.data.arkit_labels."""

import numpy as np
import pytest

from jaxface.data.arkit_labels import (
    BASIC_EXPRESSIONS,
    CHANNELS,
    LABEL_RECIPES,
    LabelRecipe,
    expand_entry,
    paired_channels,
)
from jaxface.data.canonical_face import load_canonical_face
from jaxface.data.procedural import EXPRESSIONS
from jaxface.data.template import MOUTH_LOWER_INNER, MOUTH_UPPER_INNER, load_face_template


def test_canonical_face():
    t = load_face_template(0)
    v = load_canonical_face(0)
    assert v.shape == (468, 3) and v.dtype == np.float32 and not v.flags.writeable
    rms = np.sqrt(np.mean(np.sum((v - t.vertices) ** 2, axis=1)))
    assert 3e-3 < rms < 8e-3  # a different face, registered to the template
    np.testing.assert_allclose(v, v[t.mirror] * np.array([-1.0, 1.0, 1.0]), atol=1e-6)
    gap = v[list(MOUTH_UPPER_INNER), 1] - v[list(MOUTH_LOWER_INNER), 1]
    np.testing.assert_allclose(gap, 1e-3, atol=1e-5)  # lips closed to the template's slit
    fine = load_canonical_face(1)
    assert fine.shape == (1790, 3)
    np.testing.assert_allclose(fine, load_face_template(1).from_base @ v, atol=1e-6)


def test_label_recipes():
    assert tuple(sorted(LABEL_RECIPES)) == tuple(sorted(EXPRESSIONS + BASIC_EXPRESSIONS))
    assert CHANNELS[-2:] == ("cheekSuck_L", "cheekSuck_R")
    assert expand_entry("mouthSmile", "Right") == ("mouthSmile_L", "mouthSmile_R")
    assert expand_entry("mouth*", "Left") == ("mouthLeft",)
    assert expand_entry("jawOpen", "Left") == ("jawOpen",)
    with pytest.raises(KeyError):
        expand_entry("smile", "Left")
    with pytest.raises(ValueError):
        LabelRecipe(required={"jawOpen": (0.8, 0.2)})
    pairs = paired_channels()
    assert all(CHANNELS[a][:-2] == CHANNELS[b][:-2] for a, b in pairs) and len(pairs) == 19
