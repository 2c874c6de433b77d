"""LSTM models for the 4D-expression evaluation (paper Sec. 4.3, Table 3).

* :class:`LSTMLandmarkGenerator`: the deterministic baseline the paper compares Motion3DGAN with,
  modelled on Potamias et al. (ECCV 2020): an LSTM reads a per-frame expression code (one-hot label
  times an intensity ramp going from neutral, 0, to apex, 1) and the neutral landmarks, and a small
  per-frame decoder outputs the landmark displacement from the neutral configuration. Trained with
  L1 plus the temporal-coherence L1 of frame differences (:func:`sequence_l1_loss`, Potamias eq. 5).
* :class:`LSTMExpressionClassifier`: one LSTM layer followed by a fully connected layer with 512
  outputs (the FID features) and a linear classification head over the 12 CoMA expressions.

Landmark sequences are ``[B, T, 68, 3]`` (or ``[B, T, D]`` with the frames already flattened),
frames normalised as in the data pipeline (centred, unit Frobenius norm).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = [
    "LSTMExpressionClassifier",
    "LSTMLandmarkGenerator",
    "expression_code",
    "sequence_l1_loss",
]


def expression_code(
    labels: jax.Array, num_frames: int, num_classes: int = 12, intensity: jax.Array | None = None
) -> jax.Array:
    """Per-frame neutral-to-apex expression code: ``one_hot(label) * intensity * t / (T - 1)``.

    Args:
      labels: ``[B]`` int labels.
      num_frames: ``T`` (static).
      num_classes: number of expressions.
      intensity: optional ``[B]`` apex amplitude in ``(0, 1]`` (Potamias' ``s_i``); default 1.

    Returns:
      ``[B, T, num_classes]`` float32.
    """
    ramp = jnp.linspace(0.0, 1.0, num_frames, dtype=jnp.float32)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
    code = onehot[:, None, :] * ramp[None, :, None]
    if intensity is not None:
        code = code * jnp.asarray(intensity, jnp.float32)[:, None, None]
    return code


def sequence_l1_loss(pred: jax.Array, target: jax.Array, temporal_weight: float = 1.0) -> jax.Array:
    """Mean L1 error plus ``temporal_weight`` times the mean L1 error of consecutive-frame
    differences.

    Args:
      pred: ``[B, T, ...]`` predicted sequence.
      target: ``[B, T, ...]`` ground truth.
      temporal_weight: weight of the temporal-coherence term.

    Returns:
      float32 scalar.
    """
    l1 = jnp.mean(jnp.abs(pred - target))
    dp = pred[:, 1:] - pred[:, :-1]
    dt = target[:, 1:] - target[:, :-1]
    return l1 + temporal_weight * jnp.mean(jnp.abs(dp - dt))


class LSTMLandmarkGenerator(nn.Module):
    """Deterministic label + neutral -> landmark-motion generator (the Table 3 "LSTM" baseline).

    Attributes:
      num_frames: output length ``T``.
      num_classes: number of expression labels.
      hidden_size: LSTM width.
      latent_size: per-frame code between the LSTM and the displacement decoder (Potamias: 64).
      condition_on_neutral: feed the flattened neutral landmarks to the LSTM at every step.
      anchor_first_frame: subtract the first frame's displacement so that frame 0 is exactly the
        neutral configuration (the sequences go from neutral to apex).

    Example:
      >>> import jax, jax.numpy as jnp
      >>> gen = LSTMLandmarkGenerator(num_frames=10)
      >>> labels, neutral = jnp.array([1, 4]), jnp.zeros((2, 68, 3))
      >>> init = lambda key: gen.init_with_output(key, labels, neutral)[0]
      >>> jax.eval_shape(init, jax.random.key(0)).shape
      (2, 10, 68, 3)
    """

    num_frames: int = 30
    num_classes: int = 12
    hidden_size: int = 256
    latent_size: int = 64
    condition_on_neutral: bool = True
    anchor_first_frame: bool = True

    @nn.compact
    def __call__(
        self, labels: jax.Array, neutral: jax.Array, intensity: jax.Array | None = None
    ) -> jax.Array:
        """Generate landmark sequences.

        Args:
          labels: ``[B]`` int expression labels.
          neutral: ``[B, *point_shape]`` neutral landmarks (e.g. ``[B, 68, 3]``).
          intensity: optional ``[B]`` apex amplitudes for :func:`expression_code`.

        Returns:
          ``[B, T, *point_shape]`` float32 landmark sequences.
        """
        neutral = jnp.asarray(neutral, jnp.float32)
        batch, point_shape = neutral.shape[0], neutral.shape[1:]
        flat = neutral.reshape(batch, -1)
        x = expression_code(labels, self.num_frames, self.num_classes, intensity)
        if self.condition_on_neutral:
            x = jnp.concatenate(
                [x, jnp.broadcast_to(flat[:, None], (batch, self.num_frames, flat.shape[-1]))], -1
            )
        h = nn.RNN(nn.OptimizedLSTMCell(self.hidden_size), name="lstm")(x)
        z = nn.elu(nn.Dense(self.latent_size, name="latent")(h))
        disp = nn.Dense(flat.shape[-1], name="decoder")(z)  # [B, T, D]
        if self.anchor_first_frame:
            disp = disp - disp[:, :1]
        out = flat[:, None, :] + disp
        return out.reshape(batch, self.num_frames, *point_shape)


class LSTMExpressionClassifier(nn.Module):
    """Expression classifier over landmark sequences; its 512-d features feed the FID.

    Attributes:
      num_classes: number of expressions (12 for CoMA).
      hidden_size: LSTM width (not given by the paper).
      feature_size: width of the fully connected layer whose outputs are the FID features (paper:
        512).
      relative_to_first_frame: classify the displacement from the first (neutral) frame, which
        removes the identity; ``False`` uses the raw landmarks.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> clf = LSTMExpressionClassifier()
      >>> init = lambda key: clf.init_with_output(key, jnp.zeros((2, 30, 68, 3)))[0]
      >>> logits, feats = jax.eval_shape(init, jax.random.key(0))
      >>> logits.shape, feats.shape
      ((2, 12), (2, 512))
    """

    num_classes: int = 12
    hidden_size: int = 256
    feature_size: int = 512
    relative_to_first_frame: bool = True

    @nn.compact
    def __call__(
        self, sequences: jax.Array, seq_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array]:
        """Classify sequences.

        Args:
          sequences: ``[B, T, *point_shape]`` landmark sequences (``[B, T, 68, 3]`` or
            ``[B, T, D]``).
          seq_lengths: optional ``[B]`` int valid lengths (padded sequences); the final LSTM state
            is taken at the last valid frame.

        Returns:
          ``(logits, features)``: ``[B, num_classes]`` and ``[B, feature_size]`` float32. The
          features are the fully connected layer's outputs (before the ReLU that feeds the head).
        """
        x = jnp.asarray(sequences, jnp.float32)
        x = x.reshape(x.shape[0], x.shape[1], -1)
        if self.relative_to_first_frame:
            x = x - x[:, :1]
        (_, h_last), _ = nn.RNN(
            nn.OptimizedLSTMCell(self.hidden_size), return_carry=True, name="lstm"
        )(x, seq_lengths=seq_lengths)
        features = nn.Dense(self.feature_size, name="fc")(h_last)
        logits = nn.Dense(self.num_classes, name="head")(nn.relu(features))
        return logits, features
