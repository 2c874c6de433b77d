"""Evaluating a morphable model in JAX: parameters in, mesh and landmarks out.

:func:`morph` is FLAME's forward pass as SMIRK uses it::

    v = v_template + shapedirs @ shape + exprdirs @ expression + eyelids @ eyelid_weights
    vertices, joints = lbs(v, [pose, neck, jaw, eye_l, eye_r])
    landmarks = barycentric points of vertices

with the FLAME joint layout (0 global, 1 neck, 2 jaw, 3 and 4 the eyes). One difference from
SMIRK: the eyelid shapes are added before skinning, so they turn with the head (SMIRK adds them
to the posed mesh, in the unrotated frame).

The model's arrays are numpy constants of the computation (closed over, never traced as
parameters); :class:`FaceParams` and :class:`FaceOutput` are pytrees, so :func:`morph` works under
``jit`` (with the model bound by ``functools.partial``), ``vmap`` and ``grad``. Parameters may
carry any leading batch shape ``...``.

Example:
  >>> import jax
  >>> from jaxface.morphable.open_model import load_open_model
  >>> model = load_open_model().truncated(50, 20)
  >>> params = FaceParams.zeros(model, (8,))
  >>> out = jax.jit(lambda p: morph(model, p))(params)
  >>> out.vertices.shape, out.landmarks68.shape, out.mediapipe.shape
  ((8, 468, 3), (8, 68, 3), (8, 468, 3))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxface.morphable.lbs import lbs, rodrigues
from jaxface.morphable.model import BarycentricEmbedding, MorphableModel, MorphableModelError

__all__ = [
    "FaceOutput",
    "FaceParams",
    "contour_landmarks",
    "embed_points",
    "morph",
    "shaped_vertices",
]

_HIGHEST = jax.lax.Precision.HIGHEST
_FLAME_JOINTS = 5


@struct.dataclass
class FaceParams:
    """Parameters of a face, with any leading batch shape ``...`` (``B`` below).

    Attributes:
      shape: ``float [B, S]`` identity coefficients.
      expression: ``float [B, E]`` expression coefficients.
      pose: ``float [B, 3]`` global (head) rotation, axis-angle, radians.
      jaw: ``float [B, 3]`` jaw rotation, axis-angle (x opens the mouth).
      eyelids: ``float [B, 2]`` eyelid closure, left and right (the subject's), in ``[0, 1]``.
      neck: ``float [B, 3]`` neck rotation, or None for zeros (SMIRK keeps it at zero).
      eyes: ``float [B, 6]`` rotations of joints 3 and 4 (the eyes), or None for zeros.
    """

    shape: jax.Array
    expression: jax.Array
    pose: jax.Array
    jaw: jax.Array
    eyelids: jax.Array
    neck: jax.Array | None = None
    eyes: jax.Array | None = None

    @classmethod
    def zeros(cls, model: MorphableModel, batch_shape: tuple[int, ...] = (1,)) -> FaceParams:
        """The template face (all parameters zero) for a model, ``float32``."""
        batch_shape = tuple(batch_shape)

        def z(n: int) -> jax.Array:
            return jnp.zeros(batch_shape + (n,), jnp.float32)

        return cls(shape=z(model.num_shape), expression=z(model.num_expression), pose=z(3),
                   jaw=z(3), eyelids=z(2))

    def full_pose(self) -> jax.Array:
        """``[B, 5, 3]``: global, neck, jaw, eye, eye (FLAME's pose vector, as rows)."""
        batch = self.pose.shape[:-1]
        neck = jnp.zeros(batch + (3,), self.pose.dtype) if self.neck is None else self.neck
        eyes = jnp.zeros(batch + (6,), self.pose.dtype) if self.eyes is None else self.eyes
        flat = jnp.concatenate([self.pose, neck, self.jaw, eyes], axis=-1)
        return flat.reshape(batch + (_FLAME_JOINTS, 3))


@struct.dataclass
class FaceOutput:
    """What :func:`morph` returns (leading batch shape ``B`` of the parameters).

    Attributes:
      vertices: ``float32 [B, V, 3]`` the posed mesh, metres.
      landmarks68: ``float32 [B, 68, 3]`` the 68 iBUG landmarks (the model's static embedding).
      mediapipe: ``float32 [B, L_mp, 3]`` the model's MediaPipe points (row ``l`` is MediaPipe
        point ``model.mediapipe_indices[l]``).
      joints: ``float32 [B, J, 3]`` the posed joints.
    """

    vertices: jax.Array
    landmarks68: jax.Array
    mediapipe: jax.Array
    joints: jax.Array


def _check(model: MorphableModel, params: FaceParams) -> tuple[int, ...]:
    batch = params.pose.shape[:-1]
    wanted = {"shape": model.num_shape, "expression": model.num_expression, "pose": 3, "jaw": 3,
              "eyelids": 2, "neck": 3, "eyes": 6}
    for field, size in wanted.items():
        value = getattr(params, field)
        if value is None:
            continue
        if value.shape != batch + (size,):
            raise MorphableModelError(
                f"{model.name}: FaceParams.{field} must have shape {batch + (size,)} (batch "
                f"{batch} of pose, {size} values), got {value.shape}")
    if model.num_joints != _FLAME_JOINTS:
        raise MorphableModelError(
            f"{model.name}: FaceParams drive FLAME's {_FLAME_JOINTS} joints, the model has "
            f"{model.num_joints}")
    return batch


def embed_points(vertices: jax.Array, mesh_faces: np.ndarray,
                 embedding: BarycentricEmbedding) -> jax.Array:
    """Barycentric points of meshes.

    Args:
      vertices: ``float [..., V, 3]``.
      mesh_faces: ``int [F, 3]`` the mesh's triangles (numpy, static).
      embedding: ``L`` points (1-D ``faces``).

    Returns:
      ``[..., L, 3]``: ``sum_k bary[l, k] * vertices[mesh_faces[faces[l], k]]``.
    """
    corners = jnp.asarray(vertices)[..., np.asarray(mesh_faces)[embedding.faces], :]
    return jnp.einsum("lk,...lkc->...lc", jnp.asarray(embedding.bary, corners.dtype), corners,
                      precision=_HIGHEST)


def shaped_vertices(model: MorphableModel, params: FaceParams) -> jax.Array:
    """The rest-pose mesh: template plus identity, expression and eyelid displacements.

    Returns:
      ``float32 [B, V, 3]``.
    """
    _check(model, params)
    dt = jnp.float32
    v = jnp.asarray(model.v_template, dt)
    v = v + jnp.einsum("...s,vcs->...vc", params.shape.astype(dt),
                       jnp.asarray(model.shapedirs, dt), precision=_HIGHEST)
    v = v + jnp.einsum("...e,vce->...vc", params.expression.astype(dt),
                       jnp.asarray(model.exprdirs, dt), precision=_HIGHEST)
    return v + jnp.einsum("...k,kvc->...vc", params.eyelids.astype(dt),
                          jnp.asarray(model.eyelids, dt), precision=_HIGHEST)


def morph(model: MorphableModel, params: FaceParams) -> FaceOutput:
    """Evaluates the model (FLAME's forward pass, see the module docstring).

    Args:
      model: the morphable model (constants); its counts must match the parameters' (use
        :meth:`MorphableModel.truncated` for fewer components).
      params: the face's parameters.

    Returns:
      The posed mesh, its landmarks and joints.

    Raises:
      MorphableModelError: parameter shapes that do not fit the model (raised while tracing).
    """
    v_shaped = shaped_vertices(model, params)
    vertices, joints = lbs(
        v_shaped,
        params.full_pose().astype(jnp.float32),
        j_regressor=model.j_regressor,
        parents=model.parents.tolist(),
        lbs_weights=model.lbs_weights,
        posedirs=model.posedirs,
    )
    return FaceOutput(
        vertices=vertices,
        landmarks68=embed_points(vertices, model.faces, model.landmarks68),
        mediapipe=embed_points(vertices, model.faces, model.mediapipe_landmarks),
        joints=joints,
    )


def contour_landmarks(model: MorphableModel, vertices: jax.Array,
                      params: FaceParams) -> jax.Array:
    """The 17 jaw-contour landmarks (iBUG 0-16) as a 2D landmark detector sees them.

    With a pose-dependent contour (FLAME's dynamic embedding, 79 yaw bins) the bin is chosen
    from the head's yaw as SMIRK and DECA do: the rotation ``R = R_global @ R_neck``, its yaw
    ``atan2(-R[2, 0], hypot(R[0, 0], R[1, 0]))`` in degrees rounded half to even and clipped to
    39, then bin ``yaw`` for yaw >= 0, ``39 - yaw`` for -39 <= yaw < 0 and 78 below. Without
    one, the first 17 points of ``landmarks68``. The bin choice has no gradient (as in SMIRK).

    Args:
      model: the model.
      vertices: ``float [B, V, 3]`` posed meshes (``morph(model, params).vertices``).
      params: the parameters they were made with.

    Returns:
      ``float32 [B, 17, 3]``.
    """
    if model.contour_embedding is None:
        head = BarycentricEmbedding(model.landmarks68.faces[:17], model.landmarks68.bary[:17])
        return embed_points(vertices, model.faces, head)
    batch = _check(model, params)
    pose = params.full_pose()
    rot = jnp.matmul(rodrigues(pose[..., 0, :]), rodrigues(pose[..., 1, :]), precision=_HIGHEST)
    yaw = jnp.arctan2(-rot[..., 2, 0], jnp.hypot(rot[..., 0, 0], rot[..., 1, 0]))
    deg = jnp.round(jnp.minimum(jax.lax.stop_gradient(yaw) * 180.0 / jnp.pi, 39.0))
    deg = deg.astype(jnp.int32)
    bins = jnp.where(deg >= 0, deg, jnp.where(deg < -39, 78, 39 - deg))
    tri = jnp.asarray(model.faces)[jnp.asarray(model.contour_embedding.faces)[bins]]  # [B,17,3]
    bary = jnp.asarray(model.contour_embedding.bary)[bins]  # [B, 17, 3]
    v = jnp.asarray(vertices)
    corners = jnp.take_along_axis(v, tri.reshape(batch + (-1, 1)), axis=-2)
    corners = corners.reshape(batch + (17, 3, 3))
    return jnp.einsum("...lk,...lkc->...lc", bary.astype(v.dtype), corners, precision=_HIGHEST)
