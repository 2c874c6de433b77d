"""Applications of the SRVF motion representation (paper §4.4): diversity, geodesic interpolation,
mixed expressions and motion transfer, plus the two conversions they share.

* :func:`motion_to_landmarks`: SRVF ``q`` -> landmark sequence on a neutral configuration (paper
  eq. 4, :func:`jaxface.manifold.srvf_inverse`);
* :func:`decode_meshes`: landmark sequence -> dense mesh sequence of a neutral face with S2D-Dec
  (``normalize(frame) - normalize(neutral)`` -> decoder -> ``neutral_mesh + displacement``).

Layouts follow :mod:`jaxface.manifold`: SRVFs are ``[..., T, D]`` with ``D = 3K`` (``K = 68``
landmarks), landmark sequences ``[..., T, K, 3]``, meshes ``[..., N, 3]``. Every function returns
numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jaxface.data.landmarks import landmark_displacement, normalize_landmarks
from jaxface.manifold import (
    exp_map,
    geodesic_path,
    log_map,
    project_to_sphere,
    resample_arclength_np,
    srvf,
    srvf_inverse,
)

__all__ = [
    "DecodeFn",
    "apex_transition",
    "blend_motions",
    "decode_meshes",
    "interpolate_motions",
    "landmarks_to_motion",
    "motion_to_landmarks",
    "sample_diversity",
    "transfer_motion",
]

#: S2D-Dec as a function: landmark displacements ``[M, 3K]`` -> dense displacements ``[M, N, 3]``.
DecodeFn = Callable[[np.ndarray], np.ndarray]


def motion_to_landmarks(
    q: np.ndarray, neutral: np.ndarray, intensity: np.ndarray | float, *,
    spacing: str = "forward",
) -> np.ndarray:
    """Landmark sequences from SRVFs (paper eq. 4): ``neutral + intensity * cumtrapz(q |q|)``.

    Args:
      q: float ``[..., T, D]`` SRVFs.
      neutral: float ``[..., K, 3]`` normalised neutral landmarks (``3K = D``); broadcasts
        against the batch axes of ``q``.
      intensity: ``[...]`` or scalar SRVF length (amplitude).
      spacing: integration step, ``"forward"`` (``1/T``, consistent with
        :func:`jaxface.manifold.srvf`) or ``"linspace"`` (official ``1/(T-1)``).

    Returns:
      float32 ``[..., T, K, 3]``; frame 0 equals ``neutral``.
    """
    out = srvf_inverse(
        jnp.asarray(q, jnp.float32), jnp.asarray(neutral, jnp.float32),
        jnp.asarray(intensity, jnp.float32), spacing=spacing,
    )
    return np.asarray(out, np.float32)


def landmarks_to_motion(
    landmarks: np.ndarray, num_frames: int | None = 30
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The SRVF of a landmark sequence, as Motion3DGAN's data pipeline computes it.

    Every frame is normalised (centred, unit Frobenius norm); with ``num_frames`` the sequence is
    arc-length resampled (keeping only its path, as for the training data), otherwise its own
    frames and timing are kept.

    Args:
      landmarks: float ``[T, K, 3]`` landmark sequence, frame 0 the neutral face, ``T >= 2``.
      num_frames: frames after arc-length resampling, or ``None`` to keep the source frames.

    Returns:
      ``(q [T', 3K], intensity (scalar), neutral [K, 3])``: the SRVF, its length and the
      normalised first frame, so ``motion_to_landmarks(q, neutral, intensity)`` reproduces the
      normalised (resampled) sequence.
    """
    lm = np.asarray(normalize_landmarks(np.asarray(landmarks, np.float64)), np.float32)
    if lm.ndim != 3 or lm.shape[0] < 2:
        raise ValueError(f"expected a landmark sequence [T >= 2, K, 3], got {lm.shape}")
    if num_frames is not None:
        lm = resample_arclength_np(lm, num_frames).astype(np.float32)
    q, length = srvf(jnp.asarray(lm), return_length=True)
    return np.asarray(q, np.float32), np.asarray(length, np.float32), lm[0]


def decode_meshes(
    decode: DecodeFn, landmarks: np.ndarray, neutral_landmarks: np.ndarray,
    neutral_mesh: np.ndarray,
) -> np.ndarray:
    """Dense mesh sequences of neutral faces following landmark sequences (S2D-Dec).

    All frames go through ``decode`` in one call.

    Args:
      decode: S2D-Dec, ``[M, 3K] -> [M, N, 3]`` (landmark displacement -> dense displacement).
      landmarks: float ``[..., T, K, 3]`` landmark frames.
      neutral_landmarks: float ``[..., K, 3]`` landmarks of the neutral configuration each
        sequence moves away from (both are S2D-normalised inside, so raw or normalised landmarks
        both work).
      neutral_mesh: float ``[..., N, 3]`` the neutral face each sequence deforms.

    Returns:
      float32 ``[..., T, N, 3]`` meshes ``neutral_mesh + decode(normalize(frame) -
      normalize(neutral))``.
    """
    neutral_lms = np.asarray(neutral_landmarks, np.float32)[..., None, :, :]
    disp = np.asarray(
        landmark_displacement(np.asarray(landmarks, np.float32), neutral_lms), np.float32
    )
    dense = np.asarray(decode(disp.reshape(-1, disp.shape[-1])), np.float32)
    dense = dense.reshape(*disp.shape[:-1], *dense.shape[-2:])
    return np.asarray(neutral_mesh, np.float32)[..., None, :, :] + dense


def sample_diversity(
    sample: Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array],
    gen_params: Any,
    reference: np.ndarray,
    label: int,
    num_samples: int,
    key: jax.Array,
) -> np.ndarray:
    """Several Motion3DGAN motions of one expression label (different noise vectors).

    Args:
      sample: :func:`jaxface.motion3dgan.train.make_sample_fn` of the models.
      gen_params: generator parameters.
      reference: float32 ``[T, D]`` reference point.
      label: the expression label.
      num_samples: how many motions.
      key: PRNG key.

    Returns:
      float32 ``[num_samples, T, D]`` SRVFs.
    """
    labels = jnp.full((num_samples,), label, jnp.int32)
    return np.asarray(sample(gen_params, jnp.asarray(reference), labels, key), np.float32)


def interpolate_motions(q1: np.ndarray, q2: np.ndarray, num_steps: int) -> np.ndarray:
    """Motions along the geodesic between two motions (paper §4.4).

    ``psi(tau) = (sin((1 - tau) theta) q1 + sin(tau theta) q2) / sin(theta)`` at ``num_steps``
    evenly spaced ``tau`` in ``[0, 1]`` (:func:`jaxface.manifold.geodesic_path`).

    Args:
      q1: float ``[T, D]`` first motion (tau = 0), on the sphere.
      q2: float ``[T, D]`` second motion (tau = 1).
      num_steps: number of motions, ends included (``>= 2``).

    Returns:
      float32 ``[num_steps, T, D]``.
    """
    if num_steps < 2:
        raise ValueError(f"num_steps must be >= 2, got {num_steps}")
    taus = jnp.linspace(0.0, 1.0, num_steps)
    return np.asarray(geodesic_path(jnp.asarray(q1), jnp.asarray(q2), taus), np.float32)


def apex_transition(
    q1: np.ndarray, q2: np.ndarray, neutral: np.ndarray, intensity1: float, intensity2: float,
    num_steps: int, *, spacing: str = "forward",
) -> np.ndarray:
    """A mixed expression moving from the apex of one motion to the apex of another (paper §4.4).

    The motions along the geodesic from ``q1`` to ``q2`` (:func:`interpolate_motions`) are turned
    into landmark sequences on ``neutral`` (their amplitude interpolated linearly between the two
    intensities) and the last (apex) frame of each is kept: a sequence that switches between the
    two apex expressions through plausible intermediate ones.

    Args:
      q1: float ``[T, D]`` first motion.
      q2: float ``[T, D]`` second motion.
      neutral: float ``[K, 3]`` normalised neutral landmarks.
      intensity1: SRVF length of the first motion.
      intensity2: SRVF length of the second motion.
      num_steps: frames of the transition (``>= 2``).
      spacing: see :func:`motion_to_landmarks`.

    Returns:
      float32 ``[num_steps, K, 3]`` landmark frames, from the apex of ``q1`` to that of ``q2``.
    """
    path = interpolate_motions(q1, q2, num_steps)
    tau = np.linspace(0.0, 1.0, num_steps, dtype=np.float32)
    intensity = (1.0 - tau) * intensity1 + tau * intensity2
    return motion_to_landmarks(path, neutral, intensity, spacing=spacing)[:, -1]


def blend_motions(
    q1: np.ndarray, q2: np.ndarray, reference: np.ndarray, weight: float = 0.5
) -> np.ndarray:
    """A motion towards a mixed apex: the weighted average of two motions in the tangent space.

    ``exp_p((1 - w) log_p(q1) + w log_p(q2))`` at the reference point ``p``, the space where
    Motion3DGAN generates; the result is a neutral -> apex motion whose apex combines both
    expressions (e.g. a smile with raised eyebrows).

    Args:
      q1: float ``[..., T, D]`` first motion.
      q2: float ``[..., T, D]`` second motion.
      reference: float ``[T, D]`` the tangent space's base point.
      weight: ``w``, the share of ``q2``.

    Returns:
      float32 ``[..., T, D]`` motion on the sphere.
    """
    p = jnp.asarray(reference, jnp.float32)
    v = (1.0 - weight) * log_map(p, jnp.asarray(q1, jnp.float32)) + weight * log_map(
        p, jnp.asarray(q2, jnp.float32)
    )
    return np.asarray(project_to_sphere(exp_map(p, v)), np.float32)


def transfer_motion(
    source_landmarks: np.ndarray, target_neutral: np.ndarray, *, num_frames: int | None = None,
    spacing: str = "forward",
) -> np.ndarray:
    """Transfers the motion of a landmark sequence to another face's neutral landmarks (§4.4).

    The source sequence is encoded as an SRVF and its length (:func:`landmarks_to_motion`), then
    integrated from the target's normalised neutral landmarks (:func:`motion_to_landmarks`): the
    target follows the source's motion, relative to its own configuration. Decode the result
    with :func:`decode_meshes` on the target's neutral mesh.

    Args:
      source_landmarks: float ``[T, K, 3]`` landmarks of the source sequence (frame 0 neutral).
      target_neutral: float ``[K, 3]`` landmarks of the target's neutral face.
      num_frames: arc-length resample the source to this many frames (as the Motion3DGAN data);
        ``None`` keeps its frames and timing (e.g. speech).
      spacing: see :func:`motion_to_landmarks`.

    Returns:
      float32 ``[T', K, 3]`` normalised landmark sequence of the target (frame 0 its neutral).
    """
    q, intensity, _ = landmarks_to_motion(source_landmarks, num_frames)
    neutral = np.asarray(normalize_landmarks(np.asarray(target_neutral, np.float64)), np.float32)
    return motion_to_landmarks(q, neutral, intensity, spacing=spacing)
