"""The ARKit expression basis on the jaxface face template, and a real capture's weight curves.

The asset ``jaxface/assets/arkit_basis.npz`` holds the 52 ARKit blendshapes as displacement fields
on the 468-vertex template (metres, in the template's frame: x to the subject's left, y up, z toward
the viewer), transferred from the Face Cap head (Bannaflak, Niels Jansson; credit required, see
``jaxface/assets/PROVENANCE.md``) by ``experiments/assets/build_arkit_basis.py``. The 52 shapes are
an artist's sculpts on one generic head; the weight curves stored with them (335 frames at 30 fps,
11.2 s) are a real ARKit performance recorded with the Face Cap app, usable as real expression
dynamics.

A face with weights ``w [K]`` is ``template.vertices + basis.apply(w)``. The names follow ARKit with
``_L``/``_R`` for the subject's left/right, in the order of :data:`ARKIT_NAMES`; ``tongueOut`` is
all zero (the source head has no tongue).

:func:`load_expression_basis` lifts the basis to the finer template levels with the template's own
subdivision operator (:attr:`jaxface.data.template.FaceTemplate.from_base`), so for every level
``load_face_template(level).vertices + basis.apply(w)`` equals the subdivision of the displaced
base mesh.

Example:
  >>> basis = load_expression_basis(0)
  >>> basis.displacements.shape, basis.weights.shape, basis.fps
  ((52, 468, 3), (335, 52), 30.0)
  >>> basis.apply(basis.weights[:10]).shape
  (10, 468, 3)
  >>> basis.index("jawOpen")
  24
  >>> load_expression_basis(1).apply(basis.weights[0]).shape
  (1790, 3)
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.resources

import numpy as np

from jaxface.data.template import NUM_BASE_VERTICES, load_face_template

__all__ = ["ARKIT_NAMES", "EXPRESSION_BASIS_ASSET", "ExpressionBasis", "load_expression_basis"]

EXPRESSION_BASIS_ASSET = "arkit_basis.npz"

# The 52 ARKit blendshapes, in the asset's order (Face Cap's morph-target order).
ARKIT_NAMES = (
    "browInnerUp", "browDown_L", "browDown_R", "browOuterUp_L", "browOuterUp_R",
    "eyeLookUp_L", "eyeLookUp_R", "eyeLookDown_L", "eyeLookDown_R", "eyeLookIn_L", "eyeLookIn_R",
    "eyeLookOut_L", "eyeLookOut_R", "eyeBlink_L", "eyeBlink_R", "eyeSquint_L", "eyeSquint_R",
    "eyeWide_L", "eyeWide_R", "cheekPuff", "cheekSquint_L", "cheekSquint_R", "noseSneer_L",
    "noseSneer_R", "jawOpen", "jawForward", "jawLeft", "jawRight", "mouthFunnel", "mouthPucker",
    "mouthLeft", "mouthRight", "mouthRollUpper", "mouthRollLower", "mouthShrugUpper",
    "mouthShrugLower", "mouthClose", "mouthSmile_L", "mouthSmile_R", "mouthFrown_L", "mouthFrown_R",
    "mouthDimple_L", "mouthDimple_R", "mouthUpperUp_L", "mouthUpperUp_R", "mouthLowerDown_L",
    "mouthLowerDown_R", "mouthPress_L", "mouthPress_R", "mouthStretch_L", "mouthStretch_R",
    "tongueOut",
)


@dataclasses.dataclass(frozen=True, eq=False)
class ExpressionBasis:
    """A linear blendshape basis on one template level, with a captured performance.

    Arrays are read-only (bases are cached and shared).

    Attributes:
      names: the ``K`` shape names (:data:`ARKIT_NAMES`).
      displacements: ``float32 [K, N, 3]`` displacement of every vertex at weight 1, metres.
      weights: ``float32 [T, K]`` the captured weight curves, in [0, 1] (T = 335).
      fps: frame rate of ``weights``.
      pose_rotation: ``float32 [T, 3, 3]`` the capture's head rotation, as the rigid motion
        ``x -> pose_rotation[t] @ x + pose_translation[t]`` of the template frame.
      pose_translation: ``float32 [T, 3]`` the capture's head translation, metres.
      level: template subdivision level (0: 468, 1: 1790, 2: 6990 vertices).
    """

    names: tuple[str, ...]
    displacements: np.ndarray
    weights: np.ndarray
    fps: float
    pose_rotation: np.ndarray
    pose_translation: np.ndarray
    level: int

    @property
    def num_shapes(self) -> int:
        """``K``."""
        return int(self.displacements.shape[0])

    @property
    def num_vertices(self) -> int:
        """``N``."""
        return int(self.displacements.shape[1])

    def index(self, name: str) -> int:
        """Position of a shape in :attr:`names`.

        Args:
          name: an ARKit name such as ``"jawOpen"`` or ``"eyeBlink_L"``.

        Returns:
          Its index ``k`` (``displacements[k]`` is the shape).

        Raises:
          KeyError: for an unknown name.
        """
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown expression {name!r}; known: {', '.join(self.names)}") from None

    def apply(self, weights: np.ndarray) -> np.ndarray:
        """Blends the shapes.

        Args:
          weights: ``float [..., K]`` shape weights (ARKit weights are in [0, 1]).

        Returns:
          ``float32 [..., N, 3]`` displacements (add them to the template's vertices).
        """
        w = np.asarray(weights, np.float32)
        if w.shape[-1:] != (self.num_shapes,):
            raise ValueError(f"weights must end in {self.num_shapes} shapes, got {w.shape}")
        return np.tensordot(w, self.displacements, axes=([-1], [0]))


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _read_asset() -> dict[str, np.ndarray]:
    ref = importlib.resources.files("jaxface").joinpath("assets", EXPRESSION_BASIS_ASSET)
    with ref.open("rb") as fh, np.load(fh) as z:
        return {k: z[k] for k in z.files}


@functools.lru_cache(maxsize=8)
def load_expression_basis(level: int = 0, *, scheme: str = "loop") -> ExpressionBasis:
    """Loads the ARKit basis on a template level (cached per process).

    Args:
      level: template subdivision level, as in
        :func:`jaxface.data.template.load_face_template`: 0 gives 468 vertices, 1 gives 1790,
        2 gives 6990.
      scheme: the template's subdivision scheme (``"loop"`` or ``"midpoint"``).

    Returns:
      An :class:`ExpressionBasis` whose displacements are ``from_base @ base_displacements`` with
      the template's ``from_base`` operator of that level.
    """
    if level < 0:
        raise ValueError(f"level must be >= 0, got {level}")
    asset = _read_asset()
    names = tuple(str(n) for n in asset["names"])
    if names != ARKIT_NAMES:
        raise ValueError(f"{EXPRESSION_BASIS_ASSET}: shape names differ from ARKIT_NAMES")
    base = asset["displacements"].astype(np.float64)
    k = len(names)
    if base.shape != (k, NUM_BASE_VERTICES, 3):
        raise ValueError(f"{EXPRESSION_BASIS_ASSET}: displacements have shape {base.shape}")
    if level:
        op = load_face_template(level, scheme=scheme).from_base
        flat = base.transpose(1, 0, 2).reshape(NUM_BASE_VERTICES, k * 3)
        disp = np.asarray(op @ flat).reshape(-1, k, 3).transpose(1, 0, 2)
    else:
        disp = base
    return ExpressionBasis(
        names=names,
        displacements=_readonly(disp.astype(np.float32)),
        weights=_readonly(asset["weights"].astype(np.float32)),
        fps=float(asset["fps"]),
        pose_rotation=_readonly(asset["pose_rotation"].astype(np.float32)),
        pose_translation=_readonly(asset["pose_translation"].astype(np.float32)),
        level=int(level),
    )
