"""Linear blend skinning over a kinematic tree, in pure ``jax.numpy`` (FLAME's / SMPL's LBS).

* :func:`rodrigues`: axis-angle vectors to rotation matrices, exact and with finite gradients at
  the zero rotation (series expansions are used for angles below 0.1 rad).
* :func:`batch_rigid_transform`: the world transforms of a kinematic chain, relative to its rest
  pose.
* :func:`lbs`: joints regressed from the shaped mesh, pose correctives, then each vertex moved by
  the blend of its joints' transforms.

Every function takes any number of leading batch axes (``...``) and works under ``jit``,
``vmap`` and ``grad``. Matrix products use full float32 precision (``Precision.HIGHEST``), so
accelerators that would otherwise round float32 products (TF32) keep sub-micrometre geometry.

Example:
  >>> import jax.numpy as jnp
  >>> r = rodrigues(jnp.array([0.0, 0.0, jnp.pi / 2]))
  >>> bool(jnp.allclose(r, jnp.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]), atol=1e-6))
  True
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["batch_rigid_transform", "lbs", "pose_features", "rodrigues"]

_HIGHEST = jax.lax.Precision.HIGHEST
_SERIES_BELOW = 1e-2  # squared angle (rad^2) under which the series are used


def _skew(v: jax.Array) -> jax.Array:
    """``[..., 3] -> [..., 3, 3]`` cross-product matrices."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    zero = jnp.zeros_like(x)
    return jnp.stack(
        [jnp.stack([zero, -z, y], -1), jnp.stack([z, zero, -x], -1),
         jnp.stack([-y, x, zero], -1)], -2)


def rodrigues(axis_angle: jax.Array) -> jax.Array:
    """Rotation matrices of axis-angle vectors (Rodrigues' formula).

    ``R = I + a K + b K^2`` with ``K`` the cross-product matrix of the vector, ``a = sin t / t``
    and ``b = (1 - cos t) / t^2 = (sin(t/2) / (t/2))^2 / 2`` (``t`` the angle; the half-angle
    form keeps float32 precision at small angles). Below 0.1 rad, ``a`` and ``b`` are their
    Taylor series to ``t^6`` (exact to float precision there, where the closed forms' gradients
    would lose digits), so the value and all gradients are finite and accurate at the zero
    rotation (where ``dR/dv_i`` is the cross-product matrix of ``e_i``).

    Args:
      axis_angle: ``float [..., 3]`` rotation axis times angle (radians).

    Returns:
      ``[..., 3, 3]`` rotation matrices.
    """
    v = jnp.asarray(axis_angle)
    t2 = jnp.sum(v * v, axis=-1)[..., None, None]
    small = t2 < _SERIES_BELOW
    safe = jnp.where(small, 1.0, t2)
    t = jnp.sqrt(safe)
    a = jnp.where(small, 1.0 - t2 / 6.0 * (1.0 - t2 / 20.0 * (1.0 - t2 / 42.0)), jnp.sin(t) / t)
    half = jnp.sin(0.5 * t) / (0.5 * t)
    b = jnp.where(small, 0.5 - t2 / 24.0 * (1.0 - t2 / 30.0 * (1.0 - t2 / 56.0)),
                  0.5 * half * half)
    k = _skew(v)
    eye = jnp.eye(3, dtype=k.dtype)
    return eye + a * k + b * jnp.matmul(k, k, precision=_HIGHEST)


def batch_rigid_transform(
    rotations: jax.Array, joints: jax.Array, parents: Sequence[int]
) -> tuple[jax.Array, jax.Array]:
    """World transforms of a kinematic chain, relative to its rest pose.

    Joint ``j`` rotates by ``rotations[j]`` about its rest location ``joints[j]``, in the frame
    of its parent. Its world transform is ``G_j = G_parent @ [R_j | t_j - t_parent]`` (``G_root =
    [R_0 | t_0]``) and the returned transform maps rest-pose points to posed points:
    ``A_j = G_j @ [I | -t_j]``.

    Args:
      rotations: ``float [..., J, 3, 3]`` local joint rotations.
      joints: ``float [..., J, 3]`` rest-pose joint locations.
      parents: ``J`` parent indices (``-1`` for joint 0), each smaller than its child's index.

    Returns:
      ``(posed_joints [..., J, 3], transforms [..., J, 4, 4])``.
    """
    parents = [int(p) for p in parents]
    local_t = joints - jnp.stack(
        [jnp.zeros_like(joints[..., 0, :])] + [joints[..., p, :] for p in parents[1:]], axis=-2)
    local = _homogeneous(rotations, local_t)  # [..., J, 4, 4]
    world = [local[..., 0, :, :]]
    for j in range(1, len(parents)):
        world.append(jnp.matmul(world[parents[j]], local[..., j, :, :], precision=_HIGHEST))
    world = jnp.stack(world, axis=-3)
    posed = world[..., :3, 3]
    # Move the rest location to the origin first: A_j = G_j - [0 | G_j[:3, :3] t_j].
    rest_shift = jnp.einsum("...ik,...k->...i", world[..., :3, :3], joints, precision=_HIGHEST)
    transforms = world.at[..., :3, 3].add(-rest_shift)
    return posed, transforms


def _homogeneous(rotation: jax.Array, translation: jax.Array) -> jax.Array:
    top = jnp.concatenate([rotation, translation[..., None]], axis=-1)  # [..., 3, 4]
    bottom = jnp.broadcast_to(jnp.array([0.0, 0.0, 0.0, 1.0], top.dtype),
                              top.shape[:-2] + (1, 4))
    return jnp.concatenate([top, bottom], axis=-2)


def pose_features(rotations: jax.Array) -> jax.Array:
    """The pose-corrective features: ``R_j - I`` of the non-root joints, flattened.

    Args:
      rotations: ``float [..., J, 3, 3]``.

    Returns:
      ``[..., 9 (J - 1)]`` (joint-major, then row-major ``3 x 3``, FLAME's order).
    """
    eye = jnp.eye(3, dtype=rotations.dtype)
    feats = rotations[..., 1:, :, :] - eye
    return feats.reshape(feats.shape[:-3] + (-1,))


def lbs(
    v_shaped: jax.Array,
    pose: jax.Array,
    *,
    j_regressor: np.ndarray | jax.Array,
    parents: Sequence[int],
    lbs_weights: np.ndarray | jax.Array,
    posedirs: np.ndarray | jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Poses shaped meshes by linear blend skinning.

    1. Joints ``J = j_regressor @ v_shaped`` (before pose correctives, as FLAME);
    2. ``v_posed = v_shaped + pose_features(R) @ posedirs`` when ``posedirs`` is given;
    3. each vertex is moved by ``sum_j lbs_weights[v, j] A_j`` (see
       :func:`batch_rigid_transform`).

    Args:
      v_shaped: ``float [..., V, 3]`` rest-pose vertices (template plus shape and expression).
      pose: ``float [..., J, 3]`` axis-angle rotation of every joint (joint 0: global).
      j_regressor: ``[J, V]``.
      parents: ``J`` parent indices (``-1`` for joint 0).
      lbs_weights: ``[V, J]`` skinning weights.
      posedirs: ``[9 (J - 1), V * 3]`` pose correctives, or None.

    Returns:
      ``(vertices [..., V, 3], joints [..., J, 3])`` posed.
    """
    v_shaped = jnp.asarray(v_shaped)
    dtype = v_shaped.dtype
    rotations = rodrigues(jnp.asarray(pose, dtype))
    joints = jnp.einsum("jv,...vc->...jc", jnp.asarray(j_regressor, dtype), v_shaped,
                        precision=_HIGHEST)
    v_posed = v_shaped
    if posedirs is not None:
        offsets = jnp.matmul(pose_features(rotations), jnp.asarray(posedirs, dtype),
                             precision=_HIGHEST)
        v_posed = v_posed + offsets.reshape(v_shaped.shape)
    posed_joints, transforms = batch_rigid_transform(rotations, joints, parents)
    blended = jnp.einsum("vj,...jab->...vab", jnp.asarray(lbs_weights, dtype),
                         transforms[..., :3, :], precision=_HIGHEST)  # [..., V, 3, 4]
    vertices = jnp.einsum("...vab,...vb->...va", blended[..., :3], v_posed,
                          precision=_HIGHEST) + blended[..., 3]
    return vertices, posed_joints
