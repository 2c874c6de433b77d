"""The six basic expressions of faces4d 2.x: recipes, seeds, and where each apex moves the face."""

import numpy as np
import pytest

from jaxface.data.arkit_labels import (
    BASIC_EXPRESSIONS,
    CHANNELS,
    LABEL_RECIPES,
    LABELS,
    expand_entry,
    label_seed_key,
)
from jaxface.data.landmarks import extract_landmarks
from jaxface.data.performances import PerformanceConfig, PerformanceFaces
from jaxface.data.procedural import EXPRESSIONS, ProceduralFaces

# iBUG-68 landmarks (0-based).
CHIN = 8
BROW_TOPS = [19, 24]
INNER_BROWS = [21, 22]
NOSE_WINGS = [31, 35]
CORNERS = [48, 54]
LOWER_LIP = 57


@pytest.fixture(scope="module")
def faces():
    return PerformanceFaces(PerformanceConfig.tiny(expressions=BASIC_EXPRESSIONS, takes=2))


def test_names_recipes_and_seed_keys():
    assert BASIC_EXPRESSIONS == ("happy", "sad", "surprise", "angry", "disgust", "fear")
    assert LABELS == EXPRESSIONS + BASIC_EXPRESSIONS and set(LABEL_RECIPES) == set(LABELS)
    for name in BASIC_EXPRESSIONS:
        recipe = LABEL_RECIPES[name]
        assert recipe.required and recipe.description
        for entry, (lo, hi) in recipe.required.items():
            assert expand_entry(entry, "Left") and 0 < lo <= hi <= 1, (name, entry)
        for entry, (p, lo, hi) in recipe.optional.items():
            assert expand_entry(entry, "Left") and 0 < p < 1 and 0 < lo <= hi <= 1
            assert entry not in recipe.required, (name, entry)
    # The prototypes' defining channels (EMFACS).
    assert {"mouthSmile", "cheekSquint"} <= set(LABEL_RECIPES["happy"].required)
    assert {"browInnerUp", "mouthFrown"} <= set(LABEL_RECIPES["sad"].required)
    assert {"browInnerUp", "browOuterUp", "eyeWide", "jawOpen"} <= set(
        LABEL_RECIPES["surprise"].required
    )
    assert {"browDown", "eyeSquint", "mouthPress"} <= set(LABEL_RECIPES["angry"].required)
    assert {"noseSneer", "mouthFrown", "mouthLowerDown"} <= set(LABEL_RECIPES["disgust"].required)
    assert {"browInnerUp", "eyeWide", "mouthStretch", "jawOpen"} <= set(
        LABEL_RECIPES["fear"].required
    )
    # CoMA labels keep their faces4d 2.0.0 seed keys; the basic ones cannot collide with them.
    assert [label_seed_key(e) for e in EXPRESSIONS] == list(range(12))
    keys = [label_seed_key(e) for e in LABELS]
    assert len(set(keys)) == len(keys) and min(keys[12:]) >= 100
    with pytest.raises(KeyError, match="unknown label 'joy'"):
        label_seed_key("joy")


def test_config_accepts_basic_labels():
    cfg = PerformanceConfig.tiny(expressions=BASIC_EXPRESSIONS)
    assert cfg.expressions == BASIC_EXPRESSIONS
    mixed = PerformanceConfig.tiny(expressions=("happy", "mouth_open"))
    assert mixed.identity_config().expressions == ("mouth_open",)
    # 1.x knows only CoMA's labels: a basic-only config's identities are those of all 12.
    identity = cfg.identity_config()
    assert identity.expressions == EXPRESSIONS and identity.num_subjects == 2
    old = ProceduralFaces(identity)
    np.testing.assert_array_equal(PerformanceFaces(cfg).neutral(2), old.neutral(1))
    with pytest.raises(ValueError, match="basic expressions"):
        PerformanceConfig(expressions=("joy",))


def test_coma_labels_do_not_change_with_basic_labels(faces):
    coma = PerformanceFaces(PerformanceConfig.tiny(takes=2))
    both = PerformanceFaces(PerformanceConfig.tiny(takes=2, expressions=LABELS))
    for name in ("mouth_open", "high_smile", "mouth_side"):
        np.testing.assert_array_equal(both.sequence(1, name, 1), coma.sequence(1, name, 1))
        np.testing.assert_array_equal(both.weights(2, name, 0), coma.weights(2, name, 0))
    # A basic label's takes do not depend on the other labels selected either.
    alone = PerformanceFaces(PerformanceConfig.tiny(takes=2, expressions=("fear",)))
    np.testing.assert_array_equal(alone.sequence(1, "fear", 1), faces.sequence(1, "fear", 1))
    np.testing.assert_array_equal(both.sequence(0, "happy", 0), faces.sequence(0, "happy", 0))


def test_takes_follow_their_recipes(faces):
    for name in BASIC_EXPRESSIONS:
        recipe = LABEL_RECIPES[name]
        for s in range(3):
            for k in range(2):
                drawn = faces.label_weights(s, name, k)
                assert set(recipe.required) <= set(drawn)
                assert set(drawn) <= set(recipe.required) | set(recipe.optional)
                w = faces.weights(s, name, k)[faces.apex_frame(s, name, k)]
                for entry in recipe.required:
                    apex = np.mean([w[CHANNELS.index(c)] for c in expand_entry(entry, "Left")])
                    assert apex > 0.25 * drawn[entry], (name, entry, apex)
        assert not np.array_equal(faces.weights(1, name, 0), faces.weights(1, name, 1))


def _moves(faces, name):
    """Landmark displacement ``[P, 68, 3]`` (metres) from the first frame to the apex of every
    subject's takes of ``name``, without noise."""
    definition = faces.template.landmarks
    out = []
    for s in range(faces.config.num_subjects):
        for k in range(faces.config.takes):
            seq = faces.sequence(s, name, k, noise=False)
            lm = extract_landmarks(seq[[0, faces.apex_frame(s, name, k)]], definition)
            out.append(lm[1] - lm[0])
    return np.asarray(out)


def _width_change(d, faces, a, b):
    """Change ``[P]`` of the horizontal distance between landmarks ``a`` and ``b``."""
    rest = faces.template.landmark_positions()
    return (d[:, b, 0] - d[:, a, 0]) * np.sign(rest[b, 0] - rest[a, 0])


def test_each_apex_moves_the_expected_regions(faces):
    # Landmarks of the apex frame against the first (neutral) frame, for every subject and take.
    mm = 1e-3
    happy = _moves(faces, "happy")
    assert np.all(happy[:, CORNERS, 1].mean(1) > 3.0 * mm)  # corners up
    assert np.all(_width_change(happy, faces, *CORNERS) > 3.0 * mm)  # and out
    sad = _moves(faces, "sad")
    assert np.all(sad[:, INNER_BROWS, 1].mean(1) > 2.0 * mm)  # inner brows up
    assert np.all(sad[:, CORNERS, 1].mean(1) < -1.0 * mm)  # corners down
    surprise = _moves(faces, "surprise")
    assert np.all(surprise[:, CHIN, 1] < -8.0 * mm)  # jaw dropped
    assert np.all(surprise[:, BROW_TOPS, 1].mean(1) > 5.0 * mm)  # brows up
    angry = _moves(faces, "angry")
    assert np.all(angry[:, INNER_BROWS, 1].mean(1) < -2.0 * mm)  # brows lowered
    assert np.all(_width_change(angry, faces, *INNER_BROWS) < -1.0 * mm)  # and drawn together
    assert np.all(angry[:, CHIN, 1] > -1.0 * mm)  # the jaw stays closed
    assert np.all(angry[:, CORNERS, 1].mean(1) < 4.0 * mm)  # no smile
    disgust = _moves(faces, "disgust")
    assert np.all(disgust[:, NOSE_WINGS, 1].mean(1) > 0.3 * mm)  # nose wrinkled up
    assert np.all(disgust[:, LOWER_LIP, 1] < -1.0 * mm)  # lower lip down
    assert np.all(disgust[:, CORNERS, 1].mean(1) < -0.3 * mm)  # corners down
    fear = _moves(faces, "fear")
    assert np.all(fear[:, BROW_TOPS, 1].mean(1) > 2.0 * mm)  # brows up
    assert np.all(_width_change(fear, faces, *CORNERS) > 2.0 * mm)  # lips stretched
    assert np.all(fear[:, CHIN, 1] < -3.0 * mm)  # jaw dropped
