"""Expression labels as distributions over ARKit blendshape weights.

Each label of :data:`LABELS`, the 12 CoMA labels (:data:`jaxface.data.procedural.EXPRESSIONS`)
and the six basic expressions (:data:`BASIC_EXPRESSIONS`), is a :class:`LabelRecipe`: the channels
active at its apex, each with a uniform range of weights, plus optional channels that a subject
may or may not use (with a probability). The channels are the 52 ARKit blendshapes
(:data:`jaxface.data.expression_basis.ARKIT_NAMES`) and two procedural ones, ``cheekSuck_L`` and
``cheekSuck_R``: the cheek-suck action of faces4d 1.x (:mod:`jaxface.data.procedural`), which
ARKit does not have (its ``cheekPuff`` shape, negated, barely moves the cheeks inwards and mostly
moves the lips).

A recipe entry names channels in one of three ways:

* a channel, e.g. ``"jawOpen"``;
* the stem of a left/right pair, e.g. ``"mouthSmile"`` for ``mouthSmile_L`` and ``mouthSmile_R``:
  both get the entry's weight, split by the performance's left/right asymmetry;
* a stem with ``*`` for a side chosen per performance, e.g. ``"mouth*"`` for ``mouthLeft`` or
  ``mouthRight`` (``mouth_side``; every ``*`` entry of one performance takes the same side).

The six basic expressions (:data:`BASIC_EXPRESSIONS`, in the one-hot order of the 4DFAB-trained
expression generator of Potamias et al., ECCV 2020: happy, sad, surprise, angry, disgust, fear) are
recipes too, built from the EMFACS prototypes of the basic emotions (Friesen and Ekman, EMFACS-7,
1983; the prototype table of Ekman, Friesen and Hager, FACS Investigator's Guide, 2002):

============ ================================= ==========================================
label        action units (optional: +)        ARKit channels (optional: +)
============ ================================= ==========================================
happy        6 + 12 (+ 7, 10, 14, 25/26)       cheekSquint, mouthSmile (+ eyeSquint,
                                               mouthUpperUp, mouthDimple, jawOpen)
sad          1 + 4 + 15 (+ 17, 24, 41/43)      browInnerUp, browDown, mouthFrown
                                               (+ mouthShrugLower, mouthPress, eyeBlink)
surprise     1 + 2 + 5B + 26 (+ 16, 27)        browInnerUp, browOuterUp, eyeWide, jawOpen
                                               (+ mouthLowerDown, mouthFunnel)
angry        4 + 5 + 7 + 23 (+ 9, 17, 24, 28)  browDown, eyeWide, eyeSquint, mouthPress,
                                               mouthFrown (small, see below) (+ noseSneer,
                                               mouthShrugLower, mouthRollUpper,
                                               mouthRollLower)
disgust      9 + 15 + 16 (+ 4, 6, 10, 17)      noseSneer, mouthFrown, mouthLowerDown
                                               (+ browDown, cheekSquint, mouthUpperUp,
                                               mouthShrugLower)
fear         1 + 2 + 4 + 5 + 7 + 20 + 26       browInnerUp, browOuterUp, browDown, eyeWide,
             (+ 16, 25)                        eyeSquint, mouthStretch, jawOpen
                                               (+ mouthLowerDown)
============ ================================= ==========================================

with the action unit -> ARKit channel mapping (the muscle each blendshape is named after; ARKit
documents its shapes by the motion they describe, Apple's ``ARFaceAnchor.BlendShapeLocation``):
AU1 inner brow raiser -> ``browInnerUp``; AU2 outer brow raiser -> ``browOuterUp``; AU4 brow
lowerer -> ``browDown``; AU5 upper lid raiser -> ``eyeWide`` (5B: slight, weights up to 0.6);
AU6 cheek raiser -> ``cheekSquint``; AU7 lid tightener -> ``eyeSquint``; AU9 nose wrinkler ->
``noseSneer``; AU10 upper lip raiser -> ``mouthUpperUp``; AU12 lip corner puller ->
``mouthSmile``; AU14 dimpler -> ``mouthDimple``; AU15 lip corner depressor -> ``mouthFrown``;
AU16 lower lip depressor -> ``mouthLowerDown``; AU17 chin raiser -> ``mouthShrugLower``; AU20 lip
stretcher -> ``mouthStretch``; AU23 lip tightener and AU24 lip pressor -> ``mouthPress``; AU25/26
lips part, jaw drop -> ``jawOpen``; AU27 mouth stretch -> ``mouthFunnel`` (the rounded opening
of surprise); AU28 lip suck -> ``mouthRollUpper``/``mouthRollLower``; AU41/43 lid droop ->
``eyeBlink`` (small weights). The capture's ``mouthPress`` shape also lifts the lip corners
(7 mm at weight 1), which AU23/24 do not: anger adds a little ``mouthFrown`` to hold them. The
ranges make each label recognisable (its required channels) and varied (weights, optional
channels and the performance's own habits).

Example:
  >>> LABEL_RECIPES["mouth_open"].required["jawOpen"]
  (0.35, 0.7)
  >>> expand_entry("mouthSmile", "Left"), expand_entry("jaw*", "Right")
  (('mouthSmile_L', 'mouthSmile_R'), ('jawRight',))
  >>> label_seed_key("mouth_up"), label_seed_key("happy")
  (11, 100)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from jaxface.data.expression_basis import ARKIT_NAMES
from jaxface.data.procedural import EXPRESSIONS

__all__ = [
    "BASIC_EXPRESSIONS",
    "CHANNELS",
    "LABELS",
    "LABEL_RECIPES",
    "LabelRecipe",
    "expand_entry",
    "label_seed_key",
    "paired_channels",
]

#: The six basic expressions, in the one-hot order of Potamias et al. (ECCV 2020) on 4DFAB.
BASIC_EXPRESSIONS = ("happy", "sad", "surprise", "angry", "disgust", "fear")

#: Every label a performance can have: the 12 CoMA labels, then the six basic expressions.
LABELS = (*EXPRESSIONS, *BASIC_EXPRESSIONS)

# Seed key of a basic expression: this offset plus its index (CoMA labels use their index in
# EXPRESSIONS, 0-11, as faces4d 2.0.0 always has).
_BASIC_KEY_OFFSET = 100

#: The performance channels: the 52 ARKit shapes, then the two procedural cheek-suck actions.
CHANNELS = (*ARKIT_NAMES, "cheekSuck_L", "cheekSuck_R")


@dataclasses.dataclass(frozen=True)
class LabelRecipe:
    """A label as a distribution over apex channel weights.

    Attributes:
      required: entry -> ``(low, high)``: drawn uniformly in every performance of the label.
      optional: entry -> ``(probability, low, high)``: each subject uses the entry with this
        probability (then within ``[low, high]``).
      description: what the face does.
    """

    required: Mapping[str, tuple[float, float]]
    optional: Mapping[str, tuple[float, float, float]] = dataclasses.field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        for entry, (lo, hi) in self.required.items():
            expand_entry(entry, "Left")
            if not 0.0 <= lo <= hi <= 1.0:
                raise ValueError(f"{entry}: need 0 <= low <= high <= 1, got {lo}, {hi}")
        for entry, (p, lo, hi) in self.optional.items():
            expand_entry(entry, "Left")
            if not (0.0 <= p <= 1.0 and 0.0 <= lo <= hi <= 1.0):
                raise ValueError(f"{entry}: bad optional range {(p, lo, hi)}")


def expand_entry(entry: str, side: str) -> tuple[str, ...]:
    """The channels a recipe entry names.

    Args:
      entry: a channel, a pair stem or a ``*`` stem (see the module docstring).
      side: ``"Left"`` or ``"Right"``, the side of ``*`` entries.

    Returns:
      One channel, or the ``(_L, _R)`` pair.

    Raises:
      KeyError: for an entry that names no channel.
    """
    if side not in ("Left", "Right"):
        raise ValueError(f"side must be 'Left' or 'Right', got {side!r}")
    if "*" in entry:
        name = entry.replace("*", side)
        if name in CHANNELS:
            return (name,)
    elif entry in CHANNELS:
        return (entry,)
    elif f"{entry}_L" in CHANNELS and f"{entry}_R" in CHANNELS:
        return (f"{entry}_L", f"{entry}_R")
    raise KeyError(f"recipe entry {entry!r} names no channel of {CHANNELS}")


def label_seed_key(name: str) -> int:
    """The integer that seeds everything drawn for a label (takes, gain and direction fields).

    Args:
      name: a label of :data:`LABELS`.

    Returns:
      The index in :data:`jaxface.data.procedural.EXPRESSIONS` for a CoMA label (as faces4d
      2.0.0 always had), ``100 + i`` for the basic expression ``BASIC_EXPRESSIONS[i]``.

    Raises:
      KeyError: for a name that is no label.
    """
    if name in EXPRESSIONS:
        return EXPRESSIONS.index(name)
    if name in BASIC_EXPRESSIONS:
        return _BASIC_KEY_OFFSET + BASIC_EXPRESSIONS.index(name)
    raise KeyError(f"unknown label {name!r}; choose from {LABELS}")


def paired_channels() -> list[tuple[int, int]]:
    """Index pairs ``(left, right)`` of the ``_L``/``_R`` channels in :data:`CHANNELS`."""
    return [
        (i, CHANNELS.index(name[:-2] + "_R"))
        for i, name in enumerate(CHANNELS)
        if name.endswith("_L")
    ]


LABEL_RECIPES: dict[str, LabelRecipe] = {
    "bareteeth": LabelRecipe(
        required={"mouthUpperUp": (0.55, 0.9), "mouthLowerDown": (0.35, 0.65),
                  "mouthStretch": (0.5, 0.9)},
        optional={"noseSneer": (0.5, 0.1, 0.4), "mouthSmile": (0.4, 0.1, 0.3),
                  "mouthDimple": (0.3, 0.1, 0.3)},
        description="lips drawn apart over clenched teeth",
    ),
    "cheeks_in": LabelRecipe(
        required={"cheekSuck": (0.7, 1.0), "mouthPucker": (0.2, 0.5)},
        optional={"mouthFunnel": (0.4, 0.1, 0.3), "jawOpen": (0.3, 0.02, 0.08),
                  "mouthRollLower": (0.3, 0.05, 0.2)},
        description="cheeks sucked in, lips pushed slightly forward",
    ),
    "eyebrow": LabelRecipe(
        required={"browInnerUp": (0.6, 1.0), "browOuterUp": (0.5, 1.0)},
        optional={"eyeWide": (0.6, 0.2, 0.6), "jawOpen": (0.2, 0.02, 0.08),
                  "mouthShrugUpper": (0.2, 0.05, 0.2)},
        description="brows raised",
    ),
    "high_smile": LabelRecipe(
        required={"mouthSmile": (0.7, 1.0), "cheekSquint": (0.3, 0.7), "eyeSquint": (0.2, 0.5),
                  "jawOpen": (0.1, 0.3)},
        optional={"mouthUpperUp": (0.5, 0.1, 0.4), "mouthDimple": (0.4, 0.1, 0.4),
                  "mouthStretch": (0.3, 0.1, 0.3), "noseSneer": (0.3, 0.05, 0.2)},
        description="broad open smile with raised cheeks and narrowed eyes",
    ),
    "lips_back": LabelRecipe(
        required={"mouthRollUpper": (0.4, 0.9), "mouthRollLower": (0.4, 0.9),
                  "mouthPress": (0.2, 0.55)},
        optional={"mouthStretch": (0.5, 0.1, 0.4), "mouthDimple": (0.3, 0.1, 0.3),
                  "mouthClose": (0.2, 0.05, 0.15)},
        description="lips rolled in and pressed",
    ),
    "lips_up": LabelRecipe(
        required={"mouthUpperUp": (0.4, 0.8), "mouthShrugUpper": (0.4, 0.8),
                  "mouthShrugLower": (0.5, 0.9)},
        optional={"noseSneer": (0.5, 0.1, 0.4), "mouthPucker": (0.4, 0.1, 0.3),
                  "mouthFunnel": (0.2, 0.05, 0.2)},
        description="upper lip raised towards the nose, lower lip pushed up",
    ),
    "mouth_down": LabelRecipe(
        required={"mouthFrown": (0.6, 1.0)},
        optional={"mouthShrugLower": (0.6, 0.2, 0.5), "mouthLowerDown": (0.4, 0.1, 0.3),
                  "mouthStretch": (0.4, 0.1, 0.3), "mouthPress": (0.3, 0.1, 0.3),
                  "browDown": (0.2, 0.1, 0.3)},
        description="mouth corners pulled down",
    ),
    "mouth_extreme": LabelRecipe(
        required={"jawOpen": (0.6, 0.9), "mouthStretch": (0.5, 1.0),
                  "mouthLowerDown": (0.3, 0.7)},
        optional={"mouthUpperUp": (0.6, 0.2, 0.5), "browInnerUp": (0.5, 0.2, 0.6),
                  "browOuterUp": (0.4, 0.2, 0.6), "eyeWide": (0.5, 0.2, 0.6),
                  "noseSneer": (0.3, 0.1, 0.3)},
        description="mouth wide open and stretched",
    ),
    "mouth_middle": LabelRecipe(
        required={"mouthPucker": (0.6, 1.0), "mouthFunnel": (0.1, 0.5)},
        optional={"jawOpen": (0.3, 0.02, 0.1), "mouthRollLower": (0.2, 0.05, 0.2),
                  "cheekSuck": (0.2, 0.1, 0.3)},
        description="lips pushed forward (kiss)",
    ),
    "mouth_open": LabelRecipe(
        required={"jawOpen": (0.35, 0.7)},
        optional={"mouthLowerDown": (0.5, 0.1, 0.3), "mouthFunnel": (0.3, 0.1, 0.3),
                  "mouthUpperUp": (0.3, 0.05, 0.2), "browInnerUp": (0.3, 0.1, 0.3),
                  "mouthStretch": (0.3, 0.05, 0.2)},
        description="jaw dropped, mouth open",
    ),
    "mouth_side": LabelRecipe(
        required={"mouth*": (0.6, 1.0)},
        optional={"jaw*": (0.6, 0.1, 0.4), "mouthPress": (0.3, 0.05, 0.2),
                  "mouthRollLower": (0.2, 0.05, 0.2)},
        description="mouth pulled to one side",
    ),
    "mouth_up": LabelRecipe(
        required={"mouthShrugUpper": (0.5, 1.0), "mouthShrugLower": (0.5, 1.0),
                  "mouthPress": (0.15, 0.45)},
        optional={"mouthSmile": (0.4, 0.1, 0.3), "mouthRollLower": (0.3, 0.1, 0.4),
                  "noseSneer": (0.3, 0.1, 0.3)},
        description="whole mouth pushed up, lips closed",
    ),
}

# The six basic expressions (EMFACS prototypes; see the module docstring for the mapping).
LABEL_RECIPES.update({
    "happy": LabelRecipe(
        required={"mouthSmile": (0.55, 1.0), "cheekSquint": (0.3, 0.8)},
        optional={"eyeSquint": (0.6, 0.1, 0.4), "mouthUpperUp": (0.3, 0.05, 0.3),
                  "mouthDimple": (0.3, 0.1, 0.3), "jawOpen": (0.5, 0.03, 0.2)},
        description="AU6 + 12: lip corners pulled up and back, cheeks raised",
    ),
    "sad": LabelRecipe(
        required={"browInnerUp": (0.5, 0.9), "browDown": (0.1, 0.35),
                  "mouthFrown": (0.4, 0.85)},
        optional={"mouthShrugLower": (0.6, 0.2, 0.5), "mouthPress": (0.3, 0.1, 0.3),
                  "eyeBlink": (0.3, 0.1, 0.25)},
        description="AU1 + 4 + 15 (+ 17): inner brows raised and drawn together, corners down",
    ),
    "surprise": LabelRecipe(
        required={"browInnerUp": (0.6, 1.0), "browOuterUp": (0.6, 1.0), "eyeWide": (0.3, 0.6),
                  "jawOpen": (0.35, 0.7)},
        optional={"mouthLowerDown": (0.4, 0.1, 0.3), "mouthFunnel": (0.3, 0.05, 0.25)},
        description="AU1 + 2 + 5B + 26: brows raised, eyes widened, jaw dropped",
    ),
    "angry": LabelRecipe(
        required={"browDown": (0.6, 1.0), "eyeWide": (0.15, 0.4), "eyeSquint": (0.3, 0.7),
                  "mouthPress": (0.3, 0.7), "mouthFrown": (0.15, 0.4)},
        optional={"noseSneer": (0.4, 0.1, 0.3), "mouthShrugLower": (0.4, 0.1, 0.4),
                  "mouthRollUpper": (0.3, 0.1, 0.3), "mouthRollLower": (0.3, 0.1, 0.3)},
        description="AU4 + 5 + 7 + 23 (+ 24): brows lowered, glaring eyes, lips pressed",
    ),
    "disgust": LabelRecipe(
        required={"noseSneer": (0.5, 1.0), "mouthFrown": (0.3, 0.6),
                  "mouthLowerDown": (0.2, 0.5)},
        optional={"mouthUpperUp": (0.8, 0.2, 0.6), "browDown": (0.5, 0.1, 0.4),
                  "cheekSquint": (0.5, 0.1, 0.4), "mouthShrugLower": (0.3, 0.1, 0.3)},
        description="AU9 + 15 + 16 (+ 10): nose wrinkled, upper lip raised, lower lip down",
    ),
    "fear": LabelRecipe(
        required={"browInnerUp": (0.6, 1.0), "browOuterUp": (0.3, 0.7),
                  "browDown": (0.05, 0.25), "eyeWide": (0.5, 0.9), "eyeSquint": (0.05, 0.25),
                  "mouthStretch": (0.4, 0.8), "jawOpen": (0.15, 0.4)},
        optional={"mouthLowerDown": (0.4, 0.1, 0.3)},
        description="AU1 + 2 + 4 + 5 + 7 + 20 + 26: brows raised and drawn together, eyes wide, "
        "lips stretched, jaw dropped",
    ),
})

if set(LABEL_RECIPES) != set(LABELS):  # pragma: no cover - a programming error
    raise ValueError("LABEL_RECIPES must define exactly the CoMA and the basic expressions")
