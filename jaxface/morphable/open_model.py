"""The open morphable face model that ships with jaxface (the default; no registration needed).

``jaxface/assets/open_face_model.npz`` is built by ``experiments/assets/build_open_face_model.py``
from assets already in the repository (see ``jaxface/assets/PROVENANCE.md``):

* the 468-vertex face template (MediaPipe's face-mesh topology), metres;
* an identity basis learnt by PCA from the 100 neutral faces of faces4d's largest identity set
  (MediaPipe's canonical face and 99 procedural identities), mean as template, components
  scaled to unit-variance coefficients, those up to 99.9 % of the variance kept;
* the ARKit expression basis transferred from the Face Cap head, without the shapes the joints
  and eyelids model: 46 named shapes, weight 1 = the sculpted shape;
* FLAME's five joints (global, neck, jaw, left eye, right eye): a jaw hinge whose pivot, angle
  and skinning weights were fitted to ARKit's ``jawOpen`` (28.2 degrees about x), with pose
  correctives that make that rotation reproduce ``jawOpen`` exactly; ``jawLeft`` / ``jawRight``
  are jaw yaws of about +-6 degrees (matched up to their common part, the chin coming forward,
  which the ``jawForward`` expression carries); the eye joints move no vertex (the template has
  no eyeballs);
* ``eyeBlink_L`` / ``eyeBlink_R`` as the eyelid shapes;
* the 68 iBUG landmarks and all 468 MediaPipe points as (one-hot) barycentric points;
* masks ``face`` (the whole surface), ``lips``, ``eye_region`` (and ``left_``/``right_``),
  ``nose`` and ``forehead``.

**Credit: Face Cap (Bannaflak, Niels Jansson)**: the expression, jaw and eyelid shapes derive
from the Face Cap head; any use or redistribution of this model must carry this credit.

Example:
  >>> m = load_open_model()
  >>> m.name, m.num_expression, m.expression_names[:2]
  ('jaxface-open', 46, ('browInnerUp', 'browDown_L'))
"""

from __future__ import annotations

import functools
import importlib.resources
from collections.abc import Mapping

import numpy as np

from jaxface.morphable.model import BarycentricEmbedding, MorphableModel, MorphableModelError

__all__ = ["OPEN_MODEL_ASSET", "load_open_model", "model_from_arrays"]

OPEN_MODEL_ASSET = "open_face_model.npz"


def _dequantised(arrays: Mapping[str, np.ndarray], name: str, axis: int) -> np.ndarray:
    unit = np.asarray(arrays[f"{name}_unit"], np.float32)
    scale = np.asarray(arrays[f"{name}_scale"], np.float32)
    shape = [1] * unit.ndim
    shape[axis] = -1
    return unit * scale.reshape(shape)


def model_from_arrays(arrays: Mapping[str, np.ndarray],
                      name: str = "jaxface-open") -> MorphableModel:
    """The model from the asset's arrays (the keys written by the build script).

    Raises:
      MorphableModelError: a missing key (named) or arrays that do not fit together.
    """
    try:
        masks = {k[len("mask_"):]: np.asarray(arrays[k]) for k in arrays if k.startswith("mask_")}
        return MorphableModel(
            name=name,
            v_template=arrays["v_template"],
            faces=arrays["faces"],
            shapedirs=_dequantised(arrays, "shapedirs", 2),
            exprdirs=_dequantised(arrays, "exprdirs", 2),
            expression_names=tuple(str(n) for n in arrays["expression_names"]),
            eyelids=_dequantised(arrays, "eyelids", 0),
            posedirs=_dequantised(arrays, "posedirs", 0),
            j_regressor=arrays["j_regressor"],
            parents=arrays["parents"],
            lbs_weights=arrays["lbs_weights"],
            landmarks68=BarycentricEmbedding(arrays["landmarks68_faces"],
                                             arrays["landmarks68_bary"]),
            mediapipe_landmarks=BarycentricEmbedding(arrays["mediapipe_faces"],
                                                     arrays["mediapipe_bary"]),
            mediapipe_indices=arrays["mediapipe_indices"],
            masks=masks,
            face_mask_faces=arrays["face_mask_faces"],
        )
    except KeyError as err:
        raise MorphableModelError(f"{name}: missing array {err.args[0]!r}") from None


@functools.lru_cache(maxsize=1)
def load_open_model() -> MorphableModel:
    """Loads the open model from the package's assets (cached; arrays are read-only).

    Returns:
      The :class:`MorphableModel` named ``"jaxface-open"``: 468 vertices, 852 triangles, the
      kept identity components, 46 expressions, 5 joints.
    """
    ref = importlib.resources.files("jaxface").joinpath("assets", OPEN_MODEL_ASSET)
    with ref.open("rb") as fh, np.load(fh, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return model_from_arrays(arrays, name="jaxface-open")
